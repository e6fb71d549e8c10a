import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { openAdmin, type AdminContext } from '../admin/context.js';

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

/** "Example:" help text. */
export function example(...lines: string[]): string {
  return `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}
