import { createHash } from 'node:crypto';
import type { Span } from './formats.js';
import { normaliseIdentifier } from './options.js';

/** Words joined into one candidate at most (078 05 1120 is three words; a UK NHS number 943 476 5919 three). */
const MAX_WORDS = 5;
/** Characters between two words of one candidate: one or two of these (not two spaces: those are columns). */
const JOINER = /^(?:[-./:_@+#() ]|[-./:_@+#()] |  ?[-./:_@+#()])$/;
const MAX_NORMALISED = 64;

/**
 * Exact matching against identifiers the deployment knows only as salted hashes: every candidate
 * on a line (a word, or up to MAX_WORDS words joined by separators) is normalised
 * (normaliseIdentifier), hashed with the salt and looked up. The values themselves are never
 * held: only the hashes, and the candidates of the line being scanned.
 */
export class KnownIdentifiers {
  readonly kind: string;
  readonly minLength: number;
  private readonly salt: Buffer;
  private readonly hashes: Set<string>;

  constructor(o: { salt: string; sha256: string[]; kind: string; minLength: number }) {
    this.salt = Buffer.from(o.salt, 'hex');
    this.hashes = new Set(o.sha256.map((h) => h.toLowerCase()));
    this.kind = o.kind;
    this.minLength = o.minLength;
  }

  /** Spans on `text` whose normalised form is in the list (the longest match from each start). */
  find(text: string, out: Span[]): void {
    if (this.hashes.size === 0) return;
    // Combining marks belong to their letter (a decomposed "é" is one word, as NFKC makes it).
    const words = [...text.matchAll(/[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu)].map((m) => ({ start: m.index, end: m.index + m[0].length }));
    for (let i = 0; i < words.length; i++) {
      let found: Span | null = null;
      for (let j = i; j < words.length && j < i + MAX_WORDS; j++) {
        if (j > i && !JOINER.test(text.slice(words[j - 1]!.end, words[j]!.start))) break;
        // The same normalisation hashIdentifier applies, to the text as shown.
        const norm = normaliseIdentifier(text.slice(words[i]!.start, words[j]!.end));
        if (norm.length > MAX_NORMALISED) break;
        if (norm.length < this.minLength) continue;
        const h = createHash('sha256').update(this.salt).update(norm, 'utf8').digest('hex');
        if (this.hashes.has(h)) found = { start: words[i]!.start, end: words[j]!.end, kind: this.kind, via: 'known' };
      }
      if (found) out.push(found);
    }
  }
}
