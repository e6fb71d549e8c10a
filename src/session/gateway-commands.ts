import { NAME_RE } from '../store/names.js';

/**
 * The only commands an SSH exec request may run: the gateway's own, never a program.
 *   share USER      let USER watch my current role's session read-only
 *   unshare USER    take that back (a watcher is detached at once)
 *   watchers        who may watch, and who is watching now
 *   watch USER[+ROLE]  watch USER's session read-only (needs `ssh -t`)
 */
export type GatewayCommand = { cmd: 'share' | 'unshare'; user: string } | { cmd: 'watchers' } | { cmd: 'watch'; user: string; role: string | null };

export function parseGatewayCommand(line: string): GatewayCommand | null {
  if (line.length > 100) return null;
  const w = line.trim().split(/\s+/);
  if (w.length === 1 && w[0] === 'watchers') return { cmd: 'watchers' };
  if (w.length !== 2) return null;
  const [cmd, arg] = w as [string, string];
  if ((cmd === 'share' || cmd === 'unshare') && NAME_RE.test(arg)) return { cmd, user: arg };
  if (cmd === 'watch') {
    const [user, role, extra] = arg.split('+');
    if (extra !== undefined || !user || !NAME_RE.test(user) || (role !== undefined && !NAME_RE.test(role))) return null;
    return { cmd, user, role: role ?? null };
  }
  return null;
}
