import type { AuthContext, Connection, KeyboardAuthContext, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Logger } from '../platform/logger.js';
import type { Random } from '../platform/random.js';
import { newId } from '../platform/ids.js';
import type { AuditSink } from '../audit/log.js';
import { TgError } from '../errors.js';
import type { Pending } from './front-door.js';
import { LoginFlow, type Decision, type Identity, type LoginFlowDeps } from '../auth/login-flow.js';
import type { TerminalChannel } from '../session/shell-session.js';
import { envAllowed } from '../session/env.js';
import { parseGatewayCommand } from '../session/gateway-commands.js';
import type { ConnectionInfo, ConnectionSessions, Resizable } from '../session/launcher.js';

/** What a connection needs: the login policy's dependencies, and the session side once logged in. */
export interface ConnectionDeps {
  login: LoginFlowDeps;
  logger: Logger;
  random: Random;
  /** For refused requests after login (request.denied). */
  audit: AuditSink;
  /** The session side of an authenticated connection (the gateway's SessionLauncher). */
  sessions(conn: ConnectionInfo): ConnectionSessions;
}

const REQUIRED = ['login', 'logger', 'random', 'audit', 'sessions'] as const;

/**
 * Refused requests after login audited one by one per connection. A client can send them as fast
 * as it can open channels (a forwarded port it connects to in a loop): past this bound they are
 * counted and audited as one row when the connection closes.
 */
export const DENIED_AUDITED = 20;

/**
 * One SSH connection: the only place that handles ssh2 objects. Authentication requests become
 * typed calls on the connection's LoginFlow, whose decisions are applied as they stand; after
 * login, requests are allowed or refused (and audited), and a refusal never ends more than the
 * request that was refused.
 */
export class GatewayConnection {
  readonly id: string;
  private readonly log: Logger;
  private readonly flow: LoginFlow;
  private resolved: Identity | null = null;
  private shellOpen = false;
  private closed = false;
  /** Requests refused after login, and the last one past DENIED_AUDITED (for the summary row). */
  private denied = 0;
  private lastDenied = '';

  constructor(
    private readonly deps: ConnectionDeps,
    private readonly client: Connection,
    private readonly pending: Pick<Pending, 'addr' | 'handshakeDone' | 'authenticated'>,
  ) {
    for (const k of REQUIRED) if (!deps[k]) throw new TgError('TG_ERR_INTERNAL', `missing ${k}`);
    this.id = newId('c_', deps.random);
    this.log = deps.logger.child({ conn: this.id, addr: pending.addr });
    this.flow = new LoginFlow(deps.login, { id: this.id, addr: pending.addr, log: this.log });
    client.on('error', (e) => this.log.debug({ err: e.message }, 'connection error'));
    client.on('close', () => (this.closed = true));
    client.once('handshake', () => pending.handshakeDone());
    client.on('authentication', (a) => this.guard(() => this.decide(a, this.ask(a))));
    client.on('ready', () => this.guard(() => this.onReady()));
  }

  get addr(): string {
    return this.pending.addr;
  }

  /** Runs a handler; a bug in one connection ends that connection, never the gateway. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.broken(e);
    }
  }

  private broken(e: unknown): void {
    this.log.error({ err: e }, 'connection handler failed; closing the connection');
    this.client.end();
  }

  // ---------------------------------------------------------------- authentication

  /** The request as a typed call on the login flow. */
  private ask(a: AuthContext): Promise<Decision> {
    const login = a.username;
    switch (a.method) {
      case 'none':
        return this.flow.none(login);
      case 'publickey':
        if (!a.signature) return this.flow.offerKey(login, a.key.data);
        return this.flow.verifyKey(login, { blob: a.key.data, signed: a.blob, signature: a.signature, hashAlgo: a.hashAlgo });
      case 'keyboard-interactive':
        return this.flow.startCode(login);
      default:
        return this.flow.otherMethod(login, a.method);
    }
  }

  /** Applies the flow's decision to the request once it comes. */
  private decide(a: AuthContext, decision: Promise<Decision>): void {
    decision.then(
      (d) => this.guard(() => this.apply(a, d)),
      (e) => this.broken(e),
    );
  }

