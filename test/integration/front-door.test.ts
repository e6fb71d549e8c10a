import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { systemRandom } from '../../src/platform/random.js';
import { idleSockets } from '../helpers/stranger.js';
import { waitUntil } from '../helpers/poll.js';

/** Issue 11, finding 2: idle and slow connections cannot keep real logins out. */
describe('front door: caps per address, per network and in total, early drop, handshake timeout', () => {
  let random = 0.99; // no early drop unless a test asks for it
  const t = new TestGateway(
    { ssh: { maxStartups: '4:50:12', maxStartupsPerAddress: 3, maxStartupsPerPrefix: 6, handshakeTimeout: '10s' } },
    { deps: { random: { ...systemRandom, float: () => random } } },
  );
  let alice: TestUser;
  const held: net.Socket[] = [];
  const unauthenticated = async () => Number(/tmuxgate_connections_unauthenticated (\d+)/.exec(await t.gw.metrics.render())![1]);

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await t.stop();
  });

  it('30 idle sockets from 10 addresses in two /24s, reconnecting when dropped, do not keep a real login out', async () => {
    let flooding = true;
    const open = (addr: string): void => {
      const [s] = idleSockets(t.port, addr, 1);
      held.push(s!);
      s!.once('close', () => void (flooding && setTimeout(() => flooding && open(addr), 20)));
    };
    try {
      for (let i = 0; i < 30; i++) open(`127.0.${40 + (i % 2)}.${1 + (i % 5)}`);
      await waitUntil(async () => (await unauthenticated()) === 12, 'the total cap filled');
      await waitUntil(() => held.some((s) => s.destroyed), 'refusals seen by the flood');

      // alice, from a network with nothing pending: takes a flooder's place, logs in, and the
      // flood's reconnections cannot take it back.
      const d = await t.login(alice, 'alice', ['-b', '127.0.0.2']);
      d.kill();
    } finally {
      flooding = false;
    }
    expect(await unauthenticated()).toBeLessThanOrEqual(12);
    const reasons = await t.preauthReasons();
    expect(reasons['refused:evicted for a connection from a less busy network']).toBeGreaterThanOrEqual(1);
    expect(reasons['refused:too many unauthenticated connections from this network']).toBeGreaterThan(0);
    for (const s of held) s.destroy();
    await waitUntil(async () => (await unauthenticated()) === 0, 'flood gone');
  });

  it('closes sockets that do not finish the key exchange within handshakeTimeout, long before the login grace', async () => {
    const timedOut = async () => (await t.preauthReasons())['refused:handshake timeout expired'] ?? 0;
    const before = await timedOut(); // flood sockets of the test above timed out while alice typed her code
    const idle = idleSockets(t.port, '127.0.60.1', 2);
    const slow = idleSockets(t.port, '127.0.60.2', 1)[0]!;
    slow.on('connect', () => slow.write('SSH-2.0-slowloris\r\n'));
    held.push(...idle, slow);
    await waitUntil(async () => (await unauthenticated()) === 3, 'three pending');
    t.clock.advance(9_999);
    expect([...idle, slow].some((s) => s.destroyed)).toBe(false);
    t.clock.advance(1);
    await waitUntil(async () => [...idle, slow].every((s) => s.destroyed) && (await unauthenticated()) === 0, 'handshake timeouts');
    expect((await timedOut()) - before).toBe(3);
  });

  it('drops at random between start and full, but never a network with nothing pending', async () => {
    random = 0; // every early-drop draw drops
    try {
      const first = [...idleSockets(t.port, '127.0.50.1', 2), ...idleSockets(t.port, '127.0.51.1', 2)];
      held.push(...first);
      await waitUntil(async () => (await unauthenticated()) === 4, 'start reached');
      const sameNetwork = idleSockets(t.port, '127.0.50.2', 1)[0]!;
      const freshNetwork = idleSockets(t.port, '127.0.52.1', 1)[0]!;
      held.push(sameNetwork, freshNetwork);
      await waitUntil(() => sameNetwork.destroyed, 'early drop');
      await waitUntil(async () => (await unauthenticated()) === 5, 'fresh network admitted');
      expect(freshNetwork.destroyed).toBe(false);
      expect((await t.preauthReasons())['refused:random early drop'] ?? 0).toBe(1);
      for (const s of held) s.destroy();
      await waitUntil(async () => (await unauthenticated()) === 0, 'sockets gone');
    } finally {
      random = 0.99;
    }
  });
});
