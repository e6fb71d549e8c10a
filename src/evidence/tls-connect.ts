import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { Clock } from '../platform/clock.js';

export interface TlsTarget {
  host: string;
  port: number;
  /** PEM file of the CA (or CAs) the server certificate must chain to; nothing else is trusted. */
  caFile: string;
  /** A client certificate and key (mutual TLS), both or neither. */
  certFile?: string;
  keyFile?: string;
  /** The name the server certificate must carry (DNS or IP SAN), also sent as SNI; `host` by default. */
  serverName?: string;
}

/**
 * Opens a TLS connection whose server certificate chains to `caFile` and names the expected
 * host: TLS 1.2 at least, never an unverified peer. The files are read on every call, so renewed
 * certificates take effect at the next connection. `timeoutMs` is on the injected clock. The
 * socket keeps one 'error' listener for its whole life (an 'error' without one crashes Node); the
 * caller adds its own for errors after the handshake.
 */
export async function connectTls(t: TlsTarget, clock: Clock, timeoutMs: number): Promise<tls.TLSSocket> {
  const expected = t.serverName ?? t.host;
  const [ca, cert, key] = await Promise.all([readFile(t.caFile), t.certFile ? readFile(t.certFile) : undefined, t.keyFile ? readFile(t.keyFile) : undefined]);
  const s = tls.connect({
    host: t.host,
    port: t.port,
    ca,
    ...(cert && key ? { cert, key } : {}),
    // SNI takes names only; an IP is still checked against the certificate's IP SANs.
    ...(net.isIP(expected) ? {} : { servername: expected }),
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
    checkServerIdentity: (_host, peer) => tls.checkServerIdentity(expected, peer),
  });
  s.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      const cancel = clock.setTimeout(() => done(new Error(`no TLS session within ${timeoutMs} ms`)), timeoutMs);
      const done = (e?: Error): void => {
        cancel();
        s.off('secureConnect', ok).off('error', done).off('close', closed);
        if (e) reject(e);
        else resolve();
      };
      const ok = (): void => done(s.authorized ? undefined : new Error(`server certificate not trusted: ${String(s.authorizationError)}`));
      const closed = (): void => done(new Error('connection closed during the TLS handshake'));
      s.once('secureConnect', ok).once('error', done).once('close', closed);
    });
  } catch (e) {
    s.destroy();
    throw e;
  }
  return s;
}
