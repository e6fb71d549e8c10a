import os from 'node:os';
import type { Config } from '../config/schema.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { openStore } from '../store/open.js';
import { buildStores, type Stores } from '../services/stores.js';
import { loadMasterKey, type KeyProvider } from '../crypto/master-key.js';
import { ensureKeysDir } from '../crypto/key-files.js';
import { loginAccountName } from '../host/account.js';

/** What admin operations need: the stores, the master key and who is acting. */
export interface AdminContext extends Stores {
  /** "os:<account>" for CLI use. */
  actor: string;
  close(): Promise<void>;
}

/**
 * The actor name for the OS user running the CLI: `os:<person>(as <account>)` when the person
 * differs from the account. The person is the login the kernel recorded (/proc/self/loginuid:
 * kept through sudo and su, not settable by the caller) wherever a login set it; only without one
 * (a container, CI) is it SUDO_USER, an environment variable any root shell can set, which the
 * four-eyes rules then trust no further than that (docs/redaction.md).
 */
export function cliActor(login: string | null = loginAccountName()): string {
  const u = os.userInfo().username;
  const who = login ?? process.env.SUDO_USER;
  return who && who !== u ? `os:${who}(as ${u})` : `os:${u}`;
}

/** Opens the store for an admin command; creates keys only when `createKeys` (init). */
export async function openAdmin(config: Config, opts: { clock?: Clock; actor?: string; createKeys?: boolean; keys?: KeyProvider } = {}): Promise<AdminContext> {
  const clock = opts.clock ?? systemClock;
  if (opts.createKeys) ensureKeysDir(config.paths.keysDir);
  let loaded: KeyProvider | null = opts.keys ?? null;
  const load = (): KeyProvider => (loaded ??= loadMasterKey(config.paths.keysDir, { create: opts.createKeys ?? false }).provider);
  // Lazy: commands that never touch a secret must work without read access to master.key.
  const provider: KeyProvider = {
    get keyId() {
      return load().keyId;
    },
    seal: (p, aad) => load().seal(p, aad),
    open: (b, aad, id) => load().open(b, aad, id),
  };
  const sql = await openStore(config, { name: 'tmuxgate-cli' });
  return {
    ...buildStores(config, clock, sql, provider),
    actor: opts.actor ?? cliActor(),
    close: () => sql.close(),
  };
}
