import type { Logger } from '../platform/logger.js';
import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';
import { displayLogin, parseLoginName } from '../authz/login-name.js';
import { authorize, type AuthzDecision } from '../authz/decide.js';
import { nextStep, type AuthProgress } from './policy.js';
import { publicKeyStep, type KeyOffer, type KeyStepPort, type KnownOwner } from './key-step.js';
import type { LockState } from './lockout.js';
import { checkTotp } from './totp.js';
import { checkLoginFlowDeps, storeKeyPort, type LoginFlowDeps } from './login-deps.js';

export type { LoginFlowDeps } from './login-deps.js';

/** The methods a client is told it may continue with. */
export type AuthMethod = 'publickey' | 'keyboard-interactive';

/** Who logged in, once both factors are proven. */
export interface Identity {
  user: User;
  role: Role;
  /** 'publickey+totp' or 'publickey+recovery-code'. */
  method: string;
  keyFingerprint: string;
}

/**
 * The answer to one authentication request (Warpgate's `AuthResult`): the adapter applies it as
 * it stands and decides nothing itself.
 * - accepted: with an identity, both factors are proven (the client is logged in); without one,
 *   the answer to a key query is "this key would do" (PK_OK). Only a query gets that.
 * - need: continue with `methods` (`partial`: this request itself succeeded). With `prompt`, the
 *   keyboard-interactive request goes on: ask the client that prompt and pass the answer to answerCode.
 * - rejected: refused, audited and counted already; answer with `methods`, then end the connection
 *   if `endConnection`. `countsForLockout` says whether this attempt counted towards a lockout.
 */
export type Decision =
  | { kind: 'accepted'; identity: Identity | null }
  | { kind: 'need'; methods: AuthMethod[]; partial: boolean; prompt?: string }
  | { kind: 'rejected'; reason: string; methods: AuthMethod[]; partial: boolean; countsForLockout: boolean; endConnection: boolean };

/** A signed publickey attempt. */
export type SignedKeyOffer = KeyOffer & { signature: Buffer };

/** The connection a flow decides for. */
export interface LoginConnection {
  id: string;
  addr: string;
  /** The connection's logger (bound to its id and address). */
  log: Logger;
}

/** One request as the failure accounting sees it. */
interface Attempt {
  method: string;
  login: string;
  /** A publickey request without a signature: a question, not an attempt. */
  query: boolean;
}

interface FailOptions {
  /** Count towards lockouts: 'user' (only after a key proof) the user and the source, 'source' the source only. */
  count?: 'user' | 'source';
  endNow?: boolean;
  partial?: boolean;
  /** A refused key query: counts against the source once per connection. */
  query?: boolean;
  /** The caller has written its own audit row. */
  audited?: boolean;
}

const PROMPT = 'Verification code: ';

/** A promise started early and awaited later: its rejection is not unhandled meanwhile. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * The login policy of one connection, and the sole path that accepts a credential: a key, then
 * a TOTP code (or a one-time recovery code). It owns the lockouts, the one-time spend of a code,
 * the re-authorisation at the code step, and the audit rows and counters of every outcome.
 * Requests are decided one at a time, in the order they came.
 */
