import type tls from 'node:tls';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { AuditRowSource, ShipCursor } from './ports.js';
import { frameAuditRow, type SyslogFormatOptions } from './syslog-format.js';
import { connectTls, type TlsTarget } from './tls-connect.js';

export interface SyslogShipperOptions extends TlsTarget {
  format?: SyslogFormatOptions;
  /** The lag bound: rows written locally but not yet confirmed sent (see state().overLag). */
  maxLagEvents: number;
  /** A write counts as delivered once its connection has stayed up this long afterwards. */
  confirmAfterMs?: number;
  pollIntervalMs?: number;
  /** Reconnection delays: initialMs, doubling per failure, at most maxMs. */
  backoff?: { initialMs: number; maxMs: number };
  connectTimeoutMs?: number;
  /** A write the socket has not flushed after this long ends the connection (the collector stalls). */
  writeTimeoutMs?: number;
  batchSize?: number;
}

export interface SyslogShipperDeps {
  source: AuditRowSource;
  cursor: ShipCursor;
  clock: Clock;
  logger?: Logger;
}

/** What metrics and the compliance report show. */
export interface ShipperState {
  connected: boolean;
  /** The last row confirmed sent. */
  cursor: number;
  /** The last row written on the current connection, confirmed or not. */
  sent: number;
  newest: number;
  lagEvents: number;
  maxLagEvents: number;
  /** The lag exceeds maxLagEvents: a `required` gateway fails closed. */
  overLag: boolean;
  lastError: string | null;
  lastErrorAt: number | null;
  /** When the cursor last moved (clock time). */
  lastShippedAt: number | null;
  /** While disconnected: when the next connection attempt is due (clock time). */
  nextAttemptAt: number | null;
  /** TLS sessions established so far. */
  connections: number;
  /** Rows confirmed sent since start (a counter; a row resent after a reconnect counts again only if it was not confirmed). */
  confirmed: number;
}

interface Conn {
  sock: tls.TLSSocket;
  /** We sent our close: the collector's end of stream then acknowledges everything before it. */
  closing: boolean;
  /** Called once when the connection is gone (pending writes reject through this). */
  onGone: Set<(e: Error) => void>;
}

const withDefaults = (o: SyslogShipperOptions) => ({
  confirmAfterMs: o.confirmAfterMs ?? 1000,
  pollIntervalMs: o.pollIntervalMs ?? 1000,
  backoff: o.backoff ?? { initialMs: 500, maxMs: 30_000 },
  connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
  writeTimeoutMs: o.writeTimeoutMs ?? 30_000,
  batchSize: o.batchSize ?? 256,
});

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Ships audit rows, in id order, as RFC 5425 frames over TLS to one collector.
 *
 * Delivery is at-least-once. TLS has no application acknowledgement, and a write the kernel
 * accepted is lost when the collector dies before reading it (measured with rsyslog: a write
 * just after its SIGKILL succeeded and never arrived). So the cursor moves past a batch only once
 * the connection it went out on has stayed up `confirmAfterMs` after the write, or when the
 * collector answered our orderly close (it has then read everything before it). After a loss the
 * shipper reconnects with back-off and resends from the cursor: rows at the reconnect boundary
 * may arrive twice; the collector de-duplicates by the `id` and `hash` SD parameters.
 *
 * Never throws into its caller and never blocks an audit append: notify() only wakes the pump.
 * The audit table is the buffer; the bound is a lag (state().overLag), see docs/evidence.md.
 */
export class SyslogShipper {
  private readonly t: ReturnType<typeof withDefaults>;
  private acked = 0;
  private written = 0;
  private newestId = 0;
  private conn: Conn | null = null;
  private pending: { id: number; at: number }[] = [];
  private failures = 0;
  private connections = 0;
  private confirmed = 0;
  private retryAt = 0;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private lastShippedAt: number | null = null;
  private started = false;
  private stopped = false;
  private pumping: Promise<void> | null = null;
  private again = false;
  private saving: Promise<void> | null = null;
  private saveAgain = false;
  private closed: Promise<void> | null = null;
  private cancelPoll: (() => void) | null = null;
  private cancelRetry: (() => void) | null = null;
  private cancelConfirm: (() => void) | null = null;

  constructor(
    private readonly opts: SyslogShipperOptions,
    private readonly deps: SyslogShipperDeps,
  ) {
    this.t = withDefaults(opts);
  }

  /** Loads the cursor, starts polling and connects. An unreadable cursor means resending from the first row. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      this.acked = this.written = await this.deps.cursor.load();
    } catch (e) {
      this.fail(`cursor unreadable, resending from the first row: ${message(e)}`, false);
    }
    this.cancelPoll = this.deps.clock.setInterval(() => this.notify(), this.t.pollIntervalMs);
    this.notify();
  }

  /** A row was appended: ship it soon. Cheap, synchronous, never throws. */
  notify(): void {
    if (!this.started || this.stopped) return;
    void this.pump();
  }

