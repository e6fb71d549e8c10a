import { z } from 'zod';
import { duration } from './duration.js';

/**
 * The `evidence` part of the config (off-box copies of the audit log), with the few syslog facts
 * the schema checks against. The shipper itself is src/evidence/.
 */

/** Facility names of RFC 5424 §6.2.1 and their codes. */
export const FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

/** rsyslog's default maxMessageSize: a longer octet-counted frame is split in two there. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8096;
/** The smallest limit we accept: RFC 5425 receivers MUST take 2048 octets. */
export const MIN_MAX_MESSAGE_BYTES = 2048;

/** A facility by name ("authpriv", "local3") or code 0-23; the parsed value is the code. */
const facility = z
  .union([z.enum(Object.keys(FACILITIES) as [keyof typeof FACILITIES, ...(keyof typeof FACILITIES)[]]), z.number().int().min(0).max(23)])
  .transform((v) => (typeof v === 'number' ? v : FACILITIES[v]));

/**
 * `evidence.syslog`: audit events as RFC 5424 syslog over TLS (RFC 5425) to one collector. The
 * server certificate is always verified against caFile; certFile and keyFile add a client
 * certificate (mutual TLS). See docs/evidence.md.
 */
export const SyslogConfigSchema = z
  .strictObject({
    host: z.string().min(1),
    /** 6514 is the port RFC 5425 registers for syslog over TLS. */
    port: z.number().int().min(1).max(65535).default(6514),
    caFile: z.string().min(1),
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** The name the server certificate must carry (and SNI); `host` by default. */
    serverName: z.string().min(1).max(253).optional(),
    facility: facility.default(FACILITIES.authpriv),
    /** HOSTNAME in every message: the node's name; os.hostname() by default. */
    hostname: z
      .string()
      .regex(/^[\x21-\x7e]{1,255}$/, 'printable ASCII without spaces, at most 255 characters')
      .optional(),
    /**
     * buffer: keep serving while the collector is away; the audit table holds the backlog and the
     * lag shows in metrics and the compliance report. required: fail closed once the lag exceeds
     * maxLagEvents (no new sessions; live sessions end).
     */
    onFailure: z.enum(['buffer', 'required']).default('buffer'),
    /** The lag bound: audit rows written locally but not yet confirmed sent. */
    maxLagEvents: z.number().int().min(1).default(10_000),
    /** The longest message the collector takes whole (rsyslog: global maxMessageSize, default 8096). */
    maxMessageBytes: z
      .number()
      .int()
      .min(MIN_MAX_MESSAGE_BYTES)
      .max(1 << 20)
      .default(DEFAULT_MAX_MESSAGE_BYTES),
    /** How long a connection must stay up after a write before the cursor moves past it. */
    confirmAfter: duration('1s'),
  })
  .superRefine((c, ctx) => {
    if ((c.certFile === undefined) !== (c.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: [c.certFile === undefined ? 'certFile' : 'keyFile'], message: 'certFile and keyFile go together (mutual TLS)' });
    }
  });

/** The longest time between two anchors: the issue asks for "at least every 60 s". */
export const MAX_ANCHOR_INTERVAL_MS = 60_000;

/**
 * `evidence.recordings.postgres`: sealed chunks and anchors into tables of a PostgreSQL database,
 * through a role that may INSERT and SELECT only (docs/evidence.md gives the GRANTs). Without url
 * and urlFile the store's own database and role are used (the compliance report then fails: the
 * store's role owns the tables and could alter them).
 */
export const PostgresSinkConfigSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
      .optional(),
    /** A file (mode 0600) holding the URL, to keep its password out of the config. */
    urlFile: z.string().min(1).optional(),
    pool: z.number().int().min(1).max(50).default(4),
  })
  .refine((c) => !(c.url && c.urlFile), { message: 'give url or urlFile, not both' });

/**
 * `evidence.recordings.s3`: one segment object per shipper batch (the records of any number of
 * recordings), one catalog per writer a minute (which segments hold which session's records) and
 * one object per anchor round, to any S3-compatible endpoint (docs/evidence.md). Credentials: the two files,
 * else the AWS SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles).
 * `objectLock` adds the retention headers to every PUT; enforcing them is the bucket's.
 */
export const S3SinkConfigSchema = z
  .strictObject({
    /** e.g. https://s3.eu-central-1.amazonaws.com or a MinIO/Ceph URL; the SDK's default for `region` when absent. */
    endpoint: z
      .string()
      .regex(/^https?:\/\/[^\s]+$/, 'an http(s):// URL')
      .optional(),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    region: z.string().min(1).default('us-east-1'),
    /** Prepended to every key ("tmuxgate/gw1/"); empty by default. */
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9._-]+\/)*$/, 'path segments ending in /')
      .default(''),
    forcePathStyle: z.boolean().default(false),
    accessKeyIdFile: z.string().min(1).optional(),
    secretAccessKeyFile: z.string().min(1).optional(),
    objectLock: z
      .strictObject({
        mode: z.enum(['GOVERNANCE', 'COMPLIANCE']).default('COMPLIANCE'),
        /** Retain-until = write time + this many days (HIPAA keeps documentation six years: 2192). */
        retainDays: z.number().int().min(1).max(36_500),
      })
      .optional(),
  })
  .refine((c) => (c.accessKeyIdFile === undefined) === (c.secretAccessKeyFile === undefined), {
    message: 'accessKeyIdFile and secretAccessKeyFile go together',
  });

/**
 * `evidence.recordings`: every sealed chunk, once durable in the local file, also shipped off the
 * box in order, with the chain heads (anchors) at least every `anchorInterval`. See docs/evidence.md.
 */
export const RecordingsOffsiteConfigSchema = z
  .strictObject({
    /** buffer: keep serving over the bound (the local files hold the backlog); required: fail closed over it. */
    onFailure: z.enum(['buffer', 'required']).default('buffer'),
    /** The lag bound: bytes durable locally but not yet acknowledged off the box (memory holds at most this much). */
    maxLagBytes: z
      .number()
      .int()
      .min(65_536)
      .max(4 * 1024 ** 3)
      .default(64 * 1024 * 1024),
    anchorInterval: duration('60s').refine((v) => v >= 1000 && v <= MAX_ANCHOR_INTERVAL_MS, { message: 'between 1s and 60s' }),
    postgres: PostgresSinkConfigSchema.optional(),
    s3: S3SinkConfigSchema.optional(),
  })
  .refine((c) => c.postgres || c.s3, { message: 'name at least one sink: postgres or s3' });

/** `evidence`: off-box copies of the audit log, the recordings and their anchors. */
export const EvidenceConfigSchema = z
  .strictObject({
    syslog: SyslogConfigSchema.optional(),
    recordings: RecordingsOffsiteConfigSchema.optional(),
  })
  .prefault({});

export type SyslogConfig = z.output<typeof SyslogConfigSchema>;
export type SyslogConfigInput = z.input<typeof SyslogConfigSchema>;
export type RecordingsOffsiteConfig = z.output<typeof RecordingsOffsiteConfigSchema>;
export type RecordingsOffsiteConfigInput = z.input<typeof RecordingsOffsiteConfigSchema>;
export type PostgresSinkConfig = z.output<typeof PostgresSinkConfigSchema>;
export type S3SinkConfig = z.output<typeof S3SinkConfigSchema>;
