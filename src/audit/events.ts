import { z } from 'zod';
import { TombstoneEventFields } from './tombstone.js';

const addr = z.string().max(100);
const name = z.string().max(200);

/**
 * What a view of a session showed (redaction/view-policy.ts): redacted or not, and when not, the
 * unmask grant it went by or why none was needed. Absent on rows from before redaction.
 */
const view = {
  redacted: z.boolean().optional(),
  grant: z.object({ id: z.string().max(100), reason: z.string().max(1000) }).optional(),
  unredacted: z.enum(['owner', 'disabled']).optional(),
};

/**
 * Every audit event type, as one discriminated union: the log refuses anything else, and the
 * verifier and exporters read rows back through the same schema.
 */
export const AuditEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('gateway.start'),
    version: z.string(),
    pid: z.number(),
    configHash: z.string(),
    configFile: z.string().nullable(),
    changedFields: z.array(z.string()),
    devMode: z.boolean(),
    listen: z.string(),
    node: z.string().max(64).optional(),
  }),
  z.object({ type: z.literal('gateway.stop'), reason: z.string(), sessionsClosed: z.number() }),
  z.object({ type: z.literal('auth.success'), user: name, role: name, addr, connId: z.string(), method: z.string(), keyFingerprint: z.string() }),
  z.object({ type: z.literal('auth.failure'), user: name, addr, connId: z.string(), method: z.string(), reason: z.string() }),
  z.object({ type: z.literal('auth.recovery-code'), user: name, addr, connId: z.string(), remaining: z.number() }),
  z.object({ type: z.literal('auth.locked'), user: name, addr, connId: z.string(), subject: z.enum(['user', 'address']), until: z.number() }),
  z.object({ type: z.literal('lockout.start'), subjectKind: z.enum(['user', 'address']), subject: name, level: z.number(), until: z.number() }),
  z.object({ type: z.literal('lockout.clear'), subjectKind: z.enum(['user', 'address']), subject: name }),
  /** Pre-authentication failures and refusals of one address (or '*': several) over an interval. */
  z.object({
    type: z.literal('preauth.summary'),
    addr,
    addresses: z.number(),
    from: z.number(),
    to: z.number(),
    attempts: z.number(),
    reasons: z.record(z.string(), z.number()),
    names: z.array(z.string().max(40)).max(5),
    distinctNames: z.number(),
  }),
  z.object({ type: z.literal('connection.refused'), addr, connId: z.string().optional(), reason: z.string(), user: name.optional() }),
  z.object({ type: z.literal('request.denied'), user: name, role: name.optional(), addr, connId: z.string(), request: z.string(), detail: z.string() }),
  z.object({
    type: z.literal('session.start'),
    sessionId: z.string(),
    user: name,
    role: name,
    addr,
    connId: z.string(),
    term: z.string(),
    cols: z.number(),
    rows: z.number(),
    socketDir: z.string(),
    devMode: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('session.end'),
    sessionId: z.string(),
    user: name,
    role: name,
    reason: z.string(),
    durationMs: z.number(),
    recordingHash: z.string().optional(),
    recordingChunks: z.number().optional(),
  }),
  z.object({ type: z.literal('recording.failed'), sessionId: z.string(), user: name, role: name, error: z.string() }),
  z.object({
    type: z.literal('recording.access'),
    action: z.enum(['replay', 'export', 'search', 'verify', 'observe', 'list']),
    sessionId: z.string().nullable(),
    detail: z.string().optional(),
    ...view,
  }),
  /** A legal hold placed on a recording, and holds released: while one stands it is never purged. */
  z.object({ type: z.literal('recording.hold'), sessionId: z.string(), holdId: z.number(), reason: z.string().max(500) }),
  z.object({ type: z.literal('recording.release'), sessionId: z.string(), holdIds: z.array(z.number()), reason: z.string().max(500).nullable() }),
  /** The signed tombstone of a purged recording (audit/tombstone.ts): its data key is destroyed. */
  TombstoneEventFields.extend({ type: z.literal('recording.purged') }),
  z.object({ type: z.literal('session.interrupted'), sessionId: z.string(), user: name, role: name }),
  z.object({
    type: z.literal('node.lost'),
    node: z.string().max(64),
    lastHeartbeat: z.number(),
    silentMs: z.number(),
    sessions: z.number(),
    recordings: z.number(),
    pairs: z.number(),
    /** Pending kill requests of its sessions, resolved with the loss. */
    kills: z.number(),
  }),
  z.object({ type: z.literal('share.grant'), owner: name, role: name, viewer: name }),
  z.object({ type: z.literal('share.revoke'), owner: name, role: name, viewer: name }),
  z.object({ type: z.literal('share.join'), owner: name, role: name, viewer: name, addr, ...view }),
  z.object({ type: z.literal('share.leave'), owner: name, role: name, viewer: name, reason: z.string() }),
  z.object({ type: z.literal('tmux.reaped'), socketDir: z.string(), idleMs: z.number() }),
  z.object({ type: z.literal('tmux.intrusion'), socketDir: z.string(), clientPid: z.number(), client: z.string() }),
  z.object({ type: z.literal('tmux.reconciled'), adopted: z.number(), stale: z.number() }),
  z.object({ type: z.literal('tmux.option-reset'), socketDir: z.string(), options: z.array(z.string()) }),
  z.object({ type: z.literal('tmux.refused'), socketDir: z.string(), reason: z.string() }),
  z.object({
    type: z.literal('host.account'),
    action: z.enum(['create', 'lock', 'unlock', 'terminate', 'remove']),
    account: z.string(),
    uid: z.number(),
    reason: z.string().optional(),
    processesKilled: z.number().optional(),
  }),
  z.object({ type: z.literal('admin.change'), action: z.string(), target: z.string(), detail: z.record(z.string(), z.unknown()).optional() }),
  /**
   * Four-eyes unmasking (services/unmask.ts, admin/unmask.ts): a request, its approval (the grant),
   * an approval refused (the requester approving their own, a lapsed or decided request), a
   * denial, a revocation, and every view shown unmasked under a grant, naming it and its reason.
   */
  z.object({
    type: z.literal('unmask.request'),
    requestId: z.number(),
    sessionId: z.string(),
    reason: z.string().max(500),
    durationMs: z.number(),
    expiresAt: z.number(),
  }),
  z.object({
    type: z.literal('unmask.approve'),
    requestId: z.number(),
    grantId: z.number(),
    sessionId: z.string(),
    grantee: z.string().max(300),
    reason: z.string().max(500),
    expiresAt: z.number(),
  }),
  z.object({
    type: z.literal('unmask.refused'),
    action: z.enum(['request', 'approve']),
    requestId: z.number().nullable(),
    sessionId: z.string().max(200).nullable(),
    requestedBy: z.string().max(300).nullable(),
    why: z.enum(['self-approval', 'anonymous', 'not-pending', 'expired', 'not-found']),
  }),
  z.object({
    type: z.literal('unmask.deny'),
    requestId: z.number(),
    sessionId: z.string(),
    requestedBy: z.string().max(300),
    reason: z.string().max(500).nullable(),
  }),
  z.object({
    type: z.literal('unmask.revoke'),
    grantId: z.number(),
    sessionId: z.string(),
    grantee: z.string().max(300),
    reason: z.string().max(500).nullable(),
  }),
  z.object({
    type: z.literal('unmask.view'),
    grantId: z.number(),
    sessionId: z.string(),
    what: z.enum(['replay', 'export', 'search', 'observe', 'watch']),
    reason: z.string().max(500),
    approvedBy: z.string().max(300),
    expiresAt: z.number(),
  }),
  z.object({ type: z.literal('totp.enroll'), user: name, state: z.enum(['pending', 'confirmed', 'reset']) }),
]);

export type AuditEvent = z.infer<typeof AuditEventSchema>;
