//! Tenant-user authentication (UC-LISTEN, UC-LOGOUT, UC-AUTH-RESET; FR-AUTH-001/004/005/006;
//! NFR-SEC-004; ERR-AUTH-401, ERR-VAL-422): invitation acceptance, sign-in, EdDSA access tokens
//! checked through `/oauth/introspect` (RFC 7662), refresh rotation, logout, password policy,
//! reset through the dev outbox, and signing-key rotation.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{
    assert_problem, base32_decode, introspect, send, str_of, suffix, totp, ApiResponse, Runtime,
    TestApp, EDGE_FRESHNESS,
};

crate::contract_tests![
    accept_login_introspect_logout_uc_listen_uc_logout,
    revocations_reach_another_isolate_within_a_second_fr_auth_005,
    refresh_rotates_and_reuse_revokes_the_session_fr_auth_005,
    unknown_email_and_wrong_password_look_the_same_con_sec_009,
    password_policy_violations_name_the_rule_fr_auth_006,
    forgot_and_reset_through_the_dev_outbox_uc_auth_reset,
    change_password_revokes_every_session_fr_auth_004,
    forged_tokens_are_inactive_and_introspection_needs_the_scope,
    suspended_tenant_tokens_inactive_and_login_refused_fr_ops_001,
    signing_key_rotation_keeps_old_tokens_valid_nfr_sec_004,
    totp_sign_in_with_codes_computed_here_nfr_sec_003,
    failed_logins_are_rate_limited_per_account_and_client_err_rate_429,
    concurrent_login_guesses_get_exactly_the_limit_err_rate_429,
    second_factor_guesses_are_limited_per_sign_in_and_per_user_err_rate_429,
    admin_revocation_ends_every_session_at_once_fr_auth_005,
    tenant_requiring_mfa_enrolls_users_during_sign_in_nfr_sec_003,
    owners_read_their_tenants_flags_but_cannot_write_fr_flag_001,
];

const PASSWORD: &str = "correct horse battery staple";

/// A provisioned tenant whose owner has not accepted yet.
struct Invited {
    tenant_id: String,
    domain: String,
    email: String,
    invitation_token: String,
}

fn invited(app: &TestApp) -> Result<Invited, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let domain = format!("auth-{}", suffix()?);
    let email = format!("owner@{domain}.example");
    let body =
        json!({ "name": "Auth Corp", "domain": domain, "plan": "pro", "owner_email": email });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in the invitation link {link:?}"))?;
    Ok(Invited {
        tenant_id: str_of(&created["tenant"]["id"]),
        domain,
        email,
        invitation_token: token,
    })
}

