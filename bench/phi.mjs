#!/usr/bin/env node
// PHI redaction, measured (issue 15): recall on synthetic PHI, false positives on ordinary
// operations output, and throughput of the redacted view. Runs the built dist/ (npm run build).
//
//   recall     every synthetic case (bench/phi/generate.mjs) through a headless terminal, frame by
//              frame; on the final screen, an identifier counts as masked when every cell of it is.
//              Also: how much of an identifier an intermediate screen showed, for values written in
//              pieces (split writes, cursor-drawn), with the view's default mask of the word at the
//              cursor.
//   false positives  the generated ordinary corpus and, unless --no-live, the output of real commands
//              run on this machine (ps, df, top, free, vmstat, mount, lsblk, ip, ss, dmesg, ls -l,
//              git log of this repository, lscpu, /proc/meminfo): drawn a screen at a time (120x40),
//              masked cells per 1,000 lines and lines touched, by detector.
//   throughput MB of terminal stream per second through the headless terminal alone, and through
//              redactFrames (terminal + detection + masked redraw after every frame, the export path);
//              the cost of one full redraw; the redaction a seek adds (a view from the keyframe's
//              snapshot, then a full redraw).
//
// Usage: node bench/phi.mjs [--quick] [--no-live] [--examples] [--dry]. Appends to bench/RESULTS.md (not with --dry).
import { appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { syntheticCases, ordinaryCorpus, KINDS } from './phi/generate.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { Redactor } = await import(path.join(ROOT, 'dist/redaction/redactor.js'));
const { screenMasks, SpanCache } = await import(path.join(ROOT, 'dist/redaction/screen-masks.js'));
const { RedactingView, redactFrames } = await import(path.join(ROOT, 'dist/redaction/view.js'));
const { Screen } = await import(path.join(ROOT, 'dist/recording/screen.js'));

const QUICK = process.argv.includes('--quick');
const LIVE = !process.argv.includes('--no-live');
const EXAMPLES = process.argv.includes('--examples');
const COUNT = QUICK ? 900 : 6000;
const redactor = Redactor.create();
const rows = [];
const row = (what, value, unit, target = '-') => {
  rows.push({ what, value, unit, target });
  console.log(`${what}: ${value} ${unit}`);
};
const t0 = performance.now();

// ---- recall -------------------------------------------------------------------------------------
const cases = syntheticCases({ seed: 1, count: COUNT });
const perKind = Object.fromEntries(KINDS.map((k) => [k, { n: 0, full: 0 }]));
const perHow = {};
const misses = [];
let notShown = 0;
const pieces = { split: { n: 0, exposed: 0 }, cursor: { n: 0, exposed: 0 } };
for (const c of cases) {
  const s = new Screen(c.cols, c.rows);
  const cache = new SpanCache();
  const states = [];
  // Each intermediate screen is read in its write's callback: exactly the state after that frame.
  let last;
  for (const [i, f] of c.frames.entries()) {
    const mid = (c.how === 'split' || c.how === 'cursor') && i < c.frames.length - 1;
    last = s.write(f, mid ? () => states.push(cellsOf(s, screenMasks(redactor, s.buffer, s.cols, s.rows, { cache, cursor: true }))) : undefined);
  }
  await last;
  const final = cellsOf(s, screenMasks(redactor, s.buffer, s.cols, s.rows, { cache, cursor: true }));
  for (const id of c.ids) {
    const at = occurrences(final.text, id.shown);
    if (!at.length) {
      notShown++;
      continue;
    }
    const full = at.every((p) => [...id.shown].every((_, k) => final.masked.has(p + k)));
    perKind[id.kind].n++;
    (perHow[c.how] ??= { n: 0, full: 0 }).n++;
    if (full) {
      perKind[id.kind].full++;
      perHow[c.how].full++;
    } else misses.push({ kind: id.kind, how: c.how, layout: c.layout, shown: id.shown, screen: final.text.match(new RegExp(`.{${c.cols}}`, 'g')).filter((l) => l.trim()).join('\n') });
    if (c.how === 'split' || c.how === 'cursor') {
      // The most of this identifier's characters any intermediate screen showed unmasked, in place.
      pieces[c.how].n++;
      const chars = [...id.shown].map((ch, k) => ({ ch, p: at[0] + k })).filter((x) => /[A-Za-z0-9]/.test(x.ch));
      const most = Math.max(0, ...states.map((st) => chars.filter((x) => st.text[x.p] === x.ch && !st.masked.has(x.p)).length));
      if (most > chars.length / 2) pieces[c.how].exposed++;
    }
  }
  s.dispose();
}

/** The screen as one string (a row after another, full width) and the set of masked positions in it. */
function cellsOf(s, masks) {
  const b = s.buffer;
  let text = '';
  for (let y = 0; y < s.rows; y++) text += (b.getLine(b.viewportY + y)?.translateToString(false, 0, s.cols) ?? '').padEnd(s.cols).slice(0, s.cols);
  const masked = new Set();
  for (const m of masks) for (let x = m.col; x < m.end; x++) masked.add(m.row * s.cols + x);
  return { text, masked };
}

function occurrences(text, v) {
  const out = [];
  for (let i = text.indexOf(v); i >= 0; i = text.indexOf(v, i + 1)) out.push(i);
  return out;
}

const total = Object.values(perKind).reduce((a, k) => a + k.n, 0);
const fullTotal = Object.values(perKind).reduce((a, k) => a + k.full, 0);
const pct = (a, b) => (b ? ((100 * a) / b).toFixed(2) : '-');
row(`recall: synthetic identifiers fully masked on the final screen (${cases.length} cases, 5 layouts x 6 ways of writing, 80x24)`, pct(fullTotal, total), `% (${fullTotal} of ${total}; ${notShown} not on screen)`, '>= 99');
row('recall by kind', KINDS.map((k) => `${k} ${pct(perKind[k].full, perKind[k].n)}`).join(', '), '%');
row('recall by way of writing', Object.entries(perHow).map(([h, v]) => `${h} ${pct(v.full, v.n)}`).join(', '), '%');
for (const [how, v] of Object.entries(pieces)) {
  const what = how === 'split' ? 'split across 2-8 writes at random points' : 'drawn in pieces of 1-6 characters out of order with cursor movements';
  row(`identifiers ${what}, of which some intermediate screen (after any one write, no coalescing) showed more than half unmasked`, pct(v.exposed, v.n), `% (${v.exposed} of ${v.n})`);
}
if (misses.length) {
  console.log(`\n${misses.length} misses, first 12:`);
  for (const m of misses.slice(0, 12)) console.log(`-- ${m.kind} ${m.how} ${m.layout}: ${m.shown}\n${m.screen}`);
}

// ---- false positives ----------------------------------------------------------------------------
const COLS = 120;
const ROWS = 40;
function liveCorpus() {
  const cmds = [
    ['ps', ['aux']], ['ps', ['-ef']], ['df', ['-h']], ['df', ['-i']], ['top', ['-b', '-n', '1', '-w', '200']], ['free', ['-m']], ['vmstat', ['1', '2']],
    ['mount', []], ['lsblk', []], ['ip', ['addr']], ['ip', ['route']], ['ss', ['-tan']], ['dmesg', []], ['ls', ['-l', '/etc', '/usr/bin', '/var/log']],
    ['git', ['-C', ROOT, 'log', '-n', '400', '--stat']], ['lscpu', []], ['cat', ['/proc/meminfo']], ['uname', ['-a']], ['uptime', []],
  ];
  const out = [];
  for (const [cmd, args] of cmds) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000, maxBuffer: 64 << 20, env: { PATH: process.env.PATH, LANG: 'C.UTF-8', COLUMNS: String(COLS) } });
    if (r.status === 0 && r.stdout) out.push({ name: `${cmd} ${args.filter((a) => a !== ROOT && a !== '-C').join(' ')}`.trim(), text: r.stdout });
  }
  return out;
}

