import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3SinkConfig } from '../config/evidence.js';
import type { Clock } from '../platform/clock.js';
import { readPrivate } from '../crypto/key-files.js';
import { recordsAt, type RecordKind } from '../recording/offsite.js';
import { holdingsOf, type Anchor, type OffsiteHoldings, type OffsiteRecord, type OffsiteStore } from './offsite-store.js';

type S3 = typeof import('@aws-sdk/client-s3');

const ts13 = (t: number): string => String(Math.max(0, Math.floor(t))).padStart(13, '0');
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);

/**
 * Object key names under the prefix:
 * - `segments/<ms, 13 digits>-<node>-<id>`: one per put (the records of one shipper batch, of any recordings);
 * - `<session>/manifest-<ms>-<node>-<id>`: which segments hold which records of that session;
 * - `<session>/header`, `<session>/<seq, 10 digits>`, `<session>/trailer`: one object per record,
 *   as versions before segments wrote them (still read);
 * - `anchors/...`.
 */
export const s3Keys = {
  record: (prefix: string, r: { sessionId: string; kind: string; seq: number }): string =>
    `${prefix}${r.sessionId}/${r.kind === 'chunk' ? String(r.seq).padStart(10, '0') : r.kind}`,
  segment: (prefix: string, ts: number, node: string, id: string): string => `${prefix}segments/${ts13(ts)}-${safe(node)}-${id}`,
  manifest: (prefix: string, sessionId: string, ts: number, node: string, id: string): string =>
    `${prefix}${sessionId}/manifest-${ts13(ts)}-${safe(node)}-${id}`,
  anchor: (prefix: string, a: Anchor): string =>
    a.kind === 'audit'
      ? `${prefix}anchors/audit/${String(a.position).padStart(12, '0')}-${a.ts}-${safe(a.node)}`
      : `${prefix}anchors/recordings/${a.subject}/${String(a.position).padStart(10, '0')}-${a.ts}-${safe(a.node)}`,
};

/** The first bytes of a segment object; then a uint32 (big-endian) index length, the index JSON, the records. */
export const SEGMENT_MAGIC = Buffer.from('TGSEG1\n');

/** One record in a segment: kind, seq, chain hash, byte offset in the segment object, length. */
type Entry = [RecordKind, number, string, number, number];

/** A segment's index: per session, the byte range [start, end) of its records (contiguous) and each record. */
interface SegmentIndex {
  v: 1;
  node: string;
  ts: number;
  sessions: Record<string, { start: number; end: number; records: Entry[] }>;
}

/** Where one session's records are: a segment and a byte range of it. */
interface Span {
  key: string;
  start: number;
  end: number;
  records: Entry[];
}

/** A manifest object: the spans of one session written since the previous manifest of the same writer. */
interface Manifest {
  v: 1;
  session: string;
  node: string;
  ts: number;
  segments: Span[];
}

/** Builds one segment: each session's records together, in the order given (file order). */
export function encodeSegment(records: readonly OffsiteRecord[], node: string, ts: number): { body: Buffer; index: SegmentIndex } {
  const bySession = new Map<string, OffsiteRecord[]>();
  for (const r of records) {
    const list = bySession.get(r.sessionId) ?? [];
    list.push(r);
    bySession.set(r.sessionId, list);
  }
  // Offsets are relative to the data until the index length is known.
  const sessions: SegmentIndex['sessions'] = {};
  const parts: Buffer[] = [];
  let at = 0;
  for (const [id, list] of bySession) {
    const start = at;
    const entries: Entry[] = [];
    for (const r of list) {
      entries.push([r.kind, r.seq, r.hash, at, r.bytes.length]);
      parts.push(r.bytes);
      at += r.bytes.length;
    }
    sessions[id] = { start, end: at, records: entries };
  }
  // The JSON's length depends on the offsets written into it: settle it (two rounds at most, as digits grow).
  let base = 0;
  let json = '';
  for (let i = 0; i < 4; i++) {
    const shifted: SegmentIndex['sessions'] = {};
    for (const [id, s] of Object.entries(sessions)) {
      shifted[id] = { start: s.start + base, end: s.end + base, records: s.records.map(([k, q, h, o, n]) => [k, q, h, o + base, n]) };
    }
    json = JSON.stringify({ v: 1, node, ts, sessions: shifted } satisfies SegmentIndex);
    const next = SEGMENT_MAGIC.length + 4 + Buffer.byteLength(json);
    if (next === base) break;
    base = next;
  }
  const head = Buffer.alloc(SEGMENT_MAGIC.length + 4);
  SEGMENT_MAGIC.copy(head);
  head.writeUInt32BE(Buffer.byteLength(json), SEGMENT_MAGIC.length);
  const body = Buffer.concat([head, Buffer.from(json), ...parts]);
  return { body, index: JSON.parse(json) as SegmentIndex };
}

