import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/config/load.js';
import { FileCursor } from '../../src/evidence/file-cursor.js';
import { formatAuditRow, frame, SD_ID } from '../../src/evidence/syslog-format.js';
import { parseAuditMessage } from '../../src/evidence/syslog-parse.js';
import { SyslogShipper, type SyslogShipperOptions } from '../../src/evidence/syslog-tls.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { AuditRow } from '../../src/store/audit-events.js';
import { chainVerifies, MemAuditSource } from '../helpers/audit-rows.js';
import { waitUntil } from '../helpers/poll.js';
import { TestRsyslog } from '../helpers/rsyslog.js';
import { issueCert, makeCa, type CertFiles } from '../helpers/tls-certs.js';

let dir = '';
let ca: CertFiles;
let server: CertFiles;
let client: CertFiles;
let strangerServer: CertFiles;
beforeAll(() => {
  dir = mkdtempSync('/tmp/tg-rsyslog-');
  ca = makeCa(dir, 'ca');
  server = issueCert(dir, ca, 'collector', { usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
  client = issueCert(dir, ca, 'gateway', { usage: 'client' });
  strangerServer = issueCert(dir, makeCa(dir, 'other-ca'), 'stranger', { usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let n = 0;
async function startRsyslog(authMode: 'anon' | 'x509/certvalid', cert = server): Promise<TestRsyslog> {
  const d = path.join(dir, `rs${++n}`);
  mkdirSync(d);
  const rs = new TestRsyslog({ dir: d, caFile: ca.cert, server: cert, authMode });
  cleanups.push(() => rs.stop());
  await rs.start();
  return rs;
}

function startShipper(rs: TestRsyslog, opts: Partial<SyslogShipperOptions> = {}) {
  const clock = new FakeClock();
  const source = new MemAuditSource();
  const cursor = new FileCursor(mkdtempSync(path.join(dir, 'cursor-')));
  const shipper = new SyslogShipper(
    {
      host: '127.0.0.1',
      port: rs.port,
      caFile: ca.cert,
      format: { hostname: 'gw-test' },
      maxLagEvents: 100,
      backoff: { initialMs: 200, maxMs: 2000 },
      // Real handshakes and writes under a fast-moving fake clock: no spurious timeouts.
      connectTimeoutMs: 3_600_000,
      writeTimeoutMs: 3_600_000,
      ...opts,
    },
    { source, cursor, clock },
  );
  cleanups.push(() => shipper.close(0));
  return { clock, source, cursor, shipper };
}

/** Moves the fake clock in small steps while waiting on real I/O (back-off, confirmation). */
function advanceUntil<T>(clock: FakeClock, cond: () => T, what: string, stepMs = 100): Promise<NonNullable<T>> {
  return waitUntil(
    () => {
      const v = cond();
      if (!v) clock.advance(stepMs);
      return v;
    },
    what,
    30_000,
  );
}

/** Our messages in rsyslog's raw output, read back; a line that is not one of ours fails the test. */
const shippedRows = (rs: TestRsyslog): AuditRow[] =>
  rs.rawLines().map((l) => {
    const rec = parseAuditMessage(l);
    if (!rec) throw new Error(`not one of our messages in rsyslog's output: ${JSON.stringify(l.slice(0, 200))}`);
    return rec.row;
  });

describe('audit events as RFC 5425 syslog over TLS to a real rsyslog', () => {
  it('arrive in id order, intact: rsyslog parses each as RFC 5424 and the copy verifies as a chain', async () => {
    const rs = await startRsyslog('anon');
    const { clock, source, cursor, shipper } = startShipper(rs);
    source.append('auth.failure', 'mallory', { user: 'mallory', addr: '192.0.2.7', connId: 'c1', method: 'publickey', reason: 'unknown key' });
    source.add(28);
    source.append('admin.change', 'root', { action: 'session.kill', target: 's1', detail: { reason: 'test' } });
    await shipper.start();
    await waitUntil(() => rs.rawLines().length >= 30, 'thirty messages at rsyslog');
    expect(shippedRows(rs)).toEqual(source.rows);
    expect(chainVerifies(shippedRows(rs))).toBe(true);

    const parsed = rs.parsedLines();
    expect(parsed).toHaveLength(30);
    for (const [i, p] of parsed.entries()) {
      const r = source.rows[i]!;
      expect(p).toMatchObject({ msgid: r.type, app: 'tmuxgate', host: 'gw-test', procid: String(process.pid), time: new Date(r.ts).toISOString() });
      expect(p.sd.startsWith(`[${SD_ID} id="${r.id}" prev="${r.prev_hash}" hash="${r.hash}"`)).toBe(true);
      expect(canonicalJson(JSON.parse(p.msg))).toBe(r.data);
    }
    expect(parsed.map((p) => p.pri)).toEqual(['84', ...Array(28).fill('85'), '84']);

    expect(shipper.state()).toMatchObject({ connected: true, cursor: 0, lagEvents: 30 });
    clock.advance(1000);
    expect(shipper.state()).toMatchObject({ cursor: 30, lagEvents: 0 });
    await shipper.close();
    expect(readFileSync(cursor.file, 'utf8')).toBe('30\n');
  });

  it('refuses a collector whose certificate another CA signed: nothing is sent and state() says why', async () => {
    const rs = await startRsyslog('anon', strangerServer);
    const { clock, source, shipper } = startShipper(rs);
    source.add(3);
    await shipper.start();
    await waitUntil(() => shipper.state().lastError, 'the refusal');
    clock.advance(1000);
    expect(shipper.state()).toMatchObject({ connected: false, connections: 0, cursor: 0, lagEvents: 3 });
    expect(shipper.state().lastError).toMatch(/certificate/i);
    expect(rs.rawLines()).toEqual([]);
  });

  it('mutual TLS: a collector that requires a client certificate gets nothing without one, everything with one', async () => {
    const rs = await startRsyslog('x509/certvalid');
    const bare = startShipper(rs);
    bare.source.add(2);
    await bare.shipper.start();
    await waitUntil(() => bare.shipper.state().lastError, 'the collector to refuse the bare client');
    // Whatever the handshake looked like from our side, nothing was confirmed.
    bare.clock.advance(1000);
    expect(bare.shipper.state()).toMatchObject({ connected: false, cursor: 0 });
    await bare.shipper.close(0);

    const withCert = startShipper(rs, { certFile: client.cert, keyFile: client.key });
    withCert.source.add(4);
    await withCert.shipper.start();
    await waitUntil(() => rs.rawLines().length >= 4, 'four messages over mutual TLS');
    expect(shippedRows(rs)).toEqual(withCert.source.rows);
    withCert.clock.advance(1000);
    expect(withCert.shipper.state().cursor).toBe(4);
  });

  it('catches up after rsyslog dies mid-stream and comes back on the same port: every id, in order', async () => {
    const rs = await startRsyslog('anon');
    const { clock, source, shipper } = startShipper(rs);
    source.add(20);
    await shipper.start();
    await waitUntil(() => rs.rawLines().length >= 20, 'the first twenty');
    clock.advance(1000);
    expect(shipper.state().cursor).toBe(20);

    // Mid-stream, the worst case: rows 21-25 are written (the kernel took them) while rsyslogd is
    // frozen, then it dies without reading them. A shipper that trusted the write would lose them.
    rs.freeze();
    source.add(5);
    shipper.notify();
    await waitUntil(() => shipper.state().sent === 25, 'rows 21-25 written');
    await rs.stop('SIGKILL');
    source.add(15);
    shipper.notify();
    await advanceUntil(clock, () => !shipper.state().connected && /ECONNREFUSED/.test(shipper.state().lastError ?? ''), 'refused reconnects');
    expect(shipper.state()).toMatchObject({ cursor: 20, lagEvents: 20 });

    await rs.start();
    await advanceUntil(clock, () => new Set(shippedRows(rs).map((r) => r.id)).size === 40, 'all forty ids');
    const ids = shippedRows(rs).map((r) => r.id);
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: 40 }, (_, i) => i + 1)));
    // Runs of consecutive ids; each later run starts at or before the end of the one before
    // (a resend from the cursor, never a gap), and only a reconnect starts a run.
    const runs: number[][] = [];
    for (const id of ids) {
      const last = runs.at(-1);
      if (last && id === last.at(-1)! + 1) last.push(id);
      else runs.push([id]);
    }
    for (let i = 1; i < runs.length; i++) expect(runs[i]![0]!).toBeLessThanOrEqual(runs[i - 1]!.at(-1)! + 1);
    expect(runs.length).toBeLessThanOrEqual(shipper.state().connections);
    // Confirmed rows are never sent again: duplicates only among the unconfirmed 21-25.
    expect(ids.filter((id) => id <= 20)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(ids.slice(0, 25)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(chainVerifies([...new Map(shippedRows(rs).map((r) => [r.id, r])).values()])).toBe(true);
    await advanceUntil(clock, () => shipper.state().cursor === 40, 'the cursor at 40');
  });

  it('hostile fields cannot add a line or a message at rsyslog, and oversize data cannot be split into one', async () => {
    const rs = await startRsyslog('anon');
    // Calibration: a frame with a raw newline does show as an extra line in the raw output.
    const raw = tls.connect({ host: '127.0.0.1', port: rs.port, ca: readFileSync(ca.cert) });
    await new Promise<void>((r) => raw.once('secureConnect', () => r()));
    await new Promise<void>((r) => raw.end(frame('<85>1 - calib - - - - line1\nline2'), () => r()));
    await waitUntil(() => rs.rawLines().length === 2, 'the calibration message');
    expect(rs.rawLines()).toEqual(['<85>1 - calib - - - - line1', 'line2']);

    const { source, shipper } = startShipper(rs);
    const forged = '<85>1 2026-01-01T00:00:00.000Z gw-test tmuxgate 1 auth.success [tmuxgate@32473 id="999"] {}';
    source.append('auth.failure', 'eve\nJan  1 00:00:00 gw-test sshd[1]: Accepted publickey for root', { reason: 'x\r\ny' });
    source.append('auth.failure', `eve"] [x@1 a="b"] ${forged}`, { reason: '\\"]' });
    source.append('request.denied', 'e\0v\x1b[2J\x1b]0;pwned\x07e', { detail: '\u009b31m\x7f\u2028\u202egnp.exe' });
    source.append('session.start', 'Jörg-日本-😀', { user: 'Zoë', term: '𝔘𝔫𝔦' });
    source.append(`x y\n${'t'.repeat(300)}`, 'alice', { n: 1 });
    source.append('connection.refused', '"] 120 ' + forged, { reason: `${'A'.repeat(8100)}\n${forged.length + 1} ${forged}` });
    const before = Buffer.byteLength(formatAuditRow({ ...source.rows[0]!, id: 7, type: 'session.end', actor: 'a', data: '{"d":""}' }, { hostname: 'gw-test' }));
    source.append('session.end', 'a', { d: 'y'.repeat(8096 - before) });
    await shipper.start();
    await waitUntil(() => rs.rawLines().length >= 2 + source.rows.length, 'every hostile row');
    const lines = rs.rawLines().slice(2);
    expect(lines).toHaveLength(source.rows.length);
    const back = lines.map((l) => parseAuditMessage(l));
    expect(back.map((b) => b?.row.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const [i, b] of back.entries()) {
      if (i === 5) continue; // the oversize one: compared below
      expect(b!.row).toEqual(source.rows[i]);
      expect(b!.omitted).toEqual([]);
    }
    expect(Buffer.byteLength(lines[6]!)).toBe(8096); // exactly the limit: whole
    expect(back[5]!.omitted).toEqual(['data']);
    expect(back[5]!.row.hash).toBe(source.rows[5]!.hash);
    // rsyslog's own parser saw exactly our SD element and our MSG in each of them.
    const parsed = rs.parsedLines().slice(1);
    expect(parsed).toHaveLength(source.rows.length);
    for (const [i, p] of parsed.entries()) {
      const m = formatAuditRow(source.rows[i]!, { hostname: 'gw-test' });
      expect(`${p.sd} ${p.msg}`).toBe(m.slice(m.indexOf(` [${SD_ID} `) + 1));
    }
    expect(chainVerifies(source.rows)).toBe(true);
  });
});
