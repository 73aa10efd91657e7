//! Tenant SSO (FR-AUTH-003, UC-TENANT-SSO) against a real OpenID Connect provider: npm
//! `oidc-provider`, started per test by `tests/harness/oidc-idp.mjs` on a random loopback port
//! and driven over plain HTTP the way a browser would (redirects followed by hand, cookies kept).
//!
//! The refusals are provoked by things a real provider does honestly: a nonce in the
//! authorization request that is not Edgeplane's, a configuration the owner changed to another
//! client or another issuer while a sign-in was in flight (the token then answers the old one),
//! and a provider whose clock is two hours behind (its ID tokens arrive expired).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use ureq::http;

use crate::helpers::{assert_problem, repo_root, send, str_of, suffix, ApiResponse, TestApp};

crate::contract_tests![
    sso_config_is_owner_only_and_checked_by_discovery_fr_auth_003,
    sso_login_issues_a_working_session_fr_auth_003,
    unknown_email_needs_jit_and_unverified_email_is_refused_fr_auth_003,
    idp_errors_and_replayed_state_are_refused_fr_auth_003,
    wrong_nonce_is_refused_fr_auth_003,
    token_for_another_client_is_refused_fr_auth_003,
    token_from_another_issuer_is_refused_fr_auth_003,
    expired_id_token_is_refused_fr_auth_003,
    login_page_hands_off_to_company_sso_and_back_to_the_app_fr_auth_001,
    invited_user_is_activated_and_disabled_user_refused_fr_auth_003,
];

const PASSWORD: &str = "correct horse battery staple";
pub(crate) const CALLBACK: &str = "/v1/auth/sso/callback";

