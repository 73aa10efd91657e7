//! The mail queue (`mail_queue`): messages accepted while a request is answered and handed to
//! the [`Mailer`] after the answer. The forgot-password request (FR-AUTH-004) writes its mail
//! here, in the batch that stores the reset token and with the same statements whether or not
//! the account exists, so neither the SQL it waits for nor a mail API call before it answers
//! tells an attacker which accounts exist (CON-SEC-009).
//!
//! [`deliver_due`] sends what is due. It runs after the response where the runtime can keep
//! working (`http::after_response`: Workers' `waitUntil`, Spin once the response body is
//! finished), and on every scheduled run, which retries whatever failed or was cut short. A
//! message is claimed before it is sent, by pushing its next attempt into the future: two
//! deliveries at once do not both send it, a failed send is retried after that delay, and a
//! delivery that dies between sending and deleting sends it again once the delay has passed
//! (at least once, never lost). Only a message whose link has expired is dropped unsent.

use crate::ports::{Logger, Mail, MailError, Mailer, Platform, Row, Sql, SqlError, Stmt};

/// Most messages one delivery sends (one mail API call each: Workers caps the subrequests of
/// one invocation, and a request's `waitUntil` should stay short).
pub const DELIVERY_BATCH: u32 = 20;

/// Delay before a message claimed by a delivery may be tried again: one minute after the first
/// attempt, doubling with each attempt up to [`MAX_RETRY_DELAY_MS`]. Longer than any mail API
/// call takes, so a claim outlives the send it covers.
const FIRST_RETRY_DELAY_MS: i64 = 60_000;

/// Longest delay between two attempts: a reset link lives an hour, so a provider outage of a few
/// minutes still leaves most of that hour to use it.
const MAX_RETRY_DELAY_MS: i64 = 10 * 60_000;

/// Why a delivery run did not deliver everything that was due.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// The queue could not be read or updated; what was not delivered stays queued.
    #[error("mail queue: {0}")]
    Storage(#[from] SqlError),
    /// The mailer refused or could not take some messages; they stay queued for a retry.
    #[error("{failed} queued message(s) not delivered, retried later: {cause}")]
    Undelivered {
        /// Messages not delivered in this run.
        failed: u64,
        /// The first failure.
        cause: MailError,
    },
}

impl DeliveryError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            DeliveryError::Storage(_) => "mail_queue_storage",
            DeliveryError::Undelivered { .. } => "mail_undelivered",
        }
    }
}

/// The INSERT queuing `mail` at `now_ms`, to be dropped unsent at `expires_at_ms`, written only
/// if a password reset token with `token_hash` exists when the statement runs. Placed after the
/// token's own conditional INSERT in one batch, it queues the mail exactly when there was an
/// account to mail, while the batch is the same statements either way.
pub fn enqueue_if_reset_token(
    mail: &Mail,
    token_hash: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Stmt {
    Stmt::new(
        "INSERT INTO mail_queue (to_addr, subject, text_body, html_body, created_at,
           next_attempt_at, expires_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?5, ?6
         WHERE EXISTS (SELECT 1 FROM password_reset_tokens WHERE token_hash = ?7)",
    )
    .bind(mail.to.as_str())
    .bind(mail.subject.as_str())
    .bind(mail.text.as_str())
    .bind(mail.html.as_str())
    .bind(now_ms)
    .bind(expires_at_ms)
    .bind(token_hash)
}

/// The INSERT queuing `mail` at `now_ms`, to be dropped unsent at `expires_at_ms`: for mail
/// whose sending tells nobody anything (a one-time sign-in code, a new sign-in notice).
pub fn enqueue(mail: &Mail, now_ms: i64, expires_at_ms: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO mail_queue (to_addr, subject, text_body, html_body, created_at,
           next_attempt_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    )
    .bind(mail.to.as_str())
    .bind(mail.subject.as_str())
    .bind(mail.text.as_str())
    .bind(mail.html.as_str())
    .bind(now_ms)
    .bind(expires_at_ms)
}

/// The delay before the attempt after `attempts` earlier ones.
fn retry_delay_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 10)).unwrap_or(10);
    FIRST_RETRY_DELAY_MS
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_DELAY_MS)
}

