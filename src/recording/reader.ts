import { inflateRawSync } from 'node:zlib';
import { z } from 'zod';
import type { Sealer } from '../crypto/sealer.js';
import {
  CHUNK_HEADER_LEN,
  MAGIC,
  MAX_RECORD,
  REC_CHUNK,
  REC_TRAILER,
  SIG_LEN,
  TAG_LEN,
  decodeChunkHeader,
  decodeFrames,
  sha256,
  type ChunkHeader,
  type Frame,
  type RecordingHeader,
  type Trailer,
} from './format.js';

const HeaderSchema = z.object({
  v: z.literal(1),
  sessionId: z.string(),
  user: z.string(),
  role: z.string(),
  startedAt: z.number(),
  cols: z.number(),
  rows: z.number(),
  term: z.string(),
  cipher: z.literal('aes-256-gcm'),
  compression: z.literal('deflate-raw'),
  recordInput: z.boolean(),
});

export const TrailerSchema = z.object({
  v: z.literal(1),
  sessionId: z.string(),
  chunks: z.number(),
  durationMs: z.number(),
  finalHash: z.string(),
  endedAt: z.number(),
  reason: z.string(),
});

export interface ChunkRecord {
  type: 'chunk';
  offset: number;
  header: ChunkHeader;
  headerBytes: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  /** ciphertext || tag, as they lie in the file: what Sealer.openWith takes. */
  sealed: Buffer;
  /** sha256(header || ciphertext || tag): what the next chunk links to. */
  hash: Buffer;
}

export interface TrailerRecord {
  type: 'trailer';
  offset: number;
  json: Buffer;
  signature: Buffer;
  trailer: Trailer | null;
}

export interface ParsedRecording {
  header: RecordingHeader | null;
  headerBytes: Buffer;
  headerError: string | null;
  records: (ChunkRecord | TrailerRecord)[];
  /** Bytes at the end that do not form a whole record (a write cut short). */
  tornTail: number;
  /** A record whose type byte or length is impossible: parsing stopped there. */
  badRecordAt: number | null;
}

/** The file header at the start of `buf` (magic, length, JSON); `end` is where the records start. */
export function parseHeader(buf: Buffer): { header: RecordingHeader | null; headerBytes: Buffer; headerError: string | null; end: number } {
  const fail = (headerError: string) => ({ header: null, headerBytes: Buffer.alloc(0), headerError, end: 0 });
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return fail('not a tmuxgate recording (bad magic)');
  const hlen = buf.readUInt32BE(MAGIC.length);
  const p = MAGIC.length + 4;
  if (hlen > 65_536 || p + hlen > buf.length) return fail('file header is truncated');
  const headerBytes = buf.subarray(p, p + hlen);
  try {
    return { header: HeaderSchema.parse(JSON.parse(headerBytes.toString('utf8'))) as RecordingHeader, headerBytes, headerError: null, end: p + hlen };
  } catch {
    return { ...fail('file header is not valid'), headerBytes };
  }
}

/** Splits a recording into header and records without any key (chunk headers are plaintext). */
export function parseRecording(buf: Buffer): ParsedRecording {
  const h = parseHeader(buf);
  const out: ParsedRecording = { header: h.header, headerBytes: h.headerBytes, headerError: h.headerError, records: [], tornTail: 0, badRecordAt: null };
  if (!h.header) return out;
  let p = h.end;
  while (p < buf.length) {
    if (p + 5 > buf.length) {
      out.tornTail = buf.length - p;
      break;
    }
    const type = buf[p]!;
    const len = buf.readUInt32BE(p + 1);
    if ((type !== REC_CHUNK && type !== REC_TRAILER) || len > MAX_RECORD) {
      out.badRecordAt = p;
      break;
    }
    if (p + 5 + len > buf.length) {
      out.tornTail = buf.length - p;
      break;
    }
    const body = buf.subarray(p + 5, p + 5 + len);
    if (type === REC_CHUNK) {
      if (len < CHUNK_HEADER_LEN + TAG_LEN) {
        out.badRecordAt = p;
        break;
      }
      const headerBytes = body.subarray(0, CHUNK_HEADER_LEN);
      const ciphertext = body.subarray(CHUNK_HEADER_LEN, len - TAG_LEN);
      const tag = body.subarray(len - TAG_LEN);
      const sealed = body.subarray(CHUNK_HEADER_LEN);
      const hash = sha256(headerBytes, ciphertext, tag);
      out.records.push({ type: 'chunk', offset: p, header: decodeChunkHeader(headerBytes), headerBytes, ciphertext, tag, sealed, hash });
    } else {
      const jlen = len >= 4 ? body.readUInt32BE(0) : -1;
      if (jlen < 0 || 4 + jlen + SIG_LEN !== len) {
        out.badRecordAt = p;
        break;
      }
      const json = body.subarray(4, 4 + jlen);
      let trailer: Trailer | null = null;
      try {
        trailer = TrailerSchema.parse(JSON.parse(json.toString('utf8'))) as Trailer;
      } catch {
        trailer = null;
      }
      out.records.push({ type: 'trailer', offset: p, json, signature: body.subarray(4 + jlen), trailer });
    }
    p += 5 + len;
  }
  return out;
}

/**
 * Checks one chunk's GCM tag (content and header authentic) without inflating it. `sealer` holds
 * the session data key; the nonce is the one in the chunk header, and the whole header is the AAD.
 */
export function authenticateChunk(c: ChunkRecord, sealer: Sealer): boolean {
  try {
    sealer.openWith(c.header.nonce, c.sealed, c.headerBytes);
    return true;
  } catch {
    return false;
  }
}

/** Decrypts and decodes one chunk with the session's Sealer; throws when the tag does not verify. */
export function openChunk(c: ChunkRecord, sealer: Sealer): Frame[] {
  const compressed = sealer.openWith(c.header.nonce, c.sealed, c.headerBytes);
  const plain = inflateRawSync(compressed, { maxOutputLength: c.header.plainLen });
  if (plain.length !== c.header.plainLen) throw new Error('chunk length does not match its header');
  return decodeFrames(plain);
}
