import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Random } from '../platform/random.js';
import type { Metrics } from '../platform/metrics.js';
import { requireDeps } from '../platform/check-deps.js';
import type { KeyProvider } from '../crypto/master-key.js';
import type { Signer } from '../crypto/audit-key.js';
import { aesGcmSealer, type Sealer } from '../crypto/sealer.js';
import type { RecordingRepo } from '../store/recordings.js';
import type { RecordingSink } from '../recording/sink.js';
import { Recorder } from '../recording/recorder.js';
import type { OffsiteRecordings } from '../recording/offsite.js';

/** What opening a session's recording needs. */
export interface RecorderFactoryConfig {
  sink: RecordingSink;
  recordings: Pick<RecordingRepo, 'create' | 'flushed' | 'finish'>;
  /** Wraps each session's data key before it is stored. */
  masterKeys: KeyProvider;
  /** Signs the recording's trailer. */
  signer: Signer;
  clock: Clock;
  random: Random;
  metrics: Pick<Metrics, 'inc'>;
  recording: Pick<Config['recording'], 'fsync' | 'flushInterval' | 'maxChunkBytes' | 'maxQueueBytes'>;
  /** The chunks' AEAD under a data key: AES-256-GCM by default (a failing fake in tests). */
  sealerFor?: (dataKey: Buffer) => Sealer;
  /** Off-box shipping of every durable record (evidence.recordings); none when not configured. */
  offsite?: OffsiteRecordings;
}

/** The session a recording belongs to, as its header says. */
export interface RecordingMeta {
  id: string;
  user: string;
  role: string;
  recordInput: boolean;
  term: string;
  cols: number;
  rows: number;
  startedAt: number;
}

/** Creates sessions' recordings: a random data key each, stored only wrapped by the master key. */
export class RecorderFactory {
  private readonly c: RecorderFactoryConfig;

  constructor(config: RecorderFactoryConfig) {
    this.c = requireDeps('recorder factory', config, ['sink', 'recordings', 'masterKeys', 'signer', 'clock', 'random', 'metrics', 'recording']);
  }

  /**
   * Creates the file and its row and writes the header; throws if any of it fails (the session
   * must not start). A file whose header could not be written is closed and its row marked failed.
   */
  async open(m: RecordingMeta): Promise<Recorder> {
    const { sink, recordings, masterKeys, signer, clock, random, metrics, recording } = this.c;
    const dataKey = random.bytes(32);
    let lastIn = 0;
    let lastStored = 0;
    let lastSeal = 0;
    const file = await sink.create(m.id);
    await recordings.create({ sessionId: m.id, file: file.path, dataKey, keys: masterKeys, cols: m.cols, rows: m.rows, now: clock.now() });
    const offsite = this.c.offsite?.begin(m.id, file.path);
    const recorder = new Recorder({
      header: {
        v: 1,
        sessionId: m.id,
        user: m.user,
        role: m.role,
        startedAt: m.startedAt,
        cols: m.cols,
        rows: m.rows,
        term: m.term,
        cipher: 'aes-256-gcm',
        compression: 'deflate-raw',
        recordInput: m.recordInput,
      },
      sealer: (this.c.sealerFor ?? aesGcmSealer)(dataKey),
      file,
      clock,
      random,
      signer,
      fsync: recording.fsync,
      flushIntervalMs: recording.flushInterval,
      maxChunkBytes: recording.maxChunkBytes,
      maxQueueBytes: recording.maxQueueBytes,
      ...(offsite ? { offsite } : {}),
      onFlush: (st) => {
        // The row follows the file (the file is the record); a row that lags is caught up by the next flush.
        recordings.flushed(m.id, st.chunks, st.head, st.bytesIn, st.bytesStored).catch(() => metrics.inc('store_write_failures_total'));
        metrics.inc('recording_bytes_total{kind="in"}', st.bytesIn - lastIn);
        metrics.inc('recording_bytes_total{kind="stored"}', st.bytesStored - lastStored);
        metrics.inc('recording_seal_seconds_total', (st.sealMs - lastSeal) / 1000);
        lastIn = st.bytesIn;
        lastStored = st.bytesStored;
        lastSeal = st.sealMs;
      },
    });
    try {
      await recorder.start();
    } catch (e) {
      // The file was created but its header could not be written (disk full): close it, and
      // mark the row failed rather than leave it 'recording' until the next restart.
      await file.close().catch(() => {});
      offsite?.close();
      await recordings.finish(m.id, 'failed', 0, clock.now(), String((e as Error).message).slice(0, 300));
      throw e;
    }
    return recorder;
  }
}
