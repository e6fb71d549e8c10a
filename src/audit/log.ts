import { createHash } from 'node:crypto';
import type { AuditEventRepo, AuditRow } from '../store/audit-events.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { canonicalJson } from '../config/load.js';
import { AuditEventSchema, type AuditEvent } from './events.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Receives audit events. The gateway, the CLI and tests all write through this one port. */
export interface AuditSink {
  emit(actor: string, event: AuditEvent): void;
}

export type { AuditRow } from '../store/audit-events.js';

/** The hash of one row: over the previous hash and a canonical encoding of every field. */
export function rowHash(prevHash: string, row: Omit<AuditRow, 'hash' | 'prev_hash'>): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(canonicalJson({ id: row.id, ts: row.ts, type: row.type, actor: row.actor, data: row.data }))
    .digest('hex');
}

/**
 * The hash-chained audit log in the store. Each append runs in an IMMEDIATE transaction so the
 * gateway and CLI processes extend one chain without forking it.
 */
export class AuditLog implements AuditSink {
  constructor(
    private readonly events: AuditEventRepo,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  /** Appends one event; it is validated against the event union first. */
  emit(actor: string, event: AuditEvent): void {
    const parsed = AuditEventSchema.parse(event);
    const { type, ...fields } = parsed;
    const data = canonicalJson(fields);
    const ts = this.clock.now();
    this.events.append({ ts, type, actor, data }, GENESIS_HASH, (id, prevHash) => rowHash(prevHash, { id, ts, type, actor, data }));
    this.logger?.info({ audit: type, actor, ...fields }, 'audit');
  }
}

/** Reads audit events back, newest last. */
export function readAudit(events: AuditEventRepo, opts: { type?: string; limit?: number; sinceId?: number } = {}): AuditRow[] {
  return events.recent(opts);
}

export interface ChainProblem {
  id: number;
  problem: 'edited' | 'broken-link' | 'gap' | 'bad-event';
  detail: string;
}

/** Walks the whole chain; returns the first problem, or null when every row links and hashes. */
export function verifyAuditChain(events: AuditEventRepo): { rows: number; head: string; problem: ChainProblem | null } {
  let prevHash = GENESIS_HASH;
  let prevId = 0;
  let rows = 0;
  for (const row of events.all()) {
    rows++;
    if (row.prev_hash !== prevHash) {
      const detail = `row ${row.id} does not follow row ${prevId} (deleted, inserted or reordered rows)`;
      return { rows, head: prevHash, problem: { id: row.id, problem: 'broken-link', detail } };
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
export function writeCheckpoint(events: AuditEventRepo, sign: (d: Buffer) => Buffer, now: number): boolean {
  const last = events.head();
  if (!last) return false;
  if (events.lastCheckpointRow() === last.id) return false;
  events.addCheckpoint({ auditId: last.id, head: last.hash, ts: now, signature: sign(checkpointSigned(last.id, last.hash, now)) });
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
export function verifyCheckpoints(events: AuditEventRepo, verify: (data: Buffer, sig: Buffer) => boolean): CheckpointReport {
  const cps = events.checkpoints();
  const maxId = events.maxId();
  const report = (lastCheckpointAt: number | null, problem: ChainProblem): CheckpointReport => ({
    checkpoints: cps.length,
    lastCheckpointAt,
    unsealedTail: 0,
    problem,
  });
  for (const c of cps) {
    if (!verify(checkpointSigned(c.audit_id, c.head, c.ts), c.signature)) {
      return report(null, { id: c.audit_id, problem: 'edited', detail: `checkpoint ${c.id} (row ${c.audit_id}) has a bad signature` });
    }
    const hash = events.hashOf(c.audit_id);
    if (hash === null) {
      const detail = `the log was cut: checkpoint ${c.id} signed row ${c.audit_id} but the log ends at row ${maxId}`;
      return report(c.ts, { id: c.audit_id, problem: 'gap', detail });
    }
    if (hash !== c.head) {
      return report(c.ts, { id: c.audit_id, problem: 'edited', detail: `row ${c.audit_id} differs from what checkpoint ${c.id} signed` });
    }
  }
  const last = cps.at(-1);
  return { checkpoints: cps.length, lastCheckpointAt: last?.ts ?? null, unsealedTail: maxId - (last?.audit_id ?? 0), problem: null };
}
