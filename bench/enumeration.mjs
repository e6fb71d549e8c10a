#!/usr/bin/env node
// User enumeration by timing (issue 11, finding 4): how long the gateway takes to refuse a
// publickey request for an unknown user vs for an existing user with a key that is not hers.
// An in-process ssh2 client (raw protocol: one key query per request, timed from sending it to
// the refusal) against the built gateway in its own process, on loopback. Rounds alternate the
// two kinds, one connection per round and kind (ssh2's server drops a connection whose login
// name changes); the first request of each connection is not counted (it warms the connection).
// Usage: sudo node bench/enumeration.mjs [--quick] [--root DIR]   (--root: another checkout's
// built tree, e.g. the code before the fix, to measure it the same way)
import { appendFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? path.resolve(process.argv[rootArg + 1]) : path.resolve(here, '..');
const { Gateway, ensureAccount, pct } = await import(path.join(root, 'bench/lib.mjs'));
const { generateEd25519 } = await import(path.join(root, 'dist/auth/host-key.js'));
const { default: ssh2 } = await import('ssh2');

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 14 : 40; // x 9 counted requests per kind: 126 / 360
const PER_CONN = 10;
const hardStop = setTimeout(() => {
  console.error('enumeration bench: 5-minute bound reached');
  process.exit(3);
}, 5 * 60_000);

ensureAccount();
const newCode = existsSync(path.join(root, 'dist/auth/key-step.js'));
// Lockouts out of the way: this measures the refusal path, not the locked path.
const auth = `auth: { addressLockout: { maxFailures: 1000 }${newCode ? ', prefixLockout: { maxFailures: 1000 }' : ''} }\n`;
const gw = new Gateway(1, auth, `{ maxAuthTries: ${PER_CONN + 2} }`);

/** One connection as `username`: PER_CONN key queries with `key`; resolves with the round trips after the first. */
function requests(port, username, key) {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    const times = [];
    let sent = 0;
    let t0 = 0;
    c.on('error', () => {});
    c.on('close', () => resolve(times.slice(1)));
    c.on('ready', () => reject(new Error('authenticated?')));
    c.connect({
      host: '127.0.0.1',
      port,
      username,
      hostVerifier: () => true,
      authHandler: (_m, _p, next) => {
        if (t0) times.push(performance.now() - t0);
        if (sent++ >= PER_CONN) return next(false);
        t0 = performance.now();
        next({ type: 'publickey', username, key });
      },
    });
  });
}

try {
  await gw.start();
  const pair = generateEd25519('stranger');
  const stranger = ssh2.utils.parseKey(pair.private);
  const unknown = [];
  const wrongKey = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? ['u0', `nobody${r}`] : [`nobody${r}`, 'u0'];
    for (const name of order) (name === 'u0' ? wrongKey : unknown).push(...(await requests(gw.port, name, stranger)));
  }
  const us = (a, p) => +(pct(a, p) * 1000).toFixed(0);
  const rows = [
    [`unknown user: refusal of a key query, p50 / p90 µs (n=${unknown.length})`, us(unknown, 50), us(unknown, 90)],
    [`existing user, key not enrolled: p50 / p90 µs (n=${wrongKey.length})`, us(wrongKey, 50), us(wrongKey, 90)],
  ];
  const diff = us(wrongKey, 50) - us(unknown, 50);
  const date = new Date().toISOString().slice(0, 10);
  const table = [
    `\n## ${date} user enumeration by timing${quick ? ' (quick)' : ''}${newCode ? '' : ' — code before the fix'} on ${os.cpus().length} x ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, node ${process.version}\n`,
    '| measure | p50 | p90 |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    `| difference of the p50s (existing - unknown) | ${diff} µs (${((100 * diff) / us(unknown, 50)).toFixed(1)}%) | |`,
    '',
  ].join('\n');
  console.log(table);
  if (!process.argv.includes('--no-record')) appendFileSync(path.join(here, 'RESULTS.md'), table);
} finally {
  clearTimeout(hardStop);
  gw.stop();
}
