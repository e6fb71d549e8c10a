import { randomInt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import ssh2 from 'ssh2';
import { z } from 'zod';
import { TgError } from '../errors.js';
import type { Logger } from '../platform/logger.js';
import type { Pty } from '../platform/pty.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { effectiveAlgorithms, ssh2Algorithms } from '../crypto/algorithms.js';

/**
 * The node-to-node link: when a user's login lands on one node and their (role, user) tmux
 * server lives on another, the receiving node (which authenticated them and records the
 * session) opens a channel to the owning node, and the owning node attaches a tmux client for
 * that pair and pipes it through. To the receiving node's session code the channel is just a Pty.
 *
 * The link is SSH (ssh2 on both ends): the server proves the cluster's shared host key and the
 * client proves the cluster's node key, a key pair every node reads from its keys directory and
 * that no user ever holds. Nothing else is accepted: no password, no other key, no other user
 * name, one exec request per channel, no port forwarding, no agent, no subsystems. Both ends
 * offer only the gateway's algorithm allow-list.
 *
 * Before authentication a link connection is a stranger's: the link port is reachable from every
 * node, and so from every user's shell on every node. Nodes connect from a port below 1024, which
 * on a node only root may bind, so with `rootPortsOnly` (the default) a connection from any other
 * port is closed at accept, before it holds anything: a user's flood never reaches the handshake.
 * What is left (a stranger who is root on some other machine that can reach the port) must
 * authenticate within `authTimeoutMs`, and at most `maxUnauthenticated` may be waiting; a newcomer
 * over that closes the oldest one (a node authenticates within milliseconds of its connect, so a
 * flood would have to outpace that to keep a node out, and can no longer exhaust the process's
 * descriptors).
 */

/** Ports a node's link connections come from: below 1024, where only root (on a node) may bind. */
export const LINK_SOURCE_PORTS = { min: 600, max: 1023 } as const;

const PORT_START = '/proc/sys/net/ipv4/ip_unprivileged_port_start';

/**
 * Refuses (TG_ERR_LINK_PORTS) where any account may bind a port the link trusts as root's:
 * containers often start with net.ipv4.ip_unprivileged_port_start = 0. Not Linux (no such file):
 * ports below 1024 are root's.
 */
export function checkRootPorts(read: () => string = () => readFileSync(PORT_START, 'utf8')): void {
  let text: string;
  try {
    text = read();
  } catch {
    return;
  }
  const start = Number(text.trim());
  if (Number.isInteger(start) && start > LINK_SOURCE_PORTS.max) return;
  throw new TgError(
    'TG_ERR_LINK_PORTS',
    `cluster.linkSourcePorts is root, but any account here may bind ports from ${text.trim()} (net.ipv4.ip_unprivileged_port_start): ` +
      'set it to 1024, or set linkSourcePorts: any and firewall the link port (docs/cluster.md)',
  );
}

/** The gateway's allow-list in ssh2's terms: the link offers nothing the front door would not. */
const LINK_ALGORITHMS = ssh2Algorithms(effectiveAlgorithms({}));

/** The user name a node presents on the link. */
export const LINK_USER = 'tmuxgate-node';
const EXEC_PREFIX = 'tmuxgate-relay ';

/** What the receiving node asks the owning node to attach. */
export const RelayRequestSchema = z
  .object({
    sessionId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
    userId: z.number().int().positive(),
    roleId: z.number().int().positive(),
    /** The node that asks (it holds the session row and the recording). */
    fromNode: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    term: z.string().regex(/^[A-Za-z0-9_.+-]{1,64}$/),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
  })
  .strict();
export type RelayRequest = z.infer<typeof RelayRequestSchema>;

export interface LinkServerOptions {
  /** The cluster's host key (private, as read from the keys directory). */
  hostKey: Buffer;
  /** The cluster's node key (public, OpenSSH format): the one client key accepted. */
  nodePublicKey: Buffer | string;
  /**
   * Starts a local tmux client for the request's pair, after checking that the store agrees
   * (a live session row from that node for that pair); throws to refuse.
   */
  attach(req: RelayRequest): Promise<Pty>;
  logger: Logger;
  algorithms?: ssh2.Algorithms;
  /** From accept to authentication, at most (ms); 10 s by default. */
  authTimeoutMs?: number;
  /** Connections not authenticated yet, at most; a newcomer over it closes the oldest. 64 by default. */
  maxUnauthenticated?: number;
  /** Runs the authentication deadline (a test's fake clock); the system clock by default. */
  clock?: Clock;
  /**
   * Accept only connections from a port below 1024 (a node's link client binds one; a user on a
   * node cannot). True by default; false where address translation between nodes rewrites ports.
   */
  rootPortsOnly?: boolean;
}

function checkOptions<T extends object>(what: string, o: T, keys: (keyof T)[]): T {
  for (const k of keys) if (o[k] === undefined || o[k] === null) throw new Error(`${what}: missing ${String(k)}`);
  return o;
}

function parsePublic(key: Buffer | string): ssh2.ParsedKey {
  const k = ssh2.utils.parseKey(key);
  if (k instanceof Error) throw new Error(`cluster node key: ${k.message}`);
  return Array.isArray(k) ? k[0]! : k;
}

/** The owning side: accepts relay channels from other nodes. */
export class LinkServer {
  private readonly server: ssh2.Server;
  private readonly listener: net.Server;
  private readonly clients = new Set<ssh2.Connection>();
  private readonly nodeKey: ssh2.ParsedKey;
  private readonly nodeBlob: Buffer;
  /** Connections not authenticated yet, oldest first, by remote address and port: their deadline's cancel. */
  private readonly unauthenticated = new Map<string, { socket: net.Socket; cancel: () => void }>();
  private readonly authTimeoutMs: number;
  private readonly maxUnauthenticated: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly rootPortsOnly: boolean;
  private refusedPorts = 0;

  constructor(opts: LinkServerOptions) {
    const o = checkOptions('link server', opts, ['hostKey', 'nodePublicKey', 'attach', 'logger']);
    this.nodeKey = parsePublic(o.nodePublicKey);
    this.nodeBlob = this.nodeKey.getPublicSSH();
    this.authTimeoutMs = o.authTimeoutMs ?? 10_000;
    this.maxUnauthenticated = o.maxUnauthenticated ?? 64;
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger;
    this.rootPortsOnly = o.rootPortsOnly ?? true;
    this.server = new ssh2.Server(
      {
        hostKeys: [o.hostKey],
        ident: 'tmuxgate-link',
        algorithms: o.algorithms ?? LINK_ALGORITHMS,
        // A peer that vanished without a FIN (its machine lost) is noticed, and its relays' tmux clients end.
        keepaliveInterval: 5000,
        keepaliveCountMax: 2,
      } as ssh2.ServerConfig,
      (client, info) => this.onClient(client, info, o),
    );
    this.server.on('error', (e: Error) => o.logger.warn({ err: e.message }, 'link server error'));
    // Our own listener: every connection is counted and timed from accept, before ssh2 sees a byte.
    this.listener = net.createServer({ noDelay: true }, (socket) => this.onSocket(socket));
    this.listener.on('error', (e: Error) => o.logger.warn({ err: e.message }, 'link listener error'));
  }

  /** Connections held open that have not authenticated (for tests and metrics). */
  pending(): number {
    return this.unauthenticated.size;
  }

  /** Connections closed at accept because they came from a port a user may bind (for metrics). */
  refused(): number {
    return this.refusedPorts;
  }

  private onSocket(socket: net.Socket): void {
    socket.on('error', () => {}); // errors end the socket; ssh2 and the close handler clean up
    if (socket.remoteAddress === undefined || socket.remotePort === undefined) return void socket.destroy();
    if (this.rootPortsOnly && socket.remotePort >= 1024) {
      // Not a node: a user's program (or a node configured otherwise). Counted; logged once per
      // thousand (a line per connection would let a user fill the log).
      if (this.refusedPorts++ % 1000 === 0) {
        this.logger.warn(
          { from: socket.remoteAddress, port: socket.remotePort, refused: this.refusedPorts },
          'link: refused a connection from a port any user may bind',
        );
      }
      return void socket.destroy();
    }
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    if (this.unauthenticated.size >= this.maxUnauthenticated) {
      const [oldKey, oldest] = this.unauthenticated.entries().next().value!;
      this.unauthenticated.delete(oldKey);
      oldest.cancel();
      oldest.socket.destroy();
      this.logger.debug({ from: oldKey }, 'link: unauthenticated connection closed for a newer one');
    }
    const cancel = this.clock.setTimeout(() => {
      if (this.unauthenticated.get(key)?.socket !== socket) return;
      this.unauthenticated.delete(key);
      this.logger.debug({ from: key }, 'link: connection did not authenticate in time');
      socket.destroy();
    }, this.authTimeoutMs);
    this.unauthenticated.set(key, { socket, cancel });
    socket.once('close', () => this.authenticated(key, socket));
    this.server.injectSocket(socket);
  }

  /** The connection authenticated (or closed): it no longer counts, and its deadline is off. */
  private authenticated(key: string, socket: net.Socket): void {
    const slot = this.unauthenticated.get(key);
    if (slot?.socket !== socket) return;
    this.unauthenticated.delete(key);
    slot.cancel();
  }

  private onClient(client: ssh2.Connection, info: ssh2.ClientInfo, o: LinkServerOptions): void {
    // Keystrokes and their echo cross the link as small packets: without this, Nagle holds a
    // packet while an earlier one is unacknowledged, and the peer delays its ACK (up to 40 ms).
    // (ssh2's server connection has setNoDelay, as its client does; its types leave it out.)
    (client as ssh2.Connection & Pick<ssh2.Client, 'setNoDelay'>).setNoDelay(true);
    const key = `${info.ip}|${info.port}`;
    const slot = this.unauthenticated.get(key);
    this.clients.add(client);
    client.on('close', () => this.clients.delete(client));
    client.on('error', (e: Error) => o.logger.warn({ err: e.message }, 'link connection error'));
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== LINK_USER) return ctx.reject(['publickey']);
      const blob = ctx.key.data;
      if (blob.length !== this.nodeBlob.length || !timingSafeEqual(blob, this.nodeBlob)) return ctx.reject(['publickey']);
      if (!ctx.signature || !ctx.blob) return ctx.accept(); // a query: this key would do
      if (this.nodeKey.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => {
      if (slot) this.authenticated(key, slot.socket);
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        let size = { term: 'xterm', cols: 80, rows: 24 };
        let pty: Pty | null = null;
        session.on('pty', (accept, _reject, info) => {
          size = { term: info.term, cols: info.cols, rows: info.rows };
          accept?.();
        });
        session.on('window-change', (accept, _reject, info) => {
          accept?.();
          pty?.resize(info.cols, info.rows);
        });
        session.on('exec', (accept, reject, info) => {
          if (pty || !info.command.startsWith(EXEC_PREFIX)) return reject?.();
          let req: RelayRequest;
          try {
            req = RelayRequestSchema.parse({ ...JSON.parse(info.command.slice(EXEC_PREFIX.length)), ...size });
          } catch {
            return reject?.();
          }
          o.attach(req).then(
            (p) => {
              pty = p;
              const channel = accept();
              pipe(p, channel);
            },
            (e: Error) => {
              o.logger.warn({ err: e.message, sessionId: req.sessionId, from: req.fromNode }, 'relay attach refused');
              reject?.();
            },
          );
        });
        for (const ev of ['shell', 'subsystem', 'env', 'auth-agent', 'x11', 'signal']) {
          session.on(ev as 'shell', (_a: unknown, reject?: () => void) => reject?.());
        }
      });
      client.on('request', (_a, reject) => reject?.()); // no port forwarding of any kind
      client.on('tcpip', (_a, reject) => reject());
    });
  }

  /** Listens on host:port (0: any free port); resolves to the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        resolve((this.listener.address() as net.AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.end();
    for (const { socket, cancel } of this.unauthenticated.values()) {
      cancel();
      socket.destroy();
    }
    this.unauthenticated.clear();
    await new Promise<void>((r) => this.listener.close(() => r()));
  }
}

/** Owning side: the local pty and the channel feed each other until either ends. */
function pipe(pty: Pty, channel: ssh2.ServerChannel): void {
  let done = false;
  pty.onData((d) => {
    if (!channel.write(d)) {
      pty.pause();
      channel.once('drain', () => pty.resume());
    }
  });
  // The user's input, held at the receiving node (and so at the user's client) while the pty's
  // program does not read it: the paused channel sends no window adjust (ShellSession does the same).
  let held = false;
  channel.on('data', (d: Buffer) => {
    if (pty.write(d) !== false || held || !pty.onceWritable) return;
    held = true;
    channel.pause();
    pty.onceWritable(() => {
      held = false;
      if (!done) channel.resume();
    });
  });
  pty.onExit((code) => {
    done = true;
    try {
      channel.exit(code);
    } catch {
      // the channel may be gone already
    }
    channel.end();
  });
  // The receiving node hung up (its user left, or it ended the session): detach this client.
  channel.on('close', () => {
    if (!done) pty.kill('SIGHUP');
  });
}

