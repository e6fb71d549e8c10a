import { dateValid } from './validate.js';
import type { Span } from './formats.js';
import type { LabelledKind } from './options.js';

/**
 * Label-driven detection: a value right after a label that says what it is (`MRN: 12345678`,
 * `Acct #: 4417-2290`, `"dob": "1961-03-14"`, `Date of Birth 14 March 1961`), and the values in
 * a table column whose header says it (`mrn`, `date_of_birth`). Labels are matched
 * case-insensitively as whole words; `_` and `-` may stand for the space between words, so JSON
 * keys and SQL column names match too.
 */

const W = String.raw`\p{L}\p{N}_`;
const S = String.raw`[\s_-]*`;
const SUFFIX = String.raw`(?:#|No\.?|Num(?:ber)?\.?|ID|Identifier)`;

/**
 * Labels per kind. "Strong" ones say what follows even without a colon (`MRN 12345678`); "weak"
 * ones are ordinary words and need a separator (`:`, `=`, `#`) or a suffix (No., Number, ID).
 */
const STRONG: Record<LabelledKind, string[]> = {
  ssn: ['SSN', 'SS#', String.raw`Soc(?:ial)?${S}Sec(?:urity)?(?:${S}${SUFFIX})?`],
  mrn: [
    'MRN',
    String.raw`M\.R\.N\.?`,
    String.raw`Medical${S}Record(?:${S}${SUFFIX})?`,
    String.raw`Med${S}Rec(?:${S}${SUFFIX})?`,
    String.raw`Patient${S}${SUFFIX}`,
    String.raw`Pt\.?${S}${SUFFIX}`,
    String.raw`MR${S}(?:#|No\.?|Num(?:ber)?\.?)`,
    String.raw`Chart${S}${SUFFIX}`,
  ],
  account: [String.raw`Acc(?:oun)?t${S}${SUFFIX}`, String.raw`Acct\.?${S}${SUFFIX}`],
  dob: ['DOB', String.raw`D\.O\.B\.?`, String.raw`Date${S}of${S}Birth`, String.raw`Birth${S}Date`, 'Birthdate', 'Birthday', 'Born'],
  phone: [String.raw`(?:Home|Work|Mobile|Cell|Contact)${S}(?:Phone|Number|No\.?)`, String.raw`Phone${S}${SUFFIX}`],
  hpbn: [
    'MBI',
    'HICN',
    String.raw`(?:Medicare|Medicaid)${S}(?:Beneficiary${S})?${SUFFIX}`,
    String.raw`(?:Member|Subscriber|Beneficiary|Policy|Insurance)${S}${SUFFIX}`,
    String.raw`Health${S}Plan(?:${S}Beneficiary)?${S}${SUFFIX}`,
    String.raw`Group${S}(?:No\.?|Num(?:ber)?|#)`,
  ],
};
const WEAK: Record<LabelledKind, string[]> = {
  ssn: [],
  mrn: ['Patient'],
  account: ['Account', String.raw`Acct\.?`],
  dob: [],
  phone: ['Phone', 'Telephone', 'Tel', 'Fax', 'Mobile', 'Cell', String.raw`Ph\.?`],
  hpbn: ['Medicare', 'Medicaid', 'Member', 'Subscriber', 'Beneficiary'],
};

/** Between label and value: an optional suffix word, quotes, brackets, one separator. */
const SEP_ANY = String.raw`${S}(?:${SUFFIX}(?![\p{L}]))?["'\])]*\s*(?:[:=#]|=>)?["'(\s]*`;
const SEP_REQUIRED = String.raw`(?:${S}${SUFFIX}(?![\p{L}])["'\])]*\s*(?:[:=#]|=>)?|["'\])]*\s*(?:[:=#]|=>))["'(\s]*`;

const VALUE: Record<Exclude<LabelledKind, 'dob'>, string> = {
  ssn: String.raw`\d{3}(?<sp>[- ]?)\d{2}\k<sp>\d{4}`,
  mrn: String.raw`[A-Z0-9](?:[A-Z0-9]|[-./](?=[A-Z0-9])){2,29}`,
  account: String.raw`[A-Z0-9](?:[A-Z0-9]|[-./](?=[A-Z0-9])){2,29}`,
  hpbn: String.raw`[A-Z0-9](?:[A-Z0-9]|[-./](?=[A-Z0-9])){2,29}`,
  phone: String.raw`\+?\(?\d(?:\d|[-. ]\(?\d|\)[ -]?\d){6,20}`,
};

