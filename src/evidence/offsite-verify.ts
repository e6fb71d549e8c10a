import { rowHash, GENESIS_HASH } from '../audit/log.js';
import type { AuditRow } from '../store/audit-events.js';
import { trailerSigned, decodeChunkHeader, CHUNK_HEADER_LEN } from '../recording/format.js';
import { recordsAt, type DurableRecord } from '../recording/offsite.js';
import { verifyWithPublicKey } from '../crypto/audit-key.js';
import { anchorVerifies } from './anchors.js';
import type { Anchor, OffsiteRecord } from './offsite-store.js';

/**
 * Local copies against off-box ones. Each difference is named: what was deleted, cut or altered
 * locally, and what is missing or wrong off the box. The off-box copies are written through
 * insert-only rights (or a locked bucket), so where they disagree with the local ones, the local
 * ones changed. Pure: the callers fetch both sides.
 */

export type DifferenceKind = 'deleted-locally' | 'truncated-locally' | 'altered-locally' | 'offsite-gap' | 'offsite-invalid' | 'anchor-invalid' | 'not-shipped';

export interface Difference {
  kind: DifferenceKind;
  /** The chunk (recordings) or audit row id it concerns, when one. */
  at: number | null;
  detail: string;
  /** false only for `not-shipped`: local data the sink does not have yet (lag), not a tamper sign. */
  problem: boolean;
}

export interface OffsiteVerdict {
  subject: string;
  sink: string;
  /** match: the same everywhere; behind: the sink lacks only the newest local data; differs: a problem. */
  status: 'match' | 'behind' | 'differs';
  local: string;
  offsite: string;
  differences: Difference[];
}

const diff = (kind: DifferenceKind, at: number | null, detail: string): Difference => ({ kind, at, detail, problem: kind !== 'not-shipped' });
const short = (h: string): string => h.slice(0, 12);
const iso = (t: number): string => new Date(t).toISOString();

/** "3", "3-5", "3-5, 9" for sorted numbers. */
export function ranges(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    out.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return out.length > 8 ? `${out.slice(0, 8).join(', ')}, ...` : out.join(', ');
}

function verdict(subject: string, sink: string, local: string, offsite: string, differences: Difference[]): OffsiteVerdict {
  const status = differences.some((d) => d.problem) ? 'differs' : differences.length ? 'behind' : 'match';
  return { subject, sink, status, local, offsite, differences };
}

export interface RecordingComparison {
  sessionId: string;
  sink: string;
  /** The local file (null: missing), and whether the store still has its recording row. */
  localFile: Buffer | null;
  localRow: boolean;
  offsite: OffsiteRecord[];
  anchors: Anchor[];
  publicKeyPem: string;
}

