//! Periodic jobs, run by the Workers cron trigger or, on runtimes without cron, by an
//! authenticated `POST /internal/scheduled`. Each job is idempotent: running it twice, or late,
//! is harmless.

use serde::Serialize;

use crate::journeys::{Journey, NoJourney};
use crate::ports::{Clock, Kv, KvError, Platform, Sql, SqlError, Stmt};
use crate::tenants;

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

/// [`run`] with the synthetic journey `journey` (NFR-MON-003): what the runtimes' schedulers
/// run, through `crate::http::run_scheduled`.
pub async fn run_with<P: Platform, J: Journey<P>>(
    p: &P,
    cron: &str,
    now: i64,
    journey: &J,
) -> (ScheduledReport, Vec<String>) {
    run_jobs(p, cron, now, journey).await
}

/// Runs every periodic job as if the time were `now` (unix ms): what the cron trigger does at
/// the current time, and what development uses to exercise time-based rules (a purge 30 days
/// on) without waiting.
pub async fn run_at<P: Platform>(p: &P, cron: &str, now: i64) -> (ScheduledReport, Vec<String>) {
    run_jobs(p, cron, now, &NoJourney).await
}

/// Every job in order, with `journey` as the journey.
async fn run_jobs<P: Platform, J: Journey<P>>(
    p: &P,
    cron: &str,
    now: i64,
    journey: &J,
) -> (ScheduledReport, Vec<String>) {
    let mut run = JobRun::default();

    // NFR-OPS-004: the day's backup first, so it shows the database as the day's changes left
    // it, before this run's jobs change it further.
    run_backup_jobs(p, cron, now, &mut run).await;

    // Idempotency records are kept 24 h: long enough for any client retry.
    let expired = expire_idempotency_keys(p, now).await;
    run.record("idempotency_keys.expire", expired, "delete failed");

    // FR-AUTH-004: queued mail (password resets) not yet delivered after its request's answer,
    // or whose delivery failed, is sent now; early, so a reset link is not held up by the
    // slower jobs below.
    let r = crate::mail::queue::deliver_due(p, now).await;
    run.record("mail_queue.deliver", r, "delivery failed");

    // NFR-MON-003: the synthetic journey, just before the alerts judge its result (and
    // before the event jobs archive the event it ingests).
    run_journey(p, journey, now, &mut run).await;

    // NFR-MON-002: the alert rules over the health probes, request metrics, the journey and
    // the event pipeline, and the due notices; early, so a slow job below does not hold up a
    // page.
    run_alerts(p, now, &mut run).await;

    // FR-OPS-002: tenants past their 30-day grace period are purged, a few per run.
    let purged = tenants::purge_due(p, now)
        .await
        .map(|r| r.purged.len() as u64);
    run.record("tenants.purge", purged, "purge failed");

    // FR-FLAG-002: republish flag snapshots whose KV write failed or raced.
    let reconciled = reconcile_flag_snapshots(p).await;
    run.record("flags.reconcile", reconciled, "republish failed");

    // NFR-SEC-004: yearly signing-key rotation; expired previous keys retired.
    let rotated = crate::tokens::keys::scheduled_rotation(p, now).await;
    run.record("signing_keys.rotate", rotated, "rotation failed");

    // Platform PRD: the managed apps' own health checks (on Workers also every few seconds
    // from the poller's alarm).
    let r = crate::apps::health::poll(p).await;
    run.record("apps.health_poll", r, "poll failed");

    run_event_jobs(p, now, &mut run).await;
    run_expiry_jobs(p, now, &mut run).await;

    let heartbeat = write_heartbeat(p, cron, now).await;
    run.record("heartbeat", heartbeat, "write failed");

    (
        ScheduledReport {
            cron: cron.to_owned(),
            started_at_ms: now,
            jobs: run.jobs,
        },
        run.causes,
    )
}

/// The jobs of one run so far, and the causes of their failures (for the log).
#[derive(Default)]
struct JobRun {
    /// One entry per job, in run order.
    jobs: Vec<JobReport>,
    /// `name: cause` of each failed job.
    causes: Vec<String>,
}

impl JobRun {
    /// Adds the outcome `r` of job `name`; `what` is the general description of its failure.
    fn record<E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        r: Result<u64, E>,
        what: &'static str,
    ) {
        self.jobs.push(job(name, r, what, &mut self.causes));
    }
}

/// NFR-OPS-004: the day's backup of the database when this run is due to take it (parts
/// written; 0 when the day had one), then the backups past their retention (objects deleted).
async fn run_backup_jobs<P: Platform>(p: &P, cron: &str, now: i64, run: &mut JobRun) {
    if !crate::backup::due(cron, now) {
        return;
    }
    let r = crate::backup::daily(p, now)
        .await
        .map(|m| m.map_or(0, |m| m.parts.len() as u64));
    run.record("backup.write", r, "backup failed");
    let r = crate::backup::expire(p, now).await;
    run.record("backup.expire", r, "expiry failed");
}

