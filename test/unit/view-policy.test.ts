import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { FakeClock } from '../../src/platform/clock.js';
import { policyAudit, viewPolicy } from '../../src/redaction/view-policy.js';

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
    expect(policyAudit({ redact: false, grant: { id: 'g_1', reason: 'incident 42' } })).toEqual({
      redacted: false,
      grant: { id: 'g_1', reason: 'incident 42' },
    });
  });
});
