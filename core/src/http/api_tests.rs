//! The HTTP API on the native platform: real SQLite with the migrations, the real router.

use ::http::{Method, StatusCode};
use futures_executor::block_on;
use serde_json::Value;

use super::{handle, Request, Response};
use crate::ports::{Clock, Kv, Sql, Stmt};
use crate::scheduled::LAST_RUN_KEY;
use crate::testing::TestPlatform;

fn request(method: Method, uri: &str) -> ::http::request::Builder {
    ::http::Request::builder().method(method).uri(uri)
}

/// Serves `req` as an adapter does: the answer, then the work after it (whose failures an
/// adapter logs).
pub(super) fn send(p: &TestPlatform, req: Request) -> Response {
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let resp = block_on(handle(p, req));
    block_on(super::after_response(p, &method, &path)).unwrap();
    resp
}

fn get(p: &TestPlatform, uri: &str) -> Response {
    send(p, request(Method::GET, uri).body(Vec::new()).unwrap())
}

fn body(resp: &Response) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

fn assert_problem(resp: &Response, status: u16, kind: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let v = body(resp);
    assert_eq!(v["type"], format!("https://edgeplane.dev/problems/{kind}"));
    assert_eq!(v["status"], status);
    assert_eq!(
        v["request_id"],
        resp.headers()["x-request-id"].to_str().unwrap()
    );
    v
}

#[test]
fn fr_sys_005_health_reports_every_dependency() {
    let p = block_on(TestPlatform::new());
    let resp = get(&p, "/v1/health");
    assert_eq!(resp.status(), StatusCode::OK);
    let v = body(&resp);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["runtime"], "native");
    for dep in ["sql", "kv", "event_log", "blobs"] {
        assert_eq!(v["dependencies"][dep]["status"], "ok", "{dep}: {v}");
        assert!(v["dependencies"][dep]["latency_ms"].as_i64().unwrap() >= 0);
    }
    assert_eq!(v["dependencies"]["sql"]["backend"], "sqlite");
}

#[test]
fn every_request_gets_one_log_line_without_path_values_or_query() {
    let p = block_on(TestPlatform::new());
    let resp = send(
        &p,
        request(Method::GET, "/v1/nope?email=someone%40example.com")
            .header("x-request-id", "trace-1")
            .body(Vec::new())
            .unwrap(),
    );
    assert_problem(&resp, 404, "not-found");
    assert_eq!(resp.headers()["x-request-id"], "trace-1");
    let lines = p.logger.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["msg"], "request");
    assert_eq!(line["route"], "<unmatched>");
    assert_eq!(line["status"], 404);
    assert_eq!(line["request_id"], "trace-1");
    assert!(
        !lines[0].contains("example.com") && !lines[0].contains("/v1/nope"),
        "{}",
        lines[0]
    );
}

#[test]
fn hot_routes_log_only_their_errors_and_slow_answers() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("EDGEPLANE_ENV", "development");
    for uri in [
        "/health",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        assert_eq!(get(&p, uri).status(), StatusCode::OK, "{uri}");
    }
    assert_eq!(
        p.logger.lines(),
        Vec::<String>::new(),
        "successful hot routes are quiet"
    );
    let resp = send(
        &p,
        request(Method::GET, "/v1/flags").body(Vec::new()).unwrap(),
    );
    assert_problem(&resp, 401, "invalid-credentials");
    let lines = p.logger.lines();
    assert_eq!(
        lines.len(),
        1,
        "a refused hot-route request is logged: {lines:?}"
    );
    assert!(lines[0].contains("\"route\":\"/v1/flags\""), "{}", lines[0]);
    assert!(super::is_quiet(
        "/health",
        StatusCode::OK,
        super::SLOW_HOT_ROUTE_MS - 1
    ));
    assert!(!super::is_quiet(
        "/health",
        StatusCode::OK,
        super::SLOW_HOT_ROUTE_MS
    ));
    assert!(
        !super::is_quiet("/v1/health", StatusCode::OK, 0),
        "not a hot route"
    );
    assert!(!super::is_quiet(
        "/oauth/introspect",
        StatusCode::SERVICE_UNAVAILABLE,
        0
    ));
}

#[test]
fn head_is_served_without_a_body_and_wrong_methods_are_405() {
    let p = block_on(TestPlatform::new());
    let resp = send(
        &p,
        request(Method::HEAD, "/health").body(Vec::new()).unwrap(),
    );
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.body().is_empty());
    let resp = send(
        &p,
        request(Method::DELETE, "/health").body(Vec::new()).unwrap(),
    );
    assert_problem(&resp, 405, "invalid-input");
    assert_eq!(resp.headers()["allow"], "GET");
}

