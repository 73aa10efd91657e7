//! Health of the managed apps themselves (platform PRD: health monitoring of the managed
//! services). An operator registers a health URL for an app; Edgeplane polls it with a `GET`
//! (every [`POLL_INTERVAL_MS`] on Workers, from a Durable Object alarm; at each scheduled run on
//! Spin, which has no timer), keeps each minute's checks, failures and latencies for a day, and
//! reports the app green (its latest check answered 2xx), red (it did not) or unknown (never
//! checked, or not for [`STALE_MS`]).
//!
//! Outbound calls go only to the registered URL: the HTTP port never follows a redirect (a 3xx
//! is a failed check), reads at most [`MAX_BODY_BYTES`] of the answer, and gives up after the
//! runtime's timeout; on Spin the URL's origin must also be granted in `spin.toml`
//! (`app_health_origin`). Outside development the URL must be https.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{AppId, AppStatus, RedirectUri};
use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::{ErrorKind, ParseError};
use crate::ports::{Clock, HttpClient, OutboundRequest, Platform, Sql, SqlError, Stmt};

/// How often an app is checked where a timer can do it (Workers), in ms.
pub const POLL_INTERVAL_MS: i64 = 5_000;

/// A check older than this leaves the app's state unknown (two scheduled runs on Spin), in ms.
pub const STALE_MS: i64 = 600_000;

/// Most apps checked in one poll.
pub const MAX_APPS_PER_POLL: u32 = 100;

/// Most of a health answer read, in bytes: only its status counts.
pub const MAX_BODY_BYTES: usize = 4_096;

/// How long the per-minute figures are kept, in minutes.
pub const KEEP_MINUTES: i64 = 24 * 60;

/// Minutes of figures in a report.
pub const REPORT_MINUTES: i64 = 60;

/// Why a well-formed loopback `http://` URL is refused outside development.
pub const HTTPS_REQUIRED: &str = "must use https outside development";

/// A health URL: an absolute https URL (http only to a loopback host, and only in development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUrl(String);

impl HealthUrl {
    /// Checks the rules above; `development` admits loopback http.
    pub fn parse(raw: &str, development: bool) -> Result<Self, ParseError> {
        let uri = RedirectUri::parse(raw).map_err(|e| ParseError {
            what: "health url",
            reason: e.reason,
        })?;
        let uri = uri.as_ref().to_owned();
        if uri.starts_with("http://") && !development {
            return Err(ParseError {
                what: "health url",
                reason: HTTPS_REQUIRED,
            });
        }
        Ok(HealthUrl(uri))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an app's health check could not be set or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppHealthError {
    /// No app has this id.
    #[error("no app {id}")]
    NotFound {
        /// The id asked for.
        id: AppId,
    },
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl AppHealthError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppHealthError::NotFound { .. } => "app_not_found",
            AppHealthError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppHealthError::NotFound { .. } => ErrorKind::NotFound,
            AppHealthError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(AppHealthError);

/// Green, red or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// The latest check answered 2xx.
    Green,
    /// The latest check did not (an error status, a redirect, no answer).
    Red,
    /// No health URL, never checked, or not checked for ten minutes.
    Unknown,
}

/// One minute of checks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HealthMinute {
    /// Start of the minute, unix ms.
    pub at_ms: i64,
    /// Checks made.
    pub checks: u64,
    /// Checks that failed.
    pub failures: u64,
    /// Mean latency of the checks, ms.
    pub avg_latency_ms: u64,
    /// Longest latency, ms.
    pub max_latency_ms: u64,
}

/// An app's health: its URL, its state, the latest check and the last hour by minute.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AppHealth {
    /// The app.
    #[schema(value_type = String)]
    pub app_id: String,
    /// The registered health URL, if any.
    pub url: Option<String>,
    /// Green, red or unknown.
    pub state: HealthState,
    /// When the latest check was made, unix ms.
    pub checked_at_ms: Option<i64>,
    /// The latest check's HTTP status (null when no answer came).
    pub last_status: Option<u16>,
    /// The latest check's latency, ms.
    pub last_latency_ms: Option<u64>,
    /// What went wrong with the latest check, in general terms.
    pub last_error: Option<String>,
    /// Failed checks since the last healthy one.
    pub consecutive_failures: u64,
    /// The last hour, oldest minute first; minutes without checks are left out.
    pub minutes: Vec<HealthMinute>,
}

