import { Screen } from './screen.js';
import { readResize, type Frame, type RecordingHeader } from './format.js';

export interface SearchHit {
  offsetMs: number;
  line: string;
}

/**
 * Where `match` appeared on the reconstructed screen: each time a matching line newly shows up
 * (checked at most every `stepMs` of recording time and at the end), with that line as context.
 * Works on the decrypted stream in memory: nothing is indexed in plaintext.
 */
export async function searchFrames(header: RecordingHeader, frames: Frame[], match: (line: string) => boolean, stepMs = 250): Promise<SearchHit[]> {
  const screen = new Screen(header.cols, header.rows);
  const hits: SearchHit[] = [];
  let visible = new Set<string>();
  let lastCheck = -Infinity;
  const check = (t: number) => {
    const now = new Set(screen.lines().filter((l) => match(l)).map((l) => l.trim()));
    for (const l of now) if (!visible.has(l)) hits.push({ offsetMs: t, line: l });
    visible = now;
    lastCheck = t;
  };
  try {
    for (const f of frames) {
      if (f.t - lastCheck >= stepMs) check(f.t);
      if (f.kind === 'output') await screen.write(f.data);
      else if (f.kind === 'resize') {
        const { cols, rows } = readResize(f.data);
        screen.resize(cols, rows);
      }
    }
    check(frames.at(-1)?.t ?? 0);
  } finally {
    screen.dispose();
  }
  return hits;
}
