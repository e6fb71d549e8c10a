import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { SeededRandom } from '../../src/platform/random.js';
import { silentLogger } from '../../src/platform/logger.js';
import type { Pty, PtySpawnOptions } from '../../src/platform/pty.js';
import type { AuditEvent } from '../../src/audit/events.js';
import type { Role } from '../../src/store/roles.js';
import type { User } from '../../src/store/users.js';
import { SessionRegistry } from '../../src/session/registry.js';
import { StartGate } from '../../src/session/start-gate.js';
import type { SessionLifecycleConfig } from '../../src/session/lifecycle.js';
import type { TerminalChannel } from '../../src/session/shell-session.js';
import type { ConnectionInfo } from '../../src/session/ports.js';
import { ShellStarter, type ShellHost } from '../../src/session/shell-start.js';
import { KILL_GRACE_MS } from '../../src/session/early-client.js';
import { roleRow } from '../helpers/recording.js';

// Every way a start's turn can end, through ShellStarter.start on fakes (no pty, no tmux, no
// store): whatever happens between the turn and the tmux client's first draw, the turn comes
// back, so a later login never waits for a turn that nobody holds. The gate has one slot and
// its clock stands still, so only a release (never the startTurnMax timer) lets the next one go.

/** A tmux client in a pty that draws, exits or hangs on demand. */
class FakePty implements Pty {
  readonly pid: number;
  readonly tty = null;
  private readonly data: ((d: Buffer) => void)[] = [];
  private readonly exits: ((code: number, signal: number | undefined) => void)[] = [];
  killed = false;
  /** Ignores SIGHUP (a program its server made it exec): only SIGKILL ends it. */
  stubborn = false;
  readonly signals: string[] = [];
  constructor(pid: number) {
    this.pid = pid;
  }
  onData(fn: (d: Buffer) => void): void {
    this.data.push(fn);
  }
  onExit(fn: (code: number, signal: number | undefined) => void): void {
    this.exits.push(fn);
  }
  draw(): void {
    for (const fn of this.data) fn(Buffer.from('$ '));
  }
  exit(code: number): void {
    for (const fn of this.exits) fn(code, undefined);
  }
  write(): void {}
  resize(): void {}
  pause(): void {}
  resume(): void {}
  kill(signal?: string): void {
    this.signals.push(signal ?? 'SIGHUP');
    if (this.killed || (this.stubborn && signal !== 'SIGKILL')) return;
    this.killed = true;
    this.exit(129); // a killed client exits (SIGHUP)
  }
}

const role: Role = roleRow(7, 'ops');

function world() {
  const clock = new FakeClock();
  const gate = new StartGate(1, 250, clock);
  const ptys: FakePty[] = [];
  const audit: AuditEvent[] = [];
  const ended: { id: string; reason: string }[] = [];
  const faults: { spawn: number; audit: number; hold: Promise<void> | null; stubborn: boolean } = { spawn: 0, audit: 0, hold: null, stubborn: false };
  /** The intrusion check's bookkeeping of our clients, in order ("+1000", "-1000"). */
  const tracked: string[] = [];
  /** What each user's channel was sent, in order ("alice:$ "). */
  const shown: string[] = [];
  const spawnPty = (_o: PtySpawnOptions): Pty => {
    if (faults.spawn > 0) {
      faults.spawn--;
      throw new Error('posix_spawn: EAGAIN');
    }
    const p = new FakePty(1000 + ptys.length);
    p.stubborn = faults.stubborn;
    ptys.push(p);
    return p;
  };
  const lifecycle: SessionLifecycleConfig = {
    sessions: { start: async () => undefined, end: async (id: string, reason: string) => void ended.push({ id, reason }) },
    recordings: { finish: async () => undefined },
    audit: {
      emit: async (_actor, e) => {
        if (e.type === 'session.start' && faults.hold) await faults.hold;
        if (e.type === 'session.start' && faults.audit > 0) {
          faults.audit--;
          throw new Error('audit store unavailable');
        }
        audit.push(e);
      },
      post: (_actor, e) => void audit.push(e),
    },
    metrics: { inc: () => undefined },
    clock,
    live: new SessionRegistry(),
    recorders: null,
  };
  const host = {
    pairForLogin: async (r: Role, userId: number, userName: string) => ({
      label: `${userName}+${r.name}`,
      roleId: r.id,
      userId,
      account: { name: `tg-${userName}`, home: `/home/tg-${userName}`, uid: 5000 + userId, gid: 5000 + userId },
      dir: `/run/tmuxgate/r${r.id}-u${userId}`,
      home: `/home/tg-${userName}`,
      conf: '/etc/tmuxgate/tmux.conf',
      sandbox: null,
    }),
    devMode: () => false,
    tmux: { client: () => ({ file: '/usr/bin/tmux', args: [] }) },
    servers: {
      attachFor: async () => ({ cmd: { file: '/usr/bin/tmux', args: ['attach'] }, starts: false }),
      attached: (_p: unknown, pid: number) => void tracked.push(`+${pid}`),
      detached: (_p: unknown, pid: number) => void tracked.push(`-${pid}`),
    },
  } as unknown as ShellHost;
  const settings = {
    defaultShell: '/bin/bash',
    defaultTerm: 'xterm-256color',
    lang: 'C.UTF-8',
    idleTimeout: 3_600_000,
    idleWarning: 60_000,
    maxSessionTime: 86_400_000,
  };
  const shells = new ShellStarter({ settings, host, clock, realTime: clock, random: new SeededRandom(3), spawnPty, lifecycle, gate });

  let users = 0;
  /** One authenticated connection's shell request: its start runs in the background. */
  const login = (name: string) => {
    const user: User = { id: ++users, name, defaultRoleId: null, disabled: false, createdAt: 0 };
    let closed = false;
    const conn: ConnectionInfo = {
      id: `c_${name}`,
      addr: '192.0.2.1',
      user,
      role,
      log: silentLogger(),
      closed: () => closed,
      deny: () => undefined,
      endSoon: () => undefined,
    };
    const ch: TerminalChannel = {
      write: (d: Buffer) => (shown.push(`${name}:${d.toString()}`), true),
      onceDrain: () => undefined,
      onData: () => undefined,
      onClose: () => undefined,
      exitAndClose: () => undefined,
    };
    const started = shells.start(conn, ch, { term: 'xterm', cols: 80, rows: 24 }, {});
    let outcome = 'pending';
    started.then(
      (r) => (outcome = r ? 'running' : 'none'),
      (e: unknown) => (outcome = `threw: ${(e as Error).message}`),
    );
    return { user, outcome: () => outcome, leave: () => void (closed = true), shell: () => started };
  };
  /** The owning node's side of a relayed login: a local client for a session another node records. */
  const relayed = (name: string) => {
    const user: User = { id: ++users, name, defaultRoleId: null, disabled: false, createdAt: 0 };
    let pty: Pty | null = null;
    void shells.attachForRelay({ user, role, sessionId: `s_${name}`, term: 'xterm', cols: 80, rows: 24, log: silentLogger() }).then((p) => (pty = p));
    return { pty: () => pty };
  };
  return { clock, gate, ptys, audit, ended, faults, shown, tracked, login, relayed };
}

