import { describe, expect, it } from 'vitest';
import type { OffsiteRecord } from '../../src/evidence/offsite-store.js';
import { MemoryOffsite } from '../helpers/memory-offsite.js';
import { RecordingShipper } from '../../src/evidence/recording-shipper.js';
import { EarlyClock } from '../helpers/early-clock.js';
import { waitUntil } from '../helpers/poll.js';

/** An off-box store in memory that refuses puts while `down`. */
class MemStore extends MemoryOffsite {
  down = true;
  puts = 0;
  async put(records: readonly OffsiteRecord[]): Promise<string[]> {
    this.puts++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:9');
    this.held.push(...records);
    return [];
  }
}

describe('recording shipper retries', () => {
  it('the retry timer retries, even when it fires a millisecond before its time (the backlog was once never shipped)', async () => {
    const clock = new EarlyClock();
    const store = new MemStore();
    const shipper = new RecordingShipper(
      { node: 'gw-test', maxLagBytes: 1 << 20, backoff: { initialMs: 100, maxMs: 400 }, lingerMs: 0 },
      { store, clock, read: () => Promise.reject(new Error('no file')) },
    );
    const feed = shipper.begin('s1', '/nonexistent');
    feed.durable([{ kind: 'header', seq: 0, bytes: Buffer.from('header-0'), hash: 'h0', offset: 0 }]);
    await waitUntil(() => shipper.state().lastError !== null, 'the first put to fail');
    expect(store.puts).toBe(1);
    expect(shipper.lag().bytes).toBe(8);

    store.down = false;
    clock.advance(99); // the retry timer falls due here, 1 ms before the back-off ends
    await waitUntil(() => shipper.lag().bytes === 0, 'the retry to ship the record', 2000);
    expect(store.held.map((r) => r.bytes.toString())).toEqual(['header-0']);
    expect(shipper.state()).toMatchObject({ connected: true, shippedBytes: 8 });

    feed.close();
    const closing = shipper.close(0);
    clock.advance(1);
    await closing;
  });
});
