import { randomBytes } from 'node:crypto';

/** A new random id with a kind prefix (c_ connection, s_ session, ...), for logs and audit rows. */
export function newId(prefix: string): string {
  return prefix + randomBytes(9).toString('base64url');
}
