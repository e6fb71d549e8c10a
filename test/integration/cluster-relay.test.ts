import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestGateway, tempDir, type TestUser } from '../helpers/gateway.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/poll.js';
import { cliAsync } from '../helpers/cli.js';
import { FakeClock } from '../../src/platform/clock.js';
import { verifyStored } from '../../src/recording/access.js';
import { RecordingStream } from '../../src/recording/stream.js';
import { AUDIT_PUB_FILE } from '../../src/crypto/audit-key.js';
import type { ConfigInput } from '../../src/config/schema.js';

const isRoot = process.getuid?.() === 0;

/**
 * Two gateway nodes in this process on one real PostgreSQL, sharing keys, accounts and homes as
 * two nodes on one machine do, each with its own data and socket directories. Node liveness runs
 * on a fake clock per node: node A's never moves after it registers (its heartbeat stalls, as a
 * frozen or killed node's would), and moving node B's ages A past the bound without waiting.
 */
describe.skipIf(!isRoot)('a cluster of two nodes: relayed sessions and the loss of a node', () => {
  let pg: TestPostgres;
  let shared: string;
  let a: TestGateway;
  let b: TestGateway;
  let alice: TestUser;
  let clusterA: FakeClock;
  let clusterB: FakeClock;
  // Long enough that `nodes list`, judging by the wall clock, sees both nodes alive during the test.
  const deadAfter = 60_000;

  const node = (id: string, clusterClock: FakeClock, over: ConfigInput = {}, enforce: { enforceEveryMs?: number } = {}): TestGateway =>
    new TestGateway(
      {
        store: { kind: 'postgres', url: pg.url, pool: 4 },
        keysDir: path.join(shared, 'keys'),
        isolation: { accountPrefix: prefix, homeBase: path.join(shared, 'homes') },
        cluster: { nodeId: id, link: { listen: '127.0.0.1:0' }, heartbeat: '1s', deadAfter: `${deadAfter}ms` },
        ...over,
      },
      { deps: { clusterClock, ...enforce } },
    );
  const prefix = `tc${Math.random()
    .toString(36)
    .slice(2, 6)
    .replace(/[^a-z0-9]/g, 'x')}`;

  /** TOTP steps are spent cluster-wide: each node's policy clock starts where the other's is. */
  const inStep = () => {
    const now = Math.max(a.clock.now(), b.clock.now());
    a.clock.set(now);
    b.clock.set(now);
  };
  const live = async (g: TestGateway) => (await g.admin.sessions.list({ live: true })).filter((s) => s.user_name === 'alice');
  const pairOwner = async () => {
    const u = (await a.admin.users.find('alice'))!;
    return a.admin.pairServers.owner(u.defaultRoleId!, u.id);
  };

  beforeAll(async () => {
    pg = await startPostgres({ database: 'cluster' });
    shared = tempDir('tg-cl-');
    chmodSync(shared, 0o711); // pair accounts reach their homes under it
    clusterA = new FakeClock(Date.now());
    clusterB = new FakeClock(clusterA.now());
    // Node A's enforcer never ticks here, as a frozen node's would not: a kill of its session stays
    // pending until B declares A lost.
    a = node('node-a', clusterA, { metrics: { enabled: true, port: 0 } }, { enforceEveryMs: 3_600_000 });
    b = node('node-b', clusterB);
    await a.start();
    await b.start();
    alice = await a.user('alice', 'ops');
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await pg?.stop();
    rmSync(shared, { recursive: true, force: true });
  });

  it("a node whose keys are not the cluster's refuses to start, in one line", async () => {
    const c = node('node-c', new FakeClock(clusterA.now()), { keysDir: 'own-keys' });
    try {
      const err = await c.start().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TG_ERR_CLUSTER_KEYS' });
      expect((err as Error).message).toMatch(/host key SHA256:\S+ here, SHA256:\S+ in the cluster/);
      expect((err as Error).message).not.toContain('\n');
    } finally {
      await c.stop();
    }
  });

  it('a login on node B reaches the tmux session that lives on node A: relayed, recorded on B, and the relay ends cleanly', async () => {
    inStep();
    const onA = await a.login(alice);
    await a.run(onA, 'echo RELAY-MARK-$((40+2))', 'RELAY-MARK-42');
    onA.kill(); // the client goes; the tmux session stays on A
    await waitUntil(async () => (await live(a)).length === 0, 'the session on A to close');
    expect(await pairOwner()).toBe('node-a');

    inStep();
    const onB = await b.login(alice);
    expect(onB.text).toContain('RELAY-MARK-42'); // A's screen, through the link
    const [relayed] = await live(b);
    expect(relayed).toMatchObject({ node_id: 'node-b', server_node_id: 'node-a' });
    await b.run(onB, 'echo VIA-B-$((6*7))', 'VIA-B-42');

    const nodes = JSON.parse((await cliAsync(['nodes', 'list', '--json', ...b.cliConfig()])).stdout) as {
      id: string;
      state: string;
      liveSessions: number;
      link: string;
    }[];
    expect(nodes.map((n) => [n.id, n.state, n.liveSessions])).toEqual([
      ['node-a', 'alive', 0],
      ['node-b', 'alive', 1],
    ]);
    expect(nodes.find((n) => n.id === 'node-a')!.link).toBe(a.gw.linkAddress);
    const listed = JSON.parse((await cliAsync(['sessions', 'list', '--live', '--json', ...a.cliConfig()])).stdout) as {
      id: string;
      node: string;
      serverNode: string | null;
    }[];
    expect(listed.filter((r) => r.id === relayed!.id)).toEqual([expect.objectContaining({ node: 'node-b', serverNode: 'node-a' })]);

    // The shell ends through the relay: A's tmux server goes, B's session closes, A gives up the pair.
    onB.write('exit\r');
    await onB.waitExit();
    await waitUntil(async () => (await b.admin.sessions.get(relayed!.id))?.state === 'closed', 'the relayed session to close on B');
    await waitUntil(async () => (await pairOwner()) === null, 'node A to release the pair');
    await waitUntil(async () => (await b.admin.recordings.get(relayed!.id))?.state === 'sealed', 'the recording on B to be sealed');

    // The recording is B's: it verifies there, and node A says where it is rather than "missing".
    const pem = readFileSync(path.join(shared, 'keys', AUDIT_PUB_FILE), 'utf8');
    expect(await verifyStored(b.admin, relayed!.id, pem, true)).toMatchObject({ status: 'intact', problem: null });
    const elsewhere = await RecordingStream.open(a.admin, relayed!.id).catch((e: unknown) => e);
    expect(elsewhere).toMatchObject({ code: 'TG_ERR_RECORDING_ON_OTHER_NODE' });
    expect((elsewhere as Error).message).toMatch(/on the disk of node node-b/);
  });

  it("a user's shell on a node cannot reach the link's handshake: her connections are closed at accept, and relays go on", async () => {
    inStep();
    const onA = await a.login(alice);
    await a.run(onA, 'echo HOLD-$((40+2))', 'HOLD-42');
    expect(await pairOwner()).toBe('node-a');
    // From her shell: a port below 1024 is not hers to bind, and 300 connections from her own
    // ports to node A's link, each waiting to be closed (held for 10 s each were the port not checked).
    const script = path.join(shared, 'flood.cjs');
    writeFileSync(
      script,
      `const net = require('net'); const [h, p] = [process.argv[2], +process.argv[3]];
const low = net.connect({ host: h, port: p, localPort: 700 });
low.on('error', (e) => { console.log('LOW-' + e.code); flood(); }).on('connect', () => { console.log('LOW-BOUND'); flood(); });
function flood() { let closed = 0; for (let i = 0; i < 300; i++) net.connect(p, h).on('error', () => {}).on('close', () => ++closed === 300 && console.log('ALL-' + closed + '-CLOSED')).write('SSH-2.0-x\\r\\n'); }
`,
      { mode: 0o644 },
    );
    const [host, port] = a.gw.linkAddress!.split(':');
    const out = await a.run(onA, `node ${script} ${host} ${port}`, /ALL-300-CLOSED/, 8_000);
    expect(out).toContain('LOW-EACCES');
    const metrics = await (await fetch(`http://127.0.0.1:${a.gw.metricsPort}/metrics`)).text();
    expect(Number(/^tmuxgate_link_connections_refused_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(300);
    expect(metrics).toMatch(/^tmuxgate_link_connections_unauthenticated 0$/m);
    onA.kill();
    await waitUntil(async () => (await live(a)).length === 0, 'the session on A to close');

    // Node B still reaches her session on A over the link.
    inStep();
    const onB = await b.login(alice);
    expect(onB.text).toContain('HOLD-42');
    onB.kill();
    await waitUntil(async () => (await live(b)).length === 0, 'the relayed session on B to close');
  });

  it('when node A goes silent, node B declares it lost, marks its session interrupted, and starts the next login locally', async () => {
    inStep();
    const onA = await a.login(alice);
    await a.run(onA, 'echo ON-A-$((7*6))', 'ON-A-42');
    const [held] = await live(a);
    expect(held).toMatchObject({ node_id: 'node-a', server_node_id: null });
    expect(await pairOwner()).toBe('node-a');

    // An admin kill that A never carries out: resolved with A's loss, not left pending.
    expect((await cliAsync(['sessions', 'kill', held!.id, '--reason', 'frozen node', ...b.cliConfig()])).status).toBe(0);

    // A never beats again (its liveness clock stands still); B's moves past the bound.
    clusterB.advance(deadAfter + 1_000);
    await waitUntil(async () => (await a.admin.sessions.get(held!.id))?.state === 'interrupted', "B to mark A's session interrupted");
    expect(await a.admin.sessions.get(held!.id)).toMatchObject({ end_reason: 'node lost' });
    expect((await b.audit('node.lost')).map((e) => e.data)).toEqual([expect.objectContaining({ node: 'node-a', sessions: 1, pairs: 1, kills: 1 })]);
    expect(await pairOwner()).toBeNull();
    expect(await b.admin.kills.pending()).toEqual([]);
    expect(await b.admin.sql.get('SELECT outcome FROM session_kills WHERE session_id = ?', [held!.id])).toEqual({ outcome: 'node lost' });

    inStep();
    const onB = await b.login(alice);
    expect(onB.text).not.toContain('ON-A-42'); // a new tmux session on B, not A's
    const mine = (await live(b)).filter((s) => s.node_id === 'node-b');
    expect(mine).toHaveLength(1);
    expect(mine[0]!.server_node_id).toBeNull();
    expect(await pairOwner()).toBe('node-b');
    onB.kill();
    onA.kill();
  });
});
