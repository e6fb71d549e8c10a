import { z } from 'zod';
import type { Db } from './db.js';
import type { KeyProvider } from '../crypto/master-key.js';
import { TgError } from '../errors.js';

const Row = z.object({
  session_id: z.string(),
  file: z.string(),
  wrapped_key: z.instanceof(Buffer),
  key_id: z.string(),
  state: z.enum(['recording', 'sealed', 'interrupted', 'failed']),
  chunks: z.number(),
  chain_head: z.string(),
  bytes_in: z.number(),
  bytes_stored: z.number(),
  duration_ms: z.number().nullable(),
  cols: z.number(),
  rows: z.number(),
  created_at: z.number(),
  sealed_at: z.number().nullable(),
  failure: z.string().nullable(),
  last_verified_at: z.number().nullable(),
  last_verify_status: z.string().nullable(),
});
export type RecordingRow = z.infer<typeof Row>;

const aad = (sessionId: string) => `tmuxgate:recording:${sessionId}`;

/** Recording metadata and wrapped data keys. */
export class RecordingRepo {
  constructor(private readonly db: Db) {}

  create(r: { sessionId: string; file: string; dataKey: Buffer; keys: KeyProvider; cols: number; rows: number; now: number }): void {
    this.db
      .prepare('INSERT INTO recordings (session_id, file, wrapped_key, key_id, state, cols, rows, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(r.sessionId, r.file, r.keys.seal(r.dataKey, aad(r.sessionId)), r.keys.keyId, 'recording', r.cols, r.rows, r.now);
  }

  /** The chain head after a durable flush. */
  flushed(sessionId: string, chunks: number, head: string, bytesIn: number, bytesStored: number): void {
    this.db
      .prepare('UPDATE recordings SET chunks = ?, chain_head = ?, bytes_in = ?, bytes_stored = ? WHERE session_id = ? AND chunks <= ?')
      .run(chunks, head, bytesIn, bytesStored, sessionId, chunks);
  }

  finish(sessionId: string, state: 'sealed' | 'failed', durationMs: number, now: number, failure: string | null): void {
    this.db.prepare('UPDATE recordings SET state = ?, duration_ms = ?, sealed_at = ?, failure = ? WHERE session_id = ?').run(state, durationMs, now, failure, sessionId);
  }

  /** Recordings a dead gateway left open. */
  markInterrupted(): number {
    return this.db.prepare("UPDATE recordings SET state = 'interrupted' WHERE state = 'recording'").run().changes;
  }

  get(sessionId: string): RecordingRow | null {
    const r = this.db.prepare('SELECT * FROM recordings WHERE session_id = ?').get(sessionId);
    return r ? Row.parse(r) : null;
  }

  list(): RecordingRow[] {
    return this.db.prepare('SELECT * FROM recordings ORDER BY created_at').all().map((r) => Row.parse(r));
  }

  /** Unwraps the data key with the master key(s) the provider holds. */
  dataKey(row: RecordingRow, keys: KeyProvider): Buffer {
    return keys.open(row.wrapped_key, aad(row.session_id), row.key_id);
  }

  /** Re-wraps every data key under the provider's current key (key rotation); returns how many. */
  rewrapAll(keys: KeyProvider): number {
    let n = 0;
    const upd = this.db.prepare('UPDATE recordings SET wrapped_key = ?, key_id = ? WHERE session_id = ?');
    for (const r of this.list()) {
      if (r.key_id === keys.keyId) continue;
      const k = this.dataKey(r, keys);
      upd.run(keys.seal(k, aad(r.session_id)), keys.keyId, r.session_id);
      n++;
    }
    return n;
  }

  noteVerified(sessionId: string, status: string, now: number): void {
    this.db.prepare('UPDATE recordings SET last_verified_at = ?, last_verify_status = ? WHERE session_id = ?').run(now, status, sessionId);
  }

  require(sessionId: string): RecordingRow {
    const r = this.get(sessionId);
    if (!r) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no recording for session ${sessionId}`);
    return r;
  }
}
