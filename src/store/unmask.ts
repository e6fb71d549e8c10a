import { z } from 'zod';
import type { Sql } from './sql.js';

const RequestRow = z.object({
  id: z.number(),
  session_id: z.string(),
  requested_by: z.string(),
  reason: z.string(),
  duration_ms: z.number(),
  requested_at: z.number(),
  /** A pending request lapses at this time. */
  expires_at: z.number(),
  state: z.enum(['pending', 'approved', 'denied']),
  decided_at: z.number().nullable(),
  decided_by: z.string().nullable(),
  deny_reason: z.string().nullable(),
});
export type UnmaskRequestRow = z.infer<typeof RequestRow>;

const GrantRow = z.object({
  id: z.number(),
  request_id: z.number(),
  session_id: z.string(),
  /** The requester: the only actor the grant is for. */
  grantee: z.string(),
  reason: z.string(),
  approved_by: z.string(),
  approved_at: z.number(),
  expires_at: z.number(),
  revoked_at: z.number().nullable(),
  revoked_by: z.string().nullable(),
  revoke_reason: z.string().nullable(),
});
export type UnmaskGrantRow = z.infer<typeof GrantRow>;

export interface NewUnmaskRequest {
  sessionId: string;
  requestedBy: string;
  reason: string;
  durationMs: number;
  now: number;
  expiresAt: number;
}

/**
 * Four-eyes unmasking (issue 15): requests to see one session's recording or live view without
 * redaction, and the time-limited grants that approving one makes. The rules (who may approve,
 * bounds, audit) are in services/unmask.ts and admin/unmask.ts; this is storage only.
 */
export class UnmaskRepo {
  constructor(private readonly sql: Sql) {}

  /** Stores a pending request; returns its id. */
  async request(r: NewUnmaskRequest): Promise<number> {
    const row = (await this.sql.get(
      'INSERT INTO unmask_requests (session_id, requested_by, reason, duration_ms, requested_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
      [r.sessionId, r.requestedBy, r.reason, r.durationMs, r.now, r.expiresAt],
    )) as { id: number };
    return row.id;
  }

  async getRequest(id: number): Promise<UnmaskRequestRow | null> {
    const r = await this.sql.get('SELECT * FROM unmask_requests WHERE id = ?', [id]);
    return r === undefined ? null : RequestRow.parse(r);
  }

  /**
   * Moves a request from pending to `state` if it is still pending and has not lapsed at `now`;
   * whether it did. One statement, so two admins deciding at once cannot both succeed.
   */
  async decide(id: number, state: 'approved' | 'denied', by: string, now: number, denyReason: string | null = null): Promise<boolean> {
    const n = await this.sql.run(
      "UPDATE unmask_requests SET state = ?, decided_at = ?, decided_by = ?, deny_reason = ? WHERE id = ? AND state = 'pending' AND expires_at > ?",
      [state, now, by, denyReason, id, now],
    );
    return n === 1;
  }

  /** Stores the grant made by approving request `requestId`; returns its id. */
  async grant(g: {
    requestId: number;
    sessionId: string;
    grantee: string;
    reason: string;
    approvedBy: string;
    now: number;
    expiresAt: number;
  }): Promise<number> {
    const row = (await this.sql.get(
      'INSERT INTO unmask_grants (request_id, session_id, grantee, reason, approved_by, approved_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
      [g.requestId, g.sessionId, g.grantee, g.reason, g.approvedBy, g.now, g.expiresAt],
    )) as { id: number };
    return row.id;
  }

  async getGrant(id: number): Promise<UnmaskGrantRow | null> {
    const r = await this.sql.get('SELECT * FROM unmask_grants WHERE id = ?', [id]);
    return r === undefined ? null : GrantRow.parse(r);
  }

  /** Ends a grant now if it is neither revoked nor expired at `now`; whether it did. */
  async revoke(id: number, by: string, reason: string | null, now: number): Promise<boolean> {
    const n = await this.sql.run(
      'UPDATE unmask_grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?',
      [now, by, reason, id, now],
    );
    return n === 1;
  }

  /** Grants on one session in force at `now` (not revoked, not expired), newest first. */
  async grantsInForce(sessionId: string, now: number): Promise<UnmaskGrantRow[]> {
    const rows = await this.sql.all('SELECT * FROM unmask_grants WHERE session_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY id DESC', [
      sessionId,
      now,
    ]);
    return rows.map((r) => GrantRow.parse(r));
  }

  /** Every request (of one session), oldest first. */
  async requests(sessionId?: string): Promise<UnmaskRequestRow[]> {
    const rows =
      sessionId === undefined
        ? await this.sql.all('SELECT * FROM unmask_requests ORDER BY id')
        : await this.sql.all('SELECT * FROM unmask_requests WHERE session_id = ? ORDER BY id', [sessionId]);
    return rows.map((r) => RequestRow.parse(r));
  }

  /** Every grant (of one session), oldest first. */
  async grants(sessionId?: string): Promise<UnmaskGrantRow[]> {
    const rows =
      sessionId === undefined
        ? await this.sql.all('SELECT * FROM unmask_grants ORDER BY id')
        : await this.sql.all('SELECT * FROM unmask_grants WHERE session_id = ? ORDER BY id', [sessionId]);
    return rows.map((r) => GrantRow.parse(r));
  }
}
