import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { sleep, systemClock, type Clock } from '../platform/clock.js';
import { systemRandom, type Random } from '../platform/random.js';
import type { AuditSink } from '../audit/log.js';
import type { HostAccountRepo, PairAccountRecord } from '../store/host-accounts.js';
import { TgError } from '../errors.js';
import { machineId } from '../platform/machine.js';
import { lookupAccount, type OsAccount } from './account.js';
import { preparePairDir } from './dirs.js';
import { runAs, runRoot } from './run.js';

/** uid -> account name, from /etc/passwd. */
function passwdUids(): Map<number, string> {
  const used = new Map<number, string>();
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uidText] = line.split(':');
    const uid = Number(uidText);
    if (name && uidText && Number.isInteger(uid)) used.set(uid, name);
  }
  return used;
}

/** Whether /proc entry `d` is a live process (not a zombie: it is dead and holds nothing) of `uid`. */
function liveOf(proc: string, d: string, uid: number): boolean {
  if (!/^\d+$/.test(d)) return false;
  try {
    const status = readFileSync(`${proc}/${d}/status`, 'utf8');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    return !!m && Number(m[1]) === uid && !/^State:\s+Z/m.test(status);
  } catch {
    return false; // gone meanwhile
  }
}

/** The pids of live processes owned by `uid` (from /proc). */
export function processesOf(uid: number, proc = '/proc'): number[] {
  return readdirSync(proc)
    .filter((d) => liveOf(proc, d, uid))
    .map(Number);
}

/** /proc entries read between two turns of the event loop while a pair's processes are looked for. */
const SCAN_SLICE = 256;

/**
 * processesOf, giving the event loop a turn every SCAN_SLICE entries: a scan reads every process
 * of the host (measured ~35 us each here), and every pair may run isolation.maxProcesses of them,
 * so at the moment an administrator ends one pair the others could make one scan block every
 * session for a good part of a second.
 */
export async function processesOfYielding(uid: number, proc = '/proc'): Promise<number[]> {
  const pids: number[] = [];
  const entries = readdirSync(proc);
  for (let i = 0; i < entries.length; i++) {
    if (i % SCAN_SLICE === SCAN_SLICE - 1) await new Promise((r) => setImmediate(r));
    if (liveOf(proc, entries[i]!, uid)) pids.push(Number(entries[i]));
  }
  return pids;
}

/**
 * useradd with retries: another process (a second gateway, the admin CLI) may hold the passwd lock
 * or take the uid we picked; `argv` is rebuilt each try so a fresh uid is chosen.
 */
async function useradd(name: string, argv: () => string[], wait: { realTime: Clock; random: Random }): Promise<OsAccount> {
  let last = '';
  for (let attempt = 0; attempt < 8; attempt++) {
    const r = await runRoot('useradd', argv());
    const acct = lookupAccount(name);
    if (acct) return acct;
    last = r.stderr.trim().slice(0, 200);
    // A randomised back-off in real time: it waits for another process's lock, not for policy time.
    await sleep(wait.realTime, 20 + wait.random.float() * 100 * (attempt + 1));
  }
  throw new TgError('TG_ERR_ACCOUNT', `useradd ${name} failed: ${last}`);
}

/**
 * The OS accounts of a root gateway: one unprivileged account per role when the admin named none,
 * one per (role, user) pair. Names carry the store's installation id, and an account is used only
 * if this store recorded it: an existing account of the same name is never adopted (a second
 * installation or a re-initialised database would otherwise hand a new person someone else's
 * account, group and home). Creations are serialised in this process.
 *
 * Accounts are allocated once for the store (name and uid, never reused) and made on each machine
 * that needs them (account_hosts): a node on another machine makes the account with the recorded
 * uid, and refuses when that name or uid is taken there by something else. An account recorded
 * on no machine predates clusters: it was made on the one machine there was, so one found with
 * the recorded uid is ours, and the machine is recorded.
 */
export class HostAccounts {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly wait: { realTime: Clock; random: Random };
  /** The machine accounts are made on here. */
  readonly machine: string;

  constructor(
    private readonly cfg: Config['isolation'],
    private readonly deps: {
      repo: HostAccountRepo;
      clock: Clock;
      audit: AuditSink;
      /** The useradd back-off's chance; the system's by default. */
      random?: Random;
      /** Real time for the useradd back-off (never the policy clock, which a test may hold still). */
      realTime?: Clock;
      /** This machine's id (account_hosts); /etc/machine-id by default. */
      machine?: string;
    },
  ) {
    this.wait = { realTime: deps.realTime ?? systemClock, random: deps.random ?? systemRandom };
    this.machine = deps.machine ?? machineId();
  }

