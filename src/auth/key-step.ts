import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';
import { parseLoginName } from '../authz/login-name.js';
import { authorize, type AuthzDenial } from '../authz/decide.js';

/** What the publickey step reads and computes; the gateway passes its stores, tests pass counters. */
export interface KeyStepPort {
  findUser(name: string): Promise<User | null>;
  /**
   * Some real user, looked up the way findUser looks one up, and always alongside it: when a name
   * matches nobody, the grants and key lookups run for this user instead, so a miss reads and
   * decodes the same rows a hit does, in the same round trips. Its results never decide anything.
   */
  decoyUser(): Promise<User | null>;
  roleExists(name: string): Promise<boolean>;
  grantsOf(userId: number): Promise<Role[]>;
  findKey(userId: number, blob: Buffer): Promise<{ fingerprint: string } | null>;
  verify(blob: Buffer, signed: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean;
}

/** A publickey request: a query (no signature) or a signed attempt. */
export interface KeyOffer {
  blob: Buffer;
  signed?: Buffer | undefined;
  signature?: Buffer | undefined;
  hashAlgo?: string | undefined;
}

export type KeyRefusal = AuthzDenial | 'invalid-login-name' | 'unknown-key' | 'bad-signature' | 'sha1-signature-refused';

export type KeyStepResult =
  | { kind: 'proved'; user: User; role: Role; fingerprint: string }
  /** A query for a key that would do: PK_OK, no signature yet. `userId`: whose key (see KnownOwner). */
  | { kind: 'key-ok'; userId: number }
  | { kind: 'refused'; reason: KeyRefusal };

/** No user has this id: lookups still run when there is no user at all, and find nothing. */
const NO_USER = -1;

/**
 * The publickey step as one decision over injected lookups. Every path does the same work in
 * the same order, whether the user exists, the key is enrolled or the role is granted: the
 * user lookup, the grants lookup, the key lookup, and for a signed attempt a signature check
 * (against the offered key itself when no enrolled key matched, whose result is then ignored).
 * So the time a refusal takes does not tell an unknown user from a wrong key (issue 11, finding 4).
 * Only what the client itself chose (a `+role` suffix, a signature or not, the key type) changes
 * the work done.
 */
/**
 * Whose key a query on this connection found a moment ago (it answered key-ok for the same login
 * name and key). The signed attempt that follows then reads the user by name alongside that
 * user's grants and key, all in one round trip, instead of the user first and the rest after it.
 * Every row is read again and decides as before; if the name now resolves to another user (or
 * none), the step runs again the ordinary way. Only the client that asked can be sped up, and it
 * already knows the key would do: the shortcut tells it nothing.
 */
export interface KnownOwner {
  userId: number;
}

export async function publicKeyStep(port: KeyStepPort, login: string, offer: KeyOffer, known?: KnownOwner): Promise<KeyStepResult> {
  const parsed = parseLoginName(login);
  // The lookups that need nothing but the user run together: one round trip to a shared store.
  const role = parsed?.role;
  const lookups = (id: number) =>
    Promise.all([
      role != null ? port.roleExists(role).then((found) => !found) : Promise.resolve(false),
      port.grantsOf(id),
      port.findKey(id, offer.blob),
    ] as const);
  let user: User | null;
  let looked: Awaited<ReturnType<typeof lookups>>;
  const together = known ? await Promise.all([port.findUser(parsed?.user ?? ''), lookups(known.userId)]) : null;
  if (together && together[0]?.id === known!.userId) [user, looked] = together;
  else {
    // The decoy is read alongside the user, hit or miss: on a shared store a decoy read only
    // after a miss was one more round trip for an unknown name (measured on PostgreSQL: +0.4-0.6
    // ms at p50 under load), a timing oracle for user names.
    const [found, decoy] = await Promise.all([port.findUser(parsed?.user ?? ''), port.decoyUser()]);
    user = found;
    looked = await lookups((user ?? decoy)?.id ?? NO_USER);
  }
  const [roleMissing, granted, key] = looked;
  const signed = offer.signature && offer.signed ? port.verify(offer.blob, offer.signed, offer.signature, offer.hashAlgo) : null;

  if (!parsed) return { kind: 'refused', reason: 'invalid-login-name' };
  if (roleMissing) return { kind: 'refused', reason: user ? 'unknown-role' : 'unknown-user' };
  // From here on only `user` decides: the decoy's grants and keys are never used.
  const decision = authorize({ user, requested: parsed.role, granted: user ? granted : [] });
  if (!decision.ok || !user) return { kind: 'refused', reason: decision.ok ? 'unknown-user' : decision.reason };
  if (!key) return { kind: 'refused', reason: 'unknown-key' };
  if (signed === null) return { kind: 'key-ok', userId: user.id };
  if (!signed) return { kind: 'refused', reason: offer.hashAlgo === 'sha1' ? 'sha1-signature-refused' : 'bad-signature' };
  return { kind: 'proved', user, role: decision.role, fingerprint: key.fingerprint };
}
