import { NAME_RE } from '../store/names.js';

export interface LoginName {
  user: string;
  /** The role asked for with `user+role`, or null for the user's default. */
  role: string | null;
}

/** Splits an SSH login name: `alice` or `alice+dba`. Anything else is null (a clean refusal). */
export function parseLoginName(login: string): LoginName | null {
  if (login.length > 65) return null;
  const parts = login.split('+');
  if (parts.length > 2) return null;
  const [user, role] = parts as [string, string | undefined];
  if (!NAME_RE.test(user)) return null;
  if (role !== undefined && !NAME_RE.test(role)) return null;
  return { user, role: role ?? null };
}

/** A login name as it may appear in logs and audit rows: bounded and printable. */
export function displayLogin(login: string): string {
  const clean = login.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? clean.slice(0, 64) + '…' : clean;
}
