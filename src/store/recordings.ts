import { z } from 'zod';
import type { Sql } from './sql.js';
import type { KeyProvider } from '../crypto/master-key.js';
import { TgError } from '../errors.js';
import { SIX_YEARS_MS } from '../config/duration.js';
import type { AuditRow } from './audit-events.js';

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
  retention_ms: z.number().nullable(),
  purged_at: z.number().nullable(),
  purged_by: z.string().nullable(),
  purge_reason: z.string().nullable(),
  purge_audit_id: z.number().nullable(),
  file_removed_at: z.number().nullable(),
});
export type RecordingRow = z.infer<typeof Row>;

/** A recording as retention sees it: its row, whose session it is, when it ended and how many holds stand on it. */
export interface RetentionRow extends RecordingRow {
  user_name: string | null;
  role_name: string | null;
  /** The recording's end: sealed (or failed) time, else its session's end (interrupted); null while live. */
  ended_at: number | null;
  /** Holds standing now. */
  holds: number;
}

const RetentionExtra = z.object({ user_name: z.string().nullable(), role_name: z.string().nullable(), ended_at: z.number().nullable(), holds: z.number() });

const HoldRow = z.object({
  id: z.number(),
  session_id: z.string(),
  reason: z.string(),
  placed_by: z.string(),
  placed_at: z.number(),
  released_at: z.number().nullable(),
  released_by: z.string().nullable(),
  release_reason: z.string().nullable(),
});
export type HoldRow = z.infer<typeof HoldRow>;

const RETENTION_SELECT = `SELECT r.*, s.user_name, s.role_name, COALESCE(r.sealed_at, s.ended_at) AS ended_at,
  (SELECT COUNT(*) FROM recording_holds h WHERE h.session_id = r.session_id AND h.released_at IS NULL) AS holds
  FROM recordings r LEFT JOIN sessions s ON s.id = r.session_id`;

const aad = (sessionId: string) => `tmuxgate:recording:${sessionId}`;

/**
 * Recording metadata and wrapped data keys; retention, legal holds, and the purge that destroys a
 * wrapped key (crypto-shredding).
 */
export class RecordingRepo {
  /** `defaultRetentionMs`: the config's recording.retention, for roles that set none. */
  constructor(
    private readonly sql: Sql,
    readonly defaultRetentionMs: number = SIX_YEARS_MS,
  ) {}

  /**
   * The row for a new recording. Its retention period is fixed here, from the session's role
   * (or the default): a later role edit changes the retention of later recordings only.
   */
  async create(r: { sessionId: string; file: string; dataKey: Buffer; keys: KeyProvider; cols: number; rows: number; now: number }): Promise<void> {
    await this.sql.run(
      'INSERT INTO recordings (session_id, file, wrapped_key, key_id, state, cols, rows, created_at, retention_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ' +
        'COALESCE((SELECT ro.retention_ms FROM sessions s JOIN roles ro ON ro.id = s.role_id WHERE s.id = ?), ?))',
      [r.sessionId, r.file, r.keys.seal(r.dataKey, aad(r.sessionId)), r.keys.keyId, 'recording', r.cols, r.rows, r.now, r.sessionId, this.defaultRetentionMs],
    );
  }

  /** The chain head after a durable flush. */
  async flushed(sessionId: string, chunks: number, head: string, bytesIn: number, bytesStored: number): Promise<void> {
    await this.sql.run('UPDATE recordings SET chunks = ?, chain_head = ?, bytes_in = ?, bytes_stored = ? WHERE session_id = ? AND chunks <= ?', [
      chunks,
      head,
      bytesIn,
      bytesStored,
      sessionId,
      chunks,
    ]);
  }

  async finish(sessionId: string, state: 'sealed' | 'failed', durationMs: number, now: number, failure: string | null): Promise<void> {
    await this.sql.run('UPDATE recordings SET state = ?, duration_ms = ?, sealed_at = ?, failure = ? WHERE session_id = ?', [
      state,
      durationMs,
      now,
      failure,
      sessionId,
    ]);
  }

  /**
   * Recordings this node left open when it went away: marked interrupted at its next start.
   * Rows of sessions from before clusters (no node) count as the single node's.
   */
  async markInterrupted(nodeId = 'local'): Promise<number> {
    return this.sql.run(
      "UPDATE recordings SET state = 'interrupted' WHERE state = 'recording' AND session_id IN (SELECT id FROM sessions WHERE node_id = ? OR node_id IS NULL)",
      [nodeId],
    );
  }

  /** The open recordings of a node that is gone, marked interrupted; returns how many. */
  async markNodeLost(nodeId: string): Promise<number> {
    return this.sql.run("UPDATE recordings SET state = 'interrupted' WHERE state = 'recording' AND session_id IN (SELECT id FROM sessions WHERE node_id = ?)", [
      nodeId,
    ]);
  }

