import type { AdminContext } from './context.js';
import type { UnmaskGrantRow, UnmaskRequestRow } from '../store/unmask.js';
import { TgError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import { isAnonymousActor, principalOf } from '../services/unmask.js';

export { activeGrant, noteUnmaskedView, principalOf, isAnonymousActor, type ActiveGrant, type UnmaskedView } from '../services/unmask.js';

/**
 * Four-eyes unmasking (issue 15; docs/redaction.md, "Unmasking: four eyes"). Views of a session
 * are redacted by default; an admin asks to see one session unmasked, with a reason and for a
 * while (`requestUnmask`); a different admin approves (`approveUnmask`), never the requester, which
 * makes a grant for the requester only, on that session only, from approval for the requested
 * time; anyone may deny a request or revoke a grant. Requests lapse if nobody decides them within
 * `unmask.requestTtl`. Every step is one transaction with its audit event inside it, refusals of
 * an approval included.
 */

/** Longest reason, in characters (as for legal holds). */
export const MAX_REASON = 500;

// C0, DEL, C1 and the bidirectional controls: a reason is shown to other admins and auditors.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** A reason as given: trimmed, not empty, at most MAX_REASON characters, no control characters. */
export function checkUnmaskReason(reason: string, flag = '--reason'): string {
  const r = reason.trim();
  if (r.length === 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag} must not be empty: say why the identifiers are needed`);
  if (r.length > MAX_REASON) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag} is longer than ${MAX_REASON} characters`);
  if (CONTROL.test(r)) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag} must not contain control characters`);
  return r;
}

const anonymousError = (what: string) =>
  new TgError('TG_ERR_UNMASK_ANONYMOUS', `${what} needs a named admin: run it through sudo as yourself (root without a sudo user could be anyone)`);

/** Asks to see one session unmasked for `durationMs` (default unmask.defaultDuration) once another admin approves. */
export async function requestUnmask(a: AdminContext, sessionId: string, reason: string, durationMs?: number): Promise<UnmaskRequestRow> {
  const why = checkUnmaskReason(reason);
  const { defaultDuration, maxDuration, requestTtl } = a.config.unmask;
  const ms = durationMs ?? defaultDuration;
  if (!Number.isInteger(ms) || ms <= 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--for must be a positive duration');
  if (ms > maxDuration)
    throw new TgError('TG_ERR_INVALID_ARGUMENT', `--for ${formatDuration(ms)} is longer than unmask.maxDuration (${formatDuration(maxDuration)})`);
  const anonymous = await a.transaction(async () => {
    if (isAnonymousActor(a.actor)) {
      await a.audit.emit(a.actor, {
        type: 'unmask.refused',
        action: 'request',
        requestId: null,
        sessionId: sessionId.slice(0, 200),
        requestedBy: a.actor,
        why: 'anonymous',
      });
      return true;
    }
    return false;
  });
  if (anonymous) throw anonymousError('an unmask request');
  return a.transaction(async () => {
    const s = await a.sessions.get(sessionId);
    if (!s) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no session ${sessionId}; see: tmuxgate sessions list`);
    const now = a.clock.now();
    const expiresAt = now + requestTtl;
    const id = await a.unmask.request({ sessionId, requestedBy: a.actor, reason: why, durationMs: ms, now, expiresAt });
    await a.audit.emit(a.actor, { type: 'unmask.request', requestId: id, sessionId, reason: why, durationMs: ms, expiresAt });
    return (await a.unmask.getRequest(id))!;
  });
}

type Refusal = 'self-approval' | 'anonymous' | 'not-pending' | 'expired' | 'not-found';

function refusalError(why: Refusal, requestId: number, r: UnmaskRequestRow | null): TgError {
  switch (why) {
    case 'self-approval':
      return new TgError('TG_ERR_UNMASK_SELF_APPROVAL', `request ${requestId} was made by ${r!.requested_by}: a different admin must approve it (four eyes)`);
    case 'anonymous':
      return anonymousError('approving an unmask request');
    case 'not-found':
      return new TgError('TG_ERR_UNMASK_REQUEST_NOT_FOUND', `no unmask request ${requestId}; see: tmuxgate unmask list`);
    case 'expired':
      return new TgError('TG_ERR_UNMASK_NOT_PENDING', `request ${requestId} lapsed at ${new Date(r!.expires_at).toISOString()} without a decision; ask again`);
    case 'not-pending':
      return new TgError('TG_ERR_UNMASK_NOT_PENDING', `request ${requestId} was already ${r?.state ?? 'decided'}`);
  }
}

/**
 * Approves a pending request: a grant for the requester, on that session, from now for the
 * requested time. Refused (coded, and audited) for the requester themselves, an unnamed root, and
 * a request that is unknown, decided or lapsed; two admins approving at once make one grant.
 */
