import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { TestGateway, makeKey, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { DENIED_AUDITED } from '../../src/ssh/connection.js';

/** Each refusal leaves the gateway serving: a real login must still work afterwards. */
describe('refusals: each is clean, audited, and leaves the gateway serving', () => {
  const t = new TestGateway();
  let alice: TestUser;

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    await t.role('dba');
  });
  afterAll(() => t.stop());

  async function stillServes(): Promise<void> {
    const d = await t.login(alice);
    d.kill();
  }

  it.each([
    ['-c aes128-cbc', ['-c', 'aes128-cbc'], /no matching cipher/],
    ['KexAlgorithms=diffie-hellman-group14-sha1', ['-o', 'KexAlgorithms=diffie-hellman-group14-sha1'], /no matching key exchange/],
    ['HostKeyAlgorithms=ssh-rsa', ['-o', 'HostKeyAlgorithms=ssh-rsa'], /no matching host key type/],
    ['MACs=hmac-sha1', ['-o', 'MACs=hmac-sha1', '-c', 'aes256-ctr'], /no matching MAC/],
  ])('refuses weak algorithms at negotiation: %s', async (_n, args, message) => {
    const d = t.ssh(alice, 'alice', ['-o', 'LogLevel=INFO', ...args]);
    await d.waitFor(message);
    expect(await d.waitExit()).toBe(255);
    await stillServes();
  });

  it('refuses a key that is not enrolled, and a missing key, like a wrong key', async () => {
    const other = makeKey(t.dir, 'stranger');
    const d = t.ssh(other, 'alice', ['-o', 'PreferredAuthentications=publickey']);
    await d.waitFor(/Permission denied \(publickey\)/);
    expect(await d.waitExit()).toBe(255);
    const none = t.ssh({ keyFile: path.join(t.dir, 'does-not-exist') }, 'alice', ['-o', 'PreferredAuthentications=publickey,keyboard-interactive']);
    await none.waitFor(/Permission denied \(publickey\)/);
    expect(await none.waitExit()).toBe(255);
    expect(none.text).not.toContain('Verification code');
    expect((await t.preauthReasons())['publickey:unknown-key']).toBeGreaterThan(0);
    await stillServes();
  });

  it('answers an unknown user, an unknown role and an ungranted role exactly like a wrong key', async () => {
    const outputs: string[] = [];
    for (const login of ['mallory', 'alice+nosuchrole', 'alice+dba', 'Alice', 'alice+ops+x']) {
      const d = t.ssh(alice, login, ['-o', 'PreferredAuthentications=publickey']);
      await d.waitFor(/Permission denied/);
      expect(await d.waitExit()).toBe(255);
      outputs.push(d.text.replace(login, 'LOGIN'));
    }
    for (const o of outputs) expect(o).toMatch(/Permission denied \(publickey\)/);
    const reasons = Object.keys(await t.preauthReasons());
    expect(reasons).toEqual(
      expect.arrayContaining(['publickey:unknown-user', 'publickey:unknown-role', 'publickey:role-not-granted', 'publickey:invalid-login-name']),
    );
    await stillServes();
  });

  it('refuses exec commands and the sftp subsystem, and audits them', async () => {
    const d = t.ssh(alice, 'alice', ['-T'], {}, ['id']);
    await d.waitFor('Verification code:');
    d.write(t.code(alice) + '\r');
    await d.waitFor(/exec request failed/);
    expect(await d.waitExit()).not.toBe(0);

    const sftp = new (await import('../helpers/pty-driver.js')).PtyDriver(
      'sftp',
      [
        '-F',
        '/dev/null',
        '-P',
        String(t.port),
        '-i',
        alice.keyFile,
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `UserKnownHostsFile=${t.knownHostsFile}`,
        'alice@127.0.0.1',
      ],
      { PATH: process.env.PATH!, HOME: t.home },
    );
    await sftp.waitFor('Verification code:');
    sftp.write(t.code(alice) + '\r');
    expect(await sftp.waitExit()).not.toBe(0);
    const denied = (await t.audit('request.denied')).map((e) => `${e.data.request}:${e.data.detail}`);
    expect(denied).toContain('exec:command: id');
    expect(denied).toContain('subsystem:subsystem: sftp');
    await stillServes();
  });

  it('refuses remote forwarding (-R) with the client told so', async () => {
    const d = t.ssh(alice, 'alice', ['-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9', '-N']);
    await d.waitFor('Verification code:');
    d.write(t.code(alice) + '\r');
    await d.waitFor(/remote port forwarding failed/i);
    expect(await d.waitExit()).toBe(255);
    expect((await t.audit('request.denied')).some((e) => e.data.request === 'global:tcpip-forward')).toBe(true);
    await stillServes();
  });

  it('refuses local forwarding (-L) and agent forwarding (-A) while the shell keeps working', async () => {
    const agentSock = path.join(t.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    try {
      await waitUntil(() => spawnSync('test', ['-S', agentSock]).status === 0, 'ssh-agent socket');
      const localPort = 20000 + Math.floor(Math.random() * 20000);
      const d = t.ssh(alice, 'alice', ['-A', '-L', `127.0.0.1:${localPort}:127.0.0.1:22`], { SSH_AUTH_SOCK: agentSock });
      await t.enter(d, alice);
      await t.run(d, 'echo "agent=[${SSH_AUTH_SOCK:-none}]"', 'agent=[none]');
      await new Promise<void>((resolve) => {
        const s = net.connect(localPort, '127.0.0.1');
        s.on('close', () => resolve());
        s.on('error', () => resolve());
      });
      await waitUntil(async () => (await t.audit('request.denied')).some((e) => e.data.request === 'direct-tcpip'), 'direct-tcpip denial');
      expect((await t.audit('request.denied')).some((e) => e.data.request === 'auth-agent')).toBe(true);
      await t.run(d, 'echo after-$((2*21))', 'after-42');
      d.kill();
    } finally {
      agent.kill();
    }
  });

  it('audits a flood of refused requests from one logged-in connection as a bounded number of rows', async () => {
    // Each refused request was one audit row and one log line, without bound: one user's
    // connection could grow the shared audit chain (and, with evidence.syslog required, its lag)
    // as fast as it could open channels to a forwarded port.
    const localPort = 20000 + Math.floor(Math.random() * 20000);
    const d = t.ssh(alice, 'alice', ['-L', `127.0.0.1:${localPort}:127.0.0.1:22`]);
    await t.enter(d, alice);
    const before = (await t.audit('request.denied')).length;
    const connects = 200;
    for (let i = 0; i < connects; i += 50) {
      await Promise.all(
        Array.from(
          { length: Math.min(50, connects - i) },
          () =>
            new Promise<void>((resolve) => {
              const s = net.connect(localPort, '127.0.0.1');
              s.on('close', () => resolve());
              s.on('error', () => resolve());
            }),
        ),
      );
    }
    await t.run(d, 'echo after-$((2*21))', 'after-42');
    d.kill();
    // Every refusal is still counted: the ones past the bound in one row at the connection's close.
    const rows = await waitUntil(async () => {
      const now = (await t.audit('request.denied')).slice(before);
      return now.some((e) => e.data.request === 'more') || now.length > DENIED_AUDITED + 1 ? now : null;
    }, 'the summary of the refused requests');
    expect(rows.length).toBeLessThanOrEqual(DENIED_AUDITED + 1);
    const summary = rows.find((e) => e.data.request === 'more')!;
    const counted = Number(/^(\d+) more/.exec(String(summary.data.detail))?.[1]);
    expect(rows.filter((e) => e.data.request === 'direct-tcpip').length + counted).toBe(connects);
    await stillServes();
  });

  it('refuses X11 forwarding and keeps the shell', async () => {
    const d = t.ssh(alice, 'alice', ['-X'], { DISPLAY: ':99' });
    await t.enter(d, alice);
    await t.run(d, 'echo "display=[${DISPLAY:-none}]"', 'display=[none]');
    d.kill();
    expect((await t.audit('request.denied')).some((e) => e.data.request === 'x11')).toBe(true);
  });

  it('refuses a shell without a terminal (ssh -T) with a message', async () => {
    const d = t.ssh(alice, 'alice', ['-T']);
    await d.waitFor('Verification code:');
    d.write(t.code(alice) + '\r');
    await d.waitFor('a terminal is required');
    expect(await d.waitExit()).toBe(1);
  });

  it('refuses env requests outside the allow-list but keeps LANG', async () => {
    const d = t.ssh(alice, 'alice', ['-o', 'SendEnv=LANG SECRET_TOKEN'], { LANG: 'C.UTF-8', SECRET_TOKEN: 'leak-me' });
    await t.enter(d, alice);
    await t.run(d, 'echo "tok=[${SECRET_TOKEN:-unset}]"', 'tok=[unset]');
    d.kill();
    expect((await t.audit('request.denied')).some((e) => e.data.request === 'env' && e.data.detail === 'SECRET_TOKEN')).toBe(true);
  });
});
