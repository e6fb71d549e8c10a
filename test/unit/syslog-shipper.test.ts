import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { EvidenceConfigSchema, shipperOptionsFromConfig, SyslogConfigSchema } from '../../src/evidence/config.js';
import { FileCursor } from '../../src/evidence/file-cursor.js';
import { parseAuditMessage, splitFrames } from '../../src/evidence/syslog-parse.js';
import { SyslogShipper, type SyslogShipperOptions } from '../../src/evidence/syslog-tls.js';
import { FakeClock } from '../../src/platform/clock.js';
import { MemAuditSource } from '../helpers/audit-rows.js';
import { EarlyClock } from '../helpers/early-clock.js';
import { waitUntil } from '../helpers/poll.js';
import { issueCert, makeCa, type CertFiles } from '../helpers/tls-certs.js';

/** A TLS collector in this process: keeps what each connection sent, and can drop them all. */
class Collector {
  readonly conns: { sock: tls.TLSSocket; data: Buffer[] }[] = [];
  private server: tls.Server;
  port = 0;
  /** `halfOpen`: never answers the client's close (a collector that stalls at shutdown). */
  constructor(cert: CertFiles, halfOpen = false) {
    this.server = tls.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), allowHalfOpen: halfOpen }, (sock) => {
      const c = { sock, data: [] as Buffer[] };
      this.conns.push(c);
      sock.on('data', (d: Buffer) => c.data.push(d));
      sock.on('error', () => {});
    });
  }
  async listen(port = 0): Promise<void> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Every id received, connection by connection, in order. */
  ids(): number[] {
    return this.conns.flatMap((c) => splitFrames(Buffer.concat(c.data)).map((f) => parseAuditMessage(f.toString('utf8'))!.row.id));
  }
  bytes(): number {
    return this.conns.reduce((n, c) => n + Buffer.concat(c.data).length, 0);
  }
  dropAll(): void {
    for (const c of this.conns) c.sock.destroy();
  }
  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