  /** Rows written locally but not yet confirmed sent. */
  lag(): number {
    return Math.max(0, this.newestId - this.acked);
  }

  state(): ShipperState {
    const lagEvents = this.lag();
    return {
      connected: this.conn !== null,
      cursor: this.acked,
      sent: this.written,
      newest: this.newestId,
      lagEvents,
      maxLagEvents: this.opts.maxLagEvents,
      overLag: lagEvents > this.opts.maxLagEvents,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      lastShippedAt: this.lastShippedAt,
      nextAttemptAt: this.conn || this.stopped ? null : Math.max(this.retryAt, this.deps.clock.now()),
      connections: this.connections,
      confirmed: this.confirmed,
    };
  }

  /**
   * Stops: sends what it can on a live connection within `deadlineMs` (clock time), closes it in
   * order so the collector's answer confirms the tail, saves the cursor. Never reconnects.
   * A deadline of 0 drops the connection at once (what is unconfirmed is resent next start).
   */
  close(deadlineMs = 5000): Promise<void> {
    if (this.closed) return this.closed;
    this.stopped = true;
    this.cancelPoll?.();
    this.cancelRetry?.();
    this.closed = (async () => {
      if (deadlineMs > 0) {
        let cancel = (): void => {};
        const deadline = new Promise<void>((r) => (cancel = this.deps.clock.setTimeout(r, deadlineMs)));
        await Promise.race([this.drain(), deadline]);
        cancel();
      }
      if (this.conn) this.lost(this.conn, null);
      while (this.saving) await this.saving;
    })();
    return this.closed;
  }

  private async drain(): Promise<void> {
    await this.pumping;
    const conn = this.conn;
    if (!conn) return;
    try {
      await this.refreshNewest();
      await this.sendBacklog();
    } catch (e) {
      this.fail(e);
    }
    if (this.conn !== conn) return;
    conn.closing = true;
    await new Promise<void>((resolve) => {
      conn.onGone.add(() => resolve());
      conn.sock.end();
    });
  }

