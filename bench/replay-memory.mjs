#!/usr/bin/env node
// Replay memory and fairness: the gateway's RSS and another user's keystroke echo while an auditor
// replays a large recording over SSH (the auditor menu, at 64x), for several recording sizes.
// Usage: node bench/replay-memory.mjs [--sizes 64,256,1024] [--seconds 30] [--plus 6]   (root). Appends to RESULTS.md.
import { appendFileSync, appendFileSync as append, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Gateway, ensureAccount, pct, sshClient, waitFor, echoOnce, sshShell } from './lib.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { totpCode } = await import(path.join(ROOT, 'dist/auth/totp.js'));
const { Recorder } = await import(path.join(ROOT, 'dist/recording/recorder.js'));
const { aesGcmSealer } = await import(path.join(ROOT, 'dist/crypto/sealer.js'));
const { FakeClock } = await import(path.join(ROOT, 'dist/platform/clock.js'));
const { loadConfig } = await import(path.join(ROOT, 'dist/config/load.js'));
const { openAdmin } = await import(path.join(ROOT, 'dist/admin/context.js'));
const ops = await import(path.join(ROOT, 'dist/admin/operations.js'));
const { generateEd25519 } = await import(path.join(ROOT, 'dist/auth/host-key.js'));

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const SIZES = arg('--sizes', '64,256,1024').split(',').map(Number);
const WINDOW_S = Number(arg('--seconds', '30'));
/** Replay speed: 2^PLUS (the menu's + key doubles it; 6 = 64x, the menu's top speed). */
const PLUS = Number(arg('--plus', '6'));
const results = [];

/** Writes a sealed recording of about `mb` MB into the gateway's store: dense log-like output, ~1 chunk per second. */
async function synthRecording(gw, mb) {
  const admin = await openAdmin(loadConfig(gw.config), { actor: 'os:bench' });
  const u = await admin.users.get('u0');
  const role = await admin.roles.find('bench');
  const id = 's_benchbig' + mb;
  const file = path.join(gw.dir, 'data', 'recordings', `${id}.tgrec`);
  mkdirSync(path.dirname(file), { recursive: true });
  const clock = new FakeClock(Date.now() - 24 * 3600_000);
  const dataKey = randomBytes(32);
  await admin.sessions.start({ id, userId: u.id, roleId: role.id, userName: 'u0', roleName: 'bench', remoteAddr: '127.0.0.1', term: 'xterm-256color', cols: 120, rows: 40, startedAt: clock.now() });
  await admin.recordings.create({ sessionId: id, file, dataKey, keys: admin.masterKeys, cols: 120, rows: 40, now: clock.now() });
  const { privateKey } = generateKeyPairSync('ed25519');
  const header = { v: 1, sessionId: id, user: 'u0', role: 'bench', startedAt: clock.now(), cols: 120, rows: 40, term: 'xterm-256color', cipher: 'aes-256-gcm', compression: 'deflate-raw', recordInput: false };
  const rec = new Recorder({ header, sealer: aesGcmSealer(dataKey), clock, fsync: false, maxQueueBytes: 1 << 30, signer: { sign: (d) => sign(null, d, privateKey), publicKeyPem: '' }, file: { path: file, append: async (d) => append(file, d), close: async () => {} } });
  await rec.start();
  let s = 0;
  // Random base64 in 76-column lines with colour: deflate stores ~0.77 bytes per byte of it.
  for (; ; s++) {
    const b64 = randomBytes(36 * 1024).toString('base64');
    let out = '';
    for (let i = 0; i < b64.length; i += 76) out += `\x1b[3${(i / 76) % 8}m${b64.slice(i, i + 76)}\x1b[0m\r\n`;
    rec.frame('output', Buffer.from(out));
    clock.advance(1000);
    if (s % 32 === 0) await new Promise((r) => setImmediate(r));
    if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) >= mb * 1e6) {
      s++;
      break;
    }
  }
  await rec.close('bench');
  await admin.recordings.finish(id, 'sealed', s * 1000, clock.now(), null);
  await admin.sessions.end(id, 'detached', clock.now());
  // The auditor: role, user, key, TOTP.
  if (!await admin.roles.find('audit')) await ops.addRole(admin, { name: 'audit', kind: 'auditor' });
  let auditorSecret = gw.auditorSecret;
  if (!auditorSecret) {
    await ops.addUser(admin, 'aud', 'audit');
    const pair = generateEd25519('aud');
    writeFileSync(path.join(gw.dir, 'id_aud'), pair.private, { mode: 0o600 });
    await ops.addKey(admin, 'aud', pair.public);
    auditorSecret = (await ops.enrollTotp(admin, 'aud')).secret;
    await ops.confirmTotp(admin, 'aud', totpCode(auditorSecret, Date.now()));
    gw.auditorSecret = auditorSecret;
  }
  await admin.close();
  return { id, bytes: statSync(file).size, seconds: s };
}

