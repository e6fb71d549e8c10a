import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { openAdmin, type AdminContext } from '../admin/context.js';
import { durationBoundProblem, parseDuration } from '../config/duration.js';
import { TgError } from '../errors.js';

/** Adds the options every command takes. */
export function withCommon(cmd: Command): Command {
  return cmd.option('--config <file>', 'config file (default: $TMUXGATE_CONFIG, else built-in defaults)');
}

/** The config for a command (its own --config, or the root's). */
export function configOf(cmd: Command): Config {
  const o = cmd.optsWithGlobals() as { config?: string };
  return loadConfig(o.config ?? null);
}

/** Runs `fn` with an admin context, closing the store afterwards. */
export function withAdmin<T>(cmd: Command, fn: (a: AdminContext) => T): T {
  const a = openAdmin(configOf(cmd));
  try {
    return fn(a);
  } finally {
    a.close();
  }
}

/** Like withAdmin for commands that wait on something (OS accounts, a tmux client). */
export async function withAdminAsync<T>(cmd: Command, fn: (a: AdminContext) => Promise<T>): Promise<T> {
  const a = openAdmin(configOf(cmd));
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}

/** A positive duration flag ("15m", "12h"), at most MAX_DURATION_MS, in milliseconds; undefined when absent. */
export function durationFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  if (d === null || d <= 0) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag}: not a duration: ${v} (use e.g. 15m, 12h)`);
  const bound = durationBoundProblem(d);
  if (bound) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag}: ${v} is ${bound}`);
  return d;
}

/** "Example:" help text. */
export function example(...lines: string[]): string {
  return `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}
