import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess, execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BIN, cli } from '../helpers/cli.js';
import { defaultSocketDir } from '../../src/config/load.js';
import { cleanupStore, isolationYaml, makeKey, socketsIn, tempDir } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { waitUntil } from '../helpers/poll.js';
import { statFields } from '../../src/platform/proc-stat.js';

/** The gateway as a separate process: the real CLI, real clock, oathtool codes, SIGTERM. */
describe('tmuxgate serve as a process', () => {
  const dir = tempDir();
  const configFile = path.join(dir, 'config.yaml');
  let gw: ChildProcess | null = null;
  let log = '';
  let port = 0;
  let aliceUid = -1;

  /** The real OpenSSH client at the gateway process, as `login`, with its key from the temp dir. */
  function sshAs(login: string): PtyDriver {
    return new PtyDriver(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-p',
        String(port),
        '-i',
        path.join(dir, `${login}_ed25519`),
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
        `${login}@127.0.0.1`,
      ],
      { PATH: process.env.PATH!, HOME: dir, TERM: 'xterm' },
    );
  }

  /**
   * Trusts the running gateway's host key (from `tmuxgate hostkey`), then logs `login` in with an
   * oathtool code for the next step (the confirm at enrollment spent the current one).
   */
  async function loginAs(login: string, secretFile: string): Promise<PtyDriver> {
    const known = (JSON.parse(cli(['hostkey', '--config', configFile, '--json']).stdout) as { knownHosts: string }).knownHosts.replace(
      /^\[([^\]]+)\]:\d+/,
      `[127.0.0.1]:${port}`,
    );
    writeFileSync(path.join(dir, 'known_hosts'), known + '\n');
    const next = new Date(Date.now() + 30_000)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z/, ' UTC');
    const code = execFileSync('oathtool', ['--totp', '-b', '-N', next, readFileSync(path.join(dir, secretFile), 'utf8')])
      .toString()
      .trim();
    const d = sshAs(login);
    await d.waitFor('Verification code:');
    d.write(code + '\r');
    await d.waitFor(`[${login}+ops]`);
    return d;
  }

  function start(): Promise<void> {
    log = '';
    // In a session of its own, as a service manager starts it (where sched autogroup lets its priority count).
    gw = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
      env: { PATH: process.env.PATH!, HOME: dir, TMUXGATE_CANARY_PROC: 'proc-canary' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    gw.stdout!.on('data', (d) => (log += d));
    gw.stderr!.on('data', (d) => (log += d));
    return waitUntil(() => /listening on [\d.]+:(\d+)/.exec(log), 'gateway listening').then((m) => {
      port = Number(m[1]);
    });
  }

  beforeAll(async () => {
    // The quick start's defaults, except that OS accounts get a per-test prefix and homes stay in
    // the temp dir (hermetic); `role add ops` names no account, as in the README.
    writeFileSync(configFile, `listen:\n  port: 0\ndataDir: ./data\nkeysDir: ./keys\nsessions:\n  defaultShell: /bin/sh\n${isolationYaml(dir)}`);
    chmodSync(dir, 0o711);
    expect(cli(['init', '--config', configFile]).status).toBe(0);
    expect(cli(['role', 'add', 'ops', '--config', configFile]).status).toBe(0);
    expect(cli(['user', 'add', 'alice', '--role', 'ops', '--config', configFile]).status).toBe(0);
    const k = makeKey(dir, 'alice');
    expect(cli(['key', 'add', 'alice', '--file', k.pubFile, '--config', configFile]).status).toBe(0);
    const enroll = cli(['totp', 'enroll', 'alice', '--json', '--config', configFile]);
    const { secret } = JSON.parse(enroll.stdout) as { secret: string };
    writeFileSync(path.join(dir, 'secret'), secret);
    const now = execFileSync('oathtool', ['--totp', '-b', secret]).toString().trim();
    const c = cli(['totp', 'confirm', 'alice', now, '--config', configFile]);
    expect(c.stderr).toBe('');
    // bob: a second user, so a second login needs no wait for the next 30 s step.
    expect(cli(['user', 'add', 'bob', '--role', 'ops', '--config', configFile]).status).toBe(0);
    const kb = makeKey(dir, 'bob');
    expect(cli(['key', 'add', 'bob', '--file', kb.pubFile, '--config', configFile]).status).toBe(0);
    const bobSecret = (JSON.parse(cli(['totp', 'enroll', 'bob', '--json', '--config', configFile]).stdout) as { secret: string }).secret;
    writeFileSync(path.join(dir, 'bob.secret'), bobSecret);
    expect(cli(['totp', 'confirm', 'bob', execFileSync('oathtool', ['--totp', '-b', bobSecret]).toString().trim(), '--config', configFile]).status).toBe(0);
  });
  afterAll(async () => {
    gw?.kill('SIGKILL');
    cleanupStore(path.join(dir, 'data'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs in with an oathtool code into an isolated shell, and on SIGTERM tells the user, exits 0 and leaves tmux running', async () => {
    await start();
    const d = await loginAs('alice', 'secret');
    d.write('echo "proc=[${TMUXGATE_CANARY_PROC:-absent}]-$((6*7)) uid=[$(id -u)]"\r');
    await d.waitFor('proc=[absent]-42');
    // A role added without --run-as still runs as an unprivileged account of its own.
    aliceUid = Number(/uid=\[(\d+)\]/.exec(d.text)![1]);
    expect(aliceUid).toBeGreaterThanOrEqual(63000);
    // The gateway's CPU priority counts against its users' sessions: under sched autogroup (on in
    // Debian's kernels) the CPU is shared between sessions first, so its session group is raised
    // too. Alice's shell is in a group of its own at 0, and can neither raise it nor touch the gateway's.
    const autogroupOn = readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
    const gwGroup = () => readFileSync(`/proc/${gw!.pid}/autogroup`, 'utf8').trim();
    expect(gwGroup()).toMatch(autogroupOn ? / nice -5$/ : / nice 0$/);
    d.write(
      `echo "AG=[$(cat /proc/self/autogroup)]"; echo -5 > /proc/self/autogroup || echo REFUSED-$((40+1)); echo 0 > /proc/${gw!.pid}/autogroup || echo REFUSED-$((40+2))\r`,
    );
    await d.waitFor('REFUSED-42');
    expect(d.text).toContain('REFUSED-41');
    const aliceGroup = /AG=\[(\/autogroup-\d+) nice (-?\d+)\]/.exec(d.text)!;
    expect(aliceGroup[2]).toBe('0');
    expect(aliceGroup[1]).not.toBe(gwGroup().split(' ')[0]);
    expect(gwGroup()).toMatch(autogroupOn ? / nice -5$/ : / nice 0$/);
    // Leading its session, the gateway must never take a user's pty as its controlling terminal
    // (a hang-up there would be its own SIGHUP): every slave is opened O_NOCTTY or in the child.
    const stat = readFileSync(`/proc/${gw!.pid}/stat`, 'utf8');
    const [, , , session, ttyNr] = statFields(stat);
    expect(session).toBe(String(gw!.pid));
    expect(ttyNr).toBe('0');
    gw!.kill('SIGTERM');
    const status = await new Promise<number | null>((r) => gw!.once('exit', (c) => r(c)));
    expect(status).toBe(0);
    await d.waitFor('gateway is restarting');
    await d.waitExit();
    const [sock] = socketsIn(path.join(defaultSocketDir(path.join(dir, 'data')), 'r1-u1'));
    expect(spawnSync('tmux', ['-S', sock!, 'has-session', '-t', 'main']).status).toBe(0);
    const db = new Database(path.join(dir, 'data', 'tmuxgate.db'), { readonly: true });
    const types = (db.prepare('SELECT type FROM audit_events ORDER BY id').all() as { type: string }[]).map((r) => r.type);
    db.close();
    expect(types).toEqual(expect.arrayContaining(['gateway.start', 'auth.success', 'session.start', 'session.end', 'gateway.stop']));
    // The quick start is least-privilege from its first login, as the compliance report checks it.
    const rep = JSON.parse(cli(['compliance', 'report', '--json', '--config', configFile]).stdout) as {
      checks: { id: string; pass: boolean; evidence: string }[];
    };
    const lp = rep.checks.find((c) => c.id === 'least-privilege')!;
    expect(lp.pass, lp.evidence).toBe(true);
    expect(lp.evidence).toMatch(/ops->tp\w+g1/);
  });

  it('after kill -9 mid-session, the next start marks it interrupted and verify says intact up to the last flush', async () => {
    await start();
    const d = await loginAs('bob', 'bob.secret');
    d.write('echo CRASH-$((40+2)) uid=[$(id -u)]\r');
    await d.waitFor('CRASH-42');
    // Another user of the same role: another unprivileged account.
    const uid = Number(/uid=\[(\d+)\]/.exec(d.text)![1]);
    expect(uid).toBeGreaterThanOrEqual(63000);
    expect(uid).not.toBe(aliceUid);
    const db = new Database(path.join(dir, 'data', 'tmuxgate.db'), { readonly: true });
    const row = () =>
      db.prepare('SELECT session_id, chunks, state FROM recordings ORDER BY created_at DESC LIMIT 1').get() as {
        session_id: string;
        chunks: number;
        state: string;
      };
    await waitUntil(() => row().chunks >= 1, 'a durable chunk');
    const id = row().session_id;
    gw!.kill('SIGKILL');
    await new Promise((r) => gw!.once('exit', r));
    d.kill();
    await start();
    expect(row().state).toBe('interrupted');
    const sessionState = (db.prepare('SELECT state FROM sessions WHERE id = ?').get(id) as { state: string }).state;
    db.close();
    expect(sessionState).toBe('interrupted');
    const v = cli(['verify', id, '--json', '--config', configFile]);
    expect(v.status).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ status: 'interrupted', problem: null });
    gw!.kill('SIGTERM');
    await new Promise((r) => gw!.once('exit', r));
  });

  it('refuses to start with a private key readable by others, like sshd', async () => {
    const key = path.join(dir, 'keys', 'ssh_host_ed25519_key');
    chmodSync(key, 0o644);
    const r = cli(['serve', '--config', configFile]);
    chmodSync(key, 0o600);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/TG_ERR_KEY_PERMISSIONS: Permissions 0644 for '.*ssh_host_ed25519_key' are too open/);
  });

  it('refuses a database written by a newer version', async () => {
    const dbFile = path.join(dir, 'data', 'tmuxgate.db');
    const db = new Database(dbFile);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, ?, 0)').run('future');
    db.close();
    const r = cli(['serve', '--config', configFile]);
    const fix = new Database(dbFile);
    fix.prepare('DELETE FROM schema_migrations WHERE version = 9999').run();
    fix.close();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/TG_ERR_DB_TOO_NEW: database schema version 9999 was written by a newer tmuxgate/);
  });

  it('exits 2 with the field path on a bad config file', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'listen:\n  port: 70000\nssh:\n  algorithms:\n    cipher: [aes128-cbc]\n  maxAuthTries: "three"\nbogus: 1\n');
    const r = cli(['serve', '--config', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('TG_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain('listen.port');
    expect(r.stderr).toContain('ssh.algorithms.cipher.0: aes128-cbc is not in the built-in allow-list');
    expect(r.stderr).toContain('ssh.maxAuthTries');
    expect(r.stderr).toContain('bogus');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    writeFileSync(bad, 'listen: [unclosed\n');
    const y = cli(['serve', '--config', bad]);
    expect(y.status).toBe(2);
    expect(y.stderr).toMatch(/not valid YAML/);
    const missing = cli(['serve', '--config', path.join(dir, 'nope.yaml')]);
    expect(missing.status).toBe(2);
    expect(cli(['user', 'list'], { env: { TMUXGATE_CONFIG: bad } }).status).toBe(2);
  });
});
