//! Operator routes for managed apps and API keys (FR-SYS-001, FR-SYS-002, FR-SYS-003) and for
//! the apps a tenant uses, behind operator sign-in (FR-SYS-004).

use serde_json::{json, Value};

use crate::helpers::{assert_problem, is_uuid, str_of, suffix, ApiResponse, TestApp};

crate::contract_tests![
    auditors_read_apps_but_cannot_write_fr_sys_004,
    register_then_get_and_find_in_list_fr_sys_001,
    duplicate_app_name_is_409_fr_sys_001,
    bad_app_input_is_400_naming_the_field,
    issue_key_shows_the_secret_once_fr_sys_002,
    bad_key_input_is_400_naming_the_field_fr_sys_002,
    browser_key_rules_fr_sys_002,
    revoke_key_is_204_and_repeatable_fr_sys_002,
    disable_and_enable_an_app_fr_sys_003,
    enable_and_disable_an_app_for_a_tenant,
    unknown_and_malformed_ids_are_404_err_res_404,
];

fn operator(app: &TestApp) -> Result<String, String> {
    app.operator_token("operator", "e2e-operator")
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

/// Registers an app with a unique name and allowed origins; returns its JSON.
fn register(app: &TestApp, token: &str, prefix: &str) -> Result<Value, String> {
    let body = json!({
        "name": format!("{prefix} {}", suffix()?),
        "redirect_uris": ["https://app.example/callback", "http://localhost:3000/cb"],
        "allowed_origins": ["https://app.example"],
    });
    send(app, "POST", "/v1/apps", token, Some(&body))?.expect_json(201)
}

/// Provisions a tenant with a unique domain and `apps` enabled; returns its id.
fn tenant(app: &TestApp, token: &str, apps: &[&str]) -> Result<String, String> {
    let domain = format!("apps-{}", suffix()?);
    let body = json!({
        "name": "Apps Tenant", "domain": domain, "plan": "pro",
        "owner_email": format!("owner@{domain}.example"), "apps": apps,
    });
    let created = send(app, "POST", "/v1/tenants", token, Some(&body))?.expect_json(201)?;
    Ok(str_of(&created["tenant"]["id"]))
}

fn field_of(problem: &Value) -> Option<&str> {
    problem["errors"][0]["field"].as_str()
}

fn auditors_read_apps_but_cannot_write_fr_sys_004(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Audited")?;
    let id = str_of(&created["id"]);
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    send(app, "GET", "/v1/apps", &auditor, None)?.expect_json(200)?;
    send(app, "GET", &format!("/v1/apps/{id}"), &auditor, None)?.expect_json(200)?;
    send(app, "GET", &format!("/v1/apps/{id}/keys"), &auditor, None)?.expect_json(200)?;
    let writes = [
        (
            "POST",
            "/v1/apps".to_owned(),
            Some(json!({ "name": "Nope" })),
        ),
        (
            "PATCH",
            format!("/v1/apps/{id}"),
            Some(json!({ "status": "disabled" })),
        ),
        (
            "POST",
            format!("/v1/apps/{id}/keys"),
            Some(json!({ "scopes": ["flags:read"] })),
        ),
        (
            "DELETE",
            format!("/v1/apps/{id}/keys/{}", "0".repeat(32)),
            None,
        ),
    ];
    for (method, path, body) in writes {
        let resp = send(app, method, &path, &auditor, body.as_ref())?;
        assert_problem(&resp, 403, "access-denied")?;
    }
    let resp = app.get("/v1/apps")?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    Ok(())
}

fn register_then_get_and_find_in_list_fr_sys_001(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let name = format!("CRM {}", suffix()?);
    let body = json!({
        "name": name,
        "redirect_uris": ["HTTPS://CRM.Example/cb", "https://crm.example/cb"],
    });
    let resp = send(app, "POST", "/v1/apps", &token, Some(&body))?;
    let created = resp.expect_json(201)?;
    let id = str_of(&created["id"]);
    ensure!(is_uuid(&id), "the app id is a generated UUID: {created}");
    let location = format!("/v1/apps/{id}");
    ensure_eq!(
        resp.header("location").unwrap_or_default(),
        location.as_str(),
        "Location of the new app"
    );
    ensure_eq!(
        created["status"].as_str(),
        Some("active"),
        "a new app is active"
    );
    ensure_eq!(
        created["redirect_uris"],
        json!(["https://crm.example/cb"]),
        "redirect URIs normalised and deduplicated"
    );
    ensure_eq!(created["allowed_origins"], json!([]), "no origins given");

    let got = send(app, "GET", &format!("/v1/apps/{id}"), &token, None)?.expect_json(200)?;
    ensure_eq!(got, created, "GET returns the registered app");

    // Walk the list until the app shows up (other tests register apps too).
    let mut path = "/v1/apps?limit=2".to_owned();
    let mut found = false;
    for _ in 0..100 {
        let page = send(app, "GET", &path, &token, None)?.expect_json(200)?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        ensure!(items.len() <= 2, "pages hold at most limit items: {page}");
        if items.iter().any(|a| a["id"].as_str() == Some(id.as_str())) {
            found = true;
            break;
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/apps?limit=2&cursor={c}"),
            None => break,
        }
    }
    ensure!(found, "the new app is listed");
    Ok(())
}

fn duplicate_app_name_is_409_fr_sys_001(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Dup")?;
    let name = str_of(&created["name"]);
    let body = json!({ "name": name.to_uppercase() });
    let resp = send(app, "POST", "/v1/apps", &token, Some(&body))?;
    let problem = assert_problem(&resp, 409, "conflict")?;
    ensure_eq!(
        problem["reason"].as_str(),
        Some("app_name_taken"),
        "the conflict names its reason"
    );
    // Renaming another app to the taken name conflicts too.
    let other = register(app, &token, "Other")?;
    let resp = send(
        app,
        "PATCH",
        &format!("/v1/apps/{}", str_of(&other["id"])),
        &token,
        Some(&json!({ "name": name })),
    )?;
    assert_problem(&resp, 409, "conflict")?;
    Ok(())
}

fn bad_app_input_is_400_naming_the_field(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let cases = [
        (json!({ "name": "" }), "name"),
        (
            json!({ "name": "X", "redirect_uris": ["http://app.example/cb"] }),
            "redirect_uris",
        ),
        (
            json!({ "name": "X", "redirect_uris": ["https://app.example/cb#frag"] }),
            "redirect_uris",
        ),
        (
            json!({ "name": "X", "redirect_uris": ["/relative"] }),
            "redirect_uris",
        ),
        (
            json!({ "name": "X", "allowed_origins": ["https://app.example/"] }),
            "allowed_origins",
        ),
    ];
    for (body, field) in cases {
        let resp = send(app, "POST", "/v1/apps", &token, Some(&body))?;
        let problem = assert_problem(&resp, 400, "invalid-input")?;
        ensure_eq!(
            field_of(&problem),
            Some(field),
            "the problem names the field for {body}"
        );
    }
    let resp = send(
        app,
        "POST",
        "/v1/apps",
        &token,
        Some(&json!({ "nom": "X" })),
    )?;
    assert_problem(&resp, 400, "invalid-input")?;
    let created = register(app, &token, "Patch")?;
    let resp = send(
        app,
        "PATCH",
        &format!("/v1/apps/{}", str_of(&created["id"])),
        &token,
        Some(&json!({ "status": "suspended" })),
    )?;
    let problem = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(field_of(&problem), Some("status"), "PATCH names the field");
    Ok(())
}

fn issue_key_shows_the_secret_once_fr_sys_002(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Keys")?;
    let id = str_of(&created["id"]);
    let body =
        json!({ "scopes": ["flags:read", "log:write", "flags:read"], "name": "edge worker" });
    let resp = send(
        app,
        "POST",
        &format!("/v1/apps/{id}/keys"),
        &token,
        Some(&body),
    )?;
    let issued = resp.expect_json(201)?;
    ensure_eq!(
        resp.header("cache-control"),
        Some("no-store"),
        "the response with the secret is not cached"
    );
    let secret = str_of(&issued["secret"]);
    let key_id = str_of(&issued["id"]);
    let prefix = str_of(&issued["prefix"]);
    ensure!(
        key_id.len() == 32 && prefix.ends_with(&key_id),
        "the key id is visible in the prefix: {issued}"
    );
    ensure!(
        secret.starts_with(&format!("{prefix}_")) && secret.len() == prefix.len() + 44,
        "the key is the prefix and a 43-character secret: {secret}"
    );
    ensure_eq!(
        issued["scopes"],
        json!(["flags:read", "log:write"]),
        "scopes deduplicated, canonical order"
    );
    ensure_eq!(issued["status"].as_str(), Some("active"), "status");
    ensure_eq!(issued["tenant_id"], Value::Null, "an app-wide key");
    ensure_eq!(issued["kind"].as_str(), Some("server"), "server by default");

    let listed = send(app, "GET", &format!("/v1/apps/{id}/keys"), &token, None)?;
    let page = listed.expect_json(200)?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    ensure_eq!(items.len(), 1, "one key listed");
    ensure_eq!(str_of(&items[0]["id"]), key_id, "the issued key");
    ensure!(
        items[0].get("secret").is_none() && items[0].get("key_hash").is_none(),
        "no secret or hash in the list: {page}"
    );
    let secret_part = &secret[prefix.len() + 1..];
    ensure!(
        !listed.text().contains(secret_part),
        "the secret appears nowhere in the list"
    );
    let again = send(app, "GET", &format!("/v1/apps/{id}"), &token, None)?;
    ensure!(!again.text().contains(secret_part), "nor in the app");
    Ok(())
}

fn bad_key_input_is_400_naming_the_field_fr_sys_002(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "BadKeys")?;
    let path = format!("/v1/apps/{}/keys", str_of(&created["id"]));
    let cases = [
        (json!({ "scopes": [] }), "scopes"),
        (json!({ "scopes": ["flags:write"] }), "scopes"),
        (
            json!({ "scopes": ["flags:read"], "kind": "mobile" }),
            "kind",
        ),
        (
            json!({ "scopes": ["flags:read"], "tenant_id": "acme" }),
            "tenant_id",
        ),
        (json!({ "scopes": ["flags:read"], "name": " " }), "name"),
    ];
    for (body, field) in cases {
        let resp = send(app, "POST", &path, &token, Some(&body))?;
        let problem = assert_problem(&resp, 400, "invalid-input")?;
        ensure_eq!(
            field_of(&problem),
            Some(field),
            "the problem names the field for {body}"
        );
    }
    let resp = send(app, "POST", &path, &token, Some(&json!({})))?;
    assert_problem(&resp, 400, "invalid-input")?;
    // A time already past is well formed: a business rule refuses it.
    let past = json!({ "scopes": ["flags:read"], "expires_at": 1 });
    let resp = send(app, "POST", &path, &token, Some(&past))?;
    let problem = assert_problem(&resp, 422, "business-rule")?;
    ensure_eq!(field_of(&problem), Some("expires_at"), "names the field");
    let unknown_tenant =
        json!({ "scopes": ["flags:read"], "tenant_id": "00000000-0000-4000-8000-000000000000" });
    let resp = send(app, "POST", &path, &token, Some(&unknown_tenant))?;
    assert_problem(&resp, 404, "not-found")?;
    let listed = send(app, "GET", &path, &token, None)?.expect_json(200)?;
    ensure_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "no refused request issued a key"
    );
    Ok(())
}

