import { z } from 'zod';
import type { Db } from './db.js';
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
}

/** Roles and grants. */
export class RoleRepo {
  constructor(private readonly db: Db) {}

  /** Creates a role; the name must be free. */
  add(input: RoleInput, now: number): Role {
    checkName('role', input.name);
    if (this.find(input.name)) throw new TgError('TG_ERR_ROLE_EXISTS', `role ${input.name} already exists`);
    const info = this.db
      .prepare('INSERT INTO roles (name, kind, view_of, run_as, shell, idle_timeout_ms, idle_warning_ms, max_session_ms, record_input, created_at, sandbox) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(input.name, input.kind ?? 'shell', input.viewOf ?? null, input.runAs ?? null, input.shell ?? null, input.idleTimeoutMs ?? null, input.idleWarningMs ?? null, input.maxSessionMs ?? null, input.recordInput ? 1 : 0, now, input.sandbox ? JSON.stringify(SandboxSchema.parse(input.sandbox)) : null);
    return this.byId(Number(info.lastInsertRowid))!;
  }

  find(name: string): Role | null {
    const r = this.db.prepare('SELECT * FROM roles WHERE name = ?').get(name);
    return r ? toRole(r) : null;
  }

  /** The role, or TG_ERR_ROLE_NOT_FOUND. */
  get(name: string): Role {
    const r = this.find(name);
    if (!r) throw new TgError('TG_ERR_ROLE_NOT_FOUND', `no role named ${name}`);
    return r;
  }

  byId(id: number): Role | null {
    const r = this.db.prepare('SELECT * FROM roles WHERE id = ?').get(id);
    return r ? toRole(r) : null;
  }

  list(): Role[] {
    return this.db.prepare('SELECT * FROM roles ORDER BY name').all().map(toRole);
  }

  /** Grants `roleId` to `userId`; idempotence is refused so scripts notice double grants. */
  grant(userId: number, roleId: number, now: number): void {
    const r = this.db.prepare('INSERT OR IGNORE INTO grants (user_id, role_id, created_at) VALUES (?, ?, ?)').run(userId, roleId, now);
    if (r.changes === 0) throw new TgError('TG_ERR_GRANT_EXISTS', 'that role is already granted to that user');
  }

  /** Changes the given fields of a role. */
  edit(roleId: number, e: Partial<Omit<RoleInput, 'name' | 'kind'>> & { allowRoot?: boolean; tmuxOptions?: Record<string, string>; sandbox?: SandboxSpec | null }): void {
    const cols: Record<string, unknown> = {};
    if (e.runAs !== undefined) cols.run_as = e.runAs;
    if (e.shell !== undefined) cols.shell = e.shell;
    if (e.idleTimeoutMs !== undefined) cols.idle_timeout_ms = e.idleTimeoutMs;
    if (e.idleWarningMs !== undefined) cols.idle_warning_ms = e.idleWarningMs;
    if (e.maxSessionMs !== undefined) cols.max_session_ms = e.maxSessionMs;
    if (e.recordInput !== undefined) cols.record_input = e.recordInput ? 1 : 0;
    if (e.allowRoot !== undefined) cols.allow_root = e.allowRoot ? 1 : 0;
    if (e.tmuxOptions !== undefined) cols.tmux_options = JSON.stringify(e.tmuxOptions);
    if (e.sandbox !== undefined) cols.sandbox = e.sandbox === null ? null : JSON.stringify(SandboxSchema.parse(e.sandbox));
    const keys = Object.keys(cols);
    if (keys.length === 0) return;
    this.db.prepare(`UPDATE roles SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`).run(...keys.map((k) => cols[k] as never), roleId);
  }

  /** Users the role is granted to. */
  grantees(roleId: number): number[] {
    return (this.db.prepare('SELECT user_id FROM grants WHERE role_id = ?').all(roleId) as { user_id: number }[]).map((r) => r.user_id);
  }

  revoke(userId: number, roleId: number): boolean {
    const n = this.db.prepare('DELETE FROM grants WHERE user_id = ? AND role_id = ?').run(userId, roleId).changes;
    this.db.prepare('UPDATE users SET default_role_id = NULL WHERE id = ? AND default_role_id = ?').run(userId, roleId);
    return n === 1;
  }

  /** Deletes a role and its grants. */
  remove(roleId: number): void {
    this.db.prepare('UPDATE users SET default_role_id = NULL WHERE default_role_id = ?').run(roleId);
    this.db.prepare('DELETE FROM grants WHERE role_id = ?').run(roleId);
    this.db.prepare('DELETE FROM roles WHERE id = ?').run(roleId);
  }

  /** Every grant, as (user, role) id pairs. */
  allGrants(): { userId: number; roleId: number }[] {
    const rows = this.db.prepare('SELECT user_id, role_id FROM grants').all() as { user_id: number; role_id: number }[];
    return rows.map((r) => ({ userId: r.user_id, roleId: r.role_id }));
  }

  isGranted(userId: number, roleId: number): boolean {
    return this.db.prepare('SELECT 1 FROM grants WHERE user_id = ? AND role_id = ?').get(userId, roleId) !== undefined;
  }

  /** Role names granted to a user. */
  grantsOf(userId: number): Role[] {
    return this.db
      .prepare('SELECT r.* FROM roles r JOIN grants g ON g.role_id = r.id WHERE g.user_id = ? ORDER BY r.name')
      .all(userId)
      .map(toRole);
  }
}
