import { sleep, type Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { AuditSink } from '../audit/log.js';
import type { SessionRegistry } from '../session/registry.js';

/** What a draining shutdown closes, in its order. */
export interface DrainConfig {
  front: { stopAccepting(): Promise<void>; destroyAll(): void };
  /** Work begun at start that must settle first (the tmux reconcile). */
  started: Promise<unknown>;
  live: Pick<SessionRegistry, 'shutDown' | 'drain'>;
  /** Paces the pause that lets last words reach clients: real time. */
  realTime: Clock;
  /** Stops periodic work, the enforcer and the metrics endpoint. */
  stops: (() => void)[];
  /** Writes pending pre-authentication summaries. */
  preauth: { close(): void };
  audit: AuditSink;
  /** Signs the audit chain's head. */
  checkpoint: () => Promise<void>;
  /** Closes the store: the last step. */
  closeStore: () => Promise<void>;
  logger: Logger;
}

/**
 * The gateway's close(): stop accepting, tell users, close channels (tmux servers stay), seal
 * every recording, then audit the stop, sign the last rows and close the store. Called twice, it
 * returns the same promise.
 */
export function makeDrain(c: DrainConfig): (reason?: string) => Promise<void> {
  let closing: Promise<void> | null = null;
  return (reason = 'shutdown') => {
    closing ??= (async () => {
      const stopped = c.front.stopAccepting();
      await c.started;
      const n = c.live.shutDown('gateway-shutdown', 'the gateway is restarting; reconnect in a moment');
      // Give channel close messages a moment to reach the clients before sockets go.
      await sleep(c.realTime, n ? 100 : 0);
      await c.live.drain(); // every recording sealed before the store closes
      c.front.destroyAll();
      await stopped;
      for (const stop of c.stops) stop();
      c.preauth.close(); // pending pre-authentication summaries are written before the stop row
      await c.audit.emit('gateway', { type: 'gateway.stop', reason, sessionsClosed: n });
      await c.checkpoint(); // the last rows are signed too: a cut-off tail is caught
      await c.closeStore();
      c.logger.info({ reason, sessionsClosed: n }, 'tmuxgate stopped');
    })();
    return closing;
  };
}
