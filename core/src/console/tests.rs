//! The console over the test platform: operator sign-in at a canned identity provider, the
//! session cookie, CSRF, roles and expiry, each through `crate::handle` as a browser would.

use ::http::{header, Method, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use futures_executor::block_on;
use serde_json::json;

use super::session::{ABSOLUTE_TIMEOUT_MS, IDLE_TIMEOUT_MS};
use crate::http::{Request, Response};
use crate::ports::{Clock, Sql, Stmt};
use crate::testing::TestPlatform;
use crate::tokens::master_key::MASTER_KEY_SECRET;

const ISSUER: &str = "http://127.0.0.1:9999";
const BASE: &str = "http://127.0.0.1:8787";
const CLIENT: &str = "edgeplane-console";

fn platform() -> (TestPlatform, SigningKey) {
    let p = block_on(TestPlatform::new());
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA" }] });
    p.secrets.set("EDGEPLANE_ENV", "development");
    p.secrets.set("OPERATOR_ISSUER", ISSUER);
    p.secrets.set("OPERATOR_AUDIENCE", "edgeplane");
    p.secrets.set("OPERATOR_DEV_JWKS", &jwks.to_string());
    p.secrets.set("OPERATOR_CONSOLE_CLIENT_ID", CLIENT);
    p.secrets
        .set("OPERATOR_CONSOLE_CLIENT_SECRET", "console-secret");
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([3u8; 32]));
    let discovery = json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "jwks_uri": format!("{ISSUER}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    });
    p.http.set(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        200,
        &discovery.to_string(),
    );
    (p, key)
}

fn id_token(p: &TestPlatform, key: &SigningKey, role: &str, nonce: &str, aud: &str) -> String {
    let now = p.clock.now_ms() / 1000;
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
    let claims = json!({
        "iss": ISSUER, "aud": aud, "sub": format!("demo-{role}"), "roles": [role],
        "email": format!("{role}@operators.example"), "nonce": nonce, "iat": now, "exp": now + 300,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

struct Browser<'a> {
    p: &'a TestPlatform,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(p: &'a TestPlatform) -> Self {
        Browser {
            p,
            cookies: Vec::new(),
        }
    }

    fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Response {
        let mut b = ::http::Request::builder()
            .method(method)
            .uri(format!("{BASE}{path}"));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            b = b.header(header::COOKIE, c.join("; "));
        }
        let body = match form {
            Some(pairs) => {
                b = b
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::ORIGIN, BASE);
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter())
                    .finish()
                    .into_bytes()
            }
            None => Vec::new(),
        };
        let req: Request = b.body(body).unwrap();
        let resp = block_on(crate::handle(self.p, req));
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
        resp
    }

    fn get(&mut self, path: &str) -> Response {
        self.send(Method::GET, path, None)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        self.send(Method::POST, path, Some(form))
    }

    /// Signs in through the canned provider as `role`; returns the CSRF token of the session.
    fn sign_in(&mut self, key: &SigningKey, role: &str) -> String {
        let start = self.get("/console/signin/operator");
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let auth_url = location(&start);
        assert!(
            auth_url.starts_with(&format!("{ISSUER}/auth?")),
            "{auth_url}"
        );
        let q = query(&auth_url);
        assert_eq!(param(&q, "code_challenge_method"), "S256");
        assert_eq!(param(&q, "client_id"), CLIENT);
        let token = id_token(self.p, key, role, &param(&q, "nonce"), CLIENT);
        self.p.http.set(
            &format!("{ISSUER}/token"),
            200,
            &json!({ "id_token": token, "access_token": "x", "token_type": "Bearer" }).to_string(),
        );
        let state = param(&q, "state");
        let back = self.get(&format!("/console/auth/callback?state={state}&code=c1"));
        assert_eq!(back.status(), StatusCode::SEE_OTHER, "{}", body(&back));
        assert_eq!(location(&back), "/console/");
        csrf_of(&body(&self.get("/console/tenants")))
    }
}

fn location(r: &Response) -> String {
    r.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

fn body(r: &Response) -> String {
    String::from_utf8_lossy(r.body()).into_owned()
}

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param(q: &[(String, String)], name: &str) -> String {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn tenant_count(p: &TestPlatform) -> usize {
    block_on(p.sql.query(Stmt::new("SELECT id FROM tenants")))
        .unwrap()
        .len()
}

const NEW_TENANT: &[(&str, &str)] = &[
    ("name", "Acme"),
    ("domain", "acme"),
    ("plan", "pro"),
    ("owner_email", "owner@acme.example"),
];

fn with<'f>(csrf: &'f str, fields: &[(&'f str, &'f str)]) -> Vec<(&'f str, &'f str)> {
    let mut v = vec![("csrf", csrf), ("once", "o1")];
    v.extend_from_slice(fields);
    v
}

#[test]
fn if_ops_console_pages_need_a_session_and_come_with_a_strict_policy() {
    let (p, _) = platform();
    let mut b = Browser::new(&p);
    let home = b.get("/console/");
    assert_eq!(location(&home), "/console/signin");
    let tenants = b.get("/console/tenants?q=acme");
    assert_eq!(tenants.status(), StatusCode::SEE_OTHER);
    assert!(location(&tenants).starts_with("/console/signin?next=%2Fconsole%2Ftenants"));
    let signin = b.get("/console/signin");
    assert_eq!(signin.status(), StatusCode::OK);
    let csp = signin.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(signin.headers()[header::CACHE_CONTROL], "no-store");
    assert!(body(&signin).contains("Sign in as operator or auditor"));
    assert!(!body(&signin).contains("<script>"), "no inline script");
}

#[test]
fn fr_sys_004_an_operator_signs_in_with_code_and_pkce_and_acts_through_the_api() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&key, "operator");
    let (name, value) = b
        .cookies
        .iter()
        .find(|(k, _)| k == "edgeplane-console")
        .unwrap()
        .clone();
    assert_eq!(
        name, "edgeplane-console",
        "no __Host- prefix over loopback http"
    );
    assert!(value.len() >= 43);
    // The token endpoint got the code, the verifier and the client's credentials.
    let token_req = p
        .http
        .requests()
        .into_iter()
        .find(|r| r.url.ends_with("/token"))
        .unwrap();
    let form = String::from_utf8(token_req.body).unwrap();
    assert!(
        form.contains("code=c1") && form.contains("code_verifier="),
        "{form}"
    );
    assert!(token_req
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));

    let created = b.post("/console/tenants", &with(&csrf, NEW_TENANT));
    assert_eq!(created.status(), StatusCode::OK, "{}", body(&created));
    assert!(
        body(&created).contains("invitation"),
        "the invitation link is shown once"
    );
    assert_eq!(tenant_count(&p), 1);
    // The audit trail names the operator, as for a bearer token.
    let rows = block_on(p.sql.query(Stmt::new(
        "SELECT actor_type FROM audit_outbox WHERE action = 'tenant.create'",
    )))
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text("actor_type").unwrap(), "operator");
    // The same rendering of the form sent again is applied once.
    let again = b.post("/console/tenants", &with(&csrf, NEW_TENANT));
    assert_eq!(again.status(), StatusCode::OK, "{}", body(&again));
    assert_eq!(tenant_count(&p), 1);
}