/** One recording, local file against one sink's copy and anchors. */
export function compareRecording(c: RecordingComparison): OffsiteVerdict {
  const ds: Difference[] = [];
  // The off-box copy on its own: whole records, contiguous chunks, linked hashes, a valid trailer.
  const off = new Map<string, OffsiteRecord>();
  const gone: number[] = [];
  const goneKinds = new Set<string>();
  for (const r of c.offsite) {
    if (r.bytes.length === 0) {
      // A record the sink's own index names, whose object is gone (a segment deleted off the box).
      goneKinds.add(r.kind);
      if (r.kind === 'chunk') gone.push(r.seq);
      else ds.push(diff('offsite-gap', null, `the off-box ${r.kind} is missing: the object its index names is gone`));
      continue;
    }
    const parsed = recordsAt(r.bytes, r.kind === 'header' ? 0 : 1).records[0];
    if (!parsed || parsed.bytes.length !== r.bytes.length || parsed.kind !== r.kind || parsed.seq !== r.seq || parsed.hash !== r.hash) {
      const what = r.kind === 'chunk' ? `chunk ${r.seq}` : r.kind;
      ds.push(
        diff(
          'offsite-invalid',
          r.kind === 'chunk' ? r.seq : null,
          `the off-box ${what} is not the record its key or index names, not its hash, or a second copy with other bytes`,
        ),
      );
      continue;
    }
    off.set(`${r.kind}/${r.seq}`, r);
  }
  const offChunks = [...off.values()]
    .filter((r) => r.kind === 'chunk')
    .map((r) => r.seq)
    .sort((a, b) => a - b);
  const offHeader = off.get('header/0') ?? null;
  const offTrailer = [...off.values()].find((r) => r.kind === 'trailer') ?? null;
  const offCount = offChunks.length ? offChunks.at(-1)! + 1 : 0;
  if (gone.length) {
    gone.sort((a, b) => a - b);
    ds.push(diff('offsite-gap', gone[0]!, `chunks ${ranges(gone)} are missing off the box: the object the off-box index names for them is gone`));
  }
  const goneSet = new Set(gone);
  const holes: number[] = [];
  for (let s = 0; s < offCount; s++) if (!off.has(`chunk/${s}`) && !goneSet.has(s)) holes.push(s);
  if (holes.length) {
    ds.push(diff('offsite-gap', holes[0]!, `chunks ${ranges(holes)} are missing off the box, though later chunks arrived (a gap in the off-box stream)`));
  }
  if (!offHeader && !goneKinds.has('header') && (offCount > 0 || offTrailer))
    ds.push(diff('offsite-gap', null, 'the file header is missing off the box, though chunks arrived'));
  let prev = offHeader?.hash ?? null;
  for (let s = 0; s < offCount; s++) {
    const r = off.get(`chunk/${s}`);
    if (!r) {
      prev = null;
      continue;
    }
    const h = decodeChunkHeader(r.bytes.subarray(5, 5 + CHUNK_HEADER_LEN));
    if (prev !== null && h.prevHash.toString('hex') !== prev) ds.push(diff('offsite-invalid', s, `off-box chunk ${s} does not link to off-box chunk ${s - 1}`));
    prev = r.hash;
  }
  if (offTrailer) {
    const body = offTrailer.bytes.subarray(5);
    const jlen = body.readUInt32BE(0);
    if (!verifyWithPublicKey(c.publicKeyPem, trailerSigned(body.subarray(4, 4 + jlen)), body.subarray(4 + jlen))) {
      ds.push(diff('offsite-invalid', null, 'the off-box trailer signature does not verify with the audit public key'));
    } else if (offTrailer.seq > offCount) {
      ds.push(diff('offsite-gap', offCount, `the signed trailer says ${offTrailer.seq} chunks; off the box only ${offCount} arrived`));
    }
  }
  // Signed anchors: the newest says how far the local chain had got.
  const anchors = c.anchors.filter((a) => a.kind === 'recording' && a.subject === c.sessionId);
  const bad = anchors.filter((a) => !anchorVerifies(a, c.publicKeyPem));
  if (bad.length) ds.push(diff('anchor-invalid', null, `${bad.length} off-box anchors do not verify with the audit public key`));
  const top = anchors.filter((a) => !bad.includes(a)).sort((a, b) => b.position - a.position || b.ts - a.ts)[0] ?? null;
  const offDesc =
    `${offHeader ? 'header, ' : ''}${offCount} chunks${holes.length ? ` (${holes.length} missing)` : ''}${offTrailer ? ', trailer' : ''}` +
    `${top ? `; anchored at ${top.position} chunks (${iso(top.ts)})` : ''}`;

  // The local copy against it.
  if (!c.localRow || c.localFile === null) {
    const what = !c.localRow ? 'its recording row and file are gone' : 'its file is gone';
    if (offHeader || offCount || offTrailer || top) {
      ds.push(diff('deleted-locally', null, `the recording was deleted locally (${what}); off the box: ${offDesc}`));
    }
    return verdict(c.sessionId, c.sink, 'missing', offDesc, ds);
  }
  const local = recordsAt(c.localFile, 0).records;
  const loc = new Map<string, DurableRecord>(local.map((r) => [`${r.kind}/${r.seq}`, r]));
  const locChunks = local.filter((r) => r.kind === 'chunk');
  const locCount = locChunks.length ? locChunks.at(-1)!.seq + 1 : 0;
  const locHeader = loc.get('header/0');
  const locTrailer = local.find((r) => r.kind === 'trailer') ?? null;
  const localDesc = `${locHeader ? 'header, ' : ''}${locCount} chunks${locTrailer ? ', trailer' : ''}`;
  if (offHeader && locHeader && !offHeader.bytes.equals(locHeader.bytes)) {
    ds.push(diff('altered-locally', null, 'the local file header differs from the off-box copy'));
  }
  if (offHeader && !locHeader) ds.push(diff('altered-locally', null, 'the local file has no valid header; the off-box copy has one'));
  const altered = offChunks.filter((s) => loc.has(`chunk/${s}`) && !loc.get(`chunk/${s}`)!.bytes.equals(off.get(`chunk/${s}`)!.bytes));
  if (altered.length) {
    const many = altered.length > 1;
    ds.push(diff('altered-locally', altered[0]!, `local chunk${many ? 's' : ''} ${ranges(altered)} differ${many ? '' : 's'} from the off-box copy`));
  }
  const cutAt = Math.max(offCount, offTrailer?.seq ?? 0, top?.position ?? 0);
  if (cutAt > locCount || (offTrailer && !locTrailer)) {
    const by =
      offCount >= (top?.position ?? 0)
        ? `off the box: ${offCount} chunks${offTrailer ? ' and the signed trailer' : ''}`
        : `the anchor signed ${iso(top!.ts)} says ${top!.position} chunks`;
    const ends = `the local file ends after ${locCount} chunks${locTrailer ? '' : ' without its trailer'}`;
    ds.push(diff('truncated-locally', locCount, `${ends}; ${by}: its tail was cut locally`));
  } else if (top && top.position > 0 && locCount >= top.position) {
    const h = loc.get(`chunk/${top.position - 1}`)?.hash;
    const at = top.position - 1;
    if (h !== undefined && h !== top.head) {
      ds.push(diff('altered-locally', at, `local chunk ${at} does not end in the head anchored off the box at ${iso(top.ts)} (${short(top.head)})`));
    }
  }
  if (offTrailer && locTrailer && !offTrailer.bytes.equals(locTrailer.bytes)) {
    ds.push(diff('altered-locally', null, 'the local trailer differs from the off-box copy'));
  }
  const unshipped = locChunks.filter((r) => r.seq >= offCount).map((r) => r.seq);
  if (unshipped.length || (locTrailer && !offTrailer) || (locHeader && !offHeader)) {
    const parts = [
      locHeader && !offHeader ? 'the header' : '',
      unshipped.length ? `chunks ${ranges(unshipped)}` : '',
      locTrailer && !offTrailer ? 'the trailer' : '',
    ].filter(Boolean);
    ds.push(diff('not-shipped', unshipped[0] ?? null, `${parts.join(', ')} not (yet) off the box (shipping lag)`));
  }
  return verdict(c.sessionId, c.sink, localDesc, offDesc, ds);
}

