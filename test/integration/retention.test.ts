import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createPublicKey, verify } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { TestGateway, type TestUser } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/poll.js';
import { cliAsync, BIN } from '../helpers/cli.js';
import { PtyDriver } from '../helpers/pty-driver.js';
import { FakeClock } from '../../src/platform/clock.js';
import { loadMasterKey } from '../../src/crypto/master-key.js';
import { verifyRecording } from '../../src/recording/verify.js';
import { readTombstone, tombstoneSigned } from '../../src/audit/tombstone.js';

const DAY = 86_400_000;

interface Listed {
  sessionId: string;
  role: string;
  status: string;
  retention: string;
  holds: number;
  holdList: { id: number; reason: string; placedBy: string; releasedAt: string | null }[];
}

/**
 * Which of `files` hold any 16 bytes of `secret`. Read in a child process: closing a descriptor
 * of the database file in this one would drop the POSIX locks the in-process gateway's SQLite
 * connections hold on it (locks are per process), and the next CLI to close would take itself
 * for the last connection and reset the WAL under them.
 */
function filesHolding(files: string[], secret: Buffer): string[] {
  const script =
    "const fs = require('fs'); const s = Buffer.from(process.argv[1], 'hex');" +
    'for (const f of process.argv.slice(2)) { const b = fs.readFileSync(f);' +
    'for (let i = 0; i + 16 <= s.length; i++) if (b.includes(s.subarray(i, i + 16))) { console.log(f); break; } }';
  return execFileSync(process.execPath, ['-e', script, secret.toString('hex'), ...files])
    .toString()
    .split('\n')
    .filter(Boolean);
}

/**
 * Retention, legal hold and provable deletion through the real CLI, on recordings of real
 * sessions. The gateway's clock runs 40 days behind, so sessions recorded now ended 40 days ago
 * for the CLI (which reads the real clock): a 30-day role's recordings are past retention.
 */
