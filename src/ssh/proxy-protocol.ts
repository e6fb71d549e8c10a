import net from 'node:net';
import { IPV4, ipv6Text } from '../platform/cidr.js';

/**
 * The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's proxy-protocol.txt defines
 * it: the header a load balancer writes before the client's bytes so that the server learns the
 * client's address. Pure: bytes in, "more" | header | error out; no sockets, no timers.
 *
 * What a receiver must not get wrong (the spec's own words, section 2): it must not guess whether
 * a header is present, must not start processing before a complete and valid header, and must
 * abort on anything that does not match exactly. So there is no lenient mode here.
 */

/** The longest v1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6 addresses and ports). */
export const V1_MAX_BYTES = 107;
/** The v2 signature: 12 bytes that no text protocol starts with (a NUL in the 5th place). */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/**
 * Address block plus TLVs accepted after the 16 fixed bytes of a v2 header. The spec allows up
 * to 65,535; HAProxy's largest (IPv6 + unique id + SSL details) stays far below this, and a
 * bound keeps one slow trusted connection from holding 64 KB.
 */
export const V2_MAX_PAYLOAD = 2048;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

/** One end of the proxied connection, as the proxy saw it. */
export interface Endpoint {
  family: 'IPv4' | 'IPv6';
  /** Canonical text, as Node prints a socket's remoteAddress ("2001:db8::1", "::ffff:192.0.2.1"). */
  address: string;
  port: number;
}

/**
 * `proxy`: a relayed client connection, with the client's endpoints. `local`: the proxy's own
 * connection (v2 LOCAL, sent for health checks; v1 UNKNOWN), which carries no client address.
 */
export type ProxyHeader = { command: 'proxy'; version: 1 | 2; source: Endpoint; destination: Endpoint } | { command: 'local'; version: 1 | 2 };

/** Why bytes are not an acceptable header; also the metric label and the audit reason. */
export type ProxyFault = 'not-a-proxy-header' | 'bad-version' | 'bad-command' | 'malformed' | 'unsupported-family' | 'too-long';

export type ProxyStep =
  | { kind: 'more' }
  /** `length` bytes were the header; `rest` is what followed it in the same bytes (the client's). */
  | { kind: 'header'; header: ProxyHeader; length: number; rest: Buffer }
  | { kind: 'error'; fault: ProxyFault; detail: string };

const MORE: ProxyStep = { kind: 'more' };
const fault = (f: ProxyFault, detail: string): ProxyStep => ({ kind: 'error', fault: f, detail });

/** Whether `a` and `b` agree on their common length (so `a` may still become `b`, or starts with it). */
function agrees(a: Buffer, b: Buffer): boolean {
  const n = Math.min(a.length, b.length);
  return a.subarray(0, n).equals(b.subarray(0, n));
}

/** Whether bytes start (or may yet start) like a PROXY header of either version. */
export function looksLikeProxyHeader(b: Buffer): boolean {
  return b.length > 0 && (agrees(b, V2_SIGNATURE) || agrees(b, V1_PREFIX));
}

/**
 * Parses the start of a connection's bytes: everything received so far, however it was split.
 * Returns `more` only while the bytes are a valid prefix of a header that fits the bounds, so a
 * caller that buffers until a non-`more` answer never holds more than 16 + V2_MAX_PAYLOAD bytes
 * (plus the last chunk).
 */
export function parseProxyHeader(b: Buffer): ProxyStep {
  if (b.length === 0) return MORE;
  if (b[0] === V2_SIGNATURE[0]) return parseV2(b);
  if (b[0] === V1_PREFIX[0]) return parseV1(b);
  return fault('not-a-proxy-header', 'the connection does not start with a PROXY header');
}

