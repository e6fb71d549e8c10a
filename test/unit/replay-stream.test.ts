import { afterAll, describe, expect, it } from 'vitest';
import { recordingHeader } from '../helpers/recording.js';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { FakeClock } from '../../src/platform/clock.js';
import { aesGcmSealer } from '../../src/crypto/sealer.js';
import { Recorder } from '../../src/recording/recorder.js';
import { RecordingStream } from '../../src/recording/stream.js';
import { Keyframes, playRecording, screenAt } from '../../src/recording/player.js';
import { Screen } from '../../src/recording/screen.js';
import type { RecordingStore } from '../../src/recording/access.js';

const dir = mkdtempSync('/tmp/tg-replay-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A recording on disk: `seconds` one-second screens showing "T=<second>", and a store that finds it. */
async function onDisk(id: string, seconds: number): Promise<RecordingStore> {
  const file = path.join(dir, `${id}.tgrec`);
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const dataKey = randomBytes(32);
  const { privateKey } = generateKeyPairSync('ed25519');
  const header = recordingHeader(id, { startedAt: clock.now() });
  const rec = new Recorder({
    header,
    sealer: aesGcmSealer(dataKey),
    clock,
    fsync: false,
    signer: { sign: (d: Buffer) => sign(null, d, privateKey), publicKeyPem: '' },
    file: { path: file, append: async (d) => appendFileSync(file, d), close: async () => {} },
  });
  await rec.start();
  for (let s = 0; s < seconds; s++) {
    rec.frame('output', Buffer.from(`\x1b[H\x1b[2JT=${s} \x1b]52;c;eA==\x07end`));
    clock.advance(1000);
  }
  await rec.close('detached');
  const session = { id, user_name: 'alice', role_name: 'ops' };
  const row = { session_id: id, file, duration_ms: seconds * 1000 };
  return { sessions: { get: () => session }, recordings: { get: () => row, dataKey: () => dataKey }, masterKeys: {} } as unknown as RecordingStore;
}

const screenText = async (text: string) => {
  const s = new Screen(80, 24);
  await s.write(text);
  const l = s.lines();
  s.dispose();
  return l.join('\n');
};

describe('streamed replay', () => {
  it('indexes chunks without decrypting and seeks to the right screen', async () => {
    const rec = await RecordingStream.open(await onDisk('s_seek', 600), 's_seek');
    try {
      expect(rec.chunks).toBeGreaterThan(500);
      expect(rec.durationMs).toBe(600_000);
      const keys = await Keyframes.open(rec);
      for (const t of [0, 1500, 299_999, 300_000, 599_000]) {
        const s = await screenAt(rec, keys, t);
        expect(await screenText(s.text)).toContain(`T=${Math.floor(t / 1000)} end`);
      }
      keys.dispose();
    } finally {
      await rec.close();
    }
  });

  it('keeps at most 256 keyframes for a long recording, and caches them encrypted', async () => {
    const store = await onDisk('s_long', 1800);
    const rec = await RecordingStream.open(store, 's_long');
    try {
      const keys = await Keyframes.open(rec);
      await keys.complete();
      expect(keys.list.length).toBeLessThanOrEqual(256);
      expect(keys.list.length).toBeGreaterThan(100);
      const cache = path.join(dir, 's_long.tgkf');
      expect(existsSync(cache)).toBe(true);
      expect(readFileSync(cache).includes(Buffer.from('T=1'))).toBe(false);
      // A second open uses the cache: a seek near the end is right without building anything.
      const again = await Keyframes.open(rec);
      expect(again.list.length).toBe(keys.list.length);
      expect(await screenText((await screenAt(rec, again, 10_000_000)).text)).toContain('T=1799 end');
    } finally {
      await rec.close();
    }
  });

  it('plays to the end through the safe filter, a bounded amount per tick', async () => {
    const rec = await RecordingStream.open(await onDisk('s_play', 120), 's_play');
    const writes: Buffer[] = [];
    try {
      await playRecording({ write: (d) => void writes.push(Buffer.from(d)), columns: () => 80, onKey: () => {}, interactive: false, release: () => {} }, rec, {
        speed: 64,
        from: 0,
        idleLimit: 1,
        view: null,
      });
    } finally {
      await rec.close();
    }
    const all = Buffer.concat(writes).toString();
    expect(all).toContain('T=119 end');
    expect(all).not.toContain('\x1b]52');
    expect(Math.max(...writes.map((w) => w.length))).toBeLessThanOrEqual(64 * 1024 + 4096);
  });
});
