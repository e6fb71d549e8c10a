import type { AuditSink } from '../audit/log.js';
import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Stores } from '../services/stores.js';
import { activeGrant, noteUnmaskedView } from '../services/unmask.js';
import { Redactor } from './redactor.js';
import { RedactingView } from './view.js';

/**
 * Whether one view of one session is redacted: the decision every viewing path takes explicitly
 * (replay in the CLI and the auditor menu, export, search result lines, `sessions observe`,
 * `watch`). Redacted unless something names why not:
 *  - `grant`: an approved four-eyes unmask grant for this session (the unmask workflow);
 *  - `owner`: a live watch by the session's own user (a viewer role onto their own session: it is
 *    their screen); recordings stay redacted for them too;
 *  - `disabled`: `redaction.enabled: false` in the config (a gateway that never shows PHI).
 */
export type ViewPolicy =
  { redact: true } | { redact: false; grant: { id: string; reason: string; expiresAt: number } } | { redact: false; unredacted: 'owner' | 'disabled' };

/** Who looks. */
export interface Viewer {
  /** The audit actor: a gateway user name, or "os:<account>" for the CLI. */
  actor: string;
  /** The gateway user's id, when the viewer is one (an auditor, a watcher). */
  userId?: number;
}

/** At what, and how. */
export interface ViewTarget {
  view: 'replay' | 'export' | 'search' | 'observe' | 'watch';
  /** The session (null: a live view whose session id the caller does not hold, as watch). */
  sessionId: string | null;
  /** The session's own user, when the caller knows it (a live watch: they see their own screen as it is). */
  ownerUserId?: number;
}

/** What the decision may consult: the config, and (where the viewer can hold one) the unmask grants and the audit log their use is written to. */
export interface ViewPolicyContext {
  config: Pick<Config, 'redaction'>;
  clock: Clock;
  unmask?: Stores['unmask'];
  audit?: AuditSink;
}

/**
 * THE seam between viewing and unmasking: the only place that decides whether a view is redacted.
 * Every call site asks here and nowhere else; the four-eyes unmask workflow changes only this
 * function (look up a live, approved, unexpired grant of `viewer` for `target.sessionId`, and
 * return it: the views then audit its id and reason).
 */
export async function viewPolicy(ctx: ViewPolicyContext, viewer: Viewer, target: ViewTarget): Promise<ViewPolicy> {
  if (!ctx.config.redaction.enabled) return { redact: false, unredacted: 'disabled' };
  if (target.view === 'watch' && viewer.userId !== undefined && viewer.userId === target.ownerUserId) return { redact: false, unredacted: 'owner' };
  if (ctx.unmask && ctx.audit && target.sessionId !== null) {
    // A four-eyes grant of this viewer for this session, in force now: the view is unmasked, and
    // its use is audited (grant, reason, approver) before the first unmasked byte is shown.
    const g = await activeGrant({ unmask: ctx.unmask }, viewer.actor, target.sessionId, ctx.clock.now());
    if (g) {
      await noteUnmaskedView(ctx.audit, viewer.actor, g, target.sessionId, target.view);
      return { redact: false, grant: { id: String(g.id), reason: g.reason, expiresAt: g.expiresAt } };
    }
  }
  return { redact: true };
}

/** When an unmasked view must stop being shown (its grant's expiry), or null: a long replay or observe ends there. */
export function unmaskedUntil(p: ViewPolicy): number | null {
  return !p.redact && 'grant' in p ? p.grant.expiresAt : null;
}

/** The fields a view's audit event carries about its policy: always whether it was redacted, and why not when not. */
export function policyAudit(p: ViewPolicy): { redacted: boolean; grant?: { id: string; reason: string }; unredacted?: 'owner' | 'disabled' } {
  if (p.redact) return { redacted: true };
  return 'grant' in p ? { redacted: false, grant: { id: p.grant.id, reason: p.grant.reason } } : { redacted: false, unredacted: p.unredacted };
}

const redactors = new WeakMap<object, Redactor>();

/** The deployment's Redactor (one per loaded config, shared by every view). */
export function redactorFor(config: Pick<Config, 'redaction'>): Redactor {
  let r = redactors.get(config.redaction);
  if (!r) redactors.set(config.redaction, (r = new Redactor(config.redaction)));
  return r;
}

/** The view a replay goes through under `policy`: a RedactingView (redacted), or null (the recorded bytes). */
export function replayView(policy: ViewPolicy, config: Pick<Config, 'redaction'>, cols: number, rows: number): RedactingView | null {
  return policy.redact ? new RedactingView(redactorFor(config), cols, rows) : null;
}
