import { createHash, timingSafeEqual } from 'node:crypto';
import type { Sql } from './sql.js';
import { systemRandom, type Random } from '../platform/random.js';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I

/** A recovery code: 16 characters from 32 (80 bits), shown as XXXX-XXXX-XXXX-XXXX. */
export function newRecoveryCode(random: Random = systemRandom): string {
  const b = random.bytes(16);
  const s = [...b].map((x) => ALPHABET[x % 32]).join('');
  return s.match(/.{4}/g)!.join('-');
}

/** Codes are compared without dashes, spaces or case. */
export function normaliseRecoveryCode(s: string): string {
  return s.replace(/[\s-]/g, '').toUpperCase();
}

const hash = (salt: Buffer, code: string) => createHash('sha256').update(salt).update(normaliseRecoveryCode(code)).digest();

/** One-time recovery codes, stored salted and hashed only. */
export class RecoveryCodeRepo {
  constructor(
    private readonly sql: Sql,
    private readonly random: Random = systemRandom,
  ) {}

  /** Replaces a user's codes with `n` new ones; returns them (shown once). */
  async generate(userId: number, n: number, now: number): Promise<string[]> {
    await this.sql.run('DELETE FROM recovery_codes WHERE user_id = ?', [userId]);
    const codes: string[] = [];
    for (let i = 0; i < n; i++) {
      const code = newRecoveryCode(this.random);
      const salt = this.random.bytes(16);
      await this.sql.run('INSERT INTO recovery_codes (user_id, salt, code_hash, created_at) VALUES (?, ?, ?, ?)', [userId, salt, hash(salt, code), now]);
      codes.push(code);
    }
    return codes;
  }

  /** Spends a code if it is one of the user's unused ones; true exactly once per code. */
  async spend(userId: number, code: string, now: number): Promise<boolean> {
    if (!/^[A-Za-z0-9]{16}$/.test(normaliseRecoveryCode(code))) return false;
    const rows = (await this.sql.all('SELECT id, salt, code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL', [userId])) as {
      id: number;
      salt: Buffer;
      code_hash: Buffer;
    }[];
    for (const r of rows) {
      if (timingSafeEqual(hash(r.salt, code), r.code_hash)) {
        return (await this.sql.run('UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL', [now, r.id])) === 1;
      }
    }
    return false;
  }

  /** Names of live users holding at least one unused code. */
  async holders(): Promise<string[]> {
    const rows = (await this.sql.all(
      'SELECT DISTINCT u.name FROM recovery_codes r JOIN users u ON u.id = r.user_id WHERE r.used_at IS NULL AND u.removed_at IS NULL',
    )) as { name: string }[];
    return rows.map((r) => r.name);
  }

  async remaining(userId: number): Promise<number> {
    return ((await this.sql.get('SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL', [userId])) as { n: number }).n;
  }
}
