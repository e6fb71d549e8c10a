import { createHash, randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3SinkConfig } from '../config/evidence.js';
import type { Clock } from '../platform/clock.js';
import { readPrivate } from '../crypto/key-files.js';
import { recordsAt, type RecordKind } from '../recording/offsite.js';
import { holdingsOf, type Anchor, type OffsiteHoldings, type OffsiteIndexHealth, type OffsiteRecord, type OffsiteStore } from './offsite-store.js';

type S3 = typeof import('@aws-sdk/client-s3');

const ts13 = (t: number): string => String(Math.max(0, Math.floor(t))).padStart(13, '0');
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);

/** Session names as keys, catalogs and segment indexes may carry them (ids are `s_` and base64url). */
const SESSION_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const KINDS: ReadonlySet<string> = new Set(['header', 'chunk', 'trailer']);

/**
 * A node name as one key segment: [A-Za-z0-9._-], at most 64 characters, not starting with a dot;
 * when that changed the name, a hash of the real one follows (two names never share a directory).
 */
export function nodeDir(node: string): string {
  const s = safe(node).replace(/^\./, '_');
  return s === node && s !== '' ? s : `${s}-${createHash('sha256').update(node).digest('hex').slice(0, 8)}`;
}

const DAY_MS = 86_400_000;
/** The UTC day of a time, `yyyy-mm-dd`: the directory a writer's objects of that day go to. */
export const dayOf = (t: number): string => new Date(Math.max(0, Math.floor(t))).toISOString().slice(0, 10);
/** A writer directory's name: `<node>-<instance>` (12 hex digits). */
const WRITER = '[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}-[0-9a-f]{12}';
const WRITER_RE = new RegExp(`^${WRITER}$`);
/** A session marker's name: the day, the writer, the time of the first object of the session it wrote that day. */
const MARKER_RE = new RegExp(`^(\\d{4}-\\d{2}-\\d{2})-(${WRITER})-(\\d{13})$`);

/**
 * Object key names under the prefix (`<day>`: the UTC day of the key's time, `yyyy-mm-dd`;
 * `<writer>`: `<node>-<instance>`, a random id per store opened, i.e. per gateway run):
 * - `segs/<day>/<writer>/<ms, 13 digits>-<random>`: one segment per put (the records of one
 *   shipper batch, of any recordings);
 * - `catalogs/<day>/<writer>/<ms>-<random>`: which segments hold which records, of every session
 *   the writer named in that flush (at most once a minute, plus at trailers, anchor rounds and close);
 * - `anchors/batches/<day>/<writer>/<ms>-<random>`: all the anchors of one anchor round;
 * - `sessions/<session>/<day>-<writer>-<ms>`: an empty marker, written with the first object of
 *   that day by that writer that concerns the session (beside a segment, before a catalog or an
 *   anchor batch), named with that object's time: readers of one session list its markers and
 *   read only those writers' objects of those days, from that time on;
 * (s3rver finds common prefixes only one level above objects: nothing lists `<day>/` with a delimiter)
 * earlier layouts, still read: `segs/<writer>/<ms>-<random>`, `catalogs/<writer>/...` and
 * `anchors/batches/<ms>-<node>-<random>` (before days); `segments/<ms>-<node>-<random>` with
 * `<session>/manifest-<ms>-<node>-<random>` (one manifest per session); `<session>/header|<seq, 10
 * digits>|trailer` (one object per record), `anchors/audit/...` and `anchors/recordings/<session>/...`.
 */
export const s3Keys = {
  record: (prefix: string, r: { sessionId: string; kind: string; seq: number }): string =>
    `${prefix}${r.sessionId}/${r.kind === 'chunk' ? String(r.seq).padStart(10, '0') : r.kind}`,
  /** A writer's name: the node's, and a random id per store opened. */
  writer: (node: string, instance: string): string => `${nodeDir(node)}-${instance}`,
  segment: (prefix: string, writer: string, ts: number, id: string): string => `${prefix}segs/${dayOf(ts)}/${writer}/${ts13(ts)}-${id}`,
  catalog: (prefix: string, writer: string, ts: number, id: string): string => `${prefix}catalogs/${dayOf(ts)}/${writer}/${ts13(ts)}-${id}`,
  anchorBatch: (prefix: string, writer: string, ts: number, id: string): string => `${prefix}anchors/batches/${dayOf(ts)}/${writer}/${ts13(ts)}-${id}`,
  marker: (prefix: string, sessionId: string, writer: string, ts: number): string => `${prefix}sessions/${sessionId}/${dayOf(ts)}-${writer}-${ts13(ts)}`,
  /** The earlier layouts' keys (readers still look there; only tests write them). */
  flatSegment: (prefix: string, writer: string, ts: number, id: string): string => `${prefix}segs/${writer}/${ts13(ts)}-${id}`,
  flatCatalog: (prefix: string, writer: string, ts: number, id: string): string => `${prefix}catalogs/${writer}/${ts13(ts)}-${id}`,
  flatAnchorBatch: (prefix: string, ts: number, node: string, id: string): string => `${prefix}anchors/batches/${ts13(ts)}-${nodeDir(node)}-${id}`,
  legacySegment: (prefix: string, ts: number, node: string, id: string): string => `${prefix}segments/${ts13(ts)}-${safe(node)}-${id}`,
  legacyManifest: (prefix: string, sessionId: string, ts: number, node: string, id: string): string =>
    `${prefix}${sessionId}/manifest-${ts13(ts)}-${safe(node)}-${id}`,
  legacyAnchor: (prefix: string, a: Anchor): string =>
    a.kind === 'audit'
      ? `${prefix}anchors/audit/${String(a.position).padStart(12, '0')}-${a.ts}-${safe(a.node)}`
      : `${prefix}anchors/recordings/${a.subject}/${String(a.position).padStart(10, '0')}-${a.ts}-${safe(a.node)}`,
};

