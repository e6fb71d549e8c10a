import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's src/ directory. */
export const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every .ts file under `dir`, recursively. */
export function tsFiles(dir: string = SRC): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every source file under src/ with its path relative to src/ and its text. */
export function sourceFiles(): { rel: string; text: string }[] {
  return tsFiles().map((f) => ({ rel: path.relative(SRC, f), text: readFileSync(f, 'utf8') }));
}
