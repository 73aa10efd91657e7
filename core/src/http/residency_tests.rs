//! NFR-DATA-001: KV is the one store that cannot be pinned to a jurisdiction (Workers KV
//! replicates to every location), so it must hold no personal data. After a realistic workload
//! through the API, every KV key and value is read back: none holds a user's email, name or
//! client address, and every key is of a kind listed here (the README's "Where data lives").

use ::http::Method;
use futures_executor::block_on;
use serde_json::{json, Value};

use super::api_tests::{operator_tokens, send};
use crate::ports::Stmt;
use crate::testing::TestPlatform;

/// Every kind of KV key, as (prefix, what it holds). A key of another kind fails the test: a
/// new kind is added here and to the README after checking it holds no personal data.
const KV_KEY_KINDS: &[(&str, &str)] = &[
    (
        "flags:",
        "a tenant's flag snapshot (flag keys, values, rules)",
    ),
    (
        "apikey:",
        "an API key's record: app, tenant, scopes, expiry, key hash",
    ),
    (
        "app:",
        "an app's disabled marker or allowed browser origins",
    ),
    ("tenant:", "a tenant's suspended/deleted marker"),
    ("session:", "a revoked session's marker (session id only)"),
    ("user:", "a disabled/deleted user's marker (user id only)"),
    ("signing:jwks", "the public signing keys"),
    (
        "auth:operator-jwks:",
        "the operator IdP's public keys (issuer hashed in the key)",
    ),
    (
        "sso:",
        "a tenant IdP's discovery document or public keys (URL hashed in the key)",
    ),
    ("edge:epoch", "the change epoch: a time and a random tag"),
    ("scheduled:last_run", "the time of the last scheduled run"),
    ("dev:faults", "development fault injection mask"),
];

const EMAIL: &str = "Anna.Musterfrau@Example.test";
const NAME: &str = "Anna Musterfrau";
const IP: &str = "203.0.113.77";
const PASSWORD: &str = "correct horse battery staple";