  /**
   * An allocated account (`rec`) as it stands on this machine: ours if it exists with the
   * recorded uid and was made here (or predates clusters); null if it must be made here. Throws
   * TG_ERR_ACCOUNT_NOT_OURS when the name or the uid is something else's on this machine.
   */
  private async allocatedHere(name: string, rec: { uid: number }, existing: OsAccount | null): Promise<OsAccount | null> {
    const hosts = await this.deps.repo.accountHosts(name);
    const madeHere = hosts.length === 0 || hosts.includes(this.machine);
    if (existing) {
      const notOurs = (why: string) => new TgError('TG_ERR_ACCOUNT_NOT_OURS', `account ${name} ${why}; it is never adopted`);
      if (existing.uid !== rec.uid) throw notOurs(`has uid ${existing.uid}, not the uid ${rec.uid} this store created it with`);
      if (!madeHere) throw notOurs(`exists on this machine, but this store made it only on ${hosts.join(', ')}`);
      if (hosts.length === 0) await this.deps.repo.recordAccountHost(name, this.machine, this.deps.clock.now());
      return existing;
    }
    const holder = passwdUids().get(rec.uid);
    if (holder !== undefined) {
      throw new TgError('TG_ERR_ACCOUNT_NOT_OURS', `uid ${rec.uid} of account ${name} is taken on this machine by ${holder}; the account cannot be made here`);
    }
    return null;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** The account name of a (role, user) pair, from ids only. */
  async pairName(roleId: number, userId: number): Promise<string> {
    return `${this.cfg.accountPrefix}${await this.deps.repo.installId()}r${roleId}u${userId}`;
  }

  /** The account name tmuxgate gives a role that names no account. */
  async roleAccountName(roleId: number): Promise<string> {
    return `${this.cfg.accountPrefix}${await this.deps.repo.installId()}g${roleId}`;
  }

  /** The unprivileged account of a role that names none: created (system account, no login, own group) once. */
  ensureRoleAccount(roleId: number): Promise<OsAccount> {
    return this.serial(async () => {
      const name = await this.roleAccountName(roleId);
      const rec = await this.deps.repo.roleAccount(roleId);
      const existing = lookupAccount(name);
      if (rec) {
        const here = await this.allocatedHere(name, rec, existing);
        if (here) return here;
      } else if (existing) {
        throw new TgError('TG_ERR_ACCOUNT_NOT_OURS', `account ${name} exists but was not created by this store; remove it or change isolation.accountPrefix`);
      }
      const acct = await useradd(
        name,
        () => [
          '--system',
          '-U',
          '-M',
          '-d',
          '/nonexistent',
          '-s',
          '/usr/sbin/nologin',
          '-c',
          `tmuxgate role ${roleId}`,
          ...(rec ? ['-u', String(rec.uid)] : []),
          name,
        ],
        this.wait,
      );
      if (rec && acct.uid !== rec.uid) throw new TgError('TG_ERR_ACCOUNT', `account ${name} was made with uid ${acct.uid}, not ${rec.uid}`);
      if (!rec) await this.deps.repo.recordRoleAccount(roleId, name, acct.uid, this.deps.clock.now());
      await this.deps.repo.recordAccountHost(name, this.machine, this.deps.clock.now());
      await this.deps.audit.emit('gateway', { type: 'host.account', action: 'create', account: name, uid: acct.uid, reason: `role ${roleId}` });
      return acct;
    });
  }

  /**
   * The pair's account, created on first use with a uid above every uid this store ever gave
   * (uids are never reused), the template's group and the role's shell, and its home directory.
   * A locked pair (user was disabled, grant revoked) is unlocked: the caller has just authorised
   * the login.
   */
  ensurePairAccount(roleId: number, userId: number, template: OsAccount, shell: string): Promise<OsAccount> {
    return this.serial(async () => {
      const { repo, clock, audit } = this.deps;
      let rec = await repo.pair(roleId, userId);
      const name = rec?.account ?? (await this.pairName(roleId, userId));
      const home = rec?.home ?? path.join(this.cfg.homeBase, name);
      if (rec?.removedAt) throw new TgError('TG_ERR_ACCOUNT', `account ${name} was removed with its user`);
      let acct = lookupAccount(name);
      if (acct && !rec) {
        throw new TgError('TG_ERR_ACCOUNT_NOT_OURS', `account ${name} exists but was not created by this store (or has another uid); it is never adopted`);
      }
      // The name and uid are allocated in the store first (under a lock: nodes making first logins
      // at the same moment never pick one uid), then the account is made with them.
      let fresh = false;
      if (!rec) ({ record: rec, reserved: fresh } = await repo.reservePair({ roleId, userId, account: name, home }, (h) => this.pickUid(h), clock.now()));
      acct = await this.allocatedHere(name, rec, acct);
      if (!acct) {
        let uid = rec.uid;
        for (let attempt = 0; !acct; attempt++) {
          try {
            acct = await useradd(
              name,
              () => ['-u', String(uid), '-g', String(template.gid), '-d', home, '-M', '-s', shell, '-c', `tmuxgate role ${roleId} user ${userId}`, name],
              this.wait,
            );
          } catch (e) {
            // Another node on this machine made this very allocation at the same moment.
            const made = lookupAccount(name);
            if (made && made.uid === uid) acct = made;
            // The machine gave a just-allocated uid to something else meanwhile: allocate another
            // (the old one was never an account of ours, so nothing is reused).
            else if (fresh && attempt < 3 && /not unique/.test((e as Error).message)) {
              const moved = await repo.reassignUid(roleId, userId, uid, (h) => this.pickUid(h));
              if (moved === null) throw e;
              uid = moved;
            } else throw e;
          }
        }
        if (acct.uid !== uid) throw new TgError('TG_ERR_ACCOUNT', `account ${name} was created with uid ${acct.uid}, not ${uid}`);
        await repo.recordAccountHost(name, this.machine, clock.now());
        await audit.emit('gateway', { type: 'host.account', action: 'create', account: name, uid: acct.uid });
      }
      // Locked store-wide, or this machine's copy locked (by a disable here that was lifted since,
      // while another machine unlocked its own copy and the store's record).
      if (rec?.lockedAt || (await repo.lockedOn(name, this.machine))) {
        await runRoot('usermod', ['-e', '', name]);
        await repo.setLocked(roleId, userId, null);
        await repo.setLockedOn(name, this.machine, null);
        await audit.emit('gateway', { type: 'host.account', action: 'unlock', account: name, uid: acct.uid });
      }
      preparePairDir(this.cfg.homeBase, name, acct);
      return acct;
    });
  }

  /** The next uid above every one this store allocated, skipping those this machine uses. */
  private pickUid(highest: number | null): number {
    const used = passwdUids();
    let uid = Math.max(this.cfg.uidMin, (highest ?? this.cfg.uidMin - 1) + 1);
    while (used.has(uid) && uid <= this.cfg.uidMax) uid++;
    if (uid > this.cfg.uidMax)
      throw new TgError('TG_ERR_ACCOUNT', `no free uid left in isolation.uidMin..uidMax (${this.cfg.uidMin}-${this.cfg.uidMax}); uids are never reused`);
    return uid;
  }

  /**
   * Ends every process of the account, repeated until /proc shows none. Each round, root SIGKILLs
   * every process of the uid it finds, then `kill -KILL -1` runs as the account itself, which the
   * kernel applies to all of that uid's processes at once (a fork loop cannot outrun it). The
   * account's processes may ptrace that `kill` (it is theirs: same uid, dumpable) and keep it from
   * doing its work; nothing holds off root's SIGKILL, so the rounds still end them. Returns how many
   * were found at first.
   */
  async terminate(acct: OsAccount): Promise<number> {
    if (acct.uid === 0 || acct.uid === process.getuid?.()) return 0; // never ourselves
    // One scan a round (it reads every process of the host), in slices.
    let pids = await processesOfYielding(acct.uid);
    const found = pids.length;
    for (let round = 0; round < 10 && pids.length > 0; round++) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      await runAs(acct, 'kill', ['-9', '-1'], { timeoutMs: 3000 }); // procps kill: '-s KILL -- -1' is a usage error
      pids = await processesOfYielding(acct.uid);
    }
    return found;
  }

