import { describe, expect, it } from 'vitest';
import { recordingHeader } from '../helpers/recording.js';
import { waitUntil } from '../helpers/poll.js';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { FakeClock } from '../../src/platform/clock.js';
import { aesGcmSealer } from '../../src/crypto/sealer.js';
import { Recorder } from '../../src/recording/recorder.js';
import type { RecordingFile } from '../../src/recording/sink.js';
import { verifyRecording, type VerifyInput } from '../../src/recording/verify.js';
import { openChunk, parseRecording, type ChunkRecord } from '../../src/recording/reader.js';
import { trailerSigned, type RecordingHeader } from '../../src/recording/format.js';
import { asciicastLines, formatOffset, parseOffset } from '../../src/recording/asciicast.js';

function memFile(failAfter = Infinity): RecordingFile & { buf: () => Buffer } {
  const parts: Buffer[] = [];
  let n = 0;
  return {
    path: '/mem',
    async append(d) {
      if (n + d.length > failAfter) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      n += d.length;
      parts.push(Buffer.from(d));
    },
    async close() {},
    buf: () => Buffer.concat(parts),
  };
}

function keys() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    signer: { sign: (d: Buffer) => sign(null, d, privateKey), publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() },
    pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

const header = (id: string): RecordingHeader => recordingHeader(id, { startedAt: Date.UTC(2026, 0, 1) });

/** Records `n` one-second chunks of output and seals; returns the file and what verify needs. */
async function record(id: string, n = 4, k = keys()) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const file = memFile();
  const dataKey = randomBytes(32);
  const rec = new Recorder({ header: header(id), sealer: aesGcmSealer(dataKey), file, clock, signer: k.signer });
  await rec.start();
  for (let i = 0; i < n; i++) {
    rec.frame('output', Buffer.from(`line ${i} of ${id}: PATIENT-${i}\r\n`));
    clock.advance(1000);
  }
  const trailer = await rec.close('detached');
  const input = (file: Buffer, o: Partial<VerifyInput> = {}): VerifyInput => ({
    sessionId: id,
    file,
    dataKey,
    publicKeyPem: k.pem,
    db: { sessionState: 'closed', chunks: n, head: trailer!.finalHash },
    ...o,
  });
  return { buf: file.buf(), dataKey, trailer: trailer!, input, k };
}

const chunksOf = (b: Buffer) => parseRecording(b).records.filter((r): r is ChunkRecord => r.type === 'chunk');

