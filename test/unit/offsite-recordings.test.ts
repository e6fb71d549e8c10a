import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recordingHeader } from '../helpers/recording.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { buildConfig } from '../../src/config/load.js';
import { TgError } from '../../src/errors.js';
import { FakeClock } from '../../src/platform/clock.js';
import { systemRandom } from '../../src/platform/random.js';
import { Metrics } from '../../src/platform/metrics.js';
import { aesGcmSealer } from '../../src/crypto/sealer.js';
import { PostgresSql } from '../../src/store/postgres.js';
import type { Sql, SqlValue } from '../../src/store/sql.js';
import { migratePostgres } from '../../src/store/postgres-migrate.js';
import { FileSink } from '../../src/recording/sink.js';
import { Recorder } from '../../src/recording/recorder.js';
import { recordsAt, type RecordKind } from '../../src/recording/offsite.js';
import { RecorderFactory } from '../../src/session/recorder-factory.js';
import { openAdmin, type AdminContext } from '../../src/admin/context.js';
import { verifyAuditOffsite, verifyRecordingsOffsite } from '../../src/admin/offsite.js';
import { checkpointSigned, verifyAuditChain } from '../../src/audit/log.js';
import { formatAuditRow } from '../../src/evidence/syslog-format.js';
import { RecordingShipper } from '../../src/evidence/recording-shipper.js';
import { PostgresOffsite } from '../../src/evidence/offsite-postgres.js';
import { encodeSegment, parseAnchorBatch, parseCatalog, S3Offsite, s3Keys, segmentIndexOf, type S3OffsiteOptions } from '../../src/evidence/offsite-s3.js';
import { Anchorer, anchorVerifies, recordingAnchorSigned } from '../../src/evidence/anchors.js';
import { formatAnchor, parseAnchorMessage } from '../../src/evidence/syslog-anchor.js';
import { compareAudit, compareRecording, type OffsiteVerdict } from '../../src/evidence/offsite-verify.js';
import { catalogHealth } from '../../src/compliance/checks.js';
import type { SinkStatusRow } from '../../src/store/evidence-sinks.js';
import type { Anchor, OffsiteRecord, OffsiteStore } from '../../src/evidence/offsite-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startS3, S3RVER_CREDENTIALS, type TestS3 } from '../helpers/s3.js';
import { waitUntil } from '../helpers/poll.js';

/**
 * Recordings leave the box as they are written (issue 14): every durable record of a recording
 * file reaches the PostgreSQL sink (through a role that may only INSERT and SELECT) or the S3
 * sink (s3rver here), in order, past an outage; `--offsite` verification names what was deleted,
 * cut or altered locally and what is missing off the box.
 */

