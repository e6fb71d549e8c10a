import type { SyslogConfig } from '../config/evidence.js';
import type { SyslogShipperOptions } from './syslog-tls.js';

export { EvidenceConfigSchema, SyslogConfigSchema, type SyslogConfig, type SyslogConfigInput } from '../config/evidence.js';

/** The store's evidence_shipping row (cursor and lease) of the audit log's syslog sink. */
export const SYSLOG_TARGET = 'syslog';

/** Shipper options from a parsed `evidence.syslog` (paths as given: the loader resolves them). */
export function shipperOptionsFromConfig(c: SyslogConfig): SyslogShipperOptions {
  return {
    host: c.host,
    port: c.port,
    caFile: c.caFile,
    ...(c.certFile !== undefined && c.keyFile !== undefined ? { certFile: c.certFile, keyFile: c.keyFile } : {}),
    ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
    format: { facility: c.facility, maxMessageBytes: c.maxMessageBytes, ...(c.hostname !== undefined ? { hostname: c.hostname } : {}) },
    maxLagEvents: c.maxLagEvents,
    confirmAfterMs: c.confirmAfter,
  };
}