#[test]
fn a_form_without_the_session_s_csrf_token_or_from_another_origin_changes_nothing() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&key, "operator");
    let forged = b.post("/console/tenants", &with("not-the-token", NEW_TENANT));
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let missing = b.post("/console/tenants", NEW_TENANT);
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    // A cross-site form: the browser names the other origin.
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let req = ::http::Request::builder()
        .method(Method::POST)
        .uri(format!("{BASE}/console/tenants"))
        .header(header::COOKIE, cookies.join("; "))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://evil.example")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(with(&csrf, NEW_TENANT))
                .finish()
                .into_bytes(),
        )
        .unwrap();
    assert_eq!(
        block_on(crate::handle(&p, req)).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(tenant_count(&p), 0);
}

#[test]
fn an_auditor_sees_the_pages_but_cannot_change_anything() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&key, "auditor");
    let list = body(&b.get("/console/tenants"));
    assert!(
        list.contains("Tenants") && !list.contains("New tenant"),
        "{list}"
    );
    let refused = b.post("/console/tenants", &with(&csrf, NEW_TENANT));
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(tenant_count(&p), 0);
    let denied = block_on(p.sql.query(Stmt::new(
        "SELECT outcome FROM audit_outbox WHERE action = 'access.denied'",
    )))
    .unwrap();
    assert_eq!(denied.len(), 1, "the refusal is audited");
}

#[test]
fn an_account_without_a_platform_role_gets_no_session() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    let start = b.get("/console/signin/operator");
    let q = query(&location(&start));
    let token = id_token(&p, &key, "viewer", &param(&q, "nonce"), CLIENT);
    p.http.set(
        &format!("{ISSUER}/token"),
        200,
        &json!({ "id_token": token }).to_string(),
    );
    let back = b.get(&format!(
        "/console/auth/callback?state={}&code=c1",
        param(&q, "state")
    ));
    assert_eq!(
        location(&back),
        "/console/signin?reason=console_signin_no_role"
    );
    assert!(!b.cookies.iter().any(|(k, _)| k == "edgeplane-console"));
    assert!(
        body(&b.get("/console/signin?reason=console_signin_no_role"))
            .contains("no operator or auditor role")
    );
}

#[test]
fn a_sign_in_completes_once_in_the_browser_that_started_it_with_its_nonce() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    let start = b.get("/console/signin/operator");
    let q = query(&location(&start));
    let state = param(&q, "state");
    // Another browser (no state cookie) cannot complete it.
    let mut other = Browser::new(&p);
    let stolen = other.get(&format!("/console/auth/callback?state={state}&code=c1"));
    assert_eq!(
        location(&stolen),
        "/console/signin?reason=console_signin_unknown"
    );
    // A token for another nonce is refused.
    let wrong = id_token(&p, &key, "operator", "another-nonce", CLIENT);
    p.http.set(
        &format!("{ISSUER}/token"),
        200,
        &json!({ "id_token": wrong }).to_string(),
    );
    let back = b.get(&format!("/console/auth/callback?state={state}&code=c1"));
    assert_eq!(
        location(&back),
        "/console/signin?reason=console_signin_id_token"
    );
    // The state was used: a replay with a good token is refused too.
    let good = id_token(&p, &key, "operator", &param(&q, "nonce"), CLIENT);
    p.http.set(
        &format!("{ISSUER}/token"),
        200,
        &json!({ "id_token": good }).to_string(),
    );
    b.cookies
        .push(("edgeplane-console-signin".into(), state.clone()));
    let replay = b.get(&format!("/console/auth/callback?state={state}&code=c1"));
    assert_eq!(
        location(&replay),
        "/console/signin?reason=console_signin_unknown"
    );
    // A token for another client (the API's audience) is refused.
    let start = b.get("/console/signin/operator");
    let q = query(&location(&start));
    let other_aud = id_token(&p, &key, "operator", &param(&q, "nonce"), "edgeplane");
    p.http.set(
        &format!("{ISSUER}/token"),
        200,
        &json!({ "id_token": other_aud }).to_string(),
    );
    let back = b.get(&format!(
        "/console/auth/callback?state={}&code=c1",
        param(&q, "state")
    ));
    assert_eq!(
        location(&back),
        "/console/signin?reason=console_signin_id_token"
    );
}

#[test]
fn sessions_end_when_idle_at_their_absolute_limit_and_at_sign_out() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    b.sign_in(&key, "operator");
    p.clock.advance(IDLE_TIMEOUT_MS - 1000);
    assert_eq!(
        b.get("/console/tenants").status(),
        StatusCode::OK,
        "activity keeps it"
    );
    p.clock.advance(IDLE_TIMEOUT_MS - 1000);
    assert_eq!(b.get("/console/tenants").status(), StatusCode::OK);
    p.clock.advance(IDLE_TIMEOUT_MS + 1000);
    let idle = b.get("/console/tenants");
    assert_eq!(idle.status(), StatusCode::SEE_OTHER, "idle too long");

    let csrf = b.sign_in(&key, "operator");
    for _ in 0..(ABSOLUTE_TIMEOUT_MS / (IDLE_TIMEOUT_MS / 2)) {
        p.clock.advance(IDLE_TIMEOUT_MS / 2);
        b.get("/console/tenants");
    }
    assert_eq!(
        b.get("/console/tenants").status(),
        StatusCode::SEE_OTHER,
        "absolute limit"
    );

    let csrf2 = b.sign_in(&key, "operator");
    assert_ne!(csrf, csrf2, "each session has its own CSRF token");
    let old = b.cookies.clone();
    let out = b.post("/console/signout", &with(&csrf2, &[]));
    assert_eq!(location(&out), "/console/signin?reason=signedout");
    // The revoked cookie, replayed, is no session.
    let mut replay = Browser {
        p: &p,
        cookies: old,
    };
    assert_eq!(
        replay.get("/console/tenants").status(),
        StatusCode::SEE_OTHER
    );
}

