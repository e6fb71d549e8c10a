import xterm from '@xterm/headless';
import serialize from '@xterm/addon-serialize';
import type { IBuffer } from '@xterm/headless';

/**
 * A headless terminal emulator (xterm.js) for replay, search and keyframes: what the user's
 * screen showed, reconstructed from the recorded stream. Never persisted in plaintext.
 */
export class Screen {
  private readonly term: InstanceType<typeof xterm.Terminal>;
  private readonly ser: InstanceType<typeof serialize.SerializeAddon>;
  constructor(cols: number, rows: number, scrollback = 0) {
    this.term = new xterm.Terminal({ cols, rows, scrollback, allowProposedApi: true });
    this.ser = new serialize.SerializeAddon();
    this.term.loadAddon(this.ser);
  }
  /**
   * Feeds output; resolves once parsed. `parsed` runs as soon as this write is parsed, before the
   * next queued one is: the screen then shows exactly the state after it (the promise resolves
   * later, when the terminal may have parsed more).
   */
  write(data: Buffer | string, parsed?: () => void): Promise<void> {
    return new Promise((resolve) =>
      this.term.write(typeof data === 'string' ? data : new Uint8Array(data), () => {
        parsed?.();
        resolve();
      }),
    );
  }
  resize(cols: number, rows: number): void {
    this.term.resize(Math.max(1, cols), Math.max(1, rows));
  }
  get cols(): number {
    return this.term.cols;
  }
  get rows(): number {
    return this.term.rows;
  }
  /** The buffer on display (normal or alternate screen): cells and attributes, for redaction. */
  get buffer(): IBuffer {
    return this.term.buffer.active;
  }
  /** The visible lines as text (trailing spaces trimmed). */
  lines(): string[] {
    const b = this.term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < this.term.rows; i++) out.push(b.getLine(b.viewportY + i)?.translateToString(true) ?? '');
    return out;
  }
  /** Escape sequences that redraw this screen on a real terminal (a keyframe). */
  snapshot(): string {
    // The serializer trims trailing blanks and can leave the cursor short of where it was
    // (after a prompt's trailing space): put it back explicitly.
    const b = this.term.buffer.active;
    return `${this.ser.serialize({ scrollback: 0 })}\x1b[${b.cursorY + 1};${b.cursorX + 1}H`;
  }
  dispose(): void {
    this.term.dispose();
  }
}