/** Lets every start in flight go as far as it can (microtasks and the fakes' promises; no timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A later login (bob's) gets its turn at once and the only live tmux client: nothing is left holding one. */
async function nextLoginRuns(w: ReturnType<typeof world>): Promise<void> {
  const b = w.login('bob');
  await settle();
  expect([w.ptys.filter((p) => !p.killed).length, b.outcome()]).toEqual([1, 'running']);
}

describe('session start turns, through the shell start', () => {
  it('a single login is not held: its client spawns at once and its first drawing ends the turn', async () => {
    const w = world();
    const a = w.login('alice');
    await settle();
    expect(w.ptys).toHaveLength(1);
    expect(a.outcome()).toBe('running');
    expect(w.gate.holding).toBe(1);
    w.ptys[0]!.draw();
    expect(w.gate.holding).toBe(0);
  });

  it('a client that exits before it draws ends its turn', async () => {
    const w = world();
    w.login('alice');
    await settle();
    const b = w.login('bob');
    await settle();
    expect([w.ptys.length, w.gate.queued]).toEqual([1, 1]);
    w.ptys[0]!.exit(1);
    await settle();
    expect(w.ptys).toHaveLength(2);
    expect(b.outcome()).toBe('running');
  });

  it('a connection that left while waiting takes its turn and gives it back at once: no client, no row, no audit of a start', async () => {
    const w = world();
    w.login('alice');
    await settle();
    const gone = w.login('mallory');
    const c = w.login('carol');
    await settle();
    expect([w.gate.holding, w.gate.queued]).toEqual([1, 2]);
    gone.leave();
    w.ptys[0]!.draw(); // alice's turn ends: mallory's comes, and goes at once, then carol's
    await settle();
    expect(gone.outcome()).toBe('none');
    expect(c.outcome()).toBe('running');
    expect(w.ptys).toHaveLength(2); // alice's and carol's clients; none for mallory
    expect(w.audit.filter((e) => e.type === 'session.start').map((e) => (e as { user: string }).user)).toEqual(['alice', 'carol']);
    expect(w.ended).toEqual([]); // mallory's session was never written: it never started
    expect([w.gate.holding, w.gate.queued]).toEqual([1, 0]);
  });

  it('a spawn that throws ends its turn', async () => {
    const w = world();
    w.faults.spawn = 1;
    const a = w.login('alice');
    await settle();
    expect(a.outcome()).toBe('running'); // the session reports spawn-failed to its user and ends
    expect(w.gate.holding).toBe(0);
    await nextLoginRuns(w);
  });

  it('a start whose session.start cannot be audited ends its turn; its client, started early, is killed having shown nothing', async () => {
    const w = world();
    w.faults.audit = 1;
    const a = w.login('alice');
    w.ptys[0]?.draw();
    await settle();
    expect(a.outcome()).toBe('threw: audit store unavailable');
    expect(w.ptys.map((p) => p.killed)).toEqual([true]);
    expect(w.shown).toEqual([]);
    expect(w.gate.holding).toBe(0);
    // Its row is ended now (it stayed open until the next restart), with no start on the record.
    expect(w.ended.map((e) => e.reason)).toEqual(['spawn-failed']);
    expect(w.audit.filter((e) => e.type === 'session.start')).toEqual([]);
    await nextLoginRuns(w);
  });

  it('a client that leaves while its start is being audited: its early tmux client is killed, the row ends and the turn is free', async () => {
    const w = world();
    let letGo = () => {};
    w.faults.hold = new Promise((r) => (letGo = r));
    const a = w.login('alice');
    await settle();
    expect(w.gate.holding).toBe(1); // alice's turn, her start waiting on the audit
    a.leave();
    letGo();
    await settle();
    expect(w.ptys.map((p) => p.killed)).toEqual([true]);
    expect(w.shown).toEqual([]);
    expect(w.ended.map((e) => e.reason)).toEqual(['client-disconnected']);
    expect(w.gate.holding).toBe(0);
    w.faults.hold = null;
    await nextLoginRuns(w);
  });

  it('a client started early draws while the start is put on the record; the user sees it only after session.start', async () => {
    const w = world();
    let letGo = () => {};
    w.faults.hold = new Promise((r) => (letGo = r));
    const a = w.login('alice');
    await settle();
    expect(w.ptys).toHaveLength(1); // spawned before the audit event is written
    w.ptys[0]!.draw();
    expect(w.gate.holding).toBe(0); // its first drawing ends the turn, as before
    await settle();
    expect([w.shown, w.audit.filter((e) => e.type === 'session.start')]).toEqual([[], []]);
    letGo();
    await settle();
    expect(a.outcome()).toBe('running');
    expect(w.audit.filter((e) => e.type === 'session.start')).toHaveLength(1);
    expect(w.shown).toEqual(['alice:$ ']);
    w.ptys[0]!.draw();
    expect(w.shown).toEqual(['alice:$ ', 'alice:$ ']);
  });

  it("the owning node's client for a relayed login takes its turn with the node's own logins", async () => {
    const w = world();
    w.login('alice');
    await settle();
    const r = w.relayed('dave');
    await settle();
    expect([w.ptys.length, r.pty(), w.gate.queued]).toEqual([1, null, 1]);
    w.ptys[0]!.draw();
    await settle();
    expect(w.ptys).toHaveLength(2);
    expect(r.pty()?.pid).toBe(w.ptys[1]!.pid);
    w.ptys[1]!.draw();
    expect([w.gate.holding, w.gate.queued]).toEqual([0, 0]);
  });

  it('many starts that fail one way or another leave every turn free', async () => {
    const w = world();
    const all = [];
    for (let i = 0; i < 6; i++) {
      if (i % 3 === 0) w.faults.spawn++;
      if (i % 3 === 1) w.faults.audit++;
      all.push(w.login(`u${i}`));
    }
    all[2]!.leave();
    all[5]!.leave();
    for (let round = 0; round < all.length; round++) {
      await settle();
      for (const p of w.ptys) p.draw(); // each client that started draws, and its turn passes on
    }
    expect(all.filter((l) => l.outcome() === 'pending').map((l) => l.user.name)).toEqual([]);
    expect([w.gate.holding, w.gate.queued]).toEqual([0, 0]);
  });

  it('a client that ignores SIGHUP stays known to the intrusion check only until it is killed outright, whichever way its start ends', async () => {
    const w = world();
    w.faults.stubborn = true;
    // A start that could not be put on the record: its early client is told to go, and does not.
    w.faults.audit = 1;
    const a = w.login('alice');
    await settle();
    w.ptys[0]!.draw();
    expect(a.outcome()).toBe('threw: audit store unavailable');
    // A session that ran and ended (its user left): ShellSession.finish tells its client to go.
    const b = w.login('bob');
    await settle();
    w.ptys[1]!.draw();
    const shell = (await b.shell()) as unknown as { end(r: string, m: string): void };
    shell.end('killed', 'ended by an administrator');
    expect(w.ptys.map((p) => p.signals)).toEqual([['SIGHUP'], ['SIGHUP']]);
    expect(w.tracked).toEqual(['+1000', '+1001']); // both still running: still ours
    w.clock.advance(KILL_GRACE_MS);
    expect(w.ptys.map((p) => p.signals)).toEqual([
      ['SIGHUP', 'SIGKILL'],
      ['SIGHUP', 'SIGKILL'],
    ]);
    expect(w.tracked).toEqual(['+1000', '+1001', '-1000', '-1001']);
  });

  it("the owning node's client for a relayed login that ignores SIGHUP is killed outright once the link told it to go", async () => {
    const w = world();
    w.faults.stubborn = true;
    const r = w.relayed('dave');
    await settle();
    w.ptys[0]!.draw();
    r.pty()!.kill('SIGHUP'); // link.ts: the receiving node hung up
    w.clock.advance(KILL_GRACE_MS);
    expect([w.ptys[0]!.signals, w.tracked]).toEqual([
      ['SIGHUP', 'SIGKILL'],
      ['+1000', '-1000'],
    ]);
  });
});
