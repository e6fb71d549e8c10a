import { GENESIS_HASH, rowHash } from '../../src/audit/log.js';
import { canonicalJson } from '../../src/config/load.js';
import type { AuditRowSource } from '../../src/evidence/ports.js';
import type { AuditRow } from '../../src/store/audit-events.js';

/**
 * An audit table in memory for the syslog shipper: rows hash-chained exactly as audit/log.ts
 * chains them (so a collector's copy can be verified), and a switch that makes reads fail.
 */
export class MemAuditSource implements AuditRowSource {
  rows: AuditRow[] = [];
  failing: string | null = null;
  constructor(private readonly t0 = Date.UTC(2026, 0, 1)) {}

  /** Appends one row; `fields` become its canonical JSON data. */
  append(type: string, actor: string, fields: Record<string, unknown>): AuditRow {
    const prev = this.rows.at(-1);
    const id = (prev?.id ?? 0) + 1;
    const base = { id, ts: this.t0 + id * 1001, type, actor, data: canonicalJson(fields) };
    const prevHash = prev?.hash ?? GENESIS_HASH;
    const row = { ...base, prev_hash: prevHash, hash: rowHash(prevHash, base) };
    this.rows.push(row);
    return row;
  }

  /** Appends `n` ordinary session.start rows. */
  add(n: number): void {
    for (let i = 0; i < n; i++) this.append('session.start', 'alice', { user: 'alice', role: 'ops', n: this.rows.length + 1 });
  }

  async after(id: number, limit: number): Promise<AuditRow[]> {
    if (this.failing) throw new Error(this.failing);
    return this.rows.filter((r) => r.id > id).slice(0, limit);
  }

  async newest(): Promise<number> {
    if (this.failing) throw new Error(this.failing);
    return this.rows.at(-1)?.id ?? 0;
  }
}

/** Whether `rows` (in id order) link and hash as one audit chain from `prev`. */
export function chainVerifies(rows: AuditRow[], prev = GENESIS_HASH): boolean {
  for (const r of rows) {
    if (r.prev_hash !== prev || rowHash(prev, r) !== r.hash) return false;
    prev = r.hash;
  }
  return true;
}
