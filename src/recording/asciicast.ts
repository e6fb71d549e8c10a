import { StringDecoder } from 'node:string_decoder';
import { readResize, type Frame, type RecordingHeader } from './format.js';

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * [seconds, code, data] line per event: "o" output, "i" input (when recorded), "r" resize.
 * Markers are left out: older players refuse unknown event codes.
 */
export function* asciicastLines(header: RecordingHeader, frames: Iterable<Frame>, title: string): Generator<string> {
  yield JSON.stringify({
    version: 2,
    width: header.cols,
    height: header.rows,
    timestamp: Math.floor(header.startedAt / 1000),
    title,
    env: { TERM: header.term, SHELL: '/bin/sh' },
  });
  const out = new StringDecoder('utf8');
  const inp = new StringDecoder('utf8');
  for (const f of frames) {
    const t = Number((f.t / 1000).toFixed(6));
    if (f.kind === 'output') {
      const s = out.write(f.data);
      if (s) yield JSON.stringify([t, 'o', s]);
    } else if (f.kind === 'input') {
      const s = inp.write(f.data);
      if (s) yield JSON.stringify([t, 'i', s]);
    } else if (f.kind === 'resize') {
      const { cols, rows } = readResize(f.data);
      yield JSON.stringify([t, 'r', `${cols}x${rows}`]);
    }
  }
}

/** "75" seconds -> "1:15"; hours when needed. */
export function formatOffset(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** "12:30" / "1:02:03" / "45" -> milliseconds, or null. */
export function parseOffset(s: string): number | null {
  if (!/^\d+(:\d{1,2}){0,2}$/.test(s)) return null;
  return s.split(':').reduce((acc, p) => acc * 60 + Number(p), 0) * 1000;
}
