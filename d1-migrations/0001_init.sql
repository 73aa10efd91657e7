-- Edgeplane data model, migration 0001: the whole control-plane schema.
--
-- One schema for D1 (wrangler d1 migrations apply), Spin SQLite and rusqlite (core unit tests),
-- applied by core::migrations::apply where wrangler does not run. Billing and audit events are
-- not here: they live in the event log (core::events, a Durable Object on Workers) and its
-- archives, indexed by archive_index.
--
-- FILE STYLE RULES. A Rust splitter (core/src/migrations.rs) and a JS splitter rely on them, and
-- wrangler splits the file with its own tokenizer:
--   * comments only as whole lines starting with two dashes, never after code on a line
--   * every statement ends with a semicolon as the last character of its line
--   * no semicolon anywhere else: not in string literals, not in comments
--   * no triggers, no transaction statements (D1 wraps the file in one), no PRAGMA statements
--   * no CASE expressions: wrangler treats the CASE keyword as the start of a compound block
--   * no quote characters in comments
--
-- Conventions:
--   * ids are TEXT (UUID text, or a key id for api_keys and signing_keys)
--   * timestamps are INTEGER unix milliseconds (_at columns), durations say their unit
--   * booleans are INTEGER 0 or 1 with a CHECK
--   * JSON is TEXT checked with json_valid
--   * enumerations are lowercase TEXT with a CHECK, or a reference table (roles, plans)
--   * _hash columns hold a hash of a secret, never the secret (tokens, keys, codes)
--   * _enc columns hold AES-256-GCM ciphertext under the master key (NFR-SEC-002, NFR-SEC-004)
--   * version columns serve optimistic updates: UPDATE ... WHERE id = ?1 AND version = ?2
--   * a tenant purge deletes the tenants row or its children: children cascade (FR-OPS-002)
--   * PII is kept to what a flow needs: no IP addresses or user agents are stored
--   * email and domain compare case-insensitively (COLLATE NOCASE), so their indexes serve
--     both equality and prefix search (bind the pattern, e.g. name LIKE ?1 with ?1 = acme%)

-- roles: the five roles (spec Data Model, Roles). A reference table so users.role and
-- invitations.role are foreign keys. Tenant roles: owner, admin, user (FR-TENANT-004).
-- Platform roles: operator, auditor (FR-SYS-004, FR-LOG-002).
CREATE TABLE roles (
  name TEXT PRIMARY KEY NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('tenant', 'platform')),
  description TEXT NOT NULL
);

INSERT INTO roles (name, scope, description) VALUES
  ('owner', 'tenant', 'Full access to tenant configuration, billing and user management'),
  ('admin', 'tenant', 'User management and tenant configuration, excluding billing'),
  ('user', 'tenant', 'Access to the managed application features only'),
  ('operator', 'platform', 'Full access to the control plane'),
  ('auditor', 'platform', 'Read-only access to audit logs and reports');

-- plans: subscription plans (spec Data Model, Tenants.plan), referenced by tenants.plan and by
-- plan_default_flags. FR-TENANT-003 changes tenants.plan.
CREATE TABLE plans (
  name TEXT PRIMARY KEY NOT NULL,
  description TEXT NOT NULL
);

INSERT INTO plans (name, description) VALUES
  ('free', 'Free'),
  ('pro', 'Pro'),
  ('enterprise', 'Enterprise');

-- tenants: customer organizations (spec Data Model, Tenants). FR-OPS-001 status changes,
-- FR-OPS-002 deletion with a 30-day grace period (pending_deletion, purge_after) then purge,
-- FR-TENANT-003 plan changes. A purged tenant may stay as a tombstone (status deleted, answering
-- 410 Gone): the purge scrubs its domain to NULL, which frees the domain for reuse.
-- flags_version counts changes to the tenant flag set: it versions the KV snapshot and its ETag
-- (FR-FLAG-002) and lets the reconciler spot a stale snapshot.
CREATE TABLE tenants (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL COLLATE NOCASE CHECK (length(name) > 0),
  domain TEXT COLLATE NOCASE,
  plan TEXT NOT NULL REFERENCES plans (name),
  status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'suspended', 'pending_deletion', 'deleted')),
  suspended_reason TEXT,
  suspended_at INTEGER,
  deletion_requested_at INTEGER,
  purge_after INTEGER,
  deleted_at INTEGER,
  flags_version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  CHECK (domain IS NOT NULL OR status = 'deleted'),
  CHECK (status <> 'pending_deletion' OR purge_after IS NOT NULL)
);

