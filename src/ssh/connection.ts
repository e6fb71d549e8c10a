import type {
  AuthContext,
  Connection,
  KeyboardAuthContext,
  PublicKeyAuthContext,
  PseudoTtyInfo,
  ServerChannel,
  Session,
} from 'ssh2';
import type { GatewayContext } from '../gateway-context.js';
import type { Logger } from '../platform/logger.js';
import { newId } from '../platform/ids.js';
import type { Pending } from './front-door.js';
import { nextStep, type AuthProgress } from '../auth/policy.js';
import { publicKeyStep, type KeyStepPort } from '../auth/key-step.js';
import { keyStepPort } from './key-port.js';
import type { LockState } from '../auth/lockout.js';
import { checkTotp } from '../auth/totp.js';
import { parseLoginName, displayLogin } from '../authz/login-name.js';
import { authorize, type AuthzDecision } from '../authz/decide.js';
import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';
import type { TerminalChannel } from '../session/shell-session.js';
import { envAllowed } from '../session/env.js';
import type { RecoveryCodeRepo } from '../store/recovery-codes.js';
import { parseGatewayCommand } from '../session/gateway-commands.js';
import { SessionLauncher, type Resizable } from '../session/launcher.js';

const PROMPT = 'Verification code: ';

interface Resolved {
  user: User;
  role: Role;
}

/**
 * One SSH connection: the only place that handles ssh2 objects. Library callbacks become
 * decisions of the pure auth policy and authorizer; everything refused is audited, and a
 * refusal never ends more than the request that was refused.
 */
