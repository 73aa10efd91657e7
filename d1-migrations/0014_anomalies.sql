-- Edgeplane data model, migration 0014: per-tenant anomaly signals, judged by the alert rules
-- of the scheduled job (NFR-MON-001, CON-MON-001). Same file style rules as 0001_init.sql.

-- anomaly_counts: how many times a signal happened in a tenant in one minute (unix minutes).
-- signal is sign_in_failed (a refused password sign-in: wrong password, unknown or inactive
-- account, rate limited) or refresh_reuse (a rotated refresh token presented again, which
-- revoked its session). One row per tenant, signal and minute, so a burst adds to a row
-- instead of adding rows. Kept one day.
CREATE TABLE anomaly_counts (
  tenant_id TEXT NOT NULL,
  signal TEXT NOT NULL CHECK (signal IN ('sign_in_failed', 'refresh_reuse')),
  minute INTEGER NOT NULL,
  count INTEGER NOT NULL CHECK (count >= 0),
  PRIMARY KEY (tenant_id, signal, minute)
);

CREATE INDEX anomaly_counts_minute ON anomaly_counts (minute);

-- anomaly_addresses: the client addresses a subject was seen from, per hour (unix hours).
-- subject is user:ID (a tenant user who signed in) or key:ID (an API key used at the edge).
-- tenant_id is the user tenant or the key bound tenant (null for an app-wide key).
-- addr_hash is a keyed hash of the address (HMAC-SHA256 under a key derived from the master
-- key, core::anomalies): never the address itself. seen_at is unix ms of the latest sighting.
-- A user row is kept two hours, a key row until its hour is rolled up into anomaly_key_hours.
CREATE TABLE anomaly_addresses (
  subject TEXT NOT NULL,
  hour INTEGER NOT NULL,
  addr_hash TEXT NOT NULL,
  tenant_id TEXT,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (subject, hour, addr_hash)
);

CREATE INDEX anomaly_addresses_seen ON anomaly_addresses (seen_at);

-- anomaly_key_hours: how many distinct addresses an API key was used from in one past hour,
-- the baseline its latest hour is compared with. Kept eight days.
CREATE TABLE anomaly_key_hours (
  subject TEXT NOT NULL,
  hour INTEGER NOT NULL,
  tenant_id TEXT,
  addresses INTEGER NOT NULL CHECK (addresses >= 0),
  PRIMARY KEY (subject, hour)
);

-- alerts.tenant_id: the tenant an anomaly alert is about (null for the platform rules), so a
-- tenant owner can list the alerts of their own tenant.
ALTER TABLE alerts ADD COLUMN tenant_id TEXT;

CREATE INDEX alerts_tenant ON alerts (tenant_id, updated_at);
