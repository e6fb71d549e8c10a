import type { Sql } from './sql.js';

/** One evidence_sink_status row: a node's view of one recording sink. */
export interface SinkStatusRow {
  sink: string;
  node: string;
  destination: string;
  on_failure: string;
  lag_bytes: number;
  lag_chunks: number;
  max_lag_bytes: number;
  shipped_chunks: number;
  connected: number;
  last_error: string | null;
  last_error_at: number | null;
  last_shipped_at: number | null;
  append_only: string | null;
  /** The S3 sink's catalogs this node failed to write, and read that were not catalogs, since it started (0 for PostgreSQL). */
  catalog_failures: number;
  catalog_error: string | null;
  catalog_error_at: number | null;
  unreadable_catalogs: number;
  updated_at: number;
}

const STATUS_COLUMNS = [
  'destination',
  'on_failure',
  'lag_bytes',
  'lag_chunks',
  'max_lag_bytes',
  'shipped_chunks',
  'connected',
  'last_error',
  'last_error_at',
  'last_shipped_at',
  'append_only',
  'catalog_failures',
  'catalog_error',
  'catalog_error_at',
  'unreadable_catalogs',
  'updated_at',
] as const;

/**
 * The local side of recording shipping (both engines): each node's status per sink, for the
 * compliance report and other nodes, and which recordings each sink holds completely, so that a
 * restarted node ships what the others lack from its files.
 */
export class EvidenceSinkRepo {
  constructor(private readonly sql: Sql) {}

  /** Writes this node's status for `sink` (one row per sink and node). */
  async report(r: Omit<SinkStatusRow, 'updated_at'>, now: number): Promise<void> {
    const values = [...STATUS_COLUMNS.map((c) => (c === 'updated_at' ? now : r[c])), r.sink, r.node];
    const set = STATUS_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ');
    await this.sql.run(
      `INSERT INTO evidence_sink_status (${STATUS_COLUMNS.join(', ')}, sink, node) VALUES (${values.map(() => '?').join(', ')}) ` +
        `ON CONFLICT (sink, node) DO UPDATE SET ${set}`,
      values,
    );
  }

  /** Every node's status, newest first. */
  async statuses(): Promise<SinkStatusRow[]> {
    return (await this.sql.all('SELECT * FROM evidence_sink_status ORDER BY updated_at DESC')) as SinkStatusRow[];
  }

  /** A recording's shipping to `sink` began (idempotent). */
  async started(sessionId: string, sink: string, now: number): Promise<void> {
    await this.sql.run(
      'INSERT INTO recording_offsite (session_id, sink, complete, started_at, updated_at) VALUES (?, ?, 0, ?, ?) ON CONFLICT (session_id, sink) DO NOTHING',
      [sessionId, sink, now, now],
    );
  }

  /** `sink` holds every record of the recording. */
  async completed(sessionId: string, sink: string, now: number): Promise<void> {
    await this.sql.run(
      'INSERT INTO recording_offsite (session_id, sink, complete, started_at, updated_at) VALUES (?, ?, 1, ?, ?) ' +
        'ON CONFLICT (session_id, sink) DO UPDATE SET complete = 1, updated_at = excluded.updated_at',
      [sessionId, sink, now, now],
    );
  }

  /** Recordings whose shipping to `sink` began but did not finish, oldest first, with their local file. */
  async incomplete(sink: string, limit = 10_000): Promise<{ session_id: string; file: string; state: string }[]> {
    return (await this.sql.all(
      'SELECT o.session_id, r.file, r.state FROM recording_offsite o JOIN recordings r ON r.session_id = o.session_id ' +
        'WHERE o.sink = ? AND o.complete = 0 ORDER BY o.started_at LIMIT ?',
      [sink, limit],
    )) as { session_id: string; file: string; state: string }[];
  }
}
