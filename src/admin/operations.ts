import type { AdminContext } from './context.js';
import type { User } from '../store/users.js';
import type { Role, RoleInput } from '../store/roles.js';
import type { StoredKey } from '../store/keys.js';
import { FINGERPRINT_RE, parseAuthorizedKey } from '../auth/public-key.js';
import { parseLoginName } from '../authz/login-name.js';
import { checkTotp, newTotpSecret, totpUri } from '../auth/totp.js';
import { TgError } from '../errors.js';
import { checkName } from '../store/names.js';

/**
 * Admin operations: each is one transaction with its audit event inside it, so a failed
 * command leaves nothing half-written and every change is on the audit chain.
 */
function tx<T>(a: AdminContext, fn: () => T): T {
  return a.transaction(fn);
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
    return {
      name: u.name,
      disabled: u.disabled,
      defaultRole: u.defaultRoleId ? (a.roles.byId(u.defaultRoleId)?.name ?? null) : null,
      roles: a.roles.grantsOf(u.id).map((r) => r.name),
      keys: a.keys.listForUser(u.id).length,
      totp: a.totp.state(u.id),
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
    if ((input.kind === 'viewer') !== Boolean(input.viewOf)) throw new TgError('TG_ERR_INVALID_ARGUMENT', 'a viewer role needs --view-of USER+ROLE, and only a viewer role takes it');
    if (input.viewOf && !parseLoginName(input.viewOf)?.role) throw new TgError('TG_ERR_INVALID_ARGUMENT', `--view-of: expected USER+ROLE, got ${input.viewOf.slice(0, 40)}`);
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

/** Shows one user with roles, keys, TOTP and recovery-code state. */
export function showUser(a: AdminContext, name: string): UserSummary & { keyFingerprints: string[]; recoveryCodesLeft: number } {
  const u = a.users.get(name);
  const summary = listUsers(a).find((x) => x.name === u.name)!;
  return { ...summary, keyFingerprints: a.keys.listForUser(u.id).map((k) => k.fingerprint), recoveryCodesLeft: a.recoveryCodes.remaining(u.id) };
}

/** Disables or enables a user; a running gateway ends a disabled user's sessions within 2 s. */
export function setUserDisabled(a: AdminContext, name: string, disabled: boolean): void {
  tx(a, () => {
    const u = a.users.get(name);
    a.users.setDisabled(u.id, disabled);
    a.audit.emit(a.actor, { type: 'admin.change', action: disabled ? 'user.disable' : 'user.enable', target: name });
  });
}

/** Removes a user (soft: audit events and recordings keep naming them). */
export function removeUser(a: AdminContext, name: string): void {
  tx(a, () => {
    const u = a.users.get(name);
    a.users.remove(u.id, a.clock.now());
    a.audit.emit(a.actor, { type: 'admin.change', action: 'user.remove', target: name });
  });
}

/** Removes one of a user's keys by fingerprint. */
export function removeKey(a: AdminContext, userName: string, fingerprint: string): void {
  if (!FINGERPRINT_RE.test(fingerprint)) throw new TgError('TG_ERR_INVALID_KEY', `not a fingerprint: ${fingerprint.slice(0, 60)} (expected SHA256: and 43 base64 characters, as ssh-keygen -l prints)`);
  tx(a, () => {
    const u = a.users.get(userName);
    if (!a.keys.remove(u.id, fingerprint)) throw new TgError('TG_ERR_KEY_NOT_FOUND', `${userName} has no key ${fingerprint}`);
    a.audit.emit(a.actor, { type: 'admin.change', action: 'key.remove', target: userName, detail: { fingerprint } });
  });
}

/** Drops a user's TOTP secret: they cannot log in until enrolled again. */
export function resetTotp(a: AdminContext, userName: string): void {
  tx(a, () => {
    const u = a.users.get(userName);
    a.totp.remove(u.id);
    a.audit.emit(a.actor, { type: 'totp.enroll', user: u.name, state: 'reset' });
  });
}

/** New one-time recovery codes (replacing old ones); shown once, stored hashed. */
export function generateRecoveryCodes(a: AdminContext, userName: string, n = 10): string[] {
  return tx(a, () => {
    const u = a.users.get(userName);
    const codes = a.recoveryCodes.generate(u.id, n, a.clock.now());
    a.audit.emit(a.actor, { type: 'admin.change', action: 'recovery-codes.generate', target: userName, detail: { count: n } });
    return codes;
  });
}

/** Edits a role. */
export function editRole(a: AdminContext, name: string, e: Parameters<AdminContext['roles']['edit']>[1]): void {
  tx(a, () => {
    const r = a.roles.get(name);
    if (e.shell && !e.shell.startsWith('/')) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--shell must be an absolute path');
    a.roles.edit(r.id, e);
    a.audit.emit(a.actor, { type: 'admin.change', action: 'role.edit', target: name, detail: e as Record<string, unknown> });
  });
}

/** Removes a role; refused while it is granted unless `force`. */
export function removeRole(a: AdminContext, name: string, force: boolean): void {
  tx(a, () => {
    const r = a.roles.get(name);
    const n = a.roles.grantees(r.id).length;
    if (n > 0 && !force) throw new TgError('TG_ERR_ROLE_IN_USE', `role ${name} is granted to ${n} user(s); revoke it first or pass --force`);
    a.roles.remove(r.id);
    a.audit.emit(a.actor, { type: 'admin.change', action: 'role.remove', target: name, detail: { revokedFrom: n } });
  });
}

/** Revokes a role; a running gateway ends sessions that use it within 2 s. */
export function revokeRole(a: AdminContext, userName: string, roleName: string): void {
  tx(a, () => {
    const u = a.users.get(userName);
    const r = a.roles.get(roleName);
    if (!a.roles.revoke(u.id, r.id)) throw new TgError('TG_ERR_ROLE_NOT_FOUND', `${userName} does not have role ${roleName}`);
    a.audit.emit(a.actor, { type: 'admin.change', action: 'role.revoke', target: userName, detail: { role: roleName } });
  });
}

/** Asks the running gateway to end a live session, with a reason the user sees. */
export function killSession(a: AdminContext, sessionId: string, reason: string): void {
  tx(a, () => {
    const s = a.sessions.get(sessionId);
    if (!s || s.state !== 'live') throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no live session ${sessionId}; see: tmuxgate sessions list --live`);
    a.kills.request(sessionId, reason.slice(0, 200), a.actor, a.clock.now());
    a.audit.emit(a.actor, { type: 'admin.change', action: 'session.kill', target: sessionId, detail: { reason: reason.slice(0, 200), user: s.user_name } });
  });
}

/** Lifts a lockout of a user or address. */
export function clearLockout(a: AdminContext, kind: 'user' | 'address', subject: string): boolean {
  return tx(a, () => {
    const had = a.lockouts.clear(kind, subject);
    a.audit.emit(a.actor, { type: 'lockout.clear', subjectKind: kind, subject });
    return had;
  });
}
