import { TgError, EXIT } from '../errors.js';
import { escapeControls, safeJson } from '../platform/text.js';

/**
 * One field of user-controlled text (names, key comments, env names, titles, paths, audit details)
 * as the CLI prints it: control characters escaped, so nothing a user typed or a shell printed
 * reaches the admin's terminal as an escape sequence. Every human-readable CLI output goes through it.
 */
export const printable = (v: unknown): string => escapeControls(v === null || v === undefined ? '-' : String(v));

/** Prints rows as an aligned table (or "(none)"). */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => printable(Array.isArray(v) ? v.join(',') : v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd() + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}

/** Prints a value as one JSON document (C1 and bidi controls escaped as well as C0). */
export function printJson(v: unknown): void {
  process.stdout.write(safeJson(v, 2) + '\n');
}

/** One line on stderr, "tmuxgate: CODE: message", and the mapped exit status. */
export function reportError(e: unknown): number {
  if (e instanceof TgError) {
    process.stderr.write(`tmuxgate: ${e.code}: ${escapeControls(e.message)}\n`);
    return e.exitStatus;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`tmuxgate: TG_ERR_INTERNAL: ${escapeControls(msg.split('\n')[0] ?? '')}\n`);
  if (process.env.TMUXGATE_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return EXIT.internal;
}
