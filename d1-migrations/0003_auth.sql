-- Edgeplane data model, migration 0003: rate limits of sign-in and second-factor attempts.
--
-- Same file style rules as 0001_init.sql: comments only as whole lines, a semicolon only at
-- the end of a statement line, no CASE, no triggers, no transaction or PRAGMA statements, no
-- quote characters in comments.

-- rate_limits: fixed-window counters of failed sign-in and second-factor attempts, per account
-- and per client address (FR-AUTH-001, NFR-SEC-003, ERR-RATE-429). key is the limit name, the
-- SHA-256 of the subject (the account, or the client address: never stored in clear) and the
-- window number, so a new window starts a new row. expires_at is the end of the window: the
-- cron deletes rows past it.
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY NOT NULL,
  count INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
  expires_at INTEGER NOT NULL
);

-- Cron cleanup of finished windows.
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);

-- password_policies.require_mfa: the tenant requires a second factor of every user (NFR-SEC-003).
-- A user without one is asked to enroll during sign-in, before any token is issued.
ALTER TABLE password_policies ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0 CHECK (require_mfa IN (0, 1));
