import { randomBytes } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LoginFlow } from '../../src/auth/login-flow.js';
import { pickDecoy } from '../../src/auth/login-deps.js';
import { AuditEventRepo } from '../../src/store/audit-events.js';
import { PostgresSql, WARM_CONNECTIONS } from '../../src/store/postgres.js';
import { GENESIS_HASH, rowHash } from '../../src/audit/log.js';
import { postgresEngine } from '../helpers/engines.js';
import { roundTripGate } from '../helpers/round-trips.js';
import { LoginWorld } from '../helpers/login-world.js';

/**
 * How many PostgreSQL round trips a login waits for one after the other (issue 13: login p50
 * through the balancer to two nodes). On a shared store each is a wake-up of a database backend
 * and of the node, 0.2 ms on an idle machine and several on a loaded one; SQLite's cost
 * microseconds. The counts are the contract: a change that adds one to the login's path fails here.
 */
const engine = postgresEngine('trips');
afterAll(() => engine.done(), 30_000);

let sql: PostgresSql;
let gate: ReturnType<typeof roundTripGate>;
beforeEach(async () => {
  sql = (await engine.fresh()) as PostgresSql;
  gate = roundTripGate(sql);
  // Every pooled connection made before counting: a connection's setup is not a statement's round trip.
  await Promise.all(Array.from({ length: WARM_CONNECTIONS }, () => sql.get('SELECT pg_sleep(0.01)')));
}, 30_000);

const signedBy = (u: { key: { blob: Buffer; private: { sign(d: Buffer): Buffer | Error } } }) => {
  const data = randomBytes(32);
  return { blob: u.key.blob, signed: data, signature: u.key.private.sign(data) as Buffer, hashAlgo: undefined };
};

const append = (repo: AuditEventRepo, i: number) => {
  const data = `{"n":${i}}`;
  return repo.append({ ts: i, type: 't', actor: 'x', data }, GENESIS_HASH, (id, prev) => rowHash(prev, { id, ts: i, type: 't', actor: 'x', data }));
};