/// The `journeys.run` job; counts the steps that passed. A failed journey does not fail the
/// job (it is recorded, and the `journey` alert fires on it): its cause goes to the log. Only
/// a record that cannot be written fails it.
async fn run_journey<P: Platform, J: Journey<P>>(p: &P, journey: &J, now: i64, run: &mut JobRun) {
    let r = journey.run(p, now).await.map(|outcome| {
        let Some(outcome) = outcome else { return 0 };
        if let Some(cause) = outcome.cause {
            run.causes.push(format!("journeys.run: failed at {cause}"));
        }
        outcome.run.steps.iter().filter(|s| s.ok).count() as u64
    });
    run.record("journeys.run", r, "journey not recorded");
}

/// The `alerts.evaluate` job; counts the notices delivered. Failed deliveries (retried at the next
/// run) and unreadable sources do not fail the job: their causes go to the log.
async fn run_alerts<P: Platform>(p: &P, now: i64, run: &mut JobRun) {
    let r = crate::alerts::evaluate(p, now).await.map(|outcome| {
        run.causes.extend(
            outcome
                .causes
                .iter()
                .map(|c| format!("alerts.evaluate: {c}")),
        );
        outcome.delivered
    });
    run.record("alerts.evaluate", r, "evaluation failed");
}

/// Deletes the idempotency records expired by `now`; returns how many.
async fn expire_idempotency_keys<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    p.sql()
        .execute(Stmt::new("DELETE FROM idempotency_keys WHERE expires_at < ?1").bind(now))
        .await
}

/// Republishes up to [`FLAG_RECONCILE_BATCH`] flag snapshots; any failed republish fails the
/// job, with every cause.
async fn reconcile_flag_snapshots<P: Platform>(p: &P) -> Result<u64, String> {
    match crate::flags::snapshot::reconcile(p, FLAG_RECONCILE_BATCH).await {
        Ok((done, errors)) if errors.is_empty() => Ok(u64::from(done)),
        Ok((_, errors)) => Err(errors.join("; ")),
        Err(e) => Err(e.to_string()),
    }
}

/// Billing and audit events: purged tenants' events (FR-OPS-002), the outbox forward
/// (FR-LOG-003), the archive flush, retention (FR-OPS-003).
async fn run_event_jobs<P: Platform>(p: &P, now: i64, run: &mut JobRun) {
    use crate::events::jobs as ev;
    let r = ev::purge_deleted_tenants(p).await;
    run.record("events.purge", r, "purge failed");
    let r = ev::forward_outbox(p, now).await;
    run.record("audit_outbox.forward", r, "forward failed");
    let r = ev::flush_all(p, now).await.map(|f| f.events);
    run.record("events.flush", r, "flush failed");
    let r = ev::enforce_retention(p, now).await;
    run.record("events.retention", r, "retention failed");
}

/// Rows that stop counting with time: invitations, OIDC flows and codes, rate-limit attempts.
async fn run_expiry_jobs<P: Platform>(p: &P, now: i64, run: &mut JobRun) {
    // FR-TENANT-001: pending invitations past their expiry become expired.
    let r = crate::users::invite::expire_due(p, now).await;
    run.record("invitations.expire", r, "expiry failed");
    // FR-AUTH-001 OIDC: expired login flows and old authorization codes.
    let r = crate::oidc::expire(p, now).await;
    run.record("oidc.expire", r, "delete failed");
    // The web consoles' ended sessions and abandoned sign-ins.
    let r = crate::sessions::console::expire(p, now).await;
    run.record("console_sessions.expire", r, "delete failed");
    // ERR-RATE-429: attempts that no longer count. Any email typed into a sign-in or a
    // forgot-password form leaves one, account or not, so they must not pile up.
    let r = crate::throttle::expire(p, now).await;
    run.record("rate_limits.expire", r, "delete failed");
    // FR-SYS-005: request metrics are kept seven days.
    let r = crate::metrics::expire(p, now).await;
    run.record("request_metrics.expire", r, "delete failed");
    // NFR-MON-003: journey runs are kept seven days.
    let r = crate::journeys::store::expire(p, now).await;
    run.record("journey_runs.expire", r, "delete failed");
    // NFR-MON-001: the API keys' finished hours become their baselines; old signals go.
    let r = crate::anomalies::upkeep(p, now).await;
    run.record("anomalies.upkeep", r, "upkeep failed");
    // NFR-SEC-006: sign-in risk decisions are kept 90 days (the baseline's reach).
    let r = crate::risk::prune(p, now).await;
    run.record("sign_in_attempts.prune", r, "delete failed");
}

/// Writes the time of this run under [`LAST_RUN_KEY`]; counts 1 when written.
async fn write_heartbeat<P: Platform>(p: &P, cron: &str, now: i64) -> Result<u64, KvError> {
    let marker = serde_json::json!({ "cron": cron, "at": now }).to_string();
    p.kv()
        .put(LAST_RUN_KEY, marker.as_bytes(), None)
        .await
        .map(|()| 1)
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