/** A marker's name (after `sessions/<session>/`), checked: the day must be its time's; anything else is null (and ignored). */
export function parseMarker(name: string): { day: string; writer: string; from: number } | null {
  const m = MARKER_RE.exec(name);
  if (!m || dayOf(Number(m[3])) !== m[1]) return null;
  return { day: m[1]!, writer: m[2]!, from: Number(m[3]) };
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The keys a catalog or manifest may name: segments of any layout under this prefix, nothing else. */
const segmentKeyRe = (prefix: string): RegExp =>
  new RegExp(`^${escapeRe(prefix)}(?:segs/(?:\\d{4}-\\d{2}-\\d{2}/)?${WRITER}/\\d{13}-[0-9a-f]{12}|segments/\\d{13}-[A-Za-z0-9._-]{1,64}-[0-9a-f]{12})$`);
/** The time in a segment's, catalog's or anchor batch's key (the 13 digits its last part starts with). */
const keyTs = (key: string): number => Number(key.slice(key.lastIndexOf('/') + 1, key.lastIndexOf('/') + 14));
/** The directory part of a key, with its slash. */
const dirOf = (key: string): string => key.slice(0, key.lastIndexOf('/') + 1);

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

/** A manifest object of the earlier layout: the spans of one session written since the previous manifest of the same writer. */
interface Manifest {
  v: 1;
  session: string;
  node: string;
  ts: number;
  segments: Span[];
}

/**
 * A catalog object: the spans of every session one writer (a store instance: one gateway run)
 * named in one flush. `closed`: the writer's last, written at its close: every segment it put is
 * named in its catalogs.
 */
interface Catalog {
  v: 1;
  node: string;
  instance: string;
  ts: number;
  closed: boolean;
  sessions: Record<string, Span[]>;
}

/** A catalog as read back, checked. */
export interface ParsedCatalog {
  ts: number;
  closed: boolean;
  sessions: Map<string, Span[]>;
}

const isInt = (x: unknown, min = 0): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= min;

/** The byte range and records of a span, checked (offsets inside the range, known kinds); null when anything is off. */
function checkRange(x: unknown, budget: { entries: number }): { start: number; end: number; records: Entry[] } | null {
  if (typeof x !== 'object' || x === null) return null;
  const { start, end, records } = x as Record<string, unknown>;
  if (!isInt(start) || !isInt(end) || end < start || !Array.isArray(records)) return null;
  if ((budget.entries -= records.length) < 0) return null;
  const out: Entry[] = [];
  for (const e of records as unknown[]) {
    if (!Array.isArray(e) || e.length !== 5) return null;
    const [kind, seq, hash, off, len] = e as unknown[];
    if (typeof kind !== 'string' || !KINDS.has(kind) || !isInt(seq, -1) || typeof hash !== 'string' || hash.length > 128) return null;
    if (!isInt(off) || !isInt(len) || off < start || off + len > end) return null;
    out.push([kind as RecordKind, seq, hash, off, len]);
  }
  return { start, end, records: out };
}

/** Spans (of a catalog or a manifest), each naming a segment key `keyOk` accepts, with its range checked; null when any is off. */
function checkSpans(list: unknown, keyOk: RegExp, budget: { entries: number }): Span[] | null {
  if (!Array.isArray(list) || (budget.entries -= list.length) < 0) return null;
  const spans: Span[] = [];
  for (const s of list as unknown[]) {
    const key = (s as { key?: unknown } | null)?.key;
    const range = checkRange(s, budget);
    if (typeof key !== 'string' || !keyOk.test(key) || !range) return null;
    spans.push({ key, ...range });
  }
  return spans;
}

/** `raw` as a JSON object, or null when it is missing, not JSON, or JSON of another kind (an array, a number). Never throws. */
function jsonObject(raw: Buffer | null): Record<string, unknown> | null {
  if (!raw) return null;
  let j: unknown;
  try {
    j = JSON.parse(raw.toString('utf8'));
  } catch {
    return null;
  }
  return typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Record<string, unknown>) : null;
}

/**
 * A catalog's bytes, checked: JSON of the right shape, session names as ids are, spans naming only
 * segment keys under `prefix`, offsets inside their ranges, at most `maxEntries` records. Anything
 * else is null: the reader then scans the segments themselves (a catalog only says where to look).
 */
export function parseCatalog(raw: Buffer, prefix: string, maxEntries = 4_000_000): ParsedCatalog | null {
  const c = jsonObject(raw) as Partial<Record<keyof Catalog, unknown>> | null;
  if (!c || c.v !== 1 || typeof c.node !== 'string' || typeof c.instance !== 'string' || !isInt(c.ts) || typeof c.closed !== 'boolean') return null;
  if (typeof c.sessions !== 'object' || c.sessions === null || Array.isArray(c.sessions)) return null;
  const keyOk = segmentKeyRe(prefix);
  const budget = { entries: maxEntries };
  const sessions = new Map<string, Span[]>();
  for (const [id, list] of Object.entries(c.sessions as Record<string, unknown>)) {
    const spans = SESSION_RE.test(id) ? checkSpans(list, keyOk, budget) : null;
    if (!spans) return null;
    sessions.set(id, spans);
  }
  return { ts: c.ts, closed: c.closed, sessions };
}

