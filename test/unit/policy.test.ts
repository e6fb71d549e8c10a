import { describe, expect, it } from 'vitest';
import { nextStep } from '../../src/auth/policy.js';
import { authorize } from '../../src/authz/decide.js';
import { parseLoginName } from '../../src/authz/login-name.js';
import type { User } from '../../src/store/users.js';
import { roleRow } from '../helpers/recording.js';

const role = roleRow;
const user = (o: Partial<User> = {}): User => ({ id: 1, name: 'alice', defaultRoleId: 1, disabled: false, createdAt: 0, ...o });

describe('auth policy: both factors, always, in order', () => {
  it('asks for publickey first, then TOTP as a partial success, then accepts', async () => {
    expect(nextStep({ keyUser: null, keyLogin: null, totp: false }, 'alice')).toEqual({ kind: 'need', methods: ['publickey'], partial: false });
    expect(nextStep({ keyUser: 'alice', keyLogin: 'alice', totp: false }, 'alice')).toEqual({ kind: 'need', methods: ['keyboard-interactive'], partial: true });
    expect(nextStep({ keyUser: 'alice', keyLogin: 'alice', totp: true }, 'alice')).toEqual({ kind: 'accepted' });
  });
  it('never accepts TOTP alone', async () => {
    expect(nextStep({ keyUser: null, keyLogin: null, totp: true }, 'alice').kind).toBe('need');
  });
  it('rejects a login name that changes between the steps', async () => {
    expect(nextStep({ keyUser: 'alice', keyLogin: 'alice', totp: false }, 'alice+dba').kind).toBe('rejected');
    expect(nextStep({ keyUser: 'alice', keyLogin: 'alice', totp: true }, 'bob').kind).toBe('rejected');
  });
});

describe('authorization', () => {
  const ops = role(1, 'ops');
  const dba = role(2, 'dba');
  it('gives the default role, or a requested granted role', async () => {
    expect(authorize({ user: user(), requested: null, granted: [ops, dba] })).toEqual({ ok: true, role: ops });
    expect(authorize({ user: user(), requested: 'dba', granted: [ops, dba] })).toEqual({ ok: true, role: dba });
  });
  it('refuses ungranted roles, unknown and disabled users, and an ambiguous default', async () => {
    expect(authorize({ user: user(), requested: 'dba', granted: [ops] })).toEqual({ ok: false, reason: 'role-not-granted' });
    expect(authorize({ user: null, requested: null, granted: [] })).toEqual({ ok: false, reason: 'unknown-user' });
    expect(authorize({ user: user({ disabled: true }), requested: null, granted: [ops] })).toEqual({ ok: false, reason: 'user-disabled' });
    expect(authorize({ user: user({ defaultRoleId: null }), requested: null, granted: [ops, dba] })).toEqual({ ok: false, reason: 'no-default-role' });
    expect(authorize({ user: user({ defaultRoleId: 2 }), requested: null, granted: [ops] })).toEqual({ ok: true, role: ops });
  });
});

describe('login names', () => {
  it.each([
    ['alice', { user: 'alice', role: null }],
    ['alice+dba', { user: 'alice', role: 'dba' }],
    ['a.b_c-d', { user: 'a.b_c-d', role: null }],
  ])('parses %s', (s, want) => expect(parseLoginName(s)).toEqual(want));
  it.each(['', 'Alice', 'alice+', '+dba', 'alice+dba+x', '../etc', 'al ice', 'a'.repeat(33), 'alice\0', 'ali\nce', '-rf', '1abc', 'ålice'])('refuses %j', (s) =>
    expect(parseLoginName(s)).toBeNull(),
  );
});
