import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnPty, type Pty } from '../../src/platform/pty.js';
import { waitUntil } from '../helpers/poll.js';

describe('pty adapter: direct writes', () => {
  let dir = '';
  let pty: Pty | null = null;
  afterEach(async () => {
    pty?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every byte in order when a large paste overflows the pty and small writes follow', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pty-'));
    const out = path.join(dir, 'out');
    pty = spawnPty({
      file: '/bin/sh',
      args: ['-c', `stty raw -echo && printf READY && exec cat > ${out}`],
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cols: 80,
      rows: 24,
      term: 'xterm',
    });
    let seen = '';
    pty.onData((d) => (seen += d.toString()));
    await waitUntil(() => seen.includes('READY'), 'raw mode');
    // 512 KB is far more than the pty takes at once: the first write is partial, the rest
    // queues, and the small writes after it must wait behind it, not overtake it.
    const big = Buffer.alloc(512 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = 0x41 + (i % 26);
    const parts = [big, ...Array.from({ length: 50 }, (_, i) => Buffer.from(`<${i}>`))];
    for (const p of parts) pty.write(p);
    const want = Buffer.concat(parts);
    await waitUntil(
      () => {
        try {
          return statSync(out).size >= want.length;
        } catch {
          return false;
        }
      },
      'all bytes through the pty',
      20_000,
    );
    expect(readFileSync(out).equals(want)).toBe(true);
  });

  it("a keystroke reaches the program while the thread pool is busy (recordings' fdatasync)", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pty-'));
    // Every libuv thread blocks opening a FIFO that has no writer yet, as they would in slow syncs.
    const fifos = Array.from({ length: 64 }, (_, i) => path.join(dir, `f${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const blocked = fifos.map((f) => open(f, 'r').then((h) => h.close()));
    try {
      pty = spawnPty({ file: 'cat', args: [], cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cols: 80, rows: 24, term: 'xterm' });
      let seen = '';
      pty.onData((d) => (seen += d.toString()));
      pty.write(Buffer.from('x'));
      await waitUntil(() => seen.includes('x'), 'echo while the pool is busy', 5_000);
    } finally {
      // O_RDWR on a FIFO never blocks and lets every blocked reader's open return.
      const fds = fifos.map((f) => openSync(f, constants.O_RDWR));
      await Promise.all(blocked);
      for (const fd of fds) closeSync(fd);
    }
  });
});