/// A running `oidc-idp.mjs`, stopped by its PID when dropped.
pub(crate) struct Idp {
    pub(crate) issuer: String,
    child: Child,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a provider whose clients redirect to this app's callback (http and https forms: the
/// runtime decides the scheme of its own origin). `extra` are more harness arguments.
pub(crate) fn start_idp(app: &TestApp, extra: &[&str]) -> Result<Idp, String> {
    let http_cb = format!("{}{CALLBACK}", app.base_url);
    let https_cb = http_cb.replacen("http://", "https://", 1);
    let mut child = Command::new("node")
        .current_dir(repo_root())
        .arg("tests/harness/oidc-idp.mjs")
        .args(["--redirect-uri", &http_cb, "--redirect-uri", &https_cb])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the OIDC provider (node): {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let idp = |issuer: String, child: Child| Idp { issuer, child };
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => {
            let v: Value = serde_json::from_str(line.trim())
                .map_err(|e| format!("OIDC provider ready line {line:?}: {e}"))?;
            let issuer = v["issuer"].as_str().unwrap_or_default().to_owned();
            ensure!(issuer.starts_with("http://127.0.0.1:"), "issuer {issuer:?}");
            Ok(idp(issuer, child))
        }
        Err(_) => {
            let _ = child.kill();
            Err("the OIDC provider did not print its ready line".to_owned())
        }
    }
}

/// A tenant with an active owner: (domain, owner email, owner access token).
fn tenant(app: &TestApp) -> Result<(String, String, String), String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let domain = format!("sso-{}", suffix()?);
    let email = format!("owner@{domain}.example");
    let body = json!({ "name": "SSO Corp", "domain": domain, "plan": "pro", "owner_email": email });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in the invitation link {link:?}"))?;
    let body = json!({ "token": token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_json(200)?;
    let body = json!({ "tenant": domain, "email": email, "password": PASSWORD });
    let v = send(app, "POST", "/v1/auth/login", None, Some(&body))?.expect_json(200)?;
    Ok((domain, email, str_of(&v["access_token"])))
}

/// `PUT /v1/tenant/sso` with the IdP's `edgeplane` client.
pub(crate) fn configure(
    app: &TestApp,
    owner: &str,
    issuer: &str,
    client: (&str, &str),
    allow_jit: bool,
) -> Result<ApiResponse, String> {
    let body = json!({
        "issuer_url": issuer, "client_id": client.0, "client_secret": client.1,
        "allow_jit": allow_jit, "jit_role": "user",
    });
    send(app, "PUT", "/v1/tenant/sso", Some(owner), Some(&body))
}

pub(crate) const EDGEPLANE_CLIENT: (&str, &str) = ("edgeplane", "edgeplane-secret");
const OTHER_CLIENT: (&str, &str) = ("other-client", "other-secret");

/// `GET /v1/auth/sso/start`: the IdP authorization URL Edgeplane redirects to.
fn start(app: &TestApp, domain: &str) -> Result<String, String> {
    let resp = app.get(&format!("/v1/auth/sso/start?tenant={domain}"))?;
    resp.expect_status(302)?;
    ensure_eq!(resp.header("cache-control"), Some("no-store"), "start");
    let location = resp.header("location").unwrap_or_default().to_owned();
    for p in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "client_id=",
    ] {
        ensure!(location.contains(p), "{p} missing from {location}");
    }
    Ok(location)
}

/// What a browser GET saw: status, `Location`, and the `Set-Cookie` name/value pairs.
type BrowserResponse = (u16, Option<String>, Vec<(String, String)>);

/// One GET as a browser.
fn browser_get(
    app: &TestApp,
    url: &str,
    cookies: &[(String, String)],
) -> Result<BrowserResponse, String> {
    let mut builder = http::Request::builder().method("GET").uri(url);
    if !cookies.is_empty() {
        let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        builder = builder.header("cookie", header.join("; "));
    }
    let req = builder
        .body(())
        .map_err(|e| format!("GET {url}: cannot build: {e}"))?;
    let resp = app.client.run(req).map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let set = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((status, location, set))
}

/// Follows `authorization_url` (signing in as `login_hint`) through the provider until it
/// redirects to Edgeplane's callback; returns the callback's path and query.
pub(crate) fn authorize(
    app: &TestApp,
    authorization_url: &str,
    login_hint: &str,
) -> Result<String, String> {
    let hint: String = url_encode(login_hint);
    let mut url = format!("{authorization_url}&login_hint={hint}");
    let origin = origin_of(authorization_url);
    let mut jar: Vec<(String, String)> = Vec::new();
    for _ in 0..10 {
        let (status, location, set) = browser_get(app, &url, &jar)?;
        for (k, v) in set {
            jar.retain(|(name, _)| *name != k);
            jar.push((k, v));
        }
        let location = location
            .ok_or_else(|| format!("the provider answered {status} without a redirect at {url}"))?;
        if let Some(i) = location.find(CALLBACK) {
            return Ok(location[i..].to_owned());
        }
        url = if location.starts_with('/') {
            format!("{origin}{location}")
        } else {
            location
        };
    }
    Err("too many redirects at the provider".to_owned())
}

fn origin_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split('/').next().unwrap_or_default();
    format!("http://{host}")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A whole SSO sign-in as `login_hint`: Edgeplane's callback response.
fn sso_login(app: &TestApp, domain: &str, login_hint: &str) -> Result<ApiResponse, String> {
    let url = start(app, domain)?;
    let callback = authorize(app, &url, login_hint)?;
    app.get(&callback)
}

/// A 401/403 problem whose `reason` is `reason`.
fn refused(resp: &ApiResponse, status: u16, name: &str, reason: &str) -> Result<(), String> {
    let v = assert_problem(resp, status, name)?;
    ensure_eq!(str_of(&v["reason"]), reason, "refusal reason: {v}");
    Ok(())
}

fn sso_config_is_owner_only_and_checked_by_discovery_fr_auth_003(
    app: &TestApp,
) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, _, owner) = tenant(app)?;
    assert_problem(
        &send(app, "GET", "/v1/tenant/sso", Some(&owner), None)?,
        404,
        "not-found",
    )?;

    // A broken issuer is refused, naming what failed (ERR-VAL-400).
    let resp = configure(
        app,
        &owner,
        "http://127.0.0.1:9/nowhere",
        EDGEPLANE_CLIENT,
        false,
    )?;
    let v = assert_problem(&resp, 400, "invalid-input")?;
    // Only which document failed: the network error stays in the log.
    ensure_eq!(
        str_of(&v["detail"]),
        "issuer_url: the issuer's discovery document could not be fetched",
        "names the failed discovery: {v}"
    );
    // Internal destinations are refused before any fetch, development or not; only
    // a loopback host, as the IdP of this suite, is allowed in development.
    for internal in [
        "https://169.254.169.254",
        "http://10.0.0.1",
        "https://[::ffff:127.0.0.1]",
        "https://idp.internal",
    ] {
        let resp = configure(app, &owner, internal, EDGEPLANE_CLIENT, false)?;
        let v = assert_problem(&resp, 400, "invalid-input")?;
        ensure_eq!(
            str_of(&v["errors"][0]["field"]),
            "issuer_url",
            "{internal}: {v}"
        );
    }
    // An issuer that is not the one its discovery document names.
    let resp = configure(
        app,
        &owner,
        &format!("{}/", idp.issuer),
        EDGEPLANE_CLIENT,
        false,
    )?;
    let v = assert_problem(&resp, 400, "invalid-input")?;
    ensure!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("names another issuer"),
        "names the issuer mismatch: {v}"
    );
    let resp = configure(app, &owner, "ftp://idp.example", EDGEPLANE_CLIENT, false)?;
    assert_problem(&resp, 400, "invalid-input")?;

    let saved = configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?;
    ensure!(!saved.text().contains("edgeplane-secret"), "secret echoed");
    let v = saved.expect_json(200)?;
    ensure_eq!(v["client_secret_set"].as_bool(), Some(true), "{v}");
    ensure!(v.get("client_secret").is_none(), "{v}");
    let got = send(app, "GET", "/v1/tenant/sso", Some(&owner), None)?;
    ensure!(!got.text().contains("edgeplane-secret"), "secret returned");
    let v = got.expect_json(200)?;
    ensure_eq!(str_of(&v["issuer_url"]), idp.issuer, "{v}");
    ensure_eq!(str_of(&v["client_id"]), "edgeplane", "{v}");

    // A user of another tenant sees only their own (absent) configuration.
    let (_, _, other_owner) = tenant(app)?;
    assert_problem(
        &send(app, "GET", "/v1/tenant/sso", Some(&other_owner), None)?,
        404,
        "not-found",
    )?;

    // A non-owner of this tenant (a JIT user) is refused (ERR-AUTH-403).
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, true)?.expect_json(200)?;
    let member = sso_login(app, &domain, &format!("member@{domain}.example"))?.expect_json(200)?;
    let member_token = str_of(&member["access_token"]);
    for (method, body) in [
        ("GET", None),
        ("DELETE", None),
        (
            "PUT",
            Some(json!({ "issuer_url": idp.issuer, "client_id": "edgeplane" })),
        ),
    ] {
        let resp = send(
            app,
            method,
            "/v1/tenant/sso",
            Some(&member_token),
            body.as_ref(),
        )?;
        assert_problem(&resp, 403, "access-denied")?;
    }

    // Saving without a secret keeps the stored one, but only for the same issuer and client:
    // the stored secret is never sent to another IdP. Removing works once.
    let body = json!({ "issuer_url": idp.issuer, "client_id": OTHER_CLIENT.0 });
    let v = assert_problem(
        &send(app, "PUT", "/v1/tenant/sso", Some(&owner), Some(&body))?,
        400,
        "invalid-input",
    )?;
    ensure_eq!(str_of(&v["errors"][0]["field"]), "client_secret", "{v}");
    let v = send(app, "GET", "/v1/tenant/sso", Some(&owner), None)?.expect_json(200)?;
    ensure_eq!(str_of(&v["client_id"]), "edgeplane", "unchanged: {v}");
    let body = json!({ "issuer_url": idp.issuer, "client_id": "edgeplane", "enabled": true });
    send(app, "PUT", "/v1/tenant/sso", Some(&owner), Some(&body))?.expect_json(200)?;
    sso_login(app, &domain, &format!("owner@{domain}.example"))?.expect_json(200)?;
    send(app, "DELETE", "/v1/tenant/sso", Some(&owner), None)?.expect_status(204)?;
    assert_problem(
        &send(app, "DELETE", "/v1/tenant/sso", Some(&owner), None)?,
        404,
        "not-found",
    )?;
    assert_problem(
        &app.get(&format!("/v1/auth/sso/start?tenant={domain}"))?,
        404,
        "not-found",
    )?;
    Ok(())
}

