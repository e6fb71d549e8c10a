import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
// Shared benchmark plumbing: a tmuxgate gateway and a Debian sshd side by side on loopback,
// both running /bin/sh as the same OS account (tgbench) inside tmux, driven by the real ssh client.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, chmodSync, rmSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import * as pty from 'node-pty';
import ssh2 from 'ssh2';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const BIN = path.join(ROOT, 'bin/tmuxgate.js');
const { totpCode } = await import(path.join(ROOT, 'dist/auth/totp.js'));

export const ACCOUNT = 'tgbench';

/**
 * Every Gateway and Sshd a bench started, stopped if the bench dies of an uncaught exception: a
 * throw in a pty or socket callback skips the bench's own `finally`, and would leave the server,
 * its tmux servers and its pair accounts behind.
 */
const running = new Set();
const stopAll = (e) => {
  for (const s of running) {
    try {
      s.stop();
    } catch {
      /* best effort */
    }
  }
  console.error(e);
  process.exit(1);
};
process.once('uncaughtException', stopAll);
process.once('unhandledRejection', stopAll);

/** Makes sure the benchmark OS account exists (/bin/sh login shell, so no rc files differ). */
export function ensureAccount() {
  if (spawnSync('id', [ACCOUNT]).status !== 0) execFileSync('useradd', ['-m', '-s', '/bin/sh', ACCOUNT]);
  execFileSync('usermod', ['-p', '*', ACCOUNT]); // not locked ('!'), or sshd without PAM refuses it
}

export function waitFor(cond, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = cond();
      if (v) return resolve(v);
      if (Date.now() > deadline) return reject(new Error(`timeout: ${what}`));
      setTimeout(tick, 2);
    };
    tick();
  });
}

/**
 * Runs the real ssh client in a pty; resolves helpers to drive it. The driver must cost next to
 * nothing while it takes in tens of MB (it shares two cores with what it measures; measured, a
 * driver that kept one growing string used more CPU than the gateway): `out` keeps the first
 * 256 KB only (enough for logins), `bytes` counts everything, and `expect` scans new bytes only.
 */
export function sshClient(args, env = {}) {
  const p = pty.spawn('ssh', args, { name: 'xterm-256color', cols: 120, rows: 40, encoding: null, env: { PATH: process.env.PATH, HOME: env.HOME ?? os.tmpdir(), TERM: 'xterm-256color', ...env } });
  const c = { out: '', bytes: 0, exited: false, p, watch: null };
  const waiters = new Set();
  const wake = () => {
    for (const w of waiters) if (w.done()) (waiters.delete(w), w.resolve());
  };
  p.onData((d) => {
    c.bytes += d.length;
    if (c.out.length < 256 * 1024) c.out += d.toString('utf8');
    const w = c.watch;
    if (w && !w.hit) {
      const s = w.tail + d.toString('latin1');
      w.hit = s.includes(w.needle);
      w.tail = s.slice(-w.needle.length);
    }
  if (waiters.size) wake();
  });
  p.onExit(() => {
    c.exited = true;
    wake();
  });
  /**
   * Resolves when `cond(c)` holds or the client has exited, checked as each chunk arrives (a
   * timer poll would add its period to every measured login); rejects after `ms`.
   */
  c.until = (cond, what, ms = 30_000) =>
    new Promise((resolve, reject) => {
      const w = { done: () => c.exited || cond(c), resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => (waiters.delete(w), reject(new Error(`timeout: ${what}`))), ms);
      waiters.add(w);
      wake();
    });
  /** Resolves when `needle` arrives after this call. */
  c.expect = (needle, what, ms) => {
    const w = (c.watch = { needle, tail: '', hit: false });
    return c.until(() => w.hit, what, ms).then(() => {
      if (!w.hit) throw new Error(`${what}: the client exited`);
    });
  };
  return c;
}