let dir = '';
let ca: CertFiles;
let server: CertFiles;
let strangerServer: CertFiles;
beforeAll(() => {
  dir = mkdtempSync('/tmp/tg-ship-');
  ca = makeCa(dir, 'ca');
  server = issueCert(dir, ca, 'server', { usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
  const other = makeCa(dir, 'other-ca');
  strangerServer = issueCert(dir, other, 'stranger', { usage: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A loopback port whose every connection is closed at once, held for the test: a port merely
 * freed could be taken by another test running in parallel (seen: a plain TCP server answered,
 * "wrong version number"), so refusal is made here rather than hoped for.
 */
async function deadPort(): Promise<number> {
  const server = net.createServer((sock) => sock.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

async function setup(o: { cert?: CertFiles; opts?: Partial<SyslogShipperOptions>; cursor?: FileCursor; halfOpen?: boolean; clock?: FakeClock } = {}) {
  const clock = o.clock ?? new FakeClock();
  const source = new MemAuditSource();
  const collector = new Collector(o.cert ?? server, o.halfOpen);
  await collector.listen();
  const cursor = o.cursor ?? new FileCursor(mkdtempSync(path.join(dir, 'cur-')));
  const shipper = new SyslogShipper(
    { host: '127.0.0.1', port: collector.port, caFile: ca.cert, maxLagEvents: 10, backoff: { initialMs: 100, maxMs: 800 }, ...o.opts },
    { source, cursor, clock },
  );
  cleanups.push(() => collector.close());
  cleanups.push(() => shipper.close(0));
  return { clock, source, collector, cursor, shipper };
}

describe('syslog shipper against an in-process TLS collector', () => {
  it('ships rows in id order and moves the cursor only once the connection has stayed up confirmAfter', async () => {
    const { clock, source, collector, cursor, shipper } = await setup();
    source.add(5);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 5, 'five rows');
    expect(collector.ids()).toEqual([1, 2, 3, 4, 5]);
    expect(shipper.state()).toMatchObject({ connected: true, cursor: 0, lagEvents: 5 });
    clock.advance(999);
    expect(shipper.state().cursor).toBe(0);
    clock.advance(1);
    expect(shipper.state()).toMatchObject({ cursor: 5, lagEvents: 0, lastShippedAt: clock.now() });
    await waitUntil(() => existsSync(cursor.file) && readFileSync(cursor.file, 'utf8') === '5\n', 'the cursor file');

    source.add(2);
    shipper.notify();
    await waitUntil(() => collector.ids().length === 7, 'rows after notify');
    expect(collector.ids()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('resends what was not confirmed when the connection drops: at-least-once, duplicates only at the boundary', async () => {
    const { clock, source, collector, shipper } = await setup();
    source.add(3);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 3, 'three rows');
    clock.advance(1000);
    expect(shipper.state().cursor).toBe(3);
    source.add(3);
    shipper.notify();
    await waitUntil(() => collector.ids().length === 6, 'six rows');
    collector.dropAll(); // before rows 4-6 were confirmed
    await waitUntil(() => !shipper.state().connected, 'the shipper to see the loss');
    expect(shipper.state()).toMatchObject({ cursor: 3, lagEvents: 3 });
    expect(shipper.state().lastError).toMatch(/closed|reset/i);
    clock.advance(100);
    await waitUntil(() => collector.ids().length === 9, 'the resend');
    expect(collector.ids()).toEqual([1, 2, 3, 4, 5, 6, 4, 5, 6]);
    expect(shipper.state().connections).toBe(2);
  });

  it('reconnects when the retry timer fires, even a millisecond before its time, without waiting for the next poll', async () => {
    const { clock, source, collector, shipper } = await setup({ clock: new EarlyClock() });
    source.add(2);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 2, 'two rows');
    collector.dropAll();
    await waitUntil(() => !shipper.state().connected, 'the shipper to see the loss');
    clock.advance(99); // the 100 ms retry falls due 1 ms early; the 1 s poll does not
    await waitUntil(() => shipper.state().connected, 'the reconnection', 2000);
    await waitUntil(() => collector.ids().length === 4, 'the resend');
    expect(shipper.state().connections).toBe(2);
  });

  it('backs off exponentially up to the bound, on the injected clock, and keeps the backlog', async () => {
    const { clock, source, shipper } = await setup({ opts: { port: await deadPort() } });
    source.add(12);
    await shipper.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = shipper.state().lastErrorAt;
      await waitUntil(() => shipper.state().lastErrorAt !== before, 'a refused attempt');
      const s = shipper.state();
      expect(s.lastError).toMatch(/ECONNRESET|disconnected|closed/);
      delays.push(s.nextAttemptAt! - clock.now());
      clock.advance(s.nextAttemptAt! - clock.now());
    }
    expect(delays).toEqual([100, 200, 400, 800, 800, 800]);
    expect(shipper.state()).toMatchObject({ connected: false, cursor: 0, lagEvents: 12, maxLagEvents: 10, overLag: true });
  });

  it('refuses a server certificate from another CA before sending a byte', async () => {
    const { source, collector, shipper } = await setup({ cert: strangerServer });
    source.add(2);
    await shipper.start();
    await waitUntil(() => shipper.state().lastError, 'the refusal');
    expect(shipper.state().lastError).toMatch(/certificate/i);
    expect(shipper.state()).toMatchObject({ connected: false, connections: 0, cursor: 0 });
    expect(collector.bytes()).toBe(0);
  });

  it('checks the name: a certificate for localhost does not pass for another serverName', async () => {
    const { source, collector, shipper } = await setup({ opts: { serverName: 'collector.example' } });
    source.add(1);
    await shipper.start();
    await waitUntil(() => shipper.state().lastError, 'the refusal');
    expect(shipper.state().lastError).toMatch(/collector\.example/);
    expect(collector.bytes()).toBe(0);
  });

  it('close() sends the backlog, and the answer to the orderly close confirms it without waiting', async () => {
    const { source, collector, cursor, shipper } = await setup();
    source.add(4);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 4, 'four rows');
    await shipper.close();
    expect(shipper.state()).toMatchObject({ connected: false, cursor: 4 });
    expect(readFileSync(cursor.file, 'utf8')).toBe('4\n');
    shipper.notify(); // after close: nothing, and no throw
  });

  it('close() gives up at its deadline (clock time) when the collector does not answer, and confirms nothing', async () => {
    const { clock, source, collector, shipper } = await setup({ halfOpen: true });
    source.add(3);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 3, 'three rows');
    let closed = false;
    const closing = shipper.close(500).then(() => (closed = true));
    await waitUntil(() => collector.conns[0]!.sock.readableEnded, 'our orderly close to reach the collector');
    clock.advance(499);
    await Promise.resolve();
    expect(closed).toBe(false);
    clock.advance(1);
    await closing;
    expect(shipper.state()).toMatchObject({ connected: false, cursor: 0, lagEvents: 3 });
  });

  it('never throws into the caller: a failing source shows in state() and is retried on the poll', async () => {
    const { clock, source, collector, shipper } = await setup();
    source.add(2);
    source.failing = 'database is locked';
    await shipper.start();
    expect(() => shipper.notify()).not.toThrow();
    await waitUntil(() => shipper.state().lastError === 'database is locked', 'the error in state()');
    source.failing = null;
    clock.advance(1000);
    await waitUntil(() => collector.ids().length === 2, 'the rows after the poll');
  });

  it('when rows vanish locally, goes back so that every existing row is shipped, and says so', async () => {
    const { clock, source, collector, shipper } = await setup();
    source.add(5);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 5, 'five rows');
    clock.advance(1000);
    expect(shipper.state().cursor).toBe(5);
    source.rows.splice(2); // rows 3-5 deleted
    shipper.notify();
    await waitUntil(() => shipper.state().cursor === 2, 'the cursor to go back');
    expect(shipper.state().lastError).toMatch(/ends at row 2 but row 5 was already shipped/);
    source.add(2); // new rows reuse ids 3 and 4: the collector gets both versions
    shipper.notify();
    await waitUntil(() => collector.ids().length === 7, 'the new rows 3 and 4');
    expect(collector.ids()).toEqual([1, 2, 3, 4, 5, 3, 4]);
  });

  it('FileCursor: 0 without a file, the saved id after, and an unreadable file means resending from the start', async () => {
    const d = mkdtempSync(path.join(dir, 'fc-'));
    const c = new FileCursor(d);
    expect(await c.load()).toBe(0);
    await c.save(42);
    expect(await c.load()).toBe(42);
    writeFileSync(c.file, 'garbage');
    await expect(c.load()).rejects.toThrow(/does not hold a row id/);
    const { source, collector, shipper } = await setup({ cursor: c });
    source.add(2);
    await shipper.start();
    await waitUntil(() => collector.ids().length === 2, 'both rows');
    expect(shipper.state().lastError).toMatch(/cursor unreadable/);
  });
});

describe('evidence.syslog config', () => {
  it('defaults what it can and names what is missing or inconsistent', () => {
    const c = EvidenceConfigSchema.parse({ syslog: { host: 'logs.example', caFile: '/etc/tmuxgate/ca.pem' } }).syslog!;
    expect(c).toMatchObject({ port: 6514, facility: 10, onFailure: 'buffer', maxLagEvents: 10_000, maxMessageBytes: 8096, confirmAfter: 1000 });
    expect(EvidenceConfigSchema.parse({}).syslog).toBeUndefined();
    expect(SyslogConfigSchema.parse({ host: 'h', caFile: 'c', facility: 'local3', confirmAfter: '250ms' })).toMatchObject({ facility: 19, confirmAfter: 250 });
    const problems = (input: unknown) => SyslogConfigSchema.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(problems({ caFile: 'c' })).toEqual([expect.stringMatching(/^host: /)]);
    expect(problems({ host: 'h', caFile: 'c', certFile: 'x' })).toEqual(['keyFile: certFile and keyFile go together (mutual TLS)']);
    expect(problems({ host: 'h', caFile: 'c', facility: 'mail2' })).toHaveLength(1);
    expect(problems({ host: 'h', caFile: 'c', hostname: 'two words' })).toHaveLength(1);
    expect(problems({ host: 'h', caFile: 'c', maxMessageBytes: 1000 })).toHaveLength(1);
    expect(problems({ host: 'h', caFile: 'c', onFailure: 'drop' })).toHaveLength(1);
    expect(problems({ host: 'h', caFile: 'c', extra: 1 })).toHaveLength(1);
  });

  it('turns into shipper options', () => {
    const c = SyslogConfigSchema.parse({ host: 'h', caFile: 'ca', certFile: 'c', keyFile: 'k', serverName: 'logs', hostname: 'gw1', facility: 'local0' });
    expect(shipperOptionsFromConfig(c)).toEqual({
      host: 'h',
      port: 6514,
      caFile: 'ca',
      certFile: 'c',
      keyFile: 'k',
      serverName: 'logs',
      format: { facility: 16, maxMessageBytes: 8096, hostname: 'gw1' },
      maxLagEvents: 10_000,
      confirmAfterMs: 1000,
    });
  });

  it('is off by default in the gateway config; its files resolve against the config file like the other paths', () => {
    expect(buildConfig({}, { file: null, baseDir: '/srv' }).evidence.syslog).toBeUndefined();
    const c = buildConfig(
      { evidence: { syslog: { host: 'h', caFile: 'tls/ca.pem', certFile: '/abs/gw.pem', keyFile: '../k/gw.key' } } },
      { file: '/etc/tmuxgate/config.yaml', baseDir: '/etc/tmuxgate' },
    ).evidence.syslog!;
    expect(c).toMatchObject({ caFile: '/etc/tmuxgate/tls/ca.pem', certFile: '/abs/gw.pem', keyFile: '/etc/k/gw.key' });
    expect(() => buildConfig({ evidence: { syslog: { host: 'h' } } }, { file: null, baseDir: '/' })).toThrow(/evidence\.syslog\.caFile/);
  });
});
