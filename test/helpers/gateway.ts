import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { buildConfig, defaultSocketDir } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { FakeClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { startGateway, type Gateway, type GatewayDeps } from '../../src/gateway.js';
import { openAdmin, type AdminContext } from '../../src/admin/context.js';
import { addKey, addUser, confirmTotp, enrollTotp, addRole, grantRole } from '../../src/admin/operations.js';
import { totpCode } from '../../src/auth/totp.js';
import { readAudit } from '../../src/audit/log.js';
import { PtyDriver, hermeticSshArgs } from './pty-driver.js';
import { BIN } from './cli.js';
import { stringify as stringifyYaml } from 'yaml';

export interface TestUser {
  name: string;
  keyFile: string;
  pubFile: string;
  secret: string;
}

/** Makes a key pair with the real ssh-keygen. */
export function makeKey(dir: string, name: string, type = 'ed25519', bits?: number): { keyFile: string; pubFile: string } {
  const keyFile = path.join(dir, `${name}_${type}${bits ?? ''}`);
  if (!existsSync(keyFile)) {
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', keyFile]);
  }
  return { keyFile, pubFile: `${keyFile}.pub` };
}

/** The tmux sockets (randomly named per server start) in a pair's socket directory. */
export function socketsIn(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.sock'))
        .map((f) => path.join(dir, f))
    : [];
}

/** Kills every tmux server whose socket lives under `socketDir`. */
/** Pids of processes whose command line is exactly `cmd` (pgrep -x -f). */
export function pidsOf(cmd: string): number[] {
  return spawnSync('pgrep', ['-x', '-f', cmd], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
}

export function killTmuxServers(socketDir: string): void {
  if (!existsSync(socketDir)) return;
  for (const d of readdirSync(socketDir)) {
    for (const sock of socketsIn(path.join(socketDir, d))) spawnSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore' });
  }
}

/** Ends the processes of, and deletes, every OS account a store made (pair and role accounts). */
export function removeAccounts(db: Database.Database): void {
  const rows = db.prepare('SELECT account FROM pair_accounts UNION ALL SELECT account FROM role_accounts').all() as { account: string }[];
  removeAccountNames(rows.map((r) => r.account));
}

/** Ends the processes of, and deletes, the named OS accounts. */
export function removeAccountNames(names: string[]): void {
  for (const a of names) spawnSync('pkill', ['-KILL', '-u', a], { stdio: 'ignore' });
  for (const a of names) spawnSync('userdel', [a], { stdio: 'ignore' });
}

/**
 * Config lines that keep a CLI- or process-driven test hermetic: OS accounts with a per-test
 * prefix in the test uid range, homes under `dir`. Pair with cleanupStore().
 */
export function isolationYaml(dir: string): string {
  const prefix = `tp${Math.random()
    .toString(36)
    .slice(2, 7)
    .replace(/[^a-z0-9]/g, 'x')}`;
  return `isolation:\n  accountPrefix: ${prefix}\n  homeBase: ${dir}/homes\n  uidMin: 63000\n  uidMax: 63999\n`;
}

/** Removes what a store's gateway or CLI made outside its temp dir: tmux servers, sockets, OS accounts. */
export function cleanupStore(dataDir: string): void {
  const socketDir = defaultSocketDir(dataDir);
  killTmuxServers(socketDir);
  rmSync(socketDir, { recursive: true, force: true });
  const dbFile = path.join(dataDir, 'tmuxgate.db');
  if (!existsSync(dbFile)) return;
  const db = new Database(dbFile);
  try {
    removeAccounts(db);
  } finally {
    db.close();
  }
}

/** A temp dir short enough for unix socket paths. */
export function tempDir(prefix = 'tg-'): string {
  return mkdtempSync(path.join('/tmp', prefix));
}

/**
 * A real gateway on an ephemeral port with an injected clock, its own temp dir and store,
 * plus helpers to enroll users and drive the real OpenSSH client at it.
 */
export class TestGateway {
  readonly dir: string;
  readonly clock: FakeClock;
  readonly config: Config;
  gw!: Gateway;
  admin!: AdminContext;
  readonly logLines: string[] = [];
  private drivers: PtyDriver[] = [];
  private rawDb: Database.Database | null = null;
  readonly home: string;
  readonly knownHostsFile: string;
  private readonly input: ConfigInput;

  constructor(
    overrides: ConfigInput = {},
    private readonly opts: { dir?: string; deps?: Omit<GatewayDeps, 'clock' | 'logger'> } = {},
  ) {
    this.dir = opts.dir ?? tempDir();
    this.home = path.join(this.dir, 'home');
    this.knownHostsFile = path.join(this.dir, 'known_hosts');
    this.clock = new FakeClock(Math.floor(Date.now() / 30_000) * 30_000 + 1_000);
    // Unique per harness: parallel test files must not share pair accounts.
    const prefix = `tt${Math.random()
      .toString(36)
      .slice(2, 7)
      .replace(/[^a-z0-9]/g, 'x')}`;
    this.input = {
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: 'data',
      keysDir: 'keys',
      ...overrides,
      isolation: { accountPrefix: prefix, homeBase: path.join(this.dir, 'homes'), uidMin: 63000, uidMax: 63999, ...overrides.isolation },
      // The fake clock jumps 30 s per TOTP code: keep the grace and handshake timers out of the way unless a test sets them.
      ssh: { loginGraceTime: '1h', handshakeTimeout: '1h', ...overrides.ssh },
      sessions: { defaultShell: '/bin/sh', ...overrides.sessions },
    };
    this.config = buildConfig(this.input, { file: null, baseDir: this.dir });
  }

  /** Starts the gateway and opens an admin context on the same store. */
  async start(): Promise<this> {
    execFileSync('mkdir', ['-p', this.home]);
    chmodSync(this.dir, 0o711); // role and pair accounts traverse to their own socket dir and home
    const sink = new Writable({
      write: (chunk: Buffer, _e, cb) => {
        this.logLines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    this.gw = await startGateway(this.config, { clock: this.clock, logger: createLogger({ level: 'debug', destination: sink }), ...this.opts.deps });
    writeFileSync(this.knownHostsFile, this.gw.knownHosts.replace(/^\[[^\]]+\]/, `[127.0.0.1]`) + '\n');
    this.admin = await openAdmin(this.config, { clock: this.clock, actor: 'os:test' });
    return this;
  }

  /** Stops the gateway (tmux servers stay, as in production) and starts a new one on the same store. */
  async restart(): Promise<void> {
    await this.gw.close('restart');
    this.gw = await startGateway(this.config, {
      clock: this.clock,
      logger: createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (this.logLines.push(c.toString()), cb()) }) }),
      ...this.opts.deps,
    });
    writeFileSync(this.knownHostsFile, this.gw.knownHosts.replace(/^\[[^\]]+\]/, `[127.0.0.1]`) + '\n');
  }

  get port(): number {
    return this.gw.port;
  }

  /** Creates a role if missing. */
  async role(name: string, opts: Parameters<typeof addRole>[1] extends infer R ? Partial<R> : never = {}): Promise<void> {
    if (!(await this.admin.roles.find(name))) await addRole(this.admin, { name, ...opts });
  }

  /** A user with an ed25519 key and a confirmed TOTP secret, granted `role`. */
  async user(name: string, role = 'ops'): Promise<TestUser> {
    await this.role(role);
    await addUser(this.admin, name, role);
    const { keyFile, pubFile } = makeKey(this.dir, name);
    await addKey(this.admin, name, readFileSync(pubFile, 'utf8'));
    const { secret } = await enrollTotp(this.admin, name);
    await confirmTotp(this.admin, name, totpCode(secret, this.clock.now()));
    return { name, keyFile, pubFile, secret };
  }

  async grant(user: string, role: string): Promise<void> {
    await this.role(role);
    await grantRole(this.admin, user, role);
  }

  /** The next valid, unspent code: moves the clock one step on first. */
  code(u: TestUser): string {
    this.clock.advance(30_000);
    return totpCode(u.secret, this.clock.now());
  }

  /** The real OpenSSH client in a pty, with a hermetic config. */
  ssh(u: { keyFile: string }, login: string, extra: string[] = [], env: Record<string, string> = {}, command: string[] = []): PtyDriver {
    const args = hermeticSshArgs({ port: this.port, keyFile: u.keyFile, knownHostsFile: this.knownHostsFile, login, extra, command });
    const d = new PtyDriver('ssh', args, { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, TERM: 'xterm-256color', LANG: 'C.UTF-8', ...env });
    this.drivers.push(d);
    return d;
  }

  /** Answers the code prompt, then waits for tmux's status line (a starting tmux client flushes earlier input). */
  async enter(d: PtyDriver, u: TestUser, login = u.name): Promise<void> {
    await d.waitFor('Verification code:');
    d.write(this.code(u) + '\r');
    await d.waitFor(`[${login.includes('+') ? login : `${login}+`}`);
  }

  /** Logs in with key + the next code; resolves once the shell answers a command. */
  async login(u: TestUser, login = u.name, extra: string[] = []): Promise<PtyDriver> {
    const d = this.ssh(u, login, extra);
    await d.waitFor('Verification code:');
    d.write(this.code(u) + '\r');
    // Type only once tmux drew its status line: a starting tmux client flushes earlier input.
    await d.waitFor(`[${login.includes('+') ? login : `${login}+`}`);
    await this.run(d, 'echo READY-$((40+2))', 'READY-42');
    return d;
  }

  /** Types a command and waits for `expect` to appear after it. */
  async run(d: PtyDriver, cmd: string, expect: string | RegExp, timeoutMs = 15_000): Promise<string> {
    const from = d.out.length;
    d.write(cmd + '\r');
    return d.waitFor(expect, timeoutMs, from);
  }

  /** CLI args that point at this gateway's store. */
  /** `tmuxgate replay ID` in a pty of its own (120x41), at 500x speed. */
  replayCli(sessionId: string): PtyDriver {
    return new PtyDriver(
      process.execPath,
      [BIN, 'replay', sessionId, '--speed', '500', ...this.cliConfig()],
      { PATH: process.env.PATH!, HOME: this.dir, TERM: 'xterm-256color' },
      { cols: 120, rows: 41 },
    );
  }

  /**
   * In an auditor's menu (`d`, logged in): filters the list to `sessionId` and starts its replay;
   * returns the output offset where the replay begins.
   */
  async auditorReplay(d: PtyDriver, sessionId: string): Promise<number> {
    await d.waitFor(sessionId);
    d.write('/');
    d.write(sessionId.slice(2, 8));
    d.write('\r');
    await d.waitFor(`filter: ${sessionId.slice(2, 8)}  `.trimEnd() + '\n');
    const mark = d.out.length;
    d.write('\r');
    return mark;
  }

  cliConfig(): string[] {
    const f = path.join(this.dir, 'config.yaml');
    // The same settings the in-process gateway runs with, so the CLI reads the live configuration.
    if (!existsSync(f)) writeFileSync(f, stringifyYaml({ ...this.input, dataDir: this.config.paths.dataDir, keysDir: this.config.paths.keysDir }));
    return ['--config', f];
  }

  /** Audit rows of one type. */
  async audit(type?: string): Promise<{ type: string; actor: string; data: Record<string, unknown> }[]> {
    return (await readAudit(this.admin.auditEvents, type ? { type } : {})).map((r) => ({
      type: r.type,
      actor: r.actor,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  /**
   * Pre-authentication failures and refusals counted so far, by "method:reason", summed over every
   * address: moves the clock one summary interval so the gateway writes its summaries.
   */
  async preauthReasons(): Promise<Record<string, number>> {
    this.clock.advance(this.config.auth.preAuthAudit.interval);
    // The gateway's appends are synchronous SQLite work chained by promises: once the microtask
    // queue has drained (a macrotask later), every summary is on disk.
    await new Promise((r) => setImmediate(r));
    const out: Record<string, number> = {};
    for (const e of await this.audit('preauth.summary')) {
      for (const [r, n] of Object.entries(e.data.reasons as Record<string, number>)) out[r] = (out[r] ?? 0) + n;
    }
    return out;
  }

  /**
   * The store's SQLite file opened directly, for tests that inspect or tamper with rows: the
   * gateway and the admin context reach it only through their repositories.
   */
  sql(): Database.Database {
    return (this.rawDb ??= new Database(this.config.paths.dbFile));
  }

  /** Stops everything this harness started: clients, gateway, tmux servers; removes the dir. */
  async stop(): Promise<void> {
    for (const d of this.drivers) d.kill();
    await this.gw?.close('test end');
    killTmuxServers(this.config.paths.socketDir);
    if (this.admin) {
      // A PostgreSQL store is read through the admin context's repositories; SQLite's file directly.
      if (this.config.store.kind === 'postgres') removeAccountNames(await this.admin.hostAccounts.allAccounts());
      else removeAccounts(this.sql());
      await this.admin.close();
    }
    this.rawDb?.close();
    this.rawDb = null;
    rmSync(this.config.paths.socketDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
