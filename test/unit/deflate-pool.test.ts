import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DeflatePool } from '../../src/recording/deflate-pool.js';

const OPTS = { level: 1, memLevel: 9 } as const;
/** What the pool keeps inside, for the reuse checks. */
type Inside = { made: number; built: number; idle: { close(): void }[] };

describe('DeflatePool', () => {
  it('makes each chunk one complete raw deflate stream, as zlib.deflateRaw does, whatever ran on the stream before', async () => {
    const pool = new DeflatePool(OPTS, 2);
    // Empty, tiny, more than zlib's 16 KB output piece, incompressible, and all at once (more than the pool holds).
    const inputs = [
      Buffer.alloc(0),
      Buffer.from('a'),
      Buffer.from('hello '.repeat(20_000)),
      randomBytes(300_000),
      ...Array.from({ length: 20 }, (_, i) => Buffer.from(`frame ${i} `.repeat(i * 50))),
    ];
    const outs = await Promise.all(inputs.map((b) => pool.deflate(b)));
    for (const [i, out] of outs.entries()) {
      expect(inflateRawSync(out).equals(inputs[i]!)).toBe(true);
      expect(out.equals(deflateRawSync(inputs[i]!, OPTS))).toBe(true);
    }
  });

  it('reuses its streams rather than building one per chunk, and never holds more than its size', async () => {
    const pool = new DeflatePool(OPTS, 3);
    for (let i = 0; i < 10; i++) await pool.deflate(Buffer.from(`chunk ${i}`));
    expect((pool as unknown as Inside).built).toBe(1);
    await Promise.all(Array.from({ length: 12 }, (_, i) => pool.deflate(Buffer.from(`x${i}`.repeat(1000)))));
    expect((pool as unknown as Inside).made).toBe(3);
    expect((pool as unknown as Inside).built).toBe(3);
  });

  it('rejects the chunk of a stream that failed, and replaces that stream for the next chunk', async () => {
    const pool = new DeflatePool(OPTS, 1);
    await pool.deflate(Buffer.from('first'));
    (pool as unknown as Inside).idle[0]!.close(); // the only stream breaks
    await expect(pool.deflate(Buffer.from('second'))).rejects.toThrow();
    const out = await pool.deflate(Buffer.from('third'));
    expect(inflateRawSync(out).toString()).toBe('third');
    expect((pool as unknown as Inside).built).toBe(2);
  });
});
