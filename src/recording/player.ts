import { hkdfSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Screen } from './screen.js';
import { readResize, type Frame } from './format.js';
import { formatOffset } from './asciicast.js';
import type { RecordingStream } from './stream.js';
import { SafeTerminalFilter } from './safe-terminal.js';
import { escapeControls } from '../platform/text.js';
import { aesGcmSealer, type Sealer } from '../crypto/sealer.js';

const CSI = '\x1b[';
/** Bytes of recorded output written to a viewer per timer tick at most (fast replay stays fair to other users). */
const TICK_BYTES = 64 * 1024;
/** Keyframes kept per viewer at most: past it, every other one goes and the spacing doubles. */
const MAX_KEYFRAMES = 256;

/** Where a replay is shown: the CLI's own terminal, or an auditor's SSH channel. */
export interface PlayerIo {
  /** false: the viewer is not reading as fast as we write; with onceDrain, playback waits for it. */
  write(data: string | Buffer): boolean | void;
  /** Calls `fn` once the viewer has read what was written (backpressure). */
  onceDrain?(fn: () => void): void;
  columns(): number;
  onKey(fn: (k: Buffer) => void): void;
  /** Without keys, playback ends by itself at the end of the recording. */
  interactive: boolean;
  release(): void;
}

/**
 * What the viewer sees instead of the recorded bytes, when given: a terminal fed the recorded
 * output that draws its own version of the screen (redaction's RedactingView; this layer sits
 * below redaction and knows only this shape). Fed per tick, drawn per tick.
 */
export interface ReplayView {
  write(data: Buffer | string): Promise<void>;
  /** The drawing that brings the viewer from what it last got to the current screen. */
  update(): string;
  /** The viewer's screen is unknown: the next update() redraws it all. */
  reset(): void;
  resize(cols: number, rows: number): void;
}

/** A screen snapshot at time `t`, and where in the stream (chunk, frame) playback resumes after it. */
export interface Keyframe {
  t: number;
  chunk: number;
  frame: number;
  cols: number;
  rows: number;
  snapshot: string;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Feeds frames to a screen, batching runs of output into one write (resizes keep their place). */
async function apply(s: Screen, frames: Frame[], from: number, to: number): Promise<void> {
  let run: Buffer[] = [];
  const flush = async () => {
    if (run.length) await s.write(run.length === 1 ? run[0]! : Buffer.concat(run));
    run = [];
  };
  for (let j = from; j < to; j++) {
    const f = frames[j]!;
    if (f.kind === 'output') run.push(f.data);
    else if (f.kind === 'resize') {
      await flush();
      const r = readResize(f.data);
      s.resize(r.cols, r.rows);
    }
  }
  await flush();
}

const KF_MAGIC = Buffer.from('TGKF2\n');

/**
 * Screen keyframes for seeking, built on demand: `ensure(t)` runs the recording through a headless
 * terminal from where the last build stopped up to `t`, one chunk per event-loop turn. At most
 * MAX_KEYFRAMES are kept (thinned by doubling the spacing), so memory per viewer is bounded whatever
 * the recording's length. Once a build reaches the end, the keyframes are cached beside the
 * recording, encrypted under a key derived from the session's data key and bound to its last
 * chunk hash; never written in plaintext.
 */
export class Keyframes {
  list: Keyframe[];
  private everyMs: number;
  private next: number;
  private scanChunk = 0;
  private screen: Screen | null = null;
  private done: boolean;
  private stopped = false;
  /** The builder runs (one loop per viewer) until `next` passes `target`; waiters wake as it passes their time. */
  private target = 0;
  private running = false;
  private waiters: { t: number; resolve: () => void; reject: (e: unknown) => void }[] = [];

  private constructor(
    private readonly rec: RecordingStream,
    cached: { everyMs: number; list: Keyframe[] } | null,
    everyMs: number,
  ) {
    this.list = cached?.list ?? [{ t: 0, chunk: 0, frame: 0, cols: rec.header.cols, rows: rec.header.rows, snapshot: '' }];
    this.everyMs = cached?.everyMs ?? everyMs;
    this.next = this.everyMs;
    this.done = cached !== null;
  }

