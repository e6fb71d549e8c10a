import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Random } from '../platform/random.js';
import { requireDeps } from '../platform/check-deps.js';
import { newId } from '../platform/ids.js';
import type { AuditSink } from '../audit/log.js';
import type { Host } from '../host/host.js';
import type { TmuxServers } from '../host/tmux-servers.js';
import type { User, UserRepo } from '../store/users.js';
import type { Role, RoleRepo } from '../store/roles.js';
import type { ShareRepo } from '../store/shares.js';
import { SafeTerminalFilter } from '../recording/safe-terminal.js';
import { LiveRedaction } from '../redaction/live.js';
import { policyAudit, redactorFor, viewPolicy } from '../redaction/view-policy.js';
import type { Pty, PtySpawnOptions } from '../platform/pty.js';
import type { SessionRegistry } from './registry.js';
import { clampSize, ShellSession, type TerminalChannel } from './shell-session.js';
import { normaliseTerm } from './env.js';
import type { GatewayCommand } from './gateway-commands.js';
import { closeWith, type ConnectionInfo, type Resizable, type TerminalRequest } from './ports.js';

/** What watching asks of the privilege boundary: a read-only client of the owner's live server, and that server. */
export interface WatchHost {
  readOnlyClient: Host['readOnlyClient'];
  servers: Pick<TmuxServers, 'notify' | 'attached' | 'detached'>;
}

/** What sharing and watching are built with. */
export interface SharingConfig {
  settings: Pick<Config['sessions'], 'defaultTerm' | 'lang' | 'idleTimeout' | 'idleWarning' | 'maxSessionTime'>;
  /** A watcher who is not the session's own user sees it redacted (view-policy.ts decides). */
  redaction: Pick<Config, 'redaction'>;
  users: Pick<UserRepo, 'find'>;
  roles: Pick<RoleRepo, 'find' | 'byId'>;
  shares: Pick<ShareRepo, 'add' | 'remove' | 'viewerNames' | 'isShared'>;
  audit: AuditSink;
  host: WatchHost;
  /** Its `viewers`: who watches whom now. */
  live: Pick<SessionRegistry, 'viewers'>;
  clock: Clock;
  random: Random;
  spawnPty: (o: PtySpawnOptions) => Pty;
}

/**
 * Read-only sharing between users, audited: the gateway commands share, unshare, watchers and
 * watch, and the read-only tmux client a watcher (or a viewer role) gets on the owner's session.
 */
export class Sharing {
  private readonly c: SharingConfig;

  constructor(config: SharingConfig) {
    this.c = requireDeps('sharing', config, ['settings', 'redaction', 'users', 'roles', 'shares', 'audit', 'host', 'live', 'clock', 'random', 'spawnPty']);
  }

  /** share / unshare / watchers / watch on an exec channel. */
  async command(conn: ConnectionInfo, cmd: GatewayCommand, ch: TerminalChannel, pty: TerminalRequest | null): Promise<Resizable | null> {
    const { users, roles, audit, shares, clock, live } = this.c;
    const { user, role } = conn;
    const done = (code: number, text: string) => closeWith(ch, code, text);
    if (cmd.cmd === 'share' || cmd.cmd === 'unshare') {
      const viewer = await users.find(cmd.user);
      if (!viewer || viewer.id === user.id) return done(1, `tmuxgate: cannot share with ${cmd.user}`);
      if (cmd.cmd === 'share') {
        await shares.add(user.id, role.id, viewer.id, clock.now());
        await audit.emit(user.name, { type: 'share.grant', owner: user.name, role: role.name, viewer: viewer.name });
        return done(0, `${viewer.name} may now watch your ${role.name} session read-only:\n  ssh -t ${viewer.name}@<gateway> watch ${user.name}+${role.name}`);
      }
      await shares.remove(user.id, role.id, viewer.id);
      for (const v of live.viewers.values()) {
        if (v.viewerId === viewer.id && v.ownerUserId === user.id && v.ownerRoleId === role.id) v.shell.end('killed', `${user.name} stopped sharing`);
      }
      await audit.emit(user.name, { type: 'share.revoke', owner: user.name, role: role.name, viewer: viewer.name });
      return done(0, `${viewer.name} may no longer watch your ${role.name} session`);
    }
    if (cmd.cmd === 'watchers') {
      const may = await shares.viewerNames(user.id, role.id);
      const now = [...live.viewers.values()].filter((v) => v.ownerUserId === user.id && v.ownerRoleId === role.id).map((v) => v.viewer);
      return done(0, `may watch: ${may.join(', ') || 'nobody'}\nwatching now: ${now.join(', ') || 'nobody'}`);
    }
    if (cmd.cmd !== 'watch') return null;
    const owner = await users.find(cmd.user);
    const ownerRole = owner ? (cmd.role ? await roles.find(cmd.role) : owner.defaultRoleId ? await roles.byId(owner.defaultRoleId) : null) : null;
    const shared = owner && ownerRole && (await shares.isShared(owner.id, ownerRole.id, user.id));
    if (!owner || !ownerRole || !shared) {
      conn.deny('watch', `watch ${cmd.user}${cmd.role ? '+' + cmd.role : ''}: not shared with ${user.name}`);
      return done(1, 'tmuxgate: that session is not shared with you');
    }
    if (!pty) return done(1, 'tmuxgate: watching needs a terminal; use ssh -t');
    return this.watch(conn, ch, pty, owner, ownerRole);
  }

