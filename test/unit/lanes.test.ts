import { describe, expect, it } from 'vitest';
import { inLanes, KeyedLanes } from '../../src/platform/lanes.js';
import { FakeClock } from '../../src/platform/clock.js';

describe('inLanes (in turns)', () => {
  const spin = async (until: () => boolean) => {
    for (let i = 0; i < 50 && !until(); i++) await new Promise((r) => setImmediate(r));
  };

  it('one at a time while each ends within the grace; one that takes longer lets the next start, up to `lanes`', async () => {
    const clock = new FakeClock(0);
    const gates = new Map<number, () => void>();
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const done = inLanes([0, 1, 2, 3, 4, 5], { lanes: 2, graceMs: 250, clock }, (i) => {
      started.push(i);
      most = Math.max(most, ++running);
      return new Promise<void>((r) => gates.set(i, () => (running--, r())));
    });
    await spin(() => started.length > 0);
    expect(started).toEqual([0]); // the next waits: item 0 is within its grace
    gates.get(0)!();
    await spin(() => started.length > 1);
    expect(started).toEqual([0, 1]); // 0 ended: 1 starts at once
    clock.advance(249);
    await spin(() => false);
    expect(started).toEqual([0, 1]);
    clock.advance(1); // 1 is held past its grace: 2 starts alongside
    await spin(() => started.length > 2);
    expect(started).toEqual([0, 1, 2]);
    clock.advance(250); // 2 is held too, and both lanes are taken: 3 waits for a lane
    await spin(() => false);
    expect(started).toEqual([0, 1, 2]);
    gates.get(1)!(); // a lane frees: 3 starts; 4 and 5 follow each other's ends
    await spin(() => started.length > 3);
    gates.get(3)!();
    await spin(() => started.length > 4);
    gates.get(4)!();
    await spin(() => started.length > 5);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    gates.get(5)!();
    gates.get(2)!();
    await done;
    expect(most).toBe(2);
    expect(running).toBe(0);
  });

  it('a failure does not stop the items after it; the first is rethrown once all ran', async () => {
    const ran: number[] = [];
    const all = inLanes([1, 2, 3, 4], { lanes: 3, graceMs: 250 }, async (i) => {
      ran.push(i);
      if (i % 2 === 0) throw new Error(`item ${i}`);
    });
    await expect(all).rejects.toThrow('item 2');
    expect(ran).toEqual([1, 2, 3, 4]);
  });

  it('nothing to do ends at once; lanes below one still run', async () => {
    await inLanes([], { lanes: 4, graceMs: 250 }, async () => {
      throw new Error('never');
    });
    const ran: number[] = [];
    await inLanes([1, 2], { lanes: 0, graceMs: 250 }, async (i) => void ran.push(i));
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
