import { systemRandom, type Random } from './platform/random.js';
import { mkdirSync, chmodSync, readFileSync } from 'node:fs';
import { Host } from './host/host.js';
import ssh2 from 'ssh2';
import type { Config } from './config/schema.js';
import { canonicalJson } from './config/load.js';
import { systemClock, type Clock } from './platform/clock.js';
import { createLogger, type Logger } from './platform/logger.js';
import { openDb, type Db } from './store/db.js';
import { writeCheckpoint } from './audit/log.js';
import { PreAuthAudit } from './audit/preauth.js';
import { buildStores } from './store/stores.js';
import type { RoleRepo } from './store/roles.js';
import { startEnforcer } from './session/enforcer.js';
import { Metrics, serveMetrics } from './platform/metrics.js';
import { ensureKeysDir } from './crypto/key-files.js';
import { loadMasterKey } from './crypto/master-key.js';
import { loadAuditKey } from './crypto/audit-key.js';
import { loadHostKey, knownHostsLine } from './ssh/host-key.js';
import { effectiveAlgorithms } from './ssh/algorithms.js';
import { FrontDoor, normaliseAddr } from './ssh/front-door.js';
import { GatewayConnection } from './ssh/connection.js';
import { SessionRegistry } from './session/registry.js';
import { spawnPty, type Pty, type PtySpawnOptions } from './session/pty.js';
import type { GatewayContext } from './gateway-context.js';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileSink, type RecordingSink } from './recording/sink.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface GatewayDeps {
  clock?: Clock;
  logger?: Logger;
  spawnPty?: (o: PtySpawnOptions) => Pty;
  recordingSink?: RecordingSink;
  enforceEveryMs?: number;
  /** Chance: the front door's early drop, ids, data keys, flush phases (tests make it deterministic). */
  random?: Random;
}

export interface Gateway {
  readonly host: string;
  readonly port: number;
  readonly ctx: GatewayContext;
  readonly hostKeyFingerprint: string;
  readonly knownHosts: string;
  /** Port of the /metrics endpoint, when enabled. */
  readonly metricsPort: number | null;
  /** Drains: stop accepting, tell users, close channels (tmux servers stay), close the DB. */
  close(reason?: string): Promise<void>;
}