  /** The cached keyframes when they open for exactly this content, else an empty set built as seeks need it. */
  static async open(rec: RecordingStream, everyMs = 5000): Promise<Keyframes> {
    let cached: { everyMs: number; list: Keyframe[] } | null = null;
    try {
      const b = await readFile(cacheFile(rec));
      if (b.subarray(0, KF_MAGIC.length).equals(KF_MAGIC)) {
        const plain = kfSealer(rec).open(b.subarray(KF_MAGIC.length), kfAad(rec));
        cached = JSON.parse(inflateRawSync(plain).toString()) as { everyMs: number; list: Keyframe[] };
      }
    } catch {
      /* no cache, or not for this content: build as needed */
    }
    return new Keyframes(rec, cached, everyMs);
  }

  /** The last keyframe at or before `t`. */
  at(t: number): Keyframe {
    let k = this.list[0]!;
    for (const x of this.list) if (x.t <= t) k = x;
    return k;
  }

  /** Resolves once the keyframe for `t` exists (or the recording ends): the builder runs on to there. */
  ensure(t: number): Promise<void> {
    if (this.done || this.stopped || this.next > t) return Promise.resolve();
    this.target = Math.max(this.target, t);
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ t, resolve, reject }));
    if (!this.running) void this.run();
    return p;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.done && !this.stopped && this.next <= this.target) {
        await this.step();
        this.wake(null);
      }
    } catch (e) {
      this.wake(e);
    } finally {
      this.running = false;
      this.wake(null);
    }
  }

  private wake(err: unknown): void {
    this.waiters = this.waiters.filter((w) => {
      if (err) w.reject(err);
      else if (this.done || this.stopped || this.next > w.t) w.resolve();
      else return true;
      return false;
    });
  }

  /** Builds every keyframe (then caches them). */
  complete(): Promise<void> {
    return this.ensure(Infinity);
  }

  /** Stops building (the viewer left) and frees the builder's terminal. */
  dispose(): void {
    this.stopped = true;
    this.screen?.dispose();
    this.screen = null;
  }

  /** One chunk through the builder's terminal. */
  private async step(): Promise<void> {
    if (this.scanChunk >= this.rec.chunks) return this.finish();
    this.screen ??= new Screen(this.rec.header.cols, this.rec.header.rows);
    const s = this.screen;
    const frames = await this.rec.frames(this.scanChunk);
    if (this.stopped) return;
    let j0 = 0;
    for (let j = 0; j < frames.length; j++) {
      if (frames[j]!.t < this.next) continue;
      await apply(s, frames, j0, j);
      j0 = j;
      const snapshot = s.snapshot(); // the same screen for every keyframe in a long pause
      while (frames[j]!.t >= this.next) {
        this.list.push({ t: this.next, chunk: this.scanChunk, frame: j, cols: s.cols, rows: s.rows, snapshot });
        this.next += this.everyMs;
        if (this.list.length > MAX_KEYFRAMES) {
          this.list = this.list.filter((_, i) => i % 2 === 0);
          this.everyMs *= 2;
          this.next = this.list.at(-1)!.t + this.everyMs;
        }
      }
    }
    await apply(s, frames, j0, frames.length);
    this.scanChunk++;
    await tick();
  }

  private async finish(): Promise<void> {
    this.done = true;
    this.dispose();
    try {
      // "TGKF2\n" | nonce(12) | ciphertext | tag(16): the magic then Sealer.seal's blob.
      const sealed = kfSealer(this.rec).seal(deflateRawSync(Buffer.from(JSON.stringify({ everyMs: this.everyMs, list: this.list }))), kfAad(this.rec));
      await writeFile(cacheFile(this.rec), Buffer.concat([KF_MAGIC, sealed]), { mode: 0o600 });
    } catch {
      /* a read-only store still replays, just without the cache */
    }
  }
}

const cacheFile = (rec: RecordingStream) => rec.row.file.replace(/\.tgrec$/, '.tgkf');
const kfAad = (rec: RecordingStream) => Buffer.from(`${rec.session.id}\0${rec.head}`);
/** The keyframe cache's own key, derived from the session data key (HKDF-SHA256, info tmuxgate-keyframes-v1). */
const kfSealer = (rec: RecordingStream): Sealer => aesGcmSealer(Buffer.from(hkdfSync('sha256', rec.dataKey, Buffer.alloc(0), 'tmuxgate-keyframes-v1', 32)));

