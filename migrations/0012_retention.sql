-- Retention, legal hold and provable deletion (issue 14).

-- A role's retention period: how long its recordings are kept after they end (NULL: the config's
-- recording.retention, six years by default).
ALTER TABLE roles ADD COLUMN retention_ms INTEGER;

-- retention_ms: the period the recording's role had when the recording started, fixed then (a
-- later role edit changes only later recordings; NULL for recordings made before this migration,
-- which follow the config's recording.retention). purged_at..purge_audit_id: set together, in the
-- one transaction that destroys the wrapped data key (wrapped_key becomes empty) and appends the
-- signed recording.purged tombstone, audit row purge_audit_id. file_removed_at: when the local
-- file was deleted afterwards.
ALTER TABLE recordings ADD COLUMN retention_ms INTEGER;
ALTER TABLE recordings ADD COLUMN purged_at INTEGER;
ALTER TABLE recordings ADD COLUMN purged_by TEXT;
ALTER TABLE recordings ADD COLUMN purge_reason TEXT;
ALTER TABLE recordings ADD COLUMN purge_audit_id INTEGER;
ALTER TABLE recordings ADD COLUMN file_removed_at INTEGER;

-- Legal holds: while one stands (released_at NULL) the recording is never purged. Released holds
-- are kept, with who released them and why.
CREATE TABLE recording_holds (
  id             INTEGER PRIMARY KEY,
  session_id     TEXT NOT NULL REFERENCES recordings(session_id),
  reason         TEXT NOT NULL,
  placed_by      TEXT NOT NULL,
  placed_at      INTEGER NOT NULL,
  released_at    INTEGER,
  released_by    TEXT,
  release_reason TEXT
);
CREATE INDEX recording_holds_standing ON recording_holds(session_id) WHERE released_at IS NULL;
