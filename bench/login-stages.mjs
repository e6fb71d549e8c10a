#!/usr/bin/env node
// Where an isolated login spends its time, stage by stage, from the gateway's own debug log:
// sequential logins, then a storm of 50 at once. Pair accounts on (the mode a root deployment runs),
// each account created ahead as by an earlier login. Usage: sudo node bench/login-stages.mjs [--storm N]
process.env.TG_BENCH_LOG = 'debug';
const { Gateway, ensureAccount, pct } = await import('./lib.mjs');

const stormArg = process.argv.indexOf('--storm');
const STORM = stormArg > 0 ? Number(process.argv[stormArg + 1]) : 50;
const SEQ = 10;
ensureAccount();
const gw = new Gateway(SEQ + STORM + 2);

/** Per connection: ms from the client's start to each stage the gateway logs. */
function stages() {
  const byConn = new Map();
  for (const line of gw.stdoutLog.join('').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    if (e.audit === 'session.start' && byConn.has(e.connId)) byConn.get(e.connId).start = Date.parse(e.time);
    if (!e.conn) continue;
    const c = byConn.get(e.conn) ?? {};
    const t = Date.parse(e.time);
    if (e.msg === 'public key accepted; asking for TOTP') c.key = t;
    if (e.msg === 'authenticated') c.auth = t;
    if (e.msg?.startsWith('session prepared')) Object.assign(c, { prepared: t, pairMs: e.pairMs, serverMs: e.serverMs });
    byConn.set(e.conn, c);
  }
  return [...byConn.values()].filter((c) => c.auth && c.prepared);
}

function report(label, clientMs, rows) {
  const med = (f) => +pct(rows.map(f), 50).toFixed(1);
  const p99 = (f) => +pct(rows.map(f), 99).toFixed(1);
  console.log(`${label} (n=${rows.length}): client total p50 ${pct(clientMs, 50).toFixed(0)} ms, p99 ${pct(clientMs, 99).toFixed(0)} ms`);
  for (const [what, f] of [
    ['TOTP answer -> authenticated', (c) => c.auth - c.key],
    ['account, directories, conf (pairMs)', (c) => c.pairMs],
    ['live server found, or a sandboxed one started (serverMs)', (c) => c.serverMs],
    ['authenticated -> session.start (recording opened)', (c) => c.start - c.auth],
  ])
    console.log(`  ${what.padEnd(52)} p50 ${String(med(f)).padStart(7)} ms   p99 ${String(p99(f)).padStart(7)} ms`);
}

try {
  await gw.start();
  let next = 0;
  const seq = [];
  for (let i = 0; i < SEQ; i++) {
    const t0 = performance.now();
    const c = await gw.login(next++);
    seq.push(performance.now() - t0);
    c.p.kill();
  }
  report('sequential', seq, stages());
  const before = stages().length;
  // --storm 0: the sequential logins only.
  const storm =
    STORM === 0
      ? []
      : await Promise.all(
          Array.from({ length: STORM }, async () => {
            const t0 = performance.now();
            const c = await gw.login(next++);
            const ms = performance.now() - t0;
            c.p.kill();
            return ms;
          }),
        );
  if (STORM > 0) report(`storm of ${STORM}`, storm, stages().slice(before));
} finally {
  gw.stop();
}
