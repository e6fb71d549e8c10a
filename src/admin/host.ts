import type { AdminContext } from './context.js';
import type { RoleInput } from '../store/roles.js';
import { TgError } from '../errors.js';
import { Host } from '../host/host.js';
import { lookupAccount } from '../host/account.js';
import { silentLogger } from '../platform/logger.js';
import { addRole, editRole, removeRole } from './operations.js';

/** The host side of the admin CLI: the same privilege boundary the gateway uses. */
export function adminHost(a: AdminContext): Host {
  return new Host({ config: a.config, repo: a.hostAccounts, roles: a.roles, clock: a.clock, logger: silentLogger(), audit: a.audit });
}

/**
 * After role add/edit: the account the role runs as exists (a root CLI creates the role's own
 * unprivileged account when none was named) and can reach the socket root and home base.
 * Returns the account name, or null when the gateway will run it as itself (not root).
 */
export async function checkRoleAccount(a: AdminContext, roleName: string): Promise<string | null> {
  const role = await a.roles.get(roleName);
  if (role.kind !== 'shell') return null;
  if (role.runAs && !lookupAccount(role.runAs)) {
    throw new TgError('TG_ERR_ACCOUNT', `account ${role.runAs} does not exist; create it first (useradd --system ${role.runAs})`);
  }
  const host = adminHost(a);
  if (!host.root) return role.runAs;
  host.prepareDirs();
  const acct = await host.roleAccount(role);
  if (acct.uid !== 0) host.checkReach(acct);
  return acct.name;
}

/** Adds a role whose account can run it (see checkRoleAccount); a role that could not run is not left behind. */
export async function addRoleWithAccount(a: AdminContext, input: RoleInput): Promise<{ name: string; account: string | null }> {
  const r = await addRole(a, input);
  const account = await checkRoleAccount(a, r.name).catch(async (e: unknown) => {
    await removeRole(a, r.name, true);
    throw e;
  });
  return { name: r.name, account };
}

/** Edits a role; a new runAs is checked as at add, and when refused the role keeps the account it had. */
export async function editRoleWithAccount(a: AdminContext, name: string, e: Parameters<typeof editRole>[2]): Promise<void> {
  const before = await a.roles.get(name);
  await editRole(a, name, e);
  if (e.runAs === undefined) return;
  await checkRoleAccount(a, name).catch(async (err: unknown) => {
    await editRole(a, name, { runAs: before.runAs });
    throw err;
  });
}
