import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { TgError } from '../errors.js';
import { openDb } from './db.js';
import type { Sql } from './sql.js';
import { SqliteSql } from './sqlite.js';
import { PostgresSql } from './postgres.js';
import { migratePostgres } from './postgres-migrate.js';
import { assertPrivate } from '../crypto/key-files.js';

/** The PostgreSQL URL from the config: inline, or read from a private file. */
function postgresUrl(config: Config): string {
  const { url, urlFile } = config.store;
  if (url) return url;
  assertPrivate(urlFile!);
  return readFileSync(urlFile!, 'utf8').trim();
}

/**
 * Opens the configured store, migrated (or, with `migrate: false`, only checked: a database a
 * newer tmuxgate wrote is refused either way). SQLite: the file under dataDir. PostgreSQL: a pool,
 * checked by connecting once so a wrong URL fails at start with one line, not at the first login.
 */
export async function openStore(config: Config, opts: { migrate?: boolean; name?: string } = {}): Promise<Sql> {
  if (config.store.kind === 'sqlite') return new SqliteSql(openDb(config.paths.dbFile, { migrate: opts.migrate ?? true }));
  const sql = new PostgresSql({ url: postgresUrl(config), max: config.store.pool, applicationName: opts.name ?? 'tmuxgate' });
  try {
    await migratePostgres(sql, { migrate: opts.migrate ?? true });
  } catch (e) {
    await sql.close().catch(() => {});
    if (e instanceof TgError) throw e;
    throw new TgError('TG_ERR_STORE_UNREACHABLE', `cannot use the PostgreSQL store: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  return sql;
}
