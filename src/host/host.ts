import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { systemClock, type Clock } from '../platform/clock.js';
import type { Random } from '../platform/random.js';
import type { Logger } from '../platform/logger.js';
import type { AuditSink } from '../audit/log.js';
import type { HostAccountRepo, PairAccountRecord, PairEndCause } from '../store/host-accounts.js';
import type { Role, RoleRepo } from '../store/roles.js';
import { TgError } from '../errors.js';
import { currentAccount, lookupAccount, type OsAccount } from './account.js';
import { HostAccounts } from './accounts.js';
import { checkRootOnly, makeDirs, preparePairDir, requireTraversable, writeRootFile } from './dirs.js';
import { TmuxHost, pairDirName, tmuxConf, type Pair } from './tmux.js';
import { PAIR_LANES, TmuxServers, type KnownClient } from './tmux-servers.js';
import { KeyedLanes } from '../platform/lanes.js';

export interface HostDeps {
  config: Config;
  repo: HostAccountRepo;
  roles: RoleRepo;
  clock: Clock;
  logger: Logger;
  audit: AuditSink;
  /** Socket names and back-off; the system's by default. */
  random?: Random;
  /** Real time for process latency (polls, back-off, a killed client's grace); the system clock by default. */
  realTime?: Clock;
  /** This machine's id: accounts are made per machine (account_hosts). /etc/machine-id by default. */
  machine?: string;
  /**
   * In a cluster: this node's id, and how long it leaves a pair whose user or grant is gone to the
   * other nodes that hold live sessions of it (they end them with the reason the user sees; ending
   * the pair's processes here first would cut a relayed session off with "connection lost").
   */
  cluster?: { nodeId: string; graceMs: number };
  /** Told when the gateway ended a pair's tmux server (kill, reap): a cluster node releases its claim. */
  serverGone?: (roleId: number, userId: number) => void;
}

/**
 * The privilege boundary: the only code that touches OS accounts, pair directories, tmux sockets
 * and pair processes (see docs/isolation.md). Everything it does to something a pair account can
 * write, it does as that account, or in a directory only root can write.
 */
export class Host {
  readonly tmux: TmuxHost;
  readonly servers: TmuxServers;
  readonly accounts: HostAccounts;
  /** Whether the gateway runs as root: pair isolation is possible only then. */
  readonly root = process.getuid?.() === 0;
  /** Gateway-owned tmux.conf files: root-only, readable by the pairs. */
  readonly confDir: string;
  /** When each pair still to end was first seen due (real time), for the cluster's grace. */
  private dueSince = new Map<string, number>();
  /**
   * Ends of pairs (kills, locks, removals), PAIR_LANES at a time, one at a time per pair. A pair's
   * end can take as long as the pair makes it (its socket holds the server's kill, a tracer holds
   * its `kill`): it holds one lane, and an end asked for later starts in another at once.
   */
  private readonly ends = new KeyedLanes(PAIR_LANES);

  constructor(private readonly d: HostDeps) {
    const c = d.config;
    this.confDir = path.join(c.paths.socketDir, 'conf');
    const realTime = d.realTime ? { realTime: d.realTime } : {};
    const chance = { ...(d.random ? { random: d.random } : {}), ...realTime };
    this.tmux = new TmuxHost({ tmuxPath: c.sessions.tmuxPath, hide: [c.paths.dataDir, c.paths.keysDir], maxProcesses: c.isolation.maxProcesses, ...realTime });
    this.accounts = new HostAccounts(c.isolation, { repo: d.repo, clock: d.clock, audit: d.audit, ...chance, ...(d.machine ? { machine: d.machine } : {}) });
    this.servers = new TmuxServers(
      { socketDir: c.paths.socketDir, dormantTimeoutMs: c.sessions.dormantTimeout },
      {
        clock: d.clock,
        logger: d.logger,
        audit: d.audit,
        tmux: this.tmux,
        pairOf: (r, u) => this.pairOf(r, u),
        observers: () => d.repo.observers() as Promise<KnownClient[]>,
        ...chance,
        ...(d.serverGone ? { gone: (p: Pair) => d.serverGone!(p.roleId, p.userId) } : {}),
      },
    );
  }

