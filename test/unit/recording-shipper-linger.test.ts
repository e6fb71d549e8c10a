import { describe, expect, it } from 'vitest';
import type { DurableRecord } from '../../src/recording/offsite.js';
import type { OffsiteRecord } from '../../src/evidence/offsite-store.js';
import { MemoryOffsite } from '../helpers/memory-offsite.js';
import { RecordingShipper } from '../../src/evidence/recording-shipper.js';
import { FakeClock } from '../../src/platform/clock.js';
import { EarlyClock } from '../helpers/early-clock.js';
import { waitUntil } from '../helpers/poll.js';

/**
 * How the recording shipper groups records into puts: a record waits at most `lingerMs` (from
 * when it was queued) for others, before every put, not only the first after a quiet spell; a
 * full batch goes at once. Each put is a request (an S3 PUT costs ~3 ms of CPU whatever its size),
 * so a put right after each put, carrying what came while it was in flight, doubled the requests.
 */

/** A store in memory whose puts wait until released (one at a time), and may be made to fail. */
class HeldStore extends MemoryOffsite {
  readonly lingerMs = 500;
  readonly puts: string[][] = [];
  fail = false;
  private release: (() => void) | null = null;
  async put(records: readonly OffsiteRecord[]): Promise<string[]> {
    this.puts.push(records.map((r) => `${r.sessionId}/${r.kind}${r.seq}`));
    await new Promise<void>((r) => (this.release = r));
    if (this.fail) throw new Error('connect ECONNREFUSED 127.0.0.1:9');
    this.held.push(...records);
    return [];
  }
  /** Ends the put in flight. */
  finish(): void {
    const r = this.release;
    this.release = null;
    r?.();
  }
  get inFlight(): boolean {
    return this.release !== null;
  }
}

/** Chunk `seq` of a recording, 100 bytes, at its place in the file. */
const chunk = (seq: number): DurableRecord => ({ kind: 'chunk', seq, bytes: Buffer.alloc(100, seq), hash: `h${seq}`, offset: 10 + 100 * seq });
/** Lets the shipper's promise continuations run. */
const settle = () => new Promise((r) => setImmediate(r));

function shipperOn(store: HeldStore, clock: FakeClock, o: { batchRecords?: number; maxLagBytes?: number } = {}): RecordingShipper {
  return new RecordingShipper(
    {
      node: 'gw-test',
      maxLagBytes: o.maxLagBytes ?? 1 << 20,
      backoff: { initialMs: 100, maxMs: 400 },
      ...(o.batchRecords ? { batchRecords: o.batchRecords } : {}),
    },
    { store, clock, read: () => Promise.reject(new Error('no file')) },
  );
}

describe('recording shipper linger', () => {
  it('waits from the oldest queued record before every put: what came during a put goes with the next linger, not in a put of its own', async () => {
    const clock = new FakeClock();
    const store = new HeldStore();
    const shipper = shipperOn(store, clock); // the store's linger: 500 ms
    const a = shipper.begin('s_a', '/a');
    const b = shipper.begin('s_b', '/b');
    a.durable([chunk(0)]);
    clock.advance(300);
    b.durable([chunk(0)]);
    clock.advance(199);
    await settle();
    expect(store.puts).toEqual([]); // s_a/chunk0 has waited 499 ms
    clock.advance(1);
    await waitUntil(() => store.inFlight, 'the first put');
    expect(store.puts).toEqual([['s_a/chunk0', 's_b/chunk0']]);

    // While the put is in flight more records come; the put ends 100 ms after the first of them.
    clock.advance(50);
    a.durable([chunk(1)]);
    clock.advance(50);
    b.durable([chunk(1)]);
    a.durable([chunk(2)]);
    store.finish();
    await waitUntil(() => shipper.state().puts === 1, 'the first put acknowledged');
    await settle();
    expect(store.inFlight).toBe(false); // no put at once for what came meanwhile
    clock.advance(449);
    await settle();
    expect(store.puts).toHaveLength(1);
    clock.advance(1); // s_a/chunk1 (queued 50 ms into the first put) has waited 500 ms
    await waitUntil(() => store.inFlight, 'the second put');
    // One put for everything that came during the first, each recording's records in file order.
    expect(store.puts[1]).toEqual(['s_a/chunk1', 's_b/chunk1', 's_a/chunk2']);
    store.finish();
    await waitUntil(() => shipper.lag().bytes === 0, 'everything acknowledged');
    expect(shipper.state()).toMatchObject({ puts: 2, shippedChunks: 5 });
  });

  it('a full batch goes at once, and the rest lingers; a failed put is resent whole, in order, at the retry', async () => {
    const clock = new EarlyClock(); // timers fire a millisecond early: the retry and the linger must still fire the put
    const store = new HeldStore();
    const shipper = shipperOn(store, clock, { batchRecords: 3 });
    const a = shipper.begin('s_a', '/a');
    a.durable([chunk(0), chunk(1)]);
    await settle();
    expect(store.puts).toEqual([]);
    a.durable([chunk(2), chunk(3)]); // 4 queued: a batch of 3 is full
    await waitUntil(() => store.inFlight, 'the full batch');
    expect(store.puts).toEqual([['s_a/chunk0', 's_a/chunk1', 's_a/chunk2']]);
    store.fail = true;
    store.finish();
    await waitUntil(() => shipper.state().lastError !== null, 'the put to fail');
    store.fail = false;
    clock.advance(100); // the back-off: the same records, in the same order, and nothing skipped
    await waitUntil(() => store.inFlight, 'the resend');
    expect(store.puts[1]).toEqual(['s_a/chunk0', 's_a/chunk1', 's_a/chunk2']);
    store.finish();
    // s_a/chunk3, queued at 0, waits out its linger (500 ms) like any record; no put of its own at once.
    await waitUntil(() => shipper.state().puts === 1, 'the resend acknowledged');
    await settle();
    expect(store.inFlight).toBe(false);
    clock.advance(400); // 499 ms: the linger timer fires (1 ms early) and the put goes
    await waitUntil(() => store.inFlight, 'the rest');
    expect(store.puts[2]).toEqual(['s_a/chunk3']);
    store.finish();
    await waitUntil(() => shipper.lag().bytes === 0, 'everything acknowledged');
    expect(store.held.map((r) => r.seq)).toEqual([0, 1, 2, 3]);
    expect(shipper.state()).toMatchObject({ puts: 2, connected: true });
  });

  it('memory stays within the bound while a put lingers or hangs: past it a recording spills to its file', async () => {
    const clock = new FakeClock();
    const store = new HeldStore();
    const shipper = shipperOn(store, clock, { maxLagBytes: 250 });
    const a = shipper.begin('s_a', '/a');
    a.durable([chunk(0), chunk(1), chunk(2)]);
    expect(shipper.state()).toMatchObject({ queuedBytes: 200, spilledSessions: 1 });
    // Catching up (a spilled recording) does not linger: the put goes at once.
    await waitUntil(() => store.inFlight, 'the put');
    expect(store.puts).toEqual([['s_a/chunk0', 's_a/chunk1']]);
    store.finish();
    await waitUntil(() => shipper.state().puts === 1, 'the put acknowledged');
  });
});
