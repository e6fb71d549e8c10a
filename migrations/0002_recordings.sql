-- Session recordings: one encrypted, hash-chained file per session; this row holds the wrapped
-- data key (only ever stored wrapped by a master key, whose id is kept so keys can rotate) and the
-- chain head after every durable flush, so a truncated file is caught even without a trailer.
CREATE TABLE recordings (
  session_id   TEXT PRIMARY KEY,
  file         TEXT NOT NULL,
  wrapped_key  BLOB NOT NULL,
  key_id       TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('recording', 'sealed', 'interrupted', 'failed')),
  chunks       INTEGER NOT NULL DEFAULT 0,
  chain_head   TEXT NOT NULL DEFAULT '',
  bytes_in     INTEGER NOT NULL DEFAULT 0,
  bytes_stored INTEGER NOT NULL DEFAULT 0,
  duration_ms  INTEGER,
  cols         INTEGER NOT NULL,
  rows         INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  sealed_at    INTEGER,
  failure      TEXT,
  last_verified_at INTEGER,
  last_verify_status TEXT
);
