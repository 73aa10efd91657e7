//! The journeys' record (`journey_runs`): each run with its steps' outcomes and durations, kept
//! [`RETENTION_MS`] and pruned by the scheduled job.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ports::{Platform, Row, Sql, SqlError, Stmt};

/// How long runs are kept: 7 days.
pub const RETENTION_MS: i64 = 7 * 24 * 60 * 60_000;

/// Most runs `GET /v1/health/journeys` shows: a day at one run per 5 minutes.
pub const RECENT_RUNS: u32 = 288;

/// One step of a run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepResult {
    /// The step: `setup`, `sign_in`, `second_factor`, `introspect`, `evaluate_flag`, `ingest`,
    /// `read_back`, `sign_out`, and once an hour `provision` and `purge`.
    pub step: String,
    /// Whether it did what it should.
    pub ok: bool,
    /// How long it took (ms; on Workers, the time spent waiting on storage).
    pub duration_ms: i64,
    /// What went wrong, in general terms (a status and problem type, never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One run of the synthetic journey (NFR-MON-003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JourneyRun {
    /// The run's id (also the request id prefix of its requests).
    pub id: String,
    /// When it started (unix ms).
    pub started_at: i64,
    /// How long the whole run took (ms).
    pub duration_ms: i64,
    /// Whether every step passed.
    pub ok: bool,
    /// The first step that failed; null when the run passed.
    pub failed_step: Option<String>,
    /// Whether this was the hourly run that also provisioned and purged a throwaway tenant.
    pub lifecycle: bool,
    /// Every step attempted, in order (a run stops at its first failed step).
    pub steps: Vec<StepResult>,
}

/// The statement recording a run.
pub fn insert(run: &JourneyRun) -> Stmt {
    let steps = serde_json::to_string(&run.steps).unwrap_or_else(|_| "[]".to_owned());
    Stmt::new(
        "INSERT INTO journey_runs (id, started_at, duration_ms, ok, failed_step, lifecycle, steps_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(run.id.as_str())
    .bind(run.started_at)
    .bind(run.duration_ms)
    .bind(run.ok)
    .bind(run.failed_step.as_deref())
    .bind(run.lifecycle)
    .bind(steps)
}

fn from_row(r: &Row) -> Result<JourneyRun, SqlError> {
    let steps = r.text("steps_json")?;
    Ok(JourneyRun {
        id: r.text("id")?,
        started_at: r.i64("started_at")?,
        duration_ms: r.i64("duration_ms")?,
        ok: r.i64("ok")? == 1,
        failed_step: r.opt_text("failed_step")?,
        lifecycle: r.i64("lifecycle")? == 1,
        steps: serde_json::from_str(&steps)
            .map_err(|e| SqlError::Decode(format!("journey_runs.steps_json: {e}")))?,
    })
}

/// The latest `limit` runs, newest first.
pub async fn recent<P: Platform>(p: &P, limit: u32) -> Result<Vec<JourneyRun>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, started_at, duration_ms, ok, failed_step, lifecycle, steps_json
                 FROM journey_runs ORDER BY started_at DESC, id DESC LIMIT ?1",
            )
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// The latest run, if any.
pub async fn latest<P: Platform>(p: &P) -> Result<Option<JourneyRun>, SqlError> {
    Ok(recent(p, 1).await?.into_iter().next())
}

/// The latest failed run within the retention, if any.
pub async fn last_failure<P: Platform>(p: &P) -> Result<Option<JourneyRun>, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT id, started_at, duration_ms, ok, failed_step, lifecycle, steps_json
             FROM journey_runs WHERE ok = 0 ORDER BY started_at DESC, id DESC LIMIT 1",
        ))
        .await?;
    rows.first().map(from_row).transpose()
}

/// Whether the hourly provision-and-purge is due at `now`: no run of this UTC hour did it.
pub async fn lifecycle_due<S: Sql>(sql: &S, now: i64) -> Result<bool, SqlError> {
    let hour_start = now - now.rem_euclid(60 * 60_000);
    let rows = sql
        .query(
            Stmt::new(
                "SELECT 1 AS done FROM journey_runs WHERE lifecycle = 1 AND started_at >= ?1 LIMIT 1",
            )
            .bind(hour_start),
        )
        .await?;
    Ok(rows.is_empty())
}

/// Deletes the runs older than [`RETENTION_MS`] at `now`; returns how many.
pub async fn expire<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    p.sql()
        .execute(
            Stmt::new("DELETE FROM journey_runs WHERE started_at < ?1").bind(now - RETENTION_MS),
        )
        .await
}
