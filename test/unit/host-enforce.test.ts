import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { Host } from '../../src/host/host.js';
import { FakeClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import type { HostAccountRepo, PairAccountRecord } from '../../src/store/host-accounts.js';
import type { RoleRepo } from '../../src/store/roles.js';

const pair = (account: string, userId: number): PairAccountRecord & { cause: 'user-disabled' } => ({
  roleId: 1,
  userId,
  account,
  uid: 63000 + userId,
  home: `/h/${account}`,
  lockedAt: null,
  removedAt: null,
  cause: 'user-disabled',
});

/** A Host over a fake repository of pairs, with nothing else behind it. */
const hostOver = (repo: HostAccountRepo, more: { realTime?: FakeClock; cluster?: { nodeId: string; graceMs: number } } = {}) =>
  new Host({
    config: buildConfig({}, { file: null, baseDir: '/tmp' }),
    repo,
    roles: {} as RoleRepo,
    clock: new FakeClock(0),
    logger: silentLogger(),
    audit: { emit: () => {} } as never,
    ...more,
  });

describe('Host.enforce', () => {
  it('a pair that cannot be ended is logged and never holds up the others', async () => {
    const repo = { pairsToEnd: () => [pair('bad', 1), pair('good', 2)], removedUsersPairs: () => [] } as unknown as HostAccountRepo;
    const host = hostOver(repo);
    const ended: string[] = [];
    host.endPair = async (p) => {
      if (p.account === 'bad') throw new Error('usermod failed');
      ended.push(p.account);
    };
    await expect(host.enforce()).resolves.toBe(2);
    expect(ended).toEqual(['good']);
  });

  it("a pair whose end never finishes (its socket holds the server's kill) holds one lane, not the pairs after it", async () => {
    const repo = { pairsToEnd: () => [pair('held', 1), pair('next', 2), pair('last', 3)], removedUsersPairs: () => [] } as unknown as HostAccountRepo;
    const host = hostOver(repo);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const ended: string[] = [];
    host.endPair = async (p) => {
      if (p.account === 'held') await held;
      ended.push(p.account);
    };
    const enforcing = host.enforce();
    for (let spin = 0; spin < 20 && ended.length < 2; spin++) await new Promise((r) => setImmediate(r));
    expect(ended).toEqual(['next', 'last']);
    release();
    await expect(enforcing).resolves.toBe(3);
    expect(ended).toEqual(['next', 'last', 'held']);
  });

  it('kills and ends share the lanes: a held kill holds one, a later end or kill starts at once, one end per pair at a time', async () => {
    const due: PairAccountRecord[] = [];
    const repo = { pairsToEnd: () => [...due], removedUsersPairs: () => [] } as unknown as HostAccountRepo;
    const host = hostOver(repo);
    const gates = new Map<string, () => void>();
    const runs: string[] = [];
    const hold = (what: string) => {
      runs.push(what);
      return new Promise<void>((r) => gates.set(what, r));
    };
    // The hostile pair's kill: its socket holds the server's kill.
    (host as unknown as { killPairNow: (r: number, u: number) => Promise<void> }).killPairNow = async (r, u) => hold(`kill r${r}u${u}`);
    host.endPair = async (p) => hold(`end ${p.account}`);
    const spin = async (n: number) => {
      for (let i = 0; i < 50 && runs.length < n; i++) await new Promise((r) => setImmediate(r));
    };
    const k1 = host.killPair(1, 1);
    await spin(1);
    // A disable of another user, and another kill, asked while that kill is held: both start at once.
    due.push(pair('other', 2));
    const ending = host.enforce();
    const k3 = host.killPair(1, 3);
    await spin(3);
    expect(runs.slice(1).sort()).toEqual(['end other', 'kill r1u3']);
    // Asked again while it runs: the end joins (one per pair at a time); a kill runs once more after.
    const again = host.enforce();
    const k1again = host.killPair(1, 1);
    await spin(4);
    expect(runs).toHaveLength(3);
    gates.get('end other')!();
    await expect(ending).resolves.toBe(1);
    await expect(again).resolves.toBe(1);
    gates.get('kill r1u3')!();
    await k3;
    gates.get('kill r1u1')!();
    await k1;
    await spin(4);
    expect(runs).toHaveLength(4);
    expect(runs[3]).toBe('kill r1u1');
    gates.get('kill r1u1')!();
    await k1again;
  });

  it('in a cluster, a pair with live sessions at other nodes is left to them for the grace, then ended regardless', async () => {
    let live = 1;
    const repo = {
      pairsToEnd: () => [
        { ...pair('relayed', 1), liveElsewhere: live },
        { ...pair('local', 2), liveElsewhere: 0 },
      ],
      removedUsersPairs: () => [],
    } as unknown as HostAccountRepo;
    const realTime = new FakeClock(0);
    const host = hostOver(repo, { realTime, cluster: { nodeId: 'node-a', graceMs: 1000 } });
    const ended: string[] = [];
    host.endPair = async (p) => void ended.push(p.account);
    await host.enforce();
    expect(ended).toEqual(['local']);
    realTime.advance(999);
    await host.enforce();
    expect(ended).toEqual(['local', 'local']); // (the fake repo never records the lock)
    live = 0; // the other node ended its session: no need to wait longer
    await host.enforce();
    expect(ended).toEqual(['local', 'local', 'relayed', 'local']);
    live = 1;
    ended.length = 0;
    const again = new Host({ ...host['d'], realTime }); // a fresh host: first seen due now
    again.endPair = async (p) => void ended.push(p.account);
    await again.enforce();
    realTime.advance(1000);
    await again.enforce();
    expect(ended).toEqual(['local', 'relayed', 'local']); // the other node did not end it within the grace
  });
});
