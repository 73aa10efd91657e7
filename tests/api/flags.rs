//! Feature flags (FR-FLAG-001 configuration, FR-FLAG-002 delivery): operators set a tenant's
//! flags; managed apps evaluate them through OFREP or read the plain snapshot, with API keys
//! whose tenant, app and scope are checked at the edge (FR-SYS-002, FR-SYS-003, FR-OPS-001).

use serde_json::{json, Value};

use crate::helpers::{assert_problem, str_of, suffix, ApiResponse, TestApp, EDGE_FRESHNESS};

crate::contract_tests![
    operator_sets_flags_and_ofrep_serves_them_fr_flag_001_002,
    a_change_is_served_at_once_with_a_new_etag_fr_flag_002,
    ofrep_reasons_and_error_shapes_fr_flag_002,
    app_wide_keys_name_the_tenant_and_never_read_another,
    suspended_and_deleted_tenants_get_no_flags_fr_ops_001,
    disabled_app_and_revoked_key_are_401_fr_sys_003,
    changes_reach_another_isolate_within_a_second_fr_flag_002_fr_sys_003,
    browser_keys_work_only_from_allowed_origins,
    plain_snapshot_for_server_keys_with_etag,
    flag_writes_are_validated_audited_and_role_checked,
    plan_defaults_reach_tenants_without_overrides_fr_tenant_003,
    openfeature_sdk_evaluates_against_the_worker,
];

