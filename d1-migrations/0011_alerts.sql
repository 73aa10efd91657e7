-- Edgeplane data model, migration 0011: system health alerting (NFR-MON-002, FR-SYS-005). Same
-- file style rules as 0001_init.sql.

-- alert_channels: where operators want to hear about alerts. kind is email, slack, pagerduty or
-- webhook. config_enc is the JSON configuration of the channel (the address, the Slack or webhook URL,
-- the PagerDuty routing key and endpoint, the webhook signing secret) sealed under the master key
-- with the channel id as associated data: a Slack URL is a credential. hint is what listing shows
-- instead (a masked address, the last characters of a key, a URL origin), never enough to use it.
-- created_by is the operator platform user id.
CREATE TABLE alert_channels (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('email', 'slack', 'pagerduty', 'webhook')),
  name TEXT NOT NULL,
  config_enc TEXT NOT NULL,
  hint TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- alerts: one row per rule and subject (error_rate of sign_in, dependency kv), found by its
-- dedup_key (edgeplane/RULE/SUBJECT), stable across runs and episodes so PagerDuty and receivers
-- can group on it. state is firing or resolved. fired_at is when the current or last episode
-- started, resolved_at when it ended (null while firing). clear_runs counts the consecutive
-- scheduled runs that found the condition clear while firing: the alert resolves at two, so one
-- good run in a bad spell does not flap. summary and details_json describe the last observation.
CREATE TABLE alerts (
  dedup_key TEXT PRIMARY KEY NOT NULL,
  rule TEXT NOT NULL,
  subject TEXT NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('critical', 'error', 'warning', 'info')),
  state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
  summary TEXT NOT NULL,
  details_json TEXT NOT NULL CHECK (json_valid(details_json)),
  fired_at INTEGER NOT NULL,
  resolved_at INTEGER,
  clear_runs INTEGER NOT NULL DEFAULT 0 CHECK (clear_runs >= 0),
  updated_at INTEGER NOT NULL
);

CREATE INDEX alerts_state ON alerts (state, updated_at);

-- alert_deliveries: what each channel was last told of each alert, so a run sends only what is
-- due: the firing once per episode (and again after the re-notification interval), the
-- resolution once to the channels that heard of the firing. A failed delivery leaves its row as
-- it was, so the next run tries again. state is the alert state delivered, delivered_at when.
CREATE TABLE alert_deliveries (
  dedup_key TEXT NOT NULL,
  channel_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
  delivered_at INTEGER NOT NULL,
  PRIMARY KEY (dedup_key, channel_id)
);

CREATE INDEX alert_deliveries_channel ON alert_deliveries (channel_id);
