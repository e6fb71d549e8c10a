import { generateSecret, generateSync, generateURI, verifySync } from 'otplib';

/** RFC 6238 parameters tmuxgate uses: SHA-1, 6 digits, 30 s steps (what authenticator apps do). */
export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;

export type TotpCheck = { ok: true; step: number } | { ok: false; reason: 'malformed' | 'wrong' | 'replayed' };

/** A fresh 160-bit base32 secret. */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** The otpauth:// URI an authenticator app scans. */
export function totpUri(issuer: string, user: string, secret: string): string {
  return generateURI({ issuer, label: user, secret, digits: TOTP_DIGITS, period: TOTP_PERIOD_S });
}

/** The code for `secret` at `nowMs` (tests and benchmarks; no command prints a code). */
export function totpCode(secret: string, nowMs: number): string {
  return generateSync({ secret, epoch: Math.floor(nowMs / 1000), digits: TOTP_DIGITS, period: TOTP_PERIOD_S });
}

/**
 * Checks `code` at `nowMs`, accepting `window` steps either side, and never a step at or before
 * `lastStep` (the replay guard). Anything but exactly six digits is malformed, not an exception.
 */
export function checkTotp(secret: string, code: string, nowMs: number, window: number, lastStep: number): TotpCheck {
  const token = code.trim();
  if (!/^\d{6}$/.test(token)) return { ok: false, reason: 'malformed' };
  let r;
  try {
    r = verifySync({
      secret,
      token,
      epoch: Math.floor(nowMs / 1000),
      epochTolerance: [window * TOTP_PERIOD_S, window * TOTP_PERIOD_S],
      digits: TOTP_DIGITS,
      period: TOTP_PERIOD_S,
    });
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (!r.valid || !('timeStep' in r)) return { ok: false, reason: 'wrong' };
  if (r.timeStep <= lastStep) return { ok: false, reason: 'replayed' };
  return { ok: true, step: r.timeStep };
}
