import { systemClock, type Clock } from './clock.js';

/**
 * Runs `fn` over `items` in order, in turns, and resolves when all have ended: one at a time while
 * each ends within `graceMs`; one that takes longer lets the next start alongside it, up to `lanes`
 * running. For per-pair work where a pair controls how long its own item takes (its socket answers
 * slowly or never): that pair then delays the others by `graceMs`, not by its timeout. One at a time
 * otherwise, because each item here is a process the gateway starts (a tmux client): started
 * together, eight of them at each intrusion check's tick set keystroke echo p99 under load at 1.6-4.5x
 * sshd's in five runs of five, against 0.7-1.4x in seven of nine one after another (bench/RESULTS.md,
 * 2026-11-25). A rejection never stops
 * the items after it: the first is rethrown once all have run. `clock`: real time (process latency,
 * not policy time).
 */
export function inLanes<T>(
  items: readonly T[],
  o: { lanes: number; graceMs: number; clock?: Pick<Clock, 'setTimeout'> },
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  const clock = o.clock ?? systemClock;
  const lanes = Math.max(1, o.lanes);
  return new Promise((resolve, reject) => {
    let next = 0;
    let running = 0;
    /** An item is within its grace: the next waits for it to end or to pass it. */
    let fresh = false;
    const errors: unknown[] = [];
    const pump = (): void => {
      if (fresh || running >= lanes) return;
      if (next >= items.length) {
        if (running === 0) errors.length ? reject(errors[0]) : resolve();
        return;
      }
      const item = items[next++]!;
      running++;
      fresh = true;
      let mine = true;
      const letNext = () => {
        if (!mine) return;
        mine = false;
        fresh = false;
      };
      const cancel = clock.setTimeout(() => (letNext(), pump()), o.graceMs);
      Promise.resolve()
        .then(() => fn(item))
        .catch((e: unknown) => void errors.push(e))
        .finally(() => {
          cancel();
          running--;
          letNext();
          pump();
        });
    };
    pump();
  });
}

/**
 * Per-key work, at most `lanes` at a time, started in the order asked, across calls: nothing waits
 * for a batch, so work that holds its lane delays only what finds every lane held, never what is
 * asked for after it while a lane is free. One key runs once at a time: asked again while it waits,
 * the ask joins it; while it runs, it joins it too, unless `again` (then it runs once more after).
 * The promise settles as the work does.
 */
export class KeyedLanes {
  private active = 0;
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, { fn: () => Promise<unknown>; done: Promise<void>; settle: (e?: unknown) => void }>();

  constructor(private readonly lanes: number) {}

  run(key: string, fn: () => Promise<unknown>, o: { again?: boolean } = {}): Promise<void> {
    const queued = this.waiting.get(key);
    if (queued) return queued.done;
    const running = this.running.get(key);
    if (running && !o.again) return running;
    let settle!: (e?: unknown) => void;
    const done = new Promise<void>((resolve, reject) => (settle = (e) => (e === undefined ? resolve() : reject(e))));
    this.waiting.set(key, { fn, done, settle });
    this.pump();
    return done;
  }

  /** Work running now and waiting for a lane (for tests and metrics). */
  get size(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.waiting.size };
  }

  private pump(): void {
    for (const [key, w] of this.waiting) {
      if (this.active >= Math.max(1, this.lanes)) return;
      if (this.running.has(key)) continue;
      this.waiting.delete(key);
      this.active++;
      this.running.set(key, w.done);
      void (async () => {
        let failure: unknown;
        try {
          await w.fn();
        } catch (e) {
          failure = e ?? new Error('failed');
        }
        this.active--;
        this.running.delete(key);
        w.settle(failure);
        this.pump();
      })();
    }
  }
}
