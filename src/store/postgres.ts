import { createHash } from 'node:crypto';
import pg from 'pg';
import { numberPlaceholders, TxContext, type Sql, type SqlValue } from './sql.js';

/** PostgreSQL's int8 (BIGINT, COUNT) as a JavaScript number: every integer the store keeps fits in 2^53. */
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** The 64-bit advisory lock key for a named section (the same on every node). */
function lockKey(name: string): string {
  return createHash('sha256').update(`tmuxgate:${name}`).digest().readBigInt64BE(0).toString();
}

/**
 * The shared engine: a node-postgres pool. A transaction holds one pooled connection for its
 * whole run; statements issued inside it (found through AsyncLocalStorage, so repositories need
 * no transaction handle) go to that connection, everything else to the pool.
 */
export class PostgresSql implements Sql {
  readonly engine = 'postgres' as const;
  private readonly current = new TxContext<{ client: pg.PoolClient; ended: boolean }>();
  readonly pool: pg.Pool;

  constructor(opts: { url: string; max?: number; applicationName?: string; connectTimeoutMs?: number; queryTimeoutMs?: number }) {
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.max ?? 10,
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

  private target(): pg.Pool | pg.PoolClient {
    return this.current.current()?.client ?? this.pool;
  }

  private async query(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    return this.target().query(numberPlaceholders(sql), params as SqlValue[]);
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
    await this.target().query(script);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.current.current()) return fn();
    const client = await this.pool.connect();
    const tx = { client, ended: false };
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const out = await this.current.run(tx, fn);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch((re: Error) => (broken = re));
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async lock(name: string): Promise<void> {
    const tx = this.current.current();
    if (!tx) throw new Error(`lock ${name} outside a transaction`);
    await tx.client.query('SELECT pg_advisory_xact_lock($1)', [lockKey(name)]);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
