-- Edgeplane data model, migration 0009: the web consoles (/console/). Same file style rules as
-- 0001_init.sql.

-- console_sessions: a browser signed in to a web console. Keyed by the SHA-256 of the random
-- value of its cookie (the cookie itself is never stored). kind platform: an operator or auditor
-- of the operator identity provider (user_id is their platform user, role operator or auditor),
-- kind tenant: an owner or admin of a tenant (user_id and tenant_id, role owner or admin as at sign-in,
-- every action is checked again by the API with the role as it is then). csrf is the token
-- every form of the session carries. data holds what the session needs to act (for tenant
-- sessions the Edgeplane tokens, sealed under the master key). A session ends at expires_at
-- (absolute), after idle_timeout_ms without a request (last_seen_at, written at most once a
-- minute), or when revoked (sign-out, or all sessions of the user revoked).
CREATE TABLE console_sessions (
  token_hash TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('platform', 'tenant')),
  user_id TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('operator', 'auditor', 'owner', 'admin')),
  tenant_id TEXT,
  display_name TEXT NOT NULL DEFAULT '',
  csrf TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  idle_timeout_ms INTEGER NOT NULL CHECK (idle_timeout_ms > 0),
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);

CREATE INDEX console_sessions_user ON console_sessions (user_id);

CREATE INDEX console_sessions_tenant ON console_sessions (tenant_id);

CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- console_signins: a console sign-in in progress, between the redirect to the identity
-- provider and its answer. Keyed by the SHA-256 of the OAuth state, which the browser also
-- holds in a short-lived cookie (a sign-in started in another browser cannot complete in this
-- one). data holds the hash of the nonce and the PKCE verifier (sealed). Single use (consumed_at),
-- ten minutes.
CREATE TABLE console_signins (
  state_hash TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('platform', 'tenant')),
  data TEXT NOT NULL CHECK (json_valid(data)),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER
);

CREATE INDEX console_signins_expires ON console_signins (expires_at);

-- The tenant console is a first-party client of the OpenID provider: app edgeplane-console,
-- public (PKCE), enabled for every tenant without a tenant_apps row. Its one redirect URI,
-- PUBLIC_BASE_URL/console/auth/tenant/callback, comes from the deployment, not from this row.
INSERT INTO apps (id, name, owner_id, status, redirect_uris, allowed_origins, created_at, updated_at)
VALUES ('edgeplane-console', 'Edgeplane console', 'system', 'active', '[]', '[]', 0, 0);
