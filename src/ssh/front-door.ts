import net from 'node:net';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { PreAuthAudit } from '../audit/preauth.js';

export interface FrontDoorLimits {
  maxStartups: number;
  maxStartupsPerAddress: number;
  loginGraceTime: number;
}

/** The pre-authentication life of one TCP connection, keyed by remote address and port. */
export interface Pending {
  addr: string;
  port: number;
  socket: net.Socket;
  /** Marks the connection authenticated: it stops counting against the limits and the grace timer. */
  authenticated(): void;
}

/** "::ffff:127.0.0.1" -> "127.0.0.1" so per-address limits and lockouts see one address. */
export function normaliseAddr(a: string | undefined): string {
  if (!a) return 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * Our own TCP listener in front of ssh2: TCP_NODELAY from the first byte (ssh2's own listener
 * sets it too late, costing ~170 ms a login), caps on unauthenticated connections per address
 * and in total, and the login grace timer. Sockets that pass go to `hand(socket, pending)`.
 */
export class FrontDoor {
  private readonly server: net.Server;
  private readonly perAddr = new Map<string, number>();
  private total = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly limits: FrontDoorLimits,
    private readonly deps: { clock: Clock; logger: Logger; preauth: Pick<PreAuthAudit, 'record'> },
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

  private onSocket(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('error', () => {}); // errors end the socket; ssh2 and the close handler clean up
    const addr = normaliseAddr(socket.remoteAddress);
    const port = socket.remotePort ?? 0;
    const n = this.perAddr.get(addr) ?? 0;
    if (this.total >= this.limits.maxStartups || n >= this.limits.maxStartupsPerAddress) {
      this.refuse(addr, this.total >= this.limits.maxStartups ? 'too many unauthenticated connections' : 'too many unauthenticated connections from this address');
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.total++;
    this.perAddr.set(addr, n + 1);
    const key = `${addr}|${port}`;
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      this.total--;
      const m = (this.perAddr.get(addr) ?? 1) - 1;
      if (m <= 0) this.perAddr.delete(addr);
      else this.perAddr.set(addr, m);
      this.pending.delete(key);
      cancelGrace();
    };
    const cancelGrace = this.deps.clock.setTimeout(() => {
      if (!counted) return;
      this.deps.logger.info({ addr }, 'login grace time expired');
      this.refuse(addr, 'login grace time expired');
      socket.destroy();
    }, this.limits.loginGraceTime);
    this.pending.set(key, { addr, port, socket, authenticated: uncount });
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
