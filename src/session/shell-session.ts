import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { Pty, PtySpawnOptions } from '../platform/pty.js';
import { PtyFlow } from './pty-flow.js';
import { TerminalReportClassifier } from './terminal-reports.js';

/** The SSH side of a shell, as the session sees it. The ssh2 adapter implements it. */
export interface TerminalChannel {
  /** Writes output; false means the client's window is full: wait for onceDrain. */
  write(data: Buffer): boolean;
  onceDrain(fn: () => void): void;
  onData(fn: (data: Buffer) => void): void;
  /** Stops (and restarts) the user's input: their client then waits on the channel's window. */
  pause?(): void;
  resume?(): void;
  onClose(fn: () => void): void;
  /** Sends exit-status and closes the channel. */
  exitAndClose(code: number): void;
}

/** Sizes a client may ask for are clamped into this box (0 means "unknown": 80x24). */
export const SIZE_LIMITS = { minCols: 10, maxCols: 1000, minRows: 3, maxRows: 500 } as const;

/** Clamps a requested terminal size; absurd values are never fatal. */
export function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const c = Number.isFinite(cols) && cols > 0 ? cols : 80;
  const r = Number.isFinite(rows) && rows > 0 ? rows : 24;
  return {
    cols: Math.min(SIZE_LIMITS.maxCols, Math.max(SIZE_LIMITS.minCols, Math.floor(c))),
    rows: Math.min(SIZE_LIMITS.maxRows, Math.max(SIZE_LIMITS.minRows, Math.floor(r))),
  };
}

/** Sees every byte and resize of a session: the recorder. */
export interface SessionTap {
  output(data: Buffer): void;
  input(data: Buffer): void;
  resize(cols: number, rows: number): void;
}

export interface ShellSessionOptions {
  id: string;
  spawn: PtySpawnOptions;
  idleTimeoutMs: number;
  idleWarningMs: number;
  maxSessionMs: number;
  tap?: SessionTap;
  /** Rewrites output before it reaches the client (a read-only view of someone else's screen). */
  outputFilter?: (data: Buffer) => Buffer;
  /**
   * Shows the output through a view instead (a redacted screen: redaction/live.ts): the view takes
   * what the pty writes and sends its own drawing with `send`. Given, it replaces outputFilter.
   */
  outputView?: (send: (data: Buffer) => void) => OutputView;
  /**
   * A view of someone else's session (a watcher): the keystrokes never reach the pty. Its program
   * runs as the watched pair, whose tmux server can make it exec anything (`detach-client -E`),
   * which would then read what the watcher types. They still count as input for idleness, and
   * Ctrl-\ (VIEW_QUIT) leaves.
   */
  viewOnly?: boolean;
}

/** Ctrl-\: leaves a view-only session, whatever runs in its pty. */
export const VIEW_QUIT = 0x1c;

/** A view between the pty and the client: it is fed the output and draws what the client sees. */
export interface OutputView {
  /** false: the view holds too much unprocessed output; reading waits for onceReady. */
  push(data: Buffer): boolean;
  onceReady(fn: () => void): void;
  resize(cols: number, rows: number): void;
  dispose(): void;
}

export interface ShellSessionDeps {
  clock: Clock;
  logger: Logger;
  spawnPty: (o: PtySpawnOptions) => Pty;
}

/** Why a session ended, as recorded and audited. */
export type EndReason =
  | 'detached'
  | 'shell-exited'
  | 'client-disconnected'
  | 'idle-timeout'
  | 'max-session-time'
  | 'gateway-shutdown'
  | 'killed'
  | 'user-disabled'
  | 'role-revoked'
  | 'recording-failed'
  | 'spawn-failed'
  | 'evidence-lag';

const CRLF = '\r\n';

/** Reasons for which the gateway also ends the pair's tmux server and processes. */
const ENDS_PAIR: ReadonlySet<EndReason> = new Set(['killed', 'user-disabled', 'role-revoked']);

/**
 * One SSH shell attached to a tmux client in a pty. Moves bytes both ways with backpressure,
 * counts idleness from the user's input only, and ends exactly once.
 */
export class ShellSession {
  private pty: Pty | null = null;
  private flow: PtyFlow | null = null;
  private view: OutputView | null = null;
  private channel: TerminalChannel | null = null;
  private lastInput: number;
  private warned = false;
  private ended: EndReason | null = null;
  private inputHeld = false;
  private cancelIdle: (() => void) | null = null;
  private cancelMax: (() => void) | null = null;
  private readonly endListeners: ((r: EndReason) => void)[] = [];
  readonly startedAt: number;

  constructor(
    readonly opts: ShellSessionOptions,
    private readonly deps: ShellSessionDeps,
  ) {
    this.startedAt = deps.clock.now();
    this.lastInput = this.startedAt;
  }

  /** Called once, with the reason, when the session ends for any cause. */
  onEnd(fn: (r: EndReason) => void): void {
    this.endListeners.push(fn);
  }

  /** The pid of the program in the pty (the tmux client, or the sandbox around it). */
  get pid(): number | null {
    return this.pty?.pid ?? null;
  }

  /** The terminal device of the pty (how tmux names this client), if known. */
  get tty(): string | null {
    return this.pty?.tty ?? null;
  }

  /** Output is waiting because the client does not read it (backpressure). */
  get waitingForClient(): boolean {
    return this.flow?.waitingForClient ?? false;
  }

  /** The user's input is held at their client because the pty's program does not read it. */
  get waitingForPty(): boolean {
    return this.inputHeld;
  }

  get endReason(): EndReason | null {
    return this.ended;
  }

