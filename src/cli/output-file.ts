import { closeSync, constants, createWriteStream, fstatSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { TgError } from '../errors.js';

/** A file being written for the admin: `commit()` makes it appear, `abort()` leaves nothing. */
export interface OutputFile {
  stream: NodeJS.WritableStream;
  commit(): Promise<void>;
  abort(): void;
}

const EXCL = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Opens a new file (0600) exclusively: never through a symlink, never into an existing file. */
function openNew(p: string): number {
  let fd: number;
  try {
    fd = openSync(p, EXCL, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP')
      throw new TgError('TG_ERR_OUTPUT_EXISTS', `${p} already exists; choose a new name or pass --force to replace it`);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TgError('TG_ERR_OUTPUT_PATH', `directory ${path.dirname(p)} does not exist`);
    throw new TgError('TG_ERR_OUTPUT_PATH', `cannot create ${p}: ${code ?? (e as Error).message}`);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new TgError('TG_ERR_OUTPUT_PATH', `${p} is not a regular file`);
  }
  return fd;
}

/**
 * Where decrypted PHI is written: a new 0600 file created with O_EXCL|O_NOFOLLOW, so an existing
 * file (an attacker's 0666 file, a symlink to somewhere else) is never written into. With `force`
 * the data goes to a new temporary file beside it that is then renamed over the name: a symlink
 * there is replaced, never followed, and the result is always a fresh 0600 file of ours.
 */
export function openOutputFile(p: string, force: boolean): OutputFile {
  const target = path.resolve(p);
  const file = force ? path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`) : target;
  const fd = openNew(file);
  const stream = createWriteStream('', { fd, autoClose: false });
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    closeSync(fd);
  };
  return {
    stream,
    async commit() {
      await new Promise<void>((resolve, reject) => stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
      fsyncSync(fd);
      cleanup();
      if (force) renameSync(file, target);
    },
    abort() {
      cleanup();
      try {
        unlinkSync(file);
      } catch {
        /* already gone */
      }
    },
  };
}
