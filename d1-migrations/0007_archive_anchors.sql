-- Edgeplane data model, migration 0007: anchors of the event hash chain (FR-LOG-001 tamper
-- evidence). The FILE STYLE RULES of 0001_init.sql apply.
--
-- The hash chain alone is unkeyed: whoever can write the archive objects and this table can
-- rewrite history and recompute every hash. Each archive object is therefore anchored when it
-- is indexed. anchor is the lowercase hex HMAC-SHA256 of the stream, first_seq, last_seq and
-- last_hash under a server secret (EVENT_ANCHOR_KEY, see core/src/events/anchor.rs), which no
-- store holds. anchor_kid names the key that made it, so the key can be rotated while older
-- anchors stay checkable. Both are NULL only for rows indexed before this migration, which
-- GET /v1/audit/verify reports as anchor_missing.
ALTER TABLE archive_index ADD COLUMN anchor_kid TEXT;

ALTER TABLE archive_index ADD COLUMN anchor TEXT;