  /** Spawns the tmux client and wires it to the channel; a session already ended starts nothing. */
  start(channel: TerminalChannel): void {
    if (this.ended) return;
    this.channel = channel;
    let pty: Pty;
    try {
      pty = this.deps.spawnPty(this.opts.spawn);
    } catch (e) {
      this.deps.logger.error({ err: e }, 'could not start tmux');
      this.send(`tmuxgate: could not start your session; the failure was logged.${CRLF}`);
      this.finish('spawn-failed', 1);
      return;
    }
    this.pty = pty;
    const tap = this.opts.tap;
    const flow = new PtyFlow(pty);
    this.flow = flow;
    const filter = this.opts.outputFilter;
    // The client is not reading: stop reading the pty until it drains, so memory stays flat.
    const toClient = (d: Buffer) => {
      if (!this.ended && !channel.write(d) && flow.clientBlocked()) channel.onceDrain(() => flow.drained());
    };
    const view = this.opts.outputView?.(toClient) ?? null;
    this.view = view;
    pty.onData((d) => {
      if (this.ended) return;
      tap?.output(d);
      if (!view) toClient(filter ? filter(d) : d);
      else if (!view.push(d) && flow.viewBlocked()) view.onceReady(() => flow.viewReady());
      flow.afterRead();
    });
    pty.onExit((code) => this.finish(code === 0 ? 'detached' : 'shell-exited', code));
    // Idle time counts the user's input only: replies the user's terminal sends by itself (to
    // queries a program printed) go to the pty like everything else but keep nobody logged in.
    const reports = new TerminalReportClassifier();
    channel.onData((d) => {
      if (this.ended) return;
      if (reports.hasUserInput(d)) {
        this.lastInput = this.deps.clock.now();
        this.warned = false;
      } else this.deps.logger.debug({ session: this.opts.id, bytes: d.length }, 'terminal reports only: not counted as input');
      if (this.opts.viewOnly) {
        if (d.includes(VIEW_QUIT)) {
          this.send(`${CRLF}[tmuxgate] you stopped watching.${CRLF}`);
          this.finish('detached', 0);
        }
        return;
      }
      tap?.input(d);
      // A pty whose program does not read (it is the user's: stopped, or one that never reads)
      // queues what does not fit: the channel stops until it is written, and the rest of the
      // user's input waits at their client, on the channel's window, not in the gateway.
      if (pty.write(d) === false && !this.inputHeld && pty.onceWritable && channel.pause && channel.resume) {
        this.inputHeld = true;
        channel.pause();
        pty.onceWritable(() => {
          this.inputHeld = false;
          if (!this.ended) channel.resume?.();
        });
      }
    });
    channel.onClose(() => this.finish('client-disconnected', 0));
    this.scheduleIdle(this.opts.idleTimeoutMs - this.opts.idleWarningMs);
    this.cancelMax = this.deps.clock.setTimeout(
      () => this.end('max-session-time', `maximum session time of ${Math.round(this.opts.maxSessionMs / 60000)} minutes reached`),
      this.opts.maxSessionMs,
    );
  }

  /** Applies a window-change, clamped. */
  resize(cols: number, rows: number): void {
    const s = clampSize(cols, rows);
    this.opts.tap?.resize(s.cols, s.rows);
    this.view?.resize(s.cols, s.rows);
    try {
      this.pty?.resize(s.cols, s.rows);
    } catch (e) {
      this.deps.logger.warn({ err: e }, 'resize failed');
    }
  }

  /**
   * Ends the session from the gateway's side, telling the user why. The tmux session stays, except
   * when an administrator ended it (kill, disable, revoke: the pair's processes end too).
   */
  end(reason: EndReason, message: string): void {
    if (this.ended) return;
    const after = ENDS_PAIR.has(reason) ? 'Your tmux session was ended too.' : 'Your tmux session keeps running.';
    this.send(`${CRLF}[tmuxgate] ${message}. ${after}${CRLF}`);
    this.finish(reason, 0);
  }

  /** Gateway text to the user: recorded like everything else they see. */
  private send(text: string): void {
    const b = Buffer.from(text);
    this.opts.tap?.output(b);
    this.channel?.write(b);
  }

  private scheduleIdle(ms: number): void {
    this.cancelIdle?.();
    this.cancelIdle = this.deps.clock.setTimeout(() => this.checkIdle(), Math.max(0, ms));
  }

  /** One timer per session, re-armed from the last input: no per-second ticking per session. */
  private checkIdle(): void {
    if (this.ended) return;
    const idle = this.deps.clock.now() - this.lastInput;
    const { idleTimeoutMs, idleWarningMs } = this.opts;
    if (idle >= idleTimeoutMs) {
      this.end('idle-timeout', `logged off after ${Math.round(idleTimeoutMs / 60000)} minutes without input`);
      return;
    }
    if (idle >= idleTimeoutMs - idleWarningMs) {
      if (!this.warned) {
        this.warned = true;
        const left = Math.ceil((idleTimeoutMs - idle) / 1000);
        this.send(`${CRLF}[tmuxgate] no input for a while: you will be logged off in ${left} seconds. Press a key to stay.${CRLF}`);
      }
      this.scheduleIdle(idleTimeoutMs - idle);
      return;
    }
    this.scheduleIdle(idleTimeoutMs - idleWarningMs - idle);
  }

  private finish(reason: EndReason, code: number): void {
    if (this.ended) return;
    this.ended = reason;
    this.cancelIdle?.();
    this.cancelMax?.();
    this.flow?.stop();
    this.view?.dispose();
    if (this.pty) {
      try {
        this.pty.kill('SIGHUP'); // detaches this tmux client; the tmux server and its shells live on
      } catch {
        /* already gone */
      }
    }
    try {
      this.channel?.exitAndClose(code);
    } catch {
      /* client already gone */
    }
    for (const fn of this.endListeners) fn(reason);
  }
}
