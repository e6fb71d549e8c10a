-- Four-eyes unmasking of redacted views (issue 15).

-- A request to see one session unmasked: made by one admin (requested_by, the actor as audited),
-- with a reason and a duration; decided once by a different admin (approved) or by anyone (denied);
-- a request not decided by expires_at lapses. state: pending, approved, denied.
CREATE TABLE unmask_requests (
  id           INTEGER PRIMARY KEY,
  session_id   TEXT NOT NULL REFERENCES sessions(id),
  requested_by TEXT NOT NULL,
  reason       TEXT NOT NULL,
  duration_ms  INTEGER NOT NULL,
  requested_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'denied')),
  decided_at   INTEGER,
  decided_by   TEXT,
  deny_reason  TEXT
);
CREATE INDEX unmask_requests_session ON unmask_requests(session_id);

-- A grant made by approving a request: for the requester only (grantee), that session only, from
-- approved_at until expires_at unless revoked first. One grant per request.
CREATE TABLE unmask_grants (
  id            INTEGER PRIMARY KEY,
  request_id    INTEGER NOT NULL UNIQUE REFERENCES unmask_requests(id),
  session_id    TEXT NOT NULL,
  grantee       TEXT NOT NULL,
  reason        TEXT NOT NULL,
  approved_by   TEXT NOT NULL,
  approved_at   INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  revoked_at    INTEGER,
  revoked_by    TEXT,
  revoke_reason TEXT
);
CREATE INDEX unmask_grants_session ON unmask_grants(session_id);
