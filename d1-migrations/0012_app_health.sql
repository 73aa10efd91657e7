-- Edgeplane data model, migration 0012: health checks of the managed apps themselves (platform
-- PRD, service health monitoring). Same file style rules as 0001_init.sql.

-- app_health_checks: the health URL an operator registered for an app, and what the latest
-- check found. Edgeplane polls url (a GET, no redirect followed, 2xx is healthy) every few
-- seconds on Workers (a Durable Object alarm) and at each scheduled run on Spin. checked_at is
-- unix ms of the latest check (null before the first), ok 1 when it answered 2xx, status its
-- HTTP status (null when no answer came), error what went wrong in general terms,
-- consecutive_failures the failed checks since the last healthy one.
CREATE TABLE app_health_checks (
  app_id TEXT PRIMARY KEY NOT NULL REFERENCES apps (id),
  url TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  checked_at INTEGER,
  ok INTEGER CHECK (ok IN (0, 1)),
  status INTEGER,
  latency_ms INTEGER,
  error TEXT,
  consecutive_failures INTEGER NOT NULL DEFAULT 0
);

-- app_health_minutes: per app and minute (unix minutes), the checks made, how many failed,
-- and their latencies (sum and maximum, ms). Kept one day.
CREATE TABLE app_health_minutes (
  app_id TEXT NOT NULL,
  minute INTEGER NOT NULL,
  checks INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  latency_ms_total INTEGER NOT NULL,
  latency_ms_max INTEGER NOT NULL,
  PRIMARY KEY (app_id, minute)
);