/// An operator's request with an optional JSON body.
fn op_send(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<ApiResponse, String> {
    let token = app.operator_token("operator", "e2e-flags-operator")?;
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

/// An app's request: `key` in `X-API-Key`, a JSON body, extra headers.
fn app_send(
    app: &TestApp,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Result<ApiResponse, String> {
    let mut headers = vec![("x-api-key", key)];
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

/// A registered app, a tenant using it, and keys.
struct World {
    app_id: String,
    tenant: String,
    /// Tenant-bound, `flags:read`.
    key: String,
    /// App-wide, `flags:read`.
    wide: String,
}

fn app_with_origins(app: &TestApp, origins: &[&str]) -> Result<String, String> {
    let body = json!({ "name": format!("Flags {}", suffix()?), "allowed_origins": origins });
    let created = op_send(app, "POST", "/v1/apps", Some(&body))?.expect_json(201)?;
    Ok(str_of(&created["id"]))
}

fn tenant_with(app: &TestApp, apps: &[&str]) -> Result<String, String> {
    let domain = format!("flags-{}", suffix()?);
    let body = json!({
        "name": "Flags Tenant", "domain": domain, "plan": "pro",
        "owner_email": format!("owner@{domain}.example"), "apps": apps,
    });
    let created = op_send(app, "POST", "/v1/tenants", Some(&body))?.expect_json(201)?;
    Ok(str_of(&created["tenant"]["id"]))
}

fn issue(app: &TestApp, app_id: &str, body: &Value) -> Result<String, String> {
    let issued =
        op_send(app, "POST", &format!("/v1/apps/{app_id}/keys"), Some(body))?.expect_json(201)?;
    Ok(str_of(&issued["secret"]))
}

fn world(app: &TestApp) -> Result<World, String> {
    let app_id = app_with_origins(app, &["https://shop.example"])?;
    let tenant = tenant_with(app, &[&app_id])?;
    let key = issue(
        app,
        &app_id,
        &json!({ "scopes": ["flags:read"], "tenant_id": tenant }),
    )?;
    let wide = issue(app, &app_id, &json!({ "scopes": ["flags:read"] }))?;
    Ok(World {
        app_id,
        tenant,
        key,
        wide,
    })
}

/// The id of the world's tenant-bound key, from the app's key list.
fn bound_key_id(app: &TestApp, w: &World) -> Result<String, String> {
    let keys =
        op_send(app, "GET", &format!("/v1/apps/{}/keys", w.app_id), None)?.expect_json(200)?;
    keys["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|k| k["tenant_id"].as_str() == Some(w.tenant.as_str()))
        })
        .map(|k| str_of(&k["id"]))
        .ok_or_else(|| "the tenant-bound key is listed".to_owned())
}

fn put_flag(app: &TestApp, tenant: &str, key: &str, body: &Value) -> Result<Value, String> {
    let resp = op_send(
        app,
        "PUT",
        &format!("/v1/tenants/{tenant}/flags/{key}"),
        Some(body),
    )?;
    match resp.status {
        200 | 201 => resp.json(),
        _ => Err(format!("PUT flag {key}: {}", resp.excerpt())),
    }
}

fn bulk(app: &TestApp, key: &str, ctx: &Value) -> Result<ApiResponse, String> {
    app_send(
        app,
        "POST",
        "/ofrep/v1/evaluate/flags",
        key,
        Some(&json!({ "context": ctx })),
        &[],
    )
}

fn entry<'a>(bulk: &'a Value, key: &str) -> Option<&'a Value> {
    bulk["flags"]
        .as_array()?
        .iter()
        .find(|f| f["key"].as_str() == Some(key))
}

fn operator_sets_flags_and_ofrep_serves_them_fr_flag_001_002(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    let created = put_flag(
        app,
        &w.tenant,
        "new-checkout",
        &json!({
            "type": "boolean", "value": false, "description": "The new checkout",
            "rules": [{"name": "staff", "conditions": [{"attribute": "email", "op": "ends_with", "values": ["@shop.example"]}], "value": true}]
        }),
    )?;
    ensure_eq!(
        created["edge"],
        json!("synced"),
        "the snapshot was published"
    );
    ensure_eq!(
        created["overridden"],
        json!(true),
        "an operator flag overrides"
    );
    put_flag(
        app,
        &w.tenant,
        "banner",
        &json!({"type": "string", "value": "spring"}),
    )?;
    put_flag(
        app,
        &w.tenant,
        "seats",
        &json!({"type": "number", "value": 25}),
    )?;

    let listed =
        op_send(app, "GET", &format!("/v1/tenants/{}/flags", w.tenant), None)?.expect_json(200)?;
    let keys: Vec<String> = listed["flags"]
        .as_array()
        .map(|a| a.iter().map(|f| str_of(&f["key"])).collect())
        .unwrap_or_default();
    ensure!(
        ["banner", "new-checkout", "seats"]
            .iter()
            .all(|k| keys.iter().any(|x| x == k)),
        "the list holds the flags set: {keys:?}"
    );

    let staff = bulk(
        app,
        &w.key,
        &json!({"targetingKey": "u1", "email": "ana@shop.example"}),
    )?
    .expect_json(200)?;
    let nc = entry(&staff, "new-checkout").ok_or("new-checkout missing from the bulk")?;
    ensure_eq!(nc["value"], json!(true), "staff match the rule");
    ensure_eq!(nc["reason"], json!("TARGETING_MATCH"), "reason");
    ensure_eq!(nc["variant"], json!("staff"), "variant is the rule name");
    let other = bulk(
        app,
        &w.key,
        &json!({"targetingKey": "u2", "email": "bo@else.example"}),
    )?
    .expect_json(200)?;
    let nc = entry(&other, "new-checkout").ok_or("new-checkout missing")?;
    ensure_eq!(
        (nc["value"].clone(), nc["reason"].clone()),
        (json!(false), json!("DEFAULT")),
        "no rule matched"
    );
    let banner = entry(&other, "banner").ok_or("banner missing")?;
    ensure_eq!(
        (banner["value"].clone(), banner["reason"].clone()),
        (json!("spring"), json!("STATIC")),
        "a flag without rules is static"
    );

    let one = app_send(
        app,
        "POST",
        "/ofrep/v1/evaluate/flags/seats",
        &w.key,
        Some(&json!({"context": {"targetingKey": "u1"}})),
        &[],
    )?
    .expect_json(200)?;
    ensure_eq!(
        (one["key"].clone(), one["value"].clone()),
        (json!("seats"), json!(25)),
        "single evaluation"
    );
    let missing = app_send(
        app,
        "POST",
        "/ofrep/v1/evaluate/flags/nope",
        &w.key,
        Some(&json!({"context": {}})),
        &[],
    )?;
    let p = assert_problem(&missing, 404, "not-found")?;
    ensure_eq!(p["errorCode"], json!("FLAG_NOT_FOUND"), "OFREP error code");
    ensure_eq!(p["key"], json!("nope"), "OFREP key");
    Ok(())
}

fn a_change_is_served_at_once_with_a_new_etag_fr_flag_002(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    put_flag(
        app,
        &w.tenant,
        "dark-mode",
        &json!({"type": "boolean", "value": false}),
    )?;
    let ctx = json!({"targetingKey": "u1"});
    let first = bulk(app, &w.key, &ctx)?;
    let body = first.expect_json(200)?;
    let etag = first
        .header("etag")
        .ok_or("the bulk response has an ETag")?
        .to_owned();
    ensure_eq!(
        entry(&body, "dark-mode").map(|e| e["value"].clone()),
        Some(json!(false)),
        "initial value"
    );
    let again = app_send(
        app,
        "POST",
        "/ofrep/v1/evaluate/flags",
        &w.key,
        Some(&json!({"context": ctx})),
        &[("if-none-match", &etag)],
    )?;
    ensure_eq!(again.status, 304, "unchanged set and context: 304");
    ensure_eq!(
        again.header("etag"),
        Some(etag.as_str()),
        "304 repeats the tag"
    );
    // Another context is another representation.
    let other = app_send(
        app,
        "POST",
        "/ofrep/v1/evaluate/flags",
        &w.key,
        Some(&json!({"context": {"targetingKey": "u2"}})),
        &[("if-none-match", &etag)],
    )?;
    ensure_eq!(other.status, 200, "another context is not the tagged one");

    put_flag(
        app,
        &w.tenant,
        "dark-mode",
        &json!({"type": "boolean", "value": true}),
    )?;
    let after = app_send(
        app,
        "POST",
        "/ofrep/v1/evaluate/flags",
        &w.key,
        Some(&json!({"context": ctx})),
        &[("if-none-match", &etag)],
    )?;
    let body = after.expect_json(200)?;
    ensure!(
        after.header("etag").is_some_and(|t| t != etag),
        "a change gives a new ETag"
    );
    ensure_eq!(
        entry(&body, "dark-mode").map(|e| e["value"].clone()),
        Some(json!(true)),
        "the next read serves the change"
    );
    Ok(())
}

fn ofrep_reasons_and_error_shapes_fr_flag_002(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    put_flag(
        app,
        &w.tenant,
        "rollout",
        &json!({"type": "string", "value": "off", "rules": [{"rollout": {"variants": [
            {"variant": "a", "value": "a", "weight": 50}, {"variant": "b", "value": "b", "weight": 50}]}}]}),
    )?;
    put_flag(
        app,
        &w.tenant,
        "killed",
        &json!({"type": "boolean", "value": true, "enabled": false}),
    )?;
    let path = "/ofrep/v1/evaluate/flags/rollout";
    let split = app_send(
        app,
        "POST",
        path,
        &w.key,
        Some(&json!({"context": {"targetingKey": "user-7"}})),
        &[],
    )?
    .expect_json(200)?;
    ensure_eq!(split["reason"], json!("SPLIT"), "a rollout splits");
    let again = app_send(
        app,
        "POST",
        path,
        &w.key,
        Some(&json!({"context": {"targetingKey": "user-7"}})),
        &[],
    )?
    .expect_json(200)?;
    ensure_eq!(again["value"], split["value"], "bucketing is deterministic");

    let no_key = app_send(
        app,
        "POST",
        path,
        &w.key,
        Some(&json!({"context": {}})),
        &[],
    )?;
    let p = assert_problem(&no_key, 400, "invalid-input")?;
    ensure_eq!(p["errorCode"], json!("TARGETING_KEY_MISSING"), "OFREP code");
    let bulk_no_key = bulk(app, &w.key, &json!({}))?.expect_json(200)?;
    ensure_eq!(
        entry(&bulk_no_key, "rollout").map(|e| e["errorCode"].clone()),
        Some(json!("TARGETING_KEY_MISSING")),
        "the bulk reports the error per flag"
    );
    let killed = entry(&bulk_no_key, "killed").ok_or("killed missing")?;
    ensure_eq!(killed["reason"], json!("DISABLED"), "a disabled flag");
    ensure!(
        killed.get("value").is_none(),
        "a disabled flag has no value: {killed}"
    );

    let garbage = app.request(
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[
            ("x-api-key", w.key.as_str()),
            ("content-type", "application/json"),
        ],
        Some(b"{not json".to_vec()),
    )?;
    let p = assert_problem(&garbage, 400, "invalid-input")?;
    ensure_eq!(p["errorCode"], json!("PARSE_ERROR"), "unparsable body");
    let bad_ctx = app_send(
        app,
        "POST",
        path,
        &w.key,
        Some(&json!({"context": [1]})),
        &[],
    )?;
    let p = assert_problem(&bad_ctx, 400, "invalid-input")?;
    ensure_eq!(
        p["errorCode"],
        json!("INVALID_CONTEXT"),
        "context must be an object"
    );
    let bad_tk = app_send(
        app,
        "POST",
        path,
        &w.key,
        Some(&json!({"context": {"targetingKey": 5}})),
        &[],
    )?;
    let p = assert_problem(&bad_tk, 400, "invalid-input")?;
    ensure_eq!(
        p["errorCode"],
        json!("INVALID_CONTEXT"),
        "targetingKey must be a string"
    );

    let no_auth = app.request("POST", "/ofrep/v1/evaluate/flags", &[], None)?;
    assert_problem(&no_auth, 401, "invalid-credentials")?;
    let wrong_scope = issue(
        app,
        &w.app_id,
        &json!({"scopes": ["bill:write"], "tenant_id": w.tenant}),
    )?;
    assert_problem(&bulk(app, &wrong_scope, &json!({}))?, 403, "access-denied")?;
    Ok(())
}

fn app_wide_keys_name_the_tenant_and_never_read_another(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    put_flag(
        app,
        &w.tenant,
        "secret-feature",
        &json!({"type": "boolean", "value": true}),
    )?;
    let p = assert_problem(&bulk(app, &w.wide, &json!({}))?, 400, "invalid-input")?;
    ensure_eq!(
        p["errorCode"],
        json!("INVALID_CONTEXT"),
        "an app-wide key needs tenantId"
    );
    let ok = bulk(app, &w.wide, &json!({"tenantId": w.tenant}))?.expect_json(200)?;
    ensure!(
        entry(&ok, "secret-feature").is_some(),
        "the app-wide key reads its tenant"
    );

    // A tenant that does not use the app, and a tenant of another app.
    let stranger = tenant_with(app, &[])?;
    put_flag(
        app,
        &stranger,
        "secret-feature",
        &json!({"type": "boolean", "value": false}),
    )?;
    let resp = bulk(app, &w.wide, &json!({"tenantId": stranger}))?;
    assert_problem(&resp, 404, "not-found")?;
    ensure!(
        !resp.text().contains("secret-feature"),
        "no data of the other tenant"
    );
    // A tenant-bound key naming another tenant.
    let resp = bulk(app, &w.key, &json!({"tenantId": stranger}))?;
    assert_problem(&resp, 404, "not-found")?;
    let resp = app_send(
        app,
        "GET",
        &format!("/v1/flags?tenant={stranger}"),
        &w.key,
        None,
        &[],
    )?;
    assert_problem(&resp, 404, "not-found")?;
    let resp = bulk(app, &w.wide, &json!({"tenantId": "not-a-uuid"}))?;
    assert_problem(&resp, 404, "not-found")?;
    // Enabling the app for the tenant opens it to the app-wide key.
    op_send(
        app,
        "POST",
        &format!("/v1/tenants/{stranger}/apps/{}", w.app_id),
        None,
    )?
    .expect_json(200)?;
    let opened = bulk(app, &w.wide, &json!({"tenantId": stranger}))?.expect_json(200)?;
    ensure_eq!(
        entry(&opened, "secret-feature").map(|e| e["value"].clone()),
        Some(json!(false)),
        "served once the app is enabled"
    );
    Ok(())
}

fn suspended_and_deleted_tenants_get_no_flags_fr_ops_001(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    bulk(app, &w.key, &json!({}))?.expect_json(200)?;
    op_send(
        app,
        "POST",
        &format!("/v1/tenants/{}/suspend", w.tenant),
        Some(&json!({"reason": "unpaid"})),
    )?
    .expect_json(200)?;
    let p = assert_problem(&bulk(app, &w.key, &json!({}))?, 403, "access-denied")?;
    ensure_eq!(p["reason"], json!("tenant_suspended"), "reason");
    let p = assert_problem(
        &bulk(app, &w.wide, &json!({"tenantId": w.tenant}))?,
        403,
        "access-denied",
    )?;
    ensure_eq!(
        p["reason"],
        json!("tenant_suspended"),
        "app-wide key, same refusal"
    );
    op_send(
        app,
        "POST",
        &format!("/v1/tenants/{}/activate", w.tenant),
        None,
    )?
    .expect_json(200)?;
    bulk(app, &w.key, &json!({}))?.expect_json(200)?;
    let deleted = op_send(app, "DELETE", &format!("/v1/tenants/{}", w.tenant), None)?;
    ensure_eq!(
        deleted.status,
        202,
        "deletion accepted: {}",
        deleted.excerpt()
    );
    assert_problem(&bulk(app, &w.key, &json!({}))?, 410, "gone")?;
    assert_problem(
        &bulk(app, &w.wide, &json!({"tenantId": w.tenant}))?,
        410,
        "gone",
    )?;
    Ok(())
}

fn disabled_app_and_revoked_key_are_401_fr_sys_003(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    bulk(app, &w.key, &json!({}))?.expect_json(200)?;
    op_send(
        app,
        "PATCH",
        &format!("/v1/apps/{}", w.app_id),
        Some(&json!({"status": "disabled"})),
    )?
    .expect_json(200)?;
    let p = assert_problem(&bulk(app, &w.key, &json!({}))?, 401, "invalid-credentials")?;
    ensure_eq!(p["reason"], json!("app_disabled"), "reason");
    op_send(
        app,
        "PATCH",
        &format!("/v1/apps/{}", w.app_id),
        Some(&json!({"status": "active"})),
    )?
    .expect_json(200)?;
    bulk(app, &w.key, &json!({}))?.expect_json(200)?;
    let bound = bound_key_id(app, &w)?;
    let revoked = op_send(
        app,
        "DELETE",
        &format!("/v1/apps/{}/keys/{bound}", w.app_id),
        None,
    )?;
    ensure_eq!(revoked.status, 204, "revoked: {}", revoked.excerpt());
    let p = assert_problem(&bulk(app, &w.key, &json!({}))?, 401, "invalid-credentials")?;
    ensure_eq!(p["reason"], json!("api_key_revoked"), "reason");
    Ok(())
}

/// What an isolate holds in memory (flag snapshots, key records, app and tenant markers) is
/// served afresh by the isolate that made a change at once, and by another isolate of the
/// location within a second (README, "Freshness at the edge").
fn changes_reach_another_isolate_within_a_second_fr_flag_002_fr_sys_003(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    let other = app.second_isolate();
    let banner = |target: &TestApp| -> Result<Value, String> {
        let v = bulk(target, &w.key, &json!({}))?.expect_json(200)?;
        Ok(entry(&v, "banner").map_or(Value::Null, |e| e["value"].clone()))
    };
    let on = json!({"type": "boolean", "value": true, "enabled": true});
    let off = json!({"type": "boolean", "value": false, "enabled": true});
    put_flag(app, &w.tenant, "banner", &on)?;
    // The other isolate reads (and holds) the snapshot, the key record and the markers.
    ensure_eq!(banner(&other)?, json!(true), "warm");
    put_flag(app, &w.tenant, "banner", &off)?;
    ensure_eq!(banner(app)?, json!(false), "the writing isolate, at once");
    std::thread::sleep(EDGE_FRESHNESS);
    ensure_eq!(
        banner(&other)?,
        json!(false),
        "another isolate, within a second"
    );

    let refused = |target: &TestApp, status: u16, name: &str, reason: &str| {
        let p = assert_problem(&bulk(target, &w.key, &json!({}))?, status, name)?;
        ensure_eq!(p["reason"], json!(reason), "reason");
        Ok::<(), String>(())
    };
    let tenant = |action: &str| {
        let path = format!("/v1/tenants/{}/{action}", w.tenant);
        op_send(app, "POST", &path, Some(&json!({})))?.expect_json(200)
    };
    tenant("suspend")?;
    refused(app, 403, "access-denied", "tenant_suspended")?;
    std::thread::sleep(EDGE_FRESHNESS);
    refused(&other, 403, "access-denied", "tenant_suspended")?;
    tenant("activate")?;
    std::thread::sleep(EDGE_FRESHNESS);
    ensure_eq!(banner(&other)?, json!(false), "reactivated, everywhere");

    let app_status = |status: &str| {
        let path = format!("/v1/apps/{}", w.app_id);
        op_send(app, "PATCH", &path, Some(&json!({ "status": status })))?.expect_json(200)
    };
    app_status("disabled")?;
    refused(app, 401, "invalid-credentials", "app_disabled")?;
    std::thread::sleep(EDGE_FRESHNESS);
    refused(&other, 401, "invalid-credentials", "app_disabled")?;
    app_status("active")?;
    std::thread::sleep(EDGE_FRESHNESS);
    ensure_eq!(banner(&other)?, json!(false), "enabled again, everywhere");

    let bound = bound_key_id(app, &w)?;
    let path = format!("/v1/apps/{}/keys/{bound}", w.app_id);
    op_send(app, "DELETE", &path, None)?.expect_status(204)?;
    refused(app, 401, "invalid-credentials", "api_key_revoked")?;
    std::thread::sleep(EDGE_FRESHNESS);
    refused(&other, 401, "invalid-credentials", "api_key_revoked")
}

fn browser_keys_work_only_from_allowed_origins(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    let browser = issue(
        app,
        &w.app_id,
        &json!({"scopes": ["flags:read"], "tenant_id": w.tenant, "kind": "browser"}),
    )?;
    let pre = app.request(
        "OPTIONS",
        "/ofrep/v1/evaluate/flags",
        &[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        None,
    )?;
    ensure_eq!(pre.status, 204, "preflight: {}", pre.excerpt());
    ensure_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://shop.example"),
        "preflight allows the origin"
    );
    ensure!(
        pre.header("access-control-allow-headers")
            .is_some_and(|h| h.contains("authorization")),
        "preflight allows the key header"
    );
    let ok = app.request(
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[
            ("authorization", &format!("Bearer {browser}")),
            ("origin", "https://shop.example"),
            ("content-type", "application/json"),
        ],
        Some(b"{\"context\":{\"targetingKey\":\"v1\"}}".to_vec()),
    )?;
    ok.expect_json(200)?;
    ensure_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example"),
        "an allowed origin may read the response"
    );
    ensure!(
        ok.header("access-control-expose-headers")
            .is_some_and(|h| h.contains("ETag")),
        "the page may read the ETag"
    );
    let other = app.request(
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[("x-api-key", &browser), ("origin", "https://evil.example")],
        None,
    )?;
    let p = assert_problem(&other, 403, "access-denied")?;
    ensure_eq!(p["reason"], json!("origin_not_allowed"), "reason");
    // A server key from a page gets no CORS grant.
    let server = app.request(
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[("x-api-key", &w.key), ("origin", "https://shop.example")],
        None,
    )?;
    server.expect_json(200)?;
    ensure!(
        server.header("access-control-allow-origin").is_none(),
        "no CORS grant for a server key"
    );
    // Browser keys evaluate only; the definitions are for servers.
    let defs = app_send(app, "GET", "/v1/flags", &browser, None, &[])?;
    assert_problem(&defs, 403, "access-denied")?;
    // Changing the app's origins takes effect.
    op_send(
        app,
        "PATCH",
        &format!("/v1/apps/{}", w.app_id),
        Some(&json!({"allowed_origins": ["https://new.example"]})),
    )?
    .expect_json(200)?;
    let moved = app.request(
        "POST",
        "/ofrep/v1/evaluate/flags",
        &[("x-api-key", &browser), ("origin", "https://shop.example")],
        None,
    )?;
    assert_problem(&moved, 403, "access-denied")?;
    Ok(())
}

