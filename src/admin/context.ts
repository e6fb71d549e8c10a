import os from 'node:os';
import type { Config } from '../config/schema.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { openDb, type Db } from '../store/db.js';
import { AuditLog } from '../audit/log.js';
import { UserRepo } from '../store/users.js';
import { RoleRepo } from '../store/roles.js';
import { KeyRepo } from '../store/keys.js';
import { TotpRepo } from '../store/totp.js';
import { SessionRepo } from '../store/sessions.js';
import { Lockouts } from '../auth/lockout.js';
import { loadMasterKey, type KeyProvider } from '../crypto/master-key.js';
import { ensureKeysDir } from '../crypto/key-files.js';
import { RecordingRepo } from '../store/recordings.js';

/** What admin operations need: the store, the master key and who is acting. */
export interface AdminContext {
  config: Config;
  clock: Clock;
  db: Db;
  audit: AuditLog;
  users: UserRepo;
  roles: RoleRepo;
  keys: KeyRepo;
  totp: TotpRepo;
  sessions: SessionRepo;
  lockouts: Lockouts;
  recordings: RecordingRepo;
  /** The master key, loaded on first use (public-key-only verification never needs it). */
  masterKeys: KeyProvider;
  /** "os:<account>" for CLI use. */
  actor: string;
  close(): void;
}

/** The actor name for the OS user running the CLI (SUDO_USER when run through sudo). */
export function cliActor(): string {
  const u = os.userInfo().username;
  const sudo = process.env.SUDO_USER;
  return sudo && sudo !== u ? `os:${sudo}(as ${u})` : `os:${u}`;
}

/** Opens the store for an admin command; creates keys only when `createKeys` (init). */
export function openAdmin(config: Config, opts: { clock?: Clock; actor?: string; createKeys?: boolean; keys?: KeyProvider } = {}): AdminContext {
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
  const db = openDb(config.paths.dbFile);
  return {
    config,
    clock,
    db,
    audit: new AuditLog(db, clock),
    users: new UserRepo(db),
    roles: new RoleRepo(db),
    keys: new KeyRepo(db),
    totp: new TotpRepo(db, provider),
    sessions: new SessionRepo(db),
    lockouts: new Lockouts(db, clock, { user: config.auth.userLockout, address: config.auth.addressLockout }),
    recordings: new RecordingRepo(db),
    masterKeys: provider,
    actor: opts.actor ?? cliActor(),
    close: () => db.close(),
  };
}
