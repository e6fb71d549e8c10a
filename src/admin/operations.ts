import type { AdminContext } from './context.js';
import type { User } from '../store/users.js';
import type { Role, RoleInput } from '../store/roles.js';
import type { StoredKey } from '../store/keys.js';
import { FINGERPRINT_RE, parseAuthorizedKey } from '../auth/public-key.js';
import { parseLoginName } from '../authz/login-name.js';
import { checkTotp, newTotpSecret, totpUri } from '../auth/totp.js';
import { TgError } from '../errors.js';
import { checkName } from '../store/names.js';
import { checkTmuxOptions } from '../host/tmux.js';

/**
 * Admin operations: each is one transaction with its audit event inside it, so a failed
 * command leaves nothing half-written and every change is on the audit chain.
 */
function tx<T>(a: AdminContext, fn: () => Promise<T>): Promise<T> {
  return a.transaction(fn);
}

/** Adds a user, optionally with a default role (which is then also granted). */
export async function addUser(a: AdminContext, name: string, roleName?: string): Promise<User> {
  return tx(a, async () => {
    checkName('user', name);
    const role = roleName ? await a.roles.get(checkName('role', roleName)) : null;
    const user = await a.users.add(name, role?.id ?? null, a.clock.now());
    if (role) await a.roles.grant(user.id, role.id, a.clock.now());
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'user.add', target: name, detail: { defaultRole: role?.name ?? null } });
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
export async function listUsers(a: AdminContext): Promise<UserSummary[]> {
  const out: UserSummary[] = [];
  for (const u of await a.users.list()) {
    out.push({
      name: u.name,
      disabled: u.disabled,
      defaultRole: u.defaultRoleId ? ((await a.roles.byId(u.defaultRoleId))?.name ?? null) : null,
      roles: (await a.roles.grantsOf(u.id)).map((r) => r.name),
      keys: (await a.keys.listForUser(u.id)).length,
      totp: await a.totp.state(u.id),
      createdAt: new Date(u.createdAt).toISOString(),
    });
  }
  return out;
}

/** Enrolls one public key (an authorized_keys line) for a user. */
export async function addKey(a: AdminContext, userName: string, line: string): Promise<StoredKey> {
  const info = parseAuthorizedKey(line);
  return tx(a, async () => {
    const user = await a.users.get(userName);
    const k = await a.keys.add(user.id, info, a.clock.now());
    const detail = { fingerprint: k.fingerprint, type: k.key_type, comment: k.comment };
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'key.add', target: userName, detail });
    return k;
  });
}

/** Starts TOTP enrollment: a new pending secret that opens nothing until confirmed. */
export async function enrollTotp(a: AdminContext, userName: string): Promise<{ user: string; secret: string; uri: string }> {
  return tx(a, async () => {
    const user = await a.users.get(userName);
    const secret = newTotpSecret();
    await a.totp.setPending(user.id, secret, a.clock.now());
    await a.audit.emit(a.actor, { type: 'totp.enroll', user: user.name, state: 'pending' });
    return { user: user.name, secret, uri: totpUri(a.config.auth.totp.issuer, user.name, secret) };
  });
}

/** Confirms a pending secret with a current code; that code is spent by confirming. */
export async function confirmTotp(a: AdminContext, userName: string, code: string): Promise<void> {
  await tx(a, async () => {
    const user = await a.users.get(userName);
    const rec = await a.totp.get(user.id);
    if (!rec) throw new TgError('TG_ERR_TOTP_NOT_ENROLLED', `user ${userName} has no TOTP secret; run: tmuxgate totp enroll ${userName}`);
    if (!/^\d{6}$/.test(code.trim())) throw new TgError('TG_ERR_INVALID_CODE', 'a verification code is six digits');
    const check = checkTotp(rec.secret.reveal(), code, a.clock.now(), a.config.auth.totp.window, rec.lastStep);
    if (!check.ok) throw new TgError('TG_ERR_TOTP_CODE_REJECTED', `code rejected (${check.reason}); check the authenticator's clock and try the next code`);
    await a.totp.confirm(user.id, check.step, a.clock.now());
    await a.audit.emit(a.actor, { type: 'totp.enroll', user: user.name, state: 'confirmed' });
  });
}

/** Adds a role. */
export async function addRole(a: AdminContext, input: RoleInput): Promise<Role> {
  return tx(a, async () => {
    if (input.shell && !input.shell.startsWith('/')) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--shell must be an absolute path');
    if ((input.kind === 'viewer') !== Boolean(input.viewOf))
      throw new TgError('TG_ERR_INVALID_ARGUMENT', 'a viewer role needs --view-of USER+ROLE, and only a viewer role takes it');
    if (input.viewOf && !parseLoginName(input.viewOf)?.role)
      throw new TgError('TG_ERR_INVALID_ARGUMENT', `--view-of: expected USER+ROLE, got ${input.viewOf.slice(0, 40)}`);
    const role = await a.roles.add(input, a.clock.now());
    const detail = { kind: role.kind, runAs: role.runAs, shell: role.shell, retentionMs: role.retentionMs };
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'role.add', target: role.name, detail });
    return role;
  });
}

/** Grants a role to a user; with `makeDefault`, it becomes their default role. */
export async function grantRole(a: AdminContext, userName: string, roleName: string, makeDefault = false): Promise<void> {
  await tx(a, async () => {
    const user = await a.users.get(userName);
    const role = await a.roles.get(roleName);
    await a.roles.grant(user.id, role.id, a.clock.now());
    if (makeDefault || user.defaultRoleId === null) await a.users.setDefaultRole(user.id, role.id);
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'role.grant', target: userName, detail: { role: roleName } });
  });
}