fn browser_key_rules_fr_sys_002(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Browser")?;
    let id = str_of(&created["id"]);
    let path = format!("/v1/apps/{id}/keys");
    let tenant_id = tenant(app, &token, &[&id])?;
    let resp = send(
        app,
        "POST",
        &path,
        &token,
        Some(&json!({ "scopes": ["flags:read"], "kind": "browser" })),
    )?;
    let problem = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(
        field_of(&problem),
        Some("tenant_id"),
        "a browser key needs a tenant"
    );
    let resp = send(
        app,
        "POST",
        &path,
        &token,
        Some(
            &json!({ "scopes": ["flags:read", "bill:write"], "kind": "browser", "tenant_id": tenant_id }),
        ),
    )?;
    let problem = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(
        field_of(&problem),
        Some("scopes"),
        "a browser key reads flags only"
    );
    let issued = send(
        app,
        "POST",
        &path,
        &token,
        Some(&json!({ "scopes": ["flags:read"], "kind": "browser", "tenant_id": tenant_id })),
    )?
    .expect_json(201)?;
    ensure_eq!(
        issued["kind"].as_str(),
        Some("browser"),
        "browser key issued"
    );
    ensure_eq!(
        str_of(&issued["tenant_id"]),
        tenant_id,
        "bound to the tenant"
    );

    // An app without allowed origins cannot have browser keys.
    let bare = send(
        app,
        "POST",
        "/v1/apps",
        &token,
        Some(&json!({ "name": format!("Bare {}", suffix()?) })),
    )?
    .expect_json(201)?;
    let bare_id = str_of(&bare["id"]);
    let bare_tenant = tenant(app, &token, &[&bare_id])?;
    let resp = send(
        app,
        "POST",
        &format!("/v1/apps/{bare_id}/keys"),
        &token,
        Some(&json!({ "scopes": ["flags:read"], "kind": "browser", "tenant_id": bare_tenant })),
    )?;
    let problem = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(
        field_of(&problem),
        Some("kind"),
        "no origins, no browser key"
    );
    Ok(())
}

