import type { Sql } from './sql.js';

/** A kill request the CLI left for the gateway that runs the session. */
export interface KillRequest {
  sessionId: string;
  reason: string;
  requestedBy: string;
}

/** session_kills: how `tmuxgate sessions kill` reaches a running gateway (which polls). */
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

  /** Requests not yet carried out. */
  async pending(): Promise<KillRequest[]> {
    const rows = (await this.sql.all('SELECT session_id, reason, requested_by FROM session_kills WHERE done_at IS NULL')) as {
      session_id: string;
      reason: string;
      requested_by: string;
    }[];
    return rows.map((r) => ({ sessionId: r.session_id, reason: r.reason, requestedBy: r.requested_by }));
  }

  /** Marks a request carried out. */
  async done(sessionId: string, now: number): Promise<void> {
    await this.sql.run('UPDATE session_kills SET done_at = ? WHERE session_id = ?', [now, sessionId]);
  }
}
