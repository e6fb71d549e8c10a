import { TgError } from '../errors.js';

/**
 * A component's config checks itself when it is built (Teleport's CheckAndSetDefaults): the first
 * required dependency that is absent fails the start with "<component>: missing <name>", instead
 * of a TypeError the first time a user needs it. Returns `deps` unchanged.
 */
export function requireDeps<T extends object>(component: string, deps: T, names: readonly (keyof T & string)[]): T {
  if (!deps || typeof deps !== 'object') throw new TgError('TG_ERR_INTERNAL', `${component}: missing its configuration`);
  for (const name of names) {
    if (deps[name] === undefined || deps[name] === null) throw new TgError('TG_ERR_INTERNAL', `${component}: missing ${name}`);
  }
  return deps;
}
