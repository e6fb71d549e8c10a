import type { Sql } from './sql.js';

/** One row of evidence_recording_chunks: a record of a recording file, exactly as written locally. */
export interface OffsiteRecordRow {
  session_id: string;
  kind: 'header' | 'chunk' | 'trailer';
  seq: number;
  record: Buffer;
  chain_hash: string;
  node: string;
  shipped_at: number;
}

/** One row of evidence_anchors: a signed chain head. */
export interface AnchorRow {
  id: number;
  kind: 'audit' | 'recording';
  subject: string;
  position: number;
  head: string;
  ts: number;
  signature: Buffer;
  node: string;
}

/** The columns of one record insert, in order. */
const RECORD_COLUMNS = ['session_id', 'kind', 'seq', 'record', 'chain_hash', 'node', 'shipped_at'] as const;
/** PostgreSQL takes at most 65535 parameters a statement. */
const MAX_ROWS = Math.floor(65_535 / RECORD_COLUMNS.length);

/**
 * The PostgreSQL sink's tables (migration 0011), written through a role that may INSERT and
 * SELECT only: inserts never update (ON CONFLICT DO NOTHING), and a resend whose bytes differ
 * from what the table holds is reported, never written over.
 */
export class OffsiteEvidenceRepo {
  constructor(private readonly sql: Sql) {}

  /**
   * Inserts records (one statement per 9362 rows; several in a transaction); returns the keys of
   * those the table already held with different bytes (resends of equal bytes are fine).
   */
  async insertRecords(rows: readonly Omit<OffsiteRecordRow, 'shipped_at'>[], now: number): Promise<{ session_id: string; kind: string; seq: number }[]> {
    const conflicts: { session_id: string; kind: string; seq: number }[] = [];
    const insert = async (part: readonly Omit<OffsiteRecordRow, 'shipped_at'>[]): Promise<void> => {
      const tuples = part.map(() => `(${RECORD_COLUMNS.map(() => '?').join(', ')})`).join(', ');
      const params = part.flatMap((r) => [r.session_id, r.kind, r.seq, r.record, r.chain_hash, r.node, now]);
      const n = await this.sql.run(
        `INSERT INTO evidence_recording_chunks (${RECORD_COLUMNS.join(', ')}) VALUES ${tuples} ON CONFLICT (session_id, kind, seq) DO NOTHING`,
        params,
      );
      if (n === part.length) return;
      // Some were there already: a resend (equal bytes, fine) or a conflict (other bytes,
      // reported). One query reads back what the table holds for the whole part: a round trip
      // per record here cost ~0.4 ms of gateway CPU each (bench/README.md, evidence profile).
      const keys = part.map(() => '(?, ?, ?)').join(', ');
      const heldRows = (await this.sql.all(
        `SELECT session_id, kind, seq, record FROM evidence_recording_chunks WHERE (session_id, kind, seq) IN (${keys})`,
        part.flatMap((r) => [r.session_id, r.kind, r.seq]),
      )) as { session_id: string; kind: string; seq: number; record: Buffer }[];
      const held = new Map(heldRows.map((h) => [`${h.session_id}\0${h.kind}\0${h.seq}`, h.record]));
      for (const r of part) {
        const bytes = held.get(`${r.session_id}\0${r.kind}\0${r.seq}`);
        if (!bytes || !bytes.equals(r.record)) conflicts.push({ session_id: r.session_id, kind: r.kind, seq: r.seq });
      }
    };
    // One statement is atomic on its own: a transaction (two more round trips) only for several.
    if (rows.length <= MAX_ROWS) await insert(rows);
    else
      await this.sql.transaction(async () => {
        for (let i = 0; i < rows.length; i += MAX_ROWS) await insert(rows.slice(i, i + MAX_ROWS));
      });
    return conflicts;
  }

