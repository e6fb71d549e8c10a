import type { Clock } from '../platform/clock.js';

/** What the gate counts (the gateway's metrics). */
export interface StartGateMetrics {
  inc(name: string, by?: number): void;
}

/**
 * Session starts in arrival order, a few at a time. In a storm of logins (everyone reconnecting
 * at once) the CPU goes to the tmux servers, clients and shells being started: started all
 * together they share it, and every user waits about as long as the last; started in turn, the
 * first users have their shells at once and the median user waits about half as long, for the
 * same total. A start holds its turn until its tmux client first draws, exits or fails, or
 * `holdMs` pass, whichever comes first, so a start that hangs (a pair's socket that never
 * answers) delays the others by `holdMs` at most. Only authenticated users reach it, and a user
 * logs in at most once per TOTP step.
 */
export class StartGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly holdMs: number,
    private readonly clock: Clock,
    private readonly metrics?: StartGateMetrics,
  ) {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`start gate: slots must be a positive integer, not ${slots}`);
  }

  /**
   * Resolves when it is this start's turn, with the function that ends the turn (idempotent);
   * the turn also ends by itself after `holdMs`.
   */
  turn(): Promise<() => void> {
    return new Promise((resolve) => {
      const go = () => {
        this.running++;
        let done = false;
        const release = () => {
          if (done) return;
          done = true;
          cancel();
          this.running--;
          this.waiting.shift()?.();
        };
        const cancel = this.clock.setTimeout(() => {
          this.metrics?.inc('session_start_turns_timed_out_total');
          release();
        }, this.holdMs);
        resolve(release);
      };
      if (this.running < this.slots) go();
      else this.waiting.push(go);
    });
  }

  /** Starts waiting for their turn now (a gauge). */
  get queued(): number {
    return this.waiting.length;
  }

  /** Starts holding a turn now (a gauge). */
  get holding(): number {
    return this.running;
  }
}
