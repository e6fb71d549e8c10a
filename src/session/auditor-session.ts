import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Random } from '../platform/random.js';
import { requireDeps } from '../platform/check-deps.js';
import { newId } from '../platform/ids.js';
import type { AuditSink } from '../audit/log.js';
import type { RecordingStore } from '../recording/access.js';
import { AuditorMenu } from './auditor-menu.js';
import { clampSize, type TerminalChannel } from './shell-session.js';
import { normaliseTerm } from './env.js';
import { SessionLifecycle, type SessionLifecycleConfig } from './lifecycle.js';
import type { ConnectionInfo, Resizable, TerminalRequest } from './ports.js';

/** What auditors' sessions are built with. */
export interface AuditorSessionConfig {
  settings: Pick<Config['sessions'], 'defaultTerm' | 'idleTimeout'>;
  /** Replays are redacted unless the view policy says otherwise. */
  redaction: Pick<Config, 'redaction'>;
  /** The recordings the menu lists and replays, and the audit log every replay is written to. */
  recordings: RecordingStore & { audit: AuditSink };
  clock: Clock;
  random: Random;
  lifecycle: SessionLifecycleConfig;
}

/**
 * An auditor role gets the replay menu, never a shell. It is a session like any other: a row,
 * audited, listed live, killable, and ended when the auditor is disabled or loses the role
 * (access to recordings is revoked at once, not at the next login). It is not itself recorded.
 */
export class AuditorSessions {
  private readonly c: AuditorSessionConfig;

  constructor(config: AuditorSessionConfig) {
    this.c = requireDeps('auditor sessions', config, ['settings', 'redaction', 'recordings', 'clock', 'random', 'lifecycle']);
  }

  /** Opens the menu on an accepted shell channel. */
  async start(conn: ConnectionInfo, ch: TerminalChannel, pty: TerminalRequest): Promise<Resizable> {
    const { settings, clock } = this.c;
    const { user, role } = conn;
    const size = clampSize(pty.cols, pty.rows);
    const lifecycle = new SessionLifecycle(this.c.lifecycle, {
      id: newId('a_', this.c.random),
      user,
      role,
      addr: conn.addr,
      connId: conn.id,
      term: normaliseTerm(pty.term, settings.defaultTerm),
      auditTerm: pty.term,
      cols: size.cols,
      rows: size.rows,
      socketDir: '(auditor menu)',
      recorded: false,
      log: conn.log,
    });
    await lifecycle.open();
    const menu = new AuditorMenu(
      { user: user.name, userId: user.id, role: role.name, cols: size.cols, rows: size.rows, idleTimeoutMs: role.idleTimeoutMs ?? settings.idleTimeout },
      this.c.recordings,
      { clock, logger: conn.log, redaction: this.c.redaction },
      // write's result and onceDrain let a replay go at the auditor's client's pace (bounded memory).
      {
        write: (d) => ch.write(typeof d === 'string' ? Buffer.from(d) : d),
        onceDrain: (fn) => ch.onceDrain(fn),
        onData: (fn) => ch.onData(fn),
        onClose: (fn) => ch.onClose(fn),
        exitAndClose: (code) => ch.exitAndClose(code),
      },
    );
    await lifecycle.begin({ end: (reason, message) => menu.stop(reason, message), onEnd: (fn) => menu.onEnd(fn) });
    lifecycle.onEnd(() => conn.endSoon());
    menu.start();
    return {
      resize: (cols, rows) => {
        const s = clampSize(cols, rows);
        menu.resize(s.cols, s.rows);
      },
    };
  }
}