export interface LinkClientOptions {
  /** The cluster's node key (private). */
  nodePrivateKey: Buffer;
  /** The cluster's host key (public, OpenSSH format): the one host key a peer may present. */
  hostPublicKey: Buffer | string;
  logger: Logger;
  /** Connection (TCP + SSH handshake) deadline in ms. */
  connectTimeoutMs?: number;
  algorithms?: ssh2.Algorithms;
  /** Connect from a port below 1024 (what a peer with rootPortsOnly accepts; needs root). True by default. */
  rootPort?: boolean;
}

/** The receiving side: opens relay channels to other nodes, one SSH connection per peer. */
export class LinkClient {
  private readonly peers = new Map<string, Promise<ssh2.Client>>();
  private readonly hostBlob: Buffer;

  constructor(private readonly opts: LinkClientOptions) {
    checkOptions('link client', opts, ['nodePrivateKey', 'hostPublicKey', 'logger']);
    this.hostBlob = parsePublic(opts.hostPublicKey).getPublicSSH();
  }

  private connection(address: string): Promise<ssh2.Client> {
    const known = this.peers.get(address);
    if (known) return known;
    const [host, portText] = splitAddress(address);
    const timeoutMs = this.opts.connectTimeoutMs ?? 5000;
    const made = (this.opts.rootPort === false ? Promise.resolve(undefined) : connectFromRootPort(host, Number(portText), timeoutMs)).then((sock) =>
      this.handshake(address, host, Number(portText), timeoutMs, sock),
    );
    made.catch(() => this.peers.get(address) === made && this.peers.delete(address));
    this.peers.set(address, made);
    return made;
  }

