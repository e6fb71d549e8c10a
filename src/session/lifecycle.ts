import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import { requireDeps } from '../platform/check-deps.js';
import type { AuditSink } from '../audit/log.js';
import type { SessionRepo } from '../store/sessions.js';
import type { RecordingRepo } from '../store/recordings.js';
import { NullRecorder, type Recorder } from '../recording/recorder.js';
import type { RecorderFactory } from './recorder-factory.js';
import type { LiveHandle, SessionRegistry } from './registry.js';
import type { EndReason, SessionTap } from './shell-session.js';

/** What every session's lifecycle writes to and reports through; built once by the composition root. */
export interface SessionLifecycleConfig {
  sessions: Pick<SessionRepo, 'start' | 'end'>;
  recordings: Pick<RecordingRepo, 'finish'>;
  audit: AuditSink;
  metrics: Pick<Metrics, 'inc'>;
  clock: Clock;
  live: Pick<SessionRegistry, 'add' | 'track'>;
  /** Opens recordings; null when recording is switched off (the benchmark setting: nothing is written). */
  recorders: Pick<RecorderFactory, 'open'> | null;
}

/** Checks a lifecycle config once, at start: "session lifecycle: missing X". */
export function checkLifecycleConfig(c: SessionLifecycleConfig): SessionLifecycleConfig {
  requireDeps('session lifecycle', c, ['sessions', 'recordings', 'audit', 'metrics', 'clock', 'live']);
  // null is a choice (recording off); absent is a mistake.
  if (c.recorders === undefined) requireDeps('session lifecycle', { recorders: undefined }, ['recorders']);
  return c;
}

/** One session as its row, audit events and recording header describe it. */
export interface SessionFacts {
  id: string;
  user: { id: number; name: string };
  role: { id: number; name: string; recordInput: boolean };
  addr: string;
  connId: string;
  term: string;
  cols: number;
  rows: number;
  /** Where its tmux server's socket lives, as audited ('(auditor menu)' for a menu). */
  socketDir: string;
  devMode?: boolean;
  /** Whether the session is recorded: a shell is, an auditor's menu (which shows recordings) is not. */
  recorded: boolean;
  /** The TERM audited at the start when it is not the row's (the menu audits what the client sent). */
  auditTerm?: string;
  /** The node whose tmux server a relayed session is attached to (cluster); absent for a local one. */
  serverNodeId?: string;
  log: Logger;
}

/** What a lifecycle runs and ends: a shell session or an auditor's menu. */
export interface EndableSession {
  /** Ends it from the gateway's side, telling the user why; its onEnd listeners then run. */
  end(reason: EndReason, message: string): void;
  /** Called once, with the reason, when it ends for any cause. */
  onEnd(fn: (reason: string) => void): void;
  readonly waitingForClient?: boolean;
  readonly waitingForPty?: boolean;
  readonly tty?: string | null;
}

type State = 'new' | 'opened' | 'live' | 'ended';

/**
 * Owns one session from start to end: the `sessions` row, the recording (opened before any byte
 * reaches the user, closed and its row finished at the end), the audit events and the recording
 * failure counter. There is one end path: whatever ends the session (the user, the shell, an
 * administrator, the recorder, a shutdown) arrives at `end` or at the running session's end,
 * and everything is written once.
 *
 *   open()  -> row written, recording started (or: row ended 'recording-failed', audited; false)
 *   begin() -> session.start audited, listed live; a recording failure now ends the session
 *   end()   -> the session is told to stop; once it has, the recording is sealed and its row
 *              finished, the row ended, session.end audited
 */
export class SessionLifecycle implements LiveHandle {
  private state: State = 'new';
  private startedAt = 0;
  private recorder: Recorder | NullRecorder | null = null;
  /** Whether a recordings row exists for this session (recording on and opened). */
  private hasRecordingRow = false;
  private handle: EndableSession | null = null;
  private reason: string | null = null;
  private wasLive = false;
  private closing: Promise<void> = Promise.resolve();
  private readonly endListeners: ((reason: string) => void)[] = [];

  constructor(
    private readonly c: SessionLifecycleConfig,
    readonly facts: SessionFacts,
  ) {}

  /**
   * Writes the session's row and, for a recorded session, opens its recording: fail closed, so
   * no byte reaches the user before the encrypted recording exists. False (row ended, failure
   * audited) when the recording cannot be created; the caller tells the user.
   */
  async open(): Promise<boolean> {
    if (this.state !== 'new') throw new Error(`session ${this.facts.id}: open() twice`);
    const { sessions, clock, recorders } = this.c;
    const f = this.facts;
    const { id, addr: remoteAddr, term, cols, rows, user, role } = f;
    const startedAt = (this.startedAt = clock.now());
    const relayed = f.serverNodeId ? { serverNodeId: f.serverNodeId } : {};
    const names = { userName: user.name, roleName: role.name };
    await sessions.start({ id, userId: user.id, roleId: role.id, ...names, remoteAddr, term, cols, rows, startedAt, ...relayed });
    this.state = 'opened';
    if (!f.recorded) return true;
    try {
      if (recorders) {
        const { recordInput } = role;
        this.recorder = await recorders.open({ id, user: user.name, role: role.name, recordInput, term, cols, rows, startedAt });
        this.hasRecordingRow = true;
      } else this.recorder = new NullRecorder();
      return true;
    } catch (e) {
      f.log.error({ err: e }, 'cannot start the recording');
      this.state = 'ended';
      this.reason = 'recording-failed';
      await sessions.end(f.id, 'recording-failed', clock.now());
      this.recordingFailed(String((e as Error).message));
      return false;
    }
  }