  /** A read-only tmux client on another user's live session (shared with, or a viewer role for, this user). */
  async watch(conn: ConnectionInfo, ch: TerminalChannel, pty: TerminalRequest, owner: User, ownerRole: Role): Promise<Resizable | null> {
    const { audit, settings, clock, host, live } = this.c;
    const { user } = conn;
    const done = (code: number, text: string) => closeWith(ch, code, text);
    // The owner's pair as the store knows it: the socket is checked to be a socket of that
    // account, and the read-only client runs as that account (never as a uid read off the socket).
    let client: Awaited<ReturnType<WatchHost['readOnlyClient']>>;
    try {
      client = await host.readOnlyClient(ownerRole.id, owner.id);
    } catch (e) {
      return done(1, `tmuxgate: cannot show that session: ${(e as Error).message}`);
    }
    if (!client) return done(1, `tmuxgate: ${owner.name} has no ${ownerRole.name} session running`);
    const { pair, socket, cmd: c } = client;
    const size = clampSize(pty.cols, pty.rows);
    const term = normaliseTerm(pty.term, settings.defaultTerm);
    // The owner's screen reaches another person's terminal: only a safe terminal subset passes,
    // and, unless the policy says otherwise, only its redacted view (PHI masked).
    const policy = await viewPolicy(
      { config: this.c.redaction, clock },
      { actor: user.name, userId: user.id },
      { view: 'watch', sessionId: null, ownerUserId: owner.id },
    );
    const redactor = policy.redact ? redactorFor(this.c.redaction) : null;
    const safe = new SafeTerminalFilter();
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', TERM: term, LANG: settings.lang, HOME: '/' };
    const viewerShell = new ShellSession(
      {
        id: newId('v_', this.c.random),
        outputFilter: (d) => safe.write(d),
        // The client runs as the owner: the watcher's keystrokes stay here (Ctrl-\ leaves).
        viewOnly: true,
        ...(redactor ? { outputView: (send: (d: Buffer) => void) => new LiveRedaction(redactor, size.cols, size.rows, send) } : {}),
        spawn: { file: c.file, args: c.args, cwd: '/', env, cols: size.cols, rows: size.rows, term },
        idleTimeoutMs: settings.idleTimeout,
        idleWarningMs: settings.idleWarning,
        maxSessionMs: settings.maxSessionTime,
      },
      { clock, logger: conn.log, spawnPty: this.c.spawnPty },
    );
    const key = newId('w_', this.c.random);
    live.viewers.set(key, { viewerId: user.id, viewer: user.name, ownerUserId: owner.id, ownerRoleId: ownerRole.id, shell: viewerShell });
    await audit.emit(user.name, { type: 'share.join', owner: owner.name, role: ownerRole.name, viewer: user.name, addr: conn.addr, ...policyAudit(policy) });
    await host.servers.notify(pair, socket, `tmuxgate: ${user.name} is watching (read-only)`);
    viewerShell.onEnd((reason) => {
      live.viewers.delete(key);
      if (viewerShell.pid) host.servers.detached(pair, viewerShell.pid);
      audit.post(user.name, { type: 'share.leave', owner: owner.name, role: ownerRole.name, viewer: user.name, reason });
      void host.servers.notify(pair, socket, `tmuxgate: ${user.name} stopped watching`);
      conn.endSoon();
    });
    viewerShell.start(ch);
    if (viewerShell.pid) host.servers.attached(pair, viewerShell.pid, viewerShell.tty);
    return viewerShell;
  }
}
