#!/usr/bin/env node
// Profiles the gateway under bulk output: one session runs seq + base64 through tmux while the
// gateway runs with --cpu-prof; prints self time by package and the top functions, and leaves the
// .cpuprofile (open it in Chrome DevTools or speedscope.app for a flame graph).
// With --workload echo: single keystrokes echoed by `cat` (the keystroke path of issue 16): prints
// main-thread time per echo by package instead of per MB.
// Usage: sudo node bench/profile.mjs [--recording on|off] [--workload bulk|echo] [--echoes N] [--out DIR]
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Gateway, ensureAccount, selfTimes, waitFor } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const recording = arg('--recording', 'on');
const workload = arg('--workload', 'bulk');
const echoes = Number(arg('--echoes', '2000'));
const out = path.resolve(arg('--out', `/tmp/tmuxgate-prof-${recording}-${Date.now()}`));
mkdirSync(out, { recursive: true });
ensureAccount();

process.env.TG_BENCH_PROF = out;
const gw = new Gateway(1, recording === 'off' ? 'recording: { enabled: false }\n' : '');
let mb = 0;
let idleMs = 0;
/** The echo phase, in the monotonic microseconds V8's profile timestamps use: only samples inside it count. */
const window = { from: 0, to: Infinity };
try {
  await gw.start();
  const c = await gw.login(0);
  if (workload === 'echo') {
    c.p.write('cat\r');
    await new Promise((r) => setTimeout(r, 500));
    // The same wall time with nothing typed first: what the gateway spends on its own (timers,
    // checks), to subtract from the echo run.
    const t0 = Date.now();
    window.from = Number(process.hrtime.bigint() / 1000n);
    for (let i = 0; i < echoes; i++) {
      const before = c.bytes;
      c.p.write('abcdefghijklmnopqrstuvwxyz'[i % 26]);
      await waitFor(() => c.bytes > before, 'echo', 10_000);
    }
    idleMs = Date.now() - t0;
    window.to = Number(process.hrtime.bigint() / 1000n);
    mb = echoes; // "per MB" below reads "per echo"
  } else {
    const mark = c.bytes;
    const done = c.expect('D3ONE', 'bulk', 600_000);
    c.p.write('seq 1 2000000; head -c 20000000 /dev/urandom | base64; echo D$((1+2))ONE\r');
    await done;
    mb = (c.bytes - mark) / 1e6;
  }
  c.p.kill();
} finally {
  await gw.stop(true);
}

const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no profile written in ${out}`);
const prof = JSON.parse(readFileSync(path.join(out, file), 'utf8'));
const { byFn, byPkg } = selfTimes(prof, window);
const busy = [...byPkg].filter(([k]) => k !== '(idle)').reduce((a, [, v]) => a + v, 0);
const unit = workload === 'echo' ? 'µs/echo' : 'ms/MB';
const per = (v) => (workload === 'echo' ? (1000 * v) / mb : v / mb).toFixed(1).padStart(7);
if (workload === 'echo') {
  console.log(`recording ${recording}: ${echoes} echoes in ${idleMs} ms (${((1000 * idleMs) / echoes).toFixed(0)} µs each, end to end); ${busy.toFixed(0)} ms busy on the gateway's main thread meanwhile (${per(busy)} ${unit})`);
} else console.log(`recording ${recording}: ${mb.toFixed(1)} MB of client stream, ${busy.toFixed(0)} ms busy on the main thread (${(busy / mb).toFixed(1)} ms/MB)`);
console.log('\nself time by package (main thread, without idle):');
for (const [k, v] of [...byPkg].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${per(v)} ${unit}  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
console.log('\ntop functions by self time:');
for (const [k, v] of [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${per(v)} ${unit}  ${k}`);
console.log(`\nprofile: ${path.join(out, file)}`);
