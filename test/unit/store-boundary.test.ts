import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../helpers/source.js';

/**
 * All persistence sits behind the repositories in src/store/ (issue 12), so a second store
 * implementation can stand beside SQLite without touching callers.
 */
describe('store boundary', () => {
  const outside = sourceFiles().filter((f) => !f.rel.startsWith('store/'));

  it('no SQL statement is prepared outside src/store', async () => {
    // A statement always takes its SQL; Host.prepare() (no arguments) is not SQL.
    expect(outside.filter((f) => /\.prepare\(\s*[^)\s]/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });

  it('no module outside src/store opens SQLite or runs a raw transaction', async () => {
    expect(outside.filter((f) => /from ['"]better-sqlite3['"]/.test(f.text)).map((f) => f.rel)).toEqual([]);
    expect(outside.filter((f) => /\bdb\s*\.\s*(transaction|exec|pragma)\(/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });
});
