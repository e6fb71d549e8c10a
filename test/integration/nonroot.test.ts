import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN } from '../helpers/cli.js';
import { killTmuxServers, makeKey, tempDir } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { waitUntil } from '../helpers/poll.js';

const ACCOUNT = 'tgplain';
const isRoot = process.getuid?.() === 0;

/** The gateway started as a plain user: everything runs as that user, reported as development mode. */
describe.skipIf(!isRoot)('gateway as a plain user (development mode)', () => {
  const dir = tempDir();
  const cfg = path.join(dir, 'config.yaml');
  let uid = 0;
  let gid = 0;
  let gw: ChildProcess | null = null;
  const asPlain = (args: string[]) =>
    spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', process.execPath, BIN, ...args, '--config', cfg], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, HOME: dir },
    });

  beforeAll(async () => {
    if (spawnSync('id', [ACCOUNT]).status !== 0) spawnSync('useradd', ['-M', '-s', '/bin/sh', ACCOUNT]);
    uid = Number(execFileSync('id', ['-u', ACCOUNT]).toString());
    gid = Number(execFileSync('id', ['-g', ACCOUNT]).toString());
    writeFileSync(cfg, 'listen: { port: 0 }\ndataDir: ./data\nkeysDir: ./keys\nsessions: { defaultShell: /bin/sh }\n');
    chownSync(dir, uid, gid);
    chownSync(cfg, uid, gid);
    chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    gw?.kill('SIGKILL');
    killTmuxServers(path.join(dir, 'data', 'tmux'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves logins with every role under its own account, says so, and the compliance report fails least privilege', async () => {
    for (const args of [['init'], ['role', 'add', 'ops'], ['user', 'add', 'alice', '--role', 'ops']]) expect(asPlain(args).stderr).toBe('');
    const k = makeKey(dir, 'alice');
    expect(asPlain(['key', 'add', 'alice', readFileSync(k.pubFile, 'utf8').trim()]).status).toBe(0);
    const secret = (JSON.parse(asPlain(['totp', 'enroll', 'alice', '--json']).stdout) as { secret: string }).secret;
    expect(asPlain(['totp', 'confirm', 'alice', execFileSync('oathtool', ['--totp', '-b', secret]).toString().trim()]).status).toBe(0);
    let log = '';
    gw = spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', process.execPath, BIN, 'serve', '--config', cfg], {
      env: { PATH: process.env.PATH!, HOME: dir },
    });
    gw.stdout!.on('data', (d) => (log += d));
    gw.stderr!.on('data', (d) => (log += d));
    const port = Number((await waitUntil(() => /listening on [\d.]+:(\d+)/.exec(log), 'listening'))[1]);
    // The warning goes through pino's asynchronous stdout; the listening line is on stderr.
    await waitUntil(() => log.includes('development mode'), 'development mode warning');
    const next = new Date(Date.now() + 30_000)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z/, ' UTC');
    const d = new PtyDriver(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-p',
        String(port),
        '-i',
        k.keyFile,
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        `UserKnownHostsFile=${path.join(dir, 'kh')}`,
        'alice@127.0.0.1',
      ],
      { PATH: process.env.PATH!, HOME: dir, TERM: 'xterm' },
    );
    await d.waitFor('Verification code:');
    d.write(execFileSync('oathtool', ['--totp', '-b', '-N', next, secret]).toString().trim() + '\r');
    await d.waitFor('[alice+ops]');
    // Every login says so, before tmux takes the screen (and the session start is audited as such).
    expect(d.text).toContain('tmuxgate: development mode: sessions are not isolated');
    d.write('echo "me=$(id -un)-$((1+1))"\r');
    await d.waitFor(`me=${ACCOUNT}-2`);
    d.kill();
    gw.kill('SIGTERM');
    await new Promise((r) => gw!.once('exit', r));
    const report = JSON.parse(asPlain(['compliance', 'report', '--json']).stdout) as { checks: { id: string; pass: boolean; evidence: string }[] };
    const lp = report.checks.find((c) => c.id === 'least-privilege')!;
    expect(lp.pass).toBe(false);
    expect(lp.evidence).toContain('DEVELOPMENT MODE');
    const audit = asPlain(['audit', 'export', '--format', 'jsonl'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data: { devMode?: boolean } });
    expect(audit.find((e) => e.type === 'gateway.start')!.data.devMode).toBe(true);
    expect(audit.find((e) => e.type === 'session.start')!.data.devMode).toBe(true);
  });
});
