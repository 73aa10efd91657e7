//! The OpenID Connect provider for managed apps (FR-AUTH-001 OIDC) and its universal login page
//! (IF-LOGIN-UI): discovery, authorization errors, the page's security headers and CSRF
//! check, a whole sign-in driven by HTTP through the page (password, then TOTP), and an
//! unmodified OIDC client library (`openid-client`, npm) doing discovery, code + PKCE, token
//! exchange with ID token signature checks, userinfo, refresh and end-session.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::helpers::{base32_decode, introspect, str_of, suffix, totp, ApiResponse, TestApp};

crate::contract_tests![
    discovery_advertises_what_is_implemented_fr_auth_001,
    authorize_errors_before_the_redirect_uri_are_shown_not_redirected_fr_auth_001,
    login_page_has_a_strict_csp_and_security_headers_if_login_ui,
    login_forms_refuse_a_wrong_or_missing_csrf_token_if_login_ui,
    full_login_through_the_page_by_http_fr_auth_001,
    mfa_step_on_the_login_page_nfr_sec_003,
    mfa_enrollment_on_the_login_page_when_the_tenant_requires_it_nfr_sec_003,
    openid_client_library_signs_in_refreshes_and_logs_out_fr_auth_001,
    openidconnect_crate_signs_in_and_refreshes_fr_auth_001,
];

const PASSWORD: &str = "correct horse battery staple";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// The client's browser origin (`allowed_origins`), for CORS.
const SPA_ORIGIN: &str = "http://127.0.0.1:3000";
/// RFC 7636 Appendix B.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn send_json(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<ApiResponse, String> {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    app.request(
        method,
        path,
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
}

/// An app (the OIDC client) enabled for a fresh tenant whose owner has a password.
pub(crate) struct World {
    pub(crate) client_id: String,
    pub(crate) domain: String,
    pub(crate) email: String,
}

pub(crate) fn world(app: &TestApp) -> Result<World, String> {
    let op = app.operator_token("operator", "e2e-operator")?;
    let s = suffix()?;
    let body = json!({ "name": format!("OIDC App {s}"), "redirect_uris": [REDIRECT],
                       "allowed_origins": [SPA_ORIGIN] });
    let created = send_json(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?;
    let client_id = str_of(&created["id"]);
    let domain = format!("oidc-{s}");
    let email = format!("owner@{domain}.example");
    let body = json!({ "name": "OIDC Corp", "domain": domain, "plan": "pro",
                       "owner_email": email, "apps": [client_id] });
    let t = send_json(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    let link = str_of(&t["invitation_link"]);
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .ok_or_else(|| format!("no token in {link:?}"))?;
    let body = json!({ "token": token, "password": PASSWORD });
    send_json(app, "POST", "/v1/invitations/accept", None, Some(&body))?.expect_json(200)?;
    Ok(World {
        client_id,
        domain,
        email,
    })
}

pub(crate) fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email offline_access"),
        ("state", "s<t>a\"te"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        fields.retain(|(fk, _)| fk != k);
        if !v.is_empty() {
            fields.push((k, v));
        }
    }
    format!(
        "/oauth/authorize?{}",
        String::from_utf8_lossy(&form(&fields))
    )
}

/// A login page: its flow id, CSRF token and cookie.
pub(crate) struct Page {
    pub(crate) flow: String,
    pub(crate) csrf: String,
    pub(crate) cookie: String,
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub(crate) fn hidden(html: &str, name: &str) -> Result<String, String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&needle)
        .ok_or_else(|| format!("no hidden {name} in the page: {html}"))?
        + needle.len();
    let end = html[start..]
        .find('"')
        .ok_or_else(|| format!("unterminated {name}"))?;
    Ok(unescape(&html[start..start + end]))
}

fn open_page(app: &TestApp, path: &str) -> Result<(ApiResponse, Page), String> {
    let resp = app.get(path)?;
    ensure_eq!(resp.status, 200, "login page: {}", resp.excerpt());
    let html = resp.text();
    let cookie = resp
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("ep_csrf_"))
        .ok_or("no CSRF cookie")?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let page = Page {
        flow: hidden(&html, "flow")?,
        csrf: hidden(&html, "csrf")?,
        cookie,
    };
    Ok((resp, page))
}

