import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { AuditSink } from '../audit/log.js';
import type { Db } from '../store/db.js';

const run = promisify(execFile);
const DIR_RE = /^r(\d+)-u(\d+)$/;

/** Whether a tmux server answers on `socket`. */
export async function tmuxAlive(tmuxPath: string, socket: string): Promise<boolean> {
  try {
    await run(tmuxPath, ['-S', socket, 'list-sessions'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

interface Managed {
  dir: string;
  socket: string;
  /** tmux client pids the gateway spawned and that are attached now. */
  clients: Set<number>;
  lastDetach: number;
  roleId: number;
  userId: number;
}

/**
 * The tmux servers of this gateway: one per (role, user), its socket named at random per server
 * start. Adopts live servers and removes stale sockets at start, kills servers that stayed
 * without a client past the dormant timeout, and detaches (and audits) clients it did not start.
 */
export class TmuxServers {
  private readonly servers = new Map<string, Managed>();
  constructor(
    private readonly o: { socketDir: string; tmuxPath: string; dormantTimeoutMs: number },
    private readonly deps: { clock: Clock; logger: Logger; audit: AuditSink; db: Db },
  ) {}

  /** The socket to use for the pair's server: the live one, or a fresh random name. */
  async socketFor(dir: string, roleId: number, userId: number): Promise<string> {
    const key = path.basename(dir);
    const known = this.servers.get(key);
    if (known && existsSync(known.socket) && (await tmuxAlive(this.o.tmuxPath, known.socket))) return known.socket;
    const live = await this.adoptDir(dir, roleId, userId);
    if (live) return live.socket;
    const socket = path.join(dir, `${randomBytes(8).toString('hex')}.sock`);
    this.servers.set(key, { dir, socket, clients: new Set(), lastDetach: this.deps.clock.now(), roleId, userId });
    return socket;
  }

  /** The live server's socket for a pair, or null: never starts one (for read-only viewers). */
  async liveSocket(dir: string, roleId: number, userId: number): Promise<string | null> {
    const known = this.servers.get(path.basename(dir));
    if (known && existsSync(known.socket) && (await tmuxAlive(this.o.tmuxPath, known.socket))) return known.socket;
    return (await this.adoptDir(dir, roleId, userId))?.socket ?? null;
  }

  /** Shows a message in the pair's tmux (to every client, for a few seconds). */
  async notify(socket: string, text: string): Promise<void> {
    await run(this.o.tmuxPath, ['-S', socket, 'display-message', '-d', '5000', text.replace(/[#;]/g, ' ')]).catch(() => {});
  }

  attached(dir: string, pid: number): void {
    this.servers.get(path.basename(dir))?.clients.add(pid);
  }

  /** Clients of ours that were told to go but may still be connected for a moment. */
  private readonly leaving = new Map<number, number>();

  detached(dir: string, pid: number): void {
    const s = this.servers.get(path.basename(dir));
    if (!s) return;
    s.clients.delete(pid);
    // A killed client can stay attached for a few ms (longer under load): not an intruder.
    this.leaving.set(pid, Date.now() + 10_000);
    if (s.clients.size === 0) s.lastDetach = this.deps.clock.now();
  }

  /** Adopts the live server in `dir` (if any); unlinks stale sockets. */
  private async adoptDir(dir: string, roleId: number, userId: number): Promise<Managed | null> {
    let adopted: Managed | null = null;
    for (const f of existsSync(dir) ? readdirSync(dir).filter((x) => x.endsWith('.sock')) : []) {
      const socket = path.join(dir, f);
      if (!adopted && (await tmuxAlive(this.o.tmuxPath, socket))) {
        adopted = { dir, socket, clients: new Set(), lastDetach: this.deps.clock.now(), roleId, userId };
        this.servers.set(path.basename(dir), adopted);
      } else if (adopted && (await tmuxAlive(this.o.tmuxPath, socket))) {
        // Two servers for one pair must never happen; keep one, stop the other.
        await run(this.o.tmuxPath, ['-S', socket, 'kill-server']).catch(() => {});
        unlinkSync(socket);
      } else {
        unlinkSync(socket);
        this.deps.logger.info({ socket }, 'removed a stale tmux socket');
      }
    }
    return adopted;
  }

  /** At gateway start: adopt every live server, remove every stale socket. */
  async reconcile(): Promise<{ adopted: number; stale: number }> {
    let adopted = 0;
    let stale = 0;
    if (!existsSync(this.o.socketDir)) return { adopted, stale };
    for (const d of readdirSync(this.o.socketDir)) {
      const m = DIR_RE.exec(d);
      if (!m) continue;
      const dir = path.join(this.o.socketDir, d);
      const before = readdirSync(dir).filter((x) => x.endsWith('.sock')).length;
      const a = await this.adoptDir(dir, Number(m[1]), Number(m[2]));
      if (a) adopted++;
      stale += before - (a ? 1 : 0);
    }
    return { adopted, stale };
  }

  /** Kills servers that have had no client for the dormant timeout. */
  async reap(): Promise<number> {
    let n = 0;
    const now = this.deps.clock.now();
    for (const [key, s] of this.servers) {
      if (s.clients.size > 0 || now - s.lastDetach < this.o.dormantTimeoutMs) continue;
      await run(this.o.tmuxPath, ['-S', s.socket, 'kill-server']).catch(() => {});
      rmSync(s.socket, { force: true });
      this.servers.delete(key);
      n++;
      this.deps.audit.emit('gateway', { type: 'tmux.reaped', socketDir: s.dir, idleMs: now - s.lastDetach });
    }
    return n;
  }

  /** Whether `pid` or one of its near ancestors (setpriv, bwrap) is in `known`. */
  private ours(pid: number, known: Set<number>): boolean {
    let p = pid;
    for (let hop = 0; hop < 4 && p > 1; hop++) {
      if (known.has(p)) return true;
      try {
        p = Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      } catch {
        return false;
      }
    }
    return false;
  }

  private cursor = 0;

  private roundRobin(servers: Managed[], n: number): Managed[] {
    if (servers.length <= n) return servers;
    const batch = Array.from({ length: n }, (_, i) => servers[(this.cursor + i) % servers.length]!);
    this.cursor = (this.cursor + n) % servers.length;
    return batch;
  }

  /**
   * Detaches every client of a managed server that the gateway did not start; audits each.
   *
   * Asking tmux costs a spawned tmux client per server (measured: 1,000 servers every 10 s spent
   * most of a core in fork/exec), so the kernel is asked first: one read of /proc/net/unix shows,
   * for every socket path, the listening socket and each connection to it. Only a server with
   * more connections than clients of ours (a stranger, or one of our own short tmux commands) is
   * asked for its clients, so every server is covered every tick. A server whose socket the
   * kernel table does not show (another network namespace) is asked in turn, `perTick` a tick.
   */
  async checkIntruders(perTick = 25, unixTable: () => string | null = readUnixTable): Promise<number> {
    let n = 0;
    const observers = new Set((this.deps.db.prepare('SELECT pid FROM tmux_observers').all() as { pid: number }[]).map((r) => r.pid));
    for (const [pid, until] of this.leaving) if (until <= Date.now()) this.leaving.delete(pid);
    const all = [...this.servers.values()].filter((s) => existsSync(s.socket));
    const text = unixTable();
    let batch: Managed[];
    if (text === null) {
      batch = this.roundRobin(all, perTick);
    } else {
      const t = parseUnixTable(text);
      const unseen = all.filter((s) => !t.listening.has(s.socket));
      const crowded = all.filter((s) => t.listening.has(s.socket) && (t.connected.get(s.socket) ?? 0) > s.clients.size);
      batch = [...crowded, ...this.roundRobin(unseen, perTick)];
    }
    for (const s of batch) {
      let out = ''; // a socket gone since the filter above makes list-clients fail: skipped
      try {
        out = (await run(this.o.tmuxPath, ['-S', s.socket, 'list-clients', '-F', '#{client_pid} #{client_name}'], { timeout: 5000 })).stdout;
      } catch {
        continue;
      }
      for (const line of out.split('\n').filter(Boolean)) {
        const [pidText, name] = line.split(' ');
        const pid = Number(pidText);
        if (this.ours(pid, s.clients) || this.ours(pid, observers) || (this.leaving.get(pid) ?? 0) > Date.now()) continue;
        await run(this.o.tmuxPath, ['-S', s.socket, 'detach-client', '-t', name ?? '']).catch(() => {});
        n++;
        this.deps.audit.emit('gateway', { type: 'tmux.intrusion', socketDir: s.dir, clientPid: pid, client: String(name ?? '') });
        this.deps.logger.warn({ socketDir: s.dir, pid }, 'detached a tmux client the gateway did not start');
      }
    }
    return n;
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
