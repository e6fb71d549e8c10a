#!/usr/bin/env node
// Off-box recording shipping: recording CPU with shipping on vs off, and the lag from "durable in
// the local file" to "acknowledged by the sink" (p50/p99), at N concurrent sessions.
//
// N recorders (the real Recorder: deflate, AES-256-GCM, hash chain, one file each, fdatasync per
// 1 s flush) each receive a steady log stream (~20 KB/s of timestamped lines in 2 KB writes every
// 100 ms, 0.4 MB/s at 20 sessions, 4 MB/s at 200; the lines are made before measuring, so the CPU
// is the recording's alone). Rounds alternate: shipping off, then on to a real PostgreSQL 15
// through the insert-only role, then (with --s3) on to s3rver in a child process. CPU is this
// process's (all threads: recorders, shipper, pg client, AWS SDK); PostgreSQL and s3rver run in
// their own processes, but on loopback the kernel's TCP work for both ends is charged to the
// sender. Figure: median of the rounds.
//
// Usage: sudo node bench/evidence.mjs [--quick] [--sessions N] [--seconds S] [--rounds R] [--s3 | --only s3|postgres] [--append] [--profile DIR]
//   --quick: 20 sessions, 3 rounds of 8 s each side; default (full): 200 sessions, 5 rounds of 20 s.
//   --append: add the table to bench/RESULTS.md (only from a quiet machine).
//   --profile DIR: profiles this process's main thread (node:inspector) during each measured
//   window, writes the last round's .cpuprofile and .heapprofile of each side into DIR, and prints
//   per side, per MB of log lines: self time by package, the bytes allocated by stack (garbage
//   included) and the functions that grew most against "off". The samples are wall time on the
//   main thread: a syscall (writev to a loopback socket) also counts the time the receiver ran
//   on this core meanwhile; process CPU (user, system) is printed beside it. Profiling costs CPU
//   itself: the ratios of a --profile run are not figures.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, generateKeyPairSync, sign } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { selfTimes } from './lib.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dist = (p) => import(path.join(ROOT, 'dist', p));
const { Recorder } = await dist('recording/recorder.js');
const { FileSink } = await dist('recording/sink.js');
const { aesGcmSealer } = await dist('crypto/sealer.js');
const { systemClock } = await dist('platform/clock.js');
const { PostgresSql } = await dist('store/postgres.js');
const { migratePostgres } = await dist('store/postgres-migrate.js');
const { PostgresOffsite } = await dist('evidence/offsite-postgres.js');
const { S3Offsite } = await dist('evidence/offsite-s3.js');
const { RecordingShipper } = await dist('evidence/recording-shipper.js');
const { readRange } = await dist('gateway/evidence-recordings.js');
const pg = (await import('pg')).default;

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const quick = process.argv.includes('--quick');
const SESSIONS = arg('--sessions', quick ? 20 : 200);
const SECONDS = arg('--seconds', quick ? 8 : 20);
const ROUNDS = arg('--rounds', quick ? 3 : 5);
// --only s3 (or postgres): that sink's rounds alone beside "off" (--only s3 implies --s3).
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
if (ONLY !== null && ONLY !== 's3' && ONLY !== 'postgres') throw new Error('--only takes s3 or postgres');
const WITH_S3 = process.argv.includes('--s3') || ONLY === 's3';
const PROFILE = process.argv.includes('--profile') ? path.resolve(process.argv[process.argv.indexOf('--profile') + 1] ?? '/tmp') : null;
let inspector = null;
if (PROFILE) {
  const { Session } = await import('node:inspector');
  mkdirSync(PROFILE, { recursive: true });
  inspector = new Session();
  inspector.connect();
  const post = (m, p = {}) => new Promise((res, rej) => inspector.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 250 });
  await post('HeapProfiler.enable');
  inspector.start = async () => {
    await post('Profiler.start');
    // Every allocation's stack (sampled every 32 KB), garbage included: what the collector is busy with.
    await post('HeapProfiler.startSampling', { samplingInterval: 32768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  };
  inspector.stop = async () => {
    const heap = (await post('HeapProfiler.stopSampling')).profile;
    return { cpu: (await post('Profiler.stop')).profile, heap };
  };
}
const profSums = {};
let warming = false;

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};

