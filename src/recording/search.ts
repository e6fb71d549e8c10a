import xterm from '@xterm/headless';
import { readResize, type Frame, type RecordingHeader } from './format.js';

export interface SearchHit {
  offsetMs: number;
  line: string;
}

type Term = InstanceType<typeof xterm.Terminal>;

const view = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);

/** Output bytes queued in the terminal before search waits for it to catch up. */
const MAX_QUEUED = 4 * 1024 * 1024;

/**
 * Every line the recorded stream drew, as it is finished: a headless terminal is fed every frame
 * and a row is read (joined with the rows it wrapped onto) at the moments its content could be
 * lost or is complete: when the cursor leaves it (line feed, cursor positioning, reverse index,
 * restore cursor) and just before it is erased, scrolled or the screen changes (erase in line or
 * display, insert/delete/scroll lines, scroll region, alternate screen, reset, resize), and at the
 * end. So a line that scrolled away in a fraction of a second, or was overwritten by the next
 * screen, is still seen; sampling the screen found 38 of 1,166 lines of a fast `seq`.
 */
export class LineCapture {
  private readonly term: Term;
  private readonly disposers: { dispose(): void }[] = [];

  /** `onLine` gets each captured line (trailing blanks trimmed), possibly the same one again. */
  constructor(
    cols: number,
    rows: number,
    private readonly onLine: (line: string) => void,
  ) {
    this.term = new xterm.Terminal({ cols, rows, scrollback: 1, allowProposedApi: true });
    const p = this.term.parser;
    const row = () => (this.row(this.term.buffer.active.cursorY), false);
    const all = () => (this.all(), false);
    for (const final of 'HfABdEFGr') this.disposers.push(p.registerCsiHandler({ final }, row));
    for (const final of 'KPX@') this.disposers.push(p.registerCsiHandler({ final }, row));
    for (const final of 'JLMST') this.disposers.push(p.registerCsiHandler({ final }, all));
    for (const final of 'hl') this.disposers.push(p.registerCsiHandler({ prefix: '?', final }, all));
    for (const final of 'JK') this.disposers.push(p.registerCsiHandler({ prefix: '?', final }, final === 'J' ? all : row));
    for (const final of 'MDE8') this.disposers.push(p.registerEscHandler({ final }, row));
    this.disposers.push(p.registerEscHandler({ final: 'c' }, all));
    // After a line feed the row the cursor left is the one above it (moved there by a scroll, or not).
    this.disposers.push(this.term.onLineFeed(() => this.row(this.term.buffer.active.cursorY - 1)));
  }

  /**
   * Queues output; `parsed` runs once it has been parsed (every capture for it made). Writes are
   * not awaited one by one: the terminal parses queued writes back to back, calling each one's
   * callback in between, so per-frame bookkeeping costs no event-loop turn.
   */
  write(data: Buffer, parsed?: () => void): void {
    // A carriage return not followed by a line feed starts overwriting the row in place: read
    // the row first (progress lines, `\r`-redrawn prompts).
    let from = 0;
    for (let i = data.indexOf(0x0d); i >= 0; i = data.indexOf(0x0d, i + 1)) {
      if (i > from && i + 1 < data.length && data[i + 1] !== 0x0a) {
        this.term.write(view(data.subarray(from, i)), () => this.row(this.term.buffer.active.cursorY));
        from = i;
      }
    }
    this.term.write(view(data.subarray(from)), parsed);
  }

  /** Resolves once everything written so far has been parsed. */
  flush(): Promise<void> {
    return new Promise((resolve) => this.term.write('', resolve));
  }

  resize(cols: number, rows: number): void {
    this.all();
    this.term.resize(Math.max(1, cols), Math.max(1, rows));
  }

  /** Captures every row on the screen (at the end, before a resize). */
  all(): void {
    const b = this.term.buffer.active;
    for (let y = 0; y < this.term.rows; y++) {
      // Rows that continue a wrapped line are part of the row above's capture.
      if (!b.getLine(b.baseY + y)?.isWrapped || y === 0) this.row(y);
    }
  }

  dispose(): void {
    for (const d of this.disposers) d.dispose();
    this.term.dispose();
  }

  /** Captures the logical line through viewport row `y`: the rows it wrapped from and onto, joined. */
  private row(y: number): void {
    if (y < 0 || y >= this.term.rows) return;
    const b = this.term.buffer.active;
    let start = b.baseY + y;
    while (start > b.baseY && b.getLine(start)?.isWrapped) start--;
    let text = b.getLine(start)?.translateToString(true) ?? '';
    for (let i = start + 1; i < b.baseY + this.term.rows && b.getLine(i)?.isWrapped; i++) text += b.getLine(i)!.translateToString(true);
    const line = text.trim();
    if (line) this.onLine(line);
  }
}

/**
 * Where `match` appeared on the reconstructed screen: every line the stream drew is tested
 * (LineCapture), and a matching line is a hit when it shows up, and again only after it has been
 * gone for `gapMs` of recording time (a redraw of the same line is not a new hit).
 * Works on the decrypted stream in memory: nothing is indexed in plaintext.
 */
export async function searchFrames(
  header: RecordingHeader,
  frames: Iterable<Frame> | AsyncIterable<Frame>,
  match: (line: string) => boolean,
  gapMs = 2000,
): Promise<SearchHit[]> {
  const hits: SearchHit[] = [];
  const lastSeen = new Map<string, number>();
  // Times of the frames queued in the terminal, oldest first; `t` is the one being parsed.
  const times: number[] = [];
  let t = 0;
  const cap = new LineCapture(header.cols, header.rows, (line) => {
    if (!match(line)) return;
    const seen = lastSeen.get(line);
    if (seen === undefined || t - seen > gapMs) hits.push({ offsetMs: t, line });
    lastSeen.set(line, t);
  });
  const parsed = () => {
    times.shift();
    if (times.length) t = times[0]!;
  };
  let queued = 0;
  try {
    for await (const f of frames) {
      if (f.kind === 'output') {
        if (times.length === 0) t = f.t;
        times.push(f.t);
        cap.write(f.data, parsed);
        queued += f.data.length;
        if (queued > MAX_QUEUED) {
          await cap.flush();
          queued = 0;
        }
      } else if (f.kind === 'resize') {
        await cap.flush();
        queued = 0;
        t = f.t;
        const { cols, rows } = readResize(f.data);
        cap.resize(cols, rows);
      }
    }
    await cap.flush();
    cap.all();
  } finally {
    cap.dispose();
  }
  return hits;
}
