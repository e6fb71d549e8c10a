-- Off-box shipping of recordings (issue 14): how far each node's sinks have got.
-- (SQLite has no PostgreSQL sink, so its chunk and anchor tables exist only on PostgreSQL.)

-- One row per (sink, node), rewritten every few seconds by the node: bytes and chunks durable in
-- its local files but not yet acknowledged by the sink (the lag), the bound, and the node's view
-- of the sink, for the compliance report. append_only: what the sink says about its own rights
-- ('yes', 'no: ...', or 'unknown: ...').
CREATE TABLE evidence_sink_status (
  sink            TEXT NOT NULL,
  node            TEXT NOT NULL,
  destination     TEXT NOT NULL,
  on_failure      TEXT NOT NULL,
  lag_bytes       INTEGER NOT NULL,
  lag_chunks      INTEGER NOT NULL,
  max_lag_bytes   INTEGER NOT NULL,
  shipped_chunks  INTEGER NOT NULL,
  connected       INTEGER NOT NULL,
  last_error      TEXT,
  last_error_at   INTEGER,
  last_shipped_at INTEGER,
  append_only     TEXT,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (sink, node)
);

-- One row per (recording, sink) from the session's start: complete once the sink holds every
-- record of the file (trailer included, or everything an interrupted recording has). A node that
-- restarts ships what the incomplete ones lack from its local files.
CREATE TABLE recording_offsite (
  session_id TEXT NOT NULL,
  sink       TEXT NOT NULL,
  complete   INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, sink)
);