fn post_form(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Result<ApiResponse, String> {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    app.request("POST", path, &headers, Some(form(fields)))
}

pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn claims_of(jwt: &str) -> Result<Value, String> {
    let body = jwt.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| format!("JWT body: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("JWT body: {e}"))
}

fn discovery_advertises_what_is_implemented_fr_auth_001(app: &TestApp) -> Result<(), String> {
    let d = app
        .get("/.well-known/openid-configuration")?
        .expect_json(200)?;
    ensure_eq!(
        str_of(&d["issuer"]),
        app.base_url,
        "issuer is the origin: {d}"
    );
    ensure_eq!(
        str_of(&d["authorization_endpoint"]),
        format!("{}/oauth/authorize", app.base_url),
        "{d}"
    );
    ensure_eq!(
        str_of(&d["jwks_uri"]),
        format!("{}/.well-known/jwks.json", app.base_url),
        "{d}"
    );
    ensure_eq!(d["response_types_supported"], json!(["code"]), "{d}");
    ensure_eq!(
        d["code_challenge_methods_supported"],
        json!(["S256"]),
        "{d}"
    );
    ensure_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["EdDSA"]),
        "{d}"
    );
    ensure_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"]),
        "{d}"
    );
    ensure_eq!(
        d["scopes_supported"],
        json!(["openid", "profile", "email", "offline_access"]),
        "{d}"
    );
    for k in [
        "token_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        ensure!(
            str_of(&d[k]).starts_with(&app.base_url),
            "{k} is advertised: {d}"
        );
    }
    ensure!(
        d["claims_supported"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("nonce")) && c.contains(&json!("email"))),
        "claims: {d}"
    );
    Ok(())
}

fn authorize_errors_before_the_redirect_uri_are_shown_not_redirected_fr_auth_001(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    let cases = [
        authorize_path("00000000-0000-4000-8000-000000000000", &[]),
        authorize_path(
            &w.client_id,
            &[("redirect_uri", "http://127.0.0.1:9/other")],
        ),
        authorize_path(
            &w.client_id,
            &[("redirect_uri", "http://127.0.0.1:9/callback/")],
        ),
        authorize_path(&w.client_id, &[("redirect_uri", "")]),
        authorize_path("", &[]),
    ];
    for path in &cases {
        let resp = app.get(path)?;
        ensure_eq!(resp.status, 400, "{path}: {}", resp.excerpt());
        ensure!(
            resp.header("location").is_none(),
            "{path} is not redirected"
        );
        ensure_eq!(
            resp.media_type(),
            Some("text/html".to_owned()),
            "{path}: an HTML error page"
        );
        ensure!(
            resp.header("content-security-policy").is_some(),
            "{path}: the error page has the CSP too"
        );
    }
    // After the redirect URI checks out, errors go back to the client with the state.
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("scope", "email")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("prompt", "none")], "login_required"),
    ] {
        let path = authorize_path(&w.client_id, &extra);
        let resp = app.get(&path)?;
        ensure_eq!(resp.status, 303, "{path}: {}", resp.excerpt());
        let location = resp.header("location").unwrap_or_default().to_owned();
        ensure!(
            location.starts_with(&format!("{REDIRECT}?error={error}")),
            "{path} -> {location}"
        );
        ensure_eq!(
            query_param(&location, "state"),
            Some("s<t>a\"te".to_owned()),
            "state is returned: {location}"
        );
    }
    Ok(())
}