fn plain_snapshot_for_server_keys_with_etag(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    let set = put_flag(
        app,
        &w.tenant,
        "limits",
        &json!({"type": "json", "value": {"max": 3}, "rules": [{"conditions": [{"attribute": "plan", "op": "in", "values": ["gold"]}], "value": {"max": 9}}]}),
    )?;
    let resp = app_send(app, "GET", "/v1/flags", &w.key, None, &[])?;
    let snap = resp.expect_json(200)?;
    ensure_eq!(snap["tenant_id"], json!(w.tenant), "the key's tenant");
    ensure_eq!(snap["version"], set["set_version"], "the flag-set version");
    let etag = resp.header("etag").ok_or("an ETag")?.to_owned();
    ensure_eq!(
        etag,
        format!("\"{}\"", set["set_version"]),
        "ETag is the version"
    );
    let limits = snap["flags"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["key"] == "limits"))
        .ok_or("limits listed")?;
    ensure_eq!(
        limits["rules"][0]["value"],
        json!({"max": 9}),
        "rules are included"
    );
    let again = app_send(
        app,
        "GET",
        "/v1/flags",
        &w.key,
        None,
        &[("if-none-match", &etag)],
    )?;
    ensure_eq!(again.status, 304, "unchanged");
    let wide = app_send(
        app,
        "GET",
        &format!("/v1/flags?tenant={}", w.tenant),
        &w.wide,
        None,
        &[],
    )?;
    wide.expect_json(200)?;
    let bad = app_send(app, "GET", "/v1/flags?foo=1", &w.key, None, &[])?;
    assert_problem(&bad, 400, "invalid-input")?;
    Ok(())
}

