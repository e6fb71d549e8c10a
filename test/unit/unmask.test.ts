import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Sql } from '../../src/store/sql.js';
import { buildConfig } from '../../src/config/load.js';
import { buildStores } from '../../src/services/stores.js';
import type { AdminContext } from '../../src/admin/context.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';
import { FakeClock } from '../../src/platform/clock.js';
import { verifyAuditChain } from '../../src/audit/log.js';
import { activeGrant, approveUnmask, denyUnmask, listUnmask, noteUnmaskedView, principalOf, requestUnmask, revokeUnmask } from '../../src/admin/unmask.js';
import { postgresEngine, sqliteEngine } from '../helpers/engines.js';
import { sessionRow } from '../helpers/recording.js';

const H = 3_600_000;
const ALICE = 'os:alice(as root)';
const BOB = 'os:bob(as root)';
const CAROL = 'os:carol';
const master = new MasterKeyProvider(randomBytes(32));

/** The four-eyes rules of admin/unmask.ts on both engines, time moved by a FakeClock. */
for (const engine of [sqliteEngine(), postgresEngine('unmask')]) {
  describe(`four-eyes unmask on ${engine.name}`, () => {
    let sql: Sql;
    let clock: FakeClock;
    const as = (actor: string, s: Sql = sql, unmask: Record<string, unknown> = {}): AdminContext => {
      const config = buildConfig({ unmask }, { file: null, baseDir: '/nonexistent' });
      return { ...buildStores(config, clock, s, master), actor, close: async () => {} };
    };
    const session = async (id: string) => as(ALICE).sessions.start(sessionRow(id, clock.now()));
    /** Audit rows of the unmask workflow as [type, actor, fields]. */
    const trail = async () =>
      (await as(ALICE).auditEvents.recent())
        .filter((r) => r.type.startsWith('unmask.'))
        .map((r) => [r.type, r.actor, JSON.parse(r.data) as Record<string, unknown>] as const);

    beforeEach(async () => {
      sql = await engine.fresh();
      clock = new FakeClock(Date.UTC(2026, 10, 24, 9));
      await session('S1unmask00');
      await session('S2unmask00');
    }, 30_000);
    afterAll(() => engine.done(), 30_000);

    it('refuses the requester approving their own request, coded and audited, under any account', async () => {
      const r = await requestUnmask(as(ALICE), 'S1unmask00', '  INC-4411: wrong patient merged ', 2 * H);
      expect(r).toMatchObject({
        session_id: 'S1unmask00',
        requested_by: ALICE,
        reason: 'INC-4411: wrong patient merged',
        duration_ms: 2 * H,
        state: 'pending',
      });
      await expect(approveUnmask(as(ALICE), r.id)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_SELF_APPROVAL', exitStatus: 6 });
      // The same person without sudo, or through sudo as another account, is still the requester.
      await expect(approveUnmask(as('os:alice'), r.id)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_SELF_APPROVAL' });
      await expect(approveUnmask(as('os:alice(as tmuxgate)'), r.id)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_SELF_APPROVAL' });
      expect(await activeGrant(as(ALICE), ALICE, 'S1unmask00', clock.now())).toBeNull();
      expect(await as(ALICE).unmask.grants()).toEqual([]);
      expect((await as(ALICE).unmask.getRequest(r.id))!.state).toBe('pending');
      const refused = (await trail()).filter(([t]) => t === 'unmask.refused');
      expect(refused.map(([, actor, d]) => [actor, d.why, d.requestId, d.requestedBy, d.sessionId])).toEqual([
        [ALICE, 'self-approval', r.id, ALICE, 'S1unmask00'],
        ['os:alice', 'self-approval', r.id, ALICE, 'S1unmask00'],
        ['os:alice(as tmuxgate)', 'self-approval', r.id, ALICE, 'S1unmask00'],
      ]);
      expect(principalOf('os:alice(as root)')).toBe('os:alice');
      expect(principalOf('alice')).toBe('alice');
    });

    it('a second admin approves: a grant from approval, for the requester only, on that session only', async () => {
      const r = await requestUnmask(as(ALICE), 'S1unmask00', 'INC-1', 2 * H);
      clock.advance(H); // the grant's time counts from approval, not from the request
      const approvedAt = clock.now();
      const g = await approveUnmask(as(BOB), r.id);
      expect(g).toMatchObject({
        request_id: r.id,
        session_id: 'S1unmask00',
        grantee: ALICE,
        approved_by: BOB,
        approved_at: approvedAt,
        expires_at: approvedAt + 2 * H,
      });
      const grant = await activeGrant(as(CAROL), ALICE, 'S1unmask00', clock.now());
      expect(grant).toEqual({ id: g.id, sessionId: 'S1unmask00', reason: 'INC-1', expiresAt: approvedAt + 2 * H, approvedBy: BOB });
      // The requester under another account of theirs is the requester.
      expect((await activeGrant(as(CAROL), 'os:alice', 'S1unmask00', clock.now()))?.id).toBe(g.id);
      // Nobody else: not the approver, not a third admin, not an unnamed root, not on another session.
      expect(await activeGrant(as(CAROL), BOB, 'S1unmask00', clock.now())).toBeNull();
      expect(await activeGrant(as(CAROL), CAROL, 'S1unmask00', clock.now())).toBeNull();
      expect(await activeGrant(as(CAROL), 'os:root', 'S1unmask00', clock.now())).toBeNull();
      expect(await activeGrant(as(CAROL), ALICE, 'S2unmask00', clock.now())).toBeNull();
      // Decided once.
      await expect(approveUnmask(as(CAROL), r.id)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_NOT_PENDING', exitStatus: 4 });
      await expect(denyUnmask(as(CAROL), r.id, null)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_NOT_PENDING' });
      expect((await listUnmask(as(CAROL))).map((e) => [e.requestId, e.state, e.grantId, e.decidedBy])).toEqual([[r.id, 'active', g.id, BOB]]);

      // Every unmasked view names the grant and its reason.
      await noteUnmaskedView(as(ALICE).audit, ALICE, grant!, 'S1unmask00', 'replay');
      await expect(noteUnmaskedView(as(ALICE).audit, ALICE, grant!, 'S2unmask00', 'export')).rejects.toThrow(/not S2unmask00/);
      expect((await trail()).map(([t, actor, d]) => [t, actor, d.grantId ?? null, d.reason ?? null])).toEqual([
        ['unmask.request', ALICE, null, 'INC-1'],
        ['unmask.approve', BOB, g.id, 'INC-1'],
        ['unmask.refused', CAROL, null, null],
        ['unmask.view', ALICE, g.id, 'INC-1'],
      ]);
      expect((await trail()).at(-1)![2]).toEqual({
        grantId: g.id,
        sessionId: 'S1unmask00',
        what: 'replay',
        reason: 'INC-1',
        approvedBy: BOB,
        expiresAt: approvedAt + 2 * H,
      });
      expect((await verifyAuditChain(as(ALICE).auditEvents)).problem).toBeNull();
    });

    it('a grant ends when it expires, and when it is revoked', async () => {
      const r1 = await requestUnmask(as(ALICE), 'S1unmask00', 'INC-1'); // the default: 1h
      const g1 = await approveUnmask(as(BOB), r1.id);
      expect(g1.expires_at - g1.approved_at).toBe(H);
      clock.advance(H - 1);
      expect((await activeGrant(as(BOB), ALICE, 'S1unmask00', clock.now()))?.id).toBe(g1.id);
      clock.advance(1);
      expect(await activeGrant(as(BOB), ALICE, 'S1unmask00', clock.now())).toBeNull();
      await expect(revokeUnmask(as(BOB), g1.id, null)).rejects.toMatchObject({
        code: 'TG_ERR_UNMASK_NOT_IN_FORCE',
        message: expect.stringMatching(/expired at/),
      });

      const r2 = await requestUnmask(as(ALICE), 'S1unmask00', 'INC-2', 8 * H);
      const g2 = await approveUnmask(as(CAROL), r2.id);
      clock.advance(10 * 60_000);
      expect((await activeGrant(as(BOB), ALICE, 'S1unmask00', clock.now()))?.id).toBe(g2.id);
      const revoked = await revokeUnmask(as(BOB), g2.id, 'incident closed');
      expect(revoked).toMatchObject({ revoked_at: clock.now(), revoked_by: BOB, revoke_reason: 'incident closed' });
      expect(await activeGrant(as(BOB), ALICE, 'S1unmask00', clock.now())).toBeNull();
      await expect(revokeUnmask(as(BOB), g2.id, null)).rejects.toMatchObject({
        code: 'TG_ERR_UNMASK_NOT_IN_FORCE',
        message: expect.stringMatching(/was revoked/),
      });
      await expect(revokeUnmask(as(BOB), 999, null)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_GRANT_NOT_FOUND', exitStatus: 3 });
      expect((await listUnmask(as(BOB))).map((e) => e.state)).toEqual(['expired', 'revoked']);
      expect(await listUnmask(as(BOB), { open: true })).toEqual([]);
      const revokes = (await trail()).filter(([t]) => t === 'unmask.revoke');
      expect(revokes).toEqual([['unmask.revoke', BOB, { grantId: g2.id, sessionId: 'S1unmask00', grantee: ALICE, reason: 'incident closed' }]]);
    });

    it('a request nobody decides lapses; a denied one cannot be approved', async () => {
      const r1 = await requestUnmask(as(ALICE), 'S1unmask00', 'INC-1');
      expect(r1.expires_at - r1.requested_at).toBe(24 * H);
      clock.advance(24 * H);
      await expect(approveUnmask(as(BOB), r1.id)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_NOT_PENDING', message: expect.stringMatching(/lapsed/) });
      await expect(denyUnmask(as(BOB), r1.id, null)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_NOT_PENDING' });
      expect(await as(BOB).unmask.grants()).toEqual([]);

      const r2 = await requestUnmask(as(ALICE), 'S2unmask00', 'INC-2');
      expect((await denyUnmask(as(BOB), r2.id, 'the redacted view answers it')).state).toBe('denied');
      await expect(approveUnmask(as(CAROL), r2.id)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_NOT_PENDING' });
      await expect(approveUnmask(as(CAROL), 4242)).rejects.toMatchObject({ code: 'TG_ERR_UNMASK_REQUEST_NOT_FOUND', exitStatus: 3 });
      // The requester may withdraw their own request.
      const r3 = await requestUnmask(as(ALICE), 'S2unmask00', 'INC-3');
      expect((await denyUnmask(as(ALICE), r3.id, null)).decided_by).toBe(ALICE);
      expect((await listUnmask(as(BOB))).map((e) => e.state)).toEqual(['lapsed', 'denied', 'denied']);
      expect((await listUnmask(as(BOB), { sessionId: 'S1unmask00' })).map((e) => e.requestId)).toEqual([r1.id]);
      expect((await trail()).map(([t, actor, d]) => [t, actor, d.why ?? null])).toEqual([
        ['unmask.request', ALICE, null],
        ['unmask.refused', BOB, 'expired'],
        ['unmask.request', ALICE, null],
        ['unmask.deny', BOB, null],
        ['unmask.refused', CAROL, 'not-pending'],
        ['unmask.refused', CAROL, 'not-found'],
        ['unmask.request', ALICE, null],
        ['unmask.deny', ALICE, null],
      ]);
    });

    it('refuses bad requests: reason, duration, session, and a root that names nobody', async () => {
      const bad = async (p: Promise<unknown>, code: string, msg: RegExp) => expect(p).rejects.toMatchObject({ code, message: expect.stringMatching(msg) });
      await bad(requestUnmask(as(ALICE), 'S1unmask00', '   '), 'TG_ERR_INVALID_ARGUMENT', /must not be empty/);
      await bad(requestUnmask(as(ALICE), 'S1unmask00', 'x'.repeat(501)), 'TG_ERR_INVALID_ARGUMENT', /longer than 500/);
      await bad(requestUnmask(as(ALICE), 'S1unmask00', 'see \x1b]0;owned\x07'), 'TG_ERR_INVALID_ARGUMENT', /control characters/);
      await bad(requestUnmask(as(ALICE), 'S1unmask00', 'abc\u202edef'), 'TG_ERR_INVALID_ARGUMENT', /control characters/);
      await bad(requestUnmask(as(ALICE), 'S1unmask00', 'ok', 8 * H + 1), 'TG_ERR_INVALID_ARGUMENT', /longer than unmask.maxDuration \(8h\)/);
      await bad(requestUnmask(as(ALICE), 'S1unmask00', 'ok', 0), 'TG_ERR_INVALID_ARGUMENT', /positive/);
      await bad(requestUnmask(as(ALICE, sql, { maxDuration: '30m', defaultDuration: '10m' }), 'S1unmask00', 'ok', H), 'TG_ERR_INVALID_ARGUMENT', /\(30m\)/);
      await bad(requestUnmask(as(ALICE), 'S9nosuch00', 'ok'), 'TG_ERR_SESSION_NOT_FOUND', /no session/);
      await bad(requestUnmask(as('os:root'), 'S1unmask00', 'ok'), 'TG_ERR_UNMASK_ANONYMOUS', /sudo as yourself/);
      expect(() => buildConfig({ unmask: { defaultDuration: '9h' } }, { file: null, baseDir: '/' })).toThrow(/unmask.defaultDuration/);
      expect(await as(ALICE).unmask.requests()).toEqual([]);

      // An unnamed root approves nothing either (an admin who asked through sudo could approve from `su -`).
      const r = await requestUnmask(as(ALICE), 'S1unmask00', 'ok');
      await bad(approveUnmask(as('os:root'), r.id), 'TG_ERR_UNMASK_ANONYMOUS', /named admin/);
      await bad(approveUnmask(as('os:root(as tmuxgate)'), r.id), 'TG_ERR_UNMASK_ANONYMOUS', /named admin/);
      expect((await trail()).map(([t, actor, d]) => [t, actor, d.action ?? null, d.why ?? null])).toEqual([
        ['unmask.refused', 'os:root', 'request', 'anonymous'],
        ['unmask.request', ALICE, null, null],
        ['unmask.refused', 'os:root', 'approve', 'anonymous'],
        ['unmask.refused', 'os:root(as tmuxgate)', 'approve', 'anonymous'],
      ]);
    });

    it('two admins approving at once make one grant', async () => {
      const r = await requestUnmask(as(ALICE), 'S1unmask00', 'INC-1');
      const [s1, s2] = engine.more(2);
      const results = await Promise.allSettled([approveUnmask(as(BOB, s1), r.id), approveUnmask(as(CAROL, s2), r.id)]);
      expect(results.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect((results.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'TG_ERR_UNMASK_NOT_PENDING' });
      expect(await as(ALICE).unmask.grants()).toHaveLength(1);
      expect((await trail()).filter(([t]) => t === 'unmask.approve')).toHaveLength(1);
    });
  });
}
