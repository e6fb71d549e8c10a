import { systemRandom, type Random } from '../platform/random.js';
import net from 'node:net';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { PreAuthAudit } from '../audit/preauth.js';
import { addressPrefix } from '../auth/address-prefix.js';

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
}

/** The pre-authentication life of one TCP connection, keyed by remote address and port. */
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
  key: string;
  prefix: string;
  socket: net.Socket;
  handshook: boolean;
}

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
 * Sockets that pass go to `hand(socket)`.
 */
export class FrontDoor {
  private readonly server: net.Server;
  private readonly perAddr = new Map<string, number>();
  /** Pending slots per network, oldest first (a Map keeps insertion order). */
  private readonly perPrefix = new Map<string, Map<string, Slot>>();
  private total = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly limits: FrontDoorLimits,
    private readonly deps: { clock: Clock; logger: Logger; preauth: Pick<PreAuthAudit, 'record'>; random?: Random },
    private readonly hand: (socket: net.Socket) => void,
  ) {
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.onSocket(s));
    this.server.on('error', (e) => deps.logger.error({ err: e }, 'listener error'));
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
    const addr = victim.key.slice(0, victim.key.lastIndexOf('|'));
    this.refuse(addr, 'evicted for a connection from a less busy network');
    this.release(victim);
    victim.socket.destroy();
    return true;
  }

  private release(slot: Slot): void {
    const addr = slot.key.slice(0, slot.key.lastIndexOf('|'));
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
    const addr = normaliseAddr(socket.remoteAddress);
    const port = socket.remotePort ?? 0;
    const prefix = addressPrefix(addr);
    const why = this.admit(addr, prefix);
    if (why) {
      this.refuse(addr, why);
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    const key = `${addr}|${port}`;
    const slot: Slot = { key, prefix, socket, handshook: false };
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
    let cancelHandshake: (() => void) | null = clock.setTimeout(expire('handshake timeout'), this.limits.handshakeTimeout);
    const cancelGrace = clock.setTimeout(expire('login grace time'), this.limits.loginGraceTime);
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
    this.hand(socket);
  }

  /** Audits a refusal into the per-address pre-authentication summary. */
  private refuse(addr: string, reason: string): void {
    this.deps.preauth.record(addr, `refused:${reason}`);
  }
}