fn login_page_has_a_strict_csp_and_security_headers_if_login_ui(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    // A login_hint with markup is escaped, never interpreted.
    let (resp, _) = open_page(
        app,
        &authorize_path(
            &w.client_id,
            &[
                ("tenant", &w.domain),
                ("login_hint", "a\"><script>x@y.example"),
            ],
        ),
    )?;
    let csp = resp.header("content-security-policy").unwrap_or_default();
    ensure_eq!(
        csp,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http://127.0.0.1:9; frame-ancestors 'none'; base-uri 'none'",
        "CSP"
    );
    ensure_eq!(resp.header("x-frame-options"), Some("DENY"), "framing");
    ensure_eq!(resp.header("cache-control"), Some("no-store"), "caching");
    ensure_eq!(
        resp.header("referrer-policy"),
        Some("no-referrer"),
        "referrer"
    );
    ensure_eq!(resp.media_type(), Some("text/html".to_owned()), "HTML");
    let cookie = resp
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("ep_csrf_"))
        .unwrap_or_default()
        .to_owned();
    ensure!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "CSRF cookie attributes: {cookie}"
    );
    let html = resp.text();
    ensure!(!html.contains("<script"), "no script at all: {html}");
    ensure!(!html.contains("style="), "no inline style: {html}");
    ensure!(!html.contains("<style"), "no style element: {html}");
    ensure!(
        html.contains("name=\"password\"") && html.contains("Forgot password?"),
        "the tenant is known: email and password step: {html}"
    );
    ensure!(
        !html.contains("Continue with your company SSO"),
        "no SSO link without an SSO configuration: {html}"
    );
    let css = app.get("/oauth/assets/login.css")?;
    ensure_eq!(css.status, 200, "stylesheet");
    ensure_eq!(
        css.media_type(),
        Some("text/css".to_owned()),
        "stylesheet type"
    );
    Ok(())
}

fn login_forms_refuse_a_wrong_or_missing_csrf_token_if_login_ui(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    let (_, page) = open_page(app, &authorize_path(&w.client_id, &[("tenant", &w.domain)]))?;
    let post = |cookie: Option<&str>, csrf: &str| {
        post_form(
            app,
            "/oauth/authorize/login",
            cookie,
            &[
                ("flow", page.flow.as_str()),
                ("csrf", csrf),
                ("email", w.email.as_str()),
                ("password", PASSWORD),
            ],
        )
    };
    // Right token, no cookie (a cross-site post whose cookie SameSite=Lax withheld).
    let resp = post(None, &page.csrf)?;
    ensure_eq!(resp.status, 403, "no cookie: {}", resp.excerpt());
    // Cookie, wrong token.
    let resp = post(Some(&page.cookie), "forged")?;
    ensure_eq!(resp.status, 403, "forged token: {}", resp.excerpt());
    // Cookie and token agree but are not the flow's.
    let forged_cookie = format!("{}=forged", page.cookie.split('=').next().unwrap_or(""));
    let resp = post(Some(&forged_cookie), "forged")?;
    ensure_eq!(
        resp.status,
        403,
        "double-submitted forgery: {}",
        resp.excerpt()
    );
    ensure!(
        resp.header("location").is_none(),
        "no code after a refused form"
    );
    // The right pair signs in.
    let resp = post(Some(&page.cookie), &page.csrf)?;
    ensure_eq!(resp.status, 303, "the real form: {}", resp.excerpt());
    Ok(())
}

/// The token endpoint with a form body and optional Basic credentials.
fn token(
    app: &TestApp,
    basic: Option<&str>,
    fields: &[(&str, &str)],
) -> Result<ApiResponse, String> {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(b) = basic {
        headers.push(("authorization", b));
    }
    app.request("POST", "/oauth/token", &headers, Some(form(fields)))
}

fn userinfo(app: &TestApp, access: &str) -> Result<ApiResponse, String> {
    let auth = format!("Bearer {access}");
    app.request(
        "GET",
        "/oauth/userinfo",
        &[("authorization", auth.as_str())],
        None,
    )
}

