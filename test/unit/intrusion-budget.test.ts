import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { TmuxServers } from '../../src/host/tmux-servers.js';
import type { Pair, TmuxHost } from '../../src/host/tmux.js';
import type { RunResult } from '../../src/host/run.js';

const pairOf = (userId: number): Pair => ({
  label: `u${userId}`,
  roleId: 1,
  userId,
  account: { name: `u${userId}`, uid: 60000 + userId, gid: 60000, home: '/nonexistent', shell: '/bin/sh' },
  dir: `/nonexistent/tg-budget/r1-u${userId}`,
  home: '/nonexistent',
  conf: '/dev/null',
  sandbox: null,
});

/**
 * A pair's server can answer the intrusion check's first ask at once (a stranger, an option turned
 * back on) and then hold each ask that follows (the detach, the options' reset) to its timeout.
 * Each ask waited the whole timeout, so one pair held its lane, and with it the end of every round
 * (the next round starts after it), for three timeouts. Its asks share one timeout now.
 */
describe('intrusion check: one pair, one timeout', () => {
  it("a server that answers the first ask and holds the rest holds the round for at most one ask's timeout", async () => {
    const realTime = new FakeClock(0);
    const asks: { user: number; what: string; timeoutMs: number }[] = [];
    const tmux = {
      socketState: () => 'socket',
      alive: async () => false,
      ptyClient: () => ({ file: 'tmux', args: [] }),
      run: async (pair: Pair, _socket: string, args: string[], timeoutMs = 5000): Promise<RunResult> => {
        asks.push({ user: pair.userId, what: args[0]!, timeoutMs });
        if (args[0] === 'list-clients') {
          // A stranger (no such pid: not one of ours) and a pane with passthrough turned back on.
          return { code: 0, stdout: '999999999 /dev/pts/999 stranger\n%1\t1\t0\toff\t0\t\n', stderr: '' };
        }
        // Every later ask is held to its timeout (the time passes on the clock the check reads).
        realTime.advance(timeoutMs);
        return { code: 1, stdout: '', stderr: 'killed', killed: true };
      },
    } as unknown as TmuxHost;
    const servers = new TmuxServers(
      { socketDir: '/nonexistent/tg-budget', dormantTimeoutMs: 60_000 },
      {
        clock: new FakeClock(0),
        realTime,
        logger: silentLogger(),
        audit: { emit: async () => {}, post: () => {} } as never,
        tmux,
        pairOf: async (_r, u) => pairOf(u),
        observers: async () => [],
      },
    );
    await servers.attachFor(pairOf(1), {}, 80, 24);
    const start = realTime.now();
    await servers.checkIntruders(25, () => null);
    const held = asks.filter((a) => a.what !== 'list-clients');
    expect(held.length).toBeGreaterThan(0); // it did try to detach the stranger
    expect(realTime.now() - start).toBeLessThanOrEqual(5000);
  });
});