async fn require_app<P: Platform>(p: &P, id: &AppId) -> Result<(), AppHealthError> {
    match super::load(p, id).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(AppHealthError::NotFound { id: id.clone() }),
        Err(e) => Err(AppHealthError::Storage(e)),
    }
}

/// Registers (`Some`) or removes (`None`) an app's health URL, audited. A new URL starts
/// without history.
pub async fn set_url<P: Platform>(
    p: &P,
    id: &AppId,
    url: Option<&HealthUrl>,
    actor: &Actor,
    request_id: &str,
) -> Result<(), AppHealthError> {
    require_app(p, id).await?;
    let now = p.clock().now_ms();
    let resource = super::resource(id);
    let mut stmts = vec![
        Stmt::new("DELETE FROM app_health_minutes WHERE app_id = ?1").bind(id.as_str()),
        Stmt::new("DELETE FROM app_health_checks WHERE app_id = ?1").bind(id.as_str()),
    ];
    let rec = match url {
        Some(url) => {
            stmts.push(
                Stmt::new(
                    "INSERT INTO app_health_checks (app_id, url, created_at) VALUES (?1, ?2, ?3)",
                )
                .bind(id.as_str())
                .bind(url.as_str())
                .bind(now),
            );
            AuditRecord::success(
                "app.health_check.set",
                actor,
                None,
                resource,
                Some(request_id),
            )
            .with("url", url.as_str())
        }
        None => AuditRecord::success(
            "app.health_check.remove",
            actor,
            None,
            resource,
            Some(request_id),
        ),
    };
    stmts.push(audit::outbox_insert(&rec, &audit::new_event_id(p), now));
    p.sql().batch(stmts).await?;
    Ok(())
}

/// An app's health at `now`.
pub async fn report<P: Platform>(p: &P, id: &AppId, now: i64) -> Result<AppHealth, AppHealthError> {
    require_app(p, id).await?;
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT url, checked_at, ok, status, latency_ms, error, consecutive_failures
                 FROM app_health_checks WHERE app_id = ?1",
            )
            .bind(id.as_str()),
        )
        .await?;
    let mut health = AppHealth {
        app_id: id.as_str().to_owned(),
        url: None,
        state: HealthState::Unknown,
        checked_at_ms: None,
        last_status: None,
        last_latency_ms: None,
        last_error: None,
        consecutive_failures: 0,
        minutes: Vec::new(),
    };
    let Some(row) = rows.first() else {
        return Ok(health);
    };
    health.url = Some(row.text("url")?);
    health.checked_at_ms = row.opt_i64("checked_at")?;
    health.last_status = row.opt_i64("status")?.and_then(|s| u16::try_from(s).ok());
    health.last_latency_ms = row.opt_i64("latency_ms")?.map(non_negative);
    health.last_error = row.opt_text("error")?;
    health.consecutive_failures = non_negative(row.i64("consecutive_failures")?);
    health.state = match (health.checked_at_ms, row.opt_i64("ok")?) {
        (Some(at), Some(ok)) if now - at < STALE_MS => {
            if ok == 1 {
                HealthState::Green
            } else {
                HealthState::Red
            }
        }
        _ => HealthState::Unknown,
    };
    let from = now.div_euclid(60_000) - REPORT_MINUTES + 1;
    let minutes = p
        .sql()
        .query(
            Stmt::new(
                "SELECT minute, checks, failures, latency_ms_total, latency_ms_max
                 FROM app_health_minutes WHERE app_id = ?1 AND minute >= ?2 ORDER BY minute",
            )
            .bind(id.as_str())
            .bind(from),
        )
        .await?;
    for m in minutes {
        let checks = non_negative(m.i64("checks")?);
        health.minutes.push(HealthMinute {
            at_ms: m.i64("minute")? * 60_000,
            checks,
            failures: non_negative(m.i64("failures")?),
            avg_latency_ms: non_negative(m.i64("latency_ms_total")?) / checks.max(1),
            max_latency_ms: non_negative(m.i64("latency_ms_max")?),
        });
    }
    Ok(health)
}

fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The outcome of one check.
struct Check {
    ok: bool,
    status: Option<u16>,
    latency_ms: i64,
    error: Option<&'static str>,
}