fn full_login_through_the_page_by_http_fr_auth_001(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    // A confidential client: the secret is shown once.
    let op = app.operator_token("operator", "e2e-operator")?;
    let sec = send_json(
        app,
        "POST",
        &format!("/v1/apps/{}/client-secret", w.client_id),
        Some(&op),
        None,
    )?
    .expect_json(201)?;
    let secret = str_of(&sec["client_secret"]);
    ensure!(secret.starts_with("epcs_"), "a client secret: {sec}");

    // Step 1: organization; step 2: password (wrong first).
    let (_, page) = open_page(app, &authorize_path(&w.client_id, &[]))?;
    let resp = post_form(
        app,
        "/oauth/authorize/tenant",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("tenant", "no-such-org"),
        ],
    )?;
    ensure_eq!(resp.status, 404, "unknown organization: {}", resp.excerpt());
    let resp = post_form(
        app,
        "/oauth/authorize/tenant",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("tenant", &w.domain),
        ],
    )?;
    ensure_eq!(resp.status, 200, "tenant step: {}", resp.excerpt());
    ensure!(resp.text().contains("name=\"password\""), "password step");
    // Kept for a look in a browser (target/login-page.html with target/oauth/assets/login.css).
    let root = crate::helpers::repo_root();
    let _ = std::fs::write(root.join("target/login-page.html"), resp.text());
    let login = |password: &str| {
        post_form(
            app,
            "/oauth/authorize/login",
            Some(&page.cookie),
            &[
                ("flow", &page.flow),
                ("csrf", &page.csrf),
                ("email", &w.email),
                ("password", password),
            ],
        )
    };
    // Forgot password: the button of the same form posts the typed email; always the same
    // answer, and the reset link is mailed (FR-AUTH-004).
    let resp = post_form(
        app,
        "/oauth/authorize/forgot",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("email", &w.email),
            ("password", ""),
        ],
    )?;
    ensure_eq!(resp.status, 200, "forgot: {}", resp.excerpt());
    ensure!(
        resp.text()
            .contains("a link to reset the password is on its way"),
        "neutral notice: {}",
        resp.text()
    );
    ensure!(
        resp.text()
            .contains("formaction=\"/oauth/authorize/forgot\""),
        "the forgot button shares the sign-in form"
    );
    // Delivered after the answer.
    app.dev_mail_with(&w.email, "Reset")?;
    let resp = post_form(
        app,
        "/oauth/authorize/forgot",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("email", "nobody@nowhere.example"),
        ],
    )?;
    ensure_eq!(
        resp.status,
        200,
        "forgot, unknown email: {}",
        resp.excerpt()
    );
    ensure!(
        resp.text()
            .contains("a link to reset the password is on its way"),
        "the same answer for an unknown email"
    );
    let resp = login("wrong password here")?;
    ensure_eq!(resp.status, 401, "wrong password: {}", resp.excerpt());
    ensure!(
        resp.text().contains("The email or password is incorrect."),
        "the same message as the API"
    );
    let resp = login(PASSWORD)?;
    ensure_eq!(resp.status, 303, "signed in: {}", resp.excerpt());
    let location = resp.header("location").unwrap_or_default().to_owned();
    ensure!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    ensure_eq!(
        query_param(&location, "state"),
        Some("s<t>a\"te".to_owned()),
        "state: {location}"
    );
    let code = query_param(&location, "code").ok_or("no code")?;
    // The flow is used up.
    ensure_eq!(login(PASSWORD)?.status, 400, "the flow is single use");

    // Token exchange: without the secret, then with client_secret_post.
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", w.client_id.as_str()),
    ];
    let resp = token(app, None, &base)?;
    ensure_eq!(resp.status, 401, "no secret: {}", resp.excerpt());
    ensure_eq!(
        str_of(&resp.json()?["error"]),
        "invalid_client",
        "RFC 6749 error"
    );
    let mut with_secret = base.to_vec();
    with_secret.push(("client_secret", secret.as_str()));
    let resp = token(app, None, &with_secret)?;
    ensure_eq!(
        resp.header("cache-control"),
        Some("no-store"),
        "tokens not cached"
    );
    let t = resp.expect_json(200)?;
    ensure!(t["refresh_token"].is_string(), "offline_access: {t}");
    let id = claims_of(&str_of(&t["id_token"]))?;
    ensure_eq!(str_of(&id["aud"]), w.client_id, "aud: {id}");
    ensure_eq!(str_of(&id["iss"]), app.base_url, "iss: {id}");
    ensure_eq!(str_of(&id["nonce"]), "n-1", "nonce: {id}");
    ensure_eq!(str_of(&id["email"]), w.email, "email: {id}");
    ensure_eq!(id["amr"], json!(["pwd"]), "amr: {id}");
    let access = str_of(&t["access_token"]);
    let info = userinfo(app, &access)?.expect_json(200)?;
    ensure_eq!(str_of(&info["sub"]), str_of(&id["sub"]), "userinfo: {info}");
    ensure_eq!(str_of(&info["email"]), w.email, "userinfo: {info}");
    // Introspection (RFC 7662): active for the client's own key, inactive for another app's.
    let key_of = |app_id: &str| -> Result<String, String> {
        let body = json!({ "scopes": ["token:introspect"] });
        let path = format!("/v1/apps/{app_id}/keys");
        let key = send_json(app, "POST", &path, Some(&op), Some(&body))?.expect_json(201)?;
        Ok(str_of(&key["secret"]))
    };
    let own_key = key_of(&w.client_id)?;
    let v = introspect(app, &own_key, &access)?;
    ensure_eq!(v["active"], json!(true), "own client's token: {v}");
    ensure_eq!(str_of(&v["aud"]), w.client_id, "aud: {v}");
    ensure_eq!(str_of(&v["sub"]), str_of(&id["sub"]), "sub: {v}");
    let body = json!({ "name": format!("Other {}", suffix()?) });
    let other = send_json(app, "POST", "/v1/apps", Some(&op), Some(&body))?.expect_json(201)?;
    let v = introspect(app, &key_of(&str_of(&other["id"]))?, &access)?;
    ensure_eq!(v, json!({ "active": false }), "another app's key: {v}");
    // The client's access token is not an Edgeplane API token.
    let resp = send_json(
        app,
        "GET",
        "/v1/tenant/password-policy",
        Some(&access),
        None,
    )?;
    ensure_eq!(
        resp.status,
        401,
        "API refuses OIDC tokens: {}",
        resp.excerpt()
    );

    // Refresh with client_secret_basic.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", w.client_id, secret))
    );
    let rt = str_of(&t["refresh_token"]);
    // CORS: the client's own origin may read token answers, another origin may not.
    for (origin, readable) in [(SPA_ORIGIN, true), ("http://127.0.0.1:4000", false)] {
        let resp = app.request(
            "POST",
            "/oauth/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", origin),
            ],
            Some(form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", w.client_id.as_str()),
            ])),
        )?;
        ensure_eq!(
            resp.header("access-control-allow-origin") == Some(origin),
            readable,
            "CORS for {origin}: {:?}",
            resp.headers
        );
    }
    let pre = app.request(
        "OPTIONS",
        "/oauth/userinfo",
        &[("origin", SPA_ORIGIN)],
        None,
    )?;
    ensure_eq!(pre.status, 204, "preflight: {}", pre.excerpt());
    let r = token(
        app,
        Some(&basic),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ],
    )?
    .expect_json(200)?;
    ensure!(str_of(&r["refresh_token"]) != rt, "rotated: {r}");

    // The code again: refused, and the session it started is revoked.
    let resp = token(app, None, &with_secret)?;
    ensure_eq!(resp.status, 400, "reused code: {}", resp.excerpt());
    ensure_eq!(
        str_of(&resp.json()?["error"]),
        "invalid_grant",
        "reused code"
    );
    let resp = userinfo(app, &str_of(&r["access_token"]))?;
    ensure_eq!(
        resp.status,
        401,
        "session revoked after code reuse: {}",
        resp.excerpt()
    );
    let v = introspect(app, &own_key, &str_of(&r["access_token"]))?;
    ensure_eq!(
        v,
        json!({ "active": false }),
        "revoked at introspection: {v}"
    );
    // End-session by form post, without a redirect: an HTML page.
    let hint = str_of(&t["id_token"]);
    let resp = post_form(
        app,
        "/oauth/logout",
        None,
        &[("id_token_hint", hint.as_str())],
    )?;
    ensure_eq!(resp.status, 200, "logout page: {}", resp.excerpt());
    ensure!(
        resp.text().contains("You are signed out"),
        "signed out page"
    );
    let resp = post_form(
        app,
        "/oauth/logout",
        None,
        &[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
    )?;
    ensure_eq!(
        resp.status,
        400,
        "unregistered post_logout_redirect_uri: {}",
        resp.excerpt()
    );
    ensure!(
        resp.header("location").is_none(),
        "never redirected elsewhere"
    );
    Ok(())
}

