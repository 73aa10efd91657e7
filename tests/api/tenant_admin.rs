//! Tenant administration (UC-TENANT-INVITE, UC-TENANT-INVITE-RESEND, UC-TENANT-USER-DELETE,
//! UC-TENANT-USER-UPDATE, UC-TENANT-USER-STATUS-UPDATE; FR-TENANT-001..007; CON-COMP-001,
//! CON-SEC-002): invitations through the dev outbox, the owner rules, revocation seen through
//! `/oauth/introspect`, invitation expiry through the scheduler's development clock, erasure
//! with a pseudonym in the audit trail, the owner's plan change, and 404 across tenants.

use serde_json::{json, Value};

use crate::helpers::{assert_problem, send, str_of, suffix, ApiResponse, TestApp};

crate::contract_tests![
    invite_accept_list_and_duplicate_fr_tenant_001,
    admin_cannot_touch_an_owner_fr_tenant_004,
    last_owner_cannot_be_demoted_disabled_or_deleted_fr_tenant_004,
    disabled_users_token_is_inactive_at_once_fr_tenant_006,
    role_change_ends_sessions_fr_tenant_004,
    invitation_expires_by_the_test_clock_fr_tenant_001,
    resend_makes_the_old_token_useless_fr_tenant_007,
    other_tenants_ids_are_404_on_every_route,
    export_then_erasure_keeps_a_pseudonymous_audit_trail_con_comp_001,
    only_owners_change_the_plan_fr_tenant_003,
    suspension_ends_sessions_for_good_fr_ops_001,
];

const PASSWORD: &str = "correct horse battery staple";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A signed-in tenant member.
struct Member {
    id: String,
    email: String,
    access: String,
}

/// A provisioned tenant with its owner signed in.
struct Tenant {
    id: String,
    domain: String,
    owner: Member,
}

fn login(app: &TestApp, domain: &str, email: &str) -> Result<ApiResponse, String> {
    let body = json!({ "tenant": domain, "email": email, "password": PASSWORD });
    send(app, "POST", "/v1/auth/login", None, Some(&body))
}

fn access_token(app: &TestApp, domain: &str, email: &str) -> Result<String, String> {
    Ok(str_of(
        &login(app, domain, email)?.expect_json(200)?["access_token"],
    ))
}

fn accept(app: &TestApp, token: &str) -> Result<ApiResponse, String> {
    let body = json!({ "token": token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&body))
}

fn tenant(app: &TestApp) -> Result<Tenant, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let domain = format!("adm-{}", suffix()?);
    let email = format!("owner@{domain}.example");
    let body =
        json!({ "name": "Admin Corp", "domain": domain, "plan": "pro", "owner_email": email });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in {link:?}"))?;
    let accepted = accept(app, &token)?.expect_json(200)?;
    let access = access_token(app, &domain, &email)?;
    Ok(Tenant {
        id: str_of(&created["tenant"]["id"]),
        domain,
        owner: Member {
            id: str_of(&accepted["user_id"]),
            email,
            access,
        },
    })
}

fn invite(
    app: &TestApp,
    by: &str,
    email: &str,
    role: &str,
    days: Option<u32>,
) -> Result<ApiResponse, String> {
    let mut body = json!({ "email": email, "role": role });
    if let Some(d) = days {
        body["expires_in_days"] = json!(d);
    }
    send(app, "POST", "/v1/tenant/invitations", Some(by), Some(&body))
}

/// The token in the latest invitation mail to `email` (the dev outbox).
fn invitation_token(app: &TestApp, email: &str) -> Result<String, String> {
    let mail = app
        .get(&format!("/__dev/mail?to={email}"))?
        .expect_json(200)?;
    let text = mail["items"]
        .as_array()
        .and_then(|items| items.first())
        .map(|m| str_of(&m["text"]))
        .ok_or_else(|| format!("no mail to {email}: {mail}"))?;
    text.split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in the invitation mail: {text}"))
}

