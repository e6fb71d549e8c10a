import { z } from 'zod';
import type { Sql } from './sql.js';
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
  constructor(private readonly sql: Sql) {}

  async add(name: string, defaultRoleId: number | null, now: number): Promise<User> {
    checkName('user', name);
    if (await this.find(name)) throw new TgError('TG_ERR_USER_EXISTS', `user ${name} already exists`);
    const { id } = (await this.sql.get('INSERT INTO users (name, default_role_id, created_at) VALUES (?, ?, ?) RETURNING id', [name, defaultRoleId, now])) as {
      id: number;
    };
    return (await this.byId(id))!;
  }

  async find(name: string): Promise<User | null> {
    const r = await this.sql.get('SELECT * FROM users WHERE name = ? AND removed_at IS NULL', [name]);
    return r ? toUser(r) : null;
  }

  /** The user, or TG_ERR_USER_NOT_FOUND. */
  async get(name: string): Promise<User> {
    const u = await this.find(name);
    if (!u) throw new TgError('TG_ERR_USER_NOT_FOUND', `no user named ${name}`);
    return u;
  }

  async byId(id: number): Promise<User | null> {
    const r = await this.sql.get('SELECT * FROM users WHERE id = ?', [id]);
    return r ? toUser(r) : null;
  }

  async list(): Promise<User[]> {
    return (await this.sql.all('SELECT * FROM users WHERE removed_at IS NULL ORDER BY name')).map(toUser);
  }

  async setDisabled(userId: number, disabled: boolean): Promise<void> {
    await this.sql.run('UPDATE users SET disabled = ? WHERE id = ?', [disabled ? 1 : 0, userId]);
  }

  /** Soft removal: the row stays (audit events and recordings name it), the name is freed. */
  async remove(userId: number, now: number): Promise<void> {
    await this.sql.transaction(async () => {
      await this.sql.run('UPDATE users SET removed_at = ?, disabled = 1 WHERE id = ?', [now, userId]);
      for (const table of ['grants', 'public_keys', 'totp_secrets', 'recovery_codes']) {
        await this.sql.run(`DELETE FROM ${table} WHERE user_id = ?`, [userId]);
      }
    });
  }

  async setDefaultRole(userId: number, roleId: number | null): Promise<void> {
    await this.sql.run('UPDATE users SET default_role_id = ? WHERE id = ?', [roleId, userId]);
  }

  /** Ids of users who may not log in any more: disabled or removed. */
  async lockedOutIds(): Promise<number[]> {
    return ((await this.sql.all('SELECT id FROM users WHERE disabled = 1 OR removed_at IS NOT NULL')) as { id: number }[]).map((r) => r.id);
  }
}
