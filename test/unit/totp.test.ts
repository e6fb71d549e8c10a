import { describe, expect, it } from 'vitest';
import { generateSync } from 'otplib';
import { checkTotp, totpCode, totpUri } from '../../src/auth/totp.js';

// RFC 6238 Appendix B, SHA-1 seed "12345678901234567890" (base32 below), 8 digits.
const RFC_SEED_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('TOTP (RFC 6238)', () => {
  it.each(VECTORS)('matches the RFC test vector at T=%i', (t, code) => {
    expect(generateSync({ secret: RFC_SEED_B32, epoch: t, digits: 8 })).toBe(code);
    expect(totpCode(RFC_SEED_B32, t * 1000)).toBe(code.slice(2)); // 6-digit codes are the low digits
  });

  const now = 1_800_000_015_000;
  const secret = RFC_SEED_B32;

  it('accepts one step either side and nothing further', async () => {
    for (const d of [-1, 0, 1]) expect(checkTotp(secret, totpCode(secret, now + d * 30_000), now, 1, -1).ok).toBe(true);
    for (const d of [-2, 2]) expect(checkTotp(secret, totpCode(secret, now + d * 30_000), now, 1, -1)).toEqual({ ok: false, reason: 'wrong' });
  });

  it('never accepts a step at or before the last spent one', async () => {
    const r = checkTotp(secret, totpCode(secret, now), now, 1, -1);
    expect(r.ok).toBe(true);
    const step = (r as { step: number }).step;
    expect(checkTotp(secret, totpCode(secret, now), now, 1, step)).toEqual({ ok: false, reason: 'replayed' });
    expect(checkTotp(secret, totpCode(secret, now - 30_000), now, 1, step)).toEqual({ ok: false, reason: 'replayed' });
    expect(checkTotp(secret, totpCode(secret, now + 30_000), now, 1, step).ok).toBe(true);
  });

  it.each(['', 'abc', '12345', '1234567', '12 345', '１２３４５６', 'x'.repeat(10_000)])('treats %j as malformed, without throwing', (bad) => {
    expect(checkTotp(secret, bad, now, 1, -1)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('makes an otpauth URI authenticator apps read', async () => {
    expect(totpUri('tmuxgate', 'alice', 'ABCDEFGHIJKLMNOP')).toMatch(/^otpauth:\/\/totp\/tmuxgate:alice\?.*secret=ABCDEFGHIJKLMNOP/);
  });
});
