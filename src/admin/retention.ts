import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { AdminContext } from './context.js';
import type { Signer } from '../crypto/audit-key.js';
import { TgError } from '../errors.js';
import { formatRetention } from '../config/duration.js';
import { purgedError, type HoldRow, type RetentionRow } from '../store/recordings.js';
import { tombstoneSigned, type Tombstone } from '../audit/tombstone.js';
import { recordingPath } from '../recording/sink.js';

/**
 * Retention, legal hold and provable deletion. A recording expires at its end plus the retention
 * period its role had when it started; it is purged only once expired and with no hold standing,
 * never earlier (there is no override: see docs/evidence.md). A purge destroys the wrapped data
 * key first, in the transaction that appends the signed tombstone, then deletes the local file.
 */

export interface RetentionView {
  sessionId: string;
  user: string | null;
  role: string | null;
  /** The recording's own state (recording, sealed, interrupted, failed). */
  state: string;
  /** live: still recording; kept: within retention; expired: past it, purgeable; held: a hold stands; purged. */
  status: 'live' | 'kept' | 'expired' | 'held' | 'purged';
  endedAt: number | null;
  retentionMs: number;
  expiresAt: number | null;
  holds: number;
  purgedAt: number | null;
  purgedBy: string | null;
}

function view(a: AdminContext, r: RetentionRow, now: number): RetentionView {
  const retentionMs = r.retention_ms ?? a.recordings.defaultRetentionMs;
  const live = r.state === 'recording' || r.ended_at === null;
  const expiresAt = live ? null : r.ended_at! + retentionMs;
  const status = r.purged_at !== null ? 'purged' : r.holds > 0 ? 'held' : live ? 'live' : expiresAt! <= now ? 'expired' : 'kept';
  return {
    sessionId: r.session_id,
    user: r.user_name,
    role: r.role_name,
    state: r.state,
    status,
    endedAt: r.ended_at,
    retentionMs,
    expiresAt,
    holds: r.holds,
    purgedAt: r.purged_at,
    purgedBy: r.purged_by,
  };
}

/** Recordings with their retention: all, or those past retention (held or not) and/or held now. */
export async function listRetention(a: AdminContext, filter: { expired?: boolean; held?: boolean } = {}): Promise<RetentionView[]> {
  const now = a.clock.now();
  const rows = await a.recordings.retention({ ...(filter.expired ? { expiredAt: now } : {}), ...(filter.held ? { held: true } : {}) });
  return rows.map((r) => view(a, r, now));
}

/** A reason as given: trimmed, not empty, at most 500 characters. */
function checkReason(reason: string, flag = '--reason'): string {
  const r = reason.trim();
  if (r.length === 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag} must not be empty`);
  if (r.length > 500) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag} is longer than 500 characters`);
  return r;
}

