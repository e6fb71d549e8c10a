import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openDb } from '../../src/store/db.js';
import type { Sql } from '../../src/store/sql.js';
import { SqliteSql } from '../../src/store/sqlite.js';
import { PostgresSql } from '../../src/store/postgres.js';
import { migratePostgres } from '../../src/store/postgres-migrate.js';
import { buildConfig } from '../../src/config/load.js';
import { formatRetention, parseRetention, RETENTION_YEAR_MS, SIX_YEARS_MS } from '../../src/config/duration.js';
import { buildStores } from '../../src/services/stores.js';
import type { AdminContext } from '../../src/admin/context.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import type { Signer } from '../../src/crypto/audit-key.js';
import { FakeClock } from '../../src/platform/clock.js';
import { recordingPath } from '../../src/recording/sink.js';
import { verifyStored } from '../../src/recording/access.js';
import { verifyAuditChain } from '../../src/audit/log.js';
import { readTombstone, tombstoneSigned } from '../../src/audit/tombstone.js';
import { verifyWithPublicKey } from '../../src/crypto/audit-key.js';
import { listRetention, placeHold, purgeExpired, purgeRecording, releaseHolds } from '../../src/admin/retention.js';
import { tempDir } from '../helpers/gateway.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/poll.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

function testSigner(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { sign: (d) => sign(null, d, privateKey), publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

interface Engine {
  name: string;
  /** A fresh, migrated database; `other` is a second node's connection to it (SQLite: the same one). */
  fresh(dir: string): Promise<{ sql: Sql; other: () => Sql }>;
  /** Blocked waiters on advisory locks (PostgreSQL), for the race test; null on SQLite. */
  waitingOnLocks(): Promise<number | null>;
  done(): Promise<void>;
}

function sqliteEngine(): Engine {
  return {
    name: 'SQLite',
    async fresh(dir) {
      const sql = new SqliteSql(openDb(path.join(dir, 'tg.db')));
      return { sql, other: () => sql };
    },
    waitingOnLocks: async () => null,
    async done() {},
  };
}

function postgresEngine(): Engine {
  let server: TestPostgres | null = null;
  let n = 0;
  const open: PostgresSql[] = [];
  return {
    name: 'PostgreSQL',
    async fresh() {
      if (!server) {
        server = await startPostgres({ database: 'retention' });
        const template = new PostgresSql({ url: server.url, max: 1 });
        await migratePostgres(template);
        await template.close();
      }
      const db = `r${++n}`;
      await server.query(`CREATE DATABASE ${db} TEMPLATE retention STRATEGY FILE_COPY`);
      const url = server.url.replace(/\/retention$/, `/${db}`);
      const sql = new PostgresSql({ url, max: 4 });
      open.push(sql);
      return {
        sql,
        other: () => {
          const o = new PostgresSql({ url, max: 2 });
          open.push(o);
          return o;
        },
      };
    },
    async waitingOnLocks() {
      const r = await server!.query("SELECT COUNT(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
      return (r.rows[0] as { n: number }).n;
    },
    async done() {
      for (const s of open) await s.close();
      await server?.stop();
    },
  };
}

const masterKey = randomBytes(32);
const master = new MasterKeyProvider(masterKey);

for (const engine of [sqliteEngine(), postgresEngine()]) {
  describe(`retention, holds and purge on ${engine.name}`, () => {
    let dir: string;
    let sql: Sql;
    let other: () => Sql;
    let clock: FakeClock;
    let a: AdminContext;
    let signer: Signer;
    let recDir: string;

    const ctx = (s: Sql, actor = 'os:tester'): AdminContext => {
      const config = buildConfig({ dataDir: 'data', keysDir: 'keys' }, { file: null, baseDir: dir });
      return { ...buildStores(config, clock, s, master), actor, close: async () => {} };
    };

    /** A sealed recording of `id` in role `role` (created if missing), ended at `endedAt`, with a file on disk. */
    async function recorded(id: string, role: string, endedAt: number, opts: { roleRetention?: number } = {}): Promise<Buffer> {
      const r = (await a.roles.find(role)) ?? (await a.roles.add({ name: role, retentionMs: opts.roleRetention ?? null }, 0));
      await a.sessions.start({
        id,
        userId: 1,
        roleId: r.id,
        userName: 'alice',
        roleName: role,
        remoteAddr: '192.0.2.1',
        term: 'xterm',
        cols: 80,
        rows: 24,
        startedAt: endedAt - 1000,
      });
      const file = recordingPath(recDir, id);
      writeFileSync(file, randomBytes(256));
      writeFileSync(file.replace(/\.tgrec$/, '.tgkf'), randomBytes(64));
      const dataKey = randomBytes(32);
      await a.recordings.create({ sessionId: id, file, dataKey, keys: master, cols: 80, rows: 24, now: endedAt - 1000 });
      await a.recordings.flushed(id, 3, `head-${id}`, 900, 300);
      await a.recordings.finish(id, 'sealed', 1000, endedAt, null);
      await a.sessions.end(id, 'exit', endedAt);
      return dataKey;
    }

    beforeEach(async () => {
      dir = tempDir('tg-ret-');
      recDir = path.join(dir, 'data', 'recordings');
      mkdirSync(recDir, { recursive: true });
      ({ sql, other } = await engine.fresh(dir));
      clock = new FakeClock(T0);
      a = ctx(sql);
      signer = testSigner();
    }, 30_000);
    afterEach(async () => {
      if (engine.name === 'SQLite') await sql.close();
      rmSync(dir, { recursive: true, force: true });
    });
    afterAll(async () => {
      await engine.done();
    }, 30_000);

    it("fixes a recording's retention from its role when it starts; a later role edit changes later recordings only", async () => {
      const first = await recorded('S1retain00', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      expect(first).toHaveLength(32);
      const role = (await a.roles.get('short'))!;
      expect(role.retentionMs).toBe(30 * DAY);
      await a.roles.edit(role.id, { retentionMs: 400 * DAY });
      await recorded('S2retain00', 'short', T0 - 40 * DAY);
      await recorded('S3retain00', 'plain', T0 - 40 * DAY);
      const views = Object.fromEntries((await listRetention(a)).map((v) => [v.sessionId, v]));
      expect(views.S1retain00).toMatchObject({ retentionMs: 30 * DAY, expiresAt: T0 - 10 * DAY, status: 'expired', role: 'short' });
      expect(views.S2retain00).toMatchObject({ retentionMs: 400 * DAY, status: 'kept' });
      expect(views.S3retain00).toMatchObject({ retentionMs: SIX_YEARS_MS, expiresAt: T0 - 40 * DAY + SIX_YEARS_MS, status: 'kept' });
      expect((await listRetention(a, { expired: true })).map((v) => v.sessionId)).toEqual(['S1retain00']);
    });

    it('purges an expired recording: key destroyed first, tombstone signed, file gone, audited; dry run changes nothing', async () => {
      await recorded('S1purge000', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      await recorded('S2purge000', 'long', T0 - 40 * DAY);
      const file = recordingPath(recDir, 'S1purge000');
      const before = (await a.recordings.get('S1purge000'))!;
      const auditBefore = await a.auditEvents.maxId();

      const dry = await purgeExpired(a, { dryRun: true }, null);
      expect(dry.wouldPurge.map((v) => v.sessionId)).toEqual(['S1purge000']);
      expect(await a.recordings.get('S1purge000')).toEqual(before);
      expect(existsSync(file)).toBe(true);
      expect(await a.auditEvents.maxId()).toBe(auditBefore);

      const run = await purgeExpired(a, { dryRun: false }, signer);
      expect(run.purged.map((p) => [p.sessionId, p.fileRemoved])).toEqual([['S1purge000', true]]);
      const row = (await a.recordings.get('S1purge000'))!;
      expect(row.wrapped_key.length).toBe(0);
      expect(row).toMatchObject({ purged_by: 'os:tester', purge_reason: 'retention period ended', purge_audit_id: run.purged[0]!.auditId });
      expect(() => a.recordings.dataKey(row, master)).toThrow(/TG_ERR_RECORDING_PURGED|was purged/);
      expect(existsSync(file)).toBe(false);
      expect(existsSync(file.replace(/\.tgrec$/, '.tgkf'))).toBe(false);
      expect((await a.recordings.get('S2purge000'))!.wrapped_key.length).toBeGreaterThan(0);

      // The tombstone verifies with the public key alone, from the audit row's fields.
      const tomb = (await a.recordings.tombstoneRow('S1purge000'))!;
      const t = readTombstone(JSON.parse(tomb.data))!;
      expect(t.tombstone).toMatchObject({
        sessionId: 'S1purge000',
        chunks: 3,
        finalHash: 'head-S1purge000',
        role: 'short',
        retentionMs: 30 * DAY,
        expiresAt: T0 - 10 * DAY,
      });
      expect(verifyWithPublicKey(signer.publicKeyPem, tombstoneSigned(t.tombstone), t.signature)).toBe(true);
      expect(verifyWithPublicKey(testSigner().publicKeyPem, tombstoneSigned(t.tombstone), t.signature)).toBe(false);
      expect(await verifyStored(a, 'S1purge000', signer.publicKeyPem, false)).toMatchObject({
        status: 'purged',
        problem: null,
        tombstone: { auditId: tomb.id },
      });
      expect((await verifyAuditChain(a.auditEvents)).problem).toBeNull();
      const types = (await a.auditEvents.recent({ sinceId: auditBefore })).map((r) => r.type);
      expect(types).toEqual(['recording.purged', 'admin.change']);

      // Refusals: already purged, not yet expired, no hold on a purged one.
      await expect(purgeRecording(a, 'S1purge000', 'again', signer)).rejects.toThrow(/was purged/);
      await expect(purgeRecording(a, 'S2purge000', 'early', signer)).rejects.toMatchObject({ code: 'TG_ERR_RECORDING_NOT_EXPIRED' });
      await expect(placeHold(a, 'S1purge000', 'too late')).rejects.toMatchObject({ code: 'TG_ERR_RECORDING_PURGED' });
      expect((await purgeExpired(a, { dryRun: false }, signer)).purged).toEqual([]);
    });

    it('never purges a held recording; several holds, released by name or all, then purge works', async () => {
      await recorded('S1hold0000', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      const h1 = await placeHold(a, 'S1hold0000', 'matter 1');
      const h2 = await placeHold(ctx(sql, 'os:counsel'), 'S1hold0000', 'matter 2');
      expect([h1.placed_by, h2.placed_by, h2.reason]).toEqual(['os:tester', 'os:counsel', 'matter 2']);
      expect((await listRetention(a, { held: true })).map((v) => [v.sessionId, v.holds, v.status])).toEqual([['S1hold0000', 2, 'held']]);

      const run = await purgeExpired(a, { dryRun: false }, signer);
      expect(run.purged).toEqual([]);
      expect(run.held.map((v) => v.sessionId)).toEqual(['S1hold0000']);
      await expect(purgeRecording(a, 'S1hold0000', 'now', signer)).rejects.toMatchObject({ code: 'TG_ERR_RECORDING_HELD' });
      expect((await a.recordings.get('S1hold0000'))!.wrapped_key.length).toBeGreaterThan(0);

      await expect(releaseHolds(a, 'S1hold0000', {}, null)).rejects.toMatchObject({ code: 'TG_ERR_USAGE' });
      await expect(releaseHolds(a, 'S1hold0000', { holdId: 999 }, null)).rejects.toMatchObject({ code: 'TG_ERR_HOLD_NOT_FOUND' });
      expect(await releaseHolds(a, 'S1hold0000', { holdId: h1.id }, 'matter 1 closed')).toEqual([h1.id]);
      expect((await purgeExpired(a, { dryRun: false }, signer)).purged).toEqual([]);
      expect(await releaseHolds(a, 'S1hold0000', {}, null)).toEqual([h2.id]);
      const holds = await a.recordings.holds('S1hold0000');
      expect(holds.map((h) => [h.id, h.released_by, h.release_reason])).toEqual([
        [h1.id, 'os:tester', 'matter 1 closed'],
        [h2.id, 'os:tester', null],
      ]);

      expect((await purgeExpired(a, { dryRun: false }, signer)).purged.map((p) => p.sessionId)).toEqual(['S1hold0000']);
      const audit = await a.auditEvents.recent({});
      const ev = (type: string) => audit.filter((r) => r.type === type).map((r) => ({ actor: r.actor, ...JSON.parse(r.data) }));
      expect(ev('recording.hold')).toEqual([
        { actor: 'os:tester', sessionId: 'S1hold0000', holdId: h1.id, reason: 'matter 1' },
        { actor: 'os:counsel', sessionId: 'S1hold0000', holdId: h2.id, reason: 'matter 2' },
      ]);
      expect(ev('recording.release')).toEqual([
        { actor: 'os:tester', sessionId: 'S1hold0000', holdIds: [h1.id], reason: 'matter 1 closed' },
        { actor: 'os:tester', sessionId: 'S1hold0000', holdIds: [h2.id], reason: null },
      ]);
      expect(ev('recording.purged')).toHaveLength(1);
    });

    it("keeps a recording held between the purge's selection and its shredding", async () => {
      await recorded('S1race0000', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      await recorded('S2race0000', 'short', T0 - 40 * DAY);
      const run = await purgeExpired(a, { dryRun: false }, signer, {
        selected: async (ids) => {
          expect(ids).toEqual(['S1race0000', 'S2race0000']);
          await placeHold(ctx(other(), 'os:counsel'), 'S1race0000', 'placed mid-purge');
        },
      });
      expect(run.purged.map((p) => p.sessionId)).toEqual(['S2race0000']);
      expect(run.skipped).toEqual([{ sessionId: 'S1race0000', code: 'TG_ERR_RECORDING_HELD', why: expect.stringContaining('legal hold') }]);
      expect((await a.recordings.get('S1race0000'))!.purged_at).toBeNull();
      expect(existsSync(recordingPath(recDir, 'S1race0000'))).toBe(true);
    });

    it('a hold being placed on another node holds the purge off until it commits, and then wins', async () => {
      await recorded('S1lock0000', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      const node = ctx(other(), 'os:counsel');
      let commit!: () => void;
      const committing = new Promise<void>((r) => (commit = r));
      let locked!: () => void;
      const holding = new Promise<void>((r) => (locked = r));
      // Node B places a hold in a transaction that stays open, holding the recording's lock.
      const hold = node.transaction(async () => {
        await node.recordings.lock('S1lock0000');
        await node.recordings.hold('S1lock0000', 'slow hold', node.actor, clock.now());
        locked();
        await committing;
      });
      await holding;
      let purgeDone = false;
      const purge = purgeExpired(a, { dryRun: false }, signer).then((r) => ((purgeDone = true), r));
      // On PostgreSQL the purge now waits on the advisory lock; on SQLite on the open write transaction.
      const waiting = await engine.waitingOnLocks();
      if (waiting !== null) await waitUntil(async () => (await engine.waitingOnLocks()) === 1, 'the purge to wait on the lock');
      expect(purgeDone).toBe(false);
      commit();
      await hold;
      const run = await purge;
      expect(run.purged).toEqual([]);
      // PostgreSQL: selected (reads do not wait), then kept by the re-check under the lock.
      // SQLite: even the selection waited for the hold's write transaction, and saw the hold.
      if (waiting !== null) expect(run.skipped.map((s) => s.code)).toEqual(['TG_ERR_RECORDING_HELD']);
      else expect(run.held.map((v) => v.sessionId)).toEqual(['S1lock0000']);
      expect((await a.recordings.get('S1lock0000'))!.wrapped_key.length).toBeGreaterThan(0);
    });

    it('rotation leaves a purged recording keyless; a tombstone altered or missing is tampered, never purged', async () => {
      await recorded('S1tomb0000', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      await recorded('S2tomb0000', 'short', T0 - 40 * DAY);
      await purgeExpired(a, { dryRun: false }, signer);
      const rotated = new MasterKeyProvider(randomBytes(32), [masterKey]);
      expect(await a.recordings.rewrapAll(rotated)).toBe(0);
      expect((await a.recordings.get('S1tomb0000'))!.wrapped_key.length).toBe(0);

      const row = (await a.recordings.tombstoneRow('S1tomb0000'))!;
      const data = JSON.parse(row.data) as Record<string, unknown>;
      await sql.run('UPDATE audit_events SET data = ? WHERE id = ?', [JSON.stringify({ ...data, reason: 'something nicer' }), row.id]);
      expect(await verifyStored(a, 'S1tomb0000', signer.publicKeyPem, false)).toMatchObject({ status: 'tampered', problem: { reason: 'bad-tombstone' } });
      await sql.run('UPDATE audit_events SET data = ? WHERE id = ?', [row.data, row.id]);
      expect((await verifyStored(a, 'S1tomb0000', signer.publicKeyPem, false)).status).toBe('purged');
      expect((await verifyStored(a, 'S1tomb0000', testSigner().publicKeyPem, false)).problem?.detail).toContain('does not verify with the audit public key');
      // A recording marked purged without its tombstone (the audit row gone from the index) is not a purge.
      await sql.run('UPDATE recordings SET purge_audit_id = NULL WHERE session_id = ?', ['S2tomb0000']);
      expect(await verifyStored(a, 'S2tomb0000', signer.publicKeyPem, false)).toMatchObject({ status: 'tampered', problem: { reason: 'bad-tombstone' } });
    });

    it.runIf(engine.name === 'SQLite')('leaves no copy of the wrapped key in the database file or its WAL', async () => {
      await recorded('S1bytes000', 'short', T0 - 40 * DAY, { roleRetention: 30 * DAY });
      await recorded('S2bytes000', 'short', T0 - 20 * DAY); // not expired: its row shares the page
      const wrapped = (await a.recordings.get('S1bytes000'))!.wrapped_key;
      // Any 12 bytes of it: a freed cell is partly overwritten by the row's new version, the rest would stay.
      const pieces = Array.from({ length: wrapped.length - 11 }, (_, i) => wrapped.subarray(i, i + 12));
      const leaks = () =>
        readdirSync(dir)
          .filter((f) => f.startsWith('tg.db'))
          .map((f) => readFileSync(path.join(dir, f)))
          .filter((b) => pieces.some((p) => b.includes(p))).length;
      expect(leaks()).toBeGreaterThan(0);
      const run = await purgeExpired(a, { dryRun: false }, signer);
      expect(run.scrubbed).toBe(true);
      expect(leaks()).toBe(0);
    });
  });
}

describe('retention periods', () => {
  it('count a year as 366 days, so six years never end before six calendar years', () => {
    expect(parseRetention('6y')).toBe(SIX_YEARS_MS);
    expect(SIX_YEARS_MS).toBeGreaterThanOrEqual(Date.UTC(2030, 0, 1) - Date.UTC(2024, 0, 1)); // two leap days
    expect(parseRetention('2200d')).toBe(2200 * DAY);
    expect(parseRetention('12h')).toBe(12 * 3_600_000);
    for (const bad of ['0d', '0y', '101y', 'soon', '-1d', '']) expect(parseRetention(bad), bad).toBeNull();
    expect(formatRetention(SIX_YEARS_MS)).toBe('6y');
    expect(formatRetention(30 * DAY)).toBe('30d');
    expect(formatRetention(RETENTION_YEAR_MS * 10)).toBe('10y');
  });

  it('default to six years in the config, which takes years or days and refuses nonsense', () => {
    const base = { file: null, baseDir: '/tmp' };
    expect(buildConfig({}, base).recording.retention).toBe(SIX_YEARS_MS);
    expect(buildConfig({ recording: { retention: '10y' } }, base).recording.retention).toBe(10 * RETENTION_YEAR_MS);
    expect(() => buildConfig({ recording: { retention: 'forever' } }, base)).toThrow(/recording\.retention.*not a retention period/);
  });
});
