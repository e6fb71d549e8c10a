import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { ensureKeysDir, readPrivate, writeAtomic } from '../crypto/key-files.js';
import { fingerprintOf } from './public-key.js';
import { TgError } from '../errors.js';

export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

export interface HostKey {
  /** OpenSSH private key text, handed to ssh2. */
  privateKey: Buffer;
  /** "ssh-ed25519 AAAA..." */
  publicLine: string;
  fingerprint: string;
  file: string;
  created: boolean;
}

/**
 * An ed25519 key pair in OpenSSH format. ssh2 1.17's generator drops a leading zero byte of the
 * public key about once in 300 keys (a 31-byte key no client accepts), so a pair is only taken
 * once its public half parses to the full 32 bytes.
 */
export function generateEd25519(comment = 'tmuxgate host key'): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const pub = ssh2.utils.parseKey(pair.public);
    const priv = ssh2.utils.parseKey(pair.private);
    if (pub instanceof Error || Array.isArray(pub) || priv instanceof Error || Array.isArray(priv)) continue;
    if (pub.getPublicSSH().length === 51 && priv.getPublicSSH().equals(pub.getPublicSSH())) return pair;
  }
}

/** Loads the ed25519 host key from keysDir, generating it (0600, dir 0700) on first start. */
export function loadHostKey(keysDir: string, opts: { create: boolean } = { create: true }): HostKey {
  const file = path.join(keysDir, HOST_KEY_FILE);
  let created = false;
  if (!existsSync(file)) {
    if (!opts.create) throw new TgError('TG_ERR_KEY_UNREADABLE', `no host key at ${file}; run: tmuxgate init`);
    ensureKeysDir(keysDir);
    const pair = generateEd25519();
    writeAtomic(file, pair.private, 0o600);
    writeAtomic(`${file}.pub`, pair.public + '\n', 0o644);
    created = true;
  }
  const privateKey = readPrivate(file);
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw new TgError('TG_ERR_KEY_UNREADABLE', `${file}: not a readable private key (${parsed instanceof Error ? parsed.message : '?'})`);
  }
  if (parsed.type !== 'ssh-ed25519') {
    throw new TgError('TG_ERR_KEY_UNREADABLE', `${file}: host key must be ed25519 (RSA host keys would let clients negotiate SHA-1 signatures)`);
  }
  const blob = parsed.getPublicSSH();
  const publicLine = `ssh-ed25519 ${blob.toString('base64')}`;
  const pubFile = `${file}.pub`;
  if (!existsSync(pubFile) || !readFileSync(pubFile, 'utf8').startsWith(publicLine)) writeAtomic(pubFile, publicLine + ' tmuxgate host key\n', 0o644);
  return { privateKey, publicLine, fingerprint: fingerprintOf(blob), file, created };
}

/** A known_hosts line for this gateway ("[host]:port ssh-ed25519 AAAA..."). */
export function knownHostsLine(host: string, port: number, publicLine: string): string {
  const h = port === 22 ? host : `[${host}]:${port}`;
  return `${h} ${publicLine}`;
}
