import type { Clock } from '../platform/clock.js';
import type { AuditSink } from './log.js';

export interface PreAuthAuditOptions {
  /** One summary row per address per interval (ms). */
  interval: number;
  /** Bound on rows per second from unauthenticated sources, averaged over an interval. */
  maxRowsPerSecond: number;
  /** Addresses tracked per interval; more fold into one '*' bucket (memory stays bounded). */
  maxAddresses?: number;
}

/** Names kept per address as a sample, and distinct names counted up to. */
const SAMPLE_NAMES = 5;
const COUNT_NAMES_UP_TO = 100;
const NAME_CHARS = 32;

interface Bucket {
  addr: string;
  from: number;
  to: number;
  attempts: number;
  reasons: Map<string, number>;
  names: Set<string>;
  addresses: number;
}

/** A name an unauthenticated client sent, made safe for a log: escaped, bounded. */
export function sampleName(name: string): string {
  let out = '';
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    out += ch === '\\' ? '\\\\' : c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) || c > 0xffff ? `\\x{${c.toString(16)}}` : ch;
    if (out.length >= NAME_CHARS) return out.slice(0, NAME_CHARS) + '…';
  }
  return out;
}

/**
 * Audit for clients that have not proven a key. A flood of probes must not fill the disk (20 s
 * of unknown-user probes once wrote 29,296 rows, and a full disk ends every recorded session),
 * yet the evidence must stay: every pre-authentication failure and refusal is counted here, and
 * every `interval` each address gets one `preauth.summary` row with its counts by reason and a
 * sample of the names it tried. At most maxRowsPerSecond x interval rows are written per
 * interval: the busiest addresses get their own row, the rest share one '*' row. Runs on the
 * injected clock; `close()` writes what is pending.
 */
export class PreAuthAudit {
  private buckets = new Map<string, Bucket>();
  private readonly stop: () => void;

  constructor(
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly opts: PreAuthAuditOptions,
  ) {
    this.stop = clock.setInterval(() => this.flush(), opts.interval);
  }

  /** Counts one pre-authentication failure or refusal from `addr`. */
  record(addr: string, reason: string, name?: string): void {
    const now = this.clock.now();
    let b = this.buckets.get(addr);
    if (!b) {
      const full = this.buckets.size >= (this.opts.maxAddresses ?? 10_000);
      const key = full ? '*' : addr;
      b = this.buckets.get(key);
      if (!b) {
        b = { addr: key, from: now, to: now, attempts: 0, reasons: new Map(), names: new Set(), addresses: 0 };
        this.buckets.set(key, b);
      }
      if (full) b.addresses++;
      else b.addresses = 1;
    }
    b.to = now;
    b.attempts++;
    const r = reason.slice(0, 64);
    b.reasons.set(r, (b.reasons.get(r) ?? 0) + 1);
    if (name !== undefined && b.names.size < COUNT_NAMES_UP_TO) b.names.add(sampleName(name));
  }

  /** Writes the summaries gathered since the last flush; returns the rows written. */
  flush(): number {
    // Fire and forget: a summary that cannot be stored is logged by the audit log, and the
    // gateway goes on refusing strangers.
    if (!this.buckets.size) return 0;
    const all = [...this.buckets.values()].sort((a, b) => b.attempts - a.attempts);
    this.buckets = new Map();
    const budget = Math.max(1, Math.floor((this.opts.maxRowsPerSecond * this.opts.interval) / 1000));
    const own = all.length <= budget ? all : all.slice(0, budget - 1);
    const rest = all.slice(own.length);
    const rows = [...own];
    if (rest.length) rows.push(rest.reduce(merge, { addr: '*', from: Infinity, to: 0, attempts: 0, reasons: new Map(), names: new Set(), addresses: 0 }));
    for (const b of rows) {
      this.audit.post('gateway', {
        type: 'preauth.summary',
        addr: b.addr,
        addresses: b.addresses,
        from: b.from,
        to: b.to,
        attempts: b.attempts,
        reasons: Object.fromEntries(b.reasons),
        names: [...b.names].slice(0, SAMPLE_NAMES),
        distinctNames: b.names.size,
      });
    }
    return rows.length;
  }

  /** Stops the timer and writes what is pending. */
  close(): void {
    this.stop();
    this.flush();
  }
}

function merge(into: Bucket, b: Bucket): Bucket {
  into.from = Math.min(into.from, b.from);
  into.to = Math.max(into.to, b.to);
  into.attempts += b.attempts;
  into.addresses += b.addresses;
  for (const [r, n] of b.reasons) into.reasons.set(r, (into.reasons.get(r) ?? 0) + n);
  for (const n of b.names) if (into.names.size < COUNT_NAMES_UP_TO) into.names.add(n);
  return into;
}
