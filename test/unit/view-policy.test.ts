import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { FakeClock } from '../../src/platform/clock.js';
import { policyAudit, unmaskedUntil, viewPolicy, type ViewPolicyContext } from '../../src/redaction/view-policy.js';
import type { UnmaskGrantRow } from '../../src/store/unmask.js';
import { grantExpiry } from '../../src/admin/recordings.js';
import { waitUntil } from '../helpers/poll.js';

/** The one place that decides whether a view is redacted (the unmask grants will change only it). */
describe('viewPolicy', () => {
  const clock = new FakeClock(0);
  const on = { config: buildConfig({}, { file: null, baseDir: '/tmp' }), clock };
  const off = { config: buildConfig({ redaction: { enabled: false } }, { file: null, baseDir: '/tmp' }), clock };

  it('redacts every view by default, recordings of one’s own sessions included', async () => {
    expect(on.config.redaction.enabled).toBe(true);
    for (const view of ['replay', 'export', 'search', 'observe'] as const) {
      expect(await viewPolicy(on, { actor: 'os:root' }, { view, sessionId: 's_1' })).toEqual({ redact: true });
      expect(await viewPolicy(on, { actor: 'alice', userId: 7 }, { view, sessionId: 's_1', ownerUserId: 7 })).toEqual({ redact: true });
    }
    expect(await viewPolicy(on, { actor: 'bob', userId: 8 }, { view: 'watch', sessionId: null, ownerUserId: 7 })).toEqual({ redact: true });
    expect(await viewPolicy(on, { actor: 'bob' }, { view: 'watch', sessionId: null })).toEqual({ redact: true });
  });

  it('shows a live watch as it is only to the session’s own user, and everything when redaction is off', async () => {
    const own = await viewPolicy(on, { actor: 'alice', userId: 7 }, { view: 'watch', sessionId: null, ownerUserId: 7 });
    expect(own).toEqual({ redact: false, unredacted: 'owner' });
    const disabled = await viewPolicy(off, { actor: 'os:root' }, { view: 'replay', sessionId: 's_1' });
    expect(disabled).toEqual({ redact: false, unredacted: 'disabled' });
    expect(policyAudit({ redact: true })).toEqual({ redacted: true });
    expect(policyAudit(disabled)).toEqual({ redacted: false, unredacted: 'disabled' });
    expect(policyAudit({ redact: false, grant: { id: 'g_1', reason: 'incident 42', expiresAt: 1 } })).toEqual({
      redacted: false,
      grant: { id: 'g_1', reason: 'incident 42' },
    });
  });

  it('unmasks a view under a grant in force of this viewer for this session, audited before it is shown; nobody else, no other session', async () => {
    const grant: UnmaskGrantRow = {
      id: 3,
      request_id: 2,
      session_id: 's_1',
      grantee: 'os:alice(as root)',
      reason: 'incident 42',
      approved_by: 'os:bob(as root)',
      approved_at: 0,
      expires_at: 3_600_000,
      revoked_at: null,
      revoked_by: null,
      revoke_reason: null,
    };
    const emitted: { actor: string; event: Record<string, unknown> }[] = [];
    const ctx = {
      ...on,
      unmask: { grantsInForce: async (sessionId: string, now: number) => (sessionId === 's_1' && now < grant.expires_at ? [grant] : []) },
      audit: { emit: async (actor: string, event: Record<string, unknown>) => void emitted.push({ actor, event }) },
    } as unknown as ViewPolicyContext;
    const p = await viewPolicy(ctx, { actor: 'os:alice' }, { view: 'replay', sessionId: 's_1' });
    expect(p).toEqual({ redact: false, grant: { id: '3', reason: 'incident 42', expiresAt: 3_600_000 } });
    expect(unmaskedUntil(p)).toBe(3_600_000);
    expect(emitted).toEqual([
      { actor: 'os:alice', event: expect.objectContaining({ type: 'unmask.view', grantId: 3, sessionId: 's_1', what: 'replay', reason: 'incident 42' }) },
    ]);
    // The approver, another admin, root without a name, another session: redacted, nothing audited as unmasked.
    for (const [actor, sessionId] of [
      ['os:bob', 's_1'],
      ['os:carol', 's_1'],
      ['os:root', 's_1'],
      ['os:alice', 's_2'],
    ] as const) {
      expect(await viewPolicy(ctx, { actor }, { view: 'export', sessionId })).toEqual({ redact: true });
    }
    clock.advance(3_600_000); // expired
    expect(await viewPolicy(ctx, { actor: 'os:alice' }, { view: 'search', sessionId: 's_1' })).toEqual({ redact: true });
    expect(emitted).toHaveLength(1);
    expect(unmaskedUntil({ redact: true })).toBeNull();
  });

  it('a view shown unmasked ends when its grant is revoked (checked every 5 s) or expires, once', async () => {
    const clock = new FakeClock(0);
    let inForce = true;
    const row = { id: 1, request_id: 1, session_id: 's_1', grantee: 'os:alice', reason: 'r', approved_by: 'os:bob', approved_at: 0, expires_at: 60_000 };
    const a = {
      clock,
      actor: 'os:alice',
      unmask: { grantsInForce: async () => (inForce ? [{ ...row, revoked_at: null, revoked_by: null, revoke_reason: null }] : []) },
    };
    const policy = { redact: false as const, grant: { id: '1', reason: 'r', expiresAt: 60_000 } };
    let ended = 0;
    grantExpiry(a as unknown as Parameters<typeof grantExpiry>[0], policy, 's_1', () => ended++);
    clock.advance(5000);
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(0);
    inForce = false; // revoked
    clock.advance(5000);
    await waitUntil(() => ended === 1, 'the view to end at the next check');
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(1);

    let expired = 0;
    inForce = true;
    grantExpiry(a as unknown as Parameters<typeof grantExpiry>[0], policy, 's_1', () => expired++);
    clock.advance(60_000);
    await waitUntil(() => expired === 1, 'the view to end at expiry');
    expect(grantExpiry(a as unknown as Parameters<typeof grantExpiry>[0], { redact: true }, 's_1', () => expired++)).toBeTypeOf('function');
  });
});
