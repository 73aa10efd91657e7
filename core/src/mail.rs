//! Outgoing mail for invitations (FR-TENANT-001, FR-TENANT-007) and password resets
//! (FR-AUTH-004). [`OutboxMailer`] is the development mailer: it keeps every message in the
//! `mail_outbox` table instead of sending it, where tests and the local demo read it back.
//! [`HttpMailer`] posts each message to an HTTP mail API; [`ConfiguredMailer`] picks one of
//! the two by the environment (`MAIL_API_URL` set: the API). Mail that must not be sent before
//! a request is answered waits in the [`queue`].

pub mod queue;
mod templates;

pub use templates::{invitation_mail, owner_invitation_mail, reset_mail, sign_in_code_mail};

use serde_json::json;

use crate::ports::{
    Clock, FetchError, HttpClient, Mail, MailError, Mailer, OutboundRequest, Row, Secrets, Sql,
    SqlError, Stmt,
};

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

    /// The latest `limit` messages to an address, newest first ([`messages_to`]).
    pub async fn messages_to(&self, to: &str, limit: u32) -> Result<Vec<OutboxMessage>, SqlError> {
        messages_to(&self.sql, to, limit).await
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

/// The latest `limit` messages of the outbox in `sql` to an address, newest first.
pub async fn messages_to<S: Sql>(
    sql: &S,
    to: &str,
    limit: u32,
) -> Result<Vec<OutboxMessage>, SqlError> {
    let rows = sql
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

/// Largest mail API answer read, in bytes. Only the status is judged; Resend answers a message
/// id of a few dozen bytes, and a relay's error page fits too. A larger answer counts as
/// unavailable (the caller may retry) rather than a buffer the API's host could grow at will.
const MAX_MAIL_RESPONSE_BYTES: usize = 64 * 1024;

/// A [`Mailer`] posting each message to an HTTP mail API: `POST {MAIL_API_URL}` with
/// `Authorization: Bearer {MAIL_API_TOKEN}` and the JSON body
/// `{"from": MAIL_FROM, "to": [to], "subject", "text", "html"}` (the shape of Resend's
/// `/emails` API; a relay accepting it works too). 2xx is accepted; 429 and 5xx are
/// unavailable (retry later); any other status is a rejection. The token never reaches a log.
#[derive(Debug, Clone)]
pub struct HttpMailer<H, E> {
    http: H,
    secrets: E,
}

impl<H: HttpClient, E: Secrets> HttpMailer<H, E> {
    /// A mailer using `http` and the `MAIL_*` settings of `secrets`.
    pub fn new(http: H, secrets: E) -> Self {
        HttpMailer { http, secrets }
    }

    /// Whether `MAIL_API_URL` is set.
    pub fn is_configured(&self) -> bool {
        self.secrets.get("MAIL_API_URL").is_some()
    }
}

impl<H: HttpClient, E: Secrets> Mailer for HttpMailer<H, E> {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let (Some(url), Some(token), Some(from)) = (
            self.secrets.get("MAIL_API_URL"),
            self.secrets.get("MAIL_API_TOKEN"),
            self.secrets.get("MAIL_FROM"),
        ) else {
            return Err(MailError::Unavailable(
                "MAIL_API_URL, MAIL_API_TOKEN and MAIL_FROM must all be set".to_owned(),
            ));
        };
        let body = json!({
            "from": from,
            "to": [mail.to],
            "subject": mail.subject,
            "text": mail.text,
            "html": mail.html,
        });
        let req = OutboundRequest {
            method: "POST",
            url,
            headers: vec![
                ("authorization".to_owned(), format!("Bearer {token}")),
                ("content-type".to_owned(), "application/json".to_owned()),
                ("accept".to_owned(), "application/json".to_owned()),
            ],
            body: body.to_string().into_bytes(),
            max_body_bytes: MAX_MAIL_RESPONSE_BYTES,
        };
        let resp = self.http.fetch(req).await.map_err(|e| match e {
            FetchError::Refused(m) => {
                MailError::Rejected(format!("the runtime does not allow the mail API host: {m}"))
            }
            other => MailError::Unavailable(other.to_string()),
        })?;
        match resp.status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(MailError::Unavailable(format!(
                "mail API answered {}",
                resp.status
            ))),
            status => Err(MailError::Rejected(format!("mail API answered {status}"))),
        }
    }
}

/// The mailer of a deployment: [`HttpMailer`] when `MAIL_API_URL` is set, else the
/// [`OutboxMailer`] (development, and deployments that have not configured mail yet: the
/// messages then wait in `mail_outbox`).
#[derive(Debug, Clone)]
pub struct ConfiguredMailer<S, C, H, E> {
    outbox: OutboxMailer<S, C>,
    api: HttpMailer<H, E>,
}