describe('retention, legal hold and provable deletion', () => {
  let t: TestGateway;
  let alice: TestUser;
  let bob: TestUser;
  let heldId = '';
  let purgedId = '';
  let keptId = '';
  let beforePurge: { copy: string; wrapped: Buffer; keyId: string; chunks: number; head: string };
  const run = (...args: string[]) => cliAsync([...args, ...t.cliConfig()]);
  const listed = async (...flags: string[]) => JSON.parse((await run('recordings', 'list', '--json', ...flags)).stdout) as Listed[];

  /** One session of `u`: a command, a durable chunk, logout, sealed; returns its id. */
  async function record(u: TestUser, text: string): Promise<string> {
    const d = await t.login(u);
    await t.run(d, `echo ${text}-$((40+2))`, `${text}-42`);
    t.clock.advance(1000); // the flush interval, on the gateway's clock
    const id = String((await t.audit('session.start')).filter((e) => e.data.user === u.name).at(-1)!.data.sessionId);
    await waitUntil(async () => ((await t.admin.recordings.get(id))?.chunks ?? 0) >= 1, 'a durable chunk');
    d.kill();
    await waitUntil(async () => (await t.admin.recordings.get(id))?.state === 'sealed', 'recording sealed');
    return id;
  }

  beforeAll(async () => {
    t = new TestGateway();
    (t as unknown as { clock: FakeClock }).clock = new FakeClock(Math.floor((Date.now() - 40 * DAY) / 30_000) * 30_000 + 1_000);
    await t.start();
    const add = await run('role', 'add', 'brief', '--retention', '30d');
    expect([add.status, add.stderr]).toEqual([0, '']);
    expect((await run('role', 'add', 'bad', '--retention', 'forever')).status).toBe(2);
    alice = await t.user('alice', 'brief');
    bob = await t.user('bob', 'ops');
    heldId = await record(alice, 'FIRST');
    purgedId = await record(alice, 'SECOND');
    keptId = await record(bob, 'THIRD');
  }, 120_000);
  afterAll(() => t.stop());

  it("keeps each role's retention with its recordings; a later role edit changes only later ones", async () => {
    const roles = JSON.parse((await run('role', 'list', '--json')).stdout) as { name: string; retention: string }[];
    expect(roles.map((r) => [r.name, r.retention])).toEqual(
      expect.arrayContaining([
        ['brief', '30d'],
        ['ops', '6y (default)'],
      ]),
    );
    expect((await run('role', 'edit', 'brief', '--retention', '6y')).status).toBe(0);
    const all = await listed();
    expect(all.map((v) => [v.sessionId, v.role, v.retention, v.status])).toEqual([
      [heldId, 'brief', '30d', 'expired'],
      [purgedId, 'brief', '30d', 'expired'],
      [keptId, 'ops', '6y', 'kept'],
    ]);
    expect((await listed('--expired')).map((v) => v.sessionId)).toEqual([heldId, purgedId]);
  });

  it('holds with a reason and an actor; the compliance report lists holds and warns of recordings past retention', async () => {
    const h = await run('recordings', 'hold', heldId, '--reason', 'matter 2026-114');
    expect(h.stdout).toMatch(new RegExp(`^hold \\d+ placed on ${heldId} by os:root: matter 2026-114\\n$`));
    expect((await run('recordings', 'hold', heldId)).status).toBe(2); // --reason is required
    const held = await listed('--held');
    expect(held.map((v) => [v.sessionId, v.status, v.holds])).toEqual([[heldId, 'held', 1]]);
    expect(held[0]!.holdList).toEqual([expect.objectContaining({ reason: 'matter 2026-114', placedBy: 'os:root', releasedAt: null })]);

    const rep = JSON.parse((await run('compliance', 'report', '--json')).stdout) as { checks: { id: string; pass: boolean; evidence: string }[] };
    const check = rep.checks.find((c) => c.id === 'retention')!;
    expect(check.pass).toBe(true);
    expect(check.evidence).toContain('per role: brief 6y, ops 6y (default)');
    expect(check.evidence).toMatch(new RegExp(`legal holds: 1 standing on 1 recordings, oldest \\d+ on ${heldId} since `));
    expect(check.evidence).toContain('WARNING: 1 recordings past retention not yet purged');
    expect(check.evidence).toContain('purges: 0');
  });

  it('a dry run lists what would go and changes nothing', async () => {
    const before = await t.admin.recordings.get(purgedId);
    const auditRows = await t.admin.auditEvents.maxId();
    const dry = await run('recordings', 'purge', '--expired', '--dry-run');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain(`would purge ${purgedId}: role brief, retention 30d`);
    expect(dry.stdout).toContain(`held ${heldId}: past retention, 1 hold(s) standing: not purged`);
    expect(dry.stdout).toContain('1 would be purged (dry run: nothing changed), 1 held');
    expect(await t.admin.recordings.get(purgedId)).toEqual(before);
    expect(existsSync(before!.file)).toBe(true);
    expect(await t.admin.auditEvents.maxId()).toBe(auditRows);
  });

  it('purges: the key first, so even a copy of the file taken before cannot be decrypted; the held one survives', async () => {
    const row = (await t.admin.recordings.get(purgedId))!;
    const copy = path.join(t.dir, 'copy.tgrec');
    copyFileSync(row.file, copy);
    beforePurge = { copy, wrapped: Buffer.from(row.wrapped_key), keyId: row.key_id, chunks: row.chunks, head: row.chain_head };
    // Before the purge the master key opens the copy: the wrapped data key is all it needs.
    const keys = loadMasterKey(t.config.paths.keysDir, { create: false }).provider;
    const dataKey = keys.open(row.wrapped_key, `tmuxgate:recording:${purgedId}`, row.key_id);
    const pem = readFileSync(path.join(t.config.paths.keysDir, 'audit_ed25519.pub.pem'), 'utf8');
    const db = { sessionState: 'closed' as const, chunks: row.chunks, head: row.chain_head };
    expect(verifyRecording({ sessionId: purgedId, file: readFileSync(copy), dataKey, publicKeyPem: pem, db })).toMatchObject({
      status: 'intact',
      decrypted: true,
    });

    const dbDir = path.dirname(t.config.paths.dbFile);
    const dbFiles = () =>
      readdirSync(dbDir)
        .filter((f) => f.startsWith(path.basename(t.config.paths.dbFile)))
        .map((f) => path.join(dbDir, f));
    expect(filesHolding(dbFiles(), row.wrapped_key)).not.toEqual([]);

    const p = await run('recordings', 'purge', '--expired');
    expect(p.status).toBe(0);
    expect(p.stdout).toMatch(
      new RegExp(
        `purged ${purgedId}: data key destroyed, local file removed; signed tombstone in audit row \\d+ \\(${row.chunks} chunks ending ${row.chain_head.slice(0, 12)}, role brief, retention 30d`,
      ),
    );
    expect(p.stdout).toContain(`held ${heldId}: past retention, 1 hold(s) standing: not purged`);

    const after = (await t.admin.recordings.get(purgedId))!;
    expect(after.wrapped_key.length).toBe(0);
    expect(existsSync(row.file)).toBe(false);
    expect(existsSync(row.file.replace(/\.tgrec$/, '.tgkf'))).toBe(false);
    expect(() => keys.open(after.wrapped_key, `tmuxgate:recording:${purgedId}`, beforePurge.keyId)).toThrow(/TG_ERR_MASTER_KEY_MISMATCH|malformed/);
    // Nowhere in the store's files is the wrapped key left (nor any 16 bytes of it): nothing the master key could open.
    expect(filesHolding(dbFiles(), beforePurge.wrapped)).toEqual([]);
    expect((await t.admin.recordings.get(heldId))!.wrapped_key.length).toBeGreaterThan(0);
  });

  it('replay and export of the purged session refuse with one coded line naming the purge, even with the old file put back', async () => {
    copyFileSync(beforePurge.copy, (await t.admin.recordings.get(purgedId))!.file);
    const e = await run('export', purgedId);
    expect(e.status).toBe(3);
    expect(e.stdout).toBe('');
    expect(e.stderr).toMatch(
      new RegExp(
        `^tmuxgate: TG_ERR_RECORDING_PURGED: recording ${purgedId} was purged at \\S+ by os:root \\(retention period ended\\): its data key is destroyed and it cannot be read; signed tombstone: audit row \\d+ \\(tmuxgate verify ${purgedId}\\)\\n$`,
      ),
    );
    const p = new PtyDriver(process.execPath, [BIN, 'replay', purgedId, ...t.cliConfig()], { PATH: process.env.PATH!, HOME: t.dir, TERM: 'xterm-256color' });
    expect(await p.waitExit()).toBe(3);
    expect(p.text).toContain(`TG_ERR_RECORDING_PURGED: recording ${purgedId} was purged`);
    const search = JSON.parse((await run('search', 'SECOND-42', '--json')).stdout) as { session: string }[];
    expect(search.map((h) => h.session)).not.toContain(purgedId);
  });

  it('verify reports "purged (signed tombstone)" with exit 0, and the tombstone verifies with the audit public key alone', async () => {
    const v = await run('verify', purgedId);
    expect(v.status).toBe(0);
    expect(v.stdout).toContain(`${purgedId}: purged (signed tombstone): audit row`);
    expect(v.stdout).toContain(
      `by os:root: retention period ended; ${beforePurge.chunks} chunks ending ${beforePurge.head.slice(0, 12)}; role brief, retention 30d`,
    );
    const pub = path.join(t.dir, 'audit.pub.pem');
    writeFileSync(pub, (await run('audit', 'pubkey')).stdout);
    const pk = await run('verify', purgedId, '--public-key', pub, '--json');
    expect([pk.status, JSON.parse(pk.stdout)]).toEqual([
      0,
      expect.objectContaining({ status: 'purged', problem: null, tombstone: expect.objectContaining({ chunks: beforePurge.chunks }) }),
    ]);
    const all = await run('verify', '--all');
    expect(all.status).toBe(0);
    expect(all.stdout).toContain('3 recordings: 2 intact, 0 unsealed (live or interrupted), 1 purged (signed tombstone), 0 tampered');

    // Off the gateway: the exported audit line and the public key file are all a verifier needs.
    const lines = (await run('audit', 'export')).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
    const tomb = lines.filter((l) => l.type === 'recording.purged');
    expect(tomb).toHaveLength(1);
    const t0 = readTombstone(tomb[0]!.data)!;
    expect(t0.tombstone).toMatchObject({
      sessionId: purgedId,
      chunks: beforePurge.chunks,
      finalHash: beforePurge.head,
      role: 'brief',
      retentionMs: 30 * DAY,
      by: 'os:root',
    });
    expect(verify(null, tombstoneSigned(t0.tombstone), createPublicKey(readFileSync(pub, 'utf8')), t0.signature)).toBe(true);
    const forged = { ...t0.tombstone, reason: 'routine' };
    expect(verify(null, tombstoneSigned(forged), createPublicKey(readFileSync(pub, 'utf8')), t0.signature)).toBe(false);
  });

  it('refuses what it must: an unexpired recording, a purged one, a hold on a purged one; then release and purge work', async () => {
    const early = await run('recordings', 'purge', keptId, '--reason', 'tidy up');
    expect(early.status).toBe(4);
    expect(early.stderr).toMatch(
      /^tmuxgate: TG_ERR_RECORDING_NOT_EXPIRED: recording \S+ is kept until \S+ \(role ops, retention 6y\); tmuxgate never destroys a recording before its retention ends\n$/,
    );
    expect((await run('recordings', 'purge', keptId, '--force-before-expiry', '--reason', 'x')).status).toBe(2);
    const held = await run('recordings', 'purge', heldId, '--reason', 'now');
    expect([held.status, held.stderr]).toEqual([4, expect.stringContaining('TG_ERR_RECORDING_HELD')]);
    expect((await run('recordings', 'purge', purgedId, '--reason', 'again')).status).toBe(3);
    expect((await run('recordings', 'hold', purgedId, '--reason', 'late')).status).toBe(3);
    expect((await run('recordings', 'purge', heldId)).status).toBe(2); // one recording needs --reason

    const r = await run('recordings', 'release', heldId, '--reason', 'matter closed');
    expect(r.stdout).toMatch(new RegExp(`^released hold \\d+ on ${heldId}\\n$`));
    const p = await run('recordings', 'purge', heldId, '--reason', 'retention ended, hold released');
    expect(p.status).toBe(0);
    expect(p.stdout).toContain(`purged ${heldId}: data key destroyed, local file removed`);
    expect((await run('verify', heldId)).stdout).toContain('purged (signed tombstone)');
    expect((await run('sessions', 'list', '--json')).stdout).toContain('"recording": "purged"');
  });

  it('audits every step with its actor and reason, and the audit chain still verifies', async () => {
    const ev = async (type: string) => (await t.audit(type)).map((e): Record<string, unknown> => ({ actor: e.actor, ...e.data }));
    expect(await ev('recording.hold')).toEqual([expect.objectContaining({ actor: 'os:root', sessionId: heldId, reason: 'matter 2026-114' })]);
    expect(await ev('recording.release')).toEqual([expect.objectContaining({ actor: 'os:root', sessionId: heldId, reason: 'matter closed' })]);
    expect((await ev('recording.purged')).map((e) => [e.actor, e.sessionId, e.reason])).toEqual([
      ['os:root', purgedId, 'retention period ended'],
      ['os:root', heldId, 'retention ended, hold released'],
    ]);
    const removed = (await ev('admin.change')).filter((e) => e.action === 'recording.files-removed').map((e) => e.target);
    expect(removed).toEqual([purgedId, heldId]);
    const av = await run('audit', 'verify');
    expect(av.status).toBe(0);
    const rep = JSON.parse((await run('compliance', 'report', '--json')).stdout) as { checks: { id: string; evidence: string }[] };
    const ret = rep.checks.find((c) => c.id === 'retention')!.evidence;
    expect(ret).toMatch(new RegExp(`purges: 2, last ${heldId} at \\S+ by os:root`));
    expect(ret).toContain('legal holds: 0 standing');
    expect(ret).toContain('no recording past retention awaits purging');
    expect(rep.checks.find((c) => c.id === 'integrity')!.evidence).toContain('2 purged under retention, each with a signed tombstone that verifies');
  });
});