  /** Interrupted recordings on this node's disk that were never verified since (what a start checks). */
  async unverifiedInterrupted(nodeId = 'local'): Promise<string[]> {
    const rows = (await this.sql.all(
      `SELECT r.session_id FROM recordings r JOIN sessions s ON s.id = r.session_id
       WHERE r.state = 'interrupted' AND r.last_verified_at IS NULL AND (s.node_id = ? OR s.node_id IS NULL) ORDER BY r.created_at`,
      [nodeId],
    )) as { session_id: string }[];
    return rows.map((r) => r.session_id);
  }

  async get(sessionId: string): Promise<RecordingRow | null> {
    const r = await this.sql.get('SELECT * FROM recordings WHERE session_id = ?', [sessionId]);
    return r ? Row.parse(r) : null;
  }

  /** Every recording, or (with `onNode`) those on that node's disk, rows from before clusters included. */
  async list(filter: { onNode?: string } = {}): Promise<RecordingRow[]> {
    if (filter.onNode === undefined) return (await this.sql.all('SELECT * FROM recordings ORDER BY created_at')).map((r) => Row.parse(r));
    const rows = await this.sql.all(
      'SELECT r.* FROM recordings r JOIN sessions s ON s.id = r.session_id WHERE s.node_id = ? OR s.node_id IS NULL ORDER BY r.created_at',
      [filter.onNode],
    );
    return rows.map((r) => Row.parse(r));
  }

  /** Unwraps the data key with the master key(s) the provider holds; a purged recording has none (TG_ERR_RECORDING_PURGED). */
  dataKey(row: RecordingRow, keys: KeyProvider): Buffer {
    if (row.purged_at !== null) throw purgedError(row);
    return keys.open(row.wrapped_key, aad(row.session_id), row.key_id);
  }

  /** Re-wraps every data key under the provider's current key (key rotation); returns how many. Purged ones stay without one. */
  async rewrapAll(keys: KeyProvider): Promise<number> {
    let n = 0;
    for (const r of await this.list()) {
      if (r.key_id === keys.keyId || r.purged_at !== null) continue;
      const k = this.dataKey(r, keys);
      // A purge that lands between the read and this write must not get its key back.
      const wrapped = keys.seal(k, aad(r.session_id));
      const sql = 'UPDATE recordings SET wrapped_key = ?, key_id = ? WHERE session_id = ? AND purged_at IS NULL';
      n += await this.sql.run(sql, [wrapped, keys.keyId, r.session_id]);
    }
    return n;
  }

  async noteVerified(sessionId: string, status: string, now: number): Promise<void> {
    await this.sql.run('UPDATE recordings SET last_verified_at = ?, last_verify_status = ? WHERE session_id = ?', [now, status, sessionId]);
  }

