import { z } from 'zod';
import { canonicalJson } from '../config/load.js';

/**
 * What a purge attests, signed with the gateway's Ed25519 audit key and carried by the
 * `recording.purged` audit event: which recording (its final chain head and chunk count, so the
 * tombstone names exactly the content that was destroyed), under which retention rule, why, by
 * whom and when. A verifier needs only these fields and the audit public key.
 */
export const TombstoneSchema = z.strictObject({
  v: z.literal(1),
  sessionId: z.string().max(64),
  /** Chunks durably written, and the hash of the last one (the recording's final chain head). */
  chunks: z.number().int().min(0),
  finalHash: z.string().max(64),
  reason: z.string().max(500),
  /** The retention rule: the recording's role, the period fixed when it started, its end and expiry. */
  role: z.string().max(200),
  retentionMs: z.number().int().positive(),
  endedAt: z.number().int(),
  expiresAt: z.number().int(),
  purgedAt: z.number().int(),
  by: z.string().max(200),
});
export type Tombstone = z.infer<typeof TombstoneSchema>;

/** The event's fields: the tombstone and its signature (base64). */
export const TombstoneEventFields = TombstoneSchema.extend({ signature: z.string().max(200) });

const DOMAIN = 'tmuxgate-tombstone-v1\0';

/** Bytes a tombstone signature covers: a domain tag and the canonical JSON of every field. */
export function tombstoneSigned(t: Tombstone): Buffer {
  return Buffer.from(DOMAIN + canonicalJson(TombstoneSchema.parse(t)));
}

/** Splits a `recording.purged` event's fields into the tombstone and its signature; null when they are not one. */
export function readTombstone(fields: unknown): { tombstone: Tombstone; signature: Buffer } | null {
  const p = TombstoneEventFields.safeParse(fields);
  if (!p.success) return null;
  const { signature, ...tombstone } = p.data;
  return { tombstone, signature: Buffer.from(signature, 'base64') };
}
