import { TgError } from '../errors.js';

/**
 * User and role names: lower-case letter first, then letters, digits, '.', '_', '-'; at most 32.
 * '+' is never part of a name: it separates user and role in the SSH login name.
 */
export const NAME_RE = /^[a-z][a-z0-9._-]{0,31}$/;

/** Validates a name at a boundary, with the kind of thing in the message. */
export function checkName(kind: 'user' | 'role', name: string): string {
  if (!NAME_RE.test(name)) {
    throw new TgError('TG_ERR_INVALID_NAME', `invalid ${kind} name ${JSON.stringify(name.slice(0, 40))}: use 1-32 of a-z 0-9 . _ - starting with a letter`);
  }
  return name;
}