-- Sign-in and provisioning look tenants up by domain, unique case-insensitively. Also serves
-- the domain prefix search.
CREATE UNIQUE INDEX tenants_domain ON tenants (domain);

-- Operator tenant list, filtered by status, paged by (created_at, id).
CREATE INDEX tenants_status_created ON tenants (status, created_at, id);

-- Operator tenant list without a status filter.
CREATE INDEX tenants_created ON tenants (created_at, id);

-- Tenant search by name prefix.
CREATE INDEX tenants_name ON tenants (name);

-- Purge cron: tenants whose grace period is over (FR-OPS-002).
CREATE INDEX tenants_purge ON tenants (purge_after) WHERE status = 'pending_deletion';

-- users: tenant users and platform users (spec Data Model, Users). FR-AUTH-001 password login,
-- FR-AUTH-004 password change, FR-TENANT-002 deletion, FR-TENANT-004 roles, FR-TENANT-006
-- status, FR-SYS-004 operator JIT provisioning (tenant_id NULL, identified by the external
-- issuer and subject), NFR-SEC-003 TOTP. Tenant SSO users also carry external_issuer and
-- external_subject. Deleting a user (FR-TENANT-002, CON-COMP-001 erasure) sets status deleted
-- and scrubs email, display_name and credentials: a NULL email frees the address for a new
-- invitation. failed_logins and locked_until throttle password guessing per account.
-- totp_last_step stores the last accepted TOTP time step so a code cannot be replayed.
CREATE TABLE users (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
  email TEXT COLLATE NOCASE,
  display_name TEXT,
  role TEXT NOT NULL REFERENCES roles (name),
  status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('invited', 'active', 'disabled', 'deleted')),
  password_hash TEXT,
  password_changed_at INTEGER,
  mfa_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
  totp_secret_enc TEXT,
  totp_last_step INTEGER,
  failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
  locked_until INTEGER,
  last_login_at INTEGER,
  external_issuer TEXT,
  external_subject TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  CHECK ((tenant_id IS NULL) = (role IN ('operator', 'auditor'))),
  CHECK (tenant_id IS NOT NULL OR external_subject IS NOT NULL),
  CHECK (tenant_id IS NULL OR email IS NOT NULL OR status = 'deleted'),
  CHECK ((external_issuer IS NULL) = (external_subject IS NULL))
);

-- Login and invitation lookups: email is unique within a tenant (platform users have no tenant
-- and are unique by issuer and subject instead).
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, email);

-- Tenant console user list filtered by status, paged by id.
CREATE INDEX users_tenant_status ON users (tenant_id, status, id);

-- Tenant console user list without a status filter, paged by id.
CREATE INDEX users_tenant_id ON users (tenant_id, id);

-- Tenant SSO sign-in: one user per external identity within a tenant.
CREATE UNIQUE INDEX users_tenant_external ON users (tenant_id, external_issuer, external_subject);

-- Operator sign-in (FR-SYS-004): one platform user per external identity (the index above
-- cannot enforce it, NULL tenant ids being distinct). Lookups say tenant_id IS NULL.
CREATE UNIQUE INDEX users_platform_external ON users (external_issuer, external_subject)
  WHERE tenant_id IS NULL;

-- password_history: previous password hashes, checked against the tenant policy history_count
-- on change and reset (FR-AUTH-004, FR-AUTH-006, CON-SEC-001).
CREATE TABLE password_history (
  id INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE INDEX password_history_user ON password_history (user_id, created_at);

-- mfa_recovery_codes: single-use MFA recovery codes, hashed (NFR-SEC-003).
CREATE TABLE mfa_recovery_codes (
  id INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  used_at INTEGER,
  UNIQUE (user_id, code_hash)
);

-- webauthn_credentials: registered WebAuthn authenticators (NFR-SEC-003). credential_id and
-- public_key (COSE) are base64url text. sign_count detects cloned authenticators.
CREATE TABLE webauthn_credentials (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  credential_id TEXT NOT NULL UNIQUE,
  public_key TEXT NOT NULL,
  sign_count INTEGER NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
  transports TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(transports)),
  name TEXT,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);

CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- apps: managed applications (spec Data Model, Managed Applications). FR-SYS-001 registration
-- (unique name), FR-SYS-003 configuration and status. redirect_uris and allowed_origins are
-- JSON arrays of strings, for the OIDC provider and browser keys.
CREATE TABLE apps (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (length(name) > 0),
  owner_id TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  redirect_uris TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(redirect_uris) AND json_type(redirect_uris) = 'array'),
  allowed_origins TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(allowed_origins) AND json_type(allowed_origins) = 'array'),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);

-- tenant_apps: which managed applications a tenant subscribes to (POST /v1/tenants apps).
CREATE TABLE tenant_apps (
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, app_id)
);

CREATE INDEX tenant_apps_app ON tenant_apps (app_id);

-- api_keys: API access keys of managed applications (spec Data Model, API Access Keys,
-- FR-SYS-002). id is the key id (KID) embedded in the key, key_hash the hash of its secret,
-- prefix a non-secret display prefix. scopes is a JSON array (flags:read, bill:write, bill:read,
-- log:write, token:introspect). tenant_id NULL is an app-wide key, otherwise the key is bound to
-- that tenant (and purged with it). browser keys are limited to the app allowed_origins.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY NOT NULL,
  app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
  kind TEXT NOT NULL DEFAULT 'server' CHECK (kind IN ('server', 'browser')),
  name TEXT,
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER
);

-- Key list of an app.
CREATE INDEX api_keys_app ON api_keys (app_id, created_at);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- sessions: sign-in sessions (spec Data Model, User Sessions, FR-AUTH-005). One row per refresh
-- token: rotation revokes the row (revoked_reason rotated) and inserts its successor with the
-- same family_id in one batch. Presenting a rotated token again is reuse: the whole family is
-- revoked. Revocation triggers: logout, admin revocation, password change or reset
-- (FR-AUTH-004), user deletion (FR-TENANT-002), role change (FR-TENANT-004), user disabled
-- (FR-TENANT-006), tenant suspended (FR-OPS-001). app_id is the client the tokens were issued
-- to by the OIDC provider, NULL for the Edgeplane API. auth_methods is the JSON array of methods
-- used (amr, e.g. pwd and otp).
CREATE TABLE sessions (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  family_id TEXT NOT NULL,
  app_id TEXT REFERENCES apps (id) ON DELETE CASCADE,
  refresh_token_hash TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked', 'expired')),
  auth_methods TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(auth_methods)),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER,
  revoked_reason TEXT,
  CHECK (status <> 'revoked' OR revoked_at IS NOT NULL)
);

-- Sessions of a user: list, and revoke all on password change, disable, delete, role change.
CREATE INDEX sessions_user ON sessions (user_id, status);

-- Refresh rotation and reuse detection revoke a whole family.
CREATE INDEX sessions_family ON sessions (family_id);

-- Tenant suspension revokes every session of the tenant (FR-OPS-001).
CREATE INDEX sessions_tenant ON sessions (tenant_id, status);

-- Cleanup cron: expired sessions.
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE INDEX sessions_app ON sessions (app_id);

-- auth_flows: short-lived, single-use steps of a sign-in, keyed by the hash of the token handed
-- to the client: mfa (the mfa_token of a login awaiting its second factor, ERR-AUTH-461), sso
-- (state, nonce and PKCE verifier of a tenant SSO redirect, FR-AUTH-001, FR-AUTH-003), webauthn
-- (a pending WebAuthn challenge, NFR-SEC-003), authorization_code (an OIDC provider code for
-- /oauth/token with its client, redirect URI and PKCE challenge). data is a JSON object, secrets
-- inside it are encrypted. attempts bounds guesses of a second factor.
CREATE TABLE auth_flows (
  token_hash TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('mfa', 'sso', 'webauthn', 'authorization_code')),
  tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
  user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
  data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER
);

CREATE INDEX auth_flows_expires ON auth_flows (expires_at);

CREATE INDEX auth_flows_tenant ON auth_flows (tenant_id);

CREATE INDEX auth_flows_user ON auth_flows (user_id);

