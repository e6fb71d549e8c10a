import net from 'node:net';

/**
 * The network a source address belongs to for limits and lockouts: IPv4 /24, IPv6 /64, as
 * CIDR text ("192.0.2.0/24", "2001:db8:0:1::/64"). One host rarely owns a whole /24, but an
 * attacker who can pick addresses usually picks them from one network, and a /64 is what one
 * IPv6 customer gets. Anything that is not an IP address is its own prefix.
 */
export function addressPrefix(addr: string): string {
  if (net.isIPv4(addr)) return `${addr.split('.').slice(0, 3).join('.')}.0/24`;
  if (net.isIPv6(addr)) {
    const groups = expandIPv6(addr);
    return `${groups
      .slice(0, 4)
      .map((g) => g.replace(/^0+(?=.)/, ''))
      .join(':')}::/64`;
  }
  return addr;
}

/** "2001:db8::1" -> ["2001","db8","0","0","0","0","0","1"] (8 groups; embedded IPv4 becomes two). */
function expandIPv6(a: string): string[] {
  let s = a.toLowerCase().split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [b0, b1, b2, b3] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    s = s.slice(0, -v4[1]!.length) + `${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  if (tail === undefined) return h;
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
}
