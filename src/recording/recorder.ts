import type { Clock } from '../platform/clock.js';
import { systemRandom, type Random } from '../platform/random.js';
import type { Sealer } from '../crypto/sealer.js';
import type { Signer } from '../crypto/audit-key.js';
import type { RecordingFile } from './sink.js';
import type { DurableRecord, OffsiteFeed } from './offsite.js';
import { DeflatePool } from './deflate-pool.js';
import {
  CHUNK_HEADER_LEN,
  REC_CHUNK,
  REC_TRAILER,
  chunkNonce,
  encodeChunkHeader,
  encodeFileStart,
  encodeFrames,
  genesisHash,
  recordPrefix,
  resizeData,
  sessionTag,
  sha256,
  trailerSigned,
  type Frame,
  type FrameKind,
  type RecordingHeader,
  type Trailer,
} from './format.js';

/**
 * zlib's fastest level with its largest hash memory: measured on a captured tmux client stream,
 * half the CPU of the default level 6 (10 vs 21 ms per MB) for 3% more bytes stored. Deflate was
 * most of what recording costs the gateway; the format is unchanged (any level inflates alike).
 */
const DEFLATE = { level: 1, memLevel: 9 } as const;
/** Shared by every recording: reused zlib streams, no deflateInit on the main thread per chunk (deflate-pool.ts). */
const deflater = new DeflatePool(DEFLATE);
const EMPTY = Buffer.alloc(0);

export interface RecorderOptions {
  header: RecordingHeader;
  /** AES-256-GCM under the session's data key (aesGcmSealer(dataKey)). */
  sealer: Sealer;
  file: RecordingFile;
  clock: Clock;
  /** Picks the phase of the flush timer; defaults to the system's. */
  random?: Random;
  signer: Signer;
  maxChunkBytes?: number;
  flushIntervalMs?: number;
  maxQueueBytes?: number;
  fsync?: boolean;
  /** After each durable flush: chunk count, chain head, bytes in, bytes stored. */
  onFlush?: (s: RecorderStats) => void;
  /** Off-box shipping: gets every record (header, chunks, trailer) once it is durable in the file. */
  offsite?: OffsiteFeed;
}

export interface RecorderStats {
  chunks: number;
  head: string;
  bytesIn: number;
  bytesStored: number;
  /** Main-thread time spent sealing chunks (frames -> AES-GCM -> hash; deflate runs on the thread pool), in ms. */
  sealMs: number;
}

/**
 * Frames -> chunks (by size and by a flush interval) -> deflate -> AES-256-GCM under the
 * session's data key -> hash chain -> append-only file. Writes go through one bounded queue;
 * if it overflows or a write fails, the recorder stops and reports the failure once.
 */
