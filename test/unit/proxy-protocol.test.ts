import { describe, expect, it } from 'vitest';
import {
  looksLikeProxyHeader,
  parseProxyHeader,
  ProxyHeaderParser,
  V1_MAX_BYTES,
  V2_MAX_PAYLOAD,
  V2_SIGNATURE,
  type ProxyHeader,
  type ProxyStep,
} from '../../src/ssh/proxy-protocol.js';
import { localTrusted, parseCidr, TrustedProxies } from '../../src/platform/cidr.js';
import { Writable } from 'node:stream';
import os from 'node:os';
import { FrontDoor } from '../../src/ssh/front-door.js';
import { FakeClock } from '../../src/platform/clock.js';
import { createLogger } from '../../src/platform/logger.js';
import { buildConfig } from '../../src/config/load.js';

const SSH = Buffer.from('SSH-2.0-OpenSSH_9.2p1\r\n');
const text = (s: string) => Buffer.from(s, 'latin1');
const ip4 = (a: string) => Buffer.from(a.split('.').map(Number));
const ip6 = (groups: number[]) => Buffer.concat(groups.map((g) => Buffer.from([g >> 8, g & 0xff])));
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

/** A v2 header: version/command byte, family/protocol byte, then the payload (addresses, ports, TLVs). */
function v2(verCmd: number, fam: number, payload: Buffer, len = payload.length): Buffer {
  return Buffer.concat([V2_SIGNATURE, Buffer.from([verCmd, fam]), u16(len), payload]);
}
const tcp4 = (src: string, dst: string, sport: number, dport: number) => Buffer.concat([ip4(src), ip4(dst), u16(sport), u16(dport)]);
const tlv = (type: number, value: Buffer) => Buffer.concat([Buffer.from([type]), u16(value.length), value]);

const proxied = (version: 1 | 2, family: 'IPv4' | 'IPv6', src: [string, number], dst: [string, number]): ProxyHeader => ({
  command: 'proxy',
  version,
  source: { family, address: src[0], port: src[1] },
  destination: { family, address: dst[0], port: dst[1] },
});

/** [name, header bytes, what they mean]: each is also fed one byte at a time and followed by SSH bytes. */
const VALID: [string, Buffer, ProxyHeader][] = [
  ['v1 TCP4', text('PROXY TCP4 203.0.113.7 192.0.2.1 40000 22\r\n'), proxied(1, 'IPv4', ['203.0.113.7', 40000], ['192.0.2.1', 22])],
  ['v1 TCP4 extremes', text('PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n'), proxied(1, 'IPv4', ['0.0.0.0', 0], ['255.255.255.255', 65535])],
  ['v1 TCP6, made canonical', text('PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 40000 22\r\n'), proxied(1, 'IPv6', ['2001:db8::7', 40000], ['2001:db8::1', 22])],
  ['v1 TCP6 mapped IPv4', text('PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n'), proxied(1, 'IPv6', ['::ffff:203.0.113.7', 1], ['::1', 2])],
  ['v1 UNKNOWN, short', text('PROXY UNKNOWN\r\n'), { command: 'local', version: 1 }],
  [
    'v1 UNKNOWN, longest line (107 bytes)',
    text(`PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`),
    { command: 'local', version: 1 },
  ],
  ['v2 PROXY TCP4', v2(0x21, 0x11, tcp4('203.0.113.7', '192.0.2.1', 40000, 22)), proxied(2, 'IPv4', ['203.0.113.7', 40000], ['192.0.2.1', 22])],
  [
    'v2 PROXY TCP4 as HAProxy 2.6 sends it',
    Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0000097f0000019011985a', 'hex'),
    proxied(2, 'IPv4', ['127.0.0.9', 0x9011], ['127.0.0.1', 0x985a]),
  ],
  [
    'v2 PROXY TCP4 with TLVs (skipped)',
    v2(0x21, 0x11, Buffer.concat([tcp4('198.51.100.2', '192.0.2.1', 5, 6), tlv(0x05, Buffer.alloc(128, 7)), tlv(0x04, Buffer.alloc(3)), tlv(0xe0, text('x'))])),
    proxied(2, 'IPv4', ['198.51.100.2', 5], ['192.0.2.1', 6]),
  ],
  [
    'v2 PROXY TCP6',
    v2(0x21, 0x21, Buffer.concat([ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7]), ip6([0, 0, 0, 0, 0, 0, 0, 1]), u16(1), u16(22)])),
    proxied(2, 'IPv6', ['2001:db8::7', 1], ['::1', 22]),
  ],
  [
    'v2 PROXY TCP6 mapped IPv4',
    v2(0x21, 0x21, Buffer.concat([ip6([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7107]), ip6([0, 0, 0, 0, 0, 0, 0, 1]), u16(1), u16(22)])),
    proxied(2, 'IPv6', ['::ffff:203.0.113.7', 1], ['::1', 22]),
  ],
  ['v2 LOCAL as HAProxy 2.6 checks send it', Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex'), { command: 'local', version: 2 }],
  ['v2 LOCAL with an address block (skipped, not assumed empty)', v2(0x20, 0x11, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), { command: 'local', version: 2 }],
  ['v2 LOCAL over AF_UNIX (family ignored)', v2(0x20, 0x31, Buffer.alloc(216)), { command: 'local', version: 2 }],
  [
    'v2 at the payload cap',
    v2(0x21, 0x11, Buffer.concat([tcp4('192.0.2.9', '192.0.2.1', 7, 8), tlv(0x04, Buffer.alloc(V2_MAX_PAYLOAD - 12 - 3))])),
    proxied(2, 'IPv4', ['192.0.2.9', 7], ['192.0.2.1', 8]),
  ],
];

