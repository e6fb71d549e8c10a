import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { generateEd25519 } from '../../src/auth/host-key.js';

/**
 * A parsed private key whose signatures are random bytes: what a stranger who holds only a
 * user's public key can send (the server answers the key query with PK_OK, then gets garbage).
 */
export function garbageSigner(privateKeyFile: string): ssh2.ParsedKey {
  const key = ssh2.utils.parseKey(readFileSync(privateKeyFile));
  if (key instanceof Error || Array.isArray(key)) throw new Error('cannot parse key');
  (key as unknown as { sign: () => Buffer }).sign = () => randomBytes(64);
  return key;
}

/** A throwaway key of the stranger's own. */
export function ownKey(): ssh2.ParsedKey {
  // generateEd25519 retries ssh2's generator, which writes a malformed key about 1 time in 400.
  const pair = generateEd25519('stranger');
  const key = ssh2.utils.parseKey(pair.private);
  if (key instanceof Error || Array.isArray(key)) throw new Error(`cannot parse a generated key: ${String(key)}`);
  return key;
}

/**
 * One raw SSH connection from `localAddress` that makes one publickey attempt per entry of
 * `usernames` with `key`, then gives up. Resolves when the connection is gone (the server may
 * end it early, after MaxAuthTries): never rejects, never leaves a socket behind. `prelude` is
 * written before the SSH bytes (a PROXY header).
 */
export function probe(
  port: number,
  localAddress: string,
  usernames: string[],
  key: ssh2.ParsedKey,
  timeoutMs = 15_000,
  prelude?: Buffer,
): Promise<{ authenticated: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    sock.on('error', () => {});
    if (prelude) sock.write(prelude);
    const c = new ssh2.Client();
    let authenticated = false;
    const left = [...usernames];
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ authenticated });
    };
    const timer = setTimeout(() => c.end(), timeoutMs);
    c.on('ready', () => {
      authenticated = true;
      c.end();
    });
    c.on('error', () => {});
    c.on('close', done);
    c.connect({
      sock,
      username: usernames[0] ?? 'x',
      hostVerifier: () => true,
      authHandler: (_methods: unknown, _partial: unknown, next: (a: unknown) => void) => {
        const username = left.shift();
        next(username === undefined ? false : { type: 'publickey', username, key });
      },
    } as unknown as ssh2.ConnectConfig);
  });
}

/** Sockets that connect from `localAddress` and never send a byte (they read, so they see the close). */
export function idleSockets(port: number, localAddress: string, n: number): net.Socket[] {
  return Array.from({ length: n }, () => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => {});
    s.resume();
    return s;
  });
}
