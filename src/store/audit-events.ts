import type { Db } from './db.js';

/** One audit_events row as stored. */
export interface AuditRow {
  id: number;
  ts: number;
  type: string;
  actor: string;
  data: string;
  prev_hash: string;
  hash: string;
}

/** One signed checkpoint of the chain head. */
export interface CheckpointRow {
  id: number;
  audit_id: number;
  head: string;
  ts: number;
  signature: Buffer;
}

/**
 * The audit_events and audit_checkpoints tables. Hashing and signing are the caller's
 * (audit/log.ts); this module stores rows and hands them back in id order.
 */
export class AuditEventRepo {
  private readonly insert;
  private readonly last;
  constructor(private readonly db: Db) {
    // Prepared once: an append runs for every audited event.
    this.insert = db.prepare('INSERT INTO audit_events (id, ts, type, actor, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.last = db.prepare('SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1');
  }

  /**
   * Appends one row after the current head, in an IMMEDIATE transaction so that processes sharing
   * the database extend one chain without forking it. `hashOf` gets the new row's id and the
   * previous row's hash (`genesis` for the first row).
   */
  append(e: { ts: number; type: string; actor: string; data: string }, genesis: string, hashOf: (id: number, prevHash: string) => string): void {
    this.db
      .transaction(() => {
        const prev = this.head();
        const id = (prev?.id ?? 0) + 1;
        const prevHash = prev?.hash ?? genesis;
        this.insert.run(id, e.ts, e.type, e.actor, e.data, prevHash, hashOf(id, prevHash));
      })
      .immediate();
  }

  /** The last row's id and hash, or null for an empty log. */
  head(): { id: number; hash: string } | null {
    return (this.last.get() as { id: number; hash: string } | undefined) ?? null;
  }

  /** The newest `limit` rows after `sinceId` (of one type, if given), oldest first. */
  recent(opts: { type?: string; limit?: number; sinceId?: number } = {}): AuditRow[] {
    return this.db
      .prepare(`SELECT * FROM (SELECT * FROM audit_events WHERE id > ? ${opts.type ? 'AND type = ?' : ''} ORDER BY id DESC LIMIT ?) ORDER BY id`)
      .all(...[opts.sinceId ?? 0, ...(opts.type ? [opts.type] : []), opts.limit ?? 1_000_000]) as AuditRow[];
  }

  /** Every row, in id order, one at a time. */
  all(): IterableIterator<AuditRow> {
    return this.db.prepare('SELECT * FROM audit_events ORDER BY id').iterate() as IterableIterator<AuditRow>;
  }

  /** Rows with `since <= ts <= until`, in id order, one at a time. */
  between(since: number, until: number): IterableIterator<AuditRow> {
    return this.db.prepare('SELECT * FROM audit_events WHERE ts >= ? AND ts <= ? ORDER BY id').iterate(since, until) as IterableIterator<AuditRow>;
  }

  /** The highest row id (0 for an empty log). */
  maxId(): number {
    return (this.db.prepare('SELECT MAX(id) AS m FROM audit_events').get() as { m: number | null }).m ?? 0;
  }

  /** The stored hash of row `id`, or null if there is no such row. */
  hashOf(id: number): string | null {
    return (this.db.prepare('SELECT hash FROM audit_events WHERE id = ?').get(id) as { hash: string } | undefined)?.hash ?? null;
  }

  /** The row id the latest checkpoint signed, or null before the first one. */
  lastCheckpointRow(): number | null {
    return (this.db.prepare('SELECT audit_id FROM audit_checkpoints ORDER BY id DESC LIMIT 1').get() as { audit_id: number } | undefined)?.audit_id ?? null;
  }

  /** Stores a signed checkpoint of the head at row `auditId`. */
  addCheckpoint(c: { auditId: number; head: string; ts: number; signature: Buffer }): void {
    this.db.prepare('INSERT INTO audit_checkpoints (audit_id, head, ts, signature) VALUES (?, ?, ?, ?)').run(c.auditId, c.head, c.ts, c.signature);
  }

  /** Every checkpoint, oldest first. */
  checkpoints(): CheckpointRow[] {
    return this.db.prepare('SELECT * FROM audit_checkpoints ORDER BY id').all() as CheckpointRow[];
  }
}
