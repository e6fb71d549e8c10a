import { describe, expect, it } from 'vitest';
import { inLanes, KeyedLanes } from '../../src/platform/lanes.js';

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

describe('KeyedLanes', () => {
  it("runs at most `lanes` at once across calls, in the order asked; a held key keeps one lane; a failure is its caller's", async () => {
    const lanes = new KeyedLanes(2);
    const gates = new Map<string, () => void>();
    const started: string[] = [];
    const work = (k: string) => () => {
      started.push(k);
      return new Promise<void>((r) => gates.set(k, r));
    };
    const spin = async () => {
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    };
    const a = lanes.run('a', work('a'));
    const b = lanes.run('b', work('b'));
    const c = lanes.run('c', work('c'));
    await spin();
    expect(started).toEqual(['a', 'b']);
    expect(lanes.size).toEqual({ running: 2, waiting: 1 });
    expect(lanes.run('c', work('c-twice'))).toBe(c); // waiting: joins
    expect(lanes.run('a', work('a-again'))).toBe(a); // running: joins
    const a2 = lanes.run('a', work('a-after'), { again: true }); // running, again: runs after
    gates.get('b')!();
    await b;
    await spin();
    expect(started).toEqual(['a', 'b', 'c']); // a-after waits for a itself, though a lane is free
    gates.get('a')!();
    await a;
    await spin();
    expect(started).toEqual(['a', 'b', 'c', 'a-after']);
    gates.get('c')!();
    gates.get('a-after')!();
    await Promise.all([c, a2]);
    await expect(lanes.run('x', async () => Promise.reject(new Error('failed here')))).rejects.toThrow('failed here');
    expect(lanes.size).toEqual({ running: 0, waiting: 0 });
  });
});
