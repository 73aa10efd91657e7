//! The synthetic journeys through the API (NFR-MON-003, `crate::journeys`): [`ApiJourney`],
//! whose steps are requests through the whole request handling ([`super::handle_synthetic`]),
//! and `GET /v1/health/journeys`, the recent runs.

mod lifecycle;
mod steps;

#[cfg(test)]
mod tests;

use ::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::reply::no_store;
use super::{json, ApiError, Ctx, Response};
use crate::ids;
use crate::journeys::{canary, store, Journey, JourneyRun, Outcome, StepResult};
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// Runs the answer shows: four hours at one run per 5 minutes.
pub const SHOWN_RUNS: u32 = 48;

/// Body of `GET /v1/health/journeys`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JourneyReport)]
pub(super) struct JourneyReport {
    /// When it was read (unix ms).
    generated_at_ms: i64,
    /// The latest runs, newest first, each with its steps and their durations.
    runs: Vec<JourneyRun>,
    /// The latest failed run within the 7 days runs are kept; null when none failed.
    last_failure: Option<JourneyRun>,
}

/// `GET /v1/health/journeys` (operators, auditors).
pub(super) async fn list<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<Response, ApiError> {
    let unavailable = |e: crate::ports::SqlError| ApiError::unavailable(e.to_string());
    let runs = store::recent(ctx.platform, SHOWN_RUNS)
        .await
        .map_err(unavailable)?;
    let last_failure = store::last_failure(ctx.platform)
        .await
        .map_err(unavailable)?;
    let body = JourneyReport {
        generated_at_ms: ctx.platform.clock().now_ms(),
        runs,
        last_failure,
    };
    Ok(no_store(json::response(StatusCode::OK, &body)?))
}

/// The journey through this layer: what the scheduled run performs on every runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJourney;

impl<P: Platform> Journey<P> for ApiJourney {
    async fn run(&self, p: &P, now: i64) -> Result<Option<Outcome>, SqlError> {
        run(p, now).await
    }
}

/// The steps of a run so far.
struct Recorder<'a, P: Platform> {
    p: &'a P,
    steps: Vec<StepResult>,
}

impl<'a, P: Platform> Recorder<'a, P> {
    fn new(p: &'a P) -> Self {
        Recorder {
            p,
            steps: Vec::new(),
        }
    }

    /// Records a step that started at `started` (clock ms) with its result; `Some` when it
    /// passed.
    fn done<T>(&mut self, step: &str, started: i64, r: Result<T, String>) -> Option<T> {
        let duration_ms = self.p.clock().now_ms().saturating_sub(started).max(0);
        let (ok, error, value) = match r {
            Ok(v) => (true, None, Some(v)),
            Err(e) => (false, Some(e), None),
        };
        self.steps.push(StepResult {
            step: step.to_owned(),
            ok,
            duration_ms,
            error,
        });
        value
    }

    fn now(&self) -> i64 {
        self.p.clock().now_ms()
    }

    fn failed(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| !s.ok)
    }
}

/// One journey at `now`, the hourly provision-and-purge when due, and its record.
async fn run<P: Platform>(p: &P, now: i64) -> Result<Option<Outcome>, SqlError> {
    if !canary::configured(p) {
        return Ok(None);
    }
    let id = ids::new_id(p.random());
    let rid = format!("journey-{id}");
    let started = p.clock().now_ms();
    let mut rec = Recorder::new(p);
    journey(p, &mut rec, &id, &rid).await;
    let due = rec.failed().is_none() && store::lifecycle_due(p.sql(), now).await.unwrap_or(false);
    if due {
        hourly(p, &mut rec, now, &rid).await;
    }
    let failed = rec.failed().cloned();
    let run = JourneyRun {
        id,
        started_at: now,
        duration_ms: p.clock().now_ms().saturating_sub(started).max(0),
        ok: failed.is_none(),
        failed_step: failed.as_ref().map(|s| s.step.clone()),
        lifecycle: due,
        steps: rec.steps,
    };
    p.sql().execute(store::insert(&run)).await?;
    Ok(Some(Outcome {
        run,
        cause: failed.and_then(|s| s.error.map(|e| format!("{}: {e}", s.step))),
    }))
}

/// The 5-minute journey; stops at the first failed step.
async fn journey<P: Platform>(p: &P, rec: &mut Recorder<'_, P>, id: &str, rid: &str) {
    let t = rec.now();
    let r = setup(p).await;
    let Some(c) = rec.done("setup", t, r) else {
        return;
    };
    let t = rec.now();
    let r = steps::sign_in(p, &c, rid).await;
    let Some(mfa_token) = rec.done("sign_in", t, r) else {
        return;
    };
    let t = rec.now();
    let r = steps::second_factor(p, &c, &mfa_token, rid).await;
    let Some(token) = rec.done("second_factor", t, r) else {
        return;
    };
    let t = rec.now();
    let r = steps::introspect(p, &c, &token, rid).await;
    if rec.done("introspect", t, r).is_none() {
        return;
    }
    let t = rec.now();
    let r = steps::evaluate_flag(p, &c, rid).await;
    if rec.done("evaluate_flag", t, r).is_none() {
        return;
    }
    let event_id = format!("journey-{id}");
    let t = rec.now();
    let r = steps::ingest(p, &c, &event_id, rid).await;
    if rec.done("ingest", t, r).is_none() {
        return;
    }
    let t = rec.now();
    let r = steps::read_back(p, &c, &event_id, rid).await;
    if rec.done("read_back", t, r).is_none() {
        return;
    }
    let t = rec.now();
    let r = steps::sign_out(p, &token, rid).await;
    rec.done("sign_out", t, r);
}

/// The canary, created on the first run, with its TOTP replay marker cleared (see
/// `crate::journeys`).
async fn setup<P: Platform>(p: &P) -> Result<canary::Canary, String> {
    let c = canary::ensure(p)
        .await
        .map_err(|e| e.general().to_owned())?;
    p.sql()
        .execute(
            Stmt::new("UPDATE users SET totp_last_step = NULL WHERE id = ?1 AND tenant_id = ?2")
                .bind(c.user_id.as_str())
                .bind(c.tenant_id.as_str()),
        )
        .await
        .map_err(|_| "storage failed".to_owned())?;
    Ok(c)
}

/// The hourly provision and purge of a throwaway canary tenant.
async fn hourly<P: Platform>(p: &P, rec: &mut Recorder<'_, P>, now: i64, rid: &str) {
    let t = rec.now();
    let r = lifecycle::provision(p, rid).await;
    let Some(tenant) = rec.done("provision", t, r) else {
        return;
    };
    let t = rec.now();
    let r = lifecycle::purge(p, &tenant, now, rid).await;
    rec.done("purge", t, r);
}
