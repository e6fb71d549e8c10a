-- Several gateway nodes on one store (issue 13).

-- Each node: its id, where its node-to-node link listens, the machine it runs on, and a
-- heartbeat. A node whose heartbeat is older than the cluster's bound (cluster.deadAfter) is gone.
CREATE TABLE nodes (
  id           TEXT PRIMARY KEY,
  link_address TEXT,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  version      TEXT NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  stopped_at   INTEGER,
  -- Set by the reaper of another node when this one's heartbeat went stale; cleared when it beats again.
  lost_at      INTEGER
);

-- Which node holds each (role, user) pair's live tmux server (tmux servers are node-local).
CREATE TABLE pair_servers (
  role_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  node_id TEXT NOT NULL,
  since   INTEGER NOT NULL,
  PRIMARY KEY (role_id, user_id)
);

-- The node that talks to the session's client (and records it), and the node whose tmux server
-- it is attached to when that is another one (a relayed session).
ALTER TABLE sessions ADD COLUMN node_id TEXT;
ALTER TABLE sessions ADD COLUMN server_node_id TEXT;
CREATE INDEX sessions_live_node ON sessions(state, node_id);

-- The machines on which an account this store allocated exists. Accounts are allocated once for
-- the cluster (name and uid never reused) and made on each machine that needs them; an account
-- with no row here predates clusters and was made on the only machine there was.
CREATE TABLE account_hosts (
  account    TEXT NOT NULL,
  host       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (account, host)
);
