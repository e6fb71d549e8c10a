import { existsSync, opendirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { systemClock, type Clock } from '../platform/clock.js';
import { systemRandom, type Random } from '../platform/random.js';
import type { Logger } from '../platform/logger.js';
import type { AuditSink } from '../audit/log.js';
import { ENFORCED_OPTIONS, type Pair, type PtyLaunch, type TmuxHost } from './tmux.js';
import { statFields } from '../platform/proc-stat.js';
import { inLanes } from '../platform/lanes.js';

const DIR_RE = /^r(\d+)-u(\d+)$/;

/** Each pane's id and its effective value of every enforced option. */
const PANE_FORMAT = ['#{pane_id}', ...ENFORCED_OPTIONS.map((o) => `#{${o.name}}`)].join('\t');

/** How many entries of a pair's directory are looked at, and how many of its sockets: the pair can make either huge. */
const SCAN_ENTRIES = 1024;
const SCAN_SOCKETS = 8;
/**
 * How many pairs' servers may be asked at once by the periodic work (reconcile, reaper, intrusion
 * check), and how ends of pairs are run. Each ask is the pair's to hold to its timeout (a program
 * on its socket that never answers, a tracer on our client): one pair then holds one lane, never
 * the pairs queued after it.
 */
export const PAIR_LANES = 8;
/**
 * The periodic asks go one at a time (each is a tmux client started: together they crowd the
 * users' keystrokes), the next alongside only once one has taken ASK_GRACE_MS (an ask takes
 * 5-20 ms here): so a pair that holds its ask delays the others by that much (see inLanes).
 */
export const PAIR_TURNS = { lanes: PAIR_LANES, graceMs: 250 };
/**
 * How long the intrusion check's asks of one server may take together (its list, its detach, its
 * options' reset): a server can answer one ask at once and hold each after it to its timeout.
 */
const CHECK_BUDGET_MS = 5000;
/** Less than this left of the budget: the rest of that server's check waits for its next turn. */
const CHECK_MIN_MS = 50;
/** Clients of one server dealt with per check: a hostile server can answer list-clients with anything. */
const CLIENTS_PER_SERVER = 32;

/** The names ending .sock among the first SCAN_ENTRIES entries of `dir` (never the whole of a directory the pair filled). */
function socketNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const names: string[] = [];
  const d = opendirSync(dir);
  try {
    for (let i = 0; i < SCAN_ENTRIES; i++) {
      const e = d.readSync();
      if (!e) break;
      if (e.name.endsWith('.sock') && e.isSocket()) names.push(e.name);
    }
  } finally {
    d.closeSync();
  }
  return names;
}

interface Managed {
  pair: Pair;
  socket: string;
  /** tmux clients the gateway spawned and that are attached now: pid -> tty. */
  clients: Map<number, string | null>;
  /** The client of ours that started the server: connected over a socketpair, not the path. */
  starter?: number;
  lastDetach: number;
}

/** How a pair's client attaches: the socket, the argv, and whether that client starts the server. */
export interface AttachPlan {
  socket: string;
  cmd: PtyLaunch;
  starts: boolean;
}

/** A client the gateway knows: one of its own, or an admin's registered observer. */
export interface KnownClient {
  pid: number;
  tty: string | null;
}

/**
 * The tmux servers of this gateway: one per (role, user), its socket named at random per server
 * start. Adopts live servers and removes stale sockets at start, kills servers that stayed
 * without a client past the dormant timeout, and detaches (and audits) clients it did not start.
 * Every tmux command goes through TmuxHost, as the pair.
 */
export class TmuxServers {
  private readonly servers = new Map<string, Managed>();
  /** Clients of ours that were told to go but may still be connected for a moment. */
  private readonly leaving = new Map<number, number>();
  private cursor = 0;
  private readonly realTime: Clock;
  private readonly random: Random;

