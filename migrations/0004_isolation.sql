-- Least privilege: one OS account per (role, user) pair, allocated from a configured uid range,
-- and the tmux clients the gateway knows about besides its own (read-only observers).
CREATE TABLE pair_accounts (
  role_id    INTEGER NOT NULL,
  user_id    INTEGER NOT NULL,
  account    TEXT NOT NULL UNIQUE,
  uid        INTEGER NOT NULL UNIQUE,
  home       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (role_id, user_id)
);

CREATE TABLE tmux_observers (
  pid        INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  actor      TEXT NOT NULL,
  started_at INTEGER NOT NULL
);

-- Optional per-role bubblewrap sandbox: JSON {"readOnlyPaths": [...], "hiddenPaths": [...]}.
ALTER TABLE roles ADD COLUMN sandbox TEXT;
