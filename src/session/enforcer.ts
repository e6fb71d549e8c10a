import type { GatewayContext } from '../gateway-context.js';

/**
 * Makes admin changes reach live sessions and pair processes without a restart: polls the store
 * (shared with the CLI) for disabled or removed users, revoked grants and kill requests, ends the
 * affected sessions with a reason the user sees, then ends the pairs' tmux servers and every
 * process of their accounts (locking or removing the accounts). Returns a stop function.
 */
export function startEnforcer(ctx: GatewayContext, everyMs = 500): () => void {
  const { live, logger, host, kills: killRepo, users, roles } = ctx;
  // Pair processes end off the tick, one runner at a time: kills queue up and the runner drains
  // them, then locks or removes the pairs whose user or grant is gone.
  const queued: { roleId: number; userId: number }[] = [];
  let hostWork: Promise<void> | null = null;
  const runHostWork = () => {
    hostWork ??= (async () => {
      for (let p = queued.shift(); p; p = queued.shift()) await host.killPair(p.roleId, p.userId);
      await host.enforce();
    })()
      .catch((e) => logger.error({ err: e }, 'ending pair processes failed'))
      .finally(() => (hostWork = null));
  };
  const tick = () => {
    try {
      for (const k of killRepo.pending()) {
        const s = live.get(k.sessionId);
        if (!s) continue; // another gateway's, or already gone
        s.shell.end('killed', `session ended by an administrator: ${k.reason}`);
        killRepo.done(k.sessionId, ctx.clock.now());
        queued.push({ roleId: s.roleId, userId: s.userId });
      }
      runHostWork();
      if (live.size === 0 && live.viewers.size === 0) return;
      const disabled = new Set(users.lockedOutIds());
      const grants = new Set(roles.allGrants().map((g) => `${g.userId}:${g.roleId}`));
      for (const v of live.viewers.values()) {
        if (disabled.has(v.viewerId)) v.shell.end('user-disabled', 'your account was disabled by an administrator');
      }
      for (const s of live.all()) {
        if (disabled.has(s.userId)) s.shell.end('user-disabled', 'your account was disabled by an administrator');
        else if (!grants.has(`${s.userId}:${s.roleId}`)) s.shell.end('role-revoked', `your role ${s.roleName} was revoked by an administrator`);
      }
    } catch (e) {
      logger.error({ err: e }, 'enforcer tick failed');
    }
  };
  // Node's timer, not the injected clock: this polls for work other processes leave in the store
  // (kills, disables, revocations), which must be picked up while a test's fake clock stands still.
  const t = setInterval(tick, everyMs);
  t.unref();
  return () => clearInterval(t);
}
