import { execFile } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Db } from '../store/db.js';
import type { Config } from '../config/schema.js';
import { lookupAccount, type OsAccount } from './os-account.js';

const run = promisify(execFile);

/** The account name of a (role, user) pair: from ids only, never from a login string. */
export function pairAccountName(prefix: string, roleId: number, userId: number): string {
  return `${prefix}r${roleId}u${userId}`;
}

function usedUids(): Set<number> {
  const used = new Set<number>();
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const uid = Number(line.split(':')[2]);
    if (Number.isInteger(uid)) used.add(uid);
  }
  return used;
}

let chain: Promise<unknown> = Promise.resolve();

/**
 * The OS account for (role, user): created on first use with the next free uid of the range,
 * the template account's group and login shell, and a private home (0700). Creations are
 * serialised in this process; a uid or name taken meanwhile by another process is retried.
 */
export function ensurePairAccount(db: Db, cfg: Config['isolation'], roleId: number, userId: number, template: OsAccount, shell: string): Promise<OsAccount> {
  const next = chain.then(() => create(db, cfg, roleId, userId, template, shell));
  chain = next.catch(() => undefined);
  return next;
}

async function create(db: Db, cfg: Config['isolation'], roleId: number, userId: number, template: OsAccount, shell: string): Promise<OsAccount> {
  const name = pairAccountName(cfg.accountPrefix, roleId, userId);
  const home = path.join(cfg.homeBase, name);
  const existing = lookupAccount(name);
  if (existing) {
    if (existing.uid < cfg.uidMin || existing.uid > cfg.uidMax) throw new Error(`account ${name} exists outside the configured uid range`);
    ensureHome(existing, cfg.homeBase);
    record(db, roleId, userId, existing);
    return existing;
  }
  mkdirSync(cfg.homeBase, { recursive: true, mode: 0o711 });
  chmodSync(cfg.homeBase, 0o711);
  for (let attempt = 0; attempt < 5; attempt++) {
    const used = usedUids();
    let uid = cfg.uidMin;
    while (used.has(uid) && uid <= cfg.uidMax) uid++;
    if (uid > cfg.uidMax) throw new Error(`no free uid left in ${cfg.uidMin}-${cfg.uidMax}`);
    try {
      await run('useradd', ['-u', String(uid), '-g', String(template.gid), '-d', home, '-M', '-s', shell, '-c', `tmuxgate role ${roleId} user ${userId}`, name]);
      break;
    } catch (e) {
      if (lookupAccount(name)) break; // created by a racing process
      if (attempt === 4) throw new Error(`useradd ${name} failed: ${(e as { stderr?: string }).stderr?.trim() ?? e}`);
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  }
  const acct = lookupAccount(name);
  if (!acct) throw new Error(`account ${name} was not created`);
  ensureHome(acct, cfg.homeBase);
  record(db, roleId, userId, acct);
  return acct;
}

function ensureHome(acct: OsAccount, base: string): void {
  if (!acct.home.startsWith(base + '/')) return; // not ours to manage
  mkdirSync(acct.home, { recursive: true, mode: 0o700 });
  const st = lstatSync(acct.home);
  if (!st.isDirectory()) throw new Error(`${acct.home} is not a directory`);
  if (st.uid !== acct.uid) chownSync(acct.home, acct.uid, acct.gid);
  chmodSync(acct.home, 0o700);
}

function record(db: Db, roleId: number, userId: number, acct: OsAccount): void {
  db.prepare('INSERT OR IGNORE INTO pair_accounts (role_id, user_id, account, uid, home, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(roleId, userId, acct.name, acct.uid, acct.home, Date.now());
}

/** Every pair account this store allocated (for tests and the compliance report). */
export function listPairAccounts(db: Db): { role_id: number; user_id: number; account: string; uid: number }[] {
  return db.prepare('SELECT role_id, user_id, account, uid FROM pair_accounts ORDER BY uid').all() as never;
}