fn sso_login_issues_a_working_session_fr_auth_003(app: &TestApp) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, email, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;

    let resp = sso_login(app, &domain, &email)?;
    ensure_eq!(resp.header("cache-control"), Some("no-store"), "tokens");
    let v = resp.expect_json(200)?;
    ensure_eq!(str_of(&v["token_type"]), "Bearer", "{v}");
    let access = str_of(&v["access_token"]);
    // The session works: the owner's own route accepts the token, and it refreshes.
    send(app, "GET", "/v1/tenant/sso", Some(&access), None)?.expect_json(200)?;
    let body = json!({ "refresh_token": str_of(&v["refresh_token"]) });
    send(app, "POST", "/v1/auth/refresh", None, Some(&body))?.expect_json(200)?;

    // A second sign-in finds the same (now linked) account.
    let again = sso_login(app, &domain, &email)?.expect_json(200)?;
    send(
        app,
        "GET",
        "/v1/tenant/sso",
        Some(&str_of(&again["access_token"])),
        None,
    )?
    .expect_json(200)?;
    Ok(())
}

fn unknown_email_needs_jit_and_unverified_email_is_refused_fr_auth_003(
    app: &TestApp,
) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, _, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    let stranger = format!("stranger@{domain}.example");
    refused(
        &sso_login(app, &domain, &stranger)?,
        403,
        "access-denied",
        "unknown_user",
    )?;
    refused(
        &sso_login(app, &domain, &format!("unverified@{domain}.example"))?,
        401,
        "invalid-credentials",
        "email_not_verified",
    )?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, true)?.expect_json(200)?;
    let v = sso_login(app, &domain, &stranger)?.expect_json(200)?;
    ensure!(!str_of(&v["access_token"]).is_empty(), "{v}");
    Ok(())
}

