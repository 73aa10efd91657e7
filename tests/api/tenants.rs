//! Operator routes for tenants (UC-PROV-001, FR-OPS-001, FR-OPS-002) behind operator sign-in
//! (FR-SYS-004), with the run's development issuer.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, ApiResponse, TestApp};

crate::contract_tests![
    operator_routes_need_an_operator_token_fr_sys_004,
    auditors_read_but_cannot_write_fr_sys_004,
    provision_then_get_and_find_in_list_uc_prov_001,
    provision_retry_with_idempotency_key_applies_once,
    bad_input_and_taken_domain_change_nothing_err_val_400_409,
    suspend_activate_delete_restore_fr_ops_001_fr_ops_002,
    unknown_and_malformed_tenant_ids_are_404_err_res_404,
    deleted_tenant_is_purged_after_30_days_then_410_fr_ops_002,
];

fn unique_domain(prefix: &str) -> Result<String, String> {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{prefix}-{hex}"))
}

fn operator(app: &TestApp) -> Result<String, String> {
    app.operator_token("operator", "e2e-operator")
}

fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Result<ApiResponse, String> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    headers.extend_from_slice(extra);
    app.request(
        method,
        path,
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
}

fn provision(
    app: &TestApp,
    token: &str,
    domain: &str,
    extra: &[(&str, &str)],
) -> Result<ApiResponse, String> {
    let body = json!({ "name": "Acme Corp", "domain": domain, "plan": "pro", "owner_email": format!("owner@{domain}.example") });
    send(app, "POST", "/v1/tenants", token, Some(&body), extra)
}

fn operator_routes_need_an_operator_token_fr_sys_004(app: &TestApp) -> Result<(), String> {
    let resp = app.get("/v1/tenants")?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    let resp = app.get_with("/v1/tenants", &[("authorization", "Bearer not.a.jwt")])?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    // A token for another audience, and one signed by a key the issuer never published.
    let token = operator(app)?;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    ensure!(parts.len() == 3, "the dev issuer's token is a JWS: {token}");
    parts[2] = "AAAA".repeat(22);
    let forged = parts.join(".");
    let resp = app.get_with(
        "/v1/tenants",
        &[("authorization", &format!("Bearer {forged}"))],
    )?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    let resp = app.get_with(
        "/v1/tenants",
        &[("authorization", &format!("Bearer {token}"))],
    )?;
    resp.expect_json(200)?;
    Ok(())
}

fn auditors_read_but_cannot_write_fr_sys_004(app: &TestApp) -> Result<(), String> {
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    send(app, "GET", "/v1/tenants", &auditor, None, &[])?.expect_json(200)?;
    let resp = provision(app, &auditor, &unique_domain("aud")?, &[])?;
    assert_problem(&resp, 403, "access-denied")?;
    Ok(())
}

fn provision_then_get_and_find_in_list_uc_prov_001(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let domain = unique_domain("acme")?;
    let resp = provision(app, &token, &domain, &[])?;
    let created = resp.expect_json(201)?;
    let id = created["tenant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let location = format!("/v1/tenants/{id}");
    ensure_eq!(
        resp.header("location").unwrap_or_default(),
        location.as_str(),
        "Location of the new tenant"
    );
    ensure_eq!(
        created["tenant"]["status"].as_str(),
        Some("active"),
        "a new tenant is active"
    );
    ensure_eq!(
        created["tenant"]["domain"].as_str(),
        Some(domain.as_str()),
        "domain"
    );
    let link = created["invitation_link"].as_str().unwrap_or_default();
    ensure!(
        link.contains("token="),
        "the owner's invitation link is returned: {created}"
    );
    ensure!(
        created["owner_user_id"].is_string(),
        "owner user id: {created}"
    );

    let got =
        send(app, "GET", &format!("/v1/tenants/{id}"), &token, None, &[])?.expect_json(200)?;
    ensure_eq!(
        got["id"].as_str(),
        Some(id.as_str()),
        "GET returns the tenant"
    );
    let listed = send(
        app,
        "GET",
        &format!("/v1/tenants?q={domain}&limit=5"),
        &token,
        None,
        &[],
    )?
    .expect_json(200)?;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["id"].as_str()).collect())
        .unwrap_or_default();
    ensure_eq!(
        ids,
        vec![id.as_str()],
        "search by domain prefix finds exactly the tenant"
    );
    Ok(())
}