/// A tenant whose owner accepted with [`PASSWORD`].
fn owner(app: &TestApp) -> Result<Invited, String> {
    let t = invited(app)?;
    let body = json!({ "token": t.invitation_token, "password": PASSWORD });
    let v = send(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_json(200)?;
    ensure_eq!(str_of(&v["status"]), "active", "accepted: {v}");
    ensure_eq!(str_of(&v["tenant_id"]), t.tenant_id, "accepted: {v}");
    Ok(t)
}

fn login(app: &TestApp, t: &Invited, password: &str) -> Result<ApiResponse, String> {
    let body = json!({ "tenant": t.domain, "email": t.email, "password": password });
    send(app, "POST", "/v1/auth/login", None, Some(&body))
}

fn tokens(app: &TestApp, t: &Invited) -> Result<Value, String> {
    let resp = login(app, t, PASSWORD)?;
    ensure_eq!(
        resp.header("cache-control"),
        Some("no-store"),
        "tokens are not cached"
    );
    let v = resp.expect_json(200)?;
    ensure_eq!(str_of(&v["token_type"]), "Bearer", "{v}");
    ensure!(
        v["expires_in"].as_i64() == Some(900),
        "15-minute access tokens: {v}"
    );
    Ok(v)
}

/// An app-wide API key with `token:introspect` (and one without, for the scope check).
fn introspection_keys(app: &TestApp) -> Result<(String, String), String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let body = json!({ "name": format!("Introspector {}", suffix()?) });
    let created = send(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?;
    let keys = format!("/v1/apps/{}/keys", str_of(&created["id"]));
    let with = json!({ "scopes": ["token:introspect"] });
    let key = send(app, "POST", &keys, Some(&op), Some(&with))?.expect_json(201)?;
    let without = json!({ "scopes": ["flags:read"] });
    let other = send(app, "POST", &keys, Some(&op), Some(&without))?.expect_json(201)?;
    Ok((str_of(&key["secret"]), str_of(&other["secret"])))
}

fn active(v: &Value) -> Option<bool> {
    v["active"].as_bool()
}

fn header_of(token: &str) -> Result<Value, String> {
    let h = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|e| format!("token header is not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("token header is not JSON: {e}"))
}

fn accept_login_introspect_logout_uc_listen_uc_logout(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let pair = tokens(app, &t)?;
    let access = str_of(&pair["access_token"]);

    let header = header_of(&access)?;
    ensure_eq!(str_of(&header["alg"]), "EdDSA", "header {header}");
    let jwks = app.get("/.well-known/jwks.json")?.expect_json(200)?;
    let kids: Vec<String> = jwks["keys"]
        .as_array()
        .map(|ks| ks.iter().map(|k| str_of(&k["kid"])).collect())
        .unwrap_or_default();
    ensure!(
        kids.contains(&str_of(&header["kid"])),
        "the token's kid {} is published: {jwks}",
        header["kid"]
    );
    ensure!(
        jwks.to_string().find("\"d\"").is_none(),
        "no private key material in the JWKS"
    );

    let v = introspect(app, &key, &access)?;
    ensure_eq!(active(&v), Some(true), "a fresh token is active: {v}");
    ensure_eq!(str_of(&v["tid"]), t.tenant_id, "tid");
    ensure_eq!(str_of(&v["role"]), "owner", "role");
    ensure_eq!(str_of(&v["sid"]), str_of(&pair["session_id"]), "sid");
    for claim in ["iss", "sub", "aud", "scope", "jti"] {
        ensure!(v[claim].is_string(), "claim {claim} present: {v}");
    }
    ensure!(v["exp"].as_i64() > v["iat"].as_i64(), "exp after iat: {v}");

    // JSON bodies are accepted too.
    let resp = app.post_json(
        "/oauth/introspect",
        &json!({ "token": access }),
        &[("authorization", &format!("Bearer {key}"))],
    )?;
    ensure_eq!(
        active(&resp.expect_json(200)?),
        Some(true),
        "JSON introspection"
    );

    send(app, "POST", "/v1/auth/logout", Some(&access), None)?.expect_status(204)?;
    let v = introspect(app, &key, &access)?;
    ensure_eq!(v, json!({ "active": false }), "inactive right after logout");
    let resp = send(app, "POST", "/v1/auth/logout", Some(&access), None)?;
    assert_problem(&resp, 440, "session-expired")?;
    let body = json!({ "refresh_token": str_of(&pair["refresh_token"]) });
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    // The invitation is single use.
    let again = json!({ "token": t.invitation_token, "password": PASSWORD });
    let resp = send(app, "POST", "/v1/invitations/accept", None, Some(&again))?;
    assert_problem(&resp, 422, "business-rule")?;
    Ok(())
}

/// Introspection answers from what the isolate holds (the token's session, user and tenant
/// markers, the API key's record): a logout or a suspension is seen at once by the isolate that
/// wrote it and within a second by another isolate of the location.
fn revocations_reach_another_isolate_within_a_second_fr_auth_005(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let other = app.second_isolate();
    // A live token, held by the other isolate, then `revoke`d through the first one.
    let revoked_everywhere = |what: &str, revoke: &dyn Fn(&str) -> Result<(), String>| {
        let access = str_of(&tokens(app, &t)?["access_token"]);
        ensure_eq!(
            active(&introspect(&other, &key, &access)?),
            Some(true),
            "warm"
        );
        revoke(&access)?;
        ensure_eq!(
            active(&introspect(app, &key, &access)?),
            Some(false),
            "{what}: at once"
        );
        std::thread::sleep(EDGE_FRESHNESS);
        ensure_eq!(
            active(&introspect(&other, &key, &access)?),
            Some(false),
            "{what}: another isolate, within a second"
        );
        Ok::<(), String>(())
    };
    revoked_everywhere("logout", &|access| {
        send(app, "POST", "/v1/auth/logout", Some(access), None)?.expect_status(204)
    })?;
    let op = app.operator_token("operator", "e2e-operator")?;
    let path = format!("/v1/tenants/{}/suspend", t.tenant_id);
    revoked_everywhere("suspension", &|_| {
        send(app, "POST", &path, Some(&op), None)?
            .expect_json(200)
            .map(|_| ())
    })?;
    Ok(())
}

fn refresh_rotates_and_reuse_revokes_the_session_fr_auth_005(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let first = tokens(app, &t)?;
    let body = json!({ "refresh_token": str_of(&first["refresh_token"]) });
    let second = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?.expect_json(200)?;
    ensure!(
        second["refresh_token"] != first["refresh_token"],
        "the refresh token rotates"
    );
    ensure_eq!(second["session_id"], first["session_id"], "same session");
    let access = str_of(&second["access_token"]);
    ensure_eq!(
        active(&introspect(app, &key, &access)?),
        Some(true),
        "new access token"
    );

    // Reuse of the rotated token: refused, and the whole session revoked.
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?;
    let problem = assert_problem(&resp, 401, "invalid-credentials")?;
    ensure_eq!(
        str_of(&problem["reason"]),
        "refresh_token_reused",
        "{problem}"
    );
    ensure_eq!(
        active(&introspect(app, &key, &access)?),
        Some(false),
        "the session's access tokens are revoked at once"
    );
    let newest = json!({ "refresh_token": str_of(&second["refresh_token"]) });
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&newest))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn unknown_email_and_wrong_password_look_the_same_con_sec_009(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let unknown = Invited {
        email: format!("nobody@{}.example", t.domain),
        tenant_id: t.tenant_id.clone(),
        domain: t.domain.clone(),
        invitation_token: String::new(),
    };
    let (mut wrong_times, mut unknown_times, mut ok_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let a = login(app, &t, "not the password at all")?;
        wrong_times.push(started.elapsed());
        let started = Instant::now();
        let b = login(app, &unknown, PASSWORD)?;
        unknown_times.push(started.elapsed());
        let started = Instant::now();
        login(app, &t, PASSWORD)?.expect_status(200)?;
        ok_times.push(started.elapsed());
        for resp in [&a, &b] {
            let p = assert_problem(resp, 401, "invalid-credentials")?;
            bodies.push((str_of(&p["detail"]), p.get("reason").cloned()));
        }
    }
    ensure!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every refusal says the same: {bodies:?}"
    );
    let (wrong, nobody) = (median(wrong_times), median(unknown_times));
    // The unknown email pays for one argon2id computation too (tens of milliseconds); without
    // it the answer would come several times sooner.
    ensure!(
        nobody * 2 >= wrong,
        "unknown email answered in {nobody:?}, wrong password in {wrong:?}: timing tells them apart"
    );
    eprintln!(
        "[{}] login p50: success {:?}, wrong password {wrong:?}, unknown email {nobody:?}",
        app.runtime.name(),
        median(ok_times)
    );
    Ok(())
}