-- password_reset_tokens: password reset requests (FR-AUTH-004). Hashed, single use (used_at),
-- expiring. A successful reset marks every other token of the user used.
CREATE TABLE password_reset_tokens (
  token_hash TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE INDEX password_reset_tokens_user ON password_reset_tokens (user_id);

CREATE INDEX password_reset_tokens_expires ON password_reset_tokens (expires_at);

-- invitations: user invitations (spec Data Model, User Invitations, FR-TENANT-001 invite with
-- an expiry, default 7 days, FR-TENANT-007 resend: revoke the pending one and insert a fresh one
-- in one batch). token_hash is the hash of the emailed token. user_id is the invited user row
-- (status invited). At most one pending invitation per tenant and email: a new invitation must
-- first mark a stale pending one expired or revoked.
CREATE TABLE invitations (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
  email TEXT NOT NULL COLLATE NOCASE,
  role TEXT NOT NULL REFERENCES roles (name) CHECK (role IN ('owner', 'admin', 'user')),
  token_hash TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'accepted', 'expired', 'revoked')),
  invited_by TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  accepted_at INTEGER,
  revoked_at INTEGER
);

-- Tenant console invitation list.
CREATE INDEX invitations_tenant ON invitations (tenant_id, status, created_at);

CREATE UNIQUE INDEX invitations_pending_email ON invitations (tenant_id, email)
  WHERE status = 'pending';

CREATE INDEX invitations_user ON invitations (user_id);

-- sso_configs: tenant identity provider (spec Data Model, SSO Configuration, FR-AUTH-003). One
-- per tenant. client_secret_enc is encrypted. allow_jit provisions unknown users on first
-- sign-in with jit_role.
CREATE TABLE sso_configs (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
  issuer_url TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_secret_enc TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  allow_jit INTEGER NOT NULL DEFAULT 0 CHECK (allow_jit IN (0, 1)),
  jit_role TEXT NOT NULL DEFAULT 'user' REFERENCES roles (name) CHECK (jit_role IN ('admin', 'user')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);

-- password_policies: per-tenant password rules (FR-AUTH-006, CON-SEC-001). No row means the
-- defaults below. history_count forbids reusing that many previous passwords, max_age_days NULL
-- means passwords do not expire.
CREATE TABLE password_policies (
  tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  min_length INTEGER NOT NULL DEFAULT 12 CHECK (min_length BETWEEN 8 AND 128),
  require_upper INTEGER NOT NULL DEFAULT 0 CHECK (require_upper IN (0, 1)),
  require_lower INTEGER NOT NULL DEFAULT 0 CHECK (require_lower IN (0, 1)),
  require_digit INTEGER NOT NULL DEFAULT 0 CHECK (require_digit IN (0, 1)),
  require_symbol INTEGER NOT NULL DEFAULT 0 CHECK (require_symbol IN (0, 1)),
  max_age_days INTEGER CHECK (max_age_days IS NULL OR max_age_days > 0),
  history_count INTEGER NOT NULL DEFAULT 0 CHECK (history_count BETWEEN 0 AND 24),
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);

-- feature_flags: per-tenant flags (spec Data Model, Feature Flags, FR-FLAG-001 configuration,
-- FR-FLAG-002 delivery from the KV snapshot built from these rows). value is JSON matching type
-- (boolean true or false, string, number, any JSON). rules is a JSON array of targeting rules
-- evaluated against the OFREP context. overridden is 1 when an operator set the flag for this
-- tenant, 0 when the row mirrors plan_default_flags (a plan change rewrites those rows only).
-- Every change bumps version here and tenants.flags_version in the same batch.
CREATE TABLE feature_flags (
  id TEXT PRIMARY KEY NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  key TEXT NOT NULL CHECK (length(key) > 0),
  type TEXT NOT NULL CHECK (type IN ('boolean', 'string', 'number', 'json')),
  value TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  description TEXT,
  rules TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(rules) AND json_type(rules) = 'array'),
  overridden INTEGER NOT NULL DEFAULT 1 CHECK (overridden IN (0, 1)),
  version INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  updated_by TEXT,
  UNIQUE (tenant_id, key),
  CHECK (json_valid(value) AND (
    (type = 'boolean' AND json_type(value) IN ('true', 'false'))
    OR (type = 'string' AND json_type(value) = 'text')
    OR (type = 'number' AND json_type(value) IN ('integer', 'real'))
    OR type = 'json'
  ))
);

-- plan_default_flags: the flags every tenant of a plan starts with (FR-FLAG-001, FR-TENANT-003).
CREATE TABLE plan_default_flags (
  plan TEXT NOT NULL REFERENCES plans (name) ON DELETE CASCADE,
  key TEXT NOT NULL CHECK (length(key) > 0),
  type TEXT NOT NULL CHECK (type IN ('boolean', 'string', 'number', 'json')),
  value TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  description TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (plan, key),
  CHECK (json_valid(value) AND (
    (type = 'boolean' AND json_type(value) IN ('true', 'false'))
    OR (type = 'string' AND json_type(value) = 'text')
    OR (type = 'number' AND json_type(value) IN ('integer', 'real'))
    OR type = 'json'
  ))
);