  private handshake(address: string, host: string, port: number, timeoutMs: number, sock: net.Socket | undefined): Promise<ssh2.Client> {
    return new Promise<ssh2.Client>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('ready', () => resolve(c));
      c.on('error', (e: Error) => {
        this.peers.delete(address);
        reject(e);
      });
      c.on('close', () => this.peers.delete(address));
      c.connect({
        ...(sock ? { sock } : { host, port }),
        username: LINK_USER,
        privateKey: this.opts.nodePrivateKey,
        readyTimeout: timeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 2,
        hostVerifier: (key: Buffer) => key.length === this.hostBlob.length && timingSafeEqual(key, this.hostBlob),
        algorithms: this.opts.algorithms ?? LINK_ALGORITHMS,
      });
      // As on the server's end (see LinkServer): every packet goes out at once. The socket
      // exists from connect() on and applies it once connected.
      c.setNoDelay(true);
    });
  }

  /** Opens a relay to the owning node at `address` (host:port): the remote tmux client, as a Pty. */
  async open(address: string, req: RelayRequest): Promise<Pty> {
    const c = await this.connection(address);
    const { term, cols, rows, ...rest } = RelayRequestSchema.parse(req);
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      c.exec(EXEC_PREFIX + JSON.stringify(rest), { pty: { term, cols, rows, width: 0, height: 0, modes: {} } }, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    return new RemotePty(channel);
  }

  close(): void {
    for (const p of this.peers.values())
      void p.then(
        (c) => c.end(),
        () => {},
      );
    this.peers.clear();
  }
}