#[test]
fn oversized_bodies_are_refused_before_any_work() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("CRON_SECRET", "s3cret");
    let resp = send(
        &p,
        request(Method::POST, "/internal/scheduled")
            .header("authorization", "Bearer s3cret")
            .header("content-type", "application/json")
            .body(vec![b' '; super::MAX_BODY_BYTES + 1])
            .unwrap(),
    );
    assert_problem(&resp, 413, "invalid-input");
    assert!(
        block_on(p.kv.get(LAST_RUN_KEY, None)).unwrap().is_none(),
        "no job may run"
    );
    // A body an adapter stopped reading past the limit (chunked, no Content-Length) reaches
    // core marked and empty, and gets the same answer.
    let mut body = super::LimitedBody::new(None);
    while !body.is_too_large() {
        body.push(&[b' '; 64 * 1024]);
    }
    let req = body
        .into_request(
            request(Method::POST, "/internal/scheduled")
                .header("authorization", "Bearer s3cret")
                .header("content-type", "application/json")
                .header("transfer-encoding", "chunked"),
        )
        .unwrap();
    let resp = send(&p, req);
    let problem = assert_problem(&resp, 413, "invalid-input");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("1048576 bytes"));
    assert!(block_on(p.kv.get(LAST_RUN_KEY, None)).unwrap().is_none());
}

#[test]
fn scheduled_route_is_hidden_without_a_secret_and_guarded_with_one() {
    let p = block_on(TestPlatform::new());
    let post = |auth: Option<&str>| {
        let mut b = request(Method::POST, "/internal/scheduled");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        send(&p, b.body(Vec::new()).unwrap())
    };
    assert_problem(&post(Some("Bearer anything")), 404, "not-found");
    p.secrets.set("CRON_SECRET", "s3cret");
    let v = assert_problem(&post(None), 401, "invalid-credentials");
    assert_eq!(v["code"], "ERR-AUTH-401");
    assert_problem(&post(Some("Bearer s3cre")), 401, "invalid-credentials");
    assert_problem(&post(Some("s3cret")), 401, "invalid-credentials");
    let resp = post(Some("Bearer s3cret"));
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    assert_eq!(body(&resp)["cron"], "manual");
}

#[test]
fn scheduled_jobs_expire_idempotency_records_and_leave_a_heartbeat() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("CRON_SECRET", "s3cret");
    let now = p.clock.now_ms();
    for (key, expires) in [("old", now - 1), ("fresh", now + 60_000)] {
        block_on(p.sql.execute(
            Stmt::new("INSERT INTO idempotency_keys (scope, key, request_hash, created_at, expires_at) VALUES ('t', ?1, 'h', ?2, ?3)")
                .bind(key)
                .bind(now - 10)
                .bind(expires),
        ))
        .unwrap();
    }
    let resp = send(
        &p,
        request(Method::POST, "/internal/scheduled")
            .header("authorization", "Bearer s3cret")
            .header("content-type", "application/json")
            .body(br#"{"cron":"*/5 * * * *"}"#.to_vec())
            .unwrap(),
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let v = body(&resp);
    assert_eq!(v["cron"], "*/5 * * * *");
    assert_eq!(v["jobs"][0]["name"], "idempotency_keys.expire");
    assert_eq!(v["jobs"][0]["affected"], 1);
    let left = block_on(p.sql.query(Stmt::new("SELECT key FROM idempotency_keys"))).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].text("key").unwrap(), "fresh");
    let marker = block_on(p.kv.get(LAST_RUN_KEY, None)).unwrap().unwrap();
    assert!(String::from_utf8(marker).unwrap().contains("*/5 * * * *"));
}

#[test]
fn malformed_and_mistyped_bodies_are_400_and_415() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("CRON_SECRET", "s3cret");
    let post = |ct: &str, body: &str| {
        send(
            &p,
            request(Method::POST, "/internal/scheduled")
                .header("authorization", "Bearer s3cret")
                .header("content-type", ct)
                .body(body.as_bytes().to_vec())
                .unwrap(),
        )
    };
    let v = assert_problem(
        &post("application/json", r#"{"cron":"#),
        400,
        "invalid-input",
    );
    assert!(v["detail"].as_str().unwrap().contains("JSON"));
    assert_problem(
        &post("application/json", r#"{"cron":7}"#),
        400,
        "invalid-input",
    );
    assert_problem(
        &post("application/json", r#"{"cron":"x","extra":1}"#),
        400,
        "invalid-input",
    );
    let v = assert_problem(
        &post("application/json", r#"{"cron":""}"#),
        400,
        "invalid-input",
    );
    assert_eq!(v["errors"][0]["field"], "cron");
    assert_problem(&post("text/plain", "hello"), 415, "invalid-input");
    assert!(
        block_on(p.kv.get(LAST_RUN_KEY, None)).unwrap().is_none(),
        "no job may run"
    );
}

#[test]
fn openapi_is_served() {
    let p = block_on(TestPlatform::new());
    let resp = get(&p, "/openapi.json");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(&resp)["openapi"], "3.1.0");
}

#[test]
fn the_deliberate_panic_route_does_not_exist_outside_development() {
    let p = block_on(TestPlatform::new());
    assert_problem(&get(&p, "/__dev/panic"), 404, "not-found");
    p.secrets.set("EDGEPLANE_ENV", "production");
    assert_problem(&get(&p, "/__dev/panic"), 404, "not-found");
    p.secrets.set("EDGEPLANE_ENV", "development");
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| get(&p, "/__dev/panic")));
    assert!(outcome.is_err(), "development panics on purpose");
}

/// The archive tamper routes exist only in development.
#[test]
fn the_development_blob_routes_do_not_exist_outside_development() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("EDGEPLANE_ENV", "production");
    assert_problem(&get(&p, "/__dev/blobs?prefix=audit/"), 404, "not-found");
    let put = request(Method::PUT, "/__dev/blobs?key=audit/x")
        .body(b"x".to_vec())
        .unwrap();
    assert_problem(&send(&p, put), 404, "not-found");
    assert!(block_on(crate::ports::Blobs::get(&p.blobs, "audit/x"))
        .unwrap()
        .is_none());
}