/** The screen at time `t` as escape sequences (nearest keyframe, then the frames after it), and where playback resumes. */
export async function screenAt(
  rec: RecordingStream,
  keys: Keyframes,
  t: number,
): Promise<{ text: string; chunk: number; frame: number; cols: number; rows: number }> {
  await keys.ensure(t);
  const k = keys.at(t);
  const s = new Screen(k.cols, k.rows);
  try {
    if (k.snapshot) await s.write(k.snapshot);
    for (let c = k.chunk, first = k.frame; c < rec.chunks; c++, first = 0) {
      const frames = await rec.frames(c);
      let j = first;
      while (j < frames.length && frames[j]!.t <= t) j++;
      await apply(s, frames, first, j);
      if (j < frames.length) return { text: s.snapshot(), chunk: c, frame: j, cols: s.cols, rows: s.rows };
      await tick();
    }
    return { text: s.snapshot(), chunk: rec.chunks, frame: 0, cols: s.cols, rows: s.rows };
  } finally {
    s.dispose();
  }
}

/**
 * Plays a recording on `io` with the replay keys; resolves when the viewer quits. Streams: one
 * chunk of frames in memory, at most TICK_BYTES written per timer tick, every byte through the
 * safe terminal filter. `view`: null plays the recorded bytes (filtered); a ReplayView (a
 * redacted one) is fed them instead and its drawing is what the viewer gets. The caller decides,
 * explicitly, which (redaction/view-policy.ts).
 */
export async function playRecording(
  io: PlayerIo,
  rec: RecordingStream,
  o: { speed: number; from: number; idleLimit: number; view: ReplayView | null },
): Promise<void> {
  const keys = await Keyframes.open(rec);
  // The rest of the keyframes are built behind playback, one chunk per event-loop turn, and
  // cached when complete, so later seeks (and later replays) find them ready.
  void keys.complete().catch(() => {});
  try {
    await play(io, rec, keys, {
      ...o,
      from: Math.min(o.from, rec.durationMs),
      title: escapeControls(`${rec.session.id} ${rec.session.user_name}+${rec.session.role_name}`),
    });
  } finally {
    keys.dispose();
  }
}