/**
 * A TCP connection to host:port from a free port in LINK_SOURCE_PORTS (a random one; another on
 * EADDRINUSE, as a port may be held by another connection or wait in TIME_WAIT).
 */
export async function connectFromRootPort(host: string, port: number, timeoutMs: number, tries = 32): Promise<net.Socket> {
  const { min, max } = LINK_SOURCE_PORTS;
  for (let i = 0; ; i++) {
    const localPort = min + randomInt(max - min + 1);
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect({ host, port, localPort, noDelay: true });
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error(`link: no TCP connection to ${host}:${port} within ${timeoutMs} ms`));
        }, timeoutMs);
        const failed = (e: Error) => {
          clearTimeout(timer);
          reject(e);
        };
        sock.once('error', failed);
        sock.once('connect', () => {
          clearTimeout(timer);
          // ssh2 takes the socket's errors from here (its listener is added on the next tick).
          sock.off('error', failed).on('error', () => {});
          resolve(sock);
        });
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL') && i + 1 < tries) continue;
      if (code === 'EACCES') throw new Error(`link: cannot bind a port below 1024 (not root?): ${(e as Error).message}`);
      throw e;
    }
  }
}

function splitAddress(address: string): [string, string] {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address);
  if (!m) throw new Error(`bad link address ${address}`);
  return [m[1]!, m[2]!];
}