async function falsePositives(docs) {
  const s = new Screen(COLS, ROWS);
  const cache = new SpanCache();
  const byDetector = {};
  const examples = {};
  let lines = 0;
  let touched = 0;
  let cells = 0;
  for (const d of docs) {
    const src = d.text.replace(/\r?\n$/, '').split(/\r?\n/);
    lines += src.length;
    for (let i = 0; i < src.length; ) {
      // A page: as many lines as fit in ROWS - 1 rows, wrapped ones included.
      const page = [];
      let used = 0;
      while (i < src.length) {
        const h = Math.max(1, Math.ceil([...src[i]].length / COLS));
        if (used + h > ROWS - 1 && page.length) break;
        page.push(i++);
        used += h;
      }
      await s.write(`\x1b[H\x1b[2J${page.map((k) => src[k]).join('\r\n')}\r\n`);
      const masks = screenMasks(redactor, s.buffer, COLS, ROWS, { cache, cursor: true });
      // Screen row -> source line.
      const rowLine = [];
      for (const k of page) for (let h = Math.max(1, Math.ceil([...src[k]].length / COLS)); h > 0; h--) rowLine.push(k);
      const hit = new Set();
      for (const m of masks) {
        const k = rowLine[m.row];
        if (k === undefined) continue;
        hit.add(k);
        cells += m.end - m.col;
        const key = `${m.kind}/${m.via}`;
        byDetector[key] = (byDetector[key] ?? 0) + (m.end - m.col);
        const ex = (examples[key] ??= []);
        if (ex.length < 3) ex.push(`${d.name}: ${src[k].slice(Math.max(0, m.col - 30), m.end + 20)}`);
      }
      touched += hit.size;
    }
  }
  s.dispose();
  return { lines, touched, cells, byDetector, examples };
}