const keys = generateKeyPairSync('ed25519');
const signer = { sign: (d: Buffer) => sign(null, d, keys.privateKey), publicKeyPem: keys.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
const PEM = signer.publicKeyPem;
const EVIDENCE_ROLE = 'tg_evidence';
const EVIDENCE_PW = 'pw-evidence-1';

let server: TestPostgres;
let s3: TestS3;
let dbs = 0;
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [server, s3] = await Promise.all([startPostgres({ database: 'offsite' }), startS3()]);
  await server.query(`CREATE ROLE tg_evidence_owner NOLOGIN`);
  await server.query(`CREATE ROLE ${EVIDENCE_ROLE} LOGIN PASSWORD '${EVIDENCE_PW}'`);
}, 60_000);
afterAll(async () => {
  await Promise.all([server?.stop(), s3?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The GRANTs docs/evidence.md gives, run as the database owner after migration 0011. */
const GRANTS = [
  'ALTER TABLE evidence_recording_chunks OWNER TO tg_evidence_owner',
  'ALTER TABLE evidence_anchors OWNER TO tg_evidence_owner',
  `GRANT INSERT, SELECT ON evidence_recording_chunks, evidence_anchors TO ${EVIDENCE_ROLE}`,
  `GRANT USAGE ON SEQUENCE evidence_anchors_id_seq TO ${EVIDENCE_ROLE}`,
];

/** A fresh migrated database with the sink's tables handed to the insert-only role; the store's (owner) and the sink's URLs. */
async function database(): Promise<{ storeUrl: string; sinkUrl: string; as: (sql: string) => Promise<pg.QueryResult> }> {
  const name = `offsite${++dbs}`;
  await server.query(`CREATE DATABASE ${name}`);
  const storeUrl = server.url.replace(/\/offsite$/, `/${name}`);
  const sql = new PostgresSql({ url: storeUrl, max: 1 });
  await migratePostgres(sql);
  for (const g of GRANTS) await sql.run(g);
  await sql.close();
  const as = async (q: string): Promise<pg.QueryResult> => {
    const c = new pg.Client({ connectionString: storeUrl });
    await c.connect();
    try {
      return await c.query(q);
    } finally {
      await c.end();
    }
  };
  return { storeUrl, sinkUrl: server.urlAs(EVIDENCE_ROLE, EVIDENCE_PW).replace(/\/offsite$/, `/${name}`), as };
}

function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'tg-offsite-'));
  dirs.push(d);
  return d;
}

function pgStore(url: string, clock: FakeClock): PostgresOffsite {
  const s = new PostgresOffsite(new PostgresSql({ url, max: 2, connectTimeoutMs: 5000, queryTimeoutMs: 10_000 }), 'test', clock);
  cleanups.push(() => s.close());
  return s;
}

function shipperFor(store: OffsiteStore, clock: FakeClock, maxLagBytes = 8 * 1024 * 1024): RecordingShipper {
  const s = new RecordingShipper({ node: 'gw-test', maxLagBytes, backoff: { initialMs: 100, maxMs: 400 }, lingerMs: 0 }, { store, clock, read: readPart });
  cleanups.push(() => stop(s, clock));
  return s;
}

/** close(0) on the fake clock: its deadline is a timer there. */
async function stop(s: RecordingShipper, clock: FakeClock): Promise<void> {
  const closing = s.close(0);
  clock.advance(1);
  await closing;
}

async function readPart(file: string, start: number, end: number): Promise<Buffer> {
  return readFileSync(file).subarray(start, end);
}

/** A recorder on a file in `dir` whose durable records go to `shipper`. */
async function recorder(dir: string, id: string, shipper: RecordingShipper, clock: FakeClock): Promise<{ rec: Recorder; file: string }> {
  const file = await new FileSink(dir).create(id);
  const header = recordingHeader(id, { startedAt: clock.now() });
  const rec = new Recorder({ header, sealer: aesGcmSealer(randomBytes(32)), file, clock, signer, fsync: false, offsite: shipper.begin(id, file.path) });
  await rec.start();
  return { rec, file: file.path };
}

/** `n` chunks of about `bytes` each (random text: it barely compresses). */
function chunks(rec: Recorder, n: number, bytes = 2000): void {
  for (let i = 0; i < n; i++) {
    rec.frame('output', Buffer.from(randomBytes(Math.ceil(bytes * 0.75)).toString('base64')));
    rec.flush(true);
  }
}

const caughtUp = (s: RecordingShipper, chunksAtLeast: number) =>
  waitUntil(() => s.lag().bytes === 0 && s.state().shippedChunks >= chunksAtLeast, `the sink to hold ${chunksAtLeast} chunks`);

/** The sink's rows of one recording, in file order. */
async function rowsOf(as: (q: string) => Promise<pg.QueryResult>, id: string): Promise<{ kind: string; seq: number; record: Buffer; chain_hash: string }[]> {
  const r = await as(
    `SELECT kind, seq::int AS seq, record, chain_hash FROM evidence_recording_chunks WHERE session_id = '${id}' ORDER BY CASE kind WHEN 'header' THEN 0 WHEN 'chunk' THEN 1 ELSE 2 END, seq`,
  );
  return r.rows as { kind: string; seq: number; record: Buffer; chain_hash: string }[];
}

const local = (file: string) => recordsAt(readFileSync(file), 0).records.map((r) => ({ kind: r.kind, seq: r.seq, record: r.bytes, chain_hash: r.hash }));

describe('the PostgreSQL sink', () => {
  it('holds every record in file order, written through a role that may INSERT and SELECT but not UPDATE, DELETE or TRUNCATE', async () => {
    const { sinkUrl, storeUrl, as } = await database();
    const clock = new FakeClock();
    const store = pgStore(sinkUrl, clock);
    const shipper = shipperFor(store, clock);
    const { rec, file } = await recorder(tmp(), 's_ordered', shipper, clock);
    chunks(rec, 6);
    await rec.close('exit');
    await caughtUp(shipper, 6);
    const rows = await rowsOf(as, 's_ordered');
    expect(rows.map((r) => `${r.kind}${r.seq}`)).toEqual(['header0', 'chunk0', 'chunk1', 'chunk2', 'chunk3', 'chunk4', 'chunk5', 'trailer6']);
    expect(rows).toEqual(local(file)); // the exact bytes and chain hashes of the local file
    expect(await store.appendOnly()).toBe('yes');

    // The role the gateway writes with cannot change what it wrote.
    const c = new pg.Client({ connectionString: sinkUrl });
    await c.connect();
    try {
      for (const t of ['evidence_recording_chunks', 'evidence_anchors']) {
        await expect(c.query(`UPDATE ${t} SET node = 'x'`)).rejects.toThrow(/permission denied/);
        await expect(c.query(`DELETE FROM ${t}`)).rejects.toThrow(/permission denied/);
        await expect(c.query(`TRUNCATE ${t}`)).rejects.toThrow(/permission denied/);
        await expect(c.query(`DROP TABLE ${t}`)).rejects.toThrow(/must be owner/);
      }
      // ...but may insert and read (the control: the failures above are about rights, not a broken connection).
      expect((await c.query('SELECT count(*)::int AS n FROM evidence_recording_chunks')).rows[0].n).toBe(8);
    } finally {
      await c.end();
    }
    // A resend with other bytes is refused and reported, the stored row kept.
    const altered = Buffer.from(rows[2]!.record);
    altered[altered.length - 1]! ^= 1;
    expect(await store.put([{ sessionId: 's_ordered', kind: 'chunk', seq: 1, bytes: altered, hash: 'x' }], 'gw-test')).toEqual(['s_ordered/chunk/1']);
    expect((await rowsOf(as, 's_ordered'))[2]!.record).toEqual(rows[2]!.record);
    // The store's own role owns the tables' database and could alter them: appendOnly says so.
    const owner = pgStore(storeUrl, clock);
    expect(await owner.appendOnly()).toMatch(/^no: the sink's role can alter what it wrote \(evidence_recording_chunks: owns, UPDATE, DELETE, TRUNCATE; /);
  });

  it('buffer: the database killed mid-recording; the backlog past the memory bound is read back from the file and arrives in order', async () => {
    const { sinkUrl, as } = await database();
    const clock = new FakeClock();
    const store = pgStore(sinkUrl, clock);
    const shipper = shipperFor(store, clock, 64 * 1024);
    const { rec, file } = await recorder(tmp(), 's_outage', shipper, clock);
    chunks(rec, 3);
    await caughtUp(shipper, 3);

    await server.kill();
    chunks(rec, 60); // ~120 KB: past the 64 KiB bound
    const st = await waitUntil(() => {
      const s = shipper.state();
      return s.overLag && s.lastError !== null && s.lagChunks === 60 ? s : null;
    }, 'the lag to pass its bound with the sink down');
    expect(st.connected).toBe(false);
    expect(st.spilledSessions).toBe(1);
    expect(st.queuedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(st.lagChunks).toBe(60);

    await server.start();
    await waitUntil(() => {
      clock.advance(500); // the retry back-off runs on the injected clock
      return shipper.lag().bytes === 0;
    }, 'the backlog to be caught up');
    await rec.close('exit');
    await caughtUp(shipper, 63);
    expect(await rowsOf(as, 's_outage')).toEqual(local(file)); // every record, in order, nothing missing
    expect(shipper.state()).toMatchObject({ connected: true, spilledSessions: 0, queuedBytes: 0, lost: 0, conflicts: 0 });
  });

  it('resume: a node that stopped with a backlog ships the rest from its file after a restart', async () => {
    const { sinkUrl, as } = await database();
    const clock = new FakeClock();
    const store = pgStore(sinkUrl, clock);
    const first = shipperFor(store, clock);
    const { rec, file } = await recorder(tmp(), 's_resume', first, clock);
    chunks(rec, 2);
    await caughtUp(first, 2);
    await server.kill();
    chunks(rec, 4);
    await rec.close('exit');
    await waitUntil(() => first.state().lastError, 'the put to fail');
    await stop(first, clock); // stops with the backlog: 4 chunks and the trailer
    expect(first.lag().chunks).toBe(4);
    await server.start();

    const second = shipperFor(pgStore(sinkUrl, clock), clock);
    await second.resume('s_resume', file);
    await caughtUp(second, 4);
    expect(await rowsOf(as, 's_resume')).toEqual(local(file));
  });

  it('a resent batch: equal records are fine, other bytes are named, new ones stored, with one read-back query for the batch', async () => {
    const { sinkUrl, as } = await database();
    const clock = new FakeClock();
    const statements: string[] = [];
    const inner = new PostgresSql({ url: sinkUrl, max: 2, connectTimeoutMs: 5000, queryTimeoutMs: 10_000 });
    const counted = {
      engine: inner.engine,
      all: (q: string, p?: readonly SqlValue[]) => (statements.push(q.split(' ')[0]!), inner.all(q, p)),
      get: (q: string, p?: readonly SqlValue[]) => (statements.push(q.split(' ')[0]!), inner.get(q, p)),
      run: (q: string, p?: readonly SqlValue[]) => (statements.push(q.split(' ')[0]!), inner.run(q, p)),
      exec: (q: string) => inner.exec(q),
      transaction: <T>(fn: () => Promise<T>) => inner.transaction(fn),
      lock: (n: string) => inner.lock(n),
      lockAndGet: (n: string, q: string) => (statements.push(q.split(' ')[0]!), inner.lockAndGet(n, q)),
      close: () => inner.close(),
    } satisfies Sql;
    const store = new PostgresOffsite(counted, 'test', clock);
    cleanups.push(() => store.close());
    const rec = (seq: number, fill: number): OffsiteRecord => ({ sessionId: 's_resent', kind: 'chunk', seq, bytes: Buffer.alloc(64, fill), hash: `h${seq}` });
    expect(
      await store.put(
        [0, 1, 2, 3, 4, 5].map((i) => rec(i, i)),
        'gw-test',
      ),
    ).toEqual([]);
    expect(statements).toEqual(['INSERT']); // nothing held before: no read-back
    statements.length = 0;
    // The resend of the whole batch plus two new records; chunks 2 and 4 now with other bytes.
    const again = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => rec(i, i === 2 || i === 4 ? 0xee : i));
    expect(await store.put(again, 'gw-test')).toEqual(['s_resent/chunk/2', 's_resent/chunk/4']);
    expect(statements).toEqual(['INSERT', 'SELECT']);
    const rows = await rowsOf(as, 's_resent');
    expect(rows.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(rows.map((r) => r.record[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // the first bytes kept, never overwritten
  });
});

/** An admin context on a PostgreSQL store whose evidence.recordings.postgres is the insert-only role. */
async function adminOn(db: { storeUrl: string; sinkUrl: string }, clock: FakeClock): Promise<{ a: AdminContext; dir: string }> {
  const dir = tmp();
  const config = buildConfig(
    { store: { kind: 'postgres', url: db.storeUrl }, dataDir: 'data', keysDir: 'keys', evidence: { recordings: { postgres: { url: db.sinkUrl } } } },
    { file: null, baseDir: dir },
  );
  const a = await openAdmin(config, { clock, createKeys: true, actor: 'os:test' });
  cleanups.push(() => a.close());
  return { a, dir };
}

/** Records a session through the recorder factory (its row, its file, its records shipped), `n` chunks, sealed unless `live`. */
async function session(a: AdminContext, dir: string, shipper: RecordingShipper, clock: FakeClock, id: string, n: number, live = false): Promise<Recorder> {
  const factory = new RecorderFactory({
    sink: new FileSink(path.join(dir, 'recordings')),
    recordings: a.recordings,
    masterKeys: a.masterKeys,
    signer,
    clock,
    random: systemRandom,
    metrics: new Metrics(),
    recording: { fsync: false, flushInterval: 1000, maxChunkBytes: 65_536, maxQueueBytes: 8 * 1024 * 1024 },
    offsite: shipper,
  });
  const rec = await factory.open({ id, user: 'alice', role: 'ops', recordInput: false, term: 'xterm', cols: 80, rows: 24, startedAt: clock.now() });
  chunks(rec, n);
  if (!live) {
    const t = await rec.close('exit');
    await a.recordings.finish(id, 'sealed', t!.durationMs, clock.now(), null);
  }
  return rec;
}

const byId = (vs: OffsiteVerdict[]) => new Map(vs.map((v) => [v.subject, v]));
const kinds = (v: OffsiteVerdict | undefined) => v?.differences.map((d) => `${d.kind}@${d.at}`);

describe('verify --offsite against the PostgreSQL sink', () => {
  it('names a recording deleted locally, a truncated tail, an altered chunk and a gap in the off-box stream', async () => {
    const db = await database();
    const clock = new FakeClock();
    const { a, dir } = await adminOn(db, clock);
    const store = pgStore(db.sinkUrl, clock);
    const shipper = shipperFor(store, clock);
    for (const id of ['s_intact', 's_altered', 's_cut', 's_gone', 's_gap']) await session(a, dir, shipper, clock, id, 4);
    const live = await session(a, dir, shipper, clock, 's_live', 3, true);
    await caughtUp(shipper, 23);
    const file = (id: string) => path.join(dir, 'recordings', `${id}.tgrec`);

    expect(byId(await verifyRecordingsOffsite(a, null, PEM, { stores: [store] })).get('s_intact')!.status).toBe('match');

    // Local tampering, each its own kind.
    const altered = readFileSync(file('s_altered'));
    const chunk2 = recordsAt(altered, 0).records.find((r) => r.kind === 'chunk' && r.seq === 2)!;
    altered[chunk2.offset + 100]! ^= 0xff;
    writeFileSync(file('s_altered'), altered);
    const cut = recordsAt(readFileSync(file('s_cut')), 0).records.find((r) => r.kind === 'chunk' && r.seq === 2)!;
    truncateSync(file('s_cut'), cut.offset); // chunks 2, 3 and the trailer gone
    unlinkSync(file('s_gone'));
    await a.sql.run('DELETE FROM recordings WHERE session_id = ?', ['s_gone']);
    // ...and a hole off the box (only the database owner can make one).
    await db.as("DELETE FROM evidence_recording_chunks WHERE session_id = 's_gap' AND kind = 'chunk' AND seq = 1");

    const v = byId(await verifyRecordingsOffsite(a, null, PEM, { stores: [store] }));
    expect(v.get('s_intact')!.status).toBe('match');
    expect(v.get('s_live')!.status).toBe('match');
    expect(kinds(v.get('s_altered'))).toEqual(['altered-locally@2']);
    expect(kinds(v.get('s_cut'))).toEqual(['truncated-locally@2']);
    expect(v.get('s_cut')!.differences[0]!.detail).toContain(
      'the local file ends after 2 chunks without its trailer; off the box: 4 chunks and the signed trailer',
    );
    expect(kinds(v.get('s_gone'))).toEqual(['deleted-locally@null']);
    expect(v.get('s_gone')!.differences[0]!.detail).toContain('its recording row and file are gone');
    expect(kinds(v.get('s_gap'))).toEqual(['offsite-gap@1']);
    for (const id of ['s_altered', 's_cut', 's_gone', 's_gap']) expect(v.get(id)!.status).toBe('differs');
    // Each comparison is a recording access in the audit log.
    expect((await a.auditEvents.recent({ type: 'recording.access' })).filter((r) => r.data.includes('offsite postgres')).length).toBeGreaterThanOrEqual(12);
    await expect(verifyRecordingsOffsite(a, 's_nowhere', PEM, { stores: [store] })).rejects.toMatchObject({ code: 'TG_ERR_SESSION_NOT_FOUND' });

    // A live recording's head is anchored (signed) off the box; cut below it locally, the anchor alone names it.
    const anchors = new Anchorer(60_000, {
      auditEvents: a.auditEvents,
      sign: signer.sign,
      heads: () => shipper.heads(),
      targets: [{ name: 'postgres', putAnchors: (x) => store.putAnchors(x) }],
      clock,
      node: 'gw-test',
    });
    chunks(live, 2);
    await caughtUp(shipper, 25);
    await anchors.tick();
    const got = await store.anchors('recording', 's_live');
    expect(got.map((x) => x.position)).toEqual([5]);
    expect(anchorVerifies(got[0]!, PEM)).toBe(true);
    const liveRecs = recordsAt(readFileSync(file('s_live')), 0).records;
    truncateSync(file('s_live'), liveRecs.find((r) => r.kind === 'chunk' && r.seq === 3)!.offset);
    const [lv] = await verifyRecordingsOffsite(a, 's_live', PEM, { stores: [store] });
    expect(kinds(lv)).toEqual(['truncated-locally@3']);
    const anchorOnly = compareRecording({
      sessionId: 's_live',
      sink: 'postgres',
      localFile: readFileSync(file('s_live')),
      localRow: true,
      offsite: [],
      anchors: got,
      publicKeyPem: PEM,
    });
    expect(kinds(anchorOnly)).toEqual(['truncated-locally@3', 'not-shipped@0']); // with no chunk off the box, only the anchor knew of chunks 3-4
    expect(anchorOnly.differences[0]!.detail).toMatch(
      /^the local file ends after 3 chunks without its trailer; the anchor signed \S+ says 5 chunks: its tail was cut locally$/,
    );
    await live.close('exit');
  });

  it('audit verify --offsite names a cut tail and rewritten rows from the signed anchors, and a gap in the collector copy', async () => {
    const db = await database();
    const clock = new FakeClock();
    const { a } = await adminOn(db, clock);
    const store = pgStore(db.sinkUrl, clock);
    const anchors = new Anchorer(60_000, {
      auditEvents: a.auditEvents,
      sign: signer.sign,
      heads: () => [],
      targets: [{ name: 'postgres', putAnchors: (x) => store.putAnchors(x) }],
      clock,
      node: 'gw-test',
    });
    for (let i = 0; i < 12; i++) await a.audit.emit('os:test', { type: 'admin.change', action: 'role.add', target: `r${i}` });
    await anchors.tick();
    const n = await a.auditEvents.maxId();
    expect((await store.anchors('audit')).map((x) => x.position)).toEqual([n]);
    const [ok] = await verifyAuditOffsite(a, PEM, { stores: [store] });
    expect(ok).toMatchObject({ sink: 'postgres', status: 'match' });

    // Root deletes the newest rows and their checkpoints: the local chain still verifies...
    const collector = [];
    for await (const r of a.auditEvents.all()) collector.push(r);
    await a.sql.run('DELETE FROM audit_events WHERE id > ?', [n - 3]);
    await a.sql.run('DELETE FROM audit_checkpoints WHERE audit_id > ?', [n - 3]);
    expect((await verifyAuditChain(a.auditEvents)).problem).toBeNull();
    // ...the anchor off the box does not.
    const [cut] = await verifyAuditOffsite(a, PEM, { stores: [store] });
    expect(cut!.status).toBe('differs');
    expect(cut!.differences.map((d) => `${d.kind}@${d.at}`)).toEqual([`truncated-locally@${n - 2}`]);
    expect(cut!.differences[0]!.detail).toContain(`the local log ends at row ${n - 3}: rows ${n - 2}-${n} were deleted locally`);

    // New rows reuse the ids: the chain is whole again locally, and no longer reaches the anchored head.
    for (let i = 0; i < 5; i++) await a.audit.emit('os:test', { type: 'admin.change', action: 'role.add', target: `x${i}` });
    expect((await verifyAuditChain(a.auditEvents)).problem).toBeNull();
    const [rewritten] = await verifyAuditOffsite(a, PEM, { stores: [store] });
    expect(rewritten!.differences.map((d) => `${d.kind}@${d.at}`)).toEqual([`deleted-locally@${n}`]);
    expect(rewritten!.differences[0]!.detail).toContain('the local chain no longer reaches the head anchored off the box');

    // The collector's copy (rows as syslog lines, and the anchor), with one row lost in transit.
    const lines = collector.filter((r) => r.id !== 4).map((r) => formatAuditRow(r));
    lines.push(formatAnchor((await store.anchors('audit'))[0]!));
    const f = path.join(tmp(), 'audit.log');
    writeFileSync(f, lines.join('\n') + '\n');
    const [, fromCollector] = await verifyAuditOffsite(a, PEM, { stores: [store], collectorFile: f });
    expect(fromCollector!.sink).toBe('syslog');
    expect(fromCollector!.differences.map((d) => d.kind)).toEqual(['deleted-locally', 'altered-locally', 'offsite-gap', 'not-shipped']);
    expect(fromCollector!.differences[1]!.detail).toContain(`local rows ${n - 2}-${n} differ from the collector's copy`);
    expect(fromCollector!.differences[2]!.detail).toContain('lacks rows 4');
  });

  it('an anchor round-trips through its syslog message and its signature covers every field', () => {
    const a = {
      kind: 'audit' as const,
      subject: 'audit',
      position: 42,
      head: 'ab'.repeat(32),
      ts: 1_767_225_600_000,
      signature: Buffer.alloc(0),
      node: 'gw"1]',
    };
    const signed = { ...a, signature: signer.sign(checkpointSigned(a.position, a.head, a.ts)) };
    const back = parseAnchorMessage(formatAnchor(signed))!;
    expect(back).toEqual(signed);
    expect(anchorVerifies(back, PEM)).toBe(true);
    expect(anchorVerifies({ ...back, position: 41 }, PEM)).toBe(false);
  });
});

describe('the S3 sink (s3rver)', () => {
  /** An S3 client that notes the headers of every PUT (s3rver does not keep the Object Lock ones). */
  async function s3Store(clock: FakeClock, retainDays = 2192): Promise<{ store: S3Offsite; puts: Record<string, string>[]; client: S3Client; prefix: string }> {
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
    const puts: Record<string, string>[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { method?: string; headers?: Record<string, string> };
        if (req.method === 'PUT') puts.push({ ...req.headers });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'notePuts' },
    );
    const prefix = `t${++dbs}/`;
    const store = await S3Offsite.open(
      { bucket: s3.bucket, region: 'us-east-1', prefix, forcePathStyle: true, endpoint: s3.endpoint, objectLock: { mode: 'COMPLIANCE', retainDays } },
      clock,
      { client },
    );
    cleanups.push(() => store.close());
    return { store, puts, client, prefix };
  }

  /** Another store on the same prefix, with its own client (nothing cached) unless one is given: another node, or the verifier. */
  async function readerOf(prefix: string, clock: FakeClock, o: S3OffsiteOptions = {}): Promise<S3Offsite> {
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
    const store = await S3Offsite.open({ bucket: s3.bucket, region: 'us-east-1', prefix, forcePathStyle: true, endpoint: s3.endpoint }, clock, {
      ...o,
      client: o.client ?? client,
    });
    cleanups.push(() => store.close());
    return store;
  }

  /** The records of recording files as the shipper hands them to a store. */
  const recordsOf = (id: string, file: string) =>
    recordsAt(readFileSync(file), 0).records.map((r) => ({ sessionId: id, kind: r.kind, seq: r.seq, bytes: r.bytes, hash: r.hash }));
  const keysUnder = async (client: S3Client, prefix: string): Promise<string[]> => {
    const sdk = await import('@aws-sdk/client-s3');
    return ((await client.send(new sdk.ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
  };
  const objectOf = async (client: S3Client, key: string): Promise<Buffer> => {
    const sdk = await import('@aws-sdk/client-s3');
    return Buffer.from(await (await client.send(new sdk.GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body!.transformToByteArray());
  };
  const putRaw = async (client: S3Client, key: string, body: Buffer | string): Promise<void> => {
    const sdk = await import('@aws-sdk/client-s3');
    await client.send(new sdk.PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
  };
  const compareWith = async (store: S3Offsite, id: string, file: Buffer | null) =>
    compareRecording({ sessionId: id, sink: 's3', localFile: file, localRow: file !== null, offsite: await store.records(id), anchors: [], publicKeyPem: PEM });

  /** Four closed recordings of three chunks each, shipped nowhere (their files only). */
  async function fourRecordings(clock: FakeClock): Promise<Record<string, string>> {
    const { store } = await s3Store(clock);
    const shipper = shipperFor(store, clock);
    const dir = tmp();
    const files: Record<string, string> = {};
    for (const id of ['s_a', 's_b', 's_c', 's_d']) {
      const { rec, file } = await recorder(dir, id, shipper, clock);
      chunks(rec, 3);
      await rec.close('exit');
      files[id] = file;
    }
    await caughtUp(shipper, 12);
    return files;
  }

  it('ships through the shipper: fewer objects than records, the bytes equal, listed per session', async () => {
    const clock = new FakeClock();
    const { store, client, prefix } = await s3Store(clock);
    const shipper = shipperFor(store, clock);
    const dir = tmp();
    const files: Record<string, string> = {};
    for (const id of ['s_a', 's_b', 's_c', 's_d']) {
      const { rec, file } = await recorder(dir, id, shipper, clock);
      chunks(rec, 3);
      await rec.close('exit');
      files[id] = file;
    }
    await caughtUp(shipper, 12);
    for (const id of ['s_a', 's_b', 's_c', 's_d']) {
      const recs = await store.records(id);
      expect(recs.map((r) => `${r.kind}${r.seq}`)).toEqual(['header0', 'chunk0', 'chunk1', 'chunk2', 'trailer3']);
      expect(recs.map((r) => r.bytes)).toEqual(local(files[id]!).map((r) => r.record));
      expect(await store.holdings(id)).toEqual({ header: true, chunks: [0, 1, 2], trailer: 3 });
      expect((await compareWith(store, id, readFileSync(files[id]!))).status).toBe('match');
    }
    expect((await store.sessions()).sort()).toEqual(['s_a', 's_b', 's_c', 's_d']);
    expect((await keysUnder(client, `${prefix}segs/`)).length).toBeLessThan(20);
    // Per-session objects (the earlier layouts) are gone: catalogs name every session's spans.
    expect((await keysUnder(client, prefix)).filter((k) => !/^t\d+\/(segs|catalogs|sessions)\//.test(k))).toEqual([]);
  });

  it('one segment object per put, one catalog, Object Lock headers on every PUT; verify names deleted, cut and altered recordings and an off-box gap', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { store, puts, client, prefix } = await s3Store(clock);
    const ids = ['s_a', 's_b', 's_c', 's_d'];
    const all = ids.map((id) => recordsOf(id, files[id]!));
    // Three puts: headers and chunk 0 of all four, then chunk 1, then chunk 2 and the trailers.
    await store.put(
      all.flatMap((r) => r.slice(0, 2)),
      'gw-test',
    );
    const before = new Set(await keysUnder(client, `${prefix}segs/`));
    await store.put(
      all.map((r) => r[2]!),
      'gw-test',
    );
    // The segment of the chunk-1 put: keys carry the (fake, unmoving) clock's time and a random part, so their order says nothing.
    const ofChunk1 = (await keysUnder(client, `${prefix}segs/`)).filter((k) => !before.has(k));
    expect(ofChunk1).toHaveLength(1);
    await store.put(
      all.flatMap((r) => r.slice(3)),
      'gw-test',
    );
    const segments = await keysUnder(client, `${prefix}segs/`);
    expect(segments).toHaveLength(3);
    // One catalog, written with the trailers (the first two puts were named by nobody yet: readers scan them); no per-session objects.
    expect(await keysUnder(client, `${prefix}catalogs/`)).toHaveLength(1);
    expect(await keysUnder(client, `${prefix}s_a/`)).toEqual([]);
    expect(puts.length).toBe(3 + 1 + 4); // and the four sessions' markers (one per session per writer per day)
    // Every PUT asked for retention: COMPLIANCE until six years (2192 days) from the write.
    for (const h of puts) {
      expect(h['x-amz-object-lock-mode']).toBe('COMPLIANCE');
      expect(Date.parse(h['x-amz-object-lock-retain-until-date']!)).toBe(clock.now() + 2192 * 86_400_000);
    }
    const recs = await store.records('s_a');
    expect(recs.map((r) => `${r.kind}${r.seq}`)).toEqual(['header0', 'chunk0', 'chunk1', 'chunk2', 'trailer3']);
    expect(recs.map((r) => r.bytes)).toEqual(local(files.s_a!).map((r) => r.record));
    expect(await store.holdings('s_a')).toEqual({ header: true, chunks: [0, 1, 2], trailer: 3 });
    expect((await store.sessions()).sort()).toEqual(ids);
    // s3rver does not implement Object Lock: the sink says it cannot tell, rather than claiming it.
    expect(await store.appendOnly()).toMatch(/^unknown: cannot read the bucket's Object Lock configuration/);

    expect((await compareWith(store, 's_a', readFileSync(files.s_a!))).status).toBe('match');
    const b = readFileSync(files.s_b!);
    b[recordsAt(b, 0).records.find((r) => r.seq === 1 && r.kind === 'chunk')!.offset + 90]! ^= 1;
    expect(kinds(await compareWith(store, 's_b', b))).toEqual(['altered-locally@1']);
    const c = readFileSync(files.s_c!);
    expect(kinds(await compareWith(store, 's_c', c.subarray(0, recordsAt(c, 0).records.find((r) => r.kind === 'trailer')!.offset)))).toEqual([
      'truncated-locally@3',
    ]);
    expect(kinds(await compareWith(store, 's_d', null))).toEqual(['deleted-locally@null']);
    // The segment of chunk 1 deleted off the box (s3rver lets anyone delete: a bucket with Object Lock would not).
    const sdk = await import('@aws-sdk/client-s3');
    await client.send(new sdk.DeleteObjectCommand({ Bucket: s3.bucket, Key: ofChunk1[0]! }));
    const reader = await readerOf(prefix, clock); // one that has cached nothing
    expect(kinds(await compareWith(reader, 's_a', readFileSync(files.s_a!)))).toEqual(['offsite-gap@1']);
    expect((await compareWith(reader, 's_a', readFileSync(files.s_a!))).differences[0]!.detail).toBe(
      'chunks 1 are missing off the box: the object the off-box index names for them is gone',
    );
  });

  it('a resent batch is read once; a later copy with other bytes is named, the first kept', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { store, client, prefix } = await s3Store(clock);
    const a = recordsOf('s_a', files.s_a!);
    await store.put(a.slice(0, 3), 'gw-test');
    await store.put(a.slice(0, 3), 'gw-test'); // the response to the first was lost: the shipper sends it again
    await store.put(a.slice(2), 'gw-test');
    expect(await keysUnder(client, `${prefix}segs/`)).toHaveLength(3);
    // Three puts in one millisecond (the clock stands still): the keys still order them as written.
    expect(new Set((await keysUnder(client, `${prefix}segs/`)).map((k) => k.split('/').pop()!.slice(0, 13))).size).toBe(3);
    expect((await store.records('s_a')).map((r) => r.bytes)).toEqual(local(files.s_a!).map((r) => r.record));
    expect((await compareWith(store, 's_a', readFileSync(files.s_a!))).status).toBe('match');
    // Chunk 1 again with other bytes (what root could PUT with the gateway's credentials): the first copy counts, the second is named.
    const other = Buffer.from(a[2]!.bytes);
    other[90]! ^= 1;
    const parsed = recordsAt(other, 1).records[0]!;
    await store.put([{ sessionId: 's_a', kind: 'chunk', seq: 1, bytes: other, hash: parsed.hash }], 'gw-test');
    const v = await compareWith(store, 's_a', readFileSync(files.s_a!));
    expect(kinds(v)).toEqual(['offsite-invalid@1']);
    expect((await store.records('s_a')).find((r) => r.kind === 'chunk' && r.seq === 1 && r.hash !== '')!.bytes).toEqual(a[2]!.bytes);
  });

  it('finds what a stopped node put but had not named yet, and names it at the next write', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { store: writer, client, prefix } = await s3Store(clock);
    const a = recordsOf('s_a', files.s_a!);
    await writer.put(a.slice(0, 2), 'gw-test'); // header and chunk 0
    await writer.putAnchors([]); // an anchor round: the catalog names them
    clock.advance(1000);
    await writer.put(a.slice(2, 4), 'gw-test'); // chunks 1 and 2: named at the latest in 60 s; the node stops before
    expect(await keysUnder(client, `${prefix}catalogs/`)).toHaveLength(1);
    const open = () => readerOf(prefix, clock);
    const reader = await open();
    expect(await reader.holdings('s_a')).toEqual({ header: true, chunks: [0, 1, 2], trailer: null });
    expect((await reader.records('s_a')).map((r) => r.bytes)).toEqual(
      local(files.s_a!)
        .map((r) => r.record)
        .slice(0, 4),
    );
    expect(kinds(await compareWith(reader, 's_a', readFileSync(files.s_a!)))).toEqual(['not-shipped@null']);
    expect(await reader.sessions()).toEqual(['s_a']);
    // The next node resumes: it asks what is held, ships the trailer; its catalog names the scanned segment too.
    const next = await open();
    expect((await next.holdings('s_a')).chunks).toEqual([0, 1, 2]);
    clock.advance(600_000); // far past the scanning window of the first manifest
    await next.put(a.slice(4), 'gw-test');
    const later = await open();
    expect((await compareWith(later, 's_a', readFileSync(files.s_a!))).status).toBe('match');
    // The resuming writer's catalog names the stopped one's unnamed segment (then nobody has to index it).
    const catalogs = await keysUnder(client, `${prefix}catalogs/`);
    expect(catalogs).toHaveLength(2);
    const named = (await Promise.all(catalogs.map(async (k) => parseCatalog(await objectOf(client, k), prefix)!))).flatMap((c) => c.sessions.get('s_a') ?? []);
    expect(new Set(named.map((x) => x.key))).toEqual(new Set(await keysUnder(client, `${prefix}segs/`)));
  });

  it('still reads recordings written one object per record by earlier versions, and one continued in segments', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { store, client, prefix } = await s3Store(clock);
    const sdk = await import('@aws-sdk/client-s3');
    const old = async (r: OffsiteRecord) =>
      client.send(new sdk.PutObjectCommand({ Bucket: s3.bucket, Key: s3Keys.record(prefix, r), Body: r.bytes, Metadata: { 'chain-hash': r.hash } }));
    for (const r of recordsOf('s_a', files.s_a!)) await old(r);
    const b = recordsOf('s_b', files.s_b!);
    for (const r of b.slice(0, 2)) await old(r); // the gateway was upgraded mid-recording
    await store.put(b.slice(2), 'gw-test');
    expect(await store.holdings('s_a')).toEqual({ header: true, chunks: [0, 1, 2], trailer: 3 });
    expect(await store.holdings('s_b')).toEqual({ header: true, chunks: [0, 1, 2], trailer: 3 });
    for (const id of ['s_a', 's_b']) {
      expect((await store.records(id)).map((r) => r.bytes)).toEqual(local(files[id]!).map((r) => r.record));
      expect((await compareWith(store, id, readFileSync(files[id]!))).status).toBe('match');
    }
    expect(await store.sessions()).toEqual(['s_a', 's_b']);
    await client.send(new sdk.DeleteObjectCommand({ Bucket: s3.bucket, Key: s3Keys.record(prefix, { sessionId: 's_a', kind: 'chunk', seq: 1 }) }));
    expect(kinds(await compareWith(store, 's_a', readFileSync(files.s_a!)))).toEqual(['offsite-gap@1']);
  });
  /** Signed anchors as the Anchorer makes them. */
  const auditAnchorOf = (position: number, head: string, ts: number): Anchor => ({
    kind: 'audit',
    subject: 'audit',
    position,
    head,
    ts,
    signature: signer.sign(checkpointSigned(position, head, ts)),
    node: 'gw-test',
  });
  const recordingAnchorOf = (subject: string, position: number, head: string, ts: number): Anchor => ({
    kind: 'recording',
    subject,
    position,
    head,
    ts,
    signature: signer.sign(recordingAnchorSigned(subject, position, head, ts)),
    node: 'gw-test',
  });
  /** A local audit log that ends at `maxId` with `head` there (no rows to walk): enough for compareAudit to check anchors. */
  const auditLocal = (maxId: number, head: string) => ({
    maxId,
    hashOf: async (id: number) => (id === maxId ? head : null),
    rows: async function* () {},
  });

  /**
   * N sessions recording for 150 s: a put every 2.5 s with a chunk of each, anchor rounds (the
   * audit checkpoint and every session's head) at 60 s and 120 s, then every trailer, then close.
   * The objects written, by kind.
   */
  async function recordWindow(
    n: number,
  ): Promise<{ segments: number; catalogs: number; anchorBatches: number; markers: number; others: string[]; prefix: string }> {
    const clock = new FakeClock();
    const { store, client, prefix } = await s3Store(clock);
    const ids = Array.from({ length: n }, (_, i) => `s_w${i}`);
    const rec = (sessionId: string, kind: RecordKind, seq: number): OffsiteRecord => ({
      sessionId,
      kind,
      seq,
      bytes: Buffer.from(`${sessionId}/${kind}/${seq}`),
      hash: 'h',
    });
    await store.put(
      ids.map((id) => rec(id, 'header', 0)),
      'gw-test',
    );
    let seq = 0;
    for (let t = 2500; t <= 150_000; t += 2500) {
      clock.advance(2500);
      await store.put(
        ids.map((id) => rec(id, 'chunk', seq)),
        'gw-test',
      );
      seq++;
      if (t % 60_000 === 0) await store.putAnchors([auditAnchorOf(t, `a${t}`, t), ...ids.map((id) => recordingAnchorOf(id, seq, `h${seq}`, t))]);
    }
    await store.put(
      ids.map((id) => rec(id, 'trailer', seq)),
      'gw-test',
    );
    await store.close();
    const keys = await keysUnder(client, prefix);
    const count = (top: string) => keys.filter((k) => k.startsWith(`${prefix}${top}/`)).length;
    const others = keys.filter((k) => !/^t\d+\/(segs|catalogs|anchors\/batches|sessions)\//.test(k));
    return { segments: count('segs'), catalogs: count('catalogs'), anchorBatches: count('anchors/batches'), markers: count('sessions'), others, prefix };
  }

  it('the requests per minute do not grow with the sessions: segments per put, one catalog a minute, one anchor object per round', async () => {
    const few = await recordWindow(3);
    const many = await recordWindow(40);
    // 62 puts; catalogs at 60 s and 120 s (due), with the trailers and at close; two anchor rounds; one marker per session (a day).
    // The earlier layout wrote 40 first manifests, 40 a minute more, the trailers' 40, and 81 anchor objects a round.
    expect(few).toMatchObject({ segments: 62, catalogs: 4, anchorBatches: 2, markers: 3, others: [] });
    expect(many).toMatchObject({ segments: 62, catalogs: 4, anchorBatches: 2, markers: 40, others: [] });
    // And readers find every session, record and anchor there.
    const reader = await readerOf(many.prefix, new FakeClock());
    expect(await reader.sessions()).toEqual(Array.from({ length: 40 }, (_, i) => `s_w${i}`).sort());
    expect(await reader.holdings('s_w17')).toEqual({ header: true, chunks: Array.from({ length: 60 }, (_, i) => i), trailer: 60 });
    expect((await reader.anchors('recording', 's_w17')).map((a) => a.position)).toEqual([24, 48]);
    expect((await reader.anchors('recording', 's_w17')).every((a) => anchorVerifies(a, PEM))).toBe(true);
    expect(await reader.anchors('recording')).toHaveLength(80);
    expect((await reader.anchors('audit')).map((a) => a.position)).toEqual([60_000, 120_000]);
  });

  it('a catalog that is not one (bad JSON, a key outside the prefix, a wrong session name, too long) is not trusted: every segment is read, and verify still names what was deleted or altered', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { store, client, prefix } = await s3Store(clock);
    const a = recordsOf('s_a', files.s_a!);
    const b = recordsOf('s_b', files.s_b!);
    await store.put([...a.slice(0, 2), ...b.slice(0, 2)], 'gw-test'); // headers and chunk 0
    await store.putAnchors([]); // an anchor round: catalog 1 names them
    clock.advance(600_000); // far past what readers scan after a catalog
    await store.put([...a.slice(2), ...b.slice(2)], 'gw-test'); // the rest and the trailers: catalog 2
    await store.close(); // catalog 3, closed: readers scan none of this writer's segments
    const catalogs = (await keysUnder(client, `${prefix}catalogs/`)).sort();
    expect(catalogs).toHaveLength(3);
    const first = catalogs[0]!;
    const original = JSON.parse((await objectOf(client, first)).toString('utf8')) as { sessions: Record<string, { key: string }[]> };
    const span = original.sessions.s_a![0]!;
    const check = async (o: S3OffsiteOptions = {}) => {
      const r = await readerOf(prefix, clock, o);
      expect(await r.sessions()).toEqual(['s_a', 's_b']);
      expect((await compareWith(r, 's_a', readFileSync(files.s_a!))).status).toBe('match');
      expect(kinds(await compareWith(r, 's_b', null))).toEqual(['deleted-locally@null']);
      const altered = readFileSync(files.s_b!);
      altered[recordsAt(altered, 0).records.find((x) => x.kind === 'chunk' && x.seq === 0)!.offset + 90]! ^= 1;
      expect(kinds(await compareWith(r, 's_b', altered))).toEqual(['altered-locally@0']);
    };
    await check();
    // Too long for the reader: catalogs 1 and 2 are over 300 bytes.
    await check({ maxObjectBytes: 300 });
    const hostile = [
      '{"v":1,"node":"gw-test","sessions":{',
      JSON.stringify({ ...original, sessions: { s_a: [{ ...span, key: 'elsewhere/segs/gw-test-0123456789ab/1700000000000-0123456789ab' }] } }),
      JSON.stringify({ ...original, sessions: { ...original.sessions, '../s_a': [span] } }),
      JSON.stringify({ ...original, sessions: { s_a: [{ ...span, records: [['chunk', 0, 'x', 0, 10 ** 9]] }] } }),
    ];
    for (const junk of hostile) {
      await putRaw(client, first, junk);
      await check();
    }
    // With catalog 1 still junk, its segment deleted off the box: the header and chunk 0 are named missing.
    await client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: s3.bucket, Key: span.key }));
    const r = await readerOf(prefix, clock);
    expect(kinds(await compareWith(r, 's_a', readFileSync(files.s_a!)))).toEqual(['offsite-gap@0', 'offsite-gap@null', 'not-shipped@null']);
  });

  it('catalogs, segment indexes and anchor batches are parsed strictly: anything else is null', () => {
    const prefix = 'p/';
    const key = `${prefix}segs/gw-0123456789ab/1700000000000-0123456789ab`;
    const span = { key, start: 10, end: 30, records: [['chunk', 0, 'ab', 10, 20]] };
    const good = { v: 1, node: 'gw', instance: '0123456789ab', ts: 1, closed: false, sessions: { s_a: [span] } };
    const parse = (x: unknown, max?: number) => parseCatalog(Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)), prefix, max);
    expect(parse(good)!.sessions.get('s_a')).toEqual([span]);
    expect(parse({ ...good, sessions: { s_a: [{ ...span, key: `${prefix}segments/1700000000000-gw-0123456789ab` }] } })).not.toBeNull(); // the earlier layout's
    const bad: unknown[] = [
      '{"v":1,',
      'null',
      '[]',
      { ...good, v: 2 },
      { ...good, ts: 'now' },
      { ...good, sessions: [] },
      { ...good, sessions: { '../s_b': [span] } },
      { ...good, sessions: { 's a': [span] } },
      { ...good, sessions: { '': [span] } },
      { ...good, sessions: { s_a: 'x' } },
      { ...good, sessions: { s_a: [{ ...span, key: `other/segs/gw-0123456789ab/1700000000000-0123456789ab` }] } },
      { ...good, sessions: { s_a: [{ ...span, key: `${prefix}segs/../../x/1700000000000-0123456789ab` }] } },
      { ...good, sessions: { s_a: [{ ...span, key: `${prefix}s_a/header` }] } },
      { ...good, sessions: { s_a: [{ ...span, key: 7 }] } },
      { ...good, sessions: { s_a: [{ ...span, start: -1 }] } },
      { ...good, sessions: { s_a: [{ ...span, end: 5 }] } },
      { ...good, sessions: { s_a: [{ ...span, records: {} }] } },
      { ...good, sessions: { s_a: [{ ...span, records: [['chunk', 0, 'ab', 0, 20]] }] } }, // starts before its span
      { ...good, sessions: { s_a: [{ ...span, records: [['chunk', 0, 'ab', 25, 20]] }] } }, // ends after it
      { ...good, sessions: { s_a: [{ ...span, records: [['evil', 0, 'ab', 10, 20]] }] } },
      { ...good, sessions: { s_a: [{ ...span, records: [['chunk', 0.5, 'ab', 10, 20]] }] } },
    ];
    for (const x of bad) expect(parse(x), JSON.stringify(x)).toBeNull();
    // Huge arrays: more spans or records than the reader takes (4 million by default).
    expect(parse({ ...good, sessions: { s_a: Array.from({ length: 11 }, () => span) } }, 10)).toBeNull();
    expect(parse({ ...good, sessions: { s_a: [{ ...span, records: Array.from({ length: 11 }, () => span.records[0]) }] } }, 10)).toBeNull();

    // A segment's own index, as scanning reads it.
    const { body } = encodeSegment([{ sessionId: 's_a', kind: 'chunk', seq: 0, bytes: Buffer.from('x'), hash: 'ab' }], 'gw', 1);
    expect(Object.keys(segmentIndexOf(body).index!.sessions)).toEqual(['s_a']);
    const json = (o: unknown) => Buffer.from(JSON.stringify(o));
    const withIndex = (j: Buffer) => Buffer.concat([Buffer.from('TGSEG1\n'), Buffer.from([0, 0, 0, j.length]), j]);
    expect(segmentIndexOf(withIndex(json({ v: 1, sessions: { '../x': { start: 0, end: 0, records: [] } } }))).index).toBeNull();
    expect(segmentIndexOf(withIndex(json({ v: 1, sessions: { s_a: { start: 0, end: 1, records: [['chunk', 0, 'h', 0, 2]] } } }))).index).toBeNull();
    const huge = Buffer.concat([Buffer.from('TGSEG1\n'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    expect(segmentIndexOf(huge)).toEqual({ index: null, need: 0 }); // 4 GiB claimed: not fetched

    const anchor = { kind: 'recording', subject: 's_a', position: 3, head: 'ab', ts: 5, signature: 'c2ln', node: 'gw' };
    expect(parseAnchorBatch(json({ v: 1, anchors: [anchor] }))).toEqual([{ ...anchor, signature: Buffer.from('sig') }]);
    for (const x of [
      '[',
      'null',
      { v: 2, anchors: [anchor] },
      { v: 1, anchors: 'x' },
      { v: 1, anchors: [{ ...anchor, kind: 'other' }] },
      { v: 1, anchors: [{ ...anchor, subject: 9 }] },
    ]) {
      expect(parseAnchorBatch(typeof x === 'string' ? Buffer.from(x) : json(x))).toBeNull();
    }
    expect(parseAnchorBatch(json({ v: 1, anchors: [anchor, anchor] }), 1)).toBeNull();
    // An entry with a subject but a field that is not what it should be: kept, with no signature (verify names it).
    expect(parseAnchorBatch(json({ v: 1, anchors: [{ ...anchor, position: 'all' }] }))![0]!.signature).toEqual(Buffer.alloc(0));
  });

  it('anchors: one object per round, read back by kind and subject; a batch that is not one is named by audit verify, not skipped', async () => {
    const clock = new FakeClock();
    const { store, client, prefix } = await s3Store(clock);
    const audit = auditAnchorOf(5, 'h5', clock.now());
    const recA = recordingAnchorOf('s_a', 3, 'ha', clock.now());
    const recB = recordingAnchorOf('s_b', 4, 'hb', clock.now());
    await store.putAnchors([audit, recA, recB]);
    expect(await keysUnder(client, `${prefix}anchors/`)).toHaveLength(1);
    const r = await readerOf(prefix, clock);
    expect(await r.anchors('recording', 's_a')).toEqual([recA]);
    expect(await r.anchors('recording')).toEqual([recA, recB]);
    expect(await r.anchors('audit')).toEqual([audit]);
    const verdict = async (anchors: Anchor[]) => compareAudit({ sink: 's3', anchors, local: auditLocal(5, 'h5'), publicKeyPem: PEM });
    expect((await verdict(await r.anchors('audit'))).status).toBe('match');
    // Root drops objects that are not anchor batches among them: each is named, none hides the good one.
    const hex = () => randomBytes(6).toString('hex');
    for (const junk of ['not json', JSON.stringify({ v: 1, anchors: [{ kind: 'audit' }] }), JSON.stringify({ v: 1, anchors: 'x' })]) {
      await putRaw(client, s3Keys.anchorBatch(prefix, s3Keys.writer('evil', hex()), clock.now(), hex()), junk);
    }
    const r2 = await readerOf(prefix, clock);
    const v = await verdict(await r2.anchors('audit'));
    expect(kinds(v)).toEqual(['anchor-invalid@0']);
    expect(v.differences[0]!.detail).toBe('3 off-box audit anchors do not verify with the audit public key');
    expect(await r2.anchors('recording', 's_a')).toEqual([recA]);
    // A recording anchor whose fields were changed (the signature no longer covers them), among the batches of the writer
    // day that anchored s_a (a reader of s_a reads those, from s_a's marker on), is named in that recording's verdict.
    const real = (await keysUnder(client, `${prefix}anchors/batches/`)).find((k) => !k.includes('/evil-'))!;
    await putRaw(
      client,
      `${real.slice(0, real.lastIndexOf('/') + 1)}${String(clock.now() + 1).padStart(13, '0')}-${hex()}`,
      JSON.stringify({ v: 1, anchors: [{ ...recA, position: 9, signature: recA.signature.toString('base64') }] }),
    );
    const r3 = await readerOf(prefix, clock);
    const rv = compareRecording({
      sessionId: 's_a',
      sink: 's3',
      localFile: null,
      localRow: false,
      offsite: [],
      anchors: await r3.anchors('recording', 's_a'),
      publicKeyPem: PEM,
    });
    expect(kinds(rv)).toEqual(['anchor-invalid@null', 'deleted-locally@null']);
  });

  it('still verifies what the earlier segment layout wrote: per-session manifests, a segment no manifest names, one object per anchor', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { client, prefix } = await s3Store(clock);
    const c = recordsOf('s_c', files.s_c!);
    const hex = () => randomBytes(6).toString('hex');
    // As versions before catalogs wrote them: a segment, then the session's manifest naming it...
    const key1 = s3Keys.legacySegment(prefix, clock.now(), 'gw-old', hex());
    const seg1 = encodeSegment(c.slice(0, 3), 'gw-old', clock.now());
    await putRaw(client, key1, seg1.body);
    const manifest = { v: 1, session: 's_c', node: 'gw-old', ts: clock.now(), segments: [{ key: key1, ...seg1.index.sessions.s_c! }] };
    await putRaw(client, s3Keys.legacyManifest(prefix, 's_c', clock.now(), 'gw-old', hex()), JSON.stringify(manifest));
    // ...and a segment with the rest that the node put but did not name before it stopped.
    clock.advance(1000);
    await putRaw(client, s3Keys.legacySegment(prefix, clock.now(), 'gw-old', hex()), encodeSegment(c.slice(3), 'gw-old', clock.now()).body);
    const local = recordsAt(readFileSync(files.s_c!), 0).records;
    const head = local.filter((x) => x.kind === 'chunk').at(-1)!.hash;
    const anchors = [recordingAnchorOf('s_c', 3, head, clock.now()), auditAnchorOf(7, 'h7', clock.now())];
    for (const x of anchors) await putRaw(client, s3Keys.legacyAnchor(prefix, x), JSON.stringify({ ...x, signature: x.signature.toString('base64') }));

    const r = await readerOf(prefix, clock);
    expect(await r.sessions()).toEqual(['s_c']);
    expect(await r.holdings('s_c')).toEqual({ header: true, chunks: [0, 1, 2], trailer: 3 });
    expect((await r.records('s_c')).map((x) => x.bytes)).toEqual(local.map((x) => x.bytes));
    const recAnchors = await r.anchors('recording', 's_c');
    expect(recAnchors).toEqual([anchors[0]]);
    const v = compareRecording({
      sessionId: 's_c',
      sink: 's3',
      localFile: readFileSync(files.s_c!),
      localRow: true,
      offsite: await r.records('s_c'),
      anchors: recAnchors,
      publicKeyPem: PEM,
    });
    expect(v.status).toBe('match');
    expect((await compareAudit({ sink: 's3', anchors: await r.anchors('audit'), local: auditLocal(7, 'h7'), publicKeyPem: PEM })).status).toBe('match');
    // The local file cut below the anchor, and the named segment deleted off the box: both named.
    const cut = readFileSync(files.s_c!).subarray(0, local.find((x) => x.kind === 'chunk' && x.seq === 2)!.offset);
    expect(
      kinds(
        compareRecording({
          sessionId: 's_c',
          sink: 's3',
          localFile: cut,
          localRow: true,
          offsite: await r.records('s_c'),
          anchors: recAnchors,
          publicKeyPem: PEM,
        }),
      ),
    ).toEqual(['truncated-locally@2']);
    await client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: s3.bucket, Key: key1 }));
    const r2 = await readerOf(prefix, clock);
    // The manifest names the header and chunks 0-1 in a segment that is gone.
    expect(kinds(await compareWith(r2, 's_c', readFileSync(files.s_c!)))).toEqual(['offsite-gap@null', 'offsite-gap@0', 'not-shipped@null']);
  });

  /** A store on `prefix` whose client notes its requests: the key of each GET, the prefix of each LIST (one per page). */
  async function countingReader(prefix: string, clock: FakeClock): Promise<{ store: S3Offsite; gets: string[]; lists: string[] }> {
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
    const gets: string[] = [];
    const lists: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string; Prefix?: string };
        if (context.commandName === 'GetObjectCommand') gets.push(input.Key!);
        if (context.commandName === 'ListObjectsV2Command') lists.push(input.Prefix ?? '');
        return next(args);
      },
      { step: 'initialize', name: 'countRequests' },
    );
    return { store: await readerOf(prefix, clock, { client }), gets, lists };
  }

  /** A record whose bytes are not a recording's: enough where nothing is verified. */
  const filler = (sessionId: string, kind: RecordKind, seq: number): OffsiteRecord => ({
    sessionId,
    kind,
    seq,
    bytes: Buffer.from(`${sessionId}/${kind}/${seq}`),
    hash: 'h',
  });
  /** Day `day` (0: 2026-01-01) at h:m:s UTC; the day's directory name. */
  const at = (day: number, h: number, m = 0, s = 0) => Date.UTC(2026, 0, 1 + day, h, m, s);
  const dayDir = (day: number) => new Date(at(day, 0)).toISOString().slice(0, 10);
  const moveTo = (clock: FakeClock, t: number) => clock.advance(t - clock.now());

  /**
   * A bucket `days` days old, as gateways write it: each day a gateway run (a writer of its own)
   * starts at 09:00 and ships a filler session in puts a minute apart with an anchor round each
   * time (a catalog each), puts once more at 23:59:30, names that at 00:05 the next day (with
   * another session's put) and closes. On day 2 it also ships s_a (09:02-09:04, anchored at 3 chunks); the writer of day 3
   * also ships s_b from 23:58 to 00:00:30 on day 4.
   */
  async function agedBucket(days: number, files: Record<string, string>): Promise<string> {
    const clock = new FakeClock(at(0, 9));
    const prefix = `t${++dbs}/`;
    const a = recordsOf('s_a', files.s_a!);
    const b = recordsOf('s_b', files.s_b!);
    for (let d = 0; d < days; d++) {
      moveTo(clock, at(d, 9));
      const w = await readerOf(prefix, clock);
      const f = `s_f${d}`;
      for (let m = 0; m < 5; m++) {
        await w.put([filler(f, m === 0 ? 'header' : 'chunk', m)], 'gw-test');
        if (d === 2 && m >= 2) await w.put(m === 2 ? a.slice(0, 2) : m === 3 ? [a[2]!] : a.slice(3), 'gw-test');
        const sA = d === 2 && m === 4 ? [recordingAnchorOf('s_a', 3, a[3]!.hash, clock.now())] : [];
        await w.putAnchors([recordingAnchorOf(f, m, 'h', clock.now()), ...sA]);
        clock.advance(60_000);
      }
      if (d === 3) {
        moveTo(clock, at(3, 23, 58));
        await w.put(b.slice(0, 2), 'gw-test');
      }
      moveTo(clock, at(d, 23, 59, 30));
      await w.put([filler(f, 'chunk', 5), ...(d === 3 ? [b[2]!] : [])], 'gw-test');
      if (d === 3) {
        moveTo(clock, at(4, 0, 0, 30));
        await w.put(b.slice(3), 'gw-test');
      }
      moveTo(clock, at(d + 1, 0, 5));
      await w.put([filler(`s_g${d}`, 'header', 0)], 'gw-test'); // its catalog names the filler's last put of the day before too
      await w.close();
    }
    return prefix;
  }

  it('verifying one session reads the writer days of its markers only: the requests do not grow with the bucket, and a recording deleted locally is still named', async () => {
    const files = await fourRecordings(new FakeClock());
    const measure = async (days: number) => {
      const prefix = await agedBucket(days, files);
      const r = await countingReader(prefix, new FakeClock(at(days + 30, 12)));
      const out: Record<string, { gets: string[]; lists: string[] }> = {};
      for (const id of ['s_a', 's_b']) {
        r.gets.length = r.lists.length = 0;
        const anchors = await r.store.anchors('recording', id);
        const v = compareRecording({
          sessionId: id,
          sink: 's3',
          localFile: readFileSync(files[id]!),
          localRow: true,
          offsite: await r.store.records(id),
          anchors,
          publicKeyPem: PEM,
        });
        expect(v.status, id).toBe('match');
        expect(await r.store.holdings(id)).toEqual({ header: true, chunks: [0, 1, 2], trailer: 3 });
        out[id] = { gets: [...r.gets], lists: [...r.lists] };
      }
      // s_a deleted locally: named from what is off the box; every session is listed from the markers, with no GET.
      expect(kinds(await compareWith(r.store, 's_a', null))).toEqual(['deleted-locally@null']);
      const fresh = await countingReader(prefix, new FakeClock(at(days + 30, 12)));
      const fillers = Array.from({ length: days }, (_, d) => [`s_f${d}`, `s_g${d}`]).flat();
      expect(await fresh.store.sessions()).toEqual(['s_a', 's_b', ...fillers].sort());
      // A session whose last put of a day was named in a catalog the next day: marked there by that catalog, found.
      expect(await r.store.holdings('s_f1')).toEqual({ header: true, chunks: [1, 2, 3, 4, 5], trailer: null });
      out.sessions = { gets: [...fresh.gets], lists: [...fresh.lists] };
      return { prefix, out };
    };
    const young = await measure(5);
    const old = await measure(12);
    const strip = (xs: string[], prefix: string) => xs.map((k) => k.slice(prefix.length).replace(/-[0-9a-f]{12}(?=[/-]|$)/g, '-*'));
    for (const what of ['s_a', 's_b', 'sessions']) {
      const y = young.out[what]!;
      const o = old.out[what]!;
      // The same requests for the same objects, whatever the bucket's age.
      expect(strip(o.lists, old.prefix), what).toEqual(strip(y.lists, young.prefix));
      expect(strip(o.gets, old.prefix).sort(), what).toEqual(strip(y.gets, young.prefix).sort());
    }
    // s_a: its writer's catalogs and anchor batches of its day from its marker on, one catalog of the next day (the last
    // puts of its day were named there: not indexed), the three segments holding its records; no segment index read.
    const sA = old.out.s_a!;
    const catalogGets = sA.gets.filter((k) => k.includes('/catalogs/'));
    expect(catalogGets.every((k) => k.includes(`/catalogs/${dayDir(2)}/`) || k.includes(`/catalogs/${dayDir(3)}/`))).toBe(true);
    expect(catalogGets.filter((k) => k.includes(`/catalogs/${dayDir(3)}/`))).toHaveLength(1);
    expect(sA.gets.filter((k) => k.includes('/anchors/')).every((k) => k.includes(`/anchors/batches/${dayDir(2)}/`))).toBe(true);
    expect(new Set(sA.gets.filter((k) => k.includes('/segs/'))).size).toBe(3);
    // Of the five catalogs and anchor batches of its writer day, the three from 09:02 on (the trailer's catalog and the
    // anchor round's at 09:04 are one).
    expect(sA.gets).toHaveLength(3 + 1 + 3 + 3);
    // Per kind of object, one LIST of a directory of that writer day, of the session, or of the layout before days (empty here).
    expect(strip(sA.lists, old.prefix)).toEqual([
      'anchors/recordings/s_a/',
      'sessions/s_a/',
      `catalogs/${dayDir(2)}/gw-test-*/`,
      `segs/${dayDir(2)}/gw-test-*/`,
      `catalogs/${dayDir(3)}/gw-test-*/`,
      `anchors/batches/${dayDir(2)}/gw-test-*/`,
      'anchors/batches/',
      's_a/',
      'catalogs/',
      'segs/',
      's_a/',
    ]);
    // s_b: the two days it was written on.
    expect(
      old.out.s_b!.gets.filter((k) => k.includes('/catalogs/')).every((k) => k.includes(`/catalogs/${dayDir(3)}/`) || k.includes(`/catalogs/${dayDir(4)}/`)),
    ).toBe(true);
    // The session list: the markers' directories and the layout before days (empty here): four LISTs, no GET.
    expect(old.out.sessions).toEqual({ gets: [], lists: [old.prefix, `${old.prefix}sessions/`, `${old.prefix}catalogs/`, `${old.prefix}segs/`] });
  }, 60_000);

  it('a node that stopped before naming what it put is resumed on the next day: the new writer names it there, and readers index nothing', async () => {
    const clock = new FakeClock(at(0, 23, 59));
    const files = await fourRecordings(clock);
    const { store: w1, prefix } = await s3Store(clock);
    const a = recordsOf('s_a', files.s_a!);
    await w1.put(a.slice(0, 3), 'gw-test'); // the header and chunks 0-1, named by no catalog: the node stops
    moveTo(clock, at(1, 8));
    const w2 = await readerOf(prefix, clock);
    expect(await w2.holdings('s_a')).toEqual({ header: true, chunks: [0, 1], trailer: null });
    await w2.put(a.slice(3), 'gw-test'); // chunk 2 and the trailer: its catalog (due) names the stopped writer's segment too
    const r = await countingReader(prefix, clock);
    expect((await compareWith(r.store, 's_a', readFileSync(files.s_a!))).status).toBe('match');
    // Two segments read (their spans), no index: the stopped writer's segment is named by the next day's catalog.
    expect(new Set(r.gets.filter((k) => k.includes('/segs/'))).size).toBe(2);
    expect(r.gets.filter((k) => k.includes('/segs/'))).toHaveLength(2);
  });

  it('still reads the layout before days: a recording begun there and continued in days, one only there, a junk catalog there; and what a downgraded gateway wrote there after a session began in days', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const { client, prefix } = await s3Store(clock);
    const hex = () => randomBytes(6).toString('hex');
    const flatWriter = s3Keys.writer('gw-old', hex());
    /** What a version before days put: a segment, and a catalog naming it. */
    const flatPut = async (recs: OffsiteRecord[], closed = false) => {
      const ts = clock.now();
      const key = s3Keys.flatSegment(prefix, flatWriter, ts, hex());
      const seg = encodeSegment(recs, 'gw-old', ts);
      await putRaw(client, key, seg.body);
      const sessions = Object.fromEntries(Object.entries(seg.index.sessions).map(([id, s]) => [id, [{ key, ...s }]]));
      const catalog = { v: 1, node: 'gw-old', instance: flatWriter.slice(-12), ts: ts + 1, closed, sessions };
      const catalogKey = s3Keys.flatCatalog(prefix, flatWriter, ts + 1, hex());
      await putRaw(client, catalogKey, JSON.stringify(catalog));
      clock.advance(1000);
      return catalogKey;
    };
    const a = recordsOf('s_a', files.s_a!);
    const c = recordsOf('s_c', files.s_c!);
    const d = recordsOf('s_d', files.s_d!);
    await flatPut([...a.slice(0, 3), ...c]); // s_a's header and chunks 0-1; all of s_c
    const anchorA = recordingAnchorOf('s_a', 2, a[2]!.hash, clock.now());
    const flatBatch = { v: 1, node: 'gw-old', ts: clock.now(), anchors: [{ ...anchorA, signature: anchorA.signature.toString('base64') }] };
    await putRaw(client, s3Keys.flatAnchorBatch(prefix, clock.now(), 'gw-old', hex()), JSON.stringify(flatBatch));
    clock.advance(3_600_000);
    // Upgraded: a gateway writing days resumes s_a (asks what is held, ships the rest).
    const up = await readerOf(prefix, clock);
    expect(await up.holdings('s_a')).toEqual({ header: true, chunks: [0, 1], trailer: null });
    await up.put(a.slice(3), 'gw-test');
    await up.close();
    // s_b and s_d begin in days; then a gateway downgraded to a version before days ships the rest of s_d there.
    const again = await readerOf(prefix, clock);
    await again.put([...recordsOf('s_b', files.s_b!), ...d.slice(0, 2)], 'gw-test');
    await again.close();
    clock.advance(1000);
    const downgraded = await flatPut(d.slice(2), true);
    const check = async () => {
      const r = await readerOf(prefix, clock);
      expect(await r.sessions()).toEqual(['s_a', 's_b', 's_c', 's_d']);
      for (const id of ['s_a', 's_b', 's_c', 's_d']) expect((await compareWith(r, id, readFileSync(files[id]!))).status, id).toBe('match');
      expect(kinds(await compareWith(r, 's_c', null))).toEqual(['deleted-locally@null']);
      expect(await r.anchors('recording', 's_a')).toEqual([anchorA]);
    };
    await check();
    // Of that layout, a session begun in days reads only what was written after its first marker (the downgraded gateway's
    // catalog); one begun there reads all of it.
    const flatCatalogs = (gets: string[]) => gets.filter((k) => k.startsWith(`${prefix}catalogs/${flatWriter}/`));
    const counted = await countingReader(prefix, clock);
    await counted.store.records('s_b');
    expect(flatCatalogs(counted.gets)).toEqual([downgraded]);
    const whole = await countingReader(prefix, clock);
    await whole.store.records('s_a');
    expect(flatCatalogs(whole.gets)).toHaveLength(2);
    // A junk catalog in that layout: none of it is trusted to say where to stop, its segments are indexed.
    await putRaw(client, s3Keys.flatCatalog(prefix, flatWriter, clock.now(), hex()), '{"v":1,');
    await check();
  });

  it('a catalog that cannot be written is counted (its segments are found by indexing, named by the next one); one read that is not a catalog is counted', async () => {
    const clock = new FakeClock();
    const files = await fourRecordings(clock);
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
    let refuse = true;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key ?? '';
        if (refuse && context.commandName === 'PutObjectCommand' && key.includes('/catalogs/')) throw new Error('catalog refused');
        return next(args);
      },
      { step: 'initialize', name: 'refuseCatalogs' },
    );
    const prefix = `t${++dbs}/`;
    const store = await readerOf(prefix, clock, { client });
    const a = recordsOf('s_a', files.s_a!);
    await store.put(a, 'gw-test'); // the trailer makes the catalog due: it fails, the put does not
    expect(store.indexHealth()).toEqual({
      catalogWriteFailures: 1,
      lastCatalogError: 'catalog refused',
      lastCatalogErrorAt: clock.now(),
      unreadableCatalogs: 0,
    });
    expect((await compareWith(await readerOf(prefix, clock), 's_a', readFileSync(files.s_a!))).status).toBe('match');
    refuse = false;
    clock.advance(10_000);
    await store.putAnchors([]);
    expect(await keysUnder(client, `${prefix}catalogs/`)).toHaveLength(1);
    expect(store.indexHealth().catalogWriteFailures).toBe(1); // the count and the last error stay (metrics, compliance report)
    // Junk among that writer day's catalogs: counted by the reader that meets it, and not trusted.
    const real = (await keysUnder(client, `${prefix}catalogs/`))[0]!;
    await putRaw(client, `${real.slice(0, real.lastIndexOf('/') + 1)}${String(clock.now() + 1).padStart(13, '0')}-${'0'.repeat(12)}`, 'junk');
    const r = await readerOf(prefix, clock);
    expect((await compareWith(r, 's_a', readFileSync(files.s_a!))).status).toBe('match');
    expect(r.indexHealth().unreadableCatalogs).toBe(1);
    expect(catalogHealth([])).toBe('catalogs: every write succeeded, none read was malformed');
    const row = { node: 'gw-1', catalog_failures: 2, catalog_error: 'catalog refused', catalog_error_at: clock.now(), unreadable_catalogs: 1 };
    expect(catalogHealth([row as SinkStatusRow])).toBe(
      `catalogs: WARNING 2 writes failed (last on gw-1 at ${new Date(clock.now()).toISOString()}: catalog refused); readers index the segments they ` +
        'were to name until a later catalog names them, WARNING 1 objects read as catalogs are not catalogs (not trusted: the segments of their writer day are indexed instead)',
    );
  });
});

describe('config', () => {
  it('refuses the PostgreSQL sink on the SQLite single-node store with one coded line', () => {
    let err: unknown;
    try {
      buildConfig({ evidence: { recordings: { postgres: {} } } }, { file: null, baseDir: '/tmp' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TgError);
    expect((err as TgError).code).toBe('TG_ERR_CONFIG_INVALID');
    expect((err as TgError).message).toBe(
      'config (defaults): evidence.recordings.postgres: the SQLite single-node store has no PostgreSQL sink (use store.kind postgres, or the s3 sink)',
    );
    // s3 is fine on SQLite; anchors at most every 60 s.
    expect(
      buildConfig({ evidence: { recordings: { s3: { bucket: 'b-1', endpoint: 'http://127.0.0.1:1' } } } }, { file: null, baseDir: '/tmp' }).evidence.recordings!
        .anchorInterval,
    ).toBe(60_000);
    expect(() => buildConfig({ evidence: { recordings: { anchorInterval: '90s', s3: { bucket: 'b-1' } } } }, { file: null, baseDir: '/tmp' })).toThrow(
      /between 1s and 60s/,
    );
  });
});