export class Gateway {
  /** `ssh`: the config's ssh section as YAML flow text (default: caps out of the way of load benchmarks). */
  /**
   * `pairs`: the mode a root deployment runs (default): one OS account per (role, user), each
   * created ahead, as by an earlier login, so a measured login starts a new tmux server as an
   * existing unprivileged account, like the sshd side. Off for benchmarks with thousands of users.
   */
  constructor(users, extraYaml = '', ssh = '{ maxStartupsPerAddress: 500, maxStartupsPerPrefix: 1000, maxStartups: 1000 }', { pairs = true } = {}) {
    this.pairs = pairs;
    this.extraYaml = extraYaml;
    this.ssh = ssh;
    this.dir = mkdtempSync('/tmp/tgb-');
    chmodSync(this.dir, 0o711); // the run-as account must traverse to its socket dir
    this.users = users;
  }
  cli(args) {
    return execFileSync(process.execPath, [BIN, ...args, '--config', this.config], { encoding: 'utf8' });
  }
  async start() {
    running.add(this);
    this.config = path.join(this.dir, 'config.yaml');
    writeFileSync(this.config, `listen: { port: 0 }\ndataDir: ./data\nkeysDir: ./keys\nlog: { level: ${process.env.TG_BENCH_LOG ?? 'warn'} }\nssh: ${this.ssh}\nsessions: { defaultShell: /bin/sh${process.env.TG_BENCH_STARTS ? `, startsAtOnce: ${Number(process.env.TG_BENCH_STARTS)}` : ''} }\nisolation: ${this.pairs ? `{ pairAccounts: true, accountPrefix: tgb, homeBase: ${this.dir}/homes, uidMin: 64000, uidMax: 65999 }` : '{ pairAccounts: false, accountPrefix: tgb }'}\nmetrics: { enabled: true, port: 0 }\n${process.env.TG_BENCH_NICE !== undefined ? `nice: ${Number(process.env.TG_BENCH_NICE)}\n` : ''}${this.extraYaml}`);
    this.cli(['init']);
    this.cli(['role', 'add', 'bench', '--run-as', ACCOUNT, '--shell', '/bin/sh']);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(this.dir, 'id')]);
    this.secrets = [];
    // One user per login: a TOTP code is spent once per 30 s step per user. Enrolled in-process
    // through the same admin operations the CLI uses (the CLI's start-up cost x 1,000 users is minutes).
    const { loadConfig } = await import(path.join(ROOT, 'dist/config/load.js'));
    const { openAdmin } = await import(path.join(ROOT, 'dist/admin/context.js'));
    const ops = await import(path.join(ROOT, 'dist/admin/operations.js'));
    const { generateEd25519 } = await import(path.join(ROOT, 'dist/auth/host-key.js'));
    const admin = await openAdmin(loadConfig(this.config), { actor: 'os:bench' });
    for (let i = 0; i < this.users; i++) {
      const u = `u${i}`;
      await ops.addUser(admin, u, 'bench');
      const pair = generateEd25519('bench');
      writeFileSync(path.join(this.dir, `id_${u}`), pair.private, { mode: 0o600 });
      await ops.addKey(admin, u, pair.public);
      const { secret } = await ops.enrollTotp(admin, u);
      await ops.confirmTotp(admin, u, totpCode(secret, Date.now()));
      this.secrets.push(secret);
    }
    if (this.pairs) {
      // Each pair's account and home exist already, as after an earlier login of that user.
      const { Host } = await import(path.join(ROOT, 'dist/host/host.js'));
      const { silentLogger } = await import(path.join(ROOT, 'dist/platform/logger.js'));
      const host = new Host({ config: admin.config, repo: admin.hostAccounts, roles: admin.roles, clock: admin.clock, logger: silentLogger(), audit: admin.audit });
      host.prepareDirs();
      const role = await admin.roles.find('bench');
      for (let i = 0; i < this.users; i++) await host.pairForLogin(role, (await admin.users.find(`u${i}`)).id, `u${i}`, '/bin/sh');
      this.accounts = await admin.hostAccounts.allAccounts();
    }
    await admin.close();
    // TG_BENCH_PROF=<dir>: the gateway writes a V8 CPU profile there when it stops (bench/profile.mjs).
    const prof = process.env.TG_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TG_BENCH_PROF}`] : [];
    // TG_BENCH_NODE_ARGS="--flag ...": node/V8 flags for the gateway only (A/Bs of V8's tiers, GC).
    prof.push(...(process.env.TG_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []));
    // Its own session, as a service runs (systemd starts each in one): the kernel's sched autogroup
    // shares the CPU between sessions first, so this is where its priority counts (priority.ts).
    this.proc = spawn(process.execPath, [...prof, BIN, 'serve', '--config', this.config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let log = '';
    this.proc.stderr.on('data', (d) => (log += d));
    // TG_BENCH_LOG=debug: the gateway's JSON log lines are kept (bench/login-stages.mjs reads them).
    this.stdoutLog = [];
    this.proc.stdout.on('data', (d) => process.env.TG_BENCH_LOG && this.stdoutLog.push(d.toString()));
    const m = await waitFor(() => /listening on [\d.]+:(\d+)/.exec(log), 'gateway start');
    this.port = Number(m[1]);
    this.metricsUrl = (await waitFor(() => /metrics on (\S+)/.exec(log), 'metrics address'))[1];
    const host = JSON.parse(this.cli(['hostkey', '--json'])).knownHosts.replace(/^\[[^\]]+\]:\d+/, `[127.0.0.1]:${this.port}`);
    writeFileSync(path.join(this.dir, 'known_hosts'), host + '\n');
  }
  args(i) {
    return ['-F', '/dev/null', '-p', String(this.port), '-i', path.join(this.dir, `id_u${i}`), '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${path.join(this.dir, 'known_hosts')}`, `u${i}@127.0.0.1`];
  }
  /** Logs user i in; resolves when the shell inside tmux answered. */
  async login(i) {
    const c = sshClient(this.args(i), { HOME: this.dir });
    await c.until(() => c.out.includes('Verification code:'), 'prompt');
    c.p.write(totpCode(this.secrets[i], Date.now() + 30_000) + '\r'); // the confirm spent the current step
    // Type only once tmux drew its status line: a tmux client flushes input typed before it starts.
    await c.until(() => /tmuxgate[\s\S]*\$ /.test(c.out), 'prompt').catch((e) => {
      throw new Error(`${e.message} (user ${i}): ${c.out.slice(-400)}`);
    });
    if (c.exited) throw new Error('gateway login failed: ' + c.out);
    return c;
  }
  rssKb() {
    const s = readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
  }
  /** CPU time of all the gateway's threads in ms, to the nanosecond (/proc/<pid>/task/<tid>/schedstat; ticks are 10 ms). */
  cpuMs() {
    let ns = 0;
    for (const t of readdirSync(`/proc/${this.proc.pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${this.proc.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* thread ended */
      }
    }
    return ns / 1e6;
  }
  /** The gateway's /metrics as { name: value }. */
  async metrics() {
    const text = await (await fetch(this.metricsUrl)).text();
    return Object.fromEntries(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => [l.slice(0, l.lastIndexOf(' ')).replace(/^tmuxgate_/, ''), Number(l.slice(l.lastIndexOf(' ') + 1))]));
  }
  cpuTicks() {
    const f = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  }
  /** Stops the gateway; with `wait`, resolves once it has exited (a CPU profile is written then). */
  stop(wait = false) {
    running.delete(this);
    const exited = this.proc && this.proc.exitCode === null ? new Promise((r) => this.proc.once('exit', r)) : Promise.resolve();
    this.proc?.kill('SIGTERM');
    // Everything the run made outside its temp dir: tmux servers (under /run/tmuxgate/<hash of
    // the data dir> when root), the socket tree, and the pair and role accounts with their processes.
    const dataDir = path.join(this.dir, 'data');
    const tm = process.getuid() === 0 ? path.join('/run/tmuxgate', createHash('sha256').update(dataDir).digest('hex').slice(0, 12)) : path.join(dataDir, 'tmux');
    if (existsSync(tm)) {
      for (const d of readdirSync(tm).filter((x) => /^r\d+-u\d+$/.test(x))) {
        for (const f of readdirSync(path.join(tm, d)).filter((x) => x.endsWith('.sock'))) spawnSync('tmux', ['-S', path.join(tm, d, f), 'kill-server'], { stdio: 'ignore' });
      }
      rmSync(tm, { recursive: true, force: true });
    }
    // Every account the store recorded (the gateway may have made role accounts after start).
    try {
      const db = new Database(path.join(dataDir, 'tmuxgate.db'), { readonly: true });
      this.accounts = db.prepare('SELECT account FROM pair_accounts UNION ALL SELECT account FROM role_accounts').pluck().all();
      db.close();
    } catch {
      /* no store: nothing was made */
    }
    for (const a of this.accounts ?? []) spawnSync('pkill', ['-KILL', '-u', a], { stdio: 'ignore' });
    // Two passes: a role account is the primary group of its pairs, so it goes once they have.
    for (let pass = 0; pass < 2; pass++) for (const a of this.accounts ?? []) spawnSync('userdel', [a], { stdio: 'ignore' });
    if (!wait) return void rmSync(this.dir, { recursive: true, force: true });
    return exited.then(() => rmSync(this.dir, { recursive: true, force: true }));
  }
}

export class Sshd {
  /** `limits`: sshd_config lines for connection limits (default: out of the way of load benchmarks). */
  constructor(limits = ['MaxStartups 1000']) {
    this.limits = limits;
    this.dir = mkdtempSync('/tmp/tgs-');
    chmodSync(this.dir, 0o755);
  }
  async start() {
    running.add(this);
    mkdirSync('/run/sshd', { recursive: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(this.dir, 'host')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(this.dir, 'id')]);
    const ak = path.join(this.dir, 'authorized_keys');
    writeFileSync(ak, readFileSync(path.join(this.dir, 'id.pub')));
    chmodSync(ak, 0o644);
    this.port = 30000 + Math.floor(Math.random() * 20000);
    writeFileSync(
      path.join(this.dir, 'sshd_config'),
      [`Port ${this.port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(this.dir, 'host')}`, `AuthorizedKeysFile ${ak}`, 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'StrictModes no', ...this.limits, 'PidFile none', 'PrintMotd no', 'PrintLastLog no', 'LogLevel ERROR'].join('\n') + '\n',
    );
    this.proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(this.dir, 'sshd_config')], { stdio: 'ignore' });
    const net = await import('node:net');
    await waitFor(() => {
      const s = net.connect(this.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('connect', () => ((this.up = true), s.destroy()));
      return this.up;
    }, 'sshd start', 10_000);
    this.sock = path.join(this.dir, 'tmux');
    mkdirSync(this.sock, { recursive: true });
    chmodSync(this.sock, 0o777);
    // The same tmux.conf the gateway generates for its sessions (history-limit, terminal, status
    // line): the ratio is then the gateway's own cost, not the price of the product's tmux
    // settings (measured: history-limit 10000 alone costs the tmux server 10-20% on `seq`).
    const { tmuxConf } = await import(path.join(ROOT, 'dist/host/tmux.js'));
    this.conf = path.join(this.dir, 'tmux.conf');
    writeFileSync(this.conf, tmuxConf({ name: 'bench', tmuxOptions: {} }, '/bin/sh') + 'set -g status-left "[sshd+bench] "\n');
    chmodSync(this.conf, 0o644);
  }
  args(i, tmux = true) {
    // No command: tmux starts the conf's default-shell (/bin/sh) as a login shell, as in the
    // gateway's panes (a login shell reads /etc/profile: measured, ~8 ms more than `sh`).
    const cmd = tmux ? ['-t', `tmux -S ${this.sock}/s${i} -f ${this.conf} new-session -A -s main`] : ['-t'];
    return ['-F', '/dev/null', '-p', String(this.port), '-i', path.join(this.dir, 'id'), '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=/dev/null`, '-o', 'LogLevel=ERROR', ...cmd.slice(0, 1), `${ACCOUNT}@127.0.0.1`, ...cmd.slice(1)];
  }
  async login(i, tmux = true) {
    const c = sshClient(this.args(i, tmux), { HOME: this.dir });
    await c.until(() => (tmux ? /\[sshd\+bench\][\s\S]*\$ / : /\$ /).test(c.out), 'sshd prompt');
    if (c.exited) throw new Error('sshd login failed: ' + c.out);
    return c;
  }
  stop() {
    running.delete(this);
    this.proc?.kill('SIGTERM');
    for (const f of existsSync(this.sock) ? readdirSync(this.sock) : []) spawnSync('tmux', ['-S', path.join(this.sock, f), 'kill-server'], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/**
 * Types one key into a probe shell running cat and resolves with the ms until its echo arrives,
 * timed from the data event itself (a 2 ms poll was as large as the figure). `probe` has `ch`
 * (the channel) and an `onData` hook that its data handler calls.
 */
export async function echoOnce(probe, ch) {
  let t1 = 0;
  const echoed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout: echo')), 10_000);
    probe.onData = (d) => {
      if (d.includes(ch)) {
        t1 = performance.now();
        probe.onData = null;
        clearTimeout(timer);
        resolve();
      }
    };
  });
  const t0 = performance.now();
  probe.ch.write(ch);
  await echoed;
  return t1 - t0;
}

/**
 * An in-process ssh2 client (light enough for thousands of sessions) with a shell or `command` in
 * a 120x40 pty, answering keyboard-interactive with `code()`. Resolves with { c, ch, data } once
 * the channel is open; `data` keeps the last 100-200 KB of output, `onData` sees every chunk.
 */
export function sshShell(opts) {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    const out = { c, data: '', ch: null };
    c.on('keyboard-interactive', (_n, _i, _l, _p, finish) => finish([opts.code()]));
    c.on('error', reject);
    c.on('ready', () => {
      const onCh = (err, ch) => {
        if (err) return reject(err);
        out.ch = ch;
        ch.on('data', (d) => {
          out.onData?.(d);
          out.data += d.toString('latin1');
          if (out.data.length > 200_000) out.data = out.data.slice(-100_000);
        });
        ch.stderr?.on('data', () => {});
        resolve(out);
      };
      const pty = { term: 'xterm-256color', cols: 120, rows: 40 };
      if (opts.command) c.exec(opts.command, { pty }, onCh);
      else c.shell(pty, onCh);
    });
    c.connect({
      host: '127.0.0.1',
      port: opts.port,
      username: opts.username,
      privateKey: opts.key,
      tryKeyboard: true,
      hostVerifier: () => true,
      readyTimeout: 60_000,
      ...(opts.cipher ? { algorithms: { cipher: [opts.cipher] } } : {}),
    });
  });
}

/**
 * Self time (ms) per function and per package of a V8 CPU profile, optionally only for samples
 * between `window.from` and `window.to` (microseconds on the profile's clock).
 */
export function selfTimes(prof, window = null) {
  const self = new Map();
  let at = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    at += prof.timeDeltas[i] ?? 0;
    if (window && (at < window.from || at > window.to)) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0) / 1000);
  }
  const byFn = new Map();
  const byPkg = new Map();
  for (const n of prof.nodes) {
    const ms = self.get(n.id) ?? 0;
    if (!ms) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const where = url.replace(/^file:\/\//, '');
    const pkg = !url
      ? functionName.startsWith('(') ? functionName : '(native)'
      : /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ?? (where.includes('/dist/') ? 'tmuxgate:' + where.split('/dist/')[1].split('/')[0] : where.startsWith('node:') ? 'node' : path.basename(where));
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + ms);
    const key = `${functionName || '(anonymous)'} ${path.basename(where)}:${lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + ms);
  }
  return { byFn, byPkg };
}
