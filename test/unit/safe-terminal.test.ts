import { describe, expect, it } from 'vitest';
import { SafeTerminalFilter, safeTerminal } from '../../src/recording/safe-terminal.js';
import { escapeControls } from '../../src/platform/text.js';

const ESC = '\x1b';
const CSI = '\x1b[';
const ST = '\x1b\\';
const BEL = '\x07';

/** [what, input, expected output] for the filter applied to the whole input at once. */
const TABLE: [string, string, string][] = [
  // what must pass: text and the drawing subset
  ['plain text', 'hello, world', 'hello, world'],
  ['UTF-8 text', 'naïve 日本 🙂', 'naïve 日本 🙂'],
  ['CR LF BS HT', 'a\r\nb\bc\td', 'a\r\nb\bc\td'],
  ['SGR, 256 and true colour', `${CSI}1;31m${CSI}38;5;200m${CSI}38:2::1:2:3mX${CSI}0m`, `${CSI}1;31m${CSI}38;5;200m${CSI}38:2::1:2:3mX${CSI}0m`],
  [
    'cursor movement',
    `${CSI}5;10H${CSI}A${CSI}2B${CSI}C${CSI}D${CSI}3G${CSI}7d${CSI}1;1f`,
    `${CSI}5;10H${CSI}A${CSI}2B${CSI}C${CSI}D${CSI}3G${CSI}7d${CSI}1;1f`,
  ],
  ['erase', `${CSI}2J${CSI}K${CSI}1K${CSI}3X${CSI}?2K`, `${CSI}2J${CSI}K${CSI}1K${CSI}3X${CSI}?2K`],
  [
    'scroll region and scrolling',
    `${CSI}1;39r${CSI}3S${CSI}2T${CSI}L${CSI}M${ESC}M${ESC}D${ESC}E`,
    `${CSI}1;39r${CSI}3S${CSI}2T${CSI}L${CSI}M${ESC}M${ESC}D${ESC}E`,
  ],
  ['save and restore cursor', `${ESC}7x${ESC}8${CSI}s${CSI}u`, `${ESC}7x${ESC}8${CSI}s${CSI}u`],
  [
    'alternate screen, cursor visibility, autowrap',
    `${CSI}?1049h${CSI}?25l${CSI}?7h${CSI}?1049l${CSI}?25h`,
    `${CSI}?1049h${CSI}?25l${CSI}?7h${CSI}?1049l${CSI}?25h`,
  ],
  ['charset designation with SO/SI', `${ESC}(0qqq${ESC}(B\x0e\x0f`, `${ESC}(0qqq${ESC}(B\x0e\x0f`],
  ['cursor style (DECSCUSR)', `${CSI}2 q`, `${CSI}2 q`],
  ['insert mode (IRM)', `${CSI}4h${CSI}4l`, `${CSI}4h${CSI}4l`],
  // OSC: clipboard, title, links, colour queries; ended by BEL or ST
  ['OSC 52 clipboard write (BEL)', `a${ESC}]52;c;cm0gLXJmIC8K${BEL}b`, 'ab'],
  ['OSC 52 clipboard write (ST)', `a${ESC}]52;c;cm0gLXJmIC8K${ST}b`, 'ab'],
  ['OSC 0 and 2 titles', `${ESC}]0;pwned${BEL}${ESC}]2;pwned${ST}t`, 't'],
  ['OSC 8 hyperlink keeps its text only', `${ESC}]8;;https://evil.example/${ST}click${ESC}]8;;${ST}`, 'click'],
  ['OSC 10/11 colour query', `${ESC}]10;?${ST}${ESC}]11;?${BEL}`, ''],
  ['OSC cut by CAN', `${ESC}]0;x\x18after`, 'after'],
  ['ESC inside OSC starts a new sequence', `${ESC}]0;x${ESC}[31mred`, `${CSI}31mred`],
  // DCS, SOS, PM, APC
  ['DCS DECRQSS', `${ESC}P$qm${ST}ok`, 'ok'],
  ['DCS tmux passthrough wrapper', `${ESC}Ptmux;${ESC}${ESC}]52;c;eA==${BEL}${ST}ok`, 'ok'],
  ['DCS XTGETTCAP', `${ESC}P+q544e${ST}`, ''],
  ['DCS is not ended by BEL', `${ESC}Pabc${BEL}still-inside${ST}out`, 'out'],
  ['SOS', `${ESC}Xhidden${ST}v`, 'v'],
  ['PM', `${ESC}^hidden${ST}v`, 'v'],
  ['APC (kitty graphics)', `${ESC}_Gf=100;AAAA${ST}v`, 'v'],
  // queries that make a terminal answer
  ['DA1', `${CSI}c${CSI}0c`, ''],
  ['DA2 and DA3', `${CSI}>c${CSI}>0c${CSI}=c`, ''],
  ['DSR and CPR request', `${CSI}5n${CSI}6n${CSI}?6n`, ''],
  ['window report CSI 21 t (title) and others', `${CSI}21t${CSI}14t${CSI}18t${CSI}8;100;100t${CSI}22;0t`, ''],
  ['DECRQM', `${CSI}?2026$p${CSI}4$p`, ''],
  ['XTVERSION', `${CSI}>q${CSI}>0q`, ''],
  ['DECREQTPARM', `${CSI}x`, ''],
  ['DECID (ESC Z) and ENQ', `${ESC}Z\x05`, ''],
  ['kitty keyboard query', `${CSI}?u`, ''],
  // modes that change what the viewer's keyboard or mouse send
  ['application cursor keys and keypad', `${CSI}?1h${ESC}=${ESC}>`, ''],
  ['bracketed paste, mouse and focus reporting', `${CSI}?2004h${CSI}?1000h${CSI}?1006h${CSI}?1004h`, ''],
  ['mixed private modes keep only the safe ones', `${CSI}?1049;1000;25h`, `${CSI}?1049;25h`],
  ['XTMODKEYS', `${CSI}>4;1m`, ''],
  ['S8C1T and DECALN', `${ESC} G${ESC}#8`, ''],
  ['full reset', `${ESC}c`, ''],
  // 8-bit C1, raw and UTF-8 encoded
  ['raw 8-bit CSI query', 'a\x9b6nb', 'a\uFFFD6nb'],
  ['UTF-8 encoded C1 CSI, OSC, DCS, ST are dropped', 'a\u009b6n\u009d52;c;x\u009c\u0090q\u009cb', 'a6n52;c;xqb'],
  ['BEL, DEL and other C0', `a${BEL}\x7f\x00\x01\x1fb`, 'ab'],
  ['invalid UTF-8 becomes U+FFFD', 'a\xff\xc0b', 'a\uFFFD\uFFFDb'],
  ['an overlong CSI is dropped whole', `${CSI}${'1;'.repeat(300)}mX`, 'X'],
  ['a CSI with a byte >= 0x80 is dropped', `${CSI}1\u00e9mX`, 'X'],
];

