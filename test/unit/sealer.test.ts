import { describe, expect, it } from 'vitest';
import { recordingHeader } from '../helpers/recording.js';
import { waitUntil } from '../helpers/poll.js';
import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aesGcmSealer, FaultySealer, NONCE_LEN, TAG_LEN } from '../../src/crypto/sealer.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import { SeededRandom } from '../../src/platform/random.js';
import { FakeClock } from '../../src/platform/clock.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openChunk, parseRecording, type ChunkRecord } from '../../src/recording/reader.js';
import { verifyRecording } from '../../src/recording/verify.js';
import { RecordingStream } from '../../src/recording/stream.js';
import { Keyframes } from '../../src/recording/player.js';
import type { RecordingStore } from '../../src/recording/access.js';

/** Written by the code before the Sealer existed (see fixtures/sealed-v1/make.mjs): it must keep opening. */
const FIX = path.join(import.meta.dirname, '../fixtures/sealed-v1');
/** The fixture's keys are fixed bytes (make.mjs), so no key file sits in the repository. */
const AUDIT_KEY = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 3)]),
  format: 'der',
  type: 'pkcs8',
});
const fixture = {
  master: Buffer.alloc(32, 7),
  wrapped: JSON.parse(readFileSync(path.join(FIX, 'wrapped-key.json'), 'utf8')) as { keyId: string; aad: string; sealed: string },
  recording: readFileSync(path.join(FIX, 's_fixture.tgrec')),
  publicKeyPem: createPublicKey(AUDIT_KEY).export({ type: 'spki', format: 'pem' }).toString(),
};
const DATA_KEY = Buffer.alloc(32, 9);

describe('AES-256-GCM sealer', () => {
  it('seals as nonce | ciphertext | tag and opens only with the same key and AAD', async () => {
    const s = aesGcmSealer(randomBytes(32));
    const blob = s.seal(Buffer.from('PATIENT-1'), Buffer.from('aad'));
    expect(blob.length).toBe(NONCE_LEN + 9 + TAG_LEN);
    expect(s.open(blob, Buffer.from('aad')).toString()).toBe('PATIENT-1');
    expect(() => s.open(blob, Buffer.from('other'))).toThrow();
    expect(() => aesGcmSealer(randomBytes(32)).open(blob, Buffer.from('aad'))).toThrow();
    const altered = Buffer.from(blob);
    altered[NONCE_LEN] = altered[NONCE_LEN]! ^ 1;
    expect(() => s.open(altered, Buffer.from('aad'))).toThrow();
    expect(() => s.open(blob.subarray(0, 20), Buffer.from('aad'))).toThrow();
  });

  it('with a caller-owned nonce, writes ciphertext | tag only, and the same bytes for the same input', async () => {
    const s = aesGcmSealer(DATA_KEY);
    const nonce = Buffer.alloc(12, 1);
    const a = s.sealWith(nonce, Buffer.from('frames'), Buffer.from('header'));
    expect(a.length).toBe(6 + TAG_LEN);
    expect(a.equals(s.sealWith(nonce, Buffer.from('frames'), Buffer.from('header')))).toBe(true);
    expect(s.openWith(nonce, a, Buffer.from('header')).toString()).toBe('frames');
    expect(() => s.openWith(Buffer.alloc(12, 2), a, Buffer.from('header'))).toThrow();
  });

  it('draws its random nonces from the injected Random', async () => {
    const a = aesGcmSealer(DATA_KEY, new SeededRandom('n')).seal(Buffer.from('x'), Buffer.alloc(0));
    const b = aesGcmSealer(DATA_KEY, new SeededRandom('n')).seal(Buffer.from('x'), Buffer.alloc(0));
    expect(a.equals(b)).toBe(true);
    expect(a.subarray(0, NONCE_LEN).equals(new SeededRandom('n').bytes(NONCE_LEN))).toBe(true);
  });

  it('a faulty sealer fails on demand and passes through otherwise', async () => {
    const s = new FaultySealer(aesGcmSealer(DATA_KEY));
    const blob = s.seal(Buffer.from('ok'), Buffer.alloc(0));
    s.failOpen = true;
    expect(() => s.open(blob, Buffer.alloc(0))).toThrow(/injected open failure/);
    s.failOpen = false;
    expect(s.open(blob, Buffer.alloc(0)).toString()).toBe('ok');
  });
});