  private apply(a: AuthContext, d: Decision): void {
    if (this.closed) return;
    switch (d.kind) {
      case 'accepted':
        if (d.identity) {
          if (!this.resolved) this.pending.authenticated();
          this.resolved = d.identity;
        } else if (a.method !== 'publickey' || a.signature) {
          // ssh2's accept() logs in anything but a key query: only a query may be accepted without an identity.
          throw new Error(`accepted ${a.method} request without an identity`);
        }
        a.accept();
        return;
      case 'need':
        if (d.prompt !== undefined && a.method === 'keyboard-interactive') this.prompt(a, d.prompt);
        else a.reject(d.methods, d.partial);
        return;
      case 'rejected':
        a.reject(d.methods, d.partial);
        if (d.endConnection) this.client.end();
        return;
    }
  }

  /** Asks for the code within the keyboard-interactive request; the answer goes to the flow. */
  private prompt(a: KeyboardAuthContext, prompt: string): void {
    a.prompt([{ prompt, echo: false }], 'tmuxgate', '', (answers) => {
      this.guard(() => {
        if (this.closed) return;
        if (!Array.isArray(answers)) {
          this.flow.codeAbandoned();
          return;
        }
        this.decide(a, this.flow.answerCode(a.username, String(answers[0] ?? '')));
      });
    });
  }

  // ---------------------------------------------------------------- after authentication

  private deny(request: string, detail: string, reject?: () => void): void {
    reject?.();
    const shown = detail.slice(0, 200);
    this.denied++;
    if (this.denied <= DENIED_AUDITED) {
      this.auditDenied(request, shown);
      this.log.info({ request, detail: shown }, 'request denied');
      return;
    }
    // Past the bound: counted, and audited as one row at the close (the shared audit chain and
    // log are not this connection's to fill).
    this.lastDenied = `${request}: ${shown}`;
    if (this.denied > DENIED_AUDITED + 1) return;
    this.log.warn({ audited: DENIED_AUDITED }, 'many refused requests on this connection: the rest are counted and audited at its close');
    const summary = () => {
      const more = this.denied - DENIED_AUDITED;
      this.auditDenied('more', `${more} more refused requests on this connection, not audited one by one (the last: ${this.lastDenied})`.slice(0, 300));
    };
    if (this.closed) setImmediate(summary);
    else this.client.once('close', summary);
  }

  private auditDenied(request: string, detail: string): void {
    const { user, role } = this.resolved!;
    this.deps.audit.post(user.name, { type: 'request.denied', user: user.name, role: role.name, addr: this.addr, connId: this.id, request, detail });
  }

  private onReady(): void {
    const c = this.client;
    c.on('session', (accept, reject) => {
      this.guard(() => {
        if (this.shellOpen) {
          this.deny('session', 'one shell per connection', reject);
          return;
        }
        this.onSession(accept());
      });
    });
    c.on('tcpip', (_accept, reject, info) => this.guard(() => this.deny('direct-tcpip', `forward to ${info.destIP}:${info.destPort}`, reject)));
    c.on('openssh.streamlocal', (_accept, reject, info) => this.guard(() => this.deny('direct-streamlocal', `forward to ${info.socketPath}`, reject)));
    c.on('request', (_accept, reject, name, info) => this.guard(() => this.deny(`global:${name}`, JSON.stringify(info ?? {}), reject ?? undefined)));
  }

