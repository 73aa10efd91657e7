//! System health alerting (NFR-MON-002, FR-SYS-005): rules judged by the scheduled job, alert
//! state with deduplication and no flapping, and notices to the channels operators configure.
//!
//! - [`rules`]: the rules (a key service's error rate and p99 over 5 minutes, a failing
//!   dependency), their thresholds and how `ALERT_*` variables override them.
//! - [`state`]: one alert per rule and subject, firing or resolved; fires at once, resolves after
//!   two clear runs.
//! - [`channels`]: email, Slack, PagerDuty and signed webhooks, sealed under the master key.
//! - [`notify`]: which notice each channel is due, the payload each service documents, sending.
//!
//! [`evaluate`] is the `alerts.evaluate` job: observe, move the alerts (each transition written
//! with its audit record in one batch), then notify. The alerts live in SQL, so an outage of the
//! SQL database itself cannot be recorded or sent from here: `GET /v1/health` answers 503 for it,
//! for an external uptime check to watch.

pub mod anomalies;
pub mod channels;
pub mod notify;
pub mod rules;
pub mod state;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::audit::{self, Actor, AuditRecord};
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

pub use channels::{AlertChannelError, ChannelKind, ChannelView, CreatedChannel, NewChannel};
pub use rules::{Rule, Thresholds};
pub use state::{Alert, AlertState, Transition};

use notify::{Delivered, Notice};

/// Resolved alerts shown by [`recent`]: those resolved within this long (7 days).
pub const RECENT_MS: i64 = 7 * 24 * 60 * 60_000;

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Alerts that fired.
    pub fired: u64,
    /// Alerts that resolved.
    pub resolved: u64,
    /// Notices delivered.
    pub delivered: u64,
    /// Notices that failed (tried again at the next run).
    pub failed: u64,
    /// What went wrong without failing the job (sources, deliveries, settings), for the log:
    /// never a URL, key, secret or address.
    pub causes: Vec<String>,
}

/// Why an evaluation could not move the alerts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    /// The alert state could not be read or written.
    #[error("alert storage failed: {0}")]
    Storage(String),
}

impl From<SqlError> for EvaluateError {
    fn from(e: SqlError) -> Self {
        EvaluateError::Storage(e.to_string())
    }
}

/// The `alerts.evaluate` job at `now`: judges every rule, moves the alerts, and sends the due
/// notices. Delivery failures are in the outcome's causes, never an error: they are retried at
/// the next run.
pub async fn evaluate<P: Platform>(p: &P, now: i64) -> Result<Outcome, EvaluateError> {
    let (thresholds, warnings) = Thresholds::from_secrets(p.secrets());
    let mut outcome = Outcome {
        causes: warnings,
        ..Outcome::default()
    };
    let (observations, causes) = rules::observe(p, now, &thresholds).await;
    outcome.causes.extend(causes);
    let mut alerts = load(p).await?;
    apply(p, &mut alerts, &observations, now, &mut outcome).await?;
    deliver(p, &alerts, now, thresholds.renotify_ms, &mut outcome).await;
    Ok(outcome)
}

/// Every stored alert, by dedup key.
async fn load<P: Platform>(p: &P) -> Result<HashMap<String, Alert>, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT dedup_key, rule, subject, tenant_id, severity, state, summary, details_json,
               fired_at, resolved_at, clear_runs, updated_at
             FROM alerts",
        ))
        .await?;
    rows.iter()
        .map(|r| state::from_row(r).map(|a| (a.dedup_key.clone(), a)))
        .collect()
}

/// Moves the alerts by the observations and writes the changed rows with one audit record per
/// transition, in one batch.
async fn apply<P: Platform>(
    p: &P,
    alerts: &mut HashMap<String, Alert>,
    observations: &[rules::Observation],
    now: i64,
    outcome: &mut Outcome,
) -> Result<(), SqlError> {
    let mut stmts = Vec::new();
    for obs in observations {
        let key = state::dedup_key(obs.rule, &obs.subject);
        let (row, transition) = state::step(alerts.get(&key), obs, now);
        let Some(row) = row else { continue };
        stmts.push(state::upsert(&row));
        if let Some(t) = transition {
            let action = match t {
                Transition::Fired => {
                    outcome.fired += 1;
                    "alert.fired"
                }
                Transition::Resolved => {
                    outcome.resolved += 1;
                    "alert.resolved"
                }
            };
            // An anomaly is audited in its tenant's log too, for the tenant's auditors
            // (NFR-MON-001): the record holds counts and ids, never an address.
            let record = transition_record(action, &row, None);
            stmts.push(audit::outbox_insert(&record, &audit::new_event_id(p), now));
            if let Some(tenant) = row.tenant_id.as_deref() {
                let record = transition_record(action, &row, Some(tenant));
                stmts.push(audit::outbox_insert(&record, &audit::new_event_id(p), now));
            }
        }
        alerts.insert(key, row);
    }
    if !stmts.is_empty() {
        p.sql().batch(stmts).await?;
    }
    Ok(())
}