export class LoginFlow {
  private readonly d: Required<LoginFlowDeps>;
  private readonly keyPort: KeyStepPort;
  private progress: AuthProgress = { keyUser: null, keyLogin: null, totp: false };
  /** The key proof: whose key, which one, and the role it was for. */
  private proof: { user: User; role: Role; fingerprint: string } | null = null;
  private identity: Identity | null = null;
  private tries = 0;
  /** The last key query answered key-ok on this connection: its login name, key and the key's owner. */
  private queried: { login: string; blob: Buffer; owner: KnownOwner } | null = null;
  /** Whether a refused key query has already counted against the source on this connection. */
  private queryCounted = false;
  private noneSeen = false;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    deps: LoginFlowDeps,
    private readonly conn: LoginConnection,
  ) {
    this.d = checkLoginFlowDeps(deps);
    this.keyPort = storeKeyPort(this.d);
  }

  /** The "none" method: OpenSSH's opening question for the methods on offer. */
  none(login: string): Promise<Decision> {
    return this.serial(async () => {
      const attempt: Attempt = { method: 'none', login, query: false };
      const next = await this.next(attempt);
      if (next.kind !== 'need') return next;
      // OpenSSH always starts with "none" to learn the methods: not an attempt. Later ones
      // count against MaxAuthTries, as in sshd, or a client could ask forever.
      if (this.noneSeen) return this.fail(attempt, next.methods, displayLogin(login), 'none-repeated', { partial: next.partial });
      this.noneSeen = true;
      return next;
    });
  }

  /** A publickey query (no signature): would this key do? */
  offerKey(login: string, blob: Buffer): Promise<Decision> {
    return this.serial(() => this.key({ method: 'publickey', login, query: true }, { blob }));
  }

  /** A signed publickey attempt: the first factor. */
  verifyKey(login: string, offer: SignedKeyOffer): Promise<Decision> {
    return this.serial(() => this.key({ method: 'publickey', login, query: false }, offer));
  }

  /** A keyboard-interactive request: the code prompt, once a key is proven. */
  startCode(login: string): Promise<Decision> {
    return this.serial(async () => {
      const attempt: Attempt = { method: 'keyboard-interactive', login, query: false };
      const next = await this.next(attempt);
      if (next.kind !== 'need') return next;
      if (!this.proof) return this.fail(attempt, ['publickey'], displayLogin(login), 'totp-before-publickey', { count: 'source' });
      return { kind: 'need', methods: ['keyboard-interactive'], partial: true, prompt: PROMPT };
    });
  }

  /** The answer to the code prompt: a TOTP code, or a recovery code in its place. */
  answerCode(login: string, answer: string): Promise<Decision> {
    return this.serial(() => this.code(login, answer.slice(0, 64)));
  }

  /** Any other method (password, hostbased): refused, counted against the source. */
  otherMethod(login: string, method: string): Promise<Decision> {
    return this.serial(async () => {
      const attempt: Attempt = { method, login, query: false };
      const next = await this.next(attempt);
      if (next.kind !== 'need') return next;
      return this.fail(attempt, next.methods, displayLogin(login), `method-not-allowed:${method}`, { partial: next.partial, count: 'source' });
    });
  }

  /** The client left the code prompt unanswered (it started another request or went away). */
  codeAbandoned(): void {
    this.conn.log.info({ user: this.proof?.user.name ?? null }, 'client aborted the verification prompt');
  }

  /** Decides requests one at a time: state read by one is the state the previous one left. */
  private serial(fn: () => Promise<Decision>): Promise<Decision> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }

  /** What the policy says before any method: a changed login name ends the connection. */
  private async next(attempt: Attempt): Promise<Decision> {
    const verdict = nextStep(this.progress, attempt.login);
    if (verdict.kind === 'rejected') {
      return this.fail(attempt, ['publickey'], displayLogin(attempt.login), 'login-changed', { count: 'source', endNow: true });
    }
    if (verdict.kind === 'accepted') return { kind: 'accepted', identity: this.identity };
    return { kind: 'need', methods: verdict.methods, partial: verdict.partial };
  }

  private async key(attempt: Attempt, offer: KeyOffer): Promise<Decision> {
    const next = await this.next(attempt);
    if (next.kind !== 'need') return next;
    if (this.proof) return { kind: 'need', methods: ['keyboard-interactive'], partial: true };
    const who = displayLogin(attempt.login);
    const query = attempt.query;
    // A locked address or prefix is refused before any lookup or signature check, with the
    // answer a wrong key gets (no oracle). Attempts while locked do not extend the lock.
    // The signed attempt for the key a query on this connection just found is the exception:
    // its lookups (all of them again, see KnownOwner) go alongside the lock check, which still
    // decides first, so the usual login (query, then signature) waits for one round trip here, not three.
    const q = this.queried;
    const known = !query && q && q.login === attempt.login && q.blob.equals(offer.blob) ? q.owner : undefined;
    const [locked, early] = await Promise.all([
      this.d.lockouts.sourceLock(this.conn.addr),
      known ? publicKeyStep(this.keyPort, attempt.login, offer, known) : null,
    ]);
    if (locked) return this.fail(attempt, ['publickey'], who, 'address-locked', { query });
    const step = early ?? (await publicKeyStep(this.keyPort, attempt.login, offer));
    if (query) this.queried = step.kind === 'key-ok' ? { login: attempt.login, blob: Buffer.from(offer.blob), owner: { userId: step.userId } } : null;
    if (step.kind === 'refused') {
      // Unknown user, unknown or ungranted role, wrong key, bad signature: all the same answer,
      // all counted against the source address only, never against the user (a stranger who
      // holds a user's public key must not be able to lock the user out).
      return this.fail(attempt, ['publickey'], who, step.reason, { query, count: 'source' });
    }
    if (step.kind === 'key-ok') {
      // PK_OK ("this key would do") answers a query only; a signed attempt without the signed data proves nothing.
      return query ? { kind: 'accepted', identity: null } : this.fail(attempt, ['publickey'], who, 'bad-signature', { count: 'source' });
    }
    this.progress = { keyUser: step.user.name, keyLogin: attempt.login, totp: false };
    this.proof = { user: step.user, role: step.role, fingerprint: step.fingerprint };
    this.conn.log.info({ user: step.user.name, key: step.fingerprint }, 'public key accepted; asking for TOTP');
    return { kind: 'need', methods: ['keyboard-interactive'], partial: true };
  }

  private async code(login: string, code: string): Promise<Decision> {
    const attempt: Attempt = { method: 'keyboard-interactive', login, query: false };
    const next = await this.next(attempt);
    if (next.kind !== 'need') return next;
    const proof = this.proof;
    if (!proof) return this.fail(attempt, ['publickey'], displayLogin(login), 'totp-before-publickey', { count: 'source' });
    const { lockouts, totp, recoveryCodes, audit, clock } = this.d;
    const { addr, id: connId } = this.conn;
    const userName = proof.user.name;
    // The reads of this step start together (one round trip to a shared store, not four); each
    // is looked at, and its error thrown, where it was read one after the other before.
    const resolving = quiet(this.resolve(login, proof.user.id));
    const record = quiet(totp.get(proof.user.id));
    // A locked user or address gets the same answer as a wrong code: no oracle. The user's own
    // lock is checked only here, after the key proof: only the key's holder can have caused it.
    const { user: userLock, source: sourceLock } = await lockouts.loginLocks(userName, addr);
    if (userLock.locked || sourceLock) {
      const [subject, until] = userLock.locked ? (['user', userLock.until] as const) : (['address', sourceLock!.until] as const);
      await audit.emit(userName, { type: 'auth.locked', user: userName, addr, connId, subject, until });
      return this.fail(attempt, ['keyboard-interactive'], userName, 'locked', { audited: true });
    }
    // Fresh authorization: the user may have been disabled or lost the grant meanwhile.
    const { user, decision } = await resolving;
    if (!user || !decision.ok || user.id !== proof.user.id) {
      return this.fail(attempt, ['keyboard-interactive'], userName, decision.ok ? 'user-changed' : decision.reason, { endNow: true });
    }
    const rec = await record;
    if (!rec || !rec.confirmed) return this.fail(attempt, ['keyboard-interactive'], userName, 'totp-not-enrolled', { count: 'user' });
    const check = checkTotp(rec.secret.reveal(), code, clock.now(), this.d.totpWindow, rec.lastStep);
    let method = 'publickey+totp';
    if (!check.ok && check.reason === 'malformed' && (await recoveryCodes.spend(user.id, code, clock.now()))) {
      // A one-time recovery code in place of the TOTP code: spent now, audited every time.
      method = 'publickey+recovery-code';
      const remaining = await recoveryCodes.remaining(user.id);
      await audit.emit(userName, { type: 'auth.recovery-code', user: userName, addr, connId, remaining });
    } else if (!check.ok) {
      return this.fail(attempt, ['keyboard-interactive'], userName, `totp-${check.reason}`, { count: 'user' });
    } else if (!(await totp.spendStep(user.id, check.step))) {
      return this.fail(attempt, ['keyboard-interactive'], userName, 'totp-replayed', { count: 'user' });
    }
    this.progress = { ...this.progress, totp: true };
    this.identity = { user, role: decision.role, method, keyFingerprint: proof.fingerprint };
    // Access is granted only once the grant is on the record. The user's counted failures are
    // forgotten alongside; if that fails, they only bring a lockout sooner (logged, not fatal).
    await Promise.all([
      audit.emit(userName, { type: 'auth.success', user: userName, role: decision.role.name, addr, connId, method, keyFingerprint: proof.fingerprint }),
      lockouts
        .resetFailures('user', userName)
        .catch((e: unknown) => this.conn.log.warn({ err: e, user: userName }, "could not forget the user's failed attempts")),
    ]);
    this.d.metrics.inc('logins_total{result="success"}');
    this.conn.log.info({ user: userName, role: decision.role.name }, 'authenticated');
    return { kind: 'accepted', identity: this.identity };
  }

  /**
   * Resolves the login name to a user and an authorized role (or why not). The grants of
   * `provenId` (the user the key proved) are read alongside the user; a user by that name with
   * another id has its own read after. The same shape as publicKeyStep's KnownOwner re-check, kept
   * apart on purpose: that one runs before any proof, so a miss must cost what a hit costs (the
   * decoy user) and it reads the key; this one runs after the key proof and reads no key.
   */
  private async resolve(
    login: string,
    provenId: number,
  ): Promise<{ user: User | null; decision: AuthzDecision | { ok: false; reason: 'invalid-login-name' } }> {
    const parsed = parseLoginName(login);
    if (!parsed) return { user: null, decision: { ok: false, reason: 'invalid-login-name' } };
    const { users, roles } = this.d;
    const role = parsed.role;
    const [user, roleMissing, provenGrants] = await Promise.all([
      users.find(parsed.user),
      role !== null ? roles.find(role).then((r) => !r) : false,
      roles.grantsOf(provenId),
    ]);
    if (roleMissing) return { user, decision: { ok: false, reason: user ? 'unknown-role' : 'unknown-user' } };
    const granted = !user ? [] : user.id === provenId ? provenGrants : await roles.grantsOf(user.id);
    return { user, decision: authorize({ user, requested: parsed.role, granted }) };
  }

  /**
   * One failed attempt: audited, counted against MaxAuthTries (queries for unknown keys count,
   * as in sshd), counted towards lockouts as `count` says, then a plain rejection.
   * `count: 'user'` (only after a valid key proof) counts against the user and the source;
   * `count: 'source'` against the source address and its prefix only. A refused query (no
   * signature) counts against the source once per connection: OpenSSH offers each key it has
   * in turn, and a user with several keys must not lock out their own office.
   */
  private async fail(attempt: Attempt, methods: AuthMethod[], who: string, reason: string, o: FailOptions = {}): Promise<Decision> {
    const { audit, preauth, metrics, lockouts } = this.d;
    const { addr, id: connId, log } = this.conn;
    this.tries++;
    // Before a valid key proof the client is a stranger: its failures go into the per-address
    // summary (one row per address per interval), so a flood of probes cannot fill the disk.
    // After it, every failure is its own audit row.
    const proven = this.progress.keyUser !== null;
    if (!attempt.query) metrics.inc(`logins_total{result="${reason === 'locked' ? 'locked' : 'failure'}"}`);
    if (o.audited) {
      // already written by the caller
    } else if (proven) await audit.emit(who, { type: 'auth.failure', user: who, addr, connId, method: attempt.method, reason });
    else preauth.record(addr, `${attempt.method}:${reason}`, attempt.login);
    log[proven ? 'info' : 'debug']({ user: who, method: attempt.method, reason, tries: this.tries }, 'authentication failed');
    const countUser = o.count === 'user';
    const countSource = o.count !== undefined && !(o.query && this.queryCounted);
    if (countUser) await this.recordLockout('user', who);
    if (countSource) {
      if (o.query) this.queryCounted = true;
      for (const { subject, lock } of await lockouts.recordSourceFailure(addr)) {
        // A stranger's lockouts are counted in its summary too: an attacker with many addresses
        // (an IPv6 /48 is 65,536 /64s) must not get one row per address past the bound either.
        // The lockouts table keeps each one (`tmuxgate lockouts list`).
        if (proven) await this.lockStarted('address', subject, lock);
        else {
          preauth.record(addr, subject === addr ? 'lockout.start:address' : 'lockout.start:prefix');
          log.warn({ kind: 'address', subject, until: new Date(lock.until).toISOString(), level: lock.level }, 'locked out');
        }
      }
    }
    const exhausted = this.tries >= this.d.maxAuthTries;
    if (exhausted && proven) {
      await audit.emit(who, { type: 'connection.refused', addr, connId, user: who, reason: 'too many authentication failures' });
    } else if (exhausted) preauth.record(addr, 'refused:too many authentication failures');
    const endConnection = exhausted || !!o.endNow;
    return { kind: 'rejected', reason, methods, partial: o.partial ?? false, countsForLockout: countUser || countSource, endConnection };
  }

  private async recordLockout(kind: 'user' | 'address', subject: string): Promise<void> {
    const lock = await this.d.lockouts.recordFailure(kind, subject);
    if (lock) await this.lockStarted(kind, subject, lock);
  }

  private async lockStarted(kind: 'user' | 'address', subject: string, lock: LockState): Promise<void> {
    await this.d.audit.emit('gateway', { type: 'lockout.start', subjectKind: kind, subject, level: lock.level, until: lock.until });
    this.conn.log.warn({ kind, subject, until: new Date(lock.until).toISOString(), level: lock.level }, 'locked out');
  }
}