/** Shows one user with roles, keys, TOTP and recovery-code state. */
export async function showUser(a: AdminContext, name: string): Promise<UserSummary & { keyFingerprints: string[]; recoveryCodesLeft: number }> {
  const u = await a.users.get(name);
  const summary = (await listUsers(a)).find((x) => x.name === u.name)!;
  return { ...summary, keyFingerprints: (await a.keys.listForUser(u.id)).map((k) => k.fingerprint), recoveryCodesLeft: await a.recoveryCodes.remaining(u.id) };
}

/** Disables or enables a user; a running gateway ends a disabled user's sessions within 2 s. */
export async function setUserDisabled(a: AdminContext, name: string, disabled: boolean): Promise<void> {
  await tx(a, async () => {
    const u = await a.users.get(name);
    await a.users.setDisabled(u.id, disabled);
    await a.audit.emit(a.actor, { type: 'admin.change', action: disabled ? 'user.disable' : 'user.enable', target: name });
  });
}

/** Removes a user (soft: audit events and recordings keep naming them). */
export async function removeUser(a: AdminContext, name: string): Promise<void> {
  await tx(a, async () => {
    const u = await a.users.get(name);
    await a.users.remove(u.id, a.clock.now());
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'user.remove', target: name });
  });
}

/** Removes one of a user's keys by fingerprint. */
export async function removeKey(a: AdminContext, userName: string, fingerprint: string): Promise<void> {
  if (!FINGERPRINT_RE.test(fingerprint))
    throw new TgError(
      'TG_ERR_INVALID_KEY',
      `not a fingerprint: ${fingerprint.slice(0, 60)} (expected SHA256: and 43 base64 characters, as ssh-keygen -l prints)`,
    );
  await tx(a, async () => {
    const u = await a.users.get(userName);
    if (!(await a.keys.remove(u.id, fingerprint))) throw new TgError('TG_ERR_KEY_NOT_FOUND', `${userName} has no key ${fingerprint}`);
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'key.remove', target: userName, detail: { fingerprint } });
  });
}

/** Drops a user's TOTP secret: they cannot log in until enrolled again. */
export async function resetTotp(a: AdminContext, userName: string): Promise<void> {
  await tx(a, async () => {
    const u = await a.users.get(userName);
    await a.totp.remove(u.id);
    await a.audit.emit(a.actor, { type: 'totp.enroll', user: u.name, state: 'reset' });
  });
}

/** New one-time recovery codes (replacing old ones); shown once, stored hashed. */
export async function generateRecoveryCodes(a: AdminContext, userName: string, n = 10): Promise<string[]> {
  return tx(a, async () => {
    const u = await a.users.get(userName);
    const codes = await a.recoveryCodes.generate(u.id, n, a.clock.now());
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'recovery-codes.generate', target: userName, detail: { count: n } });
    return codes;
  });
}

/** Edits a role; its tmux options must be on the allow-list. */
export async function editRole(a: AdminContext, name: string, e: Parameters<AdminContext['roles']['edit']>[1]): Promise<void> {
  const badOption = e.tmuxOptions ? checkTmuxOptions(e.tmuxOptions) : null;
  if (badOption) throw new TgError('TG_ERR_INVALID_ARGUMENT', badOption);
  await tx(a, async () => {
    const r = await a.roles.get(name);
    if (e.shell && !e.shell.startsWith('/')) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--shell must be an absolute path');
    await a.roles.edit(r.id, e);
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'role.edit', target: name, detail: e as Record<string, unknown> });
  });
}

/** Removes a role; refused while it is granted unless `force`. */
export async function removeRole(a: AdminContext, name: string, force: boolean): Promise<void> {
  await tx(a, async () => {
    const r = await a.roles.get(name);
    const n = (await a.roles.grantees(r.id)).length;
    if (n > 0 && !force) throw new TgError('TG_ERR_ROLE_IN_USE', `role ${name} is granted to ${n} user(s); revoke it first or pass --force`);
    await a.roles.remove(r.id);
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'role.remove', target: name, detail: { revokedFrom: n } });
  });
}

/** Revokes a role; a running gateway ends sessions that use it within 2 s. */
export async function revokeRole(a: AdminContext, userName: string, roleName: string): Promise<void> {
  await tx(a, async () => {
    const u = await a.users.get(userName);
    const r = await a.roles.get(roleName);
    if (!(await a.roles.revoke(u.id, r.id))) throw new TgError('TG_ERR_ROLE_NOT_FOUND', `${userName} does not have role ${roleName}`);
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'role.revoke', target: userName, detail: { role: roleName } });
  });
}

/** Asks the running gateway to end a live session, with a reason the user sees. */
export async function killSession(a: AdminContext, sessionId: string, reason: string): Promise<void> {
  await tx(a, async () => {
    const s = await a.sessions.get(sessionId);
    if (!s || s.state !== 'live') throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no live session ${sessionId}; see: tmuxgate sessions list --live`);
    await a.kills.request(sessionId, reason.slice(0, 200), a.actor, a.clock.now());
    const detail = { reason: reason.slice(0, 200), user: s.user_name };
    await a.audit.emit(a.actor, { type: 'admin.change', action: 'session.kill', target: sessionId, detail });
  });
}

/** Lifts a lockout of a user or address. */
export async function clearLockout(a: AdminContext, kind: 'user' | 'address', subject: string): Promise<boolean> {
  return tx(a, async () => {
    const had = await a.lockouts.clear(kind, subject);
    await a.audit.emit(a.actor, { type: 'lockout.clear', subjectKind: kind, subject });
    return had;
  });
}