fn revoke_key_is_204_and_repeatable_fr_sys_002(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Revoke")?;
    let id = str_of(&created["id"]);
    let issued = send(
        app,
        "POST",
        &format!("/v1/apps/{id}/keys"),
        &token,
        Some(&json!({ "scopes": ["bill:write"] })),
    )?
    .expect_json(201)?;
    let key_id = str_of(&issued["id"]);
    let path = format!("/v1/apps/{id}/keys/{key_id}");
    send(app, "DELETE", &path, &token, None)?.expect_status(204)?;
    send(app, "DELETE", &path, &token, None)?.expect_status(204)?;
    let page = send(app, "GET", &format!("/v1/apps/{id}/keys"), &token, None)?.expect_json(200)?;
    ensure_eq!(
        page["items"][0]["status"].as_str(),
        Some("revoked"),
        "the list shows the key revoked"
    );
    ensure!(
        page["items"][0]["revoked_at"].as_i64().is_some(),
        "with its revocation time: {page}"
    );
    // The key is the app's own: another app's path does not find it.
    let other = register(app, &token, "NotMine")?;
    let resp = send(
        app,
        "DELETE",
        &format!("/v1/apps/{}/keys/{key_id}", str_of(&other["id"])),
        &token,
        None,
    )?;
    assert_problem(&resp, 404, "not-found")?;
    Ok(())
}

