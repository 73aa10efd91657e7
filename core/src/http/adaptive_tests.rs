//! Adaptive authentication through the real router on real SQLite (NFR-SEC-006): the login
//! page's device cookie only once a sign-in completed, and the OAuth refresh grant behind the
//! same risk check as `/v1/auth/refresh`.

use ::http::{header, Method, StatusCode};
use futures_executor::block_on;
use serde_json::Value;

use super::{Request, Response};
use crate::audit::Actor;
use crate::ports::{Row, Sql, Stmt};
use crate::risk::Location;
use crate::testing::TestPlatform;

const BASE: &str = "http://127.0.0.1:8787";
const REDIRECT: &str = "https://crm.example/cb";
const PASSWORD: &str = "correct horse battery staple";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const DAY_MS: i64 = 24 * 3_600_000;

/// The tenant `acme` subscribed to the app `CRM`, its active owner `owner@acme.test`; returns
/// the platform and the app's id.
fn platform() -> (TestPlatform, String) {
    let p = block_on(TestPlatform::new());
    p.secrets.set(
        crate::tokens::master_key::MASTER_KEY_SECRET,
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
    );
    p.secrets.set("PUBLIC_BASE_URL", BASE);
    let app = block_on(async {
        use crate::apps::{self, AppName, RedirectUri, RegisterApp};
        use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
        let app = apps::register(
            &p,
            &Actor::operator("op-1"),
            RegisterApp {
                name: AppName::parse("CRM").unwrap(),
                redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
                allowed_origins: vec![],
            },
            "r",
        )
        .await
        .unwrap();
        let out = tenants::provision(
            &p,
            &Actor::operator("op-1"),
            ProvisionTenant {
                name: TenantName::parse("Acme").unwrap(),
                domain: TenantDomain::parse("acme").unwrap(),
                plan: Plan::parse("pro").unwrap(),
                owner_email: Email::parse("owner@acme.test").unwrap(),
                apps: vec![app.id.as_str().to_owned()],
            },
            None,
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap()
        .provisioned;
        let token = out.invitation_link.split_once("token=").unwrap().1;
        crate::users::accept_invitation(&p, token, PASSWORD, "r")
            .await
            .unwrap();
        app.id.as_str().to_owned()
    });
    (p, app)
}

fn from(country: &str) -> Location {
    Location::parse(Some(country), Some("FRA"), Some(3320))
}

/// A browser with a cookie jar, somewhere (`Location` as the Workers adapter attaches it).
struct Browser<'a> {
    p: &'a TestPlatform,
    cookies: Vec<(String, String)>,
    at: Location,
}

impl<'a> Browser<'a> {
    fn new(p: &'a TestPlatform, country: &str) -> Self {
        Browser {
            p,
            cookies: Vec::new(),
            at: from(country),
        }
    }

    fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Response {
        let mut b = ::http::Request::builder()
            .method(method)
            .uri(format!("{BASE}{path}"))
            .extension(self.at.clone());
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
                b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter())
                    .finish()
                    .into_bytes()
            }
            None => Vec::new(),
        };
        let req: Request = b.body(body).unwrap();
        let resp = super::api_tests::send(self.p, req);
        for (k, v) in set_cookies(&resp) {
            self.cookies.retain(|(name, _)| *name != k);
            self.cookies.push((k, v));
        }
        resp
    }

    fn device_cookie(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == "ep_device")
            .map(|(_, v)| v.as_str())
    }

    /// The authorization request, then the organization and the password: the answer of the
    /// password step and the flow's (flow, csrf) fields.
    fn sign_in(&mut self, client_id: &str) -> (Response, String, String) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email offline_access")
            .append_pair("state", "st")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("tenant", "acme")
            .finish();
        let page = self.send(Method::GET, &format!("/oauth/authorize?{query}"), None);
        assert_eq!(page.status(), StatusCode::OK, "{}", text(&page));
        let html = text(&page);
        let (flow, csrf) = (input_value(&html, "flow"), input_value(&html, "csrf"));
        let fields = [
            ("flow", flow.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "owner@acme.test"),
            ("password", PASSWORD),
        ];
        let resp = self.send(Method::POST, "/oauth/authorize/login", Some(&fields));
        (resp, flow, csrf)
    }
}

