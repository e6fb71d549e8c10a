import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { effectiveAlgorithms, ALLOWED } from '../../src/crypto/algorithms.js';
import { parseDuration } from '../../src/config/duration.js';

const build = (o: unknown) => buildConfig(o, { file: '/etc/tmuxgate/config.yaml', baseDir: '/etc/tmuxgate' });

describe('config', () => {
  it('has the embedded defaults with no file at all', async () => {
    const c = buildConfig(undefined, { file: null, baseDir: '/srv' });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 2222 });
    expect(c.paths.dataDir).toBe('/srv/data');
    expect(c.paths.keysDir).toBe('/srv/keys');
    expect(c.sessions.idleTimeout).toBe(15 * 60_000);
    expect(c.ssh.loginGraceTime).toBe(30_000);
    expect(c.ssh.maxAuthTries).toBe(3);
    expect(c.auth.userLockout.maxFailures).toBe(5);
  });

  it('resolves relative paths against the config file directory', async () => {
    expect(build({ dataDir: 'var' }).paths.dataDir).toBe('/etc/tmuxgate/var');
  });

  it.each([
    [{ listen: { port: 70000 } }, 'listen.port'],
    [{ ssh: { maxAuthTries: 'three' } }, 'ssh.maxAuthTries'],
    [{ sessions: { idleTimeout: 'forever' } }, 'sessions.idleTimeout: not a duration'],
    [{ nonsense: true }, 'nonsense'],
    [{ ssh: { algorithms: { kex: ['diffie-hellman-group14-sha1'] } } }, 'ssh.algorithms.kex.0: diffie-hellman-group14-sha1 is not in the built-in allow-list'],
    [{ ssh: { algorithms: { cipher: [] } } }, 'ssh.algorithms.cipher'],
    [{ sessions: { idleTimeout: '1m', idleWarning: '2m' } }, 'sessions.idleWarning: must be shorter'],
    [{ auth: { totp: { window: 10 } } }, 'auth.totp.window'],
  ])('refuses %j naming the field', (input, needle) => {
    expect(() => build(input)).toThrow(needle);
    try {
      build(input);
    } catch (e) {
      expect((e as { code: string }).code).toBe('TG_ERR_CONFIG_INVALID');
    }
  });

  it('can only narrow the algorithm allow-list', async () => {
    const c = build({ ssh: { algorithms: { cipher: ['aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'] } } });
    const a = effectiveAlgorithms(c.ssh.algorithms);
    expect(a.cipher).toEqual(['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com']); // built-in order
    expect(a.kex).toEqual([...ALLOWED.kex]);
    expect(a.serverHostKey).toEqual(['ssh-ed25519']);
  });

  it('takes MaxStartups as start:rate:full or one number, and checks the caps nest', async () => {
    const { dropProbability } = await import('../../src/ssh/front-door.js');
    expect(build({}).ssh.maxStartups).toEqual({ start: 10, rate: 30, full: 100 });
    expect(build({ ssh: { maxStartups: 60 } }).ssh.maxStartups).toEqual({ start: 60, rate: 100, full: 60 });
    expect(() => build({ ssh: { maxStartups: '10:130:100' } })).toThrow('ssh.maxStartups: not start:rate:full');
    expect(() => build({ ssh: { maxStartups: 20 } })).toThrow('ssh.maxStartupsPerPrefix: must not exceed the full value of ssh.maxStartups');
    expect(() => build({ ssh: { maxStartupsPerAddress: 40 } })).toThrow('ssh.maxStartupsPerAddress: must not exceed ssh.maxStartupsPerPrefix');
    const s = { start: 10, rate: 30, full: 100 };
    expect([9, 10, 55, 99, 100].map((n) => dropProbability(s, n))).toEqual([0, 0.3, expect.closeTo(0.65, 9), expect.closeTo(0.992, 3), 1]);
    expect(build({}).ssh.handshakeTimeout).toBe(10_000);
  });

  it('parses durations', async () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration(2)).toBe(2000);
    expect(parseDuration('1 fortnight')).toBeNull();
    expect(parseDuration(-1)).toBeNull();
  });

  it('hashes equal configs equally', async () => {
    expect(build({ listen: { port: 1 } }).hash).toBe(build({ listen: { port: 1 } }).hash);
    expect(build({ listen: { port: 1 } }).hash).not.toBe(build({ listen: { port: 2 } }).hash);
  });
});