fn disable_and_enable_an_app_fr_sys_003(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Lifecycle")?;
    let id = str_of(&created["id"]);
    let path = format!("/v1/apps/{id}");
    let keys = format!("/v1/apps/{id}/keys");
    send(
        app,
        "POST",
        &keys,
        &token,
        Some(&json!({ "scopes": ["flags:read"] })),
    )?
    .expect_json(201)?;

    let v = send(
        app,
        "PATCH",
        &path,
        &token,
        Some(&json!({ "status": "disabled" })),
    )?
    .expect_json(200)?;
    ensure_eq!(v["app"]["status"].as_str(), Some("disabled"), "disabled");
    ensure_eq!(v["changed"].as_bool(), Some(true), "changed");
    ensure_eq!(
        v["edge"].as_str(),
        Some("synced"),
        "the edge marker is written"
    );
    ensure_eq!(v["app"]["version"].as_i64(), Some(2), "version bumped");
    let resp = send(
        app,
        "POST",
        &keys,
        &token,
        Some(&json!({ "scopes": ["flags:read"] })),
    )?;
    assert_problem(&resp, 409, "conflict")?;
    let again = send(
        app,
        "PATCH",
        &path,
        &token,
        Some(&json!({ "status": "disabled" })),
    )?
    .expect_json(200)?;
    ensure_eq!(
        again["changed"].as_bool(),
        Some(false),
        "repeating changes nothing"
    );

    let body = json!({ "status": "active", "allowed_origins": ["https://new.example", "http://127.0.0.1:8080"] });
    let v = send(app, "PATCH", &path, &token, Some(&body))?.expect_json(200)?;
    ensure_eq!(v["app"]["status"].as_str(), Some("active"), "enabled again");
    ensure_eq!(
        v["app"]["allowed_origins"],
        json!(["https://new.example", "http://127.0.0.1:8080"]),
        "origins replaced"
    );
    send(
        app,
        "POST",
        &keys,
        &token,
        Some(&json!({ "scopes": ["flags:read"] })),
    )?
    .expect_json(201)?;
    let disabled = send(
        app,
        "GET",
        "/v1/apps?status=disabled&limit=100",
        &token,
        None,
    )?
    .expect_json(200)?;
    let listed = disabled["items"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["id"].as_str() == Some(id.as_str())));
    ensure!(!listed, "an enabled app is not listed as disabled");
    Ok(())
}

