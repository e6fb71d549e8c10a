import { performance } from 'node:perf_hooks';
import type { GatewayContext } from '../gateway-context.js';
import type { Logger } from '../platform/logger.js';
import { newId } from '../platform/ids.js';
import { parseLoginName } from '../authz/login-name.js';
import type { User } from '../store/users.js';
import type { Role } from '../store/roles.js';
import { NullRecorder, Recorder } from '../recording/recorder.js';
import { aesGcmSealer } from '../crypto/sealer.js';
import { clampSize, ShellSession, type TerminalChannel } from './shell-session.js';
import { normaliseTerm, shellEnv } from './env.js';
import { AuditorMenu } from './auditor-menu.js';
import { SafeTerminalFilter } from '../recording/safe-terminal.js';
import { TgError } from '../errors.js';
import type { GatewayCommand } from './gateway-commands.js';
import type { Pair } from '../host/tmux.js';

/** The terminal a client asked for (its pty request). */
export interface TerminalRequest {
  term: string;
  cols: number;
  rows: number;
}

/** Whatever runs on a channel and follows the client's window size. */
export interface Resizable {
  resize(cols: number, rows: number): void;
}

/** What the session side needs of the authenticated connection it runs on. */
export interface ConnectionInfo {
  id: string;
  addr: string;
  user: User;
  role: Role;
  log: Logger;
  /** Whether the client has gone (checked after the slow steps of a start). */
  closed(): boolean;
  /** Audits a refused request as request.denied. */
  deny(request: string, detail: string): void;
  /** Ends the SSH connection after a grace period, so the session's last words reach the client. */
  endSoon(): void;
}

/**
 * Starts what an authenticated user gets on a channel: their (role, user) tmux session with its
 * recording, a read-only view of a shared session, the gateway commands (share, unshare,
 * watchers, watch), or an auditor's replay menu. Knows nothing of ssh2: the connection hands it
 * a TerminalChannel.
 */