/// Hands up to [`DELIVERY_BATCH`] due messages to the mailer, oldest first, deleting each once
/// the mailer accepted it; drops the messages whose link expired. Returns the messages
/// delivered. A message the mailer did not take stays queued for a later run, and the run
/// reports [`DeliveryError::Undelivered`] after trying the others.
pub async fn deliver_due<P: Platform>(p: &P, now: i64) -> Result<u64, DeliveryError> {
    let expired = p
        .sql()
        .execute(Stmt::new("DELETE FROM mail_queue WHERE expires_at <= ?1").bind(now))
        .await?;
    if expired > 0 {
        // Only the count: the rows held addresses and links.
        let line = serde_json::json!({
            "level": "warn",
            "msg": "queued mail expired undelivered",
            "count": expired,
        });
        p.logger().line(&line.to_string());
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, to_addr, subject, text_body, html_body, attempts FROM mail_queue
                 WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
            )
            .bind(now)
            .bind(i64::from(DELIVERY_BATCH)),
        )
        .await?;
    let mut delivered = 0;
    let mut undelivered: Option<DeliveryError> = None;
    for row in &rows {
        let id = row.i64("id")?;
        if !claim(p, id, row.i64("attempts")?, now).await? {
            // Another delivery took it meanwhile.
            continue;
        }
        match p.mailer().send(&queued_mail(row)?).await {
            Ok(()) => {
                p.sql()
                    .execute(Stmt::new("DELETE FROM mail_queue WHERE id = ?1").bind(id))
                    .await?;
                delivered += 1;
            }
            Err(cause) => {
                p.sql()
                    .execute(
                        Stmt::new("UPDATE mail_queue SET last_error = ?2 WHERE id = ?1")
                            .bind(id)
                            .bind(cause.to_string()),
                    )
                    .await?;
                undelivered = Some(match undelivered {
                    Some(DeliveryError::Undelivered { failed, cause }) => {
                        DeliveryError::Undelivered {
                            failed: failed + 1,
                            cause,
                        }
                    }
                    _ => DeliveryError::Undelivered { failed: 1, cause },
                });
            }
        }
    }
    match undelivered {
        Some(e) => Err(e),
        None => Ok(delivered),
    }
}

/// Takes message `id` for this delivery: its next attempt moves past the retry delay, and only
/// the delivery whose update changed the row may send it.
async fn claim<P: Platform>(p: &P, id: i64, attempts: i64, now: i64) -> Result<bool, SqlError> {
    let changed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE mail_queue SET attempts = attempts + 1, next_attempt_at = ?3
                 WHERE id = ?1 AND next_attempt_at <= ?2",
            )
            .bind(id)
            .bind(now)
            .bind(now.saturating_add(retry_delay_ms(attempts))),
        )
        .await?;
    Ok(changed == 1)
}

