#!/usr/bin/env node
// A real login while 1,000 idle or slow connections from 50 addresses are held open: tmuxgate
// with its default front-door limits vs Debian's sshd with the closest settings it has
// (MaxStartups 10:30:100, PerSourceMaxStartups 10, PerSourceNetBlockSize 24:64), in one run.
// Loopback only: the flood binds to 127.1.<k>.1 (k = 1..50, one /24 each, the hardest case for
// per-network caps), the real user to 127.2.0.1. Bounded in time: every wait has a deadline and
// the whole run stops itself after 12 minutes.
// Usage: sudo node bench/flood.mjs [--quick] [--conns 1000] [--addrs 50] [--logins 10] [--reconnect-ms 1000]
//        (internal) node bench/flood.mjs --attacker PORT CONNS ADDRS RECONNECT_MS
import { appendFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};

if (process.argv[2] === '--attacker') await attacker(...process.argv.slice(3).map(Number));
else await main();

/**
 * The flood, in its own process so its event loop does not time the logins: CONNS sockets over
 * ADDRS source addresses; even ones never send a byte, odd ones send an SSH ident and then stall
 * (slowloris). A socket the server closes is reopened after RECONNECT_MS, so the flood keeps
 * CONNS sockets in play. Prints one JSON line a second: sockets open now, connects and closes.
 */
