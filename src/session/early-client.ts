import type { Clock } from '../platform/clock.js';
import { ptyWith, type Pty, type PtySpawnOptions } from '../platform/pty.js';

/** What a held client may keep in memory before its pty is paused (tmux's first screen is a few KB). */
export const MAX_HELD_BYTES = 64 * 1024;

/** How long a tmux client told to go (SIGHUP: tmux detaches it in milliseconds) may linger before it is killed outright. */
export const KILL_GRACE_MS = 5_000;

/**
 * The pty, whose program is killed outright (SIGKILL) when it has not exited `KILL_GRACE_MS`
 * after it was told to go. A pair's tmux server can make its client exec any program of the
 * user's (`detach-client -E`, or a fake server's MSG_SHELL), which can ignore SIGHUP: such a
 * program would otherwise run on in a pty the gateway holds, and, since a client stays known to
 * the intrusion check (by pid, ancestry and tty) until its process exits, anything it started
 * could attach to the pair's server unrecorded and never be taken for an intruder; the server
 * would never be reaped nor a cluster claim released. Real time: process latency, not policy.
 */
export function withKillGrace(pty: Pty, realTime: Clock): Pty {
  let exited = false;
  let cancel: (() => void) | null = null;
  pty.onExit(() => {
    exited = true;
    cancel?.();
    cancel = null;
  });
  return ptyWith(pty, {
    kill: (signal) => {
      pty.kill(signal); // throws when the process is gone already: then its exit is on its way
      if (exited || cancel || signal === 'SIGKILL') return;
      cancel = realTime.setTimeout(() => {
        cancel = null;
        if (exited) return;
        try {
          pty.kill('SIGKILL');
        } catch {
          /* gone meanwhile */
        }
      }, KILL_GRACE_MS);
    },
  });
}

/**
 * A session's tmux client started while the session is still being put on the record (its row,
 * its recording, the session.start audit event): tmux and the shell take ~50 ms to draw a first
 * screen and those writes ~5 ms on SQLite (~15 on a shared PostgreSQL), so they overlap instead
 * of adding up.
 *
 * Nothing the client prints goes anywhere until the session takes it (`take`), which it does
 * only once the start is on the record: until then its output is held here, up to
 * MAX_HELD_BYTES, then the pty is paused and the rest waits in the kernel. The user's keystrokes
 * cannot reach it either: only the session wires the channel to the pty. What was held then
 * goes through the session like everything after it (recorded first, then to the user), in
 * order, followed by the client's exit if it came meanwhile. A session that never takes it (the
 * record could not be written, the client left, the session ended) must `discard` it, which
 * kills it. A spawn that threw is kept and thrown again by `take`, so the session reports it as
 * it reports any spawn failure. (That a client told to go, discarded or ended by its session,
 * does go is the spawner's: ShellStarter spawns every client withKillGrace.)
 */
export class EarlyClient {
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private exit: [code: number, signal?: number] | null = null;
  private state: 'held' | 'taken' | 'live' | 'discarded' = 'held';
  private pausedByHold = false;
  private pausedByTaker = false;
  private readonly dataFns: ((d: Buffer) => void)[] = [];
  private readonly exitFns: ((code: number, signal?: number) => void)[] = [];

  private constructor(
    private readonly pty: Pty | null,
    private readonly spawnError: unknown,
  ) {
    if (!pty) return;
    pty.onData((d) => {
      if (this.state === 'live') {
        for (const fn of this.dataFns) fn(d);
        return;
      }
      if (this.state === 'discarded') return;
      this.held.push(d);
      this.heldBytes += d.length;
      if (this.heldBytes >= MAX_HELD_BYTES && !this.pausedByHold) {
        this.pausedByHold = true;
        pty.pause();
      }
    });
    pty.onExit((code, signal) => {
      if (this.state === 'live') for (const fn of this.exitFns) fn(code, signal);
      else this.exit = [code, signal];
    });
  }

  /** Starts the client now; a spawn that throws is kept for `take`. */
  static spawn(spawnPty: (o: PtySpawnOptions) => Pty, o: PtySpawnOptions): EarlyClient {
    try {
      return new EarlyClient(spawnPty(o), null);
    } catch (e) {
      return new EarlyClient(null, e);
    }
  }

  get pid(): number | null {
    return this.pty?.pid ?? null;
  }

  get tty(): string | null {
    return this.pty?.tty ?? null;
  }

  /** Runs `fn` when the client process exits, whoever holds it (the intrusion check's bookkeeping). */
  onExited(fn: () => void): void {
    this.pty?.onExit(() => fn());
  }

  /**
   * The client, for the session that is now on the record: what it printed meanwhile is
   * delivered to the session's listeners (registered in the same turn as this call) before
   * anything newer. Once only.
   */
  take(): Pty {
    if (!this.pty) throw this.spawnError;
    if (this.state !== 'held') throw new Error(`early tmux client: take() when ${this.state}`);
    this.state = 'taken';
    const pty = this.pty;
    queueMicrotask(() => {
      if (this.state !== 'taken') return;
      for (const d of this.held.splice(0)) for (const fn of this.dataFns) fn(d);
      this.heldBytes = 0;
      this.state = 'live';
      if (this.exit) {
        const [code, signal] = this.exit;
        for (const fn of this.exitFns) fn(code, signal);
      } else if (this.pausedByHold && !this.pausedByTaker) pty.resume();
      this.pausedByHold = false;
    });
    return ptyWith(pty, {
      onData: (fn) => void this.dataFns.push(fn),
      onExit: (fn) => void this.exitFns.push(fn),
      pause: () => {
        this.pausedByTaker = true;
        pty.pause();
      },
      resume: () => {
        this.pausedByTaker = false;
        if (this.state === 'live' || !this.pausedByHold) pty.resume();
      },
    });
  }

  /** Kills the client unless a session took it; what it held is dropped. Whether it was killed. */
  discard(): boolean {
    if (this.state !== 'held' || !this.pty) return false;
    this.state = 'discarded';
    this.held.length = 0;
    this.heldBytes = 0;
    try {
      this.pty.kill();
    } catch {
      /* already gone */
    }
    return true;
  }
}
