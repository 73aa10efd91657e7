//! Billing and audit events (FR-BILL-001..003, FR-LOG-001..003, FR-OPS-003, API-BILL,
//! API-LOG): ingestion, deduplication, the archive flush (forced through
//! `POST /internal/scheduled`), exports across archives and tail, usage, the auditor's CSV,
//! chain verification against a tampered archive object, and retention by a chosen clock.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, str_of, suffix, ApiResponse, TestApp};

crate::contract_tests![
    ingest_single_and_batch_then_retry_applies_once_fr_bill_002,
    bad_event_rejects_the_batch_and_stores_nothing_err_val_400,
    idempotency_key_and_cloudevents_fr_bill_002,
    audit_ingest_validates_the_api_log_fields_fr_log_001,
    key_without_scope_is_403_and_other_tenant_is_404_err_res_404,
    flushed_and_tail_events_export_exactly_once_fr_bill_003,
    usage_summary_matches_the_export_fr_bill_003,
    audit_csv_export_neutralises_formulas_fr_log_002,
    own_changes_are_forwarded_to_the_audit_stream_fr_log_003,
    verify_reports_a_tampered_archive_object,
    durable_object_alarm_archives_the_tail_on_workers,
    own_changes_are_forwarded_after_the_request_on_workers,
    retention_deletes_old_archives_by_test_clock_fr_ops_003,
];

