import type { Sql } from './sql.js';

/** A kill request the CLI left for the gateway that runs the session. */
export interface KillRequest {
  sessionId: string;
  reason: string;
  requestedBy: string;
  /** The session's state now ('live', 'closed', 'interrupted'), or null if the row is gone. */
  state: string | null;
  /** The node that talks to the session's client (null: a row from before clusters, or the row is gone). */
  nodeId: string | null;
  /** The node whose tmux server the session is relayed to (another node's), or null for a local session. */
  serverNodeId: string | null;
  /** The session's pair (null if the row is gone). */
  roleId: number | null;
  userId: number | null;
}

/** How a kill request was resolved. */
export type KillOutcome = 'killed' | 'ended' | 'node lost';

/**
 * session_kills: how `tmuxgate sessions kill` reaches a running gateway (which polls). A request is
 * carried out in two parts: the node that talks to the session's client ends the session
 * (done_at); for a relayed session, the node that holds its tmux server then ends the pair's
 * server and processes there (server_done_at). A node declared lost resolves both parts of its
 * own sessions' requests, so none stays pending.
 */
export class KillRepo {
  constructor(private readonly sql: Sql) {}

  /** Asks for a session to end; asking again replaces the reason. */
  async request(sessionId: string, reason: string, requestedBy: string, now: number): Promise<void> {
    await this.sql.run(
      `INSERT INTO session_kills (session_id, reason, requested_by, requested_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(session_id) DO UPDATE SET reason = excluded.reason`,
      [sessionId, reason, requestedBy, now],
    );
  }

  /** Requests whose session has not been ended yet, with the session's state and server node. */
  async pending(): Promise<KillRequest[]> {
    const rows = (await this.sql.all(
      `SELECT k.session_id, k.reason, k.requested_by, s.state, s.node_id, s.server_node_id, s.role_id, s.user_id
         FROM session_kills k LEFT JOIN sessions s ON s.id = k.session_id
        WHERE k.done_at IS NULL`,
    )) as {
      session_id: string;
      reason: string;
      requested_by: string;
      state: string | null;
      node_id: string | null;
      server_node_id: string | null;
      role_id: number | null;
      user_id: number | null;
    }[];
    const id = (v: number | null) => (v === null ? null : Number(v));
    return rows.map((r) => ({
      sessionId: r.session_id,
      reason: r.reason,
      requestedBy: r.requested_by,
      state: r.state,
      nodeId: r.node_id,
      serverNodeId: r.server_node_id,
      roleId: id(r.role_id),
      userId: id(r.user_id),
    }));
  }

  /** Marks the session part of a request carried out (`killed`), or moot (`ended`: the session had ended). */
  async done(sessionId: string, now: number, outcome: KillOutcome = 'killed'): Promise<void> {
    await this.sql.run('UPDATE session_kills SET done_at = ?, outcome = ? WHERE session_id = ? AND done_at IS NULL', [now, outcome, sessionId]);
  }

  /**
   * Relayed sessions, relayed to `node`, whose session part is done and whose pair's tmux server
   * there is still to end: the (role, user) pairs, per request.
   */
  async serverPending(node: string): Promise<{ sessionId: string; roleId: number; userId: number }[]> {
    const rows = (await this.sql.all(
      `SELECT k.session_id, s.role_id, s.user_id FROM session_kills k JOIN sessions s ON s.id = k.session_id
        WHERE k.done_at IS NOT NULL AND k.server_done_at IS NULL AND s.server_node_id = ?`,
      [node],
    )) as { session_id: string; role_id: number; user_id: number }[];
    return rows.map((r) => ({ sessionId: r.session_id, roleId: Number(r.role_id), userId: Number(r.user_id) }));
  }

  /** Marks the server part of a relayed session's request carried out. */
  async serverDone(sessionId: string, now: number): Promise<void> {
    await this.sql.run('UPDATE session_kills SET server_done_at = ? WHERE session_id = ? AND server_done_at IS NULL', [now, sessionId]);
  }

  /**
   * A node was declared lost: requests for the sessions it talked to are resolved ('node lost':
   * those sessions are interrupted), and so is the server part of requests for sessions relayed to
   * it (its tmux servers are gone with it, or unreachable). Returns how many requests changed.
   */
  async resolveForLostNode(node: string, now: number): Promise<number> {
    const a = await this.sql.run(
      `UPDATE session_kills SET done_at = ?, outcome = 'node lost'
        WHERE done_at IS NULL AND session_id IN (SELECT id FROM sessions WHERE node_id = ?)`,
      [now, node],
    );
    const b = await this.sql.run(
      `UPDATE session_kills SET server_done_at = ?
        WHERE server_done_at IS NULL AND session_id IN (SELECT id FROM sessions WHERE server_node_id = ?)`,
      [now, node],
    );
    return a + b;
  }
}