  async require(sessionId: string): Promise<RecordingRow> {
    const r = await this.get(sessionId);
    if (!r) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no recording for session ${sessionId}`);
    return r;
  }

  /** Recordings with their retention facts, oldest first: all, or those past retention (`expiredAt`: now) and/or held. */
  async retention(filter: { expiredAt?: number; held?: boolean; sessionId?: string } = {}): Promise<RetentionRow[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.sessionId !== undefined) (where.push('r.session_id = ?'), args.push(filter.sessionId));
    if (filter.expiredAt !== undefined) {
      where.push("r.purged_at IS NULL AND r.state <> 'recording' AND COALESCE(r.sealed_at, s.ended_at) + COALESCE(r.retention_ms, ?) <= ?");
      args.push(this.defaultRetentionMs, filter.expiredAt);
    }
    if (filter.held) where.push('EXISTS (SELECT 1 FROM recording_holds h WHERE h.session_id = r.session_id AND h.released_at IS NULL)');
    const rows = await this.sql.all(`${RETENTION_SELECT} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY r.created_at, r.session_id`, args);
    return rows.map((x) => ({ ...Row.parse(x), ...RetentionExtra.parse(x) }));
  }

  /**
   * Inside a transaction: holds the recording's lock until it ends. Placing a hold and purging
   * both take it first, so a purge that re-reads the holds under it sees every hold committed
   * before it (on SQLite the write transaction itself already excludes the other).
   */
  async lock(sessionId: string): Promise<void> {
    await this.sql.lock(`recording:${sessionId}`);
  }

  /** Places a hold; returns its id. */
  async hold(sessionId: string, reason: string, by: string, now: number): Promise<number> {
    const r = (await this.sql.get('INSERT INTO recording_holds (session_id, reason, placed_by, placed_at) VALUES (?, ?, ?, ?) RETURNING id', [
      sessionId,
      reason,
      by,
      now,
    ])) as { id: number };
    return r.id;
  }

  /** Releases the standing holds named (every one with `ids` null); returns the ids released. */
  async release(sessionId: string, ids: number[] | null, by: string, reason: string | null, now: number): Promise<number[]> {
    const standing = (await this.holds(sessionId)).filter((h) => h.released_at === null && (ids === null || ids.includes(h.id))).map((h) => h.id);
    for (const id of standing) {
      const sql = 'UPDATE recording_holds SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ? AND released_at IS NULL';
      await this.sql.run(sql, [now, by, reason, id]);
    }
    return standing;
  }

  /** Holds on one recording (or on every one), standing and released, oldest first. */
  async holds(sessionId?: string): Promise<HoldRow[]> {
    const rows =
      sessionId === undefined
        ? await this.sql.all('SELECT * FROM recording_holds ORDER BY id')
        : await this.sql.all('SELECT * FROM recording_holds WHERE session_id = ? ORDER BY id', [sessionId]);
    return rows.map((x) => HoldRow.parse(x));
  }

  /**
   * Crypto-shredding: replaces the wrapped data key with nothing and marks the recording purged,
   * in one statement that also re-checks that no hold stands and that it is not purged already.
   * Returns whether it did. Call it inside the purge's transaction, after `lock`.
   */
  async shred(sessionId: string, by: string, reason: string, now: number): Promise<boolean> {
    const n = await this.sql.run(
      "UPDATE recordings SET wrapped_key = ?, key_id = '', purged_at = ?, purged_by = ?, purge_reason = ? " +
        'WHERE session_id = ? AND purged_at IS NULL ' +
        'AND NOT EXISTS (SELECT 1 FROM recording_holds h WHERE h.session_id = recordings.session_id AND h.released_at IS NULL)',
      [Buffer.alloc(0), now, by, reason, sessionId],
    );
    return n === 1;
  }

  /** Notes which audit row carries the purge's signed tombstone. */
  async notePurgeAudit(sessionId: string, auditId: number): Promise<void> {
    await this.sql.run('UPDATE recordings SET purge_audit_id = ? WHERE session_id = ?', [auditId, sessionId]);
  }

  /** Notes that the purged recording's local file is gone. */
  async noteFileRemoved(sessionId: string, now: number): Promise<void> {
    await this.sql.run('UPDATE recordings SET file_removed_at = ? WHERE session_id = ? AND purged_at IS NOT NULL', [now, sessionId]);
  }

  /** The audit row holding a purged recording's tombstone, or null. */
  async tombstoneRow(sessionId: string): Promise<AuditRow | null> {
    const r = await this.sql.get('SELECT a.* FROM audit_events a JOIN recordings r ON a.id = r.purge_audit_id WHERE r.session_id = ?', [sessionId]);
    return (r as AuditRow | undefined) ?? null;
  }

  /** Purges so far: how many, and the latest. */
  async purgeStats(): Promise<{ count: number; last: { session_id: string; purged_at: number; purged_by: string | null } | null }> {
    const { n } = (await this.sql.get('SELECT COUNT(*) AS n FROM recordings WHERE purged_at IS NOT NULL')) as { n: number };
    const newest = 'SELECT session_id, purged_at, purged_by FROM recordings WHERE purged_at IS NOT NULL ORDER BY purged_at DESC, session_id LIMIT 1';
    const last = (await this.sql.get(newest)) as { session_id: string; purged_at: number; purged_by: string | null } | undefined;
    return { count: n, last: last ?? null };
  }

  /**
   * After a purge: asks the engine to drop what it still keeps of overwritten rows. SQLite (with
   * secure_delete on, see db.ts) has zeroed the freed bytes in its pages; this copies the WAL into
   * the database file and truncates it, so no page image holding the old wrapped key stays in the
   * WAL. Returns false when the checkpoint could not finish (a reader kept it from truncating).
   * PostgreSQL keeps dead row versions until vacuum and in its WAL and backups: see
   * docs/evidence.md, "Retention and provable deletion", for what covers those.
   */
  async scrub(): Promise<boolean> {
    if (this.sql.engine !== 'sqlite') return true;
    const r = (await this.sql.get('PRAGMA wal_checkpoint(TRUNCATE)')) as { busy: number } | undefined;
    return (r?.busy ?? 0) === 0;
  }
}

/** The one-line refusal for reading a purged recording. */
export function purgedError(row: RecordingRow): TgError {
  const when = new Date(row.purged_at ?? 0).toISOString();
  const tomb = row.purge_audit_id !== null ? `; signed tombstone: audit row ${row.purge_audit_id}` : '';
  return new TgError(
    'TG_ERR_RECORDING_PURGED',
    `recording ${row.session_id} was purged at ${when} by ${row.purged_by ?? '?'} (${(row.purge_reason ?? '').slice(0, 200)}): ` +
      `its data key is destroyed and it cannot be read${tomb} (tmuxgate verify ${row.session_id})`,
  );
}
