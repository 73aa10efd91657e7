//! Periodic jobs, run by the Workers cron trigger or, on runtimes without cron, by an
//! authenticated `POST /internal/scheduled`. Each job is idempotent: running it twice, or late,
//! is harmless.

use serde::Serialize;

use crate::ports::{Clock, Kv, Platform, Sql, Stmt};
use crate::tenants::TenantService;

/// What one job did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobReport {
    /// Stable job name.
    pub name: &'static str,
    /// `ok` or `error`.
    pub status: &'static str,
    /// How many items the job touched.
    pub affected: u64,
    /// General failure description (no internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// What a scheduled run did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScheduledReport {
    /// The cron expression that fired (or `manual`).
    pub cron: String,
    /// When the run started (unix ms).
    pub started_at_ms: i64,
    /// One entry per job, in run order.
    pub jobs: Vec<JobReport>,
}

impl ScheduledReport {
    /// True when every job succeeded.
    pub fn is_ok(&self) -> bool {
        self.jobs.iter().all(|j| j.status == "ok")
    }
}

/// KV key holding the time of the last scheduled run, read by operators' health checks.
pub const LAST_RUN_KEY: &str = "scheduled:last_run";

/// Most flag snapshots one run republishes (one KV write each, well inside the per-invocation
/// subrequest limit).
const FLAG_RECONCILE_BATCH: u32 = 200;

/// Runs every periodic job once. A failing job does not stop the others; failures are in the
/// report and their causes in the returned list (for the log).
pub async fn run<P: Platform>(p: &P, cron: &str) -> (ScheduledReport, Vec<String>) {
    run_at(p, cron, p.clock().now_ms()).await
}

/// Runs every periodic job as if the time were `now` (unix ms): what the cron trigger does at
/// the current time, and what development uses to exercise time-based rules (a purge 30 days
/// on) without waiting.
pub async fn run_at<P: Platform>(p: &P, cron: &str, now: i64) -> (ScheduledReport, Vec<String>) {
    let mut causes = Vec::new();
    let mut jobs = Vec::new();

    // Idempotency records are kept 24 h: long enough for any client retry.
    let expired = p
        .sql()
        .execute(Stmt::new("DELETE FROM idempotency_keys WHERE expires_at < ?1").bind(now))
        .await;
    jobs.push(job(
        "idempotency_keys.expire",
        expired,
        "delete failed",
        &mut causes,
    ));

    // FR-AUTH-004: queued mail (password resets) not yet delivered after its request's answer,
    // or whose delivery failed, is sent now; early, so a reset link is not held up by the
    // slower jobs below.
    let r = crate::mail::queue::deliver_due(p, now).await;
    jobs.push(job("mail_queue.deliver", r, "delivery failed", &mut causes));

    // FR-OPS-002: tenants past their 30-day grace period are purged, a few per run.
    let purged = TenantService::purge_due(p, now)
        .await
        .map(|r| r.purged.len() as u64);
    jobs.push(job("tenants.purge", purged, "purge failed", &mut causes));

    // FR-FLAG-002: republish flag snapshots whose KV write failed or raced.
    let reconciled = match crate::flags::snapshot::reconcile(p, FLAG_RECONCILE_BATCH).await {
        Ok((done, errors)) if errors.is_empty() => Ok(u64::from(done)),
        Ok((_, errors)) => Err(errors.join("; ")),
        Err(e) => Err(e.to_string()),
    };
    jobs.push(job(
        "flags.reconcile",
        reconciled,
        "republish failed",
        &mut causes,
    ));

    // NFR-SEC-004: yearly signing-key rotation; expired previous keys retired.
    let rotated = crate::tokens::keys::scheduled_rotation(p, now).await;
    jobs.push(job(
        "signing_keys.rotate",
        rotated,
        "rotation failed",
        &mut causes,
    ));
    // Billing and audit events: purged tenants' events (FR-OPS-002), the outbox forward
    // (FR-LOG-003), the archive flush, retention (FR-OPS-003).
    use crate::events::jobs as ev;
    let r = ev::purge_deleted_tenants(p).await;
    jobs.push(job("events.purge", r, "purge failed", &mut causes));
    let r = ev::forward_outbox(p, now).await;
    jobs.push(job(
        "audit_outbox.forward",
        r,
        "forward failed",
        &mut causes,
    ));
    let r = ev::flush_all(p, now).await.map(|f| f.events);
    jobs.push(job("events.flush", r, "flush failed", &mut causes));
    let r = ev::enforce_retention(p, now).await;
    jobs.push(job("events.retention", r, "retention failed", &mut causes));

    // FR-TENANT-001: pending invitations past their expiry become expired.
    let r = crate::users::invite::expire_due(p, now).await;
    jobs.push(job("invitations.expire", r, "expiry failed", &mut causes));
    // FR-AUTH-001 OIDC: expired login flows and old authorization codes.
    let r = crate::oidc::expire(p, now).await;
    jobs.push(job("oidc.expire", r, "delete failed", &mut causes));
    // ERR-RATE-429: attempts that no longer count. Any email typed into a sign-in or a
    // forgot-password form leaves one, account or not, so they must not pile up.
    let r = crate::throttle::expire(p, now).await;
    jobs.push(job("rate_limits.expire", r, "delete failed", &mut causes));

    let marker = serde_json::json!({ "cron": cron, "at": now }).to_string();
    let heartbeat = p
        .kv()
        .put(LAST_RUN_KEY, marker.as_bytes(), None)
        .await
        .map(|()| 1);
    jobs.push(job("heartbeat", heartbeat, "write failed", &mut causes));

    (
        ScheduledReport {
            cron: cron.to_owned(),
            started_at_ms: now,
            jobs,
        },
        causes,
    )
}

fn job<E: std::fmt::Display>(
    name: &'static str,
    r: Result<u64, E>,
    what: &'static str,
    causes: &mut Vec<String>,
) -> JobReport {
    match r {
        Ok(affected) => JobReport {
            name,
            status: "ok",
            affected,
            error: None,
        },
        Err(e) => {
            causes.push(format!("{name}: {e}"));
            JobReport {
                name,
                status: "error",
                affected: 0,
                error: Some(what),
            }
        }
    }
}