export class Recorder {
  private frames: Frame[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private head: Buffer = Buffer.alloc(32);
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private failed: Error | null = null;
  private closed = false;
  private cancelFlush: (() => void) | null = null;
  private readonly startedAt: number;
  private bytesIn = 0;
  private bytesStored = 0;
  private sealMs = 0;
  private lastT = 0;
  private readonly o: Required<Omit<RecorderOptions, 'onFlush' | 'offsite'>> & Pick<RecorderOptions, 'onFlush' | 'offsite'>;
  /** Records written since the last durable flush, for the off-box feed. */
  private undelivered: DurableRecord[] = [];
  private failureListener: ((e: Error) => void) | null = null;

  constructor(opts: RecorderOptions) {
    this.o = { maxChunkBytes: 64 * 1024, flushIntervalMs: 1000, maxQueueBytes: 8 * 1024 * 1024, fsync: true, random: systemRandom, ...opts };
    this.startedAt = opts.header.startedAt;
  }

  /**
   * Writes the file header; the session may only start after this resolves, so a recording that
   * cannot be created stops the session before its first byte. The header is made durable with
   * the first timed flush (group commit), not by a sync of its own: measured, one fdatasync per
   * login was the largest cost of a login storm.
   */
  async start(): Promise<void> {
    const { bytes, headerBytes } = encodeFileStart(this.o.header);
    this.head = genesisHash(headerBytes);
    this.bytesStored += bytes.length;
    await this.o.file.append(bytes, false);
    if (this.o.offsite) this.undelivered.push({ kind: 'header', seq: 0, bytes, hash: this.head.toString('hex'), offset: 0 });
    this.unsynced = true;
    // A random phase per session: hundreds of sessions must not all seal and sync in the same
    // instant every second (measured: aligned flushes were the keystroke-echo p99 at 200 sessions).
    const phase = this.o.random.int(Math.max(1, Math.floor(this.o.flushIntervalMs)));
    let cancelInterval: (() => void) | null = null;
    const cancelPhase = this.o.clock.setTimeout(() => {
      this.flush(true);
      cancelInterval = this.o.clock.setInterval(() => this.flush(true), this.o.flushIntervalMs);
    }, phase);
    this.cancelFlush = () => {
      cancelPhase();
      cancelInterval?.();
    };
  }

  /** Called once when the recording cannot be written: the session must end (fail closed). */
  onFailure(fn: (e: Error) => void): void {
    this.failureListener = fn;
    if (this.failed) fn(this.failed);
  }

  get failure(): Error | null {
    return this.failed;
  }

  /** Records one frame now. Never throws; after a failure, frames are dropped (the session is ending). */
  frame(kind: FrameKind, data: Buffer): void {
    if (this.failed || this.closed) return;
    const t = Math.max(this.lastT, this.o.clock.now() - this.startedAt);
    this.lastT = t;
    // node-pty and ssh2 hand over a fresh Buffer per read: keep it, no copy.
    this.frames.push({ t, kind, data });
    this.pendingBytes += data.length + 9;
    if (kind === 'output') this.bytesIn += data.length;
    if (this.pendingBytes >= this.o.maxChunkBytes) this.flush(false);
  }

  resize(cols: number, rows: number): void {
    this.frame('resize', resizeData(cols, rows));
  }

  marker(event: Record<string, unknown>): void {
    this.frame('marker', Buffer.from(JSON.stringify(event)));
  }

  /**
   * Cuts the buffered frames into a chunk and queues it. Deflate runs on the thread pool, started
   * at once; sealing, chaining and writing happen in queue order on the main thread, so no chunk's
   * compression ever holds up a keystroke's echo (issue 16: a 100 KB deflate is 1-2 ms). Chunks
   * cut for size are written at once but synced together with the next timed flush (group commit:
   * one fdatasync per flush interval, measured as the bulk of the recorder's CPU cost when done
   * per chunk). The store's chain head only ever moves to what is on stable storage.
   */
  flush(sync = true): void {
    if (this.failed) return;
    if (this.frames.length === 0) {
      if (sync && this.unsynced) this.enqueue(null, true);
      return;
    }
    const t0 = performance.now();
    const frames = this.frames;
    this.frames = [];
    this.pendingBytes = 0;
    const chunk = { plain: encodeFrames(frames), tStart: frames[0]!.t, tEnd: frames[frames.length - 1]!.t };
    this.sealMs += performance.now() - t0;
    this.enqueue(chunk, sync);
  }

  private unsynced = false;

  private enqueue(chunk: { plain: Buffer; tStart: number; tEnd: number } | null, sync: boolean): void {
    const size = chunk?.plain.length ?? 0;
    const bytesIn = this.bytesIn;
    this.queued += size;
    if (this.queued > this.o.maxQueueBytes) {
      this.fail(new Error(`recording queue overflow (${this.queued} bytes waiting to be written)`));
      return;
    }
    const packed = chunk ? deflater.deflate(chunk.plain) : null;
    packed?.catch(() => {}); // awaited (and its error handled) in queue order below
    this.queue = this.queue.then(async () => {
      if (this.failed) return;
      try {
        let body = EMPTY;
        if (chunk) {
          const compressed = await packed!;
          const t0 = performance.now();
          const header = encodeChunkHeader({
            seq: this.seq,
            tStart: chunk.tStart,
            tEnd: chunk.tEnd,
            plainLen: chunk.plain.length,
            prevHash: this.head,
            sessionTag: sessionTag(this.o.header.sessionId),
            nonce: chunkNonce(this.seq),
          });
          // ciphertext || tag under the nonce the header carries; the whole header is the AAD.
          const sealed = this.o.sealer.sealWith(chunkNonce(this.seq), compressed, header);
          this.head = sha256(header, sealed);
          this.seq++;
          body = Buffer.concat([recordPrefix(REC_CHUNK, CHUNK_HEADER_LEN + sealed.length), header, sealed]);
          this.sealMs += performance.now() - t0;
        }
        const durable = sync && this.o.fsync;
        if (body.length || durable) await this.o.file.append(body, durable);
        if (body.length && this.o.offsite) {
          this.undelivered.push({ kind: 'chunk', seq: this.seq - 1, bytes: body, hash: this.head.toString('hex'), offset: this.bytesStored });
        }
        this.bytesStored += body.length;
        this.queued -= size;
        this.unsynced = !sync;
        if (sync) this.deliver();
        if (sync) this.o.onFlush?.({ chunks: this.seq, head: this.head.toString('hex'), bytesIn, bytesStored: this.bytesStored, sealMs: this.sealMs });
      } catch (e) {
        this.fail(e as Error); // cannot compress, seal or write: fail closed
      }
    });
  }

  /** Hands what is now durable to the off-box feed. */
  private deliver(extra?: DurableRecord): void {
    if (!this.o.offsite) return;
    if (extra) this.undelivered.push(extra);
    if (this.undelivered.length === 0) return;
    const records = this.undelivered;
    this.undelivered = [];
    this.o.offsite.durable(records);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.cancelFlush?.();
    this.failureListener?.(e);
  }

  /** Flushes, writes the signed trailer, closes the file. Returns the trailer, or null after a failure. */
  async close(reason: string): Promise<Trailer | null> {
    if (this.closed) return null;
    this.flush(true);
    this.closed = true;
    this.cancelFlush?.();
    await this.queue;
    let trailer: Trailer | null = null;
    if (!this.failed) {
      trailer = {
        v: 1,
        sessionId: this.o.header.sessionId,
        chunks: this.seq,
        durationMs: Math.max(this.lastT, this.o.clock.now() - this.startedAt),
        finalHash: this.head.toString('hex'),
        endedAt: this.o.clock.now(),
        reason,
      };
      const json = Buffer.from(JSON.stringify(trailer));
      const sig = this.o.signer.sign(trailerSigned(json));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(json.length);
      const bytes = Buffer.concat([recordPrefix(REC_TRAILER, 4 + json.length + sig.length), len, json, sig]);
      try {
        await this.o.file.append(bytes, true);
        this.deliver({ kind: 'trailer', seq: trailer.chunks, bytes, hash: trailer.finalHash, offset: this.bytesStored });
      } catch (e) {
        this.fail(e as Error);
        trailer = null;
      }
    }
    await this.o.file.close().catch(() => {});
    this.o.offsite?.close();
    return trailer;
  }

  stats(): RecorderStats {
    return { chunks: this.seq, head: this.head.toString('hex'), bytesIn: this.bytesIn, bytesStored: this.bytesStored, sealMs: this.sealMs };
  }

  /** Bytes sealed and waiting to be written (the session fails at maxQueueBytes). */
  get queuedBytes(): number {
    return this.queued;
  }
}

/** Stands in when recording is switched off (benchmarks only; reported by the compliance report). */
export class NullRecorder {
  readonly failure = null;
  frame(): void {}
  resize(): void {}
  marker(): void {}
  onFailure(): void {}
  async close(): Promise<null> {
    return null;
  }
  stats(): RecorderStats {
    return { chunks: 0, head: '', bytesIn: 0, bytesStored: 0, sealMs: 0 };
  }
  readonly queuedBytes = 0;
}