async function requireRow(a: AdminContext, sessionId: string): Promise<RetentionRow> {
  const [r] = await a.recordings.retention({ sessionId });
  if (!r) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no recording for session ${sessionId}; see: tmuxgate recordings list`);
  return r;
}

/** Places a legal hold on a recording (live or ended, not purged); audited with the reason. */
export async function placeHold(a: AdminContext, sessionId: string, reason: string): Promise<HoldRow> {
  const why = checkReason(reason);
  return a.transaction(async () => {
    await a.recordings.lock(sessionId);
    const r = await requireRow(a, sessionId);
    if (r.purged_at !== null) throw purgedError(r);
    const holdId = await a.recordings.hold(sessionId, why, a.actor, a.clock.now());
    await a.audit.emit(a.actor, { type: 'recording.hold', sessionId, holdId, reason: why });
    return (await a.recordings.holds(sessionId)).find((h) => h.id === holdId)!;
  });
}

/**
 * Releases holds on a recording: the one named, every standing one (`all`), or, when neither is
 * given, the only one standing (several standing must be named). Audited with the reason.
 */
export async function releaseHolds(a: AdminContext, sessionId: string, which: { holdId?: number; all?: boolean }, reason: string | null): Promise<number[]> {
  const why = reason === null ? null : checkReason(reason);
  return a.transaction(async () => {
    await a.recordings.lock(sessionId);
    await requireRow(a, sessionId);
    const standing = (await a.recordings.holds(sessionId)).filter((h) => h.released_at === null);
    let ids: number[] | null;
    if (which.holdId !== undefined) {
      if (!standing.some((h) => h.id === which.holdId)) {
        const ids = standing.map((h) => h.id).join(', ') || 'none';
        throw new TgError('TG_ERR_HOLD_NOT_FOUND', `no standing hold ${which.holdId} on ${sessionId}; standing: ${ids}`);
      }
      ids = [which.holdId];
    } else if (which.all) {
      ids = null;
    } else {
      if (standing.length === 0) throw new TgError('TG_ERR_HOLD_NOT_FOUND', `no hold stands on ${sessionId}`);
      if (standing.length > 1) {
        const ids = standing.map((h) => h.id).join(', ');
        throw new TgError('TG_ERR_USAGE', `${standing.length} holds stand on ${sessionId} (${ids}): name one with --hold ID, or --all`);
      }
      ids = [standing[0]!.id];
    }
    const released = await a.recordings.release(sessionId, ids, a.actor, why, a.clock.now());
    if (released.length === 0) throw new TgError('TG_ERR_HOLD_NOT_FOUND', `no hold stands on ${sessionId}`);
    await a.audit.emit(a.actor, { type: 'recording.release', sessionId, holdIds: released, reason: why });
    return released;
  });
}

export interface PurgeOutcome {
  sessionId: string;
  /** The audit row that carries the signed tombstone. */
  auditId: number;
  tombstone: Tombstone;
  /** Whether the local file is gone now; when not, why. */
  fileRemoved: boolean;
  fileProblem: string | null;
}

export interface PurgeRun {
  purged: PurgeOutcome[];
  /** Selected but not purged when their turn came (a hold placed meanwhile, purged by another run). */
  skipped: { sessionId: string; code: string; why: string }[];
  /** Past retention but held: never purged. */
  held: RetentionView[];
  /** With dryRun: what would be purged now. */
  wouldPurge: RetentionView[];
  /** Whether the store dropped the old page images (SQLite WAL); true on PostgreSQL (see RecordingRepo.scrub). */
  scrubbed: boolean;
}

/**
 * Destroys one recording. In one transaction, under the recording's lock: re-reads it and its
 * holds, refuses a held, unexpired or purged one, overwrites the wrapped data key (from then on
 * no copy of the file anywhere can be decrypted), appends the signed tombstone to the audit chain
 * and notes the row it landed in; the key is gone exactly when the tombstone exists. Then it
 * deletes the local file and its keyframe cache.
 */
async function purgeOne(a: AdminContext, sessionId: string, reason: string, signer: Signer): Promise<PurgeOutcome> {
  const done = await a.transaction(async () => {
    await a.recordings.lock(sessionId);
    const r = await requireRow(a, sessionId);
    const now = a.clock.now();
    const v = view(a, r, now);
    if (r.purged_at !== null) throw purgedError(r);
    if (r.holds > 0) {
      const why = `recording ${sessionId} is under ${r.holds} legal hold(s) and is never purged while one stands`;
      throw new TgError('TG_ERR_RECORDING_HELD', `${why}; see: tmuxgate recordings list --held`);
    }
    if (v.expiresAt === null) throw new TgError('TG_ERR_RECORDING_NOT_EXPIRED', `recording ${sessionId} is still being recorded`);
    if (v.expiresAt > now) {
      throw new TgError(
        'TG_ERR_RECORDING_NOT_EXPIRED',
        `recording ${sessionId} is kept until ${new Date(v.expiresAt).toISOString()} ` +
          `(role ${r.role_name ?? '?'}, retention ${formatRetention(v.retentionMs)}); ` +
          'tmuxgate never destroys a recording before its retention ends',
      );
    }
    const tombstone: Tombstone = {
      v: 1,
      sessionId,
      chunks: r.chunks,
      finalHash: r.chain_head,
      reason,
      role: r.role_name ?? '(unknown)',
      retentionMs: v.retentionMs,
      endedAt: v.endedAt!,
      expiresAt: v.expiresAt,
      purgedAt: now,
      by: a.actor,
    };
    const signature = signer.sign(tombstoneSigned(tombstone)).toString('base64');
    // The statement re-checks the holds itself: the key goes only if none stands at this instant.
    if (!(await a.recordings.shred(sessionId, a.actor, reason, now))) {
      throw new TgError('TG_ERR_RECORDING_HELD', `recording ${sessionId} was put on hold while it was being purged; it is kept`);
    }
    await a.audit.emit(a.actor, { type: 'recording.purged', ...tombstone, signature });
    // The chain lock is held until this transaction commits: the newest row is the tombstone.
    const auditId = await a.auditEvents.maxId();
    await a.recordings.notePurgeAudit(sessionId, auditId);
    return { auditId, tombstone, file: r.file };
  });
  const removal = await removeLocalFiles(a, sessionId, done.file);
  return { sessionId, auditId: done.auditId, tombstone: done.tombstone, ...removal };
}

/**
 * Deletes a purged recording's local file and keyframe cache, only at the path the gateway's
 * file sink gives that session (a row naming any other path is left alone and reported); audited.
 */
async function removeLocalFiles(a: AdminContext, sessionId: string, file: string): Promise<{ fileRemoved: boolean; fileProblem: string | null }> {
  const expected = recordingPath(path.join(a.config.paths.dataDir, 'recordings'), sessionId);
  if (path.resolve(file) !== expected) {
    return { fileRemoved: false, fileProblem: `the stored path ${file} is not ${expected}: not removed (its key is destroyed, so it cannot be decrypted)` };
  }
  const removed: string[] = [];
  let problem: string | null = null;
  for (const f of [expected, expected.replace(/\.tgrec$/, '.tgkf')]) {
    try {
      if (!lstatSync(f).isFile()) {
        problem = `${f} is not a regular file: not removed`;
        continue;
      }
      unlinkSync(f);
      removed.push(f);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problem = `${f}: ${(e as Error).message}`;
    }
  }
  const gone = !existsSync(expected);
  if (gone) await a.recordings.noteFileRemoved(sessionId, a.clock.now());
  if (removed.length) await a.audit.emit(a.actor, { type: 'admin.change', action: 'recording.files-removed', target: sessionId, detail: { files: removed } });
  return { fileRemoved: gone, fileProblem: problem };
}

/** Purges one expired recording, named by id, for a reason (refused when held, unexpired or purged). */
export async function purgeRecording(a: AdminContext, sessionId: string, reason: string, signer: Signer): Promise<PurgeRun> {
  const out = await purgeOne(a, sessionId, checkReason(reason), signer);
  return { purged: [out], skipped: [], held: [], wouldPurge: [], scrubbed: await a.recordings.scrub() };
}

/** Codes that make a selected recording be skipped rather than stop the run. */
const SKIP = new Set(['TG_ERR_RECORDING_HELD', 'TG_ERR_RECORDING_NOT_EXPIRED', 'TG_ERR_RECORDING_PURGED']);

/**
 * Purges every recording past retention with no hold standing (with `dryRun`, only says which).
 * Each is re-checked in its own transaction, so a hold placed after the selection keeps its
 * recording. Purged recordings whose local file an earlier run could not delete are retried.
 * `selected` runs between the selection and the first purge (tests place a hold there).
 */
export async function purgeExpired(
  a: AdminContext,
  opts: { dryRun: boolean; reason?: string },
  signer: Signer | null,
  hooks: { selected?(ids: string[]): Promise<void> } = {},
): Promise<PurgeRun> {
  const reason = checkReason(opts.reason ?? 'retention period ended');
  const expired = await listRetention(a, { expired: true });
  const held = expired.filter((v) => v.status === 'held');
  const due = expired.filter((v) => v.status === 'expired');
  if (opts.dryRun) return { purged: [], skipped: [], held, wouldPurge: due, scrubbed: true };
  if (!signer) throw new TgError('TG_ERR_KEY_UNREADABLE', 'purging needs the audit signing key');
  await hooks.selected?.(due.map((v) => v.sessionId));
  const run: PurgeRun = { purged: [], skipped: [], held, wouldPurge: [], scrubbed: true };
  for (const v of due) {
    try {
      run.purged.push(await purgeOne(a, v.sessionId, reason, signer));
    } catch (e) {
      if (!(e instanceof TgError) || !SKIP.has(e.code)) throw e;
      run.skipped.push({ sessionId: v.sessionId, code: e.code, why: e.message });
    }
  }
  for (const r of await a.recordings.retention()) {
    if (r.purged_at !== null && r.file_removed_at === null && !run.purged.some((p) => p.sessionId === r.session_id)) {
      await removeLocalFiles(a, r.session_id, r.file);
    }
  }
  run.scrubbed = run.purged.length === 0 || (await a.recordings.scrub());
  return run;
}

/** Retention facts for the compliance report: holds standing (and the oldest), purges, recordings past retention. */
export async function retentionSummary(a: AdminContext): Promise<{
  holds: number;
  heldRecordings: number;
  oldestHold: HoldRow | null;
  purges: number;
  lastPurge: { sessionId: string; at: number; by: string | null } | null;
  pastRetention: number;
}> {
  const standing = (await a.recordings.holds()).filter((h) => h.released_at === null);
  const stats = await a.recordings.purgeStats();
  const past = await listRetention(a, { expired: true });
  return {
    holds: standing.length,
    heldRecordings: new Set(standing.map((h) => h.session_id)).size,
    oldestHold: standing.reduce<HoldRow | null>((o, h) => (o === null || h.placed_at < o.placed_at ? h : o), null),
    purges: stats.count,
    lastPurge: stats.last ? { sessionId: stats.last.session_id, at: stats.last.purged_at, by: stats.last.purged_by } : null,
    pastRetention: past.filter((v) => v.status === 'expired').length,
  };
}
