import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { cliAsync } from '../helpers/cli.js';
import { openRecording } from '../../src/recording/access.js';

describe('search finds every line the recorded stream drew', () => {
  const t = new TestGateway();
  let alice: TestUser;

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
  });
  afterAll(() => t.stop());

  it('recall is 100% on a fast seq through tmux (the issue: 38 of 1,166 found)', async () => {
    const d = await t.login(alice);
    t.clock.advance(1000);
    await t.run(d, 'seq 1 20000 | sed s/^/PATIENT-/; echo SEQ-$((1+1))-DONE', 'SEQ-2-DONE', 30_000);
    const sessionId = String((await t.audit('session.start')).at(-1)!.data.sessionId);
    t.clock.advance(1000);
    d.kill();
    await waitUntil(async () => (await t.admin.recordings.get(sessionId))?.state === 'sealed', 'recording sealed');

    // Expected, independently of any terminal emulator: every PATIENT-n written whole into the
    // client's stream (digits followed by something that is not a digit).
    const stream = Buffer.concat((await openRecording(t.admin, sessionId)).frames.filter((f) => f.kind === 'output').map((f) => f.data)).toString('latin1');
    const expected = new Set([...stream.matchAll(/PATIENT-(\d+)(?=[^\d])/g)].map((m) => m[1]!));
    expect(expected.size).toBeGreaterThan(100); // tmux skips redraws, but many lines reach the client

    const r = await cliAsync(['search', 'PATIENT-', '--json', ...t.cliConfig()]);
    expect(r.status).toBe(0);
    const hits = JSON.parse(r.stdout) as { session: string; line: string }[];
    const found = new Set(
      hits.filter((h) => h.session === sessionId && !h.line.includes('seq 1 20000')).flatMap((h) => [...h.line.matchAll(/PATIENT-(\d+)/g)].map((m) => m[1]!)),
    );
    const missed = [...expected].filter((n) => !found.has(n));
    expect(missed.slice(0, 20), `${missed.length} of ${expected.size} lines missed`).toEqual([]);
    // And nothing that was never drawn.
    // Nothing garbled: each hit is one line as seq printed it, or the part of it drawn before the
    // cursor moved on (tmux may draw "PATIENT-" and the digits later). (A few hits are lines the
    // stream drew in two pieces, "PATIENT" then a scroll then "-9285": on screen, but not
    // contiguous in the stream, so the expected set above cannot contain them.)
    const lines = hits.filter((h) => h.session === sessionId && !h.line.includes('seq 1 20000')).map((h) => h.line);
    const garbled = (l: string) => !/^PATIENT-\d*$/.test(l) || (l.length > 8 && (Number(l.slice(8)) < 1 || Number(l.slice(8)) > 20000));
    expect(lines.filter(garbled)).toEqual([]);
  });
});
