-- The S3 sink's index (issue 14): catalogs that could not be written (readers index the segments
-- they were to name until a later catalog names them) and catalogs read that are not catalogs
-- (not trusted: that writer day's segments are indexed instead), as each node counts them since
-- its start, for metrics and the compliance report. Zero for the PostgreSQL sink.
ALTER TABLE evidence_sink_status ADD COLUMN catalog_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evidence_sink_status ADD COLUMN catalog_error TEXT;
ALTER TABLE evidence_sink_status ADD COLUMN catalog_error_at BIGINT;
ALTER TABLE evidence_sink_status ADD COLUMN unreadable_catalogs INTEGER NOT NULL DEFAULT 0;