/// A user invited by the owner with `role`, accepted and signed in.
fn member(app: &TestApp, t: &Tenant, role: &str) -> Result<Member, String> {
    let email = format!("{role}-{}@{}.example", suffix()?, t.domain);
    let inv = invite(app, &t.owner.access, &email, role, None)?.expect_json(201)?;
    let token = invitation_token(app, &email)?;
    accept(app, &token)?.expect_json(200)?;
    Ok(Member {
        id: str_of(&inv["user_id"]),
        access: access_token(app, &t.domain, &email)?,
        email,
    })
}

fn introspection_key(app: &TestApp) -> Result<String, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let body = json!({ "name": format!("Admin introspector {}", suffix()?) });
    let created = send(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?;
    let keys = format!("/v1/apps/{}/keys", str_of(&created["id"]));
    let with = json!({ "scopes": ["token:introspect"] });
    let key = send(app, "POST", &keys, Some(&op), Some(&with))?.expect_json(201)?;
    Ok(str_of(&key["secret"]))
}

fn active(app: &TestApp, key: &str, token: &str) -> Result<Option<bool>, String> {
    let auth = format!("Bearer {key}");
    let v = app
        .request(
            "POST",
            "/oauth/introspect",
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(format!("token={token}").into_bytes()),
        )?
        .expect_json(200)?;
    Ok(v["active"].as_bool())
}

fn patch_user(app: &TestApp, by: &str, id: &str, body: &Value) -> Result<ApiResponse, String> {
    send(
        app,
        "PATCH",
        &format!("/v1/tenant/users/{id}"),
        Some(by),
        Some(body),
    )
}

fn run_jobs(app: &TestApp, now: Option<i64>) -> Result<Value, String> {
    let auth = format!("Bearer {}", app.cron_secret);
    let mut body = json!({ "cron": "e2e-tenant-admin" });
    if let Some(now) = now {
        body["now_ms"] = json!(now);
    }
    app.post_json("/internal/scheduled", &body, &[("authorization", &auth)])?
        .expect_json(200)
}

fn job_affected(report: &Value, name: &str) -> i64 {
    report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .and_then(|j| j["affected"].as_i64())
        .unwrap_or(-1)
}

fn reason(v: &Value) -> String {
    str_of(&v["reason"])
}

fn invite_accept_list_and_duplicate_fr_tenant_001(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let email = format!("New.Person@{}.example", t.domain);
    let inv = invite(app, &t.owner.access, &email, "admin", Some(3))?.expect_json(201)?;
    ensure_eq!(str_of(&inv["status"]), "pending", "{inv}");
    ensure_eq!(str_of(&inv["mail"]), "sent", "{inv}");
    ensure!(
        inv.get("token").is_none(),
        "the token travels only in the mail: {inv}"
    );
    let mail = app
        .get(&format!("/__dev/mail?to={}", email.to_lowercase()))?
        .expect_json(200)?;
    ensure!(
        str_of(&mail["items"][0]["text"]).contains("Admin Corp"),
        "the mail names the tenant: {mail}"
    );
    // The same address again, in any case: 409.
    let dup = invite(app, &t.owner.access, &email.to_uppercase(), "user", None)?;
    ensure_eq!(
        reason(&assert_problem(&dup, 409, "conflict")?),
        "duplicate_email",
        "duplicate"
    );
    // Owners cannot be invited; expiry bounds hold.
    assert_problem(
        &invite(app, &t.owner.access, "x@y.example", "owner", None)?,
        400,
        "invalid-input",
    )?;
    assert_problem(
        &invite(app, &t.owner.access, "x@y.example", "user", Some(0))?,
        400,
        "invalid-input",
    )?;

    // The invited user is listed with status invited, found by email prefix.
    let q = "/v1/tenant/users?status=invited&q=new.p";
    let page = send(app, "GET", q, Some(&t.owner.access), None)?.expect_json(200)?;
    ensure_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    ensure_eq!(
        str_of(&page["items"][0]["id"]),
        str_of(&inv["user_id"]),
        "{page}"
    );
    let token = invitation_token(app, &email.to_lowercase())?;
    let accepted = accept(app, &token)?.expect_json(200)?;
    ensure_eq!(str_of(&accepted["role"]), "admin", "{accepted}");
    ensure_eq!(accept(app, &token)?.status, 422, "single use");

    // Keyset pages: limit 1 walks owner and admin, each once.
    let mut ids = Vec::new();
    let mut path = "/v1/tenant/users?limit=1".to_owned();
    for _ in 0..5 {
        let page = send(app, "GET", &path, Some(&t.owner.access), None)?.expect_json(200)?;
        ids.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| str_of(&u["id"])),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/tenant/users?limit=1&cursor={c}"),
            None => break,
        }
    }
    ensure_eq!(ids.len(), 2, "{ids:?}");
    ensure!(ids.contains(&t.owner.id), "{ids:?}");
    let user = format!("/v1/tenant/users/{}", str_of(&inv["user_id"]));
    let got = send(app, "GET", &user, Some(&t.owner.access), None)?.expect_json(200)?;
    ensure_eq!(str_of(&got["status"]), "active", "{got}");
    // A plain user has no access to administration.
    let plain = member(app, &t, "user")?;
    let resp = send(app, "GET", "/v1/tenant/users", Some(&plain.access), None)?;
    assert_problem(&resp, 403, "access-denied")?;
    Ok(())
}

