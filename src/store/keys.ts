import { z } from 'zod';
import type { Sql } from './sql.js';
import { TgError } from '../errors.js';

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

/** A parsed public key as enrolled (auth/public-key.ts parses authorized_keys lines into it). */
export interface PublicKeyInfo {
  type: string;
  blob: Buffer;
  fingerprint: string;
  bits: number | null;
  comment: string;
}

/** Users' public keys. A key (by fingerprint) belongs to at most one user. */
export class KeyRepo {
  constructor(private readonly sql: Sql) {}

  async add(userId: number, key: PublicKeyInfo, now: number): Promise<StoredKey> {
    const existing = await this.sql.get('SELECT user_id FROM public_keys WHERE fingerprint = ?', [key.fingerprint]);
    if (existing) throw new TgError('TG_ERR_KEY_EXISTS', `key ${key.fingerprint} is already enrolled`);
    const { id } = (await this.sql.get(
      'INSERT INTO public_keys (user_id, key_type, key_blob, fingerprint, bits, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [userId, key.type, key.blob, key.fingerprint, key.bits, key.comment, now],
    )) as { id: number };
    return KeyRow.parse(await this.sql.get('SELECT * FROM public_keys WHERE id = ?', [id]));
  }

  /** The user's key with exactly this wire blob, if enrolled. */
  async findForUser(userId: number, blob: Buffer): Promise<StoredKey | null> {
    const r = await this.sql.get('SELECT * FROM public_keys WHERE user_id = ? AND key_blob = ?', [userId, blob]);
    return r ? KeyRow.parse(r) : null;
  }

  /** Removes the user's key with this fingerprint; false if they have none such. */
  async remove(userId: number, fingerprint: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM public_keys WHERE user_id = ? AND fingerprint = ?', [userId, fingerprint])) === 1;
  }

  /** Keys enrolled, and how many distinct fingerprints among them (equal when each key has one owner). */
  async counts(): Promise<{ keys: number; fingerprints: number }> {
    const r = (await this.sql.get('SELECT COUNT(*) AS n, COUNT(DISTINCT fingerprint) AS d FROM public_keys')) as { n: number; d: number };
    return { keys: r.n, fingerprints: r.d };
  }

  async listForUser(userId: number): Promise<StoredKey[]> {
    return (await this.sql.all('SELECT * FROM public_keys WHERE user_id = ? ORDER BY id', [userId])).map((r) => KeyRow.parse(r));
  }
}
