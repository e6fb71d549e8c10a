import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { waitUntil } from './poll.js';

/** Where Debian's postgresql package puts the server binaries. */
const BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  /** The superuser's URL (owner of `database`). */
  url: string;
  port: number;
  database: string;
  /** A URL for another role on the same database. */
  urlAs(role: string, password: string): string;
  /** Runs SQL as the superuser. */
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Stops the server, waits for it to exit, deletes its files. */
  stop(): Promise<void>;
  /** Stops the server abruptly (SIGKILL) and waits for it; start() brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

/** A free loopback port (the kernel's choice; a race with another binder is retried by the caller). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway PostgreSQL 15 as the unprivileged `postgres` account in a temp dir, on an
 * ephemeral loopback port, with a database and a password-authenticated superuser. fsync is off:
 * these clusters die with the test.
 */
export async function startPostgres(opts: { database?: string } = {}): Promise<TestPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pg-'));
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const pwFile = path.join(dir, 'pw');
  const password = `pw${Math.random().toString(36).slice(2)}`;
  writeFileSync(pwFile, password, { mode: 0o600 });
  chownSync(pwFile, uid, gid);
  const asPg = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'];
  const init = spawnSync(
    asPg[0]!,
    [
      ...asPg.slice(1),
      `${BIN}/initdb`,
      '-D',
      data,
      '-U',
      'tg',
      '--pwfile',
      pwFile,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-sync',
    ],
    { encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  rmSync(pwFile);

  const database = opts.database ?? 'tmuxgate';
  let port = 0;
  let child: ChildProcess | null = null;

  const url = (user: string, pw: string): string => `postgres://${user}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${database}`;

  async function launch(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      port = port || (await freePort());
      const p = spawn(
        asPg[0]!,
        [
          ...asPg.slice(1),
          `${BIN}/postgres`,
          '-D',
          data,
          '-p',
          String(port),
          '-k',
          dir,
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          'fsync=off',
          '-c',
          'max_connections=200',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      let exited = false;
      p.once('exit', () => (exited = true));
      const ready = await waitUntil(
        async () => {
          if (exited) return 'exited';
          const c = new pg.Client({ connectionString: url('tg', password).replace(`/${database}`, '/postgres') });
          c.on('error', () => {});
          try {
            await c.connect();
            await c.end();
            return 'up';
          } catch {
            return null;
          }
        },
        'postgres to accept connections',
        20_000,
        50,
      );
      if (ready === 'up') {
        child = p;
        return;
      }
      p.kill('SIGKILL');
      if (attempt >= 2 || !/could not bind|Address already in use/.test(err)) throw new Error(`postgres did not start: ${err.slice(-500)}`);
      port = 0;
    }
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const p = child;
    child = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await gone;
  }

  await launch();
  const admin = new pg.Client({ connectionString: url('tg', password).replace(`/${database}`, '/postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();

  const query = async (sql: string, params: unknown[] = []): Promise<pg.QueryResult> => {
    const c = new pg.Client({ connectionString: url('tg', password) });
    await c.connect();
    try {
      return await c.query(sql, params);
    } finally {
      await c.end();
    }
  };

  return {
    get url() {
      return url('tg', password);
    },
    get port() {
      return port;
    },
    database,
    urlAs: (role, pw) => url(role, pw),
    query,
    async stop() {
      // SIGINT is PostgreSQL's fast shutdown: connections are cut, the server exits at once.
      await halt('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => halt('SIGKILL'),
    start: launch,
  };
}
