import { StringDecoder } from 'node:string_decoder';
import { readResize, type Frame, type RecordingHeader } from './format.js';

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * [seconds, code, data] line per event: "o" output, "i" input (when recorded), "r" resize.
 * Markers are left out: older players refuse unknown event codes.
 */
export function* asciicastLines(header: RecordingHeader, frames: Iterable<Frame>, title: string): Generator<string> {
  const c = new CastEncoder();
  yield castHeader(header, title);
  for (const f of frames) {
    const line = c.line(f);
    if (line) yield line;
  }
}

/** asciicastLines over frames that come asynchronously (a redacted view of a recording: redactFrames). */
export async function* asciicastLinesAsync(header: RecordingHeader, frames: AsyncIterable<Frame>, title: string): AsyncGenerator<string> {
  const c = new CastEncoder();
  yield castHeader(header, title);
  for await (const f of frames) {
    const line = c.line(f);
    if (line) yield line;
  }
}

function castHeader(header: RecordingHeader, title: string): string {
  return JSON.stringify({
    version: 2,
    width: header.cols,
    height: header.rows,
    timestamp: Math.floor(header.startedAt / 1000),
    title,
    env: { TERM: header.term, SHELL: '/bin/sh' },
  });
}

/** One event line per frame (or null), UTF-8 decoded across frame boundaries. */
class CastEncoder {
  private readonly out = new StringDecoder('utf8');
  private readonly inp = new StringDecoder('utf8');
  line(f: Frame): string | null {
    const t = Number((f.t / 1000).toFixed(6));
    if (f.kind === 'output') {
      const s = this.out.write(f.data);
      return s ? JSON.stringify([t, 'o', s]) : null;
    }
    if (f.kind === 'input') {
      const s = this.inp.write(f.data);
      return s ? JSON.stringify([t, 'i', s]) : null;
    }
    if (f.kind === 'resize') {
      const { cols, rows } = readResize(f.data);
      return JSON.stringify([t, 'r', `${cols}x${rows}`]);
    }
    return null;
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
