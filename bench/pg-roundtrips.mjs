#!/usr/bin/env node
// How a login step's reads should reach PostgreSQL: several statements at once over the pool (the
// code today: each on its own pooled connection, so each wakes its own backend) against one
// statement that reads them all, or the same statements on one connection. A measurement behind
// the cluster login's extra time (RESULTS.md, "Where a cluster login's extra time goes").
//
// PostgreSQL 15 in a temp dir (fsync on, as cluster.mjs starts it, in a session of its own), the
// real schema (migrations/postgres), USERS users with 1-3 grants of 20 roles and 1-2 ed25519 keys
// each, 1,000 address lockouts. A node-postgres pool as src/store/postgres.ts builds it (max 10,
// the config default; min 4 warm). Variants, in blocks of BLOCK iterations taking turns
// (A B C ... A B C ...), each iteration 1 ms after the last:
//   phase (the signed attempt's reads with a +role suffix: source-address locks, user by name, role,
//   grants, key; the repositories' own statements):
//     pool5   Promise.all of the 5 over the pool (today)
//     one     1 statement of 5 scalar subqueries (json)
//     seq1    the 5 one after another on one pooled connection
//     multi   the 5 in one simple query (literals), one round trip, one connection
//   two publickey steps of a login (query, then signed attempt; no +role):
//     today2  step 1: locks; user; grants+key at once. step 2: locks+user+grants+key at once (4 round trips)
//     one2    each step one statement: locks, user by name, the decoy, the subject's grants and key (2)
//   the query step alone: qhit (a user), qmiss (no such name), as the step reads since 06be493 (the
//   user and the decoy at once, hit or miss); qmissOld, the miss before it (the decoy read after the miss)
// First each statement's own cost inside PostgreSQL (EXPLAIN ANALYZE). Then latency per iteration (p50/p90/p99), and CPU per iteration (this process + every PostgreSQL process,
// from /proc/<pid>/schedstat, per block). Once idle, once with two busy loops (each in a session of
// its own, as two busy nodes) on the two cores.
// Usage: sudo node bench/pg-roundtrips.mjs [--iters N] [--users N] [--block N] [--only idle,load]
// Prints a table (markdown); appends nothing to RESULTS.md.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startPostgres, stopPostgres } from './pg-server.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ITERS = Number(arg('iters', 1500));
const USERS = Number(arg('users', 2000));
const BLOCK = Number(arg('block', 50));
const ONLY = arg('only', 'idle,load').split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};