/** The index at the start of a segment object, or null when `head` is not one (or not all of it). */
export function segmentIndexOf(head: Buffer): { index: SegmentIndex | null; need: number } {
  const n = SEGMENT_MAGIC.length + 4;
  if (head.length < n || !head.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) return { index: null, need: 0 };
  const need = n + head.readUInt32BE(SEGMENT_MAGIC.length);
  if (head.length < need) return { index: null, need };
  try {
    const j = JSON.parse(head.subarray(n, need).toString('utf8')) as SegmentIndex;
    return { index: j && j.v === 1 && typeof j.sessions === 'object' ? j : null, need };
  } catch {
    return { index: null, need };
  }
}

/** What a test may put between the store and the SDK (a client with middleware that records the requests). */
export interface S3OffsiteOptions {
  client?: S3Client;
  /** Manifest PUTs in flight at once. */
  concurrency?: number;
  /** A live session's manifest is written at most this often (besides its first and its last, and at each anchor round): 60 s. */
  manifestIntervalMs?: number;
}

/** How far before a session's newest manifest a reader also looks for segments not named in one (a put in flight while it was written). */
const TAIL_SLACK_MS = 120_000;
/** The first bytes of a segment a reader fetches for its index (more when the index is longer). */
const INDEX_PEEK = 64 * 1024;

interface Pending {
  spans: Span[];
  since: number;
  trailer: boolean;
}

/**
 * The S3 sink. Each put (one shipper batch: records of any number of recordings) is ONE object,
 * a segment: an index (per session, which records at which bytes) and the records' exact bytes.
 * Per session, small manifest objects name the segments holding its records: the first at once,
 * then at most every `manifestIntervalMs` (60 s) and at each anchor round, the last with the trailer. A
 * reader lists the session's manifests and, for a recording without a trailer, also scans the
 * segments written since its newest manifest (what a node that stopped had not yet named). Every
 * PUT carries ObjectLockMode and ObjectLockRetainUntilDate when `objectLock` is configured.
 * Whether a locked object can be deleted is the bucket's business: appendOnly() asks it.
 * Objects per record, as earlier versions wrote them, are still read. The SDK is loaded only
 * when the sink is configured.
 */
export class S3Offsite implements OffsiteStore {
  readonly sink = 's3' as const;
  readonly destination: string;
  /**
   * Each put is one request, and a request costs ~2.5-5 ms of CPU here whatever its size (the
   * SDK's middleware, then the loopback kernel work in writev): wait longer for more records than
   * the shipper's 200 ms. Lag p99 stays well under the 2 s target (bench/evidence.mjs).
   */
  readonly lingerMs = 500;
  private readonly prefix: string;
  /** Sessions' spans written to segments but not yet named in a manifest. */
  private readonly pending = new Map<string, Pending>();
  /** Sessions this instance wrote a manifest for (the first one is written at once). */
  private readonly announced = new Set<string>();
  private node = '';
  /** The time in the newest segment key this store wrote (see put). */
  private lastKeyTs = 0;
  /** Segment indexes read (segments are written once: an index read stays valid). */
  private readonly indexes = new Map<string, SegmentIndex | null>();

