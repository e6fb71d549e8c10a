import { execFile } from 'node:child_process';
import type { OsAccount } from './account.js';
import { atUserPriority } from '../platform/priority.js';
import { canSpawnAs, onPath, spawnAsArgv, spawnPty } from '../platform/pty.js';

/** The environment of a short helper run as a pair: nothing of the gateway's own. */
const PLAIN_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };

/**
 * argv that starts `file args` as `account`: tg-spawn-as (spawnAsArgv, as the gateway's own pty
 * clients: TmuxHost.ptyClient), else setpriv, with its uid, gid and groups and no capabilities at
 * all (stock node-pty's uid switch keeps root's supplementary groups). When the gateway already
 * runs as that account (development mode) the program runs as is.
 */
export function asAccount(
  account: OsAccount,
  file: string,
  args: string[],
  limits?: { nproc: number },
  o: { sandboxed?: boolean } = {},
): { file: string; args: string[] } {
  if (account.uid === process.getuid?.()) return { file, args };
  // One static exec where the node-pty helper is built (src/platform/pty.ts spawnAsArgv); not
  // inside a sandbox, where the install directory may be hidden (a private /tmp, a hidden path).
  if (!o.sandboxed && canSpawnAs())
    return spawnAsArgv({ uid: account.uid, gid: account.gid, nproc: limits?.nproc ?? null }, onPath(file, PLAIN_ENV.PATH), args);
  const ids = ['--reuid', String(account.uid), '--regid', String(account.gid), '--init-groups'];
  const switched = [...ids, '--inh-caps=-all', '--bounding-set=-all', '--', file, ...args];
  // RLIMIT_NPROC counts the account's processes: a pair cannot use up the host's pids (and with
  // them every other login). Set by root just before the switch, inherited by all the pair starts.
  if (limits) return { file: 'prlimit', args: [`--nproc=${limits.nproc}:${limits.nproc}`, '--', 'setpriv', ...switched] };
  return { file: 'setpriv', args: switched };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Killed by its bound (time or output), not ended by itself: a peer that may hold the next one too. */
  killed?: true;
}

/**
 * Runs a short program as `account` with a timeout and a plain environment; never throws for a
 * non-zero exit (the caller reads `code`). Output is bounded: a hostile peer cannot fill memory.
 * The program is the pair's own process (its uid, dumpable after its exec): the pair can ptrace it
 * and make it run anything. So it starts on a pty (runOnPty), in a session of its own like every
 * tmux client, never in the gateway's session, whose sched autogroup the gateway raises
 * (raiseSessionGroup); and with the pair's process limit where the caller gives one (`nproc`).
 */
export function runAs(account: OsAccount, file: string, args: string[], o: { timeoutMs?: number; nproc?: number } = {}): Promise<RunResult> {
  const c = asAccount(account, file, args, o.nproc ? { nproc: o.nproc } : undefined);
  return runOnPty(c.file, c.args, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
}

/** Runs a root-side administrative program (useradd, usermod, userdel: in /usr/sbin) with a timeout. */
export function runRoot(file: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  return runArgv(file, args, { timeoutMs, env: { ...PLAIN_ENV, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
}

/**
 * Runs root's argv with execFile, a timeout and a plain environment: runRoot. It stays in the
 * gateway's session (execFile cannot setsid), which is why no program of a pair runs here (runAs).
 */
function runArgv(file: string, args: string[], o: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
  const timeoutMs = o.timeoutMs ?? 5000;
  const env = o.env ?? PLAIN_ENV;
  return new Promise((resolve) => {
    atUserPriority(() =>
      execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', env, cwd: '/', maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        // A program that could not be started says so in stderr, so callers' errors name the cause.
        resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err ? err.message : '') });
      }),
    );
  });
}

/** How long a short program's exit may take to be reported after SIGKILL before its caller is answered anyway. */
const EXIT_AFTER_KILL_MS = 2000;

/** What a short program run on a pty may print, at most: more is a hostile peer, and ends it. */
const PTY_OUTPUT_MAX = 1024 * 1024;

/**
 * Runs an argv built elsewhere (already switched to an account) on a pty of its own, for the short
 * tmux commands the gateway runs all the time (the intrusion check's every tick, liveness, kills).
 * execFile forks the gateway: the kernel copies its page tables, 8 ms of blocked event loop per
 * command at 80 MB of RSS here and up to tens of ms on a gateway holding sessions, which every
 * keystroke of every session waited behind. node-pty starts the program with posix_spawn (a
 * vfork: nothing copied, whatever the gateway's size). A terminal merges stdout and stderr (both
 * come back in `stdout`, and in `stderr` too when the program failed) and ends lines with CR LF
 * (read back as LF). Never throws for a non-zero exit; bounded in time and in output.
 */
export function runOnPty(file: string, args: string[], o: { timeoutMs?: number } = {}): Promise<RunResult> {
  const timeoutMs = o.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    let out: Buffer[] = [];
    let size = 0;
    let done = false;
    let killed = false;
    let held: ReturnType<typeof setTimeout> | undefined;
    const finish = (code: number, why = killed ? `killed after ${timeoutMs} ms or ${PTY_OUTPUT_MAX} bytes` : '') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(held);
      const text = Buffer.concat(out).toString('utf8').replace(/\r\n/g, '\n');
      out = [];
      resolve({ code, stdout: text, stderr: code === 0 ? '' : text || why, ...(killed ? { killed: true as const } : {}) });
    };
    let p: ReturnType<typeof spawnPty>;
    try {
      p = spawnPty({ file, args, env: PLAIN_ENV, cwd: '/', cols: 200, rows: 50, term: 'dumb' });
    } catch (e) {
      resolve({ code: 1, stdout: '', stderr: (e as Error).message });
      return;
    }
    const kill = () => {
      if (killed) return;
      killed = true;
      try {
        p.kill('SIGKILL');
      } catch {
        // gone already
      }
      // A program running as a pair can be ptraced by the pair: a tracer that never reaps it keeps
      // its exit from ever reaching us. The caller (a reconcile, a liveness check, a kill) is not
      // held up by it: it is answered as failed, and the process reaped whenever the tracer lets go.
      held = setTimeout(() => finish(1, `killed after ${timeoutMs} ms, and its exit was never reported (held by a tracer?)`), EXIT_AFTER_KILL_MS);
    };
    const timer = setTimeout(kill, timeoutMs);
    p.onData((d) => {
      if (killed) return;
      size += d.length;
      if (size > PTY_OUTPUT_MAX) return kill();
      out.push(d);
    });
    // node-pty reports the exit once the terminal is drained (or 200 ms after, if a process the
    // program left behind holds it open).
    p.onExit((code, signal) => finish(killed || signal ? 1 : code));
  });
}
