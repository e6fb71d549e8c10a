import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteSql } from '../../src/store/sqlite.js';
import { SessionRepo } from '../../src/store/sessions.js';
import { UnmaskRepo } from '../../src/store/unmask.js';
import { activeGrant } from '../../src/admin/unmask.js';
import { spawnSync } from 'node:child_process';
import { BIN, cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/gateway.js';
import { sessionRow } from '../helpers/recording.js';

/**
 * `tmuxgate unmask` through the real CLI binary, as the admins the CLI names: root run through
 * sudo by alice, bob or carol (SUDO_USER, as sudo sets it; the actor is os:<sudo user>(as root)),
 * and root with no sudo user. Every step, refusals included, is checked in the audit rows. The
 * passing of time is the store's: grants and requests are moved into the past in the database.
 */
describe('unmask CLI', { timeout: 120_000 }, () => {
  const dir = tempDir('tg-unmask-');
  const cfg = path.join(dir, 'config.yaml');
  const dbFile = path.join(dir, 'data', 'tmuxgate.db');
  const as = (who: string | null, ...args: string[]) => cli([...args, '--config', cfg], { env: who ? { SUDO_USER: who } : {} });
  const ALICE = 'os:alice(as root)';
  const BOB = 'os:bob(as root)';
  const CAROL = 'os:carol(as root)';
  /** Runs `fn` on the store file (closed again afterwards, so CLI processes never wait on it). */
  const withDb = async <T>(fn: (sql: SqliteSql, db: Database.Database) => Promise<T>): Promise<T> => {
    const db = new Database(dbFile);
    try {
      return await fn(new SqliteSql(db), db);
    } finally {
      db.close();
    }
  };
  const listed = (...extra: string[]) => JSON.parse(as('carol', 'unmask', 'list', '--json', ...extra).stdout) as Record<string, unknown>[];
  const grantFor = (actor: string, sessionId: string) => withDb((sql) => activeGrant({ unmask: new UnmaskRepo(sql) }, actor, sessionId, Date.now()));
  const oneLineError = (r: { stderr: string }, code: string) => {
    expect(r.stderr).toMatch(new RegExp(`^tmuxgate: ${code}: [^\\n]+\\n$`));
  };

  beforeAll(async () => {
    writeFileSync(cfg, 'dataDir: ./data\nkeysDir: ./keys\n');
    expect(as(null, 'init').status).toBe(0);
    await withDb(async (sql) => {
      const sessions = new SessionRepo(sql);
      for (const id of ['s_unmaskOne', 's_unmaskTwo']) await sessions.start(sessionRow(id, Date.now()));
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('shows an example in --help', async () => {
    for (const verb of ['request', 'approve']) {
      const r = cli(['unmask', verb, '--help']);
      expect([r.status, r.stdout.includes('Example:')], verb).toEqual([0, true]);
    }
  });

  it('one admin asks, the requester cannot approve, a second admin does; every step audited', async () => {
    // Bad requests: one coded line each, nothing stored.
    // Bad requests (the rules themselves are unit-tested): one coded line each, nothing stored.
    for (const flags of [
      ['--reason', '   '],
      ['--reason', 'ok', '--for', '9h'],
    ]) {
      const r = as('alice', 'unmask', 'request', 's_unmaskOne', ...flags);
      expect(r.status, flags.join(' ')).toBe(2);
      oneLineError(r, 'TG_ERR_INVALID_ARGUMENT');
    }
    expect(as('alice', 'unmask', 'request', 's_nosuch', '--reason', 'ok').status).toBe(3);
    const anon = as(null, 'unmask', 'request', 's_unmaskOne', '--reason', 'ok');
    expect(anon.status).toBe(6);
    oneLineError(anon, 'TG_ERR_UNMASK_ANONYMOUS');
    expect(await withDb(async (sql) => new UnmaskRepo(sql).requests())).toEqual([]);

    const req = as('alice', 'unmask', 'request', 's_unmaskOne', '--reason', 'INC-4411: wrong patient merged', '--for', '2h');
    expect(req.status).toBe(0);
    const reqId = Number(/^unmask request (\d+) for s_unmaskOne by os:alice\(as root\) \(2h once approved\)/.exec(req.stdout)![1]);

    const self = as('alice', 'unmask', 'approve', String(reqId));
    expect(self.status).toBe(6);
    oneLineError(self, 'TG_ERR_UNMASK_SELF_APPROVAL');
    expect(as(null, 'unmask', 'approve', String(reqId)).status).toBe(6); // root naming nobody
    expect(await grantFor(ALICE, 's_unmaskOne')).toBeNull();

    const ok = as('bob', 'unmask', 'approve', String(reqId));
    expect(ok.status).toBe(0);
    const grantId = Number(
      /^grant (\d+): os:alice\(as root\) may see s_unmaskOne unmasked until \S+Z \(approved by os:bob\(as root\); reason: INC-4411/.exec(ok.stdout)![1],
    );
    expect(as('carol', 'unmask', 'approve', String(reqId)).status).toBe(4);
    expect(as('carol', 'unmask', 'approve', '999').status).toBe(3);

    const [entry] = listed();
    expect(entry).toMatchObject({
      requestId: reqId,
      sessionId: 's_unmaskOne',
      requestedBy: ALICE,
      state: 'active',
      grantId,
      decidedBy: BOB,
      durationMs: 7_200_000,
    });
    expect(Date.parse(entry!.grantExpiresAt as string) - Date.parse(entry!.decidedAt as string)).toBe(7_200_000);
    expect(as('carol', 'unmask', 'list').stdout).toMatch(/^REQUEST\s+SESSION\s+BY\s+STATE\s+FOR\s+GRANT\s+APPROVER\s+UNTIL\s+REASON\n.*active\s+2h/);

    // The grant is the requester's, on that session only.
    expect((await grantFor(ALICE, 's_unmaskOne'))?.id).toBe(grantId);
    expect(await grantFor(BOB, 's_unmaskOne')).toBeNull();
    expect(await grantFor(CAROL, 's_unmaskOne')).toBeNull();
    expect(await grantFor(ALICE, 's_unmaskTwo')).toBeNull();

    // Revoked, it no longer works.
    expect(as('carol', 'unmask', 'revoke', String(grantId), '--reason', 'incident closed').status).toBe(0);
    expect(await grantFor(ALICE, 's_unmaskOne')).toBeNull();
    expect(as('carol', 'unmask', 'revoke', String(grantId)).status).toBe(4);
    expect(listed()[0]).toMatchObject({ state: 'revoked', revokedBy: CAROL, revokeReason: 'incident closed' });

    const trail = await withDb(async (_sql, db) =>
      (
        db.prepare("SELECT type, actor, data FROM audit_events WHERE type LIKE 'unmask.%' ORDER BY id").all() as { type: string; actor: string; data: string }[]
      ).map((r) => ({ type: r.type, actor: r.actor, ...(JSON.parse(r.data) as Record<string, unknown>) })),
    );
    expect(trail).toEqual([
      expect.objectContaining({ type: 'unmask.refused', actor: 'os:root', action: 'request', why: 'anonymous' }),
      expect.objectContaining({
        type: 'unmask.request',
        actor: ALICE,
        requestId: reqId,
        sessionId: 's_unmaskOne',
        reason: 'INC-4411: wrong patient merged',
        durationMs: 7_200_000,
      }),
      expect.objectContaining({ type: 'unmask.refused', actor: ALICE, action: 'approve', requestId: reqId, requestedBy: ALICE, why: 'self-approval' }),
      expect.objectContaining({ type: 'unmask.refused', actor: 'os:root', action: 'approve', requestId: reqId, why: 'anonymous' }),
      expect.objectContaining({ type: 'unmask.approve', actor: BOB, requestId: reqId, grantId, grantee: ALICE, reason: 'INC-4411: wrong patient merged' }),
      expect.objectContaining({ type: 'unmask.refused', actor: CAROL, requestId: reqId, why: 'not-pending' }),
      expect.objectContaining({ type: 'unmask.refused', actor: CAROL, requestId: 999, why: 'not-found' }),
      expect.objectContaining({ type: 'unmask.revoke', actor: CAROL, grantId, grantee: ALICE, reason: 'incident closed' }),
    ]);
    expect(as('carol', 'audit', 'verify').stdout).toContain('audit log intact');
  });

  it('an expired grant no longer works; a lapsed or denied request cannot be approved', async () => {
    const id = (out: string) => Number(/^unmask request (\d+)/.exec(out)![1]);
    const r1 = id(as('bob', 'unmask', 'request', 's_unmaskTwo', '--reason', 'INC-5').stdout);
    const g1 = Number(/^grant (\d+)/.exec(as('alice', 'unmask', 'approve', String(r1)).stdout)![1]);
    expect((await grantFor(BOB, 's_unmaskTwo'))?.id).toBe(g1);
    await withDb(async (_sql, db) => db.prepare('UPDATE unmask_grants SET expires_at = ? WHERE id = ?').run(Date.now() - 1, g1));
    expect(await grantFor(BOB, 's_unmaskTwo')).toBeNull();
    const late = as('carol', 'unmask', 'revoke', String(g1));
    expect(late.status).toBe(4);
    oneLineError(late, 'TG_ERR_UNMASK_NOT_IN_FORCE');

    const r2 = id(as('bob', 'unmask', 'request', 's_unmaskTwo', '--reason', 'INC-6').stdout);
    await withDb(async (_sql, db) => db.prepare('UPDATE unmask_requests SET expires_at = ? WHERE id = ?').run(Date.now() - 1, r2));
    const lapsed = as('alice', 'unmask', 'approve', String(r2));
    expect(lapsed.status).toBe(4);
    expect(lapsed.stderr).toMatch(/^tmuxgate: TG_ERR_UNMASK_NOT_PENDING: request \d+ lapsed at/);

    const r3 = id(as('bob', 'unmask', 'request', 's_unmaskTwo', '--reason', 'INC-7').stdout);
    expect(as('carol', 'unmask', 'deny', String(r3), '--reason', 'the redacted replay answers it').status).toBe(0);
    expect(as('alice', 'unmask', 'approve', String(r3)).status).toBe(4);
    expect(await grantFor(BOB, 's_unmaskTwo')).toBeNull();
    expect(listed('--session', 's_unmaskTwo').map((e) => [e.grantId, e.state])).toEqual([
      [g1, 'expired'],
      [null, 'lapsed'],
      [null, 'denied'],
    ]);
    const types = await withDb(async (_sql, db) =>
      (
        db.prepare("SELECT type, actor FROM audit_events WHERE type LIKE 'unmask.%' AND data LIKE '%s_unmaskTwo%' ORDER BY id").all() as {
          type: string;
          actor: string;
        }[]
      ).map((r) => `${r.type} ${r.actor}`),
    );
    expect(types).toEqual([
      `unmask.request ${BOB}`,
      `unmask.approve ${ALICE}`,
      `unmask.request ${BOB}`,
      `unmask.refused ${ALICE}`,
      `unmask.request ${BOB}`,
      `unmask.deny ${CAROL}`,
      `unmask.refused ${ALICE}`,
    ]);
  });

  it('where the kernel recorded a login (loginuid), SUDO_USER cannot name another person: the login is the actor', async () => {
    // As pam_loginuid does at login: the shell's loginuid is nobody's; SUDO_USER claims bob.
    const r = spawnSync(
      'sh',
      [
        '-c',
        'echo 65534 > /proc/self/loginuid && exec "$0" "$@"',
        process.execPath,
        BIN,
        'unmask',
        'request',
        's_unmaskTwo',
        '--reason',
        'INC-9',
        '--config',
        cfg,
      ],
      {
        env: { PATH: process.env.PATH!, HOME: '/root', SUDO_USER: 'bob' },
        encoding: 'utf8',
      },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^unmask request \d+ for s_unmaskTwo by os:nobody\(as root\) /);
  });
});