fn admin_cannot_touch_an_owner_fr_tenant_004(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let admin = member(app, &t, "admin")?;
    let user = member(app, &t, "user")?;
    let owner_id = t.owner.id.as_str();
    for body in [json!({ "status": "disabled" }), json!({ "role": "user" })] {
        let resp = patch_user(app, &admin.access, owner_id, &body)?;
        ensure_eq!(
            reason(&assert_problem(&resp, 403, "access-denied")?),
            "target_is_owner",
            "{body}"
        );
    }
    let del = send(
        app,
        "DELETE",
        &format!("/v1/tenant/users/{owner_id}"),
        Some(&admin.access),
        None,
    )?;
    assert_problem(&del, 403, "access-denied")?;
    let promote = patch_user(app, &admin.access, &user.id, &json!({ "role": "owner" }))?;
    ensure_eq!(
        reason(&assert_problem(&promote, 403, "access-denied")?),
        "owner_only",
        "promote"
    );
    // The owner is untouched; an admin may still manage plain users.
    login(app, &t.domain, &t.owner.email)?.expect_status(200)?;
    let v =
        patch_user(app, &admin.access, &user.id, &json!({ "role": "admin" }))?.expect_json(200)?;
    ensure_eq!(str_of(&v["role"]), "admin", "{v}");
    Ok(())
}

fn last_owner_cannot_be_demoted_disabled_or_deleted_fr_tenant_004(
    app: &TestApp,
) -> Result<(), String> {
    let t = tenant(app)?;
    let me = t.owner.id.as_str();
    for body in [json!({ "role": "admin" }), json!({ "status": "disabled" })] {
        let resp = patch_user(app, &t.owner.access, me, &body)?;
        ensure_eq!(
            reason(&assert_problem(&resp, 422, "business-rule")?),
            "last_owner",
            "{body}"
        );
    }
    let del = send(
        app,
        "DELETE",
        &format!("/v1/tenant/users/{me}"),
        Some(&t.owner.access),
        None,
    )?;
    assert_problem(&del, 422, "business-rule")?;
    let erase_me = send(app, "DELETE", "/v1/me", Some(&t.owner.access), None)?;
    assert_problem(&erase_me, 422, "business-rule")?;
    // With a second owner, the first may step down.
    let other = member(app, &t, "admin")?;
    patch_user(app, &t.owner.access, &other.id, &json!({ "role": "owner" }))?.expect_json(200)?;
    let v = patch_user(app, &t.owner.access, me, &json!({ "role": "admin" }))?.expect_json(200)?;
    ensure_eq!(str_of(&v["role"]), "admin", "{v}");
    Ok(())
}

