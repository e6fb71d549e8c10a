#!/usr/bin/env node
// Search speed: MB of recording searched per second on a one-hour synthetic recording, through
// the same path as `tmuxgate search` (streamed decryption, every frame through the headless
// terminal, every drawn line tested). Two workloads: a log stream scrolling (~0.5 MB/s, like
// `tail -f` of a busy service) and a top-like screen redrawn every second.
// Usage: node bench/search.mjs [--minutes 60]. Appends to RESULTS.md.
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { Recorder } = await import(path.join(ROOT, 'dist/recording/recorder.js'));
const { aesGcmSealer } = await import(path.join(ROOT, 'dist/crypto/sealer.js'));
const { FakeClock } = await import(path.join(ROOT, 'dist/platform/clock.js'));
const { RecordingStream } = await import(path.join(ROOT, 'dist/recording/stream.js'));
const { searchFrames } = await import(path.join(ROOT, 'dist/recording/search.js'));

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const SECONDS = Number(arg('--minutes', '60')) * 60;
const dir = mkdtempSync('/tmp/tg-search-');
const rows = [];

async function synth(id, perSecond) {
  const file = path.join(dir, `${id}.tgrec`);
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const dataKey = randomBytes(32);
  const { privateKey } = generateKeyPairSync('ed25519');
  const header = { v: 1, sessionId: id, user: 'u', role: 'r', startedAt: clock.now(), cols: 120, rows: 40, term: 'xterm', cipher: 'aes-256-gcm', compression: 'deflate-raw', recordInput: false };
  const rec = new Recorder({ header, sealer: aesGcmSealer(dataKey), clock, fsync: false, maxQueueBytes: 1 << 30, signer: { sign: (d) => sign(null, d, privateKey), publicKeyPem: '' }, file: { path: file, append: async (d) => appendFileSync(file, d), close: async () => {} } });
  await rec.start();
  let plain = 0;
  for (let s = 0; s < SECONDS; s++) {
    for (const f of perSecond(s)) {
      rec.frame('output', f);
      plain += f.length;
    }
    clock.advance(1000);
    if (s % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  await rec.close('bench');
  const store = { sessions: { get: () => ({ id, user_name: 'u', role_name: 'r' }) }, recordings: { get: () => ({ session_id: id, file, duration_ms: SECONDS * 1000 }), dataKey: () => dataKey }, masterKeys: {} };
  return { store, id, bytes: statSync(file).size, plain };
}

// ~0.5 MB/s of log lines in 10 ms bursts (100 frames a second), scrolling; one PATIENT line a minute.
let n = 0;
const logs = (s) =>
  Array.from({ length: 100 }, (_, k) => {
    let out = '';
    for (let i = 0; i < 45; i++) {
      n++;
      out += `${new Date(Date.UTC(2026, 0, 1) + s * 1000 + k * 10).toISOString()} INFO svc-${n % 17} req=${((n * 7919) % 1000003).toString(16)} path=/api/v1/items/${n % 5000} status=${n % 50 ? 200 : 500} dur=${n % 97}ms user=u${n % 300}${i === 0 && k === 0 && s % 60 === 0 ? ` PATIENT-${s / 60}` : ''}\r\n`;
    }
    return Buffer.from(out);
  });
const topLike = (s) => [Buffer.from(`\x1b[H\x1b[2J` + Array.from({ length: 38 }, (_, i) => `${String(1000 + i).padStart(6)} user  20   0  ${(s * 7 + i * 13) % 99999} KB  ${((s + i) % 100).toString().padStart(3)}%  proc-${i}-${s}${i === 5 && s % 60 === 0 ? ` PATIENT-${s / 60}` : ''}`).join('\r\n'))];

try {
  for (const [name, gen] of [['log stream scrolling (~0.5 MB/s)', logs], ['top-like screen redrawn every second', topLike]]) {
    const r = await synth(`s_${name.split(' ')[0]}`, gen);
    const rec = await RecordingStream.open(r.store, r.id);
    const t0 = performance.now();
    const hits = await searchFrames(rec.header, rec.all(), (l) => l.includes('PATIENT-'));
    const s = (performance.now() - t0) / 1000;
    await rec.close();
    const found = new Set(hits.map((h) => /PATIENT-(\d+)/.exec(h.line)?.[1]));
    const expected = SECONDS / 60;
    rows.push({ what: `search a ${SECONDS / 60}-minute recording, ${name}: ${(r.bytes / 1e6).toFixed(1)} MB stored, ${(r.plain / 1e6).toFixed(0)} MB of output, ${s.toFixed(1)} s; recall ${found.size}/${expected}`, value: +((r.bytes / 1e6) / s).toFixed(2), unit: `MB of recording per second (${((r.plain / 1e6) / s).toFixed(1)} MB of output per second)` });
    console.log(rows.at(-1));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const date = new Date().toISOString().slice(0, 10);
let md = `\n## ${date} search (streamed, every drawn line) on ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}\n\n| measure | value | unit |\n| --- | --- | --- |\n`;
for (const r of rows) md += `| ${r.what} | ${r.value} | ${r.unit} |\n`;
appendFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
console.log(md);
process.exit(0);
