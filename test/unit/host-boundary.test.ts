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

/** The privilege boundary (docs/isolation.md): what only src/host/ may do. */
describe('privilege boundary', () => {
  const all = files(SRC).map((f) => ({ rel: path.relative(SRC, f), text: readFileSync(f, 'utf8') }));

  it('only host/tmux.ts runs tmux (the configured tmux path is read nowhere else but the host facade)', () => {
    const offenders = all.filter((f) => f.rel !== 'host/tmux.ts' && f.rel !== 'host/host.ts' && /\.tmuxPath\b/.test(f.text)).map((f) => f.rel);
    expect(offenders).toEqual([]);
    const spawnsTmux = all.filter((f) => f.rel !== 'host/tmux.ts' && /(spawn|execFile|exec)(Sync)?\(\s*['"]tmux['"]/.test(f.text)).map((f) => f.rel);
    expect(spawnsTmux).toEqual([]);
  });

  it('only src/host switches accounts or manages them (setpriv, useradd, usermod, userdel, kill)', () => {
    const re = /['"](setpriv|useradd|usermod|userdel|pkill)['"]/;
    expect(all.filter((f) => !f.rel.startsWith('host/') && re.test(f.text)).map((f) => f.rel)).toEqual([]);
  });

  it('nothing outside src/host chowns', () => {
    expect(all.filter((f) => !f.rel.startsWith('host/') && /\bchown(Sync)?\(/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });
});
