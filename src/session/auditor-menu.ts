import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { AuditSink } from '../audit/log.js';
import type { RecordingStore } from '../recording/access.js';
import { RecordingStream } from '../recording/stream.js';
import { playRecording, type PlayerIo } from '../recording/player.js';
import { formatOffset } from '../recording/asciicast.js';
import type { SessionRecord } from '../store/sessions.js';
import { escapeControls } from '../platform/text.js';
import { TerminalReportClassifier } from './terminal-reports.js';
import type { Config } from '../config/schema.js';
import { policyAudit, replayView, viewPolicy } from '../redaction/view-policy.js';

const CSI = '\x1b[';

/** The SSH side of an auditor's connection. */
export interface MenuChannel {
  /** false when the client's window is full (then onceDrain, if given, says when it has room). */
  write(data: string | Buffer): boolean | void;
  onceDrain?(fn: () => void): void;
  onData(fn: (d: Buffer) => void): void;
  onClose(fn: () => void): void;
  exitAndClose(code: number): void;
}

export interface AuditorMenuOptions {
  user: string;
  /** The auditor's gateway user id. */
  userId: number;
  role: string;
  cols: number;
  rows: number;
  idleTimeoutMs: number;
}

/**
 * What an auditor gets instead of a shell: a full-screen list of recorded sessions (filter,
 * pick, replay with the same keys as the CLI). Leaving the menu ends the connection. Every replay
 * is redacted unless the view policy says otherwise, and audited with the auditor's gateway name
 * and whether it was redacted.
 */
export class AuditorMenu {
  private selected = 0;
  private filter = '';
  private filtering = false;
  private replaying = false;
  private keyHandler: ((k: Buffer) => void) | null = null;
  private done = false;
  private lastInput: number;
  private cancelIdle: (() => void) | null = null;
  private readonly endListeners: ((reason: string) => void)[] = [];
  /** Recorded sessions, newest first, as last read from the store (the filter applies to these). */
  private recorded: SessionRecord[] = [];

  constructor(
    private readonly o: AuditorMenuOptions,
    private readonly store: RecordingStore & { audit: AuditSink },
    private readonly deps: { clock: Clock; logger: Logger; redaction: Pick<Config, 'redaction'> },
    private readonly ch: MenuChannel,
  ) {
    this.lastInput = deps.clock.now();
  }

  onEnd(fn: (reason: string) => void): void {
    this.endListeners.push(fn);
  }

  start(): void {
    // As in a shell: the auditor's terminal answering a query is not the auditor being active.
    const reports = new TerminalReportClassifier();
    this.ch.onData((d) => {
      if (reports.hasUserInput(d)) this.lastInput = this.deps.clock.now();
      // One read may carry several keys (typed fast, pasted, or coalesced on a slow link).
      for (const k of splitKeys(d.toString('latin1'))) {
        if (this.done) return;
        if (this.replaying) this.keyHandler?.(Buffer.from(k, 'latin1'));
        else this.onKey(k);
      }
    });
    this.ch.onClose(() => this.end('client-disconnected'));
    this.armIdle();
    this.render();
    void this.refresh();
  }

  /** Reads the recorded sessions again, then shows them. */
  private async refresh(): Promise<void> {
    try {
      const all = await this.store.sessions.list({});
      const recorded: SessionRecord[] = [];
      for (const s of all) if (await this.store.recordings.get(s.id)) recorded.push(s);
      this.recorded = recorded.reverse();
    } catch (e) {
      this.deps.logger.warn({ err: (e as Error).message }, 'auditor menu: cannot list sessions');
    }
    if (!this.done && !this.replaying) this.render();
  }

  resize(cols: number, rows: number): void {
    this.o.cols = cols;
    this.o.rows = rows;
    if (!this.replaying) this.render();
  }

  private armIdle(): void {
    this.cancelIdle?.();
    this.cancelIdle = this.deps.clock.setTimeout(
      () => {
        if (this.deps.clock.now() - this.lastInput >= this.o.idleTimeoutMs) {
          this.write(`${CSI}0m${CSI}2J${CSI}H[tmuxgate] logged off after ${Math.round(this.o.idleTimeoutMs / 60000)} minutes without input\r\n`);
          this.end('idle-timeout');
        } else this.armIdle();
      },
      Math.max(1000, this.lastInput + this.o.idleTimeoutMs - this.deps.clock.now()),
    );
  }

  private sessions(): SessionRecord[] {
    const f = this.filter.toLowerCase();
    return this.recorded.filter((s) => !f || `${s.id} ${s.user_name}+${s.role_name} ${new Date(s.started_at).toISOString()}`.toLowerCase().includes(f));
  }