/// A queue row as the message it holds.
fn queued_mail(row: &Row) -> Result<Mail, SqlError> {
    Ok(Mail {
        to: row.text("to_addr")?,
        subject: row.text("subject")?,
        text: row.text("text_body")?,
        html: row.text("html_body")?,
    })
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::testing::{TestPlatform, START_MS};

    fn mail(to: &str) -> Mail {
        Mail {
            to: to.to_owned(),
            subject: "Reset your Edgeplane password".to_owned(),
            text: "https://e.test/password/reset?token=t".to_owned(),
            html: "<p>reset</p>".to_owned(),
        }
    }

    /// Queues `mail` as the reset flow does, with a token row to guard it.
    async fn queue(p: &TestPlatform, to: &str, token_hash: &str, expires_at: i64) {
        p.sql
            .exec_raw(&format!(
                "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at)
                   SELECT 't1', 'T', 'tee', 'free', 0, 0
                   WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE id = 't1');
                 INSERT OR IGNORE INTO users (id, tenant_id, email, role, status, created_at, updated_at)
                   VALUES ('u1', 't1', 'u@e.test', 'user', 'active', 0, 0);
                 INSERT INTO password_reset_tokens (token_hash, user_id, created_at, expires_at)
                   VALUES ('{token_hash}', 'u1', 0, {expires_at});"
            ))
            .unwrap();
        let n = p
            .sql
            .execute(enqueue_if_reset_token(
                &mail(to),
                token_hash,
                START_MS,
                expires_at,
            ))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    async fn queued(p: &TestPlatform) -> Vec<(String, i64, i64)> {
        p.sql
            .query(Stmt::new(
                "SELECT to_addr, attempts, next_attempt_at FROM mail_queue ORDER BY id",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.text("to_addr").unwrap(),
                    r.i64("attempts").unwrap(),
                    r.i64("next_attempt_at").unwrap(),
                )
            })
            .collect()
    }

    /// FR-AUTH-004: without a reset token the guarded INSERT queues nothing.
    #[test]
    fn nothing_is_queued_without_the_token() {
        block_on(async {
            let p = TestPlatform::new().await;
            let n = p
                .sql
                .execute(enqueue_if_reset_token(
                    &mail("a@e.test"),
                    "no-such-hash",
                    START_MS,
                    START_MS + 1,
                ))
                .await
                .unwrap();
            assert_eq!(n, 0);
            assert!(queued(&p).await.is_empty());
        });
    }

    /// FR-AUTH-004: a due message is handed to the mailer once and leaves the queue; a message
    /// whose link expired is dropped unsent.
    #[test]
    fn due_mail_is_delivered_once_and_expired_mail_dropped() {
        block_on(async {
            let p = TestPlatform::new().await;
            queue(&p, "a@e.test", "h1", START_MS + 3_600_000).await;
            queue(&p, "b@e.test", "h2", START_MS + 10).await;
            p.clock.set(START_MS + 10);
            assert_eq!(deliver_due(&p, START_MS + 10).await, Ok(1));
            let sent = p.mailer.messages_to("a@e.test", 10).await.unwrap();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].mail, mail("a@e.test"));
            assert!(p
                .mailer
                .messages_to("b@e.test", 10)
                .await
                .unwrap()
                .is_empty());
            assert!(queued(&p).await.is_empty());
            assert_eq!(deliver_due(&p, START_MS + 20).await, Ok(0));
            assert_eq!(p.mailer.messages_to("a@e.test", 10).await.unwrap().len(), 1);
            assert!(p.logger.lines().iter().any(|l| l.contains("expired")));
        });
    }

    /// A message the mailer cannot take stays queued and is retried after a growing delay,
    /// until it is delivered; a claimed message is not sent by a second delivery meanwhile.
    #[test]
    fn failed_mail_is_retried_after_a_delay() {
        block_on(async {
            let p = TestPlatform::new().await;
            queue(&p, "a@e.test", "h1", START_MS + 3_600_000).await;
            p.sql.exec_raw("DROP TABLE mail_outbox").unwrap();
            let e = deliver_due(&p, START_MS).await.unwrap_err();
            assert!(
                matches!(e, DeliveryError::Undelivered { failed: 1, .. }),
                "{e:?}"
            );
            assert_eq!(e.code(), "mail_undelivered");
            assert_eq!(
                queued(&p).await,
                [("a@e.test".to_owned(), 1, START_MS + FIRST_RETRY_DELAY_MS)]
            );
            // Not due yet: nothing is tried.
            assert_eq!(deliver_due(&p, START_MS + 1_000).await, Ok(0));
            assert_eq!(queued(&p).await[0].1, 1);
            // The mailer is back: the next due run delivers it.
            p.sql
                .exec_raw(
                    "CREATE TABLE mail_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,
                       to_addr TEXT NOT NULL COLLATE NOCASE, subject TEXT NOT NULL,
                       text_body TEXT NOT NULL, html_body TEXT NOT NULL,
                       created_at INTEGER NOT NULL)",
                )
                .unwrap();
            let later = START_MS + FIRST_RETRY_DELAY_MS;
            assert_eq!(deliver_due(&p, later).await, Ok(1));
            assert!(queued(&p).await.is_empty());
            assert_eq!(p.mailer.messages_to("a@e.test", 10).await.unwrap().len(), 1);
        });
    }

    /// A message another delivery has claimed is skipped, not sent twice.
    #[test]
    fn a_claimed_message_is_not_sent_twice() {
        block_on(async {
            let p = TestPlatform::new().await;
            queue(&p, "a@e.test", "h1", START_MS + 3_600_000).await;
            assert!(claim(&p, 1, 0, START_MS).await.unwrap());
            assert!(!claim(&p, 1, 1, START_MS).await.unwrap());
            assert_eq!(deliver_due(&p, START_MS).await, Ok(0));
            assert!(p
                .mailer
                .messages_to("a@e.test", 10)
                .await
                .unwrap()
                .is_empty());
        });
    }

    #[test]
    fn retry_delays_grow_to_a_cap() {
        assert_eq!(retry_delay_ms(0), 60_000);
        assert_eq!(retry_delay_ms(1), 120_000);
        assert_eq!(retry_delay_ms(3), 480_000);
        assert_eq!(retry_delay_ms(4), MAX_RETRY_DELAY_MS);
        assert_eq!(retry_delay_ms(1_000), MAX_RETRY_DELAY_MS);
    }
}
