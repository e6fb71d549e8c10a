import type { AdminContext } from './context.js';
import { rotateMasterKey } from '../crypto/master-key.js';

/**
 * Rotates the master key: a new key file, every recording data key and TOTP secret re-wrapped
 * under it in one transaction with its audit event; the old key is kept as a retired key file.
 */
export function rotateKeys(a: AdminContext): Promise<{ oldId: string; newId: string; rewrapped: number }> {
  return rotateMasterKey(a.config.paths.keysDir, (p) =>
    a.transaction(async () => {
      // rewrapAll opens with and seals under the provider it is given, not the one the repository was built with.
      const n = (await a.recordings.rewrapAll(p)) + (await a.totp.rewrapAll(p));
      await a.audit.emit(a.actor, { type: 'admin.change', action: 'keys.rotate', target: 'master.key', detail: { newKeyId: p.keyId, rewrapped: n } });
      return n;
    }),
  );
}
