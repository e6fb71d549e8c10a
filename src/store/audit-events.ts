import type { Sql, SqlValue } from './sql.js';

/** One audit_events row as stored. */
export interface AuditRow {
  id: number;
  ts: number;
  type: string;
  actor: string;
  data: string;
  prev_hash: string;
  hash: string;
}

/** One signed checkpoint of the chain head. */
export interface CheckpointRow {
  id: number;
  audit_id: number;
  head: string;
  ts: number;
  signature: Buffer;
}

/** The chain head: the last row's id and hash. */
const HEAD = 'SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1';

/**
 * PostgreSQL: one statement that appends after the head this repository last wrote, if that row
 * is still the head (its id and its hash), and in any case returns the head it saw. The insert
 * takes its id and previous hash from the head read in the same statement, so the row it adds is
 * exactly what the head read and a separate insert would add; a hint that is no longer the head
 * (another node appended, or the row it names was rolled back) inserts nothing.
 */
const APPEND_AFTER =
  'WITH head AS (' +
  HEAD +
  '), ins AS (INSERT INTO audit_events (id, ts, type, actor, data, prev_hash, hash) ' +
  'SELECT head.id + 1, ?::bigint, ?::text, ?::text, ?::text, head.hash, ?::text FROM head WHERE head.id = ?::bigint AND head.hash = ?::text ' +
  'ON CONFLICT (id) DO NOTHING RETURNING id) ' +
  'SELECT head.id, head.hash, (SELECT count(*) FROM ins) AS inserted FROM head';

/**
 * The audit_events and audit_checkpoints tables. Hashing and signing are the caller's
 * (audit/log.ts); this module stores rows and hands them back in id order.
 */
export class AuditEventRepo {
  /**
   * PostgreSQL: the last row this repository inserted, which is the head until another node or
   * process appends. Only a guess: the next append checks it in the database (APPEND_AFTER).
   */
  private last: { id: number; hash: string } | null = null;

  constructor(private readonly sql: Sql) {}

  /**
   * Appends one row after the current head without forking the chain, which holds because a
   * row's id is its predecessor's plus one and ids are unique: two appends that read the same
   * head cannot both insert. `hashOf` gets the new row's id and the previous row's hash
   * (`genesis` for the first row).
   *
   * PostgreSQL first tries the head read and an insert that does nothing if the id was taken
   * meanwhile: two round trips, each committed on its own (a transaction holding the chain lock
   * is BEGIN with the lock and the head, the insert, then COMMIT: three). When this repository
   * wrote the last row it knows of, the head read and the insert go as one statement that
   * inserts only if that row is still the head: one round trip (a session's start follows its
   * login's row on the same node), and when another node appended meanwhile, the head it returns
   * serves the insert: two, as before. Only an append that lost that race to another node or
   * process takes the lock, and under it still yields to an append that did not wait for it.
   * SQLite runs the locked transaction at once (its statements cost microseconds, and a write
   * transaction excludes the others).
   */
  async append(e: { ts: number; type: string; actor: string; data: string }, genesis: string, hashOf: (id: number, prevHash: string) => string): Promise<void> {
    const insert = async (prev: { id: number; hash: string } | null, onConflict: string): Promise<number> => {
      const id = (prev?.id ?? 0) + 1;
      const prevHash = prev?.hash ?? genesis;
      const hash = hashOf(id, prevHash);
      const n = await this.sql.run(`INSERT INTO audit_events (id, ts, type, actor, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)${onConflict}`, [
        id,
        e.ts,
        e.type,
        e.actor,
        e.data,
        prevHash,
        hash,
      ]);
      if (n === 1) this.last = { id, hash };
      return n;
    };
    const unlessTaken = ' ON CONFLICT (id) DO NOTHING';
    if (this.sql.engine === 'postgres') {
      let head: { id: number; hash: string } | null;
      const last = this.last;
      if (last) {
        const hash = hashOf(last.id + 1, last.hash);
        const r = (await this.sql.get(APPEND_AFTER, [e.ts, e.type, e.actor, e.data, hash, last.id, last.hash])) as
          { id: number; hash: string; inserted: number } | undefined;
        if (r && r.inserted === 1) {
          this.last = { id: last.id + 1, hash };
          return;
        }
        head = r ? { id: r.id, hash: r.hash } : null;
      } else head = await this.head();
      if ((await insert(head, unlessTaken)) === 1) return;
    }
    await this.sql.transaction(async () => {
      // The lock and the head read together (one round trip on PostgreSQL): the head read once
      // the lock is held is the last row its previous holder committed. An append that does not
      // wait for the lock may still take the id meanwhile: then the head is read again (each
      // statement sees what was committed before it), still under the lock. Every retry means
      // another append landed, so appends as a whole always progress; the bound is for a bug.
      let prev = ((await this.sql.lockAndGet('audit-chain', HEAD)) as { id: number; hash: string } | undefined) ?? null;
      for (let tries = 1; (await insert(prev, unlessTaken)) === 0; tries++) {
        if (tries >= 1000) throw new Error('audit append: the chain head moved 1000 times under the chain lock');
        prev = await this.head();
      }
    });
  }