fn flag_writes_are_validated_audited_and_role_checked(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    let path = format!("/v1/tenants/{}/flags/beta", w.tenant);
    let cases = [
        (json!({"type": "boolean", "value": "yes"}), "value"),
        (json!({"type": "colour", "value": 1}), "type"),
        (
            json!({"type": "boolean", "value": true, "rules": [{"value": "x"}]}),
            "rules[0].value",
        ),
        (
            json!({"type": "boolean", "value": true, "rules": [{"conditions": [{"attribute": "a", "op": "like", "values": [1]}], "value": true}]}),
            "rules[0]",
        ),
        (json!({"type": "boolean", "value": true, "extra": 1}), ""),
    ];
    for (body, field) in cases {
        let resp = op_send(app, "PUT", &path, Some(&body))?;
        let p = assert_problem(&resp, 400, "invalid-input")?;
        if !field.is_empty() {
            ensure_eq!(
                p["errors"][0]["field"].as_str(),
                Some(field),
                "the problem names the field for {body}"
            );
        }
    }
    let bad_key = op_send(
        app,
        "PUT",
        &format!("/v1/tenants/{}/flags/-bad", w.tenant),
        Some(&json!({"type": "boolean", "value": true})),
    )?;
    assert_problem(&bad_key, 400, "invalid-input")?;
    let listed =
        op_send(app, "GET", &format!("/v1/tenants/{}/flags", w.tenant), None)?.expect_json(200)?;
    ensure!(
        listed["flags"]
            .as_array()
            .is_some_and(|a| a.iter().all(|f| f["key"] != "beta")),
        "refused writes changed nothing"
    );

    let auditor = app.operator_token("auditor", "e2e-flags-auditor")?;
    let auth = format!("Bearer {auditor}");
    let read = app.request(
        "GET",
        &format!("/v1/tenants/{}/flags", w.tenant),
        &[("authorization", &auth)],
        None,
    )?;
    read.expect_json(200)?;
    let write = app.request(
        "PUT",
        &path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(
            json!({"type": "boolean", "value": true})
                .to_string()
                .into_bytes(),
        ),
    )?;
    assert_problem(&write, 403, "access-denied")?;
    let unknown = op_send(
        app,
        "PUT",
        "/v1/tenants/00000000-0000-4000-8000-000000000000/flags/beta",
        Some(&json!({"type": "boolean", "value": true})),
    )?;
    assert_problem(&unknown, 404, "not-found")?;
    let removed = op_send(
        app,
        "DELETE",
        &format!("/v1/tenants/{}/flags/never-set", w.tenant),
        None,
    )?;
    assert_problem(&removed, 404, "not-found")?;

    let created = op_send(
        app,
        "PUT",
        &path,
        Some(&json!({"type": "boolean", "value": true})),
    )?;
    ensure_eq!(created.status, 201, "created: {}", created.excerpt());
    let replaced = op_send(
        app,
        "PUT",
        &path,
        Some(&json!({"type": "boolean", "value": false})),
    )?;
    ensure_eq!(replaced.status, 200, "replaced: {}", replaced.excerpt());
    ensure_eq!(replaced.json()?["version"], json!(2), "the flag's version");
    let gone = op_send(app, "DELETE", &path, None)?;
    ensure_eq!(gone.status, 204, "removed: {}", gone.excerpt());
    Ok(())
}

