import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { RunResult } from '../../src/host/run.js';

// The `kill -9 -1` run as the account is held and does nothing, as when a process of the account
// ptraces it (it is the account's own: same uid, dumpable) and never lets it reach its kill().
const held = vi.hoisted(() => ({ calls: 0 }));
vi.mock('../../src/host/run.js', async (original) => ({
  ...(await original<typeof import('../../src/host/run.js')>()),
  runAs: async (): Promise<RunResult> => {
    held.calls++;
    return { code: 1, stdout: '', stderr: 'held by a tracer' };
  },
}));

const { HostAccounts, processesOf, processesOfYielding } = await import('../../src/host/accounts.js');
const { lookupAccount } = await import('../../src/host/account.js');

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('HostAccounts.terminate when the kill run as the account is held', () => {
  const name = `tgterm${process.pid % 100000}`;
  beforeAll(() => {
    execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', name]);
  });
  afterAll(() => {
    spawnSync('pkill', ['-KILL', '-u', name]);
    spawnSync('userdel', [name]);
  });

  it("ends every process of the account anyway: root's SIGKILL by pid each round", async () => {
    const acct = lookupAccount(name)!;
    for (let i = 0; i < 3; i++) {
      spawn('setpriv', [`--reuid=${acct.uid}`, `--regid=${acct.gid}`, '--clear-groups', 'sleep', '300'], { stdio: 'ignore', detached: true }).unref();
    }
    const deadline = Date.now() + 10_000;
    while (processesOf(acct.uid).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(processesOf(acct.uid)).toHaveLength(3);
    const accounts = new HostAccounts({} as never, { repo: {} as never, clock: { now: () => 0 } as never, audit: {} as never, machine: 'test' });
    expect(await accounts.terminate(acct)).toBe(3);
    expect(processesOf(acct.uid)).toEqual([]);
    expect(held.calls).toBeGreaterThanOrEqual(1);
  });
});

describe("looking for a pair's processes", () => {
  it('reads /proc in slices, giving the event loop a turn between them', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const path = await import('node:path');
    const os = await import('node:os');
    const proc = mkdtempSync(path.join(os.tmpdir(), 'tg-proc-'));
    try {
      for (let pid = 1; pid <= 600; pid++) {
        mkdirSync(path.join(proc, String(pid)));
        writeFileSync(
          path.join(proc, String(pid), 'status'),
          `Name:\tx\nState:\t${pid === 7 ? 'Z (zombie)' : 'S (sleeping)'}\nUid:\t${pid % 2 ? 4242 : 0}\t0\t0\t0\n`,
        );
      }
      let turns = 0;
      const tick = () => {
        turns++;
        if (turns < 100) setImmediate(tick);
      };
      setImmediate(tick);
      const pids = await processesOfYielding(4242, proc);
      expect(turns).toBeGreaterThanOrEqual(2); // the loop ran between the slices
      expect(pids).toEqual(processesOf(4242, proc));
      expect(pids).toHaveLength(299); // the odd pids but the zombie
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
});
