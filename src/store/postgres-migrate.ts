import path from 'node:path';
import { TgError } from '../errors.js';
import { MIGRATIONS_DIR, readMigrations } from './db.js';
import type { PostgresSql } from './postgres.js';

/** PostgreSQL's migrations: the same numbers and names as SQLite's, from 0008 (the baseline) on. */
export const POSTGRES_MIGRATIONS_DIR = path.join(MIGRATIONS_DIR, 'postgres');

/**
 * Applies pending migrations in order, each in its own transaction, under one advisory lock so
 * that nodes starting together migrate once; refuses a database that a newer tmuxgate wrote.
 * Returns the ones applied.
 */
export async function migratePostgres(sql: PostgresSql, opts: { migrate?: boolean; dir?: string } = {}): Promise<string[]> {
  const all = readMigrations(opts.dir ?? POSTGRES_MIGRATIONS_DIR);
  const newest = all.at(-1)?.version ?? 0;
  return sql.transaction(async () => {
    await sql.lock('migrations');
    await sql.run('CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const { v } = (await sql.get('SELECT MAX(version) AS v FROM schema_migrations')) as { v: number | null };
    const have = v ?? 0;
    if (have > newest) {
      throw new TgError(
        'TG_ERR_DB_TOO_NEW',
        `database schema version ${have} was written by a newer tmuxgate (this one knows up to ${newest}); upgrade tmuxgate or restore a matching backup`,
      );
    }
    if (opts.migrate === false) return [];
    const applied: string[] = [];
    for (const m of all.filter((x) => x.version > have)) {
      try {
        await sql.exec(m.sql);
        await sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
      } catch (e) {
        throw new TgError('TG_ERR_DB_MIGRATION', `migration ${m.version}_${m.name} failed: ${(e as Error).message}`, { cause: e });
      }
      applied.push(`${String(m.version).padStart(4, '0')}_${m.name}`);
    }
    return applied;
  });
}
