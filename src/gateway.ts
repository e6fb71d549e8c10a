import { mkdirSync, chmodSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { Config } from './config/schema.js';
import { systemClock, type Clock } from './platform/clock.js';
import { raiseGatewayPriority, raiseSessionGroup } from './platform/priority.js';
import { systemRandom, type Random } from './platform/random.js';
import { createLogger, type Logger } from './platform/logger.js';
import { Metrics, serveMetrics } from './platform/metrics.js';
import { openStore } from './store/open.js';
import { buildStores, type Stores } from './services/stores.js';
import type { RoleRepo } from './store/roles.js';
import { writeCheckpoint } from './audit/log.js';
import { PreAuthAudit } from './audit/preauth.js';
import type { Lockouts } from './auth/lockout.js';
import { ensureKeysDir } from './crypto/key-files.js';
import { loadMasterKey } from './crypto/master-key.js';
import { loadAuditKey } from './crypto/audit-key.js';
import { Host } from './host/host.js';
import type { RecordingSink } from './recording/sink.js';
import { loadHostKey, knownHostsLine } from './auth/host-key.js';
import { effectiveAlgorithms, ssh2Algorithms } from './crypto/algorithms.js';
import { FrontDoor, normaliseAddr } from './ssh/front-door.js';
import { warmUpSsh } from './ssh/warm-up.js';
import { pickDecoy } from './auth/login-deps.js';
import { GatewayConnection, type ConnectionDeps } from './ssh/connection.js';
import { SessionRegistry } from './session/registry.js';
import { spawnPty, type Pty, type PtySpawnOptions } from './platform/pty.js';
import { startEnforcer } from './session/enforcer.js';
import { registerGatewayMetrics } from './gateway/metrics.js';
import { configChanges } from './gateway/config-diff.js';
import { startScheduler } from './gateway/scheduler.js';
import { makeDrain } from './gateway/drain.js';
import { buildSessionLauncher } from './gateway/session-side.js';
import { startEvidence } from './gateway/evidence.js';
import { joinCluster, type ClusterSide } from './gateway/cluster-side.js';
import { machineId } from './platform/machine.js';
import { verifyStored } from './recording/access.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface GatewayDeps {
  clock?: Clock;
  logger?: Logger;
  spawnPty?: (o: PtySpawnOptions) => Pty;
  recordingSink?: RecordingSink;
  enforceEveryMs?: number;
  /** Chance: the front door's early drop, ids, data keys, flush phases (tests make it deterministic). */
  random?: Random;
  /**
   * Real time, for what measures processes and sockets rather than policy: the enforcer's poll of
   * the store, process-exit grace, back-off, the drain's pause. The system clock unless a test
   * replaces it; it keeps running while a test's policy clock stands still.
   */
  realTime?: Clock;
  /**
   * Node liveness time in a cluster: heartbeats, the reaper and the dead-node bound. Real time
   * unless a test replaces it (to stall one node's heartbeat, or to age another's, without waiting).
   */
  clusterClock?: Clock;
}

export interface Gateway {
  readonly host: string;
  readonly port: number;
  /** The sessions served now (shells, menus, watchers). */
  readonly live: SessionRegistry;
  readonly metrics: Metrics;
  readonly lockouts: Lockouts;
  readonly hostKeyFingerprint: string;
  readonly knownHosts: string;
  /** Port of the /metrics endpoint, when enabled. */
  readonly metricsPort: number | null;
  /** This node's id ("local" without a cluster) and where its node link listens (null: none). */
  readonly nodeId: string;
  readonly linkAddress: string | null;
  /** Drains: stop accepting, tell users, close channels (tmux servers stay), close the DB. */
  close(reason?: string): Promise<void>;
}

/** Whether any shell role runs under the gateway's own account (development mode). */
async function devMode(roles: RoleRepo, host: Host): Promise<boolean> {
  return (await roles.list()).some((r) => r.kind === 'shell' && host.devMode(r));
}