fn plan_defaults_reach_tenants_without_overrides_fr_tenant_003(
    app: &TestApp,
) -> Result<(), String> {
    // The enterprise plan is used by no other test: its defaults touch only these tenants.
    let app_id = app_with_origins(app, &[])?;
    let mk = |overrides: bool| -> Result<(String, String), String> {
        let domain = format!("plan-{}", suffix()?);
        let body = json!({"name": "Plan Tenant", "domain": domain, "plan": "enterprise",
            "owner_email": format!("owner@{domain}.example"), "apps": [app_id]});
        let t = str_of(
            &op_send(app, "POST", "/v1/tenants", Some(&body))?.expect_json(201)?["tenant"]["id"],
        );
        if overrides {
            put_flag(
                app,
                &t,
                "seats-limit",
                &json!({"type": "number", "value": 1000}),
            )?;
        }
        let key = issue(
            app,
            &app_id,
            &json!({"scopes": ["flags:read"], "tenant_id": t}),
        )?;
        Ok((t, key))
    };
    let (_, follower) = mk(false)?;
    let (_, overrider) = mk(true)?;
    let set = op_send(
        app,
        "PUT",
        "/v1/plans/enterprise/flags/seats-limit",
        Some(&json!({"type": "number", "value": 250, "description": "Seats"})),
    )?
    .expect_json(200)?;
    ensure_eq!(
        set["tenants_changed"],
        json!(1),
        "only the follower changed: {set}"
    );
    let value = |key: &str| -> Result<Value, String> {
        let v = bulk(app, key, &json!({}))?.expect_json(200)?;
        Ok(entry(&v, "seats-limit")
            .map(|e| e["value"].clone())
            .unwrap_or(Value::Null))
    };
    ensure_eq!(
        value(&follower)?,
        json!(250),
        "the follower serves the plan default"
    );
    ensure_eq!(value(&overrider)?, json!(1000), "the override stays");
    let listed = op_send(app, "GET", "/v1/plans/enterprise/flags", None)?.expect_json(200)?;
    ensure!(
        listed["flags"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["key"] == "seats-limit")),
        "the plan lists its default: {listed}"
    );
    let bad = op_send(
        app,
        "PUT",
        "/v1/plans/enterprise/flags/seats-limit",
        Some(&json!({"type": "number", "value": "x"})),
    )?;
    assert_problem(&bad, 400, "invalid-input")?;
    let unknown = op_send(app, "GET", "/v1/plans/platinum/flags", None)?;
    assert_problem(&unknown, 404, "not-found")?;
    let removed = op_send(
        app,
        "DELETE",
        "/v1/plans/enterprise/flags/seats-limit",
        None,
    )?
    .expect_json(200)?;
    ensure_eq!(
        removed["tenants_changed"],
        json!(1),
        "the follower loses it: {removed}"
    );
    ensure_eq!(value(&follower)?, Value::Null, "gone from the follower");
    ensure_eq!(value(&overrider)?, json!(1000), "the override stays");
    Ok(())
}