/// Checks one URL.
async fn check<P: Platform>(p: &P, url: &str) -> Check {
    let started = p.clock().now_ms();
    let answer = p
        .http()
        .fetch(OutboundRequest::get(url, "*/*", MAX_BODY_BYTES))
        .await;
    let latency_ms = (p.clock().now_ms() - started).max(0);
    match answer {
        Ok(resp) if (200..300).contains(&resp.status) => Check {
            ok: true,
            status: Some(resp.status),
            latency_ms,
            error: None,
        },
        Ok(resp) => Check {
            ok: false,
            status: Some(resp.status),
            latency_ms,
            error: Some(if (300..400).contains(&resp.status) {
                "redirect not followed"
            } else {
                "error status"
            }),
        },
        Err(crate::ports::FetchError::TooLarge(_)) => Check {
            ok: false,
            status: None,
            latency_ms,
            error: Some("answer too large"),
        },
        Err(crate::ports::FetchError::Refused(_)) => Check {
            ok: false,
            status: None,
            latency_ms,
            error: Some("destination not allowed"),
        },
        Err(_) => Check {
            ok: false,
            status: None,
            latency_ms,
            error: Some("no answer"),
        },
    }
}

/// Checks every active app with a health URL (at most [`MAX_APPS_PER_POLL`]), at the same time,
/// and records the outcomes; returns how many were checked.
pub async fn poll<P: Platform>(p: &P) -> Result<u64, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT c.app_id AS app_id, c.url AS url FROM app_health_checks c
                 JOIN apps a ON a.id = c.app_id WHERE a.status = ?1 ORDER BY c.app_id LIMIT ?2",
            )
            .bind(AppStatus::Active.as_str())
            .bind(i64::from(MAX_APPS_PER_POLL)),
        )
        .await?;
    let mut targets = Vec::with_capacity(rows.len());
    for row in &rows {
        targets.push((row.text("app_id")?, row.text("url")?));
    }
    let checks =
        crate::kernel::join_all(targets.iter().map(|(_, url)| check(p, url)).collect()).await;
    let now = p.clock().now_ms();
    let minute = now.div_euclid(60_000);
    let mut stmts = Vec::with_capacity(targets.len() * 2 + 1);
    for ((app_id, url), c) in targets.iter().zip(checks) {
        // Only while the URL checked is still the registered one.
        stmts.push(
            Stmt::new(
                "UPDATE app_health_checks SET checked_at = ?3, ok = ?4, status = ?5,
                   latency_ms = ?6, error = ?7,
                   consecutive_failures = iif(?4 = 1, 0, consecutive_failures + 1)
                 WHERE app_id = ?1 AND url = ?2",
            )
            .bind(app_id.as_str())
            .bind(url.as_str())
            .bind(now)
            .bind(c.ok)
            .bind(c.status.map(i64::from))
            .bind(c.latency_ms)
            .bind(c.error),
        );
        stmts.push(
            Stmt::new(
                "INSERT INTO app_health_minutes (app_id, minute, checks, failures,
                   latency_ms_total, latency_ms_max)
                 SELECT ?1, ?3, 1, ?4, ?5, ?5 WHERE EXISTS
                   (SELECT 1 FROM app_health_checks WHERE app_id = ?1 AND url = ?2)
                 ON CONFLICT (app_id, minute) DO UPDATE SET checks = checks + 1,
                   failures = failures + excluded.failures,
                   latency_ms_total = latency_ms_total + excluded.latency_ms_total,
                   latency_ms_max = max(latency_ms_max, excluded.latency_ms_max)",
            )
            .bind(app_id.as_str())
            .bind(url.as_str())
            .bind(minute)
            .bind(i64::from(!c.ok))
            .bind(c.latency_ms),
        );
    }
    stmts.push(
        Stmt::new("DELETE FROM app_health_minutes WHERE minute < ?1").bind(minute - KEEP_MINUTES),
    );
    p.sql().batch(stmts).await?;
    Ok(targets.len() as u64)
}

/// Whether any active app has a health URL (the Workers poller stops its alarm when none has).
pub async fn any_registered<P: Platform>(p: &P) -> Result<bool, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT 1 AS one FROM app_health_checks c JOIN apps a ON a.id = c.app_id
                 WHERE a.status = ?1 LIMIT 1",
            )
            .bind(AppStatus::Active.as_str()),
        )
        .await?;
    Ok(!rows.is_empty())
}
