import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { postgresEngine, sqliteEngine } from '../helpers/engines.js';
import { randomBytes } from 'node:crypto';
import type { Sql } from '../../src/store/sql.js';
import { UserRepo } from '../../src/store/users.js';
import { RoleRepo } from '../../src/store/roles.js';
import { KeyRepo } from '../../src/store/keys.js';
import { TotpRepo } from '../../src/store/totp.js';
import { SessionRepo } from '../../src/store/sessions.js';
import { RecordingRepo } from '../../src/store/recordings.js';
import { RecoveryCodeRepo } from '../../src/store/recovery-codes.js';
import { ShareRepo } from '../../src/store/shares.js';
import { KillRepo } from '../../src/store/kills.js';
import { GatewayStateRepo } from '../../src/store/gateway-state.js';
import { HostAccountRepo } from '../../src/store/host-accounts.js';
import { LockoutRepo } from '../../src/store/lockouts.js';
import { AuditEventRepo } from '../../src/store/audit-events.js';
import { NodeRepo } from '../../src/store/nodes.js';
import { PairServerRepo } from '../../src/store/pair-servers.js';
import { UnmaskRepo } from '../../src/store/unmask.js';
import { GENESIS_HASH, rowHash } from '../../src/audit/log.js';
import { MasterKeyProvider } from '../../src/crypto/master-key.js';

/**
 * One contract for both engines: every repository method runs on SQLite and on PostgreSQL and
 * answers alike. The PostgreSQL half also runs what several nodes do at once, each node with its
 * own connection pool: one TOTP step spent by 20 racing logins, failures counted across nodes,
 * one audit chain extended by three.
 */
const master = new MasterKeyProvider(randomBytes(32));

