import { systemRandom, type Random } from '../platform/random.js';
import net from 'node:net';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { PreAuthAudit } from '../audit/preauth.js';
import { addressPrefix } from '../auth/address-prefix.js';
import type { Metrics } from '../platform/metrics.js';
import { looksLikeProxyHeader, ProxyHeaderParser, type ProxyFault, type ProxyHeader } from './proxy-protocol.js';
import { localTrusted, TrustedProxies } from '../platform/cidr.js';

/** sshd's MaxStartups start:rate:full: random early drop from `start`, all refused at `full`. */
export interface Startups {
  start: number;
  /** Percent dropped at `start`, rising linearly to 100 at `full`. */
  rate: number;
  full: number;
}

export interface FrontDoorLimits {
  maxStartups: Startups;
  maxStartupsPerAddress: number;
  /** Per IPv4 /24 or IPv6 /64. */
  maxStartupsPerPrefix: number;
  /** From accept to the end of the first key exchange. */
  handshakeTimeout: number;
  loginGraceTime: number;
  /** Load balancers whose PROXY headers name the client (listen.proxyProtocol); absent: off. */
  proxyProtocol?: { trustedFrom: readonly string[] } | undefined;
}

/** Why a connection was refused before its PROXY header was accepted (metric label, audit reason). */
export type ProxyRefusal = ProxyFault | 'untrusted-address' | 'missing' | 'truncated' | 'timeout' | 'second-header' | 'too-many-waiting';

/**
 * The pre-authentication life of one TCP connection, found by the socket's remote address and
 * port. `addr` and `port` are the client's: the socket's own, or those a trusted PROXY header named.
 */
export interface Pending {
  addr: string;
  port: number;
  socket: net.Socket;
  /** The first key exchange finished: the short handshake timer stops, the login grace runs on. */
  handshakeDone(): void;
  /** Marks the connection authenticated: it stops counting against the limits and the grace timer. */
  authenticated(): void;
}

interface Slot {
  /** The socket's remote address and port (unique while it is open). */
  key: string;
  /** The client's address: what the caps count. */
  addr: string;
  prefix: string;
  socket: net.Socket;
  handshook: boolean;
}

/**
 * What a load balancer's health check (a PROXY LOCAL header) gets back before the close: an SSH
 * identification line with a comment, so a check can expect "SSH-2.0-" as it would of any SSH
 * server, and the answer shows that this process's event loop read the header and wrote back.
 */
export const HEALTH_ANSWER = 'SSH-2.0-tmuxgate health-check\r\n';

