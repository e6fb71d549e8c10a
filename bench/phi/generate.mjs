#!/usr/bin/env node
// Synthetic PHI for measuring redaction, and ordinary operations output without any.
//
//   syntheticCases({ seed, count })  -> [{ id, layout, cols, rows, frames: Buffer[], ids: [{ kind, shown }] }]
//   ordinaryCorpus({ seed })         -> [{ name, text }]   (generated: ps, df, top, journalctl, dmesg,
//                                        ls -l, git log, psql tables, ip, ss, kubectl, docker, aws)
//
// Every synthetic case is one screenful, started with a clear screen: the identifiers it writes
// (ids[].shown is the exact text a viewer sees) are all on the final screen, so a case scores by
// whether every cell of each identifier is masked there. Layouts: inline prose, log lines, JSON,
// psql tables, space-aligned tables, and each of those written split across frames, coloured
// character by character, wrapped at the right margin (by the terminal, or by the program with a
// CR LF at the margin), or drawn out of order with cursor movements.
//
// Usage: node bench/phi/generate.mjs --out DIR [--seed 1] [--count 2000]
//   writes DIR/synthetic.jsonl (frames as base64, ground truth) and DIR/ordinary/<name>.txt
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** mulberry32: a small seeded PRNG, so every run measures the same cases. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(next() * arr.length)];
  const digits = (n) => Array.from({ length: n }, () => int(0, 9)).join('');
  return { next, int, pick, digits };
}

