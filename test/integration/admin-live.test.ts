import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { cliAsync, BIN } from '../helpers/cli.js';
import { waitUntil } from '../helpers/poll.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { generateRecoveryCodes, addRole, grantRole } from '../../src/admin/operations.js';

/** Admin changes against a running gateway with live OpenSSH sessions. */
describe('admin changes reach live sessions', () => {
  const t = new TestGateway();
  let alice: TestUser;
  let bob: TestUser;
  let dave: TestUser;

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    bob = await t.user('bob');
    dave = await t.user('dave');
    await addRole(t.admin, { name: 'dba' });
    await grantRole(t.admin, 'dave', 'dba');
  });
  afterAll(() => t.stop());

  const sessionOf = async (user: string) => String((await t.audit('session.start')).filter((e) => e.data.user === user).at(-1)!.data.sessionId);

  it('accepts a recovery code once in place of a TOTP code, refuses it the second time, audits each use', async () => {
    const [code] = await generateRecoveryCodes(t.admin, 'bob', 2);
    const d = t.ssh(bob, 'bob');
    await d.waitFor('Verification code:');
    d.write(code!.toLowerCase() + '\r');
    await d.waitFor('[bob+ops]');
    d.kill();
    const again = t.ssh(bob, 'bob');
    await again.waitFor('Verification code:');
    again.write(code + '\r');
    await again.waitFor(/Verification code:[\s\S]*Verification code:/);
    again.kill();
    expect(await t.audit('auth.recovery-code')).toEqual([expect.objectContaining({ data: expect.objectContaining({ user: 'bob', remaining: 1 }) })]);
    expect((await t.audit('auth.success')).filter((e) => e.data.user === 'bob').at(-1)!.data.method).toBe('publickey+recovery-code');
  });

  it('disabling a user ends their live session within 2 s, with a message; they cannot log back in', async () => {
    const d = await t.login(alice);
    const r = await cliAsync(['user', 'disable', 'alice', ...t.cliConfig()]);
    expect(r.status).toBe(0);
    // Timed from the change in the store (the CLI's exit), not from the CLI's start: a loaded CI
    // machine takes over a second to start a node process, which is not the gateway's reaction.
    await d.waitFor('your account was disabled by an administrator', 2000);
    await d.waitExit(3000);
    const again = t.ssh(alice, 'alice', ['-o', 'PreferredAuthentications=publickey']);
    await again.waitFor(/Permission denied/);
    await cliAsync(['user', 'enable', 'alice', ...t.cliConfig()]);
  });

  it('kill ends a session within 2 s and the user sees the reason', async () => {
    const d = await t.login(alice);
    const id = await sessionOf('alice');
    const r = await cliAsync(['sessions', 'kill', id, '--reason', 'maintenance at 19:00', ...t.cliConfig()]);
    expect(r.status).toBe(0);
    await d.waitFor('session ended by an administrator: maintenance at 19:00', 2000);
    await d.waitExit(3000);
    // The row is ended once the recording is sealed: poll, do not sleep.
    await waitUntil(async () => (await t.admin.sessions.get(id))!.end_reason !== null, 'session row ended', 5000);
    expect((await t.admin.sessions.get(id))!.end_reason).toBe('killed');
  });

  it('revoking a role ends the sessions that use it', async () => {
    const d = await t.login(dave, 'dave+dba');
    const r = await cliAsync(['role', 'revoke', 'dave', 'dba', ...t.cliConfig()]);
    expect(r.status).toBe(0);
    await d.waitFor('your role dba was revoked', 2000);
    await d.waitExit(3000);
  });

  it('an auditor in the replay menu is a live session: listed, killable, and ended when disabled', async () => {
    await t.role('audit', { kind: 'auditor' });
    const carol = await t.user('carol', 'audit');
    const enter = async () => {
      const d = t.ssh(carol, 'carol');
      await d.waitFor('Verification code:');
      d.write(t.code(carol) + '\r');
      await d.waitFor('tmuxgate auditor carol+audit');
      return d;
    };
    const m = await enter();
    const id = await sessionOf('carol');
    const listed = JSON.parse((await cliAsync(['sessions', 'list', '--live', '--json', ...t.cliConfig()])).stdout) as { id: string }[];
    expect(listed.map((x) => x.id)).toContain(id);
    expect((await cliAsync(['sessions', 'kill', id, '--reason', 'audit window closed', ...t.cliConfig()])).status).toBe(0);
    await m.waitFor('session ended by an administrator: audit window closed', 2000);
    await m.waitExit(3000);

    t.clock.advance(30_000); // a fresh TOTP step for the second login
    const again = await enter();
    expect((await cliAsync(['user', 'disable', 'carol', ...t.cliConfig()])).status).toBe(0);
    await again.waitFor('your account was disabled by an administrator', 2000);
    await again.waitExit(3000);
    expect((await t.admin.sessions.get(await sessionOf('carol')))!.end_reason).toBe('user-disabled');
    await cliAsync(['user', 'enable', 'carol', ...t.cliConfig()]);
  });

  it('lockouts clear reaches the running gateway', async () => {
    await t.admin.lockouts.recordFailure('user', 'bob');
    for (let i = 0; i < 10; i++) await t.admin.lockouts.recordFailure('user', 'bob');
    expect((await cliAsync(['lockouts', 'list', '--json', ...t.cliConfig()])).stdout).toContain('"bob"');
    await cliAsync(['lockouts', 'clear', 'bob', ...t.cliConfig()]);
    const d = await t.login(bob);
    d.kill();
  });

  it('observe shows the live session read-only: the observer cannot type or resize', async () => {
    const d = await t.login(alice);
    const id = await sessionOf('alice');
    await t.run(d, 'stty size; echo OWNER-$((2+3))', 'OWNER-5');
    const o = new PtyDriver(
      process.execPath,
      [BIN, 'sessions', 'observe', id, ...t.cliConfig()],
      { PATH: process.env.PATH!, HOME: t.dir, TERM: 'xterm-256color' },
      { cols: 60, rows: 15 },
    );
    await o.waitFor('OWNER-5');
    o.write('echo INTRUDER-$((9*9))\r');
    // The size on a line of its own, marked: tmux may redraw its status line (the window renamed
    // to "stty") between two lines of output.
    await t.run(d, 'echo AFTER-$((1+1)); echo SIZE=$(stty size)', /SIZE=\d+ \d+/);
    await o.waitFor('AFTER-2');
    expect(d.text).not.toContain('INTRUDER-81');
    expect(d.text).not.toContain('echo INTRUDER');
    const size = /SIZE=(\d+ \d+)/.exec(d.text)![1];
    expect(size).toBe('39 120'); // the owner's size, untouched by a 60x15 observer
    o.kill();
    const sock = `${t.config.paths.socketDir}`;
    expect(spawnSync('ls', [sock]).status).toBe(0);
    expect((await t.audit('recording.access')).some((e) => e.data.action === 'observe' && e.data.sessionId === id)).toBe(true);
    d.kill();
  });
});
