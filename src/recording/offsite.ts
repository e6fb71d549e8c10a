import { CHUNK_HEADER_LEN, MAGIC, MAX_RECORD, REC_CHUNK, REC_TRAILER, SIG_LEN, TAG_LEN, decodeChunkHeader, genesisHash, sha256 } from './format.js';
import { TrailerSchema } from './reader.js';

/**
 * A recording's records as they leave the box: the exact bytes of each record of the local file,
 * handed over once they are durable there. The off-box sinks (src/evidence/) store them as they
 * are, so a copy can be compared byte for byte with the file and verified on its own.
 */

export type RecordKind = 'header' | 'chunk' | 'trailer';

/** One record of a recording file, durable locally. */
export interface DurableRecord {
  kind: RecordKind;
  /** header: 0; chunk: its sequence number; trailer: the chunk count. */
  seq: number;
  /** The record exactly as in the file (the header: magic, length and JSON; a chunk or trailer: type, length, body). */
  bytes: Buffer;
  /** The chain hash after this record (hex): the genesis hash, the chunk's hash, the trailer's finalHash. */
  hash: string;
  /** Where the record starts in the file. */
  offset: number;
}

/** Where one recorder hands its durable records (the off-box shipping of one session). */
export interface OffsiteFeed {
  /** Records now on stable storage, in file order. Must not throw or block. */
  durable(records: DurableRecord[]): void;
  /** The recorder is closed (sealed or failed): no more records come. */
  close(): void;
}

/** Opens a session's feed: what the recorder factory asks for each new recording. */
export interface OffsiteRecordings {
  begin(sessionId: string, file: string): OffsiteFeed;
}

/**
 * The whole records of a recording file found in `buf`, which holds the file's bytes from
 * `offset` on (offset 0: the file header first). Stops at the first incomplete or malformed
 * record; `end` is the file offset after the last whole record.
 */
export function recordsAt(buf: Buffer, offset: number): { records: DurableRecord[]; end: number } {
  const records: DurableRecord[] = [];
  let p = 0;
  if (offset === 0) {
    if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return { records, end: 0 };
    const hlen = buf.readUInt32BE(MAGIC.length);
    const end = MAGIC.length + 4 + hlen;
    if (end > buf.length) return { records, end: 0 };
    const headerBytes = buf.subarray(MAGIC.length + 4, end);
    records.push({ kind: 'header', seq: 0, bytes: buf.subarray(0, end), hash: genesisHash(headerBytes).toString('hex'), offset: 0 });
    p = end;
  }
  while (p + 5 <= buf.length) {
    const type = buf[p]!;
    const len = buf.readUInt32BE(p + 1);
    if ((type !== REC_CHUNK && type !== REC_TRAILER) || len > MAX_RECORD || p + 5 + len > buf.length) break;
    const body = buf.subarray(p + 5, p + 5 + len);
    const bytes = buf.subarray(p, p + 5 + len);
    if (type === REC_CHUNK) {
      if (len < CHUNK_HEADER_LEN + TAG_LEN) break;
      const seq = decodeChunkHeader(body.subarray(0, CHUNK_HEADER_LEN)).seq;
      records.push({ kind: 'chunk', seq, bytes, hash: sha256(body).toString('hex'), offset: offset + p });
    } else {
      const trailer = trailerOf(body);
      if (!trailer) break;
      records.push({ kind: 'trailer', seq: trailer.chunks, bytes, hash: trailer.finalHash, offset: offset + p });
    }
    p += 5 + len;
  }
  return { records, end: offset + p };
}

/** The trailer JSON of a trailer record's body, or null. */
function trailerOf(body: Buffer): { chunks: number; finalHash: string } | null {
  if (body.length < 4) return null;
  const jlen = body.readUInt32BE(0);
  if (4 + jlen + SIG_LEN !== body.length) return null;
  try {
    return TrailerSchema.parse(JSON.parse(body.subarray(4, 4 + jlen).toString('utf8')));
  } catch {
    return null;
  }
}

/** The length of the record starting at `buf[0]` of a file at `offset` (0: the header), or null if `buf` is too short to tell. */
export function recordLength(buf: Buffer, offset: number): number | null {
  if (offset === 0) return buf.length >= MAGIC.length + 4 ? MAGIC.length + 4 + buf.readUInt32BE(MAGIC.length) : null;
  return buf.length >= 5 ? 5 + buf.readUInt32BE(1) : null;
}