export async function approveUnmask(a: AdminContext, requestId: number): Promise<UnmaskGrantRow> {
  const outcome = await a.transaction(async (): Promise<{ grant: UnmaskGrantRow } | { refused: Refusal; r: UnmaskRequestRow | null }> => {
    const now = a.clock.now();
    const r = await a.unmask.getRequest(requestId);
    const refuse = async (why: Refusal) => {
      await a.audit.emit(a.actor, {
        type: 'unmask.refused',
        action: 'approve',
        requestId,
        sessionId: r?.session_id ?? null,
        requestedBy: r?.requested_by ?? null,
        why,
      });
      return { refused: why, r };
    };
    if (!r) return refuse('not-found');
    if (isAnonymousActor(a.actor)) return refuse('anonymous');
    if (principalOf(r.requested_by) === principalOf(a.actor)) return refuse('self-approval');
    if (r.state !== 'pending') return refuse('not-pending');
    if (r.expires_at <= now) return refuse('expired');
    // The conditional update is the decision: of two admins approving at once, one changes the row.
    if (!(await a.unmask.decide(r.id, 'approved', a.actor, now))) return refuse('not-pending');
    const expiresAt = now + r.duration_ms;
    const grantId = await a.unmask.grant({
      requestId: r.id,
      sessionId: r.session_id,
      grantee: r.requested_by,
      reason: r.reason,
      approvedBy: a.actor,
      now,
      expiresAt,
    });
    await a.audit.emit(a.actor, {
      type: 'unmask.approve',
      requestId: r.id,
      grantId,
      sessionId: r.session_id,
      grantee: r.requested_by,
      reason: r.reason,
      expiresAt,
    });
    return { grant: (await a.unmask.getGrant(grantId))! };
  });
  if ('refused' in outcome) throw refusalError(outcome.refused, requestId, outcome.r);
  return outcome.grant;
}

/** Denies a pending request (anyone may, the requester withdrawing it included). */
export async function denyUnmask(a: AdminContext, requestId: number, reason: string | null): Promise<UnmaskRequestRow> {
  const why = reason === null ? null : checkUnmaskReason(reason);
  return a.transaction(async () => {
    const r = await a.unmask.getRequest(requestId);
    if (!r) throw refusalError('not-found', requestId, null);
    const now = a.clock.now();
    if (r.state === 'pending' && r.expires_at <= now) throw refusalError('expired', requestId, r);
    if (!(await a.unmask.decide(r.id, 'denied', a.actor, now, why))) throw refusalError('not-pending', requestId, r);
    await a.audit.emit(a.actor, { type: 'unmask.deny', requestId: r.id, sessionId: r.session_id, requestedBy: r.requested_by, reason: why });
    return (await a.unmask.getRequest(r.id))!;
  });
}

/** Ends a grant before its time (anyone may: taking access away needs no second pair of eyes). */
export async function revokeUnmask(a: AdminContext, grantId: number, reason: string | null): Promise<UnmaskGrantRow> {
  const why = reason === null ? null : checkUnmaskReason(reason);
  return a.transaction(async () => {
    const g = await a.unmask.getGrant(grantId);
    if (!g) throw new TgError('TG_ERR_UNMASK_GRANT_NOT_FOUND', `no unmask grant ${grantId}; see: tmuxgate unmask list`);
    if (!(await a.unmask.revoke(g.id, a.actor, why, a.clock.now()))) {
      const when = g.revoked_at !== null ? `was revoked at ${new Date(g.revoked_at).toISOString()}` : `expired at ${new Date(g.expires_at).toISOString()}`;
      throw new TgError('TG_ERR_UNMASK_NOT_IN_FORCE', `grant ${grantId} ${when}`);
    }
    await a.audit.emit(a.actor, { type: 'unmask.revoke', grantId: g.id, sessionId: g.session_id, grantee: g.grantee, reason: why });
    return (await a.unmask.getGrant(g.id))!;
  });
}

/**
 * One request and what became of it. state: pending (waiting for a second admin), lapsed (nobody
 * decided in time), denied, active (its grant is in force), expired (its grant ran out), revoked.
 */
export interface UnmaskEntry {
  requestId: number;
  sessionId: string;
  requestedBy: string;
  reason: string;
  durationMs: number;
  requestedAt: number;
  state: 'pending' | 'lapsed' | 'denied' | 'active' | 'expired' | 'revoked';
  /** When a pending request lapses, or lapsed. */
  requestExpiresAt: number;
  decidedBy: string | null;
  decidedAt: number | null;
  denyReason: string | null;
  grantId: number | null;
  grantExpiresAt: number | null;
  revokedBy: string | null;
  revokedAt: number | null;
  revokeReason: string | null;
}

/** Every request with its grant, oldest first; `open`: only pending requests and grants in force. */
export async function listUnmask(a: AdminContext, opts: { sessionId?: string; open?: boolean } = {}): Promise<UnmaskEntry[]> {
  const now = a.clock.now();
  const grants = new Map((await a.unmask.grants(opts.sessionId)).map((g) => [g.request_id, g]));
  const out: UnmaskEntry[] = [];
  for (const r of await a.unmask.requests(opts.sessionId)) {
    const g = grants.get(r.id) ?? null;
    const state: UnmaskEntry['state'] =
      r.state === 'pending'
        ? r.expires_at <= now
          ? 'lapsed'
          : 'pending'
        : r.state === 'denied'
          ? 'denied'
          : g?.revoked_at != null
            ? 'revoked'
            : g && g.expires_at > now
              ? 'active'
              : 'expired';
    if (opts.open && state !== 'pending' && state !== 'active') continue;
    out.push({
      requestId: r.id,
      sessionId: r.session_id,
      requestedBy: r.requested_by,
      reason: r.reason,
      durationMs: r.duration_ms,
      requestedAt: r.requested_at,
      state,
      requestExpiresAt: r.expires_at,
      decidedBy: r.decided_by,
      decidedAt: r.decided_at,
      denyReason: r.deny_reason,
      grantId: g?.id ?? null,
      grantExpiresAt: g?.expires_at ?? null,
      revokedBy: g?.revoked_by ?? null,
      revokedAt: g?.revoked_at ?? null,
      revokeReason: g?.revoke_reason ?? null,
    });
  }
  return out;
}
