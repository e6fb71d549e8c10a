import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { numberPlaceholders, type Sql } from '../../src/store/sql.js';
import { SqliteSql } from '../../src/store/sqlite.js';
import { PostgresSql } from '../../src/store/postgres.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

describe('numberPlaceholders', () => {
  it.each([
    ['SELECT ? , ?', 'SELECT $1 , $2'],
    ["SELECT '?' , ?", "SELECT '?' , $1"],
    ['SELECT "a?b" FROM t WHERE x = ?', 'SELECT "a?b" FROM t WHERE x = $1'],
    ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
  ])('%s', (sql, want) => expect(numberPlaceholders(sql)).toBe(want));
});

/** The same behaviour asked of both engines. */
function engineSuite(name: string, open: () => Promise<Sql>, close: () => Promise<void>): void {
  describe(name, () => {
    let sql: Sql;
    beforeAll(async () => {
      sql = await open();
      await sql.run('CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT NOT NULL, b BYTEA)'.replace('BYTEA', sql.engine === 'sqlite' ? 'BLOB' : 'BYTEA'));
    });
    afterAll(close);

    it('returns integers as numbers and blobs as Buffers', async () => {
      await sql.run('INSERT INTO t (id, v, b) VALUES (?, ?, ?)', [1, 'one', Buffer.from([1, 2])]);
      const r = (await sql.get('SELECT id, v, b, COUNT(*) OVER () AS n FROM t WHERE id = ?', [1])) as Record<string, unknown>;
      expect(r).toEqual({ id: 1, v: 'one', b: Buffer.from([1, 2]), n: 1 });
      expect(await sql.get('SELECT id FROM t WHERE id = ?', [99])).toBeUndefined();
    });

    it('commits a transaction whole, or rolls it back whole', async () => {
      await sql.transaction(async () => {
        await sql.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'two']);
        await sql.run('INSERT INTO t (id, v) VALUES (?, ?)', [3, 'three']);
      });
      await expect(
        sql.transaction(async () => {
          await sql.run('INSERT INTO t (id, v) VALUES (?, ?)', [4, 'four']);
          await sql.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'dup']);
        }),
      ).rejects.toThrow();
      const ids = (await sql.all('SELECT id FROM t ORDER BY id')) as { id: number }[];
      expect(ids.map((r) => r.id)).toEqual([1, 2, 3]);
    });

    it('keeps statements from outside an open transaction out of it', async () => {
      let inside!: () => void;
      const gate = new Promise<void>((r) => (inside = r));
      let release!: () => void;
      const hold = new Promise<void>((r) => (release = r));
      const tx = sql
        .transaction(async () => {
          await sql.run('INSERT INTO t (id, v) VALUES (?, ?)', [10, 'in']);
          inside();
          await hold;
          throw new Error('roll back');
        })
        .catch(() => 'rolled back');
      await gate;
      // Issued while the transaction is open, from another context: must not be rolled back with it.
      const outside = sql.run('INSERT INTO t (id, v) VALUES (?, ?)', [11, 'out']);
      release();
      expect(await tx).toBe('rolled back');
      await outside;
      const ids = (await sql.all('SELECT id FROM t WHERE id >= 10 ORDER BY id')) as { id: number }[];
      expect(ids.map((r) => r.id)).toEqual([11]);
    });

    it('serialises a locked section across concurrent transactions', async () => {
      await sql.run('CREATE TABLE counter (n BIGINT NOT NULL)');
      await sql.run('INSERT INTO counter (n) VALUES (0)');
      const bump = (): Promise<void> =>
        sql.transaction(async () => {
          await sql.lock('counter');
          const { n } = (await sql.get('SELECT n FROM counter')) as { n: number };
          await new Promise((r) => setImmediate(r));
          await sql.run('UPDATE counter SET n = ?', [n + 1]);
        });
      await Promise.all(Array.from({ length: 20 }, bump));
      expect(((await sql.get('SELECT n FROM counter')) as { n: number }).n).toBe(20);
    });
  });
}

engineSuite(
  'SQLite engine',
  async () => new SqliteSql(new Database(':memory:')),
  async () => {},
);

let server: TestPostgres;
let pgSql: PostgresSql;
engineSuite(
  'PostgreSQL engine',
  async () => {
    server = await startPostgres();
    pgSql = new PostgresSql({ url: server.url, max: 8 });
    return pgSql;
  },
  async () => {
    await pgSql?.close();
    await server?.stop();
  },
);

describe('PostgreSQL migrations', () => {
  it('applies the baseline and every later migration once, records them, and refuses a newer database', async () => {
    const { migratePostgres } = await import('../../src/store/postgres-migrate.js');
    const { readMigrations, MIGRATIONS_DIR } = await import('../../src/store/db.js');
    const { POSTGRES_MIGRATIONS_DIR } = await import('../../src/store/postgres-migrate.js');
    const srv = await startPostgres({ database: 'mig' });
    const sql = new PostgresSql({ url: srv.url, max: 4 });
    try {
      // Two nodes starting at once migrate once.
      const [a, b] = await Promise.all([migratePostgres(sql), migratePostgres(new PostgresSql({ url: srv.url, max: 2 }))]);
      expect([...a, ...b].filter((m) => m.startsWith('0008'))).toHaveLength(1);
      // Every engine ends at the same schema version, under the same names from the baseline on.
      const pgNames = readMigrations(POSTGRES_MIGRATIONS_DIR).map((m) => `${m.version}_${m.name}`);
      const sqliteNames = readMigrations(MIGRATIONS_DIR).map((m) => `${m.version}_${m.name}`);
      expect(pgNames).toEqual(sqliteNames.filter((n) => Number(n.split('_')[0]) >= 8).map((n) => (n.startsWith('8_') ? '8_baseline' : n)));
      const tables = (await sql.all("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")) as { table_name: string }[];
      expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['audit_events', 'nodes', 'pair_servers', 'sessions', 'users']));
      expect(await migratePostgres(sql)).toEqual([]);
      await sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [9999, 'future', 0]);
      await expect(migratePostgres(sql)).rejects.toThrow(/TG_ERR_DB_TOO_NEW|newer tmuxgate/);
    } finally {
      await sql.close();
      await srv.stop();
    }
  });
});
