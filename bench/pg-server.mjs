// A PostgreSQL 15 of the bench's own: initdb into `dir`/pg as the postgres account, on an
// ephemeral loopback port, password auth over TCP, fsync on (a deployment's store, not a test's).
// Shared by bench/cluster.mjs and bench/pg-roundtrips.mjs.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A loopback port free at this moment. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the server with a database `tmuxgate` in it. `logFile`: every statement with its
 * duration is written there. The postmaster runs in a session (autogroup) of its own, as a
 * service does. Returns its process, its port and `url(db)`.
 */
export async function startPostgres(dir, { logFile = null } = {}) {
  const pgDir = path.join(dir, 'pg');
  mkdirSync(pgDir);
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(pgDir, uid, gid);
  const asPg = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'];
  const pw = `pw${Math.random().toString(36).slice(2)}`;
  writeFileSync(path.join(pgDir, 'pw'), pw, { mode: 0o600 });
  chownSync(path.join(pgDir, 'pw'), uid, gid);
  const data = path.join(pgDir, 'data');
  const initdb = [`${PG_BIN}/initdb`, '-D', data, '-U', 'tg', '--pwfile', path.join(pgDir, 'pw'), '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'];
  execFileSync(asPg[0], [...asPg.slice(1), ...initdb], { stdio: 'ignore' });
  const port = await freePort();
  // max_connections well above 2 nodes x pool + the CLI.
  const args = [`${PG_BIN}/postgres`, '-D', data, '-p', String(port), '-k', pgDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=100'];
  if (logFile) args.push('-c', 'log_min_duration_statement=0', '-c', 'log_line_prefix=%m [%p] ');
  // setpriv execs postgres: this pid is the postmaster's.
  const proc = spawn(asPg[0], [...asPg.slice(1), ...args], { stdio: logFile ? ['ignore', 'ignore', openSync(logFile, 'w')] : 'ignore', detached: true });
  const url = (db) => `postgres://tg:${pw}@127.0.0.1:${port}/${db}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: url('postgres') });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('CREATE DATABASE tmuxgate');
      await c.end();
      return { proc, port, url };
    } catch (e) {
      await c.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${e.message}`);
      await sleep(100);
    }
  }
}

/** A fast shutdown (SIGINT), SIGKILL after 15 s. */
export async function stopPostgres(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGINT');
  const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(t);
}