// Everything started here, stopped on every way out.
const started = [];
let dir = null;
function cleanup() {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  started.length = 0;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

async function startOwnPostgres() {
  dir = mkdtempSync('/tmp/tgpgrt-');
  chmodSync(dir, 0o711);
  const { proc, url } = await startPostgres(dir);
  started.push(proc);
  return { proc, url: url('tmuxgate') };
}

/** ns on CPU of the postmaster and its children (the backends, the background processes). */
function pgCpuNs(postmaster) {
  let ns = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number(d) !== postmaster && ppid !== postmaster) continue;
      ns += Number(readFileSync(`/proc/${d}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // gone meanwhile
    }
  }
  return ns;
}

const INT8 = 20;
const types = { getTypeParser: (oid, format) => (oid === INT8 ? (v) => Number(v) : pg.types.getTypeParser(oid, format)) };

// The repositories' statements (src/store/lockouts.ts getAll for an address and its prefix,
// users.ts find, roles.ts find and grantsOf, keys.ts findForUser), numbered as postgres.ts numbers them.
const Q = {
  locks: 'SELECT subject_kind, subject, level, locked_until FROM lockouts WHERE (subject_kind = $1 AND subject = $2) OR (subject_kind = $3 AND subject = $4)',
  user: 'SELECT * FROM users WHERE name = $1 AND removed_at IS NULL',
  role: 'SELECT * FROM roles WHERE name = $1',
  grants: 'SELECT r.* FROM roles r JOIN grants g ON g.role_id = r.id WHERE g.user_id = $1 ORDER BY r.name',
  key: 'SELECT * FROM public_keys WHERE user_id = $1 AND key_blob = $2',
};
const LOCKS_JSON = `(SELECT json_agg(json_build_object('subject_kind', subject_kind, 'subject', subject, 'level', level, 'locked_until', locked_until))
   FROM lockouts WHERE (subject_kind = $1 AND subject = $2) OR (subject_kind = $3 AND subject = $4))`;
// The 5 reads of the phase, one statement.
const ONE = `SELECT ${LOCKS_JSON} AS locks,
  (SELECT row_to_json(u) FROM users u WHERE name = $5 AND removed_at IS NULL) AS "user",
  (SELECT row_to_json(r) FROM roles r WHERE name = $6) AS role,
  (SELECT json_agg(r ORDER BY r.name) FROM roles r JOIN grants g ON g.role_id = r.id WHERE g.user_id = $7) AS grants,
  (SELECT row_to_json(k) FROM public_keys k WHERE user_id = $7 AND key_blob = $8) AS key`;
// A publickey step in one statement: the user by name and the decoy both read every time; the
// grants and key of the user, or of the decoy when the name matched nobody (the equal work of key-step.ts).
const STEP = `WITH u AS (SELECT * FROM users WHERE name = $5 AND removed_at IS NULL),
  d AS (SELECT * FROM users WHERE name = $6 AND removed_at IS NULL),
  s AS (SELECT COALESCE((SELECT id FROM u), (SELECT id FROM d), -1) AS id)
SELECT ${LOCKS_JSON} AS locks,
  (SELECT row_to_json(u) FROM u) AS "user",
  (SELECT row_to_json(d) FROM d) AS decoy,
  (SELECT json_agg(r ORDER BY r.name) FROM roles r JOIN grants g ON g.role_id = r.id WHERE g.user_id = (SELECT id FROM s)) AS grants,
  (SELECT row_to_json(k) FROM public_keys k WHERE user_id = (SELECT id FROM s) AND key_blob = $7) AS key`;

function prefixOf(addr) {
  return addr.split('.').slice(0, 3).join('.') + '.0/24';
}

async function populate(url) {
  const c = new pg.Client({ connectionString: url, types });
  await c.connect();
  const dirM = path.join(ROOT, 'migrations/postgres');
  for (const f of readdirSync(dirM)
    .filter((x) => /^\d{4}_.*\.sql$/.test(x))
    .sort()) {
    await c.query(`BEGIN; ${readFileSync(path.join(dirM, f), 'utf8')}; COMMIT;`);
  }
  const now = Date.now();
  const roles = [];
  for (let i = 0; i < 20; i++) roles.push(`role${i}`);
  await c.query('INSERT INTO roles (name, run_as, created_at) SELECT unnest($1::text[]), $2, $3', [roles, 'tgbench', now]);
  const users = [];
  const names = [];
  for (let i = 0; i < USERS; i++) names.push(`user${i}`);
  const ids = (await c.query('INSERT INTO users (name, default_role_id, created_at) SELECT unnest($1::text[]), 1, $2 RETURNING id, name', [names, now])).rows;
  const g = { u: [], r: [] };
  const k = { u: [], blob: [], fp: [] };
  for (const { id, name } of ids) {
    const nGrants = 1 + (id % 3);
    const rs = [];
    for (let j = 0; j < nGrants; j++) rs.push(1 + ((id * 7 + j * 3) % 20));
    for (const r of new Set(rs)) (g.u.push(id), g.r.push(r));
    const blobs = [];
    for (let j = 0; j < 1 + (id % 2); j++) {
      const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
      blobs.push(blob);
      (k.u.push(id), k.blob.push(`\\x${blob.toString('hex')}`), k.fp.push(`SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`));
    }
    users.push({ id, name, blob: blobs[0], role: `role${(id * 7) % 20}` });
  }
  await c.query('INSERT INTO grants (user_id, role_id, created_at) SELECT unnest($1::bigint[]), unnest($2::bigint[]), $3', [g.u, g.r, now]);
  await c.query(
    "INSERT INTO public_keys (user_id, key_type, key_blob, fingerprint, created_at) SELECT unnest($1::bigint[]), 'ssh-ed25519', unnest($2::bytea[]), unnest($3::text[]), $4",
    [k.u, k.blob, k.fp, now],
  );
  // 1,000 address lockouts (addresses and /24 prefixes), most expired.
  const subj = [];
  for (let i = 0; i < 500; i++) subj.push(`10.${i >> 8}.${i & 255}.7`, `10.${i >> 8}.${i & 255}.0/24`);
  await c.query("INSERT INTO lockouts (subject_kind, subject, level, locked_until, updated_at) SELECT 'address', unnest($1::text[]), 1, $2, $2", [
    subj,
    now - 60_000,
  ]);
  await c.query('ANALYZE');
  await c.end();
  return users;
}

function variants(pool, users) {
  const pick = () => {
    const u = users[Math.floor(Math.random() * users.length)];
    const i = Math.floor(Math.random() * 1000);
    const addr = `10.${i >> 8}.${i & 255}.${i % 2 ? 7 : 9}`;
    return { u, addr, pre: prefixOf(addr) };
  };
  const decoyName = users[0].name;
  const locks = (x) => pool.query(Q.locks, ['address', x.addr, 'address', x.pre]);
  const stepOne = (x, name) => pool.query(STEP, ['address', x.addr, 'address', x.pre, name, decoyName, x.u.blob]);
  return {
    pool5: async () => {
      const x = pick();
      await Promise.all([
        locks(x),
        pool.query(Q.user, [x.u.name]),
        pool.query(Q.role, [x.u.role]),
        pool.query(Q.grants, [x.u.id]),
        pool.query(Q.key, [x.u.id, x.u.blob]),
      ]);
    },
    one: async () => {
      const x = pick();
      const r = (await pool.query(ONE, ['address', x.addr, 'address', x.pre, x.u.name, x.u.role, x.u.id, x.u.blob])).rows[0];
      if (!r.user || !r.key) throw new Error('one: lost a row');
    },
    seq1: async () => {
      const x = pick();
      const c = await pool.connect();
      try {
        await c.query(Q.locks, ['address', x.addr, 'address', x.pre]);
        await c.query(Q.user, [x.u.name]);
        await c.query(Q.role, [x.u.role]);
        await c.query(Q.grants, [x.u.id]);
        await c.query(Q.key, [x.u.id, x.u.blob]);
      } finally {
        c.release();
      }
    },
    multi: async () => {
      const x = pick();
      const c = await pool.connect();
      try {
        const l = (v) => c.escapeLiteral(String(v));
        const script = [
          `SELECT subject_kind, subject, level, locked_until FROM lockouts WHERE (subject_kind = 'address' AND subject = ${l(x.addr)}) OR (subject_kind = 'address' AND subject = ${l(x.pre)})`,
          `SELECT * FROM users WHERE name = ${l(x.u.name)} AND removed_at IS NULL`,
          `SELECT * FROM roles WHERE name = ${l(x.u.role)}`,
          `SELECT r.* FROM roles r JOIN grants g ON g.role_id = r.id WHERE g.user_id = ${Number(x.u.id)} ORDER BY r.name`,
          `SELECT * FROM public_keys WHERE user_id = ${Number(x.u.id)} AND key_blob = '\\x${x.u.blob.toString('hex')}'::bytea`,
        ].join('; ');
        const res = await c.query(script);
        if (res.length !== 5 || res[4].rows.length !== 1) throw new Error('multi: lost a row');
      } finally {
        c.release();
      }
    },
    today2: async () => {
      const x = pick();
      // Query: the lock check, then the user, then grants and key (login-flow.ts key(), key-step.ts).
      await locks(x);
      await pool.query(Q.user, [x.u.name]);
      await Promise.all([pool.query(Q.grants, [x.u.id]), pool.query(Q.key, [x.u.id, x.u.blob])]);
      // Signed attempt with KnownOwner: the lock check alongside user, grants and key.
      await Promise.all([locks(x), pool.query(Q.user, [x.u.name]), pool.query(Q.grants, [x.u.id]), pool.query(Q.key, [x.u.id, x.u.blob])]);
    },
    one2: async () => {
      const x = pick();
      await stepOne(x, x.u.name);
      const r = (await stepOne(x, x.u.name)).rows[0];
      if (!r.user || !r.key || !r.decoy) throw new Error('one2: lost a row');
    },
    qhit: async () => {
      const x = pick();
      await locks(x);
      await Promise.all([pool.query(Q.user, [x.u.name]), pool.query(Q.user, [decoyName])]);
      await Promise.all([pool.query(Q.grants, [x.u.id]), pool.query(Q.key, [x.u.id, x.u.blob])]);
    },
    qmiss: async () => {
      const x = pick();
      await locks(x);
      const [, decoy] = await Promise.all([pool.query(Q.user, [`nosuch${x.u.id}`]), pool.query(Q.user, [decoyName])]);
      const d = decoy.rows[0];
      await Promise.all([pool.query(Q.grants, [d.id]), pool.query(Q.key, [d.id, x.u.blob])]);
    },
    qmissOld: async () => {
      const x = pick();
      await locks(x);
      await pool.query(Q.user, [`nosuch${x.u.id}`]);
      const d = (await pool.query(Q.user, [decoyName])).rows[0]; // decoy(): users.find(the kept name)
      await Promise.all([pool.query(Q.grants, [d.id]), pool.query(Q.key, [d.id, x.u.blob])]);
    },
  };
}

async function measure(pool, users, postmaster, label) {
  const vs = variants(pool, users);
  const names = Object.keys(vs);
  const lat = Object.fromEntries(names.map((n) => [n, []]));
  const cpu = Object.fromEntries(names.map((n) => [n, { client: 0, server: 0, n: 0 }]));
  for (const n of names) for (let i = 0; i < 50; i++) await vs[n](); // warm: plans, pool connections, JIT
  const rounds = Math.ceil(ITERS / BLOCK);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    for (const n of order) {
      const c0 = process.cpuUsage();
      const s0 = pgCpuNs(postmaster);
      for (let i = 0; i < BLOCK; i++) {
        await sleep(1);
        const t0 = process.hrtime.bigint();
        await vs[n]();
        lat[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const c1 = process.cpuUsage(c0);
      cpu[n].server += (pgCpuNs(postmaster) - s0) / 1e3;
      cpu[n].client += c1.user + c1.system;
      cpu[n].n += BLOCK;
    }
  }
  const out = [];
  for (const n of names) {
    out.push({
      label,
      n,
      p50: pct(lat[n], 50),
      p90: pct(lat[n], 90),
      p99: pct(lat[n], 99),
      count: lat[n].length,
      clientUs: cpu[n].client / cpu[n].n,
      serverUs: cpu[n].server / cpu[n].n,
    });
  }
  return out;
}

function burners() {
  // Two busy loops, each in a session (autogroup) of its own, as two busy nodes.
  const ps = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore', detached: true }));
  started.push(...ps);
  return ps;
}

const { proc, url } = await startOwnPostgres();
try {
  const users = await populate(url);
  const pool = new pg.Pool({ connectionString: url, max: 10, min: 4, application_name: 'tmuxgate', types });
  pool.on('error', () => {});
  const results = [];
  // Each statement's own cost inside PostgreSQL (EXPLAIN ANALYZE: planning + execution), median of 30.
  const x = { u: users[7], addr: '10.0.7.7', pre: '10.0.7.0/24' };
  const stmts = {
    locks: [Q.locks, ['address', x.addr, 'address', x.pre]],
    user: [Q.user, [x.u.name]],
    role: [Q.role, [x.u.role]],
    grants: [Q.grants, [x.u.id]],
    key: [Q.key, [x.u.id, x.u.blob]],
    one: [ONE, ['address', x.addr, 'address', x.pre, x.u.name, x.u.role, x.u.id, x.u.blob]],
    step: [STEP, ['address', x.addr, 'address', x.pre, x.u.name, users[0].name, x.u.blob]],
  };
  const inside = [];
  for (const [name, [text, params]] of Object.entries(stmts)) {
    const t = [];
    let plan = '';
    for (let i = 0; i < 30; i++) {
      const e = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, params)).rows[0]['QUERY PLAN'][0];
      t.push(e['Planning Time'] + e['Execution Time']);
      plan = e.Plan['Node Type'] + (e.Plan['Index Name'] ? ` ${e.Plan['Index Name']}` : '');
    }
    inside.push(`${name} ${pct(t, 50).toFixed(3)} ms (${plan})`);
  }
  console.log(`inside PostgreSQL, planning + execution, idle: ${inside.join('; ')}`);
  for (const cond of ONLY) {
    let ps = [];
    if (cond === 'load') {
      ps = burners();
      await sleep(500);
    }
    console.log(`${cond}: ${ITERS} iterations per variant, blocks of ${BLOCK}...`);
    results.push(...(await measure(pool, users, proc.pid, cond)));
    for (const p of ps) p.kill('SIGKILL');
  }
  await pool.end();
  const info = `${os.cpus().length} x ${os.cpus()[0]?.model?.trim()}, node ${process.version}, PostgreSQL 15, ${USERS} users`;
  console.log(`\n${info}\n\n| condition | variant | p50 ms | p90 ms | p99 ms | n | CPU/iter client µs | CPU/iter PostgreSQL µs |`);
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(
      `| ${r.label} | ${r.n} | ${r.p50.toFixed(3)} | ${r.p90.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.count} | ${r.clientUs.toFixed(0)} | ${r.serverUs.toFixed(0)} |`,
    );
  }
} finally {
  await stopPostgres(proc);
  cleanup();
}
