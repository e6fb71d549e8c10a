import { z } from 'zod';
import type { Db } from './db.js';
import { TgError } from '../errors.js';
import { checkName } from './names.js';

const UserRow = z.object({
  id: z.number(),
  name: z.string(),
  default_role_id: z.number().nullable(),
  disabled: z.number(),
  created_at: z.number(),
  removed_at: z.number().nullable(),
});

export interface User {
  id: number;
  name: string;
  defaultRoleId: number | null;
  disabled: boolean;
  createdAt: number;
}

function toUser(raw: unknown): User {
  const r = UserRow.parse(raw);
  return { id: r.id, name: r.name, defaultRoleId: r.default_role_id, disabled: r.disabled === 1, createdAt: r.created_at };
}

/** Users (live ones: removal is soft so audit events and recordings keep their subject). */
export class UserRepo {
  constructor(private readonly db: Db) {}

  add(name: string, defaultRoleId: number | null, now: number): User {
    checkName('user', name);
    if (this.find(name)) throw new TgError('TG_ERR_USER_EXISTS', `user ${name} already exists`);
    const info = this.db
      .prepare('INSERT INTO users (name, default_role_id, created_at) VALUES (?, ?, ?)')
      .run(name, defaultRoleId, now);
    return this.byId(Number(info.lastInsertRowid))!;
  }

  find(name: string): User | null {
    const r = this.db.prepare('SELECT * FROM users WHERE name = ? AND removed_at IS NULL').get(name);
    return r ? toUser(r) : null;
  }

  /** The user, or TG_ERR_USER_NOT_FOUND. */
  get(name: string): User {
    const u = this.find(name);
    if (!u) throw new TgError('TG_ERR_USER_NOT_FOUND', `no user named ${name}`);
    return u;
  }

  byId(id: number): User | null {
    const r = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id);
    return r ? toUser(r) : null;
  }

  list(): User[] {
    return this.db.prepare('SELECT * FROM users WHERE removed_at IS NULL ORDER BY name').all().map(toUser);
  }

  setDisabled(userId: number, disabled: boolean): void {
    this.db.prepare('UPDATE users SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, userId);
  }

  /** Soft removal: the row stays (audit events and recordings name it), the name is freed. */
  remove(userId: number, now: number): void {
    this.db.prepare('UPDATE users SET removed_at = ?, disabled = 1 WHERE id = ?').run(now, userId);
    this.db.prepare('DELETE FROM grants WHERE user_id = ?').run(userId);
    this.db.prepare('DELETE FROM public_keys WHERE user_id = ?').run(userId);
    this.db.prepare('DELETE FROM totp_secrets WHERE user_id = ?').run(userId);
    this.db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
  }

  setDefaultRole(userId: number, roleId: number | null): void {
    this.db.prepare('UPDATE users SET default_role_id = ? WHERE id = ?').run(roleId, userId);
  }

  /** Ids of users who may not log in any more: disabled or removed. */
  lockedOutIds(): number[] {
    return (this.db.prepare('SELECT id FROM users WHERE disabled = 1 OR removed_at IS NOT NULL').all() as { id: number }[]).map((r) => r.id);
  }
}
