import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { TmuxServers, parseUnixTable } from '../../src/host/tmux-servers.js';
import { TmuxHost, type Pair } from '../../src/host/tmux.js';
import { currentAccount } from '../../src/host/account.js';
import { killTmuxServers, tempDir } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { waitUntil } from '../helpers/poll.js';

// 40 live tmux servers, a check that may ask tmux about 5 servers a tick: a stranger attached to
// any of them must be found in one tick, because the kernel's socket table says where to look.
describe('intrusion check across many tmux servers', () => {
  const N = 40;
  let dir = '';
  let socketDir = '';
  const events: { type: string; data: Record<string, unknown> }[] = [];
  let servers: TmuxServers;
  const drivers: PtyDriver[] = [];
  const sock = (i: number) => path.join(socketDir, `r1-u${i}`, 'aaaaaaaaaaaaaaaa.sock');
  const pairOf = (roleId: number, userId: number): Pair => {
    const d = path.join(socketDir, `r${roleId}-u${userId}`);
    return { label: `r${roleId}-u${userId}`, roleId, userId, account: currentAccount(), dir: d, home: d, conf: '/dev/null', sandbox: null };
  };

  beforeAll(async () => {
    dir = tempDir('tg-intr-');
    socketDir = path.join(dir, 'tmux');
    for (let i = 1; i <= N; i++) {
      mkdirSync(path.dirname(sock(i)), { recursive: true, mode: 0o700 });
      execFileSync('tmux', ['-S', sock(i), '-f', '/dev/null', 'new-session', '-d', '-s', 'main', '/bin/sh']);
    }
    servers = new TmuxServers(
      { socketDir, dormantTimeoutMs: 3_600_000 },
      {
        clock: new FakeClock(0),
        logger: silentLogger(),
        audit: {
          emit: async (_actor: string, e: { type: string }) => void events.push({ type: e.type, data: e as Record<string, unknown> }),
          post: (_actor: string, e: { type: string }) => void events.push({ type: e.type, data: e as Record<string, unknown> }),
        } as never,
        tmux: new TmuxHost({ tmuxPath: 'tmux', hide: [] }),
        pairOf: async (r, u) => pairOf(r, u),
        observers: async () => [],
      },
    );
    expect((await servers.reconcile()).adopted).toBe(N);
  });
  afterAll(async () => {
    for (const d of drivers) d.kill();
    killTmuxServers(socketDir);
    rmSync(dir, { recursive: true, force: true });
  });

  const attach = (i: number) => {
    const d = new PtyDriver('tmux', ['-S', sock(i), 'attach', '-t', 'main'], { PATH: process.env.PATH!, HOME: dir, TERM: 'xterm' });
    drivers.push(d);
    return d;
  };
  const connections = (i: number) => parseUnixTable(execFileSync('cat', ['/proc/net/unix'], { encoding: 'utf8' })).connected.get(sock(i)) ?? 0;

  it('reads the kernel table: listening sockets and connections per path', async () => {
    const t = parseUnixTable(execFileSync('cat', ['/proc/net/unix'], { encoding: 'utf8' }));
    for (let i = 1; i <= N; i++) expect(t.listening.has(sock(i))).toBe(true);
    expect(t.connected.get(sock(7)) ?? 0).toBe(0);
  });

  it('detaches a stranger on the last server in one tick, and leaves the gateway’s own client alone', async () => {
    const ours = attach(3);
    await waitUntil(() => connections(3) === 1, 'our client connected');
    servers.attached(pairOf(1, 3), ours.pid, null);
    const stranger = attach(N);
    await waitUntil(() => connections(N) === 1, 'stranger connected');

    expect(await servers.checkIntruders(5)).toBe(1);
    const hit = events.filter((e) => e.type === 'tmux.intrusion');
    expect(hit).toHaveLength(1);
    expect(hit[0]!.data).toMatchObject({ socketDir: path.dirname(sock(N)), clientPid: stranger.pid });
    await stranger.waitExit(10_000);
    expect(connections(3)).toBe(1); // ours is still attached
    expect(await servers.checkIntruders(5)).toBe(0);
  });

  it('without the kernel table it still walks every server, a few a tick', async () => {
    const stranger = attach(N - 1);
    await waitUntil(() => connections(N - 1) === 1, 'stranger connected');
    let found = 0;
    for (let tick = 0; tick < N / 5 && !found; tick++) found = await servers.checkIntruders(5, () => null);
    expect(found).toBe(1);
    await stranger.waitExit(10_000);
  });
});
