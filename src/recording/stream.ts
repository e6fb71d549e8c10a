import { open, type FileHandle } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { TgError } from '../errors.js';
import type { RecordingRow } from '../store/recordings.js';
import type { SessionRecord } from '../store/sessions.js';
import { findRecording, type RecordingStore } from './access.js';
import { CHUNK_HEADER_LEN, MAGIC, MAX_RECORD, REC_CHUNK, TAG_LEN, decodeChunkHeader, sha256, type Frame, type RecordingHeader } from './format.js';
import { openChunk, parseHeader, type ChunkRecord } from './reader.js';
import { aesGcmSealer, type Sealer } from '../crypto/sealer.js';

/** Records whose headers are read per batch while indexing (then the event loop gets a turn). */
const INDEX_BATCH = 256;

/**
 * A recording opened for streaming: the file header and an index of its chunks (file offset,
 * length, first and last frame time: 20 bytes per chunk, in typed arrays), built from the
 * plaintext chunk headers alone. Chunks are read and decrypted one at a time, on demand, so a
 * viewer holds one chunk (64 KiB of frames) whatever the recording's size, and every read is
 * asynchronous: the gateway's event loop keeps serving other users between chunks.
 */
export class RecordingStream {
  private constructor(
    private readonly fh: FileHandle,
    readonly session: SessionRecord,
    readonly row: RecordingRow,
    readonly header: RecordingHeader,
    /** The session data key (in memory only), for the encrypted keyframe cache. */
    readonly dataKey: Buffer,
    private readonly offsets: Float64Array,
    private readonly lengths: Uint32Array,
    private readonly starts: Uint32Array,
    private readonly ends: Uint32Array,
    readonly chunks: number,
  ) {}

  private lastHash = '';
  private sealerOnce: Sealer | null = null;

  /** AES-256-GCM under the session data key, made on the first chunk read. */
  private get sealer(): Sealer {
    return (this.sealerOnce ??= aesGcmSealer(this.dataKey));
  }

  /** Hash of the last chunk: binds the keyframe cache to exactly this content. */
  get head(): string {
    return this.lastHash;
  }

  /** Opens and indexes a session's recording (TG_ERR_SESSION_NOT_FOUND, TG_ERR_RECORDING_MISSING, TG_ERR_RECORDING_TAMPERED). */
  static async open(a: RecordingStore, sessionId: string): Promise<RecordingStream> {
    const { session, row } = await findRecording(a, sessionId);
    const dataKey = a.recordings.dataKey(row, a.masterKeys);
    if (!existsSync(row.file)) throw new TgError('TG_ERR_RECORDING_MISSING', `recording file ${row.file} is missing`);
    const fh = await open(row.file, 'r');
    try {
      const size = (await fh.stat()).size;
      const start = Buffer.alloc(MAGIC.length + 4);
      await fh.read(start, 0, start.length, 0);
      const hlen = start.length === MAGIC.length + 4 && start.subarray(0, MAGIC.length).equals(MAGIC) ? start.readUInt32BE(MAGIC.length) : -1;
      const hbuf = Buffer.alloc(hlen > 0 && hlen <= 65_536 ? MAGIC.length + 4 + hlen : 0);
      if (hbuf.length) await fh.read(hbuf, 0, hbuf.length, 0);
      const parsed = parseHeader(hbuf);
      if (!parsed.header) throw new TgError('TG_ERR_RECORDING_TAMPERED', `recording ${sessionId}: ${parsed.headerError}`);
      let cap = 1024;
      let offsets = new Float64Array(cap);
      let lengths = new Uint32Array(cap);
      let starts = new Uint32Array(cap);
      let ends = new Uint32Array(cap);
      let n = 0;
      let p = hbuf.length;
      const prefix = Buffer.alloc(5 + CHUNK_HEADER_LEN);
      for (let batch = 0; p + 5 <= size; batch++) {
        if (batch % INDEX_BATCH === INDEX_BATCH - 1) await new Promise((r) => setImmediate(r));
        const { bytesRead } = await fh.read(prefix, 0, prefix.length, p);
        const type = prefix[0]!;
        const len = prefix.readUInt32BE(1);
        // A trailer, a torn tail or an impossible record ends the stream (verify names which).
        if (type !== REC_CHUNK || len > MAX_RECORD || len < CHUNK_HEADER_LEN + TAG_LEN || p + 5 + len > size || bytesRead < prefix.length) break;
        if (n === cap) {
          cap *= 2;
          const grow = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
            const b = make(cap);
            b.set(a);
            return b;
          };
          offsets = grow(offsets, (k) => new Float64Array(k));
          lengths = grow(lengths, (k) => new Uint32Array(k));
          starts = grow(starts, (k) => new Uint32Array(k));
          ends = grow(ends, (k) => new Uint32Array(k));
        }
        const h = decodeChunkHeader(prefix.subarray(5));
        offsets[n] = p;
        lengths[n] = len;
        starts[n] = h.tStart;
        ends[n] = h.tEnd;
        n++;
        p += 5 + len;
      }
      const s = new RecordingStream(fh, session, row, parsed.header, dataKey, offsets, lengths, starts, ends, n);
      s.lastHash = n ? (await s.record(n - 1)).hash.toString('hex') : '';
      return s;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Milliseconds from the start to the last frame (or the recorded duration, if longer). */
  get durationMs(): number {
    return Math.max(this.row.duration_ms ?? 0, this.chunks ? this.ends[this.chunks - 1]! : 0);
  }

  /** Time of the first frame of chunk `i`. */
  tStart(i: number): number {
    return this.starts[i]!;
  }

  /** The first chunk whose frames reach time `t` (binary search; `chunks` when none). */
  chunkAt(t: number): number {
    let lo = 0;
    let hi = this.chunks;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Reads and decrypts chunk `i` (throws TG_ERR_RECORDING_TAMPERED when its tag does not verify). */
  async frames(i: number): Promise<Frame[]> {
    const r = await this.record(i);
    try {
      return openChunk(r, this.sealer);
    } catch {
      throw new TgError(
        'TG_ERR_RECORDING_TAMPERED',
        `recording ${this.session.id}: chunk ${r.header.seq} does not decrypt; run: tmuxgate verify ${this.session.id}`,
      );
    }
  }

  /** Every frame from chunk `from` on, one chunk in memory at a time, yielding to the event loop between chunks. */
  async *all(from = 0): AsyncGenerator<Frame> {
    for (let i = from; i < this.chunks; i++) {
      for (const f of await this.frames(i)) yield f;
      await new Promise((r) => setImmediate(r));
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }

  private async record(i: number): Promise<ChunkRecord> {
    const len = this.lengths[i]!;
    const body = Buffer.alloc(len);
    await this.fh.read(body, 0, len, this.offsets[i]! + 5);
    const headerBytes = body.subarray(0, CHUNK_HEADER_LEN);
    const ciphertext = body.subarray(CHUNK_HEADER_LEN, len - TAG_LEN);
    const tag = body.subarray(len - TAG_LEN);
    const sealed = body.subarray(CHUNK_HEADER_LEN);
    const hash = sha256(headerBytes, ciphertext, tag);
    return { type: 'chunk', offset: this.offsets[i]!, header: decodeChunkHeader(headerBytes), headerBytes, ciphertext, tag, sealed, hash };
  }
}
