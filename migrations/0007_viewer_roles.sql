-- A role of kind 'viewer' is a read-only view onto one named session: "<user>+<role>".
CREATE TABLE roles_new (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  kind            TEXT NOT NULL DEFAULT 'shell' CHECK (kind IN ('shell', 'auditor', 'viewer')),
  run_as          TEXT,
  allow_root      INTEGER NOT NULL DEFAULT 0,
  shell           TEXT,
  idle_timeout_ms INTEGER,
  max_session_ms  INTEGER,
  record_input    INTEGER NOT NULL DEFAULT 0,
  tmux_options    TEXT NOT NULL DEFAULT '{}',
  created_at      INTEGER NOT NULL,
  sandbox         TEXT,
  idle_warning_ms INTEGER,
  view_of         TEXT
);
INSERT INTO roles_new (id, name, kind, run_as, allow_root, shell, idle_timeout_ms, max_session_ms, record_input, tmux_options, created_at, sandbox, idle_warning_ms)
  SELECT id, name, kind, run_as, allow_root, shell, idle_timeout_ms, max_session_ms, record_input, tmux_options, created_at, sandbox, idle_warning_ms FROM roles;
DROP TABLE roles;
ALTER TABLE roles_new RENAME TO roles;
