import { canonicalJson } from '../config/load.js';
import type { AuditRow } from '../store/audit-events.js';
import { SD_ID } from './syslog-format.js';

/**
 * Reads back what syslog-format.ts wrote: the off-box verifier and the tests use it to turn a
 * collector's copy into audit rows. Strict: anything that is not one of our messages is null.
 */

export interface ShippedRecord {
  facility: number;
  severity: number;
  hostname: string;
  procId: string;
  msgId: string;
  /** The row as far as the message carries it; a field named in `omitted` holds its digest instead. */
  row: AuditRow;
  omitted: string[];
  /** MSG as sent: printable ASCII JSON. */
  msg: string;
}

/** Splits an octet-counted stream (RFC 6587 §3.4.1) into messages; throws on a malformed frame. */
export function splitFrames(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const sp = stream.indexOf(0x20, at);
    const len = sp > at && sp - at <= 10 ? /^[1-9][0-9]*$/.exec(stream.toString('ascii', at, sp)) : null;
    if (!len) throw new Error(`no octet count at byte ${at}`);
    const end = sp + 1 + Number(len[0]);
    if (end > stream.length) throw new Error(`frame at byte ${at} is cut short`);
    out.push(stream.subarray(sp + 1, end));
    at = end;
  }
  return out;
}

/** The SD elements of a message and the text after them, or null if the SD part is malformed. */
function parseStructuredData(s: string): { elements: Map<string, Map<string, string>>; rest: string } | null {
  const elements = new Map<string, Map<string, string>>();
  if (s.startsWith('-')) return { elements, rest: s.slice(1) };
  let i = 0;
  while (s[i] === '[') {
    const idEnd = s.slice(i + 1).search(/[ \]]/);
    if (idEnd <= 0) return null;
    const params = new Map<string, string>();
    elements.set(s.slice(i + 1, i + 1 + idEnd), params);
    i += 1 + idEnd;
    while (s[i] === ' ') {
      const eq = s.indexOf('="', i + 1);
      if (eq < 0) return null;
      const name = s.slice(i + 1, eq);
      let value = '';
      let j = eq + 2;
      for (; j < s.length && s[j] !== '"'; j++) {
        // RFC 5424 §6.3.3: only \" \\ \] are escapes; any other backslash is itself.
        if (s[j] === '\\' && (s[j + 1] === '"' || s[j + 1] === '\\' || s[j + 1] === ']')) j++;
        value += s[j];
      }
      if (j >= s.length) return null;
      params.set(name, value);
      i = j + 1;
    }
    if (s[i] !== ']') return null;
    i++;
  }
  return elements.size > 0 ? { elements, rest: s.slice(i) } : null;
}

const decode = (v: string): string => decodeURIComponent(v);

/** One of our messages (without its frame prefix) back as a record, or null. */
export function parseAuditMessage(message: string): ShippedRecord | null {
  const m = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(message);
  if (!m || m[4] !== 'tmuxgate') return null;
  const sd = parseStructuredData(message.slice(m[0].length));
  const p = sd?.elements.get(SD_ID);
  if (!sd || !p || (sd.rest !== '' && !sd.rest.startsWith(' '))) return null;
  try {
    const omitted = p.get('omitted')?.split(',') ?? [];
    const msg = sd.rest.slice(1);
    const pri = Number(m[1]);
    const id = Number(p.get('id'));
    if (!Number.isSafeInteger(id)) return null;
    const row: AuditRow = {
      id,
      ts: m[2] === '-' ? NaN : Date.parse(m[2]!),
      type: p.has('type') ? decode(p.get('type')!) : m[6]!,
      actor: decode(p.get('actor') ?? ''),
      // The stored data is canonical JSON; MSG is the same value with ASCII escapes.
      data: omitted.includes('data') ? msg : canonicalJson(JSON.parse(msg)),
      prev_hash: decode(p.get('prev') ?? ''),
      hash: decode(p.get('hash') ?? ''),
    };
    return { facility: pri >> 3, severity: pri & 7, hostname: m[3]!, procId: m[5]!, msgId: m[6]!, row, omitted, msg };
  } catch {
    return null;
  }
}
