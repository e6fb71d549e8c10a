import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import { systemRandom, type Random } from '../platform/random.js';
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
import { AuditEventRepo } from './audit-events.js';
import { LockoutRepo } from './lockouts.js';
import { ShareRepo } from './shares.js';
import { KillRepo } from './kills.js';
import { GatewayStateRepo } from './gateway-state.js';
import { RecoveryCodeRepo } from './recovery-codes.js';
import { HostAccountRepo } from './host-accounts.js';

/** Every repository over one database: what the gateway and the admin CLI share. */
export interface Stores {
  config: Config;
  clock: Clock;
  audit: AuditLog;
  auditEvents: AuditEventRepo;
  users: UserRepo;
  roles: RoleRepo;
  keys: KeyRepo;
  totp: TotpRepo;
  sessions: SessionRepo;
  lockouts: Lockouts;
  recordings: RecordingRepo;
  recoveryCodes: RecoveryCodeRepo;
  shares: ShareRepo;
  kills: KillRepo;
  gatewayState: GatewayStateRepo;
  hostAccounts: HostAccountRepo;
  masterKeys: KeyProvider;
  /** Chance (ids, data keys, recovery codes), injected like the clock. */
  random: Random;
  /** Runs `fn` in one IMMEDIATE transaction: every repository write inside it commits or none does. */
  transaction<T>(fn: () => T): T;
}

/** Builds the repositories over an open database. */
export function buildStores(config: Config, clock: Clock, db: Db, masterKeys: KeyProvider, logger?: Logger, random: Random = systemRandom): Stores {
  const auditEvents = new AuditEventRepo(db);
  return {
    config,
    clock,
    audit: new AuditLog(auditEvents, clock, logger),
    auditEvents,
    users: new UserRepo(db),
    roles: new RoleRepo(db),
    keys: new KeyRepo(db),
    totp: new TotpRepo(db, masterKeys),
    sessions: new SessionRepo(db),
    lockouts: new Lockouts(new LockoutRepo(db), clock, {
      user: config.auth.userLockout,
      address: config.auth.addressLockout,
      prefix: config.auth.prefixLockout,
    }),
    recordings: new RecordingRepo(db),
    recoveryCodes: new RecoveryCodeRepo(db, random),
    shares: new ShareRepo(db),
    kills: new KillRepo(db),
    gatewayState: new GatewayStateRepo(db),
    hostAccounts: new HostAccountRepo(db, random),
    masterKeys,
    random,
    transaction: (fn) => db.transaction(fn).immediate(),
  };
}
