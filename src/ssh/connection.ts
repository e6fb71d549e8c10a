import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
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
import type { Pending } from './front-door.js';
import { nextStep, type AuthProgress } from '../auth/policy.js';
import { verifySignature } from '../auth/public-key.js';
import { checkTotp } from '../auth/totp.js';
import { parseLoginName, displayLogin } from '../authz/login-name.js';
import { authorize, type AuthzDecision } from '../authz/decide.js';
import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';
import { clampSize, ShellSession, type TerminalChannel } from '../session/shell-session.js';
import { envAllowed, normaliseTerm, shellEnv } from '../session/env.js';
import { currentAccount, lookupAccount, type OsAccount } from '../session/os-account.js';
import { NullRecorder, Recorder } from '../recording/recorder.js';
import { AuditorMenu } from '../session/auditor-menu.js';
import { RecoveryCodeRepo } from '../store/recovery-codes.js';
import { ensurePairAccount } from '../session/pair-accounts.js';
import { sandboxed } from '../session/sandbox.js';
import { parseGatewayCommand, type GatewayCommand } from '../session/gateway-commands.js';
import { asAccount, prepareTmuxDir, tmuxAttachArgs, tmuxConf, tmuxPaths } from '../session/tmux.js';

const PROMPT = 'Verification code: ';

