import { createHash } from 'node:crypto';

/**
 * Recording file format, version 1 (see docs/recording-format.md for the byte layout).
 *
 *   file    = MAGIC u32(headerLen) header-json record*
 *   record  = u8(type) u32(bodyLen) body
 *   chunk   = type 'C': CHUNK_HEADER(68 bytes) ciphertext tag(16)
 *   trailer = type 'T': u32(jsonLen) trailer-json signature(64, Ed25519)
 *
 * Chunk header (all big-endian): u32 seq | u32 tStart ms | u32 tEnd ms | u32 plainLen |
 * 32 prevHash | 8 sessionTag | 12 nonce. The whole header is the AES-GCM AAD, so seq, times and
 * the chain link are authenticated; the chain hash covers header + ciphertext + tag, so it can be
 * checked with no key at all.
 */
export const MAGIC = Buffer.from('TGREC\x00\x01\n', 'latin1');
export const REC_CHUNK = 0x43; // 'C'
export const REC_TRAILER = 0x54; // 'T'
export const CHUNK_HEADER_LEN = 4 + 4 + 4 + 4 + 32 + 8 + 12;
export const TAG_LEN = 16;
export const SIG_LEN = 64;
export const MAX_RECORD = 16 * 1024 * 1024;

export const FRAME = { output: 0x6f, input: 0x69, resize: 0x72, marker: 0x6d } as const; // o i r m
export type FrameKind = keyof typeof FRAME;
const KIND_BY_BYTE = new Map<number, FrameKind>(Object.entries(FRAME).map(([k, v]) => [v, k as FrameKind]));

export interface Frame {
  /** Milliseconds since the session started. */
  t: number;
  kind: FrameKind;
  data: Buffer;
}

export interface RecordingHeader {
  v: 1;
  sessionId: string;
  user: string;
  role: string;
  startedAt: number;
  cols: number;
  rows: number;
  term: string;
  cipher: 'aes-256-gcm';
  compression: 'deflate-raw';
  recordInput: boolean;
}

export interface ChunkHeader {
  seq: number;
  tStart: number;
  tEnd: number;
  plainLen: number;
  prevHash: Buffer;
  sessionTag: Buffer;
  nonce: Buffer;
}

export interface Trailer {
  v: 1;
  sessionId: string;
  chunks: number;
  durationMs: number;
  finalHash: string;
  endedAt: number;
  reason: string;
}

export const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** 8 bytes naming the session in every chunk header, so a spliced foreign chunk is named as such. */
export const sessionTag = (sessionId: string): Buffer => sha256(Buffer.from(`tmuxgate-session:${sessionId}`)).subarray(0, 8);

/** The hash the first chunk links to: it binds the file header. */
export const genesisHash = (headerBytes: Buffer): Buffer => sha256(MAGIC, headerBytes);

/** Bytes a trailer signature covers. */
export const trailerSigned = (json: Buffer): Buffer => Buffer.concat([Buffer.from('tmuxgate-trailer-v1\0'), json]);

/** A deterministic nonce: unique per chunk because every session has its own data key. */
export function chunkNonce(seq: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(seq, 8);
  return n;
}

export function encodeFileStart(header: RecordingHeader): { bytes: Buffer; headerBytes: Buffer } {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(headerBytes.length);
  return { bytes: Buffer.concat([MAGIC, len, headerBytes]), headerBytes };
}

export function encodeChunkHeader(h: ChunkHeader): Buffer {
  const b = Buffer.alloc(CHUNK_HEADER_LEN);
  b.writeUInt32BE(h.seq, 0);
  b.writeUInt32BE(h.tStart, 4);
  b.writeUInt32BE(h.tEnd, 8);
  b.writeUInt32BE(h.plainLen, 12);
  h.prevHash.copy(b, 16);
  h.sessionTag.copy(b, 48);
  h.nonce.copy(b, 56);
  return b;
}

export function decodeChunkHeader(b: Buffer): ChunkHeader {
  return {
    seq: b.readUInt32BE(0),
    tStart: b.readUInt32BE(4),
    tEnd: b.readUInt32BE(8),
    plainLen: b.readUInt32BE(12),
    prevHash: b.subarray(16, 48),
    sessionTag: b.subarray(48, 56),
    nonce: b.subarray(56, 68),
  };
}

/** type + length prefix for a record body. */
export function recordPrefix(type: number, bodyLen: number): Buffer {
  const p = Buffer.alloc(5);
  p[0] = type;
  p.writeUInt32BE(bodyLen, 1);
  return p;
}

/** Frames -> plaintext: u8 kind | u32 t | u32 len | data, repeated. */
export function encodeFrames(frames: Frame[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const h = Buffer.alloc(9);
    h[0] = FRAME[f.kind];
    h.writeUInt32BE(f.t, 1);
    h.writeUInt32BE(f.data.length, 5);
    parts.push(h, f.data);
  }
  return Buffer.concat(parts);
}

/** Plaintext -> frames; throws on a malformed buffer (which a valid GCM tag rules out). */
export function decodeFrames(b: Buffer): Frame[] {
  const out: Frame[] = [];
  let p = 0;
  while (p < b.length) {
    if (p + 9 > b.length) throw new Error('truncated frame header');
    const kind = KIND_BY_BYTE.get(b[p]!);
    const t = b.readUInt32BE(p + 1);
    const len = b.readUInt32BE(p + 5);
    if (!kind || p + 9 + len > b.length) throw new Error('malformed frame');
    out.push({ t, kind, data: b.subarray(p + 9, p + 9 + len) });
    p += 9 + len;
  }
  return out;
}

/** Resize frame payload. */
export function resizeData(cols: number, rows: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(cols, 0);
  b.writeUInt16BE(rows, 2);
  return b;
}

export function readResize(b: Buffer): { cols: number; rows: number } {
  return { cols: b.readUInt16BE(0), rows: b.readUInt16BE(2) };
}
