import type Database from 'better-sqlite3';
import type { Db } from './db.js';
import { TxContext, type Sql, type SqlValue } from './sql.js';

/** The transaction a piece of async code runs in, if any. */
interface OpenTx {
  ended: boolean;
}

/**
 * The embedded engine: better-sqlite3 is synchronous, so each call runs at once and returns a
 * settled promise. A transaction may await between statements. Code running inside it (found
 * through AsyncLocalStorage, so repositories need no transaction handle) runs its statements in
 * it; statements from anywhere else in this process wait until it ends, since on the one
 * connection they would otherwise land inside it. Other processes wait on SQLite's write lock
 * (BEGIN IMMEDIATE and the busy timeout).
 */
export class SqliteSql implements Sql {
  readonly engine = 'sqlite' as const;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly current = new TxContext<OpenTx>();
  /** Settles when the open transaction ends; null when none is open. */
  private busy: Promise<void> | null = null;

  constructor(readonly db: Db) {}

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Waits for another context's transaction. Work that outlives its own transaction (started
   * inside, finishing after the commit) runs as if it had started outside.
   */
  private async turn(): Promise<void> {
    if (this.current.current()) return;
    while (this.busy) await this.busy;
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<unknown[]> {
    if (this.busy) await this.turn();
    return this.statement(sql).all(...params);
  }

  async get(sql: string, params: readonly SqlValue[] = []): Promise<unknown> {
    if (this.busy) await this.turn();
    return this.statement(sql).get(...params);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    if (this.busy) await this.turn();
    return this.statement(sql).run(...params).changes;
  }

  async exec(script: string): Promise<void> {
    if (this.busy) await this.turn();
    this.db.exec(script);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.current.current()) return fn();
    while (this.busy) await this.busy;
    let release!: () => void;
    this.busy = new Promise((r) => (release = r));
    const tx: OpenTx = { ended: false };
    try {
      this.db.exec('BEGIN IMMEDIATE');
      const out = await this.current.run(tx, fn);
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.busy = null;
      release();
    }
  }

  async lock(): Promise<void> {
    // BEGIN IMMEDIATE already holds the database's one write lock.
  }

  async lockAndGet(_name: string, sql: string): Promise<unknown> {
    return this.get(sql);
  }

  async close(): Promise<void> {
    while (this.busy) await this.busy;
    this.db.close();
  }
}
