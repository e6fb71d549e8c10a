import { z } from 'zod';
import type { Sql } from './sql.js';
import { TgError } from '../errors.js';
import { checkName } from './names.js';

/**
 * A role's sandbox: the host filesystem read-only, a private /tmp and /var/tmp, its own PID
 * namespace; `readWritePaths` are bound back writable, `readOnlyPaths` stay read-only even inside
 * them, `hiddenPaths` are replaced by empty ones. The pair's home and socket directory are writable.
 */
export const SandboxSchema = z.strictObject({
  readOnlyPaths: z.array(z.string().startsWith('/')).max(64).default([]),
  readWritePaths: z.array(z.string().startsWith('/')).max(64).default([]),
  hiddenPaths: z.array(z.string().startsWith('/')).max(64).default([]),
});
export type SandboxSpec = z.infer<typeof SandboxSchema>;

const RoleRow = z.object({
  id: z.number(),
  name: z.string(),
  kind: z.enum(['shell', 'auditor', 'viewer']),
  run_as: z.string().nullable(),
  allow_root: z.number(),
  shell: z.string().nullable(),
  idle_timeout_ms: z.number().nullable(),
  max_session_ms: z.number().nullable(),
  record_input: z.number(),
  tmux_options: z.string(),
  created_at: z.number(),
  sandbox: z.string().nullable().optional(),
  idle_warning_ms: z.number().nullable().optional(),
  view_of: z.string().nullable().optional(),
  retention_ms: z.number().nullable().optional(),
});

export interface Role {
  id: number;
  name: string;
  kind: 'shell' | 'auditor' | 'viewer';
  /** For a viewer role: the session it shows, "<user>+<role>". */
  viewOf: string | null;
  runAs: string | null;
  allowRoot: boolean;
  shell: string | null;
  idleTimeoutMs: number | null;
  idleWarningMs: number | null;
  maxSessionMs: number | null;
  recordInput: boolean;
  tmuxOptions: Record<string, string>;
  createdAt: number;
  sandbox: SandboxSpec | null;
  /** How long its recordings are kept after they end; null (or absent): the config's recording.retention. */
  retentionMs?: number | null;
}

function toRole(raw: unknown): Role {
  const r = RoleRow.parse(raw);
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    viewOf: r.view_of ?? null,
    runAs: r.run_as,
    allowRoot: r.allow_root === 1,
    shell: r.shell,
    idleTimeoutMs: r.idle_timeout_ms,
    idleWarningMs: r.idle_warning_ms ?? null,
    maxSessionMs: r.max_session_ms,
    recordInput: r.record_input === 1,
    tmuxOptions: z.record(z.string(), z.string()).parse(JSON.parse(r.tmux_options)),
    createdAt: r.created_at,
    sandbox: r.sandbox ? SandboxSchema.parse(JSON.parse(r.sandbox)) : null,
    retentionMs: r.retention_ms ?? null,
  };
}

export interface RoleInput {
  name: string;
  kind?: 'shell' | 'auditor' | 'viewer';
  viewOf?: string | null;
  runAs?: string | null;
  shell?: string | null;
  idleTimeoutMs?: number | null;
  idleWarningMs?: number | null;
  maxSessionMs?: number | null;
  recordInput?: boolean;
  sandbox?: SandboxSpec | null;
  retentionMs?: number | null;
}

/** Roles and grants. */
export class RoleRepo {
  constructor(private readonly sql: Sql) {}