// --- A throwaway PostgreSQL 15 (as test/helpers/postgres.ts starts it), fsync on: a real sink.
const BIN = '/usr/lib/postgresql/15/bin';
const pgDir = mkdtempSync('/tmp/tg-bench-pg-');
const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
chownSync(pgDir, uid, gid);
const asPg = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'];
const pw = randomBytes(9).toString('hex');
writeFileSync(path.join(pgDir, 'pw'), pw, { mode: 0o600 });
chownSync(path.join(pgDir, 'pw'), uid, gid);
const init = spawnSync(asPg[0], [...asPg.slice(1), `${BIN}/initdb`, '-D', `${pgDir}/data`, '-U', 'tg', '--pwfile', `${pgDir}/pw`, '--auth-host=scram-sha-256', '--auth-local=trust', '--no-sync'], { encoding: 'utf8' });
if (init.status !== 0) throw new Error(`initdb: ${init.stderr}`);
const pgPort = await freePort();
const pgProc = spawn(asPg[0], [...asPg.slice(1), `${BIN}/postgres`, '-D', `${pgDir}/data`, '-p', String(pgPort), '-k', pgDir, '-c', 'listen_addresses=127.0.0.1'], { stdio: 'ignore' });
const url = (user, pass, db = 'postgres') => `postgres://${user}:${pass}@127.0.0.1:${pgPort}/${db}`;
for (let i = 0; ; i++) {
  const c = new pg.Client({ connectionString: url('tg', pw) });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('CREATE DATABASE bench');
    await c.query("CREATE ROLE tg_evidence LOGIN PASSWORD 'bench-evidence'");
    await c.query('CREATE ROLE tg_evidence_owner NOLOGIN');
    await c.end();
    break;
  } catch (e) {
    if (i > 200) throw e;
    await sleep(100);
  }
}
const store = new PostgresSql({ url: url('tg', pw, 'bench'), max: 1 });
await migratePostgres(store);
for (const g of [
  'ALTER TABLE evidence_recording_chunks OWNER TO tg_evidence_owner',
  'ALTER TABLE evidence_anchors OWNER TO tg_evidence_owner',
  'GRANT INSERT, SELECT ON evidence_recording_chunks, evidence_anchors TO tg_evidence',
  'GRANT USAGE ON SEQUENCE evidence_anchors_id_seq TO tg_evidence',
])
  await store.run(g);
await store.close();

// --- s3rver in a child process (its CPU is not ours), with --s3.
let s3Proc = null;
let s3Endpoint = null;
const s3Dir = mkdtempSync('/tmp/tg-bench-s3-');
if (WITH_S3) {
  const s3Port = await freePort();
  const script = `const S3rver = require(${JSON.stringify(path.join(ROOT, 'node_modules/s3rver'))}); new S3rver({ port: ${s3Port}, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(s3Dir)}, configureBuckets: [{ name: 'tg-bench', configs: [] }] }).run();`;
  s3Proc = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  s3Endpoint = `http://127.0.0.1:${s3Port}`;
  for (let i = 0; ; i++) {
    if (await new Promise((r) => net.connect(s3Port, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)))) break;
    if (i > 100) throw new Error('s3rver did not start');
    await sleep(100);
  }
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
}

// --- The workload.
const keys = generateKeyPairSync('ed25519');
const signer = { sign: (d) => sign(null, d, keys.privateKey), publicKeyPem: '' };
let n = 0;
const line = () => `${new Date().toISOString()} INFO svc-${n % 17} req=${(n * 7919) % 1000003} path=/api/v1/items/${n++ % 5000} status=200 dur=${n % 97}ms\n`;
const POOL = Array.from({ length: 1024 }, () => {
  let s = '';
  while (s.length < 2000) s += line();
  return Buffer.from(s);
});
let next = 0;
const chunkOfLines = () => POOL[next++ % POOL.length];

