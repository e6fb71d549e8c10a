import { open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import type { Stores } from '../services/stores.js';
import type { OffsiteFeed, OffsiteRecordings } from '../recording/offsite.js';
import type { OffsiteStore } from '../evidence/offsite-store.js';
import { RecordingShipper } from '../evidence/recording-shipper.js';
import type { RecordingHead } from '../evidence/anchors.js';

/** Bytes [start, end) of a file (fewer at its end). */
export async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const len = Math.max(0, Math.min(end, size) - start);
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(buf, got, len - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** The recording side of the off-box evidence, as startEvidence composes it. */
export interface RecordingEvidence {
  /** What the recorder factory feeds (every sink gets every record). */
  offsite: OffsiteRecordings;
  /** The live and lately ended recordings' heads, for the anchors. */
  heads(): RecordingHead[];
  /** Why sessions fail closed now (onFailure required and a sink over its bound), or null. */
  behind(): string | null;
  /** Ships what it can (deadline), writes the last status, closes the sinks. */
  close(): Promise<void>;
}

export interface RecordingEvidenceDeps {
  stores: Pick<Stores, 'evidenceSinks'>;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  node: string;
}

const STATUS_EVERY_MS = 5000;

/**
 * One RecordingShipper per configured sink, fed every durable record; each node reports its lag
 * to the store every 5 s (the compliance report reads it) and, at start, resumes the recordings
 * an earlier run left incompletely shipped, from its local files.
 */
export async function startRecordingEvidence(config: Config, stores: OffsiteStore[], deps: RecordingEvidenceDeps): Promise<RecordingEvidence> {
  const c = config.evidence.recordings!;
  const { metrics, logger, clock, node } = deps;
  const repo = deps.stores.evidenceSinks;
  const rights = new Map<string, string>();
  const shippers = stores.map(
    (store) =>
      new RecordingShipper(
        { node, maxLagBytes: c.maxLagBytes, endedHeadsMs: 2 * c.anchorInterval },
        {
          store,
          clock,
          logger,
          read: readRange,
          progress: {
            started: (id) => repo.started(id, store.sink, clock.now()),
            completed: (id) => repo.completed(id, store.sink, clock.now()),
          },
        },
      ),
  );
  // What each sink's credentials allow, asked once in the background (an unreachable sink must
  // not hold up the start): a writer that can alter its copy is logged and fails the compliance check.
  const checked = Promise.all(
    stores.map(async (store) => {
      const r = await store.appendOnly().catch((e: unknown) => `unknown: ${(e as Error).message}`);
      rights.set(store.sink, r);
      if (!r.startsWith('yes')) logger.warn({ evidence: store.sink, destination: store.destination, appendOnly: r }, 'sink not known to be append-only');
    }),
  );

  for (const s of shippers) {
    const l = `{sink="${s.sink}"}`;
    metrics.gauge(`evidence_recordings_lag_bytes${l}`, () => s.lag().bytes);
    metrics.gauge(`evidence_recordings_lag_chunks${l}`, () => s.lag().chunks);
    metrics.gauge(`evidence_recordings_connected${l}`, () => (s.state().connected ? 1 : 0));
    metrics.gauge(`evidence_recordings_shipped_chunks_total${l}`, () => s.state().shippedChunks);
    metrics.gauge(`evidence_recordings_shipped_bytes_total${l}`, () => s.state().shippedBytes);
    metrics.gauge(`evidence_recordings_ack_p99_seconds${l}`, () => (s.state().ackP99Ms ?? 0) / 1000);
  }
  const lagHelp = 'recording bytes durable locally but not yet acknowledged by the sink (bound: evidence.recordings.maxLagBytes)';
  metrics.describe('evidence_recordings_lag_bytes', 'gauge', lagHelp);
  metrics.describe('evidence_recordings_lag_chunks', 'gauge', 'recording chunks durable locally but not yet acknowledged by the sink');
  metrics.describe('evidence_recordings_connected', 'gauge', '1 while the last write to the sink succeeded');
  metrics.describe('evidence_recordings_shipped_chunks_total', 'counter', 'recording chunks this node shipped and saw acknowledged');
  metrics.describe('evidence_recordings_shipped_bytes_total', 'counter', 'recording bytes (headers, chunks, trailers) this node shipped and saw acknowledged');
  metrics.describe('evidence_recordings_ack_p99_seconds', 'gauge', 'p99 of the time from durable locally to acknowledged by the sink, last 4096 records');
  // The S3 sink's catalogs: a failed write leaves readers indexing segments until a later one names them; one read that is not a catalog is not trusted.
  for (const store of stores) {
    if (!store.indexHealth) continue;
    const l = `{sink="${store.sink}"}`;
    metrics.gauge(`evidence_recordings_catalog_write_failures_total${l}`, () => store.indexHealth!().catalogWriteFailures);
    metrics.gauge(`evidence_recordings_unreadable_catalogs_total${l}`, () => store.indexHealth!().unreadableCatalogs);
  }
  const catalogHelp = 'catalog writes (with their session markers) that failed since the node started: readers index the segments they were to name';
  metrics.describe('evidence_recordings_catalog_write_failures_total', 'counter', catalogHelp);
  const unreadableHelp = 'catalogs this node read that are not catalogs (not trusted: the segments of that writer day are indexed instead)';
  metrics.describe('evidence_recordings_unreadable_catalogs_total', 'counter', unreadableHelp);

  const report = async (): Promise<void> => {
    for (const [i, s] of shippers.entries()) {
      const st = s.state();
      const index = stores[i]!.indexHealth?.();
      await repo
        .report(
          {
            sink: s.sink,
            node,
            destination: st.destination,
            on_failure: c.onFailure,
            lag_bytes: st.lagBytes,
            lag_chunks: st.lagChunks,
            max_lag_bytes: st.maxLagBytes,
            shipped_chunks: st.shippedChunks,
            connected: st.connected ? 1 : 0,
            last_error: st.lastError,
            last_error_at: st.lastErrorAt,
            last_shipped_at: st.lastShippedAt,
            append_only: rights.get(s.sink) ?? null,
            catalog_failures: index?.catalogWriteFailures ?? 0,
            catalog_error: index?.lastCatalogError ?? null,
            catalog_error_at: index?.lastCatalogErrorAt ?? null,
            unreadable_catalogs: index?.unreadableCatalogs ?? 0,
          },
          clock.now(),
        )
        .catch((e: unknown) => logger.warn({ evidence: s.sink, err: (e as Error).message }, 'recording sink status not stored'));
    }
  };
  await report();
  void checked.then(report);
  const stopReports = clock.setInterval(() => void report(), STATUS_EVERY_MS);

  // Recordings an earlier run left incompletely shipped (the sink was away at its shutdown or crash).
  const resumed = Promise.all(
    shippers.map(async (s) => {
      for (const r of await repo.incomplete(s.sink).catch(() => [])) {
        if (!existsSync(r.file)) {
          // Another node's (in a cluster), or deleted here: `verify --offsite` tells which.
          logger.info({ evidence: s.sink, sessionId: r.session_id, file: r.file }, 'recording to resume shipping is not on this node');
          continue;
        }
        const err = (e: unknown) => logger.warn({ evidence: s.sink, sessionId: r.session_id, err: (e as Error).message }, 'shipping not resumed');
        await s.resume(r.session_id, r.file).catch(err);
      }
    }),
  );

  const offsite: OffsiteRecordings = {
    begin(sessionId, file) {
      const feeds: OffsiteFeed[] = shippers.map((s) => s.begin(sessionId, file));
      return {
        durable: (records) => {
          for (const f of feeds) f.durable(records);
        },
        close: () => {
          for (const f of feeds) f.close();
        },
      };
    },
  };
  return {
    offsite,
    heads: () => shippers[0]?.heads() ?? [],
    behind: () => {
      if (c.onFailure !== 'required') return null;
      for (const s of shippers) {
        const lag = s.lag();
        if (!lag.over) continue;
        const why = s.state().lastError ?? 'no error';
        return `recording shipping to ${s.sink}: lag ${lag.bytes} bytes > evidence.recordings.maxLagBytes ${c.maxLagBytes} (onFailure: required; ${why})`;
      }
      return null;
    },
    close: async () => {
      stopReports();
      await Promise.all([resumed, checked]);
      await Promise.all(shippers.map((s) => s.close(5000)));
      await report();
    },
  };
}
