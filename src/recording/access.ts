import { readFileSync, existsSync } from 'node:fs';
import type { Stores } from '../store/stores.js';
import { TgError } from '../errors.js';
import type { RecordingRow } from '../store/recordings.js';
import type { SessionRecord } from '../store/sessions.js';
import { openChunk, parseRecording, type ChunkRecord } from './reader.js';
import { aesGcmSealer } from '../crypto/sealer.js';
import type { Frame, RecordingHeader } from './format.js';

/** What reading a recording needs: the CLI's admin context and the gateway's context both have it. */
export type RecordingStore = Pick<Stores, 'sessions' | 'recordings' | 'masterKeys'>;

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
export function findRecording(a: RecordingStore, sessionId: string): { session: SessionRecord; row: RecordingRow } {
  const session = a.sessions.get(sessionId);
  const row = a.recordings.get(sessionId);
  if (!session || !row) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no recorded session ${sessionId}; list them with: tmuxgate sessions list`);
  return { session, row };
}

/** Reads the recording file (refusing a missing one with a clear error). */
export function readRecordingFile(row: RecordingRow): Buffer {
  if (!existsSync(row.file)) throw new TgError('TG_ERR_RECORDING_MISSING', `recording file ${row.file} is missing`);
  return readFileSync(row.file);
}

/** Decrypts a whole recording to frames (verify it first for a tamper verdict; this stops at the first bad chunk). */
export function openRecording(a: RecordingStore, sessionId: string): OpenedRecording {
  const { session, row } = findRecording(a, sessionId);
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
