import os from 'node:os';
import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import type { Random } from '../platform/random.js';
import { newId } from '../platform/ids.js';
import type { Signer } from '../crypto/audit-key.js';
import type { Stores } from '../services/stores.js';
import type { OffsiteRecordings } from '../recording/offsite.js';
import { shipperOptionsFromConfig, SYSLOG_TARGET } from '../evidence/config.js';
import { SyslogShipper } from '../evidence/syslog-tls.js';
import { LeasedShipper } from '../evidence/leased-shipper.js';
import { Anchorer, type AnchorTarget } from '../evidence/anchors.js';
import { syslogAnchorTarget } from '../evidence/syslog-anchor.js';
import { nodeName, openOffsiteStores } from '../evidence/open-sinks.js';
import type { OffsiteStore } from '../evidence/offsite-store.js';
import { startRecordingEvidence, type RecordingEvidence } from './evidence-recordings.js';

/** What a user whose new session is refused reads (onFailure: required). */
export const SHIPPING_BEHIND = 'audit log shipping is behind; new sessions are refused until the collector is reachable';
/** What a live session ends with (onFailure: required). */
export const SHIPPING_BEHIND_LIVE = 'audit log shipping is behind; sessions end until the collector is reachable';
/** The same for recordings (evidence.recordings.onFailure: required). */
export const RECORDINGS_BEHIND = 'recording shipping is behind; new sessions are refused until the off-box store is reachable';
export const RECORDINGS_BEHIND_LIVE = 'recording shipping is behind; sessions end until the off-box store is reachable';

/** The off-box evidence as the rest of the gateway sees it. */
export interface Evidence {
  /** Why a new session may not start now (the user's message and the audit detail), or null. */
  refusal(): { why: string; detail: string } | null;
  /** The message live sessions end with now, or null. */
  endLive(): string | null;
  /** The gateway is serving and its start is checkpointed: the first anchors go now (then every anchorInterval). */
  started(): void;
  /** Where recorders hand their durable records (evidence.recordings), if configured. */
  readonly offsite?: OffsiteRecordings;
  /**
   * The last anchors, what the recording sinks can still ship (5 s), the syslog shipper's
   * orderly close and its lease. After the drain's last checkpoint, before the store closes.
   */
  close(): Promise<void>;
}

export interface EvidenceDeps {
  stores: Pick<Stores, 'audit' | 'auditEvents' | 'evidenceShipping' | 'evidenceSinks'>;
  metrics: Metrics;
  logger: Logger;
  /** Paces connections, confirmation, back-off and the lease: real time (sockets, not policy). */
  clock: Clock;
  random: Random;
  /** Signs audit checkpoints and recording anchors. */
  signer: Pick<Signer, 'sign'>;
}

const OFF: Evidence = { refusal: () => null, endLive: () => null, started: () => {}, close: async () => {} };

/** The audit log's shipper (evidence.syslog): its lag check and close. */
async function startSyslog(config: Config, deps: EvidenceDeps): Promise<{ behind(): string | null; close(): Promise<void> }> {
  const c = config.evidence.syslog!;
  const { stores, metrics, logger, clock } = deps;
  const repo = stores.evidenceShipping;
  const destination = `${c.host}:${c.port}`;
  const source = { after: (id: number, n: number) => stores.auditEvents.after(id, n), newest: () => stores.auditEvents.maxId() };
  const shipping = new LeasedShipper(
    { holder: `${os.hostname()}/${process.pid}/${newId('', deps.random)}`, maxLagEvents: c.maxLagEvents },
    {
      lease: {
        acquire: async (holder, now, ttl, status) => {
          const r = await repo.lease(SYSLOG_TARGET, destination, holder, now, ttl, status);
          return { held: r.held, cursor: r.row.shipped_id, holder: r.row.holder };
        },
        saveCursor: (holder, id, now) => repo.saveCursor(SYSLOG_TARGET, holder, id, now),
        release: (holder, now, status) => repo.release(SYSLOG_TARGET, holder, now, status),
      },
      source,
      clock,
      logger,
      shipper: (cursor) => new SyslogShipper(shipperOptionsFromConfig(c), { source, cursor, clock, logger }),
    },
  );
  metrics.describe('evidence_syslog_lag_events', 'gauge', 'audit rows written but not yet confirmed at the syslog collector (bound: maxLagEvents)');
  metrics.describe('evidence_syslog_connected', 'gauge', '1 while this node ships the audit log and is connected to the collector');
  metrics.describe('evidence_syslog_shipped_events_total', 'counter', 'audit rows this node shipped and saw confirmed');
  metrics.gauge('evidence_syslog_lag_events', () => shipping.state().lagEvents);
  metrics.gauge('evidence_syslog_connected', () => (shipping.state().connected ? 1 : 0));
  metrics.gauge('evidence_syslog_shipped_events_total', () => shipping.state().confirmed);
  stores.audit.onAppended = () => shipping.notify();
  await shipping.start();

  let failingClosed = false;
  return {
    behind: () => {
      const st = shipping.state();
      const now = c.onFailure === 'required' && st.overLag;
      if (now !== failingClosed) {
        failingClosed = now;
        const at = { evidence: 'syslog', lagEvents: st.lagEvents, maxLagEvents: st.maxLagEvents, lastError: st.lastError };
        if (now) logger.error(at, 'audit log shipping is behind its bound: failing closed (onFailure: required)');
        else logger.info(at, 'audit log shipping caught up: sessions may start again');
      }
      return now ? `lag ${st.lagEvents} > evidence.syslog.maxLagEvents ${st.maxLagEvents} (onFailure: required; ${st.lastError ?? 'no error'})` : null;
    },
    close: async () => {
      stores.audit.onAppended = null;
      await shipping.close();
    },
  };
}

