import { waitUntil } from '../helpers/poll.js';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { buildConfig } from '../../src/config/load.js';
import { migrate } from '../../src/store/db.js';
import { SqliteSql } from '../../src/store/sqlite.js';
import { NodeRepo, type NodeRecord } from '../../src/store/nodes.js';
import { PairServerRepo } from '../../src/store/pair-servers.js';
import { SessionRepo } from '../../src/store/sessions.js';
import { KillRepo } from '../../src/store/kills.js';
import { RecordingRepo } from '../../src/store/recordings.js';
import { GatewayStateRepo } from '../../src/store/gateway-state.js';
import { AuditEventRepo } from '../../src/store/audit-events.js';
import { AuditLog, readAudit } from '../../src/audit/log.js';
import { FakeClock, systemClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import { decide, PairPlacement } from '../../src/cluster/placement.js';
import { reapLostNodes } from '../../src/cluster/reaper.js';
import { checkClusterKeys, loadNodeKey, registerNode } from '../../src/cluster/node.js';
import { TgError } from '../../src/errors.js';

const logger = createLogger({ level: 'silent' });
const build = (o: unknown) => buildConfig(o, { file: '/etc/tmuxgate/config.yaml', baseDir: '/etc/tmuxgate' });
const pg = { kind: 'postgres', url: 'postgres://tg@db/tmuxgate' };

/** A fresh SQLite store with the repositories the cluster code uses. */
function store() {
  const db = new Database(':memory:');
  migrate(db);
  const sql = new SqliteSql(db);
  return {
    sql,
    nodes: new NodeRepo(sql),
    pairServers: new PairServerRepo(sql),
    sessions: new SessionRepo(sql, 'node-b'),
    recordings: new RecordingRepo(sql),
    kills: new KillRepo(sql),
    state: new GatewayStateRepo(sql),
    events: new AuditEventRepo(sql),
  };
}

const row = (o: Partial<NodeRecord>): NodeRecord => ({
  id: 'node-a',
  link_address: '10.0.0.1:7022',
  host: 'm1',
  pid: 1,
  version: '1',
  started_at: 0,
  heartbeat_at: 1000,
  stopped_at: null,
  lost_at: null,
  ...o,
});

describe('cluster config', () => {
  it('is optional and checked: postgres only, a bound of at least three heartbeats, a reachable link address', () => {
    expect(build({}).cluster).toBeUndefined();
    const c = build({ store: pg, cluster: { nodeId: 'gw-1', link: { listen: '10.0.0.1:7022' } } }).cluster!;
    expect(c).toMatchObject({ nodeId: 'gw-1', heartbeat: 2000, deadAfter: 10_000, link: { listen: '10.0.0.1:7022' } });
    const refused: [unknown, RegExp][] = [
      [{ cluster: { nodeId: 'gw-1' } }, /cluster: needs store.kind postgres/],
      [{ store: pg, cluster: { nodeId: 'gw 1' } }, /cluster.nodeId/],
      [{ store: pg, cluster: { nodeId: 'gw-1', heartbeat: '5s', deadAfter: '10s' } }, /cluster.deadAfter: must be at least three heartbeats/],
      [{ store: pg, cluster: { nodeId: 'gw-1', link: { listen: '0.0.0.0:7022' } } }, /cluster.link.advertise: needed when link.listen is a wildcard/],
      [{ store: pg, cluster: { nodeId: 'gw-1', link: { listen: '10.0.0.1' } } }, /cluster.link.listen: host:port/],
      [{ store: pg, cluster: { nodeId: 'gw-1', link: { listen: '10.0.0.1:99999' } } }, /port above 65535/],
    ];
    for (const [input, message] of refused) {
      let err: unknown;
      try {
        build(input);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(input)).toBeInstanceOf(TgError);
      expect((err as TgError).code).toBe('TG_ERR_CONFIG_INVALID');
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
    }
    expect(build({ store: pg, cluster: { nodeId: 'gw-1', link: { listen: '[::]:7022', advertise: '[fd00::1]:7022' } } }).cluster!.link!.advertise).toBe(
      '[fd00::1]:7022',
    );
  });
});

describe('where a login runs', () => {
  it('decides: own claim local, a live owner relayed, a gone owner taken over, a live owner without a link unavailable', () => {
    expect(decide('b', 'b', null, 5000, 2000)).toEqual({ kind: 'local' });
    expect(decide('b', 'a', row({ heartbeat_at: 3000 }), 5000, 2000)).toEqual({ kind: 'relay', node: 'a', address: '10.0.0.1:7022' });
    expect(decide('b', 'a', row({ heartbeat_at: 2999 }), 5000, 2000)).toEqual({ kind: 'takeover', from: 'a' });
    expect(decide('b', 'a', row({ heartbeat_at: 5000, stopped_at: 4000 }), 5000, 2000)).toEqual({ kind: 'takeover', from: 'a' });
    expect(decide('b', 'a', row({ heartbeat_at: 5000, lost_at: 4000 }), 5000, 2000)).toEqual({ kind: 'takeover', from: 'a' });
    expect(decide('b', 'a', null, 5000, 2000)).toEqual({ kind: 'takeover', from: 'a' });
    expect(decide('b', 'a', row({ heartbeat_at: 5000, link_address: null }), 5000, 2000)).toMatchObject({ kind: 'unavailable', node: 'a' });
  });

  it('claims, relays while the owner beats, takes over once it is silent past the bound, and releases a claim whose server ended', async () => {
    const s = store();
    const clock = new FakeClock(100_000);
    const alive = new Set<string>();
    const placement = (self: string) =>
      new PairPlacement({
        self,
        pairServers: s.pairServers,
        nodes: s.nodes,
        clusterClock: clock,
        deadAfter: 10_000,
        serverAlive: async (r, u) => alive.has(`${self}:${r}:${u}`),
        realTime: systemClock,
        recheckMs: 0,
        logger,
      });
    const register = (id: string) =>
      s.nodes.register({ id, host: 'm1', pid: 1, linkAddress: `${id}:7022`, version: '1', now: clock.now(), freshSince: 0 }, () => false);
    await register('node-a');
    await register('node-b');
    const a = placement('node-a');
    const b = placement('node-b');
    expect(await a.place(2, 3)).toEqual({ kind: 'local' });
    expect(await b.place(2, 3)).toEqual({ kind: 'relay', node: 'node-a', address: 'node-a:7022' });
    clock.advance(10_000); // exactly the bound: still alive
    expect(await b.place(2, 3)).toMatchObject({ kind: 'relay' });
    clock.advance(1);
    expect(await b.place(2, 3)).toEqual({ kind: 'local', tookOverFrom: 'node-a' });
    expect(await s.pairServers.owner(2, 3)).toBe('node-b');
    // A client ending while the server lives keeps the claim; once the server is gone, the claim goes.
    alive.add('node-b:2:3');
    await b.clientEnded(2, 3);
    expect(await s.pairServers.owner(2, 3)).toBe('node-b');
    alive.delete('node-b:2:3');
    await b.clientEnded(2, 3);
    expect(await s.pairServers.owner(2, 3)).toBeNull();
    // At start, claims whose server did not survive are released; live ones are kept.
    await b.place(2, 4);
    await b.place(2, 5);
    alive.add('node-b:2:5');
    expect(await b.releaseDead()).toBe(1);
    expect(await s.pairServers.ofNode('node-b')).toEqual([{ roleId: 2, userId: 5 }]);
  });

  it("at start, a pair whose socket holds the liveness ask holds its own claim's release, not the others'", async () => {
    const s = store();
    const clock = new FakeClock(100_000);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const b = new PairPlacement({
      self: 'node-b',
      pairServers: s.pairServers,
      nodes: s.nodes,
      clusterClock: clock,
      deadAfter: 10_000,
      // User 1's socket is a program that never answers: the ask waits (out its timeout, in life).
      serverAlive: async (_r, u) => (u === 1 ? (await held, false) : false),
      realTime: systemClock,
      recheckMs: 0,
      logger,
    });
    await s.nodes.register({ id: 'node-b', host: 'm1', pid: 1, linkAddress: null, version: '1', now: clock.now(), freshSince: 0 }, () => false);
    for (const u of [1, 2, 3]) await b.place(2, u);
    const releasing = b.releaseDead();
    // The others are released once the held ask has had its grace (PAIR_TURNS), while it still waits.
    await waitUntil(async () => (await s.pairServers.ofNode('node-b')).length === 1, 'the others released');
    expect(await s.pairServers.ofNode('node-b')).toEqual([{ roleId: 2, userId: 1 }]);
    release();
    expect(await releasing).toBe(3);
  });
});

describe('node loss', () => {
  it('the reaper declares a silent node lost once: its live sessions and open recordings interrupted, its claims dropped, audited', async () => {
    const s = store();
    const clusterClock = new FakeClock(1_000_000);
    const clock = new FakeClock(5_000_000);
    const audit = new AuditLog(s.events, clock);
    const master = new MasterKeyProvider(randomBytes(32));
    const reg = (id: string) =>
      s.nodes.register({ id, host: 'm1', pid: 1, linkAddress: null, version: '1', now: clusterClock.now(), freshSince: 0 }, () => false);
    await reg('node-a');
    await reg('node-b');
    const onA = new SessionRepo(s.sql, 'node-a');
    const base = { userId: 1, roleId: 2, userName: 'alice', roleName: 'ops', remoteAddr: '192.0.2.1', term: 'xterm', cols: 80, rows: 24 };
    await onA.start({ ...base, id: 'A1aaaaaaaa', startedAt: 1 });
    await onA.start({ ...base, id: 'A2aaaaaaaa', startedAt: 2 });
    await onA.end('A2aaaaaaaa', 'detached', 3);
    await s.sessions.start({ ...base, id: 'B1aaaaaaaa', startedAt: 4, serverNodeId: 'node-a' });
    for (const id of ['A1aaaaaaaa', 'B1aaaaaaaa'])
      await s.recordings.create({ sessionId: id, file: 'f', dataKey: randomBytes(32), keys: master, cols: 80, rows: 24, now: 5 });
    await s.pairServers.claim(2, 1, 'node-a', 0);
    await s.pairServers.claim(2, 9, 'node-b', 0);
    // An admin kill of node-a's session, which node-a never carries out; and one of node-b's
    // session relayed to node-a, ended by node-b but not yet on node-a's side.
    await s.kills.request('A1aaaaaaaa', 'x', 'os:root', 1);
    await s.kills.request('B1aaaaaaaa', 'y', 'os:root', 1);
    await s.kills.done('B1aaaaaaaa', 2);
    expect((await s.kills.serverPending('node-a')).map((k) => k.sessionId)).toEqual(['B1aaaaaaaa']);
    const reap = () =>
      reapLostNodes({
        self: 'node-b',
        sql: s.sql,
        nodes: s.nodes,
        sessions: s.sessions,
        recordings: s.recordings,
        pairServers: s.pairServers,
        kills: s.kills,
        audit,
        clusterClock,
        clock,
        deadAfter: 10_000,
        logger,
      });

    clusterClock.advance(10_000);
    await s.nodes.heartbeat({ id: 'node-b', host: 'm1', pid: 1 }, clusterClock.now());
    expect(await reap()).toEqual([]); // silent for exactly the bound: not yet
    clusterClock.advance(1);
    expect(await reap()).toEqual(['node-a']);
    expect(await reap()).toEqual([]); // once
    expect(await onA.get('A1aaaaaaaa')).toMatchObject({ state: 'interrupted', end_reason: 'node lost', ended_at: clock.now() });
    expect(await onA.get('A2aaaaaaaa')).toMatchObject({ state: 'closed' });
    expect(await onA.get('B1aaaaaaaa')).toMatchObject({ state: 'live' }); // node-b's own session: its relay ends by itself
    expect((await s.recordings.get('A1aaaaaaaa'))!.state).toBe('interrupted');
    expect((await s.recordings.get('B1aaaaaaaa'))!.state).toBe('recording');
    expect(await s.pairServers.ofNode('node-a')).toEqual([]);
    expect(await s.pairServers.ofNode('node-b')).toEqual([{ roleId: 2, userId: 9 }]);
    const lost = await readAudit(s.events, { type: 'node.lost' });
    expect(lost.map((r) => JSON.parse(r.data))).toEqual([
      { node: 'node-a', lastHeartbeat: 1_000_000, silentMs: 10_001, sessions: 1, recordings: 1, pairs: 1, kills: 2 },
    ]);
    // Neither kill stays pending: node-a's session is interrupted, and its tmux servers are out of reach.
    expect(await s.kills.pending()).toEqual([]);
    expect(await s.kills.serverPending('node-a')).toEqual([]);
    const outcome = (id: string) => s.sql.get('SELECT outcome, done_at, server_done_at FROM session_kills WHERE session_id = ?', [id]);
    expect(await outcome('A1aaaaaaaa')).toEqual({ outcome: 'node lost', done_at: clock.now(), server_done_at: null });
    expect(await outcome('B1aaaaaaaa')).toEqual({ outcome: 'killed', done_at: 2, server_done_at: clock.now() });
    expect((await readAudit(s.events, { type: 'session.interrupted' })).map((r) => JSON.parse(r.data).sessionId)).toEqual(['A1aaaaaaaa']);
    // A node that stopped cleanly is not lost, however old its heartbeat.
    await s.nodes.stopped({ id: 'node-b', host: 'm1', pid: 1 }, clusterClock.now());
    clusterClock.advance(60_000);
    expect(
      await reapLostNodes({
        self: 'node-c',
        sql: s.sql,
        nodes: s.nodes,
        sessions: s.sessions,
        recordings: s.recordings,
        pairServers: s.pairServers,
        kills: s.kills,
        audit,
        clusterClock,
        clock,
        deadAfter: 10_000,
        logger,
      }),
    ).toEqual([]);
  });
});

describe('node identity and shared keys', () => {
  it('refuses a node id whose heartbeat is fresh from another machine or a running pid, and takes back its own crashed row', async () => {
    const s = store();
    const n = { id: 'gw-1', linkAddress: null, version: '1', deadAfter: 10_000 };
    await registerNode(s.nodes, { ...n, host: 'm1', pid: process.pid, now: 1000 });
    await expect(registerNode(s.nodes, { ...n, host: 'm2', pid: 5, now: 2000 })).rejects.toThrow(/node id gw-1 is in use by pid \d+ on machine m1/);
    await expect(registerNode(s.nodes, { ...n, host: 'm1', pid: 5, now: 2000 })).rejects.toMatchObject({ code: 'TG_ERR_NODE_ID_IN_USE' }); // our pid still runs
    // A dead pid on the same machine: this node's own crash; taken back at once.
    await s.nodes.register({ id: 'gw-1', host: 'm1', pid: 2 ** 22 + 17, linkAddress: null, version: '1', now: 2000, freshSince: 0 }, () => false);
    await registerNode(s.nodes, { ...n, host: 'm1', pid: process.pid, now: 2500 });
    // Another machine's row, silent past the bound: the id is free.
    await s.nodes.register({ id: 'gw-1', host: 'm9', pid: 1, linkAddress: null, version: '1', now: 3000, freshSince: 0 }, () => false);
    await registerNode(s.nodes, { ...n, host: 'm1', pid: process.pid, now: 13_001 });
    expect(await s.nodes.get('gw-1')).toMatchObject({ host: 'm1', pid: process.pid, heartbeat_at: 13_001 });
  });

  it("records the first node's key fingerprints and refuses a node whose keys differ, in one line; a rotated master key moves the record", async () => {
    const s = store();
    const keys = { hostKey: 'SHA256:h', masterKey: 'm1', auditKey: 'SHA256:a', nodeKey: 'SHA256:n' };
    await checkClusterKeys(s.state, keys, ['m1']);
    await checkClusterKeys(s.state, keys, ['m1']);
    const err = await checkClusterKeys(s.state, { ...keys, hostKey: 'SHA256:x', nodeKey: 'SHA256:y' }, ['m1']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TG_ERR_CLUSTER_KEYS' });
    expect((err as Error).message).toMatch(/host key SHA256:x here, SHA256:h in the cluster; node key SHA256:y here, SHA256:n in the cluster/);
    expect((err as Error).message).not.toContain('\n');
    // A node with a newer master key (the recorded one among its retired keys) moves the record; the old key is then refused.
    await checkClusterKeys(s.state, { ...keys, masterKey: 'm2' }, ['m2', 'm1']);
    await expect(checkClusterKeys(s.state, keys, ['m1'])).rejects.toMatchObject({ code: 'TG_ERR_CLUSTER_KEYS' });
  });

  it('creates the node key once, private, and reads it back the same', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-nodekey-'));
    try {
      const k = loadNodeKey(dir);
      expect(statSync(path.join(dir, 'node_ed25519')).mode & 0o777).toBe(0o600);
      expect(loadNodeKey(dir)).toEqual(k);
      expect(k.publicLine).toMatch(/^ssh-ed25519 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
