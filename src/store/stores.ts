import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { KeyProvider } from '../crypto/master-key.js';
import type { Db } from './db.js';
import { AuditLog } from '../audit/log.js';
import { UserRepo } from './users.js';
import { RoleRepo } from './roles.js';
import { KeyRepo } from './keys.js';
import { TotpRepo } from './totp.js';
import { SessionRepo } from './sessions.js';
import { RecordingRepo } from './recordings.js';
import { Lockouts } from '../auth/lockout.js';

/** Every repository over one database: what the gateway and the admin CLI share. */
export interface Stores {
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
  masterKeys: KeyProvider;
}

/** Builds the repositories over an open database. */
export function buildStores(config: Config, clock: Clock, db: Db, masterKeys: KeyProvider, logger?: Logger): Stores {
  return {
    config,
    clock,
    db,
    audit: new AuditLog(db, clock, logger),
    users: new UserRepo(db),
    roles: new RoleRepo(db),
    keys: new KeyRepo(db),
    totp: new TotpRepo(db, masterKeys),
    sessions: new SessionRepo(db),
    lockouts: new Lockouts(db, clock, { user: config.auth.userLockout, address: config.auth.addressLockout, prefix: config.auth.prefixLockout }),
    recordings: new RecordingRepo(db),
    masterKeys,
  };
}
