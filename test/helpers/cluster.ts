import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { openAdmin, type AdminContext } from '../../src/admin/context.js';
import { addKey, addRole, addUser, confirmTotp, enrollTotp } from '../../src/admin/operations.js';
import { totpCode } from '../../src/auth/totp.js';
import { readAudit } from '../../src/audit/log.js';
import { BIN, cliAsync, type CliResult } from './cli.js';
import { killTmuxServers, makeKey, tempDir } from './gateway.js';
import { backendOptions, freePort, startHaproxy, type Haproxy } from './haproxy.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { PtyDriver, hermeticSshArgs } from './pty-driver.js';
import { waitUntil } from './poll.js';

/**
 * Whether this process may bind-mount (root with CAP_SYS_ADMIN: CI's clean VM, not every
 * container). Then the cluster's keys dir is mounted read-only, as deployments mount it from a secret.
 */
export function canBindMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'tg-mountprobe-'));
  const ok = spawnSync('mount', ['--bind', probe, probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
}

const DEPLOY_HAPROXY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/haproxy.cfg');
const STEP_MS = 30_000;

/** A user enrolled in the shared store: key files, TOTP secret, and the last TOTP step it spent. */
export interface ClusterUser {
  name: string;
  keyFile: string;
  secret: string;
  lastStep: number;
}

/** One `tmuxgate serve` process of the cluster, on a fixed loopback port (HAProxy names it). */
export class ClusterNode {
  proc: ChildProcess | null = null;
  log = '';

  constructor(
    readonly name: string,
    readonly port: number,
    readonly configFile: string,
    readonly socketDir: string,
  ) {}

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts the process; resolves once it listens, rejects with its output if it exits first. */
  async start(): Promise<void> {
    this.log = '';
    const p = spawn(process.execPath, [BIN, 'serve', '--config', this.configFile], {
      env: { PATH: process.env.PATH!, HOME: '/root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = p;
    p.stdout!.on('data', (d) => (this.log += d));
    p.stderr!.on('data', (d) => (this.log += d));
    await waitUntil(
      () => {
        if (p.exitCode !== null || p.signalCode !== null) throw new Error(`node ${this.name} exited at start:\n${this.log.slice(-2000)}`);
        return /tmuxgate listening on /.test(this.log);
      },
      `node ${this.name} listening`,
      30_000,
    );
  }

  /** A clean stop (drain), then a start on the same port and files. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** kill -9: no drain, no clean stop; resolves once the process is gone. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL', 0);
  }

  /** SIGTERM (the gateway drains), SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.signal('SIGTERM', graceMs);
  }

  private async signal(sig: NodeJS.Signals, graceMs: number): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(sig);
    if (sig !== 'SIGKILL') {
      const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    } else await gone;
  }
}

export interface ClusterOptions {
  nodes?: number;
  /** Mount the keys dir read-only once `init` made the keys (when canBindMount()); default true. */
  readOnlyKeys?: boolean;
  /** Config merged into every node's file (shallow per top-level key). */
  config?: Record<string, Record<string, unknown>>;
}

/**
 * A hermetic cluster on loopback: a real PostgreSQL 15, N real `tmuxgate serve` processes sharing
 * one keys dir and that store (each with its own dataDir and tmux socket dir), and the real HAProxy
 * in front with the shipped backend options (send-proxy-v2, tcp-check, here every 200 ms).
 * HAProxy has a frontend `lb` over every node and one frontend per node (`n0`, `n1`, ...): the
 * nodes trust only HAProxy's PROXY headers, so a test reaches one node directly through its own
 * frontend. OS accounts get a per-test prefix; stop() removes everything, whatever state it is in.
 */
export class TestCluster {
  readonly dir = tempDir('tgc-');
  readonly nodes: ClusterNode[] = [];
  pg!: TestPostgres;
  hp!: Haproxy;
  admin!: AdminContext;
  readonly knownHostsFile = path.join(this.dir, 'known_hosts');
  readonly home = path.join(this.dir, 'home');
  readonly keysDir = path.join(this.dir, 'keys');
  /** Whether the nodes run with the keys dir mounted read-only. */
  keysReadOnly = false;
  private readonly drivers: PtyDriver[] = [];

  private constructor(private readonly opts: ClusterOptions) {}

  /** Starts the whole cluster; on any failure stops what already runs and rethrows. */
  static async start(opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster(opts);
    try {
      await c.boot();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  private async boot(): Promise<void> {
    chmodSync(this.dir, 0o711); // pair accounts traverse to their homes under it
    mkdirSync(this.home);
    this.pg = await startPostgres();
    const urlFile = path.join(this.dir, 'pg.url');
    writeFileSync(urlFile, this.pg.url + '\n', { mode: 0o600 });
    const prefix = `tc${Math.random()
      .toString(36)
      .slice(2, 7)
      .replace(/[^a-z0-9]/g, 'x')}`;
    const extra = this.opts.config ?? {};
    for (let i = 0; i < (this.opts.nodes ?? 2); i++) {
      const name = `node-${String.fromCharCode(97 + i)}`;
      const port = await freePort();
      const linkPort = await freePort();
      const configFile = path.join(this.dir, `${name}.yaml`);
      const dataDir = path.join(this.dir, name, 'data');
      const config = {
        ...extra,
        listen: { host: '127.0.0.1', port, proxyProtocol: { trustedFrom: ['127.0.0.1/32'] }, ...extra.listen },
        dataDir,
        keysDir: this.keysDir,
        store: { kind: 'postgres', urlFile },
        // Each node its id and node-to-node link; a fast heartbeat so a lost node is declared within seconds.
        cluster: { nodeId: name, link: { listen: `127.0.0.1:${linkPort}` }, heartbeat: '500ms', deadAfter: '2s', ...extra.cluster },
        log: { level: 'info', ...extra.log },
        sessions: { defaultShell: '/bin/sh', ...extra.sessions },
        isolation: { accountPrefix: prefix, homeBase: path.join(this.dir, 'homes'), uidMin: 63000, uidMax: 63999, ...extra.isolation },
        // Tests open many connections at once from 127.0.0.x: keep sshd's early drop out of the way.
        ssh: { maxStartups: 200, maxStartupsPerAddress: 50, maxStartupsPerPrefix: 200, ...extra.ssh },
      };
      writeFileSync(configFile, stringifyYaml(config));
      this.nodes.push(new ClusterNode(name, port, configFile, loadConfig(configFile).paths.socketDir));
    }
    const init = await this.cli(['init']);
    if (init.status !== 0) throw new Error(`tmuxgate init failed: ${init.stderr}`);
    if ((this.opts.readOnlyKeys ?? true) && canBindMount()) {
      this.keysReadOnly = spawnSync('mount', ['--bind', this.keysDir, this.keysDir]).status === 0;
      if (this.keysReadOnly && spawnSync('mount', ['-o', 'remount,bind,ro', this.keysDir]).status !== 0)
        throw new Error('cannot remount the keys dir read-only');
    }
    this.admin = await openAdmin(loadConfig(this.nodes[0]!.configFile), { actor: 'os:test' });
    await addRole(this.admin, { name: 'ops' });
    for (const n of this.nodes) await n.start();

    const shipped = backendOptions(readFileSync(DEPLOY_HAPROXY, 'utf8'), 'tmuxgate').map((l) => l.replace(/\binter \S+/, 'inter 200ms'));
    const servers = this.nodes.map((n) => `server ${n.name} 127.0.0.1:${n.port}`);
    this.hp = await startHaproxy(this.dir, [
      { name: 'lb', backend: [...shipped, ...servers] },
      ...this.nodes.map((n, i) => ({ name: `n${i}`, backend: [...shipped, servers[i]!] })),
    ]);
    // All nodes present the same host key (one keys dir): one known_hosts line per frontend.
    const known = (JSON.parse((await this.cli(['hostkey', '--json'])).stdout) as { knownHosts: string }).knownHosts.replace(/^\S+\s/, '');
    writeFileSync(
      this.knownHostsFile,
      Object.values(this.hp.ports)
        .map((p) => `[127.0.0.1]:${p} ${known}\n`)
        .join(''),
    );
    await this.waitHealthy();
  }

  /**
   * Waits until HAProxy counts every running node up in every backend that names it: HAProxy
   * starts servers up and logs only changes, so the last change logged is UP or there is none.
   */
  async waitHealthy(timeoutMs = 15_000): Promise<void> {
    for (const [i, n] of this.nodes.entries()) {
      if (!n.running) continue;
      for (const backend of ['lb_nodes', `n${i}_nodes`]) {
        const last = () => [...this.hp.output().matchAll(new RegExp(`Server ${backend}/${n.name} is (UP|DOWN)`, 'g'))].at(-1)?.[1];
        await waitUntil(() => last() !== 'DOWN', `${backend}/${n.name} up in haproxy`, timeoutMs);
      }
    }
  }

  /** The frontend port: the balancer (`lb`) or one node's own (by index). */
  port(via: 'lb' | number): number {
    return this.hp.ports[via === 'lb' ? 'lb' : `n${via}`]!;
  }

  /** `tmuxgate ARGS` against the shared store, with node `node`'s config file. */
  cli(args: string[], node = 0): Promise<CliResult> {
    return cliAsync([...args, '--config', this.nodes[node]!.configFile], { env: { HOME: this.home } });
  }

  /** A user with an ed25519 key and a confirmed TOTP secret (the confirm spends the current step), granted `role`. */
  async user(name: string, role = 'ops'): Promise<ClusterUser> {
    if (!(await this.admin.roles.find(role))) await addRole(this.admin, { name: role });
    await addUser(this.admin, name, role);
    const { keyFile, pubFile } = makeKey(this.dir, name);
    await addKey(this.admin, name, readFileSync(pubFile, 'utf8'));
    const { secret } = await enrollTotp(this.admin, name);
    const step = Math.floor(Date.now() / STEP_MS);
    await confirmTotp(this.admin, name, totpCode(secret, step * STEP_MS));
    return { name, keyFile, secret, lastStep: step };
  }

  /**
   * The user's next unspent code (marked spent here): the current step if free, else the next one,
   * which the default window of 1 accepts. A third code in one step needs another user.
   */
  code(u: ClusterUser): string {
    const step = Math.max(Math.floor(Date.now() / STEP_MS), u.lastStep + 1);
    if (step > Math.floor(Date.now() / STEP_MS) + 1)
      throw new Error(`no unspent TOTP step for ${u.name} before ${new Date((step - 1) * STEP_MS).toISOString()}: use another user`);
    u.lastStep = step;
    return totpCode(u.secret, step * STEP_MS);
  }

  /** The real OpenSSH client in a pty, through frontend `via`, from loopback address `from` (the PROXY header names it). */
  ssh(u: { keyFile: string }, login: string, via: 'lb' | number, from = '127.0.0.1', command: string[] = []): PtyDriver {
    const args = hermeticSshArgs({ port: this.port(via), keyFile: u.keyFile, knownHostsFile: this.knownHostsFile, login, extra: ['-b', from], command });
    const d = new PtyDriver('ssh', args, { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, TERM: 'xterm-256color', LANG: 'C.UTF-8' });
    this.drivers.push(d);
    return d;
  }

  /** Logs `u` in through `via` with `code` (default: its next one); resolves once the shell answers a command. */
  async login(u: ClusterUser, via: 'lb' | number, opts: { from?: string; code?: string; timeoutMs?: number } = {}): Promise<PtyDriver> {
    const d = this.ssh(u, u.name, via, opts.from);
    await d.waitFor('Verification code:', opts.timeoutMs);
    d.write((opts.code ?? this.code(u)) + '\r');
    await d.waitFor(`[${u.name}+`, opts.timeoutMs);
    await this.run(d, 'echo READY-$((40+2))', 'READY-42');
    return d;
  }

  /** Types a command and waits for `expect` after it. */
  async run(d: PtyDriver, cmd: string, expect: string | RegExp, timeoutMs = 15_000): Promise<string> {
    const from = d.out.length;
    d.write(cmd + '\r');
    return d.waitFor(expect, timeoutMs, from);
  }

  /** Audit rows of one type from the shared chain. */
  async audit(type: string): Promise<{ actor: string; data: Record<string, unknown> }[]> {
    return (await readAudit(this.admin.auditEvents, { type })).map((r) => ({ actor: r.actor, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  /** The tail of every node's output, for a failing test's message. */
  tails(chars = 4000): string {
    return this.nodes.map((n) => `--- ${n.name} ---\n${n.log.slice(-chars)}`).join('\n');
  }

  /** Stops everything: clients, HAProxy, nodes, tmux servers, the OS accounts the store made, PostgreSQL, the temp dir. */
  async stop(): Promise<void> {
    const step = async (what: string, f: () => unknown): Promise<void> => {
      try {
        await f();
      } catch (e) {
        process.stderr.write(`cluster cleanup: ${what}: ${(e as Error).message}\n`);
      }
    };
    for (const d of this.drivers) d.kill();
    await step('haproxy', () => this.hp?.stop());
    await step('nodes', () => Promise.all(this.nodes.map((n) => n.stop(5_000))));
    for (const n of this.nodes) {
      killTmuxServers(n.socketDir);
      rmSync(n.socketDir, { recursive: true, force: true });
    }
    if (this.admin) {
      await step('accounts', async () => {
        const accounts = await this.admin.hostAccounts.allAccounts();
        for (const a of accounts) spawnSync('pkill', ['-KILL', '-u', a], { stdio: 'ignore' });
        for (const a of accounts) spawnSync('userdel', [a], { stdio: 'ignore' });
      });
      await step('admin', () => this.admin.close());
    }
    await step('postgres', () => this.pg?.stop());
    // Never leave a mount behind (a lazy unmount if something still holds it).
    if (this.keysReadOnly && spawnSync('umount', [this.keysDir]).status !== 0) spawnSync('umount', ['-l', this.keysDir]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
