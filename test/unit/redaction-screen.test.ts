import { describe, expect, it } from 'vitest';
import { recordingHeader } from '../helpers/recording.js';
import { Redactor } from '../../src/redaction/redactor.js';
import { RedactingView, redactFrames } from '../../src/redaction/view.js';
import { Screen } from '../../src/recording/screen.js';
import { asciicastLines } from '../../src/recording/asciicast.js';
import { resizeData, type Frame } from '../../src/recording/format.js';

const CSI = '\x1b[';
const redactor = Redactor.create();

/** Feeds `writes` one by one (each parsed before the next, as separate frames are) and returns the view. */
async function view(cols: number, rows: number, writes: string[], o: { pendingAtCursor?: boolean } = {}): Promise<RedactingView> {
  const v = new RedactingView(redactor, cols, rows, o);
  for (const w of writes) await v.write(w);
  return v;
}

/** What a viewer's terminal shows after receiving `data`. */
async function shown(cols: number, rows: number, data: string): Promise<string[]> {
  const s = new Screen(cols, rows);
  await s.write(data);
  const lines = s.lines();
  s.dispose();
  return lines;
}

const colourDigits = (s: string) => [...s].map((c, i) => `${CSI}${31 + (i % 6)}m${c}`).join('') + `${CSI}0m`;

/** [what, cols, rows, writes, expected redacted screen rows (trailing blank rows left out)] */
const SCREENS: [string, number, number, string[], string[]][] = [
  ['split across writes', 40, 3, ['SSN: 07', '8-05-', '11', '20 ok\r\n'], ['SSN: [SSN]****** ok']],
  ['coloured digit by digit', 40, 3, [`MRN: ${colourDigits('12345678')} / ${colourDigits('078-05-1120')}\r\n`], ['MRN: [MRN]*** / [SSN]******']],
  ['drawn with cursor movements, right to left', 40, 3, [`${CSI}1;11H1120`, `${CSI}1;8H05-`, `${CSI}1;1Hid 078-`, `${CSI}2;1H`], ['id [SSN]******']],
  ['drawn with cursor-forward gaps (spaces)', 40, 3, [`tel 212${CSI}C555${CSI}C1234\r\n`], ['tel [PHONE]*****']],
  // Each row's piece of a wrapped value is a mask of its own, labelled when the label fits.
  ['soft-wrapped at the right margin', 20, 3, ['patient mail is jane.doe@example.org\r\n'], ['patient mail is ****', '[EMAIL]*********']],
  ['soft-wrapped SSN: each piece masked', 20, 3, ['0123456789 ssn 078-05-1120\r\n'], ['0123456789 ssn [SSN]', '[SSN]*']],
  [
    'broken at the margin by the program itself (CR LF at column 20)',
    20,
    3,
    ['xxxxxxxxxxxxxx 078-0\r\n5-1120 done\r\n'],
    ['xxxxxxxxxxxxxx [SSN]', '[SSN]* done'],
  ],
  [
    'broken at the margin after a space (the last cell was written)',
    20,
    3,
    ['aaaaaaaa Phone: 212 \r\n555 1234 ok\r\n'],
    ['aaaaaaaa Phone: ****', '[PHONE]* ok'],
  ],
  ['a label at the end of a row, its value on the next', 20, 3, ['xxxxxxxxxxxxxxx MRN:\r\n12345678 ok\r\n'], ['xxxxxxxxxxxxxxx MRN:', '[MRN]*** ok']],
  [
    'a table wider than the screen wraps every row at the same column',
    30,
    6,
    ['NAME                 WARD  MRN       DOB\r\n', 'Alice Example        4B    00991234  1961-03-14\r\n'],
    ['NAME                 WARD  MRN', '       DOB', 'Alice Example        4B    ***', '[MRN]  [DOB]*****'],
  ],
  [
    'psql table columns',
    60,
    6,
    [
      '  mrn    |   name    |    dob\r\n',
      '---------+-----------+------------\r\n',
      ' 1234567 | Alice Doe | 1960-02-03\r\n',
      ' 7654321 | Bob Roe   | 1971-12-31\r\n',
      '(2 rows)\r\n',
    ],
    [
      '  mrn    |   name    |    dob',
      '---------+-----------+------------',
      ' [MRN]** | Alice Doe | [DOB]*****',
      ' [MRN]** | Bob Roe   | [DOB]*****',
      '(2 rows)',
    ],
  ],
  [
    'space-aligned table columns with wide names',
    60,
    4,
    ['NAME      PATIENT_ID   BIRTH DATE   WARD\r\n', '山田太郎  00991234     1961-03-14   4B\r\n', 'Ann Lee   00991299     14.03.1961   2\r\n'],
    ['NAME      PATIENT_ID   BIRTH DATE   WARD', '山田太郎  [MRN]***     [DOB]*****   4B', 'Ann Lee   [MRN]***     [DOB]*****   2'],
  ],
  ['a wide character before the value keeps the columns', 40, 2, ['名前 SSN 078-05-1120 end\r\n'], ['名前 SSN [SSN]****** end']],
  ['alternate screen (a pager)', 40, 3, [`${CSI}?1049h${CSI}HDOB: 1961-03-14`, `${CSI}3;1H`], ['DOB: [DOB]*****']],
  ['overwritten value is gone, not masked', 40, 2, ['078-05-1120\r', 'hello world\r\n'], ['hello world']],
];

