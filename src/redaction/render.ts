import type { IBufferCell, IBufferLine } from '@xterm/headless';
import { maskText } from './redactor.js';
import type { Mask } from './screen-masks.js';

const CSI = '\x1b[';
/** How a mask is drawn: attributes reset, inverse video. Its own colours, never the masked cells': colour can carry information. */
export const MASK_SGR = `${CSI}0;7m`;

/** The SGR parameters that give a cell its attributes and colours ("0" for the default). */
export function sgrParams(c: IBufferCell): string {
  if (c.isAttributeDefault()) return '0';
  const p = ['0'];
  if (c.isBold()) p.push('1');
  if (c.isDim()) p.push('2');
  if (c.isItalic()) p.push('3');
  if (c.isUnderline()) p.push('4');
  if (c.isBlink()) p.push('5');
  if (c.isInverse()) p.push('7');
  if (c.isInvisible()) p.push('8');
  if (c.isStrikethrough()) p.push('9');
  if (c.isOverline()) p.push('53');
  colour(p, c.isFgRGB(), c.isFgPalette(), c.getFgColorMode(), c.getFgColor(), 30, 90, 38);
  colour(p, c.isBgRGB(), c.isBgPalette(), c.getBgColorMode(), c.getBgColor(), 40, 100, 48);
  return p.join(';');
}

/** xterm's colour mode for the 16-colour palette (SGR 30-37 and 90-97). */
const P16 = 16777216;

function colour(p: string[], rgb: boolean, palette: boolean, mode: number, v: number, base: number, bright: number, ext: number): void {
  if (rgb) p.push(`${ext};2;${(v >> 16) & 255};${(v >> 8) & 255};${v & 255}`);
  else if (palette && mode === P16 && v < 8) p.push(String(base + v));
  else if (palette && mode === P16 && v < 16) p.push(String(bright + v - 8));
  else if (palette) p.push(`${ext};5;${v}`);
}

/**
 * One screen row as escape sequences, drawn from column 1 with attributes reset first: the
 * cells' characters and attributes, except that each mask's cells show maskText (same width,
 * so nothing after it moves). Trailing default blanks are left out and erased (EL) instead;
 * a row drawn to the last column is not followed by EL (with the cursor parked on the last
 * column, EL would erase that cell).
 */
export function renderRow(line: IBufferLine | undefined, cols: number, masks: Mask[], cell: IBufferCell, fill: string): string {
  // Last column worth drawing: a non-blank character, a non-default attribute, or a mask.
  let last = -1;
  if (line) {
    for (let x = cols - 1; x >= 0; x--) {
      line.getCell(x, cell);
      if ((cell.getChars() !== '' && cell.getChars() !== ' ') || !cell.isAttributeDefault()) {
        last = x + Math.max(0, cell.getWidth() - 1);
        break;
      }
    }
  }
  for (const m of masks) last = Math.max(last, m.end - 1);
  let out = `${CSI}0m`;
  let sgr = '0';
  let mi = 0;
  for (let x = 0; x <= last && x < cols;) {
    const m = masks[mi];
    if (m && m.col <= x) {
      out += MASK_SGR + maskText(m.kind, m.end - x, fill);
      sgr = '';
      x = m.end;
      mi++;
      continue;
    }
    const c = line?.getCell(x, cell);
    const w = c ? c.getWidth() : 1;
    const p = c ? sgrParams(c) : '0';
    if (p !== sgr) {
      out += `${CSI}${p}m`;
      sgr = p;
    }
    // A cell of width 0 here is the second half of a wide character whose first half was masked.
    const next = masks[mi];
    if (w === 2 && next && next.col === x + 1) {
      out += ' ';
      x += 1;
    } else {
      out += w === 0 ? ' ' : c?.getChars() || ' ';
      x += Math.max(1, w);
    }
  }
  if (sgr !== '0') out += `${CSI}0m`;
  return last + 1 < cols ? `${out}${CSI}K` : out;
}

/** One screen row as plain text with its masks applied (one character per column; wide characters keep their two cells). */
export function rowText(line: IBufferLine | undefined, cols: number, masks: Mask[], cell: IBufferCell, fill: string): string {
  let out = '';
  let mi = 0;
  for (let x = 0; x < cols;) {
    const m = masks[mi];
    if (m && m.col <= x) {
      out += maskText(m.kind, m.end - x, fill);
      x = m.end;
      mi++;
      continue;
    }
    const c = line?.getCell(x, cell);
    const w = c ? c.getWidth() : 1;
    const next = masks[mi];
    if (w === 2 && next && next.col === x + 1) {
      out += ' ';
      x += 1;
    } else {
      out += w === 0 ? ' ' : c?.getChars() || ' ';
      x += Math.max(1, w);
    }
  }
  return out;
}
