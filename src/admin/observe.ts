import type { AdminContext } from './context.js';
import { TgError } from '../errors.js';
import { adminHost } from './host.js';
import type { Redactor } from '../redaction/redactor.js';
import { policyAudit, redactorFor } from '../redaction/view-policy.js';
import { adminViewPolicy, grantExpiry } from './recordings.js';

/** What the CLI needs to run an observer client in a pty of its own, and to register it. */
export interface Observation {
  file: string;
  args: string[];
  /** Built from nothing: the client runs as the observed pair and inherits nothing of the admin's. */
  env: Record<string, string>;
  /** What the screen is shown through: a redactor (the view policy redacts), or null (as it is, safe-filtered). */
  redactor: Redactor | null;
  /** Registers the running client, so the gateway's intrusion check knows it is an audited observer. */
  started(client: { pid: number; tty: string | null }): Promise<void>;
  /** Unregisters it once it has ended. */
  ended(): Promise<void>;
  /** Calls `fn` when an unmasked view's grant expires or is revoked (the observation must end then); returns a cancel. */
  onGrantExpiry(fn: () => void): () => void;
}

/**
 * Prepares `sessions observe ID`: a tmux read-only client of a live session's server, run as the
 * observed pair's account (a program on that socket can make it do only what the pair could do
 * already); the observation is audited before the client starts. The caller owns the pty the
 * client runs in and filters what it shows (docs/isolation.md), redacted unless the view policy
 * says otherwise (docs/redaction.md).
 */
export async function openObservation(a: AdminContext, id: string): Promise<Observation> {
  const s = await a.sessions.get(id);
  if (!s || s.state !== 'live') throw new TgError('TG_ERR_SESSION_NOT_FOUND', `no live session ${id}`);
  const client = await adminHost(a).readOnlyClient(s.role_id, s.user_id);
  if (!client) throw new TgError('TG_ERR_SESSION_NOT_FOUND', `session ${id} has no tmux server on this host`);
  const policy = await adminViewPolicy(a, 'observe', id);
  const detail = `live, read-only: ${s.user_name}+${s.role_name}`;
  await a.audit.emit(a.actor, { type: 'recording.access', action: 'observe', sessionId: id, detail, ...policyAudit(policy) });
  let pid: number | null = null;
  return {
    ...client.cmd,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', TERM: 'xterm-256color', LANG: 'C.UTF-8', HOME: '/' },
    redactor: policy.redact ? redactorFor(a.config) : null,
    started: async (c) => {
      pid = c.pid;
      await a.hostAccounts.addObserver({ pid: c.pid, tty: c.tty, sessionId: id, actor: a.actor, at: a.clock.now() });
    },
    ended: async () => {
      if (pid !== null) await a.hostAccounts.removeObserver(pid);
    },
    onGrantExpiry: (fn) => grantExpiry(a, policy, id, fn),
  };
}