/// A tenant with an app enabled and keys for it.
struct Fixture {
    operator: String,
    tenant: String,
    app_id: String,
    /// Tenant-bound key with `bill:write`, `bill:read`, `log:write`.
    key: String,
    /// App-wide key with the same scopes.
    wide_key: String,
    /// Tenant-bound key with `flags:read` only.
    flags_key: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<ApiResponse, String> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    app.request(
        method,
        path,
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
}

fn issue(
    app: &TestApp,
    f: &Fixture,
    scopes: &[&str],
    tenant: Option<&str>,
) -> Result<String, String> {
    let mut body = json!({ "scopes": scopes });
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    let issued = send(
        app,
        "POST",
        &format!("/v1/apps/{}/keys", f.app_id),
        &f.operator,
        Some(&body),
    )?
    .expect_json(201)?;
    Ok(str_of(&issued["secret"]))
}

fn fixture(app: &TestApp) -> Result<Fixture, String> {
    let operator = app.operator_token("operator", "e2e-operator")?;
    let created = send(
        app,
        "POST",
        "/v1/apps",
        &operator,
        Some(&json!({ "name": format!("Events {}", suffix()?) })),
    )?
    .expect_json(201)?;
    let app_id = str_of(&created["id"]);
    let domain = format!("events-{}", suffix()?);
    let body = json!({
        "name": "Events Tenant", "domain": domain, "plan": "pro",
        "owner_email": format!("owner@{domain}.example"), "apps": [app_id],
    });
    let t = send(app, "POST", "/v1/tenants", &operator, Some(&body))?.expect_json(201)?;
    let tenant = str_of(&t["tenant"]["id"]);
    let mut f = Fixture {
        operator,
        tenant,
        app_id,
        key: String::new(),
        wide_key: String::new(),
        flags_key: String::new(),
    };
    let all = ["bill:write", "bill:read", "log:write"];
    f.key = issue(app, &f, &all, Some(&f.tenant.clone()))?;
    f.wide_key = issue(app, &f, &all, None)?;
    f.flags_key = issue(app, &f, &["flags:read"], Some(&f.tenant.clone()))?;
    Ok(f)
}

fn post_events(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> Result<ApiResponse, String> {
    let mut headers = vec![("x-api-key", key)];
    headers.extend_from_slice(extra);
    app.post_json(path, body, &headers)
}

fn billing(id: &str, ty: &str, qty: i64, at: &str) -> Value {
    json!({ "id": id, "type": ty, "quantity": qty, "timestamp": at })
}

fn audit(id: &str, actor: &str, action: &str) -> Value {
    json!({ "id": id, "timestamp": "2026-01-01T00:00:00Z", "actor_id": actor, "type": action,
            "resource_id": "doc:1", "outcome": "success", "ip": "192.0.2.7" })
}

/// Runs the periodic jobs (flush, outbox forward, retention), optionally at a chosen time.
fn run_jobs(app: &TestApp, now: Option<i64>) -> Result<Value, String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let mut body = json!({ "cron": "e2e-events" });
    if let Some(now) = now {
        body["now_ms"] = json!(now);
    }
    let report = app
        .post_json("/internal/scheduled", &body, &[("authorization", &auth)])?
        .expect_json(200)?;
    Ok(report)
}

fn job_affected(report: &Value, name: &str) -> i64 {
    report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .and_then(|j| j["affected"].as_i64())
        .unwrap_or(-1)
}

/// Every billing event of the tenant through the export, page by page.
fn export_all(app: &TestApp, key: &str, query: &str, limit: u32) -> Result<Vec<Value>, String> {
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    for _ in 0..1000 {
        let mut path = format!("/v1/billing/events?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app
            .get_with(&path, &[("x-api-key", key)])?
            .expect_json(200)?;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(all),
        }
    }
    Err("the export never ended".into())
}

fn archive_keys(app: &TestApp, f: &Fixture, prefix: &str) -> Result<Vec<String>, String> {
    let listed = send(
        app,
        "GET",
        &format!("/__dev/blobs?prefix={prefix}"),
        &f.operator,
        None,
    )?
    .expect_json(200)?;
    Ok(listed["keys"]
        .as_array()
        .map(|k| k.iter().map(str_of).collect())
        .unwrap_or_default())
}

fn ingest_single_and_batch_then_retry_applies_once_fr_bill_002(
    app: &TestApp,
) -> Result<(), String> {
    let f = fixture(app)?;
    let one = billing("single-1", "api.call", 1, "2026-01-01T00:00:00Z");
    let out = post_events(app, "/v1/billing/events", &f.key, &one, &[])?.expect_json(202)?;
    ensure_eq!(
        out,
        json!({"received": 1, "accepted": 1, "duplicates": 0}),
        "single event"
    );
    let batch = json!({ "events": [
        billing("b-1", "api.call", 2, "2026-01-01T00:00:01Z"),
        billing("b-2", "api.call", 3, "2026-01-01T00:00:02Z"),
        billing("b-3", "storage.gb", 4, "2026-01-01T00:00:03Z"),
    ]});
    let out = post_events(app, "/v1/billing/events", &f.key, &batch, &[])?.expect_json(202)?;
    ensure_eq!(out["accepted"], json!(3), "batch");
    // The client did not hear the 202 and sends the batch again: applied once.
    let again = post_events(app, "/v1/billing/events", &f.key, &batch, &[])?.expect_json(202)?;
    ensure_eq!(
        again,
        json!({"received": 3, "accepted": 0, "duplicates": 3}),
        "retry"
    );
    let events = export_all(app, &f.key, "", 100)?;
    let ids: Vec<String> = events.iter().map(|e| str_of(&e["id"])).collect();
    ensure_eq!(
        ids,
        vec!["single-1", "b-1", "b-2", "b-3"],
        "stored once each, in order"
    );
    ensure_eq!(
        events[1]["app_id"],
        json!(f.app_id),
        "the reporting app is recorded"
    );
    ensure_eq!(events[1]["tenant_id"], json!(f.tenant), "the key's tenant");
    // An app-wide key names the tenant in the event.
    let wide = json!({ "id": "w-1", "tenant_id": f.tenant, "type": "api.call", "quantity": 1,
                       "timestamp": "2026-01-01T00:00:04Z" });
    post_events(app, "/v1/billing/events", &f.wide_key, &wide, &[])?.expect_json(202)?;
    let missing = billing("w-2", "api.call", 1, "2026-01-01T00:00:04Z");
    let resp = post_events(app, "/v1/billing/events", &f.wide_key, &missing, &[])?;
    let p = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(
        p["errors"][0]["field"],
        json!("tenant_id"),
        "an app-wide key must name it"
    );
    Ok(())
}

fn bad_event_rejects_the_batch_and_stores_nothing_err_val_400(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let cases = [
        (
            json!({"events": [billing("ok-1", "x", 1, "2026-01-01T00:00:00Z"),
                           billing("ok-2", "x", 1, "2026-01-01T00:00:00Z"),
                           billing("bad", "x", -4, "2026-01-01T00:00:00Z")]}),
            2,
            "quantity",
        ),
        (
            json!([billing("ok-1", "x", 1, "not a date")]),
            0,
            "timestamp",
        ),
        (
            json!({"events": [billing("ok-1", "bad type!", 1, "2026-01-01T00:00:00Z")]}),
            0,
            "type",
        ),
        (
            json!({"events": [{"id": "ok-1", "type": "x", "quantity": 1, "timestamp": "2026-01-01T00:00:00Z", "price": 3}]}),
            0,
            "price",
        ),
        (
            json!({"events": vec![billing("same", "x", 1, "2026-01-01T00:00:00Z"); 1001]}),
            1000,
            "events",
        ),
    ];
    for (body, index, field) in cases {
        let resp = post_events(app, "/v1/billing/events", &f.key, &body, &[])?;
        let p = assert_problem(&resp, 400, "invalid-input")?;
        ensure_eq!(
            (
                p["errors"][0]["index"].as_i64(),
                p["errors"][0]["field"].as_str()
            ),
            (Some(index), Some(field)),
            "the problem names the event and the field: {p}"
        );
    }
    ensure!(
        export_all(app, &f.key, "", 100)?.is_empty(),
        "nothing was stored"
    );
    let resp = app.request(
        "POST",
        "/v1/billing/events",
        &[("x-api-key", &f.key), ("content-type", "text/plain")],
        Some(b"{}".to_vec()),
    )?;
    assert_problem(&resp, 415, "invalid-input")?;
    Ok(())
}

fn idempotency_key_and_cloudevents_fr_bill_002(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let no_ids = json!([{ "type": "api.call", "quantity": 5, "timestamp": "2026-01-01T00:00:00Z" },
                        { "type": "api.call", "quantity": 6, "timestamp": "2026-01-01T00:00:00Z" }]);
    let resp = post_events(app, "/v1/billing/events", &f.key, &no_ids, &[])?;
    let p = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(
        p["errors"][0]["field"],
        json!("id"),
        "an id or an Idempotency-Key is needed"
    );
    let idem = [("idempotency-key", "req-42")];
    let first = post_events(app, "/v1/billing/events", &f.key, &no_ids, &idem)?.expect_json(202)?;
    let again = post_events(app, "/v1/billing/events", &f.key, &no_ids, &idem)?.expect_json(202)?;
    ensure_eq!(
        (first["accepted"].clone(), again["duplicates"].clone()),
        (json!(2), json!(2)),
        "Idempotency-Key"
    );

    let ce = json!([{ "specversion": "1.0", "id": "ce-1", "source": "svc/api", "type": "tokens",
                      "subject": f.tenant, "time": "2026-01-01T00:00:00Z", "data": { "value": 42 } }]);
    let resp = app.request(
        "POST",
        "/v1/billing/events",
        &[
            ("x-api-key", &f.key),
            ("content-type", "application/cloudevents-batch+json"),
        ],
        Some(ce.to_string().into_bytes()),
    )?;
    resp.expect_json(202)?;
    let events = export_all(app, &f.key, "", 100)?;
    let ids: Vec<String> = events.iter().map(|e| str_of(&e["id"])).collect();
    ensure_eq!(ids, vec!["req-42:0", "req-42:1", "ce-1"], "ids");
    ensure_eq!(
        events[2]["quantity"],
        json!(42),
        "data.value is the quantity"
    );
    ensure_eq!(
        events[2]["metadata"]["source"],
        json!("svc/api"),
        "source kept"
    );
    Ok(())
}

fn audit_ingest_validates_the_api_log_fields_fr_log_001(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let ok = audit("log-1", "user:1", "doc.read");
    post_events(app, "/v1/audit/events", &f.key, &ok, &[])?.expect_json(202)?;
    for field in [
        "actor_id",
        "type",
        "resource_id",
        "outcome",
        "ip",
        "timestamp",
    ] {
        let mut bad = audit("log-2", "user:1", "doc.read");
        if let Some(o) = bad.as_object_mut() {
            o.remove(field);
        }
        let resp = post_events(
            app,
            "/v1/audit/events",
            &f.key,
            &json!({"events": [ok, bad]}),
            &[],
        )?;
        let p = assert_problem(&resp, 400, "invalid-input")?;
        ensure_eq!(
            (
                p["errors"][0]["index"].as_i64(),
                p["errors"][0]["field"].as_str()
            ),
            (Some(1), Some(field)),
            "missing {field}"
        );
    }
    let mut bad_ip = audit("log-3", "user:1", "doc.read");
    bad_ip["ip"] = json!("999.1.1.1");
    let resp = post_events(app, "/v1/audit/events", &f.key, &bad_ip, &[])?;
    assert_problem(&resp, 400, "invalid-input")?;
    Ok(())
}

fn key_without_scope_is_403_and_other_tenant_is_404_err_res_404(
    app: &TestApp,
) -> Result<(), String> {
    let f = fixture(app)?;
    let other = fixture(app)?;
    let ev = billing("s-1", "api.call", 1, "2026-01-01T00:00:00Z");
    for (path, body) in [
        ("/v1/billing/events", &ev),
        ("/v1/audit/events", &audit("s-2", "u", "x")),
    ] {
        let resp = post_events(app, path, &f.flags_key, body, &[])?;
        assert_problem(&resp, 403, "access-denied")?;
    }
    let resp = app.get_with("/v1/billing/events", &[("x-api-key", &f.flags_key)])?;
    assert_problem(&resp, 403, "access-denied")?;
    let resp = app.post_json("/v1/billing/events", &ev, &[])?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    // A tenant-bound key naming another tenant, reading another tenant, or an app-wide key
    // naming a tenant that does not use the app: 404.
    let mut foreign = ev.clone();
    foreign["tenant_id"] = json!(other.tenant);
    let resp = post_events(app, "/v1/billing/events", &f.key, &foreign, &[])?;
    assert_problem(&resp, 404, "not-found")?;
    let resp = app.get_with(
        &format!("/v1/billing/events?tenant={}", other.tenant),
        &[("x-api-key", &f.key)],
    )?;
    assert_problem(&resp, 404, "not-found")?;
    let resp = post_events(app, "/v1/billing/events", &f.wide_key, &foreign, &[])?;
    assert_problem(&resp, 404, "not-found")?;
    let resp = app.get_with(
        &format!("/v1/billing/usage?tenant={}", other.tenant),
        &[("x-api-key", &f.wide_key)],
    )?;
    assert_problem(&resp, 404, "not-found")?;
    ensure!(
        export_all(app, &other.key, "", 10)?.is_empty(),
        "nothing reached the other tenant"
    );
    // Auditor routes refuse API keys and tenant-less callers.
    let resp = app.get_with(
        "/v1/audit/export.csv",
        &[("authorization", &format!("Bearer {}", f.key))],
    )?;
    ensure!(
        resp.status == 401,
        "an API key is not an auditor token: {}",
        resp.excerpt()
    );
    Ok(())
}

fn flushed_and_tail_events_export_exactly_once_fr_bill_003(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let first: Vec<Value> = (0..25)
        .map(|i| billing(&format!("x-{i:02}"), "api.call", 1, "2026-01-01T00:00:00Z"))
        .collect();
    post_events(
        app,
        "/v1/billing/events",
        &f.key,
        &json!({ "events": first }),
        &[],
    )?
    .expect_json(202)?;
    let report = run_jobs(app, None)?;
    ensure!(
        job_affected(&report, "events.flush") >= 25,
        "the flush archived them: {report}"
    );
    let keys = archive_keys(app, &f, &format!("billing/{}/", f.tenant))?;
    ensure!(
        keys.len() == 1 && keys[0].contains("/1-25.ndjson"),
        "one object, keyed by kind/tenant/date/range: {keys:?}"
    );
    let tail: Vec<Value> = (25..32)
        .map(|i| billing(&format!("x-{i:02}"), "api.call", 1, "2026-01-01T00:00:00Z"))
        .collect();
    post_events(
        app,
        "/v1/billing/events",
        &f.key,
        &json!({ "events": tail }),
        &[],
    )?
    .expect_json(202)?;
    // A retry of an archived event is still a duplicate.
    let again = billing("x-03", "api.call", 1, "2026-01-01T00:00:00Z");
    let out = post_events(app, "/v1/billing/events", &f.key, &again, &[])?.expect_json(202)?;
    ensure_eq!(out["duplicates"], json!(1), "dedupe outlives the flush");

    for limit in [4, 7, 100] {
        let events = export_all(app, &f.key, "", limit)?;
        let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
        ensure_eq!(
            seqs,
            (1..=32).collect::<Vec<_>>(),
            "limit {limit}: each event once, in order"
        );
        let ids: BTreeSet<String> = events.iter().map(|e| str_of(&e["id"])).collect();
        ensure_eq!(ids.len(), 32, "distinct ids");
    }
    // Paging across a flush that happens between two pages.
    let page = app
        .get_with("/v1/billing/events?limit=30", &[("x-api-key", &f.key)])?
        .expect_json(200)?;
    run_jobs(app, None)?;
    let cursor = str_of(&page["next_cursor"]);
    let rest = app
        .get_with(
            &format!("/v1/billing/events?limit=30&cursor={cursor}"),
            &[("x-api-key", &f.key)],
        )?
        .expect_json(200)?;
    let seqs: Vec<i64> = rest["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["seq"].as_i64()).collect())
        .unwrap_or_default();
    ensure_eq!(seqs, vec![31, 32], "the rest, once, after the flush");
    ensure_eq!(rest["next_cursor"], Value::Null, "end");
    // A period filter on the event timestamp.
    let none = export_all(app, &f.key, "&from=2026-01-02T00:00:00Z", 50)?;
    ensure!(none.is_empty(), "no event on or after 2 January");
    let resp = app.get_with("/v1/billing/events?cursor=abc", &[("x-api-key", &f.key)])?;
    assert_problem(&resp, 400, "invalid-input")?;
    Ok(())
}

fn usage_summary_matches_the_export_fr_bill_003(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let batch = json!([
        billing("u-1", "api.call", 3, "2026-01-01T10:00:00Z"),
        billing("u-2", "api.call", 4, "2026-01-01T23:59:59Z"),
        billing("u-3", "storage.gb", 7, "2026-01-02T00:00:00Z"),
        billing("u-4", "api.call", 5, "2026-01-03T00:00:00Z"),
    ]);
    post_events(app, "/v1/billing/events", &f.key, &batch, &[])?.expect_json(202)?;
    run_jobs(app, None)?;
    let late = billing("u-5", "api.call", 1, "2026-01-01T12:00:00Z");
    post_events(app, "/v1/billing/events", &f.key, &late, &[])?.expect_json(202)?;
    let q = "&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z";
    let usage = app
        .get_with(
            &format!("/v1/billing/usage?group_by=day{q}"),
            &[("x-api-key", &f.key)],
        )?
        .expect_json(200)?;
    ensure_eq!(
        usage["items"],
        json!([
            {"period": "2026-01-01", "type": "api.call", "quantity": 8, "events": 3},
            {"period": "2026-01-02", "type": "storage.gb", "quantity": 7, "events": 1},
        ]),
        "per day and type, archive and tail together"
    );
    let exported = export_all(app, &f.key, q, 2)?;
    let total: i64 = exported.iter().filter_map(|e| e["quantity"].as_i64()).sum();
    ensure_eq!(total, 15, "the export over the same period sums the same");
    let resp = app.get_with("/v1/billing/usage?group_by=month", &[("x-api-key", &f.key)])?;
    assert_problem(&resp, 400, "invalid-input")?;
    Ok(())
}

/// Splits CSV text into records of cells (RFC 4180, quotes doubled, CRLF between records).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

fn audit_csv_export_neutralises_formulas_fr_log_002(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let mut evil = audit("csv-1", "=HYPERLINK(\"http://x\",\"y\")", "doc.read");
    evil["resource_id"] = json!("@SUM(1,2)");
    evil["metadata"] = json!({ "note": "a,b \"c\"" });
    let events = json!([
        evil,
        audit("csv-2", "-2+3", "doc.delete"),
        audit("csv-3", "user:9", "doc.read")
    ]);
    post_events(app, "/v1/audit/events", &f.key, &events, &[])?.expect_json(202)?;
    run_jobs(app, None)?;
    post_events(
        app,
        "/v1/audit/events",
        &f.key,
        &audit("csv-4", "+cmd", "doc.read"),
        &[],
    )?
    .expect_json(202)?;

    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let path = format!("/v1/audit/export.csv?tenant={}", f.tenant);
    let resp = send(app, "GET", &path, &auditor, None)?;
    resp.expect_status(200)?;
    let media = resp.media_type();
    ensure_eq!(media.as_deref(), Some("text/csv"), "CSV");
    let rows = parse_csv(&resp.text());
    ensure_eq!(
        rows.first().map(|r| r[0].as_str()),
        Some("tenant_id"),
        "a header row"
    );
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap_or(usize::MAX);
    let (id, actor, resource, meta) = (
        col("event_id"),
        col("actor_id"),
        col("resource_id"),
        col("metadata"),
    );
    // The tenant's stream also holds Edgeplane's own records (provisioning, keys: FR-LOG-003).
    let data: Vec<&Vec<String>> = rows
        .iter()
        .skip(1)
        .filter(|r| r.get(id).is_some_and(|v| v.starts_with("csv-")))
        .collect();
    let ids: Vec<&str> = data
        .iter()
        .filter_map(|r| r.get(id).map(String::as_str))
        .collect();
    ensure_eq!(
        ids,
        vec!["csv-1", "csv-2", "csv-3", "csv-4"],
        "archive and tail, in order"
    );
    let cell = |row: usize, col: usize| data.get(row).and_then(|r| r.get(col)).map(String::as_str);
    ensure_eq!(
        cell(0, actor),
        Some("'=HYPERLINK(\"http://x\",\"y\")"),
        "= neutralised"
    );
    ensure_eq!(cell(0, resource), Some("'@SUM(1,2)"), "@ neutralised");
    ensure_eq!(cell(1, actor), Some("'-2+3"), "- neutralised");
    ensure_eq!(cell(3, actor), Some("'+cmd"), "+ neutralised");
    ensure_eq!(
        cell(0, meta),
        Some(r#"{"note":"a,b \"c\""}"#),
        "quoted cell"
    );
    ensure!(
        rows.iter()
            .skip(1)
            .any(|r| r.iter().any(|c| c == "tenant.create")),
        "the provisioning record is exported too"
    );

    // action filter and paging.
    let page1 = send(
        app,
        "GET",
        &format!("{path}&action=doc.read&limit=2"),
        &auditor,
        None,
    )?;
    page1.expect_status(200)?;
    let first = parse_csv(&page1.text());
    ensure_eq!(first.len(), 3, "header and two rows");
    let cursor = page1.header("x-next-cursor").unwrap_or_default().to_owned();
    ensure!(
        page1
            .header("link")
            .is_some_and(|l| l.contains("rel=\"next\"")),
        "Link next"
    );
    let page2 = send(
        app,
        "GET",
        &format!("{path}&action=doc.read&limit=2&cursor={cursor}"),
        &auditor,
        None,
    )?;
    let second = parse_csv(&page2.text());
    ensure_eq!(
        second
            .iter()
            .skip(1)
            .filter_map(|r| r.get(id).cloned())
            .collect::<Vec<_>>(),
        vec!["csv-4".to_owned()],
        "the rest"
    );
    ensure!(page2.header("x-next-cursor").is_none(), "no more pages");
    // Operators may export as well; tenant users and anonymous callers may not.
    send(app, "GET", &path, &f.operator, None)?.expect_status(200)?;
    assert_problem(&app.get(&path)?, 401, "invalid-credentials")?;
    Ok(())
}

fn own_changes_are_forwarded_to_the_audit_stream_fr_log_003(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let report = run_jobs(app, None)?;
    ensure!(
        job_affected(&report, "audit_outbox.forward") >= 0,
        "the forward ran: {report}"
    );
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let path = format!(
        "/v1/audit/export.csv?tenant={}&action=tenant.create",
        f.tenant
    );
    let rows = parse_csv(&send(app, "GET", &path, &auditor, None)?.text());
    ensure_eq!(
        rows.len(),
        2,
        "the provisioning is in the tenant's audit stream once: {rows:?}"
    );
    // Forwarding again changes nothing.
    run_jobs(app, None)?;
    let again = parse_csv(&send(app, "GET", &path, &auditor, None)?.text());
    ensure_eq!(again.len(), 2, "exactly once");
    Ok(())
}

fn verify_reports_a_tampered_archive_object(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let events: Vec<Value> = (0..5)
        .map(|i| audit(&format!("v-{i}"), "user:1", "doc.read"))
        .collect();
    post_events(app, "/v1/audit/events", &f.key, &json!(events), &[])?.expect_json(202)?;
    run_jobs(app, None)?;
    post_events(
        app,
        "/v1/audit/events",
        &f.key,
        &audit("v-9", "user:1", "doc.read"),
        &[],
    )?
    .expect_json(202)?;
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let path = format!("/v1/audit/verify?tenant={}", f.tenant);
    let ok = send(app, "GET", &path, &auditor, None)?.expect_json(200)?;
    ensure_eq!(ok["ok"], json!(true), "intact chain: {ok}");
    ensure!(
        ok["records"].as_i64() >= Some(6) && ok["archives"].as_i64() >= Some(1),
        "{ok}"
    );
    // Every archive object is anchored (the suite runs in development: the public key signs).
    ensure_eq!(
        ok["anchors"],
        ok["archives"],
        "every archive anchored: {ok}"
    );
    ensure_eq!(ok["anchor_key"], json!("development"), "{ok}");

    let keys = archive_keys(app, &f, &format!("audit/{}/", f.tenant))?;
    // The object holding our events (the stream also holds Edgeplane's own records, and the
    // alarm may have archived those separately).
    let mut found = None;
    for k in &keys {
        let object = send(
            app,
            "GET",
            &format!("/__dev/blobs?key={k}"),
            &f.operator,
            None,
        )?;
        object.expect_status(200)?;
        if object.text().contains("user:1") {
            found = Some((k.clone(), object.text()));
            break;
        }
    }
    let (key, text) =
        found.ok_or_else(|| format!("no archive object holds our events: {keys:?}"))?;
    let tampered = text.replacen("user:1", "user:2", 3);
    ensure!(tampered != text, "the object holds the events");
    // The first record changed (the stream also holds Edgeplane's own records before ours).
    let first_changed = text
        .lines()
        .find(|l| l.contains("user:1"))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|r| r["seq"].as_i64())
        .ok_or("no record of ours in the object")?;
    let auth = format!("Bearer {}", f.operator);
    app.request(
        "PUT",
        &format!("/__dev/blobs?key={key}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        Some(tampered.into_bytes()),
    )?
    .expect_status(204)?;
    let bad = send(app, "GET", &path, &auditor, None)?.expect_json(200)?;
    ensure_eq!(bad["ok"], json!(false), "the tampering is detected: {bad}");
    ensure_eq!(
        bad["first_break"]["location"],
        json!(key),
        "the object is named"
    );
    ensure_eq!(
        bad["first_break"]["seq"],
        json!(first_changed),
        "the first broken link"
    );
    ensure_eq!(
        bad["first_break"]["code"],
        json!("hash_mismatch"),
        "an edit without rehashing is named at the record: {bad}"
    );
    // Only auditors and operators verify.
    assert_problem(&app.get(&path)?, 401, "invalid-credentials")?;
    Ok(())
}

/// On Workers the stream's Durable Object archives its own tail on an alarm set by the first
/// append (the suite sets its delay to 2 s); no cron run is involved.
fn durable_object_alarm_archives_the_tail_on_workers(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let events: Vec<Value> = (0..3)
        .map(|i| billing(&format!("al-{i}"), "api.call", 1, "2026-01-01T00:00:00Z"))
        .collect();
    post_events(app, "/v1/billing/events", &f.key, &json!(events), &[])?.expect_json(202)?;
    let prefix = format!("billing/{}/", f.tenant);
    for _ in 0..40 {
        let keys = archive_keys(app, &f, &prefix)?;
        if !keys.is_empty() {
            ensure!(keys[0].contains("/1-3.ndjson"), "{keys:?}");
            let seqs: Vec<i64> = export_all(app, &f.key, "", 2)?
                .iter()
                .filter_map(|e| e["seq"].as_i64())
                .collect();
            ensure_eq!(seqs, vec![1, 2, 3], "exported once from the archive");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    Err("no archive object 10 s after the append: the alarm did not flush".into())
}

/// On Workers a successful write forwards the outbox after answering (`waitUntil`): the
/// provisioning record reaches the tenant's audit stream without a cron run (FR-LOG-003).
fn own_changes_are_forwarded_after_the_request_on_workers(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let path = format!(
        "/v1/audit/export.csv?tenant={}&action=tenant.create",
        f.tenant
    );
    for _ in 0..40 {
        let rows = parse_csv(&send(app, "GET", &path, &auditor, None)?.text());
        if rows.len() == 2 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    Err("the provisioning record did not reach the audit stream within 10 s".into())
}

/// Last in the module: it runs the jobs years ahead, deleting every old archive of this run.
fn retention_deletes_old_archives_by_test_clock_fr_ops_003(app: &TestApp) -> Result<(), String> {
    let f = fixture(app)?;
    let today = "2026-01-01T00:00:00Z";
    post_events(
        app,
        "/v1/billing/events",
        &f.key,
        &billing("r-1", "api.call", 1, today),
        &[],
    )?
    .expect_json(202)?;
    post_events(
        app,
        "/v1/audit/events",
        &f.key,
        &audit("r-2", "user:1", "doc.read"),
        &[],
    )?
    .expect_json(202)?;
    run_jobs(app, None)?;
    let billing_prefix = format!("billing/{}/", f.tenant);
    let audit_prefix = format!("audit/{}/", f.tenant);
    ensure!(
        !archive_keys(app, &f, &billing_prefix)?.is_empty(),
        "billing archived"
    );
    ensure!(
        !archive_keys(app, &f, &audit_prefix)?.is_empty(),
        "audit archived"
    );
    // 2026-01-01 events; the cut-offs are calendar years back from the chosen now.
    let year = 365 * 86_400_000_i64;
    let six_years_on = now_ms().max(1_767_225_600_000) + 6 * year;
    let report = run_jobs(app, Some(six_years_on))?;
    ensure!(job_affected(&report, "events.retention") >= 1, "{report}");
    ensure!(
        archive_keys(app, &f, &billing_prefix)?.is_empty(),
        "billing gone after 5 years"
    );
    ensure!(
        !archive_keys(app, &f, &audit_prefix)?.is_empty(),
        "audit kept at 6 years"
    );
    run_jobs(app, Some(six_years_on + 2 * year))?;
    ensure!(
        archive_keys(app, &f, &audit_prefix)?.is_empty(),
        "audit gone after 7 years"
    );
    let exported = export_all(app, &f.key, "", 10)?;
    ensure!(
        exported.is_empty(),
        "the export no longer lists them: {exported:?}"
    );
    Ok(())
}
