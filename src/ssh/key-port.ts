import type { GatewayContext } from '../gateway-context.js';
import type { KeyStepPort } from '../auth/key-step.js';
import { verifySignature } from '../auth/public-key.js';
import type { User } from '../store/users.js';

let decoyName: string | null = null;

/**
 * A real user whose rows stand in for a login name that matched nobody (see auth/key-step.ts).
 * The name is picked once (a user with grants, so a miss decodes grant rows as a hit does) and
 * kept; a removed decoy is replaced at the next miss.
 */
function decoy(ctx: GatewayContext): User | null {
  const found = decoyName !== null ? ctx.users.find(decoyName) : null;
  if (found) return found;
  const users = ctx.users.list();
  decoyName = (users.find((u) => ctx.roles.grantsOf(u.id).length > 0) ?? users[0])?.name ?? null;
  return decoyName !== null ? ctx.users.find(decoyName) : null;
}

/** The publickey step's lookups over the gateway's stores. */
export function keyStepPort(ctx: GatewayContext): KeyStepPort {
  return {
    findUser: (name) => ctx.users.find(name),
    decoyUser: () => decoy(ctx),
    roleExists: (name) => ctx.roles.find(name) !== null,
    grantsOf: (id) => ctx.roles.grantsOf(id),
    findKey: (id, blob) => ctx.keys.findForUser(id, blob),
    verify: verifySignature,
  };
}
