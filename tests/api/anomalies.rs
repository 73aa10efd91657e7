//! NFR-MON-001 anomaly alerts per tenant, end to end: real sign-ins and refreshes, then
//! `POST /internal/scheduled`, then the signed webhook notice at a loopback sink (the one of
//! `alerts`), `GET /v1/alerts` for operators and `GET /v1/tenant/alerts` for the tenant's
//! owner. Each test runs on a server of its own with thresholds lowered through the
//! `ALERT_ANOMALY_*` variables. The client address is set the way each runtime learns it
//! (`CF-Connecting-IP` on Workers, the trusted proxy's `X-Forwarded-For` on Spin), as the
//! per-address rate-limit test does; no address may appear in any answer or notice.

use serde_json::{json, Value};

use crate::alerts::{run_jobs, Sink};
use crate::helpers::{on_own_server, send, str_of, suffix, ApiResponse, Runtime, TestApp};

crate::contract_tests![
    failed_sign_in_burst_notifies_the_webhook_for_its_tenant_only_nfr_mon_001,
    refresh_token_reuse_raises_its_alert_nfr_mon_001,
    sign_ins_from_many_addresses_raise_the_account_alert_nfr_mon_001,
];

const PASSWORD: &str = "anomaly detection passphrase";

/// A tenant whose owner accepted the invitation.
struct Owner {
    tenant_id: String,
    domain: String,
    email: String,
}

