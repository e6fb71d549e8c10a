import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { openAdmin, type AdminContext } from '../admin/context.js';
import { durationBoundProblem, parseDuration, parseRetention } from '../config/duration.js';
import { EXIT, TgError } from '../errors.js';

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
export async function withAdmin<T>(cmd: Command, fn: (a: AdminContext) => T | Promise<T>): Promise<T> {
  const a = await openAdmin(configOf(cmd));
  try {
    return await fn(a);
  } finally {
    await a.close();
  }
}

/** Exit statuses that commands returned, per command tree (the root), for runCli to read once. */
const statuses = new WeakMap<Command, number>();
const rootOf = (c: Command): Command => (c.parent ? rootOf(c.parent) : c);

/**
 * A command handler for commander: `fn` gets commander's arguments (the last is the Command) and
 * returns the exit status, which is kept for runCli; no command sets process.exitCode itself.
 */
export function handler<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args) => {
    const cmd = args.at(-1) as Command;
    statuses.set(rootOf(cmd), await fn(...args));
  };
}

/** The exit status the command run through `program` returned (ok when none ran, as for --help). */
export function exitStatusOf(program: Command): number {
  return statuses.get(program) ?? EXIT.ok;
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

/** A retention flag ("6y", "2200d"), in milliseconds; undefined when absent. */
export function retentionFlag(v: string | undefined, flag = '--retention'): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseRetention(v);
  if (ms === null) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag}: not a retention period: ${v} (use e.g. 6y or 2200d; at most 100y)`);
  return ms;
}

/** A time flag: "2026-11-23T10:00", "2026-11-23", or a duration meaning "that long ago" ("2h", "7d"). */
export function parseTime(v: string, flag: string, now = Date.now()): number {
  const d = parseDuration(v);
  if (d !== null && /[smhd]$/.test(v)) return now - d;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new TgError('TG_ERR_INVALID_ARGUMENT', `${flag}: not a time: ${v} (use 2026-11-23T10:00 or 2h for two hours ago)`);
  return t;
}

/** "Example:" help text. */
export function example(...lines: string[]): string {
  return `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}
