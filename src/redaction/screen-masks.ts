import type { IBuffer, IBufferCell } from '@xterm/headless';
import type { Redactor, Span } from './redactor.js';

/** Cells to mask on one screen row: columns [col, end), an identifier of `kind` found by `via`. */
export interface Mask {
  row: number;
  col: number;
  end: number;
  kind: string;
  via: string;
}

/** One screen row as text, and where each UTF-16 unit of it sits. */
interface Row {
  y: number;
  text: string;
  /** Column of each unit of `text`; null when unit i is column i (no wide or combining characters). */
  colOf: Int16Array | null;
  widthOf: Uint8Array | null;
  /** One character per column (wide and astral characters as U+FFFD in each of their cells). */
  colText: string;
  wrapped: boolean;
  /** Whether the last / first cell was written (a space counts; a cell never written or erased does not). */
  full: boolean;
  lead: boolean;
}

/** How far a seam scan reaches into the lines either side of the right margin (a URL's start may be far back). */
const SEAM = 512;
/** Characters of a token being written at the cursor (see `pendingAtCursor`). */
const TOKEN_CHAR = /[\p{L}\p{N}@._+\-/:#]/u;

/** Detection results per line text, kept by a view for the life of its screen (lines repeat between redraws). */
export class SpanCache {
  private readonly map = new Map<string, Span[]>();
  constructor(private readonly max = 4096) {}
  get(redactor: Redactor, text: string): Span[] {
    let s = this.map.get(text);
    if (!s) {
      if (this.map.size >= this.max) this.map.clear();
      s = redactor.detectText(text);
      this.map.set(text, s);
    }
    return s;
  }
  clear(): void {
    this.map.clear();
  }
}

function readRows(buffer: IBuffer, cols: number, rows: number, cell: IBufferCell): Row[] {
  const out: Row[] = [];
  for (let y = 0; y < rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    if (!line) {
      out.push({ y, text: ' '.repeat(cols), colOf: null, widthOf: null, colText: ' '.repeat(cols), wrapped: false, full: false, lead: false });
      continue;
    }
    const full = line.getCell(cols - 1, cell)?.getChars() !== '';
    const lead = line.getCell(0, cell)?.getChars() !== '';
    const fast = line.translateToString(false, 0, cols);
    if (fast.length === cols) {
      out.push({ y, text: fast, colOf: null, widthOf: null, colText: fast, wrapped: line.isWrapped, full, lead });
      continue;
    }
    let text = '';
    let colText = '';
    const colOf: number[] = [];
    const widthOf: number[] = [];
    for (let x = 0; x < cols; x++) {
      line.getCell(x, cell);
      const w = cell.getWidth();
      if (w === 0) continue;
      const ch = cell.getChars() || ' ';
      text += ch;
      for (let k = 0; k < ch.length; k++) {
        colOf.push(x);
        widthOf.push(w);
      }
      colText += ch.length === 1 && w === 1 ? ch : '\uFFFD'.repeat(w);
    }
    colText = colText.padEnd(cols).slice(0, cols);
    out.push({ y, text, colOf: Int16Array.from(colOf), widthOf: Uint8Array.from(widthOf), colText, wrapped: line.isWrapped, full, lead });
  }
  return out;
}

/** Rows joined into one text, with the offset of each row in it. */
interface Joined {
  rows: Row[];
  starts: number[];
  text: string;
}

const join = (rows: Row[]): Joined => {
  const starts: number[] = [];
  let text = '';
  for (const r of rows) {
    starts.push(text.length);
    text += r.text;
  }
  return { rows, starts, text };
};

/** Adds the cells of text span [start, end) of `j` to `add`, one call per row it touches. */
function spanCells(j: Joined, start: number, end: number, add: (y: number, col: number, end: number) => void): void {
  for (let r = 0; r < j.rows.length; r++) {
    const row = j.rows[r]!;
    const a = Math.max(start, j.starts[r]!) - j.starts[r]!;
    const b = Math.min(end, j.starts[r]! + row.text.length) - j.starts[r]!;
    if (a >= b) continue;
    const col = (i: number) => (row.colOf ? row.colOf[i]! : i);
    const width = (i: number) => (row.widthOf ? row.widthOf[i]! : 1);
    add(row.y, col(a), col(b - 1) + width(b - 1));
  }
}

/**
 * The cells to mask on the visible screen of `buffer`. Detection reads the screen as a person
 * does: a line that wrapped at the right margin (xterm marks the continuation rows `isWrapped`)
 * is one text; a row full to the margin followed by a row that starts with a character is also
 * read across the seam (a program or tmux that breaks lines itself); table columns are read
 * under their headers. So an identifier split across writes, coloured per digit, drawn by
 * cursor movement or wrapped is found as it is shown. With `cursor`, the word being written at
 * the cursor is masked while it may still be the start of an identifier (see pendingAtCursor).
 */
export function screenMasks(redactor: Redactor, buffer: IBuffer, cols: number, rows: number, o: { cache?: SpanCache; cursor?: boolean } = {}): Mask[] {
  const cell = buffer.getNullCell();
  const all = readRows(buffer, cols, rows, cell);
  const detect = (text: string) => (o.cache ? o.cache.get(redactor, text) : redactor.detectText(text));
  const masks: Mask[] = [];
  const push = (kind: string, via: string) => (y: number, col: number, end: number) => masks.push({ row: y, col, end, kind, via });

  // Logical lines: a row and the rows that continue it.
  const lines: Joined[] = [];
  for (const r of all) {
    if (r.wrapped && lines.length) lines[lines.length - 1] = join([...lines.at(-1)!.rows, r]);
    else lines.push(join([r]));
  }
  for (const j of lines) for (const s of detect(j.text)) spanCells(j, s.start, s.end, push(s.kind, s.via));

  // Seams: a row written to the right margin, then a row (not a soft-wrap continuation) written
  // from the first column, one side of the seam not blank: a line the program broke itself (fold,
  // a full-screen program drawing a long line as two rows). The joined text gives the rows'
  // context to each other too (a label at the end of one row, its value on the next).
  for (let i = 0; i + 1 < lines.length; i++) {
    const last = lines[i]!.rows.at(-1)!;
    const next = lines[i + 1]!.rows[0]!;
    if (!last.full || !next.lead || (last.colText[cols - 1] === ' ' && next.colText[0] === ' ')) continue;
    const a = lines[i]!.text;
    const b = lines[i + 1]!.text;
    const left = a.slice(Math.max(0, a.length - SEAM));
    const shift = a.length - left.length;
    const both = join([...lines[i]!.rows, ...lines[i + 1]!.rows]);
    for (const s of detect(left + b.slice(0, SEAM))) spanCells(both, s.start + shift, s.end + shift, push(s.kind, s.via));
  }

  // Table columns, on logical lines: a table wider than the screen wraps every row at the same
  // column, so offsets in the joined text line up under the header as they do on a wide screen.
  for (const { row, span } of redactor.detectColumns(lines.map((j) => j.rows.map((r) => r.colText).join('')))) {
    const rs = lines[row]!.rows;
    for (let k = Math.floor(span.start / cols); k < rs.length && k * cols < span.end; k++) {
      const col = Math.max(span.start - k * cols, 0);
      masks.push({ row: rs[k]!.y, col, end: Math.min(span.end - k * cols, cols), kind: span.kind, via: span.via });
    }
  }

  if (o.cursor) {
    const p = pendingAtCursor(all, buffer.cursorX, buffer.cursorY, cols);
    if (p) masks.push(p);
  }
  return mergeMasks(masks);
}

/**
 * The word just left of the cursor while it is being written, if it could be the start of an
 * identifier (three digits or more, or an @): masked as `partial` until the cursor leaves it,
 * so a value typed or printed a character at a time is not shown digit by digit before it is
 * complete enough to be recognised. A prompt, a command word or a finished line is not touched.
 */
function pendingAtCursor(rows: Row[], cx: number, cy: number, cols: number): Mask | null {
  const row = rows[cy];
  if (!row || cx <= 0) return null;
  const x = Math.min(cx, cols);
  let a = x;
  while (a > 0 && TOKEN_CHAR.test(row.colText[a - 1]!)) a--;
  const word = row.colText.slice(a, x);
  if (!(word.replace(/\D/g, '').length >= 3 || (word.includes('@') && word.length >= 3))) return null;
  return { row: cy, col: a, end: x, kind: 'partial', via: 'cursor' };
}

/** Per row, overlapping masks merged (the kind of the widest), sorted by column. */
export function mergeMasks(masks: Mask[]): Mask[] {
  masks.sort((p, q) => p.row - q.row || p.col - q.col || q.end - p.end);
  const out: Mask[] = [];
  for (const m of masks) {
    const last = out.at(-1);
    if (last && last.row === m.row && m.col < last.end) {
      if (m.end - m.col > last.end - last.col) Object.assign(last, { kind: m.kind, via: m.via });
      last.end = Math.max(last.end, m.end);
    } else out.push({ ...m });
  }
  return out;
}
