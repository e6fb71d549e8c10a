import { systemRandom, type Random } from '../platform/random.js';
import { z } from 'zod';
import type { Db } from './db.js';

const PairRow = z.object({
  role_id: z.number(),
  user_id: z.number(),
  account: z.string(),
  uid: z.number(),
  home: z.string(),
  created_at: z.number(),
  locked_at: z.number().nullable(),
  removed_at: z.number().nullable(),
});

/** One (role, user) pair's OS account, as this store allocated it. */
export interface PairAccountRecord {
  roleId: number;
  userId: number;
  account: string;
  uid: number;
  home: string;
  lockedAt: number | null;
  removedAt: number | null;
}

/** Why a pair's processes must end: its user or grant is gone. */
export type PairEndCause = 'user-disabled' | 'user-removed' | 'role-revoked';

function toPair(raw: unknown): PairAccountRecord {
  const r = PairRow.parse(raw);
  return { roleId: r.role_id, userId: r.user_id, account: r.account, uid: r.uid, home: r.home, lockedAt: r.locked_at, removedAt: r.removed_at };
}

/**
 * The OS accounts tmuxgate made: pair accounts, role accounts and the installation id their names
 * carry. An account is ours only if it is recorded here; rows are never deleted, so a uid that
 * once belonged to a person is never allocated again.
 */
export class HostAccountRepo {
  constructor(
    private readonly db: Db,
    private readonly random: Random = systemRandom,
  ) {}

  /** A short id unique to this store, part of every account name it makes (created once). */
  installId(): string {
    const row = this.db.prepare("SELECT value FROM gateway_state WHERE key = 'install_id'").get() as { value: string } | undefined;
    if (row) return row.value;
    // 4 characters of [a-z0-9]: names stay short (Linux allows 32) and two stores never collide in practice.
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const id = [...this.random.bytes(4)].map((b) => alphabet[b % alphabet.length]).join('');
    this.db.prepare("INSERT OR IGNORE INTO gateway_state (key, value) VALUES ('install_id', ?)").run(id);
    return (this.db.prepare("SELECT value FROM gateway_state WHERE key = 'install_id'").get() as { value: string }).value;
  }

  pair(roleId: number, userId: number): PairAccountRecord | null {
    const r = this.db.prepare('SELECT * FROM pair_accounts WHERE role_id = ? AND user_id = ?').get(roleId, userId);
    return r ? toPair(r) : null;
  }

  recordPair(p: { roleId: number; userId: number; account: string; uid: number; home: string }, now: number): void {
    this.db
      .prepare('INSERT INTO pair_accounts (role_id, user_id, account, uid, home, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(p.roleId, p.userId, p.account, p.uid, p.home, now);
  }

  /** The highest uid this store ever allocated (allocation continues above it: no reuse). */
  maxUid(): number | null {
    return (this.db.prepare('SELECT MAX(uid) AS m FROM pair_accounts').get() as { m: number | null }).m;
  }

  setLocked(roleId: number, userId: number, at: number | null): void {
    this.db.prepare('UPDATE pair_accounts SET locked_at = ? WHERE role_id = ? AND user_id = ?').run(at, roleId, userId);
  }

  setRemoved(roleId: number, userId: number, at: number): void {
    this.db
      .prepare('UPDATE pair_accounts SET removed_at = ?, locked_at = COALESCE(locked_at, ?) WHERE role_id = ? AND user_id = ?')
      .run(at, at, roleId, userId);
  }

  /** Pairs still unlocked whose user is disabled or removed, or whose grant or role is gone. */
  pairsToEnd(): (PairAccountRecord & { cause: PairEndCause })[] {
    const rows = this.db
      .prepare(
        `SELECT p.*, CASE
            WHEN u.id IS NULL OR u.removed_at IS NOT NULL THEN 'user-removed'
            WHEN u.disabled = 1 THEN 'user-disabled'
            ELSE 'role-revoked' END AS cause
         FROM pair_accounts p
         LEFT JOIN users u ON u.id = p.user_id
         LEFT JOIN grants g ON g.user_id = p.user_id AND g.role_id = p.role_id
         WHERE p.locked_at IS NULL AND p.removed_at IS NULL
           AND (u.id IS NULL OR u.removed_at IS NOT NULL OR u.disabled = 1 OR g.user_id IS NULL)`,
      )
      .all() as (Record<string, unknown> & { cause: PairEndCause })[];
    return rows.map((r) => ({ ...toPair(r), cause: r.cause }));
  }

  /** Removed users' pairs that are locked but whose account still exists. */
  removedUsersPairs(): PairAccountRecord[] {
    return this.db
      .prepare('SELECT p.* FROM pair_accounts p JOIN users u ON u.id = p.user_id WHERE u.removed_at IS NOT NULL AND p.removed_at IS NULL')
      .all()
      .map(toPair);
  }

  roleAccount(roleId: number): { account: string; uid: number } | null {
    return (this.db.prepare('SELECT account, uid FROM role_accounts WHERE role_id = ?').get(roleId) as { account: string; uid: number } | undefined) ?? null;
  }

  recordRoleAccount(roleId: number, account: string, uid: number, now: number): void {
    this.db.prepare('INSERT INTO role_accounts (role_id, account, uid, created_at) VALUES (?, ?, ?, ?)').run(roleId, account, uid, now);
  }

  /** Every account name this store made (pair and role accounts), for cleanup and reports. */
  allAccounts(): string[] {
    return (this.db.prepare('SELECT account FROM pair_accounts UNION SELECT account FROM role_accounts').all() as { account: string }[]).map((r) => r.account);
  }

  /** Registers an admin's read-only observer client so the intrusion check knows it. */
  addObserver(o: { pid: number; tty: string | null; sessionId: string; actor: string; at: number }): void {
    this.db
      .prepare('INSERT OR REPLACE INTO tmux_observers (pid, session_id, actor, started_at, tty) VALUES (?, ?, ?, ?, ?)')
      .run(o.pid, o.sessionId, o.actor, o.at, o.tty);
  }

  removeObserver(pid: number): void {
    this.db.prepare('DELETE FROM tmux_observers WHERE pid = ?').run(pid);
  }

  observers(): { pid: number; tty: string | null }[] {
    return this.db.prepare('SELECT pid, tty FROM tmux_observers').all() as { pid: number; tty: string | null }[];
  }
}
