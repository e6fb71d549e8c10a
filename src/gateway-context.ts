import type { Config } from './config/schema.js';
import type { Clock } from './platform/clock.js';
import type { Logger } from './platform/logger.js';
import type { AuditLog } from './audit/log.js';
import type { Db } from './store/db.js';
import type { UserRepo } from './store/users.js';
import type { RoleRepo } from './store/roles.js';
import type { KeyRepo } from './store/keys.js';
import type { TotpRepo } from './store/totp.js';
import type { SessionRepo } from './store/sessions.js';
import type { Lockouts } from './auth/lockout.js';
import type { Pty, PtySpawnOptions } from './session/pty.js';
import type { SessionRegistry } from './session/registry.js';
import type { RecordingRepo } from './store/recordings.js';
import type { RecordingSink } from './recording/sink.js';
import type { KeyProvider } from './crypto/master-key.js';
import type { Signer } from './crypto/audit-key.js';
import type { TmuxServers } from './session/tmux-servers.js';
import type { Metrics } from './platform/metrics.js';

/** Everything a connection needs, built once by the composition root. */
export interface GatewayContext {
  config: Config;
  clock: Clock;
  logger: Logger;
  db: Db;
  audit: AuditLog;
  users: UserRepo;
  roles: RoleRepo;
  keys: KeyRepo;
  totp: TotpRepo;
  sessions: SessionRepo;
  lockouts: Lockouts;
  live: SessionRegistry;
  spawnPty: (o: PtySpawnOptions) => Pty;
  recordings: RecordingRepo;
  recordingSink: RecordingSink;
  masterKeys: KeyProvider;
  auditSigner: Signer;
  tmux: TmuxServers;
  metrics: Metrics;
}