  /** What the sink holds of one recording: header, chunk sequence numbers, trailer. */
  async progress(sessionId: string): Promise<{ kind: string; seq: number }[]> {
    return (await this.sql.all('SELECT kind, seq FROM evidence_recording_chunks WHERE session_id = ? ORDER BY kind, seq', [sessionId])) as {
      kind: string;
      seq: number;
    }[];
  }

  /** Every record of one recording: header, chunks by seq, trailer. */
  async records(sessionId: string): Promise<OffsiteRecordRow[]> {
    return (await this.sql.all(
      "SELECT * FROM evidence_recording_chunks WHERE session_id = ? ORDER BY CASE kind WHEN 'header' THEN 0 WHEN 'chunk' THEN 1 ELSE 2 END, seq",
      [sessionId],
    )) as OffsiteRecordRow[];
  }

  /** Every session the sink holds records of. */
  async sessions(): Promise<string[]> {
    return ((await this.sql.all('SELECT DISTINCT session_id FROM evidence_recording_chunks ORDER BY session_id')) as { session_id: string }[]).map(
      (r) => r.session_id,
    );
  }

  async insertAnchors(rows: readonly Omit<AnchorRow, 'id'>[]): Promise<void> {
    await this.sql.transaction(async () => {
      for (const a of rows) {
        await this.sql.run('INSERT INTO evidence_anchors (kind, subject, position, head, ts, signature, node) VALUES (?, ?, ?, ?, ?, ?, ?)', [
          a.kind,
          a.subject,
          a.position,
          a.head,
          a.ts,
          a.signature,
          a.node,
        ]);
      }
    });
  }

  /** Anchors of one kind (and subject), by position then time. */
  async anchors(kind: 'audit' | 'recording', subject?: string): Promise<AnchorRow[]> {
    return (await this.sql.all(
      `SELECT * FROM evidence_anchors WHERE kind = ? ${subject !== undefined ? 'AND subject = ?' : ''} ORDER BY subject, position, ts`,
      subject !== undefined ? [kind, subject] : [kind],
    )) as AnchorRow[];
  }

  /**
   * What the connected role may do to the sink's tables beyond INSERT and SELECT (UPDATE,
   * DELETE, TRUNCATE, or owning them), and whether the tables exist.
   */
  async rights(): Promise<{ missing: string[]; excess: string[] }> {
    const missing: string[] = [];
    const excess: string[] = [];
    for (const t of ['evidence_recording_chunks', 'evidence_anchors']) {
      const r = (await this.sql.get(
        'SELECT c.oid IS NOT NULL AS present, ' +
          "CASE WHEN c.oid IS NULL THEN false ELSE pg_has_role(current_user, c.relowner, 'USAGE') END AS owner, " +
          "CASE WHEN c.oid IS NULL THEN false ELSE has_table_privilege(c.oid, 'UPDATE') END AS upd, " +
          "CASE WHEN c.oid IS NULL THEN false ELSE has_table_privilege(c.oid, 'DELETE') END AS del, " +
          "CASE WHEN c.oid IS NULL THEN false ELSE has_table_privilege(c.oid, 'TRUNCATE') END AS trunc, " +
          "CASE WHEN c.oid IS NULL THEN false ELSE has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'SELECT') END AS ins " +
          'FROM (SELECT to_regclass(?::text) AS oid) x LEFT JOIN pg_class c ON c.oid = x.oid',
        [t],
      )) as { present: boolean; owner: boolean; upd: boolean; del: boolean; trunc: boolean; ins: boolean };
      if (!r.present || !r.ins) {
        missing.push(r.present ? `${t} (INSERT, SELECT)` : t);
        continue;
      }
      const can = [r.owner && 'owns', r.upd && 'UPDATE', r.del && 'DELETE', r.trunc && 'TRUNCATE'].filter(Boolean);
      if (can.length) excess.push(`${t}: ${can.join(', ')}`);
    }
    return { missing, excess };
  }
}
