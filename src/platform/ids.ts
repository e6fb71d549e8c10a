import { systemRandom, type Random } from './random.js';

/** A new random id with a kind prefix (c_ connection, s_ session, ...), for logs and audit rows. */
export function newId(prefix: string, random: Random = systemRandom): string {
  return prefix + random.bytes(9).toString('base64url');
}
