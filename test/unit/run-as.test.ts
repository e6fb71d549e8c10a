import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TmuxHost, type Pair } from '../../src/host/tmux.js';
import { asAccount, runAs, runOnPty } from '../../src/host/run.js';
import { lookupAccount } from '../../src/host/account.js';
import { waitUntil } from '../helpers/poll.js';
import { statFields } from '../../src/platform/proc-stat.js';

const isRoot = process.getuid?.() === 0;

/** How a program is started as an account: the static helper where it can be seen, setpriv inside a sandbox. */
describe.skipIf(!isRoot)('starting a program as an account', () => {
  const acct = lookupAccount('nobody')!;

  it('takes the static helper (one exec) with the process limit, and setpriv under prlimit inside a sandbox', () => {
    const direct = asAccount(acct, 'tmux', ['ls'], { nproc: 50 });
    expect(direct.file).toMatch(/\/tg-spawn-as$/);
    expect(direct.args.slice(0, 4)).toEqual([String(acct.uid), String(acct.gid), '50', '/']);
    expect(direct.args.slice(direct.args.indexOf('--'))).toEqual(['--', '/usr/bin/tmux', '/usr/bin/tmux', 'ls']);
    // A sandbox may hide the install directory (its own /tmp, hidden paths): setpriv is in /usr/bin.
    const inside = asAccount(acct, 'tmux', ['ls'], { nproc: 50 }, { sandboxed: true });
    expect([inside.file, inside.args[0], inside.args[2]]).toEqual(['prlimit', '--nproc=50:50', 'setpriv']);
  });

  it("a short program run as the pair leads a session of its own (never the gateway's raised autogroup) and carries the pair's process limit", async () => {
    // The pair can ptrace its own `rm` (its uid, dumpable) and make it exec a `sleep` left behind:
    // seen through the real gateway, that program sat in the gateway's session at autogroup nice -5
    // with root's RLIMIT_NPROC. Its session and limit are what such a program would keep.
    const r = await runAs(acct, '/bin/sh', ['-c', 'read -r s < /proc/self/stat; echo "$s"; grep "Max processes" /proc/$$/limits'], { nproc: 77 });
    expect(r.code).toBe(0);
    const stat = r.stdout.split('\n')[0]!;
    const [pid] = stat.split(' ', 1);
    const session = statFields(stat)[3];
    expect(session).toBe(pid);
    expect(r.stdout).toMatch(/Max processes\s+77\s+77\s/);
  });

  it("a sandboxed pair's tmux clients run setpriv inside bwrap, never the helper", () => {
    const tmux = new TmuxHost({ tmuxPath: 'tmux', hide: [], maxProcesses: 64 });
    const pair: Pair = {
      label: 'a+b',
      roleId: 1,
      userId: 1,
      account: acct,
      dir: '/nonexistent/r1-u1',
      home: '/nonexistent',
      conf: '/nonexistent/c',
      sandbox: null,
    };
    expect(tmux.client(pair, '/nonexistent/r1-u1/s.sock', ['ls']).file).toMatch(/\/tg-spawn-as$/);
    const sandboxed = tmux.client({ ...pair, sandbox: { readWritePaths: [], readOnlyPaths: [], hiddenPaths: [] } }, '/nonexistent/r1-u1/s.sock', ['ls']);
    expect(sandboxed.file).toBe('/usr/bin/bwrap');
    expect(sandboxed.args.join(' ')).toContain('setpriv --reuid');
    expect(sandboxed.args.join(' ')).not.toContain('tg-spawn-as');
  });
});

describe('runOnPty: short programs without forking the gateway', () => {
  it("returns the program's output with LF line ends, its exit code, and its error text when it fails", async () => {
    const ok = await runOnPty('/bin/sh', ['-c', 'printf "a b\\nc\\n"; echo to-stderr >&2']);
    expect(ok).toEqual({ code: 0, stdout: 'a b\nc\nto-stderr\n', stderr: '' });
    const failed = await runOnPty('/bin/sh', ['-c', 'echo no server running on /x >&2; exit 3']);
    expect(failed).toEqual({ code: 3, stdout: 'no server running on /x\n', stderr: 'no server running on /x\n' });
    const missing = await runOnPty('/nonexistent/tmux', []);
    expect(missing.code).not.toBe(0);
  });

  it('ends a program that runs past its time, or prints without end, and one that leaves a process holding the terminal still returns', async () => {
    const slow = await runOnPty('/bin/sleep', ['30'], { timeoutMs: 200 });
    expect(slow.code).toBe(1);
    expect(slow.stderr).toMatch(/killed after 200 ms/);
    const flood = await runOnPty('/usr/bin/yes', [], { timeoutMs: 10_000 });
    expect(flood.code).toBe(1);
    expect(flood.stdout.length).toBeLessThanOrEqual(1024 * 1024);
    // A daemon-like child keeps the terminal open: the result comes anyway, with what was printed.
    try {
      const left = await runOnPty('/bin/sh', ['-c', '(sleep 5.4321 &) ; echo parent-done'], { timeoutMs: 3000 });
      expect(left).toMatchObject({ code: 0, stdout: 'parent-done\n' });
    } finally {
      spawnSync('pkill', ['-f', 'sleep 5.4321']);
    }
  });

  it.skipIf(!isRoot)('answers its caller when a tracer holds a killed program unreaped (a pair can ptrace what runs as it)', async () => {
    // The tracer attaches (PTRACE_SEIZE) and never waits: the SIGKILL at the timeout leaves a zombie
    // whose exit reaches its parent only once the tracer lets go. Before, the caller waited until then.
    const run = runOnPty('/bin/sleep', ['61.717'], { timeoutMs: 1500 });
    let tracer: ReturnType<typeof spawn> | null = null;
    try {
      const pid = await waitUntil(() => spawnSync('pgrep', ['-f', '^/bin/sleep 61.717$'], { encoding: 'utf8' }).stdout.trim() || null, 'the program started');
      tracer = spawn('python3', ['-c', TRACER, pid], { stdio: ['ignore', 'pipe', 'inherit'] });
      let said = '';
      tracer.stdout!.on('data', (d: Buffer) => (said += d.toString()));
      await waitUntil(() => (said ? said : null), 'the tracer attached');
      expect(said.trim()).toBe('SEIZED');
      const r = await Promise.race([run, new Promise<null>((res) => setTimeout(() => res(null), 6000))]);
      expect(r, 'runOnPty still waiting 6 s after its timeout').not.toBeNull();
      expect(r).toMatchObject({ code: 1 });
      expect(r!.stderr).toMatch(/exit was never reported/);
    } finally {
      tracer?.kill('SIGKILL');
      spawnSync('pkill', ['-KILL', '-f', '^/bin/sleep 61.717$']);
    }
  });
});

/** Seizes the pid in argv[1] with ptrace and holds it without ever waiting on it. */
const TRACER = `import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
ok = libc.ptrace(0x4206, int(sys.argv[1]), None, None) == 0
print('SEIZED' if ok else 'ERR %d' % ctypes.get_errno(), flush=True)
time.sleep(60)`;
