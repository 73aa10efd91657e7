-- Edgeplane data model, migration 0013: synthetic journeys (NFR-MON-003). Same file style rules
-- as 0001_init.sql.

-- tenants.canary: 1 for the tenants the synthetic journeys use (the canary tenant, and the
-- throwaway tenants the hourly journey provisions and purges). They are left out of the
-- operators tenant listing, the cross-tenant usage summaries and the all-tenant exports.
ALTER TABLE tenants ADD COLUMN canary INTEGER NOT NULL DEFAULT 0 CHECK (canary IN (0, 1));

-- journey_canary: the one canary set-up the journeys sign in with, created by the first run.
-- secrets_enc is the JSON of the canary user password, TOTP secret and API key, sealed under the
-- master key (context journey.canary): the journeys need them in clear, so they are not hashed.
CREATE TABLE journey_canary (
  id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  key_id TEXT NOT NULL,
  secrets_enc TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- journey_runs: one row per synthetic journey run. ok is 1 when every step passed, failed_step
-- names the first step that did not. steps_json is an array of the steps with their outcome and
-- duration in ms. lifecycle is 1 for the hourly runs that also provisioned and purged a throwaway
-- tenant. Kept 7 days.
CREATE TABLE journey_runs (
  id TEXT PRIMARY KEY NOT NULL,
  started_at INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
  ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
  failed_step TEXT,
  lifecycle INTEGER NOT NULL DEFAULT 0 CHECK (lifecycle IN (0, 1)),
  steps_json TEXT NOT NULL CHECK (json_valid(steps_json))
);

CREATE INDEX journey_runs_started ON journey_runs (started_at);