/** Inputs with \xNN above 0x7f that are meant as raw bytes, not UTF-8. */
const bytesOf = (s: string, what: string): Buffer => (what.startsWith('raw') || what.startsWith('invalid') ? Buffer.from(s, 'latin1') : Buffer.from(s, 'utf8'));

describe('safe terminal filter', () => {
  it.each(TABLE)('%s', (what, input, expected) => {
    expect(safeTerminal(bytesOf(input, what)).toString('utf8')).toBe(expected);
  });

  it.each(TABLE)('%s: the same when split at every byte', (what, input, expected) => {
    const f = new SafeTerminalFilter();
    const bytes = bytesOf(input, what);
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) parts.push(f.write(bytes.subarray(i, i + 1)));
    expect(Buffer.concat(parts).toString('utf8')).toBe(expected);
  });

  it('never emits a sequence cut in two: every output chunk is complete and passes the filter unchanged', async () => {
    const f = new SafeTerminalFilter();
    const stream = Buffer.from(`${CSI}31m日本${ESC}]0;t${BEL}${CSI}?1049hok${ESC}7${ESC}(0q${CSI}2 q`);
    let emitted = 0;
    for (let i = 0; i < stream.length; i++) {
      const out = f.write(stream.subarray(i, i + 1));
      if (!out.length) continue;
      emitted++;
      const again = new SafeTerminalFilter();
      expect(again.write(out).equals(out)).toBe(true);
      expect(again.clean).toBe(true);
    }
    expect(emitted).toBeGreaterThan(5);
  });

  it('keeps no more than a bounded amount of state for an endless OSC', async () => {
    const f = new SafeTerminalFilter();
    f.write(`${ESC}]52;c;`);
    const junk = Buffer.alloc(1 << 20, 0x41);
    for (let i = 0; i < 16; i++) expect(f.write(junk).length).toBe(0);
    expect(f.write(`${BEL}after`).toString()).toBe('after');
    expect(f.clean).toBe(true);
  });

  // Its speed is measured in bench/ (timed unit tests fail under load and prove nothing).
  it('passes a megabyte of ordinary output unchanged, whole or in odd-sized pieces', async () => {
    const line = `${CSI}32m2026-11-24T10:00:00Z${CSI}0m INFO svc req=ab12 status=200 naïve\r\n`;
    const big = Buffer.from(line.repeat(Math.ceil((1 << 20) / line.length)));
    expect(new SafeTerminalFilter().write(big).equals(big)).toBe(true);
    const f = new SafeTerminalFilter();
    const parts: Buffer[] = [];
    for (let i = 0; i < big.length; i += 4093) parts.push(f.write(big.subarray(i, i + 4093)));
    expect(Buffer.concat(parts).equals(big)).toBe(true);
  });
});

describe('escapeControls', () => {
  it.each([
    ['alice', 'alice'],
    ['a\x1b[31mb', 'a\\x1b[31mb'],
    ['bell\x07', 'bell\\x07'],
    ['tab\tnl\n', 'tab\\x09nl\\x0a'],
    ['c1\u009bx', 'c1\\x9bx'],
    ['rtl\u202eoverride', 'rtl\\u{202e}override'],
    ['back\\slash', 'back\\\\slash'],
    ['日本', '日本'],
  ])('%j -> %j', (input, expected) => {
    expect(escapeControls(input)).toBe(expected);
  });
});