  private constructor(
    private readonly sdk: S3,
    private readonly client: S3Client,
    private readonly c: S3SinkConfig,
    private readonly clock: Clock,
    private readonly concurrency: number,
    private readonly manifestIntervalMs: number,
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
        // keep-alive is the handler's default: one connection serves put after put.
        requestHandler: { connectionTimeout: 10_000, requestTimeout: 30_000 },
      });
    return new S3Offsite(sdk, client, c, clock, o.concurrency ?? 16, o.manifestIntervalMs ?? 60_000);
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

  /**
   * One segment object for the whole batch, then the manifests that are due: a session's first,
   * one whose trailer came, one not named for `manifestIntervalMs`. A failure throws (the shipper
   * resends the batch: a second segment with the same bytes, which readers take once).
   */
  async put(records: readonly OffsiteRecord[], node: string): Promise<string[]> {
    if (records.length === 0) return [];
    this.node = node;
    const now = this.clock.now();
    // Readers order a node's segments by key and take the first copy of a record: two puts in one
    // millisecond must not be ordered by their random ids (a resend could then count before the
    // original). The key's time is strictly increasing per store.
    this.lastKeyTs = Math.max(now, this.lastKeyTs + 1);
    const key = s3Keys.segment(this.prefix, this.lastKeyTs, node, randomBytes(6).toString('hex'));
    const { body, index } = encodeSegment(records, node, now);
    await this.putObject(key, body, { node: safe(node), records: String(records.length) });
    const due: string[] = [];
    for (const [id, s] of Object.entries(index.sessions)) {
      const p = this.pending.get(id) ?? { spans: [], since: now, trailer: false };
      p.spans.push({ key, ...s });
      p.trailer ||= s.records.some((e) => e[0] === 'trailer');
      this.pending.set(id, p);
      if (!this.announced.has(id) || p.trailer || now - p.since >= this.manifestIntervalMs) due.push(id);
    }
    await this.flush(due);
    return []; // S3 has no insert-if-absent every server supports: a resend is a second segment, read once (equal bytes).
  }

  /** Writes the manifests of these sessions (their pending spans); what fails stays pending and throws. */
  private async flush(ids: readonly string[]): Promise<void> {
    const list = [...ids];
    let next = 0;
    const errors: unknown[] = [];
    const worker = async (): Promise<void> => {
      while (next < list.length) {
        const id = list[next++]!;
        const p = this.pending.get(id);
        if (!p) continue;
        this.pending.delete(id);
        const now = this.clock.now();
        const node = this.node || 'unknown';
        const m: Manifest = { v: 1, session: id, node, ts: now, segments: p.spans };
        try {
          const key = s3Keys.manifest(this.prefix, id, now, node, randomBytes(6).toString('hex'));
          await this.putObject(key, Buffer.from(JSON.stringify(m)), { node: safe(node) }, 'application/json');
          if (p.trailer) this.announced.delete(id);
          else this.announced.add(id);
        } catch (e) {
          const later = this.pending.get(id);
          this.pending.set(id, later ? { spans: [...p.spans, ...later.spans], since: p.since, trailer: p.trailer || later.trailer } : p);
          errors.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, list.length) }, worker));
    if (errors.length) throw errors[0];
  }

  private async list(prefix: string, o: { delimiter?: string; startAfter?: string } = {}): Promise<{ keys: string[]; prefixes: string[] }> {
    const keys: string[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new this.sdk.ListObjectsV2Command({
          Bucket: this.c.bucket,
          Prefix: prefix,
          ...(o.delimiter ? { Delimiter: o.delimiter } : {}),
          ...(o.startAfter && !token ? { StartAfter: o.startAfter } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const x of r.Contents ?? []) if (x.Key) keys.push(x.Key);
      for (const x of r.CommonPrefixes ?? []) if (x.Prefix) prefixes.push(x.Prefix);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { keys, prefixes };
  }

  /** An object, or bytes [start, end) of it; null when it is not there. */
  private async get(key: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    try {
      const r = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.c.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}) }),
      );
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if ((e as Error).name === 'NoSuchKey' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw e;
    }
  }

  private async segmentIndex(key: string): Promise<SegmentIndex | null> {
    if (this.indexes.has(key)) return this.indexes.get(key)!;
    let head = await this.get(key, { start: 0, end: INDEX_PEEK });
    let parsed = head ? segmentIndexOf(head) : { index: null, need: 0 };
    if (head && !parsed.index && parsed.need > head.length) {
      head = await this.get(key, { start: 0, end: parsed.need });
      parsed = head ? segmentIndexOf(head) : parsed;
    }
    this.indexes.set(key, parsed.index);
    return parsed.index;
  }

  /**
   * Where a session's records are: per-record objects of earlier versions (by key), and spans of
   * segments from its manifests, plus, when no trailer is among them, from segments written since
   * its newest manifest that no manifest names yet (all segments when a manifest is unreadable).
   */
  private async locate(sessionId: string): Promise<{ legacy: { kind: RecordKind; seq: number; key: string }[]; spans: Span[]; unnamed: Span[] }> {
    const base = `${this.prefix}${sessionId}/`;
    const legacy: { kind: RecordKind; seq: number; key: string }[] = [];
    const manifests: string[] = [];
    for (const k of (await this.list(base)).keys) {
      const name = k.slice(base.length);
      if (name === 'header') legacy.push({ kind: 'header', seq: 0, key: k });
      else if (name === 'trailer') legacy.push({ kind: 'trailer', seq: -1, key: k });
      else if (/^\d{10}$/.test(name)) legacy.push({ kind: 'chunk', seq: Number(name), key: k });
      else if (name.startsWith('manifest-')) manifests.push(k);
    }
    const spans: Span[] = [];
    let newest = -1;
    let unreadable = false;
    for (const k of manifests.sort()) {
      const raw = await this.get(k);
      try {
        const m = JSON.parse(raw!.toString('utf8')) as Manifest;
        if (m.v !== 1 || m.session !== sessionId || !Array.isArray(m.segments)) throw new Error('not a manifest');
        spans.push(...m.segments);
        newest = Math.max(newest, m.ts);
      } catch {
        unreadable = true; // found below by scanning the segments themselves
      }
    }
    const trailer = legacy.some((l) => l.kind === 'trailer') || spans.some((s) => s.records.some((e) => e[0] === 'trailer'));
    const unnamed: Span[] = [];
    if (newest >= 0 && (!trailer || unreadable)) {
      const named = new Set(spans.map((s) => s.key));
      const startAfter = unreadable ? undefined : `${this.prefix}segments/${ts13(newest - TAIL_SLACK_MS)}`;
      for (const k of (await this.list(`${this.prefix}segments/`, startAfter ? { startAfter } : {})).keys) {
        if (named.has(k)) continue;
        const s = (await this.segmentIndex(k))?.sessions[sessionId];
        if (s) unnamed.push({ key: k, ...s });
      }
    }
    return { legacy, spans: [...spans, ...unnamed], unnamed };
  }

  /**
   * What the store holds of a recording (the shipper's resume asks it). Segments found only by
   * scanning (a node stopped before naming them) are named in this writer's next manifest of the
   * session: once its trailer is named, readers no longer scan.
   */
  async holdings(sessionId: string): Promise<OffsiteHoldings> {
    const { legacy, spans, unnamed } = await this.locate(sessionId);
    if (unnamed.length) {
      const p = this.pending.get(sessionId);
      this.pending.set(sessionId, { spans: [...unnamed, ...(p?.spans ?? [])], since: p?.since ?? this.clock.now(), trailer: p?.trailer ?? false });
    }
    const items: { kind: string; seq: number }[] = legacy.filter((l) => l.kind !== 'trailer');
    for (const s of spans) for (const [kind, seq] of s.records) items.push({ kind, seq });
    const h = holdingsOf(items);
    const legacyTrailer = legacy.find((l) => l.kind === 'trailer');
    if (h.trailer === null && legacyTrailer) {
      const t = recordsAt((await this.get(legacyTrailer.key)) ?? Buffer.alloc(0), 1).records[0];
      h.trailer = t?.kind === 'trailer' ? t.seq : 0;
    }
    return h;
  }

  /**
   * Every record, read back and parsed from its bytes (kind, seq and hash come from the bytes,
   * not from an index or a key). Held twice with equal bytes (a resent batch): once. Held again
   * with other bytes: the first kept, the other returned with no hash (verify names it invalid).
   * A record a manifest names whose segment is gone: returned empty (verify names the gap).
   */
  async records(sessionId: string): Promise<OffsiteRecord[]> {
    const { legacy, spans } = await this.locate(sessionId);
    const got: OffsiteRecord[] = [];
    const parse = (kind: RecordKind, seq: number, bytes: Buffer): OffsiteRecord => {
      const parsed = recordsAt(bytes, kind === 'header' ? 0 : 1).records[0];
      // Bytes that are not one whole record are kept as they are, for verify to name.
      const whole = parsed && parsed.bytes.length === bytes.length;
      return whole ? { sessionId, kind: parsed.kind, seq: parsed.seq, bytes, hash: parsed.hash } : { sessionId, kind, seq, bytes, hash: '' };
    };
    for (const l of legacy) got.push(parse(l.kind, l.seq, (await this.get(l.key)) ?? Buffer.alloc(0)));
    const seen = new Set<string>();
    for (const s of spans.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
      if (seen.has(`${s.key}\0${s.start}`)) continue;
      seen.add(`${s.key}\0${s.start}`);
      const bytes = s.end > s.start ? await this.get(s.key, s) : Buffer.alloc(0);
      for (const [kind, seq, , off, len] of s.records) {
        const rel = off - s.start;
        const rec = bytes && bytes.length === s.end - s.start && rel >= 0 && rel + len <= bytes.length ? bytes.subarray(rel, rel + len) : Buffer.alloc(0);
        got.push(rec.length ? parse(kind, seq, Buffer.from(rec)) : { sessionId, kind, seq, bytes: rec, hash: '' });
      }
    }
    // The first copy of each record counts; equal copies after it are dropped, different ones kept for verify to name.
    const first = new Map<string, OffsiteRecord>();
    const out: OffsiteRecord[] = [];
    for (const r of got) {
      const k = `${r.kind}/${r.kind === 'trailer' ? '' : r.seq}`;
      const f = first.get(k);
      if (!f) {
        first.set(k, r);
        out.push(r);
      } else if (!f.bytes.equals(r.bytes)) out.push({ ...r, hash: '' });
    }
    const order = { header: 0, chunk: 1, trailer: 2 } as Record<string, number>;
    return out.sort((a, b) => order[a.kind]! - order[b.kind]! || a.seq - b.seq);
  }

  /** Sessions with a manifest or per-record objects (a session whose first segment a stopped node could not yet name is not listed). */
  async sessions(): Promise<string[]> {
    const { prefixes } = await this.list(this.prefix, { delimiter: '/' });
    return prefixes
      .map((p) => p.slice(this.prefix.length, -1))
      .filter((s) => s !== 'anchors' && s !== 'segments')
      .sort();
  }

  async putAnchors(anchors: readonly Anchor[]): Promise<void> {
    // Each anchor round also names every segment not yet in a manifest.
    if (this.pending.size) await this.flush([...this.pending.keys()]);
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
        const j = JSON.parse((await this.get(k))!.toString('utf8')) as Omit<Anchor, 'signature'> & { signature: string };
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

  /** Names what is still unnamed (best effort: a reader finds it anyway by scanning), then closes the client. */
  async close(): Promise<void> {
    try {
      if (this.pending.size) await this.flush([...this.pending.keys()]);
    } catch {
      // Left for readers' scan of the segments after a session's newest manifest.
    }
    this.client.destroy();
  }
}
