import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Paths pino blanks out in every line, whatever a caller passes. */
export const REDACT_PATHS = [
  'secret',
  '*.secret',
  'code',
  '*.code',
  'token',
  '*.token',
  'password',
  '*.password',
  'masterKey',
  '*.masterKey',
  'answers',
  '*.answers',
];

/** Builds the gateway logger; tests pass their own destination to read the JSON lines. */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.TMUXGATE_LOG_LEVEL ?? 'info',
      base: { app: 'tmuxgate' },
      redact: { paths: REDACT_PATHS, censor: '<secret>' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
