import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { TmuxServers } from '../../src/host/tmux-servers.js';
import { TmuxHost, type Pair } from '../../src/host/tmux.js';
import type { RunResult } from '../../src/host/run.js';
import { currentAccount } from '../../src/host/account.js';
import { killTmuxServers, tempDir } from '../helpers/gateway.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { waitUntil } from '../helpers/poll.js';

/**
 * A pair owns its socket directory, so it can put on its socket a program that accepts every
 * connection and never answers: each tmux command the gateway runs against it waits out its
 * timeout. That wait is the hostile pair's own, never the other pairs': the reconcile at start,
 * the intrusion check and the reaper ask their servers in lanes, and a pair whose socket held an
 * ask is not asked about the rest of its directory.
 */
describe('a socket that holds every ask holds only its own pair', () => {
  let dir = '';
  const listeners: net.Server[] = [];
  const drivers: PtyDriver[] = [];
  afterEach(() => {
    for (const d of drivers.splice(0)) d.kill();
    for (const l of listeners.splice(0)) l.close();
    killTmuxServers(path.join(dir, 'tmux'));
    rmSync(dir, { recursive: true, force: true });
  });

  const setup = () => {
    dir = tempDir('tg-held-');
    const socketDir = path.join(dir, 'tmux');
    const pairOf = (userId: number): Pair => {
      const d = path.join(socketDir, `r1-u${userId}`);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      return { label: `r1-u${userId}`, roleId: 1, userId, account: currentAccount(), dir: d, home: d, conf: '/dev/null', sandbox: null };
    };
    const realServer = (p: Pair, name = 'aaaaaaaaaaaaaaaa.sock') => {
      const sock = path.join(p.dir, name);
      execFileSync('tmux', ['-S', sock, '-f', '/dev/null', 'new-session', '-d', '-s', 'main', '/bin/sh']);
      return sock;
    };
    return { socketDir, pairOf, realServer };
  };

  /** A program on `sock` that accepts every client and never answers; counts what it holds. */
  const holder = async (sock: string) => {
    const h = { opened: 0, closed: 0, conns: new Set<net.Socket>() };
    const srv = net.createServer((c) => {
      h.opened++;
      h.conns.add(c);
      c.on('error', () => {});
      c.resume(); // reads and drops what the client says, so its going is seen
      c.on('close', () => {
        h.closed++;
        h.conns.delete(c);
      });
    });
    listeners.push(srv);
    rmSync(sock, { force: true }); // what tmux left, as the pair would
    await new Promise<void>((resolve) => srv.listen(sock, resolve));
    return { state: h, release: () => h.conns.forEach((c) => c.destroy()) };
  };

  type Held = Awaited<ReturnType<typeof holder>>;

  /** Every tmux command the gateway runs, with how many held asks had ended when it was sent; held sockets time out at 2 s. */
  class Spy extends TmuxHost {
    calls: { socket: string; args: string[]; heldClosedBefore: number }[] = [];
    constructor(
      private readonly held: () => { socket: string; closed: number }[],
      private readonly heldTimeoutMs = 2000,
    ) {
      super({ tmuxPath: 'tmux', hide: [] });
    }
    override async run(pair: Pair, socket: string, args: string[], timeoutMs?: number): Promise<RunResult> {
      const hs = this.held();
      this.calls.push({ socket, args, heldClosedBefore: hs.reduce((n, h) => n + h.closed, 0) });
      return super.run(pair, socket, args, hs.some((h) => h.socket === socket) ? this.heldTimeoutMs : timeoutMs);
    }
  }

  const serversWith = (socketDir: string, tmux: TmuxHost, pairOf: (u: number) => Pair, clock = new FakeClock(0)) => {
    const events: { type: string; [k: string]: unknown }[] = [];
    const servers = new TmuxServers(
      { socketDir, dormantTimeoutMs: 60_000 },
      {
        clock,
        logger: silentLogger(),
        audit: {
          emit: async (_a: string, e: { type: string }) => void events.push(e),
          post: (_a: string, e: { type: string }) => void events.push(e),
        } as never,
        tmux,
        pairOf: async (_r, u) => pairOf(u),
        observers: async () => [],
      },
    );
    return { servers, events };
  };

  it('reconcile: the other pairs are adopted while the held ask waits, and the held pair is asked once', async () => {
    const { socketDir, pairOf, realServer } = setup();
    const hostile = pairOf(1);
    // Three sockets in the hostile pair's directory, each holding whoever connects.
    const held = await Promise.all(
      ['a', 'b', 'c'].map(async (x) => ({
        socket: path.join(hostile.dir, `${x.repeat(16)}.sock`),
        h: await holder(path.join(hostile.dir, `${x.repeat(16)}.sock`)),
      })),
    );
    const victims = [2, 3, 4].map((u) => realServer(pairOf(u)));
    const spy = new Spy(() => held.map((x) => ({ socket: x.socket, closed: x.h.state.closed })));
    const { servers } = serversWith(socketDir, spy, pairOf);

    expect(await servers.reconcile()).toEqual({ adopted: 3, stale: 0 });
    const asked = (s: string) => spy.calls.filter((c) => c.socket === s);
    // The pairs are taken in order (r1-u1 first), so each victim was asked while the hostile ask was still held.
    for (const v of victims) expect(asked(v)).toMatchObject([{ args: ['list-sessions'], heldClosedBefore: 0 }]);
    // One ask of the hostile directory, timed out; its other sockets are left for the pair's next login.
    expect(held.reduce((n, x) => n + x.h.state.opened, 0)).toBe(1);
    for (const x of held) expect(existsSync(x.socket)).toBe(true);
  });

  it('reconcile: a socket that answers the liveness ask and holds the kill ends the asks of its directory there', async () => {
    const { socketDir, pairOf } = setup();
    const hostile = pairOf(1);
    // Three sockets that answer the liveness ask as live servers would, and hold every kill: the
    // first one asked is adopted, the next is a second server to kill.
    const decoys = ['a', 'b', 'c'].map((x) => path.join(hostile.dir, `${x.repeat(16)}.sock`));
    for (const d of decoys) await holder(d);
    class Liar extends TmuxHost {
      asked: { socket: string; what: string }[] = [];
      override async run(pair: Pair, socket: string, args: string[], timeoutMs?: number): Promise<RunResult> {
        this.asked.push({ socket, what: args[0]! });
        if (!decoys.includes(socket)) return super.run(pair, socket, args, timeoutMs);
        if (args[0] === 'list-sessions') return { code: 0, stdout: 'main: 1 windows\n', stderr: '' };
        return { code: 1, stdout: '', stderr: 'killed after 5000 ms', killed: true }; // held to its timeout
      }
    }
    const liar = new Liar({ tmuxPath: 'tmux', hide: [] });
    const { servers } = serversWith(socketDir, liar, pairOf);
    expect((await servers.reconcile()).adopted).toBe(1);
    // After the first held kill, nothing more of the directory is asked (the third socket is left).
    const decoyAsks = liar.asked.filter((a) => decoys.includes(a.socket));
    expect(decoyAsks.filter((a) => a.what === 'kill-server')).toHaveLength(1);
    expect(decoyAsks.at(-1)!.what).toBe('kill-server');
    expect(new Set(decoyAsks.map((a) => a.socket)).size).toBe(2);
  });

  it('intrusion check: a stranger on another pair’s server is detached while the held ask still waits', async () => {
    const { socketDir, pairOf, realServer } = setup();
    const hostile = pairOf(1);
    const hostileSock = realServer(hostile);
    const victimSock = realServer(pairOf(2));
    let h: Held | undefined;
    const spy = new Spy(() => [{ socket: hostileSock, closed: h?.state.closed ?? 0 }], 30_000);
    const { servers, events } = serversWith(socketDir, spy, pairOf);
    // Managed in this order: the hostile pair's server first.
    expect(await servers.liveSocket(hostile)).toBe(hostileSock);
    expect(await servers.liveSocket(pairOf(2))).toBe(victimSock);
    // The hostile user swaps the server for a holder, and crowds its socket (so it is asked at once).
    execFileSync('tmux', ['-S', hostileSock, 'kill-server']);
    h = await holder(hostileSock);
    const crowd = net.connect(hostileSock).on('error', () => {});
    await waitUntil(() => h!.state.opened === 1, 'the crowd connected');
    const stranger = new PtyDriver('tmux', ['-S', victimSock, 'attach', '-t', 'main'], { PATH: process.env.PATH!, HOME: dir, TERM: 'xterm' });
    drivers.push(stranger);
    await waitUntil(() => stranger.out.length > 0, 'the stranger attached');

    const check = servers.checkIntruders();
    await waitUntil(() => events.some((e) => e.type === 'tmux.intrusion'), 'the stranger detached');
    // Both asks went out together, and the hostile one is still held (nothing closed yet).
    await waitUntil(() => h!.state.opened === 2, "the hostile pair's ask connected");
    expect(h.state.closed).toBe(0);
    h.release();
    crowd.destroy();
    expect(await check).toBe(1);
    expect(events.filter((e) => e.type === 'tmux.intrusion')).toMatchObject([{ socketDir: path.dirname(victimSock) }]);
    await stranger.waitExit(10_000);
  });

  it('reaper: a server that every lane was busy before gets a client meanwhile, and is not reaped', async () => {
    const { socketDir, pairOf, realServer } = setup();
    const hostile = [1, 2, 3, 4, 5, 6, 7, 8].map((u) => ({ pair: pairOf(u), sock: realServer(pairOf(u)) }));
    const victim = pairOf(9);
    const victimSock = realServer(victim);
    const clock = new FakeClock(0);
    const holds: Held[] = [];
    const spy = new Spy(() => hostile.map((x, i) => ({ socket: x.sock, closed: holds[i]?.state.closed ?? 0 })), 30_000);
    const { servers, events } = serversWith(socketDir, spy, pairOf, clock);
    for (const x of hostile) expect(await servers.liveSocket(x.pair)).toBe(x.sock);
    expect(await servers.liveSocket(victim)).toBe(victimSock);
    for (const x of hostile) {
      execFileSync('tmux', ['-S', x.sock, 'kill-server']);
      holds.push(await holder(x.sock));
    }
    clock.advance(60_000);

    const reaping = servers.reap();
    // Every lane is held; the victim's user logs in meanwhile (its client attaches).
    await waitUntil(() => holds.every((h) => h.state.opened === 1), 'every lane held');
    servers.attached(victim, 424242, null);
    for (const h of holds) h.release();
    expect(await reaping).toBe(8);
    expect(events.filter((e) => e.type === 'tmux.reaped').map((e) => e.socketDir)).not.toContain(victim.dir);
    expect(spy.calls.filter((c) => c.socket === victimSock && c.args[0] === 'kill-server')).toEqual([]);
  });

  it('reaper: another pair’s dormant server is reaped while the held kill waits', async () => {
    const { socketDir, pairOf, realServer } = setup();
    const hostile = pairOf(1);
    const hostileSock = realServer(hostile);
    const victimSock = realServer(pairOf(2));
    const clock = new FakeClock(0);
    let h: Held | undefined;
    const spy = new Spy(() => [{ socket: hostileSock, closed: h?.state.closed ?? 0 }], 30_000);
    const { servers, events } = serversWith(socketDir, spy, pairOf, clock);
    expect(await servers.liveSocket(hostile)).toBe(hostileSock);
    expect(await servers.liveSocket(pairOf(2))).toBe(victimSock);
    execFileSync('tmux', ['-S', hostileSock, 'kill-server']);
    h = await holder(hostileSock);
    clock.advance(60_000);

    const reaping = servers.reap();
    await waitUntil(() => events.some((e) => e.type === 'tmux.reaped'), 'the victim reaped');
    expect(events.filter((e) => e.type === 'tmux.reaped')).toMatchObject([{ socketDir: path.dirname(victimSock) }]);
    await waitUntil(() => h!.state.opened === 1, "the hostile pair's kill connected");
    expect(h.state.closed).toBe(0);
    h.release();
    expect(await reaping).toBe(2);
  });
});
