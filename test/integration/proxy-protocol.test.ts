import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import path from 'node:path';
import { FrontDoor, HEALTH_ANSWER } from '../../src/ssh/front-door.js';
import { V2_SIGNATURE } from '../../src/ssh/proxy-protocol.js';
import { FakeClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { Metrics } from '../../src/platform/metrics.js';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { backendOptions, startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { garbageSigner, ownKey, probe } from '../helpers/stranger.js';
import { waitUntil } from '../helpers/poll.js';

const DEPLOY_CFG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/haproxy.cfg');
const v1 = (src: string, port = 40000) => Buffer.from(`PROXY TCP4 ${src} 127.0.0.1 ${port} 22\r\n`);
const LOCAL = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);
const counter = async (m: Metrics, name: string) => Number(new RegExp(`tmuxgate_${name.replace(/[{}]/g, '\\$&')} (\\d+)`).exec(await m.render())?.[1] ?? 0);

/** A raw connection from `from` that writes `bytes`; resolves how it ended: what it read and whether the server closed it. */
function raw(port: number, from: string, bytes: Buffer[], end = false): { sock: net.Socket; closed: Promise<{ read: Buffer }> } {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress: from });
  sock.on('error', () => {});
  const read: Buffer[] = [];
  sock.on('data', (d: Buffer) => read.push(d));
  for (const b of bytes) sock.write(b);
  if (end) sock.end();
  return { sock, closed: new Promise((resolve) => sock.once('close', () => resolve({ read: Buffer.concat(read) }))) };
}

