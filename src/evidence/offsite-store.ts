import type { RecordKind } from '../recording/offsite.js';
import type { AnchorRow } from '../store/evidence-offsite.js';

/** One record of a recording as an off-box store holds it. */
export interface OffsiteRecord {
  sessionId: string;
  kind: RecordKind;
  /** header: 0; chunk: its sequence number; trailer: the chunk count. */
  seq: number;
  /** Exactly the bytes of the local file's record. */
  bytes: Buffer;
  /** The chain hash after the record (hex), as the shipping node computed it. */
  hash: string;
}

/** A signed chain head (src/evidence/anchors.ts says what the signature covers): a row of evidence_anchors before it is stored. */
export type Anchor = Omit<AnchorRow, 'id'>;

/** What a store holds of one recording (from listing, without the bytes). */
export interface OffsiteHoldings {
  header: boolean;
  /** Chunk sequence numbers held, ascending. */
  chunks: number[];
  /** The trailer's chunk count, or null without a trailer. */
  trailer: number | null;
}

/** How a store's own index fares (the S3 sink's catalogs): for metrics and the compliance report. */
export interface OffsiteIndexHealth {
  /** Catalog writes (with their session markers) that failed since the store opened: readers index those segments instead until a later catalog names them. */
  catalogWriteFailures: number;
  lastCatalogError: string | null;
  lastCatalogErrorAt: number | null;
  /** Distinct catalogs this store read that were not catalogs (bad JSON, keys outside the prefix, too long...): not trusted, segments indexed instead. */
  unreadableCatalogs: number;
}

/**
 * An off-box store of recordings and anchors: a PostgreSQL database written through an
 * insert-only role, or an S3 bucket (with Object Lock where the bucket has it). Writes are
 * idempotent (a resend of the same bytes is fine) and never replace what is held.
 */
export interface OffsiteStore {
  readonly sink: 'postgres' | 's3';
  /** Where it writes, without secrets (for logs and the compliance report). */
  readonly destination: string;
  /** How long the shipper lets a put wait for more records, when the store wants other than its 200 ms (a request costs more). */
  readonly lingerMs?: number;
  /** Stores records; returns the keys ("session/kind/seq") the store already held with other bytes. */
  put(records: readonly OffsiteRecord[], node: string): Promise<string[]>;
  holdings(sessionId: string): Promise<OffsiteHoldings>;
  /** Every record of one recording, header first, chunks by seq, trailer last. */
  records(sessionId: string): Promise<OffsiteRecord[]>;
  /** Every session it holds records of. */
  sessions(): Promise<string[]>;
  putAnchors(anchors: readonly Anchor[]): Promise<void>;
  anchors(kind: 'audit' | 'recording', subject?: string): Promise<Anchor[]>;
  /** The store's index, when it keeps one apart from the records (S3: catalogs). */
  indexHealth?(): OffsiteIndexHealth;
  /** 'yes', 'no: <what the writer may do>', or 'unknown: <why>': whether the writer can change what it wrote. */
  appendOnly(): Promise<string>;
  close(): Promise<void>;
}

/** The key of a record in conflict reports and maps. */
export const recordKey = (r: { sessionId: string; kind: string; seq: number }): string => `${r.sessionId}/${r.kind}/${r.seq}`;

/** Holdings from a list of (kind, seq). */
export function holdingsOf(items: readonly { kind: string; seq: number }[]): OffsiteHoldings {
  const chunks = items
    .filter((i) => i.kind === 'chunk')
    .map((i) => i.seq)
    .sort((a, b) => a - b);
  const trailer = items.find((i) => i.kind === 'trailer')?.seq ?? null;
  return { header: items.some((i) => i.kind === 'header'), chunks, trailer };
}
