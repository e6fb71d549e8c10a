import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module script, without type declarations
import { checkFormat, MAX_LINE } from '../../scripts/check-format.mjs';

/** The formatting rules CI enforces (no formatter is installed): see scripts/check-format.mjs. */
describe('format', () => {
  it(`src/ has no line over ${MAX_LINE} characters beyond the shrinking baseline, and src/ and test/ no trailing whitespace`, async () => {
    expect(checkFormat({ dirs: ['src', 'test'], lengthDirs: ['src'] })).toEqual([]);
  });
});
