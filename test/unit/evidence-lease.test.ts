import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { postgresEngine, sqliteEngine } from '../helpers/engines.js';
import type { Sql } from '../../src/store/sql.js';
import { EvidenceShippingRepo } from '../../src/store/evidence-shipping.js';
import { AuditEventRepo } from '../../src/store/audit-events.js';
import { GENESIS_HASH, rowHash } from '../../src/audit/log.js';
import { LeasedShipper, type Shipper } from '../../src/evidence/leased-shipper.js';
import type { ShipCursor, ShipLease } from '../../src/evidence/ports.js';
import type { ShipperState } from '../../src/evidence/syslog-tls.js';
import { FakeClock } from '../../src/platform/clock.js';

/**
 * The shipping lease on both engines: exactly one holder at a time, the cursor moves only for the
 * live holder, another node takes over once the lease lapses. The PostgreSQL half races nodes
 * with their own connection pools, as a cluster would.
 */

const up = { connected: true, unreachableSince: null, lastError: null };

/** A shipper that only records that it runs; `shipping` is every fake running now, across nodes. */
class FakeShipper implements Shipper {
  loaded = -1;
  constructor(
    readonly cursor: ShipCursor,
    private readonly shipping: Set<FakeShipper>,
    private readonly overlaps: string[],
  ) {}
  async start(): Promise<void> {
    this.loaded = await this.cursor.load();
    if (this.shipping.size > 0) this.overlaps.push(`started while ${this.shipping.size} other(s) shipped`);
    this.shipping.add(this);
  }
  notify(): void {}
  state(): ShipperState {
    const cursor = Math.max(this.loaded, 0);
    return {
      connected: true,
      cursor,
      sent: cursor,
      newest: cursor,
      lagEvents: 0,
      maxLagEvents: 5,
      overLag: false,
      lastError: null,
      lastErrorAt: null,
      lastShippedAt: null,
      nextAttemptAt: null,
      connections: 1,
      confirmed: 0,
    };
  }
  async close(): Promise<void> {
    this.shipping.delete(this);
  }
}

function repoLease(repo: EvidenceShippingRepo, down: { on: boolean }): ShipLease {
  const guard = () => {
    if (down.on) throw new Error('store unreachable');
  };
  return {
    acquire: async (h, now, ttl, s) => {
      guard();
      const r = await repo.lease('syslog', 'collector:6514', h, now, ttl, s);
      return { held: r.held, cursor: r.row.shipped_id, holder: r.row.holder };
    },
    saveCursor: async (h, id, now) => (guard(), repo.saveCursor('syslog', h, id, now)),
    release: async (h, now, s) => (guard(), repo.release('syslog', h, now, s)),
  };
}

