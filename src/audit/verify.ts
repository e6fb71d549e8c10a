import type { AuditEventRepo } from '../store/audit-events.js';
import { verifyWithPublicKey } from '../crypto/audit-key.js';
import { verifyAuditChain, verifyCheckpoints, type ChainProblem } from './log.js';

export interface AuditLogReport {
  ok: boolean;
  rows: number;
  head: string;
  checkpoints: number;
  /** ISO time of the last signed checkpoint, or null. */
  lastCheckpointAt: string | null;
  /** Rows after the last checkpoint: linked into the chain, not yet covered by a signature. */
  unsealedTail: number;
  problem: ChainProblem | null;
}

/**
 * The whole audit log checked: every row's hash and link, then every signed checkpoint with the
 * audit public key. Names the first problem (an edited, deleted, inserted or reordered row, a cut tail).
 */
export async function verifyAuditLog(events: AuditEventRepo, publicKeyPem: string): Promise<AuditLogReport> {
  const chain = await verifyAuditChain(events);
  const cps = await verifyCheckpoints(events, (d, s) => verifyWithPublicKey(publicKeyPem, d, s));
  const problem = chain.problem ?? cps.problem;
  return {
    ok: !problem,
    rows: chain.rows,
    head: chain.head,
    checkpoints: cps.checkpoints,
    lastCheckpointAt: cps.lastCheckpointAt ? new Date(cps.lastCheckpointAt).toISOString() : null,
    unsealedTail: cps.unsealedTail,
    problem,
  };
}
