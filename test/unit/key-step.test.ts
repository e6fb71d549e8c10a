import { describe, expect, it } from 'vitest';
import { publicKeyStep, type KeyStepPort } from '../../src/auth/key-step.js';
import type { Role } from '../../src/store/roles.js';
import type { User } from '../../src/store/users.js';
import { roleRow } from '../helpers/recording.js';

const ops: Role = roleRow(1, 'ops');
const alice: User = { id: 7, name: 'alice', defaultRoleId: 1, disabled: false, createdAt: 0 };
const ENROLLED = Buffer.from('enrolled-key');
const OTHER = Buffer.from('some-other-key');

/**
 * A port over one user (alice, key ENROLLED, role ops) that logs every call it gets, and in
 * `rounds` the round trips a shared store would see: lookups asked for before any answered share
 * a round; each answers a macrotask later, as a database would.
 */
function countingPort(signatureValid: boolean): KeyStepPort & { calls: string[]; rounds: string[][] } {
  const calls: string[] = [];
  const rounds: string[][] = [];
  let answered = true;
  const read = <T>(name: string, v: T): Promise<T> => {
    calls.push(name);
    if (answered) rounds.push([]);
    answered = false;
    rounds.at(-1)!.push(name);
    return new Promise((resolve) => setImmediate(() => ((answered = true), resolve(v))));
  };
  return {
    calls,
    rounds,
    findUser: (name) => read('findUser', name === 'alice' ? alice : null),
    decoyUser: () => read('decoyUser', alice),
    roleExists: (name) => read('roleExists', name === 'ops' || name === 'dba'),
    grantsOf: (id) => read(`grantsOf(${id})`, id === alice.id ? [ops] : []),
    findKey: (id, blob) => read(`findKey(${id})`, id === alice.id && blob.equals(ENROLLED) ? { fingerprint: 'SHA256:x' } : null),
    verify: () => (calls.push('verify'), signatureValid),
  };
}

const signed = (blob: Buffer) => ({ blob, signed: Buffer.from('session-data'), signature: Buffer.from('sig'), hashAlgo: 'sha512' });

describe('publickey step: every refusal does the same work (no timing oracle for user names)', () => {
  it.each([
    ['an unknown user', 'mallory', signed(OTHER), 'unknown-user'],
    ['an existing user with a key that is not enrolled', 'alice', signed(OTHER), 'unknown-key'],
    ['an existing user with the enrolled key and a bad signature', 'alice', signed(ENROLLED), 'bad-signature'],
    ['an existing user and a role not granted', 'alice+dba', signed(ENROLLED), 'role-not-granted'],
    ['an unknown user and an existing role', 'mallory+dba', signed(OTHER), 'unknown-user'],
  ])('signed attempt, %s: lookups and one signature check, in the same order', async (_what, login, offer, reason) => {
    const port = countingPort(false);
    const r = await publicKeyStep(port, login, offer);
    expect(r).toEqual({ kind: 'refused', reason });
    // The user and the decoy together, hit or miss; grants and keys are then read for a real user (id 7) either way.
    expect(port.calls).toEqual(['findUser', 'decoyUser', ...(login.includes('+') ? ['roleExists'] : []), 'grantsOf(7)', 'findKey(7)', 'verify']);
    expect(port.rounds).toEqual([
      ['findUser', 'decoyUser'],
      [...(login.includes('+') ? ['roleExists'] : []), 'grantsOf(7)', 'findKey(7)'],
    ]);
  });

  it('a query (no signature) for an unknown user and for a wrong key do the same lookups, no verify', async () => {
    const unknown = countingPort(true);
    const wrongKey = countingPort(true);
    expect(await publicKeyStep(unknown, 'mallory', { blob: ENROLLED })).toEqual({ kind: 'refused', reason: 'unknown-user' });
    expect(await publicKeyStep(wrongKey, 'alice', { blob: OTHER })).toEqual({ kind: 'refused', reason: 'unknown-key' });
    // The same round trips, in the same order: on a shared store a miss costs what a hit costs.
    expect(unknown.rounds).toEqual([
      ['findUser', 'decoyUser'],
      ['grantsOf(7)', 'findKey(7)'],
    ]);
    expect(wrongKey.rounds).toEqual(unknown.rounds);
  });

  it('an unknown user with a valid signature over their own key is still refused', async () => {
    const port = countingPort(true);
    expect(await publicKeyStep(port, 'mallory', signed(OTHER))).toEqual({ kind: 'refused', reason: 'unknown-user' });
  });

  it('proves the enrolled key with a good signature, and answers a query for it with key-ok', async () => {
    expect(await publicKeyStep(countingPort(true), 'alice', signed(ENROLLED))).toEqual({ kind: 'proved', user: alice, role: ops, fingerprint: 'SHA256:x' });
    expect(await publicKeyStep(countingPort(true), 'alice', { blob: ENROLLED })).toEqual({ kind: 'key-ok', userId: alice.id });
    expect(await publicKeyStep(countingPort(true), 'alice+nosuch', signed(ENROLLED))).toEqual({ kind: 'refused', reason: 'unknown-role' });
    expect(await publicKeyStep(countingPort(true), 'Al ice', signed(ENROLLED))).toEqual({ kind: 'refused', reason: 'invalid-login-name' });
    expect(await publicKeyStep(countingPort(true), 'alice', { ...signed(ENROLLED), hashAlgo: 'sha1' })).toMatchObject({ kind: 'proved' }); // the port's verify decides; the real one refuses SHA-1
  });
});