/** The front door alone, over real loopback sockets, on a fake clock: the glue between header and limits. */
describe('front door with proxyProtocol: header, then the limits on the client it names', () => {
  const clock = new FakeClock();
  const records: [string, string][] = [];
  const metrics = new Metrics();
  const handed: net.Socket[] = [];
  /** A front door behind a balancer on 127.0.0.1, on the fake clock, recording every refusal. */
  const frontDoor = (full: number, rate: number, perAddress: number, perPrefix: number, onSocket: (s: net.Socket) => void, trustedFrom = '127.0.0.1') =>
    new FrontDoor(
      {
        maxStartups: { start: full, rate, full },
        maxStartupsPerAddress: perAddress,
        maxStartupsPerPrefix: perPrefix,
        handshakeTimeout: 10_000,
        loginGraceTime: 60_000,
        proxyProtocol: { trustedFrom: [trustedFrom] },
      },
      { clock, logger: createLogger({ level: 'silent' }), preauth: { record: (a, r) => void records.push([a, r]) }, metrics },
      onSocket,
    );
  const door = frontDoor(100, 30, 2, 10, (s) => void handed.push(s), '127.0.0.1/32');
  let port = 0;
  const reasons = (addr: string) => records.filter(([a]) => a === addr).map(([, r]) => r);

  beforeAll(async () => {
    port = (await door.listen('127.0.0.1', 0)).port;
  });
  afterAll(async () => {
    door.destroyAll();
    await door.stopAccepting();
  });

  it("hands the socket on with the bytes after the header, found by its own address but counted as the header's client", async () => {
    const c = raw(port, '127.0.0.1', [Buffer.concat([v1('198.51.100.1', 5555), Buffer.from('SSH-2.0-a\r\n')])]);
    await waitUntil(() => handed.length === 1, 'handed on');
    const s = handed[0]!;
    const pending = door.lookup('127.0.0.1', s.remotePort!);
    expect(pending).toMatchObject({ addr: '198.51.100.1', port: 5555 });
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d)).resume(); // the front door paused it for ssh2, which resumes it
    c.sock.write('more\r\n');
    await waitUntil(() => Buffer.concat(got).toString() === 'SSH-2.0-a\r\nmore\r\n', "the client's bytes, none lost or doubled");
    // The cap per address counts 198.51.100.1, not the balancer: one more from it fits, the third does not.
    raw(port, '127.0.0.1', [v1('198.51.100.1'), Buffer.from('S')]);
    await waitUntil(() => handed.length === 2, 'second admitted');
    const third = raw(port, '127.0.0.1', [v1('198.51.100.1'), Buffer.from('S')]);
    await third.closed;
    expect(reasons('198.51.100.1')).toEqual(['refused:too many unauthenticated connections from this address']);
    raw(port, '127.0.0.1', [v1('198.51.100.2'), Buffer.from('S')]);
    await waitUntil(() => handed.length === 3, 'another client through the same balancer admitted');
    expect(reasons('127.0.0.1')).toEqual([]);
    for (const h of handed) h.destroy();
    await waitUntil(() => door.stats().unauthenticated === 0, 'slots released');
  });

  it("waits for the header and the client's first byte at most handshakeTimeout, counted from accept", async () => {
    const none = raw(port, '127.0.0.1', []);
    const headerOnly = raw(port, '127.0.0.1', [v1('198.51.100.3')]);
    const half = raw(port, '127.0.0.1', [Buffer.from('PROXY TCP4 198.5')]);
    await waitUntil(() => door.stats().open === 3, 'three waiting');
    clock.advance(9_999);
    expect([none, headerOnly, half].some((c) => c.sock.destroyed)).toBe(false);
    clock.advance(1);
    await Promise.all([none.closed, headerOnly.closed, half.closed]);
    // A missing or partial header is the balancer's; a client that never spoke after a whole one is the client's.
    expect(reasons('127.0.0.1')).toEqual(Array(2).fill('refused:proxy header timeout'));
    expect(reasons('198.51.100.3')).toEqual(['refused:handshake timeout expired']);
    expect(await counter(metrics, 'proxy_protocol_refusals_total{reason="timeout"}')).toBe(2);
    // A header that took 6 s leaves the SSH handshake the remaining 4 s.
    const slow = raw(port, '127.0.0.1', [Buffer.from('PROXY TCP4 198.51.100.4')]);
    await waitUntil(() => door.stats().open === 1, 'one waiting');
    clock.advance(6_000);
    slow.sock.write(' 127.0.0.1 1 22\r\nS');
    await waitUntil(() => door.stats().unauthenticated === 1, 'admitted');
    clock.advance(4_000);
    await slow.closed;
    expect(reasons('198.51.100.4')).toEqual(['refused:handshake timeout expired']);
  });

  it('a client through the balancer that never speaks holds a place under its own address only: it cannot keep other users out', async () => {
    // Attack: connect through the balancer (which sends the header at once) 100 times and say
    // nothing. Each such connection used to wait in the balancer's pool for handshakeTimeout,
    // so the pool was full and every other user was refused, again and again.
    const mine: net.Socket[] = [];
    const small = frontDoor(4, 100, 2, 2, (s) => void mine.push(s));
    const p = (await small.listen('127.0.0.1', 0)).port;
    const balancerBefore = reasons('127.0.0.1').length;
    try {
      const silent = Array.from({ length: 6 }, () => raw(p, '127.0.0.1', [v1('198.51.100.66')]));
      // Two are held under the stranger's address, the rest refused there (not in the balancer's name).
      await waitUntil(() => reasons('198.51.100.66').length === 4, 'the stranger capped');
      expect(reasons('198.51.100.66')).toEqual(Array(4).fill('refused:too many unauthenticated connections from this address'));
      await waitUntil(() => silent.filter((c) => c.sock.destroyed).length === 4, 'the refused ones closed');
      expect(small.stats()).toEqual({ unauthenticated: 2, open: 2 });
      // A user on another network gets in at once, and so does a second one.
      raw(p, '127.0.0.1', [v1('203.0.113.5'), Buffer.from('SSH-2.0-user\r\n')]);
      raw(p, '127.0.0.1', [v1('192.0.2.8'), Buffer.from('SSH-2.0-user\r\n')]);
      await waitUntil(() => mine.length === 2, 'both users handed on');
      expect(reasons('203.0.113.5')).toEqual([]);
      expect(reasons('127.0.0.1')).toHaveLength(balancerBefore); // nothing held against the balancer
    } finally {
      for (const s of mine) s.destroy();
      small.destroyAll();
      await small.stopAccepting();
    }
  });

  it('holds at most the full MaxStartups value of connections waiting for a header', async () => {
    const small = frontDoor(2, 100, 1, 2, () => {});
    const p = (await small.listen('127.0.0.1', 0)).port;
    try {
      const waiting = [raw(p, '127.0.0.1', []), raw(p, '127.0.0.1', [])];
      await waitUntil(() => small.stats().open === 2, 'two waiting');
      await raw(p, '127.0.0.1', []).closed;
      expect(await counter(metrics, 'proxy_protocol_refusals_total{reason="too-many-waiting"}')).toBe(1);
      expect(waiting.some((c) => c.sock.destroyed)).toBe(false);
    } finally {
      small.destroyAll();
      await small.stopAccepting();
    }
  });
});