describe('round trips on PostgreSQL', () => {
  it('an audit append: the head, then an insert that does nothing if the id was taken', async () => {
    await append(new AuditEventRepo(sql), 0);
    const repo = new AuditEventRepo(sql);
    const { waves, statements } = await gate.measure(() => append(repo, 1));
    expect(statements).toEqual([['SELECT id, hash'], ['INSERT INTO audit_events']]);
    expect(waves).toBe(2);
    // Lost to another writer: the chain lock and the head again, and the insert after it.
    const lost = await gate.measure(async () => {
      const other = append(new AuditEventRepo(engine.more(1)[0]!), 2);
      await append(new AuditEventRepo(sql), 3);
      await other;
    });
    expect(lost.waves).toBeGreaterThanOrEqual(2);
    const rows = [];
    for await (const r of repo.all()) rows.push(r);
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4]);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
  }, 30_000);

  it("an append after this node's own last row: one statement while that row is the head, two once another node appended", async () => {
    const repo = new AuditEventRepo(sql);
    const other = new AuditEventRepo(engine.more(1)[0]!);
    await append(repo, 0);
    const next = await gate.measure(() => append(repo, 1));
    expect(next.statements).toEqual([['WITH head AS']]);
    expect(next.waves).toBe(1);
    // Another node's row since: the statement inserts nothing and hands back the head it saw.
    await append(other, 2);
    const after = await gate.measure(() => append(repo, 3));
    expect(after.statements).toEqual([['WITH head AS'], ['INSERT INTO audit_events']]);
    // A row this repository wrote inside a transaction that was rolled back is not a head to chain to.
    await sql
      .transaction(async () => {
        await append(repo, 4);
        throw new Error('rolled back');
      })
      .catch(() => {});
    await append(repo, 5);
    await append(repo, 6);
    const rows = [];
    for await (const r of repo.all()) rows.push(r);
    expect(rows.map((r) => [r.id, JSON.parse(r.data).n])).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 5],
      [6, 6],
    ]);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
    for (const r of rows)
      expect(r.hash).toBe(rowHash(r.id === 1 ? GENESIS_HASH : rows[r.id - 2]!.hash, { id: r.id, ts: r.ts, type: 't', actor: 'x', data: r.data }));
  }, 30_000);

  it('appends racing from several nodes all land, on one chain: a locked append yields to one that did not wait for the lock', async () => {
    const nodes = [sql, ...engine.more(3)];
    const repos = nodes.map((n) => new AuditEventRepo(n));
    // Each node appends one row after another, all nodes at once: a node's next try without the
    // lock keeps meeting another's append that lost a race and holds the lock.
    await Promise.all(
      repos.map(async (repo, k) => {
        for (let i = 0; i < 100; i++) await append(repo, k * 1000 + i);
      }),
    );
    const rows = [];
    for await (const r of repos[0]!.all()) rows.push(r);
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
  }, 30_000);

  it('the pool keeps as many connections open as a login step sends statements at once', async () => {
    // (the tests' pools are smaller than a node's default of 10)
    const node = new PostgresSql({ url: 'postgres://127.0.0.1:1/none' });
    expect(node.pool.options.min).toBe(WARM_CONNECTIONS);
    await node.close();
    expect(sql.pool.options.min).toBe(Math.min(WARM_CONNECTIONS, sql.pool.options.max));
    const w = new LoginWorld({}, sql);
    const alice = await w.user('alice');
    const f = new LoginFlow(w.deps, { id: 'c_warm', addr: '192.0.2.10', log: w.logger });
    await f.verifyKey('alice', signedBy(alice));
    await f.startCode('alice');
    const code = await gate.measure(() => f.answerCode('alice', w.code(alice)));
    expect(Math.max(...code.statements.map((s) => s.length))).toBeLessThanOrEqual(WARM_CONNECTIONS);
    w.close();
  }, 30_000);

  it('a login: key query, signed key, code', async () => {
    const w = new LoginWorld({}, sql);
    const alice = await w.user('alice');
    await pickDecoy(w.deps); // as the gateway does at its start
    const f = new LoginFlow(w.deps, { id: 'c_trips', addr: '192.0.2.10', log: w.logger });
    const query = await gate.measure(() => f.offerKey('alice', alice.key.blob));
    expect(query.result).toEqual({ kind: 'accepted', identity: null });
    const signed = await gate.measure(() => f.verifyKey('alice', signedBy(alice)));
    expect(signed.result).toMatchObject({ kind: 'need', partial: true });
    const prompt = await gate.measure(() => f.startCode('alice'));
    // Another node wrote the audit chain's last row.
    await append(new AuditEventRepo(engine.more(1)[0]!), 0);
    const code = await gate.measure(() => f.answerCode('alice', w.code(alice)));
    expect(code.result).toMatchObject({ kind: 'accepted' });
    // The query: the address's lockouts, the user with the decoy (a name that matches nobody
    // waits for the same round trips), then its grants and key. The signed attempt for
    // the key the query found: the lockouts alongside all of those again. The code: the reads, the
    // spend, then the audit append (head, insert) with the user's failures forgotten alongside.
    expect(query.statements.map((w) => w.length)).toEqual([1, 2, 2]);
    const miss = await gate.measure(() => new LoginFlow(w.deps, { id: 'c_miss', addr: '192.0.2.12', log: w.logger }).offerKey('mallory', alice.key.blob));
    // (then the refusal's own writes: the failure counted, the pre-auth summary)
    expect(miss.statements.slice(0, 3).map((w) => [...w].sort())).toEqual(query.statements.map((w) => [...w].sort()));
    expect(signed.statements.map((w) => [...w].sort())).toEqual([['SELECT * FROM', 'SELECT * FROM', 'SELECT r.* FROM', 'SELECT subject_kind, subject,']]);
    expect([query.waves, signed.waves, prompt.waves, code.waves]).toEqual([3, 1, 0, 4]);
    // The next login's code step on this node: the audit row goes after this node's own last row in one statement.
    const bob = await w.user('bob');
    const g = new LoginFlow(w.deps, { id: 'c_trips2', addr: '192.0.2.11', log: w.logger });
    await g.verifyKey('bob', signedBy(bob));
    await g.startCode('bob');
    const next = await gate.measure(() => g.answerCode('bob', w.code(bob)));
    expect(next.result).toMatchObject({ kind: 'accepted' });
    expect(next.waves).toBe(3);
    w.close();
  }, 30_000);
});