fn disabled_users_token_is_inactive_at_once_fr_tenant_006(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let key = introspection_key(app)?;
    let user = member(app, &t, "user")?;
    ensure_eq!(active(app, &key, &user.access)?, Some(true), "before");
    let v = patch_user(
        app,
        &t.owner.access,
        &user.id,
        &json!({ "status": "disabled" }),
    )?
    .expect_json(200)?;
    ensure_eq!(str_of(&v["status"]), "disabled", "{v}");
    ensure_eq!(
        active(app, &key, &user.access)?,
        Some(false),
        "the next introspection denies"
    );
    ensure_eq!(
        login(app, &t.domain, &user.email)?.status,
        401,
        "a disabled user cannot sign in"
    );
    patch_user(
        app,
        &t.owner.access,
        &user.id,
        &json!({ "status": "active" }),
    )?
    .expect_json(200)?;
    let fresh = access_token(app, &t.domain, &user.email)?;
    ensure_eq!(active(app, &key, &fresh)?, Some(true), "enabled again");
    ensure_eq!(
        active(app, &key, &user.access)?,
        Some(false),
        "the old session stays ended"
    );
    Ok(())
}

fn role_change_ends_sessions_fr_tenant_004(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let key = introspection_key(app)?;
    let user = member(app, &t, "user")?;
    let refresh = login(app, &t.domain, &user.email)?.expect_json(200)?;
    patch_user(app, &t.owner.access, &user.id, &json!({ "role": "admin" }))?.expect_json(200)?;
    ensure_eq!(
        active(app, &key, &user.access)?,
        Some(false),
        "old role's token"
    );
    let body = json!({ "refresh_token": str_of(&refresh["refresh_token"]) });
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    // Signing in again gives the new role.
    let fresh = access_token(app, &t.domain, &user.email)?;
    let list = send(app, "GET", "/v1/tenant/users", Some(&fresh), None)?;
    list.expect_status(200)?;
    Ok(())
}

fn invitation_expires_by_the_test_clock_fr_tenant_001(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let email = format!("late@{}.example", t.domain);
    let inv = invite(app, &t.owner.access, &email, "user", Some(1))?.expect_json(201)?;
    let expires_at = inv["expires_at"].as_i64().ok_or("no expires_at")?;
    let token = invitation_token(app, &email)?;
    let report = run_jobs(app, Some(expires_at + DAY_MS))?;
    ensure!(job_affected(&report, "invitations.expire") >= 1, "{report}");
    let resp = accept(app, &token)?;
    ensure_eq!(
        reason(&assert_problem(&resp, 422, "business-rule")?),
        "invitation_expired",
        "expired"
    );
    let list = send(
        app,
        "GET",
        "/v1/tenant/invitations",
        Some(&t.owner.access),
        None,
    )?
    .expect_json(200)?;
    let mine = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == inv["invitation_id"]))
        .cloned()
        .ok_or_else(|| format!("listed: {list}"))?;
    ensure_eq!(str_of(&mine["status"]), "expired", "{mine}");
    // An expired invitation can be resent (FR-TENANT-007), and the new one works.
    let path = format!(
        "/v1/tenant/invitations/{}/resend",
        str_of(&inv["invitation_id"])
    );
    send(app, "POST", &path, Some(&t.owner.access), None)?.expect_json(201)?;
    accept(app, &invitation_token(app, &email)?)?.expect_json(200)?;
    Ok(())
}

fn resend_makes_the_old_token_useless_fr_tenant_007(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let email = format!("again@{}.example", t.domain);
    let inv = invite(app, &t.owner.access, &email, "user", None)?.expect_json(201)?;
    let old = invitation_token(app, &email)?;
    let path = format!(
        "/v1/tenant/invitations/{}/resend",
        str_of(&inv["invitation_id"])
    );
    let again = send(
        app,
        "POST",
        &path,
        Some(&t.owner.access),
        Some(&json!({ "expires_in_days": 2 })),
    )?
    .expect_json(201)?;
    ensure!(again["invitation_id"] != inv["invitation_id"], "{again}");
    ensure!(
        again["expires_at"].as_i64().is_some() && again["expires_at"] != inv["expires_at"],
        "a fresh expiry: {again}"
    );
    let new = invitation_token(app, &email)?;
    ensure!(new != old, "a new token");
    let resp = accept(app, &old)?;
    ensure_eq!(
        reason(&assert_problem(&resp, 422, "business-rule")?),
        "invitation_not_pending",
        "old"
    );
    // The replaced invitation cannot be resent again.
    let stale = send(app, "POST", &path, Some(&t.owner.access), None)?;
    assert_problem(&stale, 422, "business-rule")?;
    accept(app, &new)?.expect_json(200)?;
    Ok(())
}