#[test]
fn over_https_the_cookies_are_host_only_and_secure() {
    let (p, _) = platform();
    let req = ::http::Request::builder()
        .uri("https://cp.example.com/console/signin/operator")
        .body(Vec::new())
        .unwrap();
    let resp = block_on(crate::handle(&p, req));
    let cookie = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-edgeplane-console-signin="),
        "{cookie}"
    );
    for attr in ["; Secure", "; HttpOnly", "; SameSite=Lax", "; Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    // Plain http is refused outside a loopback development server.
    p.secrets.set("EDGEPLANE_ENV", "production");
    p.secrets.set("PUBLIC_BASE_URL", "http://cp.example.com");
    let req = ::http::Request::builder()
        .uri("http://cp.example.com/console/signin")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        block_on(crate::handle(&p, req)).status(),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn a_flag_saved_with_a_bad_rule_shows_the_api_s_field_path_and_the_preview_evaluates() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&key, "operator");
    b.post("/console/tenants", &with(&csrf, NEW_TENANT));
    let tid = block_on(p.sql.query(Stmt::new("SELECT id FROM tenants"))).unwrap()[0]
        .text("id")
        .unwrap();
    let bad = b.post(
        &format!("/console/tenants/{tid}/flags"),
        &with(&csrf, &[
            ("key", "checkout"), ("type", "boolean"), ("value", "false"), ("enabled", "true"),
            ("rules", r#"[{"conditions":[{"attribute":"email","op":"ends_with","values":[]}],"value":true}]"#),
        ]),
    );
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body(&bad);
    assert!(html.contains("rules[0].conditions[0].values"), "{html}");
    let rules = r#"[{"conditions":[{"attribute":"email","op":"ends_with","values":["@acme.example"]}],"value":true}]"#;
    let ok = b.post(
        &format!("/console/tenants/{tid}/flags"),
        &with(
            &csrf,
            &[
                ("key", "checkout"),
                ("type", "boolean"),
                ("value", "false"),
                ("enabled", "true"),
                ("rules", rules),
            ],
        ),
    );
    assert_eq!(
        location(&ok),
        format!("/console/tenants/{tid}/flags/checkout?done=flag-saved")
    );
    let preview = b.post(
        &format!("/console/tenants/{tid}/flags/checkout/preview"),
        &with(
            &csrf,
            &[(
                "context",
                r#"{"targetingKey":"u1","email":"ana@acme.example"}"#,
            )],
        ),
    );
    let html = body(&preview);
    assert!(html.contains("id=\"preview-value\">true<"), "{html}");
    assert!(html.contains("TARGETING_MATCH"), "{html}");
}

#[test]
fn a_deployment_without_public_base_url_serves_no_console() {
    let (p, _) = platform();
    p.secrets.set("EDGEPLANE_ENV", "production");
    let mut b = Browser::new(&p);
    let signin = b.get("/console/signin");
    assert_eq!(signin.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(&signin).contains("PUBLIC_BASE_URL"));
}

#[test]
fn unconfigured_operator_sign_in_says_so() {
    let (p, _) = platform();
    p.secrets.set("OPERATOR_CONSOLE_CLIENT_SECRET", "");
    let mut b = Browser::new(&p);
    assert!(body(&b.get("/console/signin")).contains("not configured"));
    let start = b.get("/console/signin/operator");
    assert_eq!(
        location(&start),
        "/console/signin?reason=console_signin_not_configured"
    );
    let _ = p.clock.now_ms();
}

// ---- The auditor console (IF-AUDIT-CONSOLE) ------------------------------------------------

/// Reports audit events for tenant `t1` as its app would, a second apart from the platform's
/// start: `(id, actor, action, outcome)`, each about the resource `res-<id>`.
fn report_audit(p: &TestPlatform, events: &[(&str, &str, &str, &str)]) {
    use crate::events::ingest::{ingest, Reporter};
    use crate::ports::StreamKind;
    use crate::time::format_rfc3339;

    let body: Vec<serde_json::Value> = events
        .iter()
        .zip(0i64..)
        .map(|((id, actor, action, outcome), i)| {
            json!({"id": id, "timestamp": format_rfc3339(crate::testing::START_MS + i * 1000),
                "actor_id": actor, "type": action, "resource_id": format!("res-{id}"),
                "outcome": outcome, "ip": "192.0.2.1"})
        })
        .collect();
    let reporter = Reporter {
        app_id: "app".into(),
        tenant_id: Some("t1".into()),
    };
    block_on(ingest(p, StreamKind::Audit, &reporter, &json!(body), None)).unwrap();
}

/// The resources of the events table's rows, in order.
fn table_resources(html: &str) -> Vec<String> {
    html.match_indices("<td>res-")
        .map(|(at, _)| {
            let cell = &html[at + 4..];
            cell[..cell.find('<').unwrap()].to_owned()
        })
        .collect()
}

/// The target of the page's link with `rel`, unescaped.
fn link_rel(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

#[test]
fn if_audit_console_filter_narrows_events_by_actor_and_outcome() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    b.sign_in(&key, "auditor");
    report_audit(
        &p,
        &[
            ("a1", "ana", "doc.read", "success"),
            ("a2", "ana", "doc.delete", "failure"),
            ("a3", "bo", "doc.read", "success"),
        ],
    );
    let rows = |b: &mut Browser, query: &str| {
        let page = b.get(&format!("/console/audit?tenant=t1{query}"));
        assert_eq!(page.status(), StatusCode::OK, "{}", body(&page));
        table_resources(&body(&page))
    };
    assert_eq!(rows(&mut b, ""), ["res-a1", "res-a2", "res-a3"]);
    assert_eq!(rows(&mut b, "&actor=ana"), ["res-a1", "res-a2"]);
    assert_eq!(rows(&mut b, "&actor=ana&outcome=failure"), ["res-a2"]);
    assert_eq!(
        rows(&mut b, "&action=doc.read&outcome=success"),
        ["res-a1", "res-a3"]
    );
    assert!(rows(&mut b, "&actor=nobody").is_empty());
    // The period is typed as the form's datetime-local and sent as RFC 3339.
    assert_eq!(
        rows(&mut b, "&from=2026-01-01T00:00:01&to=2026-01-01T00:00:02"),
        ["res-a2"]
    );
    let bad = b.get("/console/audit?from=soon");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(&bad).contains("must be a date and time"));
}

