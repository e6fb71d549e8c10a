import { systemRandom, type Random } from '../platform/random.js';
import { z } from 'zod';
import type { Sql } from './sql.js';

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
    private readonly sql: Sql,
    private readonly random: Random = systemRandom,
  ) {}

  /** A short id unique to this store, part of every account name it makes (created once). */
  async installId(): Promise<string> {
    const row = (await this.sql.get("SELECT value FROM gateway_state WHERE key = 'install_id'")) as { value: string } | undefined;
    if (row) return row.value;
    // 4 characters of [a-z0-9]: names stay short (Linux allows 32) and two stores never collide in practice.
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const id = [...this.random.bytes(4)].map((b) => alphabet[b % alphabet.length]).join('');
    await this.sql.run("INSERT INTO gateway_state (key, value) VALUES ('install_id', ?) ON CONFLICT DO NOTHING", [id]);
    return ((await this.sql.get("SELECT value FROM gateway_state WHERE key = 'install_id'")) as { value: string }).value;
  }

  async pair(roleId: number, userId: number): Promise<PairAccountRecord | null> {
    const r = await this.sql.get('SELECT * FROM pair_accounts WHERE role_id = ? AND user_id = ?', [roleId, userId]);
    return r ? toPair(r) : null;
  }

  async recordPair(p: { roleId: number; userId: number; account: string; uid: number; home: string }, now: number): Promise<void> {
    await this.sql.run('INSERT INTO pair_accounts (role_id, user_id, account, uid, home, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
      p.roleId,
      p.userId,
      p.account,
      p.uid,
      p.home,
      now,
    ]);
  }

  /**
   * Allocates a pair's account name and uid for the whole store, or returns the allocation another
   * process or node made first. Under one lock, so nodes that make first logins at the same moment
   * never pick the same uid: `pickUid` gets the highest uid allocated so far.
   */
  async reservePair(
    p: { roleId: number; userId: number; account: string; home: string },
    pickUid: (highest: number | null) => number,
    now: number,
  ): Promise<{ record: PairAccountRecord; reserved: boolean }> {
    return this.sql.transaction(async () => {
      await this.sql.lock('account-uids');
      const existing = await this.pair(p.roleId, p.userId);
      if (existing) return { record: existing, reserved: false };
      await this.recordPair({ ...p, uid: pickUid(await this.maxUid()) }, now);
      return { record: (await this.pair(p.roleId, p.userId))!, reserved: true };
    });
  }

  /**
   * Moves an allocation that was never made into an account to another uid (the machine gave its
   * uid to something else between the allocation and useradd). Only from `fromUid`, under the lock.
   */
  async reassignUid(roleId: number, userId: number, fromUid: number, pickUid: (highest: number | null) => number): Promise<number | null> {
    return this.sql.transaction(async () => {
      await this.sql.lock('account-uids');
      const uid = pickUid(await this.maxUid());
      const n = await this.sql.run('UPDATE pair_accounts SET uid = ? WHERE role_id = ? AND user_id = ? AND uid = ?', [uid, roleId, userId, fromUid]);
      return n === 1 ? uid : null;
    });
  }

  /** The highest uid this store ever allocated (allocation continues above it: no reuse). */
  async maxUid(): Promise<number | null> {
    return ((await this.sql.get('SELECT MAX(uid) AS m FROM pair_accounts')) as { m: number | null }).m;
  }

  async setLocked(roleId: number, userId: number, at: number | null): Promise<void> {
    await this.sql.run('UPDATE pair_accounts SET locked_at = ? WHERE role_id = ? AND user_id = ?', [at, roleId, userId]);
  }

  async setRemoved(roleId: number, userId: number, at: number): Promise<void> {
    await this.sql.run('UPDATE pair_accounts SET removed_at = ?, locked_at = COALESCE(locked_at, ?) WHERE role_id = ? AND user_id = ?', [
      at,
      at,
      roleId,
      userId,
    ]);
  }

  /**
   * Whether `host`'s copy of an account (or, for an account recorded on no machine, the one there
   * was) is still to lock or remove: SQL over `p` (pair_accounts) and `h` (its account_hosts row
   * for the machine, LEFT JOINed), with `what` the column: locked_at or removed_at.
   */
  private static openHere(what: 'locked_at' | 'removed_at'): string {
    return `((h.account IS NOT NULL AND h.${what} IS NULL AND h.removed_at IS NULL)
          OR (h.account IS NULL AND p.${what} IS NULL AND p.removed_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM account_hosts x WHERE x.account = p.account)))`;
  }

  /**
   * Pairs whose user is disabled or removed, or whose grant or role is gone, with a copy of their
   * account on machine `host` not yet locked there. An account is made on each machine that needs
   * it, so each machine locks its own copy (and ends its processes there); an account recorded on
   * no machine predates clusters and follows the store-wide lock. `liveElsewhere`: the pair's live
   * sessions at nodes other than `node` (relayed here, or on another machine's copy).
   */
  async pairsToEnd(host: string, node?: string): Promise<(PairAccountRecord & { cause: PairEndCause; liveElsewhere: number })[]> {
    const rows = (await this.sql.all(
      `SELECT p.*, CASE
            WHEN u.id IS NULL OR u.removed_at IS NOT NULL THEN 'user-removed'
            WHEN u.disabled = 1 THEN 'user-disabled'
            ELSE 'role-revoked' END AS cause,
            (SELECT COUNT(*) FROM sessions s WHERE s.state = 'live' AND s.role_id = p.role_id AND s.user_id = p.user_id
               AND s.node_id IS NOT NULL AND s.node_id <> ?) AS live_elsewhere
         FROM pair_accounts p
         LEFT JOIN users u ON u.id = p.user_id
         LEFT JOIN grants g ON g.user_id = p.user_id AND g.role_id = p.role_id
         LEFT JOIN account_hosts h ON h.account = p.account AND h.host = ?
         WHERE ${HostAccountRepo.openHere('locked_at')}
           AND (u.id IS NULL OR u.removed_at IS NOT NULL OR u.disabled = 1 OR g.user_id IS NULL)`,
      [node ?? '', host],
    )) as (Record<string, unknown> & { cause: PairEndCause; live_elsewhere: number | string })[];
    return rows.map((r) => ({ ...toPair(r), cause: r.cause, liveElsewhere: Number(r.live_elsewhere) }));
  }

  /** Removed users' pairs whose account still exists on machine `host` (locked there, or by another machine). */
  async removedUsersPairs(host: string): Promise<PairAccountRecord[]> {
    return (
      await this.sql.all(
        `SELECT p.* FROM pair_accounts p JOIN users u ON u.id = p.user_id
           LEFT JOIN account_hosts h ON h.account = p.account AND h.host = ?
          WHERE u.removed_at IS NOT NULL AND ${HostAccountRepo.openHere('removed_at')}`,
        [host],
      )
    ).map(toPair);
  }

  /** Whether the account's copy on `host` is locked there (null: not recorded on that machine). */
  async lockedOn(account: string, host: string): Promise<boolean | null> {
    const r = (await this.sql.get('SELECT locked_at FROM account_hosts WHERE account = ? AND host = ?', [account, host])) as
      { locked_at: number | null } | undefined;
    return r ? r.locked_at !== null : null;
  }

  /** Records the lock (or, with null, the unlock) of the account's copy on `host`. */
  async setLockedOn(account: string, host: string, at: number | null): Promise<void> {
    await this.sql.run('UPDATE account_hosts SET locked_at = ? WHERE account = ? AND host = ?', [at, account, host]);
  }

  /** Records that the account's copy on `host` was removed. */
  async setRemovedOn(account: string, host: string, at: number): Promise<void> {
    await this.sql.run('UPDATE account_hosts SET removed_at = ?, locked_at = COALESCE(locked_at, ?) WHERE account = ? AND host = ?', [at, at, account, host]);
  }

  async roleAccount(roleId: number): Promise<{ account: string; uid: number } | null> {
    return ((await this.sql.get('SELECT account, uid FROM role_accounts WHERE role_id = ?', [roleId])) as { account: string; uid: number } | undefined) ?? null;
  }

  async recordRoleAccount(roleId: number, account: string, uid: number, now: number): Promise<void> {
    await this.sql.run('INSERT INTO role_accounts (role_id, account, uid, created_at) VALUES (?, ?, ?, ?)', [roleId, account, uid, now]);
  }

  /** The machines on which this store made the account (none: made before clusters, on the only machine there was). */
  async accountHosts(account: string): Promise<string[]> {
    return ((await this.sql.all('SELECT host FROM account_hosts WHERE account = ? ORDER BY host', [account])) as { host: string }[]).map((r) => r.host);
  }

  /** Records that the account exists on `host` (made there, or a pre-cluster account found there). */
  async recordAccountHost(account: string, host: string, now: number): Promise<void> {
    await this.sql.run('INSERT INTO account_hosts (account, host, created_at) VALUES (?, ?, ?) ON CONFLICT (account, host) DO NOTHING', [account, host, now]);
  }

  /** Every account name this store made (pair and role accounts), for cleanup and reports. */
  async allAccounts(): Promise<string[]> {
    return ((await this.sql.all('SELECT account FROM pair_accounts UNION SELECT account FROM role_accounts')) as { account: string }[]).map((r) => r.account);
  }

  /** Registers an admin's read-only observer client so the intrusion check knows it. */
  async addObserver(o: { pid: number; tty: string | null; sessionId: string; actor: string; at: number }): Promise<void> {
    await this.sql.run(
      `INSERT INTO tmux_observers (pid, session_id, actor, started_at, tty) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(pid) DO UPDATE SET session_id = excluded.session_id, actor = excluded.actor, started_at = excluded.started_at, tty = excluded.tty`,
      [o.pid, o.sessionId, o.actor, o.at, o.tty],
    );
  }

  async removeObserver(pid: number): Promise<void> {
    await this.sql.run('DELETE FROM tmux_observers WHERE pid = ?', [pid]);
  }

  async observers(): Promise<{ pid: number; tty: string | null }[]> {
    return (await this.sql.all('SELECT pid, tty FROM tmux_observers')) as { pid: number; tty: string | null }[];
  }
}