/** [name, bytes, fault]: each must be refused, whole and one byte at a time, never answered `more` at its end. */
const INVALID: [string, Buffer, string][] = [
  ['plain SSH', SSH, 'not-a-proxy-header'],
  ['an HTTP request', text('GET / HTTP/1.1\r\n\r\n'), 'not-a-proxy-header'],
  ['lower-case proxy', text('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'not-a-proxy-header'],
  ['PROXY without its space', text('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'not-a-proxy-header'],
  ['a wrong v2 signature', Buffer.concat([text('\r\n\r\n\0\r\nQUIX\n'), Buffer.from([0x21, 0x11, 0, 12])]), 'not-a-proxy-header'],
  ['v1 two spaces', text('PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 UDP4', text('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 leading zero in an address', text('PROXY TCP4 010.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 leading zero in a port', text('PROXY TCP4 1.2.3.4 5.6.7.8 022 2\r\n'), 'malformed'],
  ['v1 port 65536', text('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'malformed'],
  ['v1 TCP4 with IPv6 addresses', text('PROXY TCP4 ::1 ::1 1 2\r\n'), 'malformed'],
  ['v1 TCP6 with IPv4 addresses', text('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 TCP6 with a zone', text('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'malformed'],
  ['v1 missing a port', text('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), 'malformed'],
  ['v1 an extra field', text('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'), 'malformed'],
  ['v1 lone LF', text('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), 'malformed'],
  ['v1 CR not followed by LF', text('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX'), 'malformed'],
  ['v1 a NUL byte', text('PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 no CRLF in 107 bytes', text(`PROXY UNKNOWN ${'a'.repeat(120)}\r\n`), 'too-long'],
  ['v1 108-byte line', text(`PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 655350\r\n`), 'too-long'],
  ['v2 version 1', v2(0x11, 0x11, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'bad-version'],
  ['v2 version 3', v2(0x31, 0x11, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'bad-version'],
  ['v2 command 2', v2(0x22, 0x11, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'bad-command'],
  ['v2 family 4', v2(0x21, 0x41, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'malformed'],
  ['v2 protocol 3', v2(0x21, 0x13, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'malformed'],
  ['v2 PROXY UNSPEC', v2(0x21, 0x00, Buffer.alloc(0)), 'unsupported-family'],
  ['v2 PROXY AF_UNIX stream', v2(0x21, 0x31, Buffer.alloc(216)), 'unsupported-family'],
  ['v2 PROXY UDP over IPv4', v2(0x21, 0x12, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'unsupported-family'],
  ['v2 PROXY TCP4 with a short address block', v2(0x21, 0x11, Buffer.alloc(8)), 'malformed'],
  ['v2 PROXY TCP6 with an IPv4-sized block', v2(0x21, 0x21, tcp4('1.2.3.4', '5.6.7.8', 1, 2)), 'malformed'],
  ['v2 over the payload cap', v2(0x21, 0x11, Buffer.alloc(0), V2_MAX_PAYLOAD + 1), 'too-long'],
  ['v2 announcing 65535 bytes', v2(0x21, 0x11, Buffer.alloc(0), 65535), 'too-long'],
];

/** Feeds `b` to a fresh parser in chunks of `size`; returns every answer. */
function feed(b: Buffer, size: number): ProxyStep[] {
  const p = new ProxyHeaderParser();
  const out: ProxyStep[] = [];
  for (let i = 0; i < b.length; i += size) out.push(p.push(b.subarray(i, i + size)));
  return out;
}

describe('PROXY protocol parser', () => {
  it.each(VALID)('%s', (_name, bytes, header) => {
    const whole = parseProxyHeader(Buffer.concat([bytes, SSH]));
    expect(whole).toEqual({ kind: 'header', header, length: bytes.length, rest: SSH });
    expect(bytes.length).toBeLessThanOrEqual(bytes[0] === 0x50 ? V1_MAX_BYTES : 16 + V2_MAX_PAYLOAD);
  });

  it.each(VALID)('%s, one byte at a time: more until the last header byte, and the bytes after it kept', (_name, bytes, header) => {
    const steps = feed(bytes, 1);
    expect(steps.slice(0, -1).every((s) => s.kind === 'more')).toBe(true);
    expect(steps.at(-1)).toEqual({ kind: 'header', header, length: bytes.length, rest: Buffer.alloc(0) });
    // Split anywhere else: the header ends inside a chunk and the client's bytes in it are kept.
    for (const size of [2, 3, 7, 13, 64]) {
      const all = Buffer.concat([bytes, SSH]);
      const first = feed(all, size).find((s) => s.kind !== 'more');
      expect(first).toMatchObject({ kind: 'header', header, length: bytes.length });
      const end = Math.ceil(bytes.length / size) * size;
      expect((first as { rest: Buffer }).rest).toEqual(all.subarray(bytes.length, end));
    }
  });

  it.each(INVALID)('refuses %s', (_name, bytes, fault) => {
    expect(parseProxyHeader(bytes)).toMatchObject({ kind: 'error', fault });
    const steps = feed(bytes, 1);
    const firstAnswer = steps.find((s) => s.kind !== 'more');
    expect(firstAnswer).toMatchObject({ kind: 'error', fault });
    expect(steps.at(-1)).toEqual(firstAnswer); // the answer sticks
  });

  it('refuses plain SSH and garbage at the first byte, before buffering anything more', async () => {
    expect(feed(SSH, 1)[0]).toMatchObject({ kind: 'error', fault: 'not-a-proxy-header' });
    for (let b = 0; b < 256; b++) {
      if (b === 0x0d || b === 0x50) continue;
      expect(parseProxyHeader(Buffer.from([b, 0x0a]))).toMatchObject({ kind: 'error', fault: 'not-a-proxy-header' });
    }
  });

  it('never buffers more than the bounds, whatever arrives', async () => {
    const v1 = new ProxyHeaderParser();
    let step = v1.push(text('PROXY '));
    while (step.kind === 'more') step = v1.push(text('1'));
    expect(step).toMatchObject({ kind: 'error', fault: 'too-long' });
    expect(v1.received).toBe(V1_MAX_BYTES);
    // v2: the length field is judged as soon as it arrives, not after 64 KB.
    const v2p = new ProxyHeaderParser();
    expect(v2p.push(v2(0x21, 0x11, Buffer.alloc(0), 65535))).toMatchObject({ kind: 'error', fault: 'too-long' });
    expect(v2p.received).toBe(16);
    expect(v2p.push(Buffer.alloc(1000))).toMatchObject({ kind: 'error', fault: 'too-long' });
    expect(v2p.received).toBe(16);
  });

  it('answers more while bytes can still become a header, and for nothing at all', async () => {
    expect(parseProxyHeader(Buffer.alloc(0))).toEqual({ kind: 'more' });
    expect(parseProxyHeader(text('PROX'))).toEqual({ kind: 'more' });
    expect(parseProxyHeader(text('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r'))).toEqual({ kind: 'more' });
    expect(parseProxyHeader(V2_SIGNATURE.subarray(0, 5))).toEqual({ kind: 'more' });
  });

  it("tells a second header from the client's first bytes", async () => {
    for (const b of [text('P'), text('PROXY TCP4'), V2_SIGNATURE.subarray(0, 1), V2_SIGNATURE]) expect(looksLikeProxyHeader(b)).toBe(true);
    for (const b of [SSH, text('S'), text('PRX'), Buffer.alloc(0), text('\r\r')]) expect(looksLikeProxyHeader(b)).toBe(false);
  });
});

describe('trusted proxy networks', () => {
  it.each([
    ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['127.0.0.1', { address: '127.0.0.1', prefix: 32, family: 'ipv4' }],
    ['0.0.0.0/0', { address: '0.0.0.0', prefix: 0, family: 'ipv4' }],
    ['2001:db8::/32', { address: '2001:db8::', prefix: 32, family: 'ipv6' }],
    ['::1', { address: '::1', prefix: 128, family: 'ipv6' }],
    ['::ffff:10.0.0.0/104', { address: '::ffff:10.0.0.0', prefix: 104, family: 'ipv6' }],
  ])('accepts %s', (text, cidr) => {
    expect(parseCidr(text)).toEqual(cidr);
  });

  it.each([
    ['10.0.0.5/8', 'host bits set (the network is 10.0.0.0/8)'],
    ['2001:db8::1/32', 'host bits set (the network is 2001:db8::/32)'],
    ['10.0.0.0/33', 'prefix length must be 0-32'],
    ['10.0.0.0/08', 'prefix length must be 0-32'],
    ['::/129', 'prefix length must be 0-128'],
    ['fe80::1%eth0', 'not an IPv4 or IPv6 address'],
    ['010.0.0.1', 'not an IPv4 or IPv6 address'],
    ['haproxy.internal', 'not an IPv4 or IPv6 address'],
    ['10.0.0.0/', 'not an IPv4 or IPv6 address'],
    ['', 'not an IPv4 or IPv6 address'],
  ])('refuses %s', (text, why) => {
    expect(parseCidr(text)).toContain(why);
  });

  it('matches IPv4, IPv4-mapped and IPv6 addresses', async () => {
    const t = new TrustedProxies(['127.0.0.1/32', '10.1.0.0/16', '2001:db8:1::/48']);
    expect(['127.0.0.1', '10.1.200.3', '::ffff:10.1.0.9', '2001:db8:1:ffff::1'].map((a) => t.has(a))).toEqual([true, true, true, true]);
    expect(['127.0.0.2', '10.2.0.1', '2001:db8:2::1', '::1', 'unknown', ''].map((a) => t.has(a))).toEqual([false, false, false, false, false, false]);
  });

  it('config: off by default; a bad network or an empty list is a one-line coded error naming the field', async () => {
    const build = (listen: unknown) => buildConfig({ listen }, { file: '/etc/tmuxgate/config.yaml', baseDir: '/etc/tmuxgate' });
    expect(build({}).listen.proxyProtocol).toBeUndefined();
    expect(build({ proxyProtocol: { trustedFrom: ['10.0.0.0/8', '::1'] } }).listen.proxyProtocol).toEqual({ trustedFrom: ['10.0.0.0/8', '::1'] });
    for (const [input, needle] of [
      [{ proxyProtocol: { trustedFrom: ['10.0.0.0/8', '10.0.0.5/8'] } }, 'listen.proxyProtocol.trustedFrom.1: "10.0.0.5/8" has host bits set'],
      [{ proxyProtocol: { trustedFrom: [] } }, 'listen.proxyProtocol.trustedFrom: name at least one load balancer'],
      [{ proxyProtocol: { trustedFrom: '10.0.0.0/8' } }, 'listen.proxyProtocol.trustedFrom'],
      [{ proxyProtocol: { trusted: ['10.0.0.0/8'] } }, 'listen.proxyProtocol'],
    ] as const) {
      let err: { code?: string; message: string } | null = null;
      try {
        build(input);
      } catch (e) {
        err = e as { code?: string; message: string };
      }
      expect(err?.code).toBe('TG_ERR_CONFIG_INVALID');
      expect(err?.message).toContain(needle);
      expect(err?.message).not.toContain('\n');
    }
  });
});

describe('trusted balancers this machine can pose as', () => {
  // A balancer listed by an address any local account can connect from (the balancer on a node's
  // own machine, trusted as 127.0.0.1): a user's shell there sends PROXY headers of its own,
  // claims any client address, and so escapes address lockouts or locks a victim's address out.
  const ifaces = {
    lo: [{ address: '127.0.0.1', family: 'IPv4' }],
    eth0: [
      { address: '10.0.0.11', family: 'IPv4' },
      { address: 'fe80::1%eth0', family: 'IPv6' },
    ],
  } as unknown as ReturnType<typeof os.networkInterfaces>;

  it('names loopback networks and networks holding an address of this machine, not a balancer elsewhere', () => {
    expect(localTrusted(['10.0.0.5/32'], ifaces)).toEqual([]);
    expect(localTrusted(['127.0.0.1', '127.0.0.9/32', '::1', '::ffff:127.0.0.1', '10.0.0.0/24', '10.0.0.5', '0.0.0.0/0', 'fe80::/64'], ifaces)).toEqual([
      '127.0.0.1',
      '127.0.0.9/32',
      '::1',
      '::ffff:127.0.0.1',
      '10.0.0.0/24',
      '0.0.0.0/0',
      'fe80::/64',
    ]);
  });

  it('the gateway says so at start', async () => {
    const lines: string[] = [];
    const destination = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
    const logger = createLogger({ level: 'warn', destination });
    const limits = {
      maxStartups: { start: 10, rate: 30, full: 100 },
      maxStartupsPerAddress: 10,
      maxStartupsPerPrefix: 30,
      handshakeTimeout: 1,
      loginGraceTime: 1,
    };
    const deps = { clock: new FakeClock(), logger, preauth: { record: () => {} } };
    new FrontDoor({ ...limits, proxyProtocol: { trustedFrom: ['192.0.2.1'] } }, deps, () => {});
    expect(lines).toEqual([]);
    new FrontDoor({ ...limits, proxyProtocol: { trustedFrom: ['192.0.2.1', '127.0.0.1/32'] } }, deps, () => {});
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, trustedFrom: ['127.0.0.1/32'] });
    expect(lines[0]).toContain("users' shells included");
  });
});
