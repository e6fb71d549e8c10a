import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { totpCode } from '../../src/auth/totp.js';

describe('login with the real OpenSSH client: key + TOTP into tmux', () => {
  const t = new TestGateway({ auth: { userLockout: { maxFailures: 4 } } });
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.stop());

  it('lands in tmux, runs a command, and reattaches the same session after a disconnect', async () => {
    const d = await t.login(alice);
    expect(d.text).toContain('[alice+ops]'); // the tmux status line of (ops, alice)
    await t.run(d, 'KEEP=kept-$((40+2)); echo set', 'set');
    d.kill(); // abrupt disconnect: the tmux session must live on
    await d.exited;
    const again = await t.login(alice);
    await t.run(again, 'echo "value=$KEEP"', 'value=kept-42');
    again.write('exit\r'); // ends the shell -> tmux session gone -> connection closes
    await again.waitExit();
    const starts = (await t.audit('session.start')).filter((e) => e.data.user === 'alice');
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(starts.map((e) => e.data.socketDir)).size).toBe(1);
  });

  it('accepts a code computed by oathtool (an independent RFC 6238 implementation)', async () => {
    t.clock.advance(30_000);
    const when = new Date(t.clock.now())
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC');
    const code = execFileSync('oathtool', ['--totp', '-b', '-N', when, alice.secret]).toString().trim();
    expect(code).toBe(totpCode(alice.secret, t.clock.now()));
    const d = t.ssh(alice, 'alice');
    await d.waitFor('Verification code:');
    d.write(code + '\r');
    await d.waitFor('[alice+ops]');
    await t.run(d, 'echo OATH-$((1+1))', 'OATH-2');
    d.kill();
  });

  it('refuses a wrong code, then a reused code, and the gateway keeps serving', async () => {
    const d = t.ssh(bob, 'bob');
    await d.waitFor('Verification code:');
    d.write('000000\r');
    await d.waitFor(/Verification code:[\s\S]*Verification code:/);
    d.kill();

    const ok = await t.login(bob);
    const used = totpCode(bob.secret, t.clock.now()); // the code that just opened a session
    ok.kill();
    const again = t.ssh(bob, 'bob');
    await again.waitFor('Verification code:');
    again.write(used + '\r');
    await again.waitFor(/Verification code:[\s\S]*Verification code:/);
    again.kill();

    const reasons = (await t.audit('auth.failure')).filter((e) => e.data.user === 'bob').map((e) => e.data.reason);
    expect(reasons).toContain('totp-wrong');
    expect(reasons).toContain('totp-replayed');
    await t.admin.lockouts.clear('user', 'bob');
    const still = await t.login(bob);
    still.kill();
  });

  it('treats an over-long or non-numeric answer as a plain failure', async () => {
    const d = t.ssh(bob, 'bob');
    await d.waitFor('Verification code:');
    d.write('x'.repeat(500) + '\r');
    await d.waitFor(/Verification code:[\s\S]*Verification code:/);
    d.write('12ab56\r');
    await d.waitFor(/(Verification code:[\s\S]*){3}/);
    d.kill();
    const reasons = (await t.audit('auth.failure')).filter((e) => e.data.user === 'bob').map((e) => e.data.reason);
    expect(reasons.filter((r) => r === 'totp-malformed').length).toBeGreaterThanOrEqual(2);
    await t.admin.lockouts.clear('user', 'bob');
    await t.admin.lockouts.clear('address', '127.0.0.1');
  });
});