describe('recording format and verify', () => {
  it('round-trips frames, keeps no plaintext, and verifies intact with and without the master key', async () => {
    const r = await record('s_one');
    expect(r.buf.includes(Buffer.from('PATIENT'))).toBe(false);
    const chunks = chunksOf(r.buf);
    expect(chunks).toHaveLength(4);
    expect(openChunk(chunks[2]!, aesGcmSealer(r.dataKey))[0]!.data.toString()).toContain('PATIENT-2');
    expect(verifyRecording(r.input(r.buf))).toMatchObject({ status: 'intact', chunks: 4, problem: null });
    expect(verifyRecording(r.input(r.buf, { dataKey: null }))).toMatchObject({ status: 'intact', decrypted: false });
  });

  it('names a flipped byte: decrypt failure with the key, an altered chunk with the public key only', async () => {
    const r = await record('s_flip');
    const c = chunksOf(r.buf)[1]!;
    const b = Buffer.from(r.buf);
    b[c.offset + 5 + 68 + 3]! ^= 0x01;
    expect(verifyRecording(r.input(b)).problem).toMatchObject({ chunk: 1, reason: 'decrypt-failure' });
    expect(verifyRecording(r.input(b, { dataKey: null })).problem).toMatchObject({ chunk: 1, reason: 'broken-chain' });
  });

  it('names truncation, a dropped chunk, swapped chunks and a spliced foreign chunk', async () => {
    const r = await record('s_cut');
    const cs = chunksOf(r.buf);
    const span = (c: ChunkRecord) => r.buf.subarray(c.offset, c.offset + 5 + c.headerBytes.length + c.ciphertext.length + 16);
    const start = r.buf.subarray(0, cs[0]!.offset);
    const trailer = r.buf.subarray(cs[3]!.offset + span(cs[3]!).length);

    expect(verifyRecording(r.input(r.buf.subarray(0, cs[2]!.offset + 10))).problem).toMatchObject({ reason: 'truncated' });
    expect(verifyRecording(r.input(r.buf.subarray(0, cs[3]!.offset + span(cs[3]!).length))).problem).toMatchObject({ reason: 'missing-trailer' });
    expect(verifyRecording(r.input(Buffer.concat([start, span(cs[0]!), span(cs[2]!), span(cs[3]!), trailer]))).problem).toMatchObject({
      chunk: 1,
      reason: 'missing-chunk',
    });
    expect(verifyRecording(r.input(Buffer.concat([start, span(cs[0]!), span(cs[2]!), span(cs[1]!), span(cs[3]!), trailer]))).problem).toMatchObject({
      chunk: 1,
      reason: 'reordered',
    });
    const other = await record('s_other');
    const foreign = chunksOf(other.buf)[1]!;
    const fspan = other.buf.subarray(foreign.offset, foreign.offset + 5 + 68 + foreign.ciphertext.length + 16);
    expect(verifyRecording(r.input(Buffer.concat([start, span(cs[0]!), fspan, span(cs[2]!), span(cs[3]!), trailer]))).problem).toMatchObject({
      chunk: 1,
      reason: 'foreign-chunk',
    });
  });

  it('names a replaced trailer, a wrong master key and a file cut below what SQLite recorded', async () => {
    const r = await record('s_trailer');
    const p = parseRecording(r.buf);
    const t = p.records.find((x) => x.type === 'trailer')!;
    const forged = Buffer.from(JSON.stringify({ ...r.trailer, reason: 'forged' }));
    const other = keys();
    const sig = sign(
      null,
      trailerSigned(forged),
      (other.signer as unknown as { sign: (d: Buffer) => Buffer }) ? generateKeyPairSync('ed25519').privateKey : undefined!,
    );
    const len = Buffer.alloc(4);
    len.writeUInt32BE(forged.length);
    const body = Buffer.concat([len, forged, sig]);
    const pre = Buffer.from([0x54, 0, 0, 0, 0]);
    pre.writeUInt32BE(body.length, 1);
    const replaced = Buffer.concat([r.buf.subarray(0, t.offset), pre, body]);
    expect(verifyRecording(r.input(replaced)).problem).toMatchObject({ reason: 'bad-signature' });
    expect(verifyRecording(r.input(r.buf, { keyError: 'data key does not open' })).problem).toMatchObject({ reason: 'wrong-key' });
    const cs = chunksOf(r.buf);
    expect(verifyRecording(r.input(r.buf.subarray(0, cs[2]!.offset), { db: { sessionState: 'interrupted', chunks: 4, head: '' } })).problem).toMatchObject({
      reason: 'truncated',
    });
  });

  it('reports an interrupted recording as intact up to the last flush, not tampered', async () => {
    const r = await record('s_crash');
    const cs = chunksOf(r.buf);
    const cut = r.buf.subarray(0, cs[3]!.offset + 7); // a torn last write after chunk 2
    expect(verifyRecording(r.input(cut, { db: { sessionState: 'interrupted', chunks: 3, head: '' } }))).toMatchObject({
      status: 'interrupted',
      chunks: 3,
      problem: null,
    });
  });

  it('fails closed: a write error is reported once and what was written still verifies', async () => {
    const clock = new FakeClock();
    const file = memFile(600);
    const k = keys();
    const dataKey = randomBytes(32);
    let durable = 0;
    const rec = new Recorder({
      header: header('s_full'),
      sealer: aesGcmSealer(dataKey),
      file,
      clock,
      signer: k.signer,
      onFlush: (st) => (durable = st.chunks),
    });
    await rec.start();
    const failures: string[] = [];
    rec.onFailure((e) => failures.push(e.message));
    for (let i = 0; i < 10; i++) {
      rec.frame('output', randomBytes(200));
      clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    // Deflate runs on the thread pool: the failing write comes once the chunks before it are packed.
    await waitUntil(() => failures.length, 'the write failure');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('ENOSPC');
    expect(await rec.close('recording-failed')).toBeNull();
    const v = verifyRecording({
      sessionId: 's_full',
      file: file.buf(),
      dataKey,
      publicKeyPem: k.pem,
      db: { sessionState: 'interrupted', chunks: durable, head: '' },
    });
    expect(durable).toBeGreaterThan(0);
    expect(v).toMatchObject({ status: 'interrupted', chunks: durable, problem: null });
  });

  it('overflows its bounded queue into a failure instead of growing', async () => {
    const clock = new FakeClock();
    let release: () => void = () => {};
    const stuck: RecordingFile = { path: '/stuck', append: () => new Promise<void>((r) => (release = r)), close: async () => {} };
    const rec = new Recorder({
      header: header('s_q'),
      sealer: aesGcmSealer(randomBytes(32)),
      file: stuck,
      clock,
      signer: keys().signer,
      maxQueueBytes: 100_000,
    });
    void rec.start();
    const failures: string[] = [];
    rec.onFailure((e) => failures.push(e.message));
    for (let i = 0; i < 20; i++) rec.frame('output', randomBytes(64 * 1024));
    expect(failures[0]).toMatch(/queue overflow/);
    release();
  });

  it('exports asciicast v2 lines and parses offsets', async () => {
    const r = await record('s_cast', 2);
    const frames = chunksOf(r.buf).flatMap((c) => openChunk(c, aesGcmSealer(r.dataKey)));
    const lines = [...asciicastLines(header('s_cast'), frames, 't')];
    expect(JSON.parse(lines[0]!)).toMatchObject({ version: 2, width: 80, height: 24 });
    expect(JSON.parse(lines[1]!)).toEqual([0, 'o', 'line 0 of s_cast: PATIENT-0\r\n']);
    expect(formatOffset(754_000)).toBe('12:34');
    expect(parseOffset('12:30')).toBe(750_000);
    expect(parseOffset('1:00:00')).toBe(3_600_000);
    expect(parseOffset('abc')).toBeNull();
  });
});