/** An anchor batch's bytes, checked. A batch that is not one is null; an entry that is not an anchor is kept with no signature (verify names it). */
export function parseAnchorBatch(raw: Buffer, maxAnchors = 1_000_000): Anchor[] | null {
  const b = jsonObject(raw);
  if (!b || b.v !== 1 || !Array.isArray(b.anchors) || b.anchors.length > maxAnchors) return null;
  const out: Anchor[] = [];
  for (const x of b.anchors as unknown[]) {
    const a = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
    const kind = a.kind === 'audit' || a.kind === 'recording' ? a.kind : null;
    const subject = typeof a.subject === 'string' && a.subject.length <= 256 ? a.subject : null;
    if (!kind || !subject) return null; // an entry that names no subject cannot be put in front of the verdict it belongs to
    const ok =
      isInt(a.position) && typeof a.head === 'string' && a.head.length <= 256 && isInt(a.ts) && typeof a.signature === 'string' && a.signature.length <= 1024;
    out.push({
      kind,
      subject,
      position: isInt(a.position) ? a.position : 0,
      head: typeof a.head === 'string' ? a.head.slice(0, 256) : '',
      ts: isInt(a.ts) ? a.ts : 0,
      signature: ok ? Buffer.from(a.signature as string, 'base64') : Buffer.alloc(0),
      node: typeof a.node === 'string' ? a.node.slice(0, 256) : '',
    });
  }
  return out;
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
  const sessions = Object.create(null) as SegmentIndex['sessions'];
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
    const shifted = Object.create(null) as SegmentIndex['sessions'];
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

/** A segment index longer than this is not read (a batch is at most 512 records: its index is a few tens of KB). */
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

/**
 * The index at the start of a segment object, checked as a catalog is (session names, offsets
 * inside the ranges); null when `head` is not one, or not all of it (`need`: the bytes to fetch).
 */
export function segmentIndexOf(head: Buffer, maxBytes = MAX_INDEX_BYTES): { index: SegmentIndex | null; need: number } {
  const n = SEGMENT_MAGIC.length + 4;
  if (head.length < n || !head.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) return { index: null, need: 0 };
  const need = n + head.readUInt32BE(SEGMENT_MAGIC.length);
  if (need > maxBytes) return { index: null, need: 0 };
  if (head.length < need) return { index: null, need };
  const j = jsonObject(head.subarray(n, need)) as Partial<Record<keyof SegmentIndex, unknown>> | null;
  if (!j || j.v !== 1 || typeof j.sessions !== 'object' || j.sessions === null || Array.isArray(j.sessions)) return { index: null, need };
  const sessions = Object.create(null) as SegmentIndex['sessions'];
  const budget = { entries: 1_000_000 };
  for (const [id, s] of Object.entries(j.sessions as Record<string, unknown>)) {
    const range = SESSION_RE.test(id) ? checkRange(s, budget) : null;
    if (!range) return { index: null, need };
    sessions[id] = range;
  }
  return { index: { v: 1, node: typeof j.node === 'string' ? j.node : '', ts: isInt(j.ts) ? j.ts : 0, sessions }, need };
}

/** What a test may put between the store and the SDK, and limits it may make small. */
export interface S3OffsiteOptions {
  /** A client with middleware that records the requests, say. */
  client?: S3Client;
  /** The catalog is written at most this often while records come (besides at trailers, anchor rounds and close): 60 s. */
  manifestIntervalMs?: number;
  /** The most bytes a reader fetches of a catalog or an anchor batch (a longer one counts as unreadable): 64 MiB. */
  maxObjectBytes?: number;
  /** About how many bytes of catalogs and segment indexes a reader keeps parsed (the most recently used): 256 MiB. */
  cacheBytes?: number;
}

/** How far before a writer's newest catalog a reader also looks for segments no catalog names (puts in flight while it was written). */
const TAIL_SLACK_MS = 120_000;
/**
 * How far before a session's first marker a reader still reads the layout before days, when
 * the session's header is in the day layout (so it began there): only a gateway downgraded
 * after that wrote there, with the same node's clock.
 */
const LEGACY_SLACK_MS = 600_000;
/** The first bytes of a segment a reader fetches for its index (more when the index is longer). */
const INDEX_PEEK = 64 * 1024;
/** A trailer makes the catalog due, but not sooner than this after the previous one (sessions ending together share one). */
const TRAILER_CATALOG_GAP_MS = 5_000;
/** Records named per catalog object: more pending makes it due, and a flush with more writes several objects (~110 bytes each). */
const CATALOG_ENTRIES = 100_000;
/** A reader reuses what it listed (writers, catalogs, anchor batches) for this long (real time): `verify --all` asks per session. */
const VIEW_REUSE_MS = 2_000;
const EMPTY = Buffer.alloc(0);

/** Where the catalogs say the sessions' records are, and what a writer's unnamed tail holds. */
interface View {
  at: number;
  /** Per session, the spans catalogs name. */
  named: Map<string, Span[]>;
  /** Per session, spans of segments no catalog names (found by reading their indexes). */
  unnamed: Map<string, Span[]>;
  /** Every segment key a catalog names. */
  keys: Set<string>;
}

/** A writer's objects of one UTC day that concern a session: from `from` (its marker's time) on. */
interface Pair {
  day: string;
  writer: string;
  from: number;
}

/** Where one session's records are in the day layout, and how much of the layout before days must be read for it. */
interface SessionView {
  at: number;
  pairs: Pair[];
  /** Spans the catalogs of its pairs name. */
  named: Span[];
  /** Its spans in segments of its pairs that no catalog read names (found by reading their indexes). */
  unnamed: Span[];
  /**
   * The layout before days: null, all of it (the session's header is not in the day layout: it
   * may have begun before the upgrade); else only what was written from this time on.
   */
  legacyFrom: number | null;
}

const pushTo = <T>(m: Map<string, T[]>, k: string, v: readonly T[]): void => {
  const l = m.get(k);
  if (l) l.push(...v);
  else m.set(k, [...v]);
};

/** A span's order for "the first copy counts": the time in its segment's key, then the key. */
const spanOrder = (a: Span, b: Span): number => keyTs(a.key) - keyTs(b.key) || (a.key < b.key ? -1 : a.key > b.key ? 1 : a.start - b.start);

/** Objects read (written once: what was read stays valid), the most recently used kept up to about `budget` bytes. */
class ReadCache<T> {
  private readonly m = new Map<string, { v: T; size: number }>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  has(k: string): boolean {
    return this.m.has(k);
  }

  get(k: string): T | undefined {
    const e = this.m.get(k);
    if (!e) return undefined;
    this.m.delete(k);
    this.m.set(k, e);
    return e.v;
  }

  set(k: string, v: T, size: number): void {
    const old = this.m.get(k);
    if (old) this.bytes -= old.size;
    this.m.delete(k);
    this.m.set(k, { v, size });
    this.bytes += size;
    for (const [key, e] of this.m) {
      if (this.bytes <= this.budget || this.m.size <= 1) break;
      this.m.delete(key);
      this.bytes -= e.size;
    }
  }
}

/**
 * The S3 sink. Each put (one shipper batch: records of any number of recordings) is ONE object,
 * a segment: an index (per session, which records at which bytes) and the records' exact bytes.
 * Which segments hold which session's records is said by catalogs: one object per writer (this
 * store instance, one gateway run) per flush, naming the spans of every session written since the
 * previous one, at most every `manifestIntervalMs` (60 s), at a trailer (at most every 5 s), at
 * each anchor round and at close (marked `closed`). So the requests per minute do not grow with the
 * number of sessions: segments (per 500 ms batch), one catalog, one anchor batch; and one empty
 * marker per session per writer per UTC day it writes something of that session.
 *
 * Every object goes under the UTC day of its key's time. A reader of one session lists its
 * markers and reads only the catalogs and anchor batches of those writers on those days, from the
 * marker's time on, and for each such writer day whose newest catalog is not its last, indexes
 * the segments put from 120 s before that catalog on that no catalog names (what a node that
 * stopped had not named, or what a live one names next). A catalog that does not parse or names
 * anything but segments under the prefix is not trusted: then every segment of that writer day
 * from the marker on is indexed. Records are parsed from their bytes, never taken from an index.
 * Objects of the earlier layouts (catalogs before days, per-record objects, per-session
 * manifests, per-anchor objects) are still read. Every PUT carries ObjectLockMode and
 * ObjectLockRetainUntilDate when `objectLock` is configured; whether a locked object can be
 * deleted is the bucket's business: appendOnly() asks it. The SDK is loaded only when the sink is
 * configured.
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
  /** This store's writer id: its objects go under `<kind>/<day>/<node>-<instance>/`. */
  private readonly instance = randomBytes(6).toString('hex');
  /** The writer name, fixed at the first put (with the node's name). */
  private dir: string | null = null;
  private node = '';
  /** The time in the newest segment, catalog and anchor batch key this store wrote (strictly increasing). */
  private lastKeyTs = 0;
  /** The sessions this writer has a marker for on `day`. */
  private marked: { day: string; ids: Set<string> } = { day: '', ids: new Set() };
  /** Sessions' spans written to segments but not yet named in a catalog. */
  private pending = new Map<string, Span[]>();
  private pendingEntries = 0;
  private pendingSince: number | null = null;
  private pendingTrailer = false;
  private lastCatalogAt = -Infinity;
  private catalogWriting: Promise<void> | null = null;
  /** The last failed catalog write (its segments were stored; readers index them until a later catalog names them): kept after later successes. */
  private lastCatalogError: string | null = null;
  private lastCatalogErrorAt: number | null = null;
  private catalogWriteFailures = 0;
  /** Catalogs read that were not catalogs. */
  private readonly unreadable = new Set<string>();
  /** Segment indexes and catalogs read (written once: what was read stays valid), up to cacheBytes. */
  private readonly indexes: ReadCache<SegmentIndex | null>;
  private readonly catalogs: ReadCache<ParsedCatalog | null>;
  private readonly batches = new Map<string, Anchor[] | null>();
  /** Writers (layout before days) whose closed catalog was read: their catalog keys (nothing is added after a close). */
  private readonly closedWriters = new Map<string, string[]>();
  /** Listings of writer days that ended two days before this reader's clock: writers no longer add there. */
  private readonly settledLists = new Map<string, string[]>();
  private recentLists = new Map<string, { at: number; keys: string[] }>();
  private readonly sessionViews = new Map<string, SessionView>();
  private view: View | null = null;
  private closing = false;
  private batchKeys: { at: number; keys: string[] } | null = null;

  private constructor(
    private readonly sdk: S3,
    private readonly client: S3Client,
    private readonly c: S3SinkConfig,
    private readonly clock: Clock,
    private readonly manifestIntervalMs: number,
    private readonly maxObjectBytes: number,
    cacheBytes: number,
  ) {
    this.prefix = c.prefix;
    this.destination = `s3://${c.bucket}/${c.prefix} at ${c.endpoint ?? `region ${c.region}`}`;
    this.indexes = new ReadCache(cacheBytes / 4);
    this.catalogs = new ReadCache(cacheBytes);
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
    return new S3Offsite(sdk, client, c, clock, o.manifestIntervalMs ?? 60_000, o.maxObjectBytes ?? 64 * 1024 * 1024, o.cacheBytes ?? 256 * 1024 * 1024);
  }

  indexHealth(): OffsiteIndexHealth {
    return {
      catalogWriteFailures: this.catalogWriteFailures,
      lastCatalogError: this.lastCatalogError,
      lastCatalogErrorAt: this.lastCatalogErrorAt,
      unreadableCatalogs: this.unreadable.size,
    };
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

  /** A key time after the previous one: readers order a writer's objects by key. */
  private keyTime(now: number): number {
    this.lastKeyTs = Math.max(now, this.lastKeyTs + 1);
    return this.lastKeyTs;
  }

  /** What this store wrote may change what it read: listings and views are read again. */
  private wrote(): void {
    this.view = null;
    this.recentLists = new Map();
    this.sessionViews.clear();
  }

  /**
   * The markers of the sessions this writer has none for on the day of `ts`, named with `ts` (a
   * reader reads that writer's day from the marker's time on): before a catalog or an anchor batch
   * of that time, beside a segment (whose put is acknowledged only with them). Each written one is
   * noted; a failure is thrown after the others are tried.
   */
  private async mark(ids: Iterable<string>, ts: number): Promise<void> {
    const day = dayOf(ts);
    if (this.marked.day !== day) this.marked = { day, ids: new Set() };
    const fresh = [...new Set(ids)].filter((id) => !this.marked.ids.has(id) && SESSION_RE.test(id));
    if (fresh.length === 0) return;
    const dir = this.dir!;
    const results = await Promise.allSettled(fresh.map((id) => this.putObject(s3Keys.marker(this.prefix, id, dir, ts), EMPTY, { node: safe(this.node) })));
    let failed: unknown = null;
    results.forEach((r, i) => (r.status === 'fulfilled' ? this.marked.ids.add(fresh[i]!) : (failed ??= r.reason)));
    if (failed) throw failed;
  }

  /**
   * One segment object for the whole batch (with the markers of sessions new to this writer
   * today); then, when due, the catalog naming what is pending. A failed marker or segment throws
   * (the shipper resends the batch: a second segment with the same bytes, which readers take
   * once). A failed catalog does not: the segment is stored, readers find it by scanning, and the
   * next catalog names it.
   */
  async put(records: readonly OffsiteRecord[], node: string): Promise<string[]> {
    if (records.length === 0) return [];
    this.node ||= node;
    this.dir ??= s3Keys.writer(this.node, this.instance);
    const now = this.clock.now();
    // Two puts in one millisecond must not be ordered by their random ids (a resend could then count before the original).
    const ts = this.keyTime(now);
    const key = s3Keys.segment(this.prefix, this.dir, ts, randomBytes(6).toString('hex'));
    const { body, index } = encodeSegment(records, node, now);
    // The markers beside the segment, not before it (one round trip, not two): the put is acknowledged only once both are
    // stored, so every acknowledged record's session is marked; a segment stored without its marker was not acknowledged,
    // and is sent again (as one whose answer was lost).
    await Promise.all([this.mark(Object.keys(index.sessions), ts), this.putObject(key, body, { node: safe(node), records: String(records.length) })]);
    this.wrote();
    for (const [id, s] of Object.entries(index.sessions)) this.addPending(id, [{ key, ...s }]);
    if (this.catalogDue(now)) await this.writeCatalog(false).catch(() => {});
    return []; // S3 has no insert-if-absent every server supports: a resend is a second segment, read once (equal bytes).
  }

  private addPending(id: string, spans: readonly Span[]): void {
    pushTo(this.pending, id, spans);
    for (const s of spans) {
      this.pendingEntries += s.records.length;
      this.pendingTrailer ||= s.records.some((e) => e[0] === 'trailer');
    }
    this.pendingSince ??= this.clock.now();
  }

  private catalogDue(now: number): boolean {
    if (this.pending.size === 0) return false;
    if (this.pendingEntries >= CATALOG_ENTRIES) return true;
    if (now - this.pendingSince! >= this.manifestIntervalMs) return true;
    return this.pendingTrailer && now - this.lastCatalogAt >= TRAILER_CATALOG_GAP_MS;
  }

  /** Writes what is pending as this writer's catalog (one object per CATALOG_ENTRIES records); `closed`: its last. One at a time. */
  private async writeCatalog(closed: boolean): Promise<void> {
    while (this.catalogWriting) await this.catalogWriting.catch(() => {});
    this.catalogWriting = this.flushPending(closed);
    try {
      await this.catalogWriting;
    } catch (e) {
      this.catalogWriteFailures++;
      this.lastCatalogError = (e as Error).message;
      this.lastCatalogErrorAt = this.clock.now();
      throw e;
    } finally {
      this.catalogWriting = null;
    }
  }

  private async flushPending(closed: boolean): Promise<void> {
    if (!this.dir || (this.pending.size === 0 && !closed)) return;
    const taken = [...this.pending];
    const since = this.pendingSince;
    this.pending = new Map();
    this.pendingEntries = 0;
    this.pendingSince = null;
    this.pendingTrailer = false;
    const groups: [string, Span[]][][] = [[]];
    let n = 0;
    for (const [id, spans] of taken) {
      const size = spans.reduce((a, s) => a + s.records.length, 0);
      if (n > 0 && n + size > CATALOG_ENTRIES) (groups.push([]), (n = 0));
      groups.at(-1)!.push([id, spans]);
      n += size;
    }
    let i = 0;
    try {
      for (; i < groups.length; i++) {
        const now = this.clock.now();
        const c: Catalog = {
          v: 1,
          node: this.node,
          instance: this.instance,
          ts: now,
          closed: closed && i === groups.length - 1,
          sessions: Object.fromEntries(groups[i]!),
        };
        const ts = this.keyTime(now);
        // Sessions first named today in this catalog (the day changed since their segment, or another writer's segments found at resume).
        await this.mark(
          groups[i]!.map(([id]) => id),
          ts,
        );
        const key = s3Keys.catalog(this.prefix, this.dir, ts, randomBytes(6).toString('hex'));
        await this.putObject(key, Buffer.from(JSON.stringify(c)), { node: safe(this.node) }, 'application/json');
        this.wrote();
      }
      this.lastCatalogAt = this.clock.now();
    } catch (e) {
      for (const g of groups.slice(i)) for (const [id, spans] of g) this.addPending(id, spans);
      if (since !== null) this.pendingSince = Math.min(since, this.pendingSince ?? since);
      throw e;
    }
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

  /** The keys under a writer day's directory: listed again after VIEW_REUSE_MS, or never once the day is settled. */
  private async listDay(dir: string, day: string): Promise<string[]> {
    const settled = this.settledLists.get(dir);
    if (settled) return settled;
    const recent = this.recentLists.get(dir);
    if (recent && performance.now() - recent.at < VIEW_REUSE_MS) return recent.keys;
    const { keys } = await this.list(dir);
    if (Date.parse(day) + 3 * DAY_MS <= this.clock.now()) this.settledLists.set(dir, keys);
    else this.recentLists.set(dir, { at: performance.now(), keys });
    return keys;
  }

  /** An object, or bytes [start, end) of it (fewer when it is shorter); null when it is not there. */
  private async get(key: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    try {
      const r = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.c.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}) }),
      );
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if ((e as Error).name === 'NoSuchKey' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return Buffer.alloc(0); // an empty object, ranged
      throw e;
    }
  }

  /** A small JSON object (a catalog, an anchor batch, a manifest): at most maxObjectBytes; a longer one, or none, is null. */
  private async getSmall(key: string): Promise<Buffer | null> {
    const b = await this.get(key, { start: 0, end: this.maxObjectBytes + 1 });
    return b && b.length <= this.maxObjectBytes ? b : null;
  }

  private async segmentIndex(key: string): Promise<SegmentIndex | null> {
    if (this.indexes.has(key)) return this.indexes.get(key)!;
    let head = await this.get(key, { start: 0, end: INDEX_PEEK });
    let parsed = head ? segmentIndexOf(head) : { index: null, need: 0 };
    if (head && !parsed.index && parsed.need > head.length) {
      head = await this.get(key, { start: 0, end: parsed.need });
      parsed = head ? segmentIndexOf(head) : parsed;
    }
    this.indexes.set(key, parsed.index, Math.max(256, parsed.need * 2));
    return parsed.index;
  }

  private async catalog(key: string): Promise<ParsedCatalog | null> {
    if (!this.catalogs.has(key)) {
      const raw = await this.getSmall(key);
      const c = raw ? parseCatalog(raw, this.prefix) : null;
      if (!c) this.unreadable.add(key);
      this.catalogs.set(key, c, Math.max(256, (raw?.length ?? 0) * 2));
      return c;
    }
    return this.catalogs.get(key)!;
  }

  /** The writer days of a session, from its markers (one per writer and day, the earliest time kept). */
  private async pairsOf(sessionId: string): Promise<Pair[]> {
    if (!SESSION_RE.test(sessionId)) return [];
    const base = `${this.prefix}sessions/${sessionId}/`;
    const pairs = new Map<string, Pair>();
    for (const k of (await this.list(base)).keys) {
      const m = parseMarker(k.slice(base.length));
      if (!m) continue;
      const at = `${m.day}/${m.writer}`;
      const p = pairs.get(at);
      if (!p || m.from < p.from) pairs.set(at, m);
    }
    return [...pairs.values()].sort((a, b) => a.from - b.from);
  }

  /**
   * Where one session's records are in the day layout: the catalogs of each of its writer days
   * (markers) from the marker's time on, and the segments of that writer day no catalog read
   * names, from 120 s before its newest catalog on (from the marker on, without a catalog or when
   * one is unreadable; none when the newest is the writer's closed one, or when that writer
   * wrote a catalog the next day late enough to have named them all: the session would then have
   * a marker there). Then how much of the layout before days must be read for it.
   */
  private async sessionView(sessionId: string): Promise<SessionView> {
    const hit = this.sessionViews.get(sessionId);
    if (hit && performance.now() - hit.at < VIEW_REUSE_MS) return hit;
    const pairs = await this.pairsOf(sessionId);
    const named: Span[] = [];
    const unnamed: Span[] = [];
    const days: { p: Pair; catalogs: string[]; segs: string; newest: number; closed: boolean; corrupt: boolean }[] = [];
    for (const p of pairs) {
      const catalogs = (await this.listDay(`${this.prefix}catalogs/${p.day}/${p.writer}/`, p.day)).filter((k) => keyTs(k) >= p.from);
      days.push({ p, catalogs, segs: `${this.prefix}segs/${p.day}/${p.writer}/`, newest: -1, closed: false, corrupt: false });
    }
    // Segment keys that catalogs name, noted only where a tail scan may look: from 120 s before each writer day's newest
    // catalog on (from its key's time, less another 120 s: a catalog's own time may be a little before its key's).
    const noteFrom = new Map<string, number>();
    for (const d of days) {
      const last = d.catalogs.at(-1);
      const from = last ? Math.max(d.p.from, keyTs(last) - 2 * TAIL_SLACK_MS) : d.p.from;
      noteFrom.set(d.segs, Math.min(noteFrom.get(d.segs) ?? Infinity, from));
    }
    const namedKeys = new Set<string>();
    const note = (c: ParsedCatalog): void => {
      for (const spans of c.sessions.values()) {
        for (const s of spans) {
          const from = noteFrom.get(dirOf(s.key));
          if (from !== undefined && keyTs(s.key) >= from) namedKeys.add(s.key);
        }
      }
    };
    for (const d of days) {
      for (const k of d.catalogs) {
        const c = await this.catalog(k);
        if (!c) {
          d.corrupt = true;
          continue;
        }
        d.newest = Math.max(d.newest, Math.min(c.ts, keyTs(k)));
        d.closed ||= c.closed;
        named.push(...(c.sessions.get(sessionId) ?? []));
        note(c);
      }
    }
    // Where each tail scan starts; a writer day with a catalog that cannot be trusted is indexed from the marker on (all
    // but what the others name). Noted again from there when that is before where keys were noted.
    const start = (d: (typeof days)[number]): number => (d.corrupt || d.newest < 0 ? d.p.from : Math.max(d.p.from, d.newest - TAIL_SLACK_MS));
    let again = false;
    for (const d of days) {
      if ((!d.closed || d.corrupt) && start(d) < noteFrom.get(d.segs)!) {
        noteFrom.set(d.segs, start(d));
        again = true;
      }
    }
    if (again) {
      for (const d of days) {
        for (const k of d.catalogs) {
          const c = this.unreadable.has(k) ? null : await this.catalog(k);
          if (c) note(c);
        }
      }
    }
    for (const d of days) {
      if (d.closed && !d.corrupt) continue;
      const from = start(d);
      const candidates = (await this.list(d.segs, { startAfter: `${d.segs}${ts13(from)}` })).keys.filter((k) => keyTs(k) >= from && !namedKeys.has(k));
      if (candidates.length === 0) continue;
      if (
        !d.corrupt &&
        (await this.namedNextDay(
          d.p,
          candidates.reduce((t, k) => Math.max(t, keyTs(k)), 0),
        ))
      )
        continue;
      for (const k of candidates) {
        const s = (await this.segmentIndex(k))?.sessions[sessionId];
        if (s) unnamed.push({ key: k, ...s });
      }
    }
    const header = [...named, ...unnamed].some((s) => s.records.some((e) => e[0] === 'header'));
    const legacyFrom = header ? pairs[0]!.from - LEGACY_SLACK_MS : null;
    const v: SessionView = { at: performance.now(), pairs, named, unnamed, legacyFrom };
    this.sessionViews.set(sessionId, v);
    return v;
  }

  /**
   * Whether the writer of `p` wrote a catalog (one that parses) on the next day, from 120 s after
   * `after` on: that one named everything the writer had put until then, and a session it named
   * there has a marker for that day.
   */
  private async namedNextDay(p: Pair, after: number): Promise<boolean> {
    const next = dayOf(Date.parse(p.day) + DAY_MS);
    const keys = (await this.listDay(`${this.prefix}catalogs/${next}/${p.writer}/`, next)).filter((k) => keyTs(k) >= after + TAIL_SLACK_MS);
    for (const k of keys) {
      const c = await this.catalog(k);
      if (c) return Math.min(c.ts, keyTs(k)) >= after + TAIL_SLACK_MS;
    }
    return false;
  }

  /** The writer directories of the layout before days under `top` (catalogs or segs): day directories are not writers. */
  private async flatWriters(top: string): Promise<string[]> {
    const hit = this.recentLists.get(`${this.prefix}${top}/\0`);
    if (hit && performance.now() - hit.at < VIEW_REUSE_MS) return hit.keys;
    const { prefixes } = await this.list(`${this.prefix}${top}/`, { delimiter: '/' });
    const writers = prefixes.map((p) => p.slice(this.prefix.length + top.length + 1, -1)).filter((w) => WRITER_RE.test(w));
    this.recentLists.set(`${this.prefix}${top}/\0`, { at: performance.now(), keys: writers });
    return writers;
  }

  /**
   * The layout before days, all of it: every catalog (each read once), and the segments no
   * catalog names: of each writer that did not close, those from 120 s before its newest catalog
   * on (all of them without one). If any catalog is unreadable, every segment of that layout and
   * the manifests' is indexed instead: a catalog that cannot be trusted must not hide what it was
   * to name. Written by versions before days only: its size is fixed once they are gone.
   */
  private async flatView(): Promise<View> {
    if (this.view && performance.now() - this.view.at < VIEW_REUSE_MS) return this.view;
    const named = new Map<string, Span[]>();
    const keys = new Set<string>();
    let corrupt = false;
    const withCatalogs = new Set(await this.flatWriters('catalogs'));
    const writers = [...new Set([...withCatalogs, ...(await this.flatWriters('segs'))])].sort();
    const tails: { dir: string; after: number | null }[] = [];
    for (const w of writers) {
      const dir = `${this.prefix}segs/${w}/`;
      const catalogKeys = this.closedWriters.get(w) ?? (withCatalogs.has(w) ? (await this.list(`${this.prefix}catalogs/${w}/`)).keys : []);
      let newest = -1;
      let closed = false;
      for (const k of catalogKeys) {
        const c = await this.catalog(k);
        if (!c) {
          corrupt = true;
          continue;
        }
        newest = Math.max(newest, Math.min(c.ts, keyTs(k)));
        closed ||= c.closed;
        for (const [id, spans] of c.sessions) {
          pushTo(named, id, spans);
          for (const s of spans) keys.add(s.key);
        }
      }
      if (closed) this.closedWriters.set(w, catalogKeys);
      else tails.push({ dir, after: newest >= 0 ? newest - TAIL_SLACK_MS : null });
    }
    const unnamed = new Map<string, Span[]>();
    const scan = async (prefix: string, startAfter?: string): Promise<void> => {
      for (const k of (await this.list(prefix, startAfter ? { startAfter } : {})).keys) {
        if (keys.has(k)) continue;
        const index = await this.segmentIndex(k);
        if (index) for (const [id, s] of Object.entries(index.sessions)) pushTo(unnamed, id, [{ key: k, ...s }]);
      }
    };
    if (corrupt) {
      for (const w of writers) await scan(`${this.prefix}segs/${w}/`);
      await scan(`${this.prefix}segments/`);
    } else {
      for (const t of tails) await scan(t.dir, t.after === null ? undefined : `${t.dir}${ts13(t.after)}`);
    }
    this.view = { at: performance.now(), named, unnamed, keys };
    return this.view;
  }

  /**
   * One session's records in the layout before days, written from `from` on: catalogs from then
   * on, and segments from then on that none of them names (of a writer that closed before `from`,
   * there are none). If one of those catalogs is unreadable, every segment of that layout and the
   * manifests' from then on is indexed. What a downgraded gateway wrote, if one did.
   */
  private async flatSince(sessionId: string, from: number): Promise<{ named: Span[]; unnamed: Span[]; keys: Set<string> }> {
    const named: Span[] = [];
    const unnamed: Span[] = [];
    const keys = new Set<string>();
    let corrupt = false;
    const writers = [...new Set([...(await this.flatWriters('catalogs')), ...(await this.flatWriters('segs'))])].sort();
    for (const w of writers) {
      const dir = `${this.prefix}catalogs/${w}/`;
      for (const k of (await this.list(dir, { startAfter: `${dir}${ts13(from)}` })).keys) {
        const c = await this.catalog(k);
        if (!c) {
          corrupt = true;
          continue;
        }
        named.push(...(c.sessions.get(sessionId) ?? []));
        for (const spans of c.sessions.values()) for (const s of spans) keys.add(s.key);
      }
    }
    const dirs = [...writers.map((w) => `${this.prefix}segs/${w}/`), ...(corrupt ? [`${this.prefix}segments/`] : [])];
    for (const dir of dirs) {
      for (const k of (await this.list(dir, { startAfter: `${dir}${ts13(from)}` })).keys) {
        if (keys.has(k)) continue;
        const s = (await this.segmentIndex(k))?.sessions[sessionId];
        if (s) unnamed.push({ key: k, ...s });
      }
    }
    return { named, unnamed, keys };
  }

  /**
   * Where a session's records are: per-record objects of the first layout (by key); spans its
   * per-session manifests name (the second), plus, when no trailer is among them, segments of that
   * layout written since its newest manifest that none names; spans the catalogs of its days name
   * and spans of its days' segments no catalog names (sessionView); and in the layout before days,
   * all of it when the session may have begun there, else only what was written after its first
   * marker (a downgrade).
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
    const keyOk = segmentKeyRe(this.prefix);
    const spans: Span[] = [];
    let newest = -1;
    let unreadable = false;
    for (const k of manifests.sort()) {
      const m = jsonObject(await this.getSmall(k)) as Partial<Record<keyof Manifest, unknown>> | null;
      const checked =
        m && m.v === 1 && m.session === sessionId && isInt(m.ts) ? { ts: m.ts, spans: checkSpans(m.segments, keyOk, { entries: 4_000_000 }) } : null;
      if (!checked?.spans) {
        unreadable = true; // found below by scanning the segments themselves
        continue;
      }
      spans.push(...checked.spans);
      newest = Math.max(newest, checked.ts);
    }
    const days = await this.sessionView(sessionId);
    let flat: { named: Span[]; unnamed: Span[]; keys: Set<string> };
    if (days.legacyFrom === null) {
      const v = await this.flatView();
      flat = { named: v.named.get(sessionId) ?? [], unnamed: v.unnamed.get(sessionId) ?? [], keys: v.keys };
    } else flat = await this.flatSince(sessionId, days.legacyFrom);
    const scanned = [...days.unnamed, ...flat.unnamed];
    const all = [...spans, ...days.named, ...flat.named, ...scanned];
    const trailer = legacy.some((l) => l.kind === 'trailer') || all.some((s) => s.records.some((e) => e[0] === 'trailer'));
    const unnamed: Span[] = [...scanned];
    if (newest >= 0 && (!trailer || unreadable)) {
      const known = new Set([...all.map((s) => s.key), ...flat.keys]);
      const startAfter = unreadable ? undefined : `${this.prefix}segments/${ts13(newest - TAIL_SLACK_MS)}`;
      for (const k of (await this.list(`${this.prefix}segments/`, startAfter ? { startAfter } : {})).keys) {
        if (known.has(k)) continue;
        const s = (await this.segmentIndex(k))?.sessions[sessionId];
        if (s) unnamed.push({ key: k, ...s });
      }
    }
    return { legacy, spans: [...spans, ...days.named, ...flat.named, ...unnamed], unnamed };
  }

  /**
   * What the store holds of a recording (the shipper's resume asks it). Segments found only by
   * scanning (a node stopped before naming them) are named in this writer's next catalog: once
   * named, readers no longer index them.
   */
  async holdings(sessionId: string): Promise<OffsiteHoldings> {
    const { legacy, spans, unnamed } = await this.locate(sessionId);
    const pending = new Set((this.pending.get(sessionId) ?? []).map((s) => `${s.key}\0${s.start}`));
    const fresh = unnamed.filter((s) => !pending.has(`${s.key}\0${s.start}`));
    if (fresh.length) this.addPending(sessionId, fresh);
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
   * with other bytes: the first written kept, the other returned with no hash (verify names it
   * invalid). A record a catalog or manifest names whose segment is gone: returned empty (verify
   * names the gap).
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
    for (const s of spans.sort(spanOrder)) {
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

  /**
   * Sessions with records: those the catalogs name, those in segments no catalog names yet, and
   * those with objects of the earlier layouts (a per-session directory).
   */
  /**
   * Sessions with records: those with markers (every session written in the day layout has one),
   * those the catalogs of the layout before days name or its segments no catalog names, and those
   * with objects of the earlier layouts (a per-session directory).
   */
  async sessions(): Promise<string[]> {
    const { prefixes } = await this.list(this.prefix, { delimiter: '/' });
    const top = ['anchors', 'segments', 'segs', 'catalogs', 'sessions'];
    const out = new Set(prefixes.map((p) => p.slice(this.prefix.length, -1)).filter((s) => !top.includes(s)));
    const marked = await this.list(`${this.prefix}sessions/`, { delimiter: '/' });
    for (const p of marked.prefixes) {
      const id = p.slice(this.prefix.length + 'sessions/'.length, -1);
      if (SESSION_RE.test(id)) out.add(id);
    }
    const view = await this.flatView();
    for (const id of view.named.keys()) out.add(id);
    for (const id of view.unnamed.keys()) out.add(id);
    return [...out].sort();
  }

  /**
   * Names what is pending (a catalog; its failure is thrown after the anchors are written), then
   * ONE object with all the anchors, after the markers of the recordings it anchors that this
   * writer has none for today (a recording that ended just before midnight is anchored after it).
   */
  async putAnchors(anchors: readonly Anchor[]): Promise<void> {
    let failed: unknown = null;
    if (this.pending.size) await this.writeCatalog(false).catch((e: unknown) => (failed = e));
    if (anchors.length) {
      const now = this.clock.now();
      this.node ||= anchors[0]!.node;
      this.dir ??= s3Keys.writer(this.node, this.instance);
      const body = Buffer.from(
        JSON.stringify({ v: 1, node: this.node, ts: now, anchors: anchors.map((a) => ({ ...a, signature: a.signature.toString('base64') })) }),
      );
      const ts = this.keyTime(now);
      await this.mark(
        anchors.filter((a) => a.kind === 'recording').map((a) => a.subject),
        ts,
      );
      await this.putObject(s3Keys.anchorBatch(this.prefix, this.dir, ts, randomBytes(6).toString('hex')), body, { node: safe(this.node) }, 'application/json');
      this.batchKeys = null;
      this.wrote();
    }
    if (failed) throw failed;
  }

  private async batch(k: string): Promise<Anchor[] | null> {
    if (!this.batches.has(k)) {
      const raw = await this.getSmall(k);
      this.batches.set(k, raw ? parseAnchorBatch(raw) : null);
    }
    return this.batches.get(k)!;
  }

  /**
   * The anchor batch keys to read for `kind` and `subject`: for the audit log (or every
   * recording), all of them, every layout; for one recording, those of its writer days from the
   * marker on, and of the layout before days all (or from `legacyFrom` on, as its records).
   */
  private async batchKeysFor(kind: 'audit' | 'recording', subject?: string): Promise<string[]> {
    const base = `${this.prefix}anchors/batches/`;
    if (kind === 'audit' || subject === undefined) {
      if (!this.batchKeys || performance.now() - this.batchKeys.at >= VIEW_REUSE_MS)
        this.batchKeys = { at: performance.now(), keys: (await this.list(base)).keys };
      return this.batchKeys.keys;
    }
    const v = await this.sessionView(subject);
    const out: string[] = [];
    for (const p of v.pairs) out.push(...(await this.listDay(`${base}${p.day}/${p.writer}/`, p.day)).filter((k) => keyTs(k) >= p.from));
    const flat = await this.list(base, { delimiter: '/', ...(v.legacyFrom !== null ? { startAfter: `${base}${ts13(v.legacyFrom)}` } : {}) });
    return [...out, ...flat.keys];
  }

  /**
   * Anchors of one kind (and subject): from the anchor batches, and from per-anchor objects of the
   * earlier layout. An anchor batch that is not one (bad JSON, too long, an entry without a kind
   * and subject) counts as one audit anchor that does not verify, so `audit verify --offsite`
   * names it; an entry with a subject but bad fields is kept without a signature.
   */
  async anchors(kind: 'audit' | 'recording', subject?: string): Promise<Anchor[]> {
    const base = kind === 'audit' ? `${this.prefix}anchors/audit/` : `${this.prefix}anchors/recordings/${subject !== undefined ? `${subject}/` : ''}`;
    const out: Anchor[] = [];
    for (const k of (await this.list(base)).keys) {
      const j = jsonObject(await this.getSmall(k));
      // Not one of ours: an anchor that does not parse cannot vouch for anything.
      if (j && typeof j.signature === 'string') out.push({ ...(j as Omit<Anchor, 'signature'>), signature: Buffer.from(j.signature, 'base64') });
    }
    for (const k of await this.batchKeysFor(kind, subject)) {
      const batch = await this.batch(k);
      if (!batch) {
        if (kind === 'audit') out.push({ kind: 'audit', subject: 'audit', position: 0, head: '', ts: keyTs(k) || 0, signature: Buffer.alloc(0), node: '' });
        continue;
      }
      for (const a of batch) if (a.kind === kind && (kind === 'audit' || subject === undefined || a.subject === subject)) out.push(a);
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

  /** Writes this writer's last catalog, marked closed (best effort: without it, readers scan its tail), then closes the client. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      await this.writeCatalog(true);
    } catch {
      // Left for readers' scan of the segments after this writer's newest catalog.
    }
    this.client.destroy();
  }
}
