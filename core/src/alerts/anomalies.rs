//! The anomaly rules (NFR-MON-001, CON-MON-001): per tenant, a burst of refused sign-ins,
//! refresh-token reuse, one account signing in from many addresses, an API key used from many
//! more addresses than usual. They judge what `crate::anomalies` recorded; their alerts go
//! through the same state machine, audit and channels as the health rules, and each names its
//! tenant (so the tenant's own audit log and `GET /v1/tenant/alerts` show it too).
//!
//! Subjects: `tenant:ID` for the tenant-wide rules, `tenant:ID/user:ID` for an account,
//! `tenant:ID/key:ID` for a tenant-bound API key and `key:ID` for an app-wide one (no tenant).
//! No address appears anywhere: the figures are counts of distinct address hashes.

use std::collections::HashSet;

use serde_json::json;

use super::rules::{Condition, Observation, Rule};
use crate::anomalies::{self, AddressCount, Signal};
use crate::ports::{Platform, Secrets, Sql, SqlError, Stmt};

/// The variable overriding [`AnomalyThresholds::failed_sign_ins`].
pub const FAILED_SIGN_INS_VAR: &str = "ALERT_ANOMALY_FAILED_SIGN_INS";
/// The variable overriding [`AnomalyThresholds::failed_sign_in_minutes`].
pub const FAILED_SIGN_IN_MINUTES_VAR: &str = "ALERT_ANOMALY_FAILED_SIGN_IN_MINUTES";
/// The variable overriding [`AnomalyThresholds::refresh_reuses`].
pub const REFRESH_REUSES_VAR: &str = "ALERT_ANOMALY_REFRESH_REUSES";
/// The variable overriding [`AnomalyThresholds::refresh_reuse_minutes`].
pub const REFRESH_REUSE_MINUTES_VAR: &str = "ALERT_ANOMALY_REFRESH_REUSE_MINUTES";
/// The variable overriding [`AnomalyThresholds::account_addresses`].
pub const ACCOUNT_ADDRESSES_VAR: &str = "ALERT_ANOMALY_ACCOUNT_ADDRESSES";
/// The variable overriding [`AnomalyThresholds::key_address_factor`].
pub const KEY_ADDRESS_FACTOR_VAR: &str = "ALERT_ANOMALY_KEY_ADDRESS_FACTOR";
/// The variable overriding [`AnomalyThresholds::key_address_min`].
pub const KEY_ADDRESS_MIN_VAR: &str = "ALERT_ANOMALY_KEY_ADDRESS_MIN";

/// The window of the address rules: the last hour (ms).
pub const ADDRESS_WINDOW_MS: i64 = 60 * 60_000;
/// The baseline of a key: its busiest hour of the previous 7 days.
pub const KEY_BASELINE_HOURS: i64 = 7 * 24;

/// The anomaly rules' thresholds, from their defaults and the `ALERT_ANOMALY_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyThresholds {
    /// At least this many refused sign-ins in a tenant within the window fire (50).
    pub failed_sign_ins: i64,
    /// The window of the refused sign-ins, in minutes (5).
    pub failed_sign_in_minutes: i64,
    /// At least this many refresh-token reuse detections in a tenant within the window fire
    /// (1: any).
    pub refresh_reuses: i64,
    /// The window of the reuse detections, in minutes (15).
    pub refresh_reuse_minutes: i64,
    /// An account signing in from more than this many distinct addresses within an hour fires
    /// (5).
    pub account_addresses: i64,
    /// A key used from more than this many times its baseline's distinct addresses within an
    /// hour fires (4)...
    pub key_address_factor: i64,
    /// ...when they are at least this many (20).
    pub key_address_min: i64,
}

impl Default for AnomalyThresholds {
    fn default() -> Self {
        AnomalyThresholds {
            failed_sign_ins: 50,
            failed_sign_in_minutes: 5,
            refresh_reuses: 1,
            refresh_reuse_minutes: 15,
            account_addresses: 5,
            key_address_factor: 4,
            key_address_min: 20,
        }
    }
}

