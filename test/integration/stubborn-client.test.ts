import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, pidsOf as pids, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';

const isRoot = process.getuid?.() === 0;

/**
 * The gateway's tmux client is the user's to command: their tmux server can make it exec any
 * program (`detach-client -E`). Attacked from a real shell: alice turns her session's client into
 * a program that ignores SIGHUP, then leaves. Her session ends and the client is told to go; it
 * does not, and is killed outright (early-client.ts withKillGrace) instead of running on in a pty
 * the gateway holds, counted as one of its own clients of her tmux server.
 */
describe.skipIf(!isRoot)('a tmux client that ignores being told to go', () => {
  const t = new TestGateway();
  let alice: TestUser;
  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice', 'ops');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('is killed a few seconds after its session ends', async () => {
    const marker = 'sleep 6161';
    const a = await t.login(alice);
    // The session's own client becomes `sleep`, with SIGHUP ignored (inherited through exec).
    a.write(`tmux detach-client -E "trap '' HUP; exec ${marker}"\r`);
    await waitUntil(() => pids(marker).length === 1, "alice's client runs the stubborn program");
    const [pid] = pids(marker);
    a.kill(); // alice leaves: the gateway ends her session and sends the client SIGHUP
    await waitUntil(() => t.gw.live.size === 0, 'the session ended');
    expect(pids(marker)).toEqual([pid]); // still there: it ignored the hang-up
    await waitUntil(() => pids(marker).length === 0, 'the stubborn client is killed', 15_000);
  }, 30_000);
});
