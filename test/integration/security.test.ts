import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import ssh2 from 'ssh2';
import { TestGateway, makeKey, type TestUser } from '../helpers/gateway.js';
import { addKey } from '../../src/admin/operations.js';
import { totpCode } from '../../src/auth/totp.js';
import { waitUntil } from '../helpers/poll.js';

describe('security invariants against a live gateway', () => {
  const t = new TestGateway({
    auth: { userLockout: { maxFailures: 3, baseDuration: '5m' }, addressLockout: { maxFailures: 1000 } },
    ssh: { maxStartupsPerAddress: 10, maxStartups: 50 },
  });
  let alice: TestUser;
  let carol: TestUser;

  beforeAll(async () => {
    process.env.TMUXGATE_TEST_CANARY = 'canary-7f3a9';
    await t.start();
    alice = await t.user('alice');
    carol = await t.user('carol');
  });
  afterAll(async () => {
    delete process.env.TMUXGATE_TEST_CANARY;
    await t.stop();
  });

  it("never leaks the gateway's environment into the user's shell", async () => {
    expect(process.env.TMUXGATE_TEST_CANARY).toBe('canary-7f3a9');
    const d = await t.login(alice);
    await t.run(d, 'echo "canary=[${TMUXGATE_TEST_CANARY:-absent}] user=$TMUXGATE_USER role=$TMUXGATE_ROLE"', 'canary=[absent] user=alice role=ops');
    const env = await t.run(d, 'env | wc -l; echo ENV-DONE', 'ENV-DONE');
    expect(env).not.toContain('canary-7f3a9');
    d.kill();
  });

  it('locks a user out after repeated failures: the correct code then fails the same way, until the lock expires', async () => {
    for (let i = 0; i < 3; i++) {
      const d = t.ssh(carol, 'carol');
      await d.waitFor('Verification code:');
      d.write('111111\r');
      await d.waitFor(/Verification code:[\s\S]*Verification code:/);
      d.kill();
    }
    expect((await t.audit('lockout.start')).some((e) => e.data.subject === 'carol')).toBe(true);
    const locked = t.ssh(carol, 'carol');
    await locked.waitFor('Verification code:');
    locked.write(t.code(carol) + '\r');
    await locked.waitFor(/Verification code:[\s\S]*Verification code:/); // same answer as a wrong code
    locked.kill();
    expect((await t.audit('auth.locked')).some((e) => e.data.user === 'carol')).toBe(true);
    t.clock.advance(5 * 60_000); // the lock (5 min at level 1) runs out
    const d = await t.login(carol);
    d.kill();
  });

  it('ends a connection after MaxAuthTries failures', async () => {
    const stranger = makeKey(t.dir, 'stranger2');
    const d = t.ssh(stranger, 'alice', ['-o', 'PreferredAuthentications=keyboard-interactive']);
    await d.waitFor(/Permission denied|Too many|Connection closed|Received disconnect/);
    expect(await d.waitExit()).toBe(255);
  });

  it('accepts RSA keys only with SHA-2 signatures, never ssh-rsa (SHA-1)', async () => {
    const rsa = makeKey(t.dir, 'alice-rsa', 'rsa', 3072);
    await addKey(t.admin, 'alice', readFileSync(rsa.pubFile, 'utf8'));
    const sha1 = t.ssh(rsa, 'alice', ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa', '-o', 'PreferredAuthentications=publickey']);
    await sha1.waitFor(/Permission denied/);
    expect(await sha1.waitExit()).toBe(255);
    const d = t.ssh(rsa, 'alice', ['-o', 'PubkeyAcceptedAlgorithms=rsa-sha2-512']);
    await t.enter(d, alice);
    await t.run(d, 'echo RSA-$((6*7))', 'RSA-42');
    d.kill();
    const small = makeKey(t.dir, 'weak', 'rsa', 1024);
    await expect(addKey(t.admin, 'alice', readFileSync(small.pubFile, 'utf8'))).rejects.toThrow(/at least 2048/);
  });

  it('survives 0x0 and 100000x100000 windows from a raw SSH client', async () => {
    const key = readFileSync(alice.keyFile);
    const c = new ssh2.Client();
    const out: Buffer[] = [];
    t.clock.advance(30_000);
    const code = totpCode(alice.secret, t.clock.now());
    await new Promise<void>((resolve, reject) => {
      c.on('keyboard-interactive', (_n, _i, _l, _p, finish) => finish([code]));
      c.on('ready', () => {
        c.shell({ term: 'xterm', cols: 0, rows: 0, width: 0, height: 0 }, (err, ch) => {
          if (err) return reject(err);
          ch.on('data', (d: Buffer) => out.push(d));
          ch.setWindow(100000, 100000, 0, 0);
          ch.setWindow(0, 0, 0, 0);
          ch.setWindow(2 ** 31, 2 ** 31, 0, 0);
          ch.write('stty size; echo SIZE-OK\r');
          waitUntil(() => Buffer.concat(out).toString().includes('SIZE-OK'), 'shell output').then(() => {
            c.end();
            resolve();
          }, reject);
        });
      });
      c.on('error', reject);
      c.connect({ host: '127.0.0.1', port: t.port, username: 'alice', privateKey: key, tryKeyboard: true, hostVerifier: () => true });
    });
    const d = await t.login(alice);
    d.kill();
  });

  it('200 connections sending garbage or nothing do not stop a real login from another address', async () => {
    const sockets: net.Socket[] = [];
    const garbage = [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from('SSH-2.0-evil\r\n' + '\x00\x00\xff\xff'.repeat(64)),
      Buffer.alloc(40_000, 0x41),
      Buffer.from([0, 0, 0, 12, 4, 20, 1, 2, 3]),
    ];
    for (let i = 0; i < 200; i++) {
      const s = net.connect({ host: '127.0.0.1', port: t.port, localAddress: '127.0.0.3' });
      s.on('error', () => {});
      if (i % 2 === 0) s.on('connect', () => s.write(garbage[i % garbage.length]!));
      sockets.push(s);
    }
    await waitUntil(() => sockets.every((s) => s.destroyed || s.readyState === 'open'), 'flood connected');
    const d = t.ssh(alice, 'alice', ['-b', '127.0.0.2']);
    await t.enter(d, alice);
    await t.run(d, 'echo FLOOD-$((40+2))', 'FLOOD-42');
    d.kill();
    for (const s of sockets) s.destroy();
    expect(Object.keys(await t.preauthReasons()).some((r) => r.includes('from this address'))).toBe(true);
  });

  it('ssh-audit finds no failures and no warnings beyond its unknown strict-kex note', async () => {
    // Async: the gateway runs in this process, so a blocking exec would starve it.
    const out = await new Promise<string>((resolve) =>
      execFile('ssh-audit', ['-n', '-p', String(t.port), '127.0.0.1'], { encoding: 'utf8' }, (_e, stdout) => resolve(stdout)),
    );
    const flagged = out.split('\n').filter((l) => /\[(fail|warn)\]/.test(l) || /^\(\w+\)\s.*--\s\[(fail|warn)\]/.test(l));
    const unexpected = flagged.filter((l) => !l.includes('kex-strict-s-v00@openssh.com'));
    expect(out).toContain('curve25519-sha256');
    expect(unexpected).toEqual([]);
  });
});
