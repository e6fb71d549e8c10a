import { SafeTerminalFilter } from '../recording/safe-terminal.js';
import type { Redactor } from './redactor.js';
import { RedactingView } from './view.js';

/** Unparsed output a live view holds before it asks its source to wait. */
const HIGH_WATER = 1024 * 1024;
/** A screen that never stops changing is still redrawn this often. */
const MAX_LATENCY_MS = 50;
/**
 * And never more often than this: a redraw recomputes the masks of the rows that changed, so a
 * watched user writing a byte a millisecond would otherwise cost the gateway's main thread a
 * redraw per byte per watcher. A later chunk within it is drawn by one trailing redraw.
 */
const MIN_INTERVAL_MS = 16;

/**
 * A live stream (observe, watch) shown redacted: chunks go into a RedactingView as they come;
 * once the terminal has parsed the last chunk queued (a burst of output is drawn once, not per
 * chunk), or at least every MAX_LATENCY_MS under a continuous stream, the redacted screen's
 * changes are sent, through the safe terminal filter. The viewer never receives the stream's bytes.
 * Fits ShellSession's OutputView.
 */
export class LiveRedaction {
  private readonly view: RedactingView;
  private readonly safe = new SafeTerminalFilter();
  private seq = 0;
  private queued = 0;
  private lastSent = 0;
  private ready: (() => void)[] = [];
  private disposed = false;
  private trailing: NodeJS.Timeout | null = null;

  constructor(
    redactor: Redactor,
    cols: number,
    rows: number,
    private readonly send: (data: Buffer) => void,
  ) {
    this.view = new RedactingView(redactor, cols, rows);
  }

  /** Takes a chunk of the stream; false when too much is queued (wait for onceReady). */
  push(data: Buffer): boolean {
    if (this.disposed) return true;
    const n = ++this.seq;
    this.queued += data.length;
    void this.view.write(data, () => {
      this.queued -= data.length;
      if (this.disposed) return;
      if (n === this.seq || performance.now() - this.lastSent >= MAX_LATENCY_MS) this.flush();
      if (this.queued < HIGH_WATER / 2 && this.ready.length) for (const fn of this.ready.splice(0)) fn();
    });
    return this.queued < HIGH_WATER;
  }

  onceReady(fn: () => void): void {
    if (this.queued < HIGH_WATER / 2) fn();
    else this.ready.push(fn);
  }

  /** The viewer's size changed: the view follows (the program redraws at the new size), and the next update redraws it all. */
  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    this.view.resize(cols, rows);
    void this.view.write('', () => !this.disposed && this.flush());
  }

  private flush(): void {
    if (this.trailing) return; // a redraw is already due
    const wait = this.lastSent + MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.trailing = setTimeout(() => {
        this.trailing = null;
        if (!this.disposed) this.draw();
      }, wait);
      return;
    }
    this.draw();
  }

  private draw(): void {
    this.lastSent = performance.now();
    const out = this.view.update();
    if (out) this.send(this.safe.write(out));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.trailing) clearTimeout(this.trailing);
    this.trailing = null;
    this.view.dispose();
    for (const fn of this.ready.splice(0)) fn();
  }
}
