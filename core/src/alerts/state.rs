//! Alert state: one alert per rule and subject, firing or resolved, moved by each scheduled
//! run's observations ([`step`]) and kept in the `alerts` table.
//!
//! An alert fires on the first run that sees its condition. It resolves only after
//! [`CLEAR_RUNS_TO_RESOLVE`] consecutive runs found the condition clear, so a single good run in
//! a bad spell (a lucky health probe, a quiet minute) does not resolve and re-fire it. A run that
//! could not judge a subject leaves its alert as it is.

use serde::Serialize;
use serde_json::Value as Json;
use utoipa::ToSchema;

use super::rules::{Observation, Rule};
use crate::ports::{Row, SqlError, Stmt};

/// Consecutive clear runs after which a firing alert resolves.
pub const CLEAR_RUNS_TO_RESOLVE: i64 = 2;

/// Whether an alert is firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds (or held within the last clear run).
    Firing,
    /// The condition was clear on two consecutive runs.
    Resolved,
}

impl AlertState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<AlertState> {
        match s {
            "firing" => Some(AlertState::Firing),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// One alert (NFR-MON-002) as stored and as `GET /v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    /// `edgeplane/RULE/SUBJECT`: stable for the rule and subject, across episodes; PagerDuty's
    /// `dedup_key`.
    pub dedup_key: String,
    /// The rule.
    #[schema(schema_with = rule_schema)]
    pub rule: String,
    /// What it is about: a key service (`sign_in`, `introspection`, `ofrep`, `ingestion`,
    /// `admin`), a dependency (`sql`, `kv`, `event_log`, `blobs`), the synthetic journey
    /// (`canary`), the event pipeline (`events`), or for an anomaly (NFR-MON-001) a tenant
    /// (`tenant:ID`), an account (`tenant:ID/user:ID`) or an API key (`tenant:ID/key:ID`, or
    /// `key:ID` for an app-wide key).
    pub subject: String,
    /// The tenant an anomaly alert is about; null for the platform's own alerts.
    pub tenant_id: Option<String>,
    /// `critical` (dependencies), `error` (error rates, refresh-token reuse, journeys),
    /// `warning` (latency, pipeline lag, the other anomalies).
    #[schema(schema_with = severity_schema)]
    pub severity: String,
    /// Firing or resolved.
    #[schema(inline)]
    pub state: AlertState,
    /// What was wrong, in one line, as last observed.
    pub summary: String,
    /// The figures behind the summary.
    #[schema(value_type = Object)]
    pub details: Json,
    /// When the current (or last) episode fired, unix ms.
    pub fired_at: i64,
    /// When it resolved, unix ms; null while firing.
    pub resolved_at: Option<i64>,
    /// Consecutive runs that found the condition clear while firing.
    #[serde(skip)]
    pub clear_runs: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

fn rule_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&Rule::ALL.map(Rule::as_str))
}

fn severity_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&["critical", "error", "warning", "info"])
}

/// The dedup key of a rule and subject.
pub fn dedup_key(rule: Rule, subject: &str) -> String {
    format!("edgeplane/{}/{subject}", rule.as_str())
}

/// A change of state worth telling people and auditing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The alert started firing.
    Fired,
    /// The alert resolved.
    Resolved,
}

/// What a run's observation does to an alert: its new row, when it must be written, and the
/// transition, if any. `prev` is the stored alert of the observation's rule and subject.
pub fn step(
    prev: Option<&Alert>,
    obs: &Observation,
    now: i64,
) -> (Option<Alert>, Option<Transition>) {
    let firing = prev.filter(|a| a.state == AlertState::Firing);
    match (&obs.condition, firing) {
        // Fires on the first run that sees it (again, after a resolution).
        (Some(c), None) => {
            let alert = Alert {
                dedup_key: dedup_key(obs.rule, &obs.subject),
                rule: obs.rule.as_str().to_owned(),
                subject: obs.subject.clone(),
                tenant_id: super::anomalies::tenant_of(obs.rule, &obs.subject),
                severity: obs.rule.severity().to_owned(),
                state: AlertState::Firing,
                summary: c.summary.clone(),
                details: c.details.clone(),
                fired_at: now,
                resolved_at: None,
                clear_runs: 0,
                updated_at: now,
            };
            (Some(alert), Some(Transition::Fired))
        }
        // Still firing: the latest figures, and the clear streak broken.
        (Some(c), Some(a)) => {
            let alert = Alert {
                summary: c.summary.clone(),
                details: c.details.clone(),
                clear_runs: 0,
                updated_at: now,
                ..a.clone()
            };
            (Some(alert), None)
        }
        // Clear while firing: resolves at the second clear run in a row.
        (None, Some(a)) => {
            let clear_runs = a.clear_runs + 1;
            if clear_runs >= CLEAR_RUNS_TO_RESOLVE {
                let alert = Alert {
                    state: AlertState::Resolved,
                    resolved_at: Some(now),
                    clear_runs,
                    updated_at: now,
                    ..a.clone()
                };
                (Some(alert), Some(Transition::Resolved))
            } else {
                let alert = Alert {
                    clear_runs,
                    updated_at: now,
                    ..a.clone()
                };
                (Some(alert), None)
            }
        }
        // Clear and not firing: nothing to write.
        (None, None) => (None, None),
    }
}

/// An alert from its row (every column of `alerts`).
pub(super) fn from_row(r: &Row) -> Result<Alert, SqlError> {
    let state = r.text("state")?;
    let details = r.text("details_json")?;
    Ok(Alert {
        dedup_key: r.text("dedup_key")?,
        rule: r.text("rule")?,
        subject: r.text("subject")?,
        tenant_id: r.opt_text("tenant_id")?,
        severity: r.text("severity")?,
        state: AlertState::parse(&state)
            .ok_or_else(|| SqlError::Other(format!("alerts.state {state:?}")))?,
        summary: r.text("summary")?,
        details: serde_json::from_str(&details).unwrap_or(Json::Null),
        fired_at: r.i64("fired_at")?,
        resolved_at: r.opt_i64("resolved_at")?,
        clear_runs: r.i64("clear_runs")?,
        updated_at: r.i64("updated_at")?,
    })
}

/// The statement writing an alert's row, created or replaced.
pub(super) fn upsert(a: &Alert) -> Stmt {
    Stmt::new(
        "INSERT INTO alerts (dedup_key, rule, subject, severity, state, summary, details_json,
           fired_at, resolved_at, clear_runs, updated_at, tenant_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (dedup_key) DO UPDATE SET severity = excluded.severity,
           state = excluded.state, summary = excluded.summary,
           details_json = excluded.details_json, fired_at = excluded.fired_at,
           resolved_at = excluded.resolved_at, clear_runs = excluded.clear_runs,
           updated_at = excluded.updated_at",
    )
    .bind(a.dedup_key.as_str())
    .bind(a.rule.as_str())
    .bind(a.subject.as_str())
    .bind(a.severity.as_str())
    .bind(a.state.as_str())
    .bind(a.summary.as_str())
    .bind(a.details.to_string())
    .bind(a.fired_at)
    .bind(a.resolved_at)
    .bind(a.clear_runs)
    .bind(a.updated_at)
    .bind(a.tenant_id.as_deref())
}
