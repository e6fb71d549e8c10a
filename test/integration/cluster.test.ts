import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { totpCode } from '../../src/auth/totp.js';
import { generateRecoveryCodes } from '../../src/admin/operations.js';
import { canBindMount, TestCluster, type ClusterUser } from '../helpers/cluster.js';
import { waitUntil } from '../helpers/poll.js';
import type { PtyDriver } from '../helpers/pty-driver.js';
import { processesOf } from '../../src/host/accounts.js';

const bindMountable = canBindMount();
if (!bindMountable) console.warn('cluster: keys dir not mounted read-only here (needs root with CAP_SYS_ADMIN)');
const TWICE = /Verification code:[\s\S]*Verification code:/;

/** A six-digit code no step in the window accepts for `u` now. */
function wrongCode(u: ClusterUser): string {
  const valid = [-1, 0, 1, 2].map((k) => totpCode(u.secret, Date.now() + k * 30_000));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!valid.includes(c)) return c;
  }
}

/**
 * Two real gateway processes on one PostgreSQL store behind the real HAProxy: what must hold
 * across nodes with only the shared store (spent codes, lockouts, the audit chain, kills).
 */
describe('two gateway nodes on PostgreSQL behind HAProxy', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await TestCluster.start({ nodes: 2, config: { auth: { userLockout: { maxFailures: 3 } } } });
  }, 90_000);
  afterAll(() => c?.stop(), 60_000);
  afterEach(({ task }) => {
    if (task.result?.state === 'fail') process.stderr.write(`${c.tails()}\n--- haproxy ---\n${c.hp.output().slice(-2000)}\n`);
  });

  /** Answers one prompt with `code` through `via` and waits for the refusal (a second prompt). */
  async function refused(u: ClusterUser, via: number, code: string, from: string): Promise<void> {
    const d = c.ssh(u, u.name, via, from);
    await d.waitFor('Verification code:', 20_000);
    d.write(code + '\r');
    await d.waitFor(TWICE, 20_000);
    d.kill();
  }

  it.skipIf(!bindMountable)('nodes serve with the shared keys dir mounted read-only, as deploy/ mounts it from a secret', async () => {
    expect(c.keysReadOnly).toBe(true);
    expect(() => writeFileSync(path.join(c.keysDir, 'probe'), 'x')).toThrow(/EROFS/);
    expect(c.nodes.every((n) => n.running)).toBe(true);
  });

  it('20 parallel logins with one TOTP code over two nodes: exactly one shell, the code is spent once', async () => {
    const u = await c.user('par');
    const code = c.code(u);
    // Ten through each node's own frontend, each from its own address (no per-address limits in play).
    const ds = Array.from({ length: 20 }, (_, i) => c.ssh(u, u.name, i % 2, `127.0.0.${10 + i}`));
    await Promise.all(ds.map((d) => d.waitFor('Verification code:', 30_000)));
    for (const d of ds) d.write(code + '\r');
    const outcome = (d: PtyDriver) => (d.text.includes('[par+ops]') ? 'shell' : TWICE.test(d.text) || d.exitCode !== null ? 'refused' : null);
    const results = await Promise.all(ds.map((d) => waitUntil(() => outcome(d), 'a shell or a refusal', 30_000)));
    expect(results.filter((r) => r === 'shell')).toHaveLength(1);
    for (const d of ds) d.kill();
    expect((await c.audit('auth.success')).filter((e) => e.data.user === 'par')).toHaveLength(1);
    // The other 19 were answered as replays (or, once three replays locked the user, as locked).
    const failures = (await c.audit('auth.failure')).filter((e) => e.data.user === 'par').map((e) => e.data.reason);
    const locked = (await c.audit('auth.locked')).filter((e) => e.data.user === 'par');
    expect(failures.length + locked.length).toBe(19);
    expect(failures.every((r) => r === 'totp-replayed')).toBe(true);
    expect(failures.length).toBeGreaterThanOrEqual(3);
  }, 90_000);

  it("counts a user's wrong codes across nodes: alternating A, B, A locks at maxFailures 3, and B then refuses the right code", async () => {
    const u = await c.user('lock');
    await refused(u, 0, wrongCode(u), '127.0.0.40');
    await refused(u, 1, wrongCode(u), '127.0.0.41');
    const locked = async () => (await c.admin.lockouts.state('user', 'lock')).locked;
    expect(await locked()).toBe(false); // two failures: not yet
    await refused(u, 0, wrongCode(u), '127.0.0.42');
    expect(await locked()).toBe(true);
    await refused(u, 1, c.code(u), '127.0.0.43');
    expect((await c.audit('lockout.start')).filter((e) => e.data.subject === 'lock')).toHaveLength(1);
    expect((await c.audit('auth.locked')).filter((e) => e.data.user === 'lock')).toHaveLength(1);
    expect((await c.audit('auth.success')).filter((e) => e.data.user === 'lock')).toHaveLength(0);
  }, 60_000);

  it('the audit chain verifies after concurrent logins, failures and admin CLI changes on both nodes', async () => {
    const [a, b] = [await c.user('auda'), await c.user('audb')];
    // Their accounts first (the concurrent part below is about the audit chain, not first logins).
    (await c.login(a, 0, { from: '127.0.0.50', timeoutMs: 30_000 })).kill();
    (await c.login(b, 1, { from: '127.0.0.51', timeoutMs: 30_000 })).kill();
    // Recovery codes: a second login within the TOTP step.
    const [[ra], [rb]] = await Promise.all([generateRecoveryCodes(c.admin, 'auda', 1), generateRecoveryCodes(c.admin, 'audb', 1)]);
    const before = (await c.admin.auditEvents.recent({ limit: 1 }))[0]!.id;
    const [da, db] = await Promise.all([
      c.login(a, 0, { from: '127.0.0.50', code: ra, timeoutMs: 30_000 }),
      c.login(b, 1, { from: '127.0.0.51', code: rb, timeoutMs: 30_000 }),
      refused(b, 0, wrongCode(b), '127.0.0.52'),
      refused(a, 1, wrongCode(a), '127.0.0.53'),
      ...['x1', 'x2', 'x3', 'x4'].map(async (name, i) => expect((await c.cli(['user', 'add', name, '--role', 'ops'], i % 2)).status).toBe(0)),
      c.cli(['role', 'add', 'dba'], 1),
    ]);
    da!.kill();
    db!.kill();
    const v = await c.cli(['audit', 'verify', '--json'], 1);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, problem: null });
    // Every append of the burst is in the one chain: 2 successes, 2 failures, 5 admin changes at least.
    expect((await c.admin.auditEvents.recent({ sinceId: before })).length).toBeGreaterThanOrEqual(9);
  }, 60_000);

  // Pair accounts are allocated in the store under one lock: without it both nodes took the same
  // next uid and the second useradd failed ("UID 63000 is not unique").
  it("two users' first logins at the same moment on two nodes both get a shell, under different uids", async () => {
    const [p, q] = [await c.user('firsta'), await c.user('firstb')];
    const [dp, dq] = await Promise.all([c.login(p, 0, { from: '127.0.0.55', timeoutMs: 30_000 }), c.login(q, 1, { from: '127.0.0.56', timeoutMs: 30_000 })]);
    const uid = async (d: PtyDriver) => Number(/uid=\[(\d+)\]/.exec(await c.run(d, 'echo uid=[$(id -u)]', /uid=\[\d+\]/))![1]);
    expect(await uid(dp)).not.toBe(await uid(dq));
  }, 60_000);

  it("an admin kill run with node A's config ends a session held by node B within 2 s, and the user sees why", async () => {
    const u = await c.user('kil');
    const d = await c.login(u, 1, { from: '127.0.0.60', timeoutMs: 30_000 });
    const [s] = await c.admin.sessions.list({ live: true, user: 'kil' });
    const r = await c.cli(['sessions', 'kill', s!.id, '--reason', 'node test window'], 0);
    expect(r.status, r.stderr).toBe(0);
    await d.waitFor('session ended by an administrator: node test window', 2_000);
    await d.waitExit(5_000);
  }, 60_000);

  /** Logs `u` in on node A, leaves a marker in its tmux session, and logs in again on node B: a session relayed to A. */
  async function relayed(u: ClusterUser, from: number): Promise<{ d: PtyDriver; id: string; uid: number }> {
    const first = await c.login(u, 0, { from: `127.0.0.${from}`, timeoutMs: 30_000 });
    await c.run(first, 'echo MARK-$((300+33))', 'MARK-333');
    first.kill();
    await waitUntil(async () => (await c.admin.sessions.list({ live: true, user: u.name })).length === 0, 'the first session to close');
    // Node B authenticates and records; the tmux server (with the marker on its screen) is node A's.
    // A recovery code: the nodes run on real time, and the TOTP step was spent by the first login.
    const [code] = await generateRecoveryCodes(c.admin, u.name, 1);
    const d = await c.login(u, 1, { from: `127.0.0.${from + 1}`, code, timeoutMs: 30_000 });
    expect(d.text).toContain('MARK-333');
    const [s] = await c.admin.sessions.list({ live: true, user: u.name });
    expect(s).toMatchObject({ node_id: 'node-b', server_node_id: 'node-a' });
    const pair = await c.admin.hostAccounts.pair(s!.role_id, s!.user_id);
    expect(processesOf(pair!.uid).length).toBeGreaterThan(0); // the tmux server and the shell, on node A
    return { d, id: s!.id, uid: pair!.uid };
  }

  /** Whether node A still holds the pair of the session's user (its claim). */
  const claimed = async (id: string) => {
    const s = (await c.admin.sessions.get(id))!;
    return (await c.admin.pairServers.owner(s.role_id, s.user_id)) !== null;
  };

  it('a reconnect lands in the same tmux session whichever node receives it; an admin kill ends it and its tmux server on the owning node within 2 s', async () => {
    const u = await c.user('rel');
    const { d, id, uid } = await relayed(u, 80);
    // Run with the owning node's config: the CLI only writes the request; each node does its part.
    const r = await c.cli(['sessions', 'kill', id, '--reason', 'relay kill'], 0);
    expect(r.status, r.stderr).toBe(0);
    const t0 = Date.now(); // the request is in the store (as the other kill test counts, from the CLI's exit)
    await d.waitFor('session ended by an administrator: relay kill', 2_000 - (Date.now() - t0));
    // Node B ended the session; node A, which holds the tmux server, ends it and the pair's processes.
    await waitUntil(() => processesOf(uid).length === 0, "the pair's processes on node A to end", Math.max(1, 2_000 - (Date.now() - t0)));
    await waitUntil(async () => (await c.admin.sessions.get(id))?.state !== 'live', 'the session row to close');
    expect(await c.admin.sessions.get(id)).toMatchObject({ state: 'closed', end_reason: 'killed' });
    await waitUntil(async () => !(await claimed(id)), 'node A to give up the pair');
    expect(await c.admin.sql.get('SELECT outcome FROM session_kills WHERE session_id = ? AND server_done_at IS NOT NULL', [id])).toEqual({ outcome: 'killed' });
    await d.waitExit(5_000);
  }, 60_000);

  it('disabling a user whose session is relayed ends it and the tmux server on the owning node within 2 s', async () => {
    const u = await c.user('reldis');
    const { d, id, uid } = await relayed(u, 84);
    const r = await c.cli(['user', 'disable', 'reldis'], 1);
    expect(r.status, r.stderr).toBe(0);
    const t0 = Date.now();
    await d.waitFor('your account was disabled by an administrator', 2_000 - (Date.now() - t0));
    await waitUntil(() => processesOf(uid).length === 0, "the pair's processes on node A to end", Math.max(1, 2_000 - (Date.now() - t0)));
    await waitUntil(async () => (await c.admin.sessions.get(id))?.state !== 'live', 'the session row to close');
    expect(await c.admin.sessions.get(id)).toMatchObject({ state: 'closed', end_reason: 'user-disabled' });
    await d.waitExit(5_000);
  }, 60_000);

  it('logs in through HAProxy; after kill -9 of a node new logins through it succeed within 10 s; the node comes back', async () => {
    const [first, next, back] = [await c.user('lba'), await c.user('lbb'), await c.user('lbc')];
    (await c.login(first, 'lb', { from: '127.0.0.70', timeoutMs: 30_000 })).kill();
    // A session live on node-a when it dies: the survivor marks it interrupted ("node lost").
    const held = await c.user('lost');
    const live = await c.login(held, 0, { from: '127.0.0.69', timeoutMs: 30_000 });
    const [lost] = await c.admin.sessions.list({ live: true, user: 'lost' });
    await c.nodes[0]!.kill();
    const t0 = Date.now();
    const left = () => 10_000 - (Date.now() - t0);
    // Until the checks take node-a out, HAProxy may send a connection there and close it: try again.
    // Such a connection never reaches the code, so one code serves every try.
    const code = c.code(next);
    let d: PtyDriver | null = null;
    while (!d) {
      const attempt = c.ssh(next, next.name, 'lb', '127.0.0.71');
      await waitUntil(() => attempt.text.includes('Verification code:') || attempt.exitCode !== null, 'a prompt or a closed connection', left());
      if (attempt.exitCode === null) d = attempt;
    }
    d.write(code + '\r');
    await d.waitFor('[lbb+', left()); // typing before tmux draws would be flushed
    await c.run(d, 'echo ALIVE-$((40+2))', 'ALIVE-42', left());
    d.kill();
    // Within the same 10 s the dead node is out of the balancer: every new connection reaches the survivor.
    await waitUntil(() => /lb_nodes\/node-a is DOWN/.test(c.hp.output()), 'haproxy taking node-a out', left());
    const probes = [0, 1, 2, 3].map((i) => c.ssh(next, next.name, 'lb', `127.0.0.${73 + i}`));
    await Promise.all(probes.map((p) => p.waitFor('Verification code:', left())));
    expect(Date.now() - t0).toBeLessThan(10_000);
    for (const p of probes) p.kill();
    await waitUntil(async () => (await c.admin.sessions.get(lost!.id))?.state === 'interrupted', 'the lost session marked interrupted', left());
    expect((await c.admin.sessions.get(lost!.id))!.end_reason).toMatch(/node lost/);
    live.kill();
    // A restarted node is checked back in and serves again.
    await c.nodes[0]!.start();
    await c.waitHealthy();
    (await c.login(back, 0, { from: '127.0.0.72', timeoutMs: 30_000 })).kill();
  }, 90_000);
});