#[test]
fn if_audit_console_pages_the_table_forward_and_back_with_its_filters() {
    let (p, key) = platform();
    let mut b = Browser::new(&p);
    b.sign_in(&key, "auditor");
    let ids: Vec<String> = (0..120).map(|i| format!("e{i:03}")).collect();
    let events: Vec<(&str, &str, &str, &str)> = ids
        .iter()
        .zip(0..)
        .map(|(id, i)| (id.as_str(), ["ana", "bo"][i % 2], "doc.read", "success"))
        .collect();
    report_audit(&p, &events);
    for (query, want, sizes) in [
        ("", 120, vec![50, 50, 20]),
        ("&actor=ana", 60, vec![50, 10]),
    ] {
        let mut url = format!("/console/audit?tenant=t1{query}");
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        loop {
            let html = body(&b.get(&url));
            let rows = table_resources(&html);
            pages.push(rows.len());
            if pages.len() > 1 {
                let prev = link_rel(&html, "prev").expect("a Previous link");
                let back = table_resources(&body(&b.get(&prev)));
                assert_eq!(back, seen[seen.len() - 50..], "{query}: Previous");
                assert!(prev.contains("tenant=t1"), "{prev}");
            }
            seen.extend(rows);
            match link_rel(&html, "next") {
                Some(next) => url = next,
                None => break,
            }
        }
        assert_eq!(pages, sizes, "{query}");
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(
            (seen.len(), unique.len()),
            (want, want),
            "{query}: {seen:?}"
        );
    }
}

#[test]
fn if_audit_console_download_is_the_api_s_csv_with_download_headers() {
    use crate::events::export::{audit_csv_page, CsvRequest};

    let (p, key) = platform();
    let mut b = Browser::new(&p);
    b.sign_in(&key, "auditor");
    report_audit(
        &p,
        &[
            ("a1", "ana", "doc.read", "success"),
            ("a2", "=cmd", "doc.delete", "failure"),
            ("a3", "bo", "doc.read", "success"),
            ("a4", "bo", "doc.share", "success"),
            ("a5", "ana", "doc.read", "success"),
        ],
    );
    let resp = b.get("/console/audit/export.csv?tenant=t1");
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        resp.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"audit-t1-start-now.csv\""
    );
    // Several export pages make one file with the header once, as the API's in one page.
    let whole = block_on(audit_csv_page(
        &p,
        &CsvRequest {
            tenant: Some("t1".into()),
            limit: 1000,
            ..CsvRequest::default()
        },
    ))
    .unwrap();
    assert_eq!(body(&resp), whole.csv);
    assert!(
        body(&resp).contains(",'=cmd,"),
        "neutralised as the API wrote it"
    );
    // The API's action filter applies; the page's actor filter is not the API's.
    let reads = body(&b.get("/console/audit/export.csv?tenant=t1&action=doc.read&actor=bo"));
    assert_eq!(reads.matches("doc.read").count(), 3, "{reads}");
    assert_eq!(reads.matches("\r\n").count(), 4, "{reads}");
}

#[test]
fn if_audit_console_verifies_an_intact_chain_and_names_the_first_broken_link() {
    use crate::events::jobs::flush_all;

    let (p, key) = platform();
    let mut b = Browser::new(&p);
    b.sign_in(&key, "auditor");
    report_audit(
        &p,
        &[
            ("a1", "ana", "doc.read", "success"),
            ("a2", "bo", "doc.read", "success"),
        ],
    );
    block_on(flush_all(&p, p.clock.now_ms())).unwrap();
    report_audit(&p, &[("a3", "ana", "doc.read", "success")]);
    let ok = b.get("/console/audit/verify?tenant=t1&from=2026-01-01T00:00");
    let html = body(&ok);
    assert_eq!(ok.status(), StatusCode::OK, "{html}");
    assert!(html.contains("<strong>Verified.</strong>"), "{html}");
    assert!(
        html.contains("3 records rehashed in 1 stream, 1 archive object and 1 anchor checked"),
        "{html}"
    );
    // An archive whose anchor is gone: the first broken link, named.
    block_on(
        p.sql
            .execute(Stmt::new("UPDATE archive_index SET anchor = NULL")),
    )
    .unwrap();
    let html = body(&b.get("/console/audit/verify?tenant=t1"));
    assert!(html.contains("<strong>Broken.</strong>"), "{html}");
    assert!(
        html.contains("<code>anchor_missing</code>") && html.contains("<code>audit/t1</code>"),
        "{html}"
    );
}

#[test]
fn if_audit_console_shows_a_tenant_s_usage_per_day_as_a_table_a_chart_and_csv() {
    use crate::events::ingest::{ingest, Reporter};
    use crate::ports::StreamKind;

    let (p, key) = platform();
    let mut op = Browser::new(&p);
    let csrf = op.sign_in(&key, "operator");
    op.post("/console/tenants", &with(&csrf, NEW_TENANT));
    let tid = block_on(p.sql.query(Stmt::new("SELECT id FROM tenants"))).unwrap()[0]
        .text("id")
        .unwrap();
    let billing = json!([
        {"id": "b1", "type": "api.call", "quantity": 5, "timestamp": "2026-01-01T01:00:00Z"},
        {"id": "b2", "type": "api.call", "quantity": 3, "timestamp": "2026-01-01T02:00:00Z"},
        {"id": "b3", "type": "api.call", "quantity": 10, "timestamp": "2026-01-01T23:59:59Z"},
        {"id": "b4", "type": "storage.gb", "quantity": 2, "timestamp": "2025-12-31T12:00:00Z"},
    ]);
    let reporter = Reporter {
        app_id: "app".into(),
        tenant_id: Some(tid.clone()),
    };
    block_on(ingest(&p, StreamKind::Billing, &reporter, &billing, None)).unwrap();

    let mut b = Browser::new(&p);
    b.sign_in(&key, "auditor");
    let chooser = body(&b.get("/console/audit/usage"));
    assert!(
        chooser.contains("Choose a tenant to see its usage"),
        "{chooser}"
    );
    let range = format!("tenant={tid}&from=2025-12-30T00:00&to=2026-01-02T00:00");
    let page = b.get(&format!("/console/audit/usage?{range}"));
    let html = body(&page);
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    for row in [
        "<td>2025-12-31</td><td>storage.gb</td><td>2</td><td>1</td>",
        "<td>2026-01-01</td><td>api.call</td><td>18</td><td>3</td>",
    ] {
        assert!(html.contains(row), "{row} in {html}");
    }
    assert_eq!(html.matches("<svg role=\"img\"").count(), 2, "{html}");
    assert!(html.contains("2026-01-01: 18"), "a bar per day: {html}");
    assert!(!html.contains("style="), "no inline style: {html}");
    let csv = b.get(&format!("/console/audit/usage.csv?{range}"));
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(csv.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"usage-"));
    assert_eq!(
        body(&csv),
        "day,type,quantity,events\r\n2025-12-31,storage.gb,2,1\r\n2026-01-01,api.call,18,3\r\n"
    );
    let unknown = b.get("/console/audit/usage?tenant=00000000-0000-4000-8000-000000000000");
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(&unknown).contains("is not a tenant"));
}