/** The gateway behind the real HAProxy 2.6, logged into with the real OpenSSH client. */
describe('behind HAProxy: send-proxy-v2 and send-proxy, health checks, spoofed and broken headers', () => {
  const t = new TestGateway({
    listen: { host: '127.0.0.1', port: 0, proxyProtocol: { trustedFrom: ['127.0.0.1/32'] } },
    auth: { addressLockout: { maxFailures: 3 } },
  });
  let hp: Haproxy;
  let alice: TestUser;
  const metric = (name: string) => counter(t.gw.metrics, name);
  /** Reasons summarised for one address (moves the clock one summary interval). */
  const summary = async (addr: string): Promise<Record<string, number>> => {
    t.clock.advance(t.config.auth.preAuthAudit.interval);
    await new Promise((r) => setImmediate(r)); // the summaries' appends run as queued microtasks
    const out: Record<string, number> = {};
    for (const e of (await t.audit('preauth.summary')).filter((r) => r.data.addr === addr)) {
      for (const [r, n] of Object.entries(e.data.reasons as Record<string, number>)) out[r] = (out[r] ?? 0) + n;
    }
    return out;
  };

  beforeAll(async () => {
    await t.start();
    alice = await t.user('alice');
    // The shipped backend (send-proxy-v2, its tcp-check) against this gateway, checking every 200 ms.
    const shipped = backendOptions(readFileSync(DEPLOY_CFG, 'utf8'), 'tmuxgate').map((l) => l.replace(/\binter \S+/, 'inter 200ms'));
    hp = await startHaproxy(t.dir, [
      { name: 'v2', backend: [...shipped, `server gw 127.0.0.1:${t.port}`] },
      { name: 'v1', backend: [`server gw 127.0.0.1:${t.port} send-proxy`] },
    ]);
    // HAProxy's checks arrive as LOCAL headers: answered, counted as health checks, not failures.
    await waitUntil(async () => (await metric('proxy_protocol_connections_total{result="health-check"}')) >= 3, 'health checks seen');
  });
  afterAll(async () => {
    await hp?.stop();
    await t.stop();
  });

  it('OpenSSH logs in through send-proxy-v2, and the audit names the client, not the balancer', async () => {
    const knownHosts = path.join(t.dir, 'known_hosts_lb');
    writeFileSync(knownHosts, t.gw.knownHosts.replace(/^\[[^\]]+\]:\d+/, `[127.0.0.1]:${hp.ports.v2}`) + '\n');
    const d = await t.login(alice, 'alice', ['-p', String(hp.ports.v2), '-b', '127.0.0.9', '-o', `UserKnownHostsFile=${knownHosts}`]);
    d.kill();
    expect((await t.audit('auth.success')).map((e) => e.data.addr)).toEqual(['127.0.0.9']);
    expect(await metric('proxy_protocol_connections_total{result="accepted"}')).toBeGreaterThanOrEqual(1);
  });

  it('send-proxy (v1) works too: a stranger through it is summarised under its own address', async () => {
    expect(await probe(hp.ports.v1!, '127.0.0.10', ['nobody'], ownKey())).toEqual({ authenticated: false });
    expect(Object.keys(await summary('127.0.0.10')).some((r) => r.startsWith('publickey:'))).toBe(true);
    // Nothing so far was held against the balancer's own address.
    expect(await summary('127.0.0.1')).toEqual({});
  });

  it('a hand-written header from the trusted address is what lockouts and the audit name', async () => {
    const forged = garbageSigner(alice.keyFile);
    expect(await probe(t.port, '127.0.0.1', Array(3).fill('alice'), forged, 15_000, v1('203.0.113.7'))).toEqual({ authenticated: false });
    expect(await t.gw.lockouts.sourceLock('203.0.113.7')).not.toBeNull();
    expect(await t.gw.lockouts.sourceLock('127.0.0.1')).toBeNull();
    expect(await summary('203.0.113.7')).toMatchObject({ 'lockout.start:address': 1, 'refused:too many authentication failures': 1 });
  });

  it('refuses and counts a spoofed header from an untrusted address, and plain SSH from it', async () => {
    const before = await metric('proxy_protocol_refusals_total{reason="untrusted-address"}');
    const spoof = raw(t.port, '127.0.0.2', [v1('198.51.100.77'), Buffer.from('SSH-2.0-spoof\r\n')]);
    const plain = raw(t.port, '127.0.0.2', [Buffer.from('SSH-2.0-plain\r\n')]);
    const [a, b] = await Promise.all([spoof.closed, plain.closed]);
    expect(a.read.length + b.read.length).toBe(0); // closed before ssh2 said a word
    expect((await metric('proxy_protocol_refusals_total{reason="untrusted-address"}')) - before).toBe(2);
    expect(await summary('127.0.0.2')).toEqual({ 'refused:proxy header untrusted-address': 2 });
    expect(await summary('198.51.100.77')).toEqual({});
  });

  it('refuses a second header, a malformed and a truncated one; a LOCAL header is closed cleanly and not counted as a failure', async () => {
    const checks = await metric('proxy_protocol_connections_total{result="health-check"}');
    const second = raw(t.port, '127.0.0.1', [v1('198.51.100.8'), v1('10.9.9.9')]);
    const secondV2 = raw(t.port, '127.0.0.1', [v1('198.51.100.8'), LOCAL]);
    const malformed = raw(t.port, '127.0.0.1', [Buffer.from('PROXY TCP4 198.51.100.8 127.0.0.1 022 22\r\nSSH-2.0-x\r\n')]);
    const truncated = raw(t.port, '127.0.0.1', [Buffer.from('PROXY TCP4 198.51.100.8 127.0')], true);
    const local = raw(t.port, '127.0.0.1', [LOCAL]);
    const ended = await Promise.all([second, secondV2, malformed, truncated, local].map((c) => c.closed));
    expect(ended.map((e) => e.read.toString())).toEqual(['', '', '', '', HEALTH_ANSWER]);
    expect(await summary('127.0.0.1')).toEqual({
      'refused:proxy header second-header': 2,
      'refused:proxy header malformed': 1,
      'refused:proxy header truncated': 1,
    });
    expect(await summary('198.51.100.8')).toEqual({});
    expect(await metric('proxy_protocol_connections_total{result="health-check"}')).toBeGreaterThan(checks);
    for (const r of ['second-header', 'malformed', 'truncated']) expect(await metric(`proxy_protocol_refusals_total{reason="${r}"}`)).toBeGreaterThan(0);
    // Every check HAProxy made passed: the node never went down.
    expect(hp.output()).not.toMatch(/ALERT|is DOWN/);
  });

  it('deploy/haproxy.cfg is valid for HAProxy 2.6 and sends PROXY v2 with health checks to every node', async () => {
    const r = spawnSync('haproxy', ['-c', '-f', DEPLOY_CFG], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const shipped = backendOptions(readFileSync(DEPLOY_CFG, 'utf8'), 'tmuxgate');
    expect(shipped).toContain('tcp-check expect string SSH-2.0-tmuxgate');
    expect(shipped.find((l) => l.startsWith('default-server'))).toMatch(/\bsend-proxy-v2\b.*\bcheck\b/);
    expect(HEALTH_ANSWER.startsWith('SSH-2.0-tmuxgate')).toBe(true);
  });
});
