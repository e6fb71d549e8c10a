import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadOrCreate, writeAtomic } from './key-files.js';

export const AUDIT_KEY_FILE = 'audit_ed25519.pem';
export const AUDIT_PUB_FILE = 'audit_ed25519.pub.pem';

/** Signs audit chain heads and recording trailers; verification needs only the public key. */
export interface Signer {
  sign(data: Buffer): Buffer;
  readonly publicKeyPem: string;
}

/** Loads or creates the gateway's Ed25519 audit key in keysDir. */
export function loadAuditKey(keysDir: string): Signer & { privateKey: KeyObject } {
  const file = path.join(keysDir, AUDIT_KEY_FILE);
  const { data } = loadOrCreate(file, () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
  const privateKey = createPrivateKey(data);
  const publicKeyPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
  const pubFile = path.join(keysDir, AUDIT_PUB_FILE);
  if (!existsSync(pubFile) || readFileSync(pubFile, 'utf8') !== publicKeyPem) writeAtomic(pubFile, publicKeyPem, 0o644);
  return { privateKey, publicKeyPem, sign: (d) => sign(null, d, privateKey) };
}

/** Checks an Ed25519 signature against a PEM public key. */
export function verifyWithPublicKey(publicKeyPem: string, data: Buffer, signature: Buffer): boolean {
  try {
    return verify(null, data, createPublicKey(publicKeyPem), signature);
  } catch {
    return false;
  }
}
