import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const AUTH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/auth');

/**
 * Imports point one way, ssh -> auth (issue 12): the login policy and the key formats know
 * nothing of the ssh2 adapter, the front door or the host key, and nothing of the session side.
 */
describe('auth boundary', () => {
  const files = readdirSync(AUTH)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ f, text: readFileSync(path.join(AUTH, f), 'utf8') }));

  it('has the login flow among its modules', async () => {
    expect(files.map((x) => x.f)).toContain('login-flow.ts');
  });

  it('no module in src/auth imports src/ssh, src/session or the gateway context', async () => {
    const upward = /from\s+['"]\.\.\/(ssh|session)\/|from\s+['"]\.\.\/gateway(-context)?\.js['"]/;
    expect(files.filter((x) => upward.test(x.text)).map((x) => x.f)).toEqual([]);
  });
});
