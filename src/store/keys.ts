import { z } from 'zod';
import type { Db } from './db.js';
import { TgError } from '../errors.js';
import type { PublicKeyInfo } from '../auth/public-key.js';

const KeyRow = z.object({
  id: z.number(),
  user_id: z.number(),
  key_type: z.string(),
  key_blob: z.instanceof(Buffer),
  fingerprint: z.string(),
  bits: z.number().nullable(),
  comment: z.string(),
  created_at: z.number(),
});
export type StoredKey = z.infer<typeof KeyRow>;

/** Users' public keys. A key (by fingerprint) belongs to at most one user. */
export class KeyRepo {
  constructor(private readonly db: Db) {}

  add(userId: number, key: PublicKeyInfo, now: number): StoredKey {
    const existing = this.db.prepare('SELECT user_id FROM public_keys WHERE fingerprint = ?').get(key.fingerprint);
    if (existing) throw new TgError('TG_ERR_KEY_EXISTS', `key ${key.fingerprint} is already enrolled`);
    const info = this.db
      .prepare('INSERT INTO public_keys (user_id, key_type, key_blob, fingerprint, bits, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(userId, key.type, key.blob, key.fingerprint, key.bits, key.comment, now);
    return KeyRow.parse(this.db.prepare('SELECT * FROM public_keys WHERE id = ?').get(info.lastInsertRowid));
  }

  /** The user's key with exactly this wire blob, if enrolled. */
  findForUser(userId: number, blob: Buffer): StoredKey | null {
    const r = this.db.prepare('SELECT * FROM public_keys WHERE user_id = ? AND key_blob = ?').get(userId, blob);
    return r ? KeyRow.parse(r) : null;
  }

  /** Removes the user's key with this fingerprint; false if they have none such. */
  remove(userId: number, fingerprint: string): boolean {
    return this.db.prepare('DELETE FROM public_keys WHERE user_id = ? AND fingerprint = ?').run(userId, fingerprint).changes === 1;
  }

  /** Keys enrolled, and how many distinct fingerprints among them (equal when each key has one owner). */
  counts(): { keys: number; fingerprints: number } {
    const r = this.db.prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT fingerprint) AS d FROM public_keys').get() as { n: number; d: number };
    return { keys: r.n, fingerprints: r.d };
  }

  listForUser(userId: number): StoredKey[] {
    return this.db.prepare('SELECT * FROM public_keys WHERE user_id = ? ORDER BY id').all(userId).map((r) => KeyRow.parse(r));
  }
}