describe('redaction on the rendered screen', () => {
  it.each(SCREENS)('%s', async (_what, cols, rows, writes, expected) => {
    const v = await view(cols, rows, writes, { pendingAtCursor: false });
    const lines = v.lines();
    while (lines.length && lines.at(-1) === '') lines.pop();
    expect(lines).toEqual(expected);
    // The drawing a viewer gets shows the same thing.
    const screen = await shown(cols, rows, v.update());
    while (screen.length && screen.at(-1) === '') screen.pop();
    expect(screen).toEqual(expected);
    v.dispose();
  });

  it('keeps the cells around a mask in their colours; the mask has its own', async () => {
    const v = await view(40, 2, [`${CSI}1;32mok${CSI}0m 078-05-1120 ${CSI}38;5;200mx${CSI}48;2;1;2;3my${CSI}0m`]);
    const out = v.update();
    expect(out).toContain(`${CSI}0;1;32mok`);
    expect(out).toContain(`${CSI}0;7m[SSN]******`);
    expect(out).toContain(`${CSI}0;38;5;200mx${CSI}0;38;5;200;48;2;1;2;3my`);
    expect(out).not.toMatch(/078|1120/);
    v.dispose();
  });

  it('sends only changed rows, and everything again after reset or resize', async () => {
    const v = await view(30, 4, ['line one\r\nline two\r\n']);
    const first = v.update();
    expect(first).toContain(`${CSI}2J`);
    expect(v.update()).toBe('');
    await v.write(`${CSI}2;3H`);
    expect(v.update()).toBe(`${CSI}2;3H`);
    await v.write(`${CSI}3;1HSSN 078-05-1120`);
    const next = v.update();
    expect(next).not.toContain('line one');
    expect(next).toContain(`${CSI}3;1H${CSI}0mSSN ${CSI}0;7m[SSN]******`);
    v.reset();
    expect(v.update()).toContain('line one');
    v.resize(40, 5);
    expect(await shown(40, 5, v.update())).toEqual(['line one', 'line two', 'SSN [SSN]******', '', '']);
    v.dispose();
  });

  it('never shows a value typed a character at a time, at any step', async () => {
    const v = new RedactingView(redactor, 40, 3);
    const screens: string[] = [];
    let drawn = '';
    for (const c of 'echo 078-05-1120\r\n078-05-1120\r\n$ ') {
      drawn += await v.feed(c);
      screens.push((await shown(40, 3, drawn)).join('\n'));
    }
    // At every step, no run of three or more of the value's digits is visible.
    for (const s of screens) expect([s, /\d{3}|\d-\d/.test(s.replace(/\$ /, ''))]).toEqual([s, false]);
    expect(screens.at(-1)).toBe('echo [SSN]******\n[SSN]******\n$');
    v.dispose();
  });

  it('leaves a prompt and an ordinary word at the cursor alone', async () => {
    const v = await view(40, 2, ['root@host:~# ls -l /var/log']);
    expect(v.lines()[0]).toBe('root@host:~# ls -l /var/log');
    v.dispose();
  });
});

describe('redacted frame stream (export)', () => {
  const f = (t: number, kind: Frame['kind'], data: string | Buffer): Frame => ({ t, kind, data: Buffer.from(data) });

  it('redacts output, drops input, passes resizes and markers, and coalesces split writes', async () => {
    const frames = [
      f(0, 'output', '$ '),
      f(1000, 'input', 'cat pt.txt\r'),
      f(1005, 'output', 'MRN: 1234'),
      f(1010, 'output', '5678\r\n'),
      f(2000, 'marker', 'm'),
      f(3000, 'resize', resizeData(30, 5)),
      f(3500, 'output', 'DOB: 03/14/1961\r\n'),
    ];
    const out: Frame[] = [];
    for await (const x of redactFrames(redactor, { cols: 40, rows: 4 }, frames)) out.push(x);
    expect(out.map((x) => [x.t, x.kind])).toEqual([
      [0, 'output'],
      [1010, 'output'],
      [2000, 'marker'],
      [3000, 'resize'],
      [3000, 'output'],
      [3500, 'output'],
    ]);
    const all = Buffer.concat(out.filter((x) => x.kind === 'output').map((x) => x.data)).toString();
    expect(all).not.toMatch(/1234|5678|1961|cat pt/);
    const header = recordingHeader('s', { user: 'u', role: 'r', cols: 40, rows: 4, recordInput: true });
    const cast = [...asciicastLines(header, out, 't')].join('\n');
    expect(cast).toContain('[MRN]');
    expect(cast).toContain('[DOB]');
    expect(cast).not.toContain('"i"');
  });
});
