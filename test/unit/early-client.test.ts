import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import type { Pty } from '../../src/platform/pty.js';
import { EarlyClient, KILL_GRACE_MS, MAX_HELD_BYTES, withKillGrace } from '../../src/session/early-client.js';

/**
 * A tmux client started before its session is on the record (src/session/early-client.ts): what
 * it prints before the session takes it is held, never lost, never reordered, and delivered
 * only to the session; a client nobody takes is killed.
 */
class FakePty implements Pty {
  readonly pid = 4242;
  readonly tty = '/dev/pts/9';
  private readonly data: ((d: Buffer) => void)[] = [];
  private readonly exits: ((code: number, signal?: number) => void)[] = [];
  readonly calls: string[] = [];
  onData(fn: (d: Buffer) => void): void {
    this.data.push(fn);
  }
  onExit(fn: (code: number, signal?: number) => void): void {
    this.exits.push(fn);
  }
  print(s: string): void {
    for (const fn of this.data) fn(Buffer.from(s));
  }
  exit(code: number): void {
    for (const fn of this.exits) fn(code);
  }
  write(d: Buffer): void {
    this.calls.push(`write:${d.toString()}`);
  }
  resize(c: number, r: number): void {
    this.calls.push(`resize:${c}x${r}`);
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
  kill(): void {
    this.calls.push('kill');
    this.exit(129);
  }
}

/**
 * A client that does not go when told: its server made it exec a program of the user's
 * (`detach-client -E 'trap "" HUP; ...'`, or a fake server's MSG_SHELL) that ignores SIGHUP.
 * Only SIGKILL ends it.
 */
class StubbornPty extends FakePty {
  override kill(signal?: string): void {
    this.calls.push(`kill ${signal ?? 'SIGHUP'}`);
    if (signal === 'SIGKILL') this.exit(137);
  }
}

const opts = { file: '/usr/bin/tmux', args: [], cwd: '/', env: {}, cols: 80, rows: 24, term: 'xterm' };
const early = () => {
  const pty = new FakePty();
  return { pty, client: EarlyClient.spawn(() => pty, opts) };
};
/** A session taking the client as ShellSession.start does: listeners in the same turn. */
const take = (client: EarlyClient) => {
  const got: string[] = [];
  const pty = client.take();
  pty.onData((d) => got.push(d.toString()));
  pty.onExit((code) => got.push(`exit ${code}`));
  return { pty, got };
};

describe('a tmux client started early', () => {
  it('holds what it prints until the session takes it, then delivers it first, in order', async () => {
    const { pty, client } = early();
    pty.print('a');
    pty.print('b');
    const s = take(client);
    pty.print('c'); // before the flush: held too, and delivered after a and b
    expect(s.got).toEqual([]);
    await Promise.resolve();
    pty.print('d');
    expect(s.got).toEqual(['a', 'b', 'c', 'd']);
  });

  it('an exit while held comes after what was held', async () => {
    const { pty, client } = early();
    pty.print('last words');
    pty.exit(1);
    const s = take(client);
    await Promise.resolve();
    expect(s.got).toEqual(['last words', 'exit 1']);
  });

  it('pauses the pty once it holds MAX_HELD_BYTES, and resumes it when taken unless the session paused it', async () => {
    const a = early();
    a.pty.print('x'.repeat(MAX_HELD_BYTES));
    expect(a.pty.calls).toEqual(['pause']);
    take(a.client);
    await Promise.resolve();
    expect(a.pty.calls).toEqual(['pause', 'resume']);

    const b = early();
    b.pty.print('x'.repeat(MAX_HELD_BYTES));
    const s = take(b.client);
    s.pty.pause(); // the session's own flow control (its client is not reading)
    await Promise.resolve();
    expect(b.pty.calls).toEqual(['pause', 'pause']);
    s.pty.resume();
    expect(b.pty.calls).toEqual(['pause', 'pause', 'resume']);
  });

  it('nobody can write to it before the session takes it; then the session writes and resizes it', async () => {
    const { pty, client } = early();
    expect(Object.keys(client)).not.toContain('write');
    const s = take(client);
    s.pty.write(Buffer.from('ls\r'));
    s.pty.resize(100, 30);
    expect(pty.calls).toEqual(['write:ls\r', 'resize:100x30']);
  });

  it('discard kills a client nobody took, drops what it held, and is a no-op once taken', async () => {
    const a = early();
    const exited: string[] = [];
    a.client.onExited(() => exited.push('gone'));
    a.pty.print('secret prompt');
    a.client.discard();
    a.client.discard();
    expect(a.pty.calls).toEqual(['kill']);
    expect(exited).toEqual(['gone']);
    expect(() => a.client.take()).toThrow(/discarded/);

    const b = early();
    take(b.client);
    b.client.discard();
    expect(b.pty.calls).toEqual([]);
  });

  it('a spawn that threw is thrown again by take, and discard is harmless', () => {
    const client = EarlyClient.spawn(() => {
      throw new Error('posix_spawn: EAGAIN');
    }, opts);
    expect(client.pid).toBeNull();
    client.discard();
    expect(() => client.take()).toThrow('posix_spawn: EAGAIN');
  });

  it('a client that ignores SIGHUP is killed outright after KILL_GRACE_MS, discarded or ended by its session: the intrusion check never keeps it as ours forever', async () => {
    const clock = new FakeClock();
    // Discarded (its start could not be put on the record, or the user left).
    const a = new StubbornPty();
    const ca = EarlyClient.spawn(() => withKillGrace(a, clock), opts);
    const goneA: string[] = [];
    ca.onExited(() => goneA.push('gone'));
    ca.discard();
    clock.advance(KILL_GRACE_MS - 1);
    expect([a.calls, goneA]).toEqual([['kill SIGHUP'], []]);
    clock.advance(1);
    expect([a.calls, goneA]).toEqual([['kill SIGHUP', 'kill SIGKILL'], ['gone']]);

    // Taken, then ended by its session (ShellSession.finish: SIGHUP).
    const b = new StubbornPty();
    const cb = EarlyClient.spawn(() => withKillGrace(b, clock), opts);
    const goneB: string[] = [];
    cb.onExited(() => goneB.push('gone'));
    const s = take(cb);
    await Promise.resolve();
    s.pty.kill('SIGHUP');
    s.pty.kill('SIGHUP'); // told twice: still one deadline
    clock.advance(KILL_GRACE_MS);
    expect([b.calls, goneB]).toEqual([['kill SIGHUP', 'kill SIGHUP', 'kill SIGKILL'], ['gone']]);
    expect(s.got).toEqual(['exit 137']);

    // A client that goes when told is not signalled again.
    const c = early();
    const cc = EarlyClient.spawn(() => withKillGrace(c.pty, clock), opts);
    cc.discard();
    clock.advance(KILL_GRACE_MS * 2);
    expect(c.pty.calls).toEqual(['kill']);
  });
});
