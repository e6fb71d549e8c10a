/**
 * Runs `fn` over `items`, at most `lanes` at a time, in order, and resolves when all have ended.
 * A rejection never stops the items after it: the first is rethrown once all have run. For
 * per-pair work where a pair controls how long its own item takes (its socket answers slowly or
 * never): that pair then holds one lane, not every pair queued behind it.
 */
export async function inLanes<T>(items: readonly T[], lanes: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane));
  if (errors.length) throw errors[0];
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