for (const engine of [sqliteEngine(), postgresEngine('lease')]) {
  describe(`the syslog shipping lease on ${engine.name}`, () => {
    let sql: Sql;
    beforeEach(async () => {
      sql = await engine.fresh();
    }, 30_000);
    afterAll(() => engine.done(), 30_000);

    it('one holder at a time; the cursor moves only for the live holder; a lapsed lease is taken over, the cursor kept', async () => {
      const repo = new EvidenceShippingRepo(sql);
      const a = await repo.lease('syslog', 'c:6514', 'A', 1000, 100, null);
      expect(a).toMatchObject({ held: true, row: { shipped_id: 0, holder: 'A', lease_until: 1100, destination: 'c:6514' } });
      expect(await repo.lease('syslog', 'c:6514', 'B', 1099, 100, null)).toMatchObject({ held: false, row: { holder: 'A' } });
      expect(await repo.saveCursor('syslog', 'A', 7, 1050)).toBe(true);
      expect(await repo.saveCursor('syslog', 'B', 9, 1050)).toBe(false);
      const renewed = await repo.lease('syslog', 'c:6514', 'A', 1080, 100, { connected: false, unreachableSince: 1070, lastError: 'ECONNREFUSED' });
      expect(renewed.row).toMatchObject({ holder: 'A', lease_until: 1180, connected: 0, unreachable_since: 1070, last_error: 'ECONNREFUSED' });
      expect((await repo.lease('syslog', 'c:6514', 'B', 1179, 100, null)).held).toBe(false);

      // A stops renewing: at its lease's end B takes over from A's cursor, with a fresh status.
      const b = await repo.lease('syslog', 'c:6514', 'B', 1180, 100, null);
      expect(b).toMatchObject({ held: true, row: { holder: 'B', shipped_id: 7, lease_until: 1280, unreachable_since: null, last_error: null } });
      expect(await repo.saveCursor('syslog', 'A', 8, 1181)).toBe(false); // A wakes up late: refused
      expect((await repo.get('syslog'))!.shipped_id).toBe(7);

      // Released, the lease is free at once.
      await repo.release('syslog', 'B', 1200, up);
      expect(await repo.saveCursor('syslog', 'B', 8, 1201)).toBe(false);
      expect(await repo.lease('syslog', 'c:6514', 'A', 1201, 100, null)).toMatchObject({ held: true, row: { holder: 'A', shipped_id: 7 } });
    });

    it('the rows a shipper reads: the oldest after an id, in order', async () => {
      const events = new AuditEventRepo(sql);
      for (let i = 1; i <= 5; i++) {
        const data = `{"i":${i}}`;
        await events.append({ ts: i, type: 't', actor: 'x', data }, GENESIS_HASH, (id, prev) => rowHash(prev, { id, ts: i, type: 't', actor: 'x', data }));
      }
      expect((await events.after(1, 2)).map((r) => r.id)).toEqual([2, 3]);
      expect((await events.after(3, 10)).map((r) => r.data)).toEqual(['{"i":4}', '{"i":5}']);
      expect(await events.after(5, 10)).toEqual([]);
    });

    it('nodes racing for a free lease: exactly one gets it', async () => {
      const nodes = [sql, ...engine.more(3)];
      const repos = nodes.map((s) => new EvidenceShippingRepo(s));
      const tries = await Promise.all(Array.from({ length: 12 }, (_, i) => repos[i % repos.length]!.lease('syslog', 'c:6514', `N${i}`, 5000, 1000, null)));
      const winners = tries.filter((t) => t.held).map((t) => t.row.holder);
      expect(winners).toHaveLength(1);
      expect(tries.every((t) => t.row.holder === winners[0])).toBe(true);
      // Once it lapses, the same race over the existing row.
      const again = await Promise.all(Array.from({ length: 12 }, (_, i) => repos[i % repos.length]!.lease('syslog', 'c:6514', `M${i}`, 6000, 1000, null)));
      expect(again.filter((t) => t.held)).toHaveLength(1);
    }, 30_000);

    it('two gateways: one ships; when its store fails it stops before its lease lapses, and the other takes over from the saved cursor', async () => {
      const clock = new FakeClock(1_000_000);
      const shipping = new Set<FakeShipper>();
      const overlaps: string[] = [];
      const fakes: { A: FakeShipper[]; B: FakeShipper[] } = { A: [], B: [] };
      const downA = { on: false };
      const node = (name: 'A' | 'B', s: Sql, down: { on: boolean }) =>
        new LeasedShipper(
          { holder: name, maxLagEvents: 5, leaseTtlMs: 3000 },
          {
            lease: repoLease(new EvidenceShippingRepo(s), down),
            source: { newest: async () => 50 },
            clock,
            shipper: (cursor) => {
              const f = new FakeShipper(cursor, shipping, overlaps);
              fakes[name].push(f);
              return f;
            },
          },
        );
      const a = node('A', sql, downA);
      const b = node('B', engine.more(1)[0]!, { on: false });
      const step = async (ms: number) => {
        clock.advance(ms);
        await Promise.all([a.whenIdle(), b.whenIdle()]);
      };
      await a.start();
      await b.start();
      expect([...shipping]).toEqual(fakes.A);
      expect(a.state()).toMatchObject({ holding: true, holder: 'A' });
      await fakes.A[0]!.cursor.save(42);

      await step(1000);
      // B ships nothing but knows the cluster's lag: 50 rows, 42 confirmed, over a bound of 5.
      expect(b.state()).toMatchObject({ holding: false, holder: 'A', cursor: 42, lagEvents: 8, overLag: true, connected: false });
      const lastRenewal = clock.now();

      downA.on = true;
      while (fakes.B.length === 0) {
        await step(250);
        expect(clock.now() - lastRenewal).toBeLessThan(10_000);
      }
      // A stopped before its lease could lapse; B started only once it had.
      expect(overlaps).toEqual([]);
      expect(fakes.B[0]!.loaded).toBe(42);
      expect(clock.now()).toBeGreaterThanOrEqual(lastRenewal + 3000);
      expect(a.state()).toMatchObject({ holding: false });
      expect(b.state()).toMatchObject({ holding: true, holder: 'B' });

      // A's store comes back: the lease is B's now, so A stays off.
      downA.on = false;
      for (let i = 0; i < 8; i++) await step(500);
      expect(fakes.A).toHaveLength(1);
      expect([...shipping]).toEqual(fakes.B);
      expect(a.state()).toMatchObject({ holding: false, holder: 'B' });

      // B shuts down: it releases, and A takes over at its next attempt rather than a lease later.
      await b.close();
      await step(1000);
      expect(fakes.A).toHaveLength(2);
      expect(fakes.A[1]!.loaded).toBe(42);
      expect(overlaps).toEqual([]);
      await a.close();
      expect(shipping.size).toBe(0);
    }, 30_000);
  });
}
