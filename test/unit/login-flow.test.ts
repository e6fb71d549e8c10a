import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoginFlow, type Decision, type LoginFlowDeps, type SignedKeyOffer } from '../../src/auth/login-flow.js';
import { totpCode } from '../../src/auth/totp.js';
import { addKey, generateRecoveryCodes, grantRole, removeKey, removeUser, resetTotp, revokeRole, setUserDisabled } from '../../src/admin/operations.js';
import { LoginWorld, newKey, type LoginUser, type TestKey } from '../helpers/login-world.js';

const ADDR = '192.0.2.10';
const NEIGHBOUR = '192.0.2.99'; // same /24
const ELSEWHERE = '198.51.100.7';

let w: LoginWorld;
let alice: LoginUser;
beforeEach(async () => {
  w = new LoginWorld();
  alice = await w.user('alice');
  await w.admin.roles.add({ name: 'dba' }, w.clock.now());
});
afterEach(() => w.close());

const flow = (addr = ADDR) => new LoginFlow(w.deps, { id: 'c_test', addr, log: w.logger });

function sign(key: TestKey, data: Buffer): Buffer {
  const s = key.private.sign(data, key.type === 'rsa' ? 'sha256' : undefined);
  if (s instanceof Error) throw s;
  return s;
}

/** A signed attempt with `key` over fresh session data. */
function signed(key: TestKey): SignedKeyOffer {
  const data = randomBytes(32);
  return { blob: key.blob, signed: data, signature: sign(key, data), hashAlgo: key.type === 'rsa' ? 'sha256' : undefined };
}

/** A six-digit code valid at no step the window accepts now. */
function wrongCode(u: LoginUser): string {
  const valid = [-30_000, 0, 30_000].map((d) => totpCode(u.secret, w.clock.now() + d));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!valid.includes(c)) return c;
  }
}

/** Proves alice's key on `f` and opens the code prompt. */
async function proven(f: LoginFlow, u: LoginUser = alice, login = u.name): Promise<void> {
  expect(await f.verifyKey(login, signed(u.key))).toEqual({ kind: 'need', methods: ['keyboard-interactive'], partial: true });
  expect(await f.startCode(login)).toEqual({ kind: 'need', methods: ['keyboard-interactive'], partial: true, prompt: 'Verification code: ' });
}

const refused = (reason: string) => ({ kind: 'rejected', reason });

/** The part of a decision the client sees: everything but the internal reason and counting. */
const seen = (d: Decision) => (d.kind === 'rejected' ? { kind: d.kind, methods: d.methods, partial: d.partial, end: d.endConnection } : d);

const locked = async (kind: 'user' | 'address', subject: string) => {
  for (let i = 0; i < 1000 && !(await w.admin.lockouts.state(kind, subject)).locked; i++) await w.admin.lockouts.recordFailure(kind, subject);
  expect((await w.admin.lockouts.state(kind, subject)).locked).toBe(true);
};

