import { z } from 'zod';
import type { Sql } from './sql.js';

const SessionRow = z.object({
  id: z.string(),
  user_id: z.number(),
  role_id: z.number(),
  user_name: z.string(),
  role_name: z.string(),
  remote_addr: z.string(),
  term: z.string(),
  cols: z.number(),
  rows: z.number(),
  state: z.enum(['live', 'closed', 'interrupted']),
  started_at: z.number(),
  ended_at: z.number().nullable(),
  end_reason: z.string().nullable(),
  gateway_pid: z.number(),
  /** The node that talks to the session's client and records it (null: written before clusters). */
  node_id: z.string().nullable(),
  /** The node whose tmux server a relayed session is attached to; null when that is node_id. */
  server_node_id: z.string().nullable(),
});
export type SessionRecord = z.infer<typeof SessionRow>;

export interface NewSession {
  id: string;
  userId: number;
  roleId: number;
  userName: string;
  roleName: string;
  remoteAddr: string;
  term: string;
  cols: number;
  rows: number;
  startedAt: number;
  /** The node whose tmux server the session is relayed to, when it is not this one. */
  serverNodeId?: string | null;
}

/**
 * Shell sessions: one row per SSH shell, live until it ends. The repository speaks for one node
 * (`nodeId`, "local" on a single node): the rows it starts name that node, and at start it marks
 * only that node's leftovers interrupted. Rows from before clusters have no node and count as
 * the single node's.
 */
export class SessionRepo {
  constructor(
    private readonly sql: Sql,
    readonly nodeId = 'local',
  ) {}

  async start(s: NewSession): Promise<void> {
    await this.sql.run(
      `INSERT INTO sessions (id, user_id, role_id, user_name, role_name, remote_addr, term, cols, rows, state, started_at, gateway_pid, node_id, server_node_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'live', ?, ?, ?, ?)`,
      [s.id, s.userId, s.roleId, s.userName, s.roleName, s.remoteAddr, s.term, s.cols, s.rows, s.startedAt, process.pid, this.nodeId, s.serverNodeId ?? null],
    );
  }

  async end(id: string, reason: string, at: number): Promise<void> {
    await this.sql.run("UPDATE sessions SET state = 'closed', ended_at = ?, end_reason = ? WHERE id = ? AND state = 'live'", [at, reason, id]);
  }

  async get(id: string): Promise<SessionRecord | null> {
    const r = await this.sql.get('SELECT * FROM sessions WHERE id = ?', [id]);
    return r ? SessionRow.parse(r) : null;
  }

  async list(filter: { live?: boolean; user?: string; role?: string; since?: number; until?: number } = {}): Promise<SessionRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.live) where.push("state = 'live'");
    if (filter.user) (where.push('user_name = ?'), args.push(filter.user));
    if (filter.role) (where.push('role_name = ?'), args.push(filter.role));
    if (filter.since !== undefined) (where.push('started_at >= ?'), args.push(filter.since));
    if (filter.until !== undefined) (where.push('started_at <= ?'), args.push(filter.until));
    const sql = `SELECT * FROM sessions ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY started_at`;
    return (await this.sql.all(sql, [...args])).map((r) => SessionRow.parse(r));
  }

  /**
   * Sessions this node left 'live' when it went away (crash, kill -9): marked interrupted at its
   * next start. Other nodes' live sessions are theirs (a lost node's are the reaper's).
   */
  async markInterrupted(at: number): Promise<SessionRecord[]> {
    return this.sql.transaction(async () => {
      const mine = "state = 'live' AND (node_id = ? OR node_id IS NULL)";
      const stale = (await this.sql.all(`SELECT * FROM sessions WHERE ${mine} ORDER BY started_at`, [this.nodeId])).map((r) => SessionRow.parse(r));
      const reason = 'gateway stopped without closing it';
      await this.sql.run(`UPDATE sessions SET state = 'interrupted', ended_at = ?, end_reason = ? WHERE ${mine}`, [at, reason, this.nodeId]);
      return stale;
    });
  }

  /** The live sessions of a node that is gone, marked interrupted ('node lost'); returns them. */
  async markNodeLost(nodeId: string, at: number): Promise<SessionRecord[]> {
    return this.sql.transaction(async () => {
      const theirs = "state = 'live' AND node_id = ?";
      const lost = (await this.sql.all(`SELECT * FROM sessions WHERE ${theirs} ORDER BY started_at`, [nodeId])).map((r) => SessionRow.parse(r));
      await this.sql.run(`UPDATE sessions SET state = 'interrupted', ended_at = ?, end_reason = 'node lost' WHERE ${theirs}`, [at, nodeId]);
      return lost;
    });
  }
}
