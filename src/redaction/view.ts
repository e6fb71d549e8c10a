import { Screen } from '../recording/screen.js';
import { readResize, type Frame } from '../recording/format.js';
import type { Redactor } from './redactor.js';
import { renderRow, rowText } from './render.js';
import { screenMasks, SpanCache, type Mask } from './screen-masks.js';

const CSI = '\x1b[';

/**
 * A redacted view of a terminal stream: a headless terminal kept in sync with the stream, and
 * after each batch of output the visible screen re-drawn with its identifiers masked. The viewer
 * never receives the stream's own bytes, only this module's drawing (cursor position, SGR, text,
 * erase), so nothing the stream does can bring a masked value back.
 *
 *  - replay: feed each tick's frames with write(), send update(); after a seek, reset() and feed
 *    the screen the player rebuilt (screenAt's snapshot), then update() redraws it all;
 *  - live observe / watch: feed(chunk) per chunk of the session's stream, send what it returns;
 *  - export: redactFrames() below turns a frame stream into a redacted one (asciicast lines);
 *  - search result lines: Redactor.redactLine().
 *
 * update() sends only the rows whose redacted drawing changed since the last one (a full redraw
 * after reset() or a resize), so a steady screen costs nothing.
 */
export class RedactingView {
  private readonly screen: Screen;
  private readonly cache = new SpanCache();
  /** The rows as the viewer last got them; null: the viewer's screen is unknown (redraw all). */
  private shown: string[] | null = null;
  /** Where the viewer's cursor was left (a CUP sequence). */
  private cursorAt = '';

  /** `pendingAtCursor` (default true): mask the word being written at the cursor while it may be the start of an identifier. */
  constructor(
    private readonly redactor: Redactor,
    cols: number,
    rows: number,
    private readonly o: { pendingAtCursor?: boolean } = {},
  ) {
    this.screen = new Screen(cols, rows);
  }

  get cols(): number {
    return this.screen.cols;
  }
  get rows(): number {
    return this.screen.rows;
  }

  /**
   * Feeds terminal output; resolves once parsed. Writes are applied in order without waiting for
   * each; `parsed` runs right after this one is parsed (update() there sees exactly its state).
   */
  write(data: Buffer | string, parsed?: () => void): Promise<void> {
    return this.screen.write(data, parsed);
  }

  resize(cols: number, rows: number): void {
    this.screen.resize(cols, rows);
    this.shown = null;
  }

  /** The viewer's screen is unknown (a seek, a new viewer): the next update() redraws everything. */
  reset(): void {
    this.shown = null;
  }

  /** The cells masked on the current screen. */
  masks(): Mask[] {
    return screenMasks(this.redactor, this.screen.buffer, this.cols, this.rows, { cache: this.cache, cursor: this.o.pendingAtCursor !== false });
  }

  /** Escape sequences that bring the viewer from what it last got to the current redacted screen. */
  update(): string {
    const rows = this.render();
    const full = this.shown === null || this.shown.length !== rows.length;
    let out = full ? `${CSI}0m${CSI}H${CSI}2J` : '';
    rows.forEach((r, y) => {
      if (full ? r !== `${CSI}0m${CSI}K` : r !== this.shown![y]) out += `${CSI}${y + 1};1H${r}`;
    });
    this.shown = rows;
    const cursor = this.cursor();
    if (!out && cursor === this.cursorAt) return '';
    this.cursorAt = cursor;
    return out + cursor;
  }

  private cursor(): string {
    const b = this.screen.buffer;
    return `${CSI}${b.cursorY + 1};${Math.min(b.cursorX, this.cols - 1) + 1}H`;
  }

  /** The whole redacted screen as escape sequences (a keyframe), leaving update()'s state alone. */
  snapshot(): string {
    let out = `${CSI}0m${CSI}H${CSI}2J`;
    this.render().forEach((r, y) => (out += `${CSI}${y + 1};1H${r}`));
    return out + this.cursor();
  }

  /** write() then update(): the filter for a live stream. */
  async feed(data: Buffer | string): Promise<string> {
    await this.write(data);
    return this.update();
  }

  /** The visible screen as redacted text, one string per row (trailing blanks trimmed). */
  lines(): string[] {
    const b = this.screen.buffer;
    const masks = this.masks();
    const cell = b.getNullCell();
    return Array.from({ length: this.rows }, (_, y) =>
      rowText(
        b.getLine(b.viewportY + y),
        this.cols,
        masks.filter((m) => m.row === y),
        cell,
        this.redactor.config.fill,
      ).trimEnd(),
    );
  }

  dispose(): void {
    this.screen.dispose();
    this.cache.clear();
  }

  private render(): string[] {
    const b = this.screen.buffer;
    const masks = this.masks();
    const cell = b.getNullCell();
    const out: string[] = [];
    let mi = 0;
    for (let y = 0; y < this.rows; y++) {
      const row: Mask[] = [];
      while (mi < masks.length && masks[mi]!.row === y) row.push(masks[mi++]!);
      out.push(renderRow(b.getLine(b.viewportY + y), this.cols, row, cell, this.redactor.config.fill));
    }
    return out;
  }
}

/** Output queued in the terminal before redactFrames waits for it to be parsed. */
const MAX_QUEUED = 4 * 1024 * 1024;

/**
 * A recorded frame stream as its redacted view, for export: output frames become redacted screen
 * updates (frames within `coalesceMs` of the first of a batch are drawn as one, so a value split
 * across writes in quick succession is never shown half-written), resizes pass through followed by
 * a full redraw, markers pass through, and input frames are dropped: keystrokes are text without a
 * screen position, so they cannot be masked by what the screen shows, and a typed identifier is
 * on the screen as its echo anyway. Writes are queued without waiting for each; a batch's update
 * is drawn in the callback of its last write, so it sees exactly that state.
 */
export async function* redactFrames(
  redactor: Redactor,
  size: { cols: number; rows: number },
  frames: Iterable<Frame> | AsyncIterable<Frame>,
  o: { coalesceMs?: number; pendingAtCursor?: boolean } = {},
): AsyncGenerator<Frame> {
  const coalesce = o.coalesceMs ?? 20;
  const view = new RedactingView(redactor, size.cols, size.rows, { pendingAtCursor: o.pendingAtCursor ?? true });
  const ready: Frame[] = [];
  let parsed: Promise<void> = Promise.resolve();
  let open = false;
  let first = 0;
  let lastT = 0;
  let queued = 0;
  /** Ends the open batch: its update is made once everything queued so far is parsed. */
  const close = () => {
    if (!open) return;
    open = false;
    const t = lastT;
    parsed = view.write('', () => {
      const data = view.update();
      if (data) ready.push({ t, kind: 'output', data: Buffer.from(data) });
    });
  };
  try {
    for await (const f of frames) {
      if (f.kind === 'output') {
        if (open && f.t - first > coalesce) close();
        if (!open) {
          open = true;
          first = f.t;
        }
        parsed = view.write(f.data);
        lastT = f.t;
        if ((queued += f.data.length) > MAX_QUEUED) {
          await parsed;
          queued = 0;
        }
      } else if (f.kind !== 'input') {
        close();
        await parsed;
        queued = 0;
        yield* ready.splice(0);
        if (f.kind === 'resize') {
          const { cols, rows } = readResize(f.data);
          view.resize(cols, rows);
          yield f;
          yield { t: f.t, kind: 'output', data: Buffer.from(view.update()) };
        } else yield f;
      }
      if (ready.length) yield* ready.splice(0);
    }
    close();
    await parsed;
    yield* ready.splice(0);
  } finally {
    view.dispose();
  }
}
