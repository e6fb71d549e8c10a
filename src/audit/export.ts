import os from 'node:os';
import type { AuditRow } from '../store/audit-events.js';
import { escapeControls, safeJson } from '../platform/text.js';

/** One audit row as a JSON line: its data parsed back into an object, C0, C1 and bidi controls escaped. */
export function jsonLine(r: AuditRow): string {
  return safeJson({ ...r, data: JSON.parse(r.data) });
}

/** RFC 5424 severities by event type (the rest are informational, 6). */
const SEVERITY: Record<string, number> = {
  'auth.failure': 4,
  'auth.locked': 4,
  'lockout.start': 4,
  'request.denied': 5,
  'connection.refused': 5,
  'recording.failed': 3,
  'session.interrupted': 4,
  'node.lost': 3,
};
const sdEscape = (s: string) =>
  escapeControls(
    s.replace(/[\\"\]]/g, (c) => `\\${c}`),
    { backslash: false },
  );

/** An RFC 5424 line: facility authpriv (10), severity by event type, the event as structured data. */
export function syslogLine(r: AuditRow, host = os.hostname()): string {
  const pri = 10 * 8 + (SEVERITY[r.type] ?? 6);
  const data = JSON.parse(r.data) as Record<string, unknown>;
  const params = Object.entries({ id: r.id, actor: r.actor, ...data, hash: r.hash })
    .map(([k, v]) => `${k.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32)}="${sdEscape(typeof v === 'string' ? v : JSON.stringify(v))}"`)
    .join(' ');
  return `<${pri}>1 ${new Date(r.ts).toISOString()} ${host.replace(/\s/g, '_') || '-'} tmuxgate - ${r.type} [tmuxgate@32473 ${params}] ${r.type}`;
}