/**
 * A relay channel seen as a Pty. Exit code: what the owning node's tmux client exited with; a
 * channel that closes without one (the link or the owning node died) reports signal 1 (SIGHUP),
 * which is what a terminal whose line dropped sees.
 */
class RemotePty implements Pty {
  readonly pid = 0;
  readonly tty = null;
  private exitCode: number | null = null;
  private full = false;

  constructor(private readonly channel: ssh2.ClientChannel) {
    channel.on('exit', (code: number | null) => {
      if (typeof code === 'number') this.exitCode = code;
    });
    // Stderr is not expected; read it so a peer cannot stall the channel with it.
    channel.stderr.resume();
  }

  onData(fn: (data: Buffer) => void): void {
    this.channel.on('data', fn);
  }

  onExit(fn: (code: number, signal: number | undefined) => void): void {
    this.channel.once('close', () => (this.exitCode === null ? fn(-1, 1) : fn(this.exitCode, undefined)));
  }

  /** False when the owning node holds the input back (its pty is not read): wait for onceWritable. */
  write(data: Buffer): boolean {
    if (this.channel.write(data)) return true;
    this.full = true;
    return false;
  }

  onceWritable(fn: () => void): void {
    if (!this.full) return fn();
    this.channel.once('drain', () => {
      this.full = false;
      fn();
    });
  }

  resize(cols: number, rows: number): void {
    this.channel.setWindow(rows, cols, 0, 0);
  }

  pause(): void {
    this.channel.pause();
  }

  resume(): void {
    this.channel.resume();
  }

  kill(): void {
    this.channel.close();
  }
}