fn password_policy_violations_name_the_rule_fr_auth_006(app: &TestApp) -> Result<(), String> {
    let t = invited(app)?;
    let rules_of = |resp: &ApiResponse| -> Result<Vec<String>, String> {
        let p = assert_problem(resp, 422, "business-rule")?;
        Ok(p["errors"]
            .as_array()
            .map(|es| es.iter().map(|e| str_of(&e["rule"])).collect())
            .unwrap_or_default())
    };
    let body = json!({ "token": t.invitation_token, "password": "short" });
    let resp = send(app, "POST", "/v1/invitations/accept", None, Some(&body))?;
    ensure_eq!(rules_of(&resp)?, vec!["min_length".to_owned()], "too short");
    let body = json!({ "token": t.invitation_token, "password": "1qaz2wsx3edc" });
    let resp = send(app, "POST", "/v1/invitations/accept", None, Some(&body))?;
    ensure_eq!(
        rules_of(&resp)?,
        vec!["common_password".to_owned()],
        "common"
    );

    let body = json!({ "token": t.invitation_token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_status(200)?;
    let access = str_of(&tokens(app, &t)?["access_token"]);
    let policy = app.request(
        "GET",
        "/v1/tenant/password-policy",
        &[("authorization", &format!("Bearer {access}"))],
        None,
    )?;
    let v = policy.expect_json(200)?;
    ensure_eq!(v["min_length"].as_u64(), Some(12), "defaults: {v}");
    let strict = json!({
        "min_length": 14, "require_upper": true, "require_lower": true, "require_digit": true,
        "require_symbol": true, "max_age_days": 90, "history_count": 3, "require_mfa": false,
    });
    let put = send(
        app,
        "PUT",
        "/v1/tenant/password-policy",
        Some(&access),
        Some(&strict),
    )?;
    ensure_eq!(put.expect_json(200)?, strict, "the stored policy");
    let bad = json!({
        "min_length": 4, "require_upper": true, "require_lower": true, "require_digit": true,
        "require_symbol": true, "max_age_days": null, "history_count": 3,
    });
    let resp = send(
        app,
        "PUT",
        "/v1/tenant/password-policy",
        Some(&access),
        Some(&bad),
    )?;
    let p = assert_problem(&resp, 400, "invalid-input")?;
    ensure_eq!(str_of(&p["errors"][0]["field"]), "min_length", "{p}");
    let resp = send(app, "GET", "/v1/tenant/password-policy", None, None)?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    let change = json!({ "current_password": PASSWORD, "new_password": "Anotherlongpassphrase" });
    let resp = send(
        app,
        "POST",
        "/v1/auth/password/change",
        Some(&access),
        Some(&change),
    )?;
    let p = assert_problem(&resp, 422, "business-rule")?;
    let rules: Vec<String> = p["errors"]
        .as_array()
        .map(|es| es.iter().map(|e| str_of(&e["rule"])).collect())
        .unwrap_or_default();
    ensure_eq!(
        rules,
        vec!["require_digit".to_owned(), "require_symbol".to_owned()],
        "{p}"
    );
    Ok(())
}

/// The reset token inside the latest reset mail to `email` (waiting for its delivery, which
/// follows the answer).
fn reset_token_from_outbox(app: &TestApp, email: &str) -> Result<String, String> {
    let mail = app.dev_mail_with(email, "Reset")?;
    let text = mail["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|m| str_of(&m["subject"]).contains("Reset"))
        })
        .map(|m| str_of(&m["text"]))
        .ok_or_else(|| format!("no reset mail to {email}: {mail}"))?;
    text.split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in the reset mail: {text}"))
}

fn forgot_and_reset_through_the_dev_outbox_uc_auth_reset(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let before = str_of(&tokens(app, &t)?["access_token"]);
    // Always 202, account or not.
    for email in [format!("nobody@{}.example", t.domain), t.email.clone()] {
        let body = json!({ "tenant": t.domain, "email": email });
        let resp = send(app, "POST", "/v1/auth/password/forgot", None, Some(&body))?;
        ensure_eq!(
            resp.expect_json(202)?["status"],
            json!("accepted"),
            "forgot"
        );
    }
    // Mail goes out after the answer: once the owner's (asked for second) has arrived, any
    // for the unknown account would have too.
    let token = reset_token_from_outbox(app, &t.email)?;
    let nobody = app
        .get(&format!("/__dev/mail?to=nobody@{}.example", t.domain))?
        .expect_json(200)?;
    ensure_eq!(nobody["items"], json!([]), "no mail for an unknown account");

    let weak = json!({ "token": token, "password": "short" });
    let resp = send(app, "POST", "/v1/auth/password/reset", None, Some(&weak))?;
    assert_problem(&resp, 422, "business-rule")?;
    let new_password = "a brand new passphrase";
    let body = json!({ "token": token, "password": new_password });
    send(app, "POST", "/v1/auth/password/reset", None, Some(&body))?.expect_status(204)?;
    ensure_eq!(
        active(&introspect(app, &key, &before)?),
        Some(false),
        "a reset revokes every session (FR-AUTH-004)"
    );
    let resp = send(app, "POST", "/v1/auth/password/reset", None, Some(&body))?;
    assert_problem(&resp, 422, "business-rule")?;
    assert_problem(&login(app, &t, PASSWORD)?, 401, "invalid-credentials")?;
    login(app, &t, new_password)?.expect_status(200)?;
    Ok(())
}

fn change_password_revokes_every_session_fr_auth_004(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let a = str_of(&tokens(app, &t)?["access_token"]);
    let b = str_of(&tokens(app, &t)?["access_token"]);
    let wrong =
        json!({ "current_password": "not it at all", "new_password": "a fresh passphrase" });
    let resp = send(
        app,
        "POST",
        "/v1/auth/password/change",
        Some(&a),
        Some(&wrong),
    )?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    let body = json!({ "current_password": PASSWORD, "new_password": "a fresh passphrase" });
    send(
        app,
        "POST",
        "/v1/auth/password/change",
        Some(&a),
        Some(&body),
    )?
    .expect_status(204)?;
    for token in [&a, &b] {
        ensure_eq!(
            active(&introspect(app, &key, token)?),
            Some(false),
            "revoked"
        );
    }
    login(app, &t, "a fresh passphrase")?.expect_status(200)?;
    Ok(())
}

fn forged_tokens_are_inactive_and_introspection_needs_the_scope(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    let (key, unscoped) = introspection_keys(app)?;
    let access = str_of(&tokens(app, &t)?["access_token"]);
    let parts: Vec<&str> = access.split('.').collect();
    ensure_eq!(parts.len(), 3, "a JWS");
    let header = header_of(&access)?;
    let kid = str_of(&header["kid"]);
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload: Value = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("payload is base64url JSON")?;

    let jwks = app.get("/.well-known/jwks.json")?.expect_json(200)?;
    let x = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| str_of(&k["kid"]) == kid))
        .map(|k| str_of(&k["x"]))
        .ok_or("the token's key is published")?;
    let hs_input = format!("{}.{}", enc(&json!({"alg": "HS256", "kid": kid})), parts[1]);
    let mut mac = Hmac::<Sha256>::new_from_slice(x.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(hs_input.as_bytes());
    let hs256 = format!(
        "{hs_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );

    // The same signature with S + ℓ (the group order): valid under a verifier that does not
    // check S is reduced (signature malleability, RFC 8032 section 5.1.7), so it must be refused.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| format!("signature is base64url: {e}"))?;
    ensure_eq!(sig.len(), 64, "an Ed25519 signature");
    let mut carry = 0u16;
    for (b, o) in sig[32..].iter_mut().zip(ORDER) {
        let sum = u16::from(*b) + u16::from(o) + carry;
        *b = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    let malleated = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));

    let mut admin = payload.clone();
    admin["role"] = json!("admin");
    let mut other_aud = payload.clone();
    other_aud["aud"] = json!("another-app");
    let mut expired = payload.clone();
    expired["exp"] = json!(1_000_000);
    let forged = [
        (
            "alg none",
            format!("{}.{}.", enc(&json!({"alg": "none", "kid": kid})), parts[1]),
        ),
        ("HS256 keyed with the public key", hs256),
        ("signature with S + the group order", malleated),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], enc(&admin), parts[2]),
        ),
        (
            "wrong aud",
            format!("{}.{}.{}", parts[0], enc(&other_aud), parts[2]),
        ),
        (
            "expired",
            format!("{}.{}.{}", parts[0], enc(&expired), parts[2]),
        ),
        (
            "unknown kid",
            format!(
                "{}.{}.{}",
                enc(&json!({"alg": "EdDSA", "kid": "nope"})),
                parts[1],
                parts[2]
            ),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, token) in forged {
        let v = introspect(app, &key, &token)?;
        ensure_eq!(v, json!({ "active": false }), "{what}");
        let resp = send(app, "POST", "/v1/auth/logout", Some(&token), None)?;
        assert_problem(&resp, 401, "invalid-credentials")?;
    }
    ensure_eq!(
        active(&introspect(app, &key, &access)?),
        Some(true),
        "the real token"
    );

    let resp = app.request(
        "POST",
        "/oauth/introspect",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("token={access}").into_bytes()),
    )?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    let resp = app.request(
        "POST",
        "/oauth/introspect",
        &[
            ("authorization", &format!("Bearer {unscoped}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(format!("token={access}").into_bytes()),
    )?;
    assert_problem(&resp, 403, "access-denied")?;
    // Without a token: 400 for a good key, and still 401 or 403 for a bad one (ERR-VAL-400).
    for (bearer, status, name) in [
        (key.as_str(), 400, "invalid-input"),
        ("epk_test_not-a-key", 401, "invalid-credentials"),
        (unscoped.as_str(), 403, "access-denied"),
    ] {
        let resp = app.request(
            "POST",
            "/oauth/introspect",
            &[
                ("authorization", &format!("Bearer {bearer}")),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Some(b"nothing=here".to_vec()),
        )?;
        assert_problem(&resp, status, name)?;
    }
    Ok(())
}

fn suspended_tenant_tokens_inactive_and_login_refused_fr_ops_001(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let access = str_of(&tokens(app, &t)?["access_token"]);
    let op = app.operator_token("operator", "e2e-operator")?;
    let path = format!("/v1/tenants/{}/suspend", t.tenant_id);
    send(app, "POST", &path, Some(&op), None)?.expect_json(200)?;
    ensure_eq!(
        introspect(app, &key, &access)?,
        json!({ "active": false }),
        "a suspended tenant's tokens are inactive on the next call"
    );
    let resp = login(app, &t, PASSWORD)?;
    assert_problem(&resp, 403, "access-denied")?;
    let path = format!("/v1/tenants/{}/activate", t.tenant_id);
    send(app, "POST", &path, Some(&op), None)?.expect_json(200)?;
    login(app, &t, PASSWORD)?.expect_status(200)?;
    Ok(())
}

fn signing_key_rotation_keeps_old_tokens_valid_nfr_sec_004(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let old = str_of(&tokens(app, &t)?["access_token"]);
    let resp = send(app, "POST", "/v1/signing-keys/rotate", None, None)?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    let auditor = app.operator_token("auditor", "e2e-auditor")?;
    let resp = send(app, "POST", "/v1/signing-keys/rotate", Some(&auditor), None)?;
    assert_problem(&resp, 403, "access-denied")?;
    let op = app.operator_token("operator", "e2e-operator")?;
    let r = send(app, "POST", "/v1/signing-keys/rotate", Some(&op), None)?.expect_json(200)?;
    let old_kid = str_of(&header_of(&old)?["kid"]);
    ensure_eq!(str_of(&r["previous_kid"]), old_kid, "the demoted key: {r}");
    let jwks = app.get("/.well-known/jwks.json")?.expect_json(200)?;
    let kids: Vec<String> = jwks["keys"]
        .as_array()
        .map(|ks| ks.iter().map(|k| str_of(&k["kid"])).collect())
        .unwrap_or_default();
    ensure!(
        kids.contains(&old_kid) && kids.contains(&str_of(&r["kid"])),
        "both keys published: {jwks}"
    );
    ensure_eq!(
        active(&introspect(app, &key, &old)?),
        Some(true),
        "old token still valid"
    );
    let new = str_of(&tokens(app, &t)?["access_token"]);
    ensure_eq!(
        str_of(&header_of(&new)?["kid"]),
        str_of(&r["kid"]),
        "signed by the new key"
    );
    ensure_eq!(
        active(&introspect(app, &key, &new)?),
        Some(true),
        "new token valid"
    );
    Ok(())
}

fn totp_sign_in_with_codes_computed_here_nfr_sec_003(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let access = str_of(&tokens(app, &t)?["access_token"]);
    let e = send(app, "POST", "/v1/auth/mfa/totp", Some(&access), None)?.expect_json(200)?;
    let uri = str_of(&e["otpauth_uri"]);
    ensure!(
        uri.starts_with("otpauth://totp/")
            && uri.contains(&format!("secret={}", str_of(&e["secret"]))),
        "an otpauth URI: {e}"
    );
    let secret = base32_decode(&str_of(&e["secret"]))?;
    let wrong = json!({ "code": "000000" });
    let resp = send(
        app,
        "POST",
        "/v1/auth/mfa/totp/confirm",
        Some(&access),
        Some(&wrong),
    )?;
    assert_problem(&resp, 422, "business-rule")?;
    let first = totp(&secret, 0)?;
    let body = json!({ "code": first });
    let codes = send(
        app,
        "POST",
        "/v1/auth/mfa/totp/confirm",
        Some(&access),
        Some(&body),
    )?
    .expect_json(200)?;
    let recovery: Vec<String> = codes["recovery_codes"]
        .as_array()
        .map(|cs| cs.iter().map(str_of).collect())
        .unwrap_or_default();
    ensure_eq!(recovery.len(), 10, "ten recovery codes: {codes}");

    // ERR-AUTH-461: the password alone is not enough any more.
    let resp = login(app, &t, PASSWORD)?;
    let p = assert_problem(&resp, 401, "mfa-required")?;
    ensure_eq!(str_of(&p["code"]), "ERR-AUTH-461", "{p}");
    let mfa_token = str_of(&p["mfa_token"]);
    ensure!(!mfa_token.is_empty(), "an mfa_token: {p}");
    // The confirming code cannot be replayed.
    let replay = json!({ "mfa_token": mfa_token, "code": first });
    let resp = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&replay))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    // The next step's code is within the window and newer: accepted once.
    let next = json!({ "mfa_token": mfa_token, "code": totp(&secret, 1)? });
    let pair = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&next))?.expect_json(200)?;
    ensure!(
        pair["access_token"].is_string(),
        "tokens after the second factor: {pair}"
    );
    let resp = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&next))?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    // A recovery code signs in once.
    let p = assert_problem(&login(app, &t, PASSWORD)?, 401, "mfa-required")?;
    let body = json!({ "mfa_token": str_of(&p["mfa_token"]), "code": recovery[0] });
    send(app, "POST", "/v1/auth/mfa/verify", None, Some(&body))?.expect_status(200)?;
    let p = assert_problem(&login(app, &t, PASSWORD)?, 401, "mfa-required")?;
    let body = json!({ "mfa_token": str_of(&p["mfa_token"]), "code": recovery[0] });
    let resp = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;

    let access = str_of(&pair["access_token"]);
    let off = json!({ "code": recovery[1] });
    let resp = app.request(
        "DELETE",
        "/v1/auth/mfa/totp",
        &[
            ("authorization", &format!("Bearer {access}")),
            ("content-type", "application/json"),
        ],
        Some(off.to_string().into_bytes()),
    )?;
    resp.expect_status(204)?;
    login(app, &t, PASSWORD)?.expect_status(200)?;
    Ok(())
}

