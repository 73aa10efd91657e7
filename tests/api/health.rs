//! FR-SYS-005 system health: the public liveness probe and the detailed health report.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, is_semver, on_own_server, Runtime, TestApp};

crate::contract_tests![
    get_health_is_ok_fr_sys_005,
    v1_health_reports_every_dependency_fr_sys_005,
    v1_health_degraded_is_503_fr_sys_005,
    key_services_report_their_errors_and_latency_fr_sys_005,
];

/// `GET /health` is a liveness probe without details: 200 `{"status":"ok"}` as JSON.
fn get_health_is_ok_fr_sys_005(app: &TestApp) -> Result<(), String> {
    let resp = app.get("/health")?;
    let body = resp.expect_json(200)?;
    ensure_eq!(body, json!({"status": "ok"}), "GET /health body");
    resp.request_id()?;
    Ok(())
}

/// `GET /v1/health` reports the version, the runtime and, per dependency, its backend on this
/// runtime, `ok`, and a whole-millisecond latency (FR-SYS-005: connectivity to dependencies).
fn v1_health_reports_every_dependency_fr_sys_005(app: &TestApp) -> Result<(), String> {
    let resp = app.get("/v1/health")?;
    let body = resp.expect_json(200)?;
    let text = resp.text();
    ensure_eq!(
        body["status"],
        json!("ok"),
        "GET /v1/health `status` in {text}"
    );
    let version = body["version"].as_str().unwrap_or_default();
    ensure!(
        is_semver(version),
        "GET /v1/health `version` must be a semver string, got {} in {text}",
        body["version"]
    );
    ensure_eq!(
        body["runtime"],
        json!(app.runtime.health_name()),
        "GET /v1/health `runtime` in {text}"
    );
    let deps = body["dependencies"]
        .as_object()
        .ok_or_else(|| format!("GET /v1/health has no `dependencies` object: {text}"))?;
    for (name, backend) in app.runtime.backends() {
        let dep = deps
            .get(name)
            .ok_or_else(|| format!("GET /v1/health `dependencies` lacks `{name}`: {text}"))?;
        ensure_eq!(
            dep["backend"],
            json!(backend),
            "dependencies.{name}.backend in {text}"
        );
        ensure_eq!(
            dep["status"],
            json!("ok"),
            "dependencies.{name}.status in {text}"
        );
        ensure!(
            dep.get("latency_ms").is_some_and(Value::is_u64),
            "dependencies.{name}.latency_ms must be an integer >= 0, got {} in {text}",
            dep["latency_ms"]
        );
    }
    Ok(())
}

/// A failing dependency turns `GET /v1/health` into 503 `{"status":"degraded"}` naming it,
/// and recovery turns it back (FR-SYS-005). The failure is real: a server of its own with fault
/// injection enabled makes every call to its key-value store fail (`PUT /__dev/faults`), on
/// Spin across instances. Without that setting the route does not exist.
fn v1_health_degraded_is_503_fr_sys_005(app: &TestApp) -> Result<(), String> {
    let resp = app.request(
        "PUT",
        "/__dev/faults",
        &[("content-type", "application/json")],
        Some(br#"{"fail":["kv"]}"#.to_vec()),
    )?;
    assert_problem(&resp, 404, "not-found")?;
    on_own_server(
        app.runtime,
        &[("EDGEPLANE_FAULT_INJECTION", "on")],
        degraded_then_recovered,
    )
}

fn set_faults(app: &TestApp, ports: &[&str]) -> Result<(), String> {
    let body = json!({ "fail": ports });
    app.request(
        "PUT",
        "/__dev/faults",
        &[("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )?
    .expect_json(200)?;
    Ok(())
}

fn degraded_then_recovered(app: &TestApp) -> Result<(), String> {
    app.get("/v1/health")?.expect_json(200)?;
    set_faults(app, &["kv"])?;
    for _ in 0..2 {
        let resp = app.get("/v1/health")?;
        let body = resp.expect_json(503)?;
        let text = resp.text();
        ensure_eq!(body["status"], json!("degraded"), "status in {text}");
        ensure_eq!(
            body["dependencies"]["kv"]["status"],
            json!("error"),
            "the key-value store in {text}"
        );
        ensure_eq!(
            body["dependencies"]["sql"]["status"],
            json!("ok"),
            "the SQL database in {text}"
        );
        ensure!(
            !text.contains("injected"),
            "the answer names no internal cause: {text}"
        );
    }
    set_faults(app, &[])?;
    let resp = app.get("/v1/health")?;
    let body = resp.expect_json(200)?;
    ensure_eq!(
        body["status"],
        json!("ok"),
        "after recovery: {}",
        resp.text()
    );
    Ok(())
}

/// `GET /v1/health/services` (operators and auditors) reports every key service over the last
/// 5 and 60 minutes, counted without a storage write per request: 200 refused introspections
/// show up as introspection's 4xx. Where an instance serves one request (Spin) one answer in 100
/// is recorded, counting for 100, so there the 4xx count is a multiple of 100 and, with 1,000
/// answers, not zero (the chance that none of 1,000 is drawn is 0.99^1000, about 4.3e-5).
fn key_services_report_their_errors_and_latency_fr_sys_005(app: &TestApp) -> Result<(), String> {
    let resp = app.get("/v1/health/services")?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    let auditor = app.operator_token("auditor", "health-auditor")?;
    let bearer = format!("Bearer {auditor}");
    let before = introspection_4xx(app, &bearer)?;
    let sent = if matches!(app.runtime, Runtime::Spin) {
        1_000
    } else {
        200
    };
    for _ in 0..sent {
        let resp = app.request(
            "POST",
            "/oauth/introspect",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"token=not-a-token".to_vec()),
        )?;
        resp.expect_status(401)?;
    }
    let after = introspection_4xx(app, &bearer)?;
    match app.runtime {
        Runtime::Spin => {
            ensure!(
                after % 100 == 0 && after > before,
                "Spin samples one 4xx in 100, counting 100: {before} then {after}"
            );
        }
        _ => ensure!(
            after >= before + sent,
            "{sent} refused introspections must be counted: {before} then {after}"
        ),
    }
    Ok(())
}

/// Introspection's 4xx over the last 5 minutes, checking the report's shape on the way.
fn introspection_4xx(app: &TestApp, bearer: &str) -> Result<u64, String> {
    let resp = app.get_with("/v1/health/services", &[("authorization", bearer)])?;
    let body = resp.expect_json(200)?;
    let text = resp.text();
    let services = body["services"]
        .as_array()
        .ok_or_else(|| format!("no `services` array: {text}"))?;
    let names: Vec<&str> = services
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    ensure_eq!(
        names,
        vec![
            "sign_in",
            "introspection",
            "ofrep",
            "ingestion",
            "admin",
            "other"
        ],
        "services in {text}"
    );
    for s in services {
        for window in ["last_5m", "last_60m"] {
            let w = &s[window];
            for field in ["requests", "errors", "client_errors"] {
                ensure!(
                    w[field].is_u64(),
                    "{window}.{field} must be a count in {text}"
                );
            }
            ensure!(w["error_rate"].is_number(), "{window}.error_rate in {text}");
            ensure!(
                w["p99_ms"].is_null() || w["p99_ms"].is_u64(),
                "{window}.p99_ms in {text}"
            );
        }
    }
    let intro = services
        .iter()
        .find(|s| s["service"] == json!("introspection"))
        .ok_or_else(|| format!("no introspection in {text}"))?;
    intro["last_5m"]["client_errors"]
        .as_u64()
        .ok_or_else(|| format!("introspection.last_5m.client_errors in {text}"))
}