let rounds = 0;
async function round(side) {
  // Session ids unique per round, as real ones are: the sinks keep what earlier rounds shipped, and
  // a reused id made every record a conflict (the store reads back what it holds to compare).
  const tag = `${Date.now().toString(36)}r${rounds++}`;
  const dir = mkdtempSync('/tmp/tg-bench-rec-');
  const sink = new FileSink(dir);
  const shippers = [];
  const stores = [];
  if (side === 'postgres') stores.push(new PostgresOffsite(new PostgresSql({ url: url('tg_evidence', 'bench-evidence', 'bench'), max: 4 }), 'bench', systemClock));
  if (side === 's3') {
    const c = { endpoint: s3Endpoint, bucket: 'tg-bench', region: 'us-east-1', prefix: `r${Date.now()}/`, forcePathStyle: true, objectLock: { mode: 'COMPLIANCE', retainDays: 2192 } };
    stores.push(await S3Offsite.open(c, systemClock));
  }
  for (const s of stores) shippers.push(new RecordingShipper({ node: 'bench', maxLagBytes: 64 * 1024 * 1024 }, { store: s, clock: systemClock, read: readRange }));
  const recs = [];
  for (let i = 0; i < SESSIONS; i++) {
    const id = `s_bench${tag}_${i}`;
    const file = await sink.create(id);
    const feeds = shippers.map((s) => s.begin(id, file.path));
    const offsite = feeds.length ? { durable: (r) => feeds.forEach((f) => f.durable(r)), close: () => feeds.forEach((f) => f.close()) } : undefined;
    const header = { v: 1, sessionId: id, user: 'u', role: 'r', startedAt: Date.now(), cols: 120, rows: 40, term: 'xterm', cipher: 'aes-256-gcm', compression: 'deflate-raw', recordInput: false };
    const rec = new Recorder({ header, sealer: aesGcmSealer(randomBytes(32)), file, clock: systemClock, signer, fsync: true, ...(offsite ? { offsite } : {}) });
    await rec.start();
    recs.push(rec);
  }
  await sleep(1200); // every recorder's first timed flush (its header) before measuring
  if (inspector && !warming) await inspector.start();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let written = 0;
  // Each session gets 2 KB every 100 ms, spread over the interval.
  const timers = recs.map((rec, i) =>
    setTimeout(() => {
      const t = setInterval(() => {
        const b = chunkOfLines();
        written += b.length;
        rec.frame('output', b);
      }, 100);
      timers[i] = t;
    }, (i * 100) / recs.length),
  );
  await sleep(SECONDS * 1000);
  for (const t of timers) clearInterval(t), clearTimeout(t);
  await sleep(1100); // the last timed flush, and its shipping
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  if (inspector && !warming) {
    const { cpu: prof, heap } = await inspector.stop();
    writeFileSync(path.join(PROFILE, `evidence-${side}.cpuprofile`), JSON.stringify(prof));
    writeFileSync(path.join(PROFILE, `evidence-${side}.heapprofile`), JSON.stringify(heap));
    const { byFn, byPkg } = selfTimes(prof);
    const sum = (profSums[side] ??= { mb: 0, byFn: new Map(), byPkg: new Map(), user: 0, system: 0 });
    sum.mb += written / 1e6;
    sum.user += cpu.user / 1000;
    sum.system += cpu.system / 1000;
    for (const [k, v] of byFn) sum.byFn.set(k, (sum.byFn.get(k) ?? 0) + v);
    for (const [k, v] of byPkg) sum.byPkg.set(k, (sum.byPkg.get(k) ?? 0) + v);
    sum.alloc ??= new Map();
    const walk = (n, stack) => {
      const f = n.callFrame;
      const here = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}`;
      const where = [here, ...stack].slice(0, 3).join(' < ');
      if (n.selfSize) sum.alloc.set(where, (sum.alloc.get(where) ?? 0) + n.selfSize);
      for (const c of n.children ?? []) walk(c, [here, ...stack]);
    };
    walk(heap.head, []);
  }
  for (const r of recs) await r.close('bench');
  const lags = [];
  for (const s of shippers) {
    await s.close(10_000);
    lags.push({ sink: s.sink, ms: s.latencies(), state: s.state() });
  }
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
  return { cpuMs: (cpu.user + cpu.system) / 1000, wall, mb: written / 1e6, lags };
}

const SIDES = ONLY ? ['off', ONLY] : ['off', 'postgres', ...(WITH_S3 ? ['s3'] : [])];
const results = Object.fromEntries(SIDES.map((s) => [s, []]));
const lagSamples = {};
try {
  warming = true;
  await round('off'); // warm-up (JIT, page cache)
  warming = false;
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of SIDES) {
      const res = await round(side);
      results[side].push(res);
      for (const l of res.lags) (lagSamples[l.sink] ??= []).push(...l.ms);
      console.log(`round ${r + 1} ${side}: ${res.cpuMs.toFixed(0)} ms CPU for ${res.mb.toFixed(1)} MB in ${(res.wall / 1000).toFixed(1)} s${res.lags.map((l) => `; ${l.sink}: ${l.state.shippedChunks} chunks in ${l.state.puts} puts, ${l.state.conflicts} conflicts, lag p99 ${pct(l.ms, 0.99)?.toFixed(0)} ms`).join('')}`);
    }
  }
} finally {
  pgProc.kill('SIGINT');
  s3Proc?.kill('SIGKILL');
  await new Promise((r) => (pgProc.exitCode !== null ? r() : pgProc.once('exit', r)));
  rmSync(pgDir, { recursive: true, force: true });
  rmSync(s3Dir, { recursive: true, force: true });
}

if (inspector) {
  const per = (sum, v) => (v / sum.mb).toFixed(2).padStart(7);
  const base = profSums.off;
  for (const [side, sum] of Object.entries(profSums)) {
    const busy = [...sum.byPkg].filter(([k]) => k !== '(idle)').reduce((a, [, v]) => a + v, 0);
    console.log(`\n== ${side}: process CPU ${per(sum, sum.user + sum.system)} ms/MB (user ${per(sum, sum.user)}, system ${per(sum, sum.system)}); main thread busy ${per(sum, busy)} ms/MB`);
    console.log('self time by package (ms/MB; delta against off):');
    for (const [k, v] of [...sum.byPkg].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 14))
      console.log(`  ${per(sum, v)} ${side === 'off' ? '' : `(${((v / sum.mb - (base.byPkg.get(k) ?? 0) / base.mb) >= 0 ? '+' : '')}${(v / sum.mb - (base.byPkg.get(k) ?? 0) / base.mb).toFixed(2)})`}  ${k}`);
    const allocTotal = [...sum.alloc.values()].reduce((a, b) => a + b, 0);
    console.log(`allocated (sampled, garbage included): ${(allocTotal / sum.mb / 1e6).toFixed(2)} MB per MB; most by stack:`);
    for (const [k, v] of [...sum.alloc].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${(v / sum.mb / 1e3).toFixed(1).padStart(8)} KB/MB  ${k}`);
    if (side === 'off') continue;
    console.log('functions that grew most against off (ms/MB):');
    const grow = [...new Set([...sum.byFn.keys(), ...base.byFn.keys()])]
      .map((k) => [k, (sum.byFn.get(k) ?? 0) / sum.mb - (base.byFn.get(k) ?? 0) / base.mb])
      .filter(([k]) => !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 30);
    for (const [k, d] of grow) console.log(`  +${d.toFixed(2).padStart(6)}  ${k}`);
  }
  console.log(`\nprofiles: ${PROFILE}/evidence-<side>.cpuprofile (the last round of each side)`);
}

