import { performance } from 'node:perf_hooks';
import type { Metrics } from '../platform/metrics.js';
import type { SessionRegistry } from '../session/registry.js';

/** Where the gateway's gauges read their values. */
export interface GatewayMetricSources {
  live: Pick<SessionRegistry, 'all' | 'size'>;
  /** TCP connections not yet authenticated (the front door's count). */
  unauthenticated: () => number;
  /** User and address lockouts in force. */
  lockoutsActive: () => Promise<number>;
  /** The node link's listener, on a cluster node with a link. */
  link?: { pending(): number; refused(): number } | null;
}

/** The gateway's metrics catalogue: every series /metrics shows, described, its gauges wired, its counters at 0. */
export function registerGatewayMetrics(m: Metrics, s: GatewayMetricSources): void {
  m.describe('sessions_active', 'gauge', 'shell sessions open now');
  m.describe('connections_unauthenticated', 'gauge', 'TCP connections not yet authenticated');
  m.describe('logins_total', 'counter', 'authentication outcomes');
  m.describe('recording_bytes_total', 'counter', 'bytes of client stream recorded (in) and written to disk (stored)');
  m.describe('recording_seal_seconds_total', 'counter', 'main-thread time spent compressing, encrypting and chaining recording chunks');
  m.describe('process_cpu_seconds_total', 'counter', 'gateway CPU time, user and system, all threads');
  m.describe('recording_failures_total', 'counter', 'recordings that could not be written (sessions ended)');
  m.describe('store_write_failures_total', 'counter', 'store updates that could not be written and were left for the next one (recording progress rows)');
  m.describe('lockouts_active', 'gauge', 'user and address lockouts in force');
  m.describe('process_resident_memory_bytes', 'gauge', 'gateway RSS');
  m.describe('recording_queue_bytes', 'gauge', 'recording bytes sealed and waiting to be written, all sessions (a session fails at recording.maxQueueBytes)');
  m.describe('sessions_waiting_for_client', 'gauge', 'sessions whose output is held because the client is not reading it');
  m.describe('sessions_waiting_for_pty', 'gauge', "sessions whose input is held at the user's client because the pty's program is not reading it");
  m.describe('event_loop_utilization', 'gauge', 'share of time the event loop was busy since the previous scrape (near 1: keystrokes queue in the gateway)');
  m.gauge('recording_queue_bytes', () => s.live.all().reduce((a, x) => a + (x.recorder?.queuedBytes ?? 0), 0));
  m.gauge('sessions_waiting_for_client', () => s.live.all().filter((x) => x.shell.waitingForClient).length);
  m.gauge('sessions_waiting_for_pty', () => s.live.all().filter((x) => x.shell.waitingForPty).length);
  // From libuv's own idle-time accounting: no timer, so it costs nothing at rest (a 20 ms
  // event-loop-delay monitor was measured at 0.4% of a core on an idle gateway).
  let eluMark = performance.eventLoopUtilization();
  m.gauge('event_loop_utilization', () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, eluMark).utilization;
    eluMark = now;
    return u;
  });
  m.gauge('sessions_active', () => s.live.size);
  m.gauge('connections_unauthenticated', s.unauthenticated);
  m.gauge('lockouts_active', s.lockoutsActive);
  m.gauge('process_resident_memory_bytes', () => process.memoryUsage.rss());
  m.describe('process_heap_used_bytes', 'gauge', 'JavaScript heap in use (RSS less native memory and allocator slack)');
  m.gauge('process_heap_used_bytes', () => process.memoryUsage().heapUsed);
  m.gauge('process_cpu_seconds_total', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  const link = s.link;
  if (link) {
    m.describe('link_connections_unauthenticated', 'gauge', 'node link connections not yet authenticated');
    m.describe('link_connections_refused_total', 'counter', 'node link connections closed at accept: from a port any user may bind');
    m.gauge('link_connections_unauthenticated', () => link.pending());
    m.gauge('link_connections_refused_total', () => link.refused());
  }
  for (const r of ['success', 'failure', 'locked']) m.inc(`logins_total{result="${r}"}`, 0);
  m.inc('recording_seal_seconds_total', 0);
}
