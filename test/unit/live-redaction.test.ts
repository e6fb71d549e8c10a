import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { LiveRedaction } from '../../src/redaction/live.js';
import { redactorFor } from '../../src/redaction/view-policy.js';
import { waitUntil } from '../helpers/poll.js';

describe('live redacted view (observe, watch)', () => {
  it('a byte a tick from the watched user costs at most a redraw per 16 ms, and the last byte is still drawn', async () => {
    const sent: string[] = [];
    const live = new LiveRedaction(redactorFor(buildConfig({}, { file: null, baseDir: '/tmp' })), 80, 24, (d) => sent.push(d.toString()));
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) {
      live.push(Buffer.from(i === 299 ? 'Z' : 'x'));
      await new Promise((r) => setImmediate(r));
    }
    const elapsed = performance.now() - t0;
    await waitUntil(() => sent.join('').includes('Z'), 'the trailing redraw with the last byte', 2000);
    expect(sent.length).toBeLessThanOrEqual(Math.ceil(elapsed / 16) + 3);
    expect(sent.length).toBeGreaterThan(0);
    live.dispose();
  });
});
