import { describe, expect, it } from 'vitest';
import { inLanes } from '../../src/platform/lanes.js';

/** A promise the test settles by hand. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('inLanes', () => {
  it('runs at most `lanes` at once, in order, and a held item keeps only its own lane', async () => {
    const held = gate();
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const done = inLanes([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      most = Math.max(most, ++running);
      if (i === 0) await held.p;
      await Promise.resolve();
      running--;
    });
    // Item 0 never ends by itself; every other item goes through the second lane meanwhile.
    for (let spin = 0; spin < 50 && started.length < 6; spin++) await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
    held.open();
    await done;
    expect(running).toBe(0);
  });

  it('a failure does not stop the items after it; the first is rethrown once all ran', async () => {
    const ran: number[] = [];
    const all = inLanes([1, 2, 3, 4], 3, async (i) => {
      ran.push(i);
      if (i % 2 === 0) throw new Error(`item ${i}`);
    });
    await expect(all).rejects.toThrow('item 2');
    expect(ran.sort()).toEqual([1, 2, 3, 4]);
  });

  it('nothing to do ends at once; lanes below one still run', async () => {
    await inLanes([], 4, async () => {
      throw new Error('never');
    });
    const ran: number[] = [];
    await inLanes([1, 2], 0, async (i) => void ran.push(i));
    expect(ran).toEqual([1, 2]);
  });
});
