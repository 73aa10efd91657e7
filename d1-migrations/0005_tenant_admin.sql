-- Edgeplane data model, migration 0005: tenant administration (FR-TENANT-001..007) and data
-- subject rights (CON-COMP-001). Same file style rules as 0001_init.sql.

-- users.pseudonym: set when a user is erased (FR-TENANT-002, CON-COMP-001). The row stays with
-- status deleted and no email, name or credentials, so audit and billing history naming the
-- user id still resolves, to this pseudonym instead of the person. erased_at records when.
ALTER TABLE users ADD COLUMN pseudonym TEXT;

ALTER TABLE users ADD COLUMN erased_at INTEGER;

-- Expiry job: pending invitations past their expiry (FR-TENANT-001).
CREATE INDEX invitations_pending_expires ON invitations (expires_at) WHERE status = 'pending';

-- Data export (CON-COMP-001): the audit records a user is the actor of, in order.
CREATE INDEX audit_outbox_actor ON audit_outbox (actor_id, seq);
