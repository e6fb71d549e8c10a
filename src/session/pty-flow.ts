/** What PtyFlow needs of a pty: the read side's brakes. */
export interface Pausable {
  pause(): void;
  resume(): void;
}

/** A read that follows the previous one this closely is part of a burst of output. */
export const BURST_GAP_MS = 5;
/** How long a burst is left to gather in the kernel's pty buffer before the next read. */
export const GATHER_MS = 2;

/**
 * Decides when the gateway reads a session's pty. Three reasons hold reading: the client is not
 * keeping up (backpressure, until its channel drains), a view in between (redaction) is behind,
 * and a burst of output is gathering.
 *
 * Gathering: tmux writes a busy screen in pieces of a few hundred bytes, and reading each piece as
 * it lands costs one ssh packet, one encryption, one recorder frame and one socket write each
 * (measured: the socket writes alone were the largest item of the gateway's profile under bulk
 * output). So a read that comes within BURST_GAP_MS of the previous one pauses the pty for
 * GATHER_MS, and the next read takes everything tmux wrote meanwhile at once. The first read after
 * a quiet spell, such as the echo of a keystroke, is never held.
 *
 * This is transport pacing in real time (like a socket's own timers), not policy time, so it uses
 * Node's timers rather than the injected clock.
 */
export class PtyFlow {
  private readonly holds = new Set<'client' | 'gather' | 'view'>();
  private lastRead = Number.NEGATIVE_INFINITY;
  private gatherTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly pty: Pausable,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Call after each read has been handed on. */
  afterRead(): void {
    const t = this.now();
    if (t - this.lastRead < BURST_GAP_MS && !this.holds.has('gather') && !this.stopped) {
      this.hold('gather');
      this.gatherTimer = setTimeout(() => {
        this.gatherTimer = null;
        this.release('gather');
      }, GATHER_MS);
    }
    this.lastRead = t;
  }

  /** The client's window or socket is full: stop reading until `drained`. False if already held. */
  clientBlocked(): boolean {
    if (this.holds.has('client')) return false;
    this.hold('client');
    return true;
  }

  drained(): void {
    this.release('client');
  }

  /** A view between the pty and the client (redaction) has too much output unprocessed: stop reading until `viewReady`. False if already held. */
  viewBlocked(): boolean {
    if (this.holds.has('view')) return false;
    this.hold('view');
    return true;
  }

  viewReady(): void {
    this.release('view');
  }

  stop(): void {
    this.stopped = true;
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
  }

  /** Reading is held because the client is not keeping up. */
  get waitingForClient(): boolean {
    return this.holds.has('client');
  }

  private hold(why: 'client' | 'gather' | 'view'): void {
    if (this.holds.size === 0) this.pty.pause();
    this.holds.add(why);
  }

  private release(why: 'client' | 'gather' | 'view'): void {
    if (this.holds.delete(why) && this.holds.size === 0 && !this.stopped) this.pty.resume();
  }
}