  private onSession(session: Session): void {
    let pty: PseudoTtyInfo | null = null;
    const clientEnv: Record<string, string> = {};
    let running: Resizable | null = null;

    session.on('pty', (accept, _reject, info) =>
      this.guard(() => {
        pty = info;
        accept?.();
      }),
    );
    session.on('window-change', (accept, _reject, info) =>
      this.guard(() => {
        if (running) running.resize(info.cols, info.rows);
        else if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
        accept?.();
      }),
    );
    session.on('env', (accept, reject, info) =>
      this.guard(() => {
        if (envAllowed(info.key, info.val) && Object.keys(clientEnv).length < 16) {
          clientEnv[info.key] = info.val;
          accept?.();
        } else this.deny('env', `${String(info.key).slice(0, 64)}`, reject);
      }),
    );
    session.on('x11', (_a, reject) => this.guard(() => this.deny('x11', 'X11 forwarding', reject)));
    session.on('auth-agent', (_a, reject) => this.guard(() => this.deny('auth-agent', 'agent forwarding', reject)));
    session.on('signal', (_a, reject) => this.guard(() => reject?.()));
    session.on('exec', (accept, reject, info) =>
      this.guard(() => {
        const cmd = parseGatewayCommand(String(info.command));
        if (!cmd || this.shellOpen || this.resolved!.role.kind !== 'shell') {
          this.deny('exec', `command: ${info.command}`, reject);
          return;
        }
        this.shellOpen = true;
        const stream = accept();
        const ptyInfo = pty;
        this.launcher()
          .command(cmd, channelPort(stream, this.client), ptyInfo)
          .then(
            (r) => (running = caughtUp(r, ptyInfo, pty)),
            (e) => {
              this.log.error({ err: e }, 'gateway command failed');
              stream.exit(1);
              stream.end();
            },
          );
      }),
    );
    session.on('subsystem', (_a, reject, info) => this.guard(() => this.deny('subsystem', `subsystem: ${info.name}`, reject)));
    session.on('shell', (accept, reject) =>
      this.guard(() => {
        if (this.shellOpen) {
          this.deny('shell', 'one shell per connection', reject);
          return;
        }
        const stream = accept();
        if (!pty) {
          this.deny('shell', 'shell without a terminal (ssh -T)');
          stream.stderr.write('tmuxgate: a terminal is required; connect with ssh -t\r\n');
          stream.exit(1);
          stream.end();
          return;
        }
        this.shellOpen = true;
        const ptyInfo = pty;
        this.launcher()
          .shell(channelPort(stream, this.client), ptyInfo, clientEnv)
          .then(
            (r) => (running = caughtUp(r, ptyInfo, pty)),
            (e) => {
              this.log.error({ err: e }, 'session start failed');
              this.client.end();
            },
          );
      }),
    );
  }

  /** The session side for this authenticated connection. */
  private launcher(): ConnectionSessions {
    const { user, role } = this.resolved!;
    return this.deps.sessions({
      id: this.id,
      addr: this.addr,
      user,
      role,
      log: this.log,
      closed: () => this.closed,
      deny: (request, detail) => this.deny(request, detail),
      endSoon: () => void setTimeout(() => this.client.end(), 2000).unref(),
    });
  }
}

/**
 * Wraps an ssh2 channel as the session's TerminalChannel port. `pause` stops taking the client's
 * input: ssh2 then sends no window adjust, so the client stops at the channel's window. ssh2
 * emits a server channel's close only once its input has been read to the end, so a paused
 * channel that the client closes (ssh2 then ends our side: `finish`), or whose connection goes,
 * is resumed, and its close reaches the session.
 */
function channelPort(stream: ServerChannel, client: Connection): TerminalChannel {
  let paused = false;
  const unstick = () => {
    if (!paused) return;
    paused = false;
    stream.resume();
  };
  stream.once('finish', unstick);
  client.once('close', unstick);
  return {
    write: (d) => stream.write(d),
    onceDrain: (fn) => void stream.once('drain', fn),
    onData: (fn) => void stream.on('data', fn),
    pause: () => {
      paused = true;
      stream.pause();
    },
    resume: () => {
      paused = false;
      stream.resume();
    },
    onClose: (fn) => void stream.once('close', fn),
    exitAndClose: (code) => {
      if (stream.destroyed) return;
      stream.exit(code);
      stream.end();
    },
  };
}

/**
 * A session that has just started, told the terminal size the client reported while it was
 * starting (a window-change before the session runs only updates what the connection knows):
 * without this the session kept the size of the pty request until the next resize.
 */
function caughtUp<T extends Resizable | null>(running: T, requested: { cols: number; rows: number } | null, now: { cols: number; rows: number } | null): T {
  if (running && requested && now && (now.cols !== requested.cols || now.rows !== requested.rows)) running.resize(now.cols, now.rows);
  return running;
}