function play(
  io: PlayerIo,
  rec: RecordingStream,
  keys: Keyframes,
  o: { speed: number; from: number; idleLimit: number; title: string; view: ReplayView | null },
): Promise<void> {
  const view = o.view;
  const duration = rec.durationMs;
  let pos = o.from;
  let speed = o.speed;
  let paused = false;
  let rows = rec.header.rows;
  let timer: NodeJS.Timeout | null = null;
  let done = false;
  let finished = false;
  let seeking = false;
  /** Bumped to cancel a playback step in flight (a seek, a pause, quitting). */
  let runGen = 0;
  let seekGen = 0;
  // The stream position: frames of chunk `chunk` (one chunk in memory), next one at `fi`.
  let chunk = 0;
  let frames: Frame[] = [];
  let fi = 0;
  // The recorded bytes are the user's: only the safe terminal subset reaches the viewer. Its output
  // always ends between sequences, so the status line can be drawn after any chunk.
  const filter = new SafeTerminalFilter();

  const status = () => {
    const state = done ? 'end: q to quit' : paused ? 'paused' : 'playing';
    const line = ` ${formatOffset(pos)} / ${formatOffset(duration)}  ${speed}x  ${state}  [space] pause [</>] 5s [+/-] speed [q] quit  ${o.title}`;
    io.write(`\x1b7${CSI}${rows + 1};1H${CSI}0m${CSI}7m${line.slice(0, Math.max(20, (io.columns() ?? 80) - 1))}${CSI}K${CSI}0m\x1b8`);
  };

  /** The next output or resize frame (loading the next chunk when this one is used up), or null at the end. */
  const peek = async (): Promise<Frame | null> => {
    for (;;) {
      while (fi < frames.length) {
        const f = frames[fi]!;
        if (f.kind === 'output' || f.kind === 'resize') return f;
        fi++;
      }
      if (chunk + 1 >= rec.chunks) return null;
      const g = runGen;
      const next = await rec.frames(chunk + 1);
      if (g !== runGen) return null;
      chunk++;
      frames = next;
      fi = 0;
    }
  };

  const seek = async (t: number) => {
    const g = ++seekGen;
    runGen++;
    seeking = true;
    if (timer) clearTimeout(timer);
    pos = Math.max(0, Math.min(duration, t));
    const s = await screenAt(rec, keys, pos);
    const loaded = s.chunk < rec.chunks ? await rec.frames(s.chunk) : [];
    if (g !== seekGen || finished) return;
    chunk = s.chunk;
    frames = loaded;
    fi = s.frame;
    rows = s.rows;
    let text = s.text;
    if (view) {
      // A terminal reset, then the rebuilt screen: whatever the view showed before is gone.
      view.resize(s.cols, s.rows);
      view.reset();
      await view.write(`\x1bc${s.text}`);
      if (g !== seekGen || finished) return;
      text = view.update();
    }
    filter.reset();
    io.write(Buffer.concat([Buffer.from(`${CSI}r${CSI}H${CSI}2J`), filter.write(text)]));
    seeking = false;
    done = false;
    status();
    schedule();
  };

  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const g = ++runGen;
    if (paused || done || seeking || finished) return;
    void peek().then((f) => {
      if (g !== runGen) return;
      if (!f) {
        pos = duration;
        done = true;
        status();
        if (!io.interactive) finish();
        return;
      }
      const gap = Math.min(Math.max(0, f.t - pos), o.idleLimit);
      timer = setTimeout(() => void step(g, f.t).catch(fail), gap / speed);
    }, fail);
  };

  /** Writes every frame due now (up to TICK_BYTES), then schedules the next. */
  const step = async (g: number, t: number) => {
    // The frame is due: a pause longer than the idle limit was shortened to it, not replayed in
    // idle-limit steps (before, a 10 s pause with a 2 s limit still took 10 s).
    pos = Math.max(pos, t);
    let parts: Buffer[] = [];
    let bytes = 0;
    const joined = () => (parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    for (;;) {
      const f = await peek();
      if (g !== runGen) return;
      if (!f || f.t > pos + 1 || bytes >= TICK_BYTES) break;
      if (f.kind === 'output') {
        parts.push(f.data);
        bytes += f.data.length;
      } else {
        const r = readResize(f.data);
        rows = r.rows;
        if (view) {
          // The view's terminal takes the resize where it happened in the stream.
          if (parts.length) await view.write(joined());
          parts = [];
          if (g !== runGen) return;
          view.resize(r.cols, r.rows);
        }
      }
      fi++;
    }
    let full = false;
    if (view) {
      // One drawing per tick, whatever the number of frames in it.
      if (parts.length) await view.write(joined());
      if (g !== runGen) return;
      const out = filter.write(view.update());
      if (out.length) full = io.write(out) === false;
    } else if (parts.length) {
      const out = filter.write(joined());
      if (out.length) full = io.write(out) === false;
    }
    status();
    // A viewer that reads slower than the replay runs holds it up, not the gateway's memory.
    if (full && io.onceDrain) io.onceDrain(() => g === runGen && schedule());
    else schedule();
  };

  let resolveDone: () => void = () => {};
  let rejectDone: (e: unknown) => void = () => {};
  let failure: unknown = null;
  const finish = () => {
    if (finished) return;
    finished = true;
    runGen++;
    seekGen++;
    if (timer) clearTimeout(timer);
    io.release();
    io.write(`${CSI}r${CSI}${rows + 2};1H${CSI}0m\n`);
    if (failure) rejectDone(failure);
    else resolveDone();
  };
  /** A chunk that does not decrypt (tampered) ends the replay with that error. */
  const fail = (e: unknown) => {
    if (finished) return;
    failure = e;
    finish();
  };

  const onKey = (k: Buffer) => {
    const s = k.toString();
    if (s === 'q' || s === '\x03') return finish();
    if (s === ' ') {
      paused = !paused;
      status();
      schedule();
    } else if (s === '\x1b[C' || s === '\x1b[D') {
      seek(pos + (s === '\x1b[C' ? 5000 : -5000)).catch(fail);
    } else if (s === '+' || s === '=') {
      speed = Math.min(64, speed * 2);
      status();
      schedule();
    } else if (s === '-') {
      speed = Math.max(0.125, speed / 2);
      status();
      schedule();
    }
  };

  return new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
    io.onKey(onKey);
    seek(o.from).catch(fail);
  });
}