const sets = [['generated ordinary corpus (ps, df, top, journalctl, dmesg, ls -l, git log, psql, ip/ss, kubectl/docker/aws/free/vmstat)', ordinaryCorpus({ seed: 1 })]];
if (LIVE) sets.push(['real commands on this machine (ps, df, top, free, vmstat, mount, lsblk, ip, ss, dmesg, ls -l, git log --stat, lscpu, meminfo)', liveCorpus()]);
for (const [name, docs] of sets) {
  const r = await falsePositives(docs);
  row(`false positives, ${name}: ${r.lines} lines`, pct(r.touched, r.lines), `% of lines touched (${r.touched}); ${((1000 * r.cells) / r.lines).toFixed(1)} masked cells per 1,000 lines`, '<= 1');
  const by = Object.entries(r.byDetector).sort((a, b) => b[1] - a[1]);
  row('  masked cells by detector (kind/how found)', by.length ? by.map(([k, v]) => `${k} ${v}`).join(', ') : 'none', 'cells');
  if (EXAMPLES) for (const [k, ex] of Object.entries(r.examples)) console.log(`  ${k}:\n    ${ex.join('\n    ')}`);
}

// ---- throughput ---------------------------------------------------------------------------------
// Two workloads: bulk output as a pty delivers it (the corpus and the synthetic cases as one
// stream cut into 4 KB frames), and interactive output (the synthetic cases' own frames, median a
// few dozen bytes: keystroke echo, prompts, small redraws), where the cost is per frame.
const synthStream = cases.flatMap((c) => c.frames);
const all = Buffer.concat([...ordinaryCorpus({ seed: 2 }).map((d) => Buffer.from(d.text.replace(/\n/g, '\r\n'))), ...synthStream]);
const bulk = [];
for (let i = 0; i < all.length; i += 4096) bulk.push(all.subarray(i, i + 4096));
const MB = (xs) => xs.reduce((a, b) => a + b.length, 0) / 1e6;
/** MB/s with two significant digits below 10 (small frames give fractions). */
const rate = (mb, sec) => (mb / sec >= 10 ? (mb / sec).toFixed(1) : (mb / sec).toPrecision(2));
for (const [name, stream] of [['bulk output, 4 KB frames', bulk], ['interactive output, the synthetic cases\' own frames', synthStream]]) {
  const mb = MB(stream);
  const n = stream.length;
  let plain = 0;
  for (let warm = 1; warm >= 0; warm--) {
    // The first pass warms the JIT up.
    const s = new Screen(80, 24);
    const a = performance.now();
    let last;
    for (const f of stream) last = s.write(f);
    await last;
    plain = (performance.now() - a) / 1000;
    s.dispose();
  }
  row(`throughput, ${name} (${mb.toFixed(1)} MB, ${n} frames): headless terminal alone, 80x24`, rate(mb, plain), `MB/s (${((plain * 1e6) / n).toFixed(0)} us per frame)`);
  for (const [cols, rs] of [[80, 24], [200, 50]]) {
    const frames = stream.map((data, i) => ({ t: i * 50, kind: 'output', data }));
    const a = performance.now();
    let out = 0;
    for await (const f of redactFrames(redactor, { cols, rows: rs }, frames, { coalesceMs: 0 })) out += f.data.length;
    const sec = (performance.now() - a) / 1000;
    // The ratio to the terminal alone (same run, same load) is steadier than MB/s on a shared machine.
    const vs = cols === 80 ? `; ${(sec / plain).toFixed(1)}x the terminal alone's time` : '';
    row(`throughput, ${name}: redacted frame stream (terminal + detection + masked redraw after every frame), ${cols}x${rs}`, rate(mb, sec), `MB/s (${((sec * 1e6) / n).toFixed(0)} us per frame${vs}; ${(out / 1e6).toFixed(1)} MB of redraws out)`);
  }
}
{
  // One full redraw of a busy screen, and what redaction adds to a seek.
  const text = ordinaryCorpus({ seed: 3 })[0].text.split('\n').slice(0, 49).join('\r\n');
  const times = [];
  const seek = [];
  const snap = new Screen(200, 50);
  await snap.write(text);
  const snapshot = snap.snapshot();
  snap.dispose();
  for (let i = 0; i < (QUICK ? 40 : 200); i++) {
    const a = performance.now();
    const v = new RedactingView(redactor, 200, 50);
    await v.write(snapshot);
    v.update();
    seek.push(performance.now() - a);
    await v.write(`\x1b[${(i % 49) + 1};1Hps line ${i}`);
    v.reset();
    const b = performance.now();
    v.update();
    times.push(performance.now() - b);
    v.dispose();
  }
  const q = (xs, p) => xs.sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(2);
  row('full masked redraw of a busy 200x50 screen, p50 / p99', `${q(times, 0.5)} / ${q(times, 0.99)}`, 'ms');
  row('redaction added to a seek (view from the keyframe snapshot + full masked redraw, 200x50), p50 / p99', `${q(seek, 0.5)} / ${q(seek, 0.99)}`, 'ms', '< 100 with the seek');
}

const date = new Date().toISOString().slice(0, 10);
const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
let md = `\n## ${date} phi redaction${QUICK ? ' (quick)' : ''} on ${os.cpus().length} x ${os.cpus()[0]?.model?.split(' ').slice(0, 2).join(' ') ?? '?'}, node ${process.version}, load average ${load} at the end\n\n| measure | value | unit | target |\n| --- | --- | --- | --- |\n`;
for (const r of rows) md += `| ${r.what} | ${r.value} | ${r.unit} | ${r.target} |\n`;
md += `\n(${((performance.now() - t0) / 1000).toFixed(0)} s)\n`;
if (!process.argv.includes('--dry')) appendFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
console.log(md);
