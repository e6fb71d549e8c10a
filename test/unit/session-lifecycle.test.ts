import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/poll.js';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { FakeClock } from '../../src/platform/clock.js';
import { SeededRandom } from '../../src/platform/random.js';
import { silentLogger } from '../../src/platform/logger.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import { aesGcmSealer, FaultySealer } from '../../src/crypto/sealer.js';
import type { RecordingFile, RecordingSink } from '../../src/recording/sink.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { SessionRegistry } from '../../src/session/registry.js';
import { RecorderFactory } from '../../src/session/recorder-factory.js';
import { checkLifecycleConfig, SessionLifecycle, type EndableSession, type SessionFacts, type SessionLifecycleConfig } from '../../src/session/lifecycle.js';
import { startEnforcer } from '../../src/session/enforcer.js';
import type { EndReason } from '../../src/session/shell-session.js';

// A session's lifecycle on fakes only: an in-memory store, a recording sink and a sealer that fail
// on demand, a fake shell, a fake clock. No network, no pty, no database file.

/** An in-memory sink whose files can be told to fail (disk full) or to refuse creation. */
class MemorySink implements RecordingSink {
  failAppends = false;
  failCreate = false;
  readonly files: { path: string; bytes: number; closed: boolean }[] = [];
  async create(sessionId: string): Promise<RecordingFile> {
    if (this.failCreate) throw new Error('EACCES: cannot create the recording');
    const f = { path: `/mem/${sessionId}.tgrec`, bytes: 0, closed: false };
    this.files.push(f);
    return {
      path: f.path,
      append: async (data) => {
        if (this.failAppends) throw new Error('ENOSPC: no space left on device');
        f.bytes += data.length;
      },
      close: async () => void (f.closed = true),
    };
  }
}

/** What a ShellSession does at its end: tells the user once, then its onEnd listeners run once. */
class FakeShell implements EndableSession {
  readonly told: string[] = [];
  private done = false;
  private readonly listeners: ((r: string) => void)[] = [];
  end(reason: EndReason, message: string): void {
    if (this.done) return;
    this.told.push(`${reason}: ${message}`);
    this.finish(reason);
  }
  onEnd(fn: (r: string) => void): void {
    this.listeners.push(fn);
  }
  /** The session ends by itself (the user detached, the shell exited, the client left). */
  finish(reason: string): void {
    if (this.done) return;
    this.done = true;
    for (const fn of this.listeners) fn(reason);
  }
}

function signer() {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    sign: (d: Buffer) => sign(null, d, createPrivateKey(pem)),
    publicKeyPem: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
  };
}

function harness(o: { recording?: boolean } = {}) {
  const clock = new FakeClock();
  const sink = new MemorySink();
  const rows = { started: [] as string[], ended: [] as { id: string; reason: string }[] };
  const recRows = { created: [] as string[], finished: [] as { id: string; state: string; failure: string | null }[] };
  const audit: AuditEvent[] = [];
  const counters = new Map<string, number>();
  const live = new SessionRegistry();
  const sealers: FaultySealer[] = [];
  const recordings = {
    create: async (r: { sessionId: string }) => void recRows.created.push(r.sessionId),
    flushed: async () => {},
    finish: async (id: string, state: string, _d: number, _n: number, failure: string | null) => void recRows.finished.push({ id, state, failure }),
  };
  const recorders = new RecorderFactory({
    sink,
    recordings,
    masterKeys: new MasterKeyProvider(Buffer.alloc(32, 7)),
    signer: signer(),
    clock,
    random: new SeededRandom('lifecycle'),
    metrics: { inc: () => {} },
    recording: { fsync: false, flushInterval: 1000, maxChunkBytes: 64 * 1024, maxQueueBytes: 1024 * 1024 },
    sealerFor: (key) => {
      const s = new FaultySealer(aesGcmSealer(key));
      sealers.push(s);
      return s;
    },
  });
  const config: SessionLifecycleConfig = checkLifecycleConfig({
    sessions: { start: async (s) => void rows.started.push(s.id), end: async (id, reason) => void rows.ended.push({ id, reason }) },
    recordings,
    audit: { emit: async (_actor, e) => void audit.push(e), post: (_actor, e) => void audit.push(e) },
    metrics: { inc: (name, by = 1) => void counters.set(name, (counters.get(name) ?? 0) + by) },
    clock,
    live,
    recorders: o.recording === false ? null : recorders,
  });
  let n = 0;
  const facts = (over: Partial<SessionFacts> = {}): SessionFacts => ({
    id: `s_${++n}`,
    user: { id: 7, name: 'alice' },
    role: { id: 3, name: 'ops', recordInput: false },
    addr: '127.0.0.1',
    connId: 'c_1',
    term: 'xterm',
    cols: 80,
    rows: 24,
    socketDir: '/run/tmuxgate/r3-u7',
    recorded: true,
    log: silentLogger(),
    ...over,
  });
  const types = () => audit.map((e) => e.type);
  const of = <T extends AuditEvent['type']>(t: T) => audit.filter((e): e is Extract<AuditEvent, { type: T }> => e.type === t);
  return { clock, sink, rows, recRows, audit, counters, live, sealers, config, facts, types, of };
}