const pad = (n, w) => String(n).padStart(w, '0');
const FIRST = ['Alice', 'Bob', 'Carmen', 'Deshawn', 'Emily', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jamal', 'Kaito', 'Lena', 'Mateo', 'Nadia', 'Omar', 'Priya'];
const LAST = ['Nguyen', 'Smith', 'Garcia', 'Okafor', 'Johansson', 'Kowalski', 'Haddad', 'Tanaka', 'Murphy', 'Silva', 'Cohen', 'Patel'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

function luhnComplete(body) {
  for (let d = 0; d <= 9; d++) {
    const s = body + d;
    let sum = 0;
    for (let i = s.length - 1, dbl = false; i >= 0; i--, dbl = !dbl) {
      let x = s.charCodeAt(i) - 48;
      if (dbl && (x *= 2) > 9) x -= 9;
      sum += x;
    }
    if (sum % 10 === 0) return s;
  }
  throw new Error('unreachable');
}

const MBI_A = 'ACDEFGHJKMNPQRTUVWXY';

/**
 * More written forms, added after the detectors were tuned on the ones in `identifier` (the first
 * run on them is in docs/redaction.md): one in three identifiers takes one of these.
 */
function variant(r, kind) {
  const d = (n) => r.digits(n);
  const nanp = () => `${r.int(2, 9)}${r.int(0, 8)}${r.int(2, 9)}`;
  const exch = () => `${r.int(2, 9)}${r.int(2, 9)}${r.int(0, 9)}`;
  switch (kind) {
    case 'ssn': {
      const v = `${pad(r.int(1, 665), 3)}-${pad(r.int(1, 99), 2)}-${pad(r.int(1, 9999), 4)}`;
      return { kind, shown: v, label: r.pick(['SSN:', 'S.S.N. ', 'SS No: ', 'Soc Sec #: ', 'SSN/TIN: ']) };
    }
    case 'mrn':
      return { kind, shown: r.pick([() => d(8), () => `${d(3)}-${d(3)}-${d(3)}`, () => `MR${d(6)}`])(), label: r.pick(['MRN#:', 'Med Rec #: ', 'Chart No. ', 'MR#: ', 'Patient No: ', 'Pt ID: ', 'MRN:']) };
    case 'account':
      return { kind, shown: r.pick([() => d(9), () => `${d(2)}-${d(4)}-${d(2)}`])(), label: r.pick(['Acct: ', 'Account #', 'Billing Acct No: ', 'Guarantor Acct: ', 'account_no=']) };
    case 'dob': {
      const y = r.int(1930, 2015);
      const m = r.int(1, 12);
      const day = r.int(1, 28);
      const v = r.pick([() => `${m}-${day}-${y}`, () => `${pad(day, 2)}/${pad(m, 2)}/${y}`, () => `${y}.${pad(m, 2)}.${pad(day, 2)}`, () => `${day} ${MONTHS[m - 1]}, ${y}`, () => `${pad(m, 2)}/${pad(day, 2)}/${String(y).slice(2)}`])();
      return { kind, shown: v, label: r.pick(['DOB ', 'dob=', 'Birthdate: ', 'Date of birth - ', 'DOB/Age: ', 'Birth date: ']) };
    }
    case 'phone':
      return r.pick([
        () => ({ kind, shown: `${nanp()}.${exch()}.${d(4)}`, label: 'Ph: ' }),
        () => ({ kind, shown: `(${nanp()})${exch()}-${d(4)}`, label: r.pick(['', 'cell: ']) }),
        () => ({ kind, shown: `${nanp()} ${exch()} ${d(4)}`, label: 'Home Phone: ' }),
        () => ({ kind, shown: `+1-${nanp()}-${exch()}-${d(4)}`, label: r.pick(['', 'Fax #: ']) }),
        () => ({ kind, shown: `+61 2 ${d(4)} ${d(4)}`, label: r.pick(['', 'tel: ']) }),
      ])();
    case 'email':
      return { kind, shown: r.pick([`${r.pick(FIRST).toUpperCase()}.${r.pick(LAST).toUpperCase()}@EXAMPLE.COM`, `${r.pick(FIRST).toLowerCase()}+portal@health.example.co.uk`, `p${d(6)}@patients.example.org`]), label: r.pick(['', 'E-mail: ', 'mailto:']) };
    case 'hpbn':
      return r.pick([
        () => ({ kind, shown: `ABC${d(9)}`, label: 'Member #: ' }),
        () => ({ kind, shown: `NY${d(8)}`, label: 'Medicaid ID: ' }),
        () => ({ kind, shown: `PLX-${d(4)}-${d(2)}`, label: 'Policy Number: ' }),
        () => ({ kind, shown: `${d(9)}A`, label: 'HICN: ' }),
      ])();
    case 'card': {
      const n = luhnComplete(`4${d(14)}`);
      return { kind, shown: r.pick([n, `${n.slice(0, 4)} ${n.slice(4, 8)} ${n.slice(8, 12)} ${n.slice(12)}`]), label: r.pick(['Card: ', 'Visa ', 'card_number=', 'Payment card on file: ']) };
    }
    case 'ip': {
      const g = () => r.int(1, 0xffff).toString(16).padStart(4, '0');
      return { kind, shown: `2a00:${g()}:${g()}:${g()}:${g()}:${g()}:${g()}:${g()}`, label: r.pick(['', 'remote_addr=', 'Client: ']) };
    }
    case 'url': {
      const v = d(r.int(5, 8));
      return { kind, shown: v, url: r.pick([`https://ehr.example.org/api/patients?id=${v}`, `https://portal.example.com/Patient?identifier=${v}`, `https://ehr.example.org/chart/${v}/summary`, `https://lab.example.net/results?patientId=${v}&format=pdf`]), label: '' };
    }
  }
  return null;
}

/** One identifier of `kind`: { kind, shown, label } where label is text to put before it (or ''). */
export function identifier(r, kind) {
  if (r.next() < 1 / 3) return variant(r, kind);
  switch (kind) {
    case 'ssn': {
      let area;
      do area = r.int(1, 899);
      while (area === 666);
      const a = pad(area, 3);
      const g = pad(r.int(1, 99), 2);
      const s = pad(r.int(1, 9999), 4);
      const form = r.int(0, 2);
      if (form === 2) return { kind, shown: a + g + s, label: r.pick(['SSN: ', 'SSN#', 'Social Security Number: ', 'ssn=']) };
      return { kind, shown: form ? `${a} ${g} ${s}` : `${a}-${g}-${s}`, label: r.pick(['', 'SSN ', 'ssn: ', 'social security no. ']) };
    }
    case 'mrn': {
      const v = r.pick([() => r.digits(r.int(6, 10)), () => `${r.pick(['A', 'M', 'P'])}${r.digits(7)}`, () => `${r.digits(2)}-${r.digits(4)}-${r.digits(1)}`])();
      return { kind, shown: v, label: r.pick(['MRN: ', 'MRN #', 'MRN ', 'Medical Record Number: ', 'Patient ID: ', 'med rec no. ', 'mrn=']) };
    }
    case 'account':
      return { kind, shown: r.pick([() => r.digits(r.int(8, 12)), () => `${r.digits(4)}-${r.digits(4)}-${r.digits(2)}`])(), label: r.pick(['Acct #: ', 'Account No. ', 'Account Number: ', 'acct=', 'ACCT# ']) };
    case 'dob': {
      const y = r.int(1925, 2020);
      const m = r.int(1, 12);
      const d = r.int(1, 28);
      const v = r.pick([
        () => `${pad(m, 2)}/${pad(d, 2)}/${y}`,
        () => `${m}/${d}/${String(y).slice(2)}`,
        () => `${y}-${pad(m, 2)}-${pad(d, 2)}`,
        () => `${pad(d, 2)}.${pad(m, 2)}.${y}`,
        () => `${MONTHS[m - 1]} ${d}, ${y}`,
        () => `${d} ${MONTHS[m - 1].slice(0, 3)} ${y}`,
      ])();
      return { kind, shown: v, label: r.pick(['DOB: ', 'D.O.B. ', 'Date of Birth: ', 'born ', 'birth_date=', 'DOB ']) };
    }
    case 'phone': {
      const a = `${r.int(2, 9)}${r.int(0, 8)}${r.int(2, 9)}`;
      const e = `${r.int(2, 9)}${r.int(2, 9)}${r.int(0, 9)}`;
      const l = r.digits(4);
      const v = r.pick([
        () => `(${a}) ${e}-${l}`,
        () => `${a}-${e}-${l}`,
        () => `${a}.${e}.${l}`,
        () => `+1 ${a} ${e} ${l}`,
        () => `1-${a}-${e}-${l}`,
        () => `+44 20 ${r.digits(4)} ${r.digits(4)}`,
        () => `+49 30 ${r.digits(8)}`,
        () => `+33 1 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}`,
      ])();
      if (r.next() < 0.15) return { kind, shown: a + e + l, label: r.pick(['Phone: ', 'Tel: ', 'Fax: ', 'mobile=']) };
      return { kind, shown: v, label: r.pick(['', 'tel ', 'phone: ', 'fax ', 'call ']) };
    }
    case 'email':
      return { kind, shown: `${r.pick(FIRST).toLowerCase()}${r.pick(['.', '_', ''])}${r.pick(LAST).toLowerCase()}${r.int(0, 99)}@${r.pick(['gmail.com', 'example.org', 'mail.example.net', 'yahoo.co.uk', 'hospital-mail.org'])}`, label: r.pick(['', 'email: ', 'contact ']) };
    case 'hpbn': {
      if (r.next() < 0.7) {
        const A = () => r.pick([...MBI_A]);
        const AN = () => (r.next() < 0.5 ? A() : String(r.int(0, 9)));
        const v = `${r.int(1, 9)}${A()}${AN()}${r.int(0, 9)}${A()}${AN()}${r.int(0, 9)}${A()}${A()}${r.digits(2)}`;
        const dashed = r.next() < 0.5;
        return { kind, shown: dashed ? `${v.slice(0, 4)}-${v.slice(4, 7)}-${v.slice(7)}` : v, label: r.pick(['', 'MBI: ', 'Medicare ID: ', 'mbi=']) };
      }
      return { kind, shown: `${r.pick(['XKZ', 'HPN', 'W'])}${r.digits(r.int(8, 10))}`, label: r.pick(['Member ID: ', 'Subscriber ID: ', 'Policy No. ', 'member_id=']) };
    }
    case 'card': {
      const [prefix, len] = r.pick([['4', 16], ['51', 16], ['55', 16], ['2221', 16], ['37', 15], ['6011', 16], ['4', 19]]);
      const n = luhnComplete(prefix + r.digits(len - prefix.length - 1));
      const sep = r.pick(['', ' ', '-']);
      const shown = len === 15 ? [n.slice(0, 4), n.slice(4, 10), n.slice(10)].join(sep) : n.match(/.{1,4}/g).join(sep);
      return { kind, shown, label: r.pick(['', 'card ', 'cc: ', 'PAN=']) };
    }
    case 'ip': {
      if (r.next() < 0.75) {
        let o1;
        do o1 = r.int(1, 223);
        while ([10, 100, 127, 169, 172, 192].includes(o1));
        return { kind, shown: `${o1}.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`, label: r.pick(['', 'from ', 'client=', 'src ']) };
      }
      const g = () => r.int(1, 0xffff).toString(16);
      return { kind, shown: `2${r.int(0, 0xfff).toString(16).padStart(3, '0')}:${g()}:${g()}:${g()}::${g()}`, label: r.pick(['', 'from ', 'client=']) };
    }
    case 'url': {
      const id = r.pick([() => r.digits(r.int(5, 9)), () => `P${r.digits(7)}`]);
      const v = id();
      return { kind, shown: v, url: r.pick([`https://ehr.example.org/patients/${v}/chart`, `https://portal.example.com/view?mrn=${v}&tab=labs`, `https://fhir.example.net/r4/Patient/${v}`, `http://10.1.2.3:8080/api/record?patient_id=${v}`]), label: '' };
    }
  }
  throw new Error(kind);
}

export const KINDS = ['ssn', 'mrn', 'account', 'dob', 'phone', 'email', 'hpbn', 'card', 'ip', 'url'];

const text = (x) => (x.url ? x.url : x.label + x.shown);

/** Lines of one layout holding the identifiers `xs` (ASCII only, each line shorter than the screen unless wrapping is the point). */
function layoutLines(r, layout, xs, o = {}) {
  const name = () => o.name ?? `${r.pick(FIRST)} ${r.pick(LAST)}`;
  const namePad = o.namePad ?? 0;
  switch (layout) {
    case 'inline':
      return xs.map((x) => `${r.pick(['Patient', 'Pt', 'Caller'])} ${name()} ${r.pick(['seen today,', 'called re: refill,', 'updated record;'])} ${text(x)} ${r.pick(['- follow up.', 'ok', '(verified)'])}`);
    case 'log':
      return xs.map((x, i) => `2026-11-24T10:${pad(r.int(0, 59), 2)}:${pad(i, 2)}.${r.digits(3)}Z ${r.pick(['INFO', 'WARN', 'DEBUG'])} ${r.pick(['intake', 'billing-api', 'hl7-bridge'])}[${r.int(100, 9999)}]: ${r.pick(['lookup', 'update', 'sync'])} ${text(x)} took=${r.int(1, 900)}ms`);
    case 'json': {
      const keys = { ssn: 'ssn', mrn: 'mrn', account: 'account_number', dob: 'dob', phone: 'phone', email: 'email', hpbn: 'mbi', card: 'card', ip: 'client_ip', url: 'link' };
      const body = xs.map((x) => `  "${x.url || !x.label ? keys[x.kind] : x.label.replace(/#/g, ' no').replace(/[^A-Za-z_ /]/g, '').trim().replace(/[ /]+/g, '_').toLowerCase() || keys[x.kind]}": "${x.url ?? x.shown}"`);
      return ['{', `  "name": "${name()}",`, ...body.map((l, i) => (i < body.length - 1 ? `${l},` : l)), '}'];
    }
    case 'psql': {
      const heads = { ssn: 'ssn', mrn: 'mrn', account: 'acct_no', dob: 'dob', phone: 'phone', email: 'email', hpbn: 'member_id', card: 'card', ip: 'client_ip', url: 'link' };
      const cols = ['name', ...xs.map((x) => heads[x.kind])];
      const vals = [name(), ...xs.map((x) => x.url ?? x.shown)];
      const w = cols.map((c, i) => Math.max(c.length, vals[i].length) + (i === 0 ? namePad : 0));
      const center = (s, n) => s.padStart(Math.floor((n + s.length) / 2)).padEnd(n);
      return [` ${cols.map((c, i) => center(c, w[i])).join(' | ')}`, cols.map((_, i) => '-'.repeat(w[i] + 2)).join('+'), ` ${vals.map((v, i) => v.padEnd(w[i])).join(' | ')}`, '(1 row)'];
    }
    case 'table': {
      const heads = { ssn: 'SSN', mrn: 'MRN', account: 'ACCOUNT NO', dob: 'DATE OF BIRTH', phone: 'PHONE', email: 'EMAIL', hpbn: 'MEMBER ID', card: 'CARD', ip: 'CLIENT IP', url: 'LINK' };
      const cols = ['NAME', ...xs.map((x) => heads[x.kind])];
      const vals = [name(), ...xs.map((x) => x.url ?? x.shown)];
      const w = cols.map((c, i) => Math.max(c.length, vals[i].length) + 2 + (i === 0 ? namePad : 0));
      return [cols.map((c, i) => c.padEnd(w[i])).join(''), vals.map((v, i) => v.padEnd(w[i])).join('')];
    }
  }
  throw new Error(layout);
}

const CSI = '\x1b[';
const colourEach = (r, s) => [...s].map((c) => `${CSI}${r.pick(['31', '32', '33', '1;34', '35', '36', '38;5;208', '38;2;10;200;90'])}m${c}`).join('') + `${CSI}0m`;

/**
 * One case: a layout of 1-4 identifiers, written with a transformation:
 * plain | split (random cut points, 2-8 frames) | colour (each character of each identifier its own SGR) |
 * wrap (an identifier straddles the right margin; the terminal wraps) | hardwrap (the program breaks at the margin) |
 * cursor (each line drawn in pieces, out of order, with CUP).
 */
export function syntheticCase(r, id, o = {}) {
  const cols = 80;
  const rows = 24;
  const layout = o.layout ?? r.pick(['inline', 'log', 'json', 'psql', 'table']);
  const tabular = layout === 'psql' || layout === 'table';
  // Programs that break lines themselves write prose and logs; tables wrap in the terminal.
  const how = o.how === 'hardwrap' && tabular ? 'wrap' : (o.how ?? r.pick(['plain', 'split', 'colour', 'wrap', 'hardwrap', 'cursor']));
  let xs = Array.from({ length: tabular ? r.int(1, 3) : r.int(1, 4) }, () => identifier(r, o.kind ?? r.pick(KINDS)));
  const who = `${r.pick(FIRST)} ${r.pick(LAST)}`;
  let lines = layoutLines(r, layout, xs, { name: who });
  // A table fits the screen unless wrapping is the point: fewer columns until it does.
  while (tabular && xs.length > 1 && lines.some((l) => l.length > cols)) lines = layoutLines(r, layout, (xs = xs.slice(0, -1)), { name: who });
  if (how === 'wrap' || how === 'hardwrap') {
    const target = xs[r.int(0, xs.length - 1)];
    const want = (l) => cols - r.int(1, Math.max(1, target.shown.length - 1)) - l.indexOf(target.shown);
    if (tabular) {
      // Widen the first column, as a long name would: the whole table wraps at the same column.
      const valueLine = lines.find((l) => l.includes(target.shown));
      const pad = want(valueLine);
      if (pad > 0) lines = layoutLines(r, layout, xs, { name: who, namePad: pad });
    } else {
      // Indent each identifier's line so that the identifier crosses the right margin.
      lines = lines.map((l) => {
        const x = xs.find((v) => l.includes(v.shown));
        if (!x) return l;
        const at = l.indexOf(x.shown);
        const to = cols - r.int(1, Math.max(1, x.shown.length - 1));
        return at < to ? ' '.repeat(to - at) + l : l;
      });
    }
  }
  let out = `${CSI}H${CSI}2J`;
  let frames;
  if (how === 'cursor') {
    // A full-screen program draws a long line as rows of its own (no soft wrap), in pieces, in any order.
    const parts = [];
    lines = lines.flatMap((l) => l.match(new RegExp(`.{1,${cols}}`, 'g')) ?? ['']);
    lines.forEach((l, y) => {
      for (let x = 0; x < l.length; ) {
        const k = r.int(1, 6);
        parts.push(`${CSI}${y + 1};${x + 1}H${l.slice(x, x + k)}`);
        x += k;
      }
    });
    for (let i = parts.length - 1; i > 0; i--) {
      const j = r.int(0, i);
      [parts[i], parts[j]] = [parts[j], parts[i]];
    }
    frames = [out, ...parts, `${CSI}${lines.length + 1};1H`];
  } else {
    for (const l of lines) {
      let s = l;
      if (how === 'colour') for (const x of xs) s = s.split(x.shown).join(colourEach(r, x.shown));
      if (how === 'hardwrap' && s.length > cols) s = `${s.slice(0, cols)}\r\n${s.slice(cols)}`;
      out += `${s}\r\n`;
    }
    if (how === 'split') {
      const cuts = Array.from({ length: r.int(1, 7) }, () => r.int(1, out.length - 1)).sort((a, b) => a - b);
      frames = [0, ...cuts].map((c, i, a) => out.slice(c, a[i + 1] ?? out.length)).filter(Boolean);
    } else frames = [out];
  }
  // A screen row holds a line only if wrapping did not push the screen past its height.
  return { id, layout, how, cols, rows, frames: frames.map((f) => Buffer.from(f)), ids: xs.map((x) => ({ kind: x.kind, shown: x.shown })) };
}

/** `count` cases, every layout and transformation in turn with random kinds. */
export function syntheticCases({ seed = 1, count = 2000 } = {}) {
  const r = rng(seed);
  const layouts = ['inline', 'log', 'json', 'psql', 'table'];
  const hows = ['plain', 'split', 'colour', 'wrap', 'hardwrap', 'cursor'];
  return Array.from({ length: count }, (_, i) => syntheticCase(r, i, { layout: layouts[i % layouts.length], how: hows[Math.floor(i / layouts.length) % hows.length] }));
}

export { ordinaryCorpus } from './ordinary.mjs';

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
  const out = arg('--out');
  if (!out) {
    console.error('usage: node bench/phi/generate.mjs --out DIR [--seed 1] [--count 2000]');
    process.exit(2);
  }
  const { ordinaryCorpus } = await import('./ordinary.mjs');
  mkdirSync(path.join(out, 'ordinary'), { recursive: true });
  const cases = syntheticCases({ seed: Number(arg('--seed', '1')), count: Number(arg('--count', '2000')) });
  writeFileSync(path.join(out, 'synthetic.jsonl'), cases.map((c) => JSON.stringify({ ...c, frames: c.frames.map((f) => f.toString('base64')) })).join('\n') + '\n');
  for (const c of ordinaryCorpus({ seed: Number(arg('--seed', '1')) })) writeFileSync(path.join(out, 'ordinary', `${c.name}.txt`), c.text);
  console.log(`wrote ${cases.length} synthetic cases (${cases.reduce((n, c) => n + c.ids.length, 0)} identifiers) and the ordinary corpus to ${out}`);
}