/// `Retry-After` as seconds, checked to be within one 15-minute window.
fn retry_after(resp: &ApiResponse) -> Result<u64, String> {
    let secs: u64 = resp
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("429 without a numeric Retry-After: {:?}", resp.headers))?;
    ensure!(
        (1..=900).contains(&secs),
        "Retry-After {secs} within the window"
    );
    Ok(secs)
}

fn failed_logins_are_rate_limited_per_account_and_client_err_rate_429(
    app: &TestApp,
) -> Result<(), String> {
    // Per account: ten failures, then even the right password waits.
    let t = owner(app)?;
    for _ in 0..10 {
        assert_problem(
            &login(app, &t, "not the password at all")?,
            401,
            "invalid-credentials",
        )?;
    }
    let resp = login(app, &t, PASSWORD)?;
    let p = assert_problem(&resp, 429, "rate-limited")?;
    ensure_eq!(str_of(&p["code"]), "ERR-RATE-429", "{p}");
    retry_after(&resp)?;

    // Per client address: fifty failures on fifty different accounts, then the fifty-first
    // account is refused too, while another address is not. The address is only what the
    // runtime vouches for (Cloudflare's CF-Connecting-IP on Workers; on Spin the rightmost
    // X-Forwarded-For hop, added by the trusted proxy the suite stands in for): a fresh
    // address the client writes itself into every request buys no fresh attempts.
    let addr = format!(
        "198.51.100.{}",
        u8::from_str_radix(&suffix()?[..2], 16).unwrap_or(7)
    );
    for i in 0..50 {
        let resp = login_from(
            app,
            &t.domain,
            &format!("nobody{i}@{}.example", t.domain),
            "x",
            &addr,
            i,
        )?;
        assert_problem(&resp, 401, "invalid-credentials")?;
    }
    let resp = login_from(
        app,
        &t.domain,
        &format!("nobody-else@{}.example", t.domain),
        "x",
        &addr,
        50,
    )?;
    assert_problem(&resp, 429, "rate-limited")?;
    retry_after(&resp)?;
    let resp = login_from(
        app,
        &t.domain,
        &format!("nobody-else@{}.example", t.domain),
        "x",
        "192.0.2.1",
        51,
    )?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    Ok(())
}

