import type { Db } from './db.js';

export type SubjectKind = 'user' | 'address';

/** One lockout as stored. */
export interface LockoutRow {
  subjectKind: SubjectKind;
  subject: string;
  level: number;
  lockedUntil: number;
  updatedAt: number;
}

/** A lockout's level and end. */
export interface Lock {
  level: number;
  lockedUntil: number;
}

/** Given the failures in the window (and, read on demand, the lockout before), the lock to start or null. */
export type LockDecision = (failuresInWindow: number, previous: () => Lock | null) => Lock | null;

/**
 * The lockouts and auth_failures tables. The arithmetic (windows, levels, durations) is the
 * caller's (auth/lockout.ts); this module only stores and counts.
 */
export class LockoutRepo {
  constructor(private readonly db: Db) {}

  /** The stored lockout of a subject, in force or not. */
  get(kind: SubjectKind, subject: string): { level: number; lockedUntil: number } | null {
    const r = this.db.prepare('SELECT level, locked_until FROM lockouts WHERE subject_kind = ? AND subject = ?').get(kind, subject) as
      | { level: number; locked_until: number }
      | undefined;
    return r ? { level: r.level, lockedUntil: r.locked_until } : null;
  }

  /**
   * Counts one failure at `at` (dropping every failure older than `pruneBefore`), then asks
   * `decide` with the subject's failures since `countSince`; a lock it returns is stored and
   * consumes the failures. All in one IMMEDIATE transaction, so concurrent processes count alike.
   */
  recordFailure(
    f: { kind: SubjectKind; subject: string; at: number; pruneBefore: number; countSince: number },
    decide: LockDecision,
  ): { level: number; lockedUntil: number } | null {
    return this.db
      .transaction(() => {
        this.db.prepare('INSERT INTO auth_failures (subject_kind, subject, at) VALUES (?, ?, ?)').run(f.kind, f.subject, f.at);
        this.db.prepare('DELETE FROM auth_failures WHERE at < ?').run(f.pruneBefore);
        const { n } = this.db
          .prepare('SELECT COUNT(*) AS n FROM auth_failures WHERE subject_kind = ? AND subject = ? AND at > ?')
          .get(f.kind, f.subject, f.countSince) as { n: number };
        const lock = decide(n, () => this.get(f.kind, f.subject));
        if (!lock) return null;
        this.db
          .prepare(
            `INSERT INTO lockouts (subject_kind, subject, level, locked_until, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(subject_kind, subject) DO UPDATE SET level = excluded.level, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
          )
          .run(f.kind, f.subject, lock.level, lock.lockedUntil, f.at);
        this.resetFailures(f.kind, f.subject);
        return lock;
      })
      .immediate();
  }

  /** Forgets the subject's counted failures. */
  resetFailures(kind: SubjectKind, subject: string): void {
    this.db.prepare('DELETE FROM auth_failures WHERE subject_kind = ? AND subject = ?').run(kind, subject);
  }

  /** Deletes a lockout; returns whether there was one. */
  remove(kind: SubjectKind, subject: string): boolean {
    return this.db.prepare('DELETE FROM lockouts WHERE subject_kind = ? AND subject = ?').run(kind, subject).changes > 0;
  }

  /** Lockouts in force at `now`, the latest ending first. */
  activeAt(now: number): LockoutRow[] {
    return (
      this.db.prepare('SELECT * FROM lockouts WHERE locked_until > ? ORDER BY locked_until DESC').all(now) as {
        subject_kind: SubjectKind;
        subject: string;
        level: number;
        locked_until: number;
        updated_at: number;
      }[]
    ).map((r) => ({ subjectKind: r.subject_kind, subject: r.subject, level: r.level, lockedUntil: r.locked_until, updatedAt: r.updated_at }));
  }
}
