import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { StartGate } from '../../src/session/start-gate.js';

const counter = () => {
  const counts: Record<string, number> = {};
  return { counts, inc: (name: string, by = 1) => void (counts[name] = (counts[name] ?? 0) + by) };
};

describe('session start gate', () => {
  it('lets `slots` starts run at once and the rest take their turns in arrival order', async () => {
    const gate = new StartGate(2, 250, new FakeClock());
    const order: string[] = [];
    const turns = ['a', 'b', 'c', 'd', 'e'].map((name) => gate.turn().then((release) => (order.push(name), { name, release })));
    const [a, b] = await Promise.all(turns.slice(0, 2));
    expect(order).toEqual(['a', 'b']);
    expect([gate.holding, gate.queued]).toEqual([2, 3]);
    b!.release();
    const c = await turns[2]!;
    expect(order).toEqual(['a', 'b', 'c']);
    a!.release();
    a!.release(); // a second release of one turn frees nothing more
    await turns[3];
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect([gate.holding, gate.queued]).toEqual([2, 1]);
    c.release();
    (await turns[4]!).release();
    (await turns[3]!).release();
    expect([gate.holding, gate.queued]).toEqual([0, 0]);
  });

  it('a start that never draws holds its turn for holdMs at most, then the next one goes (counted)', async () => {
    const clock = new FakeClock();
    const metrics = counter();
    const gate = new StartGate(1, 250, clock, metrics);
    const hung = await gate.turn(); // never released by its start
    let next = false;
    const waiting = gate.turn().then((r) => ((next = true), r));
    clock.advance(249);
    await Promise.resolve();
    expect(next).toBe(false);
    expect(gate.queued).toBe(1);
    clock.advance(1);
    const release = await waiting;
    expect(next).toBe(true);
    expect(metrics.counts).toEqual({ session_start_turns_timed_out_total: 1 });
    hung(); // the late release of the timed-out turn takes nothing from the one running now
    expect(gate.holding).toBe(1);
    release();
    clock.advance(1000); // a released turn's timer is gone
    expect(metrics.counts).toEqual({ session_start_turns_timed_out_total: 1 });
    expect(gate.holding).toBe(0);
  });

  it('refuses a slot count that is not a positive integer', () => {
    for (const n of [0, -1, 1.5, NaN]) expect(() => new StartGate(n, 250, new FakeClock())).toThrow(/positive integer/);
  });
});
