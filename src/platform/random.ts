import { createHash, randomBytes, randomInt } from 'node:crypto';

/**
 * Chance, injected: everything that draws random bytes or numbers takes a Random, so a test can
 * replay the same draws (a seeded fake) instead of asserting around them.
 */
export interface Random {
  /** `n` uniformly random bytes. */
  bytes(n: number): Buffer;
  /** A uniformly random integer in [0, n). */
  int(n: number): number;
  /** A uniformly random number in [0, 1), for chance that guards nothing (load shedding, jitter); never for secrets. */
  float(): number;
}

/** bytes and int from the operating system's CSPRNG (node:crypto); float is Math.random, as before. */
export const systemRandom: Random = {
  bytes: (n) => randomBytes(n),
  int: (n) => randomInt(n),
  float: () => Math.random(),
};

/**
 * A deterministic Random for tests: SHA-256 in counter mode over `seed`, so the same seed gives
 * the same draws. Never for keys or nonces outside tests.
 */
export class SeededRandom implements Random {
  private counter = 0;
  constructor(private readonly seed: string | number = 1) {}
  bytes(n: number): Buffer {
    const out: Buffer[] = [];
    for (let have = 0; have < n; have += 32) out.push(createHash('sha256').update(`${this.seed}:${this.counter++}`).digest());
    return Buffer.concat(out).subarray(0, n);
  }
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`int(n) needs a positive integer, got ${n}`);
    return Math.floor(this.float() * n);
  }
  float(): number {
    return this.bytes(6).readUIntBE(0, 6) / 2 ** 48;
  }
}