/** "::ffff:127.0.0.1" -> "127.0.0.1" so per-address limits and lockouts see one address. */
export function normaliseAddr(a: string | undefined): string {
  if (!a) return 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** sshd's early-drop probability for `total` pending connections, 0..1. */
export function dropProbability(s: Startups, total: number): number {
  if (total < s.start) return 0;
  if (total >= s.full) return 1;
  return ((100 - s.rate) * (total - s.start)) / (s.full - s.start) / 100 + s.rate / 100;
}

/**
 * Our own TCP listener in front of ssh2: TCP_NODELAY from the first byte (ssh2's own listener
 * sets it too late, costing ~170 ms a login), and the limits on connections that have not
 * authenticated yet, which is where a flood of idle or slow sockets must be stopped:
 * - caps per address, per network (IPv4 /24, IPv6 /64) and in total;
 * - sshd's MaxStartups start:rate:full random early drop, except for a network that has nothing
 *   pending (it cannot be the flood);
 * - when the total is full, a newcomer from a network holding fewer pending connections than the
 *   busiest one takes the place of that network's oldest pending connection (one that has not
 *   finished its key exchange, when there is one). So a flood from a few networks cannot keep a
 *   user on another network out, where sshd would refuse the user at random;
 * - a short timeout for the banner and key exchange, then the login grace time.
 * Behind a load balancer (proxyProtocol), only the trusted balancers may connect, and each
 * connection must start with a PROXY header: the client it names is the one the caps count
 * (see acceptProxied). Sockets that pass go to `hand(socket)`.
 */
export class FrontDoor {
  private readonly server: net.Server;
  private readonly perAddr = new Map<string, number>();
  /** Pending slots per network, oldest first (a Map keeps insertion order). */
  private readonly perPrefix = new Map<string, Map<string, Slot>>();
  private total = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly sockets = new Set<net.Socket>();
  private readonly trusted: TrustedProxies | null;
  /** Sockets from a trusted balancer whose PROXY header has not arrived (after it, the client it names is counted). */
  private awaitingHeader = 0;

  constructor(
    private readonly limits: FrontDoorLimits,
    private readonly deps: {
      clock: Clock;
      logger: Logger;
      preauth: Pick<PreAuthAudit, 'record'>;
      random?: Random;
      metrics?: Pick<Metrics, 'inc' | 'describe'>;
    },
    private readonly hand: (socket: net.Socket) => void,
  ) {
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.onSocket(s));
    this.server.on('error', (e) => deps.logger.error({ err: e }, 'listener error'));
    this.trusted = limits.proxyProtocol ? new TrustedProxies(limits.proxyProtocol.trustedFrom) : null;
    const local = limits.proxyProtocol ? localTrusted(limits.proxyProtocol.trustedFrom) : [];
    if (local.length) {
      deps.logger.warn(
        { trustedFrom: local },
        `listen.proxyProtocol.trustedFrom lists ${local.join(', ')}, reachable from this machine: every local account, users' shells included, ` +
          'can connect from there and name any client address (lockouts, limits, audit). Let only the balancer connect from it (a firewall ' +
          'owner match), or run the balancer on another machine',
      );
    }
    if (this.trusted && deps.metrics) {
      const m = deps.metrics;
      m.describe('proxy_protocol_connections_total', 'counter', "connections by PROXY header outcome (health-check: the balancer's own LOCAL connection)");
      m.describe('proxy_protocol_refusals_total', 'counter', 'connections refused before a PROXY header was accepted, by reason');
      for (const r of ['accepted', 'health-check', 'refused']) m.inc(`proxy_protocol_connections_total{result="${r}"}`, 0);
    }
  }

  /** Binds; resolves with the actual address (port 0 gives an ephemeral port). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      this.server.once('error', onErr);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onErr);
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** The pre-auth record for a remote address and port, while it is pending. */
  lookup(addr: string, port: number): Pending | undefined {
    return this.pending.get(`${addr}|${port}`);
  }

  /** Counts for metrics and tests. */
  stats(): { unauthenticated: number; open: number } {
    return { unauthenticated: this.total, open: this.sockets.size };
  }

  /** Stops accepting; existing sockets stay until their owners close them. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Destroys every socket still open (after sessions were told and drained). */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Why a newcomer from `addr` is refused, or null to admit it (evicting one slot if needed). */
  private admit(addr: string, prefix: string): string | null {
    const { maxStartups, maxStartupsPerAddress, maxStartupsPerPrefix } = this.limits;
    if ((this.perAddr.get(addr) ?? 0) >= maxStartupsPerAddress) return 'too many unauthenticated connections from this address';
    const mine = this.perPrefix.get(prefix)?.size ?? 0;
    if (mine >= maxStartupsPerPrefix) return 'too many unauthenticated connections from this network';
    if (this.total >= maxStartups.full) {
      return this.evictFromBusiest(mine) ? null : 'too many unauthenticated connections';
    }
    if (mine > 0 && (this.deps.random ?? systemRandom).float() < dropProbability(maxStartups, this.total)) return 'random early drop';
    return null;
  }

  /** Frees one slot held by the network with the most pending connections, if it holds more than `mine` + 1. */
  private evictFromBusiest(mine: number): boolean {
    let busiest: Map<string, Slot> | null = null;
    for (const slots of this.perPrefix.values()) if (!busiest || slots.size > busiest.size) busiest = slots;
    if (!busiest || busiest.size <= mine + 1) return false;
    let victim: Slot | null = null;
    for (const slot of busiest.values()) {
      if (!slot.handshook) {
        victim = slot;
        break;
      }
      victim ??= slot;
    }
    if (!victim) return false;
    this.refuse(victim.addr, 'evicted for a connection from a less busy network');
    this.release(victim);
    victim.socket.destroy();
    return true;
  }

  private release(slot: Slot): void {
    const addr = slot.addr;
    this.total--;
    const m = (this.perAddr.get(addr) ?? 1) - 1;
    if (m <= 0) this.perAddr.delete(addr);
    else this.perAddr.set(addr, m);
    const slots = this.perPrefix.get(slot.prefix);
    slots?.delete(slot.key);
    if (slots && !slots.size) this.perPrefix.delete(slot.prefix);
    this.pending.delete(slot.key);
  }

  private onSocket(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('error', () => {}); // errors end the socket; ssh2 and the close handler clean up
    const peer = normaliseAddr(socket.remoteAddress);
    const key = `${peer}|${socket.remotePort ?? 0}`;
    if (!this.trusted) {
      if (this.enter(socket, key, peer, socket.remotePort ?? 0, this.deps.clock.now())) this.hand(socket);
      return;
    }
    if (socket.remoteAddress === undefined) {
      // Reset before we could ask who it was (a balancer's plain L4 check closes at once): it
      // cannot be served, and there is no address to hold it against. A plain connect-and-close
      // is not counted either.
      socket.destroy();
      return;
    }
    if (!this.trusted.has(peer)) {
      this.refuseProxied(peer, 'untrusted-address');
      socket.destroy();
      return;
    }
    if (this.awaitingHeader >= this.limits.maxStartups.full) {
      this.refuseProxied(peer, 'too-many-waiting');
      socket.destroy();
      return;
    }
    this.acceptProxied(socket, peer, key);
  }

  /**
   * Reads the PROXY header off a trusted balancer's connection, then admits the client it names.
   * Refused (closed, counted, summarised under the balancer's address): bytes that are not a
   * valid header, a header family that names no TCP client, a header still missing after
   * handshakeTimeout, a connection that ends inside it, and a second header after the first
   * (which could only be a client trying to choose its own address). So the gateway waits for
   * the client's first byte before it speaks; SSH clients send their version line at once.
   * That wait is the client's, not the balancer's: from the header on, the connection counts
   * against the caps of the client it names (per address, per network, the total with its
   * eviction), as a direct connection does from accept. Counting it only in the balancer's
   * pool of connections awaiting a header let a client that connected through the balancer and
   * never spoke hold a place there for handshakeTimeout: a hundred such connections from one
   * address kept every other user out, over and over.
   * A LOCAL header (v2; v1 UNKNOWN) is the balancer's own health check: answered with
   * HEALTH_ANSWER and closed cleanly, not a failure (deploy/haproxy.cfg expects the answer).
   * A valid header followed by a close (a v1 balancer's check, or a client that left) is not a
   * failure either, as a plain connect-and-close is not.
   */
  private acceptProxied(socket: net.Socket, peer: string, key: string): void {
    const { clock, logger } = this.deps;
    const acceptedAt = clock.now();
    const parser = new ProxyHeaderParser();
    let header: Extract<ProxyHeader, { command: 'proxy' }> | null = null;
    let after: Buffer = Buffer.alloc(0);
    let waiting = true;
    let reading = true;
    this.awaitingHeader++;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    /** The header is in (or the connection is refused): it no longer waits in the balancer's pool. */
    const headerDone = (): void => {
      if (!waiting) return;
      waiting = false;
      this.awaitingHeader--;
      cancelTimer();
    };
    const stop = (): boolean => {
      if (!reading) return false;
      reading = false;
      headerDone();
      socket.off('data', onData);
      socket.off('close', onClose);
      return true;
    };
    const fail = (why: ProxyRefusal, detail?: string): void => {
      if (!stop()) return;
      logger.debug({ via: peer, reason: why, detail }, 'PROXY header refused');
      this.refuseProxied(peer, why);
      socket.destroy();
    };
    const cancelTimer = clock.setTimeout(() => fail('timeout'), this.limits.handshakeTimeout);
    const onData = (chunk: Buffer): void => {
      if (!header) {
        const step = parser.push(chunk);
        if (step.kind === 'more') return;
        if (step.kind === 'error') return fail(step.fault, step.detail);
        if (step.header.command === 'local') {
          stop();
          this.deps.metrics?.inc('proxy_protocol_connections_total{result="health-check"}');
          socket.write(HEALTH_ANSWER);
          socket.destroySoon(); // FIN, then gone even if the balancer never closes its side
          return;
        }
        header = step.header;
        after = step.rest;
        // From here on the client it names is known: its caps (and their handshake timer) hold
        // the connection, not the balancer's pool.
        headerDone();
        if (!this.enter(socket, key, normaliseAddr(header.source.address), header.source.port, acceptedAt)) return void stop();
      } else after = Buffer.concat([after, chunk]);
      if (!after.length) return; // the client has not spoken yet
      if (looksLikeProxyHeader(after)) return fail('second-header');
      stop();
      this.deps.metrics?.inc('proxy_protocol_connections_total{result="accepted"}');
      socket.pause();
      socket.unshift(after);
      this.hand(socket);
    };
    const onClose = (): void => {
      if (header) stop();
      else fail(parser.received ? 'truncated' : 'missing');
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  }

  /**
   * Counts `addr` (the client's) against the limits, with the handshake and login grace timers
   * running from `acceptedAt`; false when it is refused (and closed). The caller hands it on.
   */
  private enter(socket: net.Socket, key: string, addr: string, port: number, acceptedAt: number): boolean {
    const prefix = addressPrefix(addr);
    const why = this.admit(addr, prefix);
    if (why) {
      this.refuse(addr, why);
      socket.destroy();
      this.sockets.delete(socket);
      return false;
    }
    this.sockets.add(socket);
    const slot: Slot = { key, addr, prefix, socket, handshook: false };
    this.total++;
    this.perAddr.set(addr, (this.perAddr.get(addr) ?? 0) + 1);
    let slots = this.perPrefix.get(prefix);
    if (!slots) this.perPrefix.set(prefix, (slots = new Map()));
    slots.set(key, slot);
    let counted = true;
    const { clock, logger } = this.deps;
    const expire = (what: string) => () => {
      if (!counted) return;
      logger.info({ addr }, `${what} expired`);
      this.refuse(addr, `${what} expired`);
      socket.destroy();
    };
    // Both run from accept: time spent waiting for a PROXY header is part of the handshake's.
    const spent = clock.now() - acceptedAt;
    let cancelHandshake: (() => void) | null = clock.setTimeout(expire('handshake timeout'), this.limits.handshakeTimeout - spent);
    const cancelGrace = clock.setTimeout(expire('login grace time'), this.limits.loginGraceTime - spent);
    const uncount = () => {
      if (!counted) return;
      counted = false;
      cancelHandshake?.();
      cancelGrace();
      // An evicted slot was released already.
      if (this.perPrefix.get(prefix)?.get(key) === slot) this.release(slot);
    };
    this.pending.set(key, {
      addr,
      port,
      socket,
      handshakeDone: () => {
        slot.handshook = true;
        cancelHandshake?.();
        cancelHandshake = null;
      },
      authenticated: uncount,
    });
    socket.once('close', () => {
      uncount();
      this.sockets.delete(socket);
    });
    return true;
  }

  /** Audits a refusal into the per-address pre-authentication summary. */
  private refuse(addr: string, reason: string): void {
    this.deps.preauth.record(addr, `refused:${reason}`);
  }

  /** A refusal before a PROXY header was accepted: summarised under the connecting (balancer's) address, and counted. */
  private refuseProxied(peer: string, why: ProxyRefusal): void {
    this.refuse(peer, `proxy header ${why}`);
    this.deps.metrics?.inc('proxy_protocol_connections_total{result="refused"}');
    this.deps.metrics?.inc(`proxy_protocol_refusals_total{reason="${why}"}`);
  }
}
