-- Edgeplane data model, migration 0008: the mail queue. Same file style rules as 0001_init.sql.

-- mail_queue: messages accepted while answering a request and delivered after the answer
-- (password resets, FR-AUTH-004). The forgot-password request writes here with the same
-- statements whether or not the account exists, and no mail API is called before it answers,
-- so neither the answer nor its timing tells which accounts exist (CON-SEC-009). Delivery
-- (after the response where the runtime allows it, and every scheduled run) hands a message
-- to the mailer and deletes it. next_attempt_at is when it may be tried next: a delivery pushes
-- it forward before sending, which claims the message and schedules the retry if the send
-- fails. A message whose link has expired (expires_at) is dropped unsent. Holds addresses and
-- links: rows live until delivered or expired.
CREATE TABLE mail_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  to_addr TEXT NOT NULL COLLATE NOCASE,
  subject TEXT NOT NULL,
  text_body TEXT NOT NULL,
  html_body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error TEXT
);

-- Due messages, oldest first.
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at, id);

CREATE INDEX mail_queue_expires ON mail_queue (expires_at);

-- Erasure of a user (CON-COMP-001) deletes the messages to the address.
CREATE INDEX mail_queue_to ON mail_queue (to_addr);
