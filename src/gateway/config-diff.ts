import type { Config } from '../config/schema.js';
import { canonicalJson } from '../config/load.js';
import type { GatewayStateRepo } from '../store/gateway-state.js';

/** Leaf paths whose values differ between two config objects ("sessions.idleTimeout"). */
export function changedFields(before: unknown, after: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => changedFields(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  return canonicalJson(before) === canonicalJson(after) ? [] : [prefix || '(root)'];
}

/**
 * Keeps this start's config (without paths and hash) in the gateway state and returns the fields
 * that changed since the previous start, or ['(first start)']: gateway.start audits them. Nodes
 * of a cluster share the state, so each keeps its own (`config:<node id>`).
 */
export async function configChanges(state: Pick<GatewayStateRepo, 'get' | 'set'>, config: Config): Promise<string[]> {
  const key = config.cluster ? `config:${config.cluster.nodeId}` : 'config';
  const previous = await state.get(key);
  const { paths: _p, hash: _h, ...plain } = config;
  const changed = previous ? changedFields(JSON.parse(previous), JSON.parse(canonicalJson(plain))) : ['(first start)'];
  await state.set(key, canonicalJson(plain));
  return changed;
}