export class GatewayConnection {
  readonly id: string;
  private readonly log: Logger;
  private progress: AuthProgress = { keyUser: null, keyLogin: null, totp: false };
  private keyFingerprint = '';
  private tries = 0;
  private resolved: Resolved | null = null;
  private shellOpen = false;
  private readonly recovery: RecoveryCodeRepo;
  private closed = false;
  /** Whether a refused key query has already counted against the source on this connection. */
  private queryCounted = false;
  private noneSeen = false;
  private readonly keyPort: KeyStepPort;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly client: Connection,
    private readonly pending: Pending,
  ) {
    this.id = newId('c_', ctx.random);
    this.log = ctx.logger.child({ conn: this.id, addr: pending.addr });
    this.recovery = ctx.recoveryCodes;
    this.keyPort = keyStepPort(ctx);
    client.on('error', (e) => this.log.debug({ err: e.message }, 'connection error'));
    client.on('close', () => (this.closed = true));
    client.once('handshake', () => pending.handshakeDone());
    client.on('authentication', (a) => this.guard(() => this.onAuth(a)));
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
      this.log.error({ err: e }, 'connection handler failed; closing the connection');
      this.client.end();
    }
  }

  // ---------------------------------------------------------------- authentication

  private onAuth(a: AuthContext): void {
    const login = a.username;
    const verdict = nextStep(this.progress, login);
    if (verdict.kind === 'rejected') {
      this.fail(a, ['publickey'], displayLogin(login), 'login-changed', { count: 'source', endNow: true });
      return;
    }
    if (verdict.kind === 'accepted') {
      a.accept();
      return;
    }
    switch (a.method) {
      case 'none':
        // OpenSSH always starts with "none" to learn the methods: not an attempt. Later ones
        // count against MaxAuthTries, as in sshd, or a client could ask forever.
        if (this.noneSeen) {
          this.fail(a, verdict.methods, displayLogin(login), 'none-repeated', { partial: verdict.partial });
          return;
        }
        this.noneSeen = true;
        a.reject(verdict.methods, verdict.partial);
        return;
      case 'publickey':
        this.onPublicKey(a, login);
        return;
      case 'keyboard-interactive':
        this.onKeyboard(a, login);
        return;
      default:
        this.fail(a, verdict.methods, displayLogin(login), `method-not-allowed:${a.method}`, { partial: verdict.partial, count: 'source' });
    }
  }

  /** Resolves the login name to a user and an authorized role (or why not). */
  private resolve(login: string): { user: User | null; decision: AuthzDecision | { ok: false; reason: 'invalid-login-name' } } {
    const parsed = parseLoginName(login);
    if (!parsed) return { user: null, decision: { ok: false, reason: 'invalid-login-name' } };
    const user = this.ctx.users.find(parsed.user);
    if (parsed.role !== null && !this.ctx.roles.find(parsed.role)) {
      return { user, decision: { ok: false, reason: user ? 'unknown-role' : 'unknown-user' } };
    }
    const decision = authorize({ user, requested: parsed.role, granted: user ? this.ctx.roles.grantsOf(user.id) : [] });
    return { user, decision };
  }

  private onPublicKey(a: PublicKeyAuthContext, login: string): void {
    if (this.progress.keyUser !== null) {
      a.reject(['keyboard-interactive'], true);
      return;
    }
    const query = !a.signature;
    // A locked address or prefix is refused before any lookup or signature check, with the
    // answer a wrong key gets (no oracle). Attempts while locked do not extend the lock.
    const lock = this.ctx.lockouts.sourceLock(this.addr);
    if (lock) {
      this.fail(a, ['publickey'], displayLogin(login), 'address-locked', { query });
      return;
    }
    const step = publicKeyStep(this.keyPort, login, { blob: a.key.data, signed: a.blob, signature: a.signature, hashAlgo: a.hashAlgo });
    if (step.kind === 'refused') {
      // Unknown user, unknown or ungranted role, wrong key, bad signature: all the same answer,
      // all counted against the source address only, never against the user (a stranger who
      // holds a user's public key must not be able to lock the user out).
      this.fail(a, ['publickey'], displayLogin(login), step.reason, { query, count: 'source' });
      return;
    }
    if (step.kind === 'key-ok') {
      a.accept(); // PK_OK: "this key would do", no signature yet
      return;
    }
    this.progress = { keyUser: step.user.name, keyLogin: login, totp: false };
    this.keyFingerprint = step.fingerprint;
    this.resolved = { user: step.user, role: step.role };
    this.log.info({ user: step.user.name, key: step.fingerprint }, 'public key accepted; asking for TOTP');
    a.reject(['keyboard-interactive'], true);
  }

  private onKeyboard(a: KeyboardAuthContext, login: string): void {
    if (this.progress.keyUser === null || !this.resolved) {
      this.fail(a, ['publickey'], displayLogin(login), 'totp-before-publickey', { count: 'source' });
      return;
    }
    const userName = this.progress.keyUser;
    a.prompt([{ prompt: PROMPT, echo: false }], 'tmuxgate', '', (answers) => {
      this.guard(() => {
        if (this.closed) return;
        if (!Array.isArray(answers)) {
          this.log.info({ user: userName }, 'client aborted the verification prompt');
          return;
        }
        this.onCode(a, login, userName, String(answers[0] ?? '').slice(0, 64));
      });
    });
  }

  private onCode(a: KeyboardAuthContext, login: string, userName: string, code: string): void {
    const { lockouts, totp, audit, clock, config } = this.ctx;
    // A locked user or address gets the same answer as a wrong code: no oracle. The user's own
    // lock is checked only here, after the key proof: only the key's holder can have caused it.
    const userLock = lockouts.state('user', userName);
    const sourceLock = lockouts.sourceLock(this.addr);
    if (userLock.locked || sourceLock) {
      const subject = userLock.locked ? 'user' : 'address';
      audit.emit(userName, { type: 'auth.locked', user: userName, addr: this.addr, connId: this.id, subject, until: userLock.locked ? userLock.until : sourceLock!.until });
      this.fail(a, ['keyboard-interactive'], userName, 'locked', { audited: true });
      return;
    }
    // Fresh authorization: the user may have been disabled or lost the grant meanwhile.
    const { user, decision } = this.resolve(login);
    if (!user || !decision.ok || user.id !== this.resolved!.user.id) {
      this.fail(a, ['keyboard-interactive'], userName, decision.ok ? 'user-changed' : decision.reason, { endNow: true });
      return;
    }
    const rec = totp.get(user.id);
    if (!rec || !rec.confirmed) {
      this.fail(a, ['keyboard-interactive'], userName, 'totp-not-enrolled', { count: 'user' });
      return;
    }
    const check = checkTotp(rec.secret.reveal(), code, clock.now(), config.auth.totp.window, rec.lastStep);
    let method = 'publickey+totp';
    if (!check.ok && check.reason === 'malformed' && this.recovery.spend(user.id, code, clock.now())) {
      // A one-time recovery code in place of the TOTP code: spent now, audited every time.
      method = 'publickey+recovery-code';
      audit.emit(userName, { type: 'auth.recovery-code', user: userName, addr: this.addr, connId: this.id, remaining: this.recovery.remaining(user.id) });
    } else if (!check.ok) {
      this.fail(a, ['keyboard-interactive'], userName, `totp-${check.reason}`, { count: 'user' });
      return;
    } else if (!totp.spendStep(user.id, check.step)) {
      this.fail(a, ['keyboard-interactive'], userName, 'totp-replayed', { count: 'user' });
      return;
    }
    this.progress = { ...this.progress, totp: true };
    this.resolved = { user, role: decision.role };
    lockouts.resetFailures('user', userName);
    this.pending.authenticated();
    audit.emit(userName, {
      type: 'auth.success',
      user: userName,
      role: decision.role.name,
      addr: this.addr,
      connId: this.id,
      method,
      keyFingerprint: this.keyFingerprint,
    });
    this.ctx.metrics.inc('logins_total{result="success"}');
    this.log.info({ user: userName, role: decision.role.name }, 'authenticated');
    a.accept();
  }

  /**
   * One failed attempt: audited, counted against MaxAuthTries (queries for unknown keys count,
   * as in sshd), counted towards lockouts as `count` says, then a plain rejection.
   * `count: 'user'` (only after a valid key proof) counts against the user and the source;
   * `count: 'source'` against the source address and its prefix only. A refused query (no
   * signature) counts against the source once per connection: OpenSSH offers each key it has
   * in turn, and a user with several keys must not lock out their own office.
   */
  private fail(
    a: AuthContext,
    methods: ('publickey' | 'keyboard-interactive')[],
    who: string,
    reason: string,
    o: { count?: 'user' | 'source'; endNow?: boolean; partial?: boolean; query?: boolean; audited?: boolean } = {},
  ): void {
    const { audit, preauth } = this.ctx;
    this.tries++;
    // Before a valid key proof the client is a stranger: its failures go into the per-address
    // summary (one row per address per interval), so a flood of probes cannot fill the disk.
    // After it, every failure is its own audit row.
    const proven = this.progress.keyUser !== null;
    if (a.method !== 'publickey' || a.signature) this.ctx.metrics.inc(`logins_total{result="${reason === 'locked' ? 'locked' : 'failure'}"}`);
    if (o.audited) {
      // already written by the caller
    } else if (proven) audit.emit(who, { type: 'auth.failure', user: who, addr: this.addr, connId: this.id, method: a.method, reason });
    else preauth.record(this.addr, `${a.method}:${reason}`, a.username);
    this.log[proven ? 'info' : 'debug']({ user: who, method: a.method, reason, tries: this.tries }, 'authentication failed');
    if (o.count === 'user') this.recordLockout('user', who);
    if (o.count && !(o.query && this.queryCounted)) {
      if (o.query) this.queryCounted = true;
      for (const { subject, lock } of this.ctx.lockouts.recordSourceFailure(this.addr)) {
        // A stranger's lockouts are counted in its summary too: an attacker with many addresses
        // (an IPv6 /48 is 65,536 /64s) must not get one row per address past the bound either.
        // The lockouts table keeps each one (`tmuxgate lockouts list`).
        if (proven) this.lockStarted('address', subject, lock);
        else {
          preauth.record(this.addr, subject === this.addr ? 'lockout.start:address' : 'lockout.start:prefix');
          this.log.warn({ kind: 'address', subject, until: new Date(lock.until).toISOString(), level: lock.level }, 'locked out');
        }
      }
    }
    const exhausted = this.tries >= this.ctx.config.ssh.maxAuthTries;
    if (exhausted && proven) {
      audit.emit(who, { type: 'connection.refused', addr: this.addr, connId: this.id, user: who, reason: 'too many authentication failures' });
    } else if (exhausted) preauth.record(this.addr, 'refused:too many authentication failures');
    a.reject(methods, o.partial ?? false);
    if (exhausted || o.endNow) this.client.end();
  }

  private recordLockout(kind: 'user' | 'address', subject: string): void {
    const lock = this.ctx.lockouts.recordFailure(kind, subject);
    if (lock) this.lockStarted(kind, subject, lock);
  }

  private lockStarted(kind: 'user' | 'address', subject: string, lock: LockState): void {
    this.ctx.audit.emit('gateway', { type: 'lockout.start', subjectKind: kind, subject, level: lock.level, until: lock.until });
    this.log.warn({ kind, subject, until: new Date(lock.until).toISOString(), level: lock.level }, 'locked out');
  }

  // ---------------------------------------------------------------- after authentication

  private deny(request: string, detail: string, reject?: () => void): void {
    const r = this.resolved!;
    this.ctx.audit.emit(r.user.name, { type: 'request.denied', user: r.user.name, role: r.role.name, addr: this.addr, connId: this.id, request, detail: detail.slice(0, 200) });
    this.log.info({ request, detail: detail.slice(0, 200) }, 'request denied');
    reject?.();
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
    c.on('tcpip', (_accept, reject, info) =>
      this.guard(() => this.deny('direct-tcpip', `forward to ${info.destIP}:${info.destPort}`, reject)),
    );
    c.on('openssh.streamlocal', (_accept, reject, info) =>
      this.guard(() => this.deny('direct-streamlocal', `forward to ${info.socketPath}`, reject)),
    );
    c.on('request', (_accept, reject, name, info) =>
      this.guard(() => this.deny(`global:${name}`, JSON.stringify(info ?? {}), reject ?? undefined)),
    );
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
        this.launcher()
          .command(cmd, channelPort(stream), pty)
          .then(
            (r) => (running = r),
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
          .shell(channelPort(stream), ptyInfo, clientEnv)
          .then(
            (r) => (running = r),
            (e) => {
              this.log.error({ err: e }, 'session start failed');
              this.client.end();
            },
          );
      }),
    );
  }

  /** The session side for this authenticated connection. */
  private launcher(): SessionLauncher {
    const { user, role } = this.resolved!;
    return new SessionLauncher(this.ctx, {
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

/** Wraps an ssh2 channel as the session's TerminalChannel port. */
function channelPort(stream: ServerChannel): TerminalChannel {
  return {
    write: (d) => stream.write(d),
    onceDrain: (fn) => void stream.once('drain', fn),
    onData: (fn) => void stream.on('data', fn),
    onClose: (fn) => void stream.once('close', fn),
    exitAndClose: (code) => {
      if (stream.destroyed) return;
      stream.exit(code);
      stream.end();
    },
  };
}
