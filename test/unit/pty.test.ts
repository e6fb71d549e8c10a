import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, constants, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { onPath, spawnAsArgv, spawnPty, type Pty } from '../../src/platform/pty.js';
import { waitUntil } from '../helpers/poll.js';
import { statFields } from '../../src/platform/proc-stat.js';

describe('pty adapter: direct writes', () => {
  let dir = '';
  let pty: Pty | null = null;
  afterEach(async () => {
    pty?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every byte in order when a large paste overflows the pty and small writes follow', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pty-'));
    const out = path.join(dir, 'out');
    pty = spawnPty({
      file: '/bin/sh',
      args: ['-c', `stty raw -echo && printf READY && exec cat > ${out}`],
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cols: 80,
      rows: 24,
      term: 'xterm',
    });
    let seen = '';
    pty.onData((d) => (seen += d.toString()));
    await waitUntil(() => seen.includes('READY'), 'raw mode');
    // 512 KB is far more than the pty takes at once: the first write is partial, the rest
    // queues, and the small writes after it must wait behind it, not overtake it.
    const big = Buffer.alloc(512 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = 0x41 + (i % 26);
    const parts = [big, ...Array.from({ length: 50 }, (_, i) => Buffer.from(`<${i}>`))];
    for (const p of parts) pty.write(p);
    const want = Buffer.concat(parts);
    await waitUntil(
      () => {
        try {
          return statSync(out).size >= want.length;
        } catch {
          return false;
        }
      },
      'all bytes through the pty',
      20_000,
    );
    expect(readFileSync(out).equals(want)).toBe(true);
  });

  it("a keystroke reaches the program while the thread pool is busy (recordings' fdatasync)", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pty-'));
    // Every libuv thread blocks opening a FIFO that has no writer yet, as they would in slow syncs.
    const fifos = Array.from({ length: 64 }, (_, i) => path.join(dir, `f${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const blocked = fifos.map((f) => open(f, 'r').then((h) => h.close()));
    try {
      pty = spawnPty({ file: 'cat', args: [], cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cols: 80, rows: 24, term: 'xterm' });
      let seen = '';
      pty.onData((d) => (seen += d.toString()));
      pty.write(Buffer.from('x'));
      await waitUntil(() => seen.includes('x'), 'echo while the pool is busy', 5_000);
    } finally {
      // O_RDWR on a FIFO never blocks and lets every blocked reader's open return.
      const fds = fifos.map((f) => openSync(f, constants.O_RDWR));
      await Promise.all(blocked);
      for (const fd of fds) closeSync(fd);
    }
  });
});

describe('pty adapter: the child (node-pty patched to posix_spawn on Linux)', () => {
  it('runs in its own session with the pty as controlling terminal, stdin/out/err only, default signals, its cwd and env', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pty-'));
    // The parent has a handler (SIGUSR2) and ignores SIGPIPE, as Node does: neither may reach the child.
    const onUsr2 = () => {};
    process.on('SIGUSR2', onUsr2);
    const held = openSync(path.join(dir, 'held'), 'w'); // an fd of the parent's that the child must not inherit
    const p = spawnPty({ file: '/bin/sleep', args: ['30'], cwd: dir, env: { PATH: '/usr/bin:/bin', FOO: 'bar' }, cols: 91, rows: 33, term: 'xterm' });
    try {
      // comm changes early in execve, the new environment a little later; and after it the dynamic
      // loader still opens each library it maps (an fd 3 for a moment, seen under a loaded suite):
      // wait for sleep itself, asleep in nanosleep.
      await waitUntil(() => readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0').includes('FOO=bar'), 'the exec');
      await waitUntil(() => readFileSync(`/proc/${p.pid}/wchan`, 'utf8').includes('nanosleep'), 'sleep asleep');
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const f = statFields(stat);
      expect(Number(f[3])).toBe(p.pid); // session id: a session leader
      const ttyNr = Number(f[4]);
      const pts = Number(/(\d+)$/.exec(p.tty!)![1]);
      expect(ttyNr).toBe((136 << 8) | pts); // the controlling terminal is the pty's slave (major 136)
      expect(readdirSync(`/proc/${p.pid}/fd`).sort()).toEqual(['0', '1', '2']);
      expect(readlinkSync(`/proc/${p.pid}/fd/0`)).toBe(p.tty);
      expect(readlinkSync(`/proc/${p.pid}/cwd`)).toBe(dir);
      expect(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim()).toBe('sleep');
      const status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
      const mask = (name: string) => BigInt('0x' + new RegExp(`${name}:\\s*([0-9a-f]+)`).exec(status)![1]!);
      const bit = (sig: number) => 1n << BigInt(sig - 1);
      expect(mask('SigBlk')).toBe(0n);
      expect(mask('SigIgn') & (bit(13) | bit(12))).toBe(0n); // SIGPIPE, SIGUSR2 not ignored
      expect(mask('SigCgt')).toBe(0n); // no handler survives exec anyway; sleep installs none
    } finally {
      p.kill('SIGKILL');
      closeSync(held);
      process.off('SIGUSR2', onUsr2);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(process.getuid?.() !== 0)("started as an account: tg-spawn-as as the pty's program (no setpriv, no prlimit)", () => {
    const name = `tgpty${process.pid % 100000}`;
    let acct = { uid: 0, gid: 0, extra: 0 };
    beforeAll(() => {
      // An account with a supplementary group: the child gets the groups initgroups(3) gives it.
      execFileSync('groupadd', [`${name}x`]);
      execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', '-G', `${name}x`, name]);
      const id = (f: string) => Number(execFileSync('id', [f, name], { encoding: 'utf8' }).trim());
      acct = { uid: id('-u'), gid: id('-g'), extra: Number(execFileSync('getent', ['group', `${name}x`], { encoding: 'utf8' }).split(':')[2]) };
    });
    afterAll(() => {
      execFileSync('userdel', [name]);
      execFileSync('groupdel', [`${name}x`]);
    });
    /** Children of this process that have exited and not been reaped. */
    const zombies = () =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .map((d) => {
          try {
            return readFileSync(`/proc/${d}/stat`, 'utf8');
          } catch {
            return '';
          }
        })
        .filter((st) => {
          const f = statFields(st);
          return f[0] === 'Z' && Number(f[1]) === process.pid;
        });

    it('holds its uid, gid and groups, no capability in any set, the process limit, its own session on the pty, fds 0-2 only', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pty-'));
      chmodSync(dir, 0o755);
      const held = openSync(path.join(dir, 'held'), 'w');
      const p = spawnPty({
        ...spawnAsArgv({ uid: acct.uid, gid: acct.gid, nproc: 77 }, onPath('sleep', '/usr/bin:/bin'), ['30']),
        cwd: '/',
        env: { PATH: '/usr/bin:/bin', FOO: 'bar' },
        cols: 80,
        rows: 24,
        term: 'xterm',
      });
      try {
        // The helper (tg-spawn-as) has the same environment: wait for sleep itself.
        await waitUntil(
          () =>
            readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim() === 'sleep' && readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0').includes('FOO=bar'),
          'the exec of sleep',
        );
        const status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
        const line = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)![1]!.trim().split(/\s+/);
        expect(line('Uid')).toEqual(Array(4).fill(String(acct.uid)));
        expect(line('Gid')).toEqual(Array(4).fill(String(acct.gid)));
        expect(line('Groups').map(Number).sort()).toEqual([acct.gid, acct.extra].sort());
        for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(line(k), k).toEqual(['0000000000000000']);
        expect(line('SigBlk')).toEqual(['0000000000000000']);
        expect(/Max processes\s+(\d+)\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/limits`, 'utf8'))!.slice(1)).toEqual(['77', '77']);
        const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
        const f = statFields(stat);
        expect(Number(f[3])).toBe(p.pid);
        expect(Number(f[4])).toBe((136 << 8) | Number(/(\d+)$/.exec(p.tty!)![1]));
        expect(readdirSync(`/proc/${p.pid}/fd`).sort()).toEqual(['0', '1', '2']);
        expect(readlinkSync(`/proc/${p.pid}/cwd`)).toBe('/');
      } finally {
        p.kill('SIGKILL');
        closeSync(held);
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses root, a relative path, an unknown uid and a gid that is not its group; the helper refuses a directory it cannot enter and a missing program on the pty; no child is left', async () => {
      const as = { uid: acct.uid, gid: acct.gid, nproc: null };
      expect(() => spawnAsArgv({ uid: 0, gid: 0, nproc: null }, '/bin/true', [])).toThrow(/refusing to start \/bin\/true as uid 0/);
      expect(() => spawnAsArgv({ uid: 2 ** 32 - 1, gid: 2 ** 32 - 1, nproc: null }, '/bin/true', [])).toThrow(/refusing/);
      expect(() => spawnAsArgv(as, './true', [])).toThrow(/refusing to start \.\/true/);
      expect(() => spawnAsArgv({ uid: 2_000_000_000, gid: acct.gid, nproc: null }, '/bin/true', [])).toThrow(/no account with uid/);
      expect(() => spawnAsArgv({ ...as, gid: acct.extra }, '/bin/true', [])).toThrow(/not the primary group/);
      const told = async (file: string, cwd: string) => {
        const argv = spawnAsArgv(as, file, []);
        argv.args[3] = cwd; // the helper's CWD argument (spawnAsArgv always gives "/"), entered as the account
        const p = spawnPty({ ...argv, cwd: '/', env: { PATH: '/usr/bin:/bin' }, cols: 80, rows: 24, term: 'xterm' });
        let out = '';
        p.onData((d) => (out += d.toString()));
        const code = await new Promise<number>((resolve) => p.onExit((c) => resolve(c)));
        return { code, out };
      };
      expect(await told('/bin/true', '/root')).toMatchObject({ code: 126, out: expect.stringContaining('(chdir: Permission denied)') });
      expect(await told('/nonexistent/program', '/')).toMatchObject({ code: 126, out: expect.stringContaining('(execve: No such file or directory)') });
      expect(zombies()).toEqual([]);
    });

    it("never leaves the gateway's thread waiting on a process the account can stop (SIGSTOP from the account during every spawn)", () => {
      // The account stops every process of its own, as fast as it can, while spawns as the account run.
      const stopper = spawn(
        'setpriv',
        ['--reuid', String(acct.uid), '--regid', String(acct.gid), '--clear-groups', 'sh', '-c', 'while :; do kill -STOP -1 2>/dev/null; done'],
        { stdio: 'ignore' },
      );
      const children: Pty[] = [];
      try {
        for (let i = 0; i < 40; i++) {
          const t0 = performance.now();
          children.push(
            spawnPty({
              ...spawnAsArgv({ uid: acct.uid, gid: acct.gid, nproc: null }, '/bin/sleep', ['5']),
              cwd: '/',
              env: { PATH: '/usr/bin:/bin' },
              cols: 80,
              rows: 24,
              term: 'xterm',
            }),
          );
          // The spawn returns once the root-owned helper is running: never after a stop of the account's.
          expect(performance.now() - t0).toBeLessThan(2000);
        }
      } finally {
        stopper.kill('SIGKILL');
        spawnSync('pkill', ['-KILL', '-u', String(acct.uid)]);
      }
    });
  });

  it("finds a bare name on the child's PATH as execvp would (absolute directories only), so the spawn takes posix_spawn", () => {
    expect(onPath('sh', '/nonexistent:.:/bin')).toBe('/bin/sh');
    expect(onPath('sh', 'bin:/usr/bin')).toBe('/usr/bin/sh');
    expect(onPath('./local-tool', '/bin')).toBe('./local-tool');
    expect(onPath('no-such-program-tg', '/bin:/usr/bin')).toBe('no-such-program-tg');
  });
});
