import { createHash } from 'node:crypto';
import pg from 'pg';
import { numberPlaceholders, TxContext, type Sql, type SqlValue } from './sql.js';

/** PostgreSQL's int8 (BIGINT, COUNT) as a JavaScript number: every integer the store keeps fits in 2^53. */
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Statements with `$n` placeholders, by their `?` text. The repositories' statements are a fixed
 * set run again and again (every heartbeat and enforcement tick): converted once, not a string
 * built character by character on every run (the largest source of a node's garbage when idle).
 * Bounded, in case some caller builds its text from data.
 */
const converted = new Map<string, string>();
const CONVERTED_MAX = 1000;

function numbered(sql: string): string {
  let out = converted.get(sql);
  if (out === undefined) {
    out = numberPlaceholders(sql);
    if (converted.size < CONVERTED_MAX) converted.set(sql, out);
  }
  return out;
}

/** Pooled connections kept open however long they idle: the most statements a login step sends at once. */
export const WARM_CONNECTIONS = 5;

/** The 64-bit advisory lock key for a named section (the same on every node). */
function lockKey(name: string): string {
  return createHash('sha256').update(`tmuxgate:${name}`).digest().readBigInt64BE(0).toString();
}

/**
 * An open transaction: its connection, and its BEGIN once sent. BEGIN goes with the first
 * statement that needs it, so a transaction that starts with a lock (the audit chain, a lockout
 * count, a heartbeat) sends BEGIN, the lock and the next read in one round trip.
 */
interface OpenTx {
  client: pg.PoolClient;
  ended: boolean;
  begun: Promise<unknown> | null;
}

/**
 * The shared engine: a node-postgres pool. A transaction holds one pooled connection for its
 * whole run; statements issued inside it (found through AsyncLocalStorage, so repositories need
 * no transaction handle) go to that connection, everything else to the pool.
 */
export class PostgresSql implements Sql {
  readonly engine = 'postgres' as const;
  private readonly current = new TxContext<OpenTx>();
  readonly pool: pg.Pool;

  constructor(opts: { url: string; max?: number; applicationName?: string; connectTimeoutMs?: number; queryTimeoutMs?: number }) {
    const max = opts.max ?? 10;
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max,
      // A login step sends up to five statements at once (a signed attempt for `user+role`: the
      // address's locks, the user, the role, the grants, the key). Connections beyond that many
      // close after 10 s idle (the pool's default); these stay, or a node with a login less often
      // than every 10 s would open new ones on each (TCP, SCRAM, a backend forked: 5-15 ms).
      min: Math.min(WARM_CONNECTIONS, max),
      application_name: opts.applicationName ?? 'tmuxgate',
      types,
      // Off-box sinks bound every wait, so an unreachable database is a failed put, not a hang.
      ...(opts.connectTimeoutMs !== undefined ? { connectionTimeoutMillis: opts.connectTimeoutMs } : {}),
      ...(opts.queryTimeoutMs !== undefined ? { query_timeout: opts.queryTimeoutMs } : {}),
    });
    // An idle pooled connection that the server drops must not crash the gateway; the next
    // query gets a fresh connection.
    this.pool.on('error', () => {});
  }

  /** The open transaction's connection, its BEGIN sent first; the pool outside a transaction. */
  private async target(): Promise<pg.Pool | pg.PoolClient> {
    const tx = this.current.current();
    if (!tx) return this.pool;
    await (tx.begun ??= tx.client.query('BEGIN'));
    return tx.client;
  }

  private async query(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    return (await this.target()).query(numbered(sql), params as SqlValue[]);
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<unknown[]> {
    return (await this.query(sql, params)).rows;
  }

  async get(sql: string, params: readonly SqlValue[] = []): Promise<unknown> {
    return (await this.query(sql, params)).rows[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  async exec(script: string): Promise<void> {
    // The simple query protocol: several statements, no parameters.
    await (await this.target()).query(script);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.current.current()) return fn();
    const client = await this.pool.connect();
    const tx: OpenTx = { client, ended: false, begun: null };
    let broken: Error | undefined;
    try {
      const out = await this.current.run(tx, fn);
      if (tx.begun) await client.query('COMMIT');
      return out;
    } catch (e) {
      if (tx.begun) await client.query('ROLLBACK').catch((re: Error) => (broken = re));
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async lock(name: string): Promise<void> {
    await this.lockThen(name, null);
  }

  async lockAndGet(name: string, sql: string): Promise<unknown> {
    return (await this.lockThen(name, sql))?.rows[0];
  }

  /**
   * The lock, after BEGIN if the transaction has not sent it yet, and then `read`: one simple
   * query of several statements, one round trip. Each statement takes its own snapshot (READ
   * COMMITTED), so the read, which runs once the lock is granted, sees what its last holder committed.
   * The key is our own digits, never input.
   */
  private async lockThen(name: string, read: string | null): Promise<pg.QueryResult | undefined> {
    const tx = this.current.current();
    if (!tx) throw new Error(`lock ${name} outside a transaction`);
    const script = [`SELECT pg_advisory_xact_lock(${lockKey(name)})`, ...(read === null ? [] : [read])];
    let sent: Promise<unknown>;
    if (tx.begun) {
      await tx.begun;
      sent = tx.client.query(script.join('; '));
    } else sent = tx.begun = tx.client.query(['BEGIN', ...script].join('; '));
    const results = (await sent) as pg.QueryResult | pg.QueryResult[];
    return read === null ? undefined : Array.isArray(results) ? results.at(-1) : results;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
