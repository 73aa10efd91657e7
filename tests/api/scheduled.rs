//! Periodic jobs: `POST /internal/scheduled` (Spin's replacement for cron, bearer-protected)
//! and, on Workers, the cron triggers of wrangler.toml.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, repo_root, TestApp};

crate::contract_tests![
    scheduled_without_authorization_is_401_err_auth_401,
    scheduled_with_wrong_secret_is_401_err_auth_401,
    scheduled_with_secret_runs_jobs,
    scheduled_malformed_json_is_400_err_val_400,
    scheduled_wrong_content_type_is_415,
    scheduled_oversized_body_is_413,
    cron_triggers_run_on_workers,
];

const PATH: &str = "/internal/scheduled";

fn cron_body() -> Value {
    json!({"cron": "*/5 * * * *"})
}

/// No `Authorization`: 401 problem `invalid-credentials`, code ERR-AUTH-401, and no jobs run.
fn scheduled_without_authorization_is_401_err_auth_401(app: &TestApp) -> Result<(), String> {
    let resp = app.post_json(PATH, &cron_body(), &[])?;
    let body = assert_problem(&resp, 401, "invalid-credentials")?;
    ensure_eq!(
        body["code"],
        Value::from("ERR-AUTH-401"),
        "POST {PATH} problem `code`"
    );
    Ok(())
}

/// Anything but `Bearer <cron_secret>` exactly is a 401: a wrong secret, the secret with a
/// character more or less (prefix comparison bugs), an empty one, another scheme.
fn scheduled_with_wrong_secret_is_401_err_auth_401(app: &TestApp) -> Result<(), String> {
    let secret = app.cron_secret.as_str();
    let shorter = &secret[..secret.len().saturating_sub(1)];
    let wrong = [
        "Bearer wrong-secret".to_owned(),
        format!("Bearer {secret}x"),
        format!("Bearer {shorter}"),
        "Bearer ".to_owned(),
        format!("Basic {secret}"),
        secret.to_owned(),
    ];
    for authorization in &wrong {
        let resp = app.post_json(PATH, &cron_body(), &[("authorization", authorization)])?;
        let shown = authorization.replace(secret, "<cron_secret>");
        let body = assert_problem(&resp, 401, "invalid-credentials")
            .map_err(|e| format!("Authorization {shown:?}: {e}"))?;
        ensure_eq!(
            body["code"],
            Value::from("ERR-AUTH-401"),
            "Authorization {shown:?}: problem `code`"
        );
    }
    Ok(())
}

/// `Bearer <cron_secret>` with `{"cron": ...}` runs the jobs: 200 JSON echoing the cron and
/// listing the jobs run.
fn scheduled_with_secret_runs_jobs(app: &TestApp) -> Result<(), String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let resp = app.post_json(PATH, &cron_body(), &[("authorization", &auth)])?;
    let body = resp.expect_json(200)?;
    ensure_eq!(
        body["cron"],
        json!("*/5 * * * *"),
        "POST {PATH} `cron` in {}",
        resp.text()
    );
    ensure!(
        body["jobs"].is_array(),
        "POST {PATH} must list `jobs` as an array: {}",
        resp.text()
    );
    Ok(())
}

/// A body that is not JSON: 400 problem `invalid-input` whose detail says it is about JSON.
fn scheduled_malformed_json_is_400_err_val_400(app: &TestApp) -> Result<(), String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let resp = app.request("POST", PATH, &headers, Some(b"{\"cron\":".to_vec()))?;
    let body = assert_problem(&resp, 400, "invalid-input")?;
    let detail = body["detail"].as_str().unwrap_or_default();
    ensure!(
        detail.to_ascii_lowercase().contains("json"),
        "400 detail should say the body is not valid JSON, got {detail:?}"
    );
    Ok(())
}

/// A body that is not `application/json`: 415 problem `invalid-input`.
fn scheduled_wrong_content_type_is_415(app: &TestApp) -> Result<(), String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "text/plain"),
    ];
    let resp = app.request(
        "POST",
        PATH,
        &headers,
        Some(cron_body().to_string().into_bytes()),
    )?;
    assert_problem(&resp, 415, "invalid-input")?;
    Ok(())
}

/// A body over 1 MiB: 413 problem `invalid-input`, even though it is otherwise valid JSON.
fn scheduled_oversized_body_is_413(app: &TestApp) -> Result<(), String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let padding = "x".repeat(1024 * 1024);
    let body = json!({"cron": "*/5 * * * *", "padding": padding}).to_string();
    let resp = app.request_early_response(
        "POST",
        PATH,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body.into_bytes(),
    )?;
    assert_problem(&resp, 413, "invalid-input")?;
    Ok(())
}

/// Each cron of wrangler.toml's `[triggers]` runs the worker's scheduled handler successfully
/// (fired through Miniflare's `/cdn-cgi/handler/scheduled`, as wrangler's `--test-scheduled`).
fn cron_triggers_run_on_workers(app: &TestApp) -> Result<(), String> {
    let crons = wrangler_crons()?;
    ensure!(!crons.is_empty(), "wrangler.toml declares no crons");
    for cron in &crons {
        let query: String = cron
            .replace(' ', "+")
            .replace('/', "%2F")
            .replace('*', "%2A");
        let resp = app.get(&format!("/cdn-cgi/handler/scheduled?cron={query}"))?;
        ensure!(
            resp.status == 200 && resp.text() == "ok",
            "scheduled handler for cron {cron:?} did not succeed: {} (see the server log)",
            resp.excerpt()
        );
    }
    Ok(())
}

/// The `crons = [...]` array of wrangler.toml (a one-line array of strings, valid JSON).
fn wrangler_crons() -> Result<Vec<String>, String> {
    let path = repo_root().join("wrangler.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("crons") && l.contains('='))
        .ok_or_else(|| "wrangler.toml has no `crons = [...]` line".to_owned())?;
    let array = line
        .split_once('=')
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    serde_json::from_str(array)
        .map_err(|e| format!("cannot read wrangler.toml crons {array:?}: {e}"))
}
