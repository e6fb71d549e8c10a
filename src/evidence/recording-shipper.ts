import { recordLength, recordsAt, type DurableRecord, type OffsiteFeed, type OffsiteRecordings } from '../recording/offsite.js';
import type { RecordingHead } from './anchors.js';
import { Samples, type RecordingShipperDeps, type RecordingShipperOptions, type RecordingShippingState } from './recording-shipping.js';

export type { RecordingShipperDeps, RecordingShipperOptions, RecordingShippingState } from './recording-shipping.js';

interface Track {
  id: string;
  file: string;
  /** File offset after the last durable record, and the durable chunk count and head. */
  durableEnd: number;
  durableChunks: number;
  head: string;
  /** File offset after the last record the store acknowledged, and its chunk count. */
  ackedEnd: number;
  ackedChunks: number;
  /** From this offset on, records are not in memory: they are read back from the file. */
  spillFrom: number | null;
  spilledAt: number;
  ended?: boolean;
  /** Part of its backlog could not be read back locally: never noted as complete. */
  lost?: boolean;
}

interface Item {
  track: Track;
  rec: DurableRecord;
  /** When the record was durable locally (for a read-back record: when its session spilled). */
  at: number;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Ships every durable record of every recording to one off-box store, in file order per
 * recording, batched across recordings. Memory holds at most maxLagBytes: past that a
 * recording "spills" and its records are read back from the local file (the durable buffer) once
 * there is room, still in order. A failed put is retried whole with back-off (the store ignores
 * resends of equal bytes). Never throws into the recorder and never delays it.
 */
export class RecordingShipper implements OffsiteRecordings {
  private readonly tracks = new Map<string, Track>();
  private readonly spilled = new Set<Track>();
  private queue: Item[] = [];
  private queuedBytes = 0;
  private readonly ended = new Map<string, RecordingHead & { at: number }>();
  private pumping: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  private retryAt = 0;
  private cancelRetry: (() => void) | null = null;
  private cancelLinger: (() => void) | null = null;
  private connected = false;
  private shippedChunks = 0;
  private shippedBytes = 0;
  private conflicts = 0;
  private lost = 0;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private lastShippedAt: number | null = null;
  private readonly samples = new Samples();
  private waiters: (() => void)[] = [];
  private stopped = false;
  private readonly batchRecords: number;
  private readonly batchBytes: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly linger: number;
  private puts = 0;

  constructor(
    private readonly o: RecordingShipperOptions,
    private readonly deps: RecordingShipperDeps,
  ) {
    this.batchRecords = o.batchRecords ?? 512;
    this.batchBytes = o.batchBytes ?? 4 * 1024 * 1024;
    this.backoff = o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.linger = o.lingerMs ?? deps.store.lingerMs ?? 200;
  }

  get sink(): string {
    return this.deps.store.sink;
  }

  /** A new recording: its records come through the feed as they become durable. */
  begin(sessionId: string, file: string): OffsiteFeed {
    const t = this.track(sessionId, file);
    this.deps.progress?.started(sessionId).catch((e: unknown) => this.warn({ sessionId, err: message(e) }, 'shipping start not noted'));
    return {
      durable: (records) => this.durable(t, records),
      close: () => {
        t.ended = true;
        this.settle(t);
      },
    };
  }