/** The written date forms dateValid accepts. */
export const DATE = [
  String.raw`\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})`,
  String.raw`\d{4}[/.-]\d{1,2}[/.-]\d{1,2}`,
  String.raw`\d{8}`,
  String.raw`[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}`,
  String.raw`\d{1,2}(?:st|nd|rd|th)?[\s-]+[A-Za-z]{3,9}\.?,?[\s-]+(?:\d{4}|\d{2})`,
].join('|');

const digitCount = (s: string) => s.replace(/\D/g, '').length;

/** Whether `value` is acceptable as an identifier of `kind` once a label or header said so. */
export function labelledValueOk(kind: LabelledKind, value: string): boolean {
  switch (kind) {
    case 'ssn':
      // A label is strong evidence: any nine digits under it are masked, the SSA's rules or not
      // (a 9xx number under "SSN" is an ITIN, and placeholders like 000-00-0000 hide nothing).
      return /^\d{3}([- ]?)\d{2}\1\d{4}$/.test(value);
    case 'dob':
      return dateValid(value);
    case 'phone': {
      const n = digitCount(value);
      return n >= 7 && n <= 15 && /^[\d\s().+-]+$/.test(value);
    }
    case 'account':
      return digitCount(value) >= 4 && /^[A-Z0-9][A-Z0-9./-]*$/i.test(value);
    default:
      return digitCount(value) >= 3 && /^[A-Z0-9][A-Z0-9./-]*$/i.test(value);
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, S);

interface Rule {
  kind: LabelledKind;
  /** A cheap test a line must pass before `re` runs: a fragment every label of the kind contains. */
  hint: RegExp;
  re: RegExp;
}

/** Fragments of the built-in labels per kind (most lines of output have none, and skip the rules). */
const HINTS: Record<LabelledKind, string[]> = {
  ssn: ['ss', 'soc'],
  mrn: ['mrn', 'm.r', 'med', 'patient', 'pt', 'mr', 'chart'],
  account: ['acc'],
  dob: ['dob', 'd.o', 'birth', 'born'],
  phone: ['phone', 'tel', 'fax', 'mobile', 'cell', 'contact', 'home', 'work', 'ph'],
  hpbn: ['mbi', 'hicn', 'medica', 'member', 'subscriber', 'benef', 'policy', 'insurance', 'plan', 'group'],
};
const hintOf = (words: string[]) => new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'i');

/** Builds the label rules, with a deployment's own label words (strong) added per kind. */
export function labelRules(extra: Partial<Record<LabelledKind, string[]>>, enabled: (k: LabelledKind) => boolean): Rule[] {
  const rules: Rule[] = [];
  const build = (kind: LabelledKind, labels: string[], sep: string) => {
    if (!labels.length || !enabled(kind)) return;
    const value = kind === 'dob' ? String.raw`[^\p{N}\n]{0,25}?(${DATE})(?![\p{N}]|[/.-]\d)` : `${sep}(${VALUE[kind]})(?![${W}]|[-./][A-Z0-9])`;
    // A deployment's own labels bring their own first letters into the hint.
    const hint = hintOf([...HINTS[kind], ...(extra[kind] ?? []).map((l) => l.trim().slice(0, 3))]);
    // A label may end a snake_case key (billing_acct_no, home_phone): "_" before it is a boundary.
    rules.push({ kind, hint, re: new RegExp(String.raw`(?<![\p{L}\p{N}])(?:${labels.join('|')})(?![\p{L}\p{N}])${value}`, 'giud') });
  };
  for (const kind of Object.keys(STRONG) as LabelledKind[]) {
    build(kind, [...STRONG[kind], ...(extra[kind] ?? []).map(escape)], SEP_ANY);
    build(kind, WEAK[kind], SEP_REQUIRED);
  }
  return rules;
}

/** Values after labels in one line of text. */
export function findLabelled(text: string, rules: Rule[], out: Span[]): void {
  for (const { kind, hint, re } of rules) {
    if (!hint.test(text)) continue;
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const [start, end] = m.indices![1]!;
      if (kind === 'ssn' || labelledValueOk(kind, m[1]!)) out.push({ start, end, kind, via: 'label' });
      // A rejected value may have swallowed the next label: look again just after this one.
      else re.lastIndex = m.index + 1;
    }
  }
}

/** Column headers, in the normalised form `normaliseHeader` gives. */
const HEADERS: [LabelledKind, RegExp][] = [
  ['ssn', /^(ssn|ss_no|social_security(_no|_num|_number)?|soc_sec(_no)?)$/],
  ['mrn', /^(mrn|mrn_no|medical_record(_no|_num|_number)?|med_rec(_no|_num)?|patient_?(id|no|num|number)|chart_(no|num|number))$/],
  ['account', /^(acct|account)(_?(no|num|number|id))?$/],
  ['hpbn', /^(mbi|hicn|(member|subscriber|beneficiary|policy|insurance|medicare|medicaid|health_plan)_?(id|no|num|number))$/],
  ['dob', /^(dob|d_o_b|date_of_birth|birth_?date|birthday)$/],
  ['phone', /^(phone|phone_(no|num|number)|tel|telephone|mobile|cell|fax|(home|work|mobile|cell)_phone)$/],
];

