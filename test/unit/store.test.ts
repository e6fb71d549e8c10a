import { afterEach, describe, expect, it } from 'vitest';
import { rmSync, statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { openStore } from '../../src/store/open.js';
import { buildConfig } from '../../src/config/load.js';
import { sourceFiles } from '../helpers/source.js';
import { SqliteSql } from '../../src/store/sqlite.js';
import { FakeClock } from '../../src/platform/clock.js';
import { Lockouts, lockDuration } from '../../src/auth/lockout.js';
import { AuditLog, verifyAuditChain } from '../../src/audit/log.js';
import { AuditEventRepo } from '../../src/store/audit-events.js';
import { LockoutRepo } from '../../src/store/lockouts.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import { TotpRepo } from '../../src/store/totp.js';
import { UserRepo } from '../../src/store/users.js';
import { tempDir } from '../helpers/gateway.js';
import { randomBytes } from 'node:crypto';

let dir = '';
let db: Db;
let sql: SqliteSql;
const open = () => {
  dir = tempDir('tgu-');
  db = openDb(path.join(dir, 'x.db'));
  sql = new SqliteSql(db);
  return db;
};
afterEach(async () => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('store', () => {
  it('creates the database 0600 in WAL mode with migrations recorded', async () => {
    open();
    expect(statSync(path.join(dir, 'x.db')).mode & 0o777).toBe(0o600);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version)).toContain(1);
  });

  it("finds a user's key by an index, not a scan of every enrolled key (the publickey step's read)", async () => {
    open();
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT * FROM public_keys WHERE user_id = ? AND key_blob = ?').all(1, Buffer.from('k')) as { detail: string }[];
    expect(plan.map((r) => r.detail).join('; ')).toMatch(/USING INDEX public_keys_user/);
  });

  it('syncs every commit to stable storage (synchronous FULL) on every connection the store opens', async () => {
    // Under NORMAL a power loss can roll back acknowledged audit events and TOTP spends (db.ts).
    const FULL = 2;
    open();
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL);
    const file = path.join(dir, 'x.db');
    for (const opts of [{ migrate: false }, { readonly: true }]) {
      // `tmuxgate migrate` opens with migrate: false; read-only has no caller yet but gets the same.
      const other = openDb(file, opts);
      expect([opts, other.pragma('synchronous', { simple: true })]).toEqual([opts, FULL]);
      other.close();
    }
    // The gateway and every admin CLI command (openAdmin) open through openStore.
    const store = await openStore(buildConfig({ dataDir: path.join(dir, 'store') }, { file: null, baseDir: dir }));
    expect((store as SqliteSql).db.pragma('synchronous', { simple: true })).toBe(FULL);
    await store.close();
    // And no other module opens a connection of its own that could skip the setting.
    const openers = sourceFiles().filter((f) => /new Database\(/.test(f.text));
    expect(openers.map((f) => f.rel)).toEqual(['store/db.ts']);
  });

  it('keeps TOTP secrets sealed: the raw row never contains the secret, and a wrong master key cannot open it', async () => {
    open();
    const key = new MasterKeyProvider(randomBytes(32));
    const users = new UserRepo(sql);
    const u = await users.add('alice', null, 0);
    const repo = new TotpRepo(sql, key);
    await repo.setPending(u.id, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0);
    expect((await repo.get(u.id))!.secret.reveal()).toBe('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    expect(String((await repo.get(u.id))!.secret)).toBe('<secret>');
    db.pragma('wal_checkpoint(TRUNCATE)');
    expect(readFileSync(path.join(dir, 'x.db')).includes(Buffer.from('JBSWY3DPEHPK3PXP'))).toBe(false);
    const other = new TotpRepo(sql, new MasterKeyProvider(randomBytes(32)));
    await expect(other.get(u.id)).rejects.toThrow(/TG_ERR_MASTER_KEY_MISMATCH|not loaded/);
  });

  it('spends a TOTP step only once, even when raced', async () => {
    open();
    const u = await new UserRepo(sql).add('alice', null, 0);
    const repo = new TotpRepo(sql, new MasterKeyProvider(randomBytes(32)));
    await repo.setPending(u.id, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0);
    expect(await repo.spendStep(u.id, 100)).toBe(true);
    expect(await repo.spendStep(u.id, 100)).toBe(false);
    expect(await repo.spendStep(u.id, 99)).toBe(false);
    expect(await repo.spendStep(u.id, 101)).toBe(true);
  });
});

describe('lockouts', () => {
  const policy = { maxFailures: 3, window: 60_000, baseDuration: 60_000, maxDuration: 3_600_000 };
  it('locks after N failures in the window, for a time that doubles with each lockout, then expires', async () => {
    open();
    const clock = new FakeClock();
    const l = new Lockouts(new LockoutRepo(sql), clock, { user: policy, address: policy });
    expect(await l.recordFailure('user', 'alice')).toBeNull();
    expect(await l.recordFailure('user', 'alice')).toBeNull();
    const first = (await l.recordFailure('user', 'alice'))!;
    expect(first.level).toBe(1);
    expect((await l.state('user', 'alice')).locked).toBe(true);
    expect((await l.state('user', 'bob')).locked).toBe(false);
    clock.advance(60_000);
    expect((await l.state('user', 'alice')).locked).toBe(false);
    await l.recordFailure('user', 'alice');
    await l.recordFailure('user', 'alice');
    const second = (await l.recordFailure('user', 'alice'))!;
    expect(second.level).toBe(2);
    expect(second.until - clock.now()).toBe(120_000);
    expect(lockDuration(policy, 10)).toBe(3_600_000);
    expect(await l.clear('user', 'alice')).toBe(true);
    expect((await l.state('user', 'alice')).locked).toBe(false);
  });
  it('forgets failures outside the window', async () => {
    open();
    const clock = new FakeClock();
    const l = new Lockouts(new LockoutRepo(sql), clock, { user: policy, address: policy });
    await l.recordFailure('address', '10.0.0.1');
    await l.recordFailure('address', '10.0.0.1');
    clock.advance(61_000);
    expect(await l.recordFailure('address', '10.0.0.1')).toBeNull();
  });
});

describe('audit chain', () => {
  it('verifies an intact chain and names an edited, deleted or reordered row', async () => {
    open();
    const log = new AuditLog(new AuditEventRepo(sql), new FakeClock());
    for (let i = 0; i < 5; i++) await log.emit('os:test', { type: 'admin.change', action: 'user.add', target: `u${i}` });
    expect((await verifyAuditChain(new AuditEventRepo(sql))).problem).toBeNull();
    db.prepare("UPDATE audit_events SET data = replace(data, 'u2', 'u9') WHERE id = 3").run();
    expect((await verifyAuditChain(new AuditEventRepo(sql))).problem).toMatchObject({ id: 3, problem: 'edited' });
    db.prepare("UPDATE audit_events SET data = replace(data, 'u9', 'u2') WHERE id = 3").run();
    db.prepare('DELETE FROM audit_events WHERE id = 2').run();
    expect((await verifyAuditChain(new AuditEventRepo(sql))).problem).toMatchObject({ id: 3, problem: 'broken-link' });
  });
  it('refuses events outside the union', async () => {
    open();
    const log = new AuditLog(new AuditEventRepo(sql), new FakeClock());
    await expect(log.emit('x', { type: 'made.up' } as never)).rejects.toThrow();
  });
});
