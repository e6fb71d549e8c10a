import type { Db } from '../store/db.js';
import type { Clock } from '../platform/clock.js';
import { addressPrefix } from './address-prefix.js';

export type SubjectKind = 'user' | 'address';

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

export interface LockoutRow {
  subjectKind: SubjectKind;
  subject: string;
  level: number;
  lockedUntil: number;
  updatedAt: number;
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
 * Failure counting and lockouts per user and per source address and its prefix, kept in SQLite so they hold
 * across restarts and `tmuxgate lockouts clear` reaches a running gateway.
 * A lockout consumes the failures that caused it; its level (and so its length) grows with each
 * further lockout and falls back to zero once the subject has been quiet for maxDuration.
 * A prefix is stored as an 'address' subject in CIDR notation ("192.0.2.0/24"), so
 * `tmuxgate lockouts clear 192.0.2.0/24 --address` lifts it, with no schema change.
 */
export class Lockouts {
  constructor(
    private readonly db: Db,
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
  sourceLock(addr: string): { subject: string; until: number } | null {
    for (const subject of [addr, addressPrefix(addr)]) {
      const s = this.state('address', subject);
      if (s.locked) return { subject, until: s.until };
    }
    return null;
  }

  /** Counts one failure against a source address and its prefix; returns the locks it starts. */
  recordSourceFailure(addr: string): { subject: string; lock: LockState }[] {
    const started: { subject: string; lock: LockState }[] = [];
    for (const subject of [addr, addressPrefix(addr)]) {
      const lock = this.recordFailure('address', subject);
      if (lock) started.push({ subject, lock });
    }
    return started;
  }

  /** Whether the subject is locked right now. */
  state(kind: SubjectKind, subject: string): LockState {
    const r = this.db.prepare('SELECT level, locked_until FROM lockouts WHERE subject_kind = ? AND subject = ?').get(kind, subject) as
      | { level: number; locked_until: number }
      | undefined;
    if (!r) return { locked: false, until: 0, level: 0 };
    return { locked: r.locked_until > this.clock.now(), until: r.locked_until, level: r.level };
  }

  /** Records one failure; returns the new lock when this failure triggers one. */
  recordFailure(kind: SubjectKind, subject: string): LockState | null {
    const now = this.clock.now();
    const policy = this.policyFor(kind, subject);
    const longestWindow = Math.max(this.policies.user.window, this.policies.address.window, this.policies.prefix?.window ?? 0);
    return this.db
      .transaction((): LockState | null => {
        this.db.prepare('INSERT INTO auth_failures (subject_kind, subject, at) VALUES (?, ?, ?)').run(kind, subject, now);
        this.db.prepare('DELETE FROM auth_failures WHERE at < ?').run(now - longestWindow);
        const { n } = this.db
          .prepare('SELECT COUNT(*) AS n FROM auth_failures WHERE subject_kind = ? AND subject = ? AND at > ?')
          .get(kind, subject, now - policy.window) as { n: number };
        if (n < policy.maxFailures) return null;
        const prev = this.db.prepare('SELECT level, locked_until FROM lockouts WHERE subject_kind = ? AND subject = ?').get(kind, subject) as
          | { level: number; locked_until: number }
          | undefined;
        const quiet = prev ? now - prev.locked_until > policy.maxDuration : true;
        const level = (quiet ? 0 : prev!.level) + 1;
        const until = now + lockDuration(policy, level);
        this.db
          .prepare(
            `INSERT INTO lockouts (subject_kind, subject, level, locked_until, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(subject_kind, subject) DO UPDATE SET level = excluded.level, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
          )
          .run(kind, subject, level, until, now);
        this.db.prepare('DELETE FROM auth_failures WHERE subject_kind = ? AND subject = ?').run(kind, subject);
        return { locked: true, until, level };
      })
      .immediate();
  }

  /** Forgets the subject's counted failures (after a successful login). */
  resetFailures(kind: SubjectKind, subject: string): void {
    this.db.prepare('DELETE FROM auth_failures WHERE subject_kind = ? AND subject = ?').run(kind, subject);
  }

  /** Lifts a lockout and its history; returns whether there was one. */
  clear(kind: SubjectKind, subject: string): boolean {
    const n = this.db.prepare('DELETE FROM lockouts WHERE subject_kind = ? AND subject = ?').run(kind, subject).changes;
    this.resetFailures(kind, subject);
    return n > 0;
  }

  /** Lockouts still in force. */
  active(): LockoutRow[] {
    return (
      this.db.prepare('SELECT * FROM lockouts WHERE locked_until > ? ORDER BY locked_until DESC').all(this.clock.now()) as {
        subject_kind: SubjectKind;
        subject: string;
        level: number;
        locked_until: number;
        updated_at: number;
      }[]
    ).map((r) => ({ subjectKind: r.subject_kind, subject: r.subject, level: r.level, lockedUntil: r.locked_until, updatedAt: r.updated_at }));
  }
}
