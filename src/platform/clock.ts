/**
 * Time, injected. Everything that compares or schedules time takes a Clock, so tests move
 * time forward instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` after `ms`; returns a cancel function. */
  setTimeout(fn: () => void, ms: number): () => void;
  /** Runs `fn` every `ms`; returns a cancel function. */
  setInterval(fn: () => void, ms: number): () => void;
}

/** Node's timers take at most 2^31-1 ms (24.8 days); a longer delay fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The part of Node's timer API the system clock uses; tests pass one that overflows like Node's. */
export interface TimerApi {
  setTimeout(fn: () => void, ms: number): { unref(): unknown };
  clearTimeout(handle: never): void;
  setInterval(fn: () => void, ms: number): { unref(): unknown };
  clearInterval(handle: never): void;
}

/**
 * A clock on `timers` that is correct for any delay: a delay beyond MAX_TIMER_MS is a chain of
 * timers of at most MAX_TIMER_MS each (counted down, not read back from the wall clock, so a
 * clock step does not move it). NaN or negative delays mean "now", as in Node.
 */
export function makeSystemClock(timers: TimerApi, now: () => number = Date.now): Clock {
  const later = (fn: () => void, ms: number): (() => void) => {
    let left = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    let handle: { unref(): unknown } | null = null;
    let cancelled = false;
    const arm = (): void => {
      const step = Math.min(left, MAX_TIMER_MS);
      left -= step;
      handle = timers.setTimeout(() => {
        if (cancelled) return;
        if (left > 0) arm();
        else fn();
      }, step);
      handle.unref();
    };
    arm();
    return () => {
      cancelled = true;
      if (handle) timers.clearTimeout(handle as never);
    };
  };
  return {
    now,
    setTimeout: later,
    setInterval(fn, ms) {
      if (ms <= MAX_TIMER_MS) {
        const t = timers.setInterval(fn, ms);
        t.unref();
        return () => timers.clearInterval(t as never);
      }
      // Longer than one Node timer: a chain per period.
      let cancel = (): void => {};
      let stopped = false;
      const next = (): void => {
        cancel = later(() => {
          if (stopped) return;
          next();
          fn();
        }, ms);
      };
      next();
      return () => {
        stopped = true;
        cancel();
      };
    },
  };
}

/** The wall clock and Node's timers, any delay. Timers never keep the process alive on their own. */
export const systemClock: Clock = makeSystemClock(globalThis as unknown as TimerApi);

interface Timer {
  at: number;
  every: number | null;
  fn: () => void;
  id: number;
}

/** A clock that only moves when told: `advance(ms)` fires due timers in order. */
export class FakeClock implements Clock {
  private t: number;
  private timers: Timer[] = [];
  private nextId = 1;
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): () => void {
    return this.add(fn, ms, null);
  }
  setInterval(fn: () => void, ms: number): () => void {
    return this.add(fn, ms, Math.max(1, ms));
  }
  /** Moves time forward by `ms`, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.t = next.at;
      if (next.every === null) this.timers.shift();
      else next.at += next.every;
      next.fn();
    }
    this.t = end;
  }
  /** Sets the time directly (only forward), firing due timers. */
  set(ms: number): void {
    if (ms > this.t) this.advance(ms - this.t);
  }
  private add(fn: () => void, ms: number, every: number | null): () => void {
    const timer: Timer = { at: this.t + Math.max(0, ms), every, fn, id: this.nextId++ };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }
}

/**
 * Resolves after `ms` on `clock`. Waiting is work in progress: the process stays alive until the
 * wait ends (the clock's own timers never hold it open), as a plain setTimeout would.
 */
export function sleep(clock: Clock, ms: number): Promise<void> {
  const hold = setInterval(() => {}, MAX_TIMER_MS);
  return new Promise((resolve) =>
    clock.setTimeout(() => {
      clearInterval(hold);
      resolve();
    }, ms),
  );
}
