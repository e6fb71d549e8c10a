import { createHash } from 'node:crypto';
import os from 'node:os';
import type { AuditEvent } from '../audit/events.js';
import type { AuditRow } from '../store/audit-events.js';

/**
 * One audit row as an RFC 5424 syslog message, framed for RFC 5425 (octet counting). The layout
 * and the reasons for each choice are in docs/evidence.md; the invariants this module keeps:
 *  - every byte of the message is printable (no C0/C1 control, no DEL, no line or paragraph
 *    separator, no bidi or other format character), whatever the row holds, so no field can end
 *    a line, a frame or an SD element early;
 *  - the frame length counts bytes, not UTF-16 code units;
 *  - the receiver can recover id, prev_hash, hash, actor, type, ts and data exactly (see
 *    syslog-parse.ts), except for a field replaced by its digest because the message would have
 *    been longer than the receiver accepts (named in the `omitted` parameter).
 */

/** The SD-ID of our structured data: enterprise form with 32473, the documentation PEN (RFC 5612). */
import { DEFAULT_MAX_MESSAGE_BYTES, FACILITIES, MIN_MAX_MESSAGE_BYTES } from '../config/evidence.js';

export { DEFAULT_MAX_MESSAGE_BYTES, FACILITIES, MIN_MAX_MESSAGE_BYTES };

export const SD_ID = 'tmuxgate@32473';
export const APP_NAME = 'tmuxgate';

export const SEVERITY = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
type Severity = (typeof SEVERITY)[keyof typeof SEVERITY];

/**
 * Severity per event type. `satisfies` makes the compiler ask for an entry when the event union
 * grows. Refusals, lockouts and kills are warnings; lost evidence and a foreign tmux client are
 * errors; everything else is a notice (normal but significant: this is an audit trail).
 */
const SEVERITY_BY_TYPE = {
  'gateway.start': SEVERITY.notice,
  'gateway.stop': SEVERITY.notice,
  'auth.success': SEVERITY.notice,
  'auth.failure': SEVERITY.warning,
  'auth.recovery-code': SEVERITY.warning,
  'auth.locked': SEVERITY.warning,
  'lockout.start': SEVERITY.warning,
  'lockout.clear': SEVERITY.notice,
  'preauth.summary': SEVERITY.warning,
  'connection.refused': SEVERITY.warning,
  'request.denied': SEVERITY.warning,
  'session.start': SEVERITY.notice,
  'session.end': SEVERITY.notice,
  'recording.failed': SEVERITY.err,
  'recording.access': SEVERITY.notice,
  'recording.hold': SEVERITY.notice,
  'recording.release': SEVERITY.notice,
  'recording.purged': SEVERITY.warning,
  'session.interrupted': SEVERITY.warning,
  'node.lost': SEVERITY.err,
  'share.grant': SEVERITY.notice,
  'share.revoke': SEVERITY.notice,
  'share.join': SEVERITY.notice,
  'share.leave': SEVERITY.notice,
  'tmux.reaped': SEVERITY.notice,
  'tmux.intrusion': SEVERITY.err,
  'tmux.reconciled': SEVERITY.notice,
  'tmux.option-reset': SEVERITY.warning,
  'tmux.refused': SEVERITY.warning,
  'host.account': SEVERITY.notice,
  'admin.change': SEVERITY.notice,
  'totp.enroll': SEVERITY.notice,
  'unmask.request': SEVERITY.notice,
  'unmask.approve': SEVERITY.warning,
  'unmask.refused': SEVERITY.warning,
  'unmask.deny': SEVERITY.notice,
  'unmask.revoke': SEVERITY.notice,
  'unmask.view': SEVERITY.warning,
} as const satisfies Record<AuditEvent['type'], Severity>;

/** Actions inside host.account / admin.change that end or lock something: warnings. */
const WARNING_ACTIONS = new Set(['terminate', 'lock', 'session.kill', 'user.disable']);

/** The severity of one row: by type, raised to warning for kills and locks; notice for unknown types. */
export function severityOf(type: string, data: string): Severity {
  const base = (SEVERITY_BY_TYPE as Record<string, Severity>)[type] ?? SEVERITY.notice;
  if (type !== 'host.account' && type !== 'admin.change') return base;
  try {
    const action = (JSON.parse(data) as { action?: unknown }).action;
    return typeof action === 'string' && WARNING_ACTIONS.has(action) ? SEVERITY.warning : base;
  } catch {
    return base;
  }
}