fn mfa_step_on_the_login_page_nfr_sec_003(app: &TestApp) -> Result<(), String> {
    let w = world(app)?;
    // Enroll TOTP through the API, with codes computed here.
    let body = json!({ "tenant": w.domain, "email": w.email, "password": PASSWORD });
    let t = send_json(app, "POST", "/v1/auth/login", None, Some(&body))?.expect_json(200)?;
    let access = str_of(&t["access_token"]);
    let e = send_json(app, "POST", "/v1/auth/mfa/totp", Some(&access), None)?.expect_json(200)?;
    let secret = base32_decode(&str_of(&e["secret"]))?;
    let body = json!({ "code": totp(&secret, -1)? });
    send_json(
        app,
        "POST",
        "/v1/auth/mfa/totp/confirm",
        Some(&access),
        Some(&body),
    )?
    .expect_json(200)?;

    let (_, page) = open_page(app, &authorize_path(&w.client_id, &[("tenant", &w.domain)]))?;
    let resp = post_form(
        app,
        "/oauth/authorize/login",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("email", &w.email),
            ("password", PASSWORD),
        ],
    )?;
    ensure_eq!(resp.status, 200, "MFA step: {}", resp.excerpt());
    let html = resp.text();
    ensure!(html.contains("name=\"code\""), "a code field: {html}");
    let mfa_token = hidden(&html, "mfa_token")?;
    let mfa = |code: &str| {
        post_form(
            app,
            "/oauth/authorize/mfa",
            Some(&page.cookie),
            &[
                ("flow", &page.flow),
                ("csrf", &page.csrf),
                ("mfa_token", &mfa_token),
                ("code", code),
            ],
        )
    };
    let resp = mfa("000000")?;
    ensure_eq!(resp.status, 401, "wrong code: {}", resp.excerpt());
    let resp = mfa(&totp(&secret, 0)?)?;
    ensure_eq!(resp.status, 303, "code accepted: {}", resp.excerpt());
    let location = resp.header("location").unwrap_or_default().to_owned();
    let code = query_param(&location, "code").ok_or(format!("no code in {location}"))?;
    let t = token(
        app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", w.client_id.as_str()),
        ],
    )?
    .expect_json(200)?;
    let id = claims_of(&str_of(&t["id_token"]))?;
    ensure_eq!(id["amr"], json!(["pwd", "otp"]), "amr: {id}");
    Ok(())
}