#[test]
fn if_tenant_console_owners_sign_in_through_the_universal_login_as_its_first_party_client() {
    let (p, _) = platform();
    p.secrets.set("PUBLIC_BASE_URL", BASE);
    let mut b = Browser::new(&p);
    let start = b.get("/console/signin/tenant?organization=acme");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let to = location(&start);
    assert!(to.starts_with("/oauth/authorize?"), "{to}");
    let q = query(&to);
    assert_eq!(param(&q, "client_id"), "edgeplane-console");
    assert_eq!(param(&q, "tenant"), "acme");
    assert_eq!(param(&q, "code_challenge_method"), "S256");
    assert_eq!(
        param(&q, "redirect_uri"),
        format!("{BASE}/console/auth/tenant/callback")
    );
    assert!(param(&q, "scope").contains("offline_access"));
    // The provider knows the client and its redirect URI: the login page, not an error.
    let login = b.get(&to);
    assert_eq!(login.status(), StatusCode::OK, "{}", body(&login));
    assert!(body(&login).contains("Edgeplane console"));
    // A callback without this browser's state cookie is refused.
    let mut other = Browser::new(&p);
    let cb = other.get(&format!(
        "/console/auth/tenant/callback?state={}&code=x",
        param(&q, "state")
    ));
    assert_eq!(
        location(&cb),
        "/console/signin?reason=console_signin_unknown"
    );
    // The client is no managed app: not listed, not readable, no keys.
    let ids: Vec<String> = block_on(p.sql.query(Stmt::new(
        "SELECT id FROM apps WHERE id = 'edgeplane-console'",
    )))
    .unwrap()
    .iter()
    .map(|r| r.text("id").unwrap())
    .collect();
    assert_eq!(ids, ["edgeplane-console"]);
    let page = block_on(crate::apps::list(&p, &crate::apps::ListApps::default())).unwrap();
    assert!(page
        .items
        .iter()
        .all(|a| a.id.as_str() != "edgeplane-console"));
}

// ---- The tenant console (IF-TENANT-CONSOLE) ------------------------------------------------

const TENANT_PASSWORD: &str = "correct horse battery staple";

/// A platform whose console has its public origin (the tenant sign-in's redirect URI is under
/// it), with the tenant `acme`, its active owner `owner@acme.test`, and the tenant's id.
fn tenant_platform() -> (TestPlatform, String) {
    use crate::audit::Actor;
    use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
    let (p, _) = platform();
    p.secrets.set("PUBLIC_BASE_URL", BASE);
    let tid = block_on(async {
        let out = tenants::provision(
            &p,
            &Actor::operator("op-1"),
            ProvisionTenant {
                name: TenantName::parse("Acme").unwrap(),
                domain: TenantDomain::parse("acme").unwrap(),
                plan: Plan::parse("pro").unwrap(),
                owner_email: Email::parse("owner@acme.test").unwrap(),
                apps: vec![],
            },
            None,
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap()
        .provisioned;
        let token = out.invitation_link.split_once("token=").unwrap().1;
        crate::users::accept_invitation(&p, token, TENANT_PASSWORD, "r")
            .await
            .unwrap()
            .tenant_id
    });
    (p, tid)
}

/// The value of the first input named `name` in `html`.
fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// An attribute's value as a browser reads it (maud escapes `&`, `<`, `>` and `"`).
fn unescape(v: &str) -> String {
    v.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser<'_> {
    /// Signs in to the tenant console through Edgeplane's universal login, in process, as
    /// `email` of `acme`; returns the CSRF token of the console session.
    fn sign_in_tenant(&mut self, email: &str) -> String {
        let start = self.get("/console/signin/tenant?organization=acme");
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let login = self.get(&location(&start));
        let html = body(&login);
        assert_eq!(login.status(), StatusCode::OK, "{html}");
        let (flow, csrf) = (input_value(&html, "flow"), input_value(&html, "csrf"));
        let fields = [
            ("flow", flow.as_str()),
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", TENANT_PASSWORD),
        ];
        let done = self.post("/oauth/authorize/login", &fields);
        assert!(done.status().is_redirection(), "{}", body(&done));
        let callback = location(&done);
        let back = self.get(callback.strip_prefix(BASE).unwrap_or(&callback));
        assert_eq!(location(&back), "/console/", "{}", body(&back));
        csrf_of(&body(&self.get("/console/tenant/users")))
    }
}

/// Reports billing events for the tenant as its app would: `(id, type, quantity, timestamp)`.
fn report_billing(p: &TestPlatform, tenant: &str, events: &[(&str, &str, i64, &str)]) {
    use crate::events::ingest::{ingest, Reporter};
    use crate::ports::StreamKind;
    let body: Vec<serde_json::Value> = events
        .iter()
        .map(|(id, kind, quantity, at)| {
            json!({"id": id, "type": kind, "quantity": quantity, "timestamp": at})
        })
        .collect();
    let reporter = Reporter {
        app_id: "app".into(),
        tenant_id: Some(tenant.into()),
    };
    block_on(ingest(
        p,
        StreamKind::Billing,
        &reporter,
        &json!(body),
        None,
    ))
    .unwrap();
}

#[test]
fn if_tenant_console_shows_the_owner_and_an_admin_their_tenant_s_usage_per_day() {
    let (p, tid) = tenant_platform();
    report_billing(
        &p,
        &tid,
        &[
            ("b1", "api.call", 5, "2025-12-31T10:00:00Z"),
            ("b2", "api.call", 3, "2025-12-31T11:00:00Z"),
            ("b3", "storage.gb", 2, "2025-12-20T12:00:00Z"),
        ],
    );
    report_billing(
        &p,
        "another-tenant",
        &[("x1", "api.call", 99, "2025-12-31T10:00:00Z")],
    );
    let mut b = Browser::new(&p);
    b.sign_in_tenant("owner@acme.test");

    // The last 30 days by default (the platform's clock stands at 2026-01-01T00:00Z).
    let page = b.get("/console/tenant/subscription");
    let html = body(&page);
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert!(html.contains("value=\"2025-12-03\"") && html.contains("value=\"2026-01-01\""));
    for row in [
        "<td>2025-12-20</td><td>storage.gb</td><td>2</td><td>1</td>",
        "<td>2025-12-31</td><td>api.call</td><td>8</td><td>2</td>",
    ] {
        assert!(html.contains(row), "{row} in {html}");
    }
    assert!(!html.contains("99"), "another tenant's usage: {html}");
    assert_eq!(html.matches("<svg role=\"img\"").count(), 2, "{html}");
    assert!(
        html.contains("from 2025-12-03 to 2026-01-01"),
        "30 days: {html}"
    );
    assert!(!html.contains("style="), "no inline style: {html}");

    // One day, both ends included, and its CSV.
    let day = "from=2025-12-31&to=2025-12-31";
    let one = body(&b.get(&format!("/console/tenant/subscription?{day}")));
    assert!(one.contains("<td>api.call</td><td>8</td>") && !one.contains("storage.gb"));
    let csv = b.get(&format!("/console/tenant/subscription/usage.csv?{day}"));
    assert_eq!(
        csv.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"usage-2025-12-31-2025-12-31.csv\""
    );
    assert_eq!(
        body(&csv),
        "day,type,quantity,events\r\n2025-12-31,api.call,8,2\r\n"
    );

    // A period that is not one is shown next to its fields.
    let bad = b.get("/console/tenant/subscription?from=yesterday&to=2025-12-01");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(&bad).contains("must be a day, as 2026-01-31"));
    let reversed = b.get("/console/tenant/subscription?from=2025-12-31&to=2025-12-01");
    assert!(body(&reversed).contains("must not be before the first day"));

    // An admin reads it too (the role comes from the database, and the next token carries it).
    block_on(p.sql.execute(Stmt::new("UPDATE users SET role = 'admin'"))).unwrap();
    let mut admin = Browser::new(&p);
    admin.sign_in_tenant("owner@acme.test");
    let html = body(&admin.get(&format!("/console/tenant/subscription?{day}")));
    assert!(
        html.contains("Only the tenant's owner changes the plan."),
        "{html}"
    );
    assert!(html.contains("<td>api.call</td><td>8</td>"), "{html}");
}

