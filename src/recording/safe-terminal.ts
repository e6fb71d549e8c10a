/**
 * A safe terminal subset for showing a user's screen bytes to someone else (replay, live views).
 *
 * Recorded output is hostile: with tmux passthrough or clipboard switched on, a user can make the
 * stream carry OSC 52 (write the viewer's clipboard), titles, hyperlinks, DCS/APC payloads and
 * queries (DA, DSR, DECRQSS, `CSI 21 t`) whose answers the viewer's terminal types back into
 * whatever reads its keyboard (the auditor menu). This module is an allow-list filter over the
 * byte stream: a small state machine (ECMA-48 / DEC parser states) that passes only
 *
 *   text (UTF-8, code points >= U+0020 except DEL and the C1 range), BS HT LF VT FF CR SO SI,
 *   ESC 7 / 8 / D / E / M / H, charset designations (ESC ( ) * + x),
 *   CSI sequences that draw: cursor movement, erase, insert/delete, scroll and scroll regions,
 *   SGR, tab stops, cursor style, and the DEC private modes in SAFE_PRIVATE_MODES (cursor
 *   visibility, autowrap, origin mode, the alternate screen).
 *
 * Everything else is dropped whole: OSC, DCS, SOS, PM, APC (up to their terminator, whatever
 * their length), every query that makes a terminal answer (DA, DSR/CPR, DECRQM, XTVERSION, window
 * ops), modes that change what the viewer's keyboard or mouse sends (application cursor keys,
 * bracketed paste, mouse and focus reporting), 8-bit C1 controls (U+0080..U+009F, raw or UTF-8
 * encoded), ENQ, BEL and the other C0 controls. Invalid UTF-8 becomes U+FFFD.
 *
 * Sequences and UTF-8 characters split across chunks are held back until complete, so every
 * output chunk ends at a sequence boundary: the viewer's terminal is always in its ground state
 * between chunks (a status line may be drawn at any point). Memory is O(1): a sequence longer
 * than MAX_SEQ is dropped, not buffered.
 */

const MAX_SEQ = 256;

/** DEC private modes (CSI ? Pm h/l) that only change how the screen is drawn. */
export const SAFE_PRIVATE_MODES: ReadonlySet<number> = new Set([5, 6, 7, 12, 25, 47, 1047, 1048, 1049]);

const enum S {
  Ground,
  Esc,
  EscIntermediate,
  Csi,
  /** A CSI too long or with bytes a CSI may not carry: swallowed up to its final byte. */
  CsiIgnore,
  /** OSC, DCS, SOS, PM, APC: content dropped up to ST (or BEL, or CAN/SUB). */
  Str,
  /** ESC seen inside a string: ST if the next byte is '\', else a new escape sequence. */
  StrEsc,
}

const REPLACEMENT = Buffer.from([0xef, 0xbf, 0xbd]);

/** C0 controls passed through: BS HT LF VT FF CR SO SI. */
const SAFE_C0 = new Uint8Array(32);
for (const c of [0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]) SAFE_C0[c] = 1;

/** CSI finals allowed with no private marker and no intermediate byte. */
const SAFE_CSI_FINAL = new Set('@ABCDEFGHIJKLMPSTXZ`abdefgmrsu'.split('').map((c) => c.charCodeAt(0)));

/** Whether a complete CSI (bytes between "ESC [" and the final, and the final) may pass; may rewrite it. */
function safeCsi(body: string, final: number): string | null {
  let priv = '';
  let rest = body;
  if (rest.length > 0 && '<=>?'.includes(rest[0]!)) {
    priv = rest[0]!;
    rest = rest.slice(1);
  }
  const m = /^([0-9;:]*)([ -/]*)$/.exec(rest);
  if (!m) return null;
  const params = m[1]!;
  const inter = m[2]!;
  const f = String.fromCharCode(final);
  if (inter === ' ' && !priv && f === 'q') return `\x1b[${params} q`; // DECSCUSR: cursor style
  if (inter) return null; // DECRQM ($p), DECSTR (!p), DECSCA ("q), rectangle ops...
  if (priv === '?') {
    if (f === 'J' || f === 'K') return `\x1b[?${params}${f}`; // selective erase
    if (f !== 'h' && f !== 'l') return null; // DECRQM, DSR, XTSAVE/XTRESTORE, kitty keyboard ...
    const modes = params.split(';').filter((p) => p !== '' && SAFE_PRIVATE_MODES.has(Number(p)));
    return modes.length ? `\x1b[?${modes.join(';')}${f}` : null;
  }
  if (priv) return null; // DA2/DA3, XTMODKEYS, XTVERSION, ...
  if (f === 'h' || f === 'l') return params === '4' ? `\x1b[4${f}` : null; // IRM only
  if (!SAFE_CSI_FINAL.has(final)) return null; // DA (c), DSR/CPR (n), window ops (t), DECREQTPARM (x) ...
  return `\x1b[${params}${f}`;
}

/**
 * The streaming filter. `write(chunk)` returns the safe bytes of that chunk (holding back an
 * incomplete sequence or character); `end()` drops whatever is still held back.
 */
export class SafeTerminalFilter {
  private state: S = S.Ground;
  /** Bytes of the CSI being collected (after "ESC ["). */
  private seq = '';
  /** Whether the string being dropped is an OSC (which BEL also ends). */
  private strIsOsc = false;
  /** Held-back bytes of an incomplete UTF-8 character. */
  private utf: number[] = [];
  private utfNeed = 0;

