-- The publickey step reads a user's key by (user_id, key_blob) at every login attempt, for a
-- name that matches nobody too (the decoy's): without an index that read scanned every enrolled
-- key (0.135 ms at ~3,000 keys on PostgreSQL, growing with the table).
CREATE INDEX public_keys_user ON public_keys(user_id);