fn set_cookies(resp: &Response) -> Vec<(String, String)> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn text(resp: &Response) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

fn rows(p: &TestPlatform, sql: &'static str) -> Vec<Row> {
    block_on(p.sql.query(Stmt::new(sql))).unwrap()
}

fn known_devices(p: &TestPlatform) -> usize {
    rows(p, "SELECT id FROM known_devices").len()
}

/// The newest decision's signals and outcome.
fn last_attempt(p: &TestPlatform) -> (String, String) {
    let r = rows(
        p,
        "SELECT signals, outcome FROM sign_in_attempts ORDER BY created_at DESC, rowid DESC",
    );
    (r[0].text("signals").unwrap(), r[0].text("outcome").unwrap())
}

/// The code of the newest sign-in code mail.
fn mailed_code(p: &TestPlatform) -> String {
    let r = rows(
        p,
        "SELECT text_body FROM mail_outbox WHERE subject = 'Your sign-in code' ORDER BY id DESC",
    );
    let body = r[0].text("text_body").unwrap();
    body.split_whitespace()
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned()
}

fn location(resp: &Response) -> String {
    resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The baseline: the owner's first sign-in on the login page, from the US, completes at once
/// (no history) and gives the browser its device cookie.
fn baseline(p: &TestPlatform, client_id: &str) {
    let mut home = Browser::new(p, "US");
    let (resp, _, _) = home.sign_in(client_id);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", text(&resp));
    assert!(location(&resp).starts_with(REDIRECT));
    assert!(
        home.device_cookie().is_some(),
        "a completed sign-in sets it"
    );
    assert_eq!(known_devices(p), 1);
}

/// NFR-SEC-006: the login page sets the device cookie only once the sign-in completed. A right
/// password whose step-up is left unanswered sets no cookie and makes no device known, so the
/// next sign-in from that browser is still from a new device; the answered step-up sets the
/// cookie of the device the decision recorded, and that browser is then known.
#[test]
fn nfr_sec_006_the_device_cookie_is_set_only_after_the_step_up() {
    let (p, client_id) = platform();
    baseline(&p, &client_id);
    p.clock.advance(DAY_MS);

    // From Germany, a browser without a device cookie: the right password is stepped up.
    let mut abroad = Browser::new(&p, "DE");
    let (resp, _, _) = abroad.sign_in(&client_id);
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    assert!(text(&resp).contains("action=\"/oauth/authorize/mfa\""));
    assert_eq!(abroad.device_cookie(), None, "no cookie before the step-up");
    assert_eq!(known_devices(&p), 1, "no device known before the step-up");
    let (signals, outcome) = last_attempt(&p);
    assert_eq!(outcome, "challenged");
    assert!(signals.contains("new_device") && signals.contains("new_country"));

    // Left unanswered: the same browser's next sign-in still comes from a new device.
    p.clock.advance(60_000);
    let (resp, flow, csrf) = abroad.sign_in(&client_id);
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let (signals, outcome) = last_attempt(&p);
    assert_eq!(outcome, "challenged");
    assert!(signals.contains("new_device"), "{signals}");
    assert_eq!(abroad.device_cookie(), None);

    // Answered: the sign-in goes on to the app, and now the browser gets its cookie.
    let mfa_token = input_value(&text(&resp), "mfa_token");
    let code = mailed_code(&p);
    let fields = [
        ("flow", flow.as_str()),
        ("csrf", csrf.as_str()),
        ("mfa_token", mfa_token.as_str()),
        ("code", code.as_str()),
    ];
    let done = abroad.send(Method::POST, "/oauth/authorize/mfa", Some(&fields));
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "{}", text(&done));
    assert!(location(&done).starts_with(&format!("{REDIRECT}?code=")));
    assert!(abroad.device_cookie().is_some(), "set once completed");
    assert_eq!(last_attempt(&p).1, "success");
    assert_eq!(known_devices(&p), 2);

    // The cookie names the device that became known: the next sign-in is not stepped up.
    p.clock.advance(60_000);
    let (resp, _, _) = abroad.sign_in(&client_id);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", text(&resp));
    let (signals, outcome) = last_attempt(&p);
    assert_eq!(outcome, "success");
    assert!(!signals.contains("new_device"), "{signals}");
    assert_eq!(known_devices(&p), 2);
}