/** Leaf paths whose values differ between two config objects ("sessions.idleTimeout"). */
export function changedFields(before: unknown, after: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => changedFields(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  return canonicalJson(before) === canonicalJson(after) ? [] : [prefix || '(root)'];
}

/** Whether any shell role runs under the gateway's own account (development mode). */
function devMode(roles: RoleRepo, host: Host): boolean {
  return roles.list().some((r) => r.kind === 'shell' && host.devMode(r));
}

/** Builds every dependency from the config, then listens. The composition root. */
export async function startGateway(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger({ level: config.log.level });
  ensureKeysDir(config.paths.keysDir);
  const hostKey = loadHostKey(config.paths.keysDir, { create: true });
  const { provider } = loadMasterKey(config.paths.keysDir, { create: true });
  const auditSigner = loadAuditKey(config.paths.keysDir);
  mkdirSync(config.paths.dataDir, { recursive: true, mode: 0o700 });
  // Nothing of a pair lives under dataDir any more (sockets, confs and homes have their own
  // root-only trees): only the gateway's own account may enter it.
  chmodSync(config.paths.dataDir, 0o700);

  const db: Db = openDb(config.paths.dbFile);
  const random = deps.random ?? systemRandom;
  const stores = buildStores(config, clock, db, provider, logger, random);
  const audit = stores.audit;
  const host = new Host({ config, repo: stores.hostAccounts, roles: stores.roles, clock, logger, audit });
  try {
    await host.prepare();
  } catch (e) {
    db.close();
    throw e;
  }
  const ctx: GatewayContext = {
    ...stores,
    logger,
    live: new SessionRegistry(),
    spawnPty: deps.spawnPty ?? spawnPty,
    recordingSink: deps.recordingSink ?? new FileSink(path.join(config.paths.dataDir, 'recordings')),
    auditSigner,
    host,
    metrics: new Metrics(),
    preauth: new PreAuthAudit(audit, clock, config.auth.preAuthAudit),
  };

  ctx.recordings.markInterrupted();
  for (const s of ctx.sessions.markInterrupted(clock.now())) {
    audit.emit('gateway', { type: 'session.interrupted', sessionId: s.id, user: s.user_name, role: s.role_name });
  }

  const algorithms = effectiveAlgorithms(config.ssh.algorithms);
  const sshServer = new ssh2.Server(
    {
      hostKeys: [hostKey.privateKey],
      algorithms: {
        kex: algorithms.kex,
        cipher: algorithms.cipher,
        hmac: algorithms.mac,
        serverHostKey: algorithms.serverHostKey,
        compress: algorithms.compress,
      } as ssh2.Algorithms,
      ident: 'tmuxgate',
      keepaliveInterval: config.ssh.keepaliveInterval,
      keepaliveCountMax: config.ssh.keepaliveCountMax,
      ...(config.ssh.banner ? { banner: config.ssh.banner } : {}),
    } as ssh2.ServerConfig,
  );
  const front = new FrontDoor(
    {
      maxStartups: config.ssh.maxStartups,
      maxStartupsPerAddress: config.ssh.maxStartupsPerAddress,
      maxStartupsPerPrefix: config.ssh.maxStartupsPerPrefix,
      handshakeTimeout: config.ssh.handshakeTimeout,
      loginGraceTime: config.ssh.loginGraceTime,
    },
    { clock, logger, preauth: ctx.preauth, random },
    (socket) => sshServer.injectSocket(socket),
  );
  const connections = new Set<GatewayConnection>();
  sshServer.on('connection', (client, info) => {
    const pending = front.lookup(normaliseAddr(info.ip), info.port);
    if (!pending) {
      client.end();
      return;
    }
    const conn = new GatewayConnection(ctx, client, pending);
    connections.add(conn);
    client.on('close', () => connections.delete(conn));
  });
  sshServer.on('error', (e: Error) => logger.warn({ err: e.message }, 'ssh server error'));

  const addr = await front.listen(config.listen.host, config.listen.port);
  // Live tmux servers are adopted after the door opens: a pair's directory is the pair's to fill,
  // so its cost must never keep everyone out. A login meanwhile adopts its own pair's server.
  const reconciled = host.servers
    .reconcile()
    .then((rec) => {
      if (rec.adopted || rec.stale) audit.emit('gateway', { type: 'tmux.reconciled', adopted: rec.adopted, stale: rec.stale });
    })
    .catch((e) => logger.error({ err: e }, 'tmux reconcile failed'));
  const m = ctx.metrics;
  m.describe('sessions_active', 'gauge', 'shell sessions open now');
  m.describe('connections_unauthenticated', 'gauge', 'TCP connections not yet authenticated');
  m.describe('logins_total', 'counter', 'authentication outcomes');
  m.describe('recording_bytes_total', 'counter', 'bytes of client stream recorded (in) and written to disk (stored)');
  m.describe('recording_seal_seconds_total', 'counter', 'main-thread time spent compressing, encrypting and chaining recording chunks');
  m.describe('process_cpu_seconds_total', 'counter', 'gateway CPU time, user and system, all threads');
  m.describe('recording_failures_total', 'counter', 'recordings that could not be written (sessions ended)');
  m.describe('lockouts_active', 'gauge', 'user and address lockouts in force');
  m.describe('process_resident_memory_bytes', 'gauge', 'gateway RSS');
  m.describe('recording_queue_bytes', 'gauge', 'recording bytes sealed and waiting to be written, all sessions (a session fails at recording.maxQueueBytes)');
  m.describe('sessions_waiting_for_client', 'gauge', 'sessions whose output is held because the client is not reading it');
  m.describe('event_loop_utilization', 'gauge', 'share of time the event loop was busy since the previous scrape (near 1: keystrokes queue in the gateway)');
  m.gauge('recording_queue_bytes', () => ctx.live.all().reduce((a, s) => a + (s.recorder?.queuedBytes ?? 0), 0));
  m.gauge('sessions_waiting_for_client', () => ctx.live.all().filter((s) => s.shell.waitingForClient).length);
  // From libuv's own idle-time accounting: no timer, so it costs nothing at rest (a 20 ms
  // event-loop-delay monitor was measured at 0.4% of a core on an idle gateway).
  let eluMark = performance.eventLoopUtilization();
  m.gauge('event_loop_utilization', () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, eluMark).utilization;
    eluMark = now;
    return u;
  });
  m.gauge('sessions_active', () => ctx.live.size);
  m.gauge('connections_unauthenticated', () => front.stats().unauthenticated);
  m.gauge('lockouts_active', () => ctx.lockouts.active().length);
  m.gauge('process_resident_memory_bytes', () => process.memoryUsage.rss());
  m.describe('process_heap_used_bytes', 'gauge', 'JavaScript heap in use (RSS less native memory and allocator slack)');
  m.gauge('process_heap_used_bytes', () => process.memoryUsage().heapUsed);
  m.gauge('process_cpu_seconds_total', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  for (const r of ['success', 'failure', 'locked']) m.inc(`logins_total{result="${r}"}`, 0);
  m.inc('recording_seal_seconds_total', 0);
  const metricsServer = config.metrics.enabled ? await serveMetrics(m, config.metrics.host, config.metrics.port) : null;
  const metricsPort = metricsServer ? (metricsServer.address() as { port: number }).port : null;
  const previous = ctx.gatewayState.get('config');
  const { paths: _p, hash: _h, ...plain } = config;
  const changed = previous ? changedFields(JSON.parse(previous), JSON.parse(canonicalJson(plain))) : ['(first start)'];
  ctx.gatewayState.set('config', canonicalJson(plain));
  // Roles were checked by host.prepare(): a missing account or an unflagged root account is
  // logged at start, not discovered by the first user.
  const dev = devMode(ctx.roles, host);
  audit.emit('gateway', {
    type: 'gateway.start',
    version: VERSION,
    pid: process.pid,
    configHash: config.hash,
    configFile: config.paths.configFile,
    changedFields: changed,
    devMode: dev,
    listen: `${addr.host}:${addr.port}`,
  });
  const known = knownHostsLine(config.listen.host, addr.port, hostKey.publicLine);
  logger.info({ listen: `${addr.host}:${addr.port}`, hostKey: hostKey.fingerprint, knownHosts: known, dataDir: config.paths.dataDir }, 'tmuxgate listening');
  if (!config.recording.enabled) logger.warn('recording is switched off: sessions are not recorded (benchmark setting; fails the compliance report)');
  if (dev) logger.warn('development mode: some shell roles run under the gateway\'s own OS account (no least-privilege isolation between them)');

  const stopEnforcer = startEnforcer(ctx, deps.enforceEveryMs ?? 500);
  const checkpoint = () => {
    try {
      writeCheckpoint(ctx.auditEvents, auditSigner.sign, clock.now());
    } catch (e) {
      logger.error({ err: e }, 'audit checkpoint failed');
    }
  };
  // Periodic work runs on the injected clock like every other policy timer. The tmux checks are
  // asynchronous: one at a time, so a clock moved forward by hours does not start hundreds; ticks
  // that fall due meanwhile fold into one more run, so the state as of the last tick is checked.
  const oneAtATime = (what: string, task: () => Promise<unknown>) => {
    let running = false;
    let again = false;
    const tick = (): void => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      task()
        .catch((e) => logger.error({ err: e }, `${what} failed`))
        .finally(() => {
          running = false;
          if (again) {
            again = false;
            tick();
          }
        });
    };
    return tick;
  };
  const stopCheckpoints = clock.setInterval(checkpoint, config.auditCheckpointInterval);
  const stopReaper = clock.setInterval(oneAtATime('reaper', () => host.servers.reap()), 60_000);
  const stopIntrusion = clock.setInterval(oneAtATime('intrusion check', () => host.servers.checkIntruders()), config.isolation.intrusionCheckInterval);
  checkpoint();

  let closing: Promise<void> | null = null;
  return {
    host: addr.host,
    port: addr.port,
    ctx,
    hostKeyFingerprint: hostKey.fingerprint,
    knownHosts: known,
    metricsPort,
    close(reason = 'shutdown') {
      closing ??= (async () => {
        const stopped = front.stopAccepting();
        await reconciled;
        const n = ctx.live.endAll('gateway-shutdown', 'the gateway is restarting; reconnect in a moment');
        // Give channel close messages a moment to reach the clients before sockets go.
        await new Promise((r) => setTimeout(r, n ? 100 : 0));
        await ctx.live.drain(); // every recording sealed before the store closes
        front.destroyAll();
        await stopped;
        metricsServer?.close();
        stopEnforcer();
        stopCheckpoints();
        stopIntrusion();
        stopReaper();
        ctx.preauth.close(); // pending pre-authentication summaries are written before the stop row
        audit.emit('gateway', { type: 'gateway.stop', reason, sessionsClosed: n });
        checkpoint(); // the last rows are signed too: a cut-off tail is caught
        db.close();
        logger.info({ reason, sessionsClosed: n }, 'tmuxgate stopped');
      })();
      return closing;
    },
  };
}
