-- Edgeplane data model, migration 0004: what the billing and audit event pipeline keeps in D1
-- (FR-BILL-001, FR-LOG-001, FR-OPS-003). Same file style rules as 0001_init.sql.

-- event_streams: every stream (kind and tenant, tenant _platform for platform events) that ever
-- received an event. The events live in the event log (a Durable Object per stream on Workers)
-- and its archives, which cannot be listed from D1: this registry is how the archive flush,
-- exports across tenants and the tenant purge find them. No foreign key to tenants: a purge
-- drops the stream first, then its row.
CREATE TABLE event_streams (
  kind TEXT NOT NULL CHECK (kind IN ('billing', 'audit')),
  tenant_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (kind, tenant_id)
);
