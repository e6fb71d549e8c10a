import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { canonicalJson } from '../config/load.js';
import { AuditEventSchema, type AuditEvent } from './events.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Receives audit events. The gateway, the CLI and tests all write through this one port. */
export interface AuditSink {
  emit(actor: string, event: AuditEvent): void;
}

export interface AuditRow {
  id: number;
  ts: number;
  type: string;
  actor: string;
  data: string;
  prev_hash: string;
  hash: string;
}

/** The hash of one row: over the previous hash and a canonical encoding of every field. */
export function rowHash(prevHash: string, row: Omit<AuditRow, 'hash' | 'prev_hash'>): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(canonicalJson({ id: row.id, ts: row.ts, type: row.type, actor: row.actor, data: row.data }))
    .digest('hex');
}

/**
 * The hash-chained audit log in SQLite. Each append runs in an IMMEDIATE transaction so the
 * gateway and CLI processes extend one chain without forking it.
 */
export class AuditLog implements AuditSink {
  private readonly insert;
  private readonly last;
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {
    this.insert = db.prepare('INSERT INTO audit_events (id, ts, type, actor, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.last = db.prepare('SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1');
  }

  /** Appends one event; it is validated against the event union first. */
  emit(actor: string, event: AuditEvent): void {
    const parsed = AuditEventSchema.parse(event);
    const { type, ...fields } = parsed;
    const data = canonicalJson(fields);
    const ts = this.clock.now();
    this.db
      .transaction(() => {
        const prev = this.last.get() as { id: number; hash: string } | undefined;
        const id = (prev?.id ?? 0) + 1;
        const prevHash = prev?.hash ?? GENESIS_HASH;
        const hash = rowHash(prevHash, { id, ts, type, actor, data });
        this.insert.run(id, ts, type, actor, data, prevHash, hash);
      })
      .immediate();
    this.logger?.info({ audit: type, actor, ...fields }, 'audit');
  }
}

/** Reads audit events back, newest last. */
export function readAudit(db: Db, opts: { type?: string; limit?: number; sinceId?: number } = {}): AuditRow[] {
  const rows = db
    .prepare(
      `SELECT * FROM (SELECT * FROM audit_events WHERE id > ? ${opts.type ? 'AND type = ?' : ''} ORDER BY id DESC LIMIT ?) ORDER BY id`,
    )
    .all(...[opts.sinceId ?? 0, ...(opts.type ? [opts.type] : []), opts.limit ?? 1_000_000]) as AuditRow[];
  return rows;
}

export interface ChainProblem {
  id: number;
  problem: 'edited' | 'broken-link' | 'gap' | 'bad-event';
  detail: string;
}

/** Walks the whole chain; returns the first problem, or null when every row links and hashes. */
export function verifyAuditChain(db: Db): { rows: number; head: string; problem: ChainProblem | null } {
  let prevHash = GENESIS_HASH;
  let prevId = 0;
  let rows = 0;
  for (const row of db.prepare('SELECT * FROM audit_events ORDER BY id').iterate() as IterableIterator<AuditRow>) {
    rows++;
    if (row.prev_hash !== prevHash) {
      return { rows, head: prevHash, problem: { id: row.id, problem: 'broken-link', detail: `row ${row.id} does not follow row ${prevId} (deleted, inserted or reordered rows)` } };
    }
    if (row.id !== prevId + 1) {
      return { rows, head: prevHash, problem: { id: row.id, problem: 'gap', detail: `row ${row.id} follows row ${prevId}: ids are not consecutive` } };
    }
    if (rowHash(prevHash, row) !== row.hash) {
      return { rows, head: prevHash, problem: { id: row.id, problem: 'edited', detail: `row ${row.id} was altered after it was written` } };
    }
    prevHash = row.hash;
    prevId = row.id;
  }
  return { rows, head: prevHash, problem: null };
}

const CHECKPOINT_DOMAIN = 'tmuxgate-audit-checkpoint-v1\0';

/** Bytes a checkpoint signature covers. */
export function checkpointSigned(auditId: number, head: string, ts: number): Buffer {
  return Buffer.from(`${CHECKPOINT_DOMAIN}${auditId}\0${head}\0${ts}`);
}

/** Signs the current chain head if it moved since the last checkpoint; returns whether it did. */
export function writeCheckpoint(db: Db, sign: (d: Buffer) => Buffer, now: number): boolean {
  const last = db.prepare('SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
  if (!last) return false;
  const cp = db.prepare('SELECT audit_id FROM audit_checkpoints ORDER BY id DESC LIMIT 1').get() as { audit_id: number } | undefined;
  if (cp && cp.audit_id === last.id) return false;
  db.prepare('INSERT INTO audit_checkpoints (audit_id, head, ts, signature) VALUES (?, ?, ?, ?)').run(last.id, last.hash, now, sign(checkpointSigned(last.id, last.hash, now)));
  return true;
}

export interface CheckpointReport {
  checkpoints: number;
  lastCheckpointAt: number | null;
  /** Rows written after the last checkpoint (not yet covered by a signature). */
  unsealedTail: number;
  problem: ChainProblem | null;
}

/** Checks every checkpoint's signature and that the rows it covers are all still there. */
export function verifyCheckpoints(db: Db, verify: (data: Buffer, sig: Buffer) => boolean): CheckpointReport {
  const cps = db.prepare('SELECT * FROM audit_checkpoints ORDER BY id').all() as { id: number; audit_id: number; head: string; ts: number; signature: Buffer }[];
  const maxId = (db.prepare('SELECT MAX(id) AS m FROM audit_events').get() as { m: number | null }).m ?? 0;
  const rowHash = db.prepare('SELECT hash FROM audit_events WHERE id = ?');
  for (const c of cps) {
    if (!verify(checkpointSigned(c.audit_id, c.head, c.ts), c.signature)) {
      return { checkpoints: cps.length, lastCheckpointAt: null, unsealedTail: 0, problem: { id: c.audit_id, problem: 'edited', detail: `checkpoint ${c.id} (row ${c.audit_id}) has a bad signature` } };
    }
    const r = rowHash.get(c.audit_id) as { hash: string } | undefined;
    if (!r) {
      return { checkpoints: cps.length, lastCheckpointAt: c.ts, unsealedTail: 0, problem: { id: c.audit_id, problem: 'gap', detail: `the log was cut: checkpoint ${c.id} signed row ${c.audit_id} but the log ends at row ${maxId}` } };
    }
    if (r.hash !== c.head) {
      return { checkpoints: cps.length, lastCheckpointAt: c.ts, unsealedTail: 0, problem: { id: c.audit_id, problem: 'edited', detail: `row ${c.audit_id} differs from what checkpoint ${c.id} signed` } };
    }
  }
  const last = cps.at(-1);
  return { checkpoints: cps.length, lastCheckpointAt: last?.ts ?? null, unsealedTail: maxId - (last?.audit_id ?? 0), problem: null };
}
