import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { cliAsync } from '../helpers/cli.js';
import { waitUntil } from '../helpers/poll.js';

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN: CI's clean VM; not a container). */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'tg-mountprobe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
}
const mountable = canMountTmpfs();
if (!mountable) console.warn('disk-full test skipped: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)');

// The recordings directory on a real 512 KiB tmpfs: the kernel's own ENOSPC, partial writes and
// all, not an injected failure. The session must end (fail closed), the gateway must stay up and
// refuse new sessions cleanly, and what was written must verify as interrupted, not tampered.
describe.skipIf(!mountable)('recording disk full (a real tmpfs)', () => {
  const t = new TestGateway();
  const recDir = path.join(t.dir, 'data', 'recordings');
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    mkdirSync(recDir, { recursive: true, mode: 0o700 });
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', recDir]).status).toBe(0);
    await t.start();
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(async () => {
    await t.gw?.close('test end');
    // A file still open there would keep it busy (a failure of its own); never leave a mount behind.
    if (spawnSync('umount', [recDir]).status !== 0) spawnSync('umount', ['-l', recDir]);
    await t.stop();
  });

  it('ends the session that fills the disk, refuses new ones with a reason, keeps what was written verifiable', async () => {
    const d = await t.login(alice);
    // Prints until the recording fails (tmux sends redraws, not every byte, so no fixed amount is sure to fill the disk).
    d.write('while :; do head -c 1000000 /dev/urandom | base64; done\r');
    for (let i = 0; i < 600 && d.exitCode === null; i++) {
      t.clock.advance(1000); // timed flushes
      await new Promise((r) => setTimeout(r, 50));
    }
    await d.waitFor('recording failed: session ended');
    await d.waitExit();
    // The end is audited once the recorder has closed, after the client is gone: poll for it.
    const failed = await waitUntil(async () => (await t.audit('recording.failed')).at(-1), 'recording.failed audited');
    expect(String(failed.data.error)).toMatch(/ENOSPC|no space/i);
    const id = String(failed.data.sessionId);
    expect((await t.admin.recordings.get(id))!.state).toBe('failed');

    // The disk is still full: a new session cannot be recorded, so it is not started.
    const b = t.ssh(bob, 'bob');
    await b.waitFor('Verification code:');
    b.write(t.code(bob) + '\r');
    await b.waitFor('recording failed: session not started');
    await b.waitExit();
    const refused = String(
      (await waitUntil(async () => (await t.audit('recording.failed')).find((e) => e.data.sessionId !== id), 'the refusal audited')).data.sessionId,
    );
    expect(refused).not.toBe(id);
    expect((await t.admin.recordings.get(refused))!.state).toBe('failed');
    // No file of the refused session is left open in the gateway.
    const open = spawnSync('ls', ['-l', `/proc/${process.pid}/fd`], { encoding: 'utf8' }).stdout;
    expect(open).not.toContain(recDir);

    // Everything that reached the disk checks out: a cut-off recording, not a tampered one.
    const v = await cliAsync(['verify', id, '--json', ...t.cliConfig()]);
    expect(v.status).not.toBe(5);
    const report = JSON.parse(v.stdout) as { status: string; problem: unknown; chunks: number };
    expect(report.status).toBe('interrupted');
    expect(report.problem).toBeNull();
    expect(report.chunks).toBeGreaterThan(0);
    expect(t.gw.live.size).toBe(0);
  });
});
