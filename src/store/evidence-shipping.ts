import type { Sql } from './sql.js';

/** One evidence_shipping row: a sink's cursor, its lease and the holder's view of the collector. */
export interface ShippingRow {
  target: string;
  destination: string;
  shipped_id: number;
  holder: string | null;
  lease_until: number;
  connected: number;
  unreachable_since: number | null;
  last_error: string | null;
  updated_at: number;
}

/** What the holder reports about its collector at each renewal. */
export interface ShippingStatus {
  connected: boolean;
  unreachableSince: number | null;
  lastError: string | null;
}

/** The outcome of a lease attempt: whether `holder` now ships, and the row as it stands. */
export interface LeaseResult {
  held: boolean;
  row: ShippingRow;
}

/**
 * evidence_shipping: one row per off-box sink. The cursor moves and the lease changes hands only
 * in a transaction holding the sink's lock (`<target>-shipper`), so with several nodes on one
 * PostgreSQL store exactly one node holds a live lease, and only the holder moves the cursor.
 */
export class EvidenceShippingRepo {
  constructor(private readonly sql: Sql) {}

  /**
   * Takes the lease for `holder` if it is free, lapsed or already `holder`'s, until now + ttlMs,
   * and stores `status` (the holder's view of the collector) with it; otherwise leaves the row as
   * it is. Creates the row, with the cursor at 0, on first use.
   */
  async lease(target: string, destination: string, holder: string, now: number, ttlMs: number, status: ShippingStatus | null): Promise<LeaseResult> {
    return this.sql.transaction(async () => {
      await this.sql.lock(`${target}-shipper`);
      const row = await this.get(target);
      if (row && row.holder !== holder && row.lease_until > now) return { held: false, row };
      const s = status ?? { connected: false, unreachableSince: null, lastError: row?.holder === holder ? row.last_error : null };
      const values = [destination, holder, now + ttlMs, s.connected ? 1 : 0, s.unreachableSince, s.lastError, now, target];
      const columns = 'destination, holder, lease_until, connected, unreachable_since, last_error, updated_at';
      if (row) {
        const set = columns
          .split(', ')
          .map((c) => `${c} = ?`)
          .join(', ');
        await this.sql.run(`UPDATE evidence_shipping SET ${set} WHERE target = ?`, values);
      } else {
        await this.sql.run(`INSERT INTO evidence_shipping (${columns}, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, values);
      }
      return { held: true, row: (await this.get(target))! };
    });
  }

  /** Moves the cursor to `id` if `holder` still holds a live lease; false when it does not (nothing changed). */
  async saveCursor(target: string, holder: string, id: number, now: number): Promise<boolean> {
    return this.sql.transaction(async () => {
      await this.sql.lock(`${target}-shipper`);
      const n = await this.sql.run('UPDATE evidence_shipping SET shipped_id = ?, updated_at = ? WHERE target = ? AND holder = ? AND lease_until > ?', [
        id,
        now,
        target,
        holder,
        now,
      ]);
      return n === 1;
    });
  }

  /** Gives up `holder`'s lease at once (another node may take it at its next attempt), with its last status. */
  async release(target: string, holder: string, now: number, status: ShippingStatus): Promise<void> {
    await this.sql.transaction(async () => {
      await this.sql.lock(`${target}-shipper`);
      await this.sql.run(
        'UPDATE evidence_shipping SET lease_until = 0, connected = ?, unreachable_since = ?, last_error = ?, updated_at = ? WHERE target = ? AND holder = ?',
        [status.connected ? 1 : 0, status.unreachableSince, status.lastError, now, target, holder],
      );
    });
  }

  /** The sink's row, or null before its first lease. */
  async get(target: string): Promise<ShippingRow | null> {
    return ((await this.sql.get('SELECT * FROM evidence_shipping WHERE target = ?', [target])) as ShippingRow | undefined) ?? null;
  }
}
