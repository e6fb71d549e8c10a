import net from 'node:net';
import { cardValid, mbiValid, nanpValid, ssnValid } from './validate.js';

/**
 * Detectors that recognise an identifier by its own shape, without a label: each one scans a
 * line of screen text and pushes the spans (UTF-16 offsets, end exclusive) it finds.
 */

export interface Span {
  start: number;
  end: number;
  /** What it is: a built-in kind, a pattern's kind, or the known list's kind. */
  kind: string;
  /** How it was found: format, label, column, url, pattern, known, cursor. */
  via: string;
}

/** A word character on either side ends a match: letters, digits (any script) and underscore. */
const W = String.raw`\p{L}\p{N}_`;

/**
 * A token that is only a number, a size or a percentage ("12", "3.5G", "99%", not an address
 * with several dots): identifiers
 * written with single spaces ("078 05 1120") next to one of these are a row of numeric columns
 * (ps, top, vmstat), not an identifier.
 */
const NUMERIC_TOKEN = /^[-+]?[\d,:]*\.?[\d,:]+[KMGTPkmgtpB%]?i?B?$/;

/** Whether the whitespace-separated token before `start` or after `end` in `text` is numeric. */
export function numericNeighbour(text: string, start: number, end: number): boolean {
  const before = /(\S+)\s+$/.exec(text.slice(Math.max(0, start - 40), start))?.[1];
  const after = /^\s+(\S+)/.exec(text.slice(end, end + 40))?.[1];
  return (before !== undefined && NUMERIC_TOKEN.test(before)) || (after !== undefined && NUMERIC_TOKEN.test(after));
}

// 078-05-1120, 078 05 1120 (one separator, used twice); a HICN's letter suffix (078-05-1120A) is kept with it.
const SSN = new RegExp(String.raw`(?<![\p{N}])(?<!\d[-.])(\d{3})([- ])(\d{2})\2(\d{4})([A-Z][0-9]?)?(?![${W}]|[-.]\d)`, 'gu');

export function findSsn(text: string, out: Span[]): void {
  for (const m of text.matchAll(SSN)) {
    if (!ssnValid(m[1]! + m[3]! + m[4]!)) continue;
    const end = m.index + m[0].length;
    if (m[2] === ' ' && numericNeighbour(text, m.index, end)) continue;
    out.push({ start: m.index, end, kind: 'ssn', via: 'format' });
  }
}

// (212) 555-1234, 212-555-1234, 212.555.1234, 212 555 1234, +1 212 555 1234, 1-800-555-1234
const NANP = new RegExp(String.raw`(?<![${W}+])(?<!\d[-.])(?:\+?1[-. ]?)?(?:\((\d{3})\)[ ]?|(\d{3})([-. ]))(\d{3})([-. ])(\d{4})(?![\p{N}]|[-.]\d)`, 'gu');
// +44 20 7946 0958, +4930123456, +33-1-23-45-67-89: a plus, then 8-15 digits in groups.
const E164 = new RegExp(String.raw`(?<![${W}+])\+[1-9](?:[ -]?\d){7,14}(?![\p{N}]|[-.]\d)`, 'gu');

export function findPhone(text: string, out: Span[]): void {
  for (const m of text.matchAll(NANP)) {
    const digits = (m[1] ?? m[2])! + m[4]! + m[6]!;
    if (!nanpValid(digits)) continue;
    const seps = m[1] ? m[5]! : m[3]! + m[5]!;
    // One separator style, or "212 555-1234"; dots and spaces mixed are more often numbers in a row.
    if (!m[1] && m[3] !== m[5] && !(m[3] === ' ' && m[5] === '-')) continue;
    const end = m.index + m[0].length;
    if (seps.startsWith(' ') && !m[0].startsWith('+') && numericNeighbour(text, m.index, end)) continue;
    out.push({ start: m.index, end, kind: 'phone', via: 'format' });
  }
  for (const m of text.matchAll(E164)) {
    if (m[0].startsWith('+1') && !/^\+1\d{10}$/.test(m[0].replace(/[ -]/g, ''))) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: 'phone', via: 'format' });
  }
}

/** Top-level "domains" that are systemd unit types: getty@tty1.service is not an address. */
const UNIT_SUFFIX = new Set(['service', 'socket', 'target', 'mount', 'automount', 'timer', 'scope', 'slice', 'device', 'path', 'swap']);
const EMAIL = new RegExp(
  String.raw`(?<![${W}.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_%+-])?` +
    String.raw`@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![${W}-]|\.[A-Za-z0-9])`,
  'gu',
);

/**
 * Where an address is a software author's, not a person's in care: git's Author/Commit lines and
 * trailers, copyright notices (kernel and package messages), and no-reply addresses.
 */
const AUTHOR_CONTEXT =
  /\b(?:Author|Commit|Committer|Signed-off-by|Co-authored-by|Reviewed-by|Acked-by|Reported-by|Tested-by|Suggested-by|Maintainer|Copyright)\b|\(c\)|©/i;

/** E-mail addresses; `allow` holds domains (and their subdomains) whose addresses are not masked: the deployment's staff. */
export function findEmail(text: string, allow: readonly string[], out: Span[]): void {
  if (!text.includes('@')) return;
  for (const m of text.matchAll(EMAIL)) {
    if (UNIT_SUFFIX.has(m[1]!.toLowerCase())) continue;
    const domain = m[0].slice(m[0].lastIndexOf('@') + 1).toLowerCase();
    if (/(?:^|[.-])no-?reply(?:[.-]|$)/.test(domain) || /^no-?reply@/i.test(m[0])) continue;
    if (allow.some((d) => domain === d || domain.endsWith(`.${d}`))) continue;
    if (AUTHOR_CONTEXT.test(text.slice(0, m.index))) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: 'email', via: 'format' });
  }
}

