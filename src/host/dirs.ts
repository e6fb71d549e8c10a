import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { TgError } from '../errors.js';
import type { OsAccount } from './account.js';

/**
 * Directories and files the root gateway makes for pair accounts. The rule they keep: root only
 * ever creates, chowns or renames an entry inside a directory that no pair account can write, so
 * no user can put a symlink or a foreign object where root is about to act. Inside a pair-owned
 * directory root does nothing but read (lstat, readdir); changes there are made as the pair.
 */

const mode = (st: Stats) => `0${(st.mode & 0o7777).toString(8)}`;

/**
 * Creates `dir` and each missing parent one at a time, parents 0711 (traversable, not listable)
 * and `dir` itself with `finalMode`; never `mkdir -p` with one mode for all (that made
 * /var/lib/tmuxgate 0700 and locked every pair out of its home).
 */
export function makeDirs(dir: string, finalMode: number): void {
  const parts = path.resolve(dir).split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const p = '/' + parts.slice(0, i).join('/');
    try {
      mkdirSync(p, { mode: i === parts.length ? finalMode : 0o711 });
      chmodSync(p, i === parts.length ? finalMode : 0o711); // mkdir's mode is filtered by umask
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/**
 * Checks that `dir` (after symlinks resolve) and every ancestor can only be changed by root (or
 * the gateway's own account when it is not root). Throws TG_ERR_UNSAFE_PATH naming the directory.
 */
export function checkRootOnly(dir: string, owner = process.getuid?.() ?? 0): void {
  // The configured path itself, as written: a symlink on the way is acceptable only if it is
  // root's (its owner could otherwise point it elsewhere after this check).
  const given = path.resolve(dir).split('/').filter(Boolean);
  for (let i = 1; i <= given.length; i++) {
    const p = '/' + given.slice(0, i).join('/');
    const st = lstatSync(p);
    if (st.isSymbolicLink() && st.uid !== 0 && st.uid !== owner) {
      throw new TgError('TG_ERR_UNSAFE_PATH', `${p} (on the way to ${dir}) is a symlink owned by uid ${st.uid}`);
    }
  }
  const parts = realpathSync(dir).split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const p = '/' + parts.slice(0, i).join('/');
    const st = lstatSync(p);
    // Everything on the way is root's; a directory others may write (like /tmp) must be sticky,
    // so the root-owned entry below it cannot be renamed or removed by them.
    const where = `${p} (on the way to ${dir})`;
    if (st.uid !== 0 && st.uid !== owner) {
      throw new TgError('TG_ERR_UNSAFE_PATH', `${where} is owned by uid ${st.uid}: the gateway's directories must be root's all the way up`);
    }
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
      throw new TgError('TG_ERR_UNSAFE_PATH', `${where} is mode ${mode(st)}: others could swap what the gateway acts on`);
    }
  }
}

/** The first directory on the way to `dir` that `account` cannot traverse, with its mode, or null. */
export function untraversable(dir: string, account: { uid: number; gid: number }): { dir: string; mode: string } | null {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return { dir, mode: 'missing' };
  }
  const parts = real.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const p = '/' + parts.slice(0, i).join('/');
    const st = lstatSync(p);
    const bit = st.uid === account.uid ? 0o100 : st.gid === account.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return { dir: p, mode: mode(st) };
  }
  return null;
}

/** Throws TG_ERR_PATH_NOT_TRAVERSABLE when `account` cannot reach `dir`, naming what to change. */
export function requireTraversable(dir: string, account: OsAccount, what: string): void {
  const bad = untraversable(dir, account);
  if (!bad) return;
  throw new TgError(
    'TG_ERR_PATH_NOT_TRAVERSABLE',
    bad.mode === 'missing'
      ? `${what} ${dir} does not exist`
      : `account ${account.name} cannot reach the ${what} ${dir}: ${bad.dir} is mode ${bad.mode} and needs search (x) permission ` +
          `for it (e.g. chmod o+x ${bad.dir}), or move the ${what}`,
  );
}

/**
 * The pair's own directory `parent/name` (socket directory or home): created 0700 and handed to
 * the pair if missing; if present it must be a real directory owned by the pair's uid, else
 * TG_ERR_PAIR_DIR_FOREIGN (never chowned over: that would hand someone else's files on).
 * `parent` must be root-only (checked at start), so the name cannot be swapped under us.
 */
export function preparePairDir(parent: string, name: string, account: OsAccount): string {
  const p = path.join(parent, name);
  let st: Stats | null = null;
  try {
    st = lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (!st) {
    mkdirSync(p, { mode: 0o700 });
    chownSync(p, account.uid, account.gid);
    chmodSync(p, 0o700);
    return p;
  }
  if (!st.isDirectory() || st.uid !== account.uid) {
    const what = st.isSymbolicLink() ? 'a symlink' : !st.isDirectory() ? 'not a directory' : `owned by uid ${st.uid}`;
    throw new TgError('TG_ERR_PAIR_DIR_FOREIGN', `${p} is ${what}, not a directory of ${account.name} (uid ${account.uid}); move it away`);
  }
  return p;
}

/**
 * Writes a gateway-owned file into a root-only directory: a new file (O_EXCL) under a random name,
 * then renamed into place. Readable by everyone (`0644`): pairs read their tmux.conf, never write it.
 * Skipped when the content is already there.
 */
export function writeRootFile(dir: string, name: string, content: string): string {
  const p = path.join(dir, name);
  try {
    if (readFileSync(p, 'utf8') === content) return p;
  } catch {
    /* missing: written below */
  }
  const tmp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}`);
  writeFileSync(tmp, content, { mode: 0o644, flag: 'wx' });
  chmodSync(tmp, 0o644);
  renameSync(tmp, p);
  return p;
}
