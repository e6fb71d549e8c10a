import type { AdminContext } from './context.js';
import type { VerifyResult } from '../recording/verify.js';
import { verifyStored } from '../recording/access.js';
import { RecordingStream } from '../recording/stream.js';
import { searchFrames } from '../recording/search.js';

/** Every look at a recording (replay, export, search, verify, live view) is an audit event naming who looked. */
export async function recordingAccess(
  a: AdminContext,
  action: 'replay' | 'export' | 'search' | 'verify' | 'list',
  sessionId: string | null,
  detail?: string,
): Promise<void> {
  await a.audit.emit(a.actor, { type: 'recording.access', action, sessionId, ...(detail ? { detail } : {}) });
}

/**
 * Verifies one recording, or every one (`sessionId` null), noting and auditing each verdict.
 * `progress` is told how many are done of how many.
 */
export async function verifyRecordings(
  a: AdminContext,
  sessionId: string | null,
  publicKeyPem: string,
  withKey: boolean,
  progress: (done: number, total: number) => void = () => {},
): Promise<VerifyResult[]> {
  // --all: the recordings on this node's disk (each node verifies its own).
  const ids = sessionId === null ? (await a.recordings.list({ onNode: a.nodeId })).map((r) => r.session_id) : [sessionId];
  const results: VerifyResult[] = [];
  for (const [i, sid] of ids.entries()) {
    const r = await verifyStored(a, sid, publicKeyPem, withKey);
    await recordingAccess(a, 'verify', sid, r.status);
    progress(i + 1, ids.length);
    results.push(r);
  }
  return results;
}

export interface RecordingSearchHit {
  session: string;
  user: string;
  role: string;
  offsetMs: number;
  line: string;
}

export interface SearchHooks {
  /** How many recordings are searched of how many. */
  progress?(done: number, total: number): void;
  /** A recording that could not be read (missing, tampered, wrong key): skipped, the search goes on. */
  skipped?(sessionId: string, message: string): void;
}

/**
 * Searches the recordings of the sessions that match `filter` for lines where `query.match` holds,
 * one recording streamed at a time; each recording searched is audited with the query text.
 */
export async function searchRecordings(
  a: AdminContext,
  filter: { user?: string; role?: string; since?: number; until?: number },
  query: { text: string; match: (line: string) => boolean },
  hooks: SearchHooks = {},
): Promise<RecordingSearchHit[]> {
  const sessions = [];
  // A purged recording has no content left to search.
  for (const s of await a.sessions.list(filter)) if ((await a.recordings.get(s.id))?.purged_at === null) sessions.push(s);
  const results: RecordingSearchHit[] = [];
  for (const [i, s] of sessions.entries()) {
    await recordingAccess(a, 'search', s.id, `text ${JSON.stringify(query.text).slice(0, 100)}`);
    try {
      const rec = await RecordingStream.open(a, s.id);
      let found;
      try {
        found = await searchFrames(rec.header, rec.all(), query.match);
      } finally {
        await rec.close();
      }
      for (const h of found) results.push({ session: s.id, user: s.user_name, role: s.role_name, offsetMs: h.offsetMs, line: h.line });
    } catch (e) {
      hooks.skipped?.(s.id, (e as Error).message);
    }
    hooks.progress?.(i + 1, sessions.length);
  }
  return results;
}