  private render(): void {
    const list = this.sessions();
    this.selected = Math.min(this.selected, Math.max(0, list.length - 1));
    const height = Math.max(3, this.o.rows - 4);
    const top = Math.max(0, Math.min(this.selected - Math.floor(height / 2), list.length - height));
    let s = `${CSI}?25l${CSI}0m${CSI}2J${CSI}H${CSI}1mtmuxgate auditor ${this.o.user}+${this.o.role}${CSI}0m  sessions: ${list.length}  filter: ${this.filter || '(none)'}${this.filtering ? '_' : ''}\r\n\r\n`;
    for (let i = top; i < Math.min(list.length, top + height); i++) {
      const x = list[i]!;
      const dur = x.ended_at ? formatOffset(x.ended_at - x.started_at) : 'live';
      const line = `${i === this.selected ? '>' : ' '} ${x.id}  ${new Date(x.started_at).toISOString().slice(0, 16).replace('T', ' ')}  ${escapeControls(`${x.user_name}+${x.role_name}`).padEnd(24)} ${dur.padStart(8)}  ${x.state}`;
      s += (i === this.selected ? `${CSI}7m${line.slice(0, this.o.cols - 1)}${CSI}0m` : line.slice(0, this.o.cols - 1)) + '\r\n';
    }
    if (list.length === 0) s += '  (no recorded sessions match)\r\n';
    s += `${CSI}${this.o.rows};1H[up/down] move  [enter] replay  [/] filter  [q] quit`;
    this.write(s);
  }

  private onKey(k: string): void {
    if (this.filtering) {
      if (k === '\r' || k === '\x1b') this.filtering = false;
      else if (k === '\x7f' || k === '\b') this.filter = this.filter.slice(0, -1);
      else if (/^[\x20-\x7e]+$/.test(k)) this.filter = (this.filter + k).slice(0, 40);
      this.selected = 0;
      this.render();
      return;
    }
    if (k === 'q' || k === '\x03' || k === '\x04') return this.end('left-menu');
    if (k === '\x1b[A' || k === 'k') this.selected = Math.max(0, this.selected - 1);
    else if (k === '\x1b[B' || k === 'j') this.selected++;
    else if (k === '/') this.filtering = true;
    else if (k === '\r') return void this.replay();
    this.render();
  }

  private async replay(): Promise<void> {
    const s = this.sessions()[this.selected];
    if (!s) return;
    this.replaying = true;
    try {
      // Streamed: one chunk in memory and asynchronous reads, whatever the recording's size, so
      // other users' keystrokes are not held up by an auditor opening a large recording.
      const rec = await RecordingStream.open(this.store, s.id);
      if (this.done) return void (await rec.close()); // the auditor left while it opened
      const detail = `over SSH as ${this.o.user}+${this.o.role}`;
      const { clock, redaction } = this.deps;
      const policy = await viewPolicy({ config: redaction, clock }, { actor: this.o.user, userId: this.o.userId }, { view: 'replay', sessionId: s.id });
      await this.store.audit.emit(this.o.user, { type: 'recording.access', action: 'replay', sessionId: s.id, detail, ...policyAudit(policy) });
      const view = replayView(policy, redaction, rec.header.cols, rec.header.rows);
      const io: PlayerIo = {
        write: (d) => this.write(d),
        ...(this.ch.onceDrain ? { onceDrain: (fn: () => void) => this.ch.onceDrain!(fn) } : {}),
        columns: () => this.o.cols,
        onKey: (fn) => (this.keyHandler = fn),
        interactive: true,
        release: () => (this.keyHandler = null),
      };
      try {
        await playRecording(io, rec, { speed: 1, from: 0, idleLimit: 2000, view });
      } finally {
        view?.dispose();
        await rec.close();
      }
    } catch (e) {
      this.deps.logger.warn({ err: (e as Error).message, session: s.id }, 'auditor replay failed');
      this.write(`${CSI}2J${CSI}Hcannot replay ${s.id}: ${escapeControls((e as Error).message)}\r\npress a key`);
      await new Promise<void>((r) => (this.keyHandler = () => r()));
    } finally {
      this.replaying = false;
      this.keyHandler = null;
    }
    if (!this.done) await this.refresh();
  }

  /** Ends the menu from the gateway's side (an administrator's action, shutdown), saying why. */
  stop(reason: string, message: string): void {
    this.write(`${CSI}0m\r\n[tmuxgate] ${message}.\r\n`);
    this.end(reason);
  }

  /** Nothing is written once the menu has ended (the channel may be closed). */
  private write(d: string | Buffer): boolean | void {
    if (!this.done) return this.ch.write(d);
  }

  end(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.cancelIdle?.();
    // A replay in progress stops as if the auditor pressed q; its timers must not outlive the menu.
    this.keyHandler?.(Buffer.from('q'));
    try {
      this.ch.write(`${CSI}?25h${CSI}0m\r\n`);
      this.ch.exitAndClose(0);
    } catch {
      /* gone */
    }
    for (const fn of this.endListeners) fn(reason);
  }
}

/** Splits terminal input into keys: one escape sequence (arrows: ESC [ A, ESC O A) or one character each. */
export function splitKeys(s: string): string[] {
  const keys: string[] = [];
  for (let i = 0; i < s.length;) {
    const m = s[i] === '\x1b' ? /^\x1b(\[[0-9;?]*[\x40-\x7e]|O[\x40-\x7e])/.exec(s.slice(i)) : null;
    const k = m ? m[0] : s[i]!;
    keys.push(k);
    i += k.length;
  }
  return keys;
}