fn provision_retry_with_idempotency_key_applies_once(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let domain = unique_domain("idem")?;
    let key = format!("e2e-{domain}");
    let first = provision(app, &token, &domain, &[("idempotency-key", &key)])?.expect_json(201)?;
    let again = provision(app, &token, &domain, &[("idempotency-key", &key)])?;
    let second = again.expect_json(201)?;
    ensure_eq!(
        second["tenant"]["id"],
        first["tenant"]["id"],
        "a retry returns the first result"
    );
    ensure_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "the retry is marked as replayed"
    );
    let other = provision(
        app,
        &token,
        &unique_domain("idem2")?,
        &[("idempotency-key", &key)],
    )?;
    assert_problem(&other, 409, "conflict")?;
    Ok(())
}

fn bad_input_and_taken_domain_change_nothing_err_val_400_409(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let domain = unique_domain("dup")?;
    provision(app, &token, &domain, &[])?.expect_json(201)?;
    assert_problem(&provision(app, &token, &domain, &[])?, 409, "conflict")?;

    let fresh = unique_domain("bad")?;
    let cases = [
        (
            json!({ "name": "X", "domain": "Not A Domain", "plan": "pro", "owner_email": "o@x.example" }),
            "domain",
        ),
        (
            json!({ "name": "X", "domain": fresh, "plan": "pro", "owner_email": "not-an-email" }),
            "owner_email",
        ),
        (
            json!({ "name": "", "domain": fresh, "plan": "pro", "owner_email": "o@x.example" }),
            "name",
        ),
    ];
    for (body, field) in cases {
        let resp = send(app, "POST", "/v1/tenants", &token, Some(&body), &[])?;
        let problem = assert_problem(&resp, 400, "invalid-input")?;
        ensure_eq!(
            problem["errors"][0]["field"].as_str(),
            Some(field),
            "the problem names the field for {body}"
        );
    }
    // Well formed, but naming a plan or an app that does not exist: a business rule (422).
    let refused = [
        (
            json!({ "name": "X", "domain": fresh, "plan": "platinum", "owner_email": "o@x.example" }),
            "plan",
        ),
        (
            json!({ "name": "X", "domain": fresh, "plan": "pro", "owner_email": "o@x.example", "apps": ["no-such-app"] }),
            "apps",
        ),
    ];
    for (body, field) in refused {
        let resp = send(app, "POST", "/v1/tenants", &token, Some(&body), &[])?;
        let problem = assert_problem(&resp, 422, "business-rule")?;
        ensure_eq!(
            problem["errors"][0]["field"].as_str(),
            Some(field),
            "the problem names the field for {body}"
        );
    }
    let resp = send(
        app,
        "POST",
        "/v1/tenants",
        &token,
        Some(&json!({ "name": "X" })),
        &[],
    )?;
    assert_problem(&resp, 400, "invalid-input")?;
    let listed = send(
        app,
        "GET",
        &format!("/v1/tenants?q={fresh}"),
        &token,
        None,
        &[],
    )?
    .expect_json(200)?;
    ensure_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "no refused request created a tenant"
    );
    Ok(())
}

