import os from 'node:os';

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
