import { z } from 'zod';
import type { Db } from './db.js';

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
}

/** Shell sessions: one row per SSH shell, live until it ends. */
export class SessionRepo {
  constructor(private readonly db: Db) {}

  start(s: NewSession): void {
    this.db
      .prepare(
        `INSERT INTO sessions (id, user_id, role_id, user_name, role_name, remote_addr, term, cols, rows, state, started_at, gateway_pid)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'live', ?, ?)`,
      )
      .run(s.id, s.userId, s.roleId, s.userName, s.roleName, s.remoteAddr, s.term, s.cols, s.rows, s.startedAt, process.pid);
  }

  end(id: string, reason: string, at: number): void {
    this.db.prepare("UPDATE sessions SET state = 'closed', ended_at = ?, end_reason = ? WHERE id = ? AND state = 'live'").run(at, reason, id);
  }

  get(id: string): SessionRecord | null {
    const r = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id);
    return r ? SessionRow.parse(r) : null;
  }

  list(filter: { live?: boolean; user?: string; role?: string; since?: number; until?: number } = {}): SessionRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.live) where.push("state = 'live'");
    if (filter.user) (where.push('user_name = ?'), args.push(filter.user));
    if (filter.role) (where.push('role_name = ?'), args.push(filter.role));
    if (filter.since !== undefined) (where.push('started_at >= ?'), args.push(filter.since));
    if (filter.until !== undefined) (where.push('started_at <= ?'), args.push(filter.until));
    const sql = `SELECT * FROM sessions ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY started_at`;
    return this.db.prepare(sql).all(...args).map((r) => SessionRow.parse(r));
  }

  /** Sessions left 'live' by a gateway that is gone (crash, kill -9): mark them interrupted. */
  markInterrupted(at: number): SessionRecord[] {
    const stale = this.list({ live: true });
    this.db.prepare("UPDATE sessions SET state = 'interrupted', ended_at = ?, end_reason = 'gateway stopped without closing it' WHERE state = 'live'").run(at);
    return stale;
  }
}