/// The data-options of the "Add a passkey" form, and its flow.
fn creation_options(html: &str) -> (serde_json::Value, String) {
    let marker = "data-options=\"";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("options in {html}"))
        + marker.len();
    let raw = unescape(&html[at..at + html[at..].find('"').unwrap()]);
    (
        serde_json::from_str(&raw).unwrap(),
        input_value(html, "flow"),
    )
}

#[test]
fn if_tenant_console_adds_lists_and_removes_the_signed_in_user_s_passkeys() {
    use crate::webauthn::soft_authenticator::Authenticator;

    let (p, _) = tenant_platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    let security = body(&b.get("/console/tenant/security"));
    assert!(security.contains("You have no passkey yet."), "{security}");
    assert!(security.contains("action=\"/console/tenant/security/passkeys/new\""));

    let add = b.post("/console/tenant/security/passkeys/new", &with(&csrf, &[]));
    let html = body(&add);
    assert_eq!(add.status(), StatusCode::OK, "{html}");
    assert!(
        html.contains("<script src=\"/console/assets/passkey.js\""),
        "{html}"
    );
    assert!(
        html.contains("not an IP address such as 127.0.0.1"),
        "{html}"
    );
    let (options, flow) = creation_options(&html);
    assert_eq!(options["rp"]["id"], "127.0.0.1", "the console's own origin");

    // What the script posts once the browser created the passkey.
    let mut a = Authenticator::es256(5);
    a.rp_id = "127.0.0.1".into();
    a.origin = BASE.into();
    let credential = a
        .register(options["challenge"].as_str().unwrap())
        .to_string();
    let posted = b.post(
        "/console/tenant/security/passkeys",
        &with(
            &csrf,
            &[
                ("flow", &flow),
                ("credential", &credential),
                ("name", "Work laptop"),
            ],
        ),
    );
    assert_eq!(
        location(&posted),
        "/console/tenant/security?done=passkey-added",
        "{}",
        body(&posted)
    );
    let listed = body(&b.get("/console/tenant/security?done=passkey-added"));
    assert!(listed.contains("Passkey added") && listed.contains("<td>Work laptop</td>"));

    // Removing asks first.
    let marker = "href=\"/console/tenant/security/passkeys/";
    let at = listed.find(marker).unwrap() + marker.len();
    let id = listed[at..at + listed[at..].find('"').unwrap()].to_owned();
    let confirm = body(&b.get(&format!("/console/tenant/security/passkeys/{id}")));
    assert!(
        confirm.contains("Remove <strong>Work laptop</strong>?"),
        "{confirm}"
    );
    assert_eq!(
        b.get("/console/tenant/security/passkeys/not-a-passkey")
            .status(),
        StatusCode::NOT_FOUND
    );
    let removed = b.post(
        &format!("/console/tenant/security/passkeys/{id}/remove"),
        &with(&csrf, &[]),
    );
    assert_eq!(
        location(&removed),
        "/console/tenant/security?done=passkey-removed"
    );
    assert!(body(&b.get("/console/tenant/security")).contains("You have no passkey yet."));

    // Without the script nothing was created: the page says so and offers to start again.
    let empty = b.post(
        "/console/tenant/security/passkeys",
        &with(&csrf, &[("flow", "f"), ("credential", "")]),
    );
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(&empty).contains("Your browser did not create a passkey"));
}

#[test]
fn if_tenant_console_asks_for_a_fresh_sign_in_before_a_passkey_change() {
    let (p, _) = tenant_platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    p.clock.advance(6 * 60 * 1000);
    let add = b.post("/console/tenant/security/passkeys/new", &with(&csrf, &[]));
    assert_eq!(
        location(&add),
        "/console/tenant/security?done=reauth-passkey"
    );
    let html = body(&b.get("/console/tenant/security?done=reauth-passkey"));
    assert!(
        html.contains("needs a sign-in from the last 5 minutes. Sign out, sign in again"),
        "{html}"
    );
    // Signed in again, it works.
    let csrf = b.sign_in_tenant("owner@acme.test");
    let again = b.post("/console/tenant/security/passkeys/new", &with(&csrf, &[]));
    assert_eq!(again.status(), StatusCode::OK, "{}", body(&again));
}