fn idp_errors_and_replayed_state_are_refused_fr_auth_003(app: &TestApp) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, email, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;

    // The IdP refused (as it does when the user cancels): 401 naming its error.
    let url = start(app, &domain)?;
    let state = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap_or_default()
        .to_owned();
    let resp = app.get(&format!("{CALLBACK}?error=access_denied&state={state}"))?;
    let v = assert_problem(&resp, 401, "invalid-credentials")?;
    ensure_eq!(str_of(&v["idp_error"]), "access_denied", "{v}");

    // RFC 9207: the provider names itself in its answer (`iss`); another name is a mix-up.
    let url = start(app, &domain)?;
    let callback = authorize(app, &url, &email)?;
    ensure!(
        callback.contains("iss="),
        "oidc-provider sends iss: {callback}"
    );
    let mixed: Vec<String> = callback
        .split('&')
        .map(|p| {
            if p.starts_with("iss=") {
                "iss=https%3A%2F%2Fother-idp.example".to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect();
    refused(
        &app.get(&mixed.join("&"))?,
        401,
        "invalid-credentials",
        "response_issuer",
    )?;

    // A callback completes once: the same state again is refused.
    let url = start(app, &domain)?;
    let callback = authorize(app, &url, &email)?;
    app.get(&callback)?.expect_json(200)?;
    refused(
        &app.get(&callback)?,
        401,
        "invalid-credentials",
        "sso_state_invalid",
    )?;
    refused(
        &app.get(&format!("{CALLBACK}?code=x&state=forged"))?,
        401,
        "invalid-credentials",
        "sso_state_invalid",
    )?;
    Ok(())
}

fn wrong_nonce_is_refused_fr_auth_003(app: &TestApp) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, email, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    let url = start(app, &domain)?;
    // The provider puts whatever nonce the authorization request carries into the ID token.
    let forged: Vec<String> = url
        .split('&')
        .map(|p| {
            if p.starts_with("nonce=") {
                "nonce=not-edgeplanes-nonce".to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect();
    let callback = authorize(app, &forged.join("&"), &email)?;
    refused(
        &app.get(&callback)?,
        401,
        "invalid-credentials",
        "id_token_nonce",
    )
}

fn token_for_another_client_is_refused_fr_auth_003(app: &TestApp) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, email, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    let url = start(app, &domain)?;
    let callback = authorize(app, &url, &email)?;
    // The owner switches to another client of the same provider before the callback: the ID
    // token (aud `edgeplane`) is not for the client the tenant now trusts.
    configure(app, &owner, &idp.issuer, OTHER_CLIENT, false)?.expect_json(200)?;
    refused(
        &app.get(&callback)?,
        401,
        "invalid-credentials",
        "id_token_audience",
    )?;
    // With the new client, sign-in works again.
    sso_login(app, &domain, &email)?.expect_json(200)?;
    Ok(())
}

fn token_from_another_issuer_is_refused_fr_auth_003(app: &TestApp) -> Result<(), String> {
    let first = start_idp(app, &[])?;
    let second = start_idp(app, &[])?;
    let (domain, email, owner) = tenant(app)?;
    configure(app, &owner, &first.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    let url = start(app, &domain)?;
    let callback = authorize(app, &url, &email)?;
    // The tenant now trusts another issuer: a token of the first one is refused.
    configure(app, &owner, &second.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    refused(
        &app.get(&callback)?,
        401,
        "invalid-credentials",
        "id_token_issuer",
    )?;
    sso_login(app, &domain, &email)?.expect_json(200)?;
    Ok(())
}

fn expired_id_token_is_refused_fr_auth_003(app: &TestApp) -> Result<(), String> {
    // A provider whose clock is two hours behind issues one-hour ID tokens that have expired.
    let idp = start_idp(app, &["--clock-skew-secs", "-7200"])?;
    let (domain, email, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    refused(
        &sso_login(app, &domain, &email)?,
        401,
        "invalid-credentials",
        "id_token_expired",
    )
}

/// The universal login page's "Continue with your company SSO": the IdP's sign-in resumes the
/// page's authorization request, so the managed app gets a code it can exchange (FR-AUTH-001
/// with FR-AUTH-003).
fn login_page_hands_off_to_company_sso_and_back_to_the_app_fr_auth_001(
    app: &TestApp,
) -> Result<(), String> {
    const REDIRECT: &str = "http://127.0.0.1:9/sso-app/callback";
    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let idp = start_idp(app, &[])?;
    let op = app.operator_token("operator", "e2e-operator")?;
    let body = json!({ "name": "SSO App", "redirect_uris": [REDIRECT] });
    let client_id =
        str_of(&send(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?["id"]);
    let domain = format!("sso-{}", suffix()?);
    let email = format!("owner@{domain}.example");
    let body = json!({ "name": "SSO Corp", "domain": domain, "plan": "pro",
                       "owner_email": email, "apps": [client_id] });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&created["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or("no token")?;
    let body = json!({ "token": token, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_json(200)?;
    let body = json!({ "tenant": domain, "email": email, "password": PASSWORD });
    let owner = str_of(
        &send(app, "POST", "/v1/auth/login", None, Some(&body))?.expect_json(200)?["access_token"],
    );
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;

    // The login page: organization step, then the SSO link beside the password form.
    let query: Vec<String> = [
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", url_encode(v)))
    .collect();
    let page = app.get(&format!("/oauth/authorize?{}", query.join("&")))?;
    ensure_eq!(page.status, 200, "login page: {}", page.excerpt());
    let html = page.text();
    let hidden = |html: &str, name: &str| -> Result<String, String> {
        let needle = format!("name=\"{name}\" value=\"");
        let at = html
            .find(&needle)
            .ok_or_else(|| format!("no {name} in {html}"))?
            + needle.len();
        let len = html[at..].find('"').ok_or("unterminated")?;
        Ok(html[at..at + len].to_owned())
    };
    let (flow, csrf) = (hidden(&html, "flow")?, hidden(&html, "csrf")?);
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("ep_csrf_"))
        .and_then(|c| c.split(';').next())
        .ok_or("no CSRF cookie")?
        .to_owned();
    let form = format!(
        "flow={}&csrf={}&tenant={}",
        url_encode(&flow),
        url_encode(&csrf),
        url_encode(&domain)
    );
    let resp = app.request(
        "POST",
        "/oauth/authorize/tenant",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", cookie.as_str()),
        ],
        Some(form.into_bytes()),
    )?;
    ensure_eq!(resp.status, 200, "organization step: {}", resp.excerpt());
    let html = resp.text();
    let at = html
        .find("href=\"/v1/auth/sso/start?")
        .ok_or_else(|| format!("no SSO link on the page: {html}"))?
        + "href=\"".len();
    let len = html[at..].find('"').ok_or("unterminated link")?;
    let sso_start = html[at..at + len].replace("&amp;", "&");

    // Through the IdP and back: the callback sends the browser to the app with a code.
    let resp = app.get(&sso_start)?;
    ensure_eq!(resp.status, 302, "SSO start: {}", resp.excerpt());
    let callback = authorize(app, resp.header("location").unwrap_or_default(), &email)?;
    let resp = app.get(&callback)?;
    ensure_eq!(resp.status, 302, "callback: {}", resp.excerpt());
    let location = resp.header("location").unwrap_or_default().to_owned();
    ensure!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    ensure!(location.contains("state=st-1"), "state: {location}");
    let code = location
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .ok_or("no code")?
        .to_owned();
    // A replayed callback finds its state used up: problem details for an API client, a page
    // (with the login page's strict policy) for a browser.
    assert_problem(&app.get(&callback)?, 401, "invalid-credentials")?;
    let page = app.get_with(
        &callback,
        &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
    )?;
    ensure_eq!(page.status, 401, "replayed callback in a browser");
    ensure_eq!(page.media_type(), Some("text/html".to_owned()), "a page");
    ensure!(
        page.text().contains("Sign-in failed")
            && page
                .header("content-security-policy")
                .is_some_and(|c| c.starts_with("default-src 'none'")),
        "{}",
        page.excerpt()
    );

    // The app exchanges the code (a public client with PKCE): the ID token says SSO.
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}&client_id={}",
        url_encode(&code),
        url_encode(REDIRECT),
        url_encode(&client_id)
    );
    let tokens = app
        .request(
            "POST",
            "/oauth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(form.into_bytes()),
        )?
        .expect_json(200)?;
    let id_token = str_of(&tokens["id_token"]);
    let claims = id_token.split('.').nth(1).ok_or("not a JWT")?;
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
            .map_err(|e| format!("ID token: {e}"))?,
    )
    .map_err(|e| format!("ID token: {e}"))?;
    ensure_eq!(str_of(&claims["email"]), email, "{claims}");
    ensure_eq!(str_of(&claims["nonce"]), "n-1", "{claims}");
    ensure!(
        claims["amr"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m == "sso")),
        "amr names SSO: {claims}"
    );
    Ok(())
}

/// An invited user's first SSO sign-in activates the account; a disabled user is refused
/// (FR-AUTH-003 with FR-TENANT-001 and FR-TENANT-006).
fn invited_user_is_activated_and_disabled_user_refused_fr_auth_003(
    app: &TestApp,
) -> Result<(), String> {
    let idp = start_idp(app, &[])?;
    let (domain, _, owner) = tenant(app)?;
    configure(app, &owner, &idp.issuer, EDGEPLANE_CLIENT, false)?.expect_json(200)?;
    let ana = format!("ana@{domain}.example");
    let body = json!({ "email": ana, "role": "user" });
    send(
        app,
        "POST",
        "/v1/tenant/invitations",
        Some(&owner),
        Some(&body),
    )?
    .expect_json(201)?;
    let find = || -> Result<Value, String> {
        let list = send(
            app,
            "GET",
            &format!("/v1/tenant/users?q={}", url_encode(&ana)),
            Some(&owner),
            None,
        )?
        .expect_json(200)?;
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|u| str_of(&u["email"]) == ana).cloned())
            .ok_or_else(|| format!("{ana} not listed: {list}"))
    };
    ensure_eq!(str_of(&find()?["status"]), "invited", "before SSO");

    let v = sso_login(app, &domain, &ana)?.expect_json(200)?;
    ensure!(!str_of(&v["access_token"]).is_empty(), "{v}");
    let user = find()?;
    ensure_eq!(str_of(&user["status"]), "active", "after SSO: {user}");

    let body = json!({ "status": "disabled" });
    let path = format!("/v1/tenant/users/{}", str_of(&user["id"]));
    send(app, "PATCH", &path, Some(&owner), Some(&body))?.expect_json(200)?;
    refused(
        &sso_login(app, &domain, &ana)?,
        403,
        "access-denied",
        "account_not_active",
    )?;
    Ok(())
}