fn enable_and_disable_an_app_for_a_tenant(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Linked")?;
    let id = str_of(&created["id"]);
    let tenant_id = tenant(app, &token, &[])?;
    let keys = format!("/v1/apps/{id}/keys");
    let bound = json!({ "scopes": ["flags:read"], "tenant_id": tenant_id });
    let resp = send(app, "POST", &keys, &token, Some(&bound))?;
    let problem = assert_problem(&resp, 422, "business-rule")?;
    ensure_eq!(
        field_of(&problem),
        Some("tenant_id"),
        "the app is not enabled for the tenant"
    );

    let link = format!("/v1/tenants/{tenant_id}/apps/{id}");
    let v = send(app, "POST", &link, &token, None)?.expect_json(200)?;
    ensure_eq!(v["enabled"].as_bool(), Some(true), "enabled");
    ensure_eq!(v["changed"].as_bool(), Some(true), "changed");
    let v = send(app, "POST", &link, &token, None)?.expect_json(200)?;
    ensure_eq!(
        v["changed"].as_bool(),
        Some(false),
        "enabling twice changes nothing"
    );
    let issued = send(app, "POST", &keys, &token, Some(&bound))?.expect_json(201)?;
    ensure_eq!(
        str_of(&issued["tenant_id"]),
        tenant_id,
        "a tenant-bound key"
    );

    send(app, "DELETE", &link, &token, None)?.expect_status(204)?;
    send(app, "DELETE", &link, &token, None)?.expect_status(204)?;
    let resp = send(app, "POST", &keys, &token, Some(&bound))?;
    assert_problem(&resp, 422, "business-rule")?;

    // The auditor may not change links.
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let resp = send(app, "POST", &link, &auditor, None)?;
    assert_problem(&resp, 403, "access-denied")?;
    Ok(())
}

fn unknown_and_malformed_ids_are_404_err_res_404(app: &TestApp) -> Result<(), String> {
    let token = operator(app)?;
    let created = register(app, &token, "Known")?;
    let id = str_of(&created["id"]);
    let tenant_id = tenant(app, &token, &[])?;
    let nobody = "00000000-0000-4000-8000-000000000000";
    let cases = [
        ("GET", format!("/v1/apps/{nobody}"), None),
        ("GET", "/v1/apps/not-a-uuid".to_owned(), None),
        (
            "PATCH",
            format!("/v1/apps/{nobody}"),
            Some(json!({ "status": "disabled" })),
        ),
        ("GET", format!("/v1/apps/{nobody}/keys"), None),
        (
            "POST",
            format!("/v1/apps/{nobody}/keys"),
            Some(json!({ "scopes": ["flags:read"] })),
        ),
        (
            "DELETE",
            format!("/v1/apps/{id}/keys/{}", "a".repeat(32)),
            None,
        ),
        ("DELETE", format!("/v1/apps/{id}/keys/not-a-key"), None),
        ("POST", format!("/v1/tenants/{nobody}/apps/{id}"), None),
        (
            "POST",
            format!("/v1/tenants/{tenant_id}/apps/{nobody}"),
            None,
        ),
        ("DELETE", format!("/v1/tenants/{tenant_id}/apps/{id}"), None),
    ];
    for (method, path, body) in cases {
        let resp = send(app, method, &path, &token, body.as_ref())?;
        assert_problem(&resp, 404, "not-found")?;
    }
    Ok(())
}
