import type { AdminContext } from './context.js';
import { TgError } from '../errors.js';
import type { VerifyResult } from '../recording/verify.js';
import { verifyStored } from '../recording/access.js';
import { RecordingStream } from '../recording/stream.js';
import { searchFrames } from '../recording/search.js';
import { openRecording } from '../recording/access.js';
import { asciicastLines, asciicastLinesAsync, formatOffset } from '../recording/asciicast.js';
import type { ReplayView } from '../recording/player.js';
import { redactFrames } from '../redaction/view.js';
import type { Redactor } from '../redaction/redactor.js';
import { activeGrant } from '../services/unmask.js';
import { policyAudit, redactorFor, replayView, unmaskedUntil, viewPolicy, type ViewPolicy } from '../redaction/view-policy.js';

/**
 * Every look at a recording (replay, export, search, verify, live view) is an audit event naming
 * who looked; a look at its content also says whether it was redacted (and by which grant not).
 */
export async function recordingAccess(
  a: AdminContext,
  action: 'replay' | 'export' | 'search' | 'verify' | 'list',
  sessionId: string | null,
  detail?: string,
  policy?: ViewPolicy,
): Promise<void> {
  await a.audit.emit(a.actor, { type: 'recording.access', action, sessionId, ...(detail ? { detail } : {}), ...(policy ? policyAudit(policy) : {}) });
}

/** The view policy for the CLI's actor on one session (redaction/view-policy.ts: the one place that decides). */
export function adminViewPolicy(a: AdminContext, view: 'replay' | 'export' | 'search' | 'observe', sessionId: string): Promise<ViewPolicy> {
  return viewPolicy(a, { actor: a.actor }, { view, sessionId });
}

/** How often a view shown unmasked asks whether its grant still stands (a revocation ends it within this). */
export const GRANT_RECHECK_MS = 5000;

/**
 * Runs `fn` once when a view shown unmasked must end: its grant expires, or a check every
 * GRANT_RECHECK_MS finds it no longer in force (revoked). Nothing for a view that is not unmasked.
 */
export function grantExpiry(a: Pick<AdminContext, 'clock' | 'unmask' | 'actor'>, policy: ViewPolicy, sessionId: string, fn: () => void): () => void {
  const until = unmaskedUntil(policy);
  if (until === null) return () => {};
  let over = false;
  const stop = (): void => {
    over = true;
    cancelTimer();
    cancelCheck();
  };
  const end = (): void => {
    if (over) return;
    stop();
    fn();
  };
  const cancelTimer = a.clock.setTimeout(end, Math.max(0, until - a.clock.now()));
  const cancelCheck = a.clock.setInterval(() => {
    activeGrant(a, a.actor, sessionId, a.clock.now()).then(
      (g) => g === null && end(),
      () => end(), // cannot tell: the view ends
    );
  }, GRANT_RECHECK_MS);
  return stop;
}

/**
 * Opens a recording for `tmuxgate replay`, decided and audited: the stream, and the view its
 * output goes through (a redacted one unless the policy says otherwise; null: the recorded bytes).
 */
export async function openReplay(
  a: AdminContext,
  id: string,
  from: number,
): Promise<{ rec: RecordingStream; view: (ReplayView & { dispose(): void }) | null; onGrantExpiry(fn: () => void): () => void }> {
  const rec = await RecordingStream.open(a, id);
  try {
    const policy = await adminViewPolicy(a, 'replay', id);
    await recordingAccess(a, 'replay', id, `from ${formatOffset(from)}`, policy);
    return { rec, view: replayView(policy, a.config, rec.header.cols, rec.header.rows), onGrantExpiry: (fn) => grantExpiry(a, policy, id, fn) };
  } catch (e) {
    await rec.close();
    throw e;
  }
}

/**
 * A recording as asciicast v2 lines for `tmuxgate export`, decided and audited. Redacted: the
 * output frames become redacted redraws of the screen and input frames are dropped (keystrokes
 * have no place on the screen to mask; their echo is on it); otherwise the recorded stream.
 */
export async function exportRecording(a: AdminContext, id: string, to: string): Promise<AsyncIterable<string> | Iterable<string>> {
  const rec = await openRecording(a, id);
  const policy = await adminViewPolicy(a, 'export', id);
  await recordingAccess(a, 'export', id, to, policy);
  const title = `tmuxgate ${id} ${rec.session.user_name}+${rec.session.role_name}${policy.redact ? ' (redacted)' : ''}`;
  if (!policy.redact) return asciicastLines(rec.header, rec.frames, title);
  return asciicastLinesAsync(rec.header, redactFrames(redactorFor(a.config), rec.header, rec.frames), title);
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
  /** The line is shown with its identifiers masked. */
  redacted: boolean;
}

