//! Outgoing mail for invitations (FR-TENANT-001, FR-TENANT-007) and password resets
//! (FR-AUTH-004). [`OutboxMailer`] is the development mailer: it keeps every message in the
//! `mail_outbox` table instead of sending it, where tests and the local demo read it back.

use crate::ports::{Clock, Mail, MailError, Mailer, Row, Sql, SqlError, Stmt};

/// A [`Mailer`] that writes each message to `mail_outbox`.
#[derive(Debug, Clone)]
pub struct OutboxMailer<S, C> {
    sql: S,
    clock: C,
}

/// A message as the outbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Position in the outbox, increasing.
    pub id: i64,
    /// When it was "sent" (unix ms).
    pub created_at_ms: i64,
    /// The message.
    pub mail: Mail,
}

impl<S: Sql, C: Clock> OutboxMailer<S, C> {
    /// A mailer writing to the `mail_outbox` table of `sql`.
    pub fn new(sql: S, clock: C) -> Self {
        OutboxMailer { sql, clock }
    }

    /// The latest `limit` messages to an address (compared case-insensitively), newest first.
    pub async fn messages_to(&self, to: &str, limit: u32) -> Result<Vec<OutboxMessage>, SqlError> {
        let rows = self
            .sql
            .query(
                Stmt::new(
                    "SELECT id, to_addr, subject, text_body, html_body, created_at FROM mail_outbox
                     WHERE to_addr = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .bind(to)
                .bind(i64::from(limit)),
            )
            .await?;
        rows.iter().map(outbox_message).collect()
    }
}

impl<S: Sql, C: Clock> Mailer for OutboxMailer<S, C> {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let stmt = Stmt::new(
            "INSERT INTO mail_outbox (to_addr, subject, text_body, html_body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&mail.to)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(self.clock.now_ms());
        match self.sql.execute(stmt).await {
            Ok(_) => Ok(()),
            Err(SqlError::Constraint(m)) => Err(MailError::Rejected(m)),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}

/// An outbox row as a message.
fn outbox_message(row: &Row) -> Result<OutboxMessage, SqlError> {
    Ok(OutboxMessage {
        id: row.i64("id")?,
        created_at_ms: row.i64("created_at")?,
        mail: Mail {
            to: row.text("to_addr")?,
            subject: row.text("subject")?,
            text: row.text("text_body")?,
            html: row.text("html_body")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::testing::{TestPlatform, START_MS};

    fn mail(to: &str, subject: &str) -> Mail {
        Mail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: format!("{subject}: https://edgeplane.test/accept?token=abc"),
            html: format!("<p>{subject}</p>"),
        }
    }

    /// FR-TENANT-001: an invitation mail lands in the dev outbox, readable by address.
    #[test]
    fn sent_mail_is_readable_from_the_outbox() {
        block_on(async {
            let p = TestPlatform::new().await;
            p.mailer
                .send(&mail("ann@acme.test", "Invitation"))
                .await
                .unwrap();
            p.clock.advance(1000);
            p.mailer
                .send(&mail("bob@acme.test", "Reset"))
                .await
                .unwrap();
            p.mailer
                .send(&mail("ann@acme.test", "Invitation again"))
                .await
                .unwrap();

            let ann = p.mailer.messages_to("Ann@acme.test", 10).await.unwrap();
            assert_eq!(ann.len(), 2);
            assert_eq!(ann[0].mail, mail("ann@acme.test", "Invitation again"));
            assert_eq!(ann[0].created_at_ms, START_MS + 1000);
            assert_eq!(ann[1].mail.subject, "Invitation");
            assert!(ann[0].id > ann[1].id);
            assert_eq!(
                p.mailer
                    .messages_to("ann@acme.test", 1)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert!(p
                .mailer
                .messages_to("nobody@acme.test", 10)
                .await
                .unwrap()
                .is_empty());
        });
    }
}