/// `POST /v1/auth/login` from client address `from` as the runtime learns it, with a spoofed
/// address (different for each `n`) where a client could write one: `CF-Connecting-IP` on Spin
/// and the leftmost `X-Forwarded-For` hop.
fn login_from(
    app: &TestApp,
    domain: &str,
    email: &str,
    password: &str,
    from: &str,
    n: usize,
) -> Result<ApiResponse, String> {
    let spoof = format!("203.0.113.{}", n % 250 + 1);
    let forwarded = format!("{spoof}, {from}");
    let client: [(&str, &str); 2] = match app.runtime {
        Runtime::Workerd => [("cf-connecting-ip", from), ("x-forwarded-for", &spoof)],
        Runtime::Spin => [
            ("cf-connecting-ip", &spoof),
            ("x-forwarded-for", &forwarded),
        ],
    };
    let body = json!({ "tenant": domain, "email": email, "password": password });
    app.request(
        "POST",
        "/v1/auth/login",
        &[("content-type", "application/json"), client[0], client[1]],
        Some(body.to_string().into_bytes()),
    )
}

/// Runs `n` copies of `f` at once, one thread each, and returns their results in order.
fn concurrently<T: Send>(
    n: usize,
    f: impl Fn(usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "a request thread panicked".to_owned())?
            })
            .collect()
    })
}

