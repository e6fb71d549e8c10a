import { describe, expect, it } from 'vitest';
import { SeededRandom, systemRandom } from '../../src/platform/random.js';
import { newId } from '../../src/platform/ids.js';
import { newRecoveryCode } from '../../src/store/recovery-codes.js';

describe('injected randomness', () => {
  it('a seeded Random repeats its draws; another seed does not', async () => {
    const a = new SeededRandom('x');
    const b = new SeededRandom('x');
    expect(a.bytes(40).equals(b.bytes(40))).toBe(true);
    expect(a.int(1000)).toBe(b.int(1000));
    expect(new SeededRandom('y').bytes(16).equals(new SeededRandom('x').bytes(16))).toBe(false);
  });

  it('int(n) and float() stay in range, for the seeded and the system Random', async () => {
    for (const r of [new SeededRandom(3), systemRandom]) {
      for (let i = 0; i < 500; i++) {
        const n = r.int(7);
        expect(Number.isInteger(n) && n >= 0 && n < 7).toBe(true);
        const f = r.float();
        expect(f >= 0 && f < 1).toBe(true);
      }
      expect(r.bytes(33)).toHaveLength(33);
    }
  });

  it('ids and recovery codes come from the Random they are given', async () => {
    expect(newId('s_', new SeededRandom(1))).toBe(newId('s_', new SeededRandom(1)));
    expect(newRecoveryCode(new SeededRandom(1))).toBe(newRecoveryCode(new SeededRandom(1)));
    expect(newRecoveryCode(new SeededRandom(1))).toMatch(/^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
  });
});