/// Runs `tests/harness/oidc-client.mjs` (openid-client) for client `w` with `secret` (`-`:
/// public client) and returns what it printed.
fn run_openid_client(app: &TestApp, w: &World, secret: &str) -> Result<Value, String> {
    let root = crate::helpers::repo_root();
    let script = "tests/harness/oidc-client.mjs";
    let out = std::process::Command::new("node")
        .arg(root.join(script))
        .args([
            app.base_url.as_str(),
            w.client_id.as_str(),
            secret,
            w.domain.as_str(),
            w.email.as_str(),
            PASSWORD,
            REDIRECT,
        ])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run node {script}: {e}"))?;
    ensure!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Kept for inspection: what the library saw (algorithms, claims, the tamper check).
    let _ = std::fs::write(root.join("target/oidc-client-last.json"), &out.stdout);
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{script} printed no JSON ({e})"))
}

fn openid_client_library_signs_in_refreshes_and_logs_out_fr_auth_001(
    app: &TestApp,
) -> Result<(), String> {
    // A confidential client (client_secret_basic) first, then a public one (PKCE only).
    let c = world(app)?;
    let op = app.operator_token("operator", "e2e-operator")?;
    let sec = send_json(
        app,
        "POST",
        &format!("/v1/apps/{}/client-secret", c.client_id),
        Some(&op),
        None,
    )?
    .expect_json(201)?;
    let got = run_openid_client(app, &c, &str_of(&sec["client_secret"]))?;
    ensure_eq!(
        str_of(&got["claims"]["aud"]),
        c.client_id,
        "confidential: {got}"
    );
    ensure_eq!(
        str_of(&got["userinfo"]["email"]),
        c.email,
        "confidential: {got}"
    );

    let w = world(app)?;
    let got = run_openid_client(app, &w, "-")?;
    ensure_eq!(str_of(&got["issuer"]), app.base_url, "discovered: {got}");
    ensure_eq!(
        str_of(&got["id_token_alg"]),
        "EdDSA",
        "EdDSA ID token: {got}"
    );
    ensure!(got["callback_has_code"] == json!(true), "code: {got}");
    ensure_eq!(str_of(&got["claims"]["aud"]), w.client_id, "claims: {got}");
    ensure_eq!(
        str_of(&got["userinfo"]["email"]),
        w.email,
        "userinfo: {got}"
    );
    ensure!(
        got["refreshed"]["rotated"] == json!(true) && got["refreshed"]["sid_kept"] == json!(true),
        "refresh: {got}"
    );
    ensure!(
        str_of(&got["tamper_refused"]).contains("signature verification failed"),
        "openid-client must refuse an ID token with a bad EdDSA signature: {got}"
    );
    // The library's end-session URL ends the session and returns to the app.
    let url = str_of(&got["end_session_url"]);
    let path = url
        .strip_prefix(&app.base_url)
        .ok_or(format!("end session on the provider: {url}"))?;
    let access = str_of(&got["refreshed_access_token"]);
    ensure_eq!(userinfo(app, &access)?.status, 200, "before logout");
    let resp = app.get(path)?;
    ensure_eq!(resp.status, 303, "end session: {}", resp.excerpt());
    ensure_eq!(
        resp.header("location").map(str::to_owned),
        Some(format!("{REDIRECT}?state=bye")),
        "post logout redirect"
    );
    ensure_eq!(userinfo(app, &access)?.status, 401, "after logout");
    // A PKCE challenge sanity check against the same vectors the provider uses.
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    ensure_eq!(computed, CHALLENGE, "RFC 7636 Appendix B");
    Ok(())
}