export interface AuditComparison {
  sink: string;
  anchors: Anchor[];
  /** Rows the collector holds (syslog file), if given. */
  offsiteRows?: AuditRow[];
  local: { maxId: number; hashOf(id: number): Promise<string | null>; rows(): AsyncIterable<AuditRow> };
  publicKeyPem: string;
}

/** The local audit chain against the anchors (and the collector's rows, if given) of one sink. */
export async function compareAudit(c: AuditComparison): Promise<OffsiteVerdict> {
  const ds: Difference[] = [];
  // The local chain itself: a row deleted from the middle breaks its links.
  let prev = GENESIS_HASH;
  let prevId = 0;
  const localRows = new Map<number, AuditRow>();
  const keep = c.offsiteRows !== undefined;
  for await (const r of c.local.rows()) {
    if (r.id !== prevId + 1 || r.prev_hash !== prev) {
      const rows = `${prevId + 1}${r.id - 1 > prevId + 1 ? `-${r.id - 1}` : ''}`;
      ds.push(diff('deleted-locally', prevId + 1, `local audit rows ${rows} are missing or rewritten: row ${r.id} does not follow row ${prevId}`));
    } else if (rowHash(prev, r) !== r.hash) ds.push(diff('altered-locally', r.id, `local audit row ${r.id} was altered after it was written`));
    prev = r.hash;
    prevId = r.id;
    if (keep) localRows.set(r.id, r);
  }
  const anchors = c.anchors.filter((a) => a.kind === 'audit').sort((a, b) => a.position - b.position || a.ts - b.ts);
  const bad = anchors.filter((a) => !anchorVerifies(a, c.publicKeyPem));
  if (bad.length) ds.push(diff('anchor-invalid', bad[0]!.position, `${bad.length} off-box audit anchors do not verify with the audit public key`));
  const good = anchors.filter((a) => !bad.includes(a));
  const beyond = good.filter((a) => a.position > c.local.maxId);
  if (beyond.length) {
    const a = beyond.at(-1)!;
    const names = `the anchor signed ${iso(a.ts)} off the box names row ${a.position} (head ${short(a.head)})`;
    const ends = `the local log ends at row ${c.local.maxId}: rows ${c.local.maxId + 1}-${a.position} were deleted locally`;
    ds.push(diff('truncated-locally', c.local.maxId + 1, `${names}; ${ends}`));
  }
  const mismatched: Anchor[] = [];
  for (const a of good.filter((x) => x.position <= c.local.maxId)) {
    const h = await c.local.hashOf(a.position);
    if (h !== a.head) mismatched.push(a);
  }
  if (mismatched.length) {
    const a = mismatched[0]!;
    const more = mismatched.length > 1 ? ` (${mismatched.length} anchors disagree)` : '';
    const head = `the head anchored off the box at row ${a.position} (${short(a.head)}, signed ${iso(a.ts)})`;
    ds.push(diff('deleted-locally', a.position, `the local chain no longer reaches ${head}: rows up to it were deleted or rewritten locally${more}`));
  }
  // The collector's rows (if given): each one the local log must still hold, unchanged; ids in the copy must run without holes.
  if (c.offsiteRows) {
    const rows = [...new Map(c.offsiteRows.map((r) => [r.id, r])).values()].sort((a, b) => a.id - b.id);
    const missing: number[] = [];
    const changed: number[] = [];
    for (const r of rows) {
      const l = localRows.get(r.id);
      if (!l) missing.push(r.id);
      else if (l.hash !== r.hash) changed.push(r.id);
    }
    const tail = missing.filter((id) => id > c.local.maxId);
    const mid = missing.filter((id) => id <= c.local.maxId);
    if (tail.length) {
      ds.push(diff('truncated-locally', tail[0]!, `the collector holds rows ${ranges(tail)} the local log no longer has: its tail was deleted locally`));
    }
    if (mid.length) ds.push(diff('deleted-locally', mid[0]!, `the collector holds rows ${ranges(mid)} that were deleted locally`));
    if (changed.length) ds.push(diff('altered-locally', changed[0]!, `local rows ${ranges(changed)} differ from the collector's copy (rewritten locally)`));
    const holes: number[] = [];
    for (let i = 1; i < rows.length; i++) for (let id = rows[i - 1]!.id + 1; id < rows[i]!.id; id++) holes.push(id);
    if (rows.length && rows[0]!.id > 1) for (let id = 1; id < rows[0]!.id; id++) holes.unshift(id);
    holes.sort((a, b) => a - b);
    if (holes.length) ds.push(diff('offsite-gap', holes[0]!, `the collector's copy lacks rows ${ranges(holes)} (a gap in the off-box stream)`));
    const newest = rows.at(-1)?.id ?? 0;
    if (c.local.maxId > newest) ds.push(diff('not-shipped', newest + 1, `local rows ${newest + 1}-${c.local.maxId} are not (yet) at the collector`));
  }
  const top = good.at(-1);
  const newest = top ? `, newest at row ${top.position} (${iso(top.ts)})` : '';
  const offDesc = `${anchors.length} anchors${newest}${c.offsiteRows ? `; ${c.offsiteRows.length} rows at the collector` : ''}`;
  return verdict('audit', c.sink, `${prevId} rows`, offDesc, ds);
}
