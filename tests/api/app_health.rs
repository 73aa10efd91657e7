//! Platform PRD (health monitoring of the managed services): an operator registers an app's
//! health URL; Edgeplane checks it (every 5 s from a Durable Object alarm on Workers, at each
//! scheduled run on Spin) and reports green, red or unknown with per-minute figures. The app's
//! health endpoint here is a small HTTP server of the test's own on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, send, str_of, suffix, Runtime, TestApp};

crate::contract_tests![app_health_turns_green_then_red_and_follows_no_redirect_prd,];

/// The app's health endpoint: answers every request with the current status (a 302 points at
/// `/elsewhere`), and keeps the paths it was asked for.
struct HealthServer {
    url: String,
    status: Arc<AtomicU16>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl HealthServer {
    fn start() -> Result<Self, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?
            .port();
        let status = Arc::new(AtomicU16::new(200));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (s, p) = (status.clone(), paths.clone());
        // Lives as long as the test process; every connection is answered and closed.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                if let Ok(mut v) = p.lock() {
                    v.push(path);
                }
                let code = s.load(Ordering::SeqCst);
                let mut out = &stream;
                let answer = format!(
                    "HTTP/1.1 {code} Status\r\nlocation: /elsewhere\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                let _ = out.write_all(answer.as_bytes());
            }
        });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/healthz"),
            status,
            paths,
        })
    }

    fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    fn asked(&self) -> Vec<String> {
        self.paths.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn health(app: &TestApp, token: &str, id: &str) -> Result<Value, String> {
    send(
        app,
        "GET",
        &format!("/v1/apps/{id}/health"),
        Some(token),
        None,
    )?
    .expect_json(200)
}

/// Waits for the app's state to become `want`: on Workers by the poller's own alarm (no
/// scheduled run is asked for, so this also shows the 5 s polling), on Spin through one
/// scheduled run.
fn until_state(app: &TestApp, token: &str, id: &str, want: &str) -> Result<Value, String> {
    if matches!(app.runtime, Runtime::Spin) {
        let auth = format!("Bearer {}", app.cron_secret);
        app.post_json(
            "/internal/scheduled",
            &json!({ "cron": "e2e-app-health" }),
            &[("authorization", &auth)],
        )?
        .expect_json(200)?;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = health(app, token, id)?;
        if h["state"] == json!(want) {
            return Ok(h);
        }
        if Instant::now() > deadline {
            return Err(format!("the app did not turn {want} within 15 s: {h}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn app_health_turns_green_then_red_and_follows_no_redirect_prd(
    app: &TestApp,
) -> Result<(), String> {
    let op = app.operator_token("operator", "e2e-app-health")?;
    let auditor = app.operator_token("auditor", "e2e-app-health-auditor")?;
    let body = json!({ "name": format!("Health {}", suffix()?) });
    let created = send(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?;
    let id = str_of(&created["id"]);
    let server = HealthServer::start()?;
    let path = format!("/v1/apps/{id}/health-check");

    let registration = json!({ "url": server.url });
    let resp = send(app, "PUT", &path, Some(&auditor), Some(&registration))?;
    assert_problem(&resp, 403, "access-denied")?;
    let resp = send(
        app,
        "PUT",
        &path,
        Some(&op),
        Some(&json!({ "url": "ftp://127.0.0.1/" })),
    )?;
    assert_problem(&resp, 400, "invalid-input")?;
    let resp = send(
        app,
        "PUT",
        "/v1/apps/01900000-0000-7000-8000-000000000000/health-check",
        Some(&op),
        Some(&registration),
    )?;
    assert_problem(&resp, 404, "not-found")?;

    let set = send(app, "PUT", &path, Some(&op), Some(&registration))?.expect_json(200)?;
    ensure_eq!(set["url"], json!(server.url), "registered url: {set}");
    ensure_eq!(set["state"], json!("unknown"), "before any check: {set}");

    let green = until_state(app, &auditor, &id, "green")?;
    ensure_eq!(green["last_status"], json!(200), "green: {green}");
    let checks: u64 = green["minutes"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["checks"].as_u64()).sum())
        .unwrap_or(0);
    ensure!(checks >= 1, "the minutes count the checks: {green}");

    server.answer(503);
    let red = until_state(app, &auditor, &id, "red")?;
    ensure_eq!(red["last_status"], json!(503), "red: {red}");

    server.answer(200);
    until_state(app, &auditor, &id, "green")?;
    server.answer(302);
    let redirected = until_state(app, &auditor, &id, "red")?;
    ensure_eq!(
        redirected["last_error"],
        json!("redirect not followed"),
        "a redirect: {redirected}"
    );
    let asked = server.asked();
    ensure!(
        !asked.is_empty() && asked.iter().all(|p| p == "/healthz"),
        "only the registered URL is ever requested, never the redirect's target: {asked:?}"
    );

    send(app, "DELETE", &path, Some(&op), None)?.expect_status(204)?;
    let gone = health(app, &auditor, &id)?;
    ensure_eq!(gone["state"], json!("unknown"), "after removal: {gone}");
    ensure_eq!(gone["url"], Value::Null, "after removal: {gone}");
    Ok(())
}
