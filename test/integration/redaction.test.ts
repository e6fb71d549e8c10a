import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { cliAsync, BIN } from '../helpers/cli.js';
import { PtyDriver, plain } from '../helpers/pty-driver.js';
import { openRecording } from '../../src/recording/access.js';

/**
 * Synthetic PHI printed in a real session (OpenSSH, tmux), in forms a byte filter would miss: the
 * SSN coloured per group and written in two pieces. The typed commands build every value with
 * shell arithmetic, so only the output shows them.
 */
const PRINT_PHI =
  "printf 'SSN \\033[31m%s\\033[0m' 0$((70+8)); printf -- '-\\033[32m0%s\\033[0m-%s\\n' 5 $((1000+120)); " +
  "printf 'MRN: %s\\n' $((12345000+678)); printf 'card %s %s %s %s\\n' $((4000+111)) 1111 1111 1111; " +
  "printf 'DOB: %s/%s/%s\\n' 03 14 $((1900+61)); echo DONE-$((40+2))";
const PRINT_MORE = "printf 'Acct #: %s MRN: %s\\n' 4417-$((2000+290)) $((77000000+3441)); echo AGAIN-$((3+4))";

/** Pieces of each identifier as a person would read them; none may reach a redacted view. */
const SHOWN = ['078-05-1120', '05-1120', '12345678', '4111 1111 1111 1111', '4111 1111', '03/14/1961', '14/1961'];
const SHOWN_MORE = ['4417-2290', '77003441'];
/** What of `identifiers` the output `raw` shows, read as text (escape sequences out). */
const leaked = (raw: string, identifiers = SHOWN) => identifiers.filter((x) => plain(raw).includes(x));