  /** Creates a role; the name must be free. */
  async add(input: RoleInput, now: number): Promise<Role> {
    checkName('role', input.name);
    if (await this.find(input.name)) throw new TgError('TG_ERR_ROLE_EXISTS', `role ${input.name} already exists`);
    const { id } = (await this.sql.get(
      'INSERT INTO roles (name, kind, view_of, run_as, shell, idle_timeout_ms, idle_warning_ms, max_session_ms, record_input, created_at, sandbox, ' +
        'retention_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [
        input.name,
        input.kind ?? 'shell',
        input.viewOf ?? null,
        input.runAs ?? null,
        input.shell ?? null,
        input.idleTimeoutMs ?? null,
        input.idleWarningMs ?? null,
        input.maxSessionMs ?? null,
        input.recordInput ? 1 : 0,
        now,
        input.sandbox ? JSON.stringify(SandboxSchema.parse(input.sandbox)) : null,
        input.retentionMs ?? null,
      ],
    )) as { id: number };
    return (await this.byId(id))!;
  }

  async find(name: string): Promise<Role | null> {
    const r = await this.sql.get('SELECT * FROM roles WHERE name = ?', [name]);
    return r ? toRole(r) : null;
  }

  /** The role, or TG_ERR_ROLE_NOT_FOUND. */
  async get(name: string): Promise<Role> {
    const r = await this.find(name);
    if (!r) throw new TgError('TG_ERR_ROLE_NOT_FOUND', `no role named ${name}`);
    return r;
  }

  async byId(id: number): Promise<Role | null> {
    const r = await this.sql.get('SELECT * FROM roles WHERE id = ?', [id]);
    return r ? toRole(r) : null;
  }

  async list(): Promise<Role[]> {
    return (await this.sql.all('SELECT * FROM roles ORDER BY name')).map(toRole);
  }

  /** Grants `roleId` to `userId`; idempotence is refused so scripts notice double grants. */
  async grant(userId: number, roleId: number, now: number): Promise<void> {
    const r = await this.sql.run('INSERT INTO grants (user_id, role_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [userId, roleId, now]);
    if (r === 0) throw new TgError('TG_ERR_GRANT_EXISTS', 'that role is already granted to that user');
  }

  /** Changes the given fields of a role. */
  async edit(
    roleId: number,
    e: Partial<Omit<RoleInput, 'name' | 'kind'>> & { allowRoot?: boolean; tmuxOptions?: Record<string, string>; sandbox?: SandboxSpec | null },
  ): Promise<void> {
    const cols: Record<string, unknown> = {};
    if (e.runAs !== undefined) cols.run_as = e.runAs;
    if (e.shell !== undefined) cols.shell = e.shell;
    if (e.idleTimeoutMs !== undefined) cols.idle_timeout_ms = e.idleTimeoutMs;
    if (e.idleWarningMs !== undefined) cols.idle_warning_ms = e.idleWarningMs;
    if (e.maxSessionMs !== undefined) cols.max_session_ms = e.maxSessionMs;
    if (e.recordInput !== undefined) cols.record_input = e.recordInput ? 1 : 0;
    if (e.allowRoot !== undefined) cols.allow_root = e.allowRoot ? 1 : 0;
    if (e.tmuxOptions !== undefined) cols.tmux_options = JSON.stringify(e.tmuxOptions);
    if (e.retentionMs !== undefined) cols.retention_ms = e.retentionMs;
    if (e.sandbox !== undefined) cols.sandbox = e.sandbox === null ? null : JSON.stringify(SandboxSchema.parse(e.sandbox));
    const keys = Object.keys(cols);
    if (keys.length === 0) return;
    await this.sql.run(`UPDATE roles SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`, [...keys.map((k) => cols[k] as never), roleId]);
  }

  /** Users the role is granted to. */
  async grantees(roleId: number): Promise<number[]> {
    return ((await this.sql.all('SELECT user_id FROM grants WHERE role_id = ?', [roleId])) as { user_id: number }[]).map((r) => r.user_id);
  }

  async revoke(userId: number, roleId: number): Promise<boolean> {
    return this.sql.transaction(async () => {
      const n = await this.sql.run('DELETE FROM grants WHERE user_id = ? AND role_id = ?', [userId, roleId]);
      await this.sql.run('UPDATE users SET default_role_id = NULL WHERE id = ? AND default_role_id = ?', [userId, roleId]);
      return n === 1;
    });
  }

  /** Deletes a role and its grants. */
  async remove(roleId: number): Promise<void> {
    await this.sql.transaction(async () => {
      await this.sql.run('UPDATE users SET default_role_id = NULL WHERE default_role_id = ?', [roleId]);
      await this.sql.run('DELETE FROM grants WHERE role_id = ?', [roleId]);
      await this.sql.run('DELETE FROM roles WHERE id = ?', [roleId]);
    });
  }

  /** Every grant, as (user, role) id pairs. */
  async allGrants(): Promise<{ userId: number; roleId: number }[]> {
    const rows = (await this.sql.all('SELECT user_id, role_id FROM grants')) as { user_id: number; role_id: number }[];
    return rows.map((r) => ({ userId: r.user_id, roleId: r.role_id }));
  }

  async isGranted(userId: number, roleId: number): Promise<boolean> {
    return (await this.sql.get('SELECT 1 FROM grants WHERE user_id = ? AND role_id = ?', [userId, roleId])) !== undefined;
  }

  /** Role names granted to a user. */
  async grantsOf(userId: number): Promise<Role[]> {
    return (await this.sql.all('SELECT r.* FROM roles r JOIN grants g ON g.role_id = r.id WHERE g.user_id = ? ORDER BY r.name', [userId])).map(toRole);
  }
}
