import { readFileSync, existsSync } from 'node:fs';
import type { SessionRecord, SessionRepo } from '../store/sessions.js';
import type { RecordingRepo, RecordingRow } from '../store/recordings.js';
import type { KeyProvider } from '../crypto/master-key.js';
import type { Clock } from '../platform/clock.js';
import { TgError } from '../errors.js';
import { openChunk, parseRecording, type ChunkRecord } from './reader.js';
import { aesGcmSealer } from '../crypto/sealer.js';
import type { Frame, RecordingHeader } from './format.js';
import { verifyPurged, verifyRecording, type VerifyResult } from './verify.js';

/**
 * What reading a recording needs: the CLI's admin context and the gateway's context both have it.
 * `nodeId` is the node whose disk this process reads (recordings stay where they were recorded).
 */
export interface RecordingStore {
  sessions: SessionRepo;
  recordings: RecordingRepo;
  masterKeys: KeyProvider;
  nodeId?: string;
}

export interface OpenedRecording {
  session: SessionRecord;
  row: RecordingRow;
  header: RecordingHeader;
  frames: Frame[];
  durationMs: number;
  /** The session data key (in memory only), for the encrypted keyframe cache. */
  dataKey: Buffer;
  /** Hash of the last chunk: binds the keyframe cache to exactly this content. */
  head: string;
}

/** Session + recording rows for an id, or TG_ERR_SESSION_NOT_FOUND. */
export async function findRecording(a: RecordingStore, sessionId: string): Promise<{ session: SessionRecord; row: RecordingRow }> {
  const session = await a.sessions.get(sessionId);
  const row = await a.recordings.get(sessionId);
  if (!session || !row) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no recorded session ${sessionId}; list them with: tmuxgate sessions list`);
  // A recording stays on the disk of the node that recorded it: another node's is not missing, it is elsewhere.
  if (a.nodeId !== undefined && session.node_id !== null && session.node_id !== a.nodeId) {
    throw new TgError('TG_ERR_RECORDING_ON_OTHER_NODE', `recording ${sessionId} is on the disk of node ${session.node_id}; run this command on that node`);
  }
  return { session, row };
}

/** Reads the recording file (refusing a missing one with a clear error). */
export function readRecordingFile(row: RecordingRow): Buffer {
  if (!existsSync(row.file)) throw new TgError('TG_ERR_RECORDING_MISSING', `recording file ${row.file} is missing`);
  return readFileSync(row.file);
}

/** Decrypts a whole recording to frames (verify it first for a tamper verdict; this stops at the first bad chunk). */
export async function openRecording(a: RecordingStore, sessionId: string): Promise<OpenedRecording> {
  const { session, row } = await findRecording(a, sessionId);
  const key = a.recordings.dataKey(row, a.masterKeys);
  const sealer = aesGcmSealer(key);
  const parsed = parseRecording(readRecordingFile(row));
  if (!parsed.header) throw new TgError('TG_ERR_RECORDING_TAMPERED', `recording ${sessionId}: ${parsed.headerError}`);
  const frames: Frame[] = [];
  let head = '';
  for (const r of parsed.records) {
    if (r.type !== 'chunk') continue;
    head = r.hash.toString('hex');
    try {
      frames.push(...openChunk(r as ChunkRecord, sealer));
    } catch {
      throw new TgError('TG_ERR_RECORDING_TAMPERED', `recording ${sessionId}: chunk ${r.header.seq} does not decrypt; run: tmuxgate verify ${sessionId}`);
    }
  }
  const durationMs = Math.max(row.duration_ms ?? 0, frames.at(-1)?.t ?? 0);
  return { session, row, header: parsed.header, frames, durationMs, dataKey: key, head };
}

/**
 * Verifies one stored recording end to end (with the master key, or with `withKey` false only
 * chain and signatures against the audit public key) and notes the verdict on its row. A missing
 * file is a verdict (tampered: truncated), not an error; an unknown session is TG_ERR_SESSION_NOT_FOUND.
 * A purged recording is judged by its signed tombstone alone (status purged, or tampered when it
 * does not verify).
 */
export async function verifyStored(a: RecordingStore & { clock: Clock }, sessionId: string, publicKeyPem: string, withKey: boolean): Promise<VerifyResult> {
  const r = await verifyFile(a, sessionId, publicKeyPem, withKey);
  await a.recordings.noteVerified(sessionId, r.status, a.clock.now());
  return r;
}

async function verifyFile(a: RecordingStore, sessionId: string, publicKeyPem: string, withKey: boolean): Promise<VerifyResult> {
  const { row } = await findRecording(a, sessionId);
  if (row.purged_at !== null) {
    const auditRow = await a.recordings.tombstoneRow(sessionId);
    return verifyPurged({ sessionId, db: { chunks: row.chunks, head: row.chain_head }, auditRow, publicKeyPem });
  }
  let file: Buffer;
  try {
    file = readRecordingFile(row);
  } catch {
    const problem = { chunk: null, reason: 'truncated' as const, detail: `recording file ${row.file} is missing` };
    return { sessionId, status: 'tampered', chunks: 0, decrypted: false, problem };
  }
  let dataKey: Buffer | null = null;
  let keyError: string | undefined;
  if (withKey) {
    try {
      dataKey = a.recordings.dataKey(row, a.masterKeys);
    } catch (e) {
      keyError = `the data key does not open with this master key (${(e as Error).message})`;
    }
  }
  const sessionState = row.state === 'recording' ? 'live' : row.state === 'sealed' ? 'closed' : 'interrupted';
  return verifyRecording({ sessionId, file, dataKey, keyError, publicKeyPem, db: { sessionState, chunks: row.chunks, head: row.chain_head } });
}
