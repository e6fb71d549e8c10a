import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Random } from '../platform/random.js';
import type { Metrics } from '../platform/metrics.js';
import { StartGate } from '../session/start-gate.js';
import type { Stores } from '../services/stores.js';
import type { KeyProvider } from '../crypto/master-key.js';
import type { Signer } from '../crypto/audit-key.js';
import type { Host } from '../host/host.js';
import { FileSink, type RecordingSink } from '../recording/sink.js';
import type { Pty, PtySpawnOptions } from '../platform/pty.js';
import type { OffsiteRecordings } from '../recording/offsite.js';
import type { SessionRegistry } from '../session/registry.js';
import { checkLifecycleConfig } from '../session/lifecycle.js';
import { RecorderFactory } from '../session/recorder-factory.js';
import { ShellStarter, type ShellCluster } from '../session/shell-start.js';
import { Sharing } from '../session/sharing.js';
import { AuditorSessions } from '../session/auditor-session.js';
import { SessionLauncher } from '../session/launcher.js';

/** What the session side is built from (the composition root has all of it). */
export interface SessionSideInput {
  config: Config;
  stores: Pick<Stores, 'sessions' | 'recordings' | 'users' | 'roles' | 'shares' | 'audit' | 'nodeId'>;
  host: Host;
  live: SessionRegistry;
  metrics: Metrics;
  masterKeys: KeyProvider;
  signer: Signer;
  clock: Clock;
  random: Random;
  spawnPty: (o: PtySpawnOptions) => Pty;
  /** Where recordings are written; files under dataDir/recordings by default. */
  recordingSink?: RecordingSink;
  /** Off-box shipping of recordings (evidence.recordings), when configured. */
  offsite?: OffsiteRecordings;
  /** Asked before any session starts (off-box shipping in `required` mode). */
  admit?: () => { why: string; detail: string } | null;
  /** This node's part in a cluster (placement and relays of shells); absent on a single node. */
  cluster?: ShellCluster;
}

/** The session side: the launcher connections use, and its shell starter (the owning side of relays uses it too). */
export interface SessionSide {
  launcher: SessionLauncher;
  shells: ShellStarter;
}

/**
 * The session side: one lifecycle config shared by shells and auditors' menus (recording off
 * means no recorder factory), then shell start, sharing and the auditor sessions under the
 * launcher that picks between them.
 */
export function buildSessionLauncher(i: SessionSideInput): SessionSide {
  const { config, stores, host, live, metrics, clock, random, spawnPty } = i;
  const { audit } = stores;
  const recorders = config.recording.enabled
    ? new RecorderFactory({
        sink: i.recordingSink ?? new FileSink(path.join(config.paths.dataDir, 'recordings')),
        recordings: stores.recordings,
        masterKeys: i.masterKeys,
        signer: i.signer,
        clock,
        random,
        metrics,
        recording: config.recording,
        ...(i.offsite ? { offsite: i.offsite } : {}),
      })
    : null;
  const lifecycle = checkLifecycleConfig({ sessions: stores.sessions, recordings: stores.recordings, audit, metrics, clock, live, recorders });
  const settings = config.sessions;
  const slots = settings.startsAtOnce === 'auto' ? Math.max(2, availableParallelism()) : settings.startsAtOnce;
  const gate = new StartGate(slots, settings.startTurnMax, clock, metrics);
  metrics.describe('session_starts_waiting', 'gauge', 'session starts waiting for their turn (sessions.startsAtOnce)');
  metrics.gauge('session_starts_waiting', () => gate.queued);
  metrics.describe('session_starts_running', 'gauge', 'session starts holding a turn: their tmux client has not drawn yet');
  metrics.gauge('session_starts_running', () => gate.holding);
  metrics.describe('session_start_turns_timed_out_total', 'counter', 'session starts whose turn ended at sessions.startTurnMax before their tmux client drew');
  metrics.inc('session_start_turns_timed_out_total', 0);
  const shells = new ShellStarter({ settings, host, clock, random, spawnPty, lifecycle, gate, ...(i.cluster ? { cluster: i.cluster } : {}) });
  const launcher = new SessionLauncher({
    shells,
    sharing: new Sharing({
      settings,
      redaction: config,
      users: stores.users,
      roles: stores.roles,
      shares: stores.shares,
      audit,
      host,
      live,
      clock,
      random,
      spawnPty,
    }),
    auditors: new AuditorSessions({
      settings,
      redaction: config,
      recordings: { sessions: stores.sessions, recordings: stores.recordings, masterKeys: i.masterKeys, audit, nodeId: stores.nodeId },
      clock,
      random,
      lifecycle,
    }),
    users: stores.users,
    roles: stores.roles,
    admit: i.admit,
  });
  return { launcher, shells };
}
