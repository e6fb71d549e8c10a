import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import { systemRandom, type Random } from '../platform/random.js';
import type { Logger } from '../platform/logger.js';
import type { KeyProvider } from '../crypto/master-key.js';
import type { Sql } from '../store/sql.js';
import { AuditLog } from '../audit/log.js';
import { UserRepo } from '../store/users.js';
import { RoleRepo } from '../store/roles.js';
import { KeyRepo } from '../store/keys.js';
import { TotpRepo } from '../store/totp.js';
import { SessionRepo } from '../store/sessions.js';
import { RecordingRepo } from '../store/recordings.js';
import { Lockouts } from '../auth/lockout.js';
import { AuditEventRepo } from '../store/audit-events.js';
import { LockoutRepo } from '../store/lockouts.js';
import { ShareRepo } from '../store/shares.js';
import { KillRepo } from '../store/kills.js';
import { GatewayStateRepo } from '../store/gateway-state.js';
import { RecoveryCodeRepo } from '../store/recovery-codes.js';
import { HostAccountRepo } from '../store/host-accounts.js';
import { EvidenceShippingRepo } from '../store/evidence-shipping.js';
import { NodeRepo } from '../store/nodes.js';
import { PairServerRepo } from '../store/pair-servers.js';
import { EvidenceSinkRepo } from '../store/evidence-sinks.js';
import { UnmaskRepo } from '../store/unmask.js';

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
  /** Off-box shipping: each sink's cursor and which node ships. */
  evidenceShipping: EvidenceShippingRepo;
  nodes: NodeRepo;
  pairServers: PairServerRepo;
  /** The node this process speaks for: cluster.nodeId, or "local" on a single node. */
  nodeId: string;
  /** Off-box recording sinks: each node's lag, and which recordings each sink holds whole. */
  evidenceSinks: EvidenceSinkRepo;
  /** Four-eyes unmask requests and the grants approving them makes (services/unmask.ts). */
  unmask: UnmaskRepo;
  masterKeys: KeyProvider;
  /** Chance (ids, data keys, recovery codes), injected like the clock. */
  random: Random;
  /** The engine under the repositories (SQLite or PostgreSQL). */
  sql: Sql;
  /** Runs `fn` in one transaction: every repository write inside it commits or none does. */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
}

/** Builds the repositories over an open database. */
export function buildStores(config: Config, clock: Clock, sql: Sql, masterKeys: KeyProvider, logger?: Logger, random: Random = systemRandom): Stores {
  const auditEvents = new AuditEventRepo(sql);
  const nodeId = config.cluster?.nodeId ?? 'local';
  return {
    config,
    clock,
    audit: new AuditLog(auditEvents, clock, logger),
    auditEvents,
    users: new UserRepo(sql),
    roles: new RoleRepo(sql),
    keys: new KeyRepo(sql),
    totp: new TotpRepo(sql, masterKeys),
    sessions: new SessionRepo(sql, nodeId),
    lockouts: new Lockouts(new LockoutRepo(sql), clock, {
      user: config.auth.userLockout,
      address: config.auth.addressLockout,
      prefix: config.auth.prefixLockout,
    }),
    recordings: new RecordingRepo(sql, config.recording.retention),
    recoveryCodes: new RecoveryCodeRepo(sql, random),
    shares: new ShareRepo(sql),
    kills: new KillRepo(sql),
    gatewayState: new GatewayStateRepo(sql),
    hostAccounts: new HostAccountRepo(sql, random),
    evidenceShipping: new EvidenceShippingRepo(sql),
    nodes: new NodeRepo(sql),
    pairServers: new PairServerRepo(sql),
    nodeId,
    evidenceSinks: new EvidenceSinkRepo(sql),
    unmask: new UnmaskRepo(sql),
    masterKeys,
    random,
    sql,
    transaction: (fn) => sql.transaction(fn),
  };
}