impl AnomalyThresholds {
    /// The defaults with the variables that are set applied. A variable that does not parse is
    /// ignored (its default applies) and named in the returned warnings, for the log.
    pub fn from_secrets<S: Secrets + ?Sized>(secrets: &S) -> (Self, Vec<String>) {
        let mut t = AnomalyThresholds::default();
        let mut warnings = Vec::new();
        let day = anomalies::COUNT_RETENTION_MINUTES;
        let settings: [(&str, &mut i64, i64, i64); 7] = [
            (FAILED_SIGN_INS_VAR, &mut t.failed_sign_ins, 1, i64::MAX),
            (
                FAILED_SIGN_IN_MINUTES_VAR,
                &mut t.failed_sign_in_minutes,
                1,
                day,
            ),
            (REFRESH_REUSES_VAR, &mut t.refresh_reuses, 1, i64::MAX),
            (
                REFRESH_REUSE_MINUTES_VAR,
                &mut t.refresh_reuse_minutes,
                1,
                day,
            ),
            (ACCOUNT_ADDRESSES_VAR, &mut t.account_addresses, 1, i64::MAX),
            (KEY_ADDRESS_FACTOR_VAR, &mut t.key_address_factor, 1, 1_000),
            (KEY_ADDRESS_MIN_VAR, &mut t.key_address_min, 1, i64::MAX),
        ];
        for (name, slot, min, max) in settings {
            let Some(raw) = secrets.get(name) else {
                continue;
            };
            match raw.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => *slot = n,
                _ => warnings.push(format!(
                    "{name} ignored: not a whole number from {min} to {max}"
                )),
            }
        }
        (t, warnings)
    }
}

/// Whether a rule is one of the anomaly rules.
pub fn is_anomaly(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::FailedSignInBurst
            | Rule::RefreshReuse
            | Rule::AccountManyAddresses
            | Rule::ApiKeyManyAddresses
    )
}

/// The tenant an alert of `rule` on `subject` is about: the id after `tenant:` of an anomaly
/// rule's subject; `None` for the platform rules and app-wide keys.
pub fn tenant_of(rule: Rule, subject: &str) -> Option<String> {
    if !is_anomaly(rule) {
        return None;
    }
    let rest = subject.strip_prefix("tenant:")?;
    let id = rest.split('/').next().unwrap_or(rest);
    (!id.is_empty()).then(|| id.to_owned())
}

/// The subject of a tenant-wide rule.
fn tenant_subject(tenant_id: &str) -> String {
    format!("tenant:{tenant_id}")
}

/// The subject of an account or key (`user:ID`, `key:ID`) within its tenant, if any.
fn scoped_subject(tenant_id: Option<&str>, thing: &str) -> String {
    match tenant_id {
        Some(t) => format!("tenant:{t}/{thing}"),
        None => thing.to_owned(),
    }
}

/// Judges the tenants' counts of refused sign-ins: `counts` are per tenant over the window.
pub fn judge_failed_sign_ins(counts: &[(String, i64)], t: &AnomalyThresholds) -> Vec<Observation> {
    counts
        .iter()
        .filter(|(_, n)| *n >= t.failed_sign_ins)
        .map(|(tenant, n)| {
            let minutes = t.failed_sign_in_minutes;
            Observation {
                rule: Rule::FailedSignInBurst,
                subject: tenant_subject(tenant),
                condition: Some(Condition {
                    summary: format!(
                        "{n} failed sign-ins in tenant {tenant} in {minutes} minutes (threshold {})",
                        t.failed_sign_ins
                    ),
                    details: json!({
                        "tenant_id": tenant, "failed_sign_ins": n,
                        "window_minutes": minutes, "threshold": t.failed_sign_ins,
                    }),
                }),
            }
        })
        .collect()
}

/// Judges the tenants' counts of refresh-token reuse detections over the window.
pub fn judge_refresh_reuse(counts: &[(String, i64)], t: &AnomalyThresholds) -> Vec<Observation> {
    counts
        .iter()
        .filter(|(_, n)| *n >= t.refresh_reuses)
        .map(|(tenant, n)| {
            let minutes = t.refresh_reuse_minutes;
            Observation {
                rule: Rule::RefreshReuse,
                subject: tenant_subject(tenant),
                condition: Some(Condition {
                    summary: format!(
                        "{n} refresh-token reuse detections in tenant {tenant} in {minutes} minutes (sessions revoked; threshold {})",
                        t.refresh_reuses
                    ),
                    details: json!({
                        "tenant_id": tenant, "reuse_detections": n,
                        "window_minutes": minutes, "threshold": t.refresh_reuses,
                    }),
                }),
            }
        })
        .collect()
}

/// Judges the accounts seen from more than the threshold's distinct addresses in the hour.
pub fn judge_accounts(counts: &[AddressCount], t: &AnomalyThresholds) -> Vec<Observation> {
    counts
        .iter()
        .filter(|c| c.addresses > t.account_addresses)
        .map(|c| {
            let tenant = c.tenant_id.as_deref();
            Observation {
                rule: Rule::AccountManyAddresses,
                subject: scoped_subject(tenant, &c.subject),
                condition: Some(Condition {
                    summary: format!(
                        "Account {} of tenant {} signed in from {} distinct addresses in the last hour (threshold {})",
                        c.subject,
                        tenant.unwrap_or("-"),
                        c.addresses,
                        t.account_addresses
                    ),
                    details: json!({
                        "tenant_id": tenant, "account": c.subject,
                        "distinct_addresses": c.addresses, "window_minutes": 60,
                        "threshold": t.account_addresses,
                    }),
                }),
            }
        })
        .collect()
}