for (const engine of [sqliteEngine(), postgresEngine('contract')]) {
  describe(`repositories on ${engine.name}`, () => {
    let sql: Sql;
    beforeEach(async () => {
      sql = await engine.fresh();
    }, 30_000);
    afterAll(() => engine.done(), 30_000);

    it('users, roles and grants', async () => {
      const users = new UserRepo(sql);
      const roles = new RoleRepo(sql);
      const ops = await roles.add({ name: 'ops', runAs: 'tgops', sandbox: { readOnlyPaths: ['/srv'], readWritePaths: [], hiddenPaths: [] } }, 10);
      const audit = await roles.add({ name: 'audit', kind: 'auditor' }, 11);
      expect(ops).toMatchObject({ id: expect.any(Number), name: 'ops', runAs: 'tgops', kind: 'shell', sandbox: { readOnlyPaths: ['/srv'] } });
      const alice = await users.add('alice', ops.id, 12);
      expect(alice).toEqual({ id: expect.any(Number), name: 'alice', defaultRoleId: ops.id, disabled: false, createdAt: 12 });
      await expect(users.add('alice', null, 13)).rejects.toThrow(/TG_ERR_USER_EXISTS|already exists/);
      await roles.grant(alice.id, ops.id, 14);
      await roles.grant(alice.id, audit.id, 14);
      await expect(roles.grant(alice.id, ops.id, 15)).rejects.toThrow(/already granted/);
      expect((await roles.grantsOf(alice.id)).map((r) => r.name)).toEqual(['audit', 'ops']);
      expect(await roles.isGranted(alice.id, ops.id)).toBe(true);
      expect(await roles.grantees(ops.id)).toEqual([alice.id]);
      await roles.edit(ops.id, { idleTimeoutMs: 60_000, allowRoot: true, tmuxOptions: { 'history-limit': '5000' } });
      expect(await roles.byId(ops.id)).toMatchObject({ idleTimeoutMs: 60_000, allowRoot: true, tmuxOptions: { 'history-limit': '5000' } });
      expect(await roles.revoke(alice.id, ops.id)).toBe(true);
      expect(await roles.revoke(alice.id, ops.id)).toBe(false);
      expect((await users.byId(alice.id))!.defaultRoleId).toBeNull();
      expect(await roles.allGrants()).toEqual([{ userId: alice.id, roleId: audit.id }]);
      await users.setDisabled(alice.id, true);
      expect(await users.lockedOutIds()).toEqual([alice.id]);
      await users.remove(alice.id, 20);
      expect(await users.find('alice')).toBeNull();
      expect(await roles.allGrants()).toEqual([]);
      const again = await users.add('alice', null, 21);
      expect(again.id).not.toBe(alice.id);
      expect((await users.list()).map((u) => u.name)).toEqual(['alice']);
      await roles.remove(audit.id);
      expect((await roles.list()).map((r) => r.name)).toEqual(['ops']);
    });

    it('keys, TOTP secrets and recovery codes', async () => {
      const u = await new UserRepo(sql).add('bob', null, 0);
      const keys = new KeyRepo(sql);
      const blob = randomBytes(51);
      const k = await keys.add(u.id, { type: 'ssh-ed25519', blob, fingerprint: 'SHA256:abc', bits: 256, comment: 'bob@x' }, 5);
      expect(k).toMatchObject({ user_id: u.id, key_blob: blob, fingerprint: 'SHA256:abc', bits: 256 });
      expect((await keys.findForUser(u.id, blob))?.fingerprint).toBe('SHA256:abc');
      expect(await keys.findForUser(u.id, randomBytes(51))).toBeNull();
      await expect(keys.add(u.id, { type: 'ssh-ed25519', blob, fingerprint: 'SHA256:abc', bits: 256, comment: '' }, 6)).rejects.toThrow(/already enrolled/);
      expect(await keys.counts()).toEqual({ keys: 1, fingerprints: 1 });
      expect(await keys.listForUser(u.id)).toHaveLength(1);
      expect(await keys.remove(u.id, 'SHA256:abc')).toBe(true);

      const totp = new TotpRepo(sql, master);
      expect(await totp.state(u.id)).toBe('none');
      await totp.setPending(u.id, 'JBSWY3DPEHPK3PXP', 0);
      expect(await totp.state(u.id)).toBe('pending');
      await totp.confirm(u.id, 50, 1);
      expect(await totp.state(u.id)).toBe('confirmed');
      expect((await totp.get(u.id))!.secret.reveal()).toBe('JBSWY3DPEHPK3PXP');
      expect(await totp.spendStep(u.id, 50)).toBe(false);
      expect(await totp.spendStep(u.id, 51)).toBe(true);
      await totp.confirm(u.id, 10, 2); // confirming again never moves the spent step back
      expect(await totp.spendStep(u.id, 51)).toBe(false);
      expect(await totp.confirmedCount()).toBe(1);
      expect(await totp.keyIds()).toEqual([master.keyId]);

      const codes = new RecoveryCodeRepo(sql);
      const list = await codes.generate(u.id, 3, 0);
      expect(await codes.remaining(u.id)).toBe(3);
      expect(await codes.spend(u.id, list[0]!, 1)).toBe(true);
      expect(await codes.spend(u.id, list[0]!, 2)).toBe(false);
      expect(await codes.holders()).toEqual(['bob']);
    });

    it('sessions, recordings, kills, shares, state and host accounts', async () => {
      const sessions = new SessionRepo(sql);
      const sessionBase = { userId: 1, roleId: 2, userName: 'a', roleName: 'ops', remoteAddr: '192.0.2.1', term: 'xterm', cols: 80, rows: 24 };
      await sessions.start({ ...sessionBase, id: 'S1aaaaaaaa', startedAt: 100 });
      expect((await sessions.list({ live: true })).map((s) => s.id)).toEqual(['S1aaaaaaaa']);
      await sessions.end('S1aaaaaaaa', 'exit', 200);
      expect(await sessions.get('S1aaaaaaaa')).toMatchObject({ state: 'closed', ended_at: 200, end_reason: 'exit' });

      const recs = new RecordingRepo(sql);
      await recs.create({ sessionId: 'S1aaaaaaaa', file: 'x.tgrec', dataKey: randomBytes(32), keys: master, cols: 80, rows: 24, now: 100 });
      await recs.flushed('S1aaaaaaaa', 3, 'h3', 1000, 300);
      await recs.flushed('S1aaaaaaaa', 2, 'h2', 900, 200); // an older flush never rolls the head back
      expect(await recs.get('S1aaaaaaaa')).toMatchObject({ chunks: 3, chain_head: 'h3', state: 'recording' });
      expect(await recs.markInterrupted()).toBe(1);
      await recs.finish('S1aaaaaaaa', 'sealed', 100, 300, null);
      await recs.noteVerified('S1aaaaaaaa', 'ok', 400);
      expect((await recs.list()).map((r) => [r.state, r.last_verify_status])).toEqual([['sealed', 'ok']]);
      expect(await recs.rewrapAll(master)).toBe(0);

      const kills = new KillRepo(sql);
      await kills.request('S1aaaaaaaa', 'first', 'os:root', 1);
      await kills.request('S1aaaaaaaa', 'second', 'os:root', 2);
      expect(await kills.pending()).toEqual([
        { sessionId: 'S1aaaaaaaa', reason: 'second', requestedBy: 'os:root', state: 'closed', nodeId: 'local', serverNodeId: null, roleId: 2, userId: 1 },
      ]);
      await kills.done('S1aaaaaaaa', 3);
      expect(await kills.pending()).toEqual([]);
      // A relayed session (this node-b's, on node-a's tmux server): node-a ends the pair after node-b ended the session.
      const relayed = new SessionRepo(sql, 'node-b');
      await relayed.start({ ...sessionBase, id: 'R1aaaaaaaa', startedAt: 5, serverNodeId: 'node-a' });
      await kills.request('R1aaaaaaaa', 'r', 'os:root', 6);
      expect((await kills.pending()).map((k) => [k.sessionId, k.state, k.serverNodeId])).toEqual([['R1aaaaaaaa', 'live', 'node-a']]);
      expect(await kills.serverPending('node-a')).toEqual([]); // node-b has not ended it yet
      await kills.done('R1aaaaaaaa', 7);
      expect(await kills.serverPending('node-b')).toEqual([]);
      expect(await kills.serverPending('node-a')).toEqual([{ sessionId: 'R1aaaaaaaa', roleId: sessionBase.roleId, userId: sessionBase.userId }]);
      await kills.serverDone('R1aaaaaaaa', 8);
      expect(await kills.serverPending('node-a')).toEqual([]);
      // A node declared lost: kills of its sessions and the server part of kills relayed to it are resolved.
      await relayed.start({ ...sessionBase, id: 'R2aaaaaaaa', startedAt: 9, serverNodeId: 'node-a' });
      await new SessionRepo(sql, 'node-a').start({ ...sessionBase, id: 'A1aaaaaaaa', startedAt: 9 });
      await kills.request('R2aaaaaaaa', 'r', 'os:root', 10);
      await kills.request('A1aaaaaaaa', 'a', 'os:root', 10);
      await kills.done('R2aaaaaaaa', 11);
      expect(await kills.resolveForLostNode('node-a', 12)).toBe(2);
      expect(await kills.pending()).toEqual([]);
      expect(await kills.serverPending('node-a')).toEqual([]);

      const shares = new ShareRepo(sql);
      const users = new UserRepo(sql);
      const a = await users.add('a', null, 0);
      const b = await users.add('b', null, 0);
      await shares.add(a.id, 2, b.id, 0);
      await shares.add(a.id, 2, b.id, 0);
      expect(await shares.viewerNames(a.id, 2)).toEqual(['b']);
      expect(await shares.isShared(a.id, 2, b.id)).toBe(true);
      await shares.remove(a.id, 2, b.id);
      expect(await shares.isShared(a.id, 2, b.id)).toBe(false);

      const state = new GatewayStateRepo(sql);
      expect(await state.get('k')).toBeNull();
      await state.set('k', 'v1');
      await state.set('k', 'v2');
      expect(await state.get('k')).toBe('v2');

      const host = new HostAccountRepo(sql);
      const id = await host.installId();
      expect(await host.installId()).toBe(id);
      await host.recordPair({ roleId: 2, userId: a.id, account: `tg${id}p1`, uid: 61000, home: '/h/1' }, 0);
      expect(await host.pair(2, a.id)).toMatchObject({ account: `tg${id}p1`, uid: 61000, lockedAt: null });
      expect(await host.maxUid()).toBe(61000);
      await users.setDisabled(a.id, true);
      // Recorded on no machine (made before clusters): the store-wide lock decides, for any machine.
      expect((await host.pairsToEnd('m1')).map((p) => p.cause)).toEqual(['user-disabled']);
      await host.setLocked(2, a.id, 5);
      expect(await host.pairsToEnd('m1')).toEqual([]);
      // Made on two machines: each locks its own copy, whatever the other did.
      await host.setLocked(2, a.id, null);
      await host.recordAccountHost(`tg${id}p1`, 'm1', 0);
      await host.recordAccountHost(`tg${id}p1`, 'm2', 0);
      expect(await host.pairsToEnd('m3')).toEqual([]); // no copy there
      await host.setLocked(2, a.id, 6);
      await host.setLockedOn(`tg${id}p1`, 'm1', 6);
      expect(await host.lockedOn(`tg${id}p1`, 'm1')).toBe(true);
      expect(await host.lockedOn(`tg${id}p1`, 'm2')).toBe(false);
      expect(await host.lockedOn(`tg${id}p1`, 'm3')).toBeNull();
      expect(await host.pairsToEnd('m1')).toEqual([]);
      expect((await host.pairsToEnd('m2')).map((p) => [p.account, p.cause])).toEqual([[`tg${id}p1`, 'user-disabled']]);
      await host.setLockedOn(`tg${id}p1`, 'm2', 7);
      expect(await host.pairsToEnd('m2')).toEqual([]);
      // Removed: each machine removes its copy.
      await users.remove(a.id, 8);
      expect((await host.pairsToEnd('m1')).map((p) => p.cause)).toEqual([]); // locked here already
      expect((await host.removedUsersPairs('m1')).map((p) => p.account)).toEqual([`tg${id}p1`]);
      await host.setRemoved(2, a.id, 9);
      await host.setRemovedOn(`tg${id}p1`, 'm1', 9);
      expect(await host.removedUsersPairs('m1')).toEqual([]);
      expect((await host.removedUsersPairs('m2')).map((p) => p.account)).toEqual([`tg${id}p1`]);
      await host.setRemovedOn(`tg${id}p1`, 'm2', 10);
      expect(await host.removedUsersPairs('m2')).toEqual([]);
      await host.recordRoleAccount(2, `tg${id}g2`, 60500, 0);
      expect(await host.roleAccount(2)).toEqual({ account: `tg${id}g2`, uid: 60500 });
      expect((await host.allAccounts()).sort()).toEqual([`tg${id}g2`, `tg${id}p1`]);
      await host.addObserver({ pid: 7, tty: '/dev/pts/3', sessionId: 'S1aaaaaaaa', actor: 'os:root', at: 1 });
      await host.addObserver({ pid: 7, tty: '/dev/pts/4', sessionId: 'S1aaaaaaaa', actor: 'os:root', at: 2 });
      expect(await host.observers()).toEqual([{ pid: 7, tty: '/dev/pts/4' }]);
      await host.removeObserver(7);
      expect(await host.observers()).toEqual([]);
    });

    it('unmask requests, one decision each, and grants in force', async () => {
      const sessions = new SessionRepo(sql);
      const start = (id: string) =>
        sessions.start({
          id,
          userId: 1,
          roleId: 2,
          userName: 'a',
          roleName: 'ops',
          remoteAddr: '192.0.2.1',
          term: 'xterm',
          cols: 80,
          rows: 24,
          startedAt: 100,
        });
      await start('S1unmask00');
      await start('S2unmask00');
      const um = new UnmaskRepo(sql);
      const r1 = await um.request({
        sessionId: 'S1unmask00',
        requestedBy: 'os:alice(as root)',
        reason: 'INC-1',
        durationMs: 3600_000,
        now: 1000,
        expiresAt: 5000,
      });
      const r2 = await um.request({
        sessionId: 'S2unmask00',
        requestedBy: 'os:alice(as root)',
        reason: 'INC-2',
        durationMs: 60_000,
        now: 1000,
        expiresAt: 5000,
      });
      await expect(um.request({ sessionId: 'nosuch', requestedBy: 'os:x', reason: 'r', durationMs: 1, now: 1, expiresAt: 2 })).rejects.toThrow();
      expect(await um.getRequest(r1)).toEqual({
        id: r1,
        session_id: 'S1unmask00',
        requested_by: 'os:alice(as root)',
        reason: 'INC-1',
        duration_ms: 3600_000,
        requested_at: 1000,
        expires_at: 5000,
        state: 'pending',
        decided_at: null,
        decided_by: null,
        deny_reason: null,
      });
      expect(await um.getRequest(9999)).toBeNull();
      // A lapsed request cannot be decided; a pending one is decided once.
      expect(await um.decide(r1, 'approved', 'os:bob(as root)', 5000)).toBe(false);
      expect(await um.decide(r1, 'approved', 'os:bob(as root)', 2000)).toBe(true);
      expect(await um.decide(r1, 'denied', 'os:carol(as root)', 2001, 'no')).toBe(false);
      expect(await um.decide(r2, 'denied', 'os:carol(as root)', 2001, 'not needed')).toBe(true);
      expect(await um.getRequest(r2)).toMatchObject({ state: 'denied', decided_by: 'os:carol(as root)', decided_at: 2001, deny_reason: 'not needed' });
      const g = await um.grant({
        requestId: r1,
        sessionId: 'S1unmask00',
        grantee: 'os:alice(as root)',
        reason: 'INC-1',
        approvedBy: 'os:bob(as root)',
        now: 2000,
        expiresAt: 3000,
      });
      await expect(
        um.grant({ requestId: r1, sessionId: 'S1unmask00', grantee: 'x', reason: 'x', approvedBy: 'y', now: 2000, expiresAt: 3000 }),
      ).rejects.toThrow();
      expect(await um.getGrant(g)).toEqual({
        id: g,
        request_id: r1,
        session_id: 'S1unmask00',
        grantee: 'os:alice(as root)',
        reason: 'INC-1',
        approved_by: 'os:bob(as root)',
        approved_at: 2000,
        expires_at: 3000,
        revoked_at: null,
        revoked_by: null,
        revoke_reason: null,
      });
      expect((await um.grantsInForce('S1unmask00', 2999)).map((x) => x.id)).toEqual([g]);
      expect(await um.grantsInForce('S1unmask00', 3000)).toEqual([]);
      expect(await um.grantsInForce('S2unmask00', 2500)).toEqual([]);
      expect(await um.revoke(g, 'os:carol(as root)', 'done', 3000)).toBe(false); // expired already
      expect(await um.revoke(g, 'os:carol(as root)', 'done', 2500)).toBe(true);
      expect(await um.revoke(g, 'os:carol(as root)', 'again', 2600)).toBe(false);
      expect(await um.grantsInForce('S1unmask00', 2501)).toEqual([]);
      expect(await um.getGrant(g)).toMatchObject({ revoked_at: 2500, revoked_by: 'os:carol(as root)', revoke_reason: 'done' });
      expect((await um.requests()).map((r) => r.id)).toEqual([r1, r2]);
      expect((await um.requests('S2unmask00')).map((r) => r.id)).toEqual([r2]);
      expect((await um.grants()).map((x) => x.id)).toEqual([g]);
      expect(await um.grants('S2unmask00')).toEqual([]);
    });

    it('audit rows, checkpoints and paging', async () => {
      const events = new AuditEventRepo(sql);
      for (let i = 1; i <= 5; i++) {
        await events.append({ ts: i, type: 't', actor: 'x', data: `{"i":${i}}` }, GENESIS_HASH, (id, prev) =>
          rowHash(prev, { id, ts: i, type: 't', actor: 'x', data: `{"i":${i}}` }),
        );
      }
      expect((await events.head())!.id).toBe(5);
      expect((await events.recent({ limit: 2 })).map((r) => r.id)).toEqual([4, 5]);
      const seen: number[] = [];
      for await (const r of events.between(2, 4)) seen.push(r.id);
      expect(seen).toEqual([2, 3, 4]);
      await events.addCheckpoint({ auditId: 5, head: 'h', ts: 6, signature: Buffer.from([1]) });
      expect(await events.lastCheckpointRow()).toBe(5);
      expect(await events.maxId()).toBe(5);
    });

    it('nodes, pair claims, and sessions and recordings scoped to their node', async () => {
      const nodes = new NodeRepo(sql);
      const a = { id: 'node-a', host: 'm1', pid: 100 };
      const other = () => true;
      expect(await nodes.register({ ...a, linkAddress: '10.0.0.1:7022', version: '1', now: 1000, freshSince: 0 }, other)).toBeNull();
      // The same id with a fresh heartbeat from another process is in the way; a stale or stopped one is not.
      expect(await nodes.register({ id: 'node-a', host: 'm2', pid: 7, linkAddress: null, version: '1', now: 2000, freshSince: 500 }, other)).toMatchObject({
        pid: 100,
      });
      expect(await nodes.heartbeat(a, 3000)).toBe('ok');
      expect(await nodes.heartbeat({ ...a, pid: 101 }, 3000)).toBe('replaced');
      expect(await nodes.stale(2500, 'node-b')).toEqual([]);
      expect((await nodes.stale(3500, 'node-b')).map((n) => n.id)).toEqual(['node-a']);
      expect(await nodes.stale(3500, 'node-a')).toEqual([]);
      expect(await nodes.markLost('node-a', 2999, 4000)).toBe(false); // judged by an older heartbeat: it beat since
      expect(await nodes.markLost('node-a', 3000, 4000)).toBe(true);
      expect(await nodes.markLost('node-a', 3000, 4000)).toBe(false); // once
      expect(await nodes.stale(9999, 'node-b')).toEqual([]);
      expect(await nodes.heartbeat(a, 5000)).toBe('rejoined');
      expect(await nodes.get('node-a')).toMatchObject({ heartbeat_at: 5000, lost_at: null });
      await nodes.stopped(a, 6000);
      expect(await nodes.stale(9999, 'node-b')).toEqual([]);
      expect(await nodes.register({ id: 'node-a', host: 'm2', pid: 7, linkAddress: null, version: '2', now: 6500, freshSince: 0 }, other)).toBeNull();
      expect(await nodes.get('node-a')).toMatchObject({ host: 'm2', pid: 7, version: '2', stopped_at: null, link_address: null });

      const claims = new PairServerRepo(sql);
      expect(await claims.claim(2, 3, 'node-a', 1)).toBe('node-a');
      expect(await claims.claim(2, 3, 'node-b', 2)).toBe('node-a');
      expect(await claims.release(2, 3, 'node-b')).toBe(false); // never another node's claim
      expect(await claims.takeOver(2, 3, 'node-c', 'node-b', 3)).toBe('node-a'); // only from the node that holds it
      expect(await claims.takeOver(2, 3, 'node-a', 'node-b', 3)).toBe('node-b');
      expect(await claims.claim(2, 4, 'node-b', 4)).toBe('node-b');
      expect(await claims.ofNode('node-b')).toEqual([
        { roleId: 2, userId: 3 },
        { roleId: 2, userId: 4 },
      ]);
      expect(await claims.release(2, 4, 'node-b')).toBe(true);
      expect(await claims.releaseAll('node-b')).toBe(1);
      expect(await claims.owner(2, 3)).toBeNull();

      // Sessions and recordings name their node; a start marks only its own node's (and pre-cluster rows) interrupted.
      const onA = new SessionRepo(sql, 'node-a');
      const onB = new SessionRepo(sql, 'node-b');
      const recs = new RecordingRepo(sql);
      const row = { userId: 1, roleId: 2, userName: 'u', roleName: 'ops', remoteAddr: '192.0.2.1', term: 'xterm', cols: 80, rows: 24, startedAt: 10 };
      await onA.start({ ...row, id: 'A1aaaaaaaa', startedAt: 10 });
      await onB.start({ ...row, id: 'B1aaaaaaaa', serverNodeId: 'node-a', startedAt: 11 });
      await onB.start({ ...row, id: 'B2aaaaaaaa', startedAt: 12 });
      for (const [i, id] of ['A1aaaaaaaa', 'B1aaaaaaaa', 'B2aaaaaaaa'].entries()) {
        await recs.create({ sessionId: id, file: `${id}.tgrec`, dataKey: randomBytes(32), keys: master, cols: 80, rows: 24, now: 10 + i });
      }
      expect(await onA.get('B1aaaaaaaa')).toMatchObject({ node_id: 'node-b', server_node_id: 'node-a' });
      expect(await onA.get('A1aaaaaaaa')).toMatchObject({ node_id: 'node-a', server_node_id: null });
      expect((await recs.list({ onNode: 'node-b' })).map((r) => r.session_id)).toEqual(['B1aaaaaaaa', 'B2aaaaaaaa']);
      expect(await recs.markInterrupted('node-a')).toBe(1);
      expect((await onA.markInterrupted(20)).map((s) => s.id)).toEqual(['A1aaaaaaaa']);
      expect((await onA.list({ live: true })).map((s) => s.id)).toEqual(['B1aaaaaaaa', 'B2aaaaaaaa']);
      expect(await recs.unverifiedInterrupted('node-a')).toEqual(['A1aaaaaaaa']);
      expect(await recs.unverifiedInterrupted('node-b')).toEqual([]);
      await recs.noteVerified('A1aaaaaaaa', 'interrupted', 30);
      expect(await recs.unverifiedInterrupted('node-a')).toEqual([]);
      // A lost node's sessions: interrupted with the reason, its open recordings too.
      await onB.end('B2aaaaaaaa', 'detached', 40);
      expect((await onA.markNodeLost('node-b', 50)).map((s) => s.id)).toEqual(['B1aaaaaaaa']);
      expect(await onA.get('B1aaaaaaaa')).toMatchObject({ state: 'interrupted', end_reason: 'node lost', ended_at: 50 });
      expect(await onA.get('B2aaaaaaaa')).toMatchObject({ state: 'closed' });
      expect(await recs.markNodeLost('node-b')).toBe(2);
      expect((await nodes.list()).map((n) => [n.id, n.live_sessions])).toEqual([['node-a', 0]]);
      await onA.start({ ...row, id: 'A2aaaaaaaa', startedAt: 60 });
      expect((await nodes.list()).map((n) => [n.id, n.live_sessions])).toEqual([['node-a', 1]]);

      const state = new GatewayStateRepo(sql);
      expect(await state.setIfAbsent('cluster.keys', 'first')).toBe('first');
      expect(await state.setIfAbsent('cluster.keys', 'second')).toBe('first');

      const host = new HostAccountRepo(sql);
      expect(await host.accountHosts('tgx')).toEqual([]);
      await host.recordAccountHost('tgx', 'm2', 1);
      await host.recordAccountHost('tgx', 'm1', 2);
      await host.recordAccountHost('tgx', 'm1', 3);
      expect(await host.accountHosts('tgx')).toEqual(['m1', 'm2']);
    });

    it('two nodes claiming one pair at once get one owner, and so do two taking it over from a lost node', async () => {
      const nodes = [sql, ...engine.more()];
      const claimants = ['node-a', 'node-b'];
      for (let round = 0; round < 10; round++) {
        const owners = await Promise.all(claimants.map((id, i) => new PairServerRepo(nodes[i % nodes.length]!).claim(1, round, id, round)));
        expect(new Set(owners).size, `round ${round}: ${owners.join(',')}`).toBe(1);
        expect(claimants).toContain(owners[0]);
        expect(await new PairServerRepo(sql).owner(1, round)).toBe(owners[0]);
      }
      for (let round = 0; round < 10; round++) await new PairServerRepo(sql).claim(2, round, 'node-dead', 0);
      for (let round = 0; round < 10; round++) {
        const owners = await Promise.all(claimants.map((id, i) => new PairServerRepo(nodes[i % nodes.length]!).takeOver(2, round, 'node-dead', id, 1)));
        expect(new Set(owners).size, `takeover round ${round}: ${owners.join(',')}`).toBe(1);
        expect(claimants).toContain(owners[0]);
      }
    }, 30_000);

    it('what several nodes do at once: one TOTP step, failures counted together, one audit chain', async () => {
      const nodes = [sql, ...engine.more()];
      const u = await new UserRepo(sql).add('carol', null, 0);
      await new TotpRepo(sql, master).setPending(u.id, 'JBSWY3DPEHPK3PXP', 0);
      const spends = await Promise.all(Array.from({ length: 20 }, (_, i) => new TotpRepo(nodes[i % nodes.length]!, master).spendStep(u.id, 77)));
      expect(spends.filter(Boolean)).toHaveLength(1);

      const tries = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          new LockoutRepo(nodes[i % nodes.length]!).recordFailure({ kind: 'user', subject: 'carol', at: 1000 + i, pruneBefore: 0, countSince: 0 }, (n) =>
            n >= 5 ? { level: 1, lockedUntil: 9999 } : null,
          ),
        ),
      );
      // Each lock consumes the failures that made it: 12 failures across the nodes make exactly two.
      expect(tries.filter((t) => t !== null)).toHaveLength(2);
      // What a login step reads of them, in one statement: by kind and subject, in the order asked.
      const asked = [
        { kind: 'address' as const, subject: 'carol' },
        { kind: 'user' as const, subject: 'carol' },
        { kind: 'user' as const, subject: 'dave' },
      ];
      expect(await new LockoutRepo(nodes.at(-1)!).getAll(asked)).toEqual([null, { level: 1, lockedUntil: 9999 }, null]);

      await Promise.all(
        Array.from({ length: 30 }, (_, i) => {
          const data = `{"n":${i}}`;
          return new AuditEventRepo(nodes[i % nodes.length]!).append({ ts: i, type: 't', actor: 'x', data }, GENESIS_HASH, (id, prev) =>
            rowHash(prev, { id, ts: i, type: 't', actor: 'x', data }),
          );
        }),
      );
      // First logins of different users on different nodes at once: each pair gets its own uid.
      const reserved = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          new HostAccountRepo(nodes[i % nodes.length]!).reservePair(
            { roleId: 1, userId: 100 + i, account: `tgr1u${100 + i}`, home: `/h/${i}` },
            (highest) => (highest ?? 62999) + 1,
            0,
          ),
        ),
      );
      expect(new Set(reserved.map((r) => r.record.uid)).size).toBe(8);
      // The same pair from two nodes at once: one allocation, both see it.
      const same = await Promise.all(
        nodes.map((n) => new HostAccountRepo(n).reservePair({ roleId: 1, userId: 200, account: 'tgr1u200', home: '/h' }, (h) => (h ?? 0) + 1, 0)),
      );
      expect(same.filter((r) => r.reserved)).toHaveLength(1);
      expect(new Set(same.map((r) => r.record.uid)).size).toBe(1);

      const rows: { id: number; prev_hash: string; hash: string }[] = [];
      for await (const r of new AuditEventRepo(sql).all()) rows.push(r);
      expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
    }, 30_000);
  });
}
