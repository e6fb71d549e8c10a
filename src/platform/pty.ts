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
  write(data: Buffer): void;
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
  return {
    pid: p.pid,
    tty: (p as unknown as { ptsName?: string }).ptsName ?? null,
    onData: (fn) => void p.onData((d: string | Buffer) => fn(typeof d === 'string' ? Buffer.from(d) : d)),
    onExit: (fn) => void p.onExit((e) => fn(e.exitCode, e.signal)),
    write: directWriter(p),
    resize: (c, r) => p.resize(c, r),
    pause: () => p.pause(),
    resume: () => p.resume(),
    kill: (s) => p.kill(s),
  };
}

/** The parts of node-pty 1.1's UnixTerminal that the direct write path relies on. */
interface NodePtyInternals {
  _fd?: unknown;
  _writeStream?: { _writeQueue?: unknown };
}

/**
 * Writes the user's keystrokes straight to the pty master when nothing is queued before them.
 * node-pty sends every write through the libuv thread pool (fs.write), the same pool that runs
 * the recordings' fdatasync: measured with 200 sessions printing, a keystroke waited behind
 * those syncs and echo p99 was 40 ms against sshd's 10. The master fd is non-blocking, so
 * writeSync cannot stall the event loop: what does not fit (EAGAIN, or a partial write of a large
 * paste) goes to node-pty's queue, and while that queue holds anything every write goes there
 * too, so bytes never overtake each other. If node-pty's internals are not what this expects
 * (another version), every write takes node-pty's own path.
 */
export function directWriter(p: nodePty.IPty): (d: Buffer) => void {
  const internals = p as unknown as NodePtyInternals;
  const fd = internals._fd;
  const queue = internals._writeStream?._writeQueue;
  const direct = typeof fd === 'number' && Array.isArray(queue);
  return (d) => {
    let rest = d;
    if (direct && (queue as unknown[]).length === 0) {
      try {
        const n = writeSync(fd as number, d);
        if (n === d.length) return;
        rest = d.subarray(n);
      } catch (e) {
        // EAGAIN: the pty is full; anything else: node-pty's path meets it and reports it.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') rest = d;
      }
    }
    p.write(rest as unknown as string);
  };
}