/// The transport error of the suite's HTTP client, as the `openidconnect` crate wants it.
#[derive(Debug)]
struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

fn openidconnect_crate_signs_in_and_refreshes_fr_auth_001(app: &TestApp) -> Result<(), String> {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
    };
    use openidconnect::{
        AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
        PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };

    let w = world(app)?;
    let http_client = |req: openidconnect::HttpRequest| {
        let resp = app.client.run(req).map_err(|e| HttpError(e.to_string()))?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body.read_to_vec().map_err(|e| HttpError(e.to_string()))?;
        Ok::<_, HttpError>(openidconnect::http::Response::from_parts(parts, bytes))
    };
    let issuer = IssuerUrl::new(app.base_url.clone()).map_err(|e| e.to_string())?;
    let metadata = CoreProviderMetadata::discover(&issuer, &http_client)
        .map_err(|e| format!("discovery: {e:?}"))?;
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(w.client_id.clone()), None)
            .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).map_err(|e| e.to_string())?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("offline_access".to_owned()))
        .add_extra_param("tenant", w.domain.clone())
        .set_pkce_challenge(challenge)
        .url();
    let path = url
        .as_str()
        .strip_prefix(&app.base_url)
        .ok_or(format!("authorization URL on the provider: {url}"))?
        .to_owned();
    let (_, page) = open_page(app, &path)?;
    let resp = post_form(
        app,
        "/oauth/authorize/login",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("email", &w.email),
            ("password", PASSWORD),
        ],
    )?;
    ensure_eq!(resp.status, 303, "signed in: {}", resp.excerpt());
    let location = resp.header("location").unwrap_or_default().to_owned();
    ensure_eq!(
        query_param(&location, "state"),
        Some(state.secret().clone()),
        "state"
    );
    let code = query_param(&location, "code").ok_or(format!("no code in {location}"))?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| format!("exchange_code: {e}"))?
        .set_pkce_verifier(verifier)
        .request(&http_client)
        .map_err(|e| format!("token request: {e:?}"))?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    // The library checks the EdDSA signature against the discovered JWKS, iss, aud, exp, nonce.
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .map_err(|e| format!("the crate refused the ID token: {e:?}"))?;
    ensure_eq!(
        claims.email().map(|e| e.as_str().to_owned()),
        Some(w.email.clone()),
        "email claim"
    );
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .map_err(|e| format!("user_info: {e}"))?
        .request(&http_client)
        .map_err(|e| format!("userinfo: {e:?}"))?;
    ensure_eq!(
        info.email().map(|e| e.as_str().to_owned()),
        Some(w.email.clone()),
        "userinfo"
    );
    let refresh = tokens.refresh_token().ok_or("no refresh token")?;
    let refreshed = client
        .exchange_refresh_token(refresh)
        .map_err(|e| format!("exchange_refresh_token: {e}"))?
        .request(&http_client)
        .map_err(|e| format!("refresh: {e:?}"))?;
    ensure!(
        refreshed.refresh_token().map(|t| t.secret()) != Some(refresh.secret()),
        "rotated"
    );
    // A forged signature is refused by the crate too.
    let forged = {
        let raw = id_token.to_string();
        let mut parts: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let mut sig = URL_SAFE_NO_PAD
            .decode(parts.get(2).ok_or("no signature")?)
            .map_err(|e| e.to_string())?;
        if let Some(b) = sig.first_mut() {
            *b ^= 1;
        }
        parts[2] = URL_SAFE_NO_PAD.encode(sig);
        parts.join(".")
    };
    let forged: openidconnect::core::CoreIdToken =
        forged.parse().map_err(|e| format!("forged parse: {e:?}"))?;
    ensure!(
        forged.claims(&client.id_token_verifier(), &nonce).is_err(),
        "a forged EdDSA signature must be refused"
    );
    Ok(())
}