/// The app's code exchanged for tokens: the refresh token.
fn refresh_token_of(p: &TestPlatform, client_id: &str, location: &str) -> String {
    let code = location
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .unwrap()
        .to_owned();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_verifier", VERIFIER)
        .append_pair("client_id", client_id)
        .finish();
    let resp = token_request(p, &form, "US");
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    v["refresh_token"].as_str().unwrap().to_owned()
}

fn token_request(p: &TestPlatform, form: &str, country: &str) -> Response {
    let req = ::http::Request::builder()
        .method(Method::POST)
        .uri(format!("{BASE}/oauth/token"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .extension(from(country))
        .body(form.as_bytes().to_vec())
        .unwrap();
    super::api_tests::send(p, req)
}

fn refresh_grant(p: &TestPlatform, client_id: &str, token: &str, country: &str) -> Response {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", token)
        .append_pair("client_id", client_id)
        .finish();
    token_request(p, &form, country)
}

/// A sign-in on the login page from the US (known by then), its code exchanged: the app's
/// refresh token.
fn app_session(p: &TestPlatform, client_id: &str) -> String {
    let mut home = Browser::new(p, "US");
    let (resp, _, _) = home.sign_in(client_id);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", text(&resp));
    refresh_token_of(p, client_id, &location(&resp))
}

/// NFR-SEC-006: the OAuth refresh grant goes through the risk check of `/v1/auth/refresh`: a
/// use from a country none of the user's sign-ins came from revokes the session under the
/// default policy (RFC 6749 `invalid_grant`, and the rotated token is dead too), and rotates
/// under a policy that allows it; a use from home rotates.
#[test]
fn nfr_sec_006_the_oauth_refresh_grant_is_risk_checked() {
    let (p, client_id) = platform();
    let token = app_session(&p, &client_id);
    let resp = refresh_grant(&p, &client_id, &token, "US");
    assert_eq!(resp.status(), StatusCode::OK, "from home: {}", text(&resp));
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    let rotated = v["refresh_token"].as_str().unwrap().to_owned();

    let resp = refresh_grant(&p, &client_id, &rotated, "BR");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{}", text(&resp));
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
    let status = rows(&p, "SELECT DISTINCT status FROM sessions");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].text("status").unwrap(), "revoked");
    let resp = refresh_grant(&p, &client_id, &rotated, "US");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "revoked for good");

    let owner = crate::users::admin::TenantActor {
        user_id: rows(&p, "SELECT id FROM users")[0].text("id").unwrap(),
        tenant_id: rows(&p, "SELECT id FROM tenants")[0].text("id").unwrap(),
        role: crate::users::admin::TenantRole::Owner,
    };
    let allow = crate::risk::RiskPolicy {
        refresh_new_country: crate::risk::RefreshAction::Allow,
        ..crate::risk::RiskPolicy::default()
    };
    block_on(crate::risk::policy::save(&p, &owner, &allow, "r")).unwrap();
    p.clock.advance(60_000);
    let token = app_session(&p, &client_id);
    let resp = refresh_grant(&p, &client_id, &token, "BR");
    assert_eq!(resp.status(), StatusCode::OK, "allowed: {}", text(&resp));
    let refreshes: Vec<String> = rows(
        &p,
        "SELECT outcome FROM sign_in_attempts WHERE method = 'refresh' ORDER BY rowid",
    )
    .iter()
    .map(|r| r.text("outcome").unwrap())
    .collect();
    assert_eq!(refreshes, ["revoked", "success"]);
}