describe('PHI redaction: every view but the owner’s is masked; the recording is not', () => {
  const t = new TestGateway();
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let sessionId = '';

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    bob = await t.user('bob');
    await t.role('audit', { kind: 'auditor' });
    carol = await t.user('carol', 'audit');
  });
  afterAll(() => t.stop());

  it('live: the owner sees the identifiers; a watcher and an observer see them masked', async () => {
    const a = await t.login(alice);
    sessionId = String((await t.audit('session.start')).filter((e) => e.data.user === 'alice').at(-1)!.data.sessionId);
    await t.run(a, PRINT_PHI, 'DONE-42');
    // The fixture really shows them (the owner's own screen is never redacted).
    expect(leaked(a.out)).toEqual(SHOWN);

    // Read-only watch by another user: on attach (tmux redraws the screen) and live.
    const share = t.ssh(alice, 'alice', ['-T'], {}, ['share bob']);
    await share.waitFor('Verification code:');
    share.write(t.code(alice) + '\r');
    expect(await share.waitExit()).toBe(0);
    const w = t.ssh(bob, 'bob', ['-t'], {}, ['watch alice+ops']);
    await w.waitFor('Verification code:');
    w.write(t.code(bob) + '\r');
    await w.waitFor('DONE-42');

    // An administrator's `sessions observe`.
    const o = new PtyDriver(process.execPath, [BIN, 'sessions', 'observe', sessionId, ...t.cliConfig()], {
      PATH: process.env.PATH!,
      HOME: t.dir,
      TERM: 'xterm-256color',
    });
    await o.waitFor('DONE-42');

    await t.run(a, PRINT_MORE, 'AGAIN-7');
    await w.waitFor('AGAIN-7');
    await o.waitFor('AGAIN-7');
    expect(leaked(a.out, SHOWN_MORE)).toEqual(SHOWN_MORE);
    expect(leaked(w.out)).toEqual([]);
    expect(leaked(w.out, SHOWN_MORE)).toEqual([]);
    expect(leaked(o.out)).toEqual([]);
    expect(leaked(o.out, SHOWN_MORE)).toEqual([]);
    expect(plain(w.out)).toMatch(/SSN \[SSN\]\*{5}/);
    expect(plain(o.out)).toContain('MRN: [MRN]');
    o.write('\x1c');
    await o.waitExit();
    w.kill();
    t.clock.advance(1000);
    a.kill();
    await waitUntil(async () => (await t.admin.recordings.get(sessionId))?.state === 'sealed', 'recording sealed');

    const join = (await t.audit('share.join')).at(-1)!;
    expect(join.data).toMatchObject({ viewer: 'bob', redacted: true });
    const observe = (await t.audit('recording.access')).filter((e) => e.data.action === 'observe' && e.data.sessionId === sessionId);
    expect(observe.map((e) => e.data.redacted)).toEqual([true]);
  });

  it('the recording itself is unchanged: it verifies, and decrypted it holds every identifier', async () => {
    const v = await cliAsync(['verify', sessionId, '--json', ...t.cliConfig()]);
    expect(JSON.parse(v.stdout)).toMatchObject({ status: 'intact', decrypted: true });
    const raw = Buffer.concat((await openRecording(t.admin, sessionId)).frames.filter((f) => f.kind === 'output').map((f) => f.data)).toString();
    expect(leaked(raw)).toEqual(SHOWN);
    expect(leaked(raw, SHOWN_MORE)).toEqual(SHOWN_MORE);
  });

  it('CLI replay shows the masked screen, after a seek too', async () => {
    const p = t.replayCli(sessionId);
    await p.waitFor('end: q to quit');
    await p.waitFor('AGAIN-7');
    const mark = p.out.length;
    p.write('\x1b[D'); // back 5 s: a redraw from the keyframes
    await p.waitFor('end: q to quit', 15_000, mark);
    p.write('q');
    await p.waitExit();
    expect(leaked(p.out)).toEqual([]);
    expect(leaked(p.out, SHOWN_MORE)).toEqual([]);
    expect(plain(p.out)).toContain('MRN: [MRN]');
  });

  it('export writes redacted redraws and no keystrokes', async () => {
    const cast = path.join(t.dir, 'r.cast');
    expect((await cliAsync(['export', sessionId, '-o', cast, ...t.cliConfig()])).status).toBe(0);
    const [head, ...events] = readFileSync(cast, 'utf8').trim().split('\n');
    const parsed = events.map((l) => JSON.parse(l) as [number, string, string]);
    const out = parsed
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    expect(leaked(out)).toEqual([]);
    expect(leaked(out, SHOWN_MORE)).toEqual([]);
    expect(plain(out)).toContain('DONE-42');
    expect(parsed.filter((e) => e[1] === 'i')).toEqual([]);
    expect(JSON.parse(head!).title).toContain('(redacted)');
  });

  it('search for a value finds the session and time; its lines come back masked', async () => {
    for (const q of ['12345678', '078-05-1120']) {
      const r = await cliAsync(['search', q, '--json', ...t.cliConfig()]);
      expect(r.status).toBe(0);
      const hits = (JSON.parse(r.stdout) as { session: string; line: string; redacted: boolean }[]).filter((h) => h.session === sessionId);
      expect(hits.length).toBeGreaterThan(0);
      expect(leaked(hits.map((h) => h.line).join('\n'))).toEqual([]);
      expect(hits.every((h) => h.redacted)).toBe(true);
    }
    const table = await cliAsync(['search', 'MRN', '--user', 'alice', ...t.cliConfig()]);
    expect(leaked(table.stdout)).toEqual([]);
    expect(leaked(table.stdout, SHOWN_MORE)).toEqual([]);
    expect(table.stdout).toContain('MRN: [MRN]');
  });

  it('the auditor menu replays it masked; every view is audited as redacted', async () => {
    const d = t.ssh(carol, 'carol');
    await d.waitFor('Verification code:');
    d.write(t.code(carol) + '\r');
    const mark = await t.auditorReplay(d, sessionId);
    await d.waitFor('end: q to quit', 15_000, mark);
    await d.waitFor('AGAIN-7', 15_000, mark);
    d.write('q');
    await d.waitFor('[enter] replay', 10_000, mark);
    d.write('q');
    await d.waitExit();
    expect(leaked(d.out)).toEqual([]);
    expect(leaked(d.out, SHOWN_MORE)).toEqual([]);
    expect(plain(d.out.slice(mark))).toContain('MRN: [MRN]');

    const access = (await t.audit('recording.access')).filter((e) => e.data.sessionId === sessionId && e.data.action !== 'verify');
    expect(new Set(access.map((e) => e.data.action))).toEqual(new Set(['observe', 'replay', 'export', 'search']));
    expect(access.filter((e) => e.data.redacted !== true)).toEqual([]);
    expect(access.some((e) => e.actor === 'carol' && e.data.action === 'replay')).toBe(true);
  });

  it('unmasking is four eyes: approved by another admin, the requester alone sees export and search unmasked, audited with the grant; revoked, masked again', async () => {
    const as = (who: string, ...args: string[]) => cliAsync([...args, ...t.cliConfig()], { env: { SUDO_USER: who } });
    const req = await as('alice', 'unmask', 'request', sessionId, '--reason', 'INC-7: chart merged into the wrong patient', '--for', '1h');
    expect(req.stderr).toBe('');
    const reqId = /^unmask request (\d+) /.exec(req.stdout)![1]!;
    expect((await as('alice', 'unmask', 'approve', reqId)).status).toBe(6); // never the requester
    const searchAs = async (who: string) => {
      const r = await as(who, 'search', '12345678', '--json');
      return (JSON.parse(r.stdout) as { session: string; line: string; redacted: boolean }[]).filter((h) => h.session === sessionId);
    };
    expect((await searchAs('alice')).every((h) => h.redacted)).toBe(true); // not yet approved
    const ok = await as('bob', 'unmask', 'approve', reqId);
    expect(ok.status).toBe(0);
    const grantId = /^grant (\d+):/.exec(ok.stdout)![1]!;

    const mine = await searchAs('alice');
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((h) => !h.redacted)).toBe(true);
    expect(mine.map((h) => h.line).join('\n')).toContain('12345678');
    const cast = path.join(t.dir, 'unmasked.cast');
    expect((await as('alice', 'export', sessionId, '-o', cast)).status).toBe(0);
    const out = readFileSync(cast, 'utf8');
    expect(leaked(out)).toContain('12345678');
    expect(JSON.parse(out.split('\n')[0]!).title).not.toContain('(redacted)');
    // The approver and a third admin still see it masked.
    for (const who of ['bob', 'dave']) expect((await searchAs(who)).every((h) => h.redacted && !h.line.includes('12345678'))).toBe(true);

    const views = (await t.audit('unmask.view')).filter((e) => e.data.sessionId === sessionId);
    expect(views.map((e) => [e.actor, e.data.what, String(e.data.grantId), e.data.reason])).toEqual([
      ['os:alice(as root)', 'search', grantId, 'INC-7: chart merged into the wrong patient'],
      ['os:alice(as root)', 'export', grantId, 'INC-7: chart merged into the wrong patient'],
    ]);
    const access = (await t.audit('recording.access')).filter((e) => e.actor === 'os:alice(as root)' && e.data.redacted === false);
    expect(access.map((e) => [e.data.action, (e.data.grant as { id: string }).id])).toEqual([
      ['search', grantId],
      ['export', grantId],
    ]);

    expect((await as('bob', 'unmask', 'revoke', grantId, '--reason', 'done')).status).toBe(0);
    expect((await searchAs('alice')).every((h) => h.redacted && !h.line.includes('12345678'))).toBe(true);
    expect((await t.audit('unmask.view')).filter((e) => e.data.sessionId === sessionId)).toHaveLength(2);
  });
});