#[test]
fn if_tenant_console_says_when_passkeys_belong_to_another_origin() {
    let (p, _) = tenant_platform();
    p.secrets.set("WEBAUTHN_ORIGIN", "https://login.acme.test");
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    let add = b.post("/console/tenant/security/passkeys/new", &with(&csrf, &[]));
    assert_eq!(add.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body(&add);
    assert!(
        html.contains("Passkeys are registered on https://login.acme.test (WEBAUTHN_ORIGIN)"),
        "{html}"
    );
    assert!(!html.contains("data-options"), "{html}");
}

// ---- Sign-in risk and the user's devices (NFR-SEC-006, CON-SEC-008) ------------------------

/// A device label no browser sends, to see it escaped wherever it is shown.
const HOSTILE_LABEL: &str = "<img src=x onerror=alert(1)>\"Phone";

/// A password sign-in to `acme` as its owner from `device` in `country`, labelled `label`.
fn risk_sign_in(
    p: &TestPlatform,
    device: &str,
    label: &str,
    country: &str,
) -> Result<crate::sessions::TokenPair, crate::signin::LoginError> {
    use crate::risk::{Location, SignInContext};
    let ctx = SignInContext {
        device: Some(device.into()),
        device_label: Some(label.into()),
        location: Location::parse(Some(country), Some("FRA"), Some(3320)),
        client: Some("203.0.113.9".into()),
        links_base: None,
    };
    let req = crate::signin::LoginRequest::typed(
        "acme",
        "owner@acme.test",
        TENANT_PASSWORD.into(),
        Some("203.0.113.9".into()),
    )
    .unwrap()
    .with_context(ctx);
    block_on(crate::signin::login(p, &req, "r"))
}

/// The owner's baseline sign-in from a laptop in the US, then a day later one from a new phone
/// in Germany (new device and new country: medium risk, an emailed code it never got).
fn risky_attempt(p: &TestPlatform) {
    risk_sign_in(p, "laptop-0000000001", "Firefox on Linux", "US").unwrap();
    p.clock.advance(24 * 3_600_000);
    assert!(risk_sign_in(p, "phone-00000000002", HOSTILE_LABEL, "DE").is_err());
}

fn stored_policy(p: &TestPlatform, tid: &str) -> crate::risk::RiskPolicy {
    block_on(crate::risk::policy::load(p, tid)).unwrap()
}

fn policy_updates(p: &TestPlatform) -> usize {
    block_on(p.sql.query(Stmt::new(
        "SELECT id FROM audit_outbox WHERE action = 'risk_policy.update'",
    )))
    .unwrap()
    .len()
}

const RISK_PAGE: &str = "/console/tenant/sign-in-risk";
const RISK_POLICY_FORM: &str = "/console/tenant/sign-in-risk/policy";

#[test]
fn nfr_sec_006_the_risk_page_lists_the_tenant_s_risky_sign_ins_and_no_other_tenant_s() {
    let (p, _) = tenant_platform();
    risky_attempt(&p);
    // Another tenant's high-risk sign-in, in the same table.
    block_on(p.sql.execute(Stmt::new(
        "INSERT INTO sign_in_attempts (id, tenant_id, user_id, created_at, method, device_label,
           country, score, level, action, signals, outcome)
         VALUES ('other-1', 'another-tenant', 'another-user', 1, 'password', 'Globex laptop',
           'BR', 7, 'high', 'block', '[\"impossible_travel\"]', 'blocked')",
    )))
    .unwrap();
    let mut b = Browser::new(&p);
    b.sign_in_tenant("owner@acme.test");
    let users = body(&b.get("/console/tenant/users"));
    assert!(
        users.contains(&format!("href=\"{RISK_PAGE}\"")) && users.contains(">Sign-in risk<"),
        "a link in the navigation: {users}"
    );

    let page = b.get(RISK_PAGE);
    let html = body(&page);
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    let row = html
        .split("<tr>")
        .skip(1)
        .find(|r| r.contains("owner@acme.test"))
        .unwrap_or_else(|| panic!("a row of the owner's sign-in: {html}"));
    for cell in [
        "<td>2026-01-02 00:00 UTC</td>",
        "<td>Password</td>",
        "Medium",
        "<td>Emailed code</td>",
        "new device",
        "new country",
        "<td>DE</td>",
        "<td>Step-up not passed</td>",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    // The label is text, never markup.
    assert!(
        row.contains("&lt;img src=x onerror=alert(1)&gt;&quot;Phone"),
        "{row}"
    );
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        !html.contains("Globex") && !html.contains("<td>BR</td>"),
        "{html}"
    );
    // Neither the address nor the device, not even hashed.
    let hashes = block_on(p.sql.query(Stmt::new(
        "SELECT device_hash, client_hash FROM sign_in_attempts WHERE tenant_id != 'another-tenant'",
    )))
    .unwrap();
    for r in &hashes {
        for column in ["device_hash", "client_hash"] {
            if let Some(h) = r.opt_text(column).unwrap() {
                assert!(!html.contains(&h), "{column} shown: {html}");
            }
        }
    }
    assert!(!html.contains("203.0.113.9"), "{html}");

    // The level filter.
    let high = body(&b.get(&format!("{RISK_PAGE}?level=high")));
    assert!(
        !high.contains("id=\"risky-sign-ins\"") && high.contains("No risky sign-in"),
        "{high}"
    );
    let medium = body(&b.get(&format!("{RISK_PAGE}?level=medium")));
    assert!(medium.contains("<td>Step-up not passed</td>"), "{medium}");
}

#[test]
fn nfr_sec_006_an_admin_reads_the_risk_policy_but_cannot_change_it() {
    let (p, tid) = tenant_platform();
    block_on(p.sql.execute(Stmt::new("UPDATE users SET role = 'admin'"))).unwrap();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    let html = body(&b.get(RISK_PAGE));
    assert!(
        html.contains("Only the tenant's owner changes the risk policy."),
        "{html}"
    );
    assert!(
        !html.contains(&format!("action=\"{RISK_POLICY_FORM}\"")),
        "{html}"
    );
    // What each level requires, in words.
    assert!(html.contains("<dd>Emailed code</dd>"), "{html}");

    // The form posted anyway is the API's refusal, and nothing changes.
    let post = b.post(
        RISK_POLICY_FORM,
        &with(
            &csrf,
            &[
                ("low", "allow"),
                ("medium", "block"),
                ("high", "block"),
                ("refresh_new_country", "allow"),
                ("medium_at", "3"),
                ("high_at", "6"),
            ],
        ),
    );
    assert_eq!(post.status(), StatusCode::FORBIDDEN, "{}", body(&post));
    assert_eq!(stored_policy(&p, &tid), crate::risk::RiskPolicy::default());
    assert_eq!(policy_updates(&p), 0);
}

