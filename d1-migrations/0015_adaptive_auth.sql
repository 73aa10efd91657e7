-- Edgeplane data model, migration 0015: adaptive (risk-based) authentication (NFR-SEC-006,
-- CON-SEC-008). Same file style rules as 0001_init.sql. No address, user agent or raw device
-- identifier is stored: only their hashes, and a coarse device label such as Firefox on Linux.

-- risk_policies: a tenant policy of core::risk as JSON (what each risk level requires and the
-- rules that score a sign-in). No row means the documented defaults.
CREATE TABLE risk_policies (
  tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  policy TEXT NOT NULL CHECK (json_valid(policy)),
  updated_at INTEGER NOT NULL
);

-- sign_in_attempts: one row per risk decision on a sign-in whose credentials were right
-- (password, passkey, SSO) and per refresh from a new country. device_hash is SHA-256 of the
-- device identifier, client_hash SHA-256 of the client address, country an ISO 3166 alpha-2
-- code, colo the edge location, asn the network. signals is a JSON array of the names of the
-- signals that fired, score their weighted sum. outcome is success once the user got in
-- (at once or after the step-up), challenged while a step-up is pending, blocked or revoked.
-- The baseline of a user is their success rows. Pruned by the scheduled job after 90 days.
CREATE TABLE sign_in_attempts (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  method TEXT NOT NULL CHECK (method IN ('password', 'passkey', 'sso', 'refresh')),
  device_hash TEXT,
  device_label TEXT,
  country TEXT,
  colo TEXT,
  asn INTEGER,
  client_hash TEXT,
  score INTEGER NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('low', 'medium', 'high')),
  action TEXT NOT NULL CHECK (action IN ('allow', 'second_factor', 'email_code', 'block')),
  signals TEXT NOT NULL CHECK (json_valid(signals)),
  outcome TEXT NOT NULL CHECK (outcome IN ('success', 'challenged', 'blocked', 'revoked'))
);

CREATE INDEX sign_in_attempts_user ON sign_in_attempts (user_id, created_at);

CREATE INDEX sign_in_attempts_tenant ON sign_in_attempts (tenant_id, created_at);

-- known_devices: the devices a user signed in from (device_hash as above, unique per user),
-- listed and removable by the user, all removed on a password reset.
CREATE TABLE known_devices (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_hash TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  UNIQUE (user_id, device_hash)
);
