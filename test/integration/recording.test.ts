import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, existsSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { cliAsync, BIN } from '../helpers/cli.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { Screen } from '../../src/recording/screen.js';
import { FileSink, type RecordingFile, type RecordingSink } from '../../src/recording/sink.js';

/** A sink whose disk fills up after `limit` bytes, for the next recording created after `failNext`. */
class FillingSink implements RecordingSink {
  failNext = false;
  constructor(
    private readonly inner: FileSink,
    private readonly limit: number,
  ) {}
  async create(sessionId: string): Promise<RecordingFile> {
    const f = await this.inner.create(sessionId);
    if (!this.failNext) return f;
    this.failNext = false;
    let n = 0;
    const limit = this.limit;
    return {
      path: f.path,
      async append(d, sync) {
        if (n + d.length > limit) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        n += d.length;
        return f.append(d, sync);
      },
      close: () => f.close(),
    };
  }
}

const screenOf = async (out: string, cols: number, rows: number): Promise<string[]> => {
  const s = new Screen(cols, rows);
  await s.write(out);
  const l = s.lines();
  s.dispose();
  return l;
};

describe('recordings of real sessions', () => {
  let sink: FillingSink;
  let t: TestGateway;
  let alice: TestUser;
  let bob: TestUser;
  let sessionId = '';
  let clientScreen: string[] = [];

  beforeAll(async () => {
    t = new TestGateway({}, {});
    sink = new FillingSink(new FileSink(path.join(t.config.paths.dataDir, 'recordings')), 3000);
    (t as unknown as { opts: { deps: unknown } }).opts.deps = { recordingSink: sink };
    await t.start();
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.stop());

  it('records what the client saw, encrypted, and seals it with a verifying trailer', async () => {
    const d = await t.login(alice);
    for (let i = 0; i < 3; i++) {
      await t.run(d, `echo PHI-RECORD-$((${i}+100))`, `PHI-RECORD-${i + 100}`);
      t.clock.advance(1000); // the flush interval, on the injected clock
    }
    sessionId = String((await t.audit('session.start')).at(-1)!.data.sessionId);
    await waitUntil(async () => ((await t.admin.recordings.get(sessionId))?.chunks ?? 0) >= 3, 'three durable chunks');
    clientScreen = await screenOf(d.out.slice(d.out.indexOf('\x1b[H') >= 0 ? 0 : 0), 120, 40);
    d.kill();
    await waitUntil(async () => (await t.admin.recordings.get(sessionId))?.state === 'sealed', 'recording sealed');
    const row = (await t.admin.recordings.get(sessionId))!;
    const bytes = readFileSync(row.file);
    expect(bytes.includes(Buffer.from('PHI-RECORD'))).toBe(false);
    const end = (await t.audit('session.end')).find((e) => e.data.sessionId === sessionId)!;
    expect(end.data.recordingHash).toBe(row.chain_head);

    const v = await cliAsync(['verify', sessionId, '--json', ...t.cliConfig()]);
    expect(v.status).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ status: 'intact', decrypted: true, problem: null });
    const pub = path.join(t.dir, 'audit.pub.pem');
    writeFileSync(pub, (await cliAsync(['audit', 'pubkey', ...t.cliConfig()])).stdout);
    const pv = await cliAsync(['verify', sessionId, '--public-key', pub, ...t.cliConfig()]);
    expect(pv.stdout).toContain('intact');
  });

  it('exports asciicast that asciinema cat plays back, with what was printed', async () => {
    const cast = path.join(t.dir, 's.cast');
    const r = await cliAsync(['export', sessionId, '--format', 'asciicast', '-o', cast, ...t.cliConfig()]);
    expect(r.stderr).toBe('');
    // asciinema cat opens /dev/tty, so it runs in a pty as a person would run it.
    const player = new PtyDriver('asciinema', ['cat', cast], { PATH: process.env.PATH!, HOME: t.dir, TERM: 'xterm' });
    await player.waitFor('PHI-RECORD-102');
    expect(await player.waitExit()).toBe(0);
    expect((await t.audit('recording.access')).map((e) => e.data.action)).toEqual(expect.arrayContaining(['verify', 'export']));
  });

  it('search finds the text with its offset, ready for replay --from', async () => {
    const r = await cliAsync(['search', 'PHI-RECORD-101', '--json', ...t.cliConfig()]);
    const hits = JSON.parse(r.stdout) as { session: string; offset: string; line: string }[];
    expect(hits.some((h) => h.session === sessionId && h.line.includes('PHI-RECORD-101') && /^\d+:\d\d$/.test(h.offset))).toBe(true);
    const none = await cliAsync(['search', 'NEVER-PRINTED-ANYWHERE', '--json', ...t.cliConfig()]);
    expect(JSON.parse(none.stdout)).toEqual([]);
  });

  it('replays to the same screen the client saw', async () => {
    const p = t.replayCli(sessionId);
    await p.waitFor('end: q to quit');
    const replayed = (await screenOf(p.out, 120, 41)).slice(0, 40);
    p.write('q');
    await p.waitExit();
    const norm = (l: string[]) => l.map((x) => x.trimEnd()).filter((x) => x.includes('PHI-RECORD') || x.includes('[alice+ops]'));
    expect(norm(replayed)).toEqual(norm(clientScreen));
    expect(norm(replayed).length).toBeGreaterThanOrEqual(4);
    // The keyframe cache it left is encrypted: no plaintext of the session on disk.
    const kf = (await t.admin.recordings.get(sessionId))!.file.replace(/\.tgrec$/, '.tgkf');
    expect(existsSync(kf)).toBe(true);
    expect(readFileSync(kf).includes(Buffer.from('PHI-RECORD'))).toBe(false);
    const again = new PtyDriver(
      process.execPath,
      [BIN, 'replay', sessionId, '--speed', '500', '--from', '0:00', ...t.cliConfig()],
      { PATH: process.env.PATH!, HOME: t.dir, TERM: 'xterm-256color' },
      { cols: 120, rows: 41 },
    );
    await again.waitFor('end: q to quit');
    expect(norm((await screenOf(again.out, 120, 41)).slice(0, 40))).toEqual(norm(clientScreen));
    again.write('q');
    await again.waitExit();
  });

  it('gives an auditor role a replay menu over SSH, never a shell', async () => {
    await t.role('audit', { kind: 'auditor' });
    const carol = await t.user('carol', 'audit');
    const d = t.ssh(carol, 'carol');
    await d.waitFor('Verification code:');
    d.write(t.code(carol) + '\r');
    await d.waitFor('tmuxgate auditor carol+audit');
    const mark = await t.auditorReplay(d, sessionId);
    await d.waitFor('PHI-RECORD-102', 15_000, mark);
    await d.waitFor('end: q to quit', 15_000, mark);
    const back = d.out.length;
    d.write('q');
    await d.waitFor('[enter] replay', 10_000, back);
    d.write('q');
    expect(await d.waitExit()).toBe(0);
    expect(d.text).not.toContain('[carol+audit]'); // no tmux, no shell
    expect((await t.audit('session.start')).filter((e) => e.data.user === 'carol').map((e) => e.data.socketDir)).toEqual(['(auditor menu)']);
    const replays = (await t.audit('recording.access')).filter((e) => e.data.action === 'replay' && e.actor === 'carol');
    expect(replays.map((e) => e.data.sessionId)).toContain(sessionId);
  });

  it('ends a session whose recording cannot be written, and keeps serving others', async () => {
    sink.failNext = true;
    const d = t.ssh(bob, 'bob');
    await t.enter(d, bob);
    d.write('head -c 20000 /dev/urandom | base64\r');
    // The recorder flushes on the gateway's clock: move it on until the failed flush ends the session
    // (however long the machine takes to print the output).
    await waitUntil(() => (t.clock.advance(1000), d.out.includes('recording failed: session ended')), 'the recording failure', 15_000, 50);
    await d.waitExit();
    const failed = (await t.audit('recording.failed')).at(-1)!;
    expect(String(failed.data.error)).toContain('ENOSPC');
    const v = await cliAsync(['verify', String(failed.data.sessionId), '--json', ...t.cliConfig()]);
    expect(JSON.parse(v.stdout)).toMatchObject({ status: 'interrupted', problem: null });
    const ok = await t.login(alice);
    ok.kill();
  });

  it('rotates the master key without touching recordings; a wrong master key is named as such', async () => {
    const before = (await t.admin.recordings.get(sessionId))!;
    const fileBefore = readFileSync(before.file);
    const r = await cliAsync(['keys', 'rotate', ...t.cliConfig()]);
    expect(r.stdout).toMatch(/master key rotated: [0-9a-f]{16} -> [0-9a-f]{16}/);
    const after = (await t.admin.recordings.get(sessionId))!;
    expect(after.key_id).not.toBe(before.key_id);
    expect(readFileSync(after.file).equals(fileBefore)).toBe(true);
    expect(JSON.parse((await cliAsync(['verify', sessionId, '--json', ...t.cliConfig()])).stdout)).toMatchObject({ status: 'intact' });
    // A different master key (and no retired ones): the data key cannot be opened.
    const keysDir = t.config.paths.keysDir;
    const { readdirSync, renameSync, mkdirSync } = await import('node:fs');
    const { randomBytes } = await import('node:crypto');
    const aside = path.join(t.dir, 'keys-aside');
    mkdirSync(aside);
    for (const f of readdirSync(keysDir).filter((f) => f.startsWith('master.key'))) renameSync(path.join(keysDir, f), path.join(aside, f));
    writeFileSync(path.join(keysDir, 'master.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    const wrong = await cliAsync(['verify', sessionId, '--json', ...t.cliConfig()]);
    for (const f of readdirSync(aside)) renameSync(path.join(aside, f), path.join(keysDir, f));
    expect(wrong.status).toBe(5);
    expect(JSON.parse(wrong.stdout)).toMatchObject({ status: 'tampered', problem: { reason: 'wrong-key' } });
  });

  it('detects a flipped byte in a real recording through the CLI', async () => {
    const row = (await t.admin.recordings.get(sessionId))!;
    const backup = `${row.file}.bak`;
    copyFileSync(row.file, backup);
    const b = readFileSync(row.file);
    b[b.length - 200]! ^= 0x40;
    writeFileSync(row.file, b);
    const v = await cliAsync(['verify', sessionId, ...t.cliConfig()]);
    copyFileSync(backup, row.file);
    expect(v.status).toBe(5);
    expect(v.stdout).toMatch(/TAMPERED: (decrypt-failure|broken-chain|bad-signature|trailer-mismatch)/);
    expect(existsSync(row.file)).toBe(true);
  });
});
