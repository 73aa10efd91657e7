-- Edgeplane data model, migration 0002: flag snapshot publication (FR-FLAG-002).
-- Same file style rules as 0001_init.sql.
--
-- Every flag change bumps tenants.flags_version in D1, then the writer puts the tenant snapshot
-- in KV and records the version it put in flags_published_version. A row where the published
-- version lags is a snapshot the edge may not have: the reconciler cron republishes those.
ALTER TABLE tenants ADD COLUMN flags_published_version INTEGER NOT NULL DEFAULT 0;

-- Reconciler: tenants whose KV snapshot may be stale or missing.
CREATE INDEX tenants_flags_unpublished ON tenants (id)
  WHERE flags_published_version < flags_version;