fn other_tenants_ids_are_404_on_every_route(app: &TestApp) -> Result<(), String> {
    let a = tenant(app)?;
    let b = tenant(app)?;
    let b_user = member(app, &b, "user")?;
    let b_inv = invite(
        app,
        &b.owner.access,
        &format!("p@{}.example", b.domain),
        "user",
        None,
    )?
    .expect_json(201)?;
    let b_inv_id = str_of(&b_inv["invitation_id"]);
    for id in [b.owner.id.as_str(), b_user.id.as_str()] {
        let user = format!("/v1/tenant/users/{id}");
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", user.clone(), None),
            ("PATCH", user.clone(), Some(json!({ "status": "disabled" }))),
            ("PATCH", user.clone(), Some(json!({ "role": "admin" }))),
            ("DELETE", user.clone(), None),
            ("POST", format!("{user}/sessions/revoke"), None),
        ];
        for (method, path, body) in calls {
            let resp = send(app, method, &path, Some(&a.owner.access), body.as_ref())?;
            assert_problem(&resp, 404, "not-found").map_err(|e| format!("{method} {path}: {e}"))?;
        }
    }
    let resend = format!("/v1/tenant/invitations/{b_inv_id}/resend");
    assert_problem(
        &send(app, "POST", &resend, Some(&a.owner.access), None)?,
        404,
        "not-found",
    )?;
    // Nothing happened in tenant B.
    access_token(app, &b.domain, &b_user.email)?;
    let listed =
        send(app, "GET", "/v1/tenant/users", Some(&a.owner.access), None)?.expect_json(200)?;
    ensure!(
        !listed.to_string().contains(&b_user.id) && !listed.to_string().contains(&b.owner.id),
        "A's list shows none of B's users: {listed}"
    );
    let invs = send(
        app,
        "GET",
        "/v1/tenant/invitations",
        Some(&a.owner.access),
        None,
    )?
    .expect_json(200)?;
    ensure!(!invs.to_string().contains(&b_inv_id), "{invs}");
    Ok(())
}

fn export_then_erasure_keeps_a_pseudonymous_audit_trail_con_comp_001(
    app: &TestApp,
) -> Result<(), String> {
    let t = tenant(app)?;
    let key = introspection_key(app)?;
    let user = member(app, &t, "user")?;
    let export = send(app, "GET", "/v1/me/export", Some(&user.access), None)?.expect_json(200)?;
    ensure_eq!(str_of(&export["profile"]["email"]), user.email, "{export}");
    ensure!(
        export["sessions"].as_array().is_some_and(|s| !s.is_empty()),
        "sessions: {export}"
    );
    ensure!(
        export["audit_records"]
            .as_array()
            .is_some_and(|r| r.iter().any(|a| a["action"] == "session.create")),
        "the user's own audit records: {export}"
    );
    ensure!(
        !export.to_string().contains("password_hash"),
        "no credential material: {export}"
    );
    send(app, "GET", "/v1/tenant/users", Some(&t.owner.access), None)?.expect_status(200)?;
    // Erasure by the user.
    send(app, "DELETE", "/v1/me", Some(&user.access), None)?.expect_status(204)?;
    ensure_eq!(
        active(app, &key, &user.access)?,
        Some(false),
        "the token ends at once"
    );
    ensure_eq!(
        login(app, &t.domain, &user.email)?.status,
        401,
        "no sign-in"
    );
    let got = send(
        app,
        "GET",
        &format!("/v1/tenant/users/{}", user.id),
        Some(&t.owner.access),
        None,
    )?
    .expect_json(200)?;
    ensure_eq!(str_of(&got["status"]), "deleted", "{got}");
    ensure!(got["email"].is_null(), "no email: {got}");
    let pseudonym = str_of(&got["pseudonym"]);
    ensure!(pseudonym.starts_with("erased-"), "a pseudonym: {got}");
    // The address can be invited again: it is free.
    invite(app, &t.owner.access, &user.email, "user", None)?.expect_json(201)?;
    // The audit trail keeps the user's history under the id, with no email anywhere.
    run_jobs(app, None)?;
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let csv = send(
        app,
        "GET",
        &format!("/v1/audit/export.csv?tenant={}", t.id),
        Some(&auditor),
        None,
    )?;
    csv.expect_status(200)?;
    let text = csv.text();
    ensure!(
        text.contains(&user.id),
        "the history still names the user id"
    );
    ensure!(text.contains("user.delete"), "the erasure is audited");
    ensure!(
        text.contains(&pseudonym),
        "the erasure record carries the pseudonym"
    );
    ensure!(
        text.contains("user.export"),
        "the export is audited (CON-SEC-002)"
    );
    ensure!(
        text.contains("user.read") && text.contains("user.list"),
        "reads are audited"
    );
    ensure!(!text.contains(&user.email), "no email in the audit trail");
    Ok(())
}

