import type { AdminContext } from './context.js';
import type { User } from '../store/users.js';
import type { Role, RoleInput } from '../store/roles.js';
import type { StoredKey } from '../store/keys.js';
import { parseAuthorizedKey } from '../auth/public-key.js';
import { checkTotp, newTotpSecret, totpUri } from '../auth/totp.js';
import { TgError } from '../errors.js';
import { checkName } from '../store/names.js';

/**
 * Admin operations: each is one transaction with its audit event inside it, so a failed
 * command leaves nothing half-written and every change is on the audit chain.
 */
function tx<T>(a: AdminContext, fn: () => T): T {
  return a.db.transaction(fn).immediate();
}

/** Adds a user, optionally with a default role (which is then also granted). */
export function addUser(a: AdminContext, name: string, roleName?: string): User {
  return tx(a, () => {
    checkName('user', name);
    const role = roleName ? a.roles.get(checkName('role', roleName)) : null;
    const user = a.users.add(name, role?.id ?? null, a.clock.now());
    if (role) a.roles.grant(user.id, role.id, a.clock.now());
    a.audit.emit(a.actor, { type: 'admin.change', action: 'user.add', target: name, detail: { defaultRole: role?.name ?? null } });
    return user;
  });
}

export interface UserSummary {
  name: string;
  disabled: boolean;
  defaultRole: string | null;
  roles: string[];
  keys: number;
  totp: 'none' | 'pending' | 'confirmed';
  createdAt: string;
}

/** Every live user with roles, key count and TOTP state. */
export function listUsers(a: AdminContext): UserSummary[] {
  return a.users.list().map((u) => {
    const t = a.db.prepare('SELECT confirmed_at FROM totp_secrets WHERE user_id = ?').get(u.id) as { confirmed_at: number | null } | undefined;
    return {
      name: u.name,
      disabled: u.disabled,
      defaultRole: u.defaultRoleId ? (a.roles.byId(u.defaultRoleId)?.name ?? null) : null,
      roles: a.roles.grantsOf(u.id).map((r) => r.name),
      keys: a.keys.listForUser(u.id).length,
      totp: !t ? 'none' : t.confirmed_at === null ? 'pending' : 'confirmed',
      createdAt: new Date(u.createdAt).toISOString(),
    };
  });
}

/** Enrolls one public key (an authorized_keys line) for a user. */
export function addKey(a: AdminContext, userName: string, line: string): StoredKey {
  const info = parseAuthorizedKey(line);
  return tx(a, () => {
    const user = a.users.get(userName);
    const k = a.keys.add(user.id, info, a.clock.now());
    a.audit.emit(a.actor, { type: 'admin.change', action: 'key.add', target: userName, detail: { fingerprint: k.fingerprint, type: k.key_type, comment: k.comment } });
    return k;
  });
}

/** Starts TOTP enrollment: a new pending secret that opens nothing until confirmed. */
export function enrollTotp(a: AdminContext, userName: string): { user: string; secret: string; uri: string } {
  return tx(a, () => {
    const user = a.users.get(userName);
    const secret = newTotpSecret();
    a.totp.setPending(user.id, secret, a.clock.now());
    a.audit.emit(a.actor, { type: 'totp.enroll', user: user.name, state: 'pending' });
    return { user: user.name, secret, uri: totpUri(a.config.auth.totp.issuer, user.name, secret) };
  });
}

/** Confirms a pending secret with a current code; that code is spent by confirming. */
export function confirmTotp(a: AdminContext, userName: string, code: string): void {
  tx(a, () => {
    const user = a.users.get(userName);
    const rec = a.totp.get(user.id);
    if (!rec) throw new TgError('TG_ERR_TOTP_NOT_ENROLLED', `user ${userName} has no TOTP secret; run: tmuxgate totp enroll ${userName}`);
    if (!/^\d{6}$/.test(code.trim())) throw new TgError('TG_ERR_INVALID_CODE', 'a verification code is six digits');
    const check = checkTotp(rec.secret.reveal(), code, a.clock.now(), a.config.auth.totp.window, rec.lastStep);
    if (!check.ok) throw new TgError('TG_ERR_TOTP_CODE_REJECTED', `code rejected (${check.reason}); check the authenticator's clock and try the next code`);
    a.totp.confirm(user.id, check.step, a.clock.now());
    a.audit.emit(a.actor, { type: 'totp.enroll', user: user.name, state: 'confirmed' });
  });
}

/** Adds a role. */
export function addRole(a: AdminContext, input: RoleInput): Role {
  return tx(a, () => {
    if (input.shell && !input.shell.startsWith('/')) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--shell must be an absolute path');
    const role = a.roles.add(input, a.clock.now());
    a.audit.emit(a.actor, { type: 'admin.change', action: 'role.add', target: role.name, detail: { kind: role.kind, runAs: role.runAs, shell: role.shell } });
    return role;
  });
}

/** Grants a role to a user; with `makeDefault`, it becomes their default role. */
export function grantRole(a: AdminContext, userName: string, roleName: string, makeDefault = false): void {
  tx(a, () => {
    const user = a.users.get(userName);
    const role = a.roles.get(roleName);
    a.roles.grant(user.id, role.id, a.clock.now());
    if (makeDefault || user.defaultRoleId === null) a.users.setDefaultRole(user.id, role.id);
    a.audit.emit(a.actor, { type: 'admin.change', action: 'role.grant', target: userName, detail: { role: roleName } });
  });
}