  /**
   * A recording a previous run did not finish shipping (the node stopped while the store was
   * away): asks the store what it holds and ships, from the local file, everything from the first
   * record it lacks. A missing file is logged and left (verify --offsite names it).
   */
  async resume(sessionId: string, file: string): Promise<void> {
    if (this.tracks.has(sessionId)) return;
    const held = await this.deps.store.holdings(sessionId);
    let buf: Buffer;
    try {
      buf = await this.deps.read(file, 0, Number.MAX_SAFE_INTEGER);
    } catch (e) {
      this.deps.logger?.error({ evidence: this.sink, sessionId, file, err: message(e) }, 'recording to resume shipping is unreadable locally');
      return;
    }
    const { records, end } = recordsAt(buf, 0);
    const have = new Set(held.chunks);
    const first = records.find((r) => (r.kind === 'header' ? !held.header : r.kind === 'chunk' ? !have.has(r.seq) : held.trailer === null));
    const t = this.track(sessionId, file);
    t.ended = true;
    t.durableEnd = end;
    const last = records.filter((r) => r.kind === 'chunk').at(-1);
    t.durableChunks = last ? last.seq + 1 : 0;
    t.head = records.at(-1)?.hash ?? '';
    t.ackedEnd = first ? first.offset : end;
    t.ackedChunks = first ? (first.kind === 'chunk' ? first.seq : first.kind === 'header' ? 0 : t.durableChunks) : t.durableChunks;
    if (first) this.spill(t, first.offset);
    this.settle(t);
    this.kick();
  }

  /** The heads of live recordings and of those that ended lately, for the anchors. */
  heads(): RecordingHead[] {
    const now = this.deps.clock.now();
    const keep = this.o.endedHeadsMs ?? 120_000;
    for (const [id, h] of this.ended) if (now - h.at > keep) this.ended.delete(id);
    const live = [...this.tracks.values()].filter((t) => t.head !== '').map((t) => ({ sessionId: t.id, chunks: t.durableChunks, head: t.head }));
    return [...live, ...[...this.ended.values()].map(({ sessionId, chunks, head }) => ({ sessionId, chunks, head }))];
  }

  /** The lag alone (cheap: what admission and the enforcer ask every tick). */
  lag(): { bytes: number; chunks: number; over: boolean } {
    let bytes = 0;
    let chunks = 0;
    for (const t of this.tracks.values()) {
      bytes += t.durableEnd - t.ackedEnd;
      chunks += t.durableChunks - t.ackedChunks;
    }
    return { bytes, chunks, over: bytes > this.o.maxLagBytes };
  }

  state(): RecordingShippingState {
    const { bytes: lagBytes, chunks: lagChunks } = this.lag();
    return {
      sink: this.sink,
      destination: this.deps.store.destination,
      connected: this.connected,
      lagBytes,
      lagChunks,
      maxLagBytes: this.o.maxLagBytes,
      overLag: lagBytes > this.o.maxLagBytes,
      queuedBytes: this.queuedBytes,
      spilledSessions: this.spilled.size,
      sessions: this.tracks.size,
      shippedChunks: this.shippedChunks,
      shippedBytes: this.shippedBytes,
      puts: this.puts,
      conflicts: this.conflicts,
      lost: this.lost,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      lastShippedAt: this.lastShippedAt,
      ackP50Ms: this.samples.percentile(0.5),
      ackP99Ms: this.samples.percentile(0.99),
    };
  }

  /** The ack latencies kept (ms, the last 4096), oldest first: for the bench. */
  latencies(): number[] {
    return this.samples.all();
  }

