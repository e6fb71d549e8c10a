import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestGateway, socketsIn, type TestUser } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { waitUntil } from '../helpers/poll.js';
import { BIN, cliAsync } from '../helpers/cli.js';
import { killSession, removeUser, revokeRole, setUserDisabled } from '../../src/admin/operations.js';
import { lookupAccount } from '../../src/host/account.js';
import { processesOf } from '../../src/host/accounts.js';
import { statFields } from '../../src/platform/proc-stat.js';

const isRoot = process.getuid?.() === 0;
const FAKE_SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/fake-tmux-server.py');

/**
 * Privilege separation, attacked from real shells logged in through OpenSSH: a user controls
 * everything their pair account can write (socket directory, socket, home, processes) and must
 * gain nothing beyond it: no file changed outside their own directories, no command run as
 * root, no other pair's screen, and the gateway keeps serving everyone else.
 */
describe.skipIf(!isRoot)('privilege separation under attack', () => {
  const t = new TestGateway({ isolation: { intrusionCheckInterval: '200ms' }, sessions: { dormantTimeout: '2h' } });
  let alice: TestUser;
  let bob: TestUser;
  let mallory: TestUser;
  let carol: TestUser;
  /** A world-writable drop box where an attacker's payload reports the uid it ran as. */
  let box = '';
  /** A root-owned file an attacker would love to overwrite. */
  let precious = '';

  const pairDir = async (user: string, role = 'ops') =>
    path.join(t.config.paths.socketDir, `r${(await t.admin.roles.find(role))!.id}-u${(await t.admin.users.find(user))!.id}`);
  const pairAccount = async (user: string, role = 'ops') =>
    lookupAccount(
      t
        .sql()
        .prepare('SELECT account FROM pair_accounts WHERE role_id = ? AND user_id = ?')
        .pluck()
        .get((await t.admin.roles.find(role))!.id, (await t.admin.users.find(user))!.id) as string,
    )!;
  /** Moves the gateway's clock on until `cond` holds (the periodic checks run on it). */
  const tickUntil = (cond: () => boolean | Promise<boolean>, what: string) => waitUntil(() => (t.clock.advance(200), cond()), what, 10_000);
  const preciousIntact = () => {
    const st = statSync(precious);
    expect([readFileSync(precious, 'utf8'), st.uid, st.mode & 0o7777]).toEqual(['root-only\n', 0, 0o600]);
  };

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice', 'ops');
    bob = await t.user('bob', 'ops');
    mallory = await t.user('mallory', 'ops');
    carol = await t.user('carol', 'ops');
    box = path.join(t.dir, 'box');
    mkdirSync(box);
    chmodSync(box, 0o1777);
    precious = path.join(t.dir, 'precious');
    writeFileSync(precious, 'root-only\n', { mode: 0o600 });
    writeFileSync(path.join(box, 'evil'), `#!/bin/sh\nid -u >> ${box}/ran-as\n`, { mode: 0o755 });
    chmodSync(path.join(box, 'evil'), 0o755);
  });
  afterAll(async () => {
    spawnSync('pkill', ['-f', FAKE_SERVER]);
    await t.stop();
  });

  it('symlinks planted in the pair directory and home change no file outside them, even racing a login', async () => {
    const a = await t.login(alice);
    const dir = await pairDir('alice');
    const missing = path.join(t.dir, 'created-by-root');
    // Every name the gateway ever wrote, and some it might: pointing at a root file and at a new path.
    const names = ['tmux.conf', 'tmux.conf.tmp', 'x.sock', 'conf', '.tmux.conf'];
    const plant = names.map((n, i) => `ln -sf ${i % 2 ? missing : precious} ${dir}/${n}; ln -sf ${precious} ~/${n}`).join('; ');
    await t.run(a, `${plant}; mkfifo ${dir}/fifo.sock; chmod 777 ${dir}; echo PLANTED-$((1+1))`, 'PLANTED-2');
    // A loop that keeps re-planting while the next login and server start happen.
    await t.run(
      a,
      `(for i in $(seq 1 400); do ${plant.replace(/; /g, ' 2>/dev/null; ')} 2>/dev/null; sleep 0.01; done) >/dev/null 2>&1 & echo RACING-$((2+2))`,
      'RACING-4',
    );
    a.kill();
    spawnSync('tmux', ['-S', socketsIn(dir).find((s) => lstatSync(s).isSocket())!, 'kill-server']);
    const again = await t.login(alice); // a new server start through the planted names
    await t.run(again, 'echo STILL-$((3+3))', 'STILL-6');
    again.kill();
    preciousIntact();
    expect(existsSync(missing)).toBe(false);
    // The conf the pair's tmux reads is the gateway's, in a directory the pair cannot write.
    const confDir = path.join(t.config.paths.socketDir, 'conf');
    const opsId = (await t.admin.roles.find('ops'))!.id;
    const conf = path.join(
      confDir,
      readdirSync(confDir).find((f) => f.startsWith(`role-${opsId}-`))!,
    );
    expect(statSync(conf).uid).toBe(0);
    expect(readFileSync(conf, 'utf8')).not.toContain('alice');
    expect(statSync(path.dirname(conf)).mode & 0o022).toBe(0);
    const b = await t.login(bob); // everyone else is still served
    // and no pair can use up the host's pids: its processes carry a limit of their own
    await t.run(b, `echo "nproc=$(awk '/^Max processes/ {print $3}' /proc/self/limits)-$((2+5))"`, /nproc=\d+-7/);
    expect(b.text).toMatch(new RegExp(`nproc=${t.config.isolation.maxProcesses}-7`));
    b.kill();
  });

  it('the tmux client, the server and the shell hold the pair account and nothing of root: ids, groups, every capability set, signals', async () => {
    const d = await t.login(carol);
    const acct = await pairAccount('carol');
    // The shell reports its own credentials; each field on one line with a marker the echo of the command cannot match.
    const out = await t.run(
      d,
      `grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|SigIgn|SigBlk):' /proc/self/status | tr '\\t' ' ' | sed 's/^/CRED-/'; echo DONE-$((6*7))`,
      'DONE-42',
    );
    const field = (text: string, name: string) => new RegExp(`CRED-${name}: *([^\\r\\n]*)`).exec(text)?.[1]?.trim();
    for (const name of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(field(out, name), name).toBe('0000000000000000');
    expect(field(out, 'Uid')!.split(/ +/)).toEqual(Array(4).fill(String(acct.uid)));
    expect(field(out, 'Gid')!.split(/ +/)).toEqual(Array(4).fill(String(acct.gid)));
    expect(field(out, 'Groups')!.split(/ +/).map(Number)).not.toContain(0);
    expect(field(out, 'SigBlk')).toBe('0000000000000000');
    // The same for every process of the pair: the client that started the server, the server, the
    // shell, and a second login's client (attached to the running server), each with the pair's process limit.
    const d2 = await t.login(carol);
    const pids = processesOf(acct.uid);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    for (const pid of pids) {
      expect(/Max processes\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![1], `${pid} nproc`).toBe(String(t.config.isolation.maxProcesses));
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      for (const name of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'])
        expect(new RegExp(`${name}:\\s+(\\w+)`).exec(status)![1], `${pid} ${name}`).toBe('0000000000000000');
      expect(/Groups:\s*([^\n]*)/.exec(status)![1]!.trim().split(/\s+/).filter(Boolean).map(Number), `${pid} groups`).not.toContain(0);
    }
    d.kill();
    d2.kill();
    await waitUntil(() => !t.gw.live.all().some((s) => s.userName === 'carol'), "carol's sessions ended");
  });

  it("the gateway serves above its users' CPU priority; every process of a pair runs at the start priority and cannot raise it", async () => {
    // The in-process gateway raised this thread (config nice: -5 by default); children are forked back at 0.
    expect(os.getPriority(0)).toBe(-5);
    const d = await t.login(carol);
    const out = await t.run(d, 'echo NICE-$(nice)-; renice -n -5 -p $$ >/dev/null 2>&1 || echo REFUSED-$((40+2))', 'REFUSED-42');
    expect(out).toContain('NICE-0-');
    const niceOf = (pid: number) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(statFields(stat)[16]);
    };
    const pids = processesOf((await pairAccount('carol')).uid);
    expect(pids.length).toBeGreaterThanOrEqual(3); // the tmux client, the server, the shell
    expect(pids.map(niceOf)).toEqual(pids.map(() => 0));
    d.kill();
  });

  it("no process of another pair holds a live session's pty master (node-pty marks masters close-on-exec)", async () => {
    const a = await t.login(alice);
    // bob's server and client start while alice's session (and its pty master in the gateway) is live.
    spawnSync('tmux', ['-S', socketsIn(await pairDir('bob')).find((s) => lstatSync(s).isSocket()) ?? '/nonexistent', 'kill-server']);
    const b = await t.login(bob);
    const gatewayTtys = new Set(
      t.gw.live
        .all()
        .map((s) => (s.shell as { tty?: string | null }).tty)
        .filter(Boolean)
        .map((p) => Number(/\d+$/.exec(p!)![0])),
    );
    expect(gatewayTtys.size).toBe(2);
    const held: number[] = [];
    for (const pid of processesOf((await pairAccount('bob')).uid)) {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== '/dev/ptmx') continue;
          const idx = /tty-index:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
          if (idx && gatewayTtys.has(Number(idx[1]))) held.push(Number(idx[1]));
        } catch {
          /* gone */
        }
      }
    }
    expect(held).toEqual([]);
    a.kill();
    b.kill();
  });

  it('a fake tmux server on the user’s socket gets nothing run as root by any tmux client the gateway starts', async () => {
    const a = await t.login(alice);
    // Replace the real socket with a program that answers every tmux client with "run this program".
    await t.run(a, `sock=\${TMUX%%,*}; (python3 ${FAKE_SERVER} "$sock" ${box}/evil >/dev/null 2>&1 &); sleep 0.5; echo FAKE-UP-$((4+4))`, 'FAKE-UP-8');
    // The intrusion check talks to every server on its own, with no admin action; alice's next
    // login asks the server whether it is alive. Both are tmux clients against that socket.
    await tickUntil(
      () => existsSync(`${box}/ran-as`) && readFileSync(`${box}/ran-as`, 'utf8').endsWith('\n'),
      'the fake server was reached by a gateway tmux client',
    );
    // A login of hers meets her own fake server: it runs her payload, as her, and her session ends.
    const second = t.ssh(alice, 'alice');
    await second.waitFor('Verification code:');
    second.write(t.code(alice) + '\r');
    await second.waitExit(15_000);
    // Whatever ran, ran as alice's own account: never as root.
    const uids = readFileSync(`${box}/ran-as`, 'utf8').split('\n').filter(Boolean).map(Number);
    expect(uids.length).toBeGreaterThan(0);
    const aliceUid = (await pairAccount('alice')).uid;
    expect(
      uids.every((u) => u === aliceUid),
      `ran as: ${uids.join(',')}`,
    ).toBe(true);
    spawnSync('pkill', ['-f', FAKE_SERVER]);
    a.kill();
    const b = await t.login(bob);
    b.kill();
    const again = await t.login(alice); // alice herself gets a fresh server
    again.kill();
  });

  /** alice logged in, and `tmuxgate sessions observe` of her session run as root in its own pty. */
  const aliceObserved = async () => {
    const a = await t.login(alice);
    const id = (await t.admin.sessions.list({ live: true })).find((s) => s.user_name === 'alice')!.id;
    const o = new PtyDriver(
      process.execPath,
      [BIN, 'sessions', 'observe', id, ...t.cliConfig()],
      { PATH: process.env.PATH!, HOME: t.dir, TERM: 'xterm-256color' },
      { cols: 80, rows: 24 },
    );
    return { a, o };
  };

  it('sessions observe runs as the observed pair: detach-client -E from the observed shell runs as that user, not root', async () => {
    const { a, o } = await aliceObserved();
    await t.run(a, 'echo OBSERVED-$((5+5))', 'OBSERVED-10');
    await o.waitFor('OBSERVED-10');
    const me = '$(tmux display -p "#{client_name}")';
    await t.run(
      a,
      `for c in $(tmux list-clients -F '#{client_name}'); do [ "$c" != "${me}" ] && tmux detach-client -E 'echo $(id -u) $(tr "\\0" " " < /proc/$PPID/cmdline) >> ${box}/observer-uid' -t "$c"; done; echo DETACHED-$((6+6))`,
      'DETACHED-12',
    );
    const line = () => (existsSync(`${box}/observer-uid`) ? readFileSync(`${box}/observer-uid`, 'utf8') : '');
    await waitUntil(() => /^\d+ .*\n$/.test(line()), 'the observer client ran the command');
    // The command ran in the observer's tmux client: as alice's account, in the CLI's own pty.
    expect(line()).toMatch(/^\d+ .*tmuxgate\.js sessions observe/);
    expect(Number(line().split(' ')[0])).toBe((await pairAccount('alice')).uid);
    await o.waitExit(10_000);
    a.kill();
  });

  it("an observing admin's keystrokes never reach a program the observed server makes the observer's client run", async () => {
    const { a, o } = await aliceObserved();
    await t.run(a, 'echo WATCHED-$((5+6))', 'WATCHED-11');
    await o.waitFor('WATCHED-11');
    // The observer's client (read-only) is made to exec a program that keeps what the admin types.
    await t.run(
      a,
      `for c in $(tmux list-clients -F '#{client_readonly}#{client_name}' | sed -n 's/^1//p'); do tmux detach-client -t "$c" -E "cat > $HOME/admin-loot"; done; sleep 0.3; echo HOOKED-$((6+6))`,
      'HOOKED-12',
    );
    o.write('admin-typed-SECRET-9\r');
    o.write('\x1c'); // Ctrl-\ leaves; what was typed before it was dealt with first
    await o.waitExit(10_000);
    await t.run(a, `cat $HOME/admin-loot 2>/dev/null; echo LOOT-END-$((7+7))`, 'LOOT-END-14');
    expect(a.text).not.toContain('admin-typed-SECRET-9');
    a.kill();
  });

  it("a socket symlinked to another user's socket never shows that user's screen to a watcher", async () => {
    const b = await t.login(bob);
    await t.run(b, 'echo BOB-SECRET-$((7*7))', 'BOB-SECRET-49');
    const bobSock = socketsIn(await pairDir('bob')).find((s) => lstatSync(s).isSocket())!;
    const a = await t.login(alice);
    const share = t.ssh(alice, 'alice', [], {}, ['share', 'mallory']);
    await share.waitFor('Verification code:');
    share.write(t.code(alice) + '\r');
    await share.waitFor('mallory may now watch');
    // Alice swaps her own socket for a link to Bob's and opens her directory to everyone.
    await t.run(a, `sock=\${TMUX%%,*}; rm -f "$sock"; ln -s ${bobSock} "$sock"; chmod 711 "$(dirname "$sock")"; echo SWAPPED-$((8+8))`, 'SWAPPED-16');
    const w = t.ssh(mallory, 'mallory', ['-t'], {}, ['watch', 'alice+ops']);
    await w.waitFor('Verification code:');
    w.write(t.code(mallory) + '\r');
    await w.waitExit(15_000);
    expect(w.text).not.toContain('BOB-SECRET-49');
    expect(w.text).toMatch(/no ops session running|not shared/);
    a.kill();
    b.kill();
  });

  it('disable ends every process of the pair within 5 s and locks the account; enable lets the user back in', async () => {
    const c = await t.login(carol);
    const acct = await pairAccount('carol');
    await t.run(c, `(nohup sleep 10000 >/dev/null 2>&1 &); (setsid sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 &); echo BG-$((9+9))`, 'BG-18');
    expect(processesOf(acct.uid).length).toBeGreaterThan(2);
    const t0 = Date.now();
    await setUserDisabled(t.admin, 'carol', true);
    await waitUntil(() => processesOf(acct.uid).length === 0, 'every process of the pair ended', 5000);
    expect(Date.now() - t0).toBeLessThan(5000);
    await waitUntil(async () => (await t.audit('host.account')).some((e) => e.data.action === 'lock' && e.data.account === acct.name), 'lock audited', 5000);
    expect(execFileSync('getent', ['shadow', acct.name], { encoding: 'utf8' }).split(':')[7]).toBe('1'); // expired
    await setUserDisabled(t.admin, 'carol', false);
    const again = await t.login(carol);
    expect(execFileSync('getent', ['shadow', acct.name], { encoding: 'utf8' }).split(':')[7]).toBe('');
    again.kill();
  });

  it('revoke ends the processes of that role only; kill ends the pair but leaves the account usable', async () => {
    await t.grant('carol', 'dba');
    const ops = await t.login(carol);
    const dba = await t.login(carol, 'carol+dba');
    const dbaAcct = await pairAccount('carol', 'dba');
    const opsAcct = await pairAccount('carol');
    await t.run(dba, '(nohup sleep 10001 >/dev/null 2>&1 &); echo DBA-BG-$((3+4))', 'DBA-BG-7');
    await revokeRole(t.admin, 'carol', 'dba');
    await waitUntil(() => processesOf(dbaAcct.uid).length === 0, 'dba pair ended', 5000);
    expect(processesOf(opsAcct.uid).length).toBeGreaterThan(0); // the ops pair lives on
    await t.run(ops, '(nohup sleep 10002 >/dev/null 2>&1 &); echo OPS-BG-$((3+5))', 'OPS-BG-8');
    const id = (await t.admin.sessions.list({ live: true })).find((s) => s.user_name === 'carol' && s.role_name === 'ops')!.id;
    await killSession(t.admin, id, 'incident response');
    await ops.waitFor('session ended by an administrator: incident response', 5000);
    await waitUntil(() => processesOf(opsAcct.uid).length === 0, 'ops pair ended', 5000);
    await waitUntil(
      async () => (await t.audit('host.account')).some((e) => e.data.action === 'terminate' && e.data.account === opsAcct.name),
      'terminate audited',
      5000,
    );
    const again = await t.login(carol); // a kill is not a lock
    again.kill();
    dba.kill();
  });

  it('remove deletes the pair account, archives its home out of reach, and never hands its uid to a new person', async () => {
    const m = await t.login(mallory);
    await t.run(m, 'echo diary > ~/diary; echo WROTE-$((10+1))', 'WROTE-11');
    m.kill();
    const acct = await pairAccount('mallory');
    await removeUser(t.admin, 'mallory');
    await waitUntil(() => lookupAccount(acct.name) === null, 'account deleted', 5000);
    expect(existsSync(acct.home)).toBe(false);
    const archive = path.join(t.config.isolation.homeBase, '.removed');
    expect(readdirSync(archive).some((n) => n.startsWith(acct.name))).toBe(true);
    expect(statSync(archive).mode & 0o777).toBe(0o700);
    const newcomer = await t.user('nina', 'ops');
    const n = await t.login(newcomer);
    expect((await pairAccount('nina')).uid).toBeGreaterThan(acct.uid);
    n.kill();
  });

  it('an outside tmux client attached from the user’s own shell is detached and audited', async () => {
    const a = await t.login(alice);
    const before = (await t.audit('tmux.intrusion')).length;
    await t.run(
      a,
      'sock=${TMUX%%,*}; (TMUX= script -qfc "tmux -S $sock attach -r" /dev/null >/dev/null 2>&1 &); sleep 0.3; echo ATTACHED-$((11+1))',
      'ATTACHED-12',
    );
    const dir = await pairDir('alice');
    await tickUntil(async () => (await t.audit('tmux.intrusion')).slice(before).some((e) => e.data.socketDir === dir), 'intrusion found');
    await t.run(a, 'echo OWNER-OK-$((12+1))', 'OWNER-OK-13'); // the owner's own client is untouched
    a.kill();
  });

  it('hardening options turned back on from inside are put back and the attempt audited', async () => {
    const a = await t.login(alice);
    await t.run(a, 'tmux set -p allow-passthrough on; tmux set -s set-clipboard on; tmux set -w allow-rename on; echo SET-$((13+1))', 'SET-14');
    const dir = await pairDir('alice');
    await tickUntil(async () => (await t.audit('tmux.option-reset')).some((e) => e.data.socketDir === dir), 'options reset');
    const out = await t.run(
      a,
      'echo "pt=$(tmux show -pv allow-passthrough)/$(tmux display -p "#{allow-passthrough}") cb=$(tmux show -sv set-clipboard) rn=$(tmux display -p "#{allow-rename}")"',
      /rn=\d/,
    );
    expect(out).toMatch(/pt=\/0 cb=off rn=0/);
    a.kill();
  });

  it('a sandboxed role sees only its own processes (own PID namespace), its paths set from the CLI', async () => {
    const rw = path.join(t.dir, 'rw');
    mkdirSync(rw);
    chmodSync(rw, 0o777);
    const bad = await cliAsync(['role', 'edit', 'ops', '--sandbox', 'on', '--rw', '/nonexistent/tg', ...t.cliConfig()]);
    expect([bad.status, bad.stderr.trim()]).toEqual([2, 'tmuxgate: TG_ERR_INVALID_ARGUMENT: sandbox path /nonexistent/tg does not exist']);
    const r = await cliAsync(['role', 'edit', 'ops', '--sandbox', 'on', '--rw', rw, ...t.cliConfig()]);
    expect(r.stderr).toBe('');
    expect((await t.admin.roles.find('ops'))!.sandbox).toEqual({ readOnlyPaths: [], readWritePaths: [rw], hiddenPaths: [] });
    spawnSync('tmux', ['-S', socketsIn(await pairDir('bob')).find((s) => lstatSync(s).isSocket())!, 'kill-server']);
    const b = await t.login(bob);
    await t.run(
      b,
      `echo "procs=$(ls /proc | grep -c '^[0-9]') gw=$([ -e /proc/${process.pid} ] && echo seen || echo hidden)"; touch ${rw}/ok && echo RW-$((1+1))-OK; touch /etc/tg-nope 2>/dev/null || echo ROOT-$((2+2))-RO`,
      'ROOT-4-RO',
    );
    const seen = /procs=(\d+)\s*gw=(hidden|seen)/.exec(b.text); // tmux may draw the space as a cursor move
    expect(seen?.[2], b.text.slice(-800)).toBe('hidden');
    expect(Number(seen![1])).toBeLessThan(15);
    expect(b.text).toContain('RW-2-OK');
    b.kill();
    expect((await cliAsync(['role', 'edit', 'ops', '--sandbox', 'off', ...t.cliConfig()])).status).toBe(0);
  });
});