describe('LoginFlow: the key step', () => {
  const wrongAnswer = { kind: 'rejected', methods: ['publickey'], partial: false, end: false };
  /** Alice's key, signed, under `login` from `addr`. */
  const as = (login: string, addr = ADDR) => flow(addr).verifyKey(login, signed(alice.key));
  it.each<[string, () => Promise<Decision>, Record<string, unknown>, boolean]>([
    ['the enrolled key, signed', () => as('alice'), { kind: 'need', methods: ['keyboard-interactive'], partial: true }, false],
    ['a query for the enrolled key (PK_OK)', () => flow().offerKey('alice', alice.key.blob), { kind: 'accepted', identity: null }, false],
    ['a query for a key not enrolled', () => flow().offerKey('alice', newKey('ed25519').blob), refused('unknown-key'), true],
    ['a key not enrolled, signed', () => flow().verifyKey('alice', signed(newKey('ed25519'))), refused('unknown-key'), true],
    ['a bad signature', () => flow().verifyKey('alice', { ...signed(alice.key), signed: randomBytes(32) }), refused('bad-signature'), true],
    ['a signature without signed data', () => flow().verifyKey('alice', { ...signed(alice.key), signed: undefined }), refused('bad-signature'), true],
    ['an unknown user', () => as('mallory'), refused('unknown-user'), true],
    ['a role not granted', () => as('alice+dba'), refused('role-not-granted'), true],
    ['an unknown role', () => as('alice+nosuch'), refused('unknown-role'), true],
    ['an invalid login name', () => as('al ice'), refused('invalid-login-name'), true],
    ['a disabled user', async () => (await setUserDisabled(w.admin, 'alice', true), as('alice')), refused('user-disabled'), true],
    ['a locked address', async () => (await locked('address', ADDR), as('alice')), refused('address-locked'), false],
    ['a locked prefix', async () => (await locked('address', '192.0.2.0/24'), as('alice', NEIGHBOUR)), refused('address-locked'), false],
  ])('%s', async (_what, attempt, expected, counts) => {
    const d = await attempt();
    expect(d).toMatchObject(expected);
    if (d.kind !== 'rejected') return;
    // Every refusal gives the client the answer a wrong key gets, and counts (if at all) against the source only.
    expect(seen(d)).toEqual(wrongAnswer);
    expect(d.countsForLockout).toBe(counts);
    expect((await w.admin.lockouts.state('user', 'alice')).locked).toBe(false);
    // Before a key proof a failure is summarised per address, never its own audit row.
    expect(await w.audit('auth.failure')).toEqual([]);
    expect(w.preauth.at(-1)).toMatchObject({ reason: `publickey:${d.reason}` });
  });

  it('counts a refused query once per connection, a signed attempt every time, and only signed attempts in the metrics', async () => {
    const f = flow();
    const other = newKey('ed25519');
    expect(await f.offerKey('alice', other.blob)).toMatchObject({ kind: 'rejected', countsForLockout: true });
    expect(await f.offerKey('alice', newKey('ecdsa').blob)).toMatchObject({ kind: 'rejected', countsForLockout: false });
    expect(w.metrics.get('logins_total{result="failure"}')).toBeUndefined();
    const g = flow();
    expect(await g.verifyKey('alice', signed(other))).toMatchObject({ kind: 'rejected', countsForLockout: true });
    expect(w.metrics.get('logins_total{result="failure"}')).toBe(1);
  });

  it('after a query found the key, the signed attempt still checks the lock first and reads every row again', async () => {
    const f = flow();
    expect(await f.offerKey('alice', alice.key.blob)).toEqual({ kind: 'accepted', identity: null });
    await locked('address', ADDR);
    expect(await f.verifyKey('alice', signed(alice.key))).toMatchObject({ kind: 'rejected', reason: 'address-locked' });
    const g = flow(ELSEWHERE);
    expect(await g.offerKey('alice', alice.key.blob)).toEqual({ kind: 'accepted', identity: null });
    await removeKey(w.admin, 'alice', alice.key.fingerprint);
    expect(await g.verifyKey('alice', signed(alice.key))).toMatchObject({ kind: 'rejected', reason: 'unknown-key' });
    const h = flow(ELSEWHERE);
    await addKey(w.admin, 'alice', alice.key.publicLine);
    expect(await h.offerKey('alice', alice.key.blob)).toEqual({ kind: 'accepted', identity: null });
    await setUserDisabled(w.admin, 'alice', true);
    expect(await h.verifyKey('alice', signed(alice.key))).toMatchObject({ kind: 'rejected', reason: 'user-disabled' });
  });

  it('answers "none" once with the methods, and counts a second one', async () => {
    const f = flow();
    expect(await f.none('alice')).toEqual({ kind: 'need', methods: ['publickey'], partial: false });
    expect(await f.none('alice')).toMatchObject({ kind: 'rejected', reason: 'none-repeated', methods: ['publickey'], countsForLockout: false });
  });

  it('refuses other methods and a code before the key, against the source', async () => {
    const f = flow();
    expect(await f.otherMethod('alice', 'password')).toMatchObject({ kind: 'rejected', reason: 'method-not-allowed:password', countsForLockout: true });
    expect(await f.startCode('alice')).toMatchObject({ kind: 'rejected', reason: 'totp-before-publickey', methods: ['publickey'] });
    expect(await f.answerCode('alice', w.code(alice))).toMatchObject({ kind: 'rejected', reason: 'totp-before-publickey' });
  });

  it('ends the connection at MaxAuthTries, with a summary row for a stranger', async () => {
    const f = flow();
    const tries: Decision[] = [];
    for (let i = 0; i < 3; i++) tries.push(await f.verifyKey('mallory', signed(alice.key)));
    expect(tries.map((d) => d.kind === 'rejected' && d.endConnection)).toEqual([false, false, true]);
    expect(w.preauth.map((p) => p.reason)).toContain('refused:too many authentication failures');
  });
});

