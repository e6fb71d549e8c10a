import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { TgError } from '../errors.js';
import { mpintBits, readSshStrings } from './key-wire.js';

/** User key types accepted for enrolment and publickey auth (an RSA key signs with SHA-2 only: see verifySignature). */
export const USER_KEY_TYPES = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa', // key type; its signatures must use rsa-sha2-256/512, enforced at verification
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;

/** Minimum RSA modulus size for enrolled user keys. */
export const MIN_RSA_BITS = 2048;

/** A user public key as enrolled: wire blob, type, fingerprint, comment. */
import type { PublicKeyInfo } from '../store/keys.js';
export type { PublicKeyInfo };

/** `SHA256:<base64 without padding>` of a wire-format key, exactly as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Fingerprints look like SHA256: followed by 43 base64 characters. */
export const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

function keyBits(type: string, blob: Buffer): number | null {
  const parts = readSshStrings(blob);
  if (!parts) return null;
  if (type === 'ssh-rsa') return parts[2] ? mpintBits(parts[2]) : null;
  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') return 256;
  const m = /nistp(\d+)/.exec(type);
  return m ? Number(m[1]) : null;
}

/**
 * Parses one authorized_keys line ("type base64 [comment]"). Refuses options prefixes
 * (tmuxgate enforces its own policy), unknown or weak types, RSA under 2048 bits and DSA.
 */
export function parseAuthorizedKey(line: string): PublicKeyInfo {
  const text = line.trim();
  if (!text || text.length > 16_384 || /[\0\r\n]/.test(text)) {
    throw new TgError('TG_ERR_INVALID_KEY', 'expected one authorized_keys line: "<type> <base64> [comment]"');
  }
  const [type, b64, ...rest] = text.split(/\s+/);
  if (!type || !b64) throw new TgError('TG_ERR_INVALID_KEY', 'expected one authorized_keys line: "<type> <base64> [comment]"');
  if (!(USER_KEY_TYPES as readonly string[]).includes(type)) {
    if (type === 'ssh-dss') throw new TgError('TG_ERR_WEAK_KEY', 'DSA keys are not accepted; use ed25519');
    throw new TgError(
      'TG_ERR_INVALID_KEY',
      `unsupported key type or authorized_keys options present ("${type.slice(0, 40)}"); give just "<type> <base64> [comment]" with type one of ${USER_KEY_TYPES.join(', ')}`,
    );
  }
  const parsed = ssh2.utils.parseKey(`${type} ${b64}`);
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw new TgError('TG_ERR_INVALID_KEY', `not a valid ${type} public key: ${parsed instanceof Error ? parsed.message : 'several keys'}`);
  }
  const blob = parsed.getPublicSSH();
  const declared = readSshStrings(blob)?.[0]?.toString();
  if (declared !== type) throw new TgError('TG_ERR_INVALID_KEY', `key data is of type ${declared ?? '?'} but the line says ${type}`);
  const bits = keyBits(type, blob);
  if (type === 'ssh-rsa' && (bits === null || bits < MIN_RSA_BITS)) {
    throw new TgError('TG_ERR_WEAK_KEY', `RSA key has ${bits ?? '?'} bits; at least ${MIN_RSA_BITS} are required`);
  }
  return { type, blob, fingerprint: fingerprintOf(blob), bits, comment: rest.join(' ').slice(0, 200) };
}

/**
 * Checks a publickey-auth signature. SHA-1 (`ssh-rsa` signatures) is never accepted, whatever
 * the client negotiated: only rsa-sha2-256/512 for RSA keys.
 */
export function verifySignature(blob: Buffer, signed: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
  const key = ssh2.utils.parseKey(blob);
  if (key instanceof Error || Array.isArray(key)) return false;
  if (key.type === 'ssh-rsa' && hashAlgo !== 'sha256' && hashAlgo !== 'sha512') return false;
  try {
    return key.verify(signed, signature, hashAlgo) === true;
  } catch {
    return false;
  }
}
