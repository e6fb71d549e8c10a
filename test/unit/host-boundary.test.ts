import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../helpers/source.js';

/** The privilege boundary (docs/isolation.md): what only src/host/ may do. */
describe('privilege boundary', () => {
  const all = sourceFiles();

  it('only host/tmux.ts runs tmux (the configured tmux path is read nowhere else but the host facade)', async () => {
    const offenders = all.filter((f) => f.rel !== 'host/tmux.ts' && f.rel !== 'host/host.ts' && /\.tmuxPath\b/.test(f.text)).map((f) => f.rel);
    expect(offenders).toEqual([]);
    const spawnsTmux = all.filter((f) => f.rel !== 'host/tmux.ts' && /(spawn|execFile|exec)(Sync)?\(\s*['"]tmux['"]/.test(f.text)).map((f) => f.rel);
    expect(spawnsTmux).toEqual([]);
  });

  it('only src/host switches accounts or manages them (setpriv, useradd, usermod, userdel, kill)', async () => {
    const re = /['"](setpriv|useradd|usermod|userdel|pkill)['"]/;
    expect(all.filter((f) => !f.rel.startsWith('host/') && re.test(f.text)).map((f) => f.rel)).toEqual([]);
  });

  it('nothing outside src/host chowns', async () => {
    expect(all.filter((f) => !f.rel.startsWith('host/') && /\bchown(Sync)?\(/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });
});