describe('LoginFlow: the code step', () => {
  interface CodeCase {
    what: string;
    before?: () => void | Promise<void>;
    answer: () => string;
    expected: Record<string, unknown>;
    audit: string;
  }
  let spent = '';
  let recovery: string[] = [];
  const cases: CodeCase[] = [
    {
      what: 'a valid code',
      answer: () => w.code(alice),
      expected: { kind: 'accepted', identity: expect.objectContaining({ method: 'publickey+totp' }) },
      audit: 'auth.success',
    },
    { what: 'a wrong code', answer: () => wrongCode(alice), expected: { ...refused('totp-wrong'), countsForLockout: true }, audit: 'auth.failure' },
    { what: 'a malformed code', answer: () => 'abc', expected: { ...refused('totp-malformed'), countsForLockout: true }, audit: 'auth.failure' },
    {
      what: 'a code already spent by an earlier login',
      before: async () => {
        const f = flow(ELSEWHERE);
        await proven(f);
        spent = w.code(alice);
        expect((await f.answerCode('alice', spent)).kind).toBe('accepted');
      },
      answer: () => spent,
      expected: { kind: 'rejected', reason: 'totp-replayed', countsForLockout: true },
      audit: 'auth.failure',
    },
    {
      what: 'a recovery code in place of the code',
      before: async () => void (recovery = await generateRecoveryCodes(w.admin, 'alice', 3)),
      answer: () => recovery[1]!.toLowerCase(),
      expected: { kind: 'accepted', identity: expect.objectContaining({ method: 'publickey+recovery-code' }) },
      audit: 'auth.recovery-code',
    },
    {
      what: 'a recovery code already spent',
      before: async () => {
        recovery = await generateRecoveryCodes(w.admin, 'alice', 3);
        const f = flow(ELSEWHERE);
        await proven(f);
        expect((await f.answerCode('alice', recovery[0]!)).kind).toBe('accepted');
      },
      answer: () => recovery[0]!,
      expected: { kind: 'rejected', reason: 'totp-malformed', countsForLockout: true },
      audit: 'auth.failure',
    },
    {
      what: 'a user disabled since the key step',
      before: async () => await setUserDisabled(w.admin, 'alice', true),
      answer: () => w.code(alice),
      expected: { kind: 'rejected', reason: 'user-disabled', countsForLockout: false, endConnection: true },
      audit: 'auth.failure',
    },
    {
      what: 'a role revoked since the key step',
      before: async () => await revokeRole(w.admin, 'alice', 'ops'),
      answer: () => w.code(alice),
      expected: { kind: 'rejected', reason: 'no-default-role', endConnection: true },
      audit: 'auth.failure',
    },
    {
      what: 'a user removed and added again since the key step',
      before: async () => {
        await removeUser(w.admin, 'alice');
        await w.user('alice');
      },
      answer: () => w.code(alice),
      expected: { kind: 'rejected', reason: 'user-changed', endConnection: true },
      audit: 'auth.failure',
    },
    {
      what: 'a TOTP secret reset since the key step',
      before: async () => await resetTotp(w.admin, 'alice'),
      answer: () => w.code(alice),
      expected: { kind: 'rejected', reason: 'totp-not-enrolled', countsForLockout: true },
      audit: 'auth.failure',
    },
    { what: 'a locked user', before: () => locked('user', 'alice'), answer: () => w.code(alice), expected: refused('locked'), audit: 'auth.locked' },
    { what: 'a locked address', before: () => locked('address', ADDR), answer: () => w.code(alice), expected: refused('locked'), audit: 'auth.locked' },
  ];

  it.each(cases)('$what', async ({ before, answer, expected, audit }) => {
    const f = flow();
    await proven(f);
    await before?.();
    const auditBefore = (await w.audit(audit)).length;
    const d = await f.answerCode('alice', answer());
    expect(d).toMatchObject(expected);
    // After the key proof every outcome is its own audit row, with the connection and address.
    const rows = await w.audit(audit);
    expect(rows.length).toBe(auditBefore + 1);
    expect(rows.at(-1)!.data).toMatchObject({ user: 'alice', addr: ADDR, connId: 'c_test' });
    if (d.kind === 'rejected' && audit === 'auth.failure') expect(rows.at(-1)!.data.reason).toBe(d.reason);
    if (d.kind === 'accepted') {
      expect((await w.audit('auth.success')).at(-1)!.data).toMatchObject({ user: 'alice', role: 'ops', keyFingerprint: alice.key.fingerprint });
      expect(w.metrics.get('logins_total{result="success"}')).toBeGreaterThan(0);
    }
  });

  it('spends a recovery code once and says how many are left', async () => {
    const codes = await generateRecoveryCodes(w.admin, 'alice', 3);
    const f = flow();
    await proven(f);
    expect((await f.answerCode('alice', codes[2]!)).kind).toBe('accepted');
    expect((await w.audit('auth.recovery-code')).map((r) => r.data.remaining)).toEqual([2]);
    const g = flow();
    await proven(g);
    expect(await g.answerCode('alice', codes[2]!)).toMatchObject({ kind: 'rejected', reason: 'totp-malformed' });
  });

  it('gives a locked user, address or prefix the answer a wrong code gets, and audits which it was', async () => {
    const f0 = flow();
    await proven(f0);
    const wrong = seen(await f0.answerCode('alice', wrongCode(alice)));
    const setups: [addr: string, kind: 'user' | 'address', lockedSubject: string][] = [
      [ADDR, 'user', 'alice'],
      [ELSEWHERE, 'address', ELSEWHERE],
      ['203.0.113.5', 'address', '203.0.113.0/24'],
    ];
    for (const [addr, kind, lockedSubject] of setups) {
      const f = flow(addr);
      await proven(f);
      await locked(kind, lockedSubject);
      const d = await f.answerCode('alice', w.code(alice));
      expect(d).toMatchObject({ kind: 'rejected', reason: 'locked', countsForLockout: false });
      expect(seen(d)).toEqual(wrong);
      expect((await w.audit('auth.locked')).at(-1)!.data).toMatchObject({ addr, subject: kind });
      await w.admin.lockouts.clear(kind, lockedSubject);
    }
    expect(w.metrics.get('logins_total{result="locked"}')).toBe(3);
  });

  it('locks the user after five wrong codes, refuses a valid code while locked, and accepts one after the lock', async () => {
    for (let i = 0; i < 5; i++) {
      const f = flow();
      await proven(f);
      expect(await f.answerCode('alice', wrongCode(alice))).toMatchObject({ kind: 'rejected', countsForLockout: true });
    }
    expect((await w.audit('lockout.start')).map((r) => r.data)).toEqual([expect.objectContaining({ subjectKind: 'user', subject: 'alice', level: 1 })]);
    const f = flow();
    await proven(f);
    expect(await f.answerCode('alice', w.code(alice))).toMatchObject({ kind: 'rejected', reason: 'locked' });
    w.clock.advance(5 * 60_000);
    const g = flow();
    await proven(g);
    expect(await g.answerCode('alice', w.code(alice))).toMatchObject({ kind: 'accepted' });
  });

  it('ends the connection when the login name changes between the steps', async () => {
    await grantRole(w.admin, 'alice', 'dba');
    const f = flow();
    await proven(f);
    expect(await f.startCode('alice+dba')).toMatchObject({ kind: 'rejected', reason: 'login-changed', endConnection: true });
    expect(await f.answerCode('alice+dba', w.code(alice))).toMatchObject({ kind: 'rejected', reason: 'login-changed' });
  });

  it('ends the connection at MaxAuthTries, with a connection.refused row for a proven key', async () => {
    const f = flow();
    await proven(f);
    const ends: boolean[] = [];
    for (let i = 0; i < 3; i++) ends.push(((await f.answerCode('alice', wrongCode(alice))) as { endConnection: boolean }).endConnection);
    expect(ends).toEqual([false, false, true]);
    expect((await w.audit('connection.refused')).at(-1)!.data).toMatchObject({ user: 'alice', reason: 'too many authentication failures' });
  });

  it('answers every later request of a logged-in connection with the same identity', async () => {
    const f = flow();
    await proven(f);
    const d = await f.answerCode('alice', w.code(alice));
    expect(d.kind).toBe('accepted');
    expect(await f.verifyKey('alice', signed(alice.key))).toEqual(d);
    expect(await w.audit('auth.success')).toHaveLength(1);
  });
});

describe('LoginFlow: dependencies', () => {
  const required = ['users', 'roles', 'keys', 'totp', 'recoveryCodes', 'lockouts', 'audit', 'preauth', 'metrics', 'clock'] as const;
  it.each(required)('fails at construction without %s', (k) => {
    const deps = { ...w.deps, [k]: undefined } as unknown as LoginFlowDeps;
    expect(() => new LoginFlow(deps, { id: 'c', addr: ADDR, log: w.logger })).toThrow(`missing ${k}`);
  });
  it.each([
    ['totpWindow', -1],
    ['maxAuthTries', 0],
    ['maxAuthTries', undefined],
  ])('fails at construction with %s = %s', (k, v) => {
    expect(() => new LoginFlow({ ...w.deps, [k]: v } as LoginFlowDeps, { id: 'c', addr: ADDR, log: w.logger })).toThrow(`missing ${k}`);
  });
});