/**
 * Starts the off-box evidence that is configured: the audit log as syslog over TLS
 * (evidence.syslog: a SyslogShipper on the one node holding the lease), the recordings to their
 * sinks (evidence.recordings: every durable record, in order), and the signed anchors (the audit
 * checkpoint, and each recording's head) to all of them at least every 60 s and at close. With
 * `onFailure: required`, a lag over its bound fails the gateway closed: refusal() and endLive()
 * say so, and the session side and the enforcer ask.
 */
export async function startEvidence(config: Config, deps: EvidenceDeps): Promise<Evidence> {
  const { syslog: sc, recordings: rc } = config.evidence;
  if (!sc && !rc) return OFF;
  const { logger, clock } = deps;
  const node = nodeName(config);
  const syslog = sc ? await startSyslog(config, deps) : null;
  let stores: OffsiteStore[] = [];
  let recordings: RecordingEvidence | null = null;
  try {
    stores = await openOffsiteStores(config, clock);
    recordings = rc ? await startRecordingEvidence(config, stores, { stores: deps.stores, metrics: deps.metrics, logger, clock, node }) : null;
  } catch (e) {
    await Promise.all(stores.map((s) => s.close().catch(() => {})));
    await syslog?.close();
    throw e;
  }

  const targets: AnchorTarget[] = stores.map((s) => ({ name: s.sink, putAnchors: (a) => s.putAnchors(a) }));
  if (sc) targets.push(syslogAnchorTarget(sc, { facility: sc.facility, ...(sc.hostname !== undefined ? { hostname: sc.hostname } : {}) }, clock));
  const anchors = new Anchorer(rc?.anchorInterval ?? 60_000, {
    auditEvents: deps.stores.auditEvents,
    sign: (d) => deps.signer.sign(d),
    heads: () => recordings?.heads() ?? [],
    targets,
    clock,
    logger,
    node,
  });
  for (const t of targets) {
    deps.metrics.gauge(`evidence_anchors_shipped_total{target="${t.name}"}`, () => anchors.shipped.get(t.name) ?? 0);
  }
  deps.metrics.describe('evidence_anchors_shipped_total', 'counter', 'signed chain heads (audit checkpoint, recording heads) this node shipped off the box');
  anchors.start();

  let recordingsClosed = false;
  const recordingsBehind = (): string | null => {
    const why = recordings?.behind() ?? null;
    if ((why !== null) !== recordingsClosed) {
      recordingsClosed = why !== null;
      if (why) logger.error({ evidence: 'recordings', why }, 'recording shipping is behind its bound: failing closed (onFailure: required)');
      else logger.info({ evidence: 'recordings' }, 'recording shipping caught up: sessions may start again');
    }
    return why;
  };
  return {
    ...(recordings ? { offsite: recordings.offsite } : {}),
    refusal: () => {
      const audit = syslog?.behind() ?? null;
      if (audit) return { why: SHIPPING_BEHIND, detail: `audit log shipping: ${audit}` };
      const rec = recordingsBehind();
      return rec ? { why: RECORDINGS_BEHIND, detail: rec } : null;
    },
    endLive: () => (syslog?.behind() ? SHIPPING_BEHIND_LIVE : recordingsBehind() ? RECORDINGS_BEHIND_LIVE : null),
    started: () => void anchors.tick(),
    close: async () => {
      await recordings?.close(); // every sealed recording's last records, then its last head below
      await anchors.close();
      await Promise.all(stores.map((s) => s.close().catch(() => {})));
      await syslog?.close();
    },
  };
}