/// Judges one key: its distinct addresses in the last hour against its baseline (the busiest
/// hour of the previous 7 days); `None` when it is within bounds.
pub fn judge_key(c: &AddressCount, baseline: i64, t: &AnomalyThresholds) -> Option<Observation> {
    let limit = baseline.saturating_mul(t.key_address_factor);
    if c.addresses < t.key_address_min || c.addresses <= limit {
        return None;
    }
    let tenant = c.tenant_id.as_deref();
    Some(Observation {
        rule: Rule::ApiKeyManyAddresses,
        subject: scoped_subject(tenant, &c.subject),
        condition: Some(Condition {
            summary: format!(
                "API key {} was used from {} distinct addresses in the last hour, its usual is up to {baseline} (factor {}, minimum {})",
                c.subject, c.addresses, t.key_address_factor, t.key_address_min
            ),
            details: json!({
                "tenant_id": tenant, "key": c.subject, "distinct_addresses": c.addresses,
                "baseline": baseline, "baseline_hours": KEY_BASELINE_HOURS,
                "factor": t.key_address_factor, "minimum": t.key_address_min,
            }),
        }),
    })
}

/// The keys over their bounds at `now`: each key with at least the minimum of addresses in the
/// last hour, against its own baseline.
async fn judge_keys<P: Platform>(
    p: &P,
    now: i64,
    t: &AnomalyThresholds,
) -> Result<Vec<Observation>, SqlError> {
    let since = now - ADDRESS_WINDOW_MS;
    let busy = anomalies::addresses_since(p, "key", since, t.key_address_min - 1).await?;
    let hour = now.div_euclid(ADDRESS_WINDOW_MS);
    let mut out = Vec::new();
    for c in &busy {
        // The hours of the last window are not their own baseline.
        let from = hour - 1 - KEY_BASELINE_HOURS;
        let baseline = anomalies::key_baseline(p, &c.subject, from, hour - 1).await?;
        out.extend(judge_key(c, baseline, t));
    }
    Ok(out)
}

/// Every anomaly observation at `now`: the conditions that hold, then a clear observation for
/// each firing anomaly alert whose condition no longer holds (so it can resolve).
async fn judge_all<P: Platform>(
    p: &P,
    now: i64,
    t: &AnomalyThresholds,
) -> Result<Vec<Observation>, SqlError> {
    let minute = now.div_euclid(60_000);
    let failed = anomalies::counts_since(
        p,
        Signal::SignInFailed,
        minute - (t.failed_sign_in_minutes - 1),
    )
    .await?;
    let reuse = anomalies::counts_since(
        p,
        Signal::RefreshReuse,
        minute - (t.refresh_reuse_minutes - 1),
    )
    .await?;
    let since = now - ADDRESS_WINDOW_MS;
    let accounts = anomalies::addresses_since(p, "user", since, t.account_addresses).await?;
    let mut out = judge_failed_sign_ins(&failed, t);
    out.extend(judge_refresh_reuse(&reuse, t));
    out.extend(judge_accounts(&accounts, t));
    out.extend(judge_keys(p, now, t).await?);
    out.extend(clear_firing(p, &out).await?);
    Ok(out)
}

/// Clear observations for the firing anomaly alerts that `held` does not name.
async fn clear_firing<P: Platform>(
    p: &P,
    held: &[Observation],
) -> Result<Vec<Observation>, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT rule, subject FROM alerts WHERE state = 'firing' ORDER BY dedup_key",
        ))
        .await?;
    let holding: HashSet<(&str, &str)> = held
        .iter()
        .map(|o| (o.rule.as_str(), o.subject.as_str()))
        .collect();
    let mut out = Vec::new();
    for r in &rows {
        let Some(rule) = Rule::parse(&r.text("rule")?).filter(|r| is_anomaly(*r)) else {
            continue;
        };
        let subject = r.text("subject")?;
        if !holding.contains(&(rule.as_str(), subject.as_str())) {
            out.push(Observation {
                rule,
                subject,
                condition: None,
            });
        }
    }
    Ok(out)
}

/// The anomaly rules' observations at `now`. When their sources cannot be read, none (a
/// firing anomaly alert then stays as it is), and the cause for the log.
pub async fn observe<P: Platform>(p: &P, now: i64) -> (Vec<Observation>, Vec<String>) {
    let (t, mut causes) = AnomalyThresholds::from_secrets(p.secrets());
    match judge_all(p, now, &t).await {
        Ok(out) => (out, causes),
        Err(e) => {
            causes.push(format!("anomaly signals unreadable: {e}"));
            (Vec::new(), causes)
        }
    }
}
