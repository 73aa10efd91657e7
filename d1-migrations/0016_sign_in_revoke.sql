-- Edgeplane data model, migration 0016: the link of the new-sign-in notice that signs out the
-- session that sign-in started (NFR-SEC-006). Same file style rules as 0001_init.sql.

-- The session (family id, the sid of its tokens) a sign-in attempt started, recorded in the
-- batch that starts it. NULL until then, and for refreshes and refused sign-ins.
ALTER TABLE sign_in_attempts ADD COLUMN session_id TEXT;

-- The attempt a login page sign-in decided, carried by its flow and then its code to the token
-- endpoint, which starts the session.
ALTER TABLE oidc_login_flows ADD COLUMN attempt_id TEXT;

ALTER TABLE oidc_codes ADD COLUMN attempt_id TEXT;

-- sign_in_revocations: the single-use tokens of the notice links, one per notice. token_hash
-- is SHA-256 of the token (the token itself is only in the mail). used_at is set by the one
-- POST that used it, used_by the random id of that request, so that the statements of its
-- batch act only for the request that won. Expired rows are pruned by the scheduled job.
CREATE TABLE sign_in_revocations (
  token_hash TEXT PRIMARY KEY NOT NULL,
  attempt_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by TEXT
);

CREATE INDEX sign_in_revocations_attempt ON sign_in_revocations (attempt_id);

CREATE INDEX sign_in_revocations_expiry ON sign_in_revocations (expires_at);
