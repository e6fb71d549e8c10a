import { existsSync, statSync } from 'node:fs';
import { z } from 'zod';

/** A role's sandbox: paths shown read-only, paths hidden; /tmp is always private. */
export const SandboxSchema = z.strictObject({
  readOnlyPaths: z.array(z.string().startsWith('/')).max(64).default([]),
  hiddenPaths: z.array(z.string().startsWith('/')).max(64).default([]),
});
export type SandboxSpec = z.infer<typeof SandboxSchema>;

export const BWRAP = '/usr/bin/bwrap';

/**
 * bubblewrap argv that runs `file args` in a private mount namespace: the host filesystem with
 * the role's read-only and hidden paths, a private /tmp, the gateway's data and keys hidden, and
 * only this pair's socket directory and home bound back in. bwrap always sets no_new_privs.
 * Throws with the reason when the sandbox cannot be set up (the session then does not start).
 */
export function sandboxed(spec: SandboxSpec, o: { hide: string[]; bind: string[] }, file: string, args: string[]): { file: string; args: string[] } {
  if (!existsSync(BWRAP)) throw new Error('sandbox requested but bubblewrap (/usr/bin/bwrap) is not installed');
  const a = ['--bind', '/', '/', '--dev-bind', '/dev', '/dev', '--tmpfs', '/tmp'];
  for (const p of [...spec.hiddenPaths, ...o.hide]) {
    if (!existsSync(p)) {
      if (spec.hiddenPaths.includes(p)) throw new Error(`sandbox hidden path ${p} does not exist`);
      continue;
    }
    if (statSync(p).isDirectory()) a.push('--tmpfs', p);
    else a.push('--ro-bind', '/dev/null', p);
  }
  for (const p of spec.readOnlyPaths) {
    if (!existsSync(p)) throw new Error(`sandbox read-only path ${p} does not exist`);
    a.push('--ro-bind', p, p);
  }
  // Directories bwrap makes inside a tmpfs for a bind are 0700 root: create the ancestors of each
  // bind that lie under a tmpfs ourselves, traversable (0711), so the account can reach its dir.
  const tmpfsRoots = ['/tmp', ...[...spec.hiddenPaths, ...o.hide].filter((p) => existsSync(p) && statSync(p).isDirectory())];
  const made = new Set<string>();
  for (const p of o.bind) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const anc = '/' + parts.slice(0, i).join('/');
      if (!made.has(anc) && tmpfsRoots.some((r) => anc.startsWith(r + '/'))) {
        a.push('--perms', '0711', '--dir', anc);
        made.add(anc);
      }
    }
    a.push('--bind', p, p);
  }
  return { file: BWRAP, args: [...a, '--', file, ...args] };
}