-- audit_outbox: Edgeplane own state changes (FR-LOG-003, CON-SEC-002), written in the same D1
-- batch as the change, then forwarded to the audit event log (FR-LOG-001) and marked
-- forwarded_at. Fields follow the spec Data Model, Audit Logs. id is the event id, so a repeated
-- forward is deduplicated by the event log. tenant_id has no foreign key: the audit trail of a
-- tenant purge outlives the tenant row. metadata never holds secrets.
CREATE TABLE audit_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  occurred_at INTEGER NOT NULL,
  tenant_id TEXT,
  actor_id TEXT NOT NULL,
  actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'operator', 'system')),
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
  request_id TEXT,
  metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  forwarded_at INTEGER
);

-- Forwarder: the unforwarded tail in order. Queries must say forwarded_at IS NULL.
CREATE INDEX audit_outbox_unforwarded ON audit_outbox (seq) WHERE forwarded_at IS NULL;

-- archive_index: the archive objects in the blob store (R2), one row per immutable object of one
-- stream (kind and tenant, tenant _platform for platform events) covering a contiguous range of
-- sequence numbers (FR-BILL-001, FR-BILL-003 export, FR-LOG-001, FR-LOG-002 export, FR-OPS-003
-- retention by period_end, FR-OPS-002 purge). period_start and period_end bound the occurred_at
-- of its events. first_hash and last_hash are the hash-chain links at its ends. No foreign key
-- to tenants: a purge deletes the objects first, then their rows.
CREATE TABLE archive_index (
  key TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('billing', 'audit')),
  tenant_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL CHECK (first_seq >= 1),
  last_seq INTEGER NOT NULL,
  first_hash TEXT,
  last_hash TEXT,
  count INTEGER NOT NULL CHECK (count >= 1),
  bytes INTEGER NOT NULL CHECK (bytes >= 0),
  period_start INTEGER NOT NULL,
  period_end INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (kind, tenant_id, first_seq),
  CHECK (last_seq >= first_seq),
  CHECK (period_end >= period_start)
);

-- Exports of a tenant stream by time.
CREATE INDEX archive_index_period ON archive_index (kind, tenant_id, period_start);

-- Retention cron and exports across tenants.
CREATE INDEX archive_index_retention ON archive_index (kind, period_end);

-- signing_keys: Ed25519 keys signing access and ID tokens (NFR-SEC-004). One active key signs,
-- previous keys stay published in the JWKS until not_after (their tokens expired), retired keys
-- are unpublished and their private key destroyed (set NULL). Rotation demotes the active key
-- before inserting the new one, in one batch.
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY NOT NULL,
  alg TEXT NOT NULL DEFAULT 'EdDSA' CHECK (alg = 'EdDSA'),
  public_jwk TEXT NOT NULL CHECK (json_valid(public_jwk)),
  private_key_enc TEXT,
  status TEXT NOT NULL CHECK (status IN ('active', 'previous', 'retired')),
  created_at INTEGER NOT NULL,
  not_after INTEGER,
  retired_at INTEGER,
  CHECK (status = 'retired' OR private_key_enc IS NOT NULL)
);

-- At most one active signing key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

-- idempotency_keys: stored responses of retried writes (Idempotency-Key on control-plane
-- writes). scope names the caller and route, request_hash detects a key reused with another
-- body (conflict). response_status NULL means the first request is still in flight.
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  response_status INTEGER,
  response_headers TEXT CHECK (response_headers IS NULL OR json_valid(response_headers)),
  response_body TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- mail_outbox: the development outbox of the mailer (invitations FR-TENANT-001, resets
-- FR-AUTH-004). Read by tests and the local demo. Holds addresses and links: prune it.
CREATE TABLE mail_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  to_addr TEXT NOT NULL COLLATE NOCASE,
  subject TEXT NOT NULL,
  text_body TEXT NOT NULL,
  html_body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- Latest mail to an address.
CREATE INDEX mail_outbox_to ON mail_outbox (to_addr, id);

CREATE INDEX mail_outbox_created ON mail_outbox (created_at);
