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
  let text: string;
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && f[0] === name) {
      return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
    }
  }
  return null;
}

/** The account the gateway runs as. */
export function currentAccount(): OsAccount {
  const u = os.userInfo();
  return { name: u.username, uid: u.uid, gid: u.gid, home: u.homedir, shell: u.shell ?? '/bin/sh' };
}