impl<S: Sql, C: Clock, H: HttpClient, E: Secrets> ConfiguredMailer<S, C, H, E> {
    /// Both mailers; the environment picks one per message.
    pub fn new(outbox: OutboxMailer<S, C>, api: HttpMailer<H, E>) -> Self {
        ConfiguredMailer { outbox, api }
    }

    /// The development outbox (tests and the demo read it).
    pub fn outbox(&self) -> &OutboxMailer<S, C> {
        &self.outbox
    }
}

impl<S: Sql, C: Clock, H: HttpClient, E: Secrets> Mailer for ConfiguredMailer<S, C, H, E> {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if self.api.is_configured() {
            self.api.send(mail).await
        } else {
            self.outbox.send(mail).await
        }
    }
}

#[cfg(test)]
mod http_tests {
    use futures_executor::block_on;
    use serde_json::Value;

    use super::*;
    use crate::testing::{MapHttp, MapSecrets};

    const URL: &str = "https://mail.example/emails";

    fn mail() -> Mail {
        Mail {
            to: "ana@acme.example".into(),
            subject: "Hi".into(),
            text: "plain".into(),
            html: "<p>html</p>".into(),
        }
    }

    fn configured() -> (MapHttp, MapSecrets) {
        let secrets = MapSecrets::default();
        secrets.set("MAIL_API_URL", URL);
        secrets.set("MAIL_API_TOKEN", "tok-123");
        secrets.set("MAIL_FROM", "Edgeplane <no-reply@edgeplane.example>");
        (MapHttp::default(), secrets)
    }

    /// FR-TENANT-001, FR-AUTH-004: the message goes to the configured API as JSON with the
    /// bearer token; statuses map to accepted, retry later, or refused.
    #[test]
    fn posts_the_message_and_maps_statuses() {
        block_on(async {
            let (http, secrets) = configured();
            http.set(URL, 200, r#"{"id":"m1"}"#);
            let mailer = HttpMailer::new(http.clone(), secrets);
            mailer.send(&mail()).await.unwrap();
            let sent = http.requests();
            assert_eq!(sent.len(), 1);
            assert_eq!((sent[0].method, sent[0].url.as_str()), ("POST", URL));
            assert_eq!(sent[0].max_body_bytes, MAX_MAIL_RESPONSE_BYTES);
            assert!(sent[0]
                .headers
                .contains(&("authorization".to_owned(), "Bearer tok-123".to_owned())));
            let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
            assert_eq!(body["to"], serde_json::json!(["ana@acme.example"]));
            assert_eq!(body["from"], "Edgeplane <no-reply@edgeplane.example>");
            assert_eq!(
                (body["text"].as_str(), body["html"].as_str()),
                (Some("plain"), Some("<p>html</p>"))
            );
            for (status, unavailable) in [(429, true), (503, true), (422, false), (401, false)] {
                http.set(URL, status, "{}");
                let e = mailer.send(&mail()).await.unwrap_err();
                assert_eq!(
                    matches!(e, MailError::Unavailable(_)),
                    unavailable,
                    "{status}"
                );
                assert!(!e.to_string().contains("tok-123"));
            }
            http.fail(URL, FetchError::Unavailable("down".into()));
            assert!(matches!(
                mailer.send(&mail()).await,
                Err(MailError::Unavailable(_))
            ));
            // An answer past the limit is not read to its end: unavailable, retried later.
            http.set(URL, 200, &"x".repeat(MAX_MAIL_RESPONSE_BYTES + 1));
            assert!(matches!(
                mailer.send(&mail()).await,
                Err(MailError::Unavailable(_))
            ));
        });
    }

    /// Without `MAIL_API_URL` the configured mailer keeps messages in the outbox; with it, the
    /// outbox stays empty.
    #[test]
    fn the_environment_picks_the_mailer() {
        block_on(async {
            let p = crate::testing::TestPlatform::new().await;
            let (http, secrets) = configured();
            http.set(URL, 202, "{}");
            let outbox = OutboxMailer::new(p.sql.clone(), p.clock.clone());
            let unconfigured = ConfiguredMailer::new(
                outbox.clone(),
                HttpMailer::new(http.clone(), MapSecrets::default()),
            );
            unconfigured.send(&mail()).await.unwrap();
            assert_eq!(
                outbox
                    .messages_to("ana@acme.example", 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert!(http.requests().is_empty());
            let api = ConfiguredMailer::new(outbox.clone(), HttpMailer::new(http.clone(), secrets));
            api.send(&mail()).await.unwrap();
            assert_eq!(http.requests().len(), 1);
            assert_eq!(
                outbox
                    .messages_to("ana@acme.example", 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        });
    }
}
