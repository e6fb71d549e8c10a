import type { AuditSink } from '../audit/log.js';
import type { Stores } from './stores.js';

/**
 * The part of four-eyes unmasking that views use (issue 15; docs/redaction.md, "Unmasking: four
 * eyes"): whether an actor holds a grant in force for a session, and the audit event every view
 * shown unmasked writes. It sits in services/ so that views below the admin layer (the auditor
 * menu, watch) can call it; requesting, approving, denying and revoking are in admin/unmask.ts.
 */

/** What views are shown redacted by default and can be unmasked under a grant. */
export type UnmaskedView = 'replay' | 'export' | 'search' | 'observe' | 'watch';

/** A grant in force, as a view needs it: which one (for the audit event), why, until when, approved by whom. */
export interface ActiveGrant {
  id: number;
  sessionId: string;
  reason: string;
  expiresAt: number;
  approvedBy: string;
}

const SUDO_ACTOR = /^os:([^()\s]+)\(as [^()]+\)$/;

/**
 * The person behind an actor, for the four-eyes comparisons: the CLI's actor is `os:<login>`, or
 * `os:<sudo user>(as <account>)` through sudo (admin/context.ts cliActor), and both name the same
 * person whatever account they ran the command as. Any other actor (a gateway user) is itself.
 */
export function principalOf(actor: string): string {
  const m = SUDO_ACTOR.exec(actor);
  return m ? `os:${m[1]}` : actor;
}

/**
 * Whether an actor names no person: root without a sudo user is every root shell on the host (an
 * admin who asked through sudo and approves from `su -` would otherwise be a second pair of eyes).
 */
export function isAnonymousActor(actor: string): boolean {
  return principalOf(actor) === 'os:root';
}

/**
 * The grant in force at `now` that lets `actor` see session `sessionId` unmasked, or null: approved
 * by someone else, for this session and this requester only, not expired, not revoked.
 */
export async function activeGrant(stores: Pick<Stores, 'unmask'>, actor: string, sessionId: string, now: number): Promise<ActiveGrant | null> {
  if (isAnonymousActor(actor)) return null;
  const who = principalOf(actor);
  for (const g of await stores.unmask.grantsInForce(sessionId, now)) {
    // Defence in depth: approving never makes such a grant, but a row written by hand must not open anything either.
    if (principalOf(g.grantee) !== who || principalOf(g.approved_by) === who) continue;
    return { id: g.id, sessionId: g.session_id, reason: g.reason, expiresAt: g.expires_at, approvedBy: g.approved_by };
  }
  return null;
}

/**
 * Audits one view shown unmasked under `grant` (call it before the first unmasked byte is shown,
 * and wait for it: a view that cannot be audited is not shown). Names the grant, its reason and its
 * approver; refuses a grant of another session.
 */
export async function noteUnmaskedView(audit: AuditSink, actor: string, grant: ActiveGrant, sessionId: string, what: UnmaskedView): Promise<void> {
  if (grant.sessionId !== sessionId) throw new Error(`unmask grant ${grant.id} is for session ${grant.sessionId}, not ${sessionId}`);
  await audit.emit(actor, {
    type: 'unmask.view',
    grantId: grant.id,
    sessionId,
    what,
    reason: grant.reason,
    approvedBy: grant.approvedBy,
    expiresAt: grant.expiresAt,
  });
}
