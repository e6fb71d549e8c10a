import { verifyWithPublicKey } from '../crypto/audit-key.js';
import { genesisHash, sessionTag, trailerSigned } from './format.js';
import { aesGcmSealer } from '../crypto/sealer.js';
import { authenticateChunk, parseRecording, type ChunkRecord } from './reader.js';
import { rowHash, type AuditRow } from '../audit/log.js';
import { readTombstone, tombstoneSigned, type Tombstone } from '../audit/tombstone.js';

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
  | 'missing-trailer'
  | 'bad-tombstone';

export interface VerifyResult {
  sessionId: string;
  /**
   * intact: sealed and whole. interrupted/live: whole up to the last flushed chunk, no trailer yet.
   * purged: destroyed under retention, attested by a signed tombstone that verifies.
   */
  status: 'intact' | 'interrupted' | 'live' | 'purged' | 'tampered';
  chunks: number;
  decrypted: boolean;
  problem: { chunk: number | null; reason: VerifyReason; detail: string } | null;
  /** For a purged recording: the tombstone that verified, and the audit row that carries it. */
  tombstone?: Tombstone & { auditId: number };
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
        return res('tampered', n, {
          chunk: n === 0 ? 0 : n - 1,
          reason: 'broken-chain',
          detail: `${altered} was altered: chunk ${n} links to a different hash`,
        });
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
        return res('tampered', n, {
          chunk: null,
          reason: 'trailer-mismatch',
          detail: `the signed trailer says ${t?.chunks ?? '?'} chunks ending in ${t?.finalHash.slice(0, 12) ?? '?'}, the file has ${n} ending in ${head.toString('hex').slice(0, 12)}`,
        });
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
    if (parsed.tornTail > 0)
      return res('tampered', n, { chunk: null, reason: 'data-after-trailer', detail: `${parsed.tornTail} stray bytes after the trailer` });
    return res('intact', n, null);
  }
  const state = v.db?.sessionState ?? 'closed';
  if (state === 'live') return res('live', n, null);
  if (state === 'interrupted') return res('interrupted', n, null);
  return res('tampered', n, {
    chunk: null,
    reason: parsed.tornTail > 0 ? 'truncated' : 'missing-trailer',
    detail:
      parsed.tornTail > 0
        ? `the file is cut off after chunk ${n - 1} and has no trailer`
        : 'the session closed normally but the recording has no signed trailer',
  });
}

/** A purged recording's row and the audit row its purge named, for verifyPurged. */
export interface PurgedInput {
  sessionId: string;
  /** The recording row's chunk count and chain head: what the tombstone must name. */
  db: { chunks: number; head: string };
  auditRow: AuditRow | null;
  publicKeyPem: string;
}

/**
 * Checks a purged recording's tombstone with the audit public key alone: the audit row is a
 * recording.purged event for this session whose own hash is intact, its Ed25519 signature
 * verifies, and it names the chunk count and chain head the recording row kept. Anything else
 * is a tampered verdict, never "purged": a deletion without a valid tombstone is not a purge.
 */
export function verifyPurged(v: PurgedInput): VerifyResult {
  const bad = (detail: string): VerifyResult => ({
    sessionId: v.sessionId,
    status: 'tampered',
    chunks: 0,
    decrypted: false,
    problem: { chunk: null, reason: 'bad-tombstone', detail },
  });
  const row = v.auditRow;
  if (!row || row.type !== 'recording.purged') return bad('the recording is marked purged but its signed tombstone is not in the audit log');
  if (rowHash(row.prev_hash, row) !== row.hash) return bad(`the tombstone's audit row ${row.id} was altered after it was written`);
  let fields: unknown;
  try {
    fields = JSON.parse(row.data);
  } catch {
    fields = null;
  }
  const t = readTombstone(fields);
  if (!t || t.tombstone.sessionId !== v.sessionId) return bad(`audit row ${row.id} is not a tombstone of session ${v.sessionId}`);
  if (!verifyWithPublicKey(v.publicKeyPem, tombstoneSigned(t.tombstone), t.signature)) {
    return bad(`the tombstone in audit row ${row.id} does not verify with the audit public key`);
  }
  if (t.tombstone.chunks !== v.db.chunks || t.tombstone.finalHash !== v.db.head) {
    const named = `${t.tombstone.chunks} chunks ending in ${t.tombstone.finalHash.slice(0, 12)}`;
    return bad(`the tombstone names ${named}, the store ${v.db.chunks} ending in ${v.db.head.slice(0, 12)}`);
  }
  const tombstone = { ...t.tombstone, auditId: row.id };
  return { sessionId: v.sessionId, status: 'purged', chunks: t.tombstone.chunks, decrypted: false, problem: null, tombstone };
}
