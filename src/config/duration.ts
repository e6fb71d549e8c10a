import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "90", "90s", "15m", "12h", "1d" (a bare number means seconds) into milliseconds. */
export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
  if (!m) return null;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']!);
}

/**
 * The longest duration any setting takes: a year. Timers run in chained steps (see
 * platform/clock.ts), so this is a sanity bound on input, not Node's 24.8-day timer limit.
 */
export const MAX_DURATION_MS = 365 * 86_400_000;

/** Why a parsed duration is out of bounds, or null when it is fine. */
export function durationBoundProblem(ms: number): string | null {
  return ms > MAX_DURATION_MS ? `longer than the maximum of ${formatDuration(MAX_DURATION_MS)}` : null;
}

/** Formats milliseconds as the shortest exact duration string ("15m", "90s"). */
export function formatDuration(ms: number): string {
  for (const u of ['d', 'h', 'm', 's'] as const) {
    const f = UNIT_MS[u]!;
    if (ms >= f && ms % f === 0) return `${ms / f}${u}`;
  }
  return `${ms}ms`;
}

/** A zod field for durations with a default ("15m" or ms); the parsed value is milliseconds. */
export const duration = (def: string | number) => durationField().default(typeof def === 'number' ? def : parseDuration(def)!);

/** A zod field for durations; the parsed value is milliseconds. */
export const durationField = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. 30s, 15m, 12h)` });
      return z.NEVER;
    }
    const bound = durationBoundProblem(ms);
    if (bound) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is ${bound}` });
      return z.NEVER;
    }
    return ms;
  });

/**
 * A retention year counts 366 days, so that N years of retention never end before N calendar
 * years have passed (six calendar years hold at most two leap days: 2192 days; 6y here is 2196).
 */
export const RETENTION_YEAR_MS = 366 * 86_400_000;
/** HIPAA keeps required documentation six years (45 CFR 164.316(b)(2)(i)): the default retention. */
export const SIX_YEARS_MS = 6 * RETENTION_YEAR_MS;
/** The longest retention a role or the config takes. */
export const MAX_RETENTION_MS = 100 * RETENTION_YEAR_MS;

/** Parses a retention period: "6y", "2200d", "12h" (a bare number means seconds); null when invalid or not positive. */
export function parseRetention(v: string | number): number | null {
  if (typeof v === 'string') {
    const y = /^\s*(\d+)\s*y\s*$/.exec(v);
    if (y) return Number(y[1]) > 0 && Number(y[1]) <= 100 ? Number(y[1]) * RETENTION_YEAR_MS : null;
  }
  const ms = parseDuration(v);
  return ms !== null && ms > 0 && ms <= MAX_RETENTION_MS ? ms : null;
}

/** Formats a retention period in whole years when it is one ("6y"), else as a duration. */
export function formatRetention(ms: number): string {
  return ms % RETENTION_YEAR_MS === 0 ? `${ms / RETENTION_YEAR_MS}y` : formatDuration(ms);
}

/** A zod field for a retention period with a default ("6y"); the parsed value is milliseconds. */
export const retentionField = (def: string) =>
  z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const ms = parseRetention(v);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `not a retention period: ${JSON.stringify(v)} (use e.g. 6y, 2200d; at most 100y)` });
        return z.NEVER;
      }
      return ms;
    })
    .default(parseRetention(def)!);
