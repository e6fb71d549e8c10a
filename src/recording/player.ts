import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Screen } from './screen.js';
import { readResize, type Frame } from './format.js';
import { formatOffset } from './asciicast.js';
import type { OpenedRecording } from './access.js';
import { SafeTerminalFilter, escapeControls } from './safe-terminal.js';

const CSI = '\x1b[';

/** Where a replay is shown: the CLI's own terminal, or an auditor's SSH channel. */
export interface PlayerIo {
  write(data: string | Buffer): void;
  columns(): number;
  onKey(fn: (k: Buffer) => void): void;
  /** Without keys, playback ends by itself at the end of the recording. */
  interactive: boolean;
  release(): void;
}


export interface Keyframe {
  t: number;
  /** Index of the first frame not yet applied. */
  index: number;
  cols: number;
  rows: number;
  snapshot: string;
}

/**
 * Screen keyframes every `everyMs` of recording time, so a seek replays at most that much.
 * Built in memory from the decrypted stream when a replay opens; never written in plaintext.
 */
export async function buildKeyframes(frames: Frame[], cols: number, rows: number, everyMs = 5000): Promise<Keyframe[]> {
  const s = new Screen(cols, rows);
  const keys: Keyframe[] = [{ t: 0, index: 0, cols, rows, snapshot: '' }];
  let next = everyMs;
  try {
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      while (f.t >= next) {
        keys.push({ t: next, index: i, cols: s.cols, rows: s.rows, snapshot: s.snapshot() });
        next += everyMs;
      }
      if (f.kind === 'output') await s.write(f.data);
      else if (f.kind === 'resize') {
        const r = readResize(f.data);
        s.resize(r.cols, r.rows);
      }
    }
  } finally {
    s.dispose();
  }
  return keys;
}

/** The screen at time `t` as escape sequences: nearest keyframe, then the frames after it. */
export async function screenAt(frames: Frame[], keys: Keyframe[], t: number): Promise<{ text: string; index: number; cols: number; rows: number }> {
  let k = keys[0]!;
  for (const x of keys) if (x.t <= t) k = x;
  const s = new Screen(k.cols, k.rows);
  try {
    if (k.snapshot) await s.write(k.snapshot);
    let i = k.index;
    for (; i < frames.length && frames[i]!.t <= t; i++) {
      const f = frames[i]!;
      if (f.kind === 'output') await s.write(f.data);
      else if (f.kind === 'resize') {
        const r = readResize(f.data);
        s.resize(r.cols, r.rows);
      }
    }
    return { text: s.snapshot(), index: i, cols: s.cols, rows: s.rows };
  } finally {
    s.dispose();
  }
}

/**
 * Whether a stream of terminal output ends between sequences (not inside an escape sequence or a
 * UTF-8 character). Recorded frames are raw pty reads and may split both; the status line may
 * only be drawn at a clean point or it would corrupt the replayed screen.
 */
export function endsClean(b: Buffer): boolean {
  // UTF-8: a lead byte near the end without all its continuation bytes.
  for (let i = Math.max(0, b.length - 3); i < b.length; i++) {
    const c = b[i]!;
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (need > 1 && i + need > b.length) return false;
  }
  const esc = b.lastIndexOf(0x1b);
  if (esc < 0) return true;
  const rest = b.subarray(esc + 1);
  if (rest.length === 0) return false;
  const kind = rest[0]!;
  if (kind === 0x5b) {
    for (let i = 1; i < rest.length; i++) if (rest[i]! >= 0x40 && rest[i]! <= 0x7e) return true;
    return false;
  }
  if (kind === 0x5d || kind === 0x50 || kind === 0x5f) return rest.includes(0x07) || rest.includes(0x5c);
  if (kind === 0x28 || kind === 0x29 || kind === 0x23) return rest.length >= 2;
  return true;
}


const KF_MAGIC = Buffer.from('TGKF1\n');

function kfKey(rec: OpenedRecording): Buffer {
  return Buffer.from(hkdfSync('sha256', rec.dataKey, Buffer.alloc(0), 'tmuxgate-keyframes-v1', 32));
}

/**
 * Keyframes for a recording: from the encrypted cache beside it when that opens for exactly this
 * content, else built now (one pass through a headless terminal) and cached, encrypted.
 */
