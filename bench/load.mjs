#!/usr/bin/env node
// Load benchmarks with in-process ssh2 clients (light enough for 1,000 sessions):
//   latency: keystroke echo p50/p99 on a probe session while N other sessions print a steady
//            stream, tmuxgate (recording on) vs sshd+tmux, N = 1, 50, 200
//   idle:    gateway RSS, CPU at rest and total PSS with 100, 500, 1000 idle sessions
// Usage: node bench/load.mjs [--quick] [--only latency,idle]   (root). Appends to RESULTS.md.
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Gateway, Sshd, ensureAccount, pct, waitFor, echoOnce, sshShell } from './lib.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { totpCode } = await import(path.join(ROOT, 'dist/auth/totp.js'));
const quick = process.argv.includes('--quick');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : ['latency', 'idle'];
const LOADS = quick ? [1, 20] : [1, 20, 200];
const IDLES = quick ? [100] : [100, 500, 1000];
const rows = [];
const row = (what, gw, sshd, unit, target) => {
  rows.push({ what, gw, sshd, unit, ratio: typeof sshd === 'number' ? +(gw / sshd).toFixed(3) : '-', target });
  console.log(`${what}: tmuxgate ${gw} ${unit}${typeof sshd === 'number' ? `, sshd ${sshd} ${unit}, ratio ${(gw / sshd).toFixed(3)}` : ''} (target ${target})`);
};

const connect = sshShell;

async function gatewayClient(gw, i, cipher) {
  const s = await connect({ port: gw.port, username: `u${i}`, key: readFileSync(path.join(gw.dir, `id_u${i}`)), code: () => totpCode(gw.secrets[i], Date.now() + 30_000), cipher });
  await waitFor(() => /tmuxgate[\s\S]*\$ /.test(s.data), 'gateway prompt', 60_000);
  return s;
}
async function sshdClient(sshd, i) {
  const s = await connect({ port: sshd.port, username: 'tgbench', key: readFileSync(path.join(sshd.dir, 'id')), code: () => '', command: `tmux -S ${sshd.sock}/l${i} -f ${sshd.conf} new-session -A -s main` });
  await waitFor(() => /\[sshd\+bench\][\s\S]*\$ /.test(s.data), 'sshd prompt', 60_000);
  return s;
}

/**
 * Echo latency of single keystrokes, in ms, on several probes measured in turn (one key on each,
 * then the next round): both servers are measured under the same load at the same moments, so
 * a background spike lands on both sides rather than on whichever was measured then.
 */
async function echoLatencies(probes, samples) {
  for (const p of probes) p.ch.write('cat\r');
  await new Promise((r) => setTimeout(r, 300));
  const lat = probes.map(() => []);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < samples; i++) {
    const ch = letters[i % 26];
    for (const [k, p] of probes.entries()) {
      lat[k].push(await echoOnce(p, ch));
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
  for (const p of probes) p.ch.write('\x03');
  return lat;
}

const LOOP = 'while :; do date; uptime; sleep 1; done\r'; // a log-tail-like steady stream: 2 lines a second
ensureAccount();
const needUsers = (only.includes('latency') ? LOADS.reduce((a, b) => a + b + 1, 0) : 0) + (only.includes('idle') ? Math.max(...IDLES) : 0) + 5;
const gw = new Gateway(needUsers, '', undefined, { pairs: false }); // hundreds of users: no pair accounts (bench/README.md)
const sshd = new Sshd();
let next = 0;
try {
  console.log(`setting up ${needUsers} users...`);
  await gw.start();
  await sshd.start();
  if (only.includes('latency')) {
    for (const n of LOADS) {
      // Both sides' loads print at once and the two probes take turns (see echoLatencies).
      const load = [];
      for (let i = 0; i < n; i++) {
        load.push(await gatewayClient(gw, next++));
        load.push(await sshdClient(sshd, 10_000 + n * 1000 + i));
      }
      for (const s of load) s.ch.write(LOOP);
      const probes = [await gatewayClient(gw, next++), await sshdClient(sshd, 900_000 + n)];
      await new Promise((r) => setTimeout(r, 1000));
      const [g, d] = await echoLatencies(probes, quick ? 150 : 400);
      for (const s of [...load, ...probes]) {
        s.ch.write('\x03');
        s.c.end();
      }
      await new Promise((r) => setTimeout(r, 500));
      row(`keystroke echo p50 with ${n} sessions printing`, +pct(g, 50).toFixed(2), +pct(d, 50).toFixed(2), 'ms', '<= 1.0');
      row(`keystroke echo p99 with ${n} sessions printing`, +pct(g, 99).toFixed(2), +pct(d, 99).toFixed(2), 'ms', '<= 1.0');
    }
  }
  if (only.includes('cipher')) {
    // The gateway alone, one probe per cipher, taking turns: what the negotiated AEAD costs.
    const ciphers = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];
    const probes = [];
    for (const c of ciphers) probes.push(await gatewayClient(gw, next++, c));
    const lat = await echoLatencies(probes, quick ? 150 : 400);
    for (const [k, c] of ciphers.entries()) {
      row(`keystroke echo p50, ${c}`, +pct(lat[k], 50).toFixed(3), +pct(lat[0], 50).toFixed(3), 'ms (vs chacha20)', '-');
      row(`keystroke echo p99, ${c}`, +pct(lat[k], 99).toFixed(3), +pct(lat[0], 99).toFixed(3), 'ms (vs chacha20)', '-');
    }
    for (const p of probes) p.c.end();
  }
  if (only.includes('idle')) {
    const open = [];
    for (const n of IDLES) {
      while (open.length < n) open.push(await gatewayClient(gw, next++));
      await new Promise((r) => setTimeout(r, 3000));
      const c0 = gw.cpuTicks();
      await new Promise((r) => setTimeout(r, 10_000));
      const cpu = (gw.cpuTicks() - c0) / 10 / 10; // % of one core over 10 s (ticks are 10 ms)
      let pss = 0;
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          if (!(pid === String(gw.proc.pid) || cmd.includes(gw.dir) || cmd.startsWith('-sh') || cmd.startsWith('/bin/sh'))) continue;
          pss += Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
        } catch {}
      }
      row(`gateway RSS with ${n} idle sessions`, +(gw.rssKb() / 1024).toFixed(1), '-', 'MB', n >= 1000 ? '< 300 MB' : '-');
      row(`gateway CPU at rest with ${n} idle sessions`, +cpu.toFixed(2), '-', '% of a core', '-');
      row(`total PSS (gateway + tmux + shells) with ${n} idle sessions`, +(pss / 1024).toFixed(0), '-', 'MB', '-');
    }
    for (const s of open) s.c.end();
  }
} finally {
  gw.stop();
  sshd.stop();
}
const date = new Date().toISOString().slice(0, 10);
let md = `\n## ${date} load ${quick ? '(quick)' : '(full)'} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}\n\n| measure | tmuxgate | sshd+tmux | unit | ratio | target |\n| --- | --- | --- | --- | --- | --- |\n`;
for (const r of rows) md += `| ${r.what} | ${r.gw} | ${r.sshd} | ${r.unit} | ${r.ratio} | ${r.target} |\n`;
appendFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
console.log(md);
process.exit(0);
