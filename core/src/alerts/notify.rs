//! Telling the channels: which notices are due ([`due`]), what each service is sent (the payload
//! builders), and sending them.
//!
//! Each channel is told of each alert once per transition: the firing once per episode (again
//! every re-notification interval while it lasts), the resolution once, and only to channels
//! that were told of the firing. `alert_deliveries` keeps what each channel was last told; a
//! delivery that fails leaves it as it was, so the next run (five minutes on) tries again, as long
//! as the alert is in the same state (a resolution, up to [`RESOLVED_RETRY_MS`] after it). No
//! retries within a run: a run must not be held up by one slow receiver, and the next run comes
//! soon enough. Receivers may thus see a notice twice (if the success could not be recorded), so
//! webhook bodies carry an `id` per notice and PagerDuty deduplicates on `dedup_key`.

use hmac::{Hmac, Mac};
use maud::html;
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::channels::{Channel, ChannelKind, PAGERDUTY_EVENTS_URL};
use super::rules::Rule;
use super::state::{Alert, AlertState};
use crate::crypto;
use crate::ids;
use crate::ports::{
    FetchError, HttpClient, Mail, Mailer, OutboundRequest, Platform, Secrets, Stmt,
};
use crate::time::format_rfc3339;

/// A resolution not delivered within this long after it happened is no longer retried (24 h).
pub const RESOLVED_RETRY_MS: i64 = 24 * 60 * 60_000;

/// The header carrying a webhook notice's timestamp (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-edgeplane-timestamp";
/// The header carrying a webhook notice's signature: `v1=` and the lowercase hex of
/// HMAC-SHA256(secret, `"{timestamp}.{body}"`).
pub const SIGNATURE_HEADER: &str = "x-edgeplane-signature";

/// The most of a receiver's answer read (it is not used, only its status).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// PagerDuty truncates a longer summary; Edgeplane does it first, on a character boundary.
const PAGERDUTY_SUMMARY_MAX: usize = 1_024;

/// What a channel is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The alert fired.
    Fired,
    /// The alert is still firing after the re-notification interval.
    Renotified,
    /// The alert resolved.
    Resolved,
}

impl Notice {
    /// The webhook `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            Notice::Fired => "alert.fired",
            Notice::Renotified => "alert.renotified",
            Notice::Resolved => "alert.resolved",
        }
    }

    /// The tag that starts Slack texts and mail subjects.
    fn tag(self) -> &'static str {
        match self {
            Notice::Fired => "FIRING",
            Notice::Renotified => "STILL FIRING",
            Notice::Resolved => "RESOLVED",
        }
    }
}

/// What a channel was last told of an alert: the state and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The state it was told of.
    pub state: AlertState,
    /// When (unix ms).
    pub at: i64,
}

/// The notice due to a channel about `alert` at `now`, given what it was last told.
pub fn due(alert: &Alert, last: Option<Delivered>, now: i64, renotify_ms: i64) -> Option<Notice> {
    match alert.state {
        AlertState::Firing => match last {
            Some(d) if d.state == AlertState::Firing && d.at >= alert.fired_at => {
                (renotify_ms > 0 && now - d.at >= renotify_ms).then_some(Notice::Renotified)
            }
            _ => Some(Notice::Fired),
        },
        AlertState::Resolved => {
            let told_of_firing = last.is_some_and(|d| d.state == AlertState::Firing);
            let recent = alert
                .resolved_at
                .is_some_and(|at| now - at <= RESOLVED_RETRY_MS);
            (told_of_firing && recent).then_some(Notice::Resolved)
        }
    }
}

