import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { AuditRowSource, CollectorStatus, ShipCursor, ShipLease } from './ports.js';
import type { ShipperState, SyslogShipper } from './syslog-tls.js';

/** What a lease term runs: a SyslogShipper (a fake in tests). */
export type Shipper = Pick<SyslogShipper, 'start' | 'notify' | 'state' | 'close'>;

export interface LeasedShipperOptions {
  /** This node's name in the lease: unique among live processes (host, pid and a random part). */
  holder: string;
  maxLagEvents: number;
  /** How long a lease lasts unrenewed; renewed every third of it. 15 s by default. */
  leaseTtlMs?: number;
}

export interface LeasedShipperDeps {
  lease: ShipLease;
  /** The newest row, for the lag a node that does not ship reports. */
  source: Pick<AuditRowSource, 'newest'>;
  clock: Clock;
  logger?: Logger;
  /** Builds the shipper for one lease term, over a cursor that saves only while the lease holds. */
  shipper(cursor: ShipCursor): Shipper;
}

/** The shipper's state, from any node: the lag is the cluster's, whoever ships. */
export interface ShippingState extends ShipperState {
  /** This node holds the lease and ships. */
  holding: boolean;
  /** Who held the lease at the last attempt (null before the first). */
  holder: string | null;
  /** While this node ships: since when the collector has not been reachable. */
  unreachableSince: number | null;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Runs a shipper on at most one node of those sharing a store: the node that holds the lease in
 * the store ships, from the cursor stored beside the lease; the others only read the lag. The
 * lease is renewed every third of its lifetime with the holder's view of the collector; a node
 * that cannot renew stops shipping before its lease can lapse, and a node that finds the lease
 * lapsed (its holder died or hung) takes over from the stored cursor. A lease that changed hands
 * while its old holder still wrote costs duplicates at the collector, never a gap: the cursor
 * only moves for the live holder, so the new one resends what was not confirmed.
 */
export class LeasedShipper {
  private readonly ttl: number;
  private readonly every: number;
  private shipper: Shipper | null = null;
  private heldUntil = 0;
  private holderSeen: string | null = null;
  private storedCursor = 0;
  private newest = 0;
  private retiredConfirmed = 0;
  private unreachableSince: number | null = null;
  private lastError: string | null = null;
  private renewing: Promise<void> | null = null;
  private cancel: (() => void) | null = null;
  private closed: Promise<void> | null = null;

  constructor(
    private readonly o: LeasedShipperOptions,
    private readonly deps: LeasedShipperDeps,
  ) {
    this.ttl = o.leaseTtlMs ?? 15_000;
    this.every = Math.max(1, Math.floor(this.ttl / 3));
  }

  /** Tries the lease once (shipping at once if it is free), then keeps trying and renewing. */
  async start(): Promise<void> {
    if (this.cancel || this.closed) return;
    this.cancel = this.deps.clock.setInterval(() => void this.tick(), this.every);
    await this.tick();
  }

  /** Resolves once the lease attempt in flight (and the start or stop it led to) has finished. */
  async whenIdle(): Promise<void> {
    await this.renewing;
  }

  /** A row was appended: wakes the shipper if this node ships. */
  notify(): void {
    this.shipper?.notify();
  }

  state(): ShippingState {
    const s = this.shipper;
    if (s) {
      const st = s.state();
      if (st.connected) this.unreachableSince = null;
      else if (st.lastErrorAt !== null) this.unreachableSince ??= st.lastErrorAt;
      return { ...st, confirmed: this.retiredConfirmed + st.confirmed, holding: true, holder: this.o.holder, unreachableSince: this.unreachableSince };
    }
    const lagEvents = Math.max(0, this.newest - this.storedCursor);
    return {
      connected: false,
      cursor: this.storedCursor,
      sent: this.storedCursor,
      newest: this.newest,
      lagEvents,
      maxLagEvents: this.o.maxLagEvents,
      overLag: lagEvents > this.o.maxLagEvents,
      lastError: this.lastError,
      lastErrorAt: null,
      lastShippedAt: null,
      nextAttemptAt: null,
      connections: 0,
      confirmed: this.retiredConfirmed,
      holding: false,
      holder: this.holderSeen,
      unreachableSince: null,
    };
  }

  /** Stops shipping (the shipper's orderly close within `deadlineMs`) and releases the lease so another node takes over at once. */
  close(deadlineMs = 5000): Promise<void> {
    this.closed ??= (async () => {
      this.cancel?.();
      await this.renewing;
      const s = this.shipper;
      if (s) await s.close(deadlineMs);
      const status = this.status();
      if (s) this.retire(s);
      try {
        await this.deps.lease.release(this.o.holder, this.deps.clock.now(), status);
      } catch (e) {
        this.deps.logger?.warn({ evidence: 'syslog', err: message(e) }, 'shipping lease not released: another node takes over when it lapses');
      }
    })();
    return this.closed;
  }

  private status(): CollectorStatus {
    const st = this.state();
    return { connected: st.connected, unreachableSince: st.unreachableSince, lastError: st.lastError };
  }

  private tick(): Promise<void> {
    this.renewing ??= this.renew().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    const now = this.deps.clock.now();
    let r: Awaited<ReturnType<ShipLease['acquire']>>;
    try {
      r = await this.deps.lease.acquire(this.o.holder, now, this.ttl, this.shipper ? this.status() : null);
      this.lastError = null;
    } catch (e) {
      this.lastError = `shipping lease: ${message(e)}`;
      this.deps.logger?.error({ evidence: 'syslog', err: message(e) }, 'shipping lease could not be renewed');
      // Stop before the lease can lapse: another node may take over at its end.
      if (this.deps.clock.now() + this.every >= this.heldUntil) await this.drop('the lease could not be renewed');
      return;
    }
    this.storedCursor = r.cursor;
    this.holderSeen = r.holder;
    if (r.held) {
      this.heldUntil = now + this.ttl;
      if (!this.shipper && !this.closed) await this.begin(r.cursor);
    } else {
      await this.drop(`the lease is held by ${r.holder}`);
    }
    try {
      this.newest = await this.deps.source.newest();
    } catch (e) {
      this.lastError = message(e);
    }
  }

  private async begin(from: number): Promise<void> {
    const holder = this.o.holder;
    const shipper: Shipper = this.deps.shipper({
      load: async () => from,
      save: async (id) => {
        if (await this.deps.lease.saveCursor(holder, id, this.deps.clock.now())) {
          this.storedCursor = id;
          return;
        }
        if (this.shipper === shipper) void this.drop('the lease lapsed or was taken over');
        throw new Error('this node no longer holds the shipping lease');
      },
    });
    this.shipper = shipper;
    this.unreachableSince = null;
    this.deps.logger?.info({ evidence: 'syslog', holder, cursor: from }, 'shipping lease taken: this node ships the audit log');
    await shipper.start();
  }

  /** Ends this node's term: the connection drops at once; what it did not confirm the next holder resends. */
  private async drop(reason: string): Promise<void> {
    const s = this.shipper;
    if (!s) return;
    this.retire(s);
    this.deps.logger?.warn({ evidence: 'syslog', holder: this.o.holder, reason }, 'shipping lease lost: this node stops shipping');
    await s.close(0);
  }

  private retire(s: Shipper): void {
    if (this.shipper !== s) return;
    this.shipper = null;
    this.retiredConfirmed += s.state().confirmed;
    this.unreachableSince = null;
  }
}
