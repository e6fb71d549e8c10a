import type { Logger } from './platform/logger.js';
import type { Stores } from './store/stores.js';
import type { Pty, PtySpawnOptions } from './session/pty.js';
import type { SessionRegistry } from './session/registry.js';
import type { RecordingSink } from './recording/sink.js';
import type { Signer } from './crypto/audit-key.js';
import type { Host } from './host/host.js';
import type { Metrics } from './platform/metrics.js';
import type { PreAuthAudit } from './audit/preauth.js';

/** Everything a connection needs, built once by the composition root. */
export interface GatewayContext extends Stores {
  logger: Logger;
  live: SessionRegistry;
  spawnPty: (o: PtySpawnOptions) => Pty;
  recordingSink: RecordingSink;
  auditSigner: Signer;
  host: Host;
  metrics: Metrics;
  /** Aggregated audit for clients that have not proven a key. */
  preauth: PreAuthAudit;
}