  constructor(
    private readonly o: { socketDir: string; dormantTimeoutMs: number },
    private readonly deps: {
      clock: Clock;
      logger: Logger;
      audit: AuditSink;
      tmux: TmuxHost;
      /** The pair of a socket directory found on disk, from the store (null: not ours to touch). */
      pairOf: (roleId: number, userId: number) => Promise<Pair | null>;
      /** Registered observers (admin CLI), from the store. */
      observers: () => Promise<KnownClient[]>;
      /** Names sockets; the system's by default. */
      random?: Random;
      /** Real time for how long a killed client may linger (process latency, not policy time). */
      realTime?: Clock;
      /** Told when the gateway ended a pair's server (killed, reaped): a cluster releases the pair's claim. */
      gone?: (pair: Pair) => void;
    },
  ) {
    this.realTime = deps.realTime ?? systemClock;
    this.random = deps.random ?? systemRandom;
  }

  /**
   * How to attach the pair's client: to its live server, or, when there is none, by starting one
   * on a fresh socket (as the pair, in its sandbox). Without a sandbox the attaching client starts
   * the server itself (one process chain per first login); `env` becomes the server's
   * environment and so its shells'.
   */
  async attachFor(pair: Pair, env: Record<string, string>, cols: number, rows: number): Promise<AttachPlan> {
    const live = await this.liveSocket(pair);
    const attach = { starts: false as const, args: ['attach-session', '-t', 'main'] };
    if (live) return { socket: live, cmd: this.deps.tmux.ptyClient(pair, live, attach), starts: false };
    const socket = path.join(pair.dir, `${this.random.bytes(8).toString('hex')}.sock`);
    this.servers.set(path.basename(pair.dir), { pair, socket, clients: new Map(), lastDetach: this.deps.clock.now() });
    if (pair.sandbox) {
      await this.deps.tmux.startSandboxedServer(pair, socket, env, cols, rows);
      return { socket, cmd: this.deps.tmux.ptyClient(pair, socket, attach), starts: false };
    }
    return { socket, cmd: this.deps.tmux.ptyClient(pair, socket, { starts: true, cols, rows }), starts: true };
  }

  /** The live server's socket for a pair, or null: never starts one (for read-only viewers). */
  async liveSocket(pair: Pair): Promise<string | null> {
    const known = this.servers.get(path.basename(pair.dir));
    if (known && known.pair.account.uid === pair.account.uid && (await this.deps.tmux.alive(pair, known.socket))) return known.socket;
    return (await this.adoptDir(pair))?.socket ?? null;
  }