describe('formats written before the Sealer still open', () => {
  it('a recording data key wrapped by the old master-key code unwraps, and new seals keep its layout', async () => {
    const mk = new MasterKeyProvider(fixture.master);
    expect(mk.keyId).toBe(fixture.wrapped.keyId);
    expect(mk.open(Buffer.from(fixture.wrapped.sealed, 'base64'), fixture.wrapped.aad, mk.keyId).equals(DATA_KEY)).toBe(true);
    const fresh = mk.seal(DATA_KEY, fixture.wrapped.aad);
    expect(fresh.length).toBe(Buffer.from(fixture.wrapped.sealed, 'base64').length);
    expect(fresh[0]).toBe(1); // version byte, then nonce | ciphertext | tag
  });

  it('a recording written by the old recorder decrypts and verifies', async () => {
    const chunks = parseRecording(fixture.recording).records.filter((r): r is ChunkRecord => r.type === 'chunk');
    expect(chunks).toHaveLength(12);
    expect(openChunk(chunks[5]!, aesGcmSealer(DATA_KEY))[0]!.data.toString()).toContain('PATIENT-5');
    const v = verifyRecording({ sessionId: 's_fixture', file: fixture.recording, dataKey: DATA_KEY, publicKeyPem: fixture.publicKeyPem, db: null });
    expect(v).toMatchObject({ status: 'intact', chunks: 12, decrypted: true, problem: null });
  });

  it('the recorder writes the same bytes today as it did then', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const parts: Buffer[] = [];
    const header = recordingHeader('s_fixture', { startedAt: clock.now() });
    const rec = new Recorder({
      header,
      sealer: aesGcmSealer(DATA_KEY),
      clock,
      random: new SeededRandom(),
      fsync: false,
      signer: { sign: (d: Buffer) => sign(null, d, AUDIT_KEY), publicKeyPem: '' },
      file: { path: '/mem', append: async (d) => void parts.push(Buffer.from(d)), close: async () => {} },
    });
    await rec.start();
    for (let s = 0; s < 12; s++) {
      rec.frame('output', Buffer.from(`\x1b[H\x1b[2JT=${s} PATIENT-${s}`));
      clock.advance(1000);
    }
    await rec.close('detached');
    expect(Buffer.concat(parts).equals(fixture.recording)).toBe(true);
  });

  it('a keyframe cache written by the old player opens (no rebuild needed)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tg-sealer-'));
    try {
      const file = path.join(dir, 's_fixture.tgrec');
      copyFileSync(path.join(FIX, 's_fixture.tgrec'), file);
      copyFileSync(path.join(FIX, 's_fixture.tgkf'), path.join(dir, 's_fixture.tgkf'));
      const store = {
        sessions: { get: () => ({ id: 's_fixture', user_name: 'alice', role_name: 'ops' }) },
        recordings: { get: () => ({ session_id: 's_fixture', file, duration_ms: 12_000 }), dataKey: () => DATA_KEY },
        masterKeys: {},
      } as unknown as RecordingStore;
      const rs = await RecordingStream.open(store, 's_fixture');
      const kf = await Keyframes.open(rs);
      expect(kf.list.map((k) => k.t)).toEqual([0, 5000, 10_000]); // a fresh set would hold only t=0
      kf.dispose();
      await rs.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('callers of a failing sealer fail closed', () => {
  it('the recorder ends the recording when a chunk cannot be sealed', async () => {
    const sealer = new FaultySealer(aesGcmSealer(DATA_KEY));
    const clock = new FakeClock();
    const header = recordingHeader('s_f', { user: 'a', role: 'r', startedAt: clock.now() });
    const rec = new Recorder({
      header,
      sealer,
      clock,
      fsync: false,
      signer: { sign: () => Buffer.alloc(64), publicKeyPem: '' },
      file: { path: '/mem', append: async () => {}, close: async () => {} },
    });
    await rec.start();
    const failures: string[] = [];
    rec.onFailure((e) => failures.push(e.message));
    sealer.failSeal = true;
    rec.frame('output', Buffer.from('PATIENT-1'));
    clock.advance(1000);
    // Deflate runs on the thread pool first: the failure arrives once it is done.
    await waitUntil(() => failures.length, 'the seal failure');
    expect(failures).toEqual(['injected seal failure']);
    expect(await rec.close('end')).toBeNull();
  });
});
