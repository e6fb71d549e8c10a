import { describe, expect, it } from 'vitest';
import { TerminalReportClassifier } from '../../src/session/terminal-reports.js';

const ESC = '\x1b';
const CSI = '\x1b[';
const ST = '\x1b\\';

/** Replies a terminal sends by itself: never user input. */
const REPORTS: [string, string][] = [
  ['DA1 reply', `${CSI}?62;22;52c`],
  ['DA2 reply', `${CSI}>1;10;0c`],
  ['DA3 reply', `${CSI}=00000000c`],
  ['cursor position report', `${CSI}12;40R`],
  ['DECXCPR', `${CSI}?12;40;1R`],
  ['DSR ok', `${CSI}0n`],
  ['DSR private (colour scheme)', `${CSI}?997;1n`],
  ['focus in and out', `${CSI}I${CSI}O`],
  ['OSC colour reply, BEL', `${ESC}]11;rgb:0000/0000/0000\x07`],
  ['OSC colour reply, ST', `${ESC}]10;rgb:ffff/ffff/ffff${ST}`],
  ['OSC title report (CSI 21 t)', `${ESC}]lmy title${ST}`],
  ['OSC 52 clipboard reply', `${ESC}]52;c;SGVsbG8=${ST}`],
  ['DCS DECRQSS reply', `${ESC}P1$r0;1m${ST}`],
  ['DCS XTVERSION reply', `${ESC}P>|xterm(390)${ST}`],
  ['APC kitty graphics reply', `${ESC}_Gi=1;OK${ST}`],
  ['DECRPM, private and ANSI', `${CSI}?2004;1$y${CSI}4;2$y`],
  ['window size report', `${CSI}8;40;120t`],
  ['window position and pixel size', `${CSI}3;0;0t${CSI}4;800;1200t`],
  ['DECREPTPARM', `${CSI}2;1;1;112;112;1;0x`],
  ['kitty keyboard flags', `${CSI}?1u`],
  ['8-bit CSI DA reply (raw C1)', '\x9b?62;22c'],
  ['8-bit OSC reply ended by 8-bit ST', '\x9d11;rgb:0/0/0\x9c'],
  ['UTF-8 encoded C1 DA reply', '\u009b?62;22c'],
  ['several replies in one read', `${CSI}?62;22c${CSI}12;40R${ESC}]11;rgb:0/0/0\x07${CSI}I`],
];

/** What a person types: always input, alone or next to reports. */
const INPUT: [string, string][] = [
  ['a letter', 'a'],
  ['Enter', '\r'],
  ['Ctrl-C', '\x03'],
  ['arrow, normal mode', `${CSI}A`],
  ['arrow, application mode', `${ESC}OA`],
  ['Alt+x', `${ESC}x`],
  ['Escape then a key', `${ESC}${ESC}x`],
  ['F5', `${CSI}15~`],
  ['SGR mouse report (someone moved the mouse)', `${CSI}<35;10;5M`],
  ['bracketed paste', `${CSI}200~pasted${CSI}201~`],
  ['kitty keyboard key event', `${CSI}97;5u`],
  ['Latin-1 letter in UTF-8', 'é'],
  ['Alt+] then typing and Enter', `${ESC}]ls\r`],
  ['a CSI no terminal sends', `${CSI}5c`],
];

const asBytes = (what: string, s: string) => (what.includes('raw C1') || what.includes('8-bit OSC') ? Buffer.from(s, 'latin1') : Buffer.from(s, 'utf8'));

describe('terminal report classifier', () => {
  it.each(REPORTS)('%s is not user input', (what, s) => {
    expect(new TerminalReportClassifier().hasUserInput(asBytes(what, s))).toBe(false);
  });

  it.each(REPORTS)('%s is not user input when split at every byte', (what, s) => {
    const c = new TerminalReportClassifier();
    const b = asBytes(what, s);
    for (let i = 0; i < b.length; i++) expect(c.hasUserInput(b.subarray(i, i + 1))).toBe(false);
  });

  it.each(INPUT)('%s is user input', (_what, s) => {
    expect(new TerminalReportClassifier().hasUserInput(Buffer.from(s))).toBe(true);
  });

  it.each(INPUT)('%s is user input after a report, in the same read', (_what, s) => {
    expect(new TerminalReportClassifier().hasUserInput(Buffer.from(`${CSI}?62;22c${s}`))).toBe(true);
  });

  it.each(INPUT)('%s is user input when split at every byte (counted by the read that completes it)', (_what, s) => {
    const c = new TerminalReportClassifier();
    const b = Buffer.from(s);
    let any = false;
    for (let i = 0; i < b.length; i++) any = c.hasUserInput(b.subarray(i, i + 1)) || any;
    expect(any).toBe(true);
  });

  it('a report split across reads leaves the stream in step: the next key still counts', async () => {
    const c = new TerminalReportClassifier();
    expect(c.hasUserInput(Buffer.from(`${ESC}]11;rgb:00`))).toBe(false);
    expect(c.hasUserInput(Buffer.from(`00/0000/0000${ST}`))).toBe(false);
    expect(c.hasUserInput(Buffer.from(`${CSI}12;`))).toBe(false);
    expect(c.hasUserInput(Buffer.from('40R'))).toBe(false);
    expect(c.hasUserInput(Buffer.from('l'))).toBe(true);
  });

  it('an endless "report" string stops being a report', async () => {
    const c = new TerminalReportClassifier();
    expect(c.hasUserInput(Buffer.from(`${ESC}P`))).toBe(false);
    expect(c.hasUserInput(Buffer.alloc(70 * 1024, 0x41))).toBe(true);
  });
});
