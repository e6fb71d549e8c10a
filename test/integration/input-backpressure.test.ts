import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, pidsOf as pids, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';

const isRoot = process.getuid?.() === 0;

/**
 * What the user types goes to the pty of the session's tmux client, and that client is the user's
 * to command: their server can make it exec a program that never reads its terminal (or they stop
 * it: it runs as their own account). Attacked from a real shell: alice turns her client into such
 * a program and then pastes. The gateway must stop taking her input (the SSH channel's window
 * holds the rest at her client) rather than queue it in its own memory and retry the full pty in a
 * loop on the event loop every other session shares.
 */
describe.skipIf(!isRoot)('input to a pty that is not read', () => {
  const t = new TestGateway();
  let alice: TestUser;
  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice', 'ops');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('holds the sender back instead of spinning on the full pty', async () => {
    const marker = 'sleep 7272';
    const a = await t.login(alice);
    // The session's own client becomes a program that reads nothing, on a raw terminal.
    a.write(`tmux detach-client -E "stty raw -echo; exec ${marker}"\r`);
    await waitUntil(() => pids(marker).length === 1, "alice's client runs the program that reads nothing");
    // A paste larger than any pty buffer, smaller than the SSH window (so her ssh sends it all).
    a.write('x'.repeat(1024 * 1024));
    const [shell] = [...t.gw.live.all()];
    await waitUntil(() => shell!.shell.waitingForPty, 'the paste met the full pty');
    // The gateway is idle while the pty stays full (it was ~60% busy, retrying the write each turn of the loop).
    const from = performance.eventLoopUtilization();
    await waitUntil(() => performance.eventLoopUtilization(from).idle + performance.eventLoopUtilization(from).active > 1000, 'a second of the loop', 5000, 50);
    expect(performance.eventLoopUtilization(from).utilization).toBeLessThan(0.25);
    a.kill(); // her client goes while its input is held: the session still hears the close
    await waitUntil(() => t.gw.live.size === 0, 'the session ended');
  }, 30_000);

  it('delivers all of a held paste, in order, once the program reads', async () => {
    const size = 3 * 1024 * 1024; // more than the SSH window: her ssh waits on the gateway too
    const a = await t.login(alice);
    // A program that reads nothing for a moment, then reads every byte: the last one must be the
    // final "Z" (her shell expands the marker, so the typed command does not already show it).
    a.write(`tmux detach-client -E "stty raw -echo; sleep 1; head -c ${size + 1} | tail -c 1 | sed s/Z/$((6*7))-IN-ORDER/; exec sleep 7373"\r`);
    await waitUntil(() => pids('sleep 1').length > 0, "alice's client runs the slow reader");
    a.write('y'.repeat(size) + 'Z');
    await waitUntil(() => t.gw.live.all().some((s) => s.shell.waitingForPty), 'the paste held while the program sleeps');
    await a.waitFor('42-IN-ORDER', 20_000);
    expect(t.gw.live.all().some((s) => s.shell.waitingForPty)).toBe(false);
    a.kill();
    await waitUntil(() => t.gw.live.size === 0, 'the session ended');
  }, 40_000);
});