describe('publickey step after a query found the key (KnownOwner)', () => {
  it('reads the user alongside its grants and key, and decides as the ordinary step does', async () => {
    const port = countingPort(true);
    expect(await publicKeyStep(port, 'alice', signed(ENROLLED), { userId: alice.id })).toEqual({
      kind: 'proved',
      user: alice,
      role: ops,
      fingerprint: 'SHA256:x',
    });
    // All three lookups were asked for before any answered (one round trip on a shared store).
    expect(port.calls).toEqual(['findUser', 'grantsOf(7)', 'findKey(7)', 'verify']);
    expect(port.rounds).toEqual([['findUser', 'grantsOf(7)', 'findKey(7)']]);
    // With a role: four at once, five with the login's lock check alongside (the pool's WARM_CONNECTIONS).
    const withRole = countingPort(true);
    await publicKeyStep(withRole, 'alice+ops', signed(ENROLLED), { userId: alice.id });
    expect(withRole.rounds).toEqual([['findUser', 'roleExists', 'grantsOf(7)', 'findKey(7)']]);
    expect(await publicKeyStep(countingPort(false), 'alice', signed(ENROLLED), { userId: alice.id })).toEqual({ kind: 'refused', reason: 'bad-signature' });
    expect(await publicKeyStep(countingPort(true), 'alice', signed(OTHER), { userId: alice.id })).toEqual({ kind: 'refused', reason: 'unknown-key' });
    expect(await publicKeyStep(countingPort(true), 'alice+dba', signed(ENROLLED), { userId: alice.id })).toEqual({
      kind: 'refused',
      reason: 'role-not-granted',
    });
  });

  it('runs the ordinary step when the name no longer resolves to that user', async () => {
    const port = countingPort(true);
    // The query found user 8; now "alice" is user 7 (removed and added again meanwhile): nothing read for 8 decides.
    expect(await publicKeyStep(port, 'alice', signed(ENROLLED), { userId: 8 })).toEqual({ kind: 'proved', user: alice, role: ops, fingerprint: 'SHA256:x' });
    expect(port.calls).toEqual(['findUser', 'grantsOf(8)', 'findKey(8)', 'findUser', 'decoyUser', 'grantsOf(7)', 'findKey(7)', 'verify']);
    const gone = countingPort(true);
    expect(await publicKeyStep(gone, 'mallory', signed(ENROLLED), { userId: alice.id })).toEqual({ kind: 'refused', reason: 'unknown-user' });
    expect(gone.calls.slice(3)).toEqual(['findUser', 'decoyUser', 'grantsOf(7)', 'findKey(7)', 'verify']);
  });
});

describe('address prefixes for limits and lockouts', async () => {
  const { addressPrefix } = await import('../../src/auth/address-prefix.js');
  it.each([
    ['192.0.2.77', '192.0.2.0/24'],
    ['127.1.2.3', '127.1.2.0/24'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['2001:0db8:0001:0002::', '2001:db8:1:2::/64'],
    ['::ffff:10.1.2.3', '0:0:0:0::/64'],
    ['unknown', 'unknown'],
  ])('%s -> %s', (a, p) => expect(addressPrefix(a)).toBe(p));
});
