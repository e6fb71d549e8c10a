import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { loadOrCreate, readPrivate, writeAtomic } from './key-files.js';
import { aesGcmSealer, NONCE_LEN, TAG_LEN, type Sealer } from './sealer.js';
import { systemRandom, type Random } from '../platform/random.js';
import { TgError } from '../errors.js';

export const MASTER_KEY_FILE = 'master.key';
const SEAL_VERSION = 1;

/** Seals and opens small secrets (TOTP seeds, recording data keys) under a master key. */
export interface KeyProvider {
  /** Id of the key used for new seals. */
  readonly keyId: string;
  /** Encrypts `plain`, binding `aad` (e.g. "totp:user:7"); returns version|nonce|ciphertext|tag. */
  seal(plain: Buffer, aad: string): Buffer;
  /** Decrypts a blob sealed under key `keyId`; throws TG_ERR_MASTER_KEY_MISMATCH if it cannot. */
  open(blob: Buffer, aad: string, keyId: string): Buffer;
}

/** The id of a master key: a hash prefix, so it names the key without revealing it. */
export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update('tmuxgate master key id\0').update(key).digest('hex').slice(0, 16);
}

/** AES-256-GCM under one master key (and older keys kept for opening only). */
export class MasterKeyProvider implements KeyProvider {
  readonly keyId: string;
  /** One Sealer per loaded key; the key bytes live only inside them. */
  private readonly sealers = new Map<string, Sealer>();
  constructor(current: Buffer, older: Buffer[] = [], random: Random = systemRandom) {
    if (current.length !== 32) throw new TgError('TG_ERR_KEY_UNREADABLE', 'master key must be 32 bytes');
    this.keyId = masterKeyId(current);
    for (const k of [current, ...older]) this.sealers.set(masterKeyId(k), aesGcmSealer(k, random));
  }
  /** The ids of every key loaded: the current one and those retired by rotations. */
  get keyIds(): string[] {
    return [...this.sealers.keys()];
  }
  /** Layout on disk: version(1) | nonce(12) | ciphertext | tag(16), i.e. the version byte then Sealer.seal's blob. */
  seal(plain: Buffer, aad: string): Buffer {
    return Buffer.concat([Buffer.from([SEAL_VERSION]), this.sealers.get(this.keyId)!.seal(plain, Buffer.from(aad))]);
  }
  open(blob: Buffer, aad: string, keyId: string): Buffer {
    const sealer = this.sealers.get(keyId);
    if (!sealer) throw new TgError('TG_ERR_MASTER_KEY_MISMATCH', `secret was sealed with master key ${keyId}, which is not loaded`);
    if (blob.length < 1 + NONCE_LEN + TAG_LEN || blob[0] !== SEAL_VERSION) {
      throw new TgError('TG_ERR_MASTER_KEY_MISMATCH', 'sealed secret is malformed');
    }
    try {
      return sealer.open(blob.subarray(1), Buffer.from(aad));
    } catch {
      throw new TgError('TG_ERR_MASTER_KEY_MISMATCH', 'sealed secret does not open with the master key (wrong key or altered data)');
    }
  }
}

function decodeKeyFile(data: Buffer, file: string): Buffer {
  const key = Buffer.from(data.toString('utf8').trim(), 'base64');
  if (key.length !== 32) throw new TgError('TG_ERR_KEY_UNREADABLE', `${file}: expected 32 bytes of base64`);
  return key;
}

/** Retired master keys (kept after a rotation so nothing sealed under them is ever lost). */
function retiredKeys(keysDir: string): Buffer[] {
  if (!existsSync(keysDir)) return [];
  return readdirSync(keysDir)
    .filter((f) => /^master\.key\.(retired-[0-9a-f]{16}|next)$/.test(f))
    .map((f) => decodeKeyFile(readPrivate(path.join(keysDir, f)), f));
}

/** Loads keysDir/master.key (creating it, 0600, on first start) plus any retired keys for opening. */
export function loadMasterKey(keysDir: string, opts: { create: boolean }): { provider: MasterKeyProvider; created: boolean } {
  const file = path.join(keysDir, MASTER_KEY_FILE);
  if (!opts.create) return { provider: new MasterKeyProvider(decodeKeyFile(readPrivate(file), file), retiredKeys(keysDir)), created: false };
  const { data, created } = loadOrCreate(file, () => randomBytes(32).toString('base64') + '\n', 0o600);
  return { provider: new MasterKeyProvider(decodeKeyFile(data, file), retiredKeys(keysDir)), created };
}

/**
 * Rotation, in crash-safe steps: write the new key as master.key.next, let `rewrap` re-seal
 * everything under it (one transaction), then retire the old key file and promote the new one.
 * A crash at any point leaves every secret openable with the files on disk.
 */
export async function rotateMasterKey(
  keysDir: string,
  rewrap: (p: MasterKeyProvider) => Promise<number>,
): Promise<{ oldId: string; newId: string; rewrapped: number }> {
  const file = path.join(keysDir, MASTER_KEY_FILE);
  const old = decodeKeyFile(readPrivate(file), file);
  const fresh = randomBytes(32);
  const next = path.join(keysDir, 'master.key.next');
  writeAtomic(next, fresh.toString('base64') + '\n', 0o600);
  const provider = new MasterKeyProvider(fresh, [old, ...retiredKeys(keysDir)]);
  const rewrapped = await rewrap(provider);
  const oldId = masterKeyId(old);
  renameSync(file, path.join(keysDir, `master.key.retired-${oldId}`));
  renameSync(next, file);
  return { oldId, newId: provider.keyId, rewrapped };
}
