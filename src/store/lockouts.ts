import type { Sql } from './sql.js';

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

/** Given the failures in the window and the lockout before (in force or not), the lock to start or null. */
export type LockDecision = (failuresInWindow: number, previous: Lock | null) => Lock | null;

/**
 * The lockouts and auth_failures tables. The arithmetic (windows, levels, durations) is the
 * caller's (auth/lockout.ts); this module only stores and counts.
 */
export class LockoutRepo {
  constructor(private readonly sql: Sql) {}

  /** The stored lockout of a subject, in force or not. */
  async get(kind: SubjectKind, subject: string): Promise<Lock | null> {
    return (await this.getAll([{ kind, subject }]))[0] ?? null;
  }

  /** The stored lockouts of several subjects (in force or not), in their order, in one statement. */
  async getAll(subjects: readonly { kind: SubjectKind; subject: string }[]): Promise<(Lock | null)[]> {
    if (!subjects.length) return [];
    const where = subjects.map(() => '(subject_kind = ? AND subject = ?)').join(' OR ');
    const params = subjects.flatMap((s) => [s.kind, s.subject]);
    const rows = (await this.sql.all(`SELECT subject_kind, subject, level, locked_until FROM lockouts WHERE ${where}`, params)) as {
      subject_kind: SubjectKind;
      subject: string;
      level: number;
      locked_until: number;
    }[];
    return subjects.map((s) => {
      const r = rows.find((x) => x.subject_kind === s.kind && x.subject === s.subject);
      return r ? { level: r.level, lockedUntil: r.locked_until } : null;
    });
  }

  /**
   * Counts one failure at `at` (dropping every failure older than `pruneBefore`), then asks
   * `decide` with the subject's failures since `countSince`; a lock it returns is stored and
   * consumes the failures. All in one IMMEDIATE transaction, so concurrent processes count alike.
   */
  async recordFailure(
    f: { kind: SubjectKind; subject: string; at: number; pruneBefore: number; countSince: number },
    decide: LockDecision,
  ): Promise<Lock | null> {
    return this.sql.transaction(async () => {
      // Every node counts this subject's failures one at a time.
      await this.sql.lock(`lockout:${f.kind}:${f.subject}`);
      await this.sql.run('INSERT INTO auth_failures (subject_kind, subject, at) VALUES (?, ?, ?)', [f.kind, f.subject, f.at]);
      await this.sql.run('DELETE FROM auth_failures WHERE at < ?', [f.pruneBefore]);
      const { n } = (await this.sql.get('SELECT COUNT(*) AS n FROM auth_failures WHERE subject_kind = ? AND subject = ? AND at > ?', [
        f.kind,
        f.subject,
        f.countSince,
      ])) as { n: number };
      const lock = decide(n, await this.get(f.kind, f.subject));
      if (!lock) return null;
      await this.sql.run(
        `INSERT INTO lockouts (subject_kind, subject, level, locked_until, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(subject_kind, subject) DO UPDATE SET level = excluded.level, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
        [f.kind, f.subject, lock.level, lock.lockedUntil, f.at],
      );
      await this.resetFailures(f.kind, f.subject);
      return lock;
    });
  }

  /** Forgets the subject's counted failures. */
  async resetFailures(kind: SubjectKind, subject: string): Promise<void> {
    await this.sql.run('DELETE FROM auth_failures WHERE subject_kind = ? AND subject = ?', [kind, subject]);
  }

  /** Deletes a lockout; returns whether there was one. */
  async remove(kind: SubjectKind, subject: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM lockouts WHERE subject_kind = ? AND subject = ?', [kind, subject])) > 0;
  }

  /** Lockouts in force at `now`, the latest ending first. */
  async activeAt(now: number): Promise<LockoutRow[]> {
    return (
      (await this.sql.all('SELECT * FROM lockouts WHERE locked_until > ? ORDER BY locked_until DESC', [now])) as {
        subject_kind: SubjectKind;
        subject: string;
        level: number;
        locked_until: number;
        updated_at: number;
      }[]
    ).map((r) => ({ subjectKind: r.subject_kind, subject: r.subject, level: r.level, lockedUntil: r.locked_until, updatedAt: r.updated_at }));
  }
}
