import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TgError } from '../errors.js';

export type Db = Database.Database;

/** Where the SQL migrations live (the same relative place from src/ and dist/). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Reads migrations/NNNN_name.sql in version order. */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .map((f) => /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2]!, sql: readFileSync(path.join(dir, m[0]), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/**
 * How every connection syncs. FULL: a commit returns only after its WAL frames are on stable
 * storage. Under NORMAL a WAL commit is synced only at the next checkpoint, so a power loss or OS
 * crash can roll back any number of acknowledged commits (up to the ~4 MB between checkpoints):
 * audit events (a hole in the HIPAA trail, and rows the off-box sinks already shipped would come
 * back with other content under the same ids), a spent TOTP step (the code works again: a replay
 * window), lockout counts, and the recording row's chunk count that catches a truncated
 * recording. No write in the store may lag, so there is no per-write exception; the cost is one
 * fdatasync per commit on the event loop (~0.4 ms on the bench machine's disk; bench/RESULTS.md
 * 2026-11-24, "SQLite synchronous = FULL").
 */
export const SQLITE_SYNCHRONOUS = 'FULL';

/** Opens (creating if needed, mode 0600) the SQLite store in WAL mode, synchronous FULL, with a busy timeout. */
export function openDb(file: string, opts: { migrate?: boolean; readonly?: boolean } = {}): Db {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file) && !opts.readonly) closeSync(openSync(file, 'a', 0o600));
  if (!opts.readonly) chmodSync(file, 0o600);
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!opts.readonly) db.pragma('journal_mode = WAL');
  // On read-only connections too, so no connection's setting rests on SQLite's compiled-in default.
  db.pragma(`synchronous = ${SQLITE_SYNCHRONOUS}`);
  db.pragma('foreign_keys = ON');
  // Freed bytes are zeroed, so an overwritten row (a purged recording's wrapped key) leaves no copy in free page space.
  db.pragma('secure_delete = ON');
  if (opts.migrate !== false && !opts.readonly) migrate(db);
  else checkVersion(db);
  return db;
}

function appliedVersion(db: Db): number {
  const t = db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'").get();
  if (!t) return 0;
  const r = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return r.v ?? 0;
}

function checkVersion(db: Db, known = readMigrations()): number {
  const have = appliedVersion(db);
  const newest = known.at(-1)?.version ?? 0;
  if (have > newest) {
    throw new TgError(
      'TG_ERR_DB_TOO_NEW',
      `database schema version ${have} was written by a newer tmuxgate (this one knows up to ${newest}); upgrade tmuxgate or restore a matching backup`,
    );
  }
  return have;
}

/** Applies pending migrations in order, each in its own transaction; returns the ones applied. */
export function migrate(db: Db, dir = MIGRATIONS_DIR): string[] {
  const all = readMigrations(dir);
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const have = checkVersion(db, all);
  const applied: string[] = [];
  for (const m of all.filter((x) => x.version > have)) {
    try {
      // Table rebuilds (SQLite's way to change a CHECK) need foreign keys off during the migration.
      db.pragma('foreign_keys = OFF');
      db.transaction(() => {
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
      db.pragma('foreign_keys = ON');
    } catch (e) {
      db.pragma('foreign_keys = ON');
      throw new TgError('TG_ERR_DB_MIGRATION', `migration ${m.version}_${m.name} failed: ${(e as Error).message}`, { cause: e });
    }
    applied.push(`${String(m.version).padStart(4, '0')}_${m.name}`);
  }
  return applied;
}