/** A new random connection id (for logs and audit rows). */
export function newId(prefix: string): string {
  return prefix + randomBytes(9).toString('base64url');
}

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
  readonly id = newId('c_');
  private readonly log: Logger;
  private progress: AuthProgress = { keyUser: null, keyLogin: null, totp: false };
  private keyFingerprint = '';
  private tries = 0;
  private resolved: Resolved | null = null;
  private shellOpen = false;
  private auditorMenu: AuditorMenu | null = null;
  private readonly recovery: RecoveryCodeRepo;
  private closed = false;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly client: Connection,
    private readonly pending: Pending,
  ) {
    this.log = ctx.logger.child({ conn: this.id, addr: pending.addr });
    this.recovery = new RecoveryCodeRepo(ctx.db);
    client.on('error', (e) => this.log.debug({ err: e.message }, 'connection error'));
    client.on('close', () => (this.closed = true));
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
      this.fail(a, ['publickey'], displayLogin(login), 'login-changed', { lockout: true, endNow: true });
      return;
    }
    if (verdict.kind === 'accepted') {
      a.accept();
      return;
    }
    switch (a.method) {
      case 'none':
        // OpenSSH always starts with "none" to learn the methods: not an attempt.
        a.reject(verdict.methods, verdict.partial);
        return;
      case 'publickey':
        this.onPublicKey(a, login);
        return;
      case 'keyboard-interactive':
        this.onKeyboard(a, login);
        return;
      default:
        this.fail(a, verdict.methods, displayLogin(login), `method-not-allowed:${a.method}`, { partial: verdict.partial });
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
    const { user, decision } = this.resolve(login);
    const who = user?.name ?? displayLogin(login);
    // Unknown user, unknown or ungranted role: exactly the answer a wrong key gets.
    if (!decision.ok || !user) {
      this.fail(a, ['publickey'], who, decision.ok ? 'unknown-user' : decision.reason, { query: !a.signature });
      return;
    }
    const key = this.ctx.keys.findForUser(user.id, a.key.data);
    if (!key) {
      this.fail(a, ['publickey'], who, 'unknown-key', { query: !a.signature });
      return;
    }
    if (!a.signature || !a.blob) {
      a.accept(); // PK_OK: "this key would do", no signature yet
      return;
    }
    if (!verifySignature(a.key.data, a.blob, a.signature, a.hashAlgo)) {
      this.fail(a, ['publickey'], who, a.hashAlgo === 'sha1' ? 'sha1-signature-refused' : 'bad-signature', { lockout: true });
      return;
    }
    this.progress = { keyUser: user.name, keyLogin: login, totp: false };
    this.keyFingerprint = key.fingerprint;
    this.resolved = { user, role: decision.role };
    this.log.info({ user: user.name, key: key.fingerprint }, 'public key accepted; asking for TOTP');
    a.reject(['keyboard-interactive'], true);
  }

  private onKeyboard(a: KeyboardAuthContext, login: string): void {
    if (this.progress.keyUser === null || !this.resolved) {
      this.fail(a, ['publickey'], displayLogin(login), 'totp-before-publickey');
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
    // A locked user or address gets the same answer as a wrong code: no oracle.
    const userLock = lockouts.state('user', userName);
    const addrLock = lockouts.state('address', this.addr);
    if (userLock.locked || addrLock.locked) {
      const subject = userLock.locked ? 'user' : 'address';
      audit.emit(userName, { type: 'auth.locked', user: userName, addr: this.addr, connId: this.id, subject, until: userLock.locked ? userLock.until : addrLock.until });
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
      this.fail(a, ['keyboard-interactive'], userName, 'totp-not-enrolled', { lockout: true });
      return;
    }
    const check = checkTotp(rec.secret.reveal(), code, clock.now(), config.auth.totp.window, rec.lastStep);
    let method = 'publickey+totp';
    if (!check.ok && check.reason === 'malformed' && this.recovery.spend(user.id, code, clock.now())) {
      // A one-time recovery code in place of the TOTP code: spent now, audited every time.
      method = 'publickey+recovery-code';
      audit.emit(userName, { type: 'auth.recovery-code', user: userName, addr: this.addr, connId: this.id, remaining: this.recovery.remaining(user.id) });
    } else if (!check.ok) {
      this.fail(a, ['keyboard-interactive'], userName, `totp-${check.reason}`, { lockout: true });
      return;
    } else if (!totp.spendStep(user.id, check.step)) {
      this.fail(a, ['keyboard-interactive'], userName, 'totp-replayed', { lockout: true });
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
   * as in sshd), optionally counted towards lockouts, then a plain rejection.
   */
  private fail(
    a: AuthContext,
    methods: ('publickey' | 'keyboard-interactive')[],
    who: string,
    reason: string,
    o: { lockout?: boolean; endNow?: boolean; partial?: boolean; query?: boolean; audited?: boolean } = {},
  ): void {
    const { audit } = this.ctx;
    this.tries++;
    if (a.method !== 'publickey' || a.signature) this.ctx.metrics.inc(`logins_total{result="${reason === 'locked' ? 'locked' : 'failure'}"}`);
    if (!o.audited) audit.emit(who, { type: 'auth.failure', user: who, addr: this.addr, connId: this.id, method: a.method, reason });
    this.log.info({ user: who, method: a.method, reason, tries: this.tries }, 'authentication failed');
    if (o.lockout) {
      const known = this.ctx.users.find(who);
      if (known) this.recordLockout('user', who);
      this.recordLockout('address', this.addr);
    }
    const exhausted = this.tries >= this.ctx.config.ssh.maxAuthTries;
    if (exhausted) {
      audit.emit(who, { type: 'connection.refused', addr: this.addr, connId: this.id, user: who, reason: 'too many authentication failures' });
    }
    a.reject(methods, o.partial ?? false);
    if (exhausted || o.endNow) this.client.end();
  }

  private recordLockout(kind: 'user' | 'address', subject: string): void {
    const lock = this.ctx.lockouts.recordFailure(kind, subject);
    if (lock) {
      this.ctx.audit.emit('gateway', { type: 'lockout.start', subjectKind: kind, subject, level: lock.level, until: lock.until });
      this.log.warn({ kind, subject, until: new Date(lock.until).toISOString(), level: lock.level }, 'locked out');
    }
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
    let shell: ShellSession | null = null;

    session.on('pty', (accept, _reject, info) =>
      this.guard(() => {
        pty = info;
        accept?.();
      }),
    );
    session.on('window-change', (accept, _reject, info) =>
      this.guard(() => {
        if (shell) shell.resize(info.cols, info.rows);
        else if (this.auditorMenu) this.auditorMenu.resize(clampSize(info.cols, info.rows).cols, clampSize(info.cols, info.rows).rows);
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
        this.onGatewayCommand(cmd, stream, pty).catch((e) => {
          this.log.error({ err: e }, 'gateway command failed');
          stream.exit(1);
          stream.end();
        });
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
        this.startShell(stream, ptyInfo, clientEnv).then(
          (s) => (shell = s),
          (e) => {
            this.log.error({ err: e }, 'session start failed');
            this.client.end();
          },
        );
      }),
    );
  }

  /** Starts (or reattaches) the (role, user) tmux session on an accepted shell channel. */
  private async startShell(stream: ServerChannel, pty: PseudoTtyInfo, clientEnv: Record<string, string>): Promise<ShellSession | null> {
    const { config, clock, audit, sessions, live } = this.ctx;
    const { user, role } = this.resolved!;
    const fail = (why: string, detail: string) => {
      this.deny('shell', detail);
      stream.write(`tmuxgate: ${why}\r\n`);
      stream.exit(1);
      stream.end();
      return null;
    };
    if (role.kind === 'auditor') return this.startAuditor(stream, pty);
    if (role.kind === 'viewer') {
      // A viewer role is a standing read-only view of one named session: the grant is the permission.
      const target = parseLoginName(role.viewOf ?? '');
      const owner = target ? this.ctx.users.find(target.user) : null;
      const ownerRole = target?.role ? this.ctx.roles.find(target.role) : null;
      if (!owner || !ownerRole) return fail('the session this role shows does not exist', `viewer role ${role.name}: ${role.viewOf}`);
      const done = (code: number, text: string) => {
        stream.write(text + '\r\n');
        stream.exit(code);
        stream.end();
      };
      await this.startWatch(stream, pty, owner, ownerRole, done);
      return null;
    }
    if (role.kind !== 'shell') return fail('this role has no shell', `role ${role.name} is of kind ${role.kind}`);
    const template = this.accountFor(role);
    if (typeof template === 'string') return fail('your role cannot start a session right now; the reason was logged', template);
    const shellPath = role.shell ?? config.sessions.defaultShell;
    let account = template;
    // One OS account per (role, user): isolation between users of the same role too.
    if (role.runAs && template.uid !== 0 && config.isolation.pairAccounts && process.getuid?.() === 0) {
      try {
        account = await ensurePairAccount(this.ctx.db, config.isolation, role.id, user.id, template, shellPath);
      } catch (e) {
        this.log.error({ err: e }, 'cannot allocate the pair account');
        return fail('your session could not be prepared; the reason was logged', `pair account: ${(e as Error).message}`);
      }
    }
    const paths = tmuxPaths(config.paths.socketDir, role.id, user.id);
    let socket: string;
    try {
      prepareTmuxDir(config.paths.socketDir, paths, account, tmuxConf(role, shellPath, user.name));
      socket = await this.ctx.tmux.socketFor(paths.dir, role.id, user.id);
    } catch (e) {
      this.log.error({ err: e }, 'cannot prepare the tmux directory');
      return fail('your session could not be prepared; the reason was logged', `tmux dir: ${(e as Error).message}`);
    }
    const size = clampSize(pty.cols, pty.rows);
    let cmd = asAccount(account, config.sessions.tmuxPath, tmuxAttachArgs({ ...paths, socket }, size.cols, size.rows));
    if (role.sandbox) {
      try {
        cmd = sandboxed(role.sandbox, { hide: [config.paths.dataDir, config.paths.keysDir], bind: [paths.dir, account.home].filter((p) => existsSync(p)) }, cmd.file, cmd.args);
      } catch (e) {
        // Fail closed: no sandbox, no session; the user is told why.
        return fail(`sandbox could not be set up: ${(e as Error).message}`, `sandbox: ${(e as Error).message}`);
      }
    }
    const id = newId('s_');
    const term = normaliseTerm(pty.term, config.sessions.defaultTerm);
    const env = shellEnv({
      term,
      lang: config.sessions.lang,
      home: account.home,
      user: account.name,
      shell: shellPath,
      gatewayUser: user.name,
      role: role.name,
      sessionId: id,
      clientEnv,
    });
    const startedAt = clock.now();
    sessions.start({ id, userId: user.id, roleId: role.id, userName: user.name, roleName: role.name, remoteAddr: this.addr, term, cols: size.cols, rows: size.rows, startedAt });
    // Recording first: no byte reaches the user before the encrypted recording exists (fail closed).
    let recorder: Recorder | NullRecorder;
    try {
      recorder = config.recording.enabled ? await this.openRecorder(id, user.name, role, term, size, startedAt) : new NullRecorder();
    } catch (e) {
      this.log.error({ err: e }, 'cannot start the recording');
      sessions.end(id, 'recording-failed', clock.now());
      audit.emit(user.name, { type: 'recording.failed', sessionId: id, user: user.name, role: role.name, error: String((e as Error).message).slice(0, 200) });
      return fail('recording failed: session not started', 'recording could not be created');
    }
    if (this.closed) {
      await recorder.close('client-disconnected');
      sessions.end(id, 'client-disconnected', clock.now());
      return null;
    }
    const shell = new ShellSession(
      {
        id,
        spawn: {
          file: cmd.file,
          args: cmd.args,
          cwd: existsSync(account.home) ? account.home : '/',
          env,
          cols: size.cols,
          rows: size.rows,
          term,
        },
        idleTimeoutMs: role.idleTimeoutMs ?? config.sessions.idleTimeout,
        idleWarningMs: Math.min(role.idleWarningMs ?? config.sessions.idleWarning, (role.idleTimeoutMs ?? config.sessions.idleTimeout) / 2),
        maxSessionMs: role.maxSessionMs ?? config.sessions.maxSessionTime,
        tap: {
          output: (d) => recorder.frame('output', d),
          input: (d) => (role.recordInput ? recorder.frame('input', d) : undefined),
          resize: (c, r) => recorder.resize(c, r),
        },
      },
      { clock, logger: this.log.child({ session: id }), spawnPty: this.ctx.spawnPty },
    );
    recorder.onFailure((e) => {
      this.ctx.metrics.inc('recording_failures_total');
      this.log.error({ err: e.message, session: id }, 'recording failed; ending the session');
      shell.end('recording-failed', 'recording failed: session ended');
    });
    audit.emit(user.name, { type: 'session.start', sessionId: id, user: user.name, role: role.name, addr: this.addr, connId: this.id, term, cols: size.cols, rows: size.rows, socketDir: paths.dir });
    shell.onEnd((reason) => {
      live.track(
        (async () => {
          recorder.marker({ event: 'end', reason });
          const trailer = await recorder.close(reason);
          const failure = recorder.failure;
          if (recorder instanceof Recorder) this.ctx.recordings.finish(id, failure ? 'failed' : 'sealed', clock.now() - startedAt, clock.now(), failure ? failure.message.slice(0, 300) : null);
          sessions.end(id, reason, clock.now());
          if (failure) audit.emit(user.name, { type: 'recording.failed', sessionId: id, user: user.name, role: role.name, error: failure.message.slice(0, 200) });
          audit.emit(user.name, {
            type: 'session.end',
            sessionId: id,
            user: user.name,
            role: role.name,
            reason,
            durationMs: clock.now() - startedAt,
            recordingHash: trailer?.finalHash ?? recorder.stats().head,
            recordingChunks: recorder.stats().chunks,
          });
          this.log.info({ session: id, reason }, 'session ended');
        })().catch((e) => this.log.error({ err: e }, 'closing the session failed')),
      );
      // The channel is closed with its last words queued; OpenSSH leaves once its channel is
      // gone. Ending the connection at once could drop those words, so only a stuck client
      // is cut off, after a grace period.
      setTimeout(() => this.client.end(), 2000).unref();
    });
    live.add({ id, userId: user.id, roleId: role.id, userName: user.name, roleName: role.name, shell });
    recorder.marker({ event: 'start', user: user.name, role: role.name, addr: this.addr, cols: size.cols, rows: size.rows });
    shell.start(channelPort(stream));
    const clientPid = shell.pid;
    if (clientPid) {
      this.ctx.tmux.attached(paths.dir, clientPid);
      shell.onEnd(() => this.ctx.tmux.detached(paths.dir, clientPid));
    }
    return shell;
  }

  /** share / unshare / watchers / watch: read-only sharing between users, audited. */
  private async onGatewayCommand(cmd: GatewayCommand, stream: ServerChannel, pty: PseudoTtyInfo | null): Promise<void> {
    const { users, roles, audit, db, config, clock } = this.ctx;
    const { user, role } = this.resolved!;
    const done = (code: number, text: string) => {
      stream.write(text.replace(/\n/g, '\r\n') + '\r\n');
      stream.exit(code);
      stream.end();
    };
    if (cmd.cmd === 'share' || cmd.cmd === 'unshare') {
      const viewer = users.find(cmd.user);
      if (!viewer || viewer.id === user.id) return done(1, `tmuxgate: cannot share with ${cmd.user}`);
      if (cmd.cmd === 'share') {
        db.prepare('INSERT OR IGNORE INTO shares (owner_user_id, owner_role_id, viewer_user_id, created_at) VALUES (?, ?, ?, ?)').run(user.id, role.id, viewer.id, clock.now());
        audit.emit(user.name, { type: 'share.grant', owner: user.name, role: role.name, viewer: viewer.name });
        return done(0, `${viewer.name} may now watch your ${role.name} session read-only:\n  ssh -t ${viewer.name}@<gateway> watch ${user.name}+${role.name}`);
      }
      db.prepare('DELETE FROM shares WHERE owner_user_id = ? AND owner_role_id = ? AND viewer_user_id = ?').run(user.id, role.id, viewer.id);
      for (const v of this.ctx.live.viewers.values()) {
        if (v.viewerId === viewer.id && v.ownerUserId === user.id && v.ownerRoleId === role.id) v.shell.end('killed', `${user.name} stopped sharing`);
      }
      audit.emit(user.name, { type: 'share.revoke', owner: user.name, role: role.name, viewer: viewer.name });
      return done(0, `${viewer.name} may no longer watch your ${role.name} session`);
    }
    if (cmd.cmd === 'watchers') {
      const may = (db.prepare('SELECT u.name FROM shares s JOIN users u ON u.id = s.viewer_user_id WHERE s.owner_user_id = ? AND s.owner_role_id = ?').all(user.id, role.id) as { name: string }[]).map((r) => r.name);
      const now = [...this.ctx.live.viewers.values()].filter((v) => v.ownerUserId === user.id && v.ownerRoleId === role.id).map((v) => v.viewer);
      return done(0, `may watch: ${may.join(', ') || 'nobody'}\nwatching now: ${now.join(', ') || 'nobody'}`);
    }
    if (cmd.cmd !== 'watch') return;
    const owner = users.find(cmd.user);
    const ownerRole = owner ? (cmd.role ? roles.find(cmd.role) : owner.defaultRoleId ? roles.byId(owner.defaultRoleId) : null) : null;
    const shared = owner && ownerRole && db.prepare('SELECT 1 FROM shares WHERE owner_user_id = ? AND owner_role_id = ? AND viewer_user_id = ?').get(owner.id, ownerRole.id, user.id);
    if (!owner || !ownerRole || !shared) {
      this.deny('watch', `watch ${cmd.user}${cmd.role ? '+' + cmd.role : ''}: not shared with ${user.name}`);
      return done(1, 'tmuxgate: that session is not shared with you');
    }
    if (!pty) return done(1, 'tmuxgate: watching needs a terminal; use ssh -t');
    await this.startWatch(stream, pty, owner, ownerRole, done);
  }

  /** A read-only tmux client on another user's live session (shared with, or a viewer role for, this user). */
  private async startWatch(stream: ServerChannel, pty: PseudoTtyInfo, owner: User, ownerRole: Role, done: (code: number, text: string) => void): Promise<void> {
    const { audit, config, clock } = this.ctx;
    const { user } = this.resolved!;
    const dir = tmuxPaths(config.paths.socketDir, ownerRole.id, owner.id).dir;
    const socket = await this.ctx.tmux.liveSocket(dir, ownerRole.id, owner.id);
    if (!socket) return done(1, `tmuxgate: ${owner.name} has no ${ownerRole.name} session running`);
    const st = statSync(socket);
    const size = clampSize(pty.cols, pty.rows);
    const term = normaliseTerm(pty.term, config.sessions.defaultTerm);
    const runAs: OsAccount = { name: String(st.uid), uid: st.uid, gid: st.gid, home: '/', shell: '/bin/sh' };
    const c = asAccount(runAs, config.sessions.tmuxPath, ['-u', '-S', socket, 'attach-session', '-t', 'main', '-f', 'read-only,ignore-size']);
    const viewerShell = new ShellSession(
      {
        id: newId('v_'),
        spawn: { file: c.file, args: c.args, cwd: '/', env: { PATH: '/usr/local/bin:/usr/bin:/bin', TERM: term, LANG: config.sessions.lang, HOME: '/' }, cols: size.cols, rows: size.rows, term },
        idleTimeoutMs: config.sessions.idleTimeout,
        idleWarningMs: config.sessions.idleWarning,
        maxSessionMs: config.sessions.maxSessionTime,
      },
      { clock, logger: this.log, spawnPty: this.ctx.spawnPty },
    );
    const key = newId('w_');
    this.ctx.live.viewers.set(key, { viewerId: user.id, viewer: user.name, ownerUserId: owner.id, ownerRoleId: ownerRole.id, shell: viewerShell });
    audit.emit(user.name, { type: 'share.join', owner: owner.name, role: ownerRole.name, viewer: user.name, addr: this.addr });
    await this.ctx.tmux.notify(socket, `tmuxgate: ${user.name} is watching (read-only)`);
    viewerShell.onEnd((reason) => {
      this.ctx.live.viewers.delete(key);
      if (viewerShell.pid) this.ctx.tmux.detached(dir, viewerShell.pid);
      audit.emit(user.name, { type: 'share.leave', owner: owner.name, role: ownerRole.name, viewer: user.name, reason });
      void this.ctx.tmux.notify(socket, `tmuxgate: ${user.name} stopped watching`);
      setTimeout(() => this.client.end(), 2000).unref();
    });
    viewerShell.start(channelPort(stream));
    if (viewerShell.pid) this.ctx.tmux.attached(dir, viewerShell.pid);
  }

  /** An auditor role gets the replay menu, never a shell. */
  private startAuditor(stream: ServerChannel, pty: PseudoTtyInfo): null {
    const { config, clock, audit } = this.ctx;
    const { user, role } = this.resolved!;
    const size = clampSize(pty.cols, pty.rows);
    const id = newId('a_');
    const startedAt = clock.now();
    audit.emit(user.name, { type: 'session.start', sessionId: id, user: user.name, role: role.name, addr: this.addr, connId: this.id, term: pty.term, cols: size.cols, rows: size.rows, socketDir: '(auditor menu)' });
    const port = channelPort(stream);
    const menu = new AuditorMenu(
      { user: user.name, role: role.name, cols: size.cols, rows: size.rows, idleTimeoutMs: role.idleTimeoutMs ?? config.sessions.idleTimeout },
      { sessions: this.ctx.sessions, recordings: this.ctx.recordings, masterKeys: this.ctx.masterKeys, audit },
      { clock, logger: this.log },
      { write: (d) => void stream.write(d), onData: port.onData, onClose: port.onClose, exitAndClose: port.exitAndClose },
    );
    this.auditorMenu = menu;
    menu.onEnd((reason) => {
      audit.emit(user.name, { type: 'session.end', sessionId: id, user: user.name, role: role.name, reason, durationMs: clock.now() - startedAt });
      setTimeout(() => this.client.end(), 2000).unref();
    });
    menu.start();
    return null;
  }

  /** Creates the session's recording: a random data key, stored only wrapped by the master key. */
  private async openRecorder(id: string, user: string, role: Role, term: string, size: { cols: number; rows: number }, startedAt: number): Promise<Recorder> {
    const { recordingSink, recordings, masterKeys, auditSigner, clock } = this.ctx;
    const dataKey = randomBytes(32);
    let lastIn = 0;
    let lastStored = 0;
    let lastSeal = 0;
    const file = await recordingSink.create(id);
    recordings.create({ sessionId: id, file: file.path, dataKey, keys: masterKeys, cols: size.cols, rows: size.rows, now: clock.now() });
    const recorder = new Recorder({
      header: { v: 1, sessionId: id, user, role: role.name, startedAt, cols: size.cols, rows: size.rows, term, cipher: 'aes-256-gcm', compression: 'deflate-raw', recordInput: role.recordInput },
      dataKey,
      file,
      clock,
      signer: auditSigner,
      fsync: this.ctx.config.recording.fsync,
      flushIntervalMs: this.ctx.config.recording.flushInterval,
      maxChunkBytes: this.ctx.config.recording.maxChunkBytes,
      maxQueueBytes: this.ctx.config.recording.maxQueueBytes,
      onFlush: (st) => {
        recordings.flushed(id, st.chunks, st.head, st.bytesIn, st.bytesStored);
        this.ctx.metrics.inc('recording_bytes_total{kind="in"}', st.bytesIn - lastIn);
        this.ctx.metrics.inc('recording_bytes_total{kind="stored"}', st.bytesStored - lastStored);
        this.ctx.metrics.inc('recording_seal_seconds_total', (st.sealMs - lastSeal) / 1000);
        lastIn = st.bytesIn;
        lastStored = st.bytesStored;
        lastSeal = st.sealMs;
      },
    });
    await recorder.start();
    return recorder;
  }

  /** The OS account a role's tmux runs as, or why it cannot be used. */
  private accountFor(role: Role): OsAccount | string {
    const me = currentAccount();
    if (!role.runAs) return me;
    const acct = lookupAccount(role.runAs);
    if (!acct) return `role ${role.name}: account ${role.runAs} does not exist`;
    if (acct.uid === 0 && !role.allowRoot) return `role ${role.name}: runs as root without allowRoot`;
    if (acct.uid !== me.uid && me.uid !== 0) return `role ${role.name}: gateway must run as root to switch to ${role.runAs}`;
    return acct;
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