/// ERR-RATE-429 under concurrency: a burst of wrong passwords for one account gets exactly the
/// limit's number of password checks; every other request is refused before any hashing.
fn concurrent_login_guesses_get_exactly_the_limit_err_rate_429(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    // An address of its own (198.18.0.0/15 is used by no other test): the per-client test
    // leaves its 198.51.100.x address at the limit.
    let addr = "198.18.0.9";
    let statuses = concurrently(24, |i| {
        Ok(login_from(app, &t.domain, &t.email, "not the password at all", addr, i)?.status)
    })?;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    ensure_eq!(
        (checked, refused),
        (10, 14),
        "401s and 429s of 24 concurrent guesses: {statuses:?}"
    );
    Ok(())
}

/// ERR-RATE-429, NFR-SEC-003: concurrent codes on one pending sign-in share its five attempts,
/// and wrong codes count against the user across pending sign-ins: a fresh password sign-in
/// buys no fresh guesses, and past ten even the right code waits.
fn second_factor_guesses_are_limited_per_sign_in_and_per_user_err_rate_429(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    let access = str_of(&tokens(app, &t)?["access_token"]);
    let e = send(app, "POST", "/v1/auth/mfa/totp", Some(&access), None)?.expect_json(200)?;
    let secret = base32_decode(&str_of(&e["secret"]))?;
    let body = json!({ "code": totp(&secret, 0)? });
    send(
        app,
        "POST",
        "/v1/auth/mfa/totp/confirm",
        Some(&access),
        Some(&body),
    )?
    .expect_status(200)?;
    let mfa_token = || -> Result<String, String> {
        let p = assert_problem(&login(app, &t, PASSWORD)?, 401, "mfa-required")?;
        Ok(str_of(&p["mfa_token"]))
    };
    let guess = |token: &str, code: &str| {
        let body = json!({ "mfa_token": token, "code": code });
        send(app, "POST", "/v1/auth/mfa/verify", None, Some(&body))
    };
    // Codes that cannot be right: never the current, previous or next step's.
    let valid: Vec<String> = (-1..=1)
        .map(|o| totp(&secret, o))
        .collect::<Result<_, _>>()?;
    let wrong: Vec<String> = (0..40)
        .map(|i| format!("{:06}", 100_000 + i * 7919))
        .filter(|c| !valid.contains(c))
        .collect();

    // Exactly five are checked; the others find the pending sign-in used up, or the user's
    // limit taken by attempts still in flight (429).
    let first = mfa_token()?;
    let reasons = concurrently(16, |i| {
        let resp = guess(&first, &wrong[i])?;
        if resp.status == 429 {
            assert_problem(&resp, 429, "rate-limited")?;
            return Ok("rate_limited".to_owned());
        }
        let p = assert_problem(&resp, 401, "invalid-credentials")?;
        Ok(str_of(&p["reason"]))
    })?;
    let checked = reasons.iter().filter(|r| *r == "mfa_code_invalid").count();
    ensure_eq!(
        checked,
        5,
        "codes checked on one pending sign-in: {reasons:?}"
    );

    // Five more on a fresh sign-in make ten for the user.
    let second = mfa_token()?;
    for code in &wrong[20..25] {
        assert_problem(&guess(&second, code)?, 401, "invalid-credentials")?;
    }
    let third = mfa_token()?;
    let resp = guess(&third, &totp(&secret, 0)?)?;
    assert_problem(&resp, 429, "rate-limited")?;
    retry_after(&resp)?;
    Ok(())
}

