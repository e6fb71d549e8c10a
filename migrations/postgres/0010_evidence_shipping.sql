-- Off-box shipping of the audit log (issue 14): where each sink has got to, and which node ships.

-- One row per sink ('syslog'). shipped_id: the last audit row the collector is known to have
-- (the shipping cursor). holder and lease_until: the node that ships now; exactly one node holds
-- a live lease, taken and renewed under the sink's lock, and another takes over once it lapses.
-- connected, unreachable_since and last_error: the holder's view of the collector, written at
-- each renewal, for the compliance report and the other nodes.
CREATE TABLE evidence_shipping (
  target            TEXT PRIMARY KEY,
  destination       TEXT NOT NULL,
  shipped_id        BIGINT NOT NULL DEFAULT 0,
  holder            TEXT,
  lease_until       BIGINT NOT NULL DEFAULT 0,
  connected         INTEGER NOT NULL DEFAULT 0,
  unreachable_since BIGINT,
  last_error        TEXT,
  updated_at        BIGINT NOT NULL
);