export interface SyslogFormatOptions {
  /** Facility code 0-23; authpriv (10) by default. */
  facility?: number;
  /** HOSTNAME: the configured node name, else os.hostname(). */
  hostname?: string;
  /** PROCID; the process id by default. */
  procId?: string | number;
  /** The longest message (without the frame's length prefix) the receiver takes whole. */
  maxMessageBytes?: number;
}

/** PRINTUSASCII (33-126) only, at most `max` characters; anything else becomes `_`; empty is NILVALUE. */
export function printUsAscii(s: string, max: number): string {
  const clean = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean.length > 0 ? clean : '-';
}

// Characters a param value must not carry raw: controls (C0, DEL, C1), format characters (bidi
// overrides, zero-width, BOM), line and paragraph separators, and `%` (the escape itself).
const UNSAFE_IN_VALUE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}%]/gu;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A PARAM-VALUE (RFC 5424 §6.3.3): unsafe characters percent-encoded as their UTF-8 bytes, then
 * `"`, `\` and `]` backslash-escaped. Reversible: RFC-unescape, then decodeURIComponent. A lone
 * surrogate (which SQLite cannot store anyway) becomes U+FFFD.
 */
export function sdParamValue(s: string): string {
  return s
    .replace(LONE_SURROGATE, '\ufffd')
    .replace(UNSAFE_IN_VALUE, (c) => encodeURIComponent(c))
    .replace(/["\\\]]/g, '\\$&');
}

/** MSG: the JSON text with every character outside printable ASCII written as a \uXXXX escape. */
export function asciiJson(json: string): string {
  return json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** RFC 3339 with milliseconds in UTC, or NILVALUE for a time RFC 5424 cannot express. */
export function rfc3339(ts: number): string {
  if (!Number.isFinite(ts)) return '-';
  const d = new Date(ts);
  const y = d.getUTCFullYear();
  return Number.isNaN(d.getTime()) || y < 0 || y > 9999 ? '-' : d.toISOString();
}

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** The RFC 5424 message for one audit row (no frame). */
export function formatAuditRow(row: AuditRow, opts: SyslogFormatOptions = {}): string {
  const facility = opts.facility ?? FACILITIES.authpriv;
  const max = Math.max(MIN_MAX_MESSAGE_BYTES, opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  const pri = facility * 8 + severityOf(row.type, row.data);
  const msgId = printUsAscii(row.type, 32);
  const head = [
    `<${pri}>1`,
    rfc3339(row.ts),
    printUsAscii(opts.hostname ?? os.hostname(), 255),
    APP_NAME,
    printUsAscii(String(opts.procId ?? process.pid), 128),
    msgId,
  ].join(' ');

  // Fields that may be too long for the receiver, in the order they give way to their digest.
  let data = asciiJson(row.data);
  let actor = sdParamValue(row.actor);
  // The exact type travels as a param only when MSGID could not carry it.
  let type = msgId === row.type ? null : sdParamValue(row.type);
  const omitted: string[] = [];
  const build = (): string => {
    const params = [`id="${sdParamValue(String(row.id))}"`, `prev="${sdParamValue(row.prev_hash)}"`, `hash="${sdParamValue(row.hash)}"`, `actor="${actor}"`];
    if (type !== null) params.push(`type="${type}"`);
    if (omitted.length > 0) params.push(`omitted="${omitted.join(',')}"`);
    return `${head} [${SD_ID} ${params.join(' ')}] ${data}`;
  };
  let msg = build();
  if (Buffer.byteLength(msg, 'utf8') > max) {
    omitted.push('data');
    data = `{"bytes":${Buffer.byteLength(row.data, 'utf8')},"sha256":"${sha256(row.data)}"}`;
    msg = build();
  }
  if (Buffer.byteLength(msg, 'utf8') > max) {
    omitted.push('actor');
    actor = `sha256:${sha256(row.actor)}`;
    if (type !== null) {
      omitted.push('type');
      type = `sha256:${sha256(row.type)}`;
    }
    msg = build();
  }
  return msg;
}

/** RFC 5425 / RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/** The framed message for one row. */
export function frameAuditRow(row: AuditRow, opts: SyslogFormatOptions = {}): Buffer {
  return frame(formatAuditRow(row, opts));
}
