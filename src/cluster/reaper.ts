import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { AuditSink } from '../audit/log.js';
import type { Sql } from '../store/sql.js';
import type { NodeRepo } from '../store/nodes.js';
import type { SessionRepo } from '../store/sessions.js';
import type { RecordingRepo } from '../store/recordings.js';
import type { PairServerRepo } from '../store/pair-servers.js';
import type { KillRepo } from '../store/kills.js';

export interface NodeReaperDeps {
  self: string;
  sql: Pick<Sql, 'transaction' | 'lock'>;
  nodes: Pick<NodeRepo, 'stale' | 'markLost'>;
  sessions: Pick<SessionRepo, 'markNodeLost'>;
  recordings: Pick<RecordingRepo, 'markNodeLost'>;
  pairServers: Pick<PairServerRepo, 'releaseAll'>;
  kills: Pick<KillRepo, 'resolveForLostNode'>;
  audit: AuditSink;
  /** Node liveness time (the heartbeats' clock). */
  clusterClock: Clock;
  /** Policy time, for the sessions' end stamps (as every other session end). */
  clock: Clock;
  deadAfter: number;
  logger: Logger;
}

/**
 * Declares nodes lost whose heartbeat is older than `deadAfter` (and that did not stop cleanly):
 * their live sessions and open recordings are marked interrupted, their pair claims dropped (so
 * users start anew where they land), pending kills of its sessions resolved (they are interrupted;
 * and its tmux servers are out of reach), and 'node.lost' is audited with a 'session.interrupted' for
 * each session, all in one transaction under the 'reaper' lock. Every node runs it; one does
 * each node's work, once (the loss is conditional on the heartbeat it was judged by).
 * Returns the ids of the nodes it declared lost.
 */
export async function reapLostNodes(d: NodeReaperDeps): Promise<string[]> {
  const now = d.clusterClock.now();
  const reaped: string[] = [];
  for (const n of await d.nodes.stale(now - d.deadAfter, d.self)) {
    const done = await d.sql.transaction(async () => {
      await d.sql.lock('reaper');
      if (!(await d.nodes.markLost(n.id, n.heartbeat_at, now))) return false; // it beat again, or another reaper was first
      const sessions = await d.sessions.markNodeLost(n.id, d.clock.now());
      const recordings = await d.recordings.markNodeLost(n.id);
      const pairs = await d.pairServers.releaseAll(n.id);
      const kills = await d.kills.resolveForLostNode(n.id, d.clock.now());
      const silentMs = now - n.heartbeat_at;
      await d.audit.emit('gateway', {
        type: 'node.lost',
        node: n.id,
        lastHeartbeat: n.heartbeat_at,
        silentMs,
        sessions: sessions.length,
        recordings,
        pairs,
        kills,
      });
      for (const s of sessions) await d.audit.emit('gateway', { type: 'session.interrupted', sessionId: s.id, user: s.user_name, role: s.role_name });
      d.logger.warn({ node: n.id, silentMs: now - n.heartbeat_at, sessions: sessions.length, pairs }, 'node lost: its sessions are marked interrupted');
      return true;
    });
    if (done) reaped.push(n.id);
  }
  return reaped;
}
