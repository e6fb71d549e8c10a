import { createHash } from 'node:crypto';

/** The `redaction:` config schema lives in config/ (the gateway's config takes it in); re-exported for this layer's users. */
export {
  BUILT_IN,
  LABELLED,
  DEFAULT_URL_NAMES,
  DEFAULT_IP_ALLOW,
  redactionSchema,
  type BuiltInKind,
  type LabelledKind,
  type RedactionOptions,
  type RedactionConfig,
} from '../config/redaction.js';

/**
 * The form a known identifier is hashed in: Unicode NFKC, upper case, letters and digits only
 * ("078-05-1120" and "078 05 1120" are one value; so are "a.b@x.org" and "AB@XORG": an exact
 * list of known values loses nothing by it, and separators vary between screens).
 */
export const normaliseIdentifier = (value: string): string =>
  value
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[^\p{L}\p{N}]/gu, '');

/** sha256(salt || normalise(value)) in hex: how a deployment prepares its `known.sha256` list. */
export function hashIdentifier(saltHex: string, value: string): string {
  return createHash('sha256').update(Buffer.from(saltHex, 'hex')).update(normaliseIdentifier(value), 'utf8').digest('hex');
}