/// The clock offset route exists only in development with fault injection enabled: elsewhere
/// it is not found and neither moves time nor keeps an offset.
#[test]
fn the_development_clock_route_does_not_exist_outside_development() {
    let p = block_on(TestPlatform::new());
    let put = || {
        request(Method::PUT, "/__dev/clock")
            .header("content-type", "application/json")
            .body(br#"{"offset_ms":660000}"#.to_vec())
            .unwrap()
    };
    for (env, injection) in [
        ("production", "on"),
        ("production", ""),
        ("development", ""),
    ] {
        p.secrets.set("EDGEPLANE_ENV", env);
        p.secrets.set(crate::faults::ENABLE_VAR, injection);
        assert_problem(&send(&p, put()), 404, "not-found");
        assert_eq!(crate::faults::clock_offset(), 0, "{env} {injection:?}");
        assert!(
            block_on(p.kv.get(crate::faults::CLOCK_KEY, None))
                .unwrap()
                .is_none(),
            "{env} {injection:?}"
        );
    }
    p.secrets.set("EDGEPLANE_ENV", "development");
    p.secrets.set(crate::faults::ENABLE_VAR, "on");
    assert_eq!(send(&p, put()).status(), StatusCode::OK);
    assert_eq!(crate::faults::clock_offset(), 660_000);
    let shifted = crate::faults::Shifted(p.clock.clone());
    assert_eq!(shifted.now_ms(), p.clock.now_ms() + 660_000);
    crate::faults::set_clock_offset(0);
}

/// NFR-SEC-006: a sign-in's request line says how long its risk check took; a request that ran
/// none (a wrong password never reaches it) says nothing of it.
#[test]
fn the_sign_in_log_line_carries_the_risk_check_duration() {
    let (p, _) = signed_in_owner();
    assert_eq!(sign_in(&p, "wrong password").status(), 401);
    let lines: Vec<Value> = p
        .logger
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["msg"] == "request" && l["route"] == "/v1/auth/login")
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["status"], 200);
    assert!(lines[0]["risk_ms"].is_i64(), "{}", lines[0]);
    assert_eq!(lines[1]["status"], 401);
    assert!(lines[1].get("risk_ms").is_none(), "{}", lines[1]);
}

/// A development issuer on the test platform, and tokens it signs (EdDSA), for routes behind
/// operator sign-in.
pub(super) mod operator_tokens {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    use crate::ports::Clock;
    use crate::testing::TestPlatform;

    const ISSUER: &str = "http://127.0.0.1:8787/dev-issuer";

    pub fn configure(p: &TestPlatform) -> SigningKey {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA" }] });
        p.secrets.set("EDGEPLANE_ENV", "development");
        p.secrets.set("OPERATOR_ISSUER", ISSUER);
        p.secrets.set("OPERATOR_AUDIENCE", "edgeplane");
        p.secrets.set("OPERATOR_DEV_JWKS", &jwks.to_string());
        key
    }

    pub fn token(p: &TestPlatform, key: &SigningKey, role: &str) -> String {
        let now = p.clock.now_ms() / 1000;
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
        let claims = json!({ "iss": ISSUER, "aud": "edgeplane", "sub": format!("{role}-1"), "roles": [role], "iat": now, "exp": now + 600 });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

#[test]
fn fr_log_003_a_refused_operator_request_is_audited_as_failure_and_changes_nothing() {
    let p = block_on(TestPlatform::new());
    let key = operator_tokens::configure(&p);
    let body =
        br#"{"name":"Acme","domain":"acme","plan":"pro","owner_email":"owner@acme.example"}"#
            .to_vec();
    let post = |role: &str| {
        send(
            &p,
            request(Method::POST, "/v1/tenants")
                .header(
                    "authorization",
                    format!("Bearer {}", operator_tokens::token(&p, &key, role)),
                )
                .header("content-type", "application/json")
                .header("x-request-id", format!("req-{role}"))
                .body(body.clone())
                .unwrap(),
        )
    };
    assert_problem(&post("auditor"), 403, "access-denied");
    let tenants = block_on(p.sql.query(Stmt::new("SELECT id FROM tenants"))).unwrap();
    assert!(tenants.is_empty(), "a refused request creates nothing");
    let rows = block_on(p.sql.query(Stmt::new(
        "SELECT action, outcome, actor_type, resource, request_id FROM audit_outbox WHERE action = 'access.denied'",
    )))
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].text("outcome").unwrap(), "failure");
    assert_eq!(rows[0].text("actor_type").unwrap(), "operator");
    assert_eq!(rows[0].text("resource").unwrap(), "POST /v1/tenants");
    assert_eq!(rows[0].text("request_id").unwrap(), "req-auditor");

    let resp = post("operator");
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
}

