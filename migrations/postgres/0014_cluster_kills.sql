-- Ending a relayed session on the node that holds its tmux server, and locking accounts on every
-- machine that has them (issue 13).

-- server_done_at: when the node holding the killed session's tmux server (sessions.server_node_id,
-- for a relayed session) ended the pair's server and processes there, or when that node was
-- declared lost. outcome: how the request was resolved: 'killed' (the session was ended),
-- 'ended' (it had ended already), 'node lost' (its node was declared lost).
ALTER TABLE session_kills ADD COLUMN server_done_at BIGINT;
ALTER TABLE session_kills ADD COLUMN outcome TEXT;

-- An account is made on each machine that needs it, so it is locked (disable, revoke) and removed
-- (user removed) on each of them: these say when this machine's copy was.
ALTER TABLE account_hosts ADD COLUMN locked_at BIGINT;
ALTER TABLE account_hosts ADD COLUMN removed_at BIGINT;

-- Requests carried out before this migration were carried out whole (no node acts on them again).
UPDATE session_kills SET server_done_at = done_at, outcome = 'killed' WHERE done_at IS NOT NULL;
