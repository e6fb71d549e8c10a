import type { Config } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { Stores } from '../services/stores.js';
import type { Host } from '../host/host.js';
import type { MasterKeyProvider } from '../crypto/master-key.js';
import type { HostKey } from '../auth/host-key.js';
import type { PeriodicTask } from './scheduler.js';
import type { ShellCluster, ShellStarter } from '../session/shell-start.js';
import { checkRootPorts, LinkClient, LinkServer, type RelayRequest } from '../cluster/link.js';
import { beat, checkClusterKeys, loadNodeKey, pemFingerprint, registerNode } from '../cluster/node.js';
import { PairPlacement } from '../cluster/placement.js';
import { reapLostNodes } from '../cluster/reaper.js';
import { ownerAttach } from '../session/owner-attach.js';
import type { Pty } from '../platform/pty.js';

/** What the cluster side is built from. */
export interface ClusterSideInput {
  cluster: NonNullable<Config['cluster']>;
  keysDir: string;
  stores: Stores;
  host: Pick<Host, 'pairOf' | 'servers'>;
  hostKey: HostKey;
  masterKeys: MasterKeyProvider;
  auditPublicKeyPem: string;
  machine: string;
  version: string;
  /** Policy time (session end stamps). */
  clock: Clock;
  /** Node liveness time: heartbeats, the dead-node bound. */
  clusterClock: Clock;
  /** Process time (how long a tmux server takes to exit). */
  realTime: Clock;
  logger: Logger;
}

/** This node's part in a cluster, once registered. */
export interface ClusterSide {
  readonly nodeId: string;
  /** Where other nodes reach this one's link, or null (no link: this node only relays out). */
  readonly linkAddress: string | null;
  /** What shell start uses: placement, relays, claim release. */
  readonly shells: ShellCluster;
  /** Starts answering relays, once the session side exists. */
  serveRelays(shells: Pick<ShellStarter, 'attachForRelay'>): void;
  /** After the door opened and the tmux servers were reconciled: release claims with no live server. */
  afterReconcile(): Promise<void>;
  /** The link's listener: connections waiting to authenticate, and those refused at accept (null: no link). */
  readonly link: { pending(): number; refused(): number } | null;
  /** Heartbeat and reaper, on the cluster clock. */
  readonly tasks: PeriodicTask[];
  /** A clean stop: link closed, then the node marked stopped. Before the store closes. */
  close(): Promise<void>;
}

/** "host:port" -> [host, port] with IPv6 brackets removed. */
function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(s.slice(i + 1))];
}

/**
 * Joins the cluster: the key fingerprints checked against the cluster's (TG_ERR_CLUSTER_KEYS),
 * the link listening (its attach refuses until serveRelays), the node registered
 * (TG_ERR_NODE_ID_IN_USE). Undone on failure, so a refused node leaves nothing open.
 */
export async function joinCluster(i: ClusterSideInput): Promise<ClusterSide> {
  const { cluster, stores, logger } = i;
  const self = cluster.nodeId;
  const me = { id: self, host: i.machine, pid: process.pid };
  const rootPorts = cluster.linkSourcePorts === 'root';
  if (rootPorts) checkRootPorts();
  const nodeKey = loadNodeKey(i.keysDir);
  await checkClusterKeys(
    stores.gatewayState,
    { hostKey: i.hostKey.fingerprint, masterKey: i.masterKeys.keyId, auditKey: pemFingerprint(i.auditPublicKeyPem), nodeKey: nodeKey.fingerprint },
    i.masterKeys.keyIds,
  );
  let attach: (req: RelayRequest) => Promise<Pty> = () => Promise.reject(new Error('this node is still starting'));
  let server: LinkServer | null = null;
  let linkAddress: string | null = null;
  if (cluster.link) {
    const linkLog = logger.child({ part: 'link' });
    server = new LinkServer({
      hostKey: i.hostKey.privateKey,
      nodePublicKey: nodeKey.publicLine,
      attach: (req) => attach(req),
      logger: linkLog,
      rootPortsOnly: rootPorts,
    });
    const [host, port] = splitHostPort(cluster.link.listen);
    const bound = await server.listen(host, port);
    linkAddress = cluster.link.advertise ?? `${host.includes(':') ? `[${host}]` : host}:${bound}`;
  }
  try {
    await registerNode(stores.nodes, { ...me, linkAddress, version: i.version, now: i.clusterClock.now(), deadAfter: cluster.deadAfter });
  } catch (e) {
    await server?.close();
    throw e;
  }
  const client = new LinkClient({
    nodePrivateKey: nodeKey.privateKey,
    hostPublicKey: i.hostKey.publicLine,
    logger: logger.child({ part: 'link' }),
    rootPort: rootPorts,
  });
  const serverAlive = async (roleId: number, userId: number) => {
    const pair = await i.host.pairOf(roleId, userId);
    return !!pair && (await i.host.servers.liveSocket(pair)) !== null;
  };
  const placement = new PairPlacement({
    self,
    pairServers: stores.pairServers,
    nodes: stores.nodes,
    clusterClock: i.clusterClock,
    deadAfter: cluster.deadAfter,
    serverAlive,
    realTime: i.realTime,
    recheckMs: 500,
    logger,
  });
  const failed = (what: string) => (e: unknown) => logger.error({ err: e }, `${what} failed`);
  let closed = false;
  return {
    nodeId: self,
    linkAddress,
    link: server,
    shells: {
      nodeId: self,
      place: (roleId, userId) => placement.place(roleId, userId),
      relay: (address, req) => client.open(address, req),
      clientEnded: (roleId, userId) => void placement.clientEnded(roleId, userId).catch(failed('releasing a pair claim')),
    },
    serveRelays(shells) {
      const { sessions, pairServers, users, roles } = stores;
      attach = ownerAttach({ self, sessions, pairServers, users, roles, shells, logger });
    },
    async afterReconcile() {
      const n = await placement.releaseDead();
      if (n) logger.info({ released: n }, 'released claims on pairs whose tmux server did not survive');
    },
    tasks: [
      { name: 'heartbeat', everyMs: cluster.heartbeat, run: () => (closed ? undefined : beat(stores.nodes, me, i.clusterClock.now(), logger)) },
      {
        name: 'node reaper',
        everyMs: cluster.heartbeat,
        run: () =>
          closed
            ? undefined
            : reapLostNodes({ ...stores, self, sql: stores.sql, clusterClock: i.clusterClock, clock: i.clock, deadAfter: cluster.deadAfter, logger }),
      },
    ],
    async close() {
      if (closed) return;
      closed = true;
      client.close();
      await server?.close();
      await stores.nodes.stopped(me, i.clusterClock.now());
    },
  };
}