/// The audit record of an alert's transition (`alert.fired`, `alert.resolved`), in the
/// platform's log (`tenant` none) or in a tenant's.
fn transition_record(action: &'static str, row: &Alert, tenant: Option<&str>) -> AuditRecord {
    AuditRecord::success(
        action,
        &Actor::system("alerts.evaluate"),
        tenant,
        format!("alert:{}", row.dedup_key),
        None,
    )
    .with("rule", row.rule.as_str())
    .with("subject", row.subject.as_str())
    .with("severity", row.severity.as_str())
    .with("summary", row.summary.as_str())
}

/// Sends every due notice to every channel and records the ones delivered. Failures go to the
/// outcome's causes.
async fn deliver<P: Platform>(
    p: &P,
    alerts: &HashMap<String, Alert>,
    now: i64,
    renotify_ms: i64,
    outcome: &mut Outcome,
) {
    let mut pending: Vec<&Alert> = alerts
        .values()
        .filter(|a| {
            a.state == AlertState::Firing
                || a.resolved_at
                    .is_some_and(|at| now - at <= notify::RESOLVED_RETRY_MS)
        })
        .collect();
    if pending.is_empty() {
        return;
    }
    pending.sort_by(|a, b| a.dedup_key.cmp(&b.dedup_key));
    let (channels, unusable) = match channels::load_all(p).await {
        Ok(found) => found,
        Err(e) => {
            outcome.causes.push(format!("channels unreadable: {e}"));
            return;
        }
    };
    for id in unusable {
        outcome.causes.push(format!(
            "channel {id}: its configuration does not open under the master key"
        ));
    }
    if channels.is_empty() {
        return;
    }
    let told = match p
        .sql()
        .query(Stmt::new(
            "SELECT dedup_key, channel_id, state, delivered_at FROM alert_deliveries",
        ))
        .await
    {
        Ok(rows) => notify::delivered_from(&rows),
        Err(e) => {
            outcome.causes.push(format!("deliveries unreadable: {e}"));
            return;
        }
    };
    let last = |key: &str, channel: &str| -> Option<Delivered> {
        told.iter()
            .find(|(k, c, _)| k == key && c == channel)
            .map(|(_, _, d)| *d)
    };
    let mut records = Vec::new();
    for alert in pending {
        for channel in &channels {
            let id = channel.view.id.as_str();
            let Some(notice) = notify::due(alert, last(&alert.dedup_key, id), now, renotify_ms)
            else {
                continue;
            };
            match notify::send(p, channel, alert, notice, now).await {
                Ok(()) => {
                    outcome.delivered += 1;
                    let state = match notice {
                        Notice::Fired | Notice::Renotified => AlertState::Firing,
                        Notice::Resolved => AlertState::Resolved,
                    };
                    records.push(notify::record_delivery(&alert.dedup_key, id, state, now));
                }
                Err(why) => {
                    outcome.failed += 1;
                    outcome.causes.push(format!(
                        "{} of {} to channel {id} ({}) failed: {why}",
                        notice.event_type(),
                        alert.dedup_key,
                        channel.view.kind.as_str()
                    ));
                }
            }
        }
    }
    if !records.is_empty() {
        if let Err(e) = p.sql().batch(records).await {
            outcome
                .causes
                .push(format!("deliveries not recorded (they may repeat): {e}"));
        }
    }
}

/// `GET /v1/alerts`: the firing alerts, then those resolved within [`RECENT_MS`], most recently
/// changed first.
pub async fn recent<P: Platform>(p: &P) -> Result<Vec<Alert>, SqlError> {
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT dedup_key, rule, subject, tenant_id, severity, state, summary,
                   details_json, fired_at, resolved_at, clear_runs, updated_at
                 FROM alerts WHERE state = 'firing' OR resolved_at >= ?1
                 ORDER BY state, updated_at DESC, dedup_key LIMIT 200",
            )
            .bind(now - RECENT_MS),
        )
        .await?;
    rows.iter().map(state::from_row).collect()
}

/// `GET /v1/tenant/alerts`: the anomaly alerts of one tenant (NFR-MON-001), firing then those
/// resolved within [`RECENT_MS`], most recently changed first.
pub async fn for_tenant<P: Platform>(p: &P, tenant_id: &str) -> Result<Vec<Alert>, SqlError> {
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT dedup_key, rule, subject, tenant_id, severity, state, summary,
                   details_json, fired_at, resolved_at, clear_runs, updated_at
                 FROM alerts WHERE tenant_id = ?1 AND (state = 'firing' OR resolved_at >= ?2)
                 ORDER BY state, updated_at DESC, dedup_key LIMIT 200",
            )
            .bind(tenant_id)
            .bind(now - RECENT_MS),
        )
        .await?;
    rows.iter().map(state::from_row).collect()
}