function parseV2(b: Buffer): ProxyStep {
  if (!agrees(b, V2_SIGNATURE)) return fault('not-a-proxy-header', 'not the PROXY v2 signature');
  if (b.length < 13) return MORE;
  const version = b[12]! >> 4;
  const command = b[12]! & 0x0f;
  if (version !== 2) return fault('bad-version', `PROXY v2 signature with version ${version}`);
  if (command > 1) return fault('bad-command', `PROXY v2 command ${command}`);
  if (b.length < 14) return MORE;
  const family = b[13]! >> 4;
  const transport = b[13]! & 0x0f;
  if (family > 3 || transport > 2) return fault('malformed', `PROXY v2 family/protocol byte 0x${b[13]!.toString(16).padStart(2, '0')}`);
  if (b.length < 16) return MORE;
  const len = b.readUInt16BE(14);
  if (len > V2_MAX_PAYLOAD) return fault('too-long', `PROXY v2 header announces ${len} bytes (at most ${V2_MAX_PAYLOAD})`);
  if (b.length < 16 + len) return MORE;
  const length = 16 + len;
  const done = (header: ProxyHeader): ProxyStep => ({ kind: 'header', header, length, rest: b.subarray(length) });
  // LOCAL: the proxy's own connection; the spec says to ignore the family and any address block.
  if (command === 0) return done({ command: 'local', version: 2 });
  // Only TCP over IPv4 or IPv6 names a client we can hold to account; UDP, AF_UNIX and UNSPEC do not.
  const addrLen = b[13] === 0x11 ? 4 : b[13] === 0x21 ? 16 : 0;
  if (!addrLen) return fault('unsupported-family', `PROXY v2 family/protocol byte 0x${b[13]!.toString(16).padStart(2, '0')} (only TCP over IPv4 or IPv6)`);
  // TLVs after the addresses are skipped: nothing in them changes who the client is.
  if (len < 2 * addrLen + 4) return fault('malformed', `PROXY v2 address block of ${len} bytes is too short`);
  const at = (i: number) => b.subarray(16 + i * addrLen, 16 + (i + 1) * addrLen);
  const ports = 16 + 2 * addrLen;
  const endpoint = (addr: Buffer, port: number): Endpoint =>
    addrLen === 4 ? { family: 'IPv4', address: [...addr].join('.'), port } : { family: 'IPv6', address: ipv6Text(addr), port };
  return done({ command: 'proxy', version: 2, source: endpoint(at(0), b.readUInt16BE(ports)), destination: endpoint(at(1), b.readUInt16BE(ports + 2)) });
}

/** 16 bytes -> the text Node gives a socket's address (compressed, lower case, mapped IPv4 dotted). */

const PORT = /^(?:0|[1-9]\d{0,4})$/;

function parseV1(b: Buffer): ProxyStep {
  if (!agrees(b, V1_PREFIX)) return fault('not-a-proxy-header', 'not a PROXY v1 line');
  // Only printable US-ASCII before CRLF; a lone CR or LF ends nothing and is refused. The CR may
  // stand at most at V1_MAX_BYTES - 2, so that the whole line fits in V1_MAX_BYTES.
  let end = -1;
  for (let i = V1_PREFIX.length; i < b.length && i < V1_MAX_BYTES - 1; i++) {
    const c = b[i]!;
    if (c === 0x0d) {
      if (i + 1 >= b.length) break;
      if (b[i + 1] !== 0x0a) return fault('malformed', 'PROXY v1 line with a CR not followed by LF');
      end = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return fault('malformed', `PROXY v1 line with byte 0x${c.toString(16).padStart(2, '0')}`);
  }
  if (end < 0) {
    // The CRLF must end within the first 107 bytes.
    return b.length >= V1_MAX_BYTES ? fault('too-long', `PROXY v1 line without CRLF in ${V1_MAX_BYTES} bytes`) : MORE;
  }
  const length = end + 2;
  const parts = b.subarray(V1_PREFIX.length, end).toString('latin1').split(' ');
  const done = (header: ProxyHeader): ProxyStep => ({ kind: 'header', header, length, rest: b.subarray(length) });
  // UNKNOWN: the sender could not name the client; whatever follows on the line is ignored.
  if (parts[0] === 'UNKNOWN') return done({ command: 'local', version: 1 });
  if (parts[0] !== 'TCP4' && parts[0] !== 'TCP6') return fault('malformed', 'PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN');
  if (parts.length !== 5) return fault('malformed', `PROXY v1 ${parts[0]} line needs exactly 4 fields after the protocol`);
  const [, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const family = parts[0] === 'TCP4' ? 'IPv4' : 'IPv6';
  const address = (s: string): string | null => {
    if (family === 'IPv4') return IPV4.test(s) ? s : null;
    // Hex digits, colons and an embedded IPv4 tail only: no zone ("%eth0"), no brackets.
    return /^[0-9A-Fa-f:.]+$/.test(s) && net.isIPv6(s) ? new net.SocketAddress({ address: s, family: 'ipv6' }).address : null;
  };
  const port = (s: string): number | null => (PORT.test(s) && Number(s) <= 65535 ? Number(s) : null);
  const [sa, da, sp, dp] = [address(src), address(dst), port(sport), port(dport)];
  if (sa === null || da === null) return fault('malformed', `PROXY v1 ${parts[0]} line with an address that is not canonical ${family}`);
  if (sp === null || dp === null) return fault('malformed', 'PROXY v1 line with a port that is not 0-65535 without leading zeros');
  return done({ command: 'proxy', version: 1, source: { family, address: sa, port: sp }, destination: { family, address: da, port: dp } });
}

/**
 * Accumulates a connection's first bytes until they hold a whole header or cannot be one. After
 * the answer is no longer `more`, the same answer is returned and nothing more is buffered.
 */
export class ProxyHeaderParser {
  private buf: Buffer = Buffer.alloc(0);
  private answer: ProxyStep = MORE;

  /** Bytes received so far (for telling a truncated header from none at all). */
  get received(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): ProxyStep {
    if (this.answer.kind !== 'more') return this.answer;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.answer = parseProxyHeader(this.buf);
    return this.answer;
  }
}