export interface SearchHooks {
  /** How many recordings are searched of how many. */
  progress?(done: number, total: number): void;
  /** A recording that could not be read (missing, tampered, wrong key): skipped, the search goes on. */
  skipped?(sessionId: string, message: string): void;
}

/** A search: its text (for the audit), whether it is a regular expression, and where it matches a line. */
export interface SearchQuery {
  text: string;
  regex: boolean;
  ranges: (line: string) => [number, number][];
}

/** TEXT (or a regular expression) as a search: every place it matches a line. A bad expression is TG_ERR_INVALID_ARGUMENT. */
export function searchQuery(text: string, regex: boolean): SearchQuery {
  if (regex) {
    let re: RegExp;
    try {
      re = new RegExp(text, 'g');
    } catch (e) {
      throw new TgError('TG_ERR_INVALID_ARGUMENT', `--regex: ${(e as Error).message}`);
    }
    return { text, regex, ranges: (l) => [...l.matchAll(re)].map((m) => [m.index, m.index + Math.max(1, m[0].length)] as [number, number]) };
  }
  return {
    text,
    regex,
    ranges: (l) => {
      const out: [number, number][] = [];
      if (text === '') return out;
      for (let i = l.indexOf(text); i !== -1; i = l.indexOf(text, i + 1)) out.push([i, i + text.length]);
      return out;
    },
  };
}

/**
 * Whether `query` finds `line` in a redacted search. Searching for a value is allowed, and answers
 * with sessions and times (issue 15): a text match counts where it covers every identifier it
 * touches whole ("12345678", "MRN: 12345678"), never a part of one ("MRN: 4" would let a few dozen
 * searches read a masked value digit by digit). A regular expression could spell any value a
 * digit at a time ("MRN: 4\d{7}"), so its matches count only outside identifiers.
 */
export function redactedMatch(redactor: Redactor, query: SearchQuery, line: string): boolean {
  const ranges = query.ranges(line);
  if (ranges.length === 0) return false;
  const spans = redactor.detectText(line);
  return ranges.some(([s, e]) => spans.every((sp) => sp.end <= s || sp.start >= e || (!query.regex && s <= sp.start && e >= sp.end)));
}

/**
 * Searches the recordings of the sessions that match `filter` for lines where `query` matches, one
 * recording streamed at a time; each recording searched is audited with the query text and whether
 * its result lines were redacted. Redacted, the lines are shown masked and a match counts only as
 * `redactedMatch` allows (no reading of masked values by searching); unmasked, any match counts.
 */
export async function searchRecordings(
  a: AdminContext,
  filter: { user?: string; role?: string; since?: number; until?: number },
  query: SearchQuery,
  hooks: SearchHooks = {},
): Promise<RecordingSearchHit[]> {
  const sessions = [];
  // A purged recording has no content left to search.
  for (const s of await a.sessions.list(filter)) if ((await a.recordings.get(s.id))?.purged_at === null) sessions.push(s);
  const results: RecordingSearchHit[] = [];
  for (const [i, s] of sessions.entries()) {
    // Searching for a value finds sessions and times; the lines shown are masked unless the policy says otherwise.
    const policy = await adminViewPolicy(a, 'search', s.id);
    const redactor = redactorFor(a.config);
    const shown = policy.redact ? (l: string) => redactor.redactLine(l) : (l: string) => l;
    const match = policy.redact ? (l: string) => redactedMatch(redactor, query, l) : (l: string) => query.ranges(l).length > 0;
    await recordingAccess(a, 'search', s.id, `text ${JSON.stringify(query.text).slice(0, 100)}`, policy);
    try {
      const rec = await RecordingStream.open(a, s.id);
      let found;
      try {
        found = await searchFrames(rec.header, rec.all(), match);
      } finally {
        await rec.close();
      }
      for (const h of found)
        results.push({ session: s.id, user: s.user_name, role: s.role_name, offsetMs: h.offsetMs, line: shown(h.line), redacted: policy.redact });
    } catch (e) {
      hooks.skipped?.(s.id, (e as Error).message);
    }
    hooks.progress?.(i + 1, sessions.length);
  }
  return results;
}
