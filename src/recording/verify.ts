import { verifyWithPublicKey } from '../crypto/audit-key.js';
import { genesisHash, sessionTag, trailerSigned } from './format.js';
import { aesGcmSealer } from '../crypto/sealer.js';
import { authenticateChunk, parseRecording, type ChunkRecord } from './reader.js';

export type VerifyReason =
  | 'bad-header'
  | 'foreign-file'
  | 'foreign-chunk'
  | 'reordered'
  | 'missing-chunk'
  | 'broken-chain'
  | 'decrypt-failure'
  | 'wrong-key'
  | 'bad-record'
  | 'bad-signature'
  | 'trailer-mismatch'
  | 'data-after-trailer'
  | 'truncated'
  | 'missing-trailer';

export interface VerifyResult {
  sessionId: string;
  /** intact: sealed and whole. interrupted/live: whole up to the last flushed chunk, no trailer yet. */
  status: 'intact' | 'interrupted' | 'live' | 'tampered';
  chunks: number;
  decrypted: boolean;
  problem: { chunk: number | null; reason: VerifyReason; detail: string } | null;
}

export interface VerifyInput {
  sessionId: string;
  file: Buffer;
  /** The session's data key; null to check chain and signature only (public-key mode). */
  dataKey: Buffer | null;
  /** Set when the data key could not be unwrapped with the master key given. */
  keyError?: string;
  publicKeyPem: string;
  /** What SQLite says: the session's state and the chain head after the last durable flush. */
  db: { sessionState: 'live' | 'closed' | 'interrupted'; chunks: number; head: string } | null;
}

/**
 * Checks a recording end to end and names the first problem: header, each chunk's sequence,
 * owner and chain link, (with the key) its authentication tag, then the signed trailer, then
 * the chain head SQLite kept. A missing trailer is fine only for a session that never closed.
 */
export function verifyRecording(v: VerifyInput): VerifyResult {
  const res = (status: VerifyResult['status'], chunks: number, problem: VerifyResult['problem']): VerifyResult => ({
    sessionId: v.sessionId,
    status: problem ? 'tampered' : status,
    chunks,
    decrypted: v.dataKey !== null,
    problem,
  });
  if (v.keyError) return res('tampered', 0, { chunk: null, reason: 'wrong-key', detail: v.keyError });
  const parsed = parseRecording(v.file);
  if (!parsed.header) return res('tampered', 0, { chunk: null, reason: 'bad-header', detail: parsed.headerError ?? 'bad header' });
  if (parsed.header.sessionId !== v.sessionId) {
    return res('tampered', 0, { chunk: null, reason: 'foreign-file', detail: `file header names session ${parsed.header.sessionId}` });
  }
  const tag = sessionTag(v.sessionId);
  let head = genesisHash(parsed.headerBytes);
  let n = 0;
  let trailerOk = false;
  const chunks = parsed.records.filter((r): r is ChunkRecord => r.type === 'chunk');
  const sealer = v.dataKey ? aesGcmSealer(v.dataKey) : null;
  for (const r of parsed.records) {
    if (r.type === 'chunk') {
      if (trailerOk) return res('tampered', n, { chunk: r.header.seq, reason: 'data-after-trailer', detail: 'a chunk follows the sealed trailer' });
      if (!r.header.sessionTag.equals(tag)) {
        return res('tampered', n, { chunk: n, reason: 'foreign-chunk', detail: `chunk at position ${n} belongs to another session` });
      }
      if (r.header.seq !== n) {
        const later = chunks.some((c) => c.header.seq === n && c.offset > r.offset);
        return later
          ? res('tampered', n, { chunk: n, reason: 'reordered', detail: `chunk ${r.header.seq} stands where chunk ${n} belongs` })
          : res('tampered', n, { chunk: n, reason: 'missing-chunk', detail: `chunk ${n} is missing (next present is ${r.header.seq})` });
      }
      if (!r.header.prevHash.equals(head)) {
        const altered = n === 0 ? 'the file header' : `chunk ${n - 1}`;
        return res('tampered', n, { chunk: n === 0 ? 0 : n - 1, reason: 'broken-chain', detail: `${altered} was altered: chunk ${n} links to a different hash` });
      }
      // The GCM tag proves content and header authentic; inflating is left to readers.
      if (sealer && !authenticateChunk(r, sealer)) {
        return res('tampered', n, { chunk: n, reason: 'decrypt-failure', detail: `chunk ${n} does not decrypt: its content or header was altered` });
      }
      head = r.hash;
      n++;
    } else {
      if (trailerOk) return res('tampered', n, { chunk: null, reason: 'data-after-trailer', detail: 'two trailers' });
      if (!verifyWithPublicKey(v.publicKeyPem, trailerSigned(r.json), r.signature)) {
        return res('tampered', n, { chunk: null, reason: 'bad-signature', detail: 'the trailer signature does not verify with the audit public key' });
      }
      const t = r.trailer;
      if (!t || t.sessionId !== v.sessionId || t.chunks !== n || t.finalHash !== head.toString('hex')) {
        return res('tampered', n, { chunk: null, reason: 'trailer-mismatch', detail: `the signed trailer says ${t?.chunks ?? '?'} chunks ending in ${t?.finalHash.slice(0, 12) ?? '?'}, the file has ${n} ending in ${head.toString('hex').slice(0, 12)}` });
      }
      trailerOk = true;
    }
  }
  if (parsed.badRecordAt !== null) {
    return res('tampered', n, { chunk: n, reason: 'bad-record', detail: `unreadable record at byte ${parsed.badRecordAt}` });
  }
  if (v.db && v.db.chunks > n) {
    return res('tampered', n, { chunk: n, reason: 'truncated', detail: `the file ends after ${n} chunks but ${v.db.chunks} were written durably` });
  }
  if (trailerOk) {
    if (parsed.tornTail > 0) return res('tampered', n, { chunk: null, reason: 'data-after-trailer', detail: `${parsed.tornTail} stray bytes after the trailer` });
    return res('intact', n, null);
  }
  const state = v.db?.sessionState ?? 'closed';
  if (state === 'live') return res('live', n, null);
  if (state === 'interrupted') return res('interrupted', n, null);
  return res('tampered', n, {
    chunk: null,
    reason: parsed.tornTail > 0 ? 'truncated' : 'missing-trailer',
    detail: parsed.tornTail > 0 ? `the file is cut off after chunk ${n - 1} and has no trailer` : 'the session closed normally but the recording has no signed trailer',
  });
}
