import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { ShipCursor } from './ports.js';

/**
 * A shipping cursor in one small file, rewritten atomically (temp file, fsync, rename, fsync of
 * the directory): after a crash it holds either the old or the new id, never a torn one. The
 * single-node default; a cluster keeps its cursor in the store instead.
 */
export class FileCursor implements ShipCursor {
  readonly file: string;
  constructor(
    private readonly dir: string,
    name = 'syslog.cursor',
  ) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || name.startsWith('.')) throw new Error(`invalid cursor file name: ${JSON.stringify(name)}`);
    this.file = path.join(dir, name);
  }

  /** The saved id; 0 when there is no file yet. Throws when the file holds anything but an id. */
  async load(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    if (!/^(0|[1-9][0-9]{0,15})\n$/.test(text) || !Number.isSafeInteger(Number(text.trim()))) {
      throw new Error(`${this.file} does not hold a row id: ${JSON.stringify(text.slice(0, 40))}`);
    }
    return Number(text.trim());
  }

  /** Replaces the saved id. */
  async save(id: number): Promise<void> {
    if (!Number.isSafeInteger(id) || id < 0) throw new Error(`not a row id: ${id}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const f = await open(tmp, 'w', 0o600);
    try {
      await f.writeFile(`${id}\n`);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, this.file);
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
