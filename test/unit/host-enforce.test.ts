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

describe('Host.enforce', () => {
  it('a pair that cannot be ended is logged and never holds up the others', async () => {
    const repo = { pairsToEnd: () => [pair('bad', 1), pair('good', 2)], removedUsersPairs: () => [] } as unknown as HostAccountRepo;
    const host = new Host({
      config: buildConfig({}, { file: null, baseDir: '/tmp' }),
      repo,
      roles: {} as RoleRepo,
      clock: new FakeClock(0),
      logger: silentLogger(),
      audit: { emit: () => {} } as never,
    });
    const ended: string[] = [];
    host.endPair = async (p) => {
      if (p.account === 'bad') throw new Error('usermod failed');
      ended.push(p.account);
    };
    await expect(host.enforce()).resolves.toBe(2);
    expect(ended).toEqual(['good']);
  });
});