/// Unmodified OpenFeature SDKs with their OFREP providers (npm) evaluate boolean, string and
/// number flags against the running worker: the server SDK with an app's server key, and the
/// web SDK with a browser key from an allowed origin (and only defaults from another).
fn openfeature_sdk_evaluates_against_the_worker(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    put_flag(
        app,
        &w.tenant,
        "sdk-bool",
        &json!({"type": "boolean", "value": true}),
    )?;
    put_flag(
        app,
        &w.tenant,
        "sdk-string",
        &json!({"type": "string", "value": "blue", "rules": [
        {"conditions": [{"attribute": "plan", "op": "eq", "values": ["gold"]}], "value": "gold"}]}),
    )?;
    put_flag(
        app,
        &w.tenant,
        "sdk-number",
        &json!({"type": "number", "value": 42}),
    )?;
    put_flag(
        app,
        &w.tenant,
        "sdk-off",
        &json!({"type": "boolean", "value": true, "enabled": false}),
    )?;
    let got = run_node("tests/harness/openfeature.mjs", &[&app.base_url, &w.key])?;
    ensure_eq!(
        got["bool"]["value"],
        json!(true),
        "boolean via the SDK: {got}"
    );
    ensure_eq!(
        got["string"]["value"],
        json!("blue"),
        "string via the SDK: {got}"
    );
    ensure_eq!(
        got["gold"]["value"],
        json!("gold"),
        "targeted string via the SDK: {got}"
    );
    ensure_eq!(
        got["gold"]["reason"],
        json!("TARGETING_MATCH"),
        "reason via the SDK: {got}"
    );
    ensure_eq!(
        got["number"]["value"],
        json!(42),
        "number via the SDK: {got}"
    );
    ensure_eq!(
        got["missing"]["value"],
        json!(7),
        "an unknown flag gives the default: {got}"
    );
    ensure_eq!(
        got["missing"]["errorCode"],
        json!("FLAG_NOT_FOUND"),
        "and says why: {got}"
    );
    // The OpenFeature web SDK with its OFREP web provider, as a page of an allowed origin.
    let browser = issue(
        app,
        &w.app_id,
        &json!({"scopes": ["flags:read"], "tenant_id": w.tenant, "kind": "browser"}),
    )?;
    let web = run_node(
        "tests/harness/openfeature-web.mjs",
        &[&app.base_url, &browser, "https://shop.example"],
    )?;
    ensure_eq!(
        web["bool"]["value"],
        json!(true),
        "boolean via the web SDK: {web}"
    );
    ensure_eq!(
        web["string"]["value"],
        json!("gold"),
        "targeted string via the web SDK: {web}"
    );
    ensure_eq!(
        web["number"]["value"],
        json!(42),
        "number via the web SDK: {web}"
    );
    ensure_eq!(
        web["missing"]["value"],
        json!(7),
        "an unknown flag gives the default: {web}"
    );
    let refused = run_node(
        "tests/harness/openfeature-web.mjs",
        &[&app.base_url, &browser, "https://evil.example"],
    )?;
    ensure_eq!(
        refused["bool"]["value"],
        json!(false),
        "another origin gets only the defaults: {refused}"
    );
    ensure!(
        refused["initError"]
            .as_str()
            .is_some_and(|e| e.contains("forbidden")),
        "the provider was refused: {refused}"
    );
    ensure_eq!(
        web["initError"],
        Value::Null,
        "the allowed origin started: {web}"
    );
    // A disabled flag has no value (OFREP): the caller's default applies. (The provider 0.1.3
    // on npm reports that as a type mismatch; the value is the default all the same.)
    ensure_eq!(
        got["off"]["value"],
        json!(false),
        "a disabled flag gives the default: {got}"
    );
    Ok(())
}

/// Runs a Node script of the repository and parses the one JSON line it prints.
fn run_node(script: &str, args: &[&str]) -> Result<Value, String> {
    let root = crate::helpers::repo_root();
    let out = std::process::Command::new("node")
        .arg(root.join(script))
        .args(args)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run node {script}: {e}"))?;
    ensure!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
