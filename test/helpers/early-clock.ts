import { FakeClock } from '../../src/platform/clock.js';

/**
 * A fake clock whose one-shot timers fire a millisecond before their time, as Node's can against
 * Date.now() (timers run on libuv's monotonic millisecond clock, now() on the wall clock).
 */
export class EarlyClock extends FakeClock {
  override setTimeout(fn: () => void, ms: number): () => void {
    return super.setTimeout(fn, Math.max(0, ms - 1));
  }
}