/** Lets queued promise callbacks (the recorder's write queue) run; no time passes. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** An opened, begun session on a fake shell. */
async function running(h: ReturnType<typeof harness>, over: Partial<SessionFacts> = {}) {
  const lc = new SessionLifecycle(h.config, h.facts(over));
  expect(await lc.open()).toBe(true);
  const shell = new FakeShell();
  await lc.begin(shell);
  return { lc, shell };
}

describe('session lifecycle', () => {
  it('a normal end writes the row, the recording and the audit once, and lets go of the session', async () => {
    const h = harness();
    const { lc, shell } = await running(h);
    const id = lc.facts.id;
    expect(h.live.get(id)).toBeDefined();
    lc.tap()!.output(Buffer.from('hello\r\n'));
    h.clock.advance(2000); // a timed flush
    await settle();
    shell.finish('detached');
    await lc.whenClosed();
    expect(h.rows).toEqual({ started: [id], ended: [{ id, reason: 'detached' }] });
    expect(h.recRows).toEqual({ created: [id], finished: [{ id, state: 'sealed', failure: null }] });
    expect(h.types()).toEqual(['session.start', 'session.end']);
    const end = h.of('session.end')[0]!;
    expect(end).toMatchObject({ sessionId: id, user: 'alice', role: 'ops', reason: 'detached', durationMs: 2000 });
    expect(end.recordingHash).toMatch(/^[0-9a-f]{64}$/);
    expect(end.recordingChunks).toBeGreaterThanOrEqual(1);
    expect(h.sink.files[0]).toMatchObject({ closed: true });
    expect(h.counters.get('recording_failures_total')).toBeUndefined();
    expect(h.live.get(id)).toBeUndefined();
    expect(lc.endReason).toBe('detached');
    expect(shell.told).toEqual([]); // it ended by itself: nothing to tell
  });

  it.each([
    ['the disk is full', (h: ReturnType<typeof harness>) => void (h.sink.failAppends = true), /ENOSPC/],
    ['encryption fails', (h: ReturnType<typeof harness>) => void (h.sealers[0]!.failSeal = true), /injected seal failure/],
  ])('a recording failure (%s) ends the session as recording-failed, audited, the recording closed', async (_what, breakIt, error) => {
    const h = harness();
    const { lc, shell } = await running(h);
    const id = lc.facts.id;
    breakIt(h);
    lc.tap()!.output(Buffer.from('secret output'));
    h.clock.advance(2000);
    await waitUntil(() => shell.told.length, 'the session told why it ended'); // deflate runs on the thread pool first
    expect(shell.told).toEqual(['recording-failed: recording failed: session ended']);
    await lc.whenClosed();
    expect(h.rows.ended).toEqual([{ id, reason: 'recording-failed' }]);
    expect(h.recRows.finished).toEqual([{ id, state: 'failed', failure: expect.stringMatching(error) }]);
    expect(h.types()).toEqual(['session.start', 'recording.failed', 'session.end']);
    expect(h.of('recording.failed')[0]!.error).toMatch(error);
    expect(h.of('session.end')[0]).toMatchObject({ reason: 'recording-failed' });
    expect(h.counters.get('recording_failures_total')).toBe(1);
    expect(h.sink.files[0]!.closed).toBe(true);
    expect(h.live.size).toBe(0);
  });

  it('a recording that cannot be created refuses the session: row ended, failure audited, never started', async () => {
    const h = harness();
    h.sink.failCreate = true;
    const lc = new SessionLifecycle(h.config, h.facts());
    expect(await lc.open()).toBe(false);
    expect(h.rows.ended).toEqual([{ id: lc.facts.id, reason: 'recording-failed' }]);
    expect(h.types()).toEqual(['recording.failed']);
    await expect(lc.begin(new FakeShell())).rejects.toThrow(/begin\(\) in state ended/);
    lc.end('killed', 'too late'); // harmless
    expect(h.rows.ended).toHaveLength(1);
  });

  it('a header that cannot be written closes the file and marks its recording row failed', async () => {
    const h = harness();
    h.sink.failAppends = true;
    const lc = new SessionLifecycle(h.config, h.facts());
    expect(await lc.open()).toBe(false);
    expect(h.recRows.finished).toEqual([{ id: lc.facts.id, state: 'failed', failure: expect.stringMatching(/ENOSPC/) }]);
    expect(h.sink.files[0]!.closed).toBe(true);
    expect(h.types()).toEqual(['recording.failed']);
  });

  it('end called twice, and the shell ending after it, writes everything once', async () => {
    const h = harness();
    const { lc, shell } = await running(h);
    lc.end('killed', 'session ended by an administrator: test');
    lc.end('user-disabled', 'your account was disabled by an administrator');
    shell.finish('client-disconnected');
    await lc.whenClosed();
    await h.live.drain(); // every closing the registry was given, not only the one whenClosed() names
    expect(shell.told).toEqual(['killed: session ended by an administrator: test']);
    expect(h.rows.ended).toEqual([{ id: lc.facts.id, reason: 'killed' }]);
    expect(h.recRows.finished).toHaveLength(1);
    expect(h.types()).toEqual(['session.start', 'session.end']);
    expect(h.of('session.end')[0]!.reason).toBe('killed');
  });

  it('a client gone before the session began: recording closed and its row finished, nothing audited as started', async () => {
    const h = harness();
    const lc = new SessionLifecycle(h.config, h.facts());
    expect(await lc.open()).toBe(true);
    lc.end('client-disconnected', 'the client left');
    await lc.whenClosed();
    expect(h.rows.ended).toEqual([{ id: lc.facts.id, reason: 'client-disconnected' }]);
    expect(h.recRows.finished).toEqual([{ id: lc.facts.id, state: 'sealed', failure: null }]);
    expect(h.sink.files[0]!.closed).toBe(true);
    expect(h.audit).toEqual([]);
  });

  it('recording switched off: no recording row, session.end carries an empty recording', async () => {
    const h = harness({ recording: false });
    const { lc, shell } = await running(h);
    expect(h.live.get(lc.facts.id)!.recorder).toBeDefined(); // a NullRecorder: its queue gauge reads 0
    shell.finish('detached');
    await lc.whenClosed();
    expect(h.recRows).toEqual({ created: [], finished: [] });
    expect(h.of('session.end')[0]).toMatchObject({ reason: 'detached', recordingHash: '', recordingChunks: 0 });
  });

  it('an unrecorded session (the auditor menu) audits its own TERM and no recording', async () => {
    const h = harness();
    const { lc, shell } = await running(h, { recorded: false, auditTerm: 'weird-term', socketDir: '(auditor menu)' });
    expect(lc.tap()).toBeUndefined();
    expect(h.live.get(lc.facts.id)!.recorder).toBeUndefined();
    shell.finish('left-menu');
    await lc.whenClosed();
    expect(h.sink.files).toEqual([]);
    expect(h.of('session.start')[0]).toMatchObject({ term: 'weird-term', socketDir: '(auditor menu)' });
    expect(h.of('session.end')[0]).not.toHaveProperty('recordingHash');
  });

  it('records input only when the role says so', async () => {
    const stored: number[] = [];
    for (const recordInput of [false, true]) {
      const h = harness();
      const { lc, shell } = await running(h, { role: { id: 3, name: 'ops', recordInput } });
      lc.tap()!.input(new SeededRandom('typed').bytes(4096)); // incompressible: it shows in the file's size
      shell.finish('detached');
      await lc.whenClosed();
      stored.push(h.sink.files[0]!.bytes);
    }
    expect(stored[1]! - stored[0]!).toBeGreaterThan(4000);
  });

  it('the config checks itself: a missing dependency is named at start', async () => {
    const h = harness();
    const { audit: _a, ...noAudit } = h.config;
    expect(() => checkLifecycleConfig(noAudit as SessionLifecycleConfig)).toThrow('session lifecycle: missing audit');
    const { recorders: _r, ...noRecorders } = h.config;
    expect(() => checkLifecycleConfig(noRecorders as SessionLifecycleConfig)).toThrow('session lifecycle: missing recorders');
    expect(() => checkLifecycleConfig({ ...h.config, recorders: null })).not.toThrow(); // recording off is a choice
  });
});

