-- Privilege separation. Pair accounts are ours only when recorded here: an existing OS account
-- that is not recorded is never adopted. Locked pairs (user disabled, grant revoked) keep their
-- row and uid; removed ones keep it too, so a uid is never handed to a new person.
ALTER TABLE pair_accounts ADD COLUMN locked_at INTEGER;
ALTER TABLE pair_accounts ADD COLUMN removed_at INTEGER;

-- The unprivileged account a role runs as when the admin named none (root gateway): created by
-- tmuxgate, recorded so it is reused and never confused with an account someone else made.
CREATE TABLE role_accounts (
  role_id    INTEGER PRIMARY KEY,
  account    TEXT NOT NULL UNIQUE,
  uid        INTEGER NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

-- Observers are identified by their tty as well as their pid (a sandboxed client's pid is only
-- meaningful inside its own PID namespace).
ALTER TABLE tmux_observers ADD COLUMN tty TEXT;
