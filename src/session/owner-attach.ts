import type { Logger } from '../platform/logger.js';
import type { Pty } from '../platform/pty.js';
import type { ShellStarter } from './shell-start.js';
import type { SessionRepo } from '../store/sessions.js';
import type { PairServerRepo } from '../store/pair-servers.js';
import type { UserRepo } from '../store/users.js';
import type { RoleRepo } from '../store/roles.js';
import type { RelayRequest } from '../cluster/link.js';

export interface OwnerAttachDeps {
  self: string;
  sessions: Pick<SessionRepo, 'get'>;
  pairServers: Pick<PairServerRepo, 'owner'>;
  users: Pick<UserRepo, 'byId'>;
  roles: Pick<RoleRepo, 'byId' | 'isGranted'>;
  shells: Pick<ShellStarter, 'attachForRelay'>;
  logger: Logger;
}

/**
 * The owning node's answer to a relay request. The link proves only that the caller holds the
 * cluster's node key; what it may attach to is what the store says: a live session row with
 * that id, started by the asking node, for exactly that (role, user), relayed to this node; the
 * pair held by this node; the user enabled and the role a granted shell role. Then the same
 * local tmux client a login here would get. Throws (the link refuses the channel) otherwise.
 */
export function ownerAttach(d: OwnerAttachDeps): (req: RelayRequest) => Promise<Pty> {
  return async (req) => {
    const s = await d.sessions.get(req.sessionId);
    const refuse = (why: string): never => {
      throw new Error(`relay of session ${req.sessionId} from node ${req.fromNode} refused: ${why}`);
    };
    if (!s || s.state !== 'live') return refuse('no live session with that id');
    if (s.node_id !== req.fromNode || req.fromNode === d.self) return refuse(`the session belongs to node ${s.node_id ?? '(none)'}`);
    if (s.user_id !== req.userId || s.role_id !== req.roleId) return refuse("the session is another pair's");
    if (s.server_node_id !== d.self) return refuse(`the session is relayed to node ${s.server_node_id ?? '(none)'}`);
    if ((await d.pairServers.owner(req.roleId, req.userId)) !== d.self) return refuse('this node does not hold the pair');
    const user = await d.users.byId(req.userId);
    const role = await d.roles.byId(req.roleId);
    if (!user || user.disabled) return refuse('the user is disabled or gone');
    if (!role || role.kind !== 'shell' || !(await d.roles.isGranted(user.id, role.id))) return refuse('the role is not a granted shell role');
    const log = d.logger.child({ session: req.sessionId, from: req.fromNode });
    log.info({ user: user.name, role: role.name }, 'relayed session attached here');
    return d.shells.attachForRelay({ user, role, sessionId: req.sessionId, term: req.term, cols: req.cols, rows: req.rows, log });
  };
}
