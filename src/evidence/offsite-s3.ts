import type { S3Client } from '@aws-sdk/client-s3';
import type { S3SinkConfig } from '../config/evidence.js';
import type { Clock } from '../platform/clock.js';
import { readPrivate } from '../crypto/key-files.js';
import { recordsAt } from '../recording/offsite.js';
import { holdingsOf, type Anchor, type OffsiteHoldings, type OffsiteRecord, type OffsiteStore } from './offsite-store.js';

type S3 = typeof import('@aws-sdk/client-s3');

/** Object key names under the prefix: `<session>/header`, `<session>/<seq, 10 digits>`, `<session>/trailer`, `anchors/...`. */
export const s3Keys = {
  record: (prefix: string, r: { sessionId: string; kind: string; seq: number }): string =>
    `${prefix}${r.sessionId}/${r.kind === 'chunk' ? String(r.seq).padStart(10, '0') : r.kind}`,
  anchor: (prefix: string, a: Anchor): string =>
    a.kind === 'audit'
      ? `${prefix}anchors/audit/${String(a.position).padStart(12, '0')}-${a.ts}-${safe(a.node)}`
      : `${prefix}anchors/recordings/${a.subject}/${String(a.position).padStart(10, '0')}-${a.ts}-${safe(a.node)}`,
};
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);

/** What a test may put between the store and the SDK (a client with middleware that records the requests). */
export interface S3OffsiteOptions {
  client?: S3Client;
  /** Requests in flight at once (different recordings; one recording's records go one after another). */
  concurrency?: number;
}

/**
 * The S3 sink: one object per record of a recording file (its exact bytes; the chain hash in
 * x-amz-meta-chain-hash), one JSON object per anchor, to any S3-compatible endpoint, with
 * ObjectLockMode and ObjectLockRetainUntilDate on every PUT when `objectLock` is configured.
 * Whether a locked object can be deleted is the bucket's business: appendOnly() asks it.
 * The SDK is loaded only when the sink is configured.
 */
export class S3Offsite implements OffsiteStore {
  readonly sink = 's3' as const;
  readonly destination: string;
  private readonly prefix: string;

  private constructor(
    private readonly sdk: S3,
    private readonly client: S3Client,
    private readonly c: S3SinkConfig,
    private readonly clock: Clock,
    private readonly concurrency: number,
  ) {
    this.prefix = c.prefix;
    this.destination = `s3://${c.bucket}/${c.prefix} at ${c.endpoint ?? `region ${c.region}`}`;
  }

  static async open(c: S3SinkConfig, clock: Clock, o: S3OffsiteOptions = {}): Promise<S3Offsite> {
    // The SDK warns on every Node below 22 that future versions will need it; Node 20 is supported here.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const sdk = await import('@aws-sdk/client-s3');
    const credentials =
      c.accessKeyIdFile && c.secretAccessKeyFile
        ? { accessKeyId: readPrivate(c.accessKeyIdFile).toString('utf8').trim(), secretAccessKey: readPrivate(c.secretAccessKeyFile).toString('utf8').trim() }
        : undefined;
    const client =
      o.client ??
      new sdk.S3Client({
        region: c.region,
        ...(c.endpoint ? { endpoint: c.endpoint } : {}),
        forcePathStyle: c.forcePathStyle,
        ...(credentials ? { credentials } : {}),
        maxAttempts: 2,
        requestHandler: { connectionTimeout: 10_000, requestTimeout: 30_000 },
      });
    return new S3Offsite(sdk, client, c, clock, o.concurrency ?? 16);
  }

  private lock(): { ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE'; ObjectLockRetainUntilDate?: Date } {
    const l = this.c.objectLock;
    if (!l) return {};
    return { ObjectLockMode: l.mode, ObjectLockRetainUntilDate: new Date(this.clock.now() + l.retainDays * 86_400_000) };
  }

  private async putObject(key: string, body: Buffer, meta: Record<string, string>, contentType = 'application/octet-stream'): Promise<void> {
    await this.client.send(
      new this.sdk.PutObjectCommand({ Bucket: this.c.bucket, Key: key, Body: body, ContentType: contentType, Metadata: meta, ...this.lock() }),
    );
  }

