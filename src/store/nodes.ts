import { z } from 'zod';
import type { Sql } from './sql.js';

const NodeRow = z.object({
  id: z.string(),
  link_address: z.string().nullable(),
  host: z.string(),
  pid: z.number(),
  version: z.string(),
  started_at: z.number(),
  heartbeat_at: z.number(),
  stopped_at: z.number().nullable(),
  lost_at: z.number().nullable(),
});
export type NodeRecord = z.infer<typeof NodeRow>;

/** A node as `nodes list` shows it: its row and how many live sessions talk to a client through it. */
export type NodeSummary = NodeRecord & { live_sessions: number };

/** Who a node is: what registration writes and heartbeats are matched against. */
export interface NodeIdentity {
  id: string;
  host: string;
  pid: number;
}

/**
 * The gateway nodes sharing this store: one row per node id, with the node's link address, the
 * machine and process it runs as, and its heartbeat. Rows stay after a node stops (stopped_at)
 * or is declared lost (lost_at), so `nodes list` shows them and a restart reuses the id.
 */
export class NodeRepo {
  constructor(private readonly sql: Sql) {}

  /**
   * Registers (or re-registers) a node, unless the same id is in use: its row has a heartbeat
   * newer than `freshSince` from another process (`isOther` decides: another machine, or a pid
   * that still runs here), and it was not stopped. Returns the row in the way, or null when the
   * id is now this node's. Serialised per id, so two processes starting with one id cannot both win.
   */
  async register(
    n: NodeIdentity & { linkAddress: string | null; version: string; now: number; freshSince: number },
    isOther: (row: NodeRecord) => boolean,
  ): Promise<NodeRecord | null> {
    return this.sql.transaction(async () => {
      await this.sql.lock(`node:${n.id}`);
      const row = await this.get(n.id);
      if (row && row.stopped_at === null && row.heartbeat_at >= n.freshSince && isOther(row)) return row;
      await this.sql.run(
        `INSERT INTO nodes (id, link_address, host, pid, version, started_at, heartbeat_at, stopped_at, lost_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)
         ON CONFLICT(id) DO UPDATE SET link_address = excluded.link_address, host = excluded.host, pid = excluded.pid, version = excluded.version,
           started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL, lost_at = NULL`,
        [n.id, n.linkAddress, n.host, n.pid, n.version, n.now, n.now],
      );
      return null;
    });
  }

  /**
   * A heartbeat: 'ok', 'rejoined' (another node had declared this one lost: its sessions were
   * marked interrupted meanwhile), or 'replaced' (the row now belongs to another process).
   */
  async heartbeat(n: NodeIdentity, now: number): Promise<'ok' | 'rejoined' | 'replaced'> {
    return this.sql.transaction(async () => {
      const row = await this.get(n.id);
      if (!row || row.pid !== n.pid || row.host !== n.host) return 'replaced';
      await this.sql.run('UPDATE nodes SET heartbeat_at = ?, lost_at = NULL WHERE id = ? AND pid = ? AND host = ?', [now, n.id, n.pid, n.host]);
      return row.lost_at === null ? 'ok' : 'rejoined';
    });
  }

  /** A clean stop: the node says it is gone, so no reaper has to wait for its heartbeat to age. */
  async stopped(n: NodeIdentity, now: number): Promise<void> {
    await this.sql.run('UPDATE nodes SET stopped_at = ? WHERE id = ? AND pid = ? AND host = ?', [now, n.id, n.pid, n.host]);
  }

  async get(id: string): Promise<NodeRecord | null> {
    const r = await this.sql.get('SELECT * FROM nodes WHERE id = ?', [id]);
    return r ? NodeRow.parse(r) : null;
  }

  /** Every node, with its count of live sessions, by id. */
  async list(): Promise<NodeSummary[]> {
    const rows = await this.sql.all(
      `SELECT n.*, (SELECT COUNT(*) FROM sessions s WHERE s.state = 'live' AND s.node_id = n.id) AS live_sessions FROM nodes n ORDER BY n.id`,
    );
    return rows.map((r) => ({ ...NodeRow.parse(r), live_sessions: Number((r as { live_sessions: unknown }).live_sessions) }));
  }

  /** Nodes whose heartbeat is older than `staleBefore`, neither stopped nor already declared lost, other than `self`. */
  async stale(staleBefore: number, self: string): Promise<NodeRecord[]> {
    const rows = await this.sql.all('SELECT * FROM nodes WHERE stopped_at IS NULL AND lost_at IS NULL AND heartbeat_at < ? AND id <> ? ORDER BY id', [
      staleBefore,
      self,
    ]);
    return rows.map((r) => NodeRow.parse(r));
  }

  /** Declares a node lost, once: false if it beat again or another reaper was first. */
  async markLost(id: string, heartbeatAt: number, now: number): Promise<boolean> {
    const sql = 'UPDATE nodes SET lost_at = ? WHERE id = ? AND heartbeat_at = ? AND lost_at IS NULL AND stopped_at IS NULL';
    return (await this.sql.run(sql, [now, id, heartbeatAt])) === 1;
  }
}