#[test]
fn scheduled_time_override_is_refused_outside_development() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("CRON_SECRET", "s3cret");
    let post = || {
        send(
            &p,
            request(Method::POST, "/internal/scheduled")
                .header("authorization", "Bearer s3cret")
                .header("content-type", "application/json")
                .body(br#"{"now_ms": 4102444800000}"#.to_vec())
                .unwrap(),
        )
    };
    let v = assert_problem(&post(), 400, "invalid-input");
    assert_eq!(v["errors"][0]["field"], "now_ms");
    p.secrets.set("EDGEPLANE_ENV", "development");
    assert_eq!(post().status(), StatusCode::OK);
    let marker = block_on(p.kv.get(LAST_RUN_KEY, None)).unwrap().unwrap();
    assert!(String::from_utf8(marker).unwrap().contains("4102444800000"));
}

/// FR-LOG-002: the auditor's CSV across every tenant pages by `(tenant, seq)`: each event in
/// exactly one page whatever the page size, archived or not, and `Link` names the next page.
#[test]
fn fr_log_002_csv_export_pages_across_tenants_exactly_once() {
    use crate::events::ingest::{ingest, Reporter};
    use crate::events::jobs::flush_all;
    use crate::ports::StreamKind;

    let p = futures_executor::block_on(TestPlatform::new());
    let key = operator_tokens::configure(&p);
    let auditor = operator_tokens::token(&p, &key, "auditor");
    futures_executor::block_on(async {
        for (tenant, n) in [("t1", 5), ("t2", 3), ("t3", 4)] {
            let events: Vec<Value> = (0..n)
                .map(|i| {
                    serde_json::json!({"id": format!("{tenant}-{i}"), "timestamp": "2026-01-01T00:00:00Z",
                        "actor_id": "u", "type": "doc.read", "resource_id": "d", "outcome": "success", "ip": "192.0.2.1"})
                })
                .collect();
            let r = Reporter {
                app_id: "app".into(),
                tenant_id: Some(tenant.into()),
            };
            ingest(&p, StreamKind::Audit, &r, &serde_json::json!(events), None)
                .await
                .unwrap();
            if tenant == "t2" {
                flush_all(&p, p.clock.now_ms()).await.unwrap();
            }
        }
    });
    for limit in [1, 2, 3, 5, 12, 100] {
        let mut uri = format!("/v1/audit/export.csv?limit={limit}");
        let mut ids = Vec::new();
        for _ in 0..50 {
            let resp = send(
                &p,
                request(Method::GET, &uri)
                    .header("authorization", format!("Bearer {auditor}"))
                    .body(Vec::new())
                    .unwrap(),
            );
            assert_eq!(resp.status(), 200);
            let text = String::from_utf8(resp.body().clone()).unwrap();
            let rows: Vec<&str> = text
                .split("\r\n")
                .skip(1)
                .filter(|l| !l.is_empty())
                .collect();
            assert!(rows.len() <= limit);
            ids.extend(rows.iter().map(|r| r.split(',').nth(2).unwrap().to_owned()));
            match resp.headers().get("link") {
                Some(link) => {
                    let link = link.to_str().unwrap();
                    uri = link[1..link.find('>').unwrap()].to_owned();
                }
                None => break,
            }
        }
        let mut want: Vec<String> = [("t1", 5), ("t2", 3), ("t3", 4)]
            .iter()
            .flat_map(|(t, n)| (0..*n).map(move |i| format!("{t}-{i}")))
            .collect();
        want.sort();
        let mut got = ids.clone();
        got.sort();
        assert_eq!(got, want, "limit {limit}: {ids:?}");
    }
}

/// An active user `owner@acme.test` of tenant `acme` (password [`PASSWORD`]).
async fn active_owner(p: &TestPlatform) {
    use crate::audit::Actor;
    use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
    let out = tenants::provision(
        p,
        &Actor::operator("op-1"),
        ProvisionTenant {
            name: TenantName::parse("Acme Inc").unwrap(),
            domain: TenantDomain::parse("acme").unwrap(),
            plan: Plan::parse("free").unwrap(),
            owner_email: Email::parse("owner@acme.test").unwrap(),
            apps: vec![],
        },
        None,
        "r",
        &crate::http::links_under("https://cp.example.com"),
    )
    .await
    .unwrap()
    .provisioned;
    let token = out.invitation_link.split_once("token=").unwrap().1;
    crate::users::accept_invitation(p, token, PASSWORD, "r")
        .await
        .unwrap();
}

const PASSWORD: &str = "correct horse battery staple";