export async function keyframesFor(rec: OpenedRecording, frames: Frame[]): Promise<Keyframe[]> {
  const file = rec.row.file.replace(/\.tgrec$/, '.tgkf');
  const aad = Buffer.from(`${rec.session.id}\0${rec.head}`);
  try {
    const b = readFileSync(file);
    if (b.subarray(0, KF_MAGIC.length).equals(KF_MAGIC)) {
      const nonce = b.subarray(KF_MAGIC.length, KF_MAGIC.length + 12);
      const d = createDecipheriv('aes-256-gcm', kfKey(rec), nonce);
      d.setAAD(aad);
      d.setAuthTag(b.subarray(b.length - 16));
      const plain = Buffer.concat([d.update(b.subarray(KF_MAGIC.length + 12, b.length - 16)), d.final()]);
      return JSON.parse(inflateRawSync(plain).toString()) as Keyframe[];
    }
  } catch {
    /* no cache, or not for this content: rebuild */
  }
  const keys = await buildKeyframes(frames, rec.header.cols, rec.header.rows);
  try {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', kfKey(rec), nonce);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(deflateRawSync(Buffer.from(JSON.stringify(keys)))), c.final()]);
    writeFileSync(file, Buffer.concat([KF_MAGIC, nonce, ct, c.getAuthTag()]), { mode: 0o600 });
  } catch {
    /* a read-only store still replays, just without the cache */
  }
  return keys;
}

/** Plays a decrypted recording on `io` with the replay keys; resolves when the viewer quits. */
export async function playRecording(io: PlayerIo, rec: OpenedRecording, o: { speed: number; from: number; idleLimit: number }): Promise<void> {
  const frames = rec.frames.filter((f) => f.kind === 'output' || f.kind === 'resize');
  const keys = await keyframesFor(rec, frames);
  await play(io, { frames, keys, duration: rec.durationMs, speed: o.speed, from: Math.min(o.from, rec.durationMs), idleLimit: o.idleLimit, rows: rec.header.rows, title: escapeControls(`${rec.session.id} ${rec.session.user_name}+${rec.session.role_name}`) });
}

interface PlayInput {
  frames: Frame[];
  keys: Keyframe[];
  duration: number;
  speed: number;
  from: number;
  idleLimit: number;
  rows: number;
  title: string;
}

function play(io: PlayerIo, p: PlayInput): Promise<void> {
  const out = { write: (d: string | Buffer) => io.write(d), get columns() { return io.columns(); } };
  let pos = p.from;
  let speed = p.speed;
  let paused = false;
  let index = 0;
  let rows = p.rows;
  let timer: NodeJS.Timeout | null = null;
  let done = false;
  // The recorded bytes are the user's: only the safe terminal subset reaches the viewer. Its output
  // always ends between sequences, so the status line can be drawn after any chunk.
  const filter = new SafeTerminalFilter();
  const frames = p.frames as { t: number; kind: string; data: Buffer }[];

  const status = () => {
    const state = done ? 'end: q to quit' : paused ? 'paused' : 'playing';
    const line = ` ${formatOffset(pos)} / ${formatOffset(p.duration)}  ${speed}x  ${state}  [space] pause [</>] 5s [+/-] speed [q] quit  ${p.title}`;
    out.write(`\x1b7${CSI}${rows + 1};1H${CSI}0m${CSI}7m${line.slice(0, Math.max(20, (out.columns ?? 80) - 1))}${CSI}K${CSI}0m\x1b8`);
  };

  const seek = async (t: number) => {
    pos = Math.max(0, Math.min(p.duration, t));
    const s = await screenAt(frames as never, p.keys, pos);
    index = s.index;
    rows = s.rows;
    filter.reset();
    out.write(Buffer.concat([Buffer.from(`${CSI}r${CSI}H${CSI}2J`), filter.write(s.text)]));
    done = index >= frames.length;
    status();
  };

  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (paused || done) return;
    const f = frames[index];
    if (!f) {
      pos = p.duration;
      done = true;
      status();
      if (!io.interactive) finish();
      return;
    }
    const gap = Math.min(Math.max(0, f.t - pos), p.idleLimit);
    timer = setTimeout(() => {
      // Apply every frame due now in one write: fast output stays fast on replay.
      pos = Math.max(pos, Math.min(f.t, pos + gap));
      let chunk = '';
      while (index < frames.length && frames[index]!.t <= pos + 1) {
        const g = frames[index]!;
        if (g.kind === 'output') chunk += g.data.toString('latin1');
        else rows = readResize(g.data).rows;
        index++;
      }
      if (chunk) {
        const bytes = filter.write(Buffer.from(chunk, 'latin1'));
        if (bytes.length) out.write(bytes);
      }
      status();
      schedule();
    }, gap / speed);
  };

  let resolveDone: () => void = () => {};
  const finish = () => {
    if (timer) clearTimeout(timer);
    io.release();
    out.write(`${CSI}r${CSI}${rows + 2};1H${CSI}0m\n`);
    resolveDone();
  };

  const onKey = (k: Buffer) => {
    const s = k.toString();
    if (s === 'q' || s === '\x03') return finish();
    if (s === ' ') {
      paused = !paused;
      if (!paused) done = index >= frames.length;
      status();
      schedule();
    } else if (s === '\x1b[C' || s === '\x1b[D') {
      void seek(pos + (s === '\x1b[C' ? 5000 : -5000)).then(schedule);
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

  return new Promise<void>((resolve) => {
    resolveDone = resolve;
    io.onKey(onKey);
    void seek(p.from).then(schedule);
  });
}