  /** The last row's id and hash, or null for an empty log. */
  async head(): Promise<{ id: number; hash: string } | null> {
    return ((await this.sql.get(HEAD)) as { id: number; hash: string } | undefined) ?? null;
  }

  /** The newest `limit` rows after `sinceId` (of one type, if given), oldest first. */
  async recent(opts: { type?: string; limit?: number; sinceId?: number } = {}): Promise<AuditRow[]> {
    return (await this.sql.all(
      `SELECT * FROM (SELECT * FROM audit_events WHERE id > ? ${opts.type ? 'AND type = ?' : ''} ORDER BY id DESC LIMIT ?) AS newest ORDER BY id`,
      [...[opts.sinceId ?? 0, ...(opts.type ? [opts.type] : []), opts.limit ?? 1_000_000]],
    )) as AuditRow[];
  }

  /** The oldest `limit` rows after row `id`, in id order (what the off-box shippers read). */
  async after(id: number, limit: number): Promise<AuditRow[]> {
    return (await this.sql.all('SELECT * FROM audit_events WHERE id > ? ORDER BY id LIMIT ?', [id, limit])) as AuditRow[];
  }

  /** Every row, in id order, a page at a time (memory stays flat however long the log). */
  all(): AsyncIterable<AuditRow> {
    return this.pages('', []);
  }

  /** Rows with `since <= ts <= until`, in id order, a page at a time. */
  between(since: number, until: number): AsyncIterable<AuditRow> {
    return this.pages('AND ts >= ? AND ts <= ?', [since, until]);
  }

  private async *pages(where: string, params: SqlValue[], pageSize = 1000): AsyncIterable<AuditRow> {
    for (let after = 0; ;) {
      const rows = (await this.sql.all(`SELECT * FROM audit_events WHERE id > ? ${where} ORDER BY id LIMIT ?`, [after, ...params, pageSize])) as AuditRow[];
      yield* rows;
      if (rows.length < pageSize) return;
      after = rows.at(-1)!.id;
    }
  }

  /** The highest row id (0 for an empty log). */
  async maxId(): Promise<number> {
    return ((await this.sql.get('SELECT MAX(id) AS m FROM audit_events')) as { m: number | null }).m ?? 0;
  }

  /** The stored hash of row `id`, or null if there is no such row. */
  async hashOf(id: number): Promise<string | null> {
    return ((await this.sql.get('SELECT hash FROM audit_events WHERE id = ?', [id])) as { hash: string } | undefined)?.hash ?? null;
  }

  /** The row id the latest checkpoint signed, or null before the first one. */
  async lastCheckpointRow(): Promise<number | null> {
    return ((await this.sql.get('SELECT audit_id FROM audit_checkpoints ORDER BY id DESC LIMIT 1')) as { audit_id: number } | undefined)?.audit_id ?? null;
  }

  /** Stores a signed checkpoint of the head at row `auditId`. */
  async addCheckpoint(c: { auditId: number; head: string; ts: number; signature: Buffer }): Promise<void> {
    await this.sql.run('INSERT INTO audit_checkpoints (audit_id, head, ts, signature) VALUES (?, ?, ?, ?)', [c.auditId, c.head, c.ts, c.signature]);
  }

  /** The newest checkpoint, or null before the first. */
  async lastCheckpoint(): Promise<CheckpointRow | null> {
    return ((await this.sql.get('SELECT * FROM audit_checkpoints ORDER BY id DESC LIMIT 1')) as CheckpointRow | undefined) ?? null;
  }

  /** Every checkpoint, oldest first. */
  async checkpoints(): Promise<CheckpointRow[]> {
    return (await this.sql.all('SELECT * FROM audit_checkpoints ORDER BY id')) as CheckpointRow[];
  }
}