const connect = sshShell;

/** Echo latency of single keystrokes on `probe` for `seconds`, in ms. */
async function echoFor(probe, seconds) {
  const lat = [];
  const end = Date.now() + seconds * 1000;
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; Date.now() < end; i++) {
    const ch = letters[i % 26];
    lat.push(await echoOnce(probe, ch));
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
  }
  return lat;
}

ensureAccount();
for (const mb of SIZES) {
  const gw = new Gateway(2);
  try {
    await gw.start();
    const t0 = Date.now();
    const big = await synthRecording(gw, mb);
    console.log(`${mb} MB: recording of ${(big.bytes / 1e6).toFixed(0)} MB (${big.seconds} s of output) written in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const probe = await connect({ port: gw.port, username: 'u1', key: readFileSync(path.join(gw.dir, 'id_u1')), code: () => totpCode(gw.secrets[1], Date.now() + 30_000) });
    await waitFor(() => /tmuxgate[\s\S]*\$ /.test(probe.data), 'probe prompt', 60_000);
    probe.ch.write('cat\r');
    await new Promise((r) => setTimeout(r, 500));
    const idleLat = await echoFor(probe, 5);
    const rssBefore = gw.rssKb();
    // The auditor, through the real OpenSSH client: filter to the big recording, replay, 64x.
    const aud = sshClient(['-F', '/dev/null', '-p', String(gw.port), '-i', path.join(gw.dir, 'id_aud'), '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${path.join(gw.dir, 'known_hosts')}`, 'aud@127.0.0.1'], { HOME: gw.dir });
    await waitFor(() => aud.out.includes('Verification code:'), 'auditor code prompt');
    aud.p.write(totpCode(gw.auditorSecret, Date.now() + 30_000) + '\r');
    await waitFor(() => aud.out.includes('tmuxgate auditor'), 'auditor menu', 30_000);
    aud.p.write(`/${big.id}\r`);
    await waitFor(() => aud.out.includes(`filter: ${big.id}`), 'filter');
    const bytes0 = aud.bytes;
    const started = aud.expect('playing', 'replay started', 60_000);
    aud.p.write('\r');
    await started;
    for (let i = 0; i < PLUS; i++) aud.p.write('+');
    const rss = [];
    const sampler = setInterval(() => rss.push(gw.rssKb()), 250);
    const lat = await echoFor(probe, WINDOW_S);
    clearInterval(sampler);
    const streamed = aud.bytes - bytes0;
    const trace = rss.filter((_, i) => i % 20 === 0).map((k) => (k / 1024).toFixed(0)).join(' ');
    aud.p.write('q');
    aud.p.write('q');
    const r = { mb: +(big.bytes / 1e6).toFixed(0), rssBefore: +(rssBefore / 1024).toFixed(1), rssMax: +(Math.max(...rss) / 1024).toFixed(1), rssMedian: +(pct(rss, 50) / 1024).toFixed(1), idleP50: +pct(idleLat, 50).toFixed(2), idleP99: +pct(idleLat, 99).toFixed(2), p50: +pct(lat, 50).toFixed(2), p99: +pct(lat, 99).toFixed(2), samples: lat.length, streamedMb: +(streamed / 1e6).toFixed(1), trace };
    console.log(JSON.stringify(r));
    results.push(r);
    probe.ch.write('\x03');
    probe.c.end();
    aud.p.kill();
  } finally {
    await gw.stop(true);
  }
}

const date = new Date().toISOString().slice(0, 10);
let md = `\n## ${date} replay memory (auditor menu at ${2 ** PLUS}x, ${WINDOW_S} s window) on ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, node ${process.version}\n\n`;
md += '| recording | gateway RSS before / median / max during replay | RSS every 5 s of the replay | echo p50 / p99 idle | echo p50 / p99 during replay (samples) | streamed to the auditor |\n| --- | --- | --- | --- | --- | --- |\n';
for (const r of results) md += `| ${r.mb} MB | ${r.rssBefore} / ${r.rssMedian} / ${r.rssMax} MB | ${r.trace} | ${r.idleP50} / ${r.idleP99} ms | ${r.p50} / ${r.p99} ms (${r.samples}) | ${r.streamedMb} MB |\n`;
appendFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
console.log(md);
process.exit(0);