const perMb = (side) => results[side].map((r) => r.cpuMs / r.mb);
const off = median(perMb('off'));
const rows = [];
const row = (what, value, unit, target) => {
  rows.push({ what, value, unit, target });
  console.log(`${what}: ${value} ${unit} (target ${target})`);
};
const mbps = (results.off[0].mb / SECONDS).toFixed(2);
for (const side of SIDES.slice(1)) {
  const on = median(perMb(side));
  row(
    `recording CPU per MB, shipping to ${side === 's3' ? 'S3 (s3rver, Object Lock headers)' : 'PostgreSQL'} / no shipping, ${SESSIONS} sessions, ${mbps} MB/s of log lines, median of ${ROUNDS} alternating ${SECONDS} s rounds`,
    +(on / off).toFixed(3),
    `x (${on.toFixed(1)} vs ${off.toFixed(1)} ms/MB; single rounds ${perMb(side).map((v) => v.toFixed(0)).join('/')} vs ${perMb('off').map((v) => v.toFixed(0)).join('/')})`,
    '<= 1.25',
  );
}
for (const [sink, ms] of Object.entries(lagSamples)) {
  row(`off-box lag ${sink}: durable locally -> acknowledged, p50`, +pct(ms, 0.5).toFixed(1), `ms (${ms.length} records)`, '-');
  row(`off-box lag ${sink}: durable locally -> acknowledged, p99`, +pct(ms, 0.99).toFixed(1), 'ms', '< 2000');
}
const md =
  `\n## ${new Date().toISOString().slice(0, 10)} evidence ${quick ? '(quick)' : '(full)'} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}\n\n` +
  '| measure | value | unit | target |\n| --- | --- | --- | --- |\n' +
  rows.map((r) => `| ${r.what} | ${r.value} | ${r.unit} | ${r.target} |\n`).join('');
if (process.argv.includes('--append')) appendFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
console.log(md);
process.exit(0);
