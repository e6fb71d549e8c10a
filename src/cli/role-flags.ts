import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { TgError } from '../errors.js';
import type { SandboxSpec } from '../store/roles.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** --sandbox, --ro, --rw, --hide: the same flags on role add and role edit. */
export function withSandboxFlags(cmd: Command): Command {
  return cmd
    .option('--sandbox <on|off>', 'run the role in a bubblewrap sandbox: host read-only, own PID namespace, private /tmp')
    .option('--ro <path>', 'with --sandbox on: keep this path read-only (repeatable)', collect)
    .option('--rw <path>', 'with --sandbox on: make this path writable (repeatable)', collect)
    .option('--hide <path>', 'with --sandbox on: hide this path (repeatable)', collect);
}

/** The sandbox flags as commander parses them. */
export interface SandboxFlags {
  sandbox?: string;
  ro?: string[];
  rw?: string[];
  hide?: string[];
}

/** The sandbox the flags ask for: a spec, null (off), or undefined (not mentioned). Paths must exist. */
export function sandboxFromFlags(o: SandboxFlags): SandboxSpec | null | undefined {
  const paths = [...(o.ro ?? []), ...(o.rw ?? []), ...(o.hide ?? [])];
  if (o.sandbox === undefined) {
    if (paths.length) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--ro, --rw and --hide go with --sandbox on');
    return undefined;
  }
  if (o.sandbox === 'off') {
    if (paths.length) throw new TgError('TG_ERR_INVALID_ARGUMENT', '--ro, --rw and --hide go with --sandbox on');
    return null;
  }
  if (o.sandbox !== 'on') throw new TgError('TG_ERR_INVALID_ARGUMENT', '--sandbox takes on or off');
  for (const p of paths) {
    if (!p.startsWith('/')) throw new TgError('TG_ERR_INVALID_ARGUMENT', `sandbox path ${JSON.stringify(p.slice(0, 80))} must be absolute`);
    if (!existsSync(p)) throw new TgError('TG_ERR_INVALID_ARGUMENT', `sandbox path ${p} does not exist`);
  }
  return { readOnlyPaths: o.ro ?? [], readWritePaths: o.rw ?? [], hiddenPaths: o.hide ?? [] };
}
