import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { TgError } from '../errors.js';

/**
 * Creates keysDir (0700) if needed and tightens a mode that lets group or others in. A dir that is
 * already private is left alone: cluster nodes mount it read-only from a secret store, where
 * even a chmod that changes nothing fails (EROFS).
 */
export function ensureKeysDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by umask and ignored for existing dirs
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/**
 * Refuses a private key file that group or others can read, with sshd's wording, so an
 * operator recognises the fix (chmod 600).
 */
export function assertPrivate(file: string): void {
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new TgError(
      'TG_ERR_KEY_PERMISSIONS',
      `Permissions ${mode} for '${file}' are too open. It is required that private key files are NOT accessible by others. Fix with: chmod 600 '${file}'`,
    );
  }
}

/** Reads a private key file after checking its mode. */
export function readPrivate(file: string): Buffer {
  assertPrivate(file);
  try {
    return readFileSync(file);
  } catch (e) {
    throw new TgError('TG_ERR_KEY_UNREADABLE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

/** Writes a file atomically with the given mode (never briefly world-readable). */
export function writeAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, data, { mode, flag: 'wx' });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/** Reads `file`, or creates it with `make()` first; private files are mode-checked on read. */
export function loadOrCreate(file: string, make: () => string | Buffer, mode: number): { data: Buffer; created: boolean } {
  if (existsSync(file)) return { data: mode & 0o077 ? readFileSync(file) : readPrivate(file), created: false };
  writeAtomic(file, make(), mode);
  return { data: readFileSync(file), created: true };
}