fn call(p: &TestPlatform, method: Method, uri: &str, auth: Option<&str>, body: Value) -> Value {
    let mut req = ::http::Request::builder()
        .method(method.clone())
        .uri(uri)
        .header("cf-connecting-ip", IP)
        .header("content-type", "application/json");
    if let Some(auth) = auth {
        req = req.header("authorization", format!("Bearer {auth}"));
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let resp = send(p, req.body(bytes).unwrap());
    let text = String::from_utf8_lossy(resp.body()).into_owned();
    assert!(
        resp.status().is_success(),
        "{method} {uri}: {} {text}",
        resp.status()
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Provisions a tenant, lets its owner accept the invitation and sign in (once wrongly first),
/// sets a flag, registers an app with a key and uses it, introspects, signs out, suspends and
/// reactivates the tenant, and runs the scheduled jobs: every path that writes KV.
fn workload(p: &TestPlatform) {
    let key = operator_tokens::configure(p);
    let op = operator_tokens::token(p, &key, "operator");
    p.secrets.set(
        crate::tokens::master_key::MASTER_KEY_SECRET,
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
    );
    p.secrets.set(
        crate::apps::secret::PEPPER_SECRET,
        "a-pepper-of-at-least-thirty-two-characters",
    );
    p.runtime.set("workers");

    let app = call(
        p,
        Method::POST,
        "/v1/apps",
        Some(&op),
        json!({"name": "Shop"}),
    );
    let app_id = app["id"].as_str().unwrap().to_owned();
    let created = call(
        p,
        Method::POST,
        "/v1/tenants",
        Some(&op),
        json!({"name": "Residency GmbH", "domain": "residency", "plan": "free",
               "owner_email": EMAIL, "apps": [app_id]}),
    );
    let tenant = created["tenant"]["id"].as_str().unwrap().to_owned();
    let mail = block_on(crate::ports::Sql::query(
        &p.sql,
        Stmt::new("SELECT text_body FROM mail_outbox ORDER BY id DESC LIMIT 1"),
    ))
    .unwrap();
    let text = mail[0].text("text_body").unwrap();
    let token: String = text
        .split_once("token=")
        .unwrap()
        .1
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    call(
        p,
        Method::POST,
        "/v1/invitations/accept",
        None,
        json!({"token": token, "password": PASSWORD}),
    );
    p.sql
        .exec_raw(&format!("UPDATE users SET display_name = '{NAME}'"))
        .unwrap();

    let wrong = json!({"tenant": "residency", "email": EMAIL, "password": "wrong password!"});
    let resp = send(
        p,
        ::http::Request::builder()
            .method(Method::POST)
            .uri("/v1/auth/login")
            .header("cf-connecting-ip", IP)
            .header("content-type", "application/json")
            .body(wrong.to_string().into_bytes())
            .unwrap(),
    );
    assert_eq!(resp.status(), 401);
    let login = json!({"tenant": "residency", "email": EMAIL, "password": PASSWORD});
    let tokens = call(p, Method::POST, "/v1/auth/login", None, login);
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    call(
        p,
        Method::PUT,
        &format!("/v1/tenants/{tenant}/flags/new-checkout"),
        Some(&op),
        json!({"type": "boolean", "value": false,
               "rules": [{"name": "staff", "conditions": [{"attribute": "email", "op": "ends_with",
                          "values": ["@shop.example"]}], "value": true}]}),
    );
    let issued = call(
        p,
        Method::POST,
        &format!("/v1/apps/{app_id}/keys"),
        Some(&op),
        json!({"scopes": ["flags:read", "token:introspect"], "tenant_id": tenant}),
    );
    let api_key = issued["secret"].as_str().unwrap().to_owned();
    call(p, Method::GET, "/v1/flags", Some(&api_key), Value::Null);
    let resp = send(
        p,
        ::http::Request::builder()
            .method(Method::POST)
            .uri("/oauth/introspect")
            .header("authorization", format!("Bearer {api_key}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={access}").into_bytes())
            .unwrap(),
    );
    assert_eq!(resp.status(), 200);
    call(p, Method::GET, "/.well-known/jwks.json", None, Value::Null);
    call(p, Method::GET, "/v1/me/export", Some(&access), Value::Null);
    call(p, Method::POST, "/v1/auth/logout", Some(&access), json!({}));
    let suspend = format!("/v1/tenants/{tenant}/suspend");
    call(
        p,
        Method::POST,
        &suspend,
        Some(&op),
        json!({"reason": "test"}),
    );
    let activate = format!("/v1/tenants/{tenant}/activate");
    call(p, Method::POST, &activate, Some(&op), Value::Null);
    let (_, causes) = block_on(crate::scheduled::run(p, "*/5 * * * *"));
    assert!(causes.is_empty(), "{causes:?}");
}

/// NFR-DATA-001: after the workload, KV holds keys of the listed kinds only, and no key or
/// value holds the user's email (in any case), name or client address.
#[test]
fn nfr_data_001_kv_holds_no_personal_data() {
    let p = block_on(TestPlatform::new());
    workload(&p);
    let entries = p.kv.entries();
    let kinds: Vec<&str> = entries
        .iter()
        .filter_map(|(k, _)| KV_KEY_KINDS.iter().find(|(pre, _)| k.starts_with(pre)))
        .map(|(pre, _)| *pre)
        .collect();
    for (k, v) in &entries {
        assert!(
            KV_KEY_KINDS.iter().any(|(pre, _)| k.starts_with(pre)),
            "KV key {k} is of no listed kind"
        );
        let text = format!("{k} {}", String::from_utf8_lossy(v)).to_lowercase();
        for secret in [EMAIL, "anna.musterfrau", NAME, "musterfrau", IP] {
            assert!(
                !text.contains(&secret.to_lowercase()),
                "KV entry {k} holds {secret:?}: {text}"
            );
        }
    }
    // The workload reached the kinds that a request writes.
    for kind in [
        "flags:",
        "apikey:",
        "session:",
        "signing:jwks",
        "edge:epoch",
    ] {
        assert!(
            kinds.contains(&kind),
            "no {kind} key after the workload: {kinds:?}"
        );
    }
    // The user's data is there, in SQL (the jurisdiction-pinned database).
    let rows = block_on(crate::ports::Sql::query(
        &p.sql,
        Stmt::new("SELECT email, display_name FROM users WHERE tenant_id IS NOT NULL"),
    ))
    .unwrap();
    assert_eq!(rows[0].text("display_name").unwrap(), NAME);
}
