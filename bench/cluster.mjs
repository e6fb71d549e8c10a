#!/usr/bin/env node
// Several nodes (issue 13), in one run, as ratios:
//   login:  spawn ssh -> first prompt in tmux, through HAProxy (send-proxy-v2) to two nodes on
//           PostgreSQL 15, vs one node on SQLite, vs sshd; interleaved, p50/p99
//   relay:  keystroke echo on a relayed session (lands on node B, tmux server on node A) vs a
//           direct one (lands on node B, tmux server on B), probes taking turns key by key
//   idle:   N idle sessions through HAProxy over the two nodes: RSS per node, sessions per node,
//           PostgreSQL connections (pg_stat_activity) before and with the sessions
// Usage: node bench/cluster.mjs [--quick] [--sessions N] [--logins N] [--only login,relay,idle] [--stages]   (root)
// Quick: 20 logins a side, 150 echo samples, 200 idle sessions. Full: 100, 400, 2,000.
// Appends a dated table to RESULTS.md.
// Each server (the nodes, PostgreSQL, HAProxy; lib.mjs's one-node gateway) runs in a session of its
// own, as a service manager starts it: with sched autogroup on, the kernel shares the CPU between
// sessions first, and a server left in this script's session would share one slice with it.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ACCOUNT, Gateway, Sshd, ensureAccount, echoOnce, pct, sshClient, sshShell, waitFor } from './lib.mjs';
import { freePort, startPostgres, stopPostgres } from './pg-server.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const BIN = path.join(ROOT, 'bin/tmuxgate.js');
const { totpCode } = await import(path.join(ROOT, 'dist/auth/totp.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const quick = process.argv.includes('--quick');
// --stages: the nodes log at debug level, and the login section prints where each side's logins spend their time.
// TG_BENCH_PGLOG=<file>: PostgreSQL logs every statement with its duration there (log_min_duration_statement=0).
const stages = process.argv.includes('--stages');
if (stages) process.env.TG_BENCH_LOG ??= 'debug';
const only = arg('only', 'login,relay,idle').split(',');
const LOGINS = Number(arg('logins', quick ? 20 : 100));
const SAMPLES = quick ? 150 : 400;
const IDLE = Number(arg('sessions', quick ? 200 : 2000));
const rows = [];
const row = (what, cl, base, baseName, unit, target) => {
  const ratio = typeof base === 'number' ? +(cl / base).toFixed(3) : '-';
  rows.push({ what, cl, base, baseName, unit, ratio, target });
  console.log(`${what}: ${cl} ${unit}${typeof base === 'number' ? ` vs ${baseName} ${base} ${unit}, ratio ${ratio}` : ''} (target ${target})`);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


/** The tmux servers under a gateway's socket dir (/run/tmuxgate/<hash of its data dir> as root): killed, the dir removed. */
function killTmuxOf(dataDir) {
  const tm = path.join('/run/tmuxgate', createHash('sha256').update(dataDir).digest('hex').slice(0, 12));
  if (!existsSync(tm)) return;
  for (const d of readdirSync(tm).filter((x) => /^r\d+-u\d+$/.test(x))) {
    for (const f of readdirSync(path.join(tm, d)).filter((x) => x.endsWith('.sock'))) spawnSync('tmux', ['-S', path.join(tm, d, f), 'kill-server'], { stdio: 'ignore' });
  }
  rmSync(tm, { recursive: true, force: true });
}

/**
 * PostgreSQL 15, HAProxy 2.6 with the shipped backend options (deploy/haproxy.cfg: leastconn,
 * send-proxy-v2, tcp-check) and two `tmuxgate serve` nodes on one keys dir, on loopback. The
 * nodes run without pair accounts (the role runs /bin/sh as tgbench, as sshd's side does), so
 * thousands of users need no OS accounts. Frontends: `lb` (both nodes), `n0`, `n1` (one each).
 */
class Cluster {
  constructor(users) {
    this.users = users;
    this.dir = mkdtempSync('/tmp/tgcl-');
    chmodSync(this.dir, 0o711);
    this.nodes = [];
  }

  async startPostgres() {
    const { proc, port, url } = await startPostgres(this.dir, { logFile: process.env.TG_BENCH_PGLOG ?? null });
    this.pg = proc;
    this.pgPort = port;
    this.pgUrl = url;
  }

  /** Connections to the store by application name (nodes: 'tmuxgate'; this script's admin: 'tmuxgate-cli'). */
  async pgConnections() {
    const c = new pg.Client({ connectionString: this.pgUrl('postgres') });
    await c.connect();
    const r = await c.query("SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity WHERE datname = 'tmuxgate' GROUP BY 1");
    await c.end();
    return Object.fromEntries(r.rows.map((x) => [x.app, x.n]));
  }

  cli(args, node = 0) {
    return execFileSync(process.execPath, [BIN, ...args, '--config', this.nodes[node].config], { encoding: 'utf8' });
  }

  async start() {
    await this.startPostgres();
    const urlFile = path.join(this.dir, 'pg.url');
    writeFileSync(urlFile, this.pgUrl('tmuxgate') + '\n', { mode: 0o600 });
    for (const name of ['node-a', 'node-b']) {
      const port = await freePort();
      const link = await freePort();
      const dataDir = path.join(this.dir, name, 'data');
      const config = path.join(this.dir, `${name}.yaml`);
      writeFileSync(
        config,
        [
          `listen: { host: 127.0.0.1, port: ${port}, proxyProtocol: { trustedFrom: [127.0.0.1/32] } }`,
          `dataDir: ${dataDir}`,
          `keysDir: ${path.join(this.dir, 'keys')}`,
          `store: { kind: postgres, urlFile: ${urlFile} }`, // pool: the default, 10 per node
          `cluster: { nodeId: ${name}, link: { listen: '127.0.0.1:${link}' } }`, // heartbeat 2s, deadAfter 10s: the defaults
          `log: { level: ${process.env.TG_BENCH_LOG ?? 'warn'} }`,
          'ssh: { maxStartupsPerAddress: 500, maxStartupsPerPrefix: 1000, maxStartups: 1000 }',
          'sessions: { defaultShell: /bin/sh }',
          // One shared account for thousands of sessions: RLIMIT_NPROC (maxProcesses) counts all of them.
          'isolation: { pairAccounts: false, accountPrefix: tgb, maxProcesses: 20000 }',
          '',
        ].join('\n'),
      );
      this.nodes.push({ name, port, dataDir, config, proc: null });
    }
    this.cli(['init']);
    this.cli(['role', 'add', 'bench', '--run-as', ACCOUNT, '--shell', '/bin/sh']);
    const { loadConfig } = await import(path.join(ROOT, 'dist/config/load.js'));
    const { openAdmin } = await import(path.join(ROOT, 'dist/admin/context.js'));
    this.ops = await import(path.join(ROOT, 'dist/admin/operations.js'));
    const { generateEd25519 } = await import(path.join(ROOT, 'dist/auth/host-key.js'));
    this.admin = await openAdmin(loadConfig(this.nodes[0].config), { actor: 'os:bench' });
    this.secrets = [];
    for (let i = 0; i < this.users; i++) {
      const u = `c${i}`;
      await this.ops.addUser(this.admin, u, 'bench');
      const pair = generateEd25519('bench');
      writeFileSync(path.join(this.dir, `id_${u}`), pair.private, { mode: 0o600 });
      await this.ops.addKey(this.admin, u, pair.public);
      const { secret } = await this.ops.enrollTotp(this.admin, u);
      await this.ops.confirmTotp(this.admin, u, totpCode(secret, Date.now()));
      this.secrets.push(secret);
      if (i % 500 === 499) console.log(`  ${i + 1} users enrolled`);
    }
    for (const n of this.nodes) {
      n.proc = spawn(process.execPath, [BIN, 'serve', '--config', n.config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      n.log = '';
      n.proc.stdout.on('data', (d) => (n.log += d));
      n.proc.stderr.on('data', (d) => (n.log += d));
      await waitFor(() => /listening on /.test(n.log) || n.proc.exitCode !== null, `${n.name} start`, 60_000);
      if (n.proc.exitCode !== null) throw new Error(`${n.name} exited: ${n.log.slice(-1000)}`);
    }
    // The shipped backend options, the server lines ours.
    let inside = false;
    const shipped = [];
    for (const line of readFileSync(path.join(ROOT, 'deploy/haproxy.cfg'), 'utf8').split('\n')) {
      if (/^\S/.test(line)) inside = line.trim() === 'backend tmuxgate';
      else if (inside && line.trim() && !line.trim().startsWith('#') && !line.trim().startsWith('server ')) shipped.push(line.trim());
    }
    this.ports = { lb: await freePort(), n0: await freePort(), n1: await freePort() };
    const servers = this.nodes.map((n) => `server ${n.name} 127.0.0.1:${n.port}`);
    const fe = (name, srv) => [`frontend ${name}`, `  bind 127.0.0.1:${this.ports[name]}`, `  default_backend ${name}_nodes`, `backend ${name}_nodes`, ...[...shipped, ...srv].map((l) => `  ${l}`)];
    // maxconn: two fds per connection under this machine's hard limit of open files (ulimit -Hn).
    const cfg = ['global', '  maxconn 8000', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 1h', '  timeout server 1h', '  timeout check 3s', ...fe('lb', servers), ...fe('n0', [servers[0]]), ...fe('n1', [servers[1]]), ''];
    writeFileSync(path.join(this.dir, 'haproxy.cfg'), cfg.join('\n'));
    this.hp = spawn('haproxy', ['-db', '-f', path.join(this.dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.hpLog = '';
    this.hp.stdout.on('data', (d) => (this.hpLog += d));
    this.hp.stderr.on('data', (d) => (this.hpLog += d));
    const known = JSON.parse(this.cli(['hostkey', '--json'])).knownHosts.replace(/^\S+\s/, '');
    this.knownHosts = path.join(this.dir, 'known_hosts');
    writeFileSync(this.knownHosts, Object.values(this.ports).map((p) => `[127.0.0.1]:${p} ${known}\n`).join(''));
    // Every frontend listening (read from /proc: a probe would be relayed and counted), then the first checks.
    const listening = (port) => readFileSync('/proc/net/tcp', 'utf8').includes(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`);
    await waitFor(() => Object.values(this.ports).every(listening) || this.hp.exitCode !== null, 'haproxy listening', 10_000);
    if (this.hp.exitCode !== null) throw new Error(`haproxy exited: ${this.hpLog}`);
    await sleep(2500);
  }

  args(i, via = 'lb') {
    return ['-F', '/dev/null', '-p', String(this.ports[via]), '-i', path.join(this.dir, `id_c${i}`), '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${this.knownHosts}`, `c${i}@127.0.0.1`];
  }

  /** The real OpenSSH client through HAProxy; resolves when the shell inside tmux answered (as Gateway.login). */
  async login(i, via = 'lb') {
    const c = sshClient(this.args(i, via), { HOME: this.dir });
    await c.until(() => c.out.includes('Verification code:'), 'prompt');
    c.p.write(totpCode(this.secrets[i], Date.now() + 30_000) + '\r');
    await c.until(() => /tmuxgate[\s\S]*\$ /.test(c.out), 'prompt').catch((e) => {
      throw new Error(`${e.message} (user c${i}): ${c.out.slice(-400)}`);
    });
    if (c.exited) throw new Error('cluster login failed: ' + c.out);
    return c;
  }

  /** An in-process ssh2 client through frontend `via` (light enough for thousands), answering `code`. */
  connect(i, via, code) {
    return sshShell({ port: this.ports[via], username: `c${i}`, key: readFileSync(path.join(this.dir, `id_c${i}`)), code: () => code }).then((out) =>
      waitFor(() => /tmuxgate[\s\S]*\$ /.test(out.data), `prompt of c${i}`, 60_000).then(() => out),
    );
  }

  rssKb(n) {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${n.proc.pid}/status`, 'utf8'))[1]);
  }

  async stop() {
    await this.admin?.close().catch(() => {});
    this.hp?.kill('SIGKILL');
    await Promise.all(
      this.nodes.map((n) => {
        if (!n.proc || n.proc.exitCode !== null) return undefined;
        const gone = new Promise((r) => n.proc.once('exit', r));
        n.proc.kill('SIGTERM');
        const t = setTimeout(() => n.proc.kill('SIGKILL'), 15_000);
        return gone.then(() => clearTimeout(t));
      }),
    );
    for (const n of this.nodes) killTmuxOf(n.dataDir);
    await stopPostgres(this.pg);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Echo latencies (ms) on several probes running `cat`, one key on each in turn (as bench/load.mjs). */
async function echoLatencies(probes, samples) {
  for (const p of probes) p.ch.write('cat\r');
  await sleep(300);
  const lat = probes.map(() => []);
  for (let i = 0; i < samples; i++) {
    const ch = 'abcdefghijklmnopqrstuvwxyz'[i % 26];
    for (const [k, p] of probes.entries()) {
      lat[k].push(await echoOnce(p, ch));
      await sleep(10 + Math.random() * 20);
    }
  }
  for (const p of probes) p.ch.write('\x03');
  return lat;
}

/**
 * Per login, from a node's debug log (JSON lines): ms from the client's spawn to the public key
 * accepted, then to authenticated, to the session prepared, to session.start, and to the prompt
 * the client saw; medians over the logins. `spans`: [user, wall-clock spawn, wall-clock prompt].
 */
function loginStages(log, spans) {
  const byConn = new Map();
  const connOf = new Map();
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    const t = typeof e.time === 'number' ? e.time : Date.parse(e.time);
    if (e.msg === 'public key accepted; asking for TOTP') connOf.set(e.user, e.conn);
    const id = e.conn ?? e.connId;
    if (!id) continue;
    const r = byConn.get(id) ?? {};
    if (e.msg === 'public key accepted; asking for TOTP') r.key = t;
    if (e.msg === 'authenticated') r.auth = t;
    if (e.msg?.startsWith('session prepared')) r.prepared = t;
    if (e.audit === 'session.start') r.start = t;
    byConn.set(id, r);
  }
  const rows = spans.map(([user, w0, w1]) => ({ w0, w1, ...byConn.get(connOf.get(user)) })).filter((r) => r.key && r.auth && r.prepared && r.start);
  const med = (f) => +pct(rows.map(f), 50).toFixed(1);
  return [med((r) => r.key - r.w0), med((r) => r.auth - r.key), med((r) => r.prepared - r.auth), med((r) => r.start - r.prepared), med((r) => r.w1 - r.start)];
}

ensureAccount();
const cl = new Cluster((only.includes('login') ? LOGINS : 0) + (only.includes('relay') ? 2 : 0) + (only.includes('idle') ? IDLE : 0));
const single = only.includes('login') ? new Gateway(LOGINS, '', undefined, { pairs: false }) : null;
const sshd = only.includes('login') ? new Sshd() : null;
let note = '';
try {
  console.log(`setting up: PostgreSQL, 2 nodes, HAProxy, ${cl.users} users${single ? '; one SQLite node and sshd' : ''}...`);
  await cl.start();
  await single?.start();
  await sshd?.start();
  let next = 0;

  if (only.includes('login')) {
    const [c, g, s] = [[], [], []];
    const spans = { cluster: [], single: [] }; // [user, wall-clock start, end] per login, for --stages
    for (let i = 0; i < LOGINS; i++) {
      let t0 = performance.now();
      let w0 = Date.now();
      const a = await cl.login(next);
      spans.cluster.push([`c${next++}`, w0, Date.now()]);
      c.push(performance.now() - t0);
      a.p.kill();
      t0 = performance.now();
      w0 = Date.now();
      const b = await single.login(i);
      spans.single.push([`u${i}`, w0, Date.now()]);
      g.push(performance.now() - t0);
      b.p.kill();
      t0 = performance.now();
      const d = await sshd.login(1000 + i);
      s.push(performance.now() - t0);
      d.p.kill();
    }
    if (stages) {
      for (const [side, log] of [
        ['cluster', cl.nodes.map((n) => n.log).join('\n')],
        ['single', single.stdoutLog.join('')],
      ]) {
        console.log(`${side}: median ms of ${LOGINS} logins (spawn -> key accepted -> authenticated -> session prepared -> session.start -> prompt seen)`);
        console.log('  ' + loginStages(log, spans[side]).join(' / '));
      }
    }
    for (const p of [50, 99]) {
      const [cv, gv, sv] = [c, g, s].map((x) => +pct(x, p).toFixed(1));
      row(`login p${p}, HAProxy + 2 nodes on PostgreSQL (n=${LOGINS})`, cv, sv, 'sshd', 'ms', p === 50 ? '<= 0.5' : '-');
      row(`login p${p}, HAProxy + 2 nodes on PostgreSQL vs 1 node on SQLite`, cv, gv, '1 node (SQLite)', 'ms', '-');
      row(`login p${p}, 1 node on SQLite (no balancer)`, gv, sv, 'sshd', 'ms', p === 50 ? '<= 0.5' : '-');
    }
  }

  if (only.includes('relay')) {
    // Relayed: a session on node A, left; the same user again through node B's frontend (a
    // recovery code: the TOTP step is spent) lands on A's tmux server over the link.
    const r = next++;
    const d = next++;
    const first = await cl.connect(r, 'n0', totpCode(cl.secrets[r], Date.now() + 30_000));
    first.c.end();
    for (const deadline = Date.now() + 15_000; (await cl.admin.sessions.list({ live: true, user: `c${r}` })).length > 0; ) {
      if (Date.now() > deadline) throw new Error('the first session did not close');
      await sleep(100);
    }
    const [code] = await cl.ops.generateRecoveryCodes(cl.admin, `c${r}`, 1);
    const relayed = await cl.connect(r, 'n1', code);
    const direct = await cl.connect(d, 'n1', totpCode(cl.secrets[d], Date.now() + 30_000));
    const live = await cl.admin.sessions.list({ live: true });
    const where = (u) => live.find((x) => x.user_name === u);
    if (where(`c${r}`)?.server_node_id !== 'node-a' || where(`c${d}`)?.server_node_id !== null) throw new Error(`not relayed/direct as meant: ${JSON.stringify(live)}`);
    await sleep(1000);
    const [rl, dl] = await echoLatencies([relayed, direct], SAMPLES);
    for (const p of [50, 99]) row(`keystroke echo p${p}, relayed (B -> A's tmux) vs direct (B's tmux), ${SAMPLES} keys`, +pct(rl, p).toFixed(2), +pct(dl, p).toFixed(2), 'direct', 'ms', p === 99 ? '<= 1.3' : '-');
    relayed.c.end();
    direct.c.end();
  }

  if (only.includes('idle')) {
    const pg0 = await cl.pgConnections();
    const rss0 = cl.nodes.map((n) => cl.rssKb(n));
    const open = [];
    const t0 = Date.now();
    let failed = 0;
    // Ten logins at a time through the balancer (leastconn spreads them).
    while (open.length + failed < IDLE) {
      const batch = Array.from({ length: Math.min(10, IDLE - open.length - failed) }, () => next++);
      const got = await Promise.allSettled(batch.map((i) => cl.connect(i, 'lb', totpCode(cl.secrets[i], Date.now() + 30_000))));
      for (const g of got) {
        if (g.status === 'fulfilled') open.push(g.value);
        else if (++failed <= 3) console.log(`  a login failed: ${g.reason?.message}`);
      }
      if ((open.length + failed) % 500 === 0) console.log(`  ${open.length} sessions open (${failed} failed), ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      if (failed > 20) {
        note = `stopped after ${failed} failed logins at ${open.length} sessions`;
        break;
      }
    }
    await sleep(5000);
    const perNode = {};
    for (const s of await cl.admin.sessions.list({ live: true })) perNode[s.node_id] = (perNode[s.node_id] ?? 0) + 1;
    const pg1 = await cl.pgConnections();
    const n = open.length;
    for (const [k, node] of cl.nodes.entries()) {
      row(`RSS of ${node.name} with ${perNode[node.name] ?? 0} of ${n} idle sessions (before: ${(rss0[k] / 1024).toFixed(0)} MB)`, +(cl.rssKb(node) / 1024).toFixed(1), '-', '', 'MB', '-');
    }
    row(`PostgreSQL connections of the nodes (pg_stat_activity), ${n} idle sessions (before: ${pg0.tmuxgate ?? 0})`, pg1.tmuxgate ?? 0, '-', '', 'connections', '<= 2 x pool (20)');
    row(`time to open ${n} sessions through HAProxy, 10 at a time`, +((Date.now() - t0) / 1000 - 5).toFixed(0), '-', '', 's', '-');
    for (const s of open) s.c.end();
  }
} finally {
  await cl.stop();
  single?.stop();
  sshd?.stop();
}
const date = new Date().toISOString().slice(0, 10);
const load = os.loadavg()[0].toFixed(1);
let md = `\n## ${date} cluster ${quick ? '(quick)' : '(full)'} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load average ${load} at the end\n\n`;
md += '| measure | value | baseline | baseline value | unit | ratio | target |\n| --- | --- | --- | --- | --- | --- | --- |\n';
for (const r of rows) md += `| ${r.what} | ${r.cl} | ${r.baseName || '-'} | ${r.base} | ${r.unit} | ${r.ratio} | ${r.target} |\n`;
if (note) md += `\n${note}\n`;
appendFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
console.log(md);
process.exit(0);