  /**
   * What the shell hands every byte and resize to (the recorder), or undefined for an unrecorded
   * session. Called on every read of the session: one call into the recorder, nothing more.
   */
  tap(): SessionTap | undefined {
    const r = this.recorder;
    if (!r) return undefined;
    const noInput = (): void => undefined;
    return {
      output: (d) => r.frame('output', d),
      input: this.facts.role.recordInput ? (d) => r.frame('input', d) : noInput,
      resize: (cols, rows) => r.resize(cols, rows),
    };
  }

  /**
   * The session runs: audited, listed live (killable), ended with the lifecycle. Call before
   * starting it. The start is on the record first: if it cannot be (the audit store failing), this
   * rejects with the session still only opened, and the caller ends it (row and recording closed).
   */
  async begin(handle: EndableSession): Promise<void> {
    if (this.state !== 'opened') throw new Error(`session ${this.facts.id}: begin() in state ${this.state}`);
    const { audit, metrics, live } = this.c;
    const f = this.facts;
    await audit.emit(f.user.name, {
      type: 'session.start',
      sessionId: f.id,
      user: f.user.name,
      role: f.role.name,
      addr: f.addr,
      connId: f.connId,
      term: f.auditTerm ?? f.term,
      cols: f.cols,
      rows: f.rows,
      socketDir: f.socketDir,
      ...(f.devMode ? { devMode: f.devMode } : {}),
    });
    if (this.state !== 'opened') throw new Error(`session ${this.facts.id}: ended while its start was audited`);
    this.handle = handle;
    this.state = 'live';
    this.wasLive = true;
    // A failure already met while the start was audited is reported now (onFailure replays it).
    this.recorder?.onFailure((e) => {
      metrics.inc('recording_failures_total');
      f.log.error({ err: e.message, session: f.id }, 'recording failed; ending the session');
      this.end('recording-failed', 'recording failed: session ended');
    });
    handle.onEnd((reason) => this.ended(reason));
    const recorder = this.recorder ? { recorder: this.recorder } : {};
    live.add({ id: f.id, userId: f.user.id, roleId: f.role.id, userName: f.user.name, roleName: f.role.name, shell: this, ...recorder });
    this.recorder?.marker({ event: 'start', user: f.user.name, role: f.role.name, addr: f.addr, cols: f.cols, rows: f.rows });
  }

  /**
   * Ends the session from the gateway's side (kill, disable, revoke, recording failure, shutdown,
   * or the client gone before it began). A running session is told why and stopped first. Any
   * later call, and the session's own end that follows, changes nothing.
   */
  end(reason: EndReason, message: string): void {
    if (this.state === 'ended') return;
    if (this.state === 'new') {
      this.state = 'ended'; // nothing was written yet, so nothing is left to close
      this.reason = reason;
      return;
    }
    // The handle's end fires its onEnd, which arrives in ended() with the same reason.
    if (this.handle) this.handle.end(reason, message);
    this.ended(reason);
  }

  /** Called once, with the reason, when the session ends for any cause. */
  onEnd(fn: (reason: string) => void): void {
    if (this.reason !== null && this.state === 'ended') fn(this.reason);
    else this.endListeners.push(fn);
  }

  /** Resolves when the end's writes are done (the recording sealed, the rows and audit written). */
  whenClosed(): Promise<void> {
    return this.closing;
  }

  /** The reason it ended, or null while it runs. */
  get endReason(): string | null {
    return this.state === 'ended' ? this.reason : null;
  }

  /** Output is waiting because the client does not read it (backpressure; a gauge). */
  get waitingForClient(): boolean {
    return this.handle?.waitingForClient ?? false;
  }

  /** The user's input is held at their client because the pty's program does not read it (a gauge). */
  get waitingForPty(): boolean {
    return this.handle?.waitingForPty ?? false;
  }

  /** The terminal device of the session's client, if it has one. */
  get tty(): string | null {
    return this.handle?.tty ?? null;
  }

  private recordingFailed(error: string): void {
    const f = this.facts;
    this.c.audit.post(f.user.name, { type: 'recording.failed', sessionId: f.id, user: f.user.name, role: f.role.name, error: error.slice(0, 200) });
  }

  private ended(reason: string): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.reason = reason;
    this.closing = this.close(reason).catch((e) => this.facts.log.error({ err: e }, 'closing the session failed'));
    this.c.live.track(this.closing);
    for (const fn of this.endListeners) fn(reason);
  }

  private async close(reason: string): Promise<void> {
    const { sessions, recordings, audit, clock } = this.c;
    const f = this.facts;
    const r = this.recorder;
    let recording: { recordingHash: string; recordingChunks: number } | null = null;
    if (r) {
      if (this.wasLive) r.marker({ event: 'end', reason });
      const trailer = await r.close(reason);
      const failure = r.failure;
      if (this.hasRecordingRow) {
        const durationMs = clock.now() - this.startedAt;
        await recordings.finish(f.id, failure ? 'failed' : 'sealed', durationMs, clock.now(), failure ? failure.message.slice(0, 300) : null);
      }
      await sessions.end(f.id, reason, clock.now());
      if (failure && this.wasLive) this.recordingFailed(failure.message);
      recording = { recordingHash: trailer?.finalHash ?? r.stats().head, recordingChunks: r.stats().chunks };
    } else await sessions.end(f.id, reason, clock.now());
    // A session that never began (the client left while it was prepared) was never audited as started.
    if (!this.wasLive) return;
    await audit.emit(f.user.name, {
      type: 'session.end',
      sessionId: f.id,
      user: f.user.name,
      role: f.role.name,
      reason,
      durationMs: clock.now() - this.startedAt,
      ...(recording ?? {}),
    });
    f.log.info({ session: f.id, reason }, 'session ended');
  }
}
