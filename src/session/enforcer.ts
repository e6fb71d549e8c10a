import { systemClock, type Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { requireDeps } from '../platform/check-deps.js';
import type { KillRepo } from '../store/kills.js';
import type { UserRepo } from '../store/users.js';
import type { RoleRepo } from '../store/roles.js';
import type { SessionRegistry } from './registry.js';

/** What the enforcer reads and acts on: the live sessions, the store's admin changes, the host's pairs. */
export interface EnforcerConfig {
  live: Pick<SessionRegistry, 'get' | 'all' | 'size' | 'viewers' | 'endAll'>;
  kills: Pick<KillRepo, 'pending' | 'done'> & Partial<Pick<KillRepo, 'serverPending' | 'serverDone'>>;
  /**
   * This node's id in a cluster (with `kills.serverPending`): kills of sessions relayed here from
   * another node end the pair's tmux server and processes here. Absent on a single node.
   */
  nodeId?: string;

  users: Pick<UserRepo, 'lockedOutIds'>;
  roles: Pick<RoleRepo, 'allGrants'>;
  /** Ends a killed pair's processes; locks or removes pairs whose user or grant is gone. */
  host: { killPair(roleId: number, userId: number): Promise<void>; enforce(): Promise<number> };
  /** Stamps kill requests as done. */
  clock: Clock;
  logger: Logger;
  /**
   * Paces the poll: real time, the system clock by default. The poll looks for work other
   * processes leave in the store (kills, disables, revocations), which must be picked up while a
   * test's policy clock stands still.
   */
  realTime?: Clock;
  /** How often the store is polled (ms); 500 by default. */
  everyMs?: number;
  /** Asked at each tick: the message every live session ends with now (audit shipping behind in `required` mode), or null. */
  failClosed?: () => string | null;
}

/**
 * Makes admin changes reach live sessions and pair processes without a restart: polls the store
 * (shared with the CLI) for disabled or removed users, revoked grants and kill requests, ends the
 * affected sessions with a reason the user sees, then ends the pairs' tmux servers and every
 * process of their accounts (locking or removing the accounts). Returns a stop function.
 */
export function startEnforcer(config: EnforcerConfig): () => void {
  requireDeps('enforcer', config, ['live', 'kills', 'users', 'roles', 'host', 'clock', 'logger']);
  const { live, logger, host, kills: killRepo, users, roles, clock } = config;
  // Pair processes end off the tick. A pair's end can take as long as the pair makes it (its
  // socket makes the gateway's `kill-server` wait, a tracer holds its `kill`): the host runs the
  // ends PAIR_LANES at a time as they are asked for, so nothing here waits for one: not a kill
  // asked for a moment later, nor the next tick's locks and removals of users disabled or removed.
  const queued: { roleId: number; userId: number }[] = [];
  const failed = (e: unknown) => logger.error({ err: e }, 'ending pair processes failed');
  const runHostWork = () => {
    // A pair queued twice in one tick is ended once.
    for (const p of new Map(queued.splice(0).map((p) => [`${p.roleId}:${p.userId}`, p])).values()) host.killPair(p.roleId, p.userId).catch(failed);
    host.enforce().catch(failed);
  };
  let ticking = false;
  const tick = async () => {
    // A tick that outlasts the interval (a slow store) is not overlapped by the next one.
    if (ticking) return;
    ticking = true;
    try {
      for (const k of await killRepo.pending()) {
        const s = live.get(k.sessionId);
        if (!s) {
          // Another node's live session: that node acts (or, if it is lost, the reaper resolves it).
          // One of this node's that ended before the kill reached it (the user left a moment
          // before): resolved, and the kill still ends the pair's server and processes, on this
          // node or, for a relayed session, on the node that holds them (its part below).
          const mine = config.nodeId === undefined || k.nodeId === config.nodeId;
          if (k.state === null || k.state === 'live' || !mine) continue;
          await killRepo.done(k.sessionId, clock.now(), 'ended');
          if (k.serverNodeId === null && k.roleId !== null && k.userId !== null) queued.push({ roleId: k.roleId, userId: k.userId });
          continue;
        }
        s.shell.end('killed', `session ended by an administrator: ${k.reason}`);
        await killRepo.done(k.sessionId, clock.now());
        // A relayed session's tmux server is on the node that holds it: that node ends it (below).
        if (k.serverNodeId === null || k.serverNodeId === config.nodeId) queued.push({ roleId: s.roleId, userId: s.userId });
      }
      // Sessions relayed here from the node that talks to their client, which has ended them: the
      // pair's server and processes end here, where they run.
      if (config.nodeId !== undefined && killRepo.serverPending && killRepo.serverDone) {
        for (const k of await killRepo.serverPending(config.nodeId)) {
          await killRepo.serverDone(k.sessionId, clock.now());
          queued.push({ roleId: k.roleId, userId: k.userId });
        }
      }
      runHostWork();
      if (live.size === 0 && live.viewers.size === 0) return;
      const closed = config.failClosed?.();
      if (closed) {
        live.endAll('evidence-lag', closed);
        return;
      }
      const disabled = new Set(await users.lockedOutIds());
      const grants = new Set((await roles.allGrants()).map((g) => `${g.userId}:${g.roleId}`));
      for (const v of live.viewers.values()) {
        if (disabled.has(v.viewerId)) v.shell.end('user-disabled', 'your account was disabled by an administrator');
      }
      for (const s of live.all()) {
        if (disabled.has(s.userId)) s.shell.end('user-disabled', 'your account was disabled by an administrator');
        else if (!grants.has(`${s.userId}:${s.roleId}`)) s.shell.end('role-revoked', `your role ${s.roleName} was revoked by an administrator`);
      }
    } catch (e) {
      logger.error({ err: e }, 'enforcer tick failed');
    } finally {
      ticking = false;
    }
  };
  return (config.realTime ?? systemClock).setInterval(() => void tick(), config.everyMs ?? 500);
}
