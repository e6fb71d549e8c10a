import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { OffsiteStore } from './offsite-store.js';

export interface RecordingShipperOptions {
  /** This node's name, stored with every record. */
  node: string;
  /** The lag bound: bytes durable locally, not acknowledged by the store. Memory holds at most this; the rest is read back from the files. */
  maxLagBytes: number;
  /** The most records and bytes one put carries. */
  batchRecords?: number;
  batchBytes?: number;
  /** Retry delays after a failed put: initialMs, doubling, at most maxMs. */
  backoff?: { initialMs: number; maxMs: number };
  /** How long an ended recording's last head stays for the anchors (two anchor intervals). */
  endedHeadsMs?: number;
  /**
   * How long a queued record waits for more before a put (200 ms): sessions flush at random
   * phases, so without it every chunk would be a put of its own (measured: a round trip per chunk
   * cost more CPU than the chunk's sealing). Counted from the oldest queued record, before every
   * put; not applied to a full batch or while catching up. Unset: the store's `lingerMs` (S3:
   * 500 ms, one object per put), else 200 ms.
   */
  lingerMs?: number;
}

export interface RecordingShipperDeps {
  store: OffsiteStore;
  clock: Clock;
  logger?: Logger;
  /** Bytes [start, end) of a local recording file. */
  read(file: string, start: number, end: number): Promise<Buffer>;
  /** The local store's note of which recordings the sink holds completely (restarts resume the rest). */
  progress?: { started(sessionId: string): Promise<void>; completed(sessionId: string): Promise<void> };
}

/** What a recording shipper shows to metrics, the compliance report and the bench. */
export interface RecordingShippingState {
  sink: string;
  destination: string;
  /** The last put succeeded. */
  connected: boolean;
  /** Bytes and chunks durable locally, not yet acknowledged by the store. */
  lagBytes: number;
  lagChunks: number;
  maxLagBytes: number;
  overLag: boolean;
  /** Held in memory now (at most maxLagBytes). */
  queuedBytes: number;
  /** Recordings whose backlog is read back from their file (the memory bound was reached). */
  spilledSessions: number;
  sessions: number;
  shippedChunks: number;
  shippedBytes: number;
  /** Puts (requests to the store) that succeeded. */
  puts: number;
  /** Resends the store held with different bytes (never overwritten; logged). */
  conflicts: number;
  /** Records that could not be read back from their local file (deleted or cut locally). */
  lost: number;
  lastError: string | null;
  lastErrorAt: number | null;
  lastShippedAt: number | null;
  /** From durable locally to acknowledged off the box, over the last 4096 records (ms). */
  ackP50Ms: number | null;
  ackP99Ms: number | null;
}

/** The last `size` samples (a ring), with percentiles on demand. */
export class Samples {
  private readonly ring: Float64Array;
  private count = 0;

  constructor(private readonly size = 4096) {
    this.ring = new Float64Array(size);
  }

  add(v: number): void {
    this.ring[this.count++ % this.size] = v;
  }

  /** The samples kept, oldest first. */
  all(): number[] {
    const n = Math.min(this.count, this.size);
    const out: number[] = [];
    for (let i = this.count - n; i < this.count; i++) out.push(this.ring[i % this.size]!);
    return out;
  }

  /** The p-quantile (0-1) of the samples kept, or null without any. */
  percentile(p: number): number | null {
    const xs = this.all().sort((a, b) => a - b);
    return xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : null;
  }
}
