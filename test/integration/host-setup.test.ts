import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { cliAsync } from '../helpers/cli.js';
import { waitUntil } from '../helpers/poll.js';
import { HostAccounts } from '../../src/host/accounts.js';
import { lookupAccount } from '../../src/host/account.js';

const isRoot = process.getuid?.() === 0;

/** A fresh machine's surprises: unreachable directories, missing parents, accounts that are not ours; and export -o. */
describe.skipIf(!isRoot)('host set-up and admin output files', () => {
  const t = new TestGateway();
  let alice: TestUser;
  let id = '';

  beforeAll(async () => {
    // The home base's parents do not exist yet: each must be created traversable (0711), not 0700.
    (t.config.isolation as { homeBase: string }).homeBase = path.join(t.dir, 'var', 'lib', 'tg', 'home');
    await t.start();
    alice = await t.user('alice', 'ops');
    const a = await t.login(alice);
    await t.run(a, 'echo EXPORT-ME-$((6*7))', 'EXPORT-ME-42');
    a.kill();
    await waitUntil(async () => (await t.admin.sessions.list({ live: true })).length === 0, 'session closed');
    id = (await t.admin.sessions.list({})).find((s) => s.user_name === 'alice')!.id;
  });
  afterAll(() => t.stop());

  it('creates every missing parent of the home base traversable, so pair shells can reach their homes', async () => {
    for (const p of ['var', 'var/lib', 'var/lib/tg', 'var/lib/tg/home']) {
      expect((statSync(path.join(t.dir, p)).mode & 0o777).toString(8), p).toBe('711');
    }
  });

  it('never adopts an existing account that this store did not create', async () => {
    const bob = await t.user('bob', 'ops');
    const host = new HostAccounts(t.config.isolation, { repo: t.admin.hostAccounts, clock: t.clock, audit: t.admin.audit });
    const name = await host.pairName((await t.admin.roles.find('ops'))!.id, (await t.admin.users.find('bob'))!.id);
    // Someone else's account with the very name bob's pair would get (a previous installation, a re-initialised store).
    expect(spawnSync('useradd', ['-M', '-u', '63950', '-s', '/bin/sh', name]).status).toBe(0);
    try {
      const d = t.ssh(bob, 'bob');
      await d.waitFor('Verification code:');
      d.write(t.code(bob) + '\r');
      await d.waitFor('your session could not be prepared');
      await d.waitExit();
      expect((await t.audit('request.denied')).some((e) => /not created by this store/.test(String(e.data.detail)))).toBe(true);
    } finally {
      spawnSync('userdel', [name]);
    }
  });

  it('makes an allocated account on each machine with its recorded uid, and never adopts one that machine did not make', async () => {
    const role = (await t.admin.roles.find('ops'))!;
    const template = lookupAccount(role.runAs!)!; // made at alice's login
    const carol = (await t.admin.users.find((await t.user('carol', 'ops')).name))!;
    const repo = t.admin.hostAccounts;
    const on = (machine: string) => new HostAccounts(t.config.isolation, { repo, clock: t.clock, audit: t.admin.audit, machine });
    const intruder = `tpx${Math.random()
      .toString(36)
      .slice(2, 8)
      .replace(/[^a-z0-9]/g, 'x')}`;
    try {
      const made = await on('machine-1').ensurePairAccount(role.id, carol.id, template, '/bin/sh');
      expect(await repo.accountHosts(made.name)).toEqual(['machine-1']);
      // The name exists here, but as far as machine-2 knows this store never made it there: not adopted.
      await expect(on('machine-2').ensurePairAccount(role.id, carol.id, template, '/bin/sh')).rejects.toMatchObject({
        code: 'TG_ERR_ACCOUNT_NOT_OURS',
        message: expect.stringMatching(/made it only on machine-1; it is never adopted/),
      });
      // Machine-2 without the account makes it, with the uid the store allocated.
      expect(spawnSync('userdel', [made.name]).status).toBe(0);
      expect((await on('machine-2').ensurePairAccount(role.id, carol.id, template, '/bin/sh')).uid).toBe(made.uid);
      expect(await repo.accountHosts(made.name)).toEqual(['machine-1', 'machine-2']);
      // Machine-3, where that uid is someone else's: refused, and nothing is made.
      expect(spawnSync('userdel', [made.name]).status).toBe(0);
      expect(spawnSync('useradd', ['-M', '-u', String(made.uid), '-s', '/bin/sh', intruder]).status).toBe(0);
      await expect(on('machine-3').ensurePairAccount(role.id, carol.id, template, '/bin/sh')).rejects.toMatchObject({
        code: 'TG_ERR_ACCOUNT_NOT_OURS',
        message: expect.stringMatching(new RegExp(`uid ${made.uid} of account ${made.name} is taken on this machine by ${intruder}`)),
      });
      expect(lookupAccount(made.name)).toBeNull();
      // An account recorded on no machine predates clusters: found with its uid, it is ours, and the machine is recorded.
      const dave = (await t.admin.users.find((await t.user('dave', 'ops')).name))!;
      const legacy = `${intruder}l`;
      expect(spawnSync('useradd', ['-M', '-u', '63951', '-g', String(template.gid), '-s', '/bin/sh', legacy]).status).toBe(0);
      await repo.recordPair({ roleId: role.id, userId: dave.id, account: legacy, uid: 63951, home: path.join(t.dir, 'homes', legacy) }, t.clock.now());
      expect((await on('machine-1').ensurePairAccount(role.id, dave.id, template, '/bin/sh')).uid).toBe(63951);
      expect(await repo.accountHosts(legacy)).toEqual(['machine-1']);
    } finally {
      spawnSync('userdel', [intruder]);
    }
  });

  it('refuses to start when pair accounts cannot reach their directories, naming the directory and the mode', async () => {
    const dir = path.join(t.dir, 'private');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    const t2 = new TestGateway({ sessions: { socketDir: path.join(dir, 'sockets') } });
    try {
      await t2.start(); // no shell role yet: nothing has to reach it
      await t2.role('ops');
      await expect(t2.restart()).rejects.toThrow(
        new RegExp(`cannot reach the socket directory ${dir}/sockets: ${dir} is mode 0700 and needs search \\(x\\) permission`),
      );
    } finally {
      await t2.stop();
    }
  });

  it('export -o creates a new 0600 file and never writes through an existing file or a symlink', async () => {
    const out = path.join(t.dir, 'out');
    mkdirSync(out);
    const fresh = path.join(out, 'a.cast');
    const r = await cliAsync(['export', id, '-o', fresh, ...t.cliConfig()]);
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
    expect(readFileSync(fresh, 'utf8')).toContain('EXPORT-ME-42');

    // An attacker's world-writable file, and a symlink to a file of theirs: neither is written into.
    const trap = path.join(out, 'trap.cast');
    writeFileSync(trap, 'attacker\n', { mode: 0o666 });
    chmodSync(trap, 0o666);
    const target = path.join(out, 'target');
    writeFileSync(target, 'target\n');
    const link = path.join(out, 'link.cast');
    symlinkSync(target, link);
    for (const p of [trap, link]) {
      const x = await cliAsync(['export', id, '-o', p, ...t.cliConfig()]);
      expect([x.status, x.stderr.trim()]).toEqual([4, `tmuxgate: TG_ERR_OUTPUT_EXISTS: ${p} already exists; choose a new name or pass --force to replace it`]);
    }
    expect(readFileSync(trap, 'utf8')).toBe('attacker\n');
    expect(readFileSync(target, 'utf8')).toBe('target\n');

    // --force replaces the name with a new file of ours; the symlink's target is untouched.
    const f = await cliAsync(['export', id, '-o', link, '--force', ...t.cliConfig()]);
    expect(f.status, f.stderr).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(false);
    expect(statSync(link).mode & 0o777).toBe(0o600);
    expect(readFileSync(target, 'utf8')).toBe('target\n');

    const missing = await cliAsync(['export', id, '-o', path.join(out, 'nope', 'x.cast'), ...t.cliConfig()]);
    expect([missing.status, missing.stderr.trim()]).toEqual([2, `tmuxgate: TG_ERR_OUTPUT_PATH: directory ${path.join(out, 'nope')} does not exist`]);
    expect(existsSync(path.join(out, 'nope'))).toBe(false);
  });
});
