import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { sourceFiles } from '../helpers/source.js';

/**
 * The layers of src/, lowest first (README, "How it works"). A module may import from its own
 * layer or a lower one, never a higher one: the tree reads top-down as the data flow, and a lower
 * layer can be tested and replaced without what sits on it. Type-only imports count too.
 */
const LAYERS: string[][] = [
  ['errors', 'platform'],
  ['crypto'],
  ['config'],
  ['store'],
  ['audit'],
  ['auth', 'authz'],
  ['services'],
  ['host'],
  ['recording'],
  ['redaction'],
  ['cluster'],
  ['session'],
  ['ssh'],
  ['evidence'],
  ['admin'],
  ['compliance'],
  ['gateway'],
  ['cli'],
];

const moduleOf = (rel: string): string => rel.split('/')[0]!.replace(/\.[jt]s$/, '');
const layerOf = (mod: string): number => LAYERS.findIndex((l) => l.includes(mod));

/** Every import that runs from a lower layer to a higher one, as "file -> target (why)". */
function upwardImports(files: { rel: string; text: string }[]): string[] {
  const upward: string[] = [];
  for (const f of files) {
    const from = moduleOf(f.rel);
    for (const m of f.text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gm)) {
      const target = path.normalize(path.join(path.dirname(f.rel), m[1]!));
      const to = moduleOf(target);
      if (layerOf(to) > layerOf(from)) upward.push(`${f.rel} -> ${target} (${from} below ${to})`);
    }
  }
  return upward;
}

describe('layer order', () => {
  const files = sourceFiles();

  it('names every module of src/ in exactly one layer', async () => {
    const mods = [...new Set(files.map((f) => moduleOf(f.rel)))].sort();
    expect(mods.filter((m) => layerOf(m) < 0)).toEqual([]);
    expect(LAYERS.flat().length).toBe(new Set(LAYERS.flat()).size);
  });

  it('has no import from a lower layer to a higher one', async () => {
    expect(upwardImports(files)).toEqual([]);
  });

  it('finds an upward import, a type-only one and a re-export (the check can fail)', async () => {
    const planted = [
      { rel: 'store/x.ts', text: "import { AuditLog } from '../audit/log.js';" },
      { rel: 'platform/y.ts', text: "import type {\n  Pty,\n} from '../session/pty.js';" },
      { rel: 'crypto/z.ts', text: "export { VERSION } from '../gateway.js';" },
      { rel: 'session/ok.ts', text: "import { x } from '../store/users.js';" },
    ];
    expect(upwardImports(planted)).toEqual([
      'store/x.ts -> audit/log.js (store below audit)',
      'platform/y.ts -> session/pty.js (platform below session)',
      'crypto/z.ts -> gateway.js (crypto below gateway)',
    ]);
  });
});
