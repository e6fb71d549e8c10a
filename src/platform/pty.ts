import { accessSync, constants, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as nodePty from 'node-pty';
import { atUserPriority } from './priority.js';
import { TgError } from '../errors.js';

/** A pseudo-terminal running one program. The port the session code uses; node-pty behind it. */
export interface Pty {
  readonly pid: number;
  /** The pty's terminal device (/dev/pts/N): how tmux names the client running in it. */
  readonly tty: string | null;
  onData(fn: (data: Buffer) => void): void;
  onExit(fn: (code: number, signal: number | undefined) => void): void;
  /**
   * Writes input. False: it is queued behind a terminal that is not being read (its program is
   * the user's: stopped, or one that never reads); write more only after `onceWritable`.
   */
  write(data: Buffer): boolean | void;
  /** Runs `fn` once nothing written is left queued (at once if nothing is). Absent: input is never held back. */
  onceWritable?(fn: () => void): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  kill(signal?: string): void;
}

/** A Pty that forwards everything to `p`, with `over` in place of the members it names. */
export function ptyWith(p: Pty, over: Partial<Pty>): Pty {
  return {
    pid: p.pid,
    tty: p.tty,
    onData: (fn) => p.onData(fn),
    onExit: (fn) => p.onExit(fn),
    write: (d) => p.write(d),
    ...(p.onceWritable ? { onceWritable: (fn: () => void) => p.onceWritable!(fn) } : {}),
    resize: (c, r) => p.resize(c, r),
    pause: () => p.pause(),
    resume: () => p.resume(),
    kill: (signal) => p.kill(signal),
    ...over,
  };
}

export interface PtySpawnOptions {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
  term: string;
}

/**
 * An account to start a program as (spawnAsArgv: the static helper tg-spawn-as, built with the
 * patched node-pty, which switches in its own memory): its uid and gid (the account's primary group),
 * the groups initgroups(3) gives it, no capability in any set (bounding set emptied), and
 * RLIMIT_NPROC `nproc` when set; what `prlimit --nproc -- setpriv --reuid --regid --init-groups
 * --inh-caps=-all --bounding-set=-all` did in two execs of dynamically linked tools.
 */
export interface SpawnCredentials {
  uid: number;
  gid: number;
  nproc: number | null;
}

interface SpawnAsNative {
  tgSpawnAs?: boolean;
  tgSpawnAsPath?: string;
  tgGroupsOf?: (uid: number, gid: number) => number[];
}
let native: SpawnAsNative | null = null;

/**
 * Whether this process can start a program as another account through node-pty's helper
 * (tg-spawn-as): as root, with the patched native module and the helper built (node-pty reports
 * both). Else the caller runs setpriv, as before.
 */
export function canSpawnAs(): boolean {
  if (native === null) {
    try {
      native = createRequire(import.meta.url)('node-pty/lib/unixTerminal.js') as SpawnAsNative;
    } catch {
      native = {};
    }
  }
  return native.tgSpawnAs === true && process.getuid?.() === 0;
}

/**
 * argv that starts `path` (absolute) as the account, in "/": one exec of a static helper where
 * setpriv (and prlimit) took two of dynamically linked tools. The one route to tg-spawn-as (through
 * host/run.ts asAccount): a short program runs this argv with execFile; a pty client gives it to
 * spawnPty, and node-pty's posix_spawn (an absolute path, as root) makes the helper a session
 * leader with the pty as its controlling terminal before it switches and execs the program.
 * node-pty itself is never given a uid or gid: the patched module refuses them (its stock fork
 * path would setuid keeping root's groups). Only where canSpawnAs().
 */
export function spawnAsArgv(as: SpawnCredentials, path: string, args: string[]): { file: string; args: string[] } {
  if (!canSpawnAs() || !native?.tgGroupsOf || !native.tgSpawnAsPath) throw new TgError('TG_ERR_INTERNAL', 'tg-spawn-as is not available');
  if (!validCredentials(as) || !path.startsWith('/')) {
    throw new TgError('TG_ERR_INTERNAL', `refusing to start ${path} as uid ${as.uid} gid ${as.gid}`);
  }
  const groups = native.tgGroupsOf(as.uid, as.gid).map(String);
  return {
    file: native.tgSpawnAsPath,
    args: [String(as.uid), String(as.gid), String(as.nproc ?? 0), '/', String(groups.length), ...groups, '--', path, path, ...args],
  };
}

/** An id node-pty may pass on: a whole number above 0 that fits its int32 (-1 would mean "unchanged", 0 root). */
const validId = (n: number) => Number.isInteger(n) && n > 0 && n < 2 ** 31;
const validCredentials = (as: SpawnCredentials) => validId(as.uid) && validId(as.gid) && (as.nproc === null || validId(as.nproc));

const resolved = new Map<string, string>();

/**
 * `file` as execvp would find it on the child's PATH, made absolute: node-pty (patched) spawns an
 * absolute path with posix_spawn, without forking the gateway. Cached per file and PATH; a name
 * not found is left as it is (node-pty's fork path then fails the way execvp does).
 */
export function onPath(file: string, pathVar: string | undefined): string {
  if (file.includes('/')) return file;
  const key = `${file}\0${pathVar ?? ''}`;
  let found = resolved.get(key);
  if (found === undefined) {
    found = file;
    for (const dir of (pathVar ?? '/usr/bin:/bin').split(':')) {
      if (!path.isAbsolute(dir)) continue;
      try {
        accessSync(path.join(dir, file), constants.X_OK);
        found = path.join(dir, file);
        break;
      } catch {
        /* not here */
      }
    }
    if (found !== file) resolved.set(key, found);
  }
  return found;
}

/** Spawns through node-pty with raw Buffers (no decoding cost, no split UTF-8); as an account: spawnAsArgv's argv. */
export function spawnPty(o: PtySpawnOptions): Pty {
  const p = atUserPriority(() =>
    nodePty.spawn(onPath(o.file, o.env.PATH), o.args, {
      name: o.term,
      cols: o.cols,
      rows: o.rows,
      cwd: o.cwd,
      env: o.env,
      encoding: null,
    } as nodePty.IPtyForkOptions),
  );
  const input = ptyInput(p);
  return {
    pid: p.pid,
    tty: (p as unknown as { ptsName?: string }).ptsName ?? null,
    onData: (fn) => void p.onData((d: string | Buffer) => fn(typeof d === 'string' ? Buffer.from(d) : d)),
    onExit: (fn) => void p.onExit((e) => fn(e.exitCode, e.signal)),
    ...input,
    resize: (c, r) => p.resize(c, r),
    pause: () => p.pause(),
    resume: () => p.resume(),
    kill: (s) => p.kill(s),
  };
}

/** The part of node-pty 1.1's UnixTerminal that the direct write path relies on. */
interface NodePtyInternals {
  _fd?: unknown;
}

/** How long a full pty waits before the next try, at first and at most (ms). */
const RETRY_FIRST_MS = 1;
const RETRY_MAX_MS = 50;

/**
 * The user's input to a pty, written straight to the (non-blocking) master: node-pty sends every
 * write through the libuv thread pool (fs.write), the same pool that runs the recordings'
 * fdatasync (measured with 200 sessions printing: a keystroke waited behind those syncs, echo p99
 * 40 ms against sshd's 10), and meets a full pty by retrying at once on every turn of the event
 * loop, for as long as the pty stays full. The pty's program is the user's (a tmux client their
 * server can make exec anything, or that they stop: it runs as their account): measured, one
 * paste into a pty whose program reads nothing kept the gateway's event loop ~45% busy (every
 * session's loop) and queued all of it in memory, as long as the user liked.
 * So here what does not fit (EAGAIN, or a partial write) is queued, retried on a timer that backs
 * off to RETRY_MAX_MS, and `write` says false: the caller stops reading the sender (the SSH
 * channel's window then holds the rest at the user's client) until `onceWritable`. Bytes never
 * overtake each other. Another version of node-pty (no `_fd`): its own path, never held back.
 */
export function ptyInput(p: nodePty.IPty): Pick<Pty, 'write' | 'onceWritable'> {
  const fd = (p as unknown as NodePtyInternals)._fd;
  if (typeof fd !== 'number') return { write: (d) => p.write(d as unknown as string) };
  let queue: Buffer[] = [];
  let waiters: (() => void)[] = [];
  let timer: NodeJS.Timeout | null = null;
  let retryMs = RETRY_FIRST_MS;
  let gone = false;
  const release = () => {
    const w = waiters;
    waiters = [];
    for (const fn of w) fn();
  };
  /** Writes what it can of the queue; false once the pty is full. */
  const flush = (): boolean => {
    while (queue.length) {
      const d = queue[0]!;
      let n: number;
      try {
        n = writeSync(fd, d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return false;
        // The terminal is gone (EIO once its program exited): nothing more will be read.
        gone = true;
        queue = [];
        break;
      }
      if (n < d.length) {
        queue[0] = d.subarray(n);
        return false;
      }
      queue.shift();
    }
    return true;
  };
  const retry = () => {
    timer = null;
    const before = queue[0];
    if (flush()) {
      retryMs = RETRY_FIRST_MS;
      release();
      return;
    }
    retryMs = queue[0] !== before ? RETRY_FIRST_MS : Math.min(RETRY_MAX_MS, retryMs * 2);
    timer = setTimeout(retry, retryMs);
    timer.unref();
  };
  p.onExit(() => {
    gone = true;
    queue = [];
    if (timer) clearTimeout(timer);
    timer = null;
    release();
  });
  return {
    write: (d) => {
      if (gone || d.length === 0) return true;
      queue.push(d);
      if (queue.length > 1) return false; // behind what is queued already; the timer is running
      if (flush()) return true;
      timer = setTimeout(retry, retryMs);
      timer.unref();
      return false;
    },
    onceWritable: (fn) => {
      if (queue.length === 0) fn();
      else waiters.push(fn);
    },
  };
}