fn forgot_from_host(p: &TestPlatform, host: &str) -> Response {
    send(
        p,
        request(Method::POST, "/v1/auth/password/forgot")
            .header("host", host)
            .header("content-type", "application/json")
            .body(br#"{"tenant":"acme","email":"owner@acme.test"}"#.to_vec())
            .unwrap(),
    )
}

async fn mails_to_owner(p: &TestPlatform) -> Vec<String> {
    p.sql
        .query(Stmt::new(
            "SELECT text_body FROM mail_outbox WHERE to_addr = 'owner@acme.test' ORDER BY id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.text("text_body").unwrap())
        .collect()
}

/// FR-AUTH-004: a mailed link never comes from the request's `Host` header. Outside
/// development, without `PUBLIC_BASE_URL` the routes that mail links answer 503 and mail
/// nothing; with it, the link points there whatever `Host` the client sent.
#[test]
fn fr_auth_004_mailed_links_never_come_from_the_host_header() {
    let p = block_on(TestPlatform::new());
    block_on(active_owner(&p));
    let before = block_on(mails_to_owner(&p)).len();

    let resp = forgot_from_host(&p, "evil.example");
    assert_problem(&resp, 503, "unavailable");
    assert_eq!(block_on(mails_to_owner(&p)).len(), before, "nothing mailed");
    assert!(
        p.logger
            .lines()
            .iter()
            .any(|l| l.contains("PUBLIC_BASE_URL is not set")),
        "{:?}",
        p.logger.lines()
    );
    // The provider's discovery names no issuer taken from the request either.
    let resp = send(
        &p,
        request(Method::GET, "/.well-known/openid-configuration")
            .header("host", "evil.example")
            .body(Vec::new())
            .unwrap(),
    );
    assert_problem(&resp, 503, "unavailable");

    p.secrets.set("PUBLIC_BASE_URL", "https://cp.example.com/");
    let resp = forgot_from_host(&p, "evil.example");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let mails = block_on(mails_to_owner(&p));
    assert_eq!(mails.len(), before + 1);
    let mail = mails.last().unwrap();
    assert!(
        mail.contains("https://cp.example.com/console/account/password-reset?token="),
        "{mail}"
    );
    assert!(!mail.contains("evil.example"), "{mail}");
}

fn with_bearer(method: Method, uri: &str, token: &str, body: &str) -> Request {
    request(method, uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

/// FR-AUTH-006: the password policy is managed by whoever is an owner or admin *now*: a
/// demoted owner's access token (its role claim still `owner`) is refused and changes nothing.
#[test]
fn fr_auth_006_password_policy_routes_read_the_role_from_the_database() {
    use crate::signin::{login, LoginRequest};
    use crate::tenants::{Email, TenantDomain};
    let p = block_on(TestPlatform::new());
    p.secrets.set(
        crate::tokens::master_key::MASTER_KEY_SECRET,
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
    );
    block_on(active_owner(&p));
    let tokens = block_on(login(
        &p,
        &LoginRequest {
            tenant: TenantDomain::parse("acme").unwrap(),
            email: Email::parse("owner@acme.test").unwrap(),
            password: PASSWORD.into(),
            client: None,
            context: Default::default(),
        },
        "r",
    ))
    .unwrap();
    let policy = r#"{"min_length":20,"require_upper":false,"require_lower":false,"require_digit":false,"require_symbol":false,"max_age_days":null,"history_count":0}"#;
    let resp = send(
        &p,
        with_bearer(
            Method::PUT,
            "/v1/tenant/password-policy",
            &tokens.access_token,
            policy,
        ),
    );
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", body(&resp));

    // Demoted behind the token's back.
    p.sql
        .exec_raw("UPDATE users SET role = 'user' WHERE email = 'owner@acme.test'")
        .unwrap();
    for (method, payload) in [
        (Method::GET, ""),
        (
            Method::PUT,
            r#"{"min_length":8,"require_upper":false,"require_lower":false,"require_digit":false,"require_symbol":false,"max_age_days":null,"history_count":0}"#,
        ),
    ] {
        let resp = send(
            &p,
            with_bearer(
                method,
                "/v1/tenant/password-policy",
                &tokens.access_token,
                payload,
            ),
        );
        assert_problem(&resp, 403, "access-denied");
    }
    let rows = block_on(
        p.sql
            .query(Stmt::new("SELECT min_length FROM password_policies")),
    )
    .unwrap();
    assert_eq!(rows[0].i64("min_length").unwrap(), 20, "unchanged");
}

/// FR-LOG-001: `/v1/audit/verify` checks each archive's anchor and
/// says which key anchors here; an archive stripped of its anchor makes the answer not ok,
/// with a machine-readable code.
#[test]
fn fr_log_001_verify_reports_anchors() {
    use crate::events::ingest::{ingest, Reporter};
    use crate::events::jobs::flush_all;
    use crate::ports::StreamKind;

    let p = block_on(TestPlatform::new());
    let key = operator_tokens::configure(&p);
    let auditor = operator_tokens::token(&p, &key, "auditor");
    block_on(async {
        let event = serde_json::json!({"id": "v1", "timestamp": "2026-01-01T00:00:00Z",
            "actor_id": "u", "type": "doc.read", "resource_id": "d", "outcome": "success", "ip": "192.0.2.1"});
        let r = Reporter {
            app_id: "app".into(),
            tenant_id: Some("t1".into()),
        };
        ingest(&p, StreamKind::Audit, &r, &event, None)
            .await
            .unwrap();
        flush_all(&p, p.clock.now_ms()).await.unwrap();
    });
    let verify = || {
        let resp = send(
            &p,
            request(Method::GET, "/v1/audit/verify?tenant=t1")
                .header("authorization", format!("Bearer {auditor}"))
                .body(Vec::new())
                .unwrap(),
        );
        assert_eq!(resp.status(), 200);
        serde_json::from_slice::<Value>(resp.body()).unwrap()
    };
    let ok = verify();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(
        (ok["archives"].as_u64(), ok["anchors"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(ok["anchor_key"], "configured");

    block_on(
        p.sql
            .execute(Stmt::new("UPDATE archive_index SET anchor = NULL")),
    )
    .unwrap();
    let bad = verify();
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["anchors"], 0);
    assert_eq!(bad["first_break"]["code"], "anchor_missing");
    assert_eq!(bad["first_break"]["seq"], 1);
}

/// The tenant `acme` with its active owner, and a platform that can sign tokens.
fn signed_in_owner() -> (TestPlatform, Value) {
    let p = block_on(TestPlatform::new());
    p.secrets.set(
        crate::tokens::master_key::MASTER_KEY_SECRET,
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
    );
    block_on(active_owner(&p));
    let tokens = sign_in(&p, PASSWORD);
    assert_eq!(tokens.status(), StatusCode::OK);
    let v = body(&tokens);
    (p, v)
}

fn sign_in(p: &TestPlatform, password: &str) -> Response {
    let login =
        serde_json::json!({ "tenant": "acme", "email": "owner@acme.test", "password": password });
    send(
        p,
        request(Method::POST, "/v1/auth/login")
            .header("content-type", "application/json")
            .body(login.to_string().into_bytes())
            .unwrap(),
    )
}

/// The security changes a signed-in user can make, as (method, path, body).
const SECURITY_CHANGES: &[(&str, &str, &str)] = &[
    ("POST", "/v1/auth/mfa/totp", ""),
    ("POST", "/v1/auth/mfa/totp/confirm", r#"{"code":"123456"}"#),
    ("DELETE", "/v1/auth/mfa/totp", r#"{"code":"123456"}"#),
    (
        "POST",
        "/v1/auth/password/change",
        r#"{"current_password":"correct horse battery staple","new_password":"another long passphrase 42"}"#,
    ),
    ("POST", "/v1/auth/webauthn/register/options", ""),
    (
        "POST",
        "/v1/auth/webauthn/register/verify",
        r#"{"flow":"x","credential":{}}"#,
    ),
    ("DELETE", "/v1/auth/webauthn/credentials/c1", ""),
    ("DELETE", "/v1/me", ""),
];

/// NFR-SEC-003: adding or removing a way to sign in, changing the password or deleting the
/// account needs a sign-in from the last five minutes: a token that is still valid but whose
/// sign-in is older (stolen, or refreshed since) is refused and changes nothing; signing in
/// again is the way forward.
#[test]
fn nfr_sec_003_security_changes_need_a_recent_sign_in() {
    let (p, tokens) = signed_in_owner();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    p.clock.advance(6 * 60 * 1000);
    // Refreshing is not signing in: the new token keeps the session's sign-in time.
    let refreshed = send(
        &p,
        request(Method::POST, "/v1/auth/refresh")
            .header("content-type", "application/json")
            .body(
                serde_json::json!({ "refresh_token": refresh })
                    .to_string()
                    .into_bytes(),
            )
            .unwrap(),
    );
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed = body(&refreshed)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&access, &refreshed] {
        for (method, path, payload) in SECURITY_CHANGES {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let resp = send(&p, with_bearer(method, path, token, payload));
            let v = assert_problem(&resp, 403, "access-denied");
            assert_eq!(v["reason"], "reauthentication_required", "{path}: {v}");
            assert_eq!(v["max_age"], 300, "{path}");
        }
    }
    let totp = block_on(p.sql.query(Stmt::new(
        "SELECT totp_secret_enc FROM users WHERE email = 'owner@acme.test'",
    )))
    .unwrap();
    assert_eq!(
        totp[0].get("totp_secret_enc"),
        Some(&crate::ports::Value::Null)
    );
    // Signing in again (the password is still the old one: nothing changed) opens them.
    let fresh = body(&sign_in(&p, PASSWORD))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = send(
        &p,
        with_bearer(Method::POST, "/v1/auth/mfa/totp", &fresh, ""),
    );
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", body(&resp));
}

/// ERR-RATE-429, NFR-SEC-003: codes given to confirm or disable TOTP count against the user's
/// limit of wrong second factors, like sign-in's second step.
#[test]
fn err_rate_429_totp_changes_are_limited_like_sign_in() {
    let (p, tokens) = signed_in_owner();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let resp = send(
        &p,
        with_bearer(Method::POST, "/v1/auth/mfa/totp", &access, ""),
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let code = format!(r#"{{"code":"{:06}"}}"#, 100_003 + i * 7919);
        let resp = send(
            &p,
            with_bearer(Method::POST, "/v1/auth/mfa/totp/confirm", &access, &code),
        );
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[422; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
}

/// ERR-RATE-429: a wrong current password given to a change counts as a failed sign-in of the
/// account: a stolen access token cannot guess the password here instead.
#[test]
fn err_rate_429_password_change_shares_the_sign_in_limit() {
    let (p, tokens) = signed_in_owner();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let wrong = r#"{"current_password":"not the password at all","new_password":"another long passphrase 42"}"#;
    for _ in 0..10 {
        let resp = send(
            &p,
            with_bearer(Method::POST, "/v1/auth/password/change", &access, wrong),
        );
        assert_problem(&resp, 401, "invalid-credentials");
    }
    let right = r#"{"current_password":"correct horse battery staple","new_password":"another long passphrase 42"}"#;
    let resp = send(
        &p,
        with_bearer(Method::POST, "/v1/auth/password/change", &access, right),
    );
    assert_problem(&resp, 429, "rate-limited");
    assert_problem(&sign_in(&p, PASSWORD), 429, "rate-limited");
}

/// Every answer, success or problem, says `nosniff`; over https it also carries HSTS.
#[test]
fn every_answer_carries_the_hardening_headers() {
    let p = block_on(TestPlatform::new());
    for uri in ["/health", "/v1/nope", "https://cp.example.com/health"] {
        let resp = get(&p, uri);
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(
            resp.headers().get("strict-transport-security").is_some(),
            uri.starts_with("https://"),
            "{uri}"
        );
    }
}

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{id}" | "{app_id}" => "0190a4c2-7b1e-7c3d-9e2f-1a2b3c4d5e6f",
            "{key_id}" => "0123456789abcdef0123456789abcdef",
            "{key}" => "checkout",
            "{plan}" => "pro",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn without_credentials(p: &TestPlatform, route: &super::router::Route) -> Response {
    send(
        p,
        request(route.method.clone(), &concrete(route.path))
            .header("content-type", "application/json")
            .body(b"{}".to_vec())
            .unwrap(),
    )
}

/// Every route the router guards answers 401 without credentials, whatever its handler would
/// do, and nothing is written: the caller a route declares is checked before the handler runs.
#[test]
fn every_guarded_route_refuses_a_request_without_credentials_before_its_handler() {
    use super::router::{Caller, ROUTES};
    let p = block_on(TestPlatform::new());
    operator_tokens::configure(&p);
    let before = block_on(
        p.sql
            .query(Stmt::new("SELECT count(*) AS n FROM audit_outbox")),
    )
    .unwrap()[0]
        .i64("n")
        .unwrap();
    let mut checked = 0;
    for route in ROUTES {
        let guarded = !matches!(
            route.caller,
            Caller::Anyone
                | Caller::Preflight
                | Caller::Scheduler
                | Caller::Introspector
                | Caller::OidcClient
                | Caller::OidcUser
        );
        if !guarded {
            continue;
        }
        let resp = without_credentials(&p, route);
        assert_eq!(
            resp.status().as_u16(),
            401,
            "{} {}: {}",
            route.method,
            route.path,
            String::from_utf8_lossy(resp.body())
        );
        assert_problem(&resp, 401, "invalid-credentials");
        checked += 1;
    }
    assert!(checked > 60, "only {checked} guarded routes");
    let after = block_on(
        p.sql
            .query(Stmt::new("SELECT count(*) AS n FROM audit_outbox")),
    )
    .unwrap()[0]
        .i64("n")
        .unwrap();
    assert_eq!(before, after, "a refused request writes nothing");
}

/// Every operator-only route refuses an auditor with 403 before its handler runs.
#[test]
fn every_operator_route_refuses_an_auditor() {
    use super::router::{Caller, ROUTES};
    let p = block_on(TestPlatform::new());
    let key = operator_tokens::configure(&p);
    let auditor = operator_tokens::token(&p, &key, "auditor");
    for route in ROUTES.iter().filter(|r| r.caller == Caller::Operator) {
        let resp = send(
            &p,
            request(route.method.clone(), &concrete(route.path))
                .header("authorization", format!("Bearer {auditor}"))
                .header("content-type", "application/json")
                .body(b"{}".to_vec())
                .unwrap(),
        );
        assert_eq!(
            resp.status().as_u16(),
            403,
            "{} {}",
            route.method,
            route.path
        );
        assert_problem(&resp, 403, "access-denied");
    }
    let tenants = block_on(p.sql.query(Stmt::new("SELECT id FROM tenants"))).unwrap();
    assert!(tenants.is_empty());
}

fn post_body(p: &TestPlatform, uri: &str, content_type: &str, body: &str) -> Response {
    send(
        p,
        request(Method::POST, uri)
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec())
            .unwrap(),
    )
}

fn post_form(p: &TestPlatform, uri: &str, form: &str) -> Response {
    post_body(p, uri, "application/x-www-form-urlencoded", form)
}

#[test]
fn fr_auth_001_the_token_endpoint_reads_one_grant_type_of_any_value() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("PUBLIC_BASE_URL", "https://id.example.com");
    for (form, error) in [
        ("", "invalid_request"),
        ("grant_type=", "invalid_request"),
        // RFC 6749 3.1: a repeated parameter counts as absent.
        (
            "grant_type=authorization_code&grant_type=refresh_token",
            "invalid_request",
        ),
        ("grant_type=password", "unsupported_grant_type"),
        (
            "grant_type=client_credentials&other=1",
            "unsupported_grant_type",
        ),
    ] {
        let resp = post_form(&p, "/oauth/token", form);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{form}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{form}");
        assert_eq!(body(&resp)["error"], error, "{form}");
    }
    let resp = post_form(
        &p,
        "/oauth/token",
        "grant_type=refresh_token&client_id=nope",
    );
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(&resp)["error"], "invalid_client");
}

#[test]
fn fr_auth_001_a_login_form_without_its_flow_is_an_expired_sign_in() {
    let p = block_on(TestPlatform::new());
    for step in ["tenant", "login", "mfa", "forgot", "continue"] {
        for form in [
            "",
            "flow=f&flow=f&csrf=c&tenant=example.com",
            "flow=nope&csrf=c",
        ] {
            let resp = post_form(&p, &format!("/oauth/authorize/{step}"), form);
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{step} {form}");
            let page = String::from_utf8_lossy(resp.body());
            assert!(page.contains("Sign-in expired"), "{step} {form}: {page}");
        }
    }
}

#[test]
fn fr_auth_001_logout_without_parameters_signs_out_in_place() {
    let p = block_on(TestPlatform::new());
    p.secrets.set("PUBLIC_BASE_URL", "https://id.example.com");
    for resp in [
        post_form(&p, "/oauth/logout", ""),
        post_form(&p, "/oauth/logout", "state=s&state=t&other=1"),
        get(&p, "/oauth/logout"),
    ] {
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(String::from_utf8_lossy(resp.body()).contains("Signed out"));
    }
}

#[test]
fn nfr_sec_003_mfa_verify_takes_exactly_one_of_code_and_webauthn() {
    let p = block_on(TestPlatform::new());
    let verify = |b: &str| post_body(&p, "/v1/auth/mfa/verify", "application/json", b);
    let assertion = r#"{"id":"a","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}"#;
    // Neither, or both: the rule is not met.
    for b in [
        r#"{"mfa_token":"t"}"#.to_owned(),
        r#"{"mfa_token":"t","code":null,"webauthn":null}"#.to_owned(),
        format!(r#"{{"mfa_token":"t","code":"123456","webauthn":{assertion}}}"#),
    ] {
        let v = assert_problem(&verify(&b), 400, "invalid-input");
        assert_eq!(v["errors"][0]["field"], "code", "{b}");
    }
    // One of them, the other null or absent: the rule is met and the token is checked.
    for b in [
        r#"{"mfa_token":"t","code":"123456"}"#.to_owned(),
        r#"{"mfa_token":"t","code":"123456","webauthn":null}"#.to_owned(),
        format!(r#"{{"mfa_token":"t","webauthn":{assertion}}}"#),
        format!(r#"{{"mfa_token":"t","code":null,"webauthn":{assertion}}}"#),
    ] {
        let resp = verify(&b);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{b}");
    }
    // A field of another type, a null token or another member: not this body.
    for b in [
        r#"{"mfa_token":null,"code":"123456"}"#,
        r#"{"mfa_token":"t","code":123456}"#,
        r#"{"mfa_token":"t","code":"123456","other":1}"#,
    ] {
        assert_problem(&verify(b), 400, "invalid-input");
    }
}

/// A JSON array is not read as an object whose fields come in order (serde would): every body
/// the API reads as an object refuses one with 400 and changes nothing.
#[test]
fn an_array_body_is_refused_where_an_object_is_expected() {
    let p = block_on(TestPlatform::new());
    let key = operator_tokens::configure(&p);
    let operator = operator_tokens::token(&p, &key, "operator");
    let resp = send(
        &p,
        request(Method::POST, "/v1/apps")
            .header("authorization", format!("Bearer {operator}"))
            .header("content-type", "application/json")
            .body(br#" ["schemathesis", [], []]"#.to_vec())
            .unwrap(),
    );
    assert_problem(&resp, 400, "invalid-input");
    let apps = block_on(p.sql.query(Stmt::new(
        "SELECT id FROM apps WHERE id <> 'edgeplane-console'",
    )))
    .unwrap();
    assert!(apps.is_empty());
}

/// FR-BILL-003: a tenant's owner (or admin) reads their own tenant's usage summary, the same
/// one the platform's people read at `/v1/tenants/{id}/usage`; the tenant is the token's, so
/// naming another is refused and another tenant's usage never shows.
#[test]
fn fr_bill_003_an_owner_reads_the_usage_of_their_own_tenant_only() {
    use crate::events::ingest::{ingest, Reporter};
    use crate::ports::StreamKind;

    let (p, tokens) = signed_in_owner();
    let access = tokens["access_token"].as_str().unwrap();
    let tid = block_on(p.sql.query(Stmt::new("SELECT id FROM tenants"))).unwrap()[0]
        .text("id")
        .unwrap();
    for (tenant, id, quantity) in [(tid.as_str(), "b1", 5), ("another", "b2", 7)] {
        let event = serde_json::json!({"id": id, "type": "api.call", "quantity": quantity,
            "timestamp": "2025-12-31T10:00:00Z"});
        let reporter = Reporter {
            app_id: "app".into(),
            tenant_id: Some(tenant.into()),
        };
        block_on(ingest(&p, StreamKind::Billing, &reporter, &event, None)).unwrap();
    }
    let period = "from=2025-12-01T00:00:00Z&to=2026-01-01T00:00:00Z";
    let own = send(
        &p,
        with_bearer(
            Method::GET,
            &format!("/v1/tenant/usage?{period}"),
            access,
            "",
        ),
    );
    assert_eq!(own.status(), StatusCode::OK);
    let own = body(&own);
    assert_eq!(own["tenant_id"], tid.as_str());
    assert_eq!(
        own["items"],
        serde_json::json!([{"period": "2025-12-31", "type": "api.call", "quantity": 5, "events": 1}])
    );

    let key = operator_tokens::configure(&p);
    let auditor = operator_tokens::token(&p, &key, "auditor");
    let theirs = send(
        &p,
        with_bearer(
            Method::GET,
            &format!("/v1/tenants/{tid}/usage?{period}"),
            &auditor,
            "",
        ),
    );
    assert_eq!(body(&theirs), own, "one summary, whoever reads it");

    let named = send(
        &p,
        with_bearer(Method::GET, "/v1/tenant/usage?tenant=another", access, ""),
    );
    assert_problem(&named, 400, "invalid-input");
}
