import type { AuditRow } from '../store/audit-events.js';

/** Where the rows come from: the audit table, which is also the durable buffer. */
export interface AuditRowSource {
  /** Rows with id > `id`, oldest first, at most `limit`. */
  after(id: number, limit: number): Promise<AuditRow[]>;
  /** The newest row's id (0 for an empty log). */
  newest(): Promise<number>;
}

/** The id of the last row known to have reached the collector, kept across restarts. */
export interface ShipCursor {
  load(): Promise<number>;
  save(id: number): Promise<void>;
}

/** What the lease holder reports about its collector (stored with the lease, read by the other nodes and the compliance report). */
export interface CollectorStatus {
  connected: boolean;
  /** Since when the collector has not been reachable; null while connected or not yet tried. */
  unreachableSince: number | null;
  lastError: string | null;
}

/**
 * The shipping lease in the store: exactly one holder at a time, with the cursor beside it. The
 * cursor only moves for the holder of a live lease.
 */
export interface ShipLease {
  /** Takes or renews the lease until now + ttlMs; the stored cursor, and who holds the lease now. */
  acquire(holder: string, now: number, ttlMs: number, status: CollectorStatus | null): Promise<{ held: boolean; cursor: number; holder: string | null }>;
  /** Moves the cursor; false when `holder` no longer holds a live lease. */
  saveCursor(holder: string, id: number, now: number): Promise<boolean>;
  /** Lets another node take over at once. */
  release(holder: string, now: number, status: CollectorStatus): Promise<void>;
}