  /** Resolves once nothing durable is left unacknowledged (or at once if nothing is). */
  caughtUp(): Promise<void> {
    if (this.lag().bytes === 0 && this.spilled.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ships what it can within `deadlineMs`, then stops; what is left stays in the files (resume() at the next start). */
  async close(deadlineMs = 5000): Promise<void> {
    let cancel = (): void => {};
    await Promise.race([this.caughtUp(), new Promise<void>((r) => (cancel = this.deps.clock.setTimeout(r, deadlineMs)))]);
    cancel();
    this.stopped = true;
    this.cancelRetry?.();
    this.cancelLinger?.();
    await this.pumping;
    const left = this.lag();
    if (left.bytes > 0) {
      this.warn({ lagBytes: left.bytes, sessions: this.tracks.size }, 'recording shipping stopped with a backlog: shipped at the next start');
    }
  }

  private track(sessionId: string, file: string): Track {
    const t: Track = { id: sessionId, file, durableEnd: 0, durableChunks: 0, head: '', ackedEnd: 0, ackedChunks: 0, spillFrom: null, spilledAt: 0 };
    this.tracks.set(sessionId, t);
    this.ended.delete(sessionId);
    return t;
  }

  private durable(t: Track, records: DurableRecord[]): void {
    const now = this.deps.clock.now();
    for (const r of records) {
      t.durableEnd = r.offset + r.bytes.length;
      if (r.kind === 'chunk') t.durableChunks = r.seq + 1;
      t.head = r.hash;
      if (t.spillFrom !== null) continue;
      if (this.queuedBytes + r.bytes.length > this.o.maxLagBytes) {
        this.spill(t, r.offset);
        continue;
      }
      this.queue.push({ track: t, rec: r, at: now });
      this.queuedBytes += r.bytes.length;
    }
    this.kick();
  }

  private spill(t: Track, from: number): void {
    const what = 'recording shipping backlog over its memory bound: reading back from the files';
    if (this.spilled.size === 0) this.warn({ sessionId: t.id, maxLagBytes: this.o.maxLagBytes }, what);
    t.spillFrom = from;
    t.spilledAt = this.deps.clock.now();
    this.spilled.add(t);
  }

  /** Starts the pump unless it runs (then it goes round once more), waits for a retry, or lingers for more records. */
  private kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    if (this.deps.clock.now() < this.retryAt) return;
    const wait = this.lingerLeft();
    if (wait > 0) {
      this.cancelLinger ??= this.deps.clock.setTimeout(() => {
        this.cancelLinger = null;
        this.pumpNow();
      }, wait);
      return;
    }
    this.pumpNow();
  }

  /**
   * How much longer the queue waits for more records before the next put: until its oldest
   * record has waited `lingerMs`; never for a full batch, while catching up, or with nothing
   * queued. Counted from the oldest record, not from the last put: the records that came
   * during a put wait for the next linger too (measured: a follow-up put right after each
   * put carried a few records for a whole request, and doubled the requests).
   */
  private lingerLeft(): number {
    if (this.linger <= 0 || this.queue.length === 0 || this.spilled.size > 0) return 0;
    if (this.queuedBytes >= this.batchBytes || this.queue.length >= this.batchRecords) return 0;
    return Math.min(this.linger, this.queue[0]!.at + this.linger - this.deps.clock.now());
  }

  private pumpNow(): void {
    this.cancelLinger?.();
    this.cancelLinger = null;
    if (this.stopped || this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async pump(): Promise<void> {
    for (let first = true; !this.stopped; first = false) {
      // The first put goes at once (the linger that started the pump is over); later ones wait
      // for theirs, through kick() once this pump has returned.
      if (!first && this.lingerLeft() > 0) {
        this.again = true;
        return;
      }
      if (this.spilled.size > 0 && this.queuedBytes < this.o.maxLagBytes / 2) await this.readBack();
      if (this.queue.length === 0) {
        if (this.spilled.size === 0) return;
        continue;
      }
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && n < this.batchRecords && (n === 0 || bytes + this.queue[n]!.rec.bytes.length <= this.batchBytes)) {
        bytes += this.queue[n]!.rec.bytes.length;
        n++;
      }
      const batch = this.queue.slice(0, n);
      let conflicts: string[];
      try {
        conflicts = await this.deps.store.put(
          batch.map((i) => ({ sessionId: i.track.id, kind: i.rec.kind, seq: i.rec.seq, bytes: i.rec.bytes, hash: i.rec.hash })),
          this.o.node,
        );
      } catch (e) {
        this.failed(e);
        return;
      }
      this.puts++;
      this.queue.splice(0, n);
      this.acked(batch, conflicts);
    }
  }

  /** Reads the next part of one spilled recording back from its file into the queue. */
  private async readBack(): Promise<void> {
    const t = this.spilled.values().next().value!;
    this.spilled.delete(t); // round robin: back at the end if more is left
    const start = t.spillFrom!;
    const stop = t.durableEnd;
    let recs: DurableRecord[] = [];
    let end = start;
    try {
      let buf = await this.deps.read(t.file, start, Math.min(stop, start + this.batchBytes));
      ({ records: recs, end } = recordsAt(buf, start));
      if (recs.length === 0) {
        const len = recordLength(buf, start);
        if (len === null || start + len > stop) throw new Error(`no whole record at byte ${start}`);
        buf = await this.deps.read(t.file, start, start + len);
        ({ records: recs, end } = recordsAt(buf, start));
        if (recs.length === 0) throw new Error(`no valid record at byte ${start}`);
      }
    } catch (e) {
      // The file was cut or removed locally: what it held is gone from here; verify --offsite names it.
      this.lost++;
      this.lastError = `${t.id}: cannot read back ${t.file}: ${message(e)}`;
      this.lastErrorAt = this.deps.clock.now();
      this.deps.logger?.error({ evidence: this.sink, sessionId: t.id, file: t.file, err: message(e) }, 'recording backlog unreadable locally: not shipped');
      t.spillFrom = null;
      t.lost = true;
      t.ackedEnd = t.durableEnd;
      t.ackedChunks = t.durableChunks;
      this.settle(t);
      return;
    }
    for (const r of recs) {
      this.queue.push({ track: t, rec: r, at: t.spilledAt });
      this.queuedBytes += r.bytes.length;
    }
    if (end >= t.durableEnd) t.spillFrom = null;
    else {
      t.spillFrom = end;
      this.spilled.add(t);
    }
  }

  private acked(batch: Item[], conflicts: string[]): void {
    const now = this.deps.clock.now();
    this.connected = true;
    this.failures = 0;
    this.lastShippedAt = now;
    const touched = new Set<Track>();
    for (const i of batch) {
      const len = i.rec.bytes.length;
      i.track.ackedEnd = Math.max(i.track.ackedEnd, i.rec.offset + len);
      if (i.rec.kind === 'chunk') {
        i.track.ackedChunks = Math.max(i.track.ackedChunks, i.rec.seq + 1);
        this.shippedChunks++;
      }
      this.shippedBytes += len;
      this.queuedBytes -= len;
      this.samples.add(now - i.at);
      touched.add(i.track);
    }
    if (conflicts.length) {
      this.conflicts += conflicts.length;
      const what = 'the off-box store already holds different bytes for these records: kept as they were';
      this.deps.logger?.error({ evidence: this.sink, records: conflicts.slice(0, 20) }, what);
    }
    for (const t of touched) this.settle(t);
  }

  /** Ends the track of a recording that is closed and fully acknowledged; wakes close()'s wait. */
  private settle(t: Track): void {
    if (t.ended && t.ackedEnd >= t.durableEnd && t.spillFrom === null && this.tracks.get(t.id) === t) {
      this.tracks.delete(t.id);
      if (t.head) this.ended.set(t.id, { sessionId: t.id, chunks: t.durableChunks, head: t.head, at: this.deps.clock.now() });
      if (!t.lost) this.deps.progress?.completed(t.id).catch((e: unknown) => this.warn({ sessionId: t.id, err: message(e) }, 'shipping end not noted'));
    }
    if (this.waiters.length && this.spilled.size === 0 && this.lag().bytes === 0) {
      for (const w of this.waiters.splice(0)) w();
    }
  }

  private failed(e: unknown): void {
    const now = this.deps.clock.now();
    if (this.connected || this.failures === 0) this.warn({ destination: this.deps.store.destination, err: message(e) }, 'recording sink unreachable');
    this.connected = false;
    this.lastError = message(e);
    this.lastErrorAt = now;
    this.failures++;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(this.failures - 1, 30));
    this.retryAt = now + delay;
    this.cancelRetry?.();
    this.cancelRetry = this.deps.clock.setTimeout(() => {
      // The timer is the retry: a timer may fire a millisecond before now() reaches retryAt
      // (libuv's monotonic clock against the wall clock), and kick() must not then wait for a
      // timer that is no longer armed (seen: a backlog never shipped after the sink came back).
      this.cancelRetry = null;
      this.retryAt = 0;
      this.kick();
    }, delay);
  }

  private warn(fields: Record<string, unknown>, msg: string): void {
    this.deps.logger?.warn({ evidence: this.sink, ...fields }, msg);
  }
}