describe('ending sessions from outside: kill, disable, revoke, shutdown', () => {
  function enforcerOn(
    h: ReturnType<typeof harness>,
    store: {
      kills?: { sessionId: string; reason: string; state?: string; nodeId?: string; serverNodeId?: string; roleId?: number; userId?: number }[];
      /** Kills of sessions relayed to this node, ended by the node that talks to their client. */
      serverKills?: { sessionId: string; roleId: number; userId: number }[];
      disabled?: number[];
      grants?: { userId: number; roleId: number }[];
    },
    nodeId?: string,
  ) {
    const realTime = new FakeClock();
    const done: string[] = [];
    const serverDone: string[] = [];
    const killedPairs: string[] = [];
    const stop = startEnforcer({
      live: h.live,
      kills: {
        pending: async () =>
          (store.kills ?? [])
            .filter((k) => !done.some((d) => d.startsWith(k.sessionId)))
            .map((k) => ({ state: 'live', nodeId: 'local', serverNodeId: null, roleId: 3, userId: 7, ...k, requestedBy: 'os:root' })),
        done: async (id, _now, outcome = 'killed') => void done.push(`${id}:${outcome}`),
        serverPending: async () => (store.serverKills ?? []).filter((k) => !serverDone.includes(k.sessionId)),
        serverDone: async (id) => void serverDone.push(id),
      },
      ...(nodeId ? { nodeId } : {}),
      users: { lockedOutIds: async () => store.disabled ?? [] },
      roles: { allGrants: async () => store.grants ?? [{ userId: 7, roleId: 3 }] },
      host: { killPair: async (r, u) => void killedPairs.push(`r${r}-u${u}`), enforce: async () => 0 },
      clock: h.clock,
      logger: silentLogger(),
      realTime,
    });
    // A tick reads the store (async): it is done once the microtasks it queued have run.
    return { tick: async () => (realTime.advance(500), await settle()), done, serverDone, killedPairs, stop };
  }

  it('an administrator kill ends the session as killed, marks the request done, ends the pair', async () => {
    const h = harness();
    const { lc, shell } = await running(h);
    const other = await running(h);
    const e = enforcerOn(h, { kills: [{ sessionId: lc.facts.id, reason: 'incident 42' }] });
    h.clock.advance(1); // the policy clock is not what paces the poll
    expect(shell.told).toEqual([]);
    await e.tick();
    expect(shell.told).toEqual(['killed: session ended by an administrator: incident 42']);
    expect(e.done).toEqual([`${lc.facts.id}:killed`]);
    await lc.whenClosed();
    await settle();
    expect(e.killedPairs).toEqual(['r3-u7']);
    expect(h.rows.ended).toEqual([{ id: lc.facts.id, reason: 'killed' }]);
    expect(h.of('session.end').map((x) => x.reason)).toEqual(['killed']);
    await e.tick(); // the request is done: nothing more happens
    expect(shell.told).toHaveLength(1);
    expect(other.shell.told).toEqual([]);
    e.stop();
  });

  it("a relayed session's kill ends it here and leaves its pair to the node that holds the tmux server, which ends it there", async () => {
    const h = harness();
    const { lc, shell } = await running(h);
    const e = enforcerOn(h, { kills: [{ sessionId: lc.facts.id, reason: 'incident 43', serverNodeId: 'node-a' }] }, 'node-b');
    await e.tick();
    expect(shell.told).toEqual(['killed: session ended by an administrator: incident 43']);
    expect(e.done).toEqual([`${lc.facts.id}:killed`]);
    await lc.whenClosed();
    await settle();
    expect(e.killedPairs).toEqual([]); // not here: node-b holds no tmux server of the pair
    e.stop();
    // On node-a: the request's session part is done (node-b's); the pair's server ends here, once.
    const owner = enforcerOn(h, { serverKills: [{ sessionId: lc.facts.id, roleId: 3, userId: 7 }] }, 'node-a');
    await owner.tick();
    await settle();
    expect(owner.serverDone).toEqual([lc.facts.id]);
    expect(owner.killedPairs).toEqual(['r3-u7']);
    await owner.tick();
    await settle();
    expect(owner.killedPairs).toEqual(['r3-u7']);
    owner.stop();
  });

  /**
   * An enforcer over kills relayed to this node (`pending`, which a test may add to), whose host
   * never finishes the end of pair r1-u1 until `release` (its socket holds the server's kill, a
   * tracer holds its `kill`).
   */
  function heldEndEnforcer(pending: { sessionId: string; roleId: number; userId: number }[]) {
    const realTime = new FakeClock();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const started: string[] = [];
    const counts = { enforced: 0 };
    const doneIds: string[] = [];
    const stop = startEnforcer({
      live: { get: () => undefined, all: () => [], size: 0, viewers: new Map(), endAll: () => {} } as never,
      kills: {
        pending: async () => [],
        done: async () => {},
        serverPending: async () => pending.filter((k) => !doneIds.includes(k.sessionId)),
        serverDone: async (id) => void doneIds.push(id),
      },
      nodeId: 'node-a',
      users: { lockedOutIds: async () => [] },
      roles: { allGrants: async () => [] },
      host: {
        killPair: async (r, u) => {
          started.push(`r${r}-u${u}`);
          if (r === 1 && u === 1) await held;
        },
        enforce: async () => ++counts.enforced,
      },
      clock: new FakeClock(),
      logger: silentLogger(),
      realTime,
    });
    /** One poll of the store, and the work it starts. */
    const tick = async (startedAtLeast: number) => {
      realTime.advance(500);
      for (let spin = 0; spin < 20 && started.length < startedAtLeast; spin++) await settle();
    };
    return { started, counts, release, stop, tick };
  }

  it("one pair whose end never finishes (its socket holds the server's kill) does not hold the other pairs' ends", async () => {
    const pending = ['r1-u1', 'r1-u2', 'r2-u3', 'r1-u1'].map((k, i) => ({ sessionId: `S${i}`, roleId: Number(k[1]), userId: Number(k.slice(4)) }));
    const e = heldEndEnforcer(pending);
    await e.tick(3);
    // The others' ends ran while the hostile one waits; a pair queued twice in a tick is ended
    // once; the locks and removals (enforce) do not wait for it either.
    expect(e.started).toEqual(['r1-u1', 'r1-u2', 'r2-u3']);
    expect(e.counts.enforced).toBe(1);
    e.release();
    e.stop();
  });

  it('a pair whose end is held does not hold the ends asked for after it: a later kill, a later disable', async () => {
    const pending = [{ sessionId: 'S0', roleId: 1, userId: 1 }];
    const e = heldEndEnforcer(pending);
    await e.tick(1);
    expect(e.started).toEqual(['r1-u1']);
    const enforcedBefore = e.counts.enforced;
    // An administrator kills another user's session a moment later, and disables someone.
    pending.push({ sessionId: 'S1', roleId: 1, userId: 2 });
    await e.tick(2);
    expect(e.started).toEqual(['r1-u1', 'r1-u2']);
    expect(e.counts.enforced).toBeGreaterThan(enforcedBefore);
    e.release();
    e.stop();
  });

  it("a kill of this node's session that ended just before is resolved and still ends the pair; other nodes' requests are left to them", async () => {
    const h = harness();
    const e = enforcerOn(
      h,
      {
        kills: [
          { sessionId: 'Sgone00000', reason: 'late', state: 'closed', nodeId: 'node-b', roleId: 4, userId: 9 },
          { sessionId: 'Srelayed00', reason: 'late', state: 'closed', nodeId: 'node-b', serverNodeId: 'node-a', roleId: 5, userId: 9 },
          { sessionId: 'Selsewhere', reason: 'theirs', state: 'live', nodeId: 'node-a' },
          { sessionId: 'Sendedthem', reason: 'theirs', state: 'closed', nodeId: 'node-a' },
        ],
      },
      'node-b',
    );
    await e.tick();
    await settle();
    expect(e.done).toEqual(['Sgone00000:ended', 'Srelayed00:ended']);
    expect(e.killedPairs).toEqual(['r4-u9']); // the relayed one's pair is node-a's to end
    e.stop();
  });

  it('a disabled user and a revoked grant end the session with their reason', async () => {
    const h = harness();
    const a = await running(h);
    const b = await running(h, { user: { id: 8, name: 'bob' } });
    const e = enforcerOn(h, { disabled: [7], grants: [] });
    await e.tick();
    await Promise.all([a.lc.whenClosed(), b.lc.whenClosed()]);
    expect(a.shell.told).toEqual(['user-disabled: your account was disabled by an administrator']);
    expect(b.shell.told).toEqual(['role-revoked: your role ops was revoked by an administrator']);
    expect(h.rows.ended.map((r) => r.reason).sort()).toEqual(['role-revoked', 'user-disabled']);
    expect(h.live.size).toBe(0);
    e.stop();
  });

  it('a shutdown ends every live session and the registry drains their recordings', async () => {
    const h = harness();
    const a = await running(h);
    const b = await running(h);
    // A start still in flight (its turn, its rows) when the shutdown begins.
    const late = new SessionLifecycle(h.config, h.facts());
    expect(await late.open()).toBe(true);
    expect(h.live.shutDown('gateway-shutdown', 'the gateway is restarting; reconnect in a moment')).toBe(2);
    // It goes live after: it is ended at once, its recording sealed with the others.
    const lateShell = new FakeShell();
    await late.begin(lateShell);
    await h.live.drain();
    expect(h.live.size).toBe(0);
    expect(h.recRows.finished.map((r) => r.state)).toEqual(['sealed', 'sealed', 'sealed']);
    expect([a.shell.told, b.shell.told, lateShell.told].flat()).toEqual([
      'gateway-shutdown: the gateway is restarting; reconnect in a moment',
      'gateway-shutdown: the gateway is restarting; reconnect in a moment',
      'gateway-shutdown: the gateway is restarting; reconnect in a moment',
    ]);
    expect(h.of('session.end').map((x) => x.reason)).toEqual(['gateway-shutdown', 'gateway-shutdown', 'gateway-shutdown']);
  });

  it('ending every session for another cause (off-box evidence lagging) does not refuse the sessions after it', async () => {
    const h = harness();
    await running(h);
    expect(h.live.endAll('evidence-lag', 'off-box evidence is behind')).toBe(1);
    await h.live.drain();
    const after = await running(h);
    expect(after.shell.told).toEqual([]);
    expect(h.live.size).toBe(1);
  });
});