  /** One recording's records in order; recordings side by side, at most `concurrency` at once. */
  async put(records: readonly OffsiteRecord[], node: string): Promise<string[]> {
    const bySession = new Map<string, OffsiteRecord[]>();
    for (const r of records) {
      const list = bySession.get(r.sessionId) ?? [];
      list.push(r);
      bySession.set(r.sessionId, list);
    }
    const lists = [...bySession.values()];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < lists.length) {
        for (const r of lists[next++]!) await this.putObject(s3Keys.record(this.prefix, r), r.bytes, { 'chain-hash': r.hash, node: safe(node) });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, lists.length) }, worker));
    return []; // S3 has no insert-if-absent every server supports: a resend writes the same bytes again (a new version where versioned).
  }

  private async list(prefix: string, delimiter?: string): Promise<{ keys: string[]; prefixes: string[] }> {
    const keys: string[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new this.sdk.ListObjectsV2Command({
          Bucket: this.c.bucket,
          Prefix: prefix,
          ...(delimiter ? { Delimiter: delimiter } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
      for (const p of r.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { keys, prefixes };
  }

  private async get(key: string): Promise<Buffer> {
    const r = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.c.bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  }

  private itemsOf(sessionId: string, keys: string[]): { kind: string; seq: number; key: string }[] {
    const base = `${this.prefix}${sessionId}/`;
    return keys.flatMap((k) => {
      const name = k.slice(base.length);
      if (name === 'header') return [{ kind: 'header', seq: 0, key: k }];
      if (name === 'trailer') return [{ kind: 'trailer', seq: -1, key: k }];
      return /^\d{10}$/.test(name) ? [{ kind: 'chunk', seq: Number(name), key: k }] : [];
    });
  }

  async holdings(sessionId: string): Promise<OffsiteHoldings> {
    const items = this.itemsOf(sessionId, (await this.list(`${this.prefix}${sessionId}/`)).keys);
    const h = holdingsOf(items);
    if (h.trailer !== null) {
      const t = recordsAt(await this.get(s3Keys.record(this.prefix, { sessionId, kind: 'trailer', seq: 0 })), 1).records[0];
      h.trailer = t?.kind === 'trailer' ? t.seq : 0;
    }
    return h;
  }

  /** Every record, read back and parsed from its bytes (kind, seq and hash come from the bytes, not the key). */
  async records(sessionId: string): Promise<OffsiteRecord[]> {
    const items = this.itemsOf(sessionId, (await this.list(`${this.prefix}${sessionId}/`)).keys);
    const order = { header: 0, chunk: 1, trailer: 2 } as Record<string, number>;
    items.sort((a, b) => order[a.kind]! - order[b.kind]! || a.seq - b.seq);
    const out: OffsiteRecord[] = [];
    for (const i of items) {
      const bytes = await this.get(i.key);
      const parsed = recordsAt(bytes, i.kind === 'header' ? 0 : 1).records[0];
      // An object that is not one whole record is kept as it is, for verify to name.
      const whole = parsed && parsed.bytes.length === bytes.length;
      const kind = i.kind as OffsiteRecord['kind'];
      out.push(whole ? { sessionId, kind: parsed.kind, seq: parsed.seq, bytes, hash: parsed.hash } : { sessionId, kind, seq: i.seq, bytes, hash: '' });
    }
    return out;
  }

  async sessions(): Promise<string[]> {
    const { prefixes } = await this.list(this.prefix, '/');
    return prefixes
      .map((p) => p.slice(this.prefix.length, -1))
      .filter((s) => s !== 'anchors')
      .sort();
  }

  async putAnchors(anchors: readonly Anchor[]): Promise<void> {
    for (const a of anchors) {
      const body = Buffer.from(JSON.stringify({ ...a, signature: a.signature.toString('base64') }));
      await this.putObject(s3Keys.anchor(this.prefix, a), body, { node: safe(a.node) }, 'application/json');
    }
  }

  async anchors(kind: 'audit' | 'recording', subject?: string): Promise<Anchor[]> {
    const base = kind === 'audit' ? `${this.prefix}anchors/audit/` : `${this.prefix}anchors/recordings/${subject !== undefined ? `${subject}/` : ''}`;
    const out: Anchor[] = [];
    for (const k of (await this.list(base)).keys) {
      try {
        const j = JSON.parse((await this.get(k)).toString('utf8')) as Omit<Anchor, 'signature'> & { signature: string };
        out.push({ ...j, signature: Buffer.from(j.signature, 'base64') });
      } catch {
        // Not one of ours: an anchor that does not parse cannot vouch for anything.
      }
    }
    return out.sort((a, b) => a.subject.localeCompare(b.subject) || a.position - b.position || a.ts - b.ts);
  }

  async appendOnly(): Promise<string> {
    const l = this.c.objectLock;
    if (!l) return "unknown: evidence.recordings.s3.objectLock is not set; whether these credentials can overwrite or delete objects is the bucket policy's";
    try {
      const r = await this.client.send(new this.sdk.GetObjectLockConfigurationCommand({ Bucket: this.c.bucket }));
      const on = r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
      if (on) return `yes (bucket Object Lock enabled; every object ${l.mode} for ${l.retainDays} days)`;
      return 'no: the bucket does not have Object Lock enabled, so the retention headers are not enforced';
    } catch (e) {
      return `unknown: cannot read the bucket's Object Lock configuration (${(e as Error).name}: ${(e as Error).message})`;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