fn only_owners_change_the_plan_fr_tenant_003(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let admin = member(app, &t, "admin")?;
    let op = app.operator_token("operator", "e2e-operator")?;
    let key = format!("admin-plan-{}", suffix()?);
    send(
        app,
        "PUT",
        &format!("/v1/plans/enterprise/flags/{key}"),
        Some(&op),
        Some(&json!({ "type": "boolean", "value": true })),
    )?
    .expect_status(200)?;
    let body = json!({ "plan": "enterprise" });
    let resp = send(
        app,
        "PATCH",
        "/v1/tenant/plan",
        Some(&admin.access),
        Some(&body),
    )?;
    assert_problem(&resp, 403, "access-denied")?;
    let v = send(
        app,
        "PATCH",
        "/v1/tenant/plan",
        Some(&t.owner.access),
        Some(&body),
    )?
    .expect_json(200)?;
    ensure_eq!(str_of(&v["plan"]), "enterprise", "{v}");
    ensure_eq!(v["flags_changed"], json!(true), "{v}");
    let has_key = |access: &str| -> Result<bool, String> {
        let own = send(app, "GET", "/v1/tenant/flags", Some(access), None)?.expect_json(200)?;
        Ok(own["flags"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["key"] == key.as_str())))
    };
    ensure!(has_key(&t.owner.access)?, "the plan default applies");
    let bad = send(
        app,
        "PATCH",
        "/v1/tenant/plan",
        Some(&t.owner.access),
        Some(&json!({ "plan": "platinum" })),
    )?;
    assert_problem(&bad, 422, "business-rule")?;
    // Back to pro: the default leaves with the plan (and later plan tests see one fewer tenant).
    send(
        app,
        "PATCH",
        "/v1/tenant/plan",
        Some(&t.owner.access),
        Some(&json!({ "plan": "pro" })),
    )?
    .expect_json(200)?;
    ensure!(!has_key(&t.owner.access)?, "the old plan's default is gone");
    send(
        app,
        "DELETE",
        &format!("/v1/plans/enterprise/flags/{key}"),
        Some(&op),
        None,
    )?;
    Ok(())
}

fn suspension_ends_sessions_for_good_fr_ops_001(app: &TestApp) -> Result<(), String> {
    let t = tenant(app)?;
    let key = introspection_key(app)?;
    let pair = login(app, &t.domain, &t.owner.email)?.expect_json(200)?;
    let op = app.operator_token("operator", "e2e-operator")?;
    send(
        app,
        "POST",
        &format!("/v1/tenants/{}/suspend", t.id),
        Some(&op),
        None,
    )?
    .expect_json(200)?;
    send(
        app,
        "POST",
        &format!("/v1/tenants/{}/activate", t.id),
        Some(&op),
        None,
    )?
    .expect_json(200)?;
    for token in [&t.owner.access, &str_of(&pair["access_token"])] {
        ensure_eq!(
            active(app, &key, token)?,
            Some(false),
            "a token from before the suspension"
        );
    }
    let body = json!({ "refresh_token": str_of(&pair["refresh_token"]) });
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    // Signing in again works.
    let fresh = access_token(app, &t.domain, &t.owner.email)?;
    ensure_eq!(active(app, &key, &fresh)?, Some(true), "a new session");
    Ok(())
}