fn mfa_enrollment_on_the_login_page_when_the_tenant_requires_it_nfr_sec_003(
    app: &TestApp,
) -> Result<(), String> {
    let w = world(app)?;
    let body = json!({ "tenant": w.domain, "email": w.email, "password": PASSWORD });
    let t = send_json(app, "POST", "/v1/auth/login", None, Some(&body))?.expect_json(200)?;
    let access = str_of(&t["access_token"]);
    let policy = json!({
        "min_length": 12, "require_upper": false, "require_lower": false, "require_digit": false,
        "require_symbol": false, "max_age_days": null, "history_count": 0, "require_mfa": true,
    });
    send_json(
        app,
        "PUT",
        "/v1/tenant/password-policy",
        Some(&access),
        Some(&policy),
    )?
    .expect_json(200)?;

    let (_, page) = open_page(app, &authorize_path(&w.client_id, &[("tenant", &w.domain)]))?;
    let resp = post_form(
        app,
        "/oauth/authorize/login",
        Some(&page.cookie),
        &[
            ("flow", &page.flow),
            ("csrf", &page.csrf),
            ("email", &w.email),
            ("password", PASSWORD),
        ],
    )?;
    ensure_eq!(resp.status, 200, "enrollment step: {}", resp.excerpt());
    let html = resp.text();
    let mfa_token = hidden(&html, "mfa_token")?;
    let key = hidden(&html, "enroll_secret")?;
    let uri = hidden(&html, "otpauth_uri")?;
    ensure!(uri.starts_with("otpauth://totp/"), "an otpauth URI: {uri}");
    let secret = base32_decode(&key)?;
    let mfa = |code: &str| {
        post_form(
            app,
            "/oauth/authorize/mfa",
            Some(&page.cookie),
            &[
                ("flow", &page.flow),
                ("csrf", &page.csrf),
                ("mfa_token", &mfa_token),
                ("enroll_secret", &key),
                ("otpauth_uri", &uri),
                ("code", code),
            ],
        )
    };
    let resp = mfa("000000")?;
    ensure_eq!(resp.status, 401, "wrong first code: {}", resp.excerpt());
    ensure!(resp.text().contains(&key), "the key is shown again");
    // Continuing before the enrollment is done gives nothing.
    let cont = || {
        post_form(
            app,
            "/oauth/authorize/continue",
            Some(&page.cookie),
            &[("flow", &page.flow), ("csrf", &page.csrf)],
        )
    };
    ensure_eq!(cont()?.status, 400, "nothing to continue yet");
    let resp = mfa(&totp(&secret, 0)?)?;
    ensure_eq!(resp.status, 200, "recovery codes: {}", resp.excerpt());
    let html = resp.text();
    ensure_eq!(
        html.matches("<li><code>").count(),
        10,
        "ten recovery codes: {html}"
    );
    let resp = cont()?;
    ensure_eq!(resp.status, 303, "continue: {}", resp.excerpt());
    let location = resp.header("location").unwrap_or_default().to_owned();
    let code = query_param(&location, "code").ok_or(format!("no code in {location}"))?;
    let t = token(
        app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", w.client_id.as_str()),
        ],
    )?
    .expect_json(200)?;
    let id = claims_of(&str_of(&t["id_token"]))?;
    ensure_eq!(id["amr"], json!(["pwd", "otp"]), "amr: {id}");
    ensure_eq!(cont()?.status, 400, "the flow is used up");
    Ok(())
}
