import type { Sql } from './sql.js';

/**
 * pair_servers: which node holds each (role, user) pair's live tmux server. tmux servers are
 * node-local, so a pair has at most one owner; a claim is an INSERT that does nothing when the
 * pair is held, followed (then only) by a read of whoever holds it. The database's primary key decides a
 * race between nodes: every claimant reads the same owner.
 */
export class PairServerRepo {
  constructor(private readonly sql: Sql) {}

  /** Claims the pair for `nodeId` unless another node holds it; returns the owner (null only if it was released meanwhile). */
  async claim(roleId: number, userId: number, nodeId: string, now: number): Promise<string | null> {
    // The row comes back only if this insert made it: then the claim is ours without a read.
    const sql = 'INSERT INTO pair_servers (role_id, user_id, node_id, since) VALUES (?, ?, ?, ?) ON CONFLICT (role_id, user_id) DO NOTHING RETURNING node_id';
    const made = (await this.sql.get(sql, [roleId, userId, nodeId, now])) as { node_id: string } | undefined;
    return made ? made.node_id : this.owner(roleId, userId);
  }

  async owner(roleId: number, userId: number): Promise<string | null> {
    const r = (await this.sql.get('SELECT node_id FROM pair_servers WHERE role_id = ? AND user_id = ?', [roleId, userId])) as { node_id: string } | undefined;
    return r?.node_id ?? null;
  }

  /**
   * Takes the pair from a node that is gone: its claim is deleted only if it still holds it, then
   * the pair is claimed again. Of several nodes doing this at once, one gets it; all read the same owner.
   */
  async takeOver(roleId: number, userId: number, from: string, nodeId: string, now: number): Promise<string | null> {
    await this.sql.run('DELETE FROM pair_servers WHERE role_id = ? AND user_id = ? AND node_id = ?', [roleId, userId, from]);
    return this.claim(roleId, userId, nodeId, now);
  }

  /** Gives up a node's claim on a pair (its server ended); another node's claim is never touched. */
  async release(roleId: number, userId: number, nodeId: string): Promise<boolean> {
    return (await this.sql.run('DELETE FROM pair_servers WHERE role_id = ? AND user_id = ? AND node_id = ?', [roleId, userId, nodeId])) === 1;
  }

  /** Every pair a node holds. */
  async ofNode(nodeId: string): Promise<{ roleId: number; userId: number }[]> {
    const sql = 'SELECT role_id, user_id FROM pair_servers WHERE node_id = ? ORDER BY role_id, user_id';
    const rows = (await this.sql.all(sql, [nodeId])) as { role_id: number; user_id: number }[];
    return rows.map((r) => ({ roleId: r.role_id, userId: r.user_id }));
  }

  /** Drops every claim of a node that is gone; returns how many. */
  async releaseAll(nodeId: string): Promise<number> {
    return this.sql.run('DELETE FROM pair_servers WHERE node_id = ?', [nodeId]);
  }
}
