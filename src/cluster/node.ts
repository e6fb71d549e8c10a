import { createHash, createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { TgError } from '../errors.js';
import { readPrivate, writeAtomic } from '../crypto/key-files.js';
import { fingerprintOf } from '../auth/public-key.js';
import { generateEd25519 } from '../auth/host-key.js';
import { processRuns } from '../platform/machine.js';
import type { Logger } from '../platform/logger.js';
import type { GatewayStateRepo } from '../store/gateway-state.js';
import type { NodeIdentity, NodeRepo } from '../store/nodes.js';

export const NODE_KEY_FILE = 'node_ed25519';

/** The cluster's node key: the one client key the node-to-node link accepts. Every node holds the same. */
export interface NodeKey {
  privateKey: Buffer;
  publicLine: string;
  fingerprint: string;
}

/** Loads keysDir/node_ed25519 (0600, with a .pub beside it), generating it on first start as the host key is. */
export function loadNodeKey(keysDir: string): NodeKey {
  const file = path.join(keysDir, NODE_KEY_FILE);
  if (!existsSync(file)) {
    const pair = generateEd25519('tmuxgate cluster node key');
    writeAtomic(file, pair.private, 0o600);
    writeAtomic(`${file}.pub`, pair.public + '\n', 0o644);
  }
  const privateKey = readPrivate(file);
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== 'ssh-ed25519') {
    throw new TgError('TG_ERR_KEY_UNREADABLE', `${file}: not an ed25519 private key`);
  }
  const blob = parsed.getPublicSSH();
  return { privateKey, publicLine: `ssh-ed25519 ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
}

/** The fingerprints every node of a cluster must share, as recorded in gateway_state. */
export interface ClusterKeys {
  hostKey: string;
  masterKey: string;
  auditKey: string;
  nodeKey: string;
}

const KEYS_STATE = 'cluster.keys';

/** The SHA256 fingerprint of a PEM public key (the audit key), as OpenSSH writes fingerprints. */
export function pemFingerprint(pem: string): string {
  const der = createPublicKey(pem).export({ format: 'der', type: 'spki' });
  return 'SHA256:' + createHash('sha256').update(der).digest('base64').replace(/=+$/, '');
}

const LABEL: Record<keyof ClusterKeys, string> = { hostKey: 'host key', masterKey: 'master key', auditKey: 'audit key', nodeKey: 'node key' };

/**
 * The first node records the cluster's key fingerprints; every node after must match them, or
 * it refuses to start (TG_ERR_CLUSTER_KEYS, one line naming the keys that differ). Keys come
 * from files (the same keys/ on every node, from a secret store), never from the database.
 * A master key rotation is accepted from a node that holds the recorded key among its retired
 * ones (it carries the newer key, and the record moves to it); a node still on the old key is
 * then refused.
 */
export async function checkClusterKeys(
  state: Pick<GatewayStateRepo, 'setIfAbsent' | 'set'>,
  mine: ClusterKeys,
  retiredMasterIds: readonly string[],
): Promise<void> {
  const recorded = JSON.parse(await state.setIfAbsent(KEYS_STATE, JSON.stringify(mine))) as ClusterKeys;
  const rotated = recorded.masterKey !== mine.masterKey && retiredMasterIds.includes(recorded.masterKey);
  const differ = (Object.keys(LABEL) as (keyof ClusterKeys)[]).filter((k) => recorded[k] !== mine[k] && !(k === 'masterKey' && rotated));
  if (differ.length) {
    const detail = differ.map((k) => `${LABEL[k]} ${mine[k]} here, ${recorded[k]} in the cluster`).join('; ');
    throw new TgError(
      'TG_ERR_CLUSTER_KEYS',
      `this node's keys differ from the cluster's (${detail}): every node must use the same keys directory, copied from your secret store`,
    );
  }
  if (rotated) await state.set(KEYS_STATE, JSON.stringify(mine));
}

/**
 * Registers this node, refusing (TG_ERR_NODE_ID_IN_USE) when its id has a heartbeat within
 * `deadAfter` from a process that is not this one: on another machine, or a pid still running
 * here. A row left by this node's own crash (its pid gone) is taken back at once.
 */
export async function registerNode(
  nodes: Pick<NodeRepo, 'register'>,
  n: NodeIdentity & { linkAddress: string | null; version: string; now: number; deadAfter: number },
): Promise<void> {
  const inUse = await nodes.register({ ...n, freshSince: n.now - n.deadAfter }, (row) => row.host !== n.host || (row.pid !== n.pid && processRuns(row.pid)));
  if (inUse) {
    const age = Math.max(0, Math.round((n.now - inUse.heartbeat_at) / 1000));
    throw new TgError(
      'TG_ERR_NODE_ID_IN_USE',
      `node id ${n.id} is in use by pid ${inUse.pid} on machine ${inUse.host} (heartbeat ${age}s ago); give each node its own cluster.nodeId`,
    );
  }
}

/** One heartbeat, and what it means when the row says something else happened. */
export async function beat(nodes: Pick<NodeRepo, 'heartbeat'>, me: NodeIdentity, now: number, logger: Logger): Promise<void> {
  const r = await nodes.heartbeat(me, now);
  if (r === 'rejoined') {
    logger.warn({ node: me.id }, 'this node had been declared lost (its heartbeat stalled); its sessions were marked interrupted, and it beats again');
  }
  if (r === 'replaced') logger.error({ node: me.id }, 'another process has registered this node id; this one no longer heartbeats for it');
}
