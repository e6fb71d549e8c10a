-- Per-role automatic logoff warning time (NULL = config sessions.idleWarning).
ALTER TABLE roles ADD COLUMN idle_warning_ms INTEGER;
