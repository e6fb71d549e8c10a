import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { TestGateway } from '../helpers/gateway.js';
import { cliAsync } from '../helpers/cli.js';
import { addRole, generateRecoveryCodes } from '../../src/admin/operations.js';

const ACCOUNT = 'tgcomp';
const isRoot = process.getuid?.() === 0;

interface Report {
  failed: number;
  checks: { id: string; pass: boolean; evidence: string }[];
}

/** The compliance report against a hardened and a loosened live gateway. */
describe.skipIf(!isRoot)('compliance report', () => {
  const hardened = new TestGateway({ sessions: { idleTimeout: '10m', maxSessionTime: '8h' } });
  const loose = new TestGateway({
    sessions: { idleTimeout: '2h', idleWarning: '1m', maxSessionTime: '48h' },
    recording: { enabled: false },
    redaction: { enabled: false },
  });

  beforeAll(async () => {
    if (spawnSync('id', [ACCOUNT]).status !== 0) spawnSync('useradd', ['-M', '-s', '/bin/sh', ACCOUNT]);
    await hardened.start();
    await addRole(hardened.admin, { name: 'ops', runAs: ACCOUNT });
    await hardened.user('alice', 'ops');
    await generateRecoveryCodes(hardened.admin, 'alice', 5);
    await loose.start();
    await loose.user('bob', 'ops'); // a role under the gateway's own account: development mode
  });
  afterAll(async () => {
    await hardened.stop();
    await loose.stop();
  });

  it('passes on a hardened configuration, with the evidence it read', async () => {
    await hardened.gw.close('checkpoint before the report'); // signs the audit chain head
    const r = await cliAsync(['compliance', 'report', '--json', ...hardened.cliConfig()]);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.checks.filter((c) => !c.pass)).toEqual([]);
    expect(r.status).toBe(0);
    const ev = Object.fromEntries(rep.checks.map((c) => [c.id, c.evidence]));
    expect(ev['automatic-logoff']).toContain('idle timeout 10m');
    expect(ev['least-privilege']).toContain(`ops->${ACCOUNT}`);
    expect(ev['host-key-permissions']).toContain('0600');
    expect(ev['transmission-security']).toContain('curve25519-sha256');
    expect(ev['audit-offsite']).toContain('audit log shipping is not configured (evidence.syslog)');
    expect(ev['minimum-necessary']).toContain('redact identifiers by default; every built-in detector on');
    const md = await cliAsync(['compliance', 'report', '--markdown', ...hardened.cliConfig()]);
    expect(md.stdout).toContain('| PASS | 164.312(b) | Audit controls |');
  });

  it('fails on a loosened one, naming the right lines, and exits non-zero', async () => {
    const r = await cliAsync(['compliance', 'report', '--json', ...loose.cliConfig()]);
    expect(r.status).toBe(1);
    const rep = JSON.parse(r.stdout) as Report;
    const failed = rep.checks.filter((c) => !c.pass).map((c) => c.id);
    expect(failed).toEqual(
      expect.arrayContaining(['automatic-logoff', 'encryption-at-rest', 'audit-controls', 'least-privilege', 'emergency-access', 'minimum-necessary']),
    );
    expect(failed).not.toContain('transmission-security');
    const lp = rep.checks.find((c) => c.id === 'least-privilege')!;
    expect(lp.evidence).toContain('DEVELOPMENT MODE');
    expect(rep.checks.find((c) => c.id === 'minimum-necessary')!.evidence).toContain('redaction is OFF');
    const text = await cliAsync(['compliance', 'report', ...loose.cliConfig()]);
    expect(text.stdout).toMatch(/FAIL {2}164\.312\(a\)\(2\)\(iii\) Automatic logoff\n {6}idle timeout 2h/);
  });
});
