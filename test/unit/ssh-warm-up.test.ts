import { describe, expect, it } from 'vitest';
import { generateEd25519 } from '../../src/auth/host-key.js';
import { effectiveAlgorithms, ssh2Algorithms } from '../../src/crypto/algorithms.js';
import { warmUpSsh } from '../../src/ssh/warm-up.js';

/**
 * The SSH warm-up a gateway runs before its door opens (src/ssh/warm-up.ts): one whole
 * connection through ssh2 in memory. What it must do: finish with the gateway's own options,
 * narrowed or not; never throw, whatever the options; and leave nothing behind (no socket, no
 * timer), since it runs in every gateway start.
 */
const hostKey = generateEd25519().private;
const resources = () =>
  process
    .getActiveResourcesInfo()
    .filter((r) => r !== 'TTYWrap')
    .sort();

describe('ssh warm-up', () => {
  it('runs a whole login and session with the default algorithms, and leaves no handle behind', async () => {
    const before = resources();
    const r = await warmUpSsh({ hostKeys: [hostKey], algorithms: ssh2Algorithms(effectiveAlgorithms({})), ident: 'tmuxgate' });
    expect(r.ok).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(resources()).toEqual(before);
  });

  it('finishes with a narrowed algorithm set (what the config allows is what it negotiates)', async () => {
    const algorithms = ssh2Algorithms(effectiveAlgorithms({ cipher: ['aes256-gcm@openssh.com'], kex: ['diffie-hellman-group16-sha512'] }));
    expect((await warmUpSsh({ hostKeys: [hostKey], algorithms })).ok).toBe(true);
  });

  it('reports a failure instead of throwing', async () => {
    expect(await warmUpSsh({ hostKeys: ['not a key'] })).toEqual({ ok: false, ms: 0 });
  });
});