// 1EG4-TE5-MK73 or 1EG4TE5MK73: upper case as CMS prints it (lower case only after a label).
const MBI = new RegExp(String.raw`(?<![${W}])([1-9][A-Z][A-Z0-9]\d)(-?)([A-Z][A-Z0-9]\d)\2([A-Z]{2}\d{2})(?![${W}])`, 'gu');

export function findMbi(text: string, out: Span[]): void {
  for (const m of text.matchAll(MBI)) {
    if (mbiValid(m[1]! + m[3]! + m[4]!)) out.push({ start: m.index, end: m.index + m[0].length, kind: 'hpbn', via: 'format' });
  }
}

// A run of digit groups with single spaces or dashes between them.
const DIGIT_RUN = /(?<![\p{N}])(?<![\p{N}][-.])\d+(?:[ -]\d+)*(?![\p{N}]|[.,]\d)/gu;

/**
 * Card numbers: a whole run of 13-19 digits (4111111111111111, 4111 1111 1111 1111,
 * 3782-822463-10005), every group but the last at least four digits long, that passes
 * cardValid. A run with more groups than the number is a row of numbers, not a card; so is a
 * space-separated run next to other numbers, unless it is grouped as cards are printed
 * (4-4-4-4, 4-4-4-4-3, 4-6-5).
 */
const CARD_GROUPS = new Set(['4-4-4-4', '4-4-4-4-3', '4-6-5']);

export function findCard(text: string, out: Span[]): void {
  for (const m of text.matchAll(DIGIT_RUN)) {
    const groups = m[0].split(/[ -]/);
    const digits = groups.join('');
    if (digits.length < 13 || digits.length > 19) continue;
    if (groups.slice(0, -1).some((g) => g.length < 4) || !cardValid(digits)) continue;
    const end = m.index + m[0].length;
    const printed = CARD_GROUPS.has(groups.map((g) => g.length).join('-'));
    if (m[0].includes(' ') && !printed && numericNeighbour(text, m.index, end)) continue;
    out.push({ start: m.index, end, kind: 'card', via: 'format' });
  }
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(String.raw`(?<![${W}.-])${OCTET}(?:\.${OCTET}){3}(?![\p{N}]|\.\d)`, 'gu');
// Colon-separated hex groups with "::" or eight groups; confirmed by net.isIPv6.
const IPV6 = new RegExp(String.raw`(?<![${W}:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|${OCTET}(?:\.${OCTET}){3})?(?![${W}:])`, 'gu');

/** True for a netmask (255.255.255.0): contiguous ones from the top. */
const isNetmask = (ip: string): boolean => {
  const v = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const inv = 2 ** 32 - 1 - v;
  return ip.startsWith('255.') && (inv & (inv + 1)) === 0;
};

export function findIp(text: string, allow: net.BlockList, out: Span[]): void {
  for (const m of text.matchAll(IPV4)) {
    if (isNetmask(m[0]) || allow.check(m[0], 'ipv4')) continue;
    out.push({ start: m.index, end: m.index + m[0].length, kind: 'ip', via: 'format' });
  }
  if (!text.includes(':')) return;
  for (const m of text.matchAll(IPV6)) {
    const a = m[0];
    // Hex words around "::" are C++ and Rust paths (Bad::Bed); an address has a digit somewhere.
    if (!/\d/.test(a) || !(a.includes('::') || a.split(':').length === 8) || !net.isIPv6(a)) continue;
    if (allow.check(a, 'ipv6')) continue;
    out.push({ start: m.index, end: m.index + a.length, kind: 'ip', via: 'format' });
  }
}

const URL_RE = /\bhttps?:\/\/[^\s"'<>`|\\^{}]+/giu;

/**
 * Identifiers in URLs: the value of a query parameter whose name is in `names`
 * (?patient=123&mrn=456), and the path segment after a segment so named (/patients/123/chart,
 * FHIR's /Patient/123). Only the value is masked: the host and the rest of the path stay readable.
 */
export function findUrlIds(text: string, names: ReadonlySet<string>, out: Span[]): void {
  if (!text.includes('://')) return;
  const named = (s: string) => {
    let n = s.toLowerCase();
    try {
      n = decodeURIComponent(n);
    } catch {
      /* keep it as written */
    }
    return names.has(n) || (n.endsWith('s') && names.has(n.slice(0, -1)));
  };
  for (const m of text.matchAll(URL_RE)) {
    const url = m[0].replace(/[.,;:!?)\]}]+$/, '');
    const base = m.index;
    const q = url.search(/[?#]/);
    const pathStart = url.indexOf('/', url.indexOf('//') + 2);
    if (pathStart >= 0 && (q < 0 || pathStart < q)) {
      const path = url.slice(pathStart, q < 0 ? url.length : q);
      let off = base + pathStart;
      const segs = path.split('/');
      for (let i = 0; i < segs.length; i++) {
        const next = segs[i + 1];
        const at = off + segs[i]!.length + 1;
        if (next && /\d/.test(next) && named(segs[i]!)) out.push({ start: at, end: at + next.length, kind: 'url', via: 'url' });
        off += segs[i]!.length + 1;
      }
    }
    if (q < 0) continue;
    let off = base + q + 1;
    for (const pair of url.slice(q + 1).split(/[&;#]/)) {
      const eq = pair.indexOf('=');
      if (eq > 0 && eq < pair.length - 1 && named(pair.slice(0, eq))) out.push({ start: off + eq + 1, end: off + pair.length, kind: 'url', via: 'url' });
      off += pair.length + 1;
    }
  }
}
