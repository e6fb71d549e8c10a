import net from 'node:net';
import os from 'node:os';

/** A dotted-quad IPv4 address, each part 0-255 without leading zeros. */
export const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Sixteen bytes as an IPv6 address, the canonical text form. */
export function ipv6Text(a: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => a.readUInt16BE(2 * i).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** A parsed network: the text it came from and what BlockList needs. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128) -> a network, or why not.
 * Host bits set ("10.0.0.5/8") are refused, as OpenSSH does: they usually mean a typing mistake
 * that would trust far more (or less) than intended.
 */
export function parseCidr(text: string): Cidr | string {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  const addr = m?.[1] ?? '';
  const family = IPV4.test(addr) ? 'ipv4' : /^[0-9A-Fa-f:.]+$/.test(addr) && net.isIPv6(addr) ? 'ipv6' : null;
  if (!m || !family) return `${JSON.stringify(text)} is not an IPv4 or IPv6 address or network (address/prefix)`;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max || (m[2] !== undefined && m[2].length > 1 && m[2].startsWith('0'))) return `${JSON.stringify(text)}: prefix length must be 0-${max}`;
  const bytes = addressBytes(addr, family);
  for (let bit = prefix; bit < max; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) {
      const net0 = Buffer.from(bytes);
      for (let b = prefix; b < max; b++) net0[b >> 3]! &= ~(0x80 >> (b & 7));
      const shown = family === 'ipv4' ? [...net0].join('.') : ipv6Text(net0);
      return `${JSON.stringify(text)} has host bits set (the network is ${shown}/${prefix})`;
    }
  }
  return { address: addr, prefix, family };
}

function addressBytes(addr: string, family: 'ipv4' | 'ipv6'): Buffer {
  if (family === 'ipv4') return Buffer.from(addr.split('.').map(Number));
  const canonical = new net.SocketAddress({ address: addr, family: 'ipv6' }).address;
  // Expand "::" and any dotted tail into 8 groups.
  let s = canonical;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    s = s.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

/** The addresses a PROXY header is accepted from: answers for a socket's (normalised) remote address. */
export class TrustedProxies {
  private readonly list = new net.BlockList();

  /** Throws on a network that parseCidr refuses (the config schema has refused it already). */
  constructor(networks: readonly string[]) {
    for (const n of networks) {
      const c = parseCidr(n);
      if (typeof c === 'string') throw new Error(c);
      this.list.addSubnet(c.address, c.prefix, c.family);
    }
  }

  /** Whether `addr` ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1") is a trusted proxy. */
  has(addr: string): boolean {
    if (net.isIPv4(addr)) return this.list.check(addr, 'ipv4');
    return net.isIPv6(addr) && this.list.check(addr, 'ipv6');
  }
}

/** Loopback: any account on this machine can connect from these. */
const LOOPBACK = new TrustedProxies(['127.0.0.0/8', '::1/128', '::ffff:127.0.0.0/104']);

/**
 * The trusted networks through which a local account could connect: a loopback one, or one that
 * holds an address of this machine (`interfaces`, os.networkInterfaces() by default). From there
 * any process here, a user's shell included, can send a PROXY header naming any client.
 */
export function localTrusted(networks: readonly string[], interfaces: ReturnType<typeof os.networkInterfaces> = os.networkInterfaces()): string[] {
  const mine = Object.values(interfaces)
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => !!a);
  return networks.filter((n) => {
    const c = parseCidr(n);
    if (typeof c === 'string') return false;
    const one = new TrustedProxies([n]);
    return LOOPBACK.has(c.address) || ['127.0.0.1', '::1', ...mine].some((a) => one.has(a.replace(/%.*$/, '')));
  });
}
