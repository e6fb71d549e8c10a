-- Off-box shipping of recordings (issue 14): how far each node's sinks have got, and the
-- PostgreSQL sink's own tables. For a sink in a separate database, run this file there too, as
-- that database's owner (every statement is IF NOT EXISTS); docs/evidence.md gives the GRANTs.

-- One row per (sink, node), rewritten every few seconds by the node: bytes and chunks durable in
-- its local files but not yet acknowledged by the sink (the lag), the bound, and the node's view
-- of the sink, for the compliance report. append_only: what the sink says about its own rights
-- ('yes', 'no: ...', or 'unknown: ...').
CREATE TABLE IF NOT EXISTS evidence_sink_status (
  sink            TEXT NOT NULL,
  node            TEXT NOT NULL,
  destination     TEXT NOT NULL,
  on_failure      TEXT NOT NULL,
  lag_bytes       BIGINT NOT NULL,
  lag_chunks      BIGINT NOT NULL,
  max_lag_bytes   BIGINT NOT NULL,
  shipped_chunks  BIGINT NOT NULL,
  connected       INTEGER NOT NULL,
  last_error      TEXT,
  last_error_at   BIGINT,
  last_shipped_at BIGINT,
  append_only     TEXT,
  updated_at      BIGINT NOT NULL,
  PRIMARY KEY (sink, node)
);

-- One row per (recording, sink) from the session's start: complete once the sink holds every
-- record of the file (trailer included, or everything an interrupted recording has). A node that
-- restarts ships what the incomplete ones lack from its local files.
CREATE TABLE IF NOT EXISTS recording_offsite (
  session_id TEXT NOT NULL,
  sink       TEXT NOT NULL,
  complete   INTEGER NOT NULL DEFAULT 0,
  started_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (session_id, sink)
);

-- The PostgreSQL sink: every record of every recording file exactly as written locally. kind
-- 'header' (seq 0) is the file header, 'chunk' a sealed chunk (seq = its sequence number),
-- 'trailer' the signed trailer (seq = the chunk count). chain_hash: the hash the next chunk links
-- to (for the header the genesis hash, for the trailer its finalHash). The writer's role may
-- INSERT and SELECT only: a row once written is never changed (ON CONFLICT DO NOTHING on resend).
CREATE TABLE IF NOT EXISTS evidence_recording_chunks (
  session_id TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('header', 'chunk', 'trailer')),
  seq        BIGINT NOT NULL,
  record     BYTEA NOT NULL,
  chain_hash TEXT NOT NULL,
  node       TEXT NOT NULL,
  shipped_at BIGINT NOT NULL,
  PRIMARY KEY (session_id, kind, seq)
);

-- Signed chain heads, at least every 60 s and at shutdown. kind 'audit': the audit checkpoint
-- (position = the audit row id it signs); kind 'recording': a live recording's head after its
-- last durable chunk (subject = the session id, position = the chunk count). signature: Ed25519
-- with the audit key over the bytes named in src/evidence/anchors.ts.
CREATE TABLE IF NOT EXISTS evidence_anchors (
  id        BIGSERIAL PRIMARY KEY,
  kind      TEXT NOT NULL CHECK (kind IN ('audit', 'recording')),
  subject   TEXT NOT NULL,
  position  BIGINT NOT NULL,
  head      TEXT NOT NULL,
  ts        BIGINT NOT NULL,
  signature BYTEA NOT NULL,
  node      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_anchors_subject ON evidence_anchors (kind, subject, position);