  /** Shows a message in the pair's tmux (to every client, for a few seconds). */
  async notify(pair: Pair, socket: string, text: string): Promise<void> {
    await this.deps.tmux.run(pair, socket, ['display-message', '-d', '5000', text.replace(/[#;]/g, ' ')]);
  }

  attached(pair: Pair, pid: number, tty: string | null, startedServer = false): void {
    const s = this.servers.get(path.basename(pair.dir));
    if (!s) return;
    s.clients.set(pid, tty);
    if (startedServer) s.starter = pid;
  }

  detached(pair: Pair, pid: number): void {
    const s = this.servers.get(path.basename(pair.dir));
    if (!s) return;
    s.clients.delete(pid);
    // A killed client can stay attached for a few ms (longer under load): not an intruder.
    this.leaving.set(pid, this.realTime.now() + 10_000);
    if (s.clients.size === 0) s.lastDetach = this.deps.clock.now();
  }

  /** Kills the pair's server (admin kill, lock): as the pair, like every tmux command. */
  async kill(pair: Pair): Promise<void> {
    const key = path.basename(pair.dir);
    const s = this.servers.get(key) ?? (await this.adoptDir(pair));
    if (!s) return;
    await this.deps.tmux.run(pair, s.socket, ['kill-server']);
    this.servers.delete(key);
    this.deps.gone?.(pair);
  }

  /**
   * Adopts the live server in the pair's directory (if any) and removes stale sockets, as the
   * pair. Only sockets owned by the pair's uid are considered; anything else the pair put there
   * (a symlink to another socket, a file) is ignored.
   */
  private async adoptDir(pair: Pair, tally = { removed: 0 }): Promise<Managed | null> {
    let adopted: Managed | null = null;
    // Only real sockets (the pair can fill its directory with anything: directories, fifos,
    // millions of entries), a bounded number, each checked with lstat against the pair's uid.
    const names = socketNames(pair.dir).slice(0, SCAN_SOCKETS);
    for (const f of names) {
      const socket = path.join(pair.dir, f);
      if (this.deps.tmux.socketState(pair, socket) !== 'socket') continue;
      // A program on the socket that holds whoever asks it (or a tracer holding our client, or our
      // `rm`): the rest of this directory is not asked now (a socket can answer the liveness ask and
      // hold the kill). The pair's next login or kill comes back to it.
      const held = (what: string) => {
        this.deps.logger.warn({ socket }, `a pair held the gateway's ${what} to its timeout; the rest of this pair's directory is left`);
      };
      const asked = await this.deps.tmux.run(pair, socket, ['list-sessions']);
      if (asked.killed) {
        held('liveness check');
        break;
      }
      const alive = asked.code === 0;
      if (alive && !adopted) {
        adopted = { pair, socket, clients: new Map(), lastDetach: this.deps.clock.now() };
        this.servers.set(path.basename(pair.dir), adopted);
        continue;
      }
      // Two servers for one pair must never happen: keep one. A dead socket is removed, as the pair.
      if (alive && (await this.deps.tmux.run(pair, socket, ['kill-server'])).killed) {
        held('kill of a second server');
        break;
      }
      const rm = await this.deps.tmux.removeSocket(pair, socket);
      if (rm?.killed) {
        held('removal of a stale socket');
        break;
      }
      tally.removed++;
      this.deps.logger.info({ socket }, 'removed a stale tmux socket');
    }
    return adopted;
  }

  /**
   * At gateway start: adopt every live server, remove every stale socket (`stale`: how many were
   * removed). The pairs are taken in turns (PAIR_TURNS): one whose socket holds the ask holds a lane.
   */
  async reconcile(): Promise<{ adopted: number; stale: number }> {
    let adopted = 0;
    let stale = 0;
    if (!existsSync(this.o.socketDir)) return { adopted, stale };
    // In a fixed order (by role, then user), so a run is repeatable.
    const dirs = readdirSync(this.o.socketDir)
      .flatMap((d) => {
        const m = DIR_RE.exec(d);
        return m ? [[Number(m[1]), Number(m[2])] as const] : [];
      })
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    await inLanes(dirs, { ...PAIR_TURNS, clock: this.realTime }, async ([roleId, userId]) => {
      const pair = await this.deps.pairOf(roleId, userId);
      if (!pair) return;
      const tally = { removed: 0 };
      if (await this.adoptDir(pair, tally)) adopted++;
      stale += tally.removed;
    });
    return { adopted, stale };
  }

  /** Kills servers that have had no client for the dormant timeout. */
  async reap(): Promise<number> {
    let n = 0;
    const dormant = (s: Managed) => s.clients.size === 0 && this.deps.clock.now() - s.lastDetach >= this.o.dormantTimeoutMs;
    const due = [...this.servers].filter(([, s]) => dormant(s));
    await inLanes(due, { ...PAIR_TURNS, clock: this.realTime }, async ([key, s]) => {
      // Looked at again when its lane takes it: a login may have attached (or started a new server) meanwhile.
      if (this.servers.get(key) !== s || !dormant(s)) return;
      const now = this.deps.clock.now();
      await this.deps.tmux.run(s.pair, s.socket, ['kill-server']);
      await this.deps.tmux.removeSocket(s.pair, s.socket);
      this.servers.delete(key);
      this.deps.gone?.(s.pair);
      n++;
      await this.deps.audit.emit('gateway', { type: 'tmux.reaped', socketDir: s.pair.dir, idleMs: now - s.lastDetach });
    });
    return n;
  }

  /** Whether a client (pid, tty) is one we know: by pid or a near ancestor (setpriv, bwrap), or by its tty. */
  private ours(pid: number, tty: string, known: KnownClient[]): boolean {
    if (tty && known.some((k) => k.tty === tty)) return true;
    const pids = new Set(known.map((k) => k.pid));
    let p = pid;
    for (let hop = 0; hop < 4 && p > 1; hop++) {
      if (pids.has(p)) return true;
      try {
        p = Number(statFields(readFileSync(`/proc/${p}/stat`, 'utf8'))[1]); // the ppid
      } catch {
        return false;
      }
    }
    return false;
  }

  private roundRobin(servers: Managed[], n: number): Managed[] {
    if (servers.length <= n) return servers;
    const batch = Array.from({ length: n }, (_, i) => servers[(this.cursor + i) % servers.length]!);
    this.cursor = (this.cursor + n) % servers.length;
    return batch;
  }

  /**
   * Detaches every client of a managed server that the gateway did not start; audits each. Also
   * puts back the hardening options a user turned on from inside (passthrough, clipboard, ...).
   *
   * Asking tmux costs a spawned tmux client per server (measured: 1,000 servers every 10 s spent
   * most of a core in fork/exec), so the kernel is asked first: one read of /proc/net/unix shows,
   * for every socket path, the listening socket and each connection to it. Every client of ours
   * connects through the path except the one that started the server (a socketpair), so a server
   * with more path connections than that has a stranger (or one of our own short commands) and is
   * asked for its clients at once. Every server is also asked in turn,
   * `perTick` a tick, which covers what the kernel table cannot show and re-applies the options.
   */
  async checkIntruders(perTick = 25, unixTable: () => string | null = readUnixTable, optionsPerTick = 5): Promise<number> {
    let n = 0;
    const now = this.realTime.now();
    for (const [pid, until] of this.leaving) if (until <= now) this.leaving.delete(pid);
    const observers = await this.deps.observers();
    const all = [...this.servers.values()];
    const text = unixTable();
    // Without the kernel table every server is asked in turn; with it, only crowded servers
    // plus a few a tick for the hardening options (each ask is a fork of this process: a
    // round-robin of 25 a tick cost a login storm most of a core, measured).
    let batch: Managed[] = this.roundRobin(all, text === null ? perTick : optionsPerTick);
    if (text !== null) {
      const t = parseUnixTable(text);
      // Any local account can add lines to that table (an abstract socket's name may hold a
      // newline), so the crowded set is bounded too: a forged crowd costs one tick's budget.
      const viaPath = (s: Managed) => s.clients.size - (s.starter !== undefined && s.clients.has(s.starter) ? 1 : 0);
      const crowded = all.filter((s) => (t.connected.get(s.socket) ?? 0) > viaPath(s)).slice(0, perTick);
      batch = [...new Set([...crowded, ...batch])];
    }
    await inLanes(batch, { ...PAIR_TURNS, clock: this.realTime }, async (s) => {
      // The server's asks share one timeout: it holds its lane (and the round's end) for one, not three.
      const until = this.realTime.now() + CHECK_BUDGET_MS;
      const left = () => until - this.realTime.now();
      // One tmux command for both: the clients (lines "pid tty name") and each pane's options ("%id\t...").
      const ask = ['list-clients', '-F', '#{client_pid} #{client_tty} #{client_name}', ';', 'list-panes', '-a', '-F', PANE_FORMAT];
      const r = await this.deps.tmux.run(s.pair, s.socket, ask, CHECK_BUDGET_MS);
      if (r.code !== 0) return; // a socket gone meanwhile: skipped
      const paneLines = r.stdout.split('\n').filter((l) => l.startsWith('%'));
      const known: KnownClient[] = [...[...s.clients].map(([pid, tty]) => ({ pid, tty })), ...observers];
      const strangers: { pid: number; name: string }[] = [];
      const lines = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('%'));
      for (const line of lines.slice(0, CLIENTS_PER_SERVER)) {
        const [pidText, tty, name] = line.split(' ');
        const pid = Number(pidText);
        if (this.ours(pid, tty ?? '', known) || (this.leaving.get(pid) ?? 0) > now) continue;
        strangers.push({ pid, name: String(name ?? '').slice(0, 100) });
      }
      if (strangers.length > 0 || lines.length > CLIENTS_PER_SERVER) {
        // One tmux command for all of them, one audit row per stranger up to the bound.
        const detach = strangers.flatMap((x, i) => [...(i ? [';'] : []), 'detach-client', '-t', x.name]);
        if (detach.length && left() >= CHECK_MIN_MS) await this.deps.tmux.run(s.pair, s.socket, detach, left());
        for (const x of strangers) await this.deps.audit.emit('gateway', { type: 'tmux.intrusion', socketDir: s.pair.dir, clientPid: x.pid, client: x.name });
        if (lines.length > CLIENTS_PER_SERVER) {
          const reason = `server listed ${lines.length} clients; checked the first ${CLIENTS_PER_SERVER}`;
          await this.deps.audit.emit('gateway', { type: 'tmux.refused', socketDir: s.pair.dir, reason });
        }
        n += strangers.length;
        this.deps.logger.warn({ socketDir: s.pair.dir, pids: strangers.map((x) => x.pid) }, 'detached tmux clients the gateway did not start');
      }
      if (left() >= CHECK_MIN_MS) await this.enforceOptions(s, paneLines, left());
      else this.deps.logger.warn({ socketDir: s.pair.dir }, "a tmux server used up its intrusion check's time; the rest waits for its next turn");
    });
    return n;
  }

  /**
   * Puts back the hardening options wherever a user changed them from inside (any level: the
   * format shows each pane's effective value), and audits the attempt.
   */
  async enforceOptions(s: { pair: Pair; socket: string }, paneLines: string[], timeoutMs = CHECK_BUDGET_MS): Promise<string[]> {
    const changed = new Set<string>();
    const panes = new Set<string>();
    for (const line of paneLines.slice(0, 256)) {
      const [pane, ...values] = line.split('\t');
      ENFORCED_OPTIONS.forEach((o, i) => {
        if ((values[i] ?? '') !== o.safe) {
          changed.add(`${o.name}=${(values[i] ?? '').slice(0, 40)}`);
          panes.add(pane!);
        }
      });
    }
    if (changed.size === 0) return [];
    const cmds: string[][] = [];
    for (const pane of panes) {
      for (const o of ENFORCED_OPTIONS) {
        if (o.level === 'window') cmds.push(['set-option', '-p', '-u', '-t', pane, o.name], ['set-option', '-w', '-u', '-t', pane, o.name]);
        if (o.level === 'session') cmds.push(['set-option', '-u', '-t', pane, o.name]);
      }
    }
    for (const o of ENFORCED_OPTIONS) cmds.push(['set-option', o.level === 'server' ? '-s' : '-g', o.name, o.value]);
    await this.deps.tmux.run(
      s.pair,
      s.socket,
      cmds.flatMap((c, i) => (i ? [';', ...c] : c)),
      timeoutMs,
    );
    const list = [...changed];
    await this.deps.audit.emit('gateway', { type: 'tmux.option-reset', socketDir: s.pair.dir, options: list });
    this.deps.logger.warn({ socketDir: s.pair.dir, options: list }, 'a user turned hardening options back on; reset');
    return list;
  }
}

/** The kernel's table of unix sockets, or null where it cannot be read. */
function readUnixTable(): string | null {
  try {
    return readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return null;
  }
}

/**
 * Listening socket paths, and how many connections each path has, from /proc/net/unix
 * ("Num RefCount Protocol Flags Type St Inode Path"; St 03 is connected; an accepted connection
 * carries the path of the socket it was accepted on, the connecting side has none).
 */
export function parseUnixTable(text: string): { listening: Set<string>; connected: Map<string, number> } {
  const listening = new Set<string>();
  const connected = new Map<string, number>();
  for (const line of text.split('\n').slice(1)) {
    const m = /^\S+:\s+\S+\s+\S+\s+(\S+)\s+\S+\s+(\S+)\s+\S+ (.+)$/.exec(line);
    if (!m) continue;
    const [, flags, st, p] = m as unknown as [string, string, string, string];
    if (st === '01' && (parseInt(flags, 16) & 0x10000) !== 0) listening.add(p);
    else if (st === '03') connected.set(p, (connected.get(p) ?? 0) + 1);
  }
  return { listening, connected };
}
