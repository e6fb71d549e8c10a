import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestGateway, socketsIn, type TestUser } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { waitUntil } from '../helpers/poll.js';
import { addRole, editRole, grantRole } from '../../src/admin/operations.js';

const isRoot = process.getuid?.() === 0;
const TEMPLATE = 'tgisoops';

/** Escapes tried from inside real logged-in shells (through OpenSSH) must all fail. */
describe.skipIf(!isRoot)('isolation between (role, user) pairs', () => {
  const t = new TestGateway({ isolation: { intrusionCheckInterval: '200ms' }, sessions: { dormantTimeout: '2h' } });
  let alice: TestUser;
  let bob: TestUser;
  const dirOf = (roleId: number, userId: number) => path.join(t.config.paths.socketDir, `r${roleId}-u${userId}`);

  beforeAll(async () => {
    if (spawnSync('id', [TEMPLATE]).status !== 0) spawnSync('useradd', ['-M', '-s', '/bin/sh', TEMPLATE]);
    process.env.TMUXGATE_ISOLATION_CANARY = 'iso-canary-31337';
    await t.start();
    await addRole(t.admin, { name: 'ops', runAs: TEMPLATE });
    await addRole(t.admin, { name: 'dba', runAs: TEMPLATE });
    alice = await t.user('alice', 'ops');
    bob = await t.user('bob', 'ops');
    await grantRole(t.admin, 'alice', 'dba');
  });
  afterAll(async () => {
    delete process.env.TMUXGATE_ISOLATION_CANARY;
    await t.stop();
  });

  it('runs each pair under its own account with a private home', async () => {
    const b = await t.login(bob);
    await t.run(b, 'echo "me=$(id -un) home=$HOME"; echo bob-secret > ~/notes; echo WHO-$((1+1))', 'WHO-2');
    expect(b.text).toMatch(/me=tt\w+r1u2 home=\/.*homes\/tt\w+r1u2/);
    const d = await t.login(alice, 'alice+dba');
    await t.run(d, 'echo "me=$(id -un)"; echo DBA-$((2+2))', 'DBA-4');
    expect(d.text).toMatch(/me=tt\w+r2u1/);
    d.kill();
    b.kill();
  });

  it("from alice's ops shell, bob's and alice's dba servers, recordings, database, keys and gateway environment are out of reach", async () => {
    const a = await t.login(alice);
    const bobSock = socketsIn(dirOf(1, 2))[0]!;
    const dbaSock = socketsIn(dirOf(2, 1))[0]!;
    const { dataDir, keysDir, socketDir } = t.config.paths;
    const bobHome = path.join(t.config.isolation.homeBase, `${t.config.isolation.accountPrefix}r1u2`);
    const attempts: [string, string][] = [
      ['bob-ls', `tmux -S ${bobSock} ls`],
      ['bob-attach', `tmux -S ${bobSock} attach`],
      ['bob-sendkeys', `tmux -S ${bobSock} send-keys -t main 'echo pwned' Enter`],
      ['bob-socket-dir', `ls ${dirOf(1, 2)}`],
      ['dba-ls', `tmux -S ${dbaSock} ls`],
      ['list-sockets', `ls ${socketDir}`],
      ['recordings', `ls ${dataDir}/recordings`],
      ['database', `head -c 16 ${dataDir}/tmuxgate.db`],
      ['keys', `cat ${keysDir}/master.key`],
      ['gateway-env', `cat /proc/${process.pid}/environ`],
      ['bob-home', `cat ${bobHome}/notes`],
    ];
    for (const [name, cmd] of attempts) {
      await t.run(a, `${cmd} >/dev/null 2>&1 </dev/null && echo "LEAK:${name}" || echo "DENIED:${name}"`, new RegExp(`(LEAK|DENIED):${name}\\n`), 10_000);
    }
    for (const [name] of attempts) expect(a.text, name).toContain(`DENIED:${name}`);
    expect(a.text).not.toContain('iso-canary-31337');
    a.kill();
  });

  it('detaches and audits a tmux client the gateway did not start', async () => {
    const a = await t.login(alice);
    const sock = socketsIn(dirOf(1, 1))[0]!;
    const intruder = new PtyDriver('tmux', ['-S', sock, 'attach', '-t', 'main'], { PATH: process.env.PATH!, HOME: t.dir, TERM: 'xterm' });
    // The check runs on the gateway's clock: move it on while waiting for the stranger to be found.
    await waitUntil(
      async () => (t.clock.advance(200), (await t.audit('tmux.intrusion')).some((e) => e.data.socketDir === dirOf(1, 1))),
      'intrusion detected',
      10_000,
    );
    await intruder.waitExit(10_000);
    // Only the foreign client was treated as an intruder, never one of the gateway's own.
    expect(new Set((await t.audit('tmux.intrusion')).map((e) => e.data.clientPid)).size).toBe(1);
    await t.run(a, 'echo STILL-$((3+3))', 'STILL-6'); // the owner's own client is untouched
    a.kill();
  });

  it('reconciles on restart (adopts live servers, removes stale sockets) and reaps dormant ones', async () => {
    // A dead socket of the pair (its server gone), and a file that only looks like one.
    const stale = path.join(dirOf(1, 1), 'deadbeefdeadbeef.sock');
    const uid = statSync(dirOf(1, 1)).uid;
    spawnSync('setpriv', [
      '--reuid',
      String(uid),
      '--regid',
      String(statSync(dirOf(1, 1)).gid),
      '--clear-groups',
      '/usr/bin/python3',
      '-c',
      `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`,
    ]);
    expect(lstatSync(stale).isSocket()).toBe(true);
    const decoy = path.join(dirOf(1, 1), 'decoy.sock');
    writeFileSync(decoy, '');
    await t.restart();
    await waitUntil(async () => (await t.audit('tmux.reconciled')).length > 0, 'reconciled after start');
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(decoy)).toBe(true); // not a socket: never acted on
    expect((await t.audit('tmux.reconciled')).at(-1)!.data).toMatchObject({ stale: 1 });
    const live = socketsIn(dirOf(1, 1)).filter((s) => lstatSync(s).isSocket());
    expect(live).toHaveLength(1);
    const a = await t.login(alice); // reattaches to the adopted server
    a.kill();
    await waitUntil(async () => (await t.admin.sessions.list({ live: true })).length === 0, 'session closed');
    t.clock.advance(2 * 3_600_000 + 120_000);
    await waitUntil(async () => (await t.audit('tmux.reaped')).length >= 1, 'dormant server reaped');
    await waitUntil(() => !existsSync(live[0]!), 'socket removed');
  });

  it('runs a sandboxed role with read-only paths and a private /tmp; a broken sandbox refuses the session', async () => {
    const ro = path.join(t.dir, 'ro');
    mkdirSync(ro, { mode: 0o777 });
    spawnSync('chmod', ['777', ro]);
    await editRole(t.admin, 'dba', { sandbox: { readOnlyPaths: [ro], readWritePaths: [], hiddenPaths: [] } });
    // The sandbox applies to a server started from now on: none may be left from earlier tests.
    for (const sock of socketsIn(dirOf(2, 1))) spawnSync('tmux', ['-S', sock, 'kill-server']);
    rmSync('/tmp/tg-sandbox-probe', { force: true });
    const d = await t.login(alice, 'alice+dba');
    await t.run(d, `touch ${ro}/x 2>/dev/null && echo RO-LEAK || echo RO-DENIED; echo tmpfile > /tmp/tg-sandbox-probe; echo SB-$((5+5))`, 'SB-10');
    expect(d.text).toContain('RO-DENIED');
    expect(existsSync('/tmp/tg-sandbox-probe')).toBe(false);
    d.kill();
    spawnSync('tmux', ['-S', socketsIn(dirOf(2, 1))[0]!, 'kill-server']);
    await editRole(t.admin, 'dba', { sandbox: { readOnlyPaths: ['/nonexistent/tmuxgate'], readWritePaths: [], hiddenPaths: [] } });
    const broken = t.ssh(alice, 'alice+dba');
    await broken.waitFor('Verification code:');
    broken.write(t.code(alice) + '\r');
    await broken.waitFor('sandbox could not be set up: sandbox read-only path /nonexistent/tmuxgate does not exist');
    await broken.waitExit();
    expect((await t.audit('request.denied')).some((e) => String(e.data.detail).startsWith('sandbox:'))).toBe(true);
  });
});