#[test]
fn nfr_sec_006_an_owner_s_risk_policy_change_is_stored_and_audited_keeping_the_rules() {
    use crate::risk::{RefreshAction, RiskAction, RiskPolicy};
    use crate::users::admin::{TenantActor, TenantRole};
    let (p, tid) = tenant_platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    // A weight set through the API, which the form does not show, must survive the form.
    let owner_id = block_on(p.sql.query(Stmt::new(
        "SELECT id FROM users WHERE email = 'owner@acme.test'",
    )))
    .unwrap()[0]
        .text("id")
        .unwrap();
    let owner = TenantActor {
        user_id: owner_id,
        tenant_id: tid.clone(),
        role: TenantRole::Owner,
    };
    let mut custom = RiskPolicy::default();
    custom.rules.new_device = 5;
    block_on(crate::risk::policy::save(&p, &owner, &custom, "r")).unwrap();
    assert_eq!(policy_updates(&p), 1);

    let html = body(&b.get(RISK_PAGE));
    assert!(
        html.contains(&format!("action=\"{RISK_POLICY_FORM}\"")),
        "{html}"
    );
    let post = b.post(
        RISK_POLICY_FORM,
        &with(
            &csrf,
            &[
                ("low", "allow"),
                ("medium", "second_factor"),
                ("high", "block"),
                ("refresh_new_country", "allow"),
                ("medium_at", "4"),
                ("high_at", "8"),
            ],
        ),
    );
    assert_eq!(
        location(&post),
        format!("{RISK_PAGE}?done=risk-policy"),
        "{}",
        body(&post)
    );
    let stored = stored_policy(&p, &tid);
    assert_eq!(stored.medium, RiskAction::SecondFactor);
    assert_eq!(stored.high, RiskAction::Block);
    assert_eq!(stored.refresh_new_country, RefreshAction::Allow);
    assert!(!stored.notify_new_sign_in, "the box was not ticked");
    assert_eq!((stored.rules.medium_at, stored.rules.high_at), (4, 8));
    assert_eq!(stored.rules.new_device, 5, "the other rules are kept");
    assert_eq!(policy_updates(&p), 2, "audited as the API's change is");

    let shown = body(&b.get(&format!("{RISK_PAGE}?done=risk-policy")));
    assert!(shown.contains("Risk policy saved."), "{shown}");
    assert!(
        shown.contains("<option value=\"second_factor\" selected>"),
        "{shown}"
    );
    assert!(!shown.contains("name=\"notify_new_sign_in\" value=\"true\" checked"));
}

#[test]
fn nfr_sec_006_a_bad_risk_policy_is_refused_with_the_form_shown_again() {
    let (p, tid) = tenant_platform();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    let fields = |medium: &'static str, medium_at: &'static str, high_at: &'static str| {
        [
            ("low", "allow"),
            ("medium", medium),
            ("high", "block"),
            ("refresh_new_country", "revoke"),
            ("notify_new_sign_in", "true"),
            ("medium_at", medium_at),
            ("high_at", high_at),
        ]
    };
    // Out of range: the API's own rule, next to its field.
    let reversed = b.post(RISK_POLICY_FORM, &with(&csrf, &fields("block", "5", "4")));
    let html = body(&reversed);
    assert_eq!(
        reversed.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{html}"
    );
    assert!(html.contains("id=\"f-high_at-error\""), "{html}");
    assert!(html.contains("must be between medium_at and 100"), "{html}");
    assert!(
        html.contains("name=\"high_at\" type=\"number\" value=\"4\""),
        "what was typed is kept: {html}"
    );
    // Not one of the choices, and not a number: said in words, not as the API's JSON error.
    let odd = b.post(
        RISK_POLICY_FORM,
        &with(&csrf, &fields("maybe", "lots", "6")),
    );
    let html = body(&odd);
    assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("id=\"f-medium-error\""), "{html}");
    assert!(html.contains("id=\"f-medium_at-error\""), "{html}");
    assert!(html.contains("must be a whole number"), "{html}");
    for leak in ["unknown variant", "expected one of", "JSON", "{&quot;"] {
        assert!(!html.contains(leak), "{leak} in {html}");
    }
    assert_eq!(stored_policy(&p, &tid), crate::risk::RiskPolicy::default());
    assert_eq!(policy_updates(&p), 0);
}

#[test]
fn nfr_sec_006_the_security_page_lists_the_user_s_devices_and_removes_one() {
    let (p, _) = tenant_platform();
    // The owner's first sign-in (no baseline yet: low risk) makes the phone a known device.
    risk_sign_in(&p, "phone-00000000002", HOSTILE_LABEL, "DE").unwrap();
    let mut b = Browser::new(&p);
    let csrf = b.sign_in_tenant("owner@acme.test");
    let html = body(&b.get("/console/tenant/security"));
    assert!(html.contains("Your devices"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;&quot;Phone"),
        "{html}"
    );
    assert!(!html.contains("<img src=x"), "{html}");
    let marker = "action=\"/console/tenant/security/devices/";
    let forms: Vec<&str> = html.split(marker).skip(1).collect();
    assert_eq!(forms.len(), 2, "the phone and this browser: {html}");
    let id = forms[0][..forms[0].find('/').unwrap()].to_owned();
    let devices = || {
        block_on(p.sql.query(Stmt::new("SELECT id FROM known_devices")))
            .unwrap()
            .len()
    };

    // Without the session's CSRF token nothing is removed.
    let forged = b.post(
        &format!("/console/tenant/security/devices/{id}/remove"),
        &[("csrf", "wrong"), ("once", "o1")],
    );
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(devices(), 2);

    let removed = b.post(
        &format!("/console/tenant/security/devices/{id}/remove"),
        &with(&csrf, &[]),
    );
    assert_eq!(
        location(&removed),
        "/console/tenant/security?done=device-removed"
    );
    assert_eq!(devices(), 1);
    let after = body(&b.get("/console/tenant/security?done=device-removed"));
    assert!(after.contains("Device removed"), "{after}");
    assert_eq!(after.matches(marker).count(), 1, "{after}");
    // Another user's device, or none: nothing there.
    let gone = b.post(
        &format!("/console/tenant/security/devices/{id}/remove"),
        &[("csrf", csrf.as_str()), ("once", "o2")],
    );
    assert_eq!(gone.status(), StatusCode::NOT_FOUND, "{}", body(&gone));
}
