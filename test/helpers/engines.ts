import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import type { Sql } from '../../src/store/sql.js';
import { SqliteSql } from '../../src/store/sqlite.js';
import { PostgresSql } from '../../src/store/postgres.js';
import { migratePostgres } from '../../src/store/postgres-migrate.js';
import { startPostgres, type TestPostgres } from './postgres.js';

/** One store engine, for tests that run the same cases on SQLite and on PostgreSQL. */
export interface Engine {
  name: string;
  /** A fresh, migrated, empty database per test. */
  fresh(): Promise<Sql>;
  /** `n` more connections to the latest fresh database, as other nodes would hold (SQLite: the same one). */
  more(n?: number): Sql[];
  done(): Promise<void>;
}

export function sqliteEngine(): Engine {
  let current: SqliteSql | null = null;
  return {
    name: 'SQLite',
    async fresh() {
      const db = new Database(':memory:');
      migrate(db);
      current = new SqliteSql(db);
      return current;
    },
    more: (n = 2) => Array.from({ length: n }, () => current!),
    async done() {},
  };
}

/**
 * A real PostgreSQL 15, started on first use and migrated once into a template database; each
 * test gets a copy of it (a file copy, much faster than migrating again).
 */
export function postgresEngine(template: string): Engine {
  let server: TestPostgres | undefined;
  let n = 0;
  let url = '';
  const open: PostgresSql[] = [];
  return {
    name: 'PostgreSQL',
    async fresh() {
      if (!server) {
        server = await startPostgres({ database: template });
        const t = new PostgresSql({ url: server.url, max: 1 });
        await migratePostgres(t);
        await t.close();
      }
      const db = `${template}_${++n}`;
      await server.query(`CREATE DATABASE ${db} TEMPLATE ${template} STRATEGY FILE_COPY`);
      url = server.url.replace(new RegExp(`/${template}$`), `/${db}`);
      const sql = new PostgresSql({ url, max: 4 });
      open.push(sql);
      return sql;
    },
    more(k = 2) {
      const nodes = Array.from({ length: k }, () => new PostgresSql({ url, max: 2 }));
      open.push(...nodes);
      return nodes;
    },
    async done() {
      for (const s of open) await s.close();
      await server?.stop();
    },
  };
}
