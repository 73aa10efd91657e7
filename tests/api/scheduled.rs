//! Periodic jobs: `POST /internal/scheduled` (Spin's replacement for cron, bearer-protected)
//! and, on Workers, the cron triggers of wrangler.toml.

use serde_json::{json, Value};

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::helpers::{
    assert_problem, repo_root, send, spawn_app_on, spawn_app_with, str_of, suffix, Server, TestApp,
};

crate::contract_tests![
    scheduled_without_authorization_is_401_err_auth_401,
    scheduled_with_wrong_secret_is_401_err_auth_401,
    scheduled_with_secret_runs_jobs,
    scheduled_malformed_json_is_400_err_val_400,
    scheduled_wrong_content_type_is_415,
    scheduled_oversized_body_is_413,
    cron_triggers_run_on_workers,
    backup_restores_into_a_fresh_database_nfr_ops_004,
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

/// The master key both deployments of the restore drill share (a restore needs the key that
/// sealed the backup, and the restored deployment the key that sealed its signing keys).
const DRILL_MASTER_KEY: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
const DRILL_PASSWORD: &str = "drill passphrase of some length";
const DAILY_CRON: &str = "17 3 * * *";

/// NFR-OPS-004 restore drill: a deployment with a tenant, its owner, a flag and an app key takes
/// its daily backup into R2; `scripts/restore-d1.mjs` checks and opens it into SQL, `wrangler d1
/// execute --local` applies that to a fresh state, and a second deployment started on it takes
/// its own backup. Both manifests list the same tables with the same row counts and content
/// hashes, and the owner signs in on the restored deployment.
fn backup_restores_into_a_fresh_database_nfr_ops_004(app: &TestApp) -> Result<(), String> {
    let vars = [("MASTER_KEY", DRILL_MASTER_KEY)];
    let work = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let original = spawn_app_with(app.runtime, &vars)?;
    let drilled = drill_original(&original, work.path());
    let report = original.stop(drilled.is_err());
    let (domain, email, before) = match (drilled, report.note) {
        (Err(e), Some(note)) => return Err(format!("{e}\n{note}")),
        (r, _) => r?,
    };

    let restored_state = work.path().join("restored");
    run(Command::new(repo_root().join("node_modules/.bin/wrangler"))
        .args(["d1", "execute", "DB", "--local", "--persist-to"])
        .arg(&restored_state)
        .arg("--file")
        .arg(work.path().join("restore.sql"))
        .arg("--yes"))?;
    let restored = spawn_app_on(app.runtime, &restored_state, &vars)?;
    let checked = check_restored(&restored, &restored_state, &domain, &email, &before);
    let report = restored.stop(checked.is_err());
    match (checked, report.note) {
        (Err(e), Some(note)) => Err(format!("{e}\n{note}")),
        (r, _) => r,
    }
}

/// Seeds the original deployment, takes its backup, and writes `restore.sql` into `work`.
/// Returns the tenant's domain, the owner's email and the manifest.
fn drill_original(server: &Server, work: &Path) -> Result<(String, String, Value), String> {
    let app = &server.app;
    let op = app.operator_token("operator", "e2e-backup-operator")?;
    let domain = format!("drill-{}", suffix()?);
    let email = format!("Owner.O'Neil@{domain}.example");
    let registered = send(
        app,
        "POST",
        "/v1/apps",
        Some(&op),
        Some(&json!({"name": format!("Drill {domain}")})),
    )?
    .expect_json(201)?;
    let app_id = str_of(&registered["id"]);
    let body = json!({"name": "Drill; \"Restore\" GmbH", "domain": domain, "plan": "pro",
                      "owner_email": email, "apps": [app_id]});
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let tenant = str_of(&created["tenant"]["id"]);
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .unwrap_or_default();
    let accept = json!({"token": token, "password": DRILL_PASSWORD});
    send(app, "POST", "/v1/invitations/accept", None, Some(&accept))?.expect_status(200)?;
    let flag = json!({"type": "string", "value": "it's ; -- \"quoted\"\nü"});
    let path = format!("/v1/tenants/{tenant}/flags/drill-banner");
    let resp = send(app, "PUT", &path, Some(&op), Some(&flag))?;
    ensure!(
        resp.status == 200 || resp.status == 201,
        "PUT flag: {}",
        resp.excerpt()
    );
    let key = json!({"scopes": ["flags:read"], "tenant_id": tenant});
    send(
        app,
        "POST",
        &format!("/v1/apps/{app_id}/keys"),
        Some(&op),
        Some(&key),
    )?
    .expect_json(201)?;

    let started = Instant::now();
    let report = run_daily(app)?;
    let took = started.elapsed();
    let state = server
        .state_dir()
        .ok_or("the original server has no state directory")?;
    let manifest = restore_script(&state, &["--manifest"])?;
    let manifest: Value =
        serde_json::from_str(&manifest).map_err(|e| format!("manifest: {e}: {manifest}"))?;
    eprintln!(
        "    backup: {} parts, {} bytes of SQL, {} stored, in {took:?} ({})",
        manifest["parts"].as_array().map_or(0, Vec::len),
        manifest["sql_bytes"],
        manifest["parts"].as_array().map_or(0, |p| p
            .iter()
            .filter_map(|x| x["stored_bytes"].as_u64())
            .sum::<u64>()),
        report
    );
    ensure_eq!(
        manifest["sealed"],
        json!(true),
        "the backup is sealed: {manifest}"
    );
    ensure_eq!(
        manifest["unlisted_tables"],
        json!([]),
        "every table of D1 is known to the dump: {manifest}"
    );
    let out = work.join("restore.sql");
    restore_script(&state, &["--out", &out.to_string_lossy()])?;
    Ok((domain, email, manifest))
}

/// Checks the restored deployment against the original's manifest.
fn check_restored(
    server: &Server,
    state: &Path,
    domain: &str,
    email: &str,
    before: &Value,
) -> Result<(), String> {
    let app = &server.app;
    run_daily(app)?;
    let after = restore_script(state, &["--manifest"])?;
    let after: Value = serde_json::from_str(&after).map_err(|e| format!("manifest: {e}"))?;
    let tables = |m: &Value| -> Vec<(String, u64, String)> {
        m["tables"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            str_of(&t["name"]),
                            t["rows"].as_u64().unwrap_or(0),
                            str_of(&t["sha256"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (b, a) = (tables(before), tables(&after));
    ensure!(
        b.iter().any(|(n, rows, _)| n == "users" && *rows >= 1),
        "no users in {b:?}"
    );
    for (left, right) in b.iter().zip(a.iter()) {
        ensure_eq!(right, left, "table of the restored database's backup");
    }
    ensure_eq!(a.len(), b.len(), "tables in the restored database's backup");
    let login = json!({"tenant": domain, "email": email, "password": DRILL_PASSWORD});
    send(app, "POST", "/v1/auth/login", None, Some(&login))?.expect_json(200)?;
    Ok(())
}

/// Runs the daily cron's jobs; fails unless the backup job succeeded. Returns its report.
fn run_daily(app: &TestApp) -> Result<String, String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let resp = app.post_json(
        PATH,
        &json!({"cron": DAILY_CRON}),
        &[("authorization", &auth)],
    )?;
    let body = resp.expect_json(200)?;
    let job = body["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == "backup.write"))
        .ok_or_else(|| format!("no backup.write job: {body}"))?;
    ensure_eq!(job["status"], json!("ok"), "backup.write in {body}");
    Ok(job.to_string())
}

/// `node scripts/restore-d1.mjs --local-state <state> <args>`, with the drill's master key.
fn restore_script(state: &Path, args: &[&str]) -> Result<String, String> {
    run(Command::new("node")
        .arg(repo_root().join("scripts/restore-d1.mjs"))
        .arg("--local-state")
        .arg(state)
        .args(args)
        .env("MASTER_KEY", DRILL_MASTER_KEY))
}

/// Runs a command from the repository root; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String, String> {
    let out = command
        .current_dir(repo_root())
        .env("WRANGLER_SEND_METRICS", "false")
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