fn owner(app: &TestApp, op: &str) -> Result<Owner, String> {
    let domain = format!("anomaly-{}", suffix()?);
    let email = format!("owner@{domain}.example");
    let body =
        json!({ "name": "Anomaly Corp", "domain": domain, "plan": "pro", "owner_email": email });
    let created = send(app, "POST", "/v1/tenants", Some(op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in {link:?}"))?;
    let accept = json!({ "token": token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&accept))?.expect_json(200)?;
    Ok(Owner {
        tenant_id: str_of(&created["tenant"]["id"]),
        domain,
        email,
    })
}

/// `POST /v1/auth/login` from client address `from`, as the runtime learns it.
fn login_from(
    app: &TestApp,
    domain: &str,
    email: &str,
    password: &str,
    from: &str,
) -> Result<ApiResponse, String> {
    let header = match app.runtime {
        Runtime::Workerd => ("cf-connecting-ip", from),
        Runtime::Spin => ("x-forwarded-for", from),
    };
    let body = json!({ "tenant": domain, "email": email, "password": password });
    app.request(
        "POST",
        "/v1/auth/login",
        &[("content-type", "application/json"), header],
        Some(body.to_string().into_bytes()),
    )
}

/// A webhook channel to the sink's `/webhook`.
fn webhook(app: &TestApp, op: &str, sink: &Sink) -> Result<(), String> {
    let body = json!({ "kind": "webhook", "url": sink.url("/webhook") });
    send(app, "POST", "/v1/alerts/channels", Some(op), Some(&body))?.expect_json(201)?;
    Ok(())
}

/// The firing notice the sink received for `dedup_key`, exactly one.
fn fired_notice(sink: &Sink, dedup_key: &str) -> Result<Value, String> {
    let hooks = sink.at("/webhook", &format!("\"{dedup_key}\""));
    ensure_eq!(hooks.len(), 1, "one webhook notice of {dedup_key}");
    let notice = hooks[0].json()?;
    ensure_eq!(notice["type"], json!("alert.fired"), "{notice}");
    Ok(notice)
}

/// The alerts `GET /v1/tenant/alerts` shows the tenant's owner.
fn tenant_alerts(app: &TestApp, t: &Owner) -> Result<Vec<Value>, String> {
    let tokens = login_from(app, &t.domain, &t.email, PASSWORD, "192.0.2.200")?.expect_json(200)?;
    let access = str_of(&tokens["access_token"]);
    let listed = send(app, "GET", "/v1/tenant/alerts", Some(&access), None)?.expect_json(200)?;
    Ok(listed["alerts"].as_array().cloned().unwrap_or_default())
}

fn failed_sign_in_burst_notifies_the_webhook_for_its_tenant_only_nfr_mon_001(
    app: &TestApp,
) -> Result<(), String> {
    on_own_server(
        app.runtime,
        &[
            ("ALERT_WEBHOOK_ORIGIN", "http://127.0.0.1:*"),
            ("ALERT_ANOMALY_FAILED_SIGN_INS", "5"),
        ],
        failed_sign_in_burst,
    )
}

/// Five refused sign-ins in tenant A (unknown accounts, so the owner is not locked out), one
/// in tenant B: the run fires `failed_sign_in_burst` for A only; the webhook hears of it once,
/// A's owner sees it, B's owner does not, and no address appears.
fn failed_sign_in_burst(app: &TestApp) -> Result<(), String> {
    let sink = Sink::start()?;
    let op = app.operator_token("operator", "anomaly-operator")?;
    let auditor = app.operator_token("auditor", "anomaly-auditor")?;
    webhook(app, &op, &sink)?;
    let (a, b) = (owner(app, &op)?, owner(app, &op)?);
    for i in 0..5 {
        let email = format!("nobody{i}@{}.example", a.domain);
        let resp = login_from(app, &a.domain, &email, "guess", &format!("198.51.100.{i}"))?;
        ensure_eq!(resp.status, 401, "a refused sign-in: {}", resp.excerpt());
    }
    let resp = login_from(app, &b.domain, &b.email, "guess", "198.51.100.9")?;
    ensure_eq!(resp.status, 401, "a refused sign-in: {}", resp.excerpt());
    run_jobs(app)?;

    let key = format!("edgeplane/failed_sign_in_burst/tenant:{}", a.tenant_id);
    let notice = fired_notice(&sink, &key)?;
    let alert = &notice["alert"];
    ensure_eq!(alert["rule"], json!("failed_sign_in_burst"), "{alert}");
    ensure_eq!(alert["tenant_id"], json!(a.tenant_id), "{alert}");
    ensure_eq!(alert["details"]["failed_sign_ins"], json!(5), "{alert}");
    let other = format!("edgeplane/failed_sign_in_burst/tenant:{}", b.tenant_id);
    ensure!(
        sink.at("/webhook", &other).is_empty(),
        "tenant B's single failure raised nothing"
    );
    let all = send(app, "GET", "/v1/alerts", Some(&auditor), None)?;
    ensure!(
        all.text().contains(&key),
        "operators see it: {}",
        all.text()
    );
    ensure!(!all.text().contains(&other), "not for B: {}", all.text());
    ensure!(
        !all.text().contains("198.51.100.") && sink.at("/webhook", "198.51.100.").is_empty(),
        "no address in the alert or its notice"
    );
    let seen = tenant_alerts(app, &a)?;
    ensure_eq!(seen.len(), 1, "A's owner sees its alert: {seen:?}");
    ensure_eq!(seen[0]["dedup_key"], json!(key), "{seen:?}");
    ensure!(tenant_alerts(app, &b)?.is_empty(), "B's owner sees none");
    Ok(())
}

fn refresh_token_reuse_raises_its_alert_nfr_mon_001(app: &TestApp) -> Result<(), String> {
    on_own_server(
        app.runtime,
        &[("ALERT_WEBHOOK_ORIGIN", "http://127.0.0.1:*")],
        refresh_reuse,
    )
}

/// A rotated refresh token presented again (the session is revoked) fires `refresh_reuse` for
/// its tenant on the next run, by default at the first detection.
fn refresh_reuse(app: &TestApp) -> Result<(), String> {
    let sink = Sink::start()?;
    let op = app.operator_token("operator", "anomaly-operator")?;
    webhook(app, &op, &sink)?;
    let t = owner(app, &op)?;
    let tokens = login_from(app, &t.domain, &t.email, PASSWORD, "192.0.2.1")?.expect_json(200)?;
    let first = json!({ "refresh_token": str_of(&tokens["refresh_token"]) });
    send(app, "POST", "/v1/auth/refresh", None, Some(&first))?.expect_json(200)?;
    run_jobs(app)?;
    let key = format!("edgeplane/refresh_reuse/tenant:{}", t.tenant_id);
    ensure!(
        sink.at("/webhook", &key).is_empty(),
        "a rotation is no reuse"
    );

    let again = send(app, "POST", "/v1/auth/refresh", None, Some(&first))?;
    ensure_eq!(again.status, 401, "reuse is refused: {}", again.excerpt());
    run_jobs(app)?;
    let notice = fired_notice(&sink, &key)?;
    ensure_eq!(notice["alert"]["severity"], json!("error"), "{notice}");
    ensure_eq!(
        notice["alert"]["details"]["reuse_detections"],
        json!(1),
        "{notice}"
    );
    Ok(())
}

fn sign_ins_from_many_addresses_raise_the_account_alert_nfr_mon_001(
    app: &TestApp,
) -> Result<(), String> {
    on_own_server(
        app.runtime,
        &[
            ("ALERT_WEBHOOK_ORIGIN", "http://127.0.0.1:*"),
            ("ALERT_ANOMALY_ACCOUNT_ADDRESSES", "2"),
        ],
        many_addresses,
    )
}

/// One account signing in from three addresses within the hour (threshold 2) fires
/// `account_many_addresses` for that account; two addresses do not. The notice carries the
/// count of distinct addresses, never one of them.
fn many_addresses(app: &TestApp) -> Result<(), String> {
    let sink = Sink::start()?;
    let op = app.operator_token("operator", "anomaly-operator")?;
    webhook(app, &op, &sink)?;
    let t = owner(app, &op)?;
    let addresses = ["203.0.113.41", "203.0.113.42", "2001:db8::43"];
    for from in &addresses[..2] {
        login_from(app, &t.domain, &t.email, PASSWORD, from)?.expect_json(200)?;
    }
    run_jobs(app)?;
    let prefix = format!(
        "edgeplane/account_many_addresses/tenant:{}/user:",
        t.tenant_id
    );
    ensure!(
        sink.at("/webhook", &prefix).is_empty(),
        "two addresses are fine"
    );

    login_from(app, &t.domain, &t.email, PASSWORD, addresses[2])?.expect_json(200)?;
    run_jobs(app)?;
    let hooks = sink.at("/webhook", &prefix);
    ensure_eq!(hooks.len(), 1, "one notice of the account");
    let notice = hooks[0].json()?;
    ensure_eq!(
        notice["alert"]["details"]["distinct_addresses"],
        json!(3),
        "{notice}"
    );
    ensure_eq!(notice["alert"]["tenant_id"], json!(t.tenant_id), "{notice}");
    for a in addresses {
        ensure!(
            sink.at("/webhook", a).is_empty(),
            "the address {a} is in a notice"
        );
    }
    Ok(())
}