export class SessionLauncher {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly conn: ConnectionInfo,
  ) {}

  /** Starts (or reattaches) the (role, user) tmux session on an accepted shell channel. */
  async shell(ch: TerminalChannel, pty: TerminalRequest, clientEnv: Record<string, string>): Promise<Resizable | null> {
    const { config, clock, audit, sessions, live } = this.ctx;
    const { user, role } = this.conn;
    const fail = (why: string, detail: string) => {
      this.conn.deny('shell', detail);
      ch.write(Buffer.from(`tmuxgate: ${why}\r\n`));
      ch.exitAndClose(1);
      return null;
    };
    if (role.kind === 'auditor') return this.auditor(ch, pty);
    if (role.kind === 'viewer') {
      // A viewer role is a standing read-only view of one named session: the grant is the permission.
      const target = parseLoginName(role.viewOf ?? '');
      const owner = target ? this.ctx.users.find(target.user) : null;
      const ownerRole = target?.role ? this.ctx.roles.find(target.role) : null;
      if (!owner || !ownerRole) return fail('the session this role shows does not exist', `viewer role ${role.name}: ${role.viewOf}`);
      return this.watch(ch, pty, owner, ownerRole, (code, text) => closeWith(ch, code, text));
    }
    if (role.kind !== 'shell') return fail('this role has no shell', `role ${role.name} is of kind ${role.kind}`);
    const { host } = this.ctx;
    const shellPath = role.shell ?? config.sessions.defaultShell;
    const size = clampSize(pty.cols, pty.rows);
    const id = newId('s_', this.ctx.random);
    const term = normaliseTerm(pty.term, config.sessions.defaultTerm);
    // The pair: its own OS account (created on first use), socket directory, home and the
    // gateway-owned tmux.conf; then its server, started as the pair in the role's sandbox.
    let pair: Pair;
    let env: Record<string, string>;
    let cmd: { file: string; args: string[] };
    let starts = false;
    try {
      const t0 = performance.now();
      pair = await host.pairForLogin(role, user.id, user.name, shellPath);
      const t1 = performance.now();
      host.tmux.client(pair, '/dev/null', []); // a sandbox that cannot be set up refuses before anything starts
      const acct = pair.account;
      env = shellEnv({ term, lang: config.sessions.lang, home: acct.home, user: acct.name, shell: shellPath, gatewayUser: user.name, role: role.name, sessionId: id, clientEnv });
      ({ cmd, starts } = await host.servers.attachFor(pair, env, size.cols, size.rows));
      // Where an isolated login spends its time (bench/README.md reads these at debug level).
      const stages = { pairMs: +(t1 - t0).toFixed(1), serverMs: +(performance.now() - t1).toFixed(1) };
      this.conn.log.debug(stages, `session prepared${starts ? ' (server starts with the client)' : ''}`);
    } catch (e) {
      // Fail closed: no sandbox, no session; the user is told why (a sandbox's reason is the role's, not a secret).
      if (e instanceof TgError && e.code === 'TG_ERR_SANDBOX') return fail(`sandbox could not be set up: ${e.message}`, `sandbox: ${e.message}`);
      this.conn.log.error({ err: e }, 'cannot prepare the session');
      return fail('your session could not be prepared; the reason was logged', `session prepare: ${(e as Error).message}`);
    }
    const devMode = host.devMode(role);
    if (devMode) ch.write(Buffer.from('tmuxgate: development mode: sessions are not isolated (the gateway is not running as root)\r\n'));
    const startedAt = clock.now();
    sessions.start({ id, userId: user.id, roleId: role.id, userName: user.name, roleName: role.name, remoteAddr: this.conn.addr, term, cols: size.cols, rows: size.rows, startedAt });
    // Recording first: no byte reaches the user before the encrypted recording exists (fail closed).
    let recorder: Recorder | NullRecorder;
    try {
      recorder = config.recording.enabled ? await this.openRecorder(id, user.name, role, term, size, startedAt) : new NullRecorder();
    } catch (e) {
      this.conn.log.error({ err: e }, 'cannot start the recording');
      sessions.end(id, 'recording-failed', clock.now());
      audit.emit(user.name, { type: 'recording.failed', sessionId: id, user: user.name, role: role.name, error: String((e as Error).message).slice(0, 200) });
      return fail('recording failed: session not started', 'recording could not be created');
    }
    if (this.conn.closed()) {
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
          cwd: '/',
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
      { clock, logger: this.conn.log.child({ session: id }), spawnPty: this.ctx.spawnPty },
    );
    recorder.onFailure((e) => {
      this.ctx.metrics.inc('recording_failures_total');
      this.conn.log.error({ err: e.message, session: id }, 'recording failed; ending the session');
      shell.end('recording-failed', 'recording failed: session ended');
    });
    audit.emit(user.name, { type: 'session.start', sessionId: id, user: user.name, role: role.name, addr: this.conn.addr, connId: this.conn.id, term, cols: size.cols, rows: size.rows, socketDir: pair.dir, ...(devMode ? { devMode } : {}) });
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
          this.conn.log.info({ session: id, reason }, 'session ended');
        })().catch((e) => this.conn.log.error({ err: e }, 'closing the session failed')),
      );
      // The channel is closed with its last words queued; OpenSSH leaves once its channel is
      // gone. Ending the connection at once could drop those words, so only a stuck client
      // is cut off, after a grace period.
      this.conn.endSoon();
    });
    live.add({ id, userId: user.id, roleId: role.id, userName: user.name, roleName: role.name, shell, recorder });
    recorder.marker({ event: 'start', user: user.name, role: role.name, addr: this.conn.addr, cols: size.cols, rows: size.rows });
    shell.start(ch);
    const clientPid = shell.pid;
    if (clientPid) {
      host.servers.attached(pair, clientPid, shell.tty, starts);
      shell.onEnd(() => host.servers.detached(pair, clientPid));
    }
    return shell;
  }

  /** share / unshare / watchers / watch: read-only sharing between users, audited. */
  async command(cmd: GatewayCommand, ch: TerminalChannel, pty: TerminalRequest | null): Promise<Resizable | null> {
    const { users, roles, audit, shares, clock } = this.ctx;
    const { user, role } = this.conn;
    const done = (code: number, text: string) => closeWith(ch, code, text);
    if (cmd.cmd === 'share' || cmd.cmd === 'unshare') {
      const viewer = users.find(cmd.user);
      if (!viewer || viewer.id === user.id) return done(1, `tmuxgate: cannot share with ${cmd.user}`);
      if (cmd.cmd === 'share') {
        shares.add(user.id, role.id, viewer.id, clock.now());
        audit.emit(user.name, { type: 'share.grant', owner: user.name, role: role.name, viewer: viewer.name });
        return done(0, `${viewer.name} may now watch your ${role.name} session read-only:\n  ssh -t ${viewer.name}@<gateway> watch ${user.name}+${role.name}`);
      }
      shares.remove(user.id, role.id, viewer.id);
      for (const v of this.ctx.live.viewers.values()) {
        if (v.viewerId === viewer.id && v.ownerUserId === user.id && v.ownerRoleId === role.id) v.shell.end('killed', `${user.name} stopped sharing`);
      }
      audit.emit(user.name, { type: 'share.revoke', owner: user.name, role: role.name, viewer: viewer.name });
      return done(0, `${viewer.name} may no longer watch your ${role.name} session`);
    }
    if (cmd.cmd === 'watchers') {
      const may = shares.viewerNames(user.id, role.id);
      const now = [...this.ctx.live.viewers.values()].filter((v) => v.ownerUserId === user.id && v.ownerRoleId === role.id).map((v) => v.viewer);
      return done(0, `may watch: ${may.join(', ') || 'nobody'}\nwatching now: ${now.join(', ') || 'nobody'}`);
    }
    if (cmd.cmd !== 'watch') return null;
    const owner = users.find(cmd.user);
    const ownerRole = owner ? (cmd.role ? roles.find(cmd.role) : owner.defaultRoleId ? roles.byId(owner.defaultRoleId) : null) : null;
    const shared = owner && ownerRole && shares.isShared(owner.id, ownerRole.id, user.id);
    if (!owner || !ownerRole || !shared) {
      this.conn.deny('watch', `watch ${cmd.user}${cmd.role ? '+' + cmd.role : ''}: not shared with ${user.name}`);
      return done(1, 'tmuxgate: that session is not shared with you');
    }
    if (!pty) return done(1, 'tmuxgate: watching needs a terminal; use ssh -t');
    return this.watch(ch, pty, owner, ownerRole, done);
  }

  /** A read-only tmux client on another user's live session (shared with, or a viewer role for, this user). */
  private async watch(ch: TerminalChannel, pty: TerminalRequest, owner: User, ownerRole: Role, done: (code: number, text: string) => null): Promise<Resizable | null> {
    const { audit, config, clock } = this.ctx;
    const { user } = this.conn;
    const { host } = this.ctx;
    // The owner's pair as the store knows it: the socket is checked to be a socket of that
    // account, and the read-only client runs as that account (never as a uid read off the socket).
    const pair = host.pairOf(ownerRole.id, owner.id);
    const socket = pair ? await host.servers.liveSocket(pair) : null;
    if (!pair || !socket) return done(1, `tmuxgate: ${owner.name} has no ${ownerRole.name} session running`);
    const size = clampSize(pty.cols, pty.rows);
    const term = normaliseTerm(pty.term, config.sessions.defaultTerm);
    let c: { file: string; args: string[] };
    try {
      c = host.tmux.client(pair, socket, ['attach-session', '-t', 'main', '-f', 'read-only,ignore-size']);
    } catch (e) {
      return done(1, `tmuxgate: cannot show that session: ${(e as Error).message}`);
    }
    // The owner's screen reaches another person's terminal: only a safe terminal subset passes.
    const safe = new SafeTerminalFilter();
    const viewerShell = new ShellSession(
      {
        id: newId('v_', this.ctx.random),
        outputFilter: (d) => safe.write(d),
        spawn: { file: c.file, args: c.args, cwd: '/', env: { PATH: '/usr/local/bin:/usr/bin:/bin', TERM: term, LANG: config.sessions.lang, HOME: '/' }, cols: size.cols, rows: size.rows, term },
        idleTimeoutMs: config.sessions.idleTimeout,
        idleWarningMs: config.sessions.idleWarning,
        maxSessionMs: config.sessions.maxSessionTime,
      },
      { clock, logger: this.conn.log, spawnPty: this.ctx.spawnPty },
    );
    const key = newId('w_', this.ctx.random);
    this.ctx.live.viewers.set(key, { viewerId: user.id, viewer: user.name, ownerUserId: owner.id, ownerRoleId: ownerRole.id, shell: viewerShell });
    audit.emit(user.name, { type: 'share.join', owner: owner.name, role: ownerRole.name, viewer: user.name, addr: this.conn.addr });
    await host.servers.notify(pair, socket, `tmuxgate: ${user.name} is watching (read-only)`);
    viewerShell.onEnd((reason) => {
      this.ctx.live.viewers.delete(key);
      if (viewerShell.pid) host.servers.detached(pair, viewerShell.pid);
      audit.emit(user.name, { type: 'share.leave', owner: owner.name, role: ownerRole.name, viewer: user.name, reason });
      void host.servers.notify(pair, socket, `tmuxgate: ${user.name} stopped watching`);
      this.conn.endSoon();
    });
    viewerShell.start(ch);
    if (viewerShell.pid) host.servers.attached(pair, viewerShell.pid, viewerShell.tty);
    return viewerShell;
  }

  /** An auditor role gets the replay menu, never a shell. */
  private auditor(ch: TerminalChannel, pty: TerminalRequest): Resizable {
    const { config, clock, audit, sessions, live } = this.ctx;
    const { user, role } = this.conn;
    const size = clampSize(pty.cols, pty.rows);
    const id = newId('a_', this.ctx.random);
    const startedAt = clock.now();
    const term = normaliseTerm(pty.term, config.sessions.defaultTerm);
    // A session like any other: listed live, killable, and ended when the auditor is disabled or
    // loses the role (access to recordings is revoked at once, not at the next login).
    sessions.start({ id, userId: user.id, roleId: role.id, userName: user.name, roleName: role.name, remoteAddr: this.conn.addr, term, cols: size.cols, rows: size.rows, startedAt });
    audit.emit(user.name, { type: 'session.start', sessionId: id, user: user.name, role: role.name, addr: this.conn.addr, connId: this.conn.id, term: pty.term, cols: size.cols, rows: size.rows, socketDir: '(auditor menu)' });
    const menu = new AuditorMenu(
      { user: user.name, role: role.name, cols: size.cols, rows: size.rows, idleTimeoutMs: role.idleTimeoutMs ?? config.sessions.idleTimeout },
      { sessions: this.ctx.sessions, recordings: this.ctx.recordings, masterKeys: this.ctx.masterKeys, audit },
      { clock, logger: this.conn.log },
      // write's result and onceDrain let a replay go at the auditor's client's pace (bounded memory).
      { write: (d) => ch.write(typeof d === 'string' ? Buffer.from(d) : d), onceDrain: (fn) => ch.onceDrain(fn), onData: (fn) => ch.onData(fn), onClose: (fn) => ch.onClose(fn), exitAndClose: (code) => ch.exitAndClose(code) },
    );
    menu.onEnd((reason) => {
      sessions.end(id, reason, clock.now());
      audit.emit(user.name, { type: 'session.end', sessionId: id, user: user.name, role: role.name, reason, durationMs: clock.now() - startedAt });
      this.conn.endSoon();
    });
    live.add({ id, userId: user.id, roleId: role.id, userName: user.name, roleName: role.name, shell: { end: (reason, message) => menu.stop(reason, message), onEnd: (fn) => menu.onEnd(fn) } });
    menu.start();
    return {
      resize: (cols, rows) => {
        const s = clampSize(cols, rows);
        menu.resize(s.cols, s.rows);
      },
    };
  }

  /** Creates the session's recording: a random data key, stored only wrapped by the master key. */
  private async openRecorder(id: string, user: string, role: Role, term: string, size: { cols: number; rows: number }, startedAt: number): Promise<Recorder> {
    const { recordingSink, recordings, masterKeys, auditSigner, clock } = this.ctx;
    const dataKey = this.ctx.random.bytes(32);
    let lastIn = 0;
    let lastStored = 0;
    let lastSeal = 0;
    const file = await recordingSink.create(id);
    recordings.create({ sessionId: id, file: file.path, dataKey, keys: masterKeys, cols: size.cols, rows: size.rows, now: clock.now() });
    const recorder = new Recorder({
      header: { v: 1, sessionId: id, user, role: role.name, startedAt, cols: size.cols, rows: size.rows, term, cipher: 'aes-256-gcm', compression: 'deflate-raw', recordInput: role.recordInput },
      sealer: aesGcmSealer(dataKey),
      file,
      clock,
      random: this.ctx.random,
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
    try {
      await recorder.start();
    } catch (e) {
      // The file was created but its header could not be written (disk full): close it, and
      // mark the row failed rather than leave it 'recording' until the next restart.
      await file.close().catch(() => {});
      recordings.finish(id, 'failed', 0, clock.now(), String((e as Error).message).slice(0, 300));
      throw e;
    }
    return recorder;
  }
}

/** Says the last words (lines end CRLF on a terminal) and closes the channel with an exit code. */
function closeWith(ch: TerminalChannel, code: number, text: string): null {
  ch.write(Buffer.from(text.replace(/\n/g, '\r\n') + '\r\n'));
  ch.exitAndClose(code);
  return null;
}