/** "Date of Birth" / "date-of-birth" / "Acct #" -> "date_of_birth" / "acct_no". */
export const normaliseHeader = (s: string) =>
  s
    .trim()
    .toLowerCase()
    .replace(/#/g, '_no')
    .replace(/[\s.\-_]+/g, '_')
    .replace(/^_|_$/g, '');

/** The kind a table header cell names, if any. */
export function headerKind(cell: string, enabled: (k: LabelledKind) => boolean): LabelledKind | null {
  const h = normaliseHeader(cell);
  if (!h || h.length > 32) return null;
  for (const [kind, re] of HEADERS) if (re.test(h) && enabled(kind)) return kind;
  return null;
}

/** A quick test that a row may hold a header: one of the words headers are made of. */
export const HEADER_HINT =
  /ssn|soc|mrn|med|record|patient|chart|acc|mbi|hicn|member|subscriber|benef|policy|insurance|medica|plan|dob|d\.o\.b|birth|phone|tel|mobile|cell|fax/i;

/**
 * Values in table columns whose header names a kind. `rows` has one character per screen column
 * (wide characters stand as U+FFFD in both their cells). A header row splits into cells at `|` or
 * `│` when it has them, else at runs of two or more spaces (each cell reaching to the next one);
 * in the rows below, the text under a labelled cell (widened to whole words) is a value of that
 * kind if labelledValueOk says so. A column ends at a blank row or a new header.
 * Returns spans in column units per row.
 */
export function findColumns(rows: string[], enabled: (k: LabelledKind) => boolean): { row: number; span: Span }[] {
  const out: { row: number; span: Span }[] = [];
  let cols: { kind: LabelledKind; from: number; to: number }[] = [];
  for (let y = 0; y < rows.length; y++) {
    const text = rows[y]!;
    if (!text.trim()) {
      cols = [];
      continue;
    }
    const header = HEADER_HINT.test(text) ? headerCells(text, enabled) : [];
    if (header.length) {
      cols = header;
      continue;
    }
    for (const c of cols) {
      let a = c.from;
      let b = Math.min(c.to, text.length);
      // Widen to whole words: only a word that crosses the cell's edge, not the next cell's first word.
      const inWord = (i: number) => i >= 0 && i < text.length && !/[\s|│]/.test(text[i]!);
      while (inWord(a) && inWord(a - 1)) a--;
      while (b > a && inWord(b - 1) && inWord(b)) b++;
      const piece = text.slice(a, b);
      const lead = piece.length - piece.trimStart().length;
      const value = piece.trim();
      if (!value || /[|│]/.test(value)) continue;
      if (labelledValueOk(c.kind, value)) {
        out.push({ row: y, span: { start: a + lead, end: a + lead + value.length, kind: c.kind, via: 'column' } });
        continue;
      }
      // Values wider than their header reach into the next column's words: try each word alone.
      for (const w of piece.matchAll(/\S+/g)) {
        if (labelledValueOk(c.kind, w[0])) out.push({ row: y, span: { start: a + w.index, end: a + w.index + w[0].length, kind: c.kind, via: 'column' } });
      }
    }
  }
  return out;
}

function headerCells(text: string, enabled: (k: LabelledKind) => boolean): { kind: LabelledKind; from: number; to: number }[] {
  const cells: { text: string; from: number; to: number }[] = [];
  if (/[|│]/.test(text)) {
    let from = 0;
    for (let i = 0; i <= text.length; i++) {
      if (i === text.length || text[i] === '|' || text[i] === '│') {
        cells.push({ text: text.slice(from, i), from, to: i });
        from = i + 1;
      }
    }
  } else {
    const starts = [...text.matchAll(/(?:^|\s{2,})(\S(?:\S| (?! ))*)/g)].map((m) => m.index + m[0].length - m[1]!.length);
    starts.forEach((s, i) => cells.push({ text: text.slice(s, starts[i + 1] ?? text.length), from: s, to: starts[i + 1] ?? text.length }));
  }
  const out: { kind: LabelledKind; from: number; to: number }[] = [];
  for (const c of cells) {
    const kind = headerKind(c.text, enabled);
    if (kind) out.push({ kind, from: c.from, to: c.to });
  }
  return out;
}