fn admin_revocation_ends_every_session_at_once_fr_auth_005(app: &TestApp) -> Result<(), String> {
    let t = owner(app)?;
    let other = owner(app)?;
    let (key, _) = introspection_keys(app)?;
    let a = str_of(&tokens(app, &t)?["access_token"]);
    let b = tokens(app, &t)?;
    let user_id = str_of(&introspect(app, &key, &a)?["sub"]);
    let other_access = str_of(&tokens(app, &other)?["access_token"]);
    let other_id = str_of(&introspect(app, &key, &other_access)?["sub"]);

    // Another tenant's user is not found (ERR-RES-404), and nothing happens to them.
    let path = format!("/v1/tenant/users/{other_id}/sessions/revoke");
    assert_problem(&send(app, "POST", &path, Some(&a), None)?, 404, "not-found")?;
    ensure_eq!(
        active(&introspect(app, &key, &other_access)?),
        Some(true),
        "untouched"
    );

    let path = format!("/v1/tenant/users/{user_id}/sessions/revoke");
    let v = send(app, "POST", &path, Some(&a), None)?.expect_json(200)?;
    ensure_eq!(v["sessions_revoked"].as_u64(), Some(2), "{v}");
    for token in [a.clone(), str_of(&b["access_token"])] {
        ensure_eq!(
            active(&introspect(app, &key, &token)?),
            Some(false),
            "revoked at once"
        );
    }
    let body = json!({ "refresh_token": str_of(&b["refresh_token"]) });
    let resp = send(app, "POST", "/v1/auth/refresh", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    Ok(())
}

fn tenant_requiring_mfa_enrolls_users_during_sign_in_nfr_sec_003(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    let access = str_of(&tokens(app, &t)?["access_token"]);
    let policy = json!({
        "min_length": 12, "require_upper": false, "require_lower": false, "require_digit": false,
        "require_symbol": false, "max_age_days": null, "history_count": 0, "require_mfa": true,
    });
    send(
        app,
        "PUT",
        "/v1/tenant/password-policy",
        Some(&access),
        Some(&policy),
    )?
    .expect_json(200)?;

    let p = assert_problem(&login(app, &t, PASSWORD)?, 401, "mfa-required")?;
    ensure_eq!(p["enrollment_required"].as_bool(), Some(true), "{p}");
    let mfa_token = str_of(&p["mfa_token"]);
    let body = json!({ "mfa_token": mfa_token });
    let e = send(app, "POST", "/v1/auth/mfa/enroll", None, Some(&body))?.expect_json(200)?;
    let secret = base32_decode(&str_of(&e["secret"]))?;
    let verify = json!({ "mfa_token": mfa_token, "code": totp(&secret, 0)? });
    let done = send(app, "POST", "/v1/auth/mfa/verify", None, Some(&verify))?.expect_json(200)?;
    ensure!(done["access_token"].is_string(), "signed in: {done}");
    ensure_eq!(
        done["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "recovery codes with the first sign-in: {done}"
    );
    let p = assert_problem(&login(app, &t, PASSWORD)?, 401, "mfa-required")?;
    ensure_eq!(p["enrollment_required"].as_bool(), Some(false), "{p}");
    // An ordinary pending sign-in cannot be used to enroll again.
    let body = json!({ "mfa_token": str_of(&p["mfa_token"]) });
    let resp = send(app, "POST", "/v1/auth/mfa/enroll", None, Some(&body))?;
    assert_problem(&resp, 401, "invalid-credentials")?;
    Ok(())
}

/// FR-FLAG-001: operators configure flags; a tenant's owner reads its own tenant's flags (and
/// nobody else's), with no way to write them; an app key is not a user token.
fn owners_read_their_tenants_flags_but_cannot_write_fr_flag_001(
    app: &TestApp,
) -> Result<(), String> {
    let t = owner(app)?;
    let op = app.operator_token("operator", "e2e-operator")?;
    let body = json!({ "type": "boolean", "value": true });
    let path = format!("/v1/tenants/{}/flags/owner-visible", t.tenant_id);
    let set = send(app, "PUT", &path, Some(&op), Some(&body))?;
    ensure_eq!(set.status, 201, "operator sets a flag: {}", set.excerpt());
    let at = str_of(&tokens(app, &t)?["access_token"]);
    let own = send(app, "GET", "/v1/tenant/flags", Some(&at), None)?.expect_json(200)?;
    ensure_eq!(
        str_of(&own["tenant_id"]),
        t.tenant_id,
        "the owner's tenant: {own}"
    );
    ensure!(
        own["flags"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f["key"] == "owner-visible")),
        "the owner sees the flag: {own}"
    );
    // No write route for tenant users, and the operator routes refuse their token.
    let write = send(app, "PUT", &path, Some(&at), Some(&body))?;
    ensure!(
        write.status == 401 || write.status == 403,
        "an owner token cannot set flags: {}",
        write.excerpt()
    );
    let other = owner(app)?;
    let foreign = send(
        app,
        "GET",
        &format!("/v1/tenants/{}/flags", other.tenant_id),
        Some(&at),
        None,
    )?;
    ensure!(
        foreign.status == 401 || foreign.status == 403,
        "an owner token reads no operator route: {}",
        foreign.excerpt()
    );
    let anonymous = send(app, "GET", "/v1/tenant/flags", None, None)?;
    ensure_eq!(
        anonymous.status,
        401,
        "a token is needed: {}",
        anonymous.excerpt()
    );
    Ok(())
}
