import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { totpCode } from '../../src/auth/totp.js';

const isRoot = process.getuid?.() === 0;
const FAKE_SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/fake-tmux-server.py');

/**
 * Session starts take turns (sessions.startsAtOnce), attacked from a real shell: a user whose
 * own "tmux server" answers the liveness check and then never lets the session's client draw
 * holds a turn for startTurnMax at most; the next user's login goes on after it.
 */
describe.skipIf(!isRoot)('session starts in turn', () => {
  const t = new TestGateway({ sessions: { startsAtOnce: 1, startTurnMax: '5s' }, metrics: { enabled: true, port: 0 } });
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice', 'ops');
    bob = await t.user('bob', 'ops');
  });
  afterAll(async () => {
    spawnSync('pkill', ['-f', FAKE_SERVER]);
    await t.stop();
  });

  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${t.gw.metricsPort}/metrics`)).text();
    return Number(new RegExp(`^tmuxgate_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  };
  /** A valid code of the next step without moving the gateway's clock (which would end turns). */
  const nextCode = (u: TestUser) => totpCode(u.secret, t.clock.now() + 30_000);

  it("a start that never draws holds its turn for startTurnMax at most; the next user's login goes on", async () => {
    const a = await t.login(alice);
    // Alice puts a program on her socket that looks alive to a liveness check and holds every attach.
    await t.run(
      a,
      `sock=\${TMUX%%,*}; (python3 ${FAKE_SERVER} "$sock" /bin/true --hang-attach > ~/fake.out 2>&1 &); until grep -q LISTENING ~/fake.out; do sleep 0.05; done; echo FAKE-UP-$((4+4))`,
      'FAKE-UP-8',
    );
    const hung = t.ssh(alice, 'alice');
    await hung.waitFor('Verification code:');
    hung.write(nextCode(alice) + '\r');
    await waitUntil(async () => (await metric('session_starts_running')) === 1, "alice's start holds the only turn");
    // Bob arrives while it hangs: authenticated, his start waits in line (his client sees no shell).
    const b = t.ssh(bob, 'bob');
    await b.waitFor('Verification code:');
    b.write(nextCode(bob) + '\r');
    await waitUntil(async () => (await metric('session_starts_waiting')) === 1, "bob's start waits its turn");
    expect(b.out).not.toContain('[bob+');
    expect(await metric('session_start_turns_timed_out_total')).toBe(0);
    // startTurnMax later, alice's turn is over and bob has his shell; alice's client still shows nothing.
    t.clock.advance(5000);
    await b.waitFor('[bob+');
    await t.run(b, 'echo BOB-$((40+2))', 'BOB-42');
    expect(await metric('session_start_turns_timed_out_total')).toBe(1);
    expect(await metric('session_starts_waiting')).toBe(0);
    expect(hung.out).not.toContain('[alice+');
    hung.kill();
    spawnSync('pkill', ['-f', FAKE_SERVER]);
    a.kill();
    b.kill();
  });
});
