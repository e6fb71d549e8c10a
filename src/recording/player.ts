import { Screen } from './screen.js';
import { readResize, type Frame } from './format.js';

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
