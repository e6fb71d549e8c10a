import { constants, createDeflateRaw, type DeflateRaw, type ZlibOptions } from 'node:zlib';

/**
 * A few raw-deflate streams reused for every chunk of every recording, each chunk a complete raw
 * deflate stream (Z_FINISH) as `zlib.deflateRaw` makes it: the format and the readers are unchanged.
 *
 * Why: `zlib.deflateRaw` builds a new zlib stream per call, and building one runs deflateInit on
 * the main thread (at level 1, memLevel 9: ~400 KB allocated, the 128 KB hash table cleared;
 * measured 80-150 us per call here). Every recording flushes about once a second, so with N
 * sessions the event loop was blocked N times a second for that long: keystrokes arriving then
 * waited (issue 16). A reused stream is reset instead (deflateReset: no allocation).
 *
 * At most `size` streams exist (the thread pool's width: more could not run at once anyway);
 * further chunks wait their turn in order. A stream that reports an error is closed and replaced.
 */
export class DeflatePool {
  private readonly idle: Deflater[] = [];
  private readonly waiting: ((d: Deflater) => void)[] = [];
  private made = 0;
  /** Streams built in all, replacements included (the tests check reuse with it). */
  private built = 0;

  constructor(
    private readonly options: ZlibOptions,
    private readonly size = 4,
  ) {}

  /** `data` as one complete raw deflate stream. */
  async deflate(data: Buffer): Promise<Buffer> {
    const d = await this.acquire();
    let ok = false;
    try {
      const out = await d.run(data);
      ok = true;
      return out;
    } finally {
      this.release(d, ok);
    }
  }

  private acquire(): Promise<Deflater> {
    const d = this.idle.pop();
    if (d) return Promise.resolve(d);
    if (this.made < this.size) {
      this.made++;
      return Promise.resolve(this.build());
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private build(): Deflater {
    this.built++;
    return new Deflater(this.options);
  }

  private release(d: Deflater, ok: boolean): void {
    let next = d;
    if (!ok || !d.reset()) {
      d.close();
      next = this.build();
    }
    const w = this.waiting.shift();
    if (w) w(next);
    else this.idle.push(next);
  }
}

/** One zlib stream, always flowing into the current job's output. */
class Deflater {
  private readonly z: DeflateRaw;
  private out: Buffer[] = [];
  private failed: Error | null = null;
  private onFail: ((e: Error) => void) | null = null;

  constructor(options: ZlibOptions) {
    this.z = createDeflateRaw(options);
    this.z.on('data', (b: Buffer) => this.out.push(b));
    this.z.on('error', (e: Error) => {
      this.failed ??= e;
      this.onFail?.(e);
    });
  }

  /** One chunk: its output up to and including Z_FINISH. */
  run(data: Buffer): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    this.out = [];
    return new Promise((resolve, reject) => {
      this.onFail = reject;
      this.z.write(data);
      // The flush's callback runs once zlib has handed over everything up to Z_FINISH: the stream
      // flows (the 'data' listener above), so each piece was emitted as zlib produced it, before.
      this.z.flush(constants.Z_FINISH, (err?: Error | null) => {
        this.onFail = null;
        if (err) this.failed ??= err;
        if (this.failed) return reject(this.failed);
        const out = this.out;
        this.out = [];
        resolve(out.length === 1 ? out[0]! : Buffer.concat(out));
      });
    });
  }

  /** Ready for the next chunk; false if this stream cannot be used again. */
  reset(): boolean {
    if (this.failed) return false;
    try {
      this.z.reset();
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.z.destroy();
  }
}
