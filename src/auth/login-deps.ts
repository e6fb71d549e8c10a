import type { Clock } from '../platform/clock.js';
import type { Metrics } from '../platform/metrics.js';
import type { AuditSink } from '../audit/log.js';
import type { PreAuthAudit } from '../audit/preauth.js';
import type { User, UserRepo } from '../store/users.js';
import type { RoleRepo } from '../store/roles.js';
import type { KeyRepo } from '../store/keys.js';
import type { TotpRepo } from '../store/totp.js';
import type { RecoveryCodeRepo } from '../store/recovery-codes.js';
import type { Lockouts } from './lockout.js';
import type { KeyStepPort } from './key-step.js';
import { verifySignature } from './public-key.js';
import { TgError } from '../errors.js';

/**
 * What a LoginFlow reads and writes, and nothing more: the repositories of the login tables, the
 * lockout counter, the two audit paths, the login counters, the clock and two numbers of policy.
 * Built once by the composition root; LoginFlow checks it when it is constructed.
 */
export interface LoginFlowDeps {
  users: Pick<UserRepo, 'find' | 'list'>;
  roles: Pick<RoleRepo, 'find' | 'grantsOf'>;
  keys: Pick<KeyRepo, 'findForUser'>;
  totp: Pick<TotpRepo, 'get' | 'spendStep'>;
  recoveryCodes: Pick<RecoveryCodeRepo, 'spend' | 'remaining'>;
  lockouts: Pick<Lockouts, 'state' | 'sourceLock' | 'loginLocks' | 'recordSourceFailure' | 'recordFailure' | 'resetFailures'>;
  /** Every failure after a key proof, every success, lockouts and recovery codes. */
  audit: AuditSink;
  /** Failures before a key proof, summarised per address. */
  preauth: Pick<PreAuthAudit, 'record'>;
  metrics: Pick<Metrics, 'inc'>;
  clock: Clock;
  /** TOTP steps accepted either side of now (config auth.totp.window). */
  totpWindow: number;
  /** Failed attempts after which the connection ends, as sshd's MaxAuthTries (config ssh.maxAuthTries). */
  maxAuthTries: number;
  /** The publickey signature check; verifySignature (never SHA-1) unless a test replaces it. */
  verify?: KeyStepPort['verify'];
}

const missing = (what: string, detail?: string) => new TgError('TG_ERR_INTERNAL', `missing ${what}${detail ? ` (${detail})` : ''}`);

const REQUIRED = ['users', 'roles', 'keys', 'totp', 'recoveryCodes', 'lockouts', 'audit', 'preauth', 'metrics', 'clock'] as const;

/**
 * Checks the dependencies and fills in defaults (Teleport's CheckAndSetDefaults): a missing one
 * fails at construction with "missing X", not at the first login that needs it.
 */
export function checkLoginFlowDeps(d: LoginFlowDeps): Required<LoginFlowDeps> {
  for (const k of REQUIRED) if (!d[k]) throw missing(k);
  if (!Number.isInteger(d.totpWindow) || d.totpWindow < 0) throw missing('totpWindow', `a whole number of steps, got ${String(d.totpWindow)}`);
  if (!Number.isInteger(d.maxAuthTries) || d.maxAuthTries < 1) throw missing('maxAuthTries', `at least 1, got ${String(d.maxAuthTries)}`);
  return { ...d, verify: d.verify ?? verifySignature };
}

/** Decoy user names, per users repository (a gateway's store), picked once and kept. */
const decoys = new WeakMap<object, string>();

/**
 * A real user whose rows stand in for a login name that matched nobody (see key-step.ts). The
 * name is picked once per store (a user with grants, so a miss decodes grant rows as a hit does)
 * and kept; a removed decoy is replaced at the next miss.
 */
async function decoy(d: Pick<LoginFlowDeps, 'users' | 'roles'>): Promise<User | null> {
  const name = decoys.get(d.users);
  const found = name !== undefined ? await d.users.find(name) : null;
  if (found) return found;
  const users = await d.users.list();
  let picked = users[0]?.name;
  for (const u of users) {
    if ((await d.roles.grantsOf(u.id)).length > 0) {
      picked = u.name;
      break;
    }
  }
  if (picked === undefined) return null;
  decoys.set(d.users, picked);
  return d.users.find(picked);
}

/**
 * Picks the decoy before the first login (the gateway's start): picking lists users and their
 * grants, several round trips on a shared store, which the first login would otherwise wait for.
 */
export async function pickDecoy(d: Pick<LoginFlowDeps, 'users' | 'roles'>): Promise<void> {
  await decoy(d);
}

/** The publickey step's lookups over the login repositories. */
export function storeKeyPort(d: Required<LoginFlowDeps>): KeyStepPort {
  return {
    findUser: (name) => d.users.find(name),
    decoyUser: () => decoy(d),
    roleExists: async (name) => (await d.roles.find(name)) !== null,
    grantsOf: (id) => d.roles.grantsOf(id),
    findKey: (id, blob) => d.keys.findForUser(id, blob),
    verify: d.verify,
  };
}
