import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../helpers/source.js';

/** The CLI is the top of the tree (issue 12): argv, output and exit codes; logic lives below it. */
describe('CLI boundary', () => {
  const all = sourceFiles();

  it('nothing outside src/cli imports from it', async () => {
    const offenders = all.filter((f) => !f.rel.startsWith('cli/') && /(from|import)\s*['"][./]*\/cli\//.test(f.text)).map((f) => f.rel);
    expect(offenders).toEqual([]);
  });

  it('no command sets process.exitCode: handlers return their status and runCli reads it once', async () => {
    expect(all.filter((f) => /process\.exitCode\s*=/.test(f.text)).map((f) => f.rel)).toEqual([]);
  });
});
