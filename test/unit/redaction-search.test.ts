import { describe, expect, it } from 'vitest';
import { redactedMatch, searchQuery } from '../../src/admin/recordings.js';
import { buildConfig } from '../../src/config/load.js';
import { redactorFor } from '../../src/redaction/view-policy.js';

const redactor = redactorFor(buildConfig({}, { file: null, baseDir: '/tmp' }));
const text = (t: string) => searchQuery(t, false);
const regex = (r: string) => searchQuery(r, true);

/** A redacted search must not read a masked value (issue 15: sessions and times for a whole value, nothing of a part). */
describe('redacted search: no oracle on masked values', () => {
  const line = 'chart MRN: 12345678 opened, SSN 078-05-1120 on file';

  it('finds a whole identifier, and text outside identifiers', () => {
    for (const q of ['12345678', 'MRN: 12345678', '078-05-1120', 'chart', 'opened, SSN']) expect(redactedMatch(redactor, text(q), line), q).toBe(true);
  });

  it('never a part of one: a prefix, a suffix, a label with a first digit', () => {
    for (const q of ['1234567', '2345678', 'MRN: 1', '078-05', '1120 on']) expect(redactedMatch(redactor, text(q), line), q).toBe(false);
  });

  it('a regular expression counts only outside identifiers (it could spell a value a digit at a time)', () => {
    expect(redactedMatch(redactor, regex('MRN: 1\\d{7}'), line)).toBe(false);
    expect(redactedMatch(redactor, regex('\\d{3}-\\d{2}-\\d{4}'), line)).toBe(false);
    expect(redactedMatch(redactor, regex('chart|opened'), line)).toBe(true);
    expect(redactedMatch(redactor, regex('nothing'), line)).toBe(false);
  });
});
