import net from 'node:net';
import { parseCidr } from '../platform/cidr.js';
import { findCard, findEmail, findIp, findMbi, findPhone, findSsn, findUrlIds, type Span } from './formats.js';
import { findColumns, findLabelled, labelRules } from './labels.js';
import { KnownIdentifiers } from './known.js';
import { redactionSchema, type BuiltInKind, type LabelledKind, type RedactionConfig, type RedactionOptions } from './options.js';

export type { Span } from './formats.js';

/** What a mask shows for each kind: `[SSN]` then the fill character to the value's width. */
const LABEL: Record<string, string> = {
  ssn: 'SSN',
  mrn: 'MRN',
  account: 'ACCT',
  dob: 'DOB',
  phone: 'PHONE',
  email: 'EMAIL',
  hpbn: 'HPBN',
  card: 'CARD',
  ip: 'IP',
  url: 'ID',
  partial: '?',
};

/** The text that replaces `width` cells of an identifier of `kind`: `[SSN]******`, or fill only when the label does not fit. */
export function maskText(kind: string, width: number, fill: string): string {
  const label = `[${LABEL[kind] ?? kind.toUpperCase()}]`;
  return width >= label.length ? label + fill.repeat(width - label.length) : fill.repeat(width);
}

/**
 * Merges overlapping spans into one (the kind and route of the longest piece), sorted by start.
 * Touching spans stay apart: two identifiers side by side keep their own labels.
 */
export function mergeSpans(spans: Span[]): Span[] {
  const sorted = spans.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Span[] = [];
  for (const s of sorted) {
    const last = out.at(-1);
    if (last && s.start < last.end) {
      if (s.end - s.start > last.end - last.start) Object.assign(last, { kind: s.kind, via: s.via });
      last.end = Math.max(last.end, s.end);
    } else out.push({ ...s });
  }
  return out;
}

type TextDetector = (text: string, out: Span[]) => void;

/**
 * Finds identifiers in text: the detectors of the configuration, compiled once. Pure and
 * stateless (no cache of what it saw: one Redactor serves every viewer), so the screen-level
 * readers (screen-masks.ts, view.ts) keep their own per-view caches.
 */
export class Redactor {
  readonly config: RedactionConfig;
  /** Detectors that need a digit or an @ on the line (all the built-in ones). */
  private readonly needDigit: TextDetector[] = [];
  /** Detectors that run on every line (deployment patterns, known identifiers). */
  private readonly always: TextDetector[] = [];
  readonly enabled: (k: LabelledKind | BuiltInKind) => boolean;

  constructor(config: RedactionConfig) {
    this.config = config;
    const off = new Set<string>(config.disable);
    const on = (k: LabelledKind | BuiltInKind) => !off.has(k);
    this.enabled = on;
    const allow = new net.BlockList();
    for (const c of config.ipAllow) {
      const r = parseCidr(c);
      if (typeof r !== 'string') allow.addSubnet(r.address, r.prefix, r.family);
    }
    const urlNames = new Set(config.urlNames.map((n) => n.toLowerCase()));
    const rules = labelRules(config.labels, on);
    const add = (k: BuiltInKind, d: TextDetector) => on(k) && this.needDigit.push(d);
    add('ssn', findSsn);
    add('phone', findPhone);
    const staff = config.emailAllow.map((d) => d.toLowerCase());
    add('email', (t, out) => findEmail(t, staff, out));
    add('hpbn', findMbi);
    add('card', findCard);
    add('ip', (t, out) => findIp(t, allow, out));
    add('url', (t, out) => findUrlIds(t, urlNames, out));
    if (rules.length) this.needDigit.push((t, out) => findLabelled(t, rules, out));
    for (const p of config.patterns) {
      const re = new RegExp(p.regex, `gu${p.ignoreCase ? 'i' : ''}${p.group ? 'd' : ''}`);
      this.always.push((t, out) => {
        for (const m of t.matchAll(re)) {
          const [start, end] = p.group ? (m.indices?.[p.group] ?? [0, 0]) : [m.index, m.index + m[0].length];
          if (end > start) out.push({ start, end, kind: p.kind, via: 'pattern' });
        }
      });
    }
    if (config.known) {
      const known = new KnownIdentifiers(config.known);
      this.always.push((t, out) => known.find(t, out));
    }
  }

  /** A Redactor for `options` (the config section as written), defaults applied; throws zod's error on bad options. */
  static create(options: RedactionOptions = {}): Redactor {
    return new Redactor(redactionSchema.parse(options));
  }

  /** Identifiers in one line of text (merged, sorted). */
  detectText(text: string): Span[] {
    const out: Span[] = [];
    if (/[\d@]/.test(text)) for (const d of this.needDigit) d(text, out);
    for (const d of this.always) d(text, out);
    return mergeSpans(out);
  }

  /**
   * Identifiers in lines that belong together (a block of output, a table): each line alone, and
   * values under table headers that name a kind (labels.ts, findColumns). Lines are taken as one
   * character per column.
   */
  detectLines(lines: string[]): Span[][] {
    const spans = lines.map((l) => this.detectText(l));
    for (const { row, span } of this.detectColumns(lines)) spans[row]!.push(span);
    return spans.map(mergeSpans);
  }

  /** Values in table columns (see labels.ts findColumns); one character per column. */
  detectColumns(rows: string[]): { row: number; span: Span }[] {
    return findColumns(rows, this.enabled);
  }

  /** `text` with every identifier replaced by its mask, one character per character (a search result line). */
  redactLine(text: string): string {
    return this.redactText(text, this.detectText(text));
  }

  /** Lines with their identifiers masked, table columns included. */
  redactLines(lines: string[]): string[] {
    const spans = this.detectLines(lines);
    return lines.map((l, i) => this.redactText(l, spans[i]!));
  }

  private redactText(text: string, spans: Span[]): string {
    let out = '';
    let at = 0;
    for (const s of spans) {
      out += text.slice(at, s.start) + maskText(s.kind, [...text.slice(s.start, s.end)].length, this.config.fill);
      at = s.end;
    }
    return out + text.slice(at);
  }
}
