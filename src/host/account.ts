import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface OsAccount {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** Looks an account up in /etc/passwd (no NSS: the gateway host's local accounts only). */
export function lookupAccount(name: string, passwd = '/etc/passwd'): OsAccount | null {
  return findAccount((f) => f[0] === name, passwd);
}

/** The account with this uid in /etc/passwd (the first, as getpwuid), or null. */
export function accountOfUid(uid: number, passwd = '/etc/passwd'): OsAccount | null {
  return findAccount((f) => Number(f[2]) === uid, passwd);
}

function findAccount(match: (fields: string[]) => boolean, passwd: string): OsAccount | null {
  let text: string;
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && match(f)) return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
  }
  return null;
}

/**
 * The person the kernel recorded as logged in for this process (pam_loginuid sets it at login; it
 * survives sudo and su, and an unprivileged process cannot change it), or null where no login set
 * it (a container, a service, CI).
 */
export function loginAccountName(file = '/proc/self/loginuid'): string | null {
  let uid: number;
  try {
    uid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(uid) || uid < 0 || uid === 4294967295) return null;
  return accountOfUid(uid)?.name ?? `uid${uid}`;
}

/** The account the gateway runs as. */
export function currentAccount(): OsAccount {
  const u = os.userInfo();
  return { name: u.username, uid: u.uid, gid: u.gid, home: u.homedir, shell: u.shell ?? '/bin/sh' };
}
