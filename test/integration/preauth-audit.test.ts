import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { ownKey, probe } from '../helpers/stranger.js';
import { waitUntil } from '../helpers/poll.js';

/** Issue 11, finding 3: a flood of unauthenticated probes cannot fill the audit log. */
describe('pre-authentication audit is aggregated; authenticated events are written one by one', () => {
  const t = new TestGateway({
    auth: { addressLockout: { maxFailures: 1000 }, prefixLockout: { maxFailures: 1000 }, preAuthAudit: { interval: '10s', maxRowsPerSecond: 0.5 } },
    ssh: { maxAuthTries: 20, maxStartups: 100, maxStartupsPerPrefix: 100 }, // no early drop: every probe gets its 10 tries
  });
  let alice: TestUser;
  const rows = () => t.sql().prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM audit_events').get() as { n: number; bytes: number };

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    t.clock.advance(10_000); // flush whatever start-up produced
    await new Promise((r) => setImmediate(r));
  });
  afterAll(() => t.stop());

  it('400 unknown-user probes from 20 addresses write at most 5 rows, while a login, a wrong code and a session are each written', async () => {
    const before = rows();
    const key = ownKey();
    const code = t.code(alice); // moves the fake clock now, not in the middle of the flood
    // ssh2's server drops a connection whose login name changes, so one name per connection,
    // as scanners do: 20 addresses x 2 connections x 10 attempts.
    const flood = Promise.all(
      Array.from({ length: 40 }, (_, c) => probe(t.port, `127.0.10.${(c % 20) + 1}`, Array(10).fill(c === 0 ? 'ev\x1b[31mil' : `probe${c}`), key)),
    );
    // The real user, during the flood: one wrong code after her key, then a session.
    const d = t.ssh(alice, 'alice', ['-b', '127.0.0.2']);
    await d.waitFor('Verification code:');
    d.write('000000\r');
    await d.waitFor(/Verification code:[\s\S]*Verification code:/);
    d.write(code + '\r');
    await d.waitFor('[alice+');
    await t.run(d, 'echo IN-$((40+2))', 'IN-42');
    d.write('exit\r');
    await d.waitExit();
    await flood;
    await waitUntil(async () => (await t.audit('session.end')).length === 1, 'session end');

    const authed = rows();
    t.clock.advance(10_000); // one summary interval
    await new Promise((r) => setImmediate(r)); // the summaries' appends run as queued microtasks
    const after = rows();
    const summaries = await t.audit('preauth.summary');
    expect(after.n - authed.n).toBe(summaries.length);
    expect(summaries.length).toBeLessThanOrEqual(5); // 0.5 rows/s x 10 s
    expect(summaries.reduce((a, e) => a + Number(e.data.attempts), 0)).toBeGreaterThanOrEqual(400);
    expect(summaries.reduce((a, e) => a + Number(e.data.addresses), 0)).toBe(20);
    const star = summaries.find((e) => e.data.addr === '*');
    expect(star?.data.addresses).toBe(16);
    expect(summaries.flatMap((e) => e.data.names as string[])).toContain('ev\\x{1b}[31mil');
    // The whole flood, plus every authenticated event, in a few kilobytes.
    expect(after.n - before.n).toBeLessThan(15);
    expect(after.bytes - before.bytes).toBeLessThan(8 * 1024);

    // Every authenticated event is its own row.
    const fails = (await t.audit('auth.failure')).filter((e) => e.data.user === 'alice');
    expect(fails.map((e) => e.data.reason)).toEqual(['totp-wrong']);
    expect((await t.audit('auth.success')).filter((e) => e.data.user === 'alice')).toHaveLength(1);
    expect(await t.audit('session.start')).toHaveLength(1);
    expect(await t.audit('session.end')).toHaveLength(1);
  });

  it('a second interval with the flood over writes nothing', async () => {
    const n = rows().n;
    t.clock.advance(10_000);
    await new Promise((r) => setImmediate(r)); // what the flush would append is on disk by now
    expect(rows().n).toBe(n);
  });

  it('closing the gateway writes the summaries still pending, before gateway.stop', async () => {
    await probe(t.port, '127.0.11.1', ['late1', 'late1'], ownKey());
    await t.gw.close('test');
    const tail = (await t.audit()).slice(-2);
    expect(tail.map((e) => e.type)).toEqual(['preauth.summary', 'gateway.stop']);
    expect(tail[0]!.data).toMatchObject({ addr: '127.0.11.1', attempts: 2, names: ['late1'] });
  });
});
