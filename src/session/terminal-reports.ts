/**
 * Tells the user's input from the reports their terminal sends by itself.
 *
 * A program in the session can make the user's terminal answer queries (device attributes,
 * cursor position, colours, modes, window size; focus events once it asked for them). Those
 * answers arrive on the SSH channel like keystrokes, but nobody typed them: an idle session must
 * not be kept alive by them. This classifier reads the channel's byte stream (sequences may be
 * split across reads; state is kept between calls) and says whether a read carries anything
 * other than such reports. The bytes themselves are not changed: they still go to the pty.
 *
 * Reports: OSC, DCS, APC, PM and SOS strings (colour and title replies, DECRQSS, XTVERSION,
 * XTGETTCAP, kitty graphics), and the CSI replies DA1/DA2/DA3 (`CSI ? … c`, `CSI > … c`,
 * `CSI = … c`), CPR/DECXCPR (`CSI r;c R`), DSR (`CSI 0 n`, `CSI ? … n`), focus (`CSI I`,
 * `CSI O`), DECRPM (`CSI ? … $ y`), window reports (`CSI 8;r;c t` and the like), DECREPTPARM
 * (`CSI 2;… x`) and the kitty keyboard flags (`CSI ? n u`); 7-bit or 8-bit (C1 bytes, raw or
 * UTF-8 encoded). Everything else is input: text, Enter, arrows (`ESC O A`, `CSI A`), Alt+key,
 * mouse reports (a person moved the mouse), bracketed paste. Shift+F3 (`CSI 1;2 R`) looks exactly
 * like a cursor position report and is not counted; an Escape key pressed alone counts once the
 * next byte shows it did not start a report.
 */

const MAX_CSI = 64;
/** A report string longer than this is not one a terminal sends unasked: count it as input. */
const MAX_STRING = 64 * 1024;

const enum S {
  Ground,
  /** 0xC2 seen: the next byte says whether it is a UTF-8 encoded C1 control. */
  C2,
  Esc,
  Csi,
  Str,
  /** ESC inside a string: ST if '\', else the string ended and a new sequence starts. */
  StrEsc,
  /** 0xC2 inside a string: ST (U+009C) if the next byte is 0x9C. */
  StrC2,
}

/** Whether a complete CSI (parameter and intermediate bytes, final byte) is a terminal's reply. */
export function isReportCsi(body: string, final: string): boolean {
  switch (final) {
    case 'c':
      return /^[?>=][0-9;]*$/.test(body);
    case 'R':
      return /^\??[0-9]+;[0-9]+(;[0-9]+)?$/.test(body);
    case 'n':
      return /^[03]$/.test(body) || /^\?[0-9;]+$/.test(body);
    case 'I':
    case 'O':
      return body === '';
    case 'y':
      return /^\??[0-9;]+\$$/.test(body);
    case 't':
      return /^[0-9]+(;[0-9]+)*$/.test(body);
    case 'x':
      return /^[23];[0-9;]*$/.test(body);
    case 'u':
      return /^\?[0-9]*$/.test(body);
    default:
      return false;
  }
}

/** Stateful: one per channel. */
export class TerminalReportClassifier {
  private state: S = S.Ground;
  private csi = '';
  private strLen = 0;

  /**
   * Reads one chunk of what the client sent; true when it holds user input (anything that is not
   * part of a terminal report). A sequence split across chunks counts where it is completed.
   */
  hasUserInput(b: Buffer): boolean {
    let input = false;
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      switch (this.state) {
        case S.Ground:
          if (c === 0x1b) this.state = S.Esc;
          else if (c === 0x9b) this.startCsi();
          else if (c === 0x9d || c === 0x90 || c === 0x9f || c === 0x9e || c === 0x98) this.startStr();
          else if (c === 0xc2) this.state = S.C2;
          else input = true;
          break;
        case S.C2:
          if (c === 0x9b) this.startCsi();
          else if (c === 0x9d || c === 0x90 || c === 0x9f || c === 0x9e || c === 0x98) this.startStr();
          else {
            input = true; // an ordinary character U+0080..U+00BF
            this.state = S.Ground;
            if (c < 0x80 || c > 0xbf) i--; // not a continuation: read it afresh
          }
          break;
        case S.Esc:
          if (c === 0x5b) this.startCsi();
          else if (c === 0x5d || c === 0x50 || c === 0x5f || c === 0x5e || c === 0x58) this.startStr();
          else {
            input = true; // Alt+key, ESC O A (arrows), a lone Escape followed by a key
            this.state = S.Ground;
            if (c === 0x1b) this.state = S.Esc; // Alt+Escape, or Escape pressed twice
          }
          break;
        case S.Csi:
          if (c >= 0x40 && c <= 0x7e) {
            if (!isReportCsi(this.csi, String.fromCharCode(c))) input = true;
            this.state = S.Ground;
          } else if (c >= 0x20 && c <= 0x3f && this.csi.length < MAX_CSI) this.csi += String.fromCharCode(c);
          else {
            input = true; // not a sequence a terminal sends: typed
            this.state = S.Ground;
            if (c === 0x1b) this.state = S.Esc;
          }
          break;
        case S.Str:
          if (c === 0x1b) this.state = S.StrEsc;
          else if (c === 0x07 || c === 0x9c || c === 0x18 || c === 0x1a) this.state = S.Ground;
          else if (c === 0xc2) this.state = S.StrC2;
          else if ((c < 0x20 && c !== 0x09) || ++this.strLen > MAX_STRING) {
            // Enter or another control inside a "string": someone typed Alt+] and went on typing.
            input = true;
            this.state = S.Ground;
          }
          break;
        case S.StrEsc:
          if (c === 0x5c) this.state = S.Ground;
          else {
            this.state = S.Esc;
            i--;
          }
          break;
        case S.StrC2:
          this.state = c === 0x9c ? S.Ground : S.Str;
          break;
      }
    }
    return input;
  }

  private startCsi(): void {
    this.state = S.Csi;
    this.csi = '';
  }

  private startStr(): void {
    this.state = S.Str;
    this.strLen = 0;
  }
}
