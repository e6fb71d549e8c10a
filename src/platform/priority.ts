import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { statFields } from './proc-stat.js';

/**
 * The gateway's CPU priority above its users' programs. Linux keeps the nice value per thread
 * (setpriority with pid 0 is the calling thread) and a child inherits the value of the thread
 * that forked it. The gateway raises its main thread, where every socket, pty and packet is
 * handled, so a box full of busy shells still answers keystrokes and logins first, and a user's
 * CPU hog cannot keep the gateway from serving others. Every child is forked at the priority the
 * gateway was started with (`atUserPriority` around the spawn, which forks synchronously): a
 * user's program never runs above where it would under sshd.
 */
let raised: { gateway: number; users: number } | null = null;

/** Raises the calling thread to `nice` (-20..-1); an error string if the OS refuses (not root). */
export function raiseGatewayPriority(nice: number): string | null {
  if (nice >= 0) return null;
  const users = raised?.users ?? os.getPriority(0);
  try {
    os.setPriority(0, nice);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  raised = { gateway: nice, users };
  return null;
}

/** Runs `fn` (a synchronous spawn) with the calling thread at the users' priority, then raises it again. */
export function atUserPriority<T>(fn: () => T): T {
  const r = raised;
  if (!r) return fn();
  os.setPriority(0, r.users); // lowering one's own priority is always allowed
  try {
    return fn();
  } finally {
    try {
      os.setPriority(0, r.gateway);
    } catch {
      raised = null; // CAP_SYS_NICE is gone: the gateway runs at the users' priority from here on
    }
  }
}

/**
 * What became of the gateway's session group (Linux's sched autogroup): raised; or why not.
 * - `no-autogroup`: the kernel has none, or it is off: the thread's nice is what counts. (In a CPU
 *   cgroup of its own, a container or a systemd unit with CPU accounting, the group is raised but
 *   the kernel ignores it: the cgroup's weight decides there, and the thread's nice within it.)
 * - `shares-session`: the gateway does not lead its session (started from a terminal): raising
 *   the group would raise that terminal's shell and whatever else runs in it.
 */
export type SessionGroupResult = { kind: 'raised' | 'no-autogroup' | 'shares-session' } | { kind: 'refused'; err: string };

/**
 * Raises the gateway's session group to `nice` as well as its thread. With sched autogroup on
 * (Debian's kernels), the CPU is shared between sessions first and a nice value counts only
 * against the processes of its own session; every tmux client, server and pane leads a session
 * of its own (setsid), so the thread's nice alone counts for nothing against a user's programs:
 * measured, a gateway at nice -5 waited 35-150 ms for the CPU each time 20 shells ran a command at
 * once. Only a gateway that leads its session (a service) raises it. Every tmux client leaves
 * the session at its spawn (node-pty's setsid), and with it the servers and shells: nothing of a
 * user's runs in the raised group. The pair's short programs (host/run.ts runAs: `rm`, `kill`)
 * leave it too, on a pty of their own: a pair can ptrace them and make them run anything. Only
 * root's `useradd`/`usermod`/`userdel` (runRoot, execFile) stay in it. `proc`: for tests.
 */
export function raiseSessionGroup(nice: number, proc = '/proc'): SessionGroupResult {
  if (nice >= 0) return { kind: 'no-autogroup' };
  let enabled: string;
  let stat: string;
  try {
    enabled = readFileSync(`${proc}/sys/kernel/sched_autogroup_enabled`, 'utf8').trim();
    stat = readFileSync(`${proc}/self/stat`, 'utf8');
  } catch {
    return { kind: 'no-autogroup' };
  }
  if (enabled !== '1' || !existsSync(`${proc}/self/autogroup`)) return { kind: 'no-autogroup' };
  const [pid] = stat.split(' ', 1);
  const session = statFields(stat)[3];
  if (session !== pid) return { kind: 'shares-session' };
  try {
    writeFileSync(`${proc}/self/autogroup`, String(nice));
  } catch (e) {
    return { kind: 'refused', err: e instanceof Error ? e.message : String(e) };
  }
  return { kind: 'raised' };
}