  /** Locks a pair on this machine (expires the account so no PAM service admits it) and ends its processes here. */
  async lock(rec: PairAccountRecord, reason: string): Promise<void> {
    const acct = lookupAccount(rec.account);
    await this.deps.repo.setLocked(rec.roleId, rec.userId, this.deps.clock.now());
    await this.deps.repo.setLockedOn(rec.account, this.machine, this.deps.clock.now());
    if (!acct || acct.uid !== rec.uid) return;
    await runRoot('usermod', ['-e', '1', rec.account]);
    const killed = await this.terminate(acct);
    await this.deps.audit.emit('gateway', { type: 'host.account', action: 'lock', account: rec.account, uid: rec.uid, reason, processesKilled: killed });
  }

  /**
   * Removes a removed user's pair account: processes ended, account deleted, home moved into a
   * root-only archive (never left for a later account). Its uid stays recorded and is not reused.
   */
  async remove(rec: PairAccountRecord): Promise<void> {
    const acct = lookupAccount(rec.account);
    const ours = acct !== null && acct.uid === rec.uid;
    const killed = ours ? await this.terminate(acct) : 0;
    const home = path.join(this.cfg.homeBase, rec.account);
    if (rec.home === home && existsSync(home)) {
      const archive = path.join(this.cfg.homeBase, '.removed');
      if (!existsSync(archive)) mkdirSync(archive, { mode: 0o700 }); // homeBase is root-only: no race with a pair
      renameSync(home, path.join(archive, `${rec.account}-${this.deps.clock.now()}`));
    }
    if (ours) await runRoot('userdel', [rec.account]);
    await this.deps.repo.setRemoved(rec.roleId, rec.userId, this.deps.clock.now());
    await this.deps.repo.setRemovedOn(rec.account, this.machine, this.deps.clock.now());
    await this.deps.audit.emit('gateway', {
      type: 'host.account',
      action: 'remove',
      account: rec.account,
      uid: rec.uid,
      processesKilled: killed,
      reason: 'user removed; home archived',
    });
  }
}