/// Who is sending: PagerDuty's `source`, named in every payload. The host of `PUBLIC_BASE_URL`
/// when set, else `edgeplane`.
pub fn source<S: Secrets + ?Sized>(secrets: &S) -> String {
    secrets
        .get("PUBLIC_BASE_URL")
        .and_then(|u| {
            u.split_once("://")
                .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or("").to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "edgeplane".to_owned())
}

/// The Slack text (`{"text": ...}` of an incoming webhook).
pub fn slack_text(alert: &Alert, notice: Notice) -> String {
    match notice {
        Notice::Resolved => format!(
            "[RESOLVED] {} (resolved; alert {})",
            alert.summary, alert.dedup_key
        ),
        Notice::Fired | Notice::Renotified => format!(
            "[{}] {} (severity {}, firing since {}; alert {})",
            notice.tag(),
            alert.summary,
            alert.severity,
            format_rfc3339(alert.fired_at),
            alert.dedup_key
        ),
    }
}

/// The Slack request body.
pub fn slack_body(alert: &Alert, notice: Notice) -> Json {
    json!({ "text": slack_text(alert, notice) })
}

/// The PagerDuty Events API v2 event: a `trigger` with the payload PagerDuty documents (summary,
/// source, severity, timestamp, component, group, class, custom_details), or a `resolve` naming
/// the same `dedup_key`.
pub fn pagerduty_body(alert: &Alert, notice: Notice, routing_key: &str, source: &str) -> Json {
    match notice {
        Notice::Resolved => json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alert.dedup_key,
        }),
        Notice::Fired | Notice::Renotified => {
            let summary: String = alert.summary.chars().take(PAGERDUTY_SUMMARY_MAX).collect();
            json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": alert.dedup_key,
                "client": "Edgeplane",
                "payload": {
                    "summary": summary,
                    "source": source,
                    "severity": alert.severity,
                    "timestamp": format_rfc3339(alert.fired_at),
                    "component": alert.subject,
                    "group": Rule::parse(&alert.rule).map_or("edgeplane", Rule::group),
                    "class": alert.rule,
                    "custom_details": alert.details,
                },
            })
        }
    }
}

/// The webhook body: the notice's `id`, `type`, when it was sent, and the alert.
pub fn webhook_body(alert: &Alert, notice: Notice, id: &str, now: i64, source: &str) -> Json {
    json!({
        "id": id,
        "type": notice.event_type(),
        "sent_at": format_rfc3339(now),
        "source": source,
        "alert": alert,
    })
}

/// `v1=` and the hex HMAC-SHA256 under `secret` of `"{timestamp}.{body}"`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", crypto::hex(&mac.finalize().into_bytes()))
}

/// The alert mail: subject, and a text and HTML part with the summary and figures.
pub fn mail(alert: &Alert, notice: Notice, to: &str, source: &str) -> Mail {
    let subject = format!("[Edgeplane {}] {}", notice.tag(), alert.summary);
    let since = format_rfc3339(alert.fired_at);
    let resolved = alert.resolved_at.map(format_rfc3339);
    let details = serde_json::to_string_pretty(&alert.details).unwrap_or_default();
    let mut text = format!(
        "{}\n\nAlert: {}\nSeverity: {}\nState: {}\nFiring since: {since}\n",
        alert.summary,
        alert.dedup_key,
        alert.severity,
        alert.state.as_str()
    );
    if let Some(at) = &resolved {
        text.push_str(&format!("Resolved at: {at}\n"));
    }
    text.push_str(&format!("Source: {source}\n\nDetails:\n{details}\n"));
    let html = html! {
        p { strong { (notice.tag()) } ": " (alert.summary) }
        ul {
            li { "Alert: " code { (alert.dedup_key) } }
            li { "Severity: " (alert.severity) }
            li { "State: " (alert.state.as_str()) }
            li { "Firing since: " (since) }
            @if let Some(at) = &resolved { li { "Resolved at: " (at) } }
            li { "Source: " (source) }
        }
        pre { (details) }
    }
    .into_string();
    Mail {
        to: to.to_owned(),
        subject,
        text,
        html,
    }
}

