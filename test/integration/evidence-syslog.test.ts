import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addRole } from '../../src/admin/operations.js';
import type { SyslogConfigInput } from '../../src/evidence/config.js';
import { parseAuditMessage } from '../../src/evidence/syslog-parse.js';
import { parseAnchorMessage } from '../../src/evidence/syslog-anchor.js';
import { anchorVerifies } from '../../src/evidence/anchors.js';
import type { AuditRow } from '../../src/store/audit-events.js';
import { chainVerifies } from '../helpers/audit-rows.js';
import { cliAsync } from '../helpers/cli.js';
import { TestGateway } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { TestRsyslog } from '../helpers/rsyslog.js';
import { issueCert, makeCa, type CertFiles } from '../helpers/tls-certs.js';

const isRoot = process.getuid?.() === 0;

let dir = '';
let ca: CertFiles;
let server: CertFiles;
let client: CertFiles;
beforeAll(() => {
  dir = mkdtempSync('/tmp/tg-evidence-');
  ca = makeCa(dir, 'ca');
  server = issueCert(dir, ca, 'collector', { usage: 'server', ips: ['127.0.0.1'] });
  client = issueCert(dir, ca, 'gateway', { usage: 'client' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** rsyslog on loopback that takes only clients with a certificate from our CA (mutual TLS). */
async function collector(name: string): Promise<TestRsyslog> {
  const d = path.join(dir, name);
  mkdirSync(d);
  const rs = new TestRsyslog({ dir: d, caFile: ca.cert, server, authMode: 'x509/certvalid' });
  cleanups.push(() => rs.stop());
  await rs.start();
  return rs;
}

async function gateway(rs: TestRsyslog, syslog: Partial<SyslogConfigInput> = {}): Promise<TestGateway> {
  const tg = new TestGateway({
    evidence: { syslog: { host: '127.0.0.1', port: rs.port, caFile: ca.cert, certFile: client.cert, keyFile: client.key, hostname: 'gw-test', ...syslog } },
  });
  cleanups.push(() => tg.stop());
  await tg.start();
  return tg;
}

/** The collector's copy, read back, each id once (a resend after a reconnect repeats ids); the anchors aside. */
function collected(rs: TestRsyslog): { rows: AuditRow[]; ids: number[] } {
  const all = rs
    .rawLines()
    .filter((l) => !parseAnchorMessage(l))
    .map((l) => {
      const m = parseAuditMessage(l);
      if (!m) throw new Error(`not one of our messages: ${l.slice(0, 200)}`);
      return m.row;
    });
  const seen = new Set<number>();
  return { rows: all.filter((r) => !seen.has(r.id) && seen.add(r.id)), ids: all.map((r) => r.id) };
}

async function localRows(tg: TestGateway): Promise<AuditRow[]> {
  const rows: AuditRow[] = [];
  for await (const r of tg.admin.auditEvents.all()) rows.push(r);
  return rows;
}

/** Waits until the collector holds every local row, then returns both. */
async function caughtUp(tg: TestGateway, rs: TestRsyslog): Promise<{ local: AuditRow[]; remote: AuditRow[]; ids: number[] }> {
  return waitUntil(
    async () => {
      const local = await localRows(tg);
      const { rows, ids } = collected(rs);
      return rows.length >= local.length ? { local, remote: rows, ids } : null;
    },
    'the collector to hold every audit row',
    30_000,
    100,
  );
}

const metric = async (tg: TestGateway, name: string) => Number(new RegExp(`^tmuxgate_${name} (\\S+)$`, 'm').exec(await tg.gw.metrics.render())?.[1]);

describe.skipIf(!isRoot)('a live gateway ships its audit log to rsyslog over mutual TLS', () => {
  it('logins arrive in order with their ids and hashes; an outage mid-session is caught up in order, nothing missing', async () => {
    const rs = await collector('buffer');
    const tg = await gateway(rs);
    const alice = await tg.user('alice');
    const d = await tg.login(alice);
    const sessionId = tg.gw.live.all()[0]!.id;

    let got = await caughtUp(tg, rs);
    expect(got.remote.slice(0, got.local.length)).toEqual(got.local);
    const authAt = got.remote.findIndex((r) => r.type === 'auth.success' && JSON.parse(r.data).user === 'alice');
    const startAt = got.remote.findIndex((r) => r.type === 'session.start' && JSON.parse(r.data).sessionId === sessionId);
    expect(authAt).toBeGreaterThan(0);
    expect(startAt).toBeGreaterThan(authAt);
    await waitUntil(async () => (await metric(tg, 'evidence_syslog_lag_events')) === 0, 'the lag to reach 0');
    expect(await metric(tg, 'evidence_syslog_connected')).toBe(1);
    expect(await metric(tg, 'evidence_syslog_shipped_events_total')).toBeGreaterThanOrEqual(got.local.length);
    // The signed audit checkpoint went too (an anchor message of its own), and verifies with the public key.
    const anchors = rs.rawLines().flatMap((l) => parseAnchorMessage(l) ?? []);
    expect(anchors.length).toBeGreaterThan(0);
    const pem = (await cliAsync(['audit', 'pubkey', ...tg.cliConfig()])).stdout;
    expect(anchors.every((a) => a.kind === 'audit' && anchorVerifies(a, pem))).toBe(true);

    // The collector goes away mid-session; the gateway keeps serving (buffer) and keeps writing.
    await rs.stop();
    const before = got.local.length;
    await waitUntil(async () => (await metric(tg, 'evidence_syslog_connected')) === 0, 'the gateway to see the collector gone');
    const bob = await tg.user('bob');
    const d2 = await tg.login(bob);
    for (const name of ['extra1', 'extra2']) await addRole(tg.admin, { name });
    await tg.run(d, 'echo STILL-$((40+2))', 'STILL-42');
    await waitUntil(async () => (await metric(tg, 'evidence_syslog_lag_events')) >= (await localRows(tg)).length - before, 'the lag to show the backlog');
    // The compliance report sees it from the store: the lease holder cannot reach the collector.
    await waitUntil(
      () => (tg.sql().prepare('SELECT unreachable_since AS u FROM evidence_shipping').get() as { u: number | null }).u !== null,
      'the outage to be recorded with the lease',
      20_000,
    );
    const report = await cliAsync(['compliance', 'report', '--json', ...tg.cliConfig()]);
    const check = (JSON.parse(report.stdout) as { checks: { id: string; pass: boolean; evidence: string }[] }).checks.find((c) => c.id === 'audit-offsite')!;
    expect(check.pass).toBe(false);
    expect(check.evidence).toMatch(/syslog over TLS to 127\.0\.0\.1:\d+ \(onFailure buffer\): \d+ of \d+ audit rows confirmed at the collector, lag [1-9]/);
    expect(check.evidence).toContain('collector UNREACHABLE since');

    await rs.start();
    got = await caughtUp(tg, rs);
    expect(got.local.length).toBeGreaterThan(before + 4);
    expect(got.remote.slice(0, got.local.length)).toEqual(got.local); // every row, each id and hash, in order
    expect(chainVerifies(got.remote)).toBe(true);
    // Resends only restart a run (at a reconnect); within a run, ids are consecutive.
    for (let i = 1; i < got.ids.length; i++) if (got.ids[i]! > got.ids[i - 1]!) expect(got.ids[i]).toBe(got.ids[i - 1]! + 1);
    const types = got.remote.slice(before).map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['auth.success', 'session.start', 'admin.change']));
    d2.kill();
  }, 120_000);

  it('required: with the collector gone and the lag over its bound, live sessions end and new ones are refused, with a reason', async () => {
    const rs = await collector('required');
    const tg = await gateway(rs, { onFailure: 'required', maxLagEvents: 5 });
    const alice = await tg.user('alice');
    await caughtUp(tg, rs);
    await waitUntil(async () => (await metric(tg, 'evidence_syslog_lag_events')) === 0, 'the enrolment rows to be confirmed');
    const d = await tg.login(alice);

    await rs.stop();
    for (let i = 1; i <= 6; i++) await addRole(tg.admin, { name: `r${i}` });
    await d.waitFor('audit log shipping is behind; sessions end until the collector is reachable', 20_000);

    const again = tg.ssh(alice, 'alice');
    await again.waitFor('Verification code:');
    again.write(tg.code(alice) + '\r');
    await again.waitFor('tmuxgate: audit log shipping is behind; new sessions are refused until the collector is reachable');
    expect(await again.waitExit()).toBe(1);

    const ends = await tg.audit('session.end');
    expect(ends.map((e) => e.data.reason)).toEqual(['evidence-lag']);
    const denied = (await tg.audit('request.denied')).filter((e) => e.data.request === 'shell');
    expect(denied).toHaveLength(1);
    expect(denied[0]!.data).toMatchObject({ user: 'alice', request: 'shell' });
    expect(denied[0]!.data.detail).toMatch(/^audit log shipping: lag \d+ > evidence\.syslog\.maxLagEvents 5 \(onFailure: required; /);
  }, 120_000);
});