  private pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      do {
        this.again = false;
        try {
          await this.refreshNewest();
          this.confirm();
          if (!this.conn) await this.connect();
          if (this.conn) await this.sendBacklog();
        } catch (e) {
          // Connection failures schedule their own retry (lost, connect); the poll retries the rest.
          this.fail(e, false);
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.pumping = null));
    return this.pumping;
  }

  /**
   * Reads the newest id. A log that ends before the cursor lost rows (deleted, or the database
   * replaced): the cursor goes back so every row that exists is shipped, and the collector holds
   * two versions of those ids, which the off-box verification reports.
   */
  private async refreshNewest(): Promise<void> {
    const newest = await this.deps.source.newest();
    if (newest < this.acked) {
      const detail = `the audit log ends at row ${newest} but row ${this.acked} was already shipped: rows were removed locally`;
      this.deps.logger?.error({ evidence: 'syslog', newest, cursor: this.acked }, detail);
      this.fail(detail, false);
      this.pending = [];
      this.acked = this.written = newest;
      this.persist();
    }
    this.newestId = newest;
  }

  /** Writes every row after `written` on the current connection, batch by batch, in id order. */
  private async sendBacklog(): Promise<void> {
    for (;;) {
      const conn = this.conn;
      if (!conn || conn.closing) return;
      const rows = (await this.deps.source.after(this.written, this.t.batchSize)).filter((r, i, a) => r.id > this.written && (i === 0 || r.id > a[i - 1]!.id));
      if (rows.length === 0 || this.conn !== conn) return;
      const last = rows[rows.length - 1]!.id;
      await this.write(conn, Buffer.concat(rows.map((r) => frameAuditRow(r, this.opts.format))));
      if (this.conn !== conn) return;
      this.written = last;
      this.newestId = Math.max(this.newestId, last);
      this.pending.push({ id: last, at: this.deps.clock.now() });
      this.armConfirm();
    }
  }

  /** Resolves once `buf` is flushed to the kernel; rejects when the connection goes first or stalls. */
  private write(conn: Conn, buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let cancel = (): void => {};
      const settle = (e?: Error | null): void => {
        if (settled) return;
        settled = true;
        cancel();
        conn.onGone.delete(settle);
        if (e) reject(e);
        else resolve();
      };
      if (this.conn !== conn) return settle(new Error('connection closed'));
      cancel = this.deps.clock.setTimeout(() => {
        const e = new Error(`collector did not take ${buf.length} bytes in ${this.t.writeTimeoutMs} ms`);
        settle(e);
        this.lost(conn, e);
      }, this.t.writeTimeoutMs);
      conn.onGone.add(settle);
      conn.sock.write(buf, (err) => {
        if (err) this.lost(conn, err);
        settle(err);
      });
    });
  }

  /** Moves the cursor over every batch whose connection has stayed up confirmAfterMs since. */
  private confirm(): void {
    const now = this.deps.clock.now();
    let upTo = this.acked;
    while (this.pending.length > 0 && this.pending[0]!.at + this.t.confirmAfterMs <= now) upTo = this.pending.shift()!.id;
    if (upTo > this.acked) this.advance(upTo);
    this.armConfirm();
  }

  private armConfirm(): void {
    if (this.cancelConfirm || this.pending.length === 0 || this.stopped) return;
    const due = this.pending[0]!.at + this.t.confirmAfterMs - this.deps.clock.now();
    this.cancelConfirm = this.deps.clock.setTimeout(
      () => {
        this.cancelConfirm = null;
        this.confirm();
      },
      Math.max(0, due),
    );
  }

  private advance(id: number): void {
    this.confirmed += Math.max(0, id - this.acked);
    this.acked = id;
    this.lastShippedAt = this.deps.clock.now();
    this.persist();
  }

  /** Saves the cursor, one save at a time; a failed save is retried with the next advance. */
  private persist(): void {
    if (this.saving) {
      this.saveAgain = true;
      return;
    }
    const id = this.acked;
    this.saving = this.deps.cursor
      .save(id)
      .catch((e: unknown) => this.fail(`cursor not saved: ${message(e)}`, false))
      .finally(() => {
        this.saving = null;
        if (this.saveAgain) {
          this.saveAgain = false;
          this.persist();
        }
      });
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.deps.clock.now() < this.retryAt) return;
    const { host, port } = this.opts;
    let s: tls.TLSSocket;
    try {
      s = await connectTls(this.opts, this.deps.clock, this.t.connectTimeoutMs);
    } catch (e) {
      // Logged once per outage; state() has every attempt's error.
      if (this.failures === 0) this.deps.logger?.warn({ evidence: 'syslog', host, port, err: message(e) }, 'syslog collector unreachable');
      this.fail(new Error(`${host}:${port}: ${message(e)}`));
      return;
    }
    const conn: Conn = { sock: s, closing: false, onGone: new Set() };
    s.setNoDelay(true);
    s.setKeepAlive(true, 15_000);
    // The collector sends nothing; reading keeps us seeing its end of stream at once.
    s.on('data', () => {});
    s.on('error', (e) => this.lost(conn, e));
    s.on('end', () => (conn.closing ? this.lost(conn, null, true) : this.lost(conn, new Error('collector closed the connection'))));
    s.on('close', () => this.lost(conn, new Error('connection closed')));
    this.conn = conn;
    this.written = this.acked;
    this.failures = 0;
    this.connections++;
    this.deps.logger?.info({ evidence: 'syslog', host, port, protocol: s.getProtocol() }, 'syslog collector connected');
  }

  /**
   * The connection is gone (`e` null: we ended it). Unconfirmed batches are resent from the
   * cursor on the next connection, unless the collector `answered` our orderly close: it has
   * then read everything written before it.
   */
  private lost(conn: Conn, e: Error | null, answered = false): void {
    if (this.conn !== conn) return;
    this.conn = null;
    if (answered && this.written > this.acked) this.advance(this.written);
    this.pending = [];
    this.cancelConfirm?.();
    this.cancelConfirm = null;
    this.written = this.acked;
    conn.sock.destroy();
    const err = e ?? new Error('connection closed');
    for (const gone of conn.onGone) gone(err);
    conn.onGone.clear();
    if (e) {
      this.deps.logger?.warn({ evidence: 'syslog', err: e.message, lag: this.lag() }, 'syslog collector connection lost');
      this.fail(e);
    }
  }

  /** Records an error and, unless told otherwise, schedules the next connection attempt with back-off. */
  private fail(e: unknown, retry = true): void {
    this.lastError = message(e);
    this.lastErrorAt = this.deps.clock.now();
    if (!retry || this.stopped) return;
    this.failures++;
    const delay = Math.min(this.t.backoff.maxMs, this.t.backoff.initialMs * 2 ** Math.min(this.failures - 1, 30));
    this.retryAt = this.deps.clock.now() + delay;
    this.cancelRetry?.();
    this.cancelRetry = this.deps.clock.setTimeout(() => {
      // The timer is the retry, even if it fires a millisecond before now() reaches retryAt.
      this.cancelRetry = null;
      this.retryAt = 0;
      this.notify();
    }, delay);
  }
}
