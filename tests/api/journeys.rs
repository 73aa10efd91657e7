//! NFR-MON-003 synthetic journeys: a scheduled run performs one through the real API, and
//! operators and auditors read its steps and their timings at `GET /v1/health/journeys` (the
//! failing and recovering journey, with its alert, is in `alerts`).

use serde_json::{json, Value};

use crate::helpers::{assert_problem, send, str_of, TestApp};

crate::contract_tests![scheduled_run_performs_a_journey_with_timed_steps_nfr_mon_003];

/// The steps of the 5-minute journey, in order.
pub const STEPS: [&str; 8] = [
    "setup",
    "sign_in",
    "second_factor",
    "introspect",
    "evaluate_flag",
    "ingest",
    "read_back",
    "sign_out",
];

/// Runs the scheduled jobs and returns the report, checking the journey job ran.
pub fn run_jobs(app: &TestApp) -> Result<Value, String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let resp = app.post_json(
        "/internal/scheduled",
        &json!({}),
        &[("authorization", &auth)],
    )?;
    let report = resp.json()?;
    let job = report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == json!("journeys.run")))
        .cloned()
        .ok_or_else(|| format!("no journeys.run job in {}", resp.text()))?;
    ensure_eq!(
        job["status"],
        json!("ok"),
        "journeys.run in {}",
        resp.text()
    );
    Ok(report)
}

/// The journey runs as `GET /v1/health/journeys` shows them.
pub fn journeys(app: &TestApp, bearer: &str) -> Result<Value, String> {
    let resp = send(app, "GET", "/v1/health/journeys", Some(bearer), None)?;
    ensure_eq!(
        resp.header("cache-control"),
        Some("no-store"),
        "cache-control"
    );
    resp.expect_json(200)
}

/// One scheduled run performs a journey whose every step passed, each timed; auditors read it,
/// tenant callers and anonymous ones cannot; the service health view carries the latest run;
/// the canary tenant is not in the operators' tenant listing.
fn scheduled_run_performs_a_journey_with_timed_steps_nfr_mon_003(
    app: &TestApp,
) -> Result<(), String> {
    let auditor = app.operator_token("auditor", "journeys-auditor")?;
    let op = app.operator_token("operator", "journeys-operator")?;
    assert_problem(
        &send(app, "GET", "/v1/health/journeys", None, None)?,
        401,
        "invalid-credentials",
    )?;
    run_jobs(app)?;
    let report = journeys(app, &auditor)?;
    let run = report["runs"]
        .get(0)
        .cloned()
        .ok_or_else(|| format!("no run: {report}"))?;
    ensure_eq!(run["ok"], json!(true), "the latest run passed: {run}");
    ensure_eq!(run["failed_step"], Value::Null, "{run}");
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = steps.iter().map(|s| str_of(&s["step"])).collect();
    ensure!(
        names.len() >= STEPS.len() && names[..STEPS.len()] == STEPS.map(str::to_owned),
        "the steps in order: {names:?}"
    );
    for s in &steps {
        ensure_eq!(s["ok"], json!(true), "{s}");
        ensure!(
            s["duration_ms"]
                .as_i64()
                .is_some_and(|ms| (0..30_000).contains(&ms)),
            "a duration in ms: {s}"
        );
    }
    ensure!(
        run["duration_ms"].is_i64() && run["started_at"].is_i64(),
        "{run}"
    );

    let services =
        send(app, "GET", "/v1/health/services", Some(&auditor), None)?.expect_json(200)?;
    ensure_eq!(
        services["latest_journey"]["id"],
        run["id"],
        "the health view's latest journey"
    );
    let tenants = send(
        app,
        "GET",
        "/v1/tenants?q=edgeplane-canary",
        Some(&op),
        None,
    )?
    .expect_json(200)?;
    ensure!(
        tenants["items"].as_array().is_some_and(Vec::is_empty),
        "the canary is not listed: {tenants}"
    );
    Ok(())
}
