-- tmuxgate schema, version 1. Times are Unix epoch milliseconds.

CREATE TABLE roles (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  kind            TEXT NOT NULL DEFAULT 'shell' CHECK (kind IN ('shell', 'auditor')),
  run_as          TEXT,                 -- OS account its tmux servers run as; NULL = the gateway's own (dev mode)
  allow_root      INTEGER NOT NULL DEFAULT 0,
  shell           TEXT,                 -- NULL = config sessions.defaultShell
  idle_timeout_ms INTEGER,              -- NULL = config default
  max_session_ms  INTEGER,              -- NULL = config default
  record_input    INTEGER NOT NULL DEFAULT 0,
  tmux_options    TEXT NOT NULL DEFAULT '{}',
  created_at      INTEGER NOT NULL
);

CREATE TABLE users (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL,
  default_role_id INTEGER REFERENCES roles(id),
  disabled        INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  removed_at      INTEGER               -- removal is soft: audit events and recordings keep their subject
);
CREATE UNIQUE INDEX users_live_name ON users(name) WHERE removed_at IS NULL;

CREATE TABLE public_keys (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id),
  key_type    TEXT NOT NULL,
  key_blob    BLOB NOT NULL,            -- SSH wire-format public key
  fingerprint TEXT NOT NULL,            -- SHA256:... as ssh-keygen -l prints it
  bits        INTEGER,
  comment     TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX public_keys_fp ON public_keys(fingerprint);

CREATE TABLE totp_secrets (
  user_id      INTEGER PRIMARY KEY REFERENCES users(id),
  sealed       BLOB NOT NULL,           -- AES-256-GCM under the master key, AAD binds the user id
  key_id       TEXT NOT NULL,           -- which master key sealed it
  confirmed_at INTEGER,                 -- NULL: pending enrollment, never opens a session
  last_step    INTEGER NOT NULL DEFAULT -1, -- replay guard: last accepted RFC 6238 time step
  created_at   INTEGER NOT NULL
);

CREATE TABLE grants (
  user_id    INTEGER NOT NULL REFERENCES users(id),
  role_id    INTEGER NOT NULL REFERENCES roles(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, role_id)
);

CREATE TABLE sessions (
  id          TEXT PRIMARY KEY,         -- random, never derived from user input
  user_id     INTEGER NOT NULL,
  role_id     INTEGER NOT NULL,
  user_name   TEXT NOT NULL,
  role_name   TEXT NOT NULL,
  remote_addr TEXT NOT NULL,
  term        TEXT NOT NULL,
  cols        INTEGER NOT NULL,
  rows        INTEGER NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('live', 'closed', 'interrupted')),
  started_at  INTEGER NOT NULL,
  ended_at    INTEGER,
  end_reason  TEXT,
  gateway_pid INTEGER NOT NULL
);
CREATE INDEX sessions_started ON sessions(started_at);

CREATE TABLE auth_failures (
  id           INTEGER PRIMARY KEY,
  subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'address')),
  subject      TEXT NOT NULL,
  at           INTEGER NOT NULL
);
CREATE INDEX auth_failures_subject ON auth_failures(subject_kind, subject, at);

CREATE TABLE lockouts (
  subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'address')),
  subject      TEXT NOT NULL,
  level        INTEGER NOT NULL,        -- how many times locked; the duration doubles with each
  locked_until INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (subject_kind, subject)
);

CREATE TABLE audit_events (
  id        INTEGER PRIMARY KEY,
  ts        INTEGER NOT NULL,
  type      TEXT NOT NULL,
  actor     TEXT NOT NULL,              -- gateway user, or os:<account> for CLI use, or gateway
  data      TEXT NOT NULL,              -- canonical JSON of the event's fields
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE INDEX audit_events_ts ON audit_events(ts);

CREATE TABLE gateway_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
