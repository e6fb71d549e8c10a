import { sleep, type Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { NodeRecord, NodeRepo } from '../store/nodes.js';
import type { PairServerRepo } from '../store/pair-servers.js';
import { inLanes } from '../platform/lanes.js';
import { PAIR_TURNS } from '../host/tmux-servers.js';

/** Where a login's (role, user) tmux session runs. */
export type Placement =
  /** Here: the pair is claimed by this node (taken over from a node that is gone, if `tookOverFrom`). */
  | { kind: 'local'; tookOverFrom?: string }
  /** On a live node that holds the pair's server: relayed over the link. */
  | { kind: 'relay'; node: string; address: string }
  /** On a live node that cannot be reached (it has no link): refused, the user told why. */
  | { kind: 'unavailable'; node: string; reason: string };

/** The decision for one claim's outcome: what to do given the owner and its node row. */
export type Decision = Placement | { kind: 'takeover'; from: string };

/** Whether a node counts as alive at `now`: not stopped, not declared lost, a heartbeat within `deadAfter`. */
export function nodeAlive(row: NodeRecord | null, now: number, deadAfter: number): boolean {
  return !!row && row.stopped_at === null && row.lost_at === null && now - row.heartbeat_at <= deadAfter;
}

/**
 * The pure rule: the owner is this node -> local; the owner is gone (no row, stopped, declared
 * lost, or silent longer than `deadAfter`) -> take the pair over; alive with a link -> relay;
 * alive without one -> unavailable (a second server for one pair would split the user's work).
 */
export function decide(self: string, owner: string, row: NodeRecord | null, now: number, deadAfter: number): Decision {
  if (owner === self) return { kind: 'local' };
  if (!nodeAlive(row, now, deadAfter)) return { kind: 'takeover', from: owner };
  if (!row!.link_address) return { kind: 'unavailable', node: owner, reason: 'accepts no relays (it has no cluster.link)' };
  return { kind: 'relay', node: owner, address: row!.link_address };
}

export interface PairPlacementDeps {
  self: string;
  pairServers: Pick<PairServerRepo, 'claim' | 'takeOver' | 'release' | 'ofNode'>;
  nodes: Pick<NodeRepo, 'get'>;
  /** Node liveness time (the heartbeats' clock). */
  clusterClock: Clock;
  deadAfter: number;
  /** Whether this node has a live tmux server for the pair now. */
  serverAlive(roleId: number, userId: number): Promise<boolean>;
  /**
   * Real time, and how long after a client's end a server that still answered is asked again:
   * the last client of a server whose last shell exited may end a moment before the server does.
   */
  realTime: Clock;
  recheckMs: number;
  logger: Logger;
}

/** How many times a login re-reads a pair that keeps changing hands before it gives up. */
const ATTEMPTS = 4;

/**
 * Where (role, user) tmux servers live in a cluster: a login claims its pair (the database picks
 * one owner among racing nodes), takes it over from a node that is gone, or is relayed to the
 * live node that holds it. A node gives up its claim when its server for the pair ends.
 */
export class PairPlacement {
  constructor(private readonly d: PairPlacementDeps) {}

  async place(roleId: number, userId: number): Promise<Placement> {
    const { self, pairServers, nodes, clusterClock, deadAfter } = this.d;
    let tookOverFrom: string | undefined;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const now = clusterClock.now();
      const owner = await pairServers.claim(roleId, userId, self, now);
      if (owner === null) continue; // released between our insert and our read: claim again
      const d = decide(self, owner, owner === self ? null : await nodes.get(owner), now, deadAfter);
      if (d.kind === 'takeover') {
        await pairServers.takeOver(roleId, userId, d.from, self, now);
        tookOverFrom = d.from;
        continue; // read the owner again: another node may have taken it first
      }
      return d.kind === 'local' && tookOverFrom ? { kind: 'local', tookOverFrom } : d;
    }
    throw new Error(`pair r${roleId}u${userId} changed hands ${ATTEMPTS} times while this login was placed`);
  }

  /** A client of the pair ended here: if the pair's server is gone too, release the claim. */
  async clientEnded(roleId: number, userId: number): Promise<void> {
    if (await this.d.serverAlive(roleId, userId)) {
      await sleep(this.d.realTime, this.d.recheckMs);
      if (await this.d.serverAlive(roleId, userId)) return;
    }
    if (await this.d.pairServers.release(roleId, userId, this.d.self)) this.d.logger.debug({ roleId, userId }, 'pair server ended; claim released');
  }

  /**
   * At start: claims of this node whose server did not survive (a reboot, a crash of tmux) are
   * released. Asking whether a server lives is the pair's to hold (a program on its socket that
   * never answers), so the pairs go in turns (PAIR_TURNS), as the reconcile's: one pair holds its
   * lane, not the releases after it (nor, by as much, a shutdown, which waits for this).
   */
  async releaseDead(): Promise<number> {
    let n = 0;
    await inLanes(await this.d.pairServers.ofNode(this.d.self), { ...PAIR_TURNS, clock: this.d.realTime }, async (p) => {
      if (await this.d.serverAlive(p.roleId, p.userId)) return;
      if (await this.d.pairServers.release(p.roleId, p.userId, this.d.self)) n++;
    });
    return n;
  }
}
