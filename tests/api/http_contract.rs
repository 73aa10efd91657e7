//! Cross-cutting HTTP contract: correlation ids, problem details (CC-ERR-004, ERR-*), method
//! handling, the OpenAPI document, and no internals in errors (CON-SEC-009).

use serde_json::Value;

use crate::helpers::{assert_problem, is_uuid, ApiResponse, TestApp};

crate::contract_tests![
    request_id_is_generated_when_absent,
    request_id_valid_is_echoed,
    request_id_invalid_is_replaced,
    every_response_has_request_id,
    unknown_path_is_404_problem_err_res_404,
    wrong_method_is_405_problem_err_val_400,
    openapi_document_lists_public_routes,
    server_error_has_no_internals_con_sec_009,
    chunked_body_over_the_limit_is_refused_while_reading_413,
    chunked_body_under_the_limit_is_accepted,
];

/// The request body limit, 1 MiB, as core enforces it.
const BODY_LIMIT: usize = 1024 * 1024;

/// Chunks of a streamed request body, as a client or proxy might send them.
const CHUNK: usize = 64 * 1024;

/// Without an `X-Request-Id`, each response carries a freshly generated UUID.
fn request_id_is_generated_when_absent(app: &TestApp) -> Result<(), String> {
    let first = app.get("/health")?;
    let second = app.get("/health")?;
    let (a, b) = (first.request_id()?, second.request_id()?);
    ensure!(
        is_uuid(a),
        "generated X-Request-Id must be a UUID, got {a:?}"
    );
    ensure!(
        is_uuid(b),
        "generated X-Request-Id must be a UUID, got {b:?}"
    );
    ensure!(
        a != b,
        "two requests without X-Request-Id got the same id {a:?}"
    );
    Ok(())
}

/// A valid incoming id (1..=128 of `[A-Za-z0-9._:-]`) is echoed unchanged, on success and on
/// error responses alike (where the problem's `request_id` matches it too).
fn request_id_valid_is_echoed(app: &TestApp) -> Result<(), String> {
    let longest: String = "AZaz09._:-".chars().cycle().take(128).collect();
    let valid = [
        "a",
        "0",
        "req-123",
        "Trace.ID_42:span-7",
        "--..::__",
        longest.as_str(),
    ];
    for id in valid {
        let resp = app.get_with("/health", &[("x-request-id", id)])?;
        resp.expect_status(200)?;
        ensure_eq!(
            resp.request_id()?,
            id,
            "GET /health echoes valid X-Request-Id {id:?}"
        );
    }
    let resp = app.get_with("/v1/nope", &[("x-request-id", "e2e-problem-echo")])?;
    assert_problem(&resp, 404, "not-found")?;
    ensure_eq!(
        resp.request_id()?,
        "e2e-problem-echo",
        "404 echoes a valid X-Request-Id"
    );
    Ok(())
}

/// An invalid incoming id (too long, or with a character outside `[A-Za-z0-9._:-]`) is not
/// echoed: the response carries a generated UUID instead.
fn request_id_invalid_is_replaced(app: &TestApp) -> Result<(), String> {
    let too_long = "a".repeat(129);
    let invalid = [
        too_long.as_str(),
        "",
        "has space",
        "slash/inside",
        "semi;colon",
        "quote\"inside",
        "tab\tinside",
        "percent%20",
        "comma,inside",
        "plus+sign",
    ];
    for id in invalid {
        let resp = app.get_with("/health", &[("x-request-id", id)])?;
        resp.expect_status(200)?;
        let got = resp.request_id()?;
        ensure!(got != id, "invalid X-Request-Id {id:?} was echoed");
        ensure!(
            is_uuid(got),
            "invalid X-Request-Id {id:?} must be replaced by a UUID, got {got:?}"
        );
    }
    Ok(())
}

/// Every response carries an `X-Request-Id`, whatever its status.
fn every_response_has_request_id(app: &TestApp) -> Result<(), String> {
    let responses: Vec<ApiResponse> = vec![
        app.get("/health")?,
        app.get("/v1/health")?,
        app.get("/openapi.json")?,
        app.get("/v1/nope")?,
        app.request("DELETE", "/health", &[], None)?,
        app.request("POST", "/internal/scheduled", &[], None)?,
    ];
    for resp in &responses {
        let id = resp.request_id()?;
        ensure!(
            is_uuid(id),
            "{} (HTTP {}): generated X-Request-Id must be a UUID, got {id:?}",
            resp.what,
            resp.status
        );
    }
    Ok(())
}

/// An unknown path is a 404 problem `not-found` with code ERR-RES-404 (CC-ERR-004).
fn unknown_path_is_404_problem_err_res_404(app: &TestApp) -> Result<(), String> {
    for path in ["/v1/nope", "/nope", "/v1/health/extra"] {
        let resp = app.get(path)?;
        let body = assert_problem(&resp, 404, "not-found")?;
        ensure_eq!(
            body["code"],
            Value::from("ERR-RES-404"),
            "GET {path} problem `code`"
        );
    }
    Ok(())
}

