import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, makeKey, type TestUser } from '../helpers/gateway.js';
import ssh2 from 'ssh2';
import { garbageSigner, probe } from '../helpers/stranger.js';

/** Issue 11, finding 1: strangers who hold a user's public key cannot lock the user out. */
describe('strangers with a public key: lockouts count against the source, never the user', () => {
  const t = new TestGateway({
    auth: { userLockout: { maxFailures: 3 }, addressLockout: { maxFailures: 5 }, prefixLockout: { maxFailures: 12 } },
    ssh: { maxAuthTries: 10 },
  });
  let alice: TestUser;

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
  });
  afterAll(() => t.stop());

  it("50 garbage signatures with alice's public key lock the address, not alice; the lock holds before any signature check", async () => {
    const forged = garbageSigner(alice.keyFile);
    for (let i = 0; i < 5; i++) await probe(t.port, '127.0.5.1', Array(10).fill('alice'), forged);
    expect((await t.gw.lockouts.state('user', 'alice')).locked).toBe(false);
    expect((await t.gw.lockouts.state('address', '127.0.5.1')).locked).toBe(true);
    expect((await t.audit('lockout.start')).filter((e) => e.data.subjectKind === 'user')).toEqual([]);
    // Five signatures were checked (the fifth locked the address); every later attempt was
    // refused before its signature was looked at.
    const reasons = await t.preauthReasons();
    expect(reasons['publickey:bad-signature']).toBe(5);
    expect(reasons['publickey:address-locked']).toBeGreaterThanOrEqual(40);
    expect(reasons['lockout.start:address']).toBe(1);

    // The real alice, key and fresh code, from another address: in.
    const d = await t.login(alice, 'alice', ['-b', '127.0.0.2']);
    d.kill();
  });

  it('from a locked address even the right key gets exactly the answer a wrong key gets', async () => {
    const stranger = makeKey(t.dir, 'stranger');
    const outputs: string[] = [];
    for (const [key, from] of [
      [alice, '127.0.5.1'],
      [stranger, '127.0.8.1'],
    ] as const) {
      const d = t.ssh(key, 'alice', ['-b', from, '-o', 'PreferredAuthentications=publickey,keyboard-interactive']);
      await d.waitFor(/Permission denied/);
      expect(await d.waitExit()).toBe(255);
      outputs.push(d.text);
    }
    expect(outputs[0]).not.toContain('Verification code');
    expect(outputs[0]).toMatch(/Permission denied \(publickey\)/);
    expect(outputs[0]!.trim()).toBe(outputs[1]!.trim());
  });

  it('failures spread over one /24 lock the prefix: a fresh address in it is refused, another /24 is not', async () => {
    const forged = garbageSigner(alice.keyFile);
    for (let i = 1; i <= 4; i++) await probe(t.port, `127.0.6.${i}`, Array(3).fill('alice'), forged);
    for (let i = 1; i <= 4; i++) expect((await t.gw.lockouts.state('address', `127.0.6.${i}`)).locked).toBe(false);
    expect((await t.gw.lockouts.state('address', '127.0.6.0/24')).locked).toBe(true);
    expect((await t.gw.lockouts.active()).map((l) => l.subject)).toContain('127.0.6.0/24'); // what `lockouts list` shows
    expect((await t.gw.lockouts.state('user', 'alice')).locked).toBe(false);

    const refused = t.ssh(alice, 'alice', ['-b', '127.0.6.99', '-o', 'PreferredAuthentications=publickey,keyboard-interactive']);
    await refused.waitFor(/Permission denied \(publickey\)/);
    expect(await refused.waitExit()).toBe(255);
    const d = await t.login(alice, 'alice', ['-b', '127.0.7.1']);
    d.kill();
  });

  it('a client that repeats "none" is ended after MaxAuthTries, as in sshd', async () => {
    let asked = 0;
    await new Promise<void>((resolve) => {
      const c = new ssh2.Client();
      c.on('error', () => {});
      c.on('close', () => resolve());
      c.connect({
        host: '127.0.0.1',
        port: t.port,
        localAddress: '127.0.12.1',
        username: 'alice',
        hostVerifier: () => true,
        authHandler: (_m: unknown, _p: unknown, next: (a: unknown) => void) => next(++asked > 100 ? false : { type: 'none', username: 'alice' }),
      } as unknown as ssh2.ConnectConfig);
    });
    // The free first one, then maxAuthTries (10) counted ones; the client may ask once more
    // before the disconnect reaches it, never 100 times.
    expect(asked).toBeGreaterThanOrEqual(11);
    expect(asked).toBeLessThanOrEqual(12);
    // One more request may already be in flight when the gateway ends the connection.
    expect((await t.preauthReasons())['none:none-repeated']).toBeGreaterThanOrEqual(10);
    expect((await t.preauthReasons())['none:none-repeated']).toBeLessThanOrEqual(11);
  });

  it('wrong codes after a valid key proof still count against the user', async () => {
    for (let i = 0; i < 3; i++) {
      const d = t.ssh(alice, 'alice', ['-b', '127.0.9.1']);
      await d.waitFor('Verification code:');
      d.write('000000\r');
      await d.waitFor(/Verification code:[\s\S]*Verification code:/);
      d.kill();
    }
    expect((await t.gw.lockouts.state('user', 'alice')).locked).toBe(true);
    await t.gw.lockouts.clear('user', 'alice');
  });
});
