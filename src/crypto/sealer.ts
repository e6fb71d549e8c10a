import { createCipheriv, createDecipheriv } from 'node:crypto';
import { systemRandom, type Random } from '../platform/random.js';

export const NONCE_LEN = 12;
export const TAG_LEN = 16;

/**
 * Authenticated encryption under one key, the only place AES-256-GCM is written out. Two
 * layouts, because two on-disk formats predate this interface and must keep opening:
 * - `seal`/`open`: a fresh random nonce kept with the data, `nonce(12) | ciphertext | tag(16)`
 *   (master-key seals after their version byte, the keyframe cache after its magic);
 * - `sealWith`/`openWith`: a nonce the caller owns and stores elsewhere, `ciphertext | tag(16)`
 *   (recording chunks, whose nonce is `seq` inside the authenticated chunk header). The caller
 *   guarantees a nonce is never used twice under one key.
 * `open*` throws when the tag does not verify (wrong key, altered data or AAD).
 */
export interface Sealer {
  /** Encrypts `plain` binding `aad`, under a fresh random nonce: nonce | ciphertext | tag. */
  seal(plain: Buffer, aad: Buffer): Buffer;
  /** Opens what `seal` made; throws if it does not authenticate. */
  open(blob: Buffer, aad: Buffer): Buffer;
  /** Encrypts under the caller's `nonce` (unique per key): ciphertext | tag. */
  sealWith(nonce: Buffer, plain: Buffer, aad: Buffer): Buffer;
  /** Opens what `sealWith` made with the same nonce; throws if it does not authenticate. */
  openWith(nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer;
}

/** AES-256-GCM under `key` (32 bytes); nonces for `seal` come from `random`. */
export function aesGcmSealer(key: Buffer, random: Random = systemRandom): Sealer {
  if (key.length !== 32) throw new RangeError(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  const sealWith = (nonce: Buffer, plain: Buffer, aad: Buffer): Buffer => {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(aad);
    return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  };
  const openWith = (nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer => {
    if (sealed.length < TAG_LEN) throw new Error('sealed data is shorter than its tag');
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_LEN)), d.final()]);
  };
  return {
    sealWith,
    openWith,
    seal(plain, aad) {
      const nonce = random.bytes(NONCE_LEN);
      return Buffer.concat([nonce, sealWith(nonce, plain, aad)]);
    },
    open(blob, aad) {
      if (blob.length < NONCE_LEN + TAG_LEN) throw new Error('sealed data is too short');
      return openWith(blob.subarray(0, NONCE_LEN), blob.subarray(NONCE_LEN), aad);
    },
  };
}

/**
 * A Sealer for tests that wraps a real one and fails on demand: while `failSeal` / `failOpen` is
 * set, every such call throws, so a test sees how its caller behaves when encryption fails.
 */
export class FaultySealer implements Sealer {
  failSeal = false;
  failOpen = false;
  constructor(private readonly inner: Sealer) {}
  seal(plain: Buffer, aad: Buffer): Buffer {
    this.check('seal');
    return this.inner.seal(plain, aad);
  }
  open(blob: Buffer, aad: Buffer): Buffer {
    this.check('open');
    return this.inner.open(blob, aad);
  }
  sealWith(nonce: Buffer, plain: Buffer, aad: Buffer): Buffer {
    this.check('seal');
    return this.inner.sealWith(nonce, plain, aad);
  }
  openWith(nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer {
    this.check('open');
    return this.inner.openWith(nonce, sealed, aad);
  }
  private check(op: 'seal' | 'open'): void {
    if (op === 'seal' ? this.failSeal : this.failOpen) throw new Error(`injected ${op} failure`);
  }
}
