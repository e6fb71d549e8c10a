import type { Clock } from '../platform/clock.js';
import type { LockoutRepo, LockoutRow, SubjectKind } from '../store/lockouts.js';
import { addressPrefix } from './address-prefix.js';

export type { LockoutRow, SubjectKind } from '../store/lockouts.js';

export interface LockoutPolicy {
  maxFailures: number;
  window: number;
  baseDuration: number;
  maxDuration: number;
}

export interface LockState {
  locked: boolean;
  until: number;
  level: number;
}

/** Lock duration for the n-th lockout: doubles each time, capped. */
export function lockDuration(policy: LockoutPolicy, level: number): number {
  return Math.min(policy.maxDuration, policy.baseDuration * 2 ** Math.max(0, level - 1));
}

/** Policies per subject kind; `prefix` (IPv4 /24, IPv6 /64) defaults to the address policy. */
export interface LockoutPolicies {
  user: LockoutPolicy;
  address: LockoutPolicy;
  prefix?: LockoutPolicy;
}

/** Whether an 'address' subject is a network prefix ("192.0.2.0/24") rather than one address. */
const isPrefix = (subject: string) => subject.includes('/');

/**
 * Failure counting and lockouts per user and per source address and its prefix, kept in the store so they hold
 * across restarts and `tmuxgate lockouts clear` reaches a running gateway.
 * A lockout consumes the failures that caused it; its level (and so its length) grows with each
 * further lockout and falls back to zero once the subject has been quiet for maxDuration.
 * A prefix is stored as an 'address' subject in CIDR notation ("192.0.2.0/24"), so
 * `tmuxgate lockouts clear 192.0.2.0/24 --address` lifts it, with no schema change.
 */
export class Lockouts {
  constructor(
    private readonly repo: LockoutRepo,
    private readonly clock: Clock,
    private readonly policies: LockoutPolicies,
  ) {}

  private policyFor(kind: SubjectKind, subject: string): LockoutPolicy {
    if (kind === 'address' && isPrefix(subject)) return this.policies.prefix ?? this.policies.address;
    return this.policies[kind];
  }

  /**
   * The lock in force on a source address or its prefix, or null. Checked at every step of
   * authentication, before any signature is verified.
   */
  async sourceLock(addr: string): Promise<{ subject: string; until: number } | null> {
    return (await this.loginLocks(null, addr)).source;
  }

  /**
   * The locks a login step checks, read in one statement: the user's (if named) and the first of
   * the source address's and its prefix's that is in force.
   */
  async loginLocks(user: string | null, addr: string): Promise<{ user: LockState; source: { subject: string; until: number } | null }> {
    const sources = [addr, addressPrefix(addr)];
    const subjects = [
      ...(user === null ? [] : [{ kind: 'user' as const, subject: user }]),
      ...sources.map((subject) => ({ kind: 'address' as const, subject })),
    ];
    const states = (await this.repo.getAll(subjects)).map((r) => this.stateOf(r));
    const sourceStates = user === null ? states : states.slice(1);
    const i = sourceStates.findIndex((s) => s.locked);
    return { user: user === null ? this.stateOf(null) : states[0]!, source: i < 0 ? null : { subject: sources[i]!, until: sourceStates[i]!.until } };
  }

  /** Counts one failure against a source address and its prefix; returns the locks it starts. */
  async recordSourceFailure(addr: string): Promise<{ subject: string; lock: LockState }[]> {
    const started: { subject: string; lock: LockState }[] = [];
    for (const subject of [addr, addressPrefix(addr)]) {
      const lock = await this.recordFailure('address', subject);
      if (lock) started.push({ subject, lock });
    }
    return started;
  }

  /** Whether the subject is locked right now. */
  async state(kind: SubjectKind, subject: string): Promise<LockState> {
    return this.stateOf(await this.repo.get(kind, subject));
  }

  private stateOf(r: { level: number; lockedUntil: number } | null): LockState {
    if (!r) return { locked: false, until: 0, level: 0 };
    return { locked: r.lockedUntil > this.clock.now(), until: r.lockedUntil, level: r.level };
  }

  /** Records one failure; returns the new lock when this failure triggers one. */
  async recordFailure(kind: SubjectKind, subject: string): Promise<LockState | null> {
    const now = this.clock.now();
    const policy = this.policyFor(kind, subject);
    const longestWindow = Math.max(this.policies.user.window, this.policies.address.window, this.policies.prefix?.window ?? 0);
    const window = { kind, subject, at: now, pruneBefore: now - longestWindow, countSince: now - policy.window };
    const lock = await this.repo.recordFailure(window, (n, prev) => {
      if (n < policy.maxFailures) return null;
      const quiet = prev ? now - prev.lockedUntil > policy.maxDuration : true;
      const level = (quiet ? 0 : prev!.level) + 1;
      return { level, lockedUntil: now + lockDuration(policy, level) };
    });
    return lock ? { locked: true, until: lock.lockedUntil, level: lock.level } : null;
  }

  /** Forgets the subject's counted failures (after a successful login). */
  async resetFailures(kind: SubjectKind, subject: string): Promise<void> {
    await this.repo.resetFailures(kind, subject);
  }

  /** Lifts a lockout and its history; returns whether there was one. */
  async clear(kind: SubjectKind, subject: string): Promise<boolean> {
    const had = await this.repo.remove(kind, subject);
    await this.resetFailures(kind, subject);
    return had;
  }

  /** Lockouts still in force. */
  active(): Promise<LockoutRow[]> {
    return this.repo.activeAt(this.clock.now());
  }
}