  /**
   * At start: the socket root, conf directory and home base exist with the right modes and only
   * root can change them; every shell role has an unprivileged account that can reach them.
   * Throws a coded error naming the directory and what it needs.
   */
  async prepare(): Promise<void> {
    this.prepareDirs();
    if (!this.root) return;
    for (const role of (await this.d.roles.list()).filter((r) => r.kind === 'shell')) {
      const acct = await this.roleAccount(role).catch((e: Error) => {
        // A broken role is refused at login (and logged now); it does not stop the others.
        this.d.logger.error({ role: role.name, err: e.message }, 'role cannot start sessions');
        return null;
      });
      if (acct && acct.uid !== 0) this.checkReach(acct);
    }
  }

  /** The socket root, conf directory and (under root) home base: created with their modes, checked root-only. */
  prepareDirs(): void {
    const { paths, isolation } = this.d.config;
    makeDirs(paths.socketDir, 0o711);
    makeDirs(this.confDir, 0o711);
    if (!this.root) return;
    checkRootOnly(paths.socketDir);
    checkRootOnly(this.confDir);
    if (isolation.pairAccounts) {
      makeDirs(isolation.homeBase, 0o711);
      checkRootOnly(isolation.homeBase);
    }
  }

  /** Throws TG_ERR_PATH_NOT_TRAVERSABLE unless the role's (and so its pairs') accounts can reach their directories. */
  checkReach(roleAccount: OsAccount): void {
    const { paths, isolation } = this.d.config;
    // Pair accounts share the role account's group but never its uid: judge by group and others.
    const pairLike = { ...roleAccount, uid: -1 };
    requireTraversable(paths.socketDir, pairLike, 'socket directory');
    requireTraversable(this.confDir, pairLike, 'tmux.conf directory');
    if (isolation.pairAccounts) requireTraversable(isolation.homeBase, pairLike, 'home base');
  }

  /**
   * The OS account a role runs as. A role that names none gets a dedicated unprivileged account
   * under a root gateway (recorded in the store and set as its runAs); only a gateway that is not
   * root runs shells as its own account (development mode).
   */
  async roleAccount(role: Role): Promise<OsAccount> {
    const me = currentAccount();
    if (!role.runAs) {
      if (!this.root) return me;
      const acct = await this.accounts.ensureRoleAccount(role.id);
      await this.d.roles.edit(role.id, { runAs: acct.name }); // from now on the role names it, as if the admin had
      return acct;
    }
    const acct = lookupAccount(role.runAs);
    if (!acct) throw new TgError('TG_ERR_ACCOUNT', `role ${role.name}: account ${role.runAs} does not exist`);
    if (acct.uid === 0 && !role.allowRoot) throw new TgError('TG_ERR_ACCOUNT', `role ${role.name}: runs as root without allowRoot`);
    if (acct.uid !== me.uid && !this.root) throw new TgError('TG_ERR_ACCOUNT', `role ${role.name}: the gateway must run as root to switch to ${role.runAs}`);
    return acct;
  }

  /** Whether sessions of this role run under the gateway's own account (not isolated). */
  devMode(role: Role): boolean {
    return !this.root && (!role.runAs || role.runAs === currentAccount().name);
  }

  /** Prepares a login's pair: its account (created on first use), socket directory, home and tmux.conf. */
  async pairForLogin(role: Role, userId: number, userName: string, shell: string): Promise<Pair> {
    const { config } = this.d;
    const template = await this.roleAccount(role);
    let account = template;
    if (this.root && config.isolation.pairAccounts && template.uid !== 0) {
      account = await this.accounts.ensurePairAccount(role.id, userId, template, shell);
    }
    const name = pairDirName(role.id, userId);
    const dir = preparePairDir(config.paths.socketDir, name, account);
    const conf = writeRootFile(this.confDir, `role-${role.id}-${createHash('sha256').update(shell).digest('hex').slice(0, 8)}.conf`, tmuxConf(role, shell));
    return { label: `${userName}+${role.name}`, roleId: role.id, userId, account, dir, home: account.home, conf, sandbox: role.sandbox };
  }

  /** An existing pair (for viewers, observers, reconcile), or null: never creates anything. */
  async pairOf(roleId: number, userId: number): Promise<Pair | null> {
    const { config, repo, roles } = this.d;
    const role = await roles.byId(roleId);
    if (!role) return null;
    let account: OsAccount | null = null;
    const rec = await repo.pair(roleId, userId);
    if (rec) {
      const a = lookupAccount(rec.account);
      account = a && a.uid === rec.uid ? a : null;
    } else if (!this.root || !config.isolation.pairAccounts) {
      account = role.runAs ? lookupAccount(role.runAs) : this.root ? null : currentAccount();
    } else if (role.runAs && lookupAccount(role.runAs)?.uid === 0) {
      account = lookupAccount(role.runAs); // break-glass root role: no pair accounts
    }
    if (!account) return null;
    const name = pairDirName(roleId, userId);
    // Never starts a server, so it needs no conf of its own; the label is for logs only.
    return {
      label: `user ${userId}+${role.name}`,
      roleId,
      userId,
      account,
      dir: path.join(config.paths.socketDir, name),
      home: account.home,
      conf: '/dev/null',
      sandbox: role.sandbox,
    };
  }