/// A JSON POST of `body` to `url` with extra headers.
fn post(url: &str, body: Vec<u8>, extra: Vec<(String, String)>) -> OutboundRequest {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), "Edgeplane-Alerts/1".to_owned()),
    ];
    headers.extend(extra);
    OutboundRequest {
        method: "POST",
        url: url.to_owned(),
        headers,
        body,
        max_body_bytes: MAX_ANSWER_BYTES,
    }
}

/// Sends one notice to one channel. The error says what failed in general terms (no URL, key or
/// address), fit for the log.
pub async fn send<P: Platform>(
    p: &P,
    channel: &Channel,
    alert: &Alert,
    notice: Notice,
    now: i64,
) -> Result<(), String> {
    let source = source(p.secrets());
    let c = &channel.config;
    let missing = || "its configuration is incomplete".to_owned();
    let req = match channel.view.kind {
        ChannelKind::Email => {
            let to = c.to.as_deref().ok_or_else(missing)?;
            return p
                .mailer()
                .send(&mail(alert, notice, to, &source))
                .await
                .map_err(|e| match e {
                    crate::ports::MailError::Unavailable(_) => "mail provider unavailable",
                    crate::ports::MailError::Rejected(_) => "mail refused",
                })
                .map_err(str::to_owned);
        }
        ChannelKind::Slack => {
            let url = c.url.as_deref().ok_or_else(missing)?;
            post(
                url,
                slack_body(alert, notice).to_string().into_bytes(),
                vec![],
            )
        }
        ChannelKind::Pagerduty => {
            let key = c.routing_key.as_deref().ok_or_else(missing)?;
            let url = c.url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL);
            let body = pagerduty_body(alert, notice, key, &source);
            post(url, body.to_string().into_bytes(), vec![])
        }
        ChannelKind::Webhook => {
            let url = c.url.as_deref().ok_or_else(missing)?;
            let secret = c.secret.as_deref().ok_or_else(missing)?;
            let id = ids::new_id(p.random());
            let body = webhook_body(alert, notice, &id, now, &source)
                .to_string()
                .into_bytes();
            let ts = now.div_euclid(1_000);
            let signature = webhook_signature(secret, ts, &body);
            post(
                url,
                body,
                vec![
                    (TIMESTAMP_HEADER.to_owned(), ts.to_string()),
                    (SIGNATURE_HEADER.to_owned(), signature),
                ],
            )
        }
    };
    match p.http().fetch(req).await {
        Ok(resp) if (200..300).contains(&resp.status) => Ok(()),
        Ok(resp) => Err(format!("the receiver answered {}", resp.status)),
        // The runtime's message may hold the URL, a credential for Slack: not logged.
        Err(FetchError::Refused(_)) => Err("the runtime refused the destination".to_owned()),
        Err(FetchError::Unavailable(_)) => Err("the receiver was unreachable".to_owned()),
        Err(FetchError::TooLarge(_)) => Err("the receiver's answer was too large".to_owned()),
        Err(FetchError::Other(_)) => Err("the request failed".to_owned()),
    }
}

/// What each channel was last told of each alert: (dedup key, channel id) -> delivery.
pub(super) fn delivered_from(rows: &[crate::ports::Row]) -> Vec<(String, String, Delivered)> {
    rows.iter()
        .filter_map(|r| {
            let state = AlertState::parse(&r.text("state").ok()?)?;
            Some((
                r.text("dedup_key").ok()?,
                r.text("channel_id").ok()?,
                Delivered {
                    state,
                    at: r.i64("delivered_at").ok()?,
                },
            ))
        })
        .collect()
}

/// The statement recording that a channel was told of an alert's `state` at `now`.
pub(super) fn record_delivery(
    dedup_key: &str,
    channel_id: &str,
    state: AlertState,
    now: i64,
) -> Stmt {
    Stmt::new(
        "INSERT INTO alert_deliveries (dedup_key, channel_id, state, delivered_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (dedup_key, channel_id) DO UPDATE SET state = excluded.state,
           delivered_at = excluded.delivered_at",
    )
    .bind(dedup_key)
    .bind(channel_id)
    .bind(state.as_str())
    .bind(now)
}
