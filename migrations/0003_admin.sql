-- One-time recovery codes (only hashes stored), admin requests a running gateway acts on,
-- and signed checkpoints of the audit chain head (so a cut-off tail is caught).
CREATE TABLE recovery_codes (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id),
  salt       BLOB NOT NULL,
  code_hash  BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  used_at    INTEGER
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE session_kills (
  session_id   TEXT PRIMARY KEY,
  reason       TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  done_at      INTEGER
);

CREATE TABLE audit_checkpoints (
  id        INTEGER PRIMARY KEY,
  audit_id  INTEGER NOT NULL,
  head      TEXT NOT NULL,
  ts        INTEGER NOT NULL,
  signature BLOB NOT NULL
);
