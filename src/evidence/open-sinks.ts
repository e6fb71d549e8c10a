import os from 'node:os';
import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { OffsiteStore } from './offsite-store.js';
import { PostgresOffsite } from './offsite-postgres.js';
import { S3Offsite, type S3OffsiteOptions } from './offsite-s3.js';

/** This node's name in off-box records and anchors: evidence.syslog.hostname, else the host name. */
export function nodeName(config: Config): string {
  return config.evidence.syslog?.hostname ?? os.hostname();
}

/** Opens every configured recording sink (none without evidence.recordings); closes what it opened if one fails. */
export async function openOffsiteStores(config: Config, clock: Clock, o: { name?: string; s3?: S3OffsiteOptions } = {}): Promise<OffsiteStore[]> {
  const r = config.evidence.recordings;
  if (!r) return [];
  const out: OffsiteStore[] = [];
  try {
    if (r.postgres) out.push(PostgresOffsite.open(config, r.postgres, clock, o.name));
    if (r.s3) out.push(await S3Offsite.open(r.s3, clock, o.s3));
  } catch (e) {
    await Promise.all(out.map((s) => s.close().catch(() => {})));
    throw e;
  }
  return out;
}
