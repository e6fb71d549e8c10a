import { z } from 'zod';
import { parseCidr } from '../platform/cidr.js';

/**
 * The `redaction:` section of the gateway's config: what auditors' views mask (docs/redaction.md).
 * It lives in config/ because the config schema takes it in; the detectors that read it are in
 * src/redaction/ (a higher layer).
 */

/** The built-in detectors, by the kind of identifier each finds. */
export const BUILT_IN = ['ssn', 'mrn', 'account', 'dob', 'phone', 'email', 'hpbn', 'card', 'ip', 'url'] as const;
export type BuiltInKind = (typeof BUILT_IN)[number];

/** The kinds that label-driven detection knows words for (a deployment can add words). */
export const LABELLED = ['ssn', 'mrn', 'account', 'dob', 'phone', 'hpbn'] as const;
export type LabelledKind = (typeof LABELLED)[number];

/** Query parameter and path segment names whose value in a URL is an identifier (case-insensitive, a plural "s" ignored). */
export const DEFAULT_URL_NAMES = [
  'patient',
  'patientid',
  'patient_id',
  'pid',
  'mrn',
  'id',
  'ssn',
  'dob',
  'mbi',
  'member',
  'memberid',
  'member_id',
  'account',
  'accountid',
  'acct',
  'subscriber',
  'subscriberid',
  'encounter',
  'chart',
  'person',
  'personid',
  'identifier',
];

/**
 * Addresses that are not a person's: loopback, private (RFC 1918, ULA), link-local, CGNAT,
 * multicast, unspecified, documentation and benchmarking ranges. Operations screens are full of
 * them; a patient's device address reaches a server through the internet, so public addresses are
 * masked (a deployment adds its own public ranges here).
 */
export const DEFAULT_IP_ALLOW = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '192.0.2.0/24',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '::/128',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
  '2001:db8::/32',
];

const hex = (bytes: number) => z.string().regex(new RegExp(`^(?:[0-9a-fA-F]{2}){${bytes},}$`), `hex, at least ${bytes} bytes`);

const pattern = z
  .strictObject({
    /** Shown in the mask, upper-cased: `[EMPID]`. */
    kind: z.string().regex(/^[a-z][a-z0-9-]{0,11}$/, 'lower-case letters, digits and -, at most 12'),
    regex: z.string().min(1).max(1000),
    ignoreCase: z.boolean().default(false),
    /** The capture group to mask (0: the whole match). */
    group: z.number().int().min(0).max(9).default(0),
  })
  .superRefine((p, ctx) => {
    try {
      const re = new RegExp(p.regex, 'u');
      if (re.test('')) ctx.addIssue({ code: 'custom', path: ['regex'], message: 'matches the empty string' });
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['regex'], message: `not a valid regular expression: ${(e as Error).message}` });
    }
  });

export const redactionSchema = z.strictObject({
  /**
   * Views of sessions (replay, export, search result lines, observe, watch by anyone but the
   * session's own user) are redacted unless this is false. Off only for deployments that hold no
   * PHI: it unmasks every view for everyone, without a grant.
   */
  enabled: z.boolean().default(true),
  /** Built-in detectors to turn off. */
  disable: z.array(z.enum(BUILT_IN)).default([]),
  /** Deployment patterns (MRN and account formats of the local systems). */
  patterns: z.array(pattern).max(100).default([]),
  /** More label words per kind ("Pt No", "Enc #"): plain text, matched case-insensitively as whole words. */
  labels: z.partialRecord(z.enum(LABELLED), z.array(z.string().min(2).max(40)).max(50)).default({}),
  urlNames: z.array(z.string().min(1).max(40)).default(DEFAULT_URL_NAMES),
  /** Networks whose addresses are not masked (CIDR). */
  ipAllow: z
    .array(z.string())
    .default(DEFAULT_IP_ALLOW)
    .superRefine((list, ctx) => {
      for (const [i, c] of list.entries()) {
        const r = parseCidr(c);
        if (typeof r === 'string') ctx.addIssue({ code: 'custom', path: [i], message: r });
      }
    }),
  /** E-mail domains whose addresses are not masked (the deployment's staff), subdomains included. */
  emailAllow: z.array(z.string().regex(/^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/, 'a domain name')).default([]),
  /**
   * Known identifiers, never their values: sha256(salt || normalise(value)) in hex. The salt is
   * per deployment so the list cannot be matched against other lists.
   */
  known: z
    .strictObject({
      salt: hex(16),
      sha256: z.array(z.string().regex(/^[0-9a-fA-F]{64}$/)).max(1_000_000),
      kind: z
        .string()
        .regex(/^[a-z][a-z0-9-]{0,11}$/)
        .default('id'),
      /** Candidates shorter than this (normalised) are not hashed. */
      minLength: z.number().int().min(3).max(64).default(5),
    })
    .optional(),
  /** The character that pads a mask after its `[KIND]` label. */
  fill: z
    .string()
    .regex(/^[\x21-\x7e]$/, 'one printable ASCII character')
    .default('*'),
});

/** What a deployment writes. */
export type RedactionOptions = z.input<typeof redactionSchema>;
/** After defaults. */
export type RedactionConfig = z.output<typeof redactionSchema>;