  /** Filters one chunk of a stream. */
  write(chunk: Buffer | Uint8Array | string): Buffer {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const out: Buffer[] = [];
    let runStart = -1; // a run of bytes passed through unchanged (ground-state text)
    const flushRun = (end: number) => {
      if (runStart >= 0 && end > runStart) out.push(Buffer.from(b.buffer, b.byteOffset + runStart, end - runStart));
      runStart = -1;
    };
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      // UTF-8 continuation of a held character (only in ground state).
      if (this.utfNeed > 0) {
        if (c >= 0x80 && c <= 0xbf) {
          this.utf.push(c);
          if (this.utf.length === this.utfNeed) this.finishUtf8(out);
          continue;
        }
        this.utf = [];
        this.utfNeed = 0;
        out.push(REPLACEMENT);
        // fall through: this byte starts afresh
      }
      switch (this.state) {
        case S.Ground:
          if (c >= 0x20 && c < 0x7f) {
            if (runStart < 0) runStart = i;
            continue;
          }
          flushRun(i);
          if (c === 0x1b) this.state = S.Esc;
          else if (c < 0x20) {
            if (SAFE_C0[c]) out.push(Buffer.from([c]));
          } else if (c === 0x7f) {
            /* DEL: nothing to draw */
          } else if (c >= 0xc2 && c <= 0xf4) {
            this.utf = [c];
            this.utfNeed = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
          } else out.push(REPLACEMENT); // a stray continuation byte, or 8-bit C1 sent raw
          continue;
        case S.Esc:
          if (c === 0x5b) {
            this.state = S.Csi;
            this.seq = '';
          } else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) {
            this.state = S.Str;
            this.strIsOsc = c === 0x5d;
          } else if (c >= 0x20 && c <= 0x2f) {
            this.state = S.EscIntermediate;
            this.seq = String.fromCharCode(c);
          } else if (c === 0x1b) {
            /* ESC ESC: the first is cancelled */
          } else if (c === 0x18 || c === 0x1a) this.state = S.Ground;
          else if (c < 0x20) {
            if (SAFE_C0[c]) out.push(Buffer.from([c])); // C0 executes inside a sequence
          } else {
            this.state = S.Ground;
            // ESC 7/8 save/restore cursor, D index, E next line, M reverse index, H tab set.
            if (c === 0x37 || c === 0x38 || c === 0x44 || c === 0x45 || c === 0x4d || c === 0x48) out.push(Buffer.from([0x1b, c]));
          }
          continue;
        case S.EscIntermediate:
          if (c >= 0x20 && c <= 0x2f) {
            if (this.seq.length < 4) this.seq += String.fromCharCode(c);
          } else if (c === 0x18 || c === 0x1a) this.state = S.Ground;
          else if (c === 0x1b) this.state = S.Esc;
          else if (c < 0x20) {
            if (SAFE_C0[c]) out.push(Buffer.from([c]));
          } else {
            this.state = S.Ground;
            // Charset designation only (ESC ( B, ESC ) 0, ...); not S8C1T (ESC SP G) or DECALN (ESC # 8).
            if (this.seq.length === 1 && '()*+'.includes(this.seq) && c >= 0x30 && c <= 0x7e)
              out.push(Buffer.from(`\x1b${this.seq}${String.fromCharCode(c)}`, 'latin1'));
          }
          continue;
        case S.Csi:
        case S.CsiIgnore:
          if (c >= 0x40 && c <= 0x7e) {
            if (this.state === S.Csi) {
              const ok = safeCsi(this.seq, c);
              if (ok) out.push(Buffer.from(ok, 'latin1'));
            }
            this.state = S.Ground;
            this.seq = '';
          } else if (c >= 0x20 && c <= 0x3f) {
            if (this.state === S.Csi) {
              this.seq += String.fromCharCode(c);
              if (this.seq.length > MAX_SEQ) ((this.state = S.CsiIgnore), (this.seq = ''));
            }
          } else if (c === 0x1b) {
            this.state = S.Esc;
            this.seq = '';
          } else if (c === 0x18 || c === 0x1a) {
            this.state = S.Ground;
            this.seq = '';
          } else if (c < 0x20) {
            if (SAFE_C0[c]) out.push(Buffer.from([c]));
          } else {
            // DEL or a byte >= 0x80 inside a CSI: not a sequence any terminal should act on.
            this.state = S.CsiIgnore;
            this.seq = '';
          }
          continue;
        case S.Str:
          if (c === 0x1b) this.state = S.StrEsc;
          else if (c === 0x18 || c === 0x1a || (c === 0x07 && this.strIsOsc)) this.state = S.Ground;
          continue;
        case S.StrEsc:
          if (c === 0x5c) this.state = S.Ground;
          else {
            // The string ended; this ESC starts a new sequence.
            this.state = S.Esc;
            i--;
          }
          continue;
      }
    }
    flushRun(b.length);
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** Whether nothing is held back (the input stream is between sequences and characters). */
  get clean(): boolean {
    return this.state === S.Ground && this.utfNeed === 0;
  }

  /** Forgets anything held back (for a new stream, e.g. after a seek). */
  reset(): void {
    this.state = S.Ground;
    this.seq = '';
    this.utf = [];
    this.utfNeed = 0;
  }

  private finishUtf8(out: Buffer[]): void {
    const bytes = Buffer.from(this.utf);
    this.utf = [];
    this.utfNeed = 0;
    const cp = bytes.toString('utf8').codePointAt(0) ?? 0xfffd;
    // Overlong forms and surrogates decode to U+FFFD; the C1 range is dropped (an 8-bit control).
    if (cp >= 0x80 && cp <= 0x9f) return;
    if (cp === 0xfffd && !bytes.equals(REPLACEMENT)) out.push(REPLACEMENT);
    else out.push(bytes);
  }
}

/** Filters a whole string or buffer at once (no state kept). */
export function safeTerminal(data: Buffer | string): Buffer {
  return new SafeTerminalFilter().write(data);
}
