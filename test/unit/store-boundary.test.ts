import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * All persistence sits behind the repositories in src/store/ (issue 12), so a second store
 * implementation can stand beside SQLite without touching callers.
 */
describe('store boundary', () => {
  const outside = files(SRC)
    .map((f) => ({ rel: path.relative(SRC, f), text: readFileSync(f, 'utf8') }))
    .filter((f) => !f.rel.startsWith('store/'));

  it('no SQL statement is prepared outside src/store', () => {
    // A statement always takes its SQL; Host.prepare() (no arguments) is not SQL.
    expect(outside.filter((f) => /\.prepare\(\s*[^)\s]/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });

  it('no module outside src/store opens SQLite or runs a raw transaction', () => {
    expect(outside.filter((f) => /from ['"]better-sqlite3['"]/.test(f.text)).map((f) => f.rel)).toEqual([]);
    expect(outside.filter((f) => /\bdb\s*\.\s*(transaction|exec|pragma)\(/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });
});