async function attacker(port, conns, addrs, reconnectMs) {
  let open = 0;
  let connects = 0;
  let closes = 0;
  let stopping = false;
  const slot = (i) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.1.${(i % addrs) + 1}.1` });
    let wasOpen = false;
    s.on('error', () => {});
    s.on('connect', () => {
      wasOpen = true;
      open++;
      connects++;
      if (i % 2) s.write(`SSH-2.0-slow${i}\r\n`);
    });
    s.resume();
    s.on('close', () => {
      if (wasOpen) open--;
      closes++;
      if (!stopping) setTimeout(() => slot(i), reconnectMs);
    });
  };
  for (let i = 0; i < conns; i++) slot(i);
  const tick = setInterval(() => {
    process.stdout.write(JSON.stringify({ open, connects, closes }) + '\n');
    connects = 0;
    closes = 0;
  }, 1000);
  const stop = () => {
    stopping = true;
    clearInterval(tick);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  setTimeout(stop, 10 * 60_000).unref(); // never outlives a run
  await new Promise(() => {});
}

async function main() {
  const { Gateway, Sshd, ensureAccount, pct, sshClient, waitFor } = await import('./lib.mjs');
  const { totpCode } = await import(path.join(path.dirname(fileURLToPath(import.meta.url)), '../dist/auth/totp.js'));
  const quick = process.argv.includes('--quick');
  const CONNS = arg('--conns', 1000);
  const ADDRS = arg('--addrs', 50);
  const LOGINS = arg('--logins', quick ? 5 : 10);
  const RECONNECT = arg('--reconnect-ms', 1000);
  const SSHD_BUDGET = 15_000; // per login, retries included
  const BIND = '127.2.0.1';
  const hardStop = setTimeout(() => {
    console.error('flood bench: 12-minute bound reached, stopping');
    cleanup();
    process.exit(3);
  }, 12 * 60_000);

  ensureAccount();
  // The gateway with its default front-door limits (only the benchmark's own settings differ).
  const gw = new Gateway(2 * LOGINS + 2, '', '{ maxAuthTries: 3 }');
  const sshd = new Sshd(['MaxStartups 10:30:100', 'PerSourceMaxStartups 10', 'PerSourceNetBlockSize 24:64', 'LoginGraceTime 120']);
  let flood = null;
  const cleanup = () => {
    flood?.kill('SIGTERM');
    gw.stop();
    sshd.stop();
  };

  /** Starts the flood against `port`; resolves once it has run `warmMs` (the caps are full by then). */
  const startFlood = async (port, warmMs) => {
    flood = spawn(process.execPath, [fileURLToPath(import.meta.url), '--attacker', String(port), String(CONNS), String(ADDRS), String(RECONNECT)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const samples = [];
    let buf = '';
    flood.stdout.on('data', (d) => {
      buf += d;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) samples.push(JSON.parse(buf.slice(0, i)));
    });
    await new Promise((r) => setTimeout(r, warmMs));
    return samples;
  };
  const stopFlood = async () => {
    const f = flood;
    flood = null;
    if (!f || f.exitCode !== null) return;
    await new Promise((r) => (f.once('exit', r), f.kill('SIGTERM')));
  };

  /** One login attempt, timed from spawning ssh to the first prompt inside tmux; null when refused. */
  const gwLogin = async (i) => {
    const t0 = performance.now();
    const c = sshClient(['-b', BIND, ...gw.args(i)], { HOME: gw.dir });
    try {
      await c.until(() => c.out.includes('Verification code:'), 'prompt', SSHD_BUDGET);
      if (c.exited) return null;
      c.p.write(totpCode(gw.secrets[i], Date.now() + 30_000) + '\r');
      await c.until(() => /tmuxgate[\s\S]*\$ /.test(c.out), 'shell', SSHD_BUDGET);
      return c.exited ? null : performance.now() - t0;
    } catch {
      return null;
    } finally {
      c.p.kill();
    }
  };
  const sshdLogin = async (i) => {
    const t0 = performance.now();
    const c = sshClient(['-b', BIND, ...sshd.args(i)], { HOME: sshd.dir });
    try {
      await c.until(() => /\[sshd\+bench\][\s\S]*\$ /.test(c.out), 'sshd prompt', SSHD_BUDGET);
      return c.exited ? null : performance.now() - t0;
    } catch {
      return null;
    } finally {
      c.p.kill();
    }
  };
  /** Logs in `n` times; a refused attempt is retried (as a person would) within the budget. */
  const series = async (n, login, first) => {
    const times = [];
    let tries = 0;
    let failed = 0;
    for (let k = 0; k < n; k++) {
      const t0 = performance.now();
      let ok = null;
      while (ok === null && performance.now() - t0 < SSHD_BUDGET) {
        tries++;
        ok = await login(first + k);
        if (ok === null) await new Promise((r) => setTimeout(r, 200));
      }
      if (ok === null) failed++;
      else times.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { times, tries, failed, p50: times.length ? +pct(times, 50).toFixed(1) : null, max: times.length ? +Math.max(...times).toFixed(1) : null };
  };

  const rows = [];
  try {
    await gw.start();
    await sshd.start();
    await gwLogin(2 * LOGINS); // warm-up (tmux, the first shell)
    await sshdLogin(9999);

    const gIdle = await series(LOGINS, gwLogin, 0);
    const sIdle = await series(LOGINS, sshdLogin, 1000);
    console.log('idle: gateway', gIdle.p50, 'ms; sshd', sIdle.p50, 'ms');

    const gSamples = await startFlood(gw.port, 5000);
    const gUnauth = (await gw.metrics()).connections_unauthenticated;
    const gFlood = await series(LOGINS, gwLogin, LOGINS);
    const gRss = gw.rssKb();
    await stopFlood();
    console.log('flood: gateway', gFlood, 'unauthenticated held', gUnauth);

    const sSamples = await startFlood(sshd.port, 5000);
    const sFlood = await series(LOGINS, sshdLogin, 2000);
    await stopFlood();
    console.log('flood: sshd', sFlood);

    const rate = (s) => Math.round(s.slice(1).reduce((a, x) => a + x.connects, 0) / Math.max(1, s.length - 1));
    const held = (s) => Math.max(...s.map((x) => x.open));
    const fmt = (r) => (r.p50 === null ? `none in ${SSHD_BUDGET / 1000} s` : `${r.p50} (max ${r.max})`);
    rows.push(
      ['real login, idle server: p50 ms (spawn to shell prompt in tmux)', `${gIdle.p50}`, `${sIdle.p50}`, '', ''],
      [`real login under the flood: p50 ms, ${LOGINS} logins, refused attempts retried within ${SSHD_BUDGET / 1000} s`, fmt(gFlood), fmt(sFlood), gFlood.p50 ? (gFlood.p50 / gIdle.p50).toFixed(2) : '-', '<= 2 (vs own idle)'],
      ['logins that got in / attempts made', `${gFlood.times.length}/${gFlood.tries}`, `${sFlood.times.length}/${sFlood.tries}`, '', `${LOGINS}/${LOGINS}`],
      ['flood: sockets the attacker held connected (max) / new connections per second', `${held(gSamples)} / ${rate(gSamples)}`, `${held(sSamples)} / ${rate(sSamples)}`, '', ''],
      ['unauthenticated connections the server kept (cap 100)', `${gUnauth}`, '', '', '<= 100'],
      ['gateway RSS under the flood', `${(gRss / 1024).toFixed(1)} MB`, '', '', ''],
    );
    const date = new Date().toISOString().slice(0, 10);
    const cpu = os.cpus();
    const table = [
      `\n## ${date} flood${quick ? ' (quick)' : ''} on ${cpu.length} x ${cpu[0]?.model.split(' ').slice(0, 2).join(' ')}, node ${process.version}\n`,
      `${CONNS} sockets from ${ADDRS} addresses (127.1.k.1, one /24 each; half idle, half an ident then nothing; reopened ${RECONNECT} ms after the server closes one); the real user from ${BIND}. tmuxgate: default limits (10 s handshake timeout, MaxStartups 10:30:100, 10 per address, 30 per /24). sshd: MaxStartups 10:30:100, PerSourceMaxStartups 10, PerSourceNetBlockSize 24:64, LoginGraceTime 120.\n`,
      '| measure | tmuxgate | sshd | ratio | target |',
      '| --- | --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
    ].join('\n');
    console.log(table);
    appendFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'RESULTS.md'), table);
  } finally {
    clearTimeout(hardStop);
    await stopFlood();
    cleanup();
  }
}
