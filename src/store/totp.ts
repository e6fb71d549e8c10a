import { z } from 'zod';
import type { Sql } from './sql.js';
import type { KeyProvider } from '../crypto/master-key.js';
import { Secret } from '../platform/secret.js';

const TotpRow = z.object({
  user_id: z.number(),
  sealed: z.instanceof(Buffer),
  key_id: z.string(),
  confirmed_at: z.number().nullable(),
  last_step: z.number(),
  created_at: z.number(),
});

export interface TotpRecord {
  userId: number;
  secret: Secret<string>;
  confirmed: boolean;
  lastStep: number;
}

const aad = (userId: number) => `tmuxgate:totp:user:${userId}`;

/** TOTP secrets, sealed under the master key; the database alone never reveals one. */
export class TotpRepo {
  constructor(
    private readonly sql: Sql,
    private readonly keys: KeyProvider,
  ) {}

  /** Stores a new, unconfirmed secret (replacing any previous one). */
  async setPending(userId: number, secret: string, now: number): Promise<void> {
    const sealed = this.keys.seal(Buffer.from(secret, 'utf8'), aad(userId));
    await this.sql.run(
      `INSERT INTO totp_secrets (user_id, sealed, key_id, confirmed_at, last_step, created_at) VALUES (?, ?, ?, NULL, -1, ?)
         ON CONFLICT(user_id) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, confirmed_at = NULL, last_step = -1, created_at = excluded.created_at`,
      [userId, sealed, this.keys.keyId, now],
    );
  }

  /** Marks the secret confirmed and records the step that confirmed it (so that code is spent). */
  async confirm(userId: number, step: number, now: number): Promise<void> {
    await this.sql.run('UPDATE totp_secrets SET confirmed_at = ?, last_step = CASE WHEN last_step > ? THEN last_step ELSE ? END WHERE user_id = ?', [
      now,
      step,
      step,
      userId,
    ]);
  }

  async get(userId: number): Promise<TotpRecord | null> {
    const raw = await this.sql.get('SELECT * FROM totp_secrets WHERE user_id = ?', [userId]);
    if (!raw) return null;
    const r = TotpRow.parse(raw);
    const secret = this.keys.open(r.sealed, aad(userId), r.key_id).toString('utf8');
    return { userId, secret: new Secret(secret), confirmed: r.confirmed_at !== null, lastStep: r.last_step };
  }

  /**
   * Spends time step `step` for the user: true only if it is later than every step spent
   * before. One UPDATE, so two connections racing with the same code cannot both win.
   */
  async spendStep(userId: number, step: number): Promise<boolean> {
    return (await this.sql.run('UPDATE totp_secrets SET last_step = ? WHERE user_id = ? AND last_step < ?', [step, userId, step])) === 1;
  }

  /** Re-seals every secret under the provider's current key; returns how many changed. */
  async rewrapAll(keys: KeyProvider): Promise<number> {
    const rows = (await this.sql.all('SELECT user_id, sealed, key_id FROM totp_secrets')) as { user_id: number; sealed: Buffer; key_id: string }[];
    let n = 0;
    for (const r of rows) {
      if (r.key_id === keys.keyId) continue;
      const sealed = keys.seal(keys.open(r.sealed, aad(r.user_id), r.key_id), aad(r.user_id));
      await this.sql.run('UPDATE totp_secrets SET sealed = ?, key_id = ? WHERE user_id = ?', [sealed, keys.keyId, r.user_id]);
      n++;
    }
    return n;
  }

  async remove(userId: number): Promise<void> {
    await this.sql.run('DELETE FROM totp_secrets WHERE user_id = ?', [userId]);
  }

  /** Enrollment state without opening the secret: none, pending (not confirmed by a first code) or confirmed. */
  async state(userId: number): Promise<'none' | 'pending' | 'confirmed'> {
    const r = (await this.sql.get('SELECT confirmed_at FROM totp_secrets WHERE user_id = ?', [userId])) as { confirmed_at: number | null } | undefined;
    return !r ? 'none' : r.confirmed_at === null ? 'pending' : 'confirmed';
  }

  /** How many users have a confirmed secret. */
  async confirmedCount(): Promise<number> {
    return ((await this.sql.get('SELECT COUNT(*) AS n FROM totp_secrets WHERE confirmed_at IS NOT NULL')) as { n: number }).n;
  }

  /** Ids of the master keys the secrets are sealed under. */
  async keyIds(): Promise<string[]> {
    return ((await this.sql.all('SELECT DISTINCT key_id FROM totp_secrets')) as { key_id: string }[]).map((r) => r.key_id);
  }
}
