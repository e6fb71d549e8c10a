import { createHash } from 'node:crypto';
import type { AuditEventRepo, AuditRow } from '../store/audit-events.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { canonicalJson } from '../config/load.js';
import { AuditEventSchema, type AuditEvent } from './events.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Receives audit events. The gateway, the CLI and tests all write through this one port. */
export interface AuditSink {
  /** Resolves once the event is stored; rejects if it could not be (callers that grant access must wait). */
  emit(actor: string, event: AuditEvent): Promise<void>;
  /**
   * The same, for a caller that cannot wait (a timer, a teardown): appended in call order, and a
   * failure is logged and counted rather than thrown.
   */
  post(actor: string, event: AuditEvent): void;
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
 * The hash-chained audit log in the store. Each row's id is its predecessor's plus one and ids
 * are unique, and an append that loses a race for an id takes the chain lock and reads the head
 * again (AuditEventRepo.append), so gateway nodes and CLI processes extend one chain without forking it.
 */
export class AuditLog implements AuditSink {
  /** Events that could not be stored since start (a metric). */
  failures = 0;
  /**
   * Called after each stored append (the off-box shipper's wake-up). Must be cheap and must not
   * throw; a throw is logged and ignored, never failing the append. Rows other processes append
   * are not seen here: whoever listens also polls.
   */
  onAppended: (() => void) | null = null;

  constructor(
    private readonly events: AuditEventRepo,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  /** Appends one event; it is validated against the event union first. */
  async emit(actor: string, event: AuditEvent): Promise<void> {
    const parsed = AuditEventSchema.parse(event);
    const { type, ...fields } = parsed;
    const data = canonicalJson(fields);
    const ts = this.clock.now();
    try {
      await this.events.append({ ts, type, actor, data }, GENESIS_HASH, (id, prevHash) => rowHash(prevHash, { id, ts, type, actor, data }));
    } catch (e) {
      this.failures++;
      this.logger?.error({ audit: type, actor, err: (e as Error).message }, 'audit event could not be stored');
      throw e;
    }
    this.logger?.info({ audit: type, actor, ...fields }, 'audit');
    try {
      this.onAppended?.();
    } catch (e) {
      this.logger?.error({ err: (e as Error).message }, 'audit onAppended hook failed');
    }
  }

  post(actor: string, event: AuditEvent): void {
    this.emit(actor, event).catch(() => {
      // logged and counted by emit
    });
  }
}

/** Reads audit events back, newest last. */
export function readAudit(events: AuditEventRepo, opts: { type?: string; limit?: number; sinceId?: number } = {}): Promise<AuditRow[]> {
  return events.recent(opts);
}

export interface ChainProblem {
  id: number;
  problem: 'edited' | 'broken-link' | 'gap' | 'bad-event';
  detail: string;
}

/** Walks the whole chain; returns the first problem, or null when every row links and hashes. */
export async function verifyAuditChain(events: AuditEventRepo): Promise<{ rows: number; head: string; problem: ChainProblem | null }> {
  let prevHash = GENESIS_HASH;
  let prevId = 0;
  let rows = 0;
  for await (const row of events.all()) {
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
export async function writeCheckpoint(events: AuditEventRepo, sign: (d: Buffer) => Buffer, now: number): Promise<boolean> {
  const last = await events.head();
  if (!last) return false;
  if ((await events.lastCheckpointRow()) === last.id) return false;
  await events.addCheckpoint({ auditId: last.id, head: last.hash, ts: now, signature: sign(checkpointSigned(last.id, last.hash, now)) });
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
export async function verifyCheckpoints(events: AuditEventRepo, verify: (data: Buffer, sig: Buffer) => boolean): Promise<CheckpointReport> {
  const cps = await events.checkpoints();
  const maxId = await events.maxId();
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
    const hash = await events.hashOf(c.audit_id);
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