/** The ssh2 server's options: the configured algorithms, keepalive and banner. */
function sshServerConfig(config: Config, hostKey: Buffer | string): ssh2.ServerConfig {
  return {
    hostKeys: [hostKey],
    algorithms: ssh2Algorithms(effectiveAlgorithms(config.ssh.algorithms)),
    ident: 'tmuxgate',
    keepaliveInterval: config.ssh.keepaliveInterval,
    keepaliveCountMax: config.ssh.keepaliveCountMax,
    ...(config.ssh.banner ? { banner: config.ssh.banner } : {}),
  } as ssh2.ServerConfig;
}

/**
 * Builds every dependency from the config, then listens. The composition root: each component
 * gets the narrow dependencies it uses, and checks them when it is built.
 */
export async function startGateway(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const clock = deps.clock ?? systemClock;
  const realTime = deps.realTime ?? systemClock;
  const random = deps.random ?? systemRandom;
  const logger = deps.logger ?? createLogger({ level: config.log.level });
  const refused = raiseGatewayPriority(config.nice);
  if (refused) logger.warn({ nice: config.nice, err: refused }, "cannot raise the gateway's CPU priority: serving at the users' priority");
  else {
    const group = raiseSessionGroup(config.nice);
    if (group.kind === 'shares-session') {
      logger.info(
        { nice: config.nice },
        'the gateway does not lead its own session (started from a shell?): ' +
          'its CPU priority counts only within that session (sched autogroup); run it as a service',
      );
    } else if (group.kind === 'refused') logger.warn({ nice: config.nice, err: group.err }, "cannot raise the gateway's session group (sched autogroup)");
  }
  ensureKeysDir(config.paths.keysDir);
  const hostKey = loadHostKey(config.paths.keysDir, { create: true });
  const { provider } = loadMasterKey(config.paths.keysDir, { create: true });
  const auditSigner = loadAuditKey(config.paths.keysDir);
  mkdirSync(config.paths.dataDir, { recursive: true, mode: 0o700 });
  // Nothing of a pair lives under dataDir any more (sockets, confs and homes have their own
  // root-only trees): only the gateway's own account may enter it.
  chmodSync(config.paths.dataDir, 0o700);

  const sql = await openStore(config);
  const stores = buildStores(config, clock, sql, provider, logger, random);
  const audit = stores.audit;
  const machine = machineId(config.cluster?.host);
  // In a cluster: keys checked against the cluster's, link listening, this node registered
  // (a node id in use elsewhere refuses here, before anything of that node's is touched).
  let cluster: ClusterSide | null = null;
  const host = new Host({
    config,
    repo: stores.hostAccounts,
    roles: stores.roles,
    clock,
    logger,
    audit,
    random,
    realTime,
    machine,
    // Two enforcer ticks: the nodes that talk to the clients of a relayed pair end its sessions first.
    ...(config.cluster ? { cluster: { nodeId: config.cluster.nodeId, graceMs: 2 * (deps.enforceEveryMs ?? 500) } } : {}),
    serverGone: (roleId, userId) => cluster?.shells.clientEnded(roleId, userId),
  });
  try {
    if (config.cluster) {
      cluster = await joinCluster({
        cluster: config.cluster,
        keysDir: config.paths.keysDir,
        stores,
        host,
        hostKey,
        masterKeys: provider,
        auditPublicKeyPem: auditSigner.publicKeyPem,
        machine,
        version: VERSION,
        clock,
        clusterClock: deps.clusterClock ?? realTime,
        realTime,
        logger,
      });
    }
    await host.prepare();
  } catch (e) {
    await cluster?.close();
    await sql.close();
    throw e;
  }
  const live = new SessionRegistry();
  const metrics = new Metrics();
  const preauth = new PreAuthAudit(audit, clock, config.auth.preAuthAudit);

  // What this node left open when it last went away (other nodes' sessions are theirs).
  await stores.recordings.markInterrupted(stores.nodeId);
  for (const s of await stores.sessions.markInterrupted(clock.now())) {
    await audit.emit('gateway', { type: 'session.interrupted', sessionId: s.id, user: s.user_name, role: s.role_name });
  }

  // Off-box evidence (audit log, recordings, anchors), on real time; in `required` mode its lag gates sessions.
  const evidence = await startEvidence(config, { stores, metrics, logger, clock: realTime, random, signer: auditSigner });
  const { launcher, shells } = buildSessionLauncher({
    config,
    stores,
    host,
    live,
    metrics,
    masterKeys: provider,
    signer: auditSigner,
    clock,
    random,
    spawnPty: deps.spawnPty ?? spawnPty,
    ...(deps.recordingSink ? { recordingSink: deps.recordingSink } : {}),
    admit: () => evidence.refusal(),
    ...(cluster ? { cluster: cluster.shells } : {}),
    ...(evidence.offsite ? { offsite: evidence.offsite } : {}),
  });
  cluster?.serveRelays(shells);
  // Each connection gets only what it uses: the login policy's repositories, and the session side.
  const connectionDeps: ConnectionDeps = {
    login: {
      users: stores.users,
      roles: stores.roles,
      keys: stores.keys,
      totp: stores.totp,
      recoveryCodes: stores.recoveryCodes,
      lockouts: stores.lockouts,
      audit,
      preauth,
      metrics,
      clock,
      totpWindow: config.auth.totp.window,
      maxAuthTries: config.ssh.maxAuthTries,
    },
    logger,
    random,
    audit,
    sessions: (conn) => launcher.forConnection(conn),
  };

  const serverConfig = sshServerConfig(config, hostKey.privateKey);
  const server = new ssh2.Server(serverConfig);
  const front = new FrontDoor(
    {
      maxStartups: config.ssh.maxStartups,
      maxStartupsPerAddress: config.ssh.maxStartupsPerAddress,
      maxStartupsPerPrefix: config.ssh.maxStartupsPerPrefix,
      handshakeTimeout: config.ssh.handshakeTimeout,
      loginGraceTime: config.ssh.loginGraceTime,
      proxyProtocol: config.listen.proxyProtocol,
    },
    { clock, logger, preauth, random, metrics },
    (socket) => server.injectSocket(socket),
  );
  server.on('connection', (client, info) => {
    const pending = front.lookup(normaliseAddr(info.ip), info.port);
    if (!pending) {
      client.end();
      return;
    }
    // Lives as long as the client: ssh2's events hold it, and it lets go when the client closes.
    new GatewayConnection(connectionDeps, client, pending);
  });
  server.on('error', (e: Error) => logger.warn({ err: e.message }, 'ssh server error'));

  // The first user after a start does not wait for ssh2's code to compile (warm-up.ts), nor for the decoy's pick.
  logger.debug(await warmUpSsh(serverConfig), 'ssh warmed up');
  await pickDecoy(connectionDeps.login);
  const addr = await front.listen(config.listen.host, config.listen.port);
  // Live tmux servers are adopted after the door opens: a pair's directory is the pair's to fill,
  // so its cost must never keep everyone out. A login meanwhile adopts its own pair's server.
  const reconciled = host.servers
    .reconcile()
    .then(async (rec) => {
      if (rec.adopted || rec.stale) await audit.emit('gateway', { type: 'tmux.reconciled', adopted: rec.adopted, stale: rec.stale });
      await cluster?.afterReconcile();
    })
    .catch((e) => logger.error({ err: e }, 'tmux reconcile failed'));
  // Recordings this node left interrupted (its crash, or its loss seen by another node) are
  // verified, intact up to their last flush or not, and the verdict noted on each.
  void verifyInterrupted({ ...stores, clock }, auditSigner.publicKeyPem, logger);
  registerGatewayMetrics(metrics, {
    live,
    unauthenticated: () => front.stats().unauthenticated,
    lockoutsActive: async () => (await stores.lockouts.active()).length,
    link: cluster?.link ?? null,
  });
  const metricsServer = config.metrics.enabled ? await serveMetrics(metrics, config.metrics.host, config.metrics.port) : null;
  const metricsPort = metricsServer ? (metricsServer.address() as { port: number }).port : null;
  const changed = await configChanges(stores.gatewayState, config);
  // Roles were checked by host.prepare(): a missing account or an unflagged root account is
  // logged at start, not discovered by the first user.
  const dev = await devMode(stores.roles, host);
  await audit.emit('gateway', {
    type: 'gateway.start',
    version: VERSION,
    pid: process.pid,
    configHash: config.hash,
    configFile: config.paths.configFile,
    changedFields: changed,
    devMode: dev,
    listen: `${addr.host}:${addr.port}`,
    ...(cluster ? { node: cluster.nodeId } : {}),
  });
  const known = knownHostsLine(config.listen.host, addr.port, hostKey.publicLine);
  logger.info({ listen: `${addr.host}:${addr.port}`, hostKey: hostKey.fingerprint, knownHosts: known, dataDir: config.paths.dataDir }, 'tmuxgate listening');
  if (!config.recording.enabled) logger.warn('recording is switched off: sessions are not recorded (benchmark setting; fails the compliance report)');
  if (dev) logger.warn("development mode: some shell roles run under the gateway's own OS account (no least-privilege isolation between them)");

  const stopEnforcer = startEnforcer({
    live,
    kills: stores.kills,
    ...(cluster ? { nodeId: cluster.nodeId } : {}),
    users: stores.users,
    roles: stores.roles,
    host,
    clock,
    logger,
    realTime,
    failClosed: () => evidence.endLive(),
    ...(deps.enforceEveryMs !== undefined ? { everyMs: deps.enforceEveryMs } : {}),
  });
  const checkpoint = async () => {
    try {
      await writeCheckpoint(stores.auditEvents, auditSigner.sign, clock.now());
    } catch (e) {
      logger.error({ err: e }, 'audit checkpoint failed');
    }
  };
  const stopScheduler = startScheduler({ clock, logger }, [
    { name: 'audit checkpoint', everyMs: config.auditCheckpointInterval, run: checkpoint },
    { name: 'reaper', everyMs: 60_000, run: () => host.servers.reap() },
    { name: 'intrusion check', everyMs: config.isolation.intrusionCheckInterval, run: () => host.servers.checkIntruders() },
  ]);
  // Node liveness runs on its own clock: a test's policy clock jumps 30 s per TOTP code.
  const stopClusterTasks = cluster ? startScheduler({ clock: deps.clusterClock ?? realTime, logger }, cluster.tasks) : () => {};
  await checkpoint();
  evidence.started();

  return {
    host: addr.host,
    port: addr.port,
    live,
    metrics,
    lockouts: stores.lockouts,
    hostKeyFingerprint: hostKey.fingerprint,
    knownHosts: known,
    metricsPort,
    nodeId: stores.nodeId,
    linkAddress: cluster?.linkAddress ?? null,
    close: makeDrain({
      front,
      started: reconciled,
      live,
      realTime,
      stops: [() => metricsServer?.close(), stopEnforcer, stopScheduler, stopClusterTasks],
      preauth,
      audit,
      checkpoint,
      closeStore: async () => {
        await evidence.close(); // the shippers first: they ship the last rows, records and anchors
        await cluster?.close(); // a clean stop: no other node waits for this one's heartbeat to age
        await sql.close();
      },
      logger,
    }),
  };
}

/** Verifies the interrupted recordings on this node's disk that nobody verified yet; notes and logs each verdict. */
async function verifyInterrupted(a: Parameters<typeof verifyStored>[0] & Pick<Stores, 'nodeId'>, publicKeyPem: string, logger: Logger): Promise<void> {
  try {
    for (const id of await a.recordings.unverifiedInterrupted(a.nodeId)) {
      const r = await verifyStored(a, id, publicKeyPem, true);
      if (r.status === 'tampered') logger.error({ session: id, problem: r.problem }, 'an interrupted recording does not verify');
      else logger.info({ session: id, status: r.status, chunks: r.chunks }, 'interrupted recording verified up to its last flush');
    }
  } catch (e) {
    logger.error({ err: e }, 'verifying interrupted recordings failed');
  }
}
