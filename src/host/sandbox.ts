import { existsSync, statSync } from 'node:fs';
import type { SandboxSpec } from '../store/roles.js';
import { TgError } from '../errors.js';

export const BWRAP = '/usr/bin/bwrap';

/**
 * bubblewrap argv that runs `file args` in the role's sandbox: the host filesystem read-only, its
 * own PID namespace with a fresh /proc (so `ps` shows the pair's own processes only), private
 * /tmp and /var/tmp, the gateway's data and keys hidden, the role's read-write, read-only and
 * hidden paths, and the pair's socket directory and home bound back writable. bwrap always sets
 * no_new_privs. `server`: the pair's tmux server, which must outlive the gateway; every other
 * program dies with its parent. Throws with the reason when the sandbox cannot be set up (the
 * session then does not start).
 */
export function sandboxed(
  spec: SandboxSpec,
  o: { hide: string[]; bind: string[]; ownPid: boolean; server: boolean },
  file: string,
  args: string[],
): { file: string; args: string[] } {
  if (!existsSync(BWRAP)) throw new TgError('TG_ERR_SANDBOX', 'sandbox requested but bubblewrap (/usr/bin/bwrap) is not installed');
  // /dev from the host (clients need /dev/pts), but not its shared memory: /dev/shm and
  // /dev/mqueue are private, and so is System V IPC.
  const a = ['--ro-bind', '/', '/', '--dev-bind', '/dev', '/dev', '--tmpfs', '/dev/shm', '--tmpfs', '/tmp', '--tmpfs', '/var/tmp', '--unshare-ipc'];
  if (existsSync('/dev/mqueue')) a.push('--tmpfs', '/dev/mqueue');
  if (o.ownPid) a.push('--unshare-pid', '--proc', '/proc');
  if (!o.server) a.push('--die-with-parent');
  const hidden = [...spec.hiddenPaths, ...o.hide];
  for (const p of hidden) {
    if (!existsSync(p)) {
      if (spec.hiddenPaths.includes(p)) throw new TgError('TG_ERR_SANDBOX', `sandbox hidden path ${p} does not exist`);
      continue;
    }
    if (statSync(p).isDirectory()) a.push('--tmpfs', p);
    else a.push('--ro-bind', '/dev/null', p);
  }
  for (const p of [...spec.readWritePaths, ...spec.readOnlyPaths]) {
    if (!existsSync(p)) throw new TgError('TG_ERR_SANDBOX', `sandbox ${spec.readWritePaths.includes(p) ? 'read-write' : 'read-only'} path ${p} does not exist`);
  }
  // Writable binds first, then read-only ones (a read-only path inside a writable one stays
  // read-only), the pair's own directories last. Directories bwrap makes inside a tmpfs for a
  // bind are 0700 root: their ancestors are made here, traversable (0711), so the account can reach them.
  const tmpfsRoots = ['/tmp', '/var/tmp', ...hidden.filter((p) => existsSync(p) && statSync(p).isDirectory())];
  const made = new Set<string>();
  const binds: [flag: string, path: string][] = [
    ...spec.readWritePaths.map((p) => ['--bind', p] as [string, string]),
    ...spec.readOnlyPaths.map((p) => ['--ro-bind', p] as [string, string]),
    ...o.bind.filter((p) => existsSync(p)).map((p) => ['--bind', p] as [string, string]),
  ];
  for (const [flag, p] of binds) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const anc = '/' + parts.slice(0, i).join('/');
      if (!made.has(anc) && tmpfsRoots.some((r) => anc.startsWith(r + '/'))) {
        a.push('--perms', '0711', '--dir', anc);
        made.add(anc);
      }
    }
    a.push(flag, p, p);
  }
  return { file: BWRAP, args: [...a, '--', file, ...args] };
}