/// A known path with a method it does not serve is a 405 problem `invalid-input` whose `Allow`
/// header lists the methods it does serve.
fn wrong_method_is_405_problem_err_val_400(app: &TestApp) -> Result<(), String> {
    for (method, path) in [
        ("DELETE", "/health"),
        ("POST", "/health"),
        ("PUT", "/v1/health"),
    ] {
        let resp = app.request(method, path, &[], None)?;
        assert_problem(&resp, 405, "invalid-input")?;
        let allow = resp
            .header("allow")
            .ok_or_else(|| format!("{method} {path}: 405 without an Allow header"))?;
        ensure!(
            allow.split(',').any(|m| m.trim() == "GET"),
            "{method} {path}: Allow must list GET, got {allow:?}"
        );
        ensure!(
            !allow.split(',').any(|m| m.trim() == method),
            "{method} {path}: Allow lists the refused method {method}: {allow:?}"
        );
    }
    Ok(())
}

/// `GET /openapi.json` is an OpenAPI 3.1 document listing every public route.
fn openapi_document_lists_public_routes(app: &TestApp) -> Result<(), String> {
    let resp = app.get("/openapi.json")?;
    let doc = resp.expect_json(200)?;
    let version = doc["openapi"].as_str().unwrap_or_default();
    ensure!(
        version.starts_with("3.1"),
        "`openapi` must be 3.1.x, got {}",
        doc["openapi"]
    );
    let paths = doc["paths"]
        .as_object()
        .ok_or_else(|| "OpenAPI document has no `paths` object".to_owned())?;
    for route in ["/health", "/v1/health", "/openapi.json"] {
        ensure!(
            paths.contains_key(route),
            "OpenAPI `paths` lacks {route}; it has {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    // The public document is for app teams: the scheduler's route and development-only routes
    // are not in it.
    for path in paths.keys() {
        ensure!(
            !path.starts_with("/internal/") && !path.starts_with("/__dev/"),
            "OpenAPI `paths` lists the non-public {path}"
        );
    }
    Ok(())
}

/// CON-SEC-009 and the isolate's health after a panic: `GET /__dev/panic` (development only)
/// panics inside core. On workerd the request gets a problem+json 500 with a generic detail and
/// its request id, nothing of the cause; on Spin the trap ends that request's instance and the
/// host answers 500. Either way the next requests are served normally (workers-rs #166).
fn server_error_has_no_internals_con_sec_009(app: &TestApp) -> Result<(), String> {
    let resp = app.get_with("/__dev/panic", &[("x-request-id", "e2e-boom-1")])?;
    resp.expect_status(500)?;
    if app.runtime.name() == "workerd" {
        let problem = assert_problem(&resp, 500, "internal")?;
        ensure_eq!(
            problem["request_id"].as_str().unwrap_or_default(),
            "e2e-boom-1",
            "the 500 problem carries the request id"
        );
        let text = resp.text();
        ensure!(
            !text.contains("deliberate") && !text.contains("panic"),
            "the 500 body must not carry the panic message: {text}"
        );
    }
    for _ in 0..3 {
        app.get("/health")?.expect_status(200)?;
    }
    let health = app.get("/v1/health")?.expect_json(200)?;
    ensure_eq!(
        health["status"].as_str().unwrap_or_default(),
        "ok",
        "every dependency still answers after the panic"
    );
    Ok(())
}

/// A chunked body (no `Content-Length`) over the 1 MiB limit gets the same 413 problem
/// `invalid-input` as a declared one, and while it is still being sent: the runtime stops
/// reading at the limit instead of taking the whole body into memory first. The client offers
/// 32 MiB and stops writing once the answer arrives; far less than that may have gone out
/// (what the server read, about 1 MiB, plus what the sockets' buffers held).
fn chunked_body_over_the_limit_is_refused_while_reading_413(app: &TestApp) -> Result<(), String> {
    let total = 32 * BODY_LIMIT;
    let auth = format!("Bearer {}", app.cron_secret);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("x-request-id", "e2e-chunked-413"),
    ];
    let (resp, written) = app.request_chunked(
        "POST",
        "/internal/scheduled",
        &headers,
        vec![b' '; total],
        CHUNK,
    )?;
    let problem = assert_problem(&resp, 413, "invalid-input")?;
    ensure_eq!(
        problem["request_id"].as_str().unwrap_or_default(),
        "e2e-chunked-413",
        "the 413 carries the request id"
    );
    ensure!(
        written < total / 2,
        "the answer came only after {written} of {total} bytes were sent: the body was read \
         past the limit"
    );
    Ok(())
}

/// A chunked body just under the limit (no `Content-Length`) is read whole and served.
fn chunked_body_under_the_limit_is_accepted(app: &TestApp) -> Result<(), String> {
    // JSON may be preceded by whitespace: the route takes no extra member to pad with.
    let body = format!(
        "{}{}",
        " ".repeat(BODY_LIMIT - 4 * 1024),
        serde_json::json!({ "cron": "*/5 * * * *" })
    );
    let len = body.len();
    ensure!(
        len < BODY_LIMIT,
        "the body is under the limit ({len} bytes)"
    );
    let auth = format!("Bearer {}", app.cron_secret);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let (resp, written) = app.request_chunked(
        "POST",
        "/internal/scheduled",
        &headers,
        body.into_bytes(),
        CHUNK,
    )?;
    ensure_eq!(written, len, "the whole body was sent");
    let json = resp.expect_json(200)?;
    ensure_eq!(
        json["cron"],
        Value::from("*/5 * * * *"),
        "the body was read whole: {}",
        resp.text()
    );
    Ok(())
}
