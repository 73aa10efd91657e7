-- Edgeplane data model, migration 0006: the OpenID Connect provider for managed apps
-- (FR-AUTH-001 OIDC). The FILE STYLE RULES of 0001_init.sql apply.
--
-- A managed app is the OAuth client: client_id is apps.id. auth_flows cannot take new kinds
-- (SQLite cannot alter a CHECK), so the pending authorization requests and the codes have
-- their own tables here.

-- oidc_client_secrets: the client secret of a confidential client, one per app. secret_hash is
-- the keyed hash of the secret under API_KEY_PEPPER, as for API keys. An app without a row is a
-- public client (PKCE only).
CREATE TABLE oidc_client_secrets (
  app_id TEXT PRIMARY KEY NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- oidc_login_flows: authorization requests waiting for the user to sign in on the universal
-- login page. id_hash is the hash of the flow id handed to the browser, csrf_hash the hash of
-- the CSRF token of its forms, mfa_hash the hash of the mfa_token of a pending second factor.
-- tenant_id is set once the tenant is known. user_id and auth_methods hold a sign-in that
-- completed but waits for the user to continue (after an MFA enrollment shows the recovery
-- codes). Single use: consumed_at is set when a code is issued.
CREATE TABLE oidc_login_flows (
  id_hash TEXT PRIMARY KEY NOT NULL,
  client_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  redirect_uri TEXT NOT NULL,
  scope TEXT NOT NULL,
  state TEXT,
  nonce TEXT,
  code_challenge TEXT NOT NULL,
  tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
  csrf_hash TEXT NOT NULL,
  mfa_hash TEXT,
  user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
  auth_methods TEXT CHECK (auth_methods IS NULL OR json_valid(auth_methods)),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER
);

CREATE INDEX oidc_login_flows_expires ON oidc_login_flows (expires_at);

-- oidc_codes: authorization codes, keyed by the hash of the code. Bound to the client, the
-- redirect_uri, the PKCE challenge and the nonce. Single use: consumed_at is set by the
-- exchange, and session_id names the session it started, revoked if the code comes back.
CREATE TABLE oidc_codes (
  code_hash TEXT PRIMARY KEY NOT NULL,
  client_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  redirect_uri TEXT NOT NULL,
  scope TEXT NOT NULL,
  nonce TEXT,
  code_challenge TEXT NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  auth_methods TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(auth_methods)),
  auth_time INTEGER NOT NULL,
  session_id TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER
);

CREATE INDEX oidc_codes_expires ON oidc_codes (expires_at);

-- oidc_grants: what a session started by the provider was granted, by session (family) id:
-- the client, the scopes and the time of the sign-in, read again on each refresh.
CREATE TABLE oidc_grants (
  session_id TEXT PRIMARY KEY NOT NULL,
  client_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  scope TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE INDEX oidc_grants_tenant ON oidc_grants (tenant_id);