  /**
   * A read-only client of a pair's live tmux server (an admin observer, a watcher): the pair as the
   * store knows it, its live socket (checked to be that pair's), and the client's argv, run as the
   * pair. Null when the pair has no server on this host; never starts one.
   */
  async readOnlyClient(roleId: number, userId: number): Promise<{ pair: Pair; socket: string; cmd: { file: string; args: string[] } } | null> {
    const pair = await this.pairOf(roleId, userId);
    const socket = pair ? await this.servers.liveSocket(pair) : null;
    if (!pair || !socket) return null;
    return { pair, socket, cmd: this.tmux.client(pair, socket, ['attach-session', '-t', 'main', '-f', 'read-only,ignore-size']) };
  }

  /**
   * Ends a pair's tmux server and, when the pair has an account of its own, every process of it.
   * `lock` also expires the account (disable, revoke); a removed user's account is deleted.
   */
  async endPair(rec: PairAccountRecord, cause: PairEndCause): Promise<void> {
    const pair = await this.pairOf(rec.roleId, rec.userId);
    if (pair) await this.servers.kill(pair).catch(() => {});
    if (cause === 'user-removed') await this.accounts.remove(rec);
    else await this.accounts.lock(rec, cause);
  }

  /**
   * Admin kill: the pair's server and its processes end; the account stays usable. Asked again
   * while it runs (a kill that came meanwhile, after which the user may have started more), it
   * runs once more after.
   */
  killPair(roleId: number, userId: number): Promise<void> {
    return this.ends.run(`${roleId}:${userId}`, () => this.killPairNow(roleId, userId), { again: true });
  }

  private async killPairNow(roleId: number, userId: number): Promise<void> {
    const pair = await this.pairOf(roleId, userId);
    if (!pair) return;
    await this.servers.kill(pair).catch(() => {});
    const rec = await this.d.repo.pair(roleId, userId);
    if (rec && rec.uid === pair.account.uid) {
      const n = await this.accounts.terminate(pair.account);
      await this.d.audit.emit('gateway', {
        type: 'host.account',
        action: 'terminate',
        account: rec.account,
        uid: rec.uid,
        reason: 'session killed by an administrator',
        processesKilled: n,
      });
    }
  }

  /**
   * Locks or removes, on this machine, every pair whose user or grant is gone (the enforcer's
   * tick): each machine holding a copy of the account does its own, so a pair's tmux server and
   * processes end on whichever node holds them.
   */
  async enforce(): Promise<number> {
    const now = (this.d.realTime ?? systemClock).now();
    const found = await this.d.repo.pairsToEnd(this.accounts.machine, this.d.cluster?.nodeId);
    // A pair with live sessions at other nodes waits for them, at most graceMs from when it was first seen due.
    const seen = new Map<string, number>();
    const due = found.filter((p) => {
      const key = `${p.roleId}:${p.userId}`;
      const since = this.dueSince.get(key) ?? now;
      seen.set(key, since);
      return !this.d.cluster || p.liveElsewhere === 0 || now - since >= this.d.cluster.graceMs;
    });
    this.dueSince = seen;
    // One pair that cannot be ended (a tool failing, an account edited by hand) is logged and
    // tried again next tick; it never holds up the others.
    const each = async (p: PairAccountRecord, what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        this.d.logger.error({ account: p.account, err: (e as Error).message }, `${what} failed`);
      }
    };
    // In the ends' lanes: a pair whose end is held holds one lane, not the pairs after it, nor the
    // ends asked for later (a pair whose end is running already is left to it: due still, it is
    // taken again at the next call).
    const key = (p: PairAccountRecord) => `${p.roleId}:${p.userId}`;
    const removed = await this.d.repo.removedUsersPairs(this.accounts.machine);
    await Promise.all([
      ...due.map((p) => this.ends.run(key(p), () => each(p, `ending pair (${p.cause})`, () => this.endPair(p, p.cause)))),
      ...removed.map((p) => this.ends.run(key(p), () => each(p, 'removing pair account', () => this.accounts.remove(p)))),
    ]);
    return due.length;
  }
}