fn suspend_activate_delete_restore_fr_ops_001_fr_ops_002(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = provision(app, &token, &unique_domain("life")?, &[])?.expect_json(201)?;
    let id = created["tenant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = |action: &str| format!("/v1/tenants/{id}/{action}");

    let body = json!({ "reason": "unpaid invoice" });
    let v = send(app, "POST", &path("suspend"), &token, Some(&body), &[])?.expect_json(200)?;
    ensure_eq!(v["tenant"]["status"].as_str(), Some("suspended"), "suspend");
    ensure_eq!(
        v["edge"].as_str(),
        Some("synced"),
        "the edge marker is written"
    );
    let v = send(app, "POST", &path("activate"), &token, None, &[])?.expect_json(200)?;
    ensure_eq!(v["tenant"]["status"].as_str(), Some("active"), "activate");
    let v = send(
        app,
        "DELETE",
        &format!("/v1/tenants/{id}"),
        &token,
        None,
        &[],
    )?
    .expect_json(202)?;
    ensure_eq!(
        v["tenant"]["status"].as_str(),
        Some("pending_deletion"),
        "delete starts the grace period"
    );
    ensure!(
        v["tenant"]["purge_after"].as_i64().is_some(),
        "purge date set: {v}"
    );
    let resp = send(app, "POST", &path("suspend"), &token, None, &[])?;
    assert_problem(&resp, 409, "conflict")?;
    let v = send(app, "POST", &path("restore"), &token, None, &[])?.expect_json(200)?;
    ensure_eq!(v["tenant"]["status"].as_str(), Some("active"), "restore");
    Ok(())
}

fn unknown_and_malformed_tenant_ids_are_404_err_res_404(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    for id in ["not-a-uuid", "00000000-0000-4000-8000-000000000000"] {
        let resp = send(app, "GET", &format!("/v1/tenants/{id}"), &token, None, &[])?;
        assert_problem(&resp, 404, "not-found")?;
        let resp = send(
            app,
            "POST",
            &format!("/v1/tenants/{id}/suspend"),
            &token,
            None,
            &[],
        )?;
        assert_problem(&resp, 404, "not-found")?;
    }
    Ok(())
}

/// FR-OPS-002, ERR-RES-410: delete, let 30 days pass (the scheduled jobs run with a development
/// time override), purge, and the tenant answers 410 Gone; restore is no longer possible.
fn deleted_tenant_is_purged_after_30_days_then_410_fr_ops_002(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = provision(app, &token, &unique_domain("purge")?, &[])?.expect_json(201)?;
    let id = created["tenant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let deleted = send(
        app,
        "DELETE",
        &format!("/v1/tenants/{id}"),
        &token,
        None,
        &[],
    )?
    .expect_json(202)?;
    let purge_after = deleted["tenant"]["purge_after"]
        .as_i64()
        .ok_or_else(|| format!("no purge_after: {deleted}"))?;

    let cron = format!("Bearer {}", app.cron_secret);
    let headers = [
        ("authorization", cron.as_str()),
        ("content-type", "application/json"),
    ];
    // A day before the end of the grace period nothing is purged.
    let early = json!({ "cron": "e2e-purge", "now_ms": purge_after - 86_400_000 });
    app.request(
        "POST",
        "/internal/scheduled",
        &headers,
        Some(early.to_string().into_bytes()),
    )?
    .expect_json(200)?;
    send(app, "GET", &format!("/v1/tenants/{id}"), &token, None, &[])?.expect_json(200)?;

    let late = json!({ "cron": "e2e-purge", "now_ms": purge_after + 1 });
    let report = app
        .request(
            "POST",
            "/internal/scheduled",
            &headers,
            Some(late.to_string().into_bytes()),
        )?
        .expect_json(200)?;
    let purge = report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == "tenants.purge"))
        .ok_or_else(|| format!("no tenants.purge job: {report}"))?;
    ensure!(
        purge["affected"].as_u64().unwrap_or(0) >= 1,
        "the purge job purged the tenant: {report}"
    );

    let resp = send(app, "GET", &format!("/v1/tenants/{id}"), &token, None, &[])?;
    assert_problem(&resp, 410, "gone")?;
    let resp = send(
        app,
        "POST",
        &format!("/v1/tenants/{id}/restore"),
        &token,
        None,
        &[],
    )?;
    assert_problem(&resp, 410, "gone")?;
    Ok(())
}
