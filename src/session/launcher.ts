import { requireDeps } from '../platform/check-deps.js';
import { parseLoginName } from '../authz/login-name.js';
import type { UserRepo } from '../store/users.js';
import type { RoleRepo } from '../store/roles.js';
import type { TerminalChannel } from './shell-session.js';
import type { GatewayCommand } from './gateway-commands.js';
import type { ShellStarter } from './shell-start.js';
import type { Sharing } from './sharing.js';
import type { AuditorSessions } from './auditor-session.js';
import { closeWith, type ConnectionInfo, type Resizable, type TerminalRequest } from './ports.js';

export type { ConnectionInfo, Resizable, TerminalRequest } from './ports.js';

/** The session side's parts; built once by the composition root. */
export interface SessionLauncherConfig {
  shells: Pick<ShellStarter, 'start'>;
  sharing: Pick<Sharing, 'command' | 'watch'>;
  auditors: Pick<AuditorSessions, 'start'>;
  /** Resolve a viewer role's target session. */
  users: Pick<UserRepo, 'find'>;
  roles: Pick<RoleRepo, 'find'>;
  /** Asked before any session starts: why none may start now (the user's words, the audit detail), or null. */
  admit?: () => { why: string; detail: string } | null;
}

/** What an authenticated connection may start on its channel. */
export interface ConnectionSessions {
  /** A shell request: the role's session, a viewer role's view, or an auditor's menu. */
  shell(ch: TerminalChannel, pty: TerminalRequest, clientEnv: Record<string, string>): Promise<Resizable | null>;
  /** An exec request naming a gateway command (share, unshare, watchers, watch). */
  command(cmd: GatewayCommand, ch: TerminalChannel, pty: TerminalRequest | null): Promise<Resizable | null>;
}

/**
 * Starts what an authenticated user gets on a channel, by the role's kind: their (role, user)
 * tmux session with its recording, a read-only view of a shared session, the gateway commands,
 * or an auditor's replay menu. Knows nothing of ssh2: the connection hands it a TerminalChannel.
 */
export class SessionLauncher {
  private readonly c: SessionLauncherConfig;

  constructor(config: SessionLauncherConfig) {
    this.c = requireDeps('session launcher', config, ['shells', 'sharing', 'auditors', 'users', 'roles']);
  }

  /** The session side for one authenticated connection. */
  forConnection(conn: ConnectionInfo): ConnectionSessions {
    return {
      shell: (ch, pty, clientEnv) => this.shell(conn, ch, pty, clientEnv),
      command: (cmd, ch, pty) => {
        const no = cmd.cmd === 'watch' ? this.c.admit?.() : null;
        return no ? Promise.resolve(refuse(conn, ch, no.why, no.detail)) : this.c.sharing.command(conn, cmd, ch, pty);
      },
    };
  }

  private async shell(conn: ConnectionInfo, ch: TerminalChannel, pty: TerminalRequest, clientEnv: Record<string, string>): Promise<Resizable | null> {
    const { role } = conn;
    const no = this.c.admit?.();
    if (no) return refuse(conn, ch, no.why, no.detail);
    if (role.kind === 'auditor') return this.c.auditors.start(conn, ch, pty);
    if (role.kind === 'viewer') {
      // A viewer role is a standing read-only view of one named session: the grant is the permission.
      const target = parseLoginName(role.viewOf ?? '');
      const owner = target ? await this.c.users.find(target.user) : null;
      const ownerRole = target?.role ? await this.c.roles.find(target.role) : null;
      if (!owner || !ownerRole) return refuse(conn, ch, 'the session this role shows does not exist', `viewer role ${role.name}: ${role.viewOf}`);
      return this.c.sharing.watch(conn, ch, pty, owner, ownerRole);
    }
    if (role.kind !== 'shell') return refuse(conn, ch, 'this role has no shell', `role ${role.name} is of kind ${role.kind}`);
    return this.c.shells.start(conn, ch, pty, clientEnv);
  }
}

/** Refuses a shell request: audited as request.denied, the user told why. */
function refuse(conn: ConnectionInfo, ch: TerminalChannel, why: string, detail: string): null {
  conn.deny('shell', detail);
  return closeWith(ch, 1, `tmuxgate: ${why}`);
}
