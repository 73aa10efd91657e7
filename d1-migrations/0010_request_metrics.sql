-- Edgeplane data model, migration 0010: request metrics per minute (FR-SYS-005). Same file style
-- rules as 0001_init.sql.

-- request_metrics: what one route served in one minute, merged from every isolate or instance.
-- An isolate aggregates its requests in memory and adds its counts here at most every ten
-- seconds (core::metrics), so no request writes storage. minute is unix minutes. route is the
-- method and path template (GET /v1/tenants/{id}), service the key service it belongs to.
-- errors counts 5xx answers, client_errors 4xx. b00 to b14 are the latency histogram: bucket
-- i counts answers that took less than core::metrics::BOUNDS_MS[i] milliseconds and at least
-- the bound before it (b14 is everything longer). Rows older than seven days are deleted by
-- the scheduled job.
CREATE TABLE request_metrics (
  minute INTEGER NOT NULL,
  route TEXT NOT NULL,
  service TEXT NOT NULL,
  requests INTEGER NOT NULL CHECK (requests >= 0),
  errors INTEGER NOT NULL CHECK (errors >= 0),
  client_errors INTEGER NOT NULL CHECK (client_errors >= 0),
  b00 INTEGER NOT NULL DEFAULT 0,
  b01 INTEGER NOT NULL DEFAULT 0,
  b02 INTEGER NOT NULL DEFAULT 0,
  b03 INTEGER NOT NULL DEFAULT 0,
  b04 INTEGER NOT NULL DEFAULT 0,
  b05 INTEGER NOT NULL DEFAULT 0,
  b06 INTEGER NOT NULL DEFAULT 0,
  b07 INTEGER NOT NULL DEFAULT 0,
  b08 INTEGER NOT NULL DEFAULT 0,
  b09 INTEGER NOT NULL DEFAULT 0,
  b10 INTEGER NOT NULL DEFAULT 0,
  b11 INTEGER NOT NULL DEFAULT 0,
  b12 INTEGER NOT NULL DEFAULT 0,
  b13 INTEGER NOT NULL DEFAULT 0,
  b14 INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (minute, route)
);

CREATE INDEX request_metrics_service ON request_metrics (service, minute);
