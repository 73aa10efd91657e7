//! The edge's hot paths in steady state (NFR-PERF-001, FR-FLAG-002, NFR-PERF-004): once an
//! isolate is warm and nothing changed, they answer from its memory with no call to any store,
//! and a change reaches them within the bounds of [`crate::edge`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;
use serde_json::{json, Value};

use super::{handle, Request, Response};
use crate::apps::{self, AllowedOrigin, AppName, IssueKey, KeyKind, RegisterApp, ScopeSet};
use crate::audit::Actor;
use crate::edge::{self, FRESHNESS_MS, PROPAGATION_MS};
use crate::flags::{self, FlagDefinition, FlagKey, FlagType};
use crate::signin;
use crate::signin::LoginRequest;
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantId, TenantName};
use crate::testing::{FaultyPlatform, TestPlatform};
use crate::tokens::master_key::MASTER_KEY_SECRET;
use crate::users;

const PASSWORD: &str = "correct horse battery staple";

/// A warm edge: an app-wide key, a tenant with 5 flags, one with 100, a signed-in owner.
struct Edge {
    p: FaultyPlatform,
    key: String,
    five: TenantId,
    hundred: TenantId,
    token: String,
}

fn op() -> Actor {
    Actor::operator("op-1")
}

/// Provisions `domain` with the app enabled and `flags` boolean flags; returns the tenant and
/// the owner's invitation token.
async fn tenant(p: &FaultyPlatform, domain: &str, app: &str, flags: usize) -> (TenantId, String) {
    let req = ProvisionTenant {
        name: TenantName::parse(&format!("{domain} Inc")).unwrap(),
        domain: TenantDomain::parse(domain).unwrap(),
        plan: Plan::parse("free").unwrap(),
        owner_email: Email::parse(&format!("owner@{domain}.test")).unwrap(),
        apps: vec![app.to_owned()],
    };
    let out = tenants::provision(
        p,
        &op(),
        req,
        None,
        "r",
        &crate::http::links_under("https://e.test"),
    )
    .await
    .unwrap()
    .provisioned;
    let rules = json!([{"conditions": [{"attribute": "country", "op": "in", "values": ["DE", "FR"]}], "value": false}]);
    for i in 0..flags {
        let def = FlagDefinition::new(
            FlagType::Boolean,
            json!(true),
            true,
            None,
            serde_json::from_value(rules.clone()).unwrap(),
        )
        .unwrap();
        let key = FlagKey::parse(&format!("flag_{i:03}")).unwrap();
        flags::set_flag(p, &op(), &out.tenant.id, &key, &def, "r")
            .await
            .unwrap();
    }
    let invitation = out.invitation_link.split_once("token=").unwrap().1;
    (out.tenant.id, invitation.to_owned())
}

async fn warm_edge() -> Edge {
    let inner = TestPlatform::new().await;
    inner.secrets.set("EDGEPLANE_ENV", "development");
    inner
        .secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([3u8; 32]));
    let p = FaultyPlatform::over(inner);
    let app = apps::register(
        &p,
        &op(),
        RegisterApp {
            name: AppName::parse("CRM").unwrap(),
            redirect_uris: vec![],
            allowed_origins: vec![AllowedOrigin::parse("https://crm.example").unwrap()],
        },
        "r",
    )
    .await
    .unwrap();
    let issued = apps::issue_key(
        &p,
        &op(),
        &app.id,
        IssueKey {
            scopes: ScopeSet::parse(&["flags:read", "token:introspect"]).unwrap(),
            tenant_id: None,
            expires_at: None,
            kind: KeyKind::Server,
            name: None,
        },
        "r",
    )
    .await
    .unwrap();
    let (five, invitation) = tenant(&p, "five", app.id.as_str(), 5).await;
    let (hundred, _) = tenant(&p, "hundred", app.id.as_str(), 100).await;
    users::accept_invitation(&p, &invitation, PASSWORD, "r")
        .await
        .unwrap();
    let login = LoginRequest {
        tenant: TenantDomain::parse("five").unwrap(),
        email: Email::parse("owner@five.test").unwrap(),
        password: PASSWORD.into(),
        client: Some("203.0.113.9".into()),
        context: Default::default(),
    };
    let token = signin::login(&p, &login, "r").await.unwrap().access_token;
    Edge {
        p,
        key: issued.secret,
        five,
        hundred,
        token,
    }
}

/// Every hot route, as a managed app or a token verifier calls it: a name and a request.
fn hot_routes(e: &Edge) -> Vec<(&'static str, Request)> {
    let bearer = format!("Bearer {}", e.key);
    let ofrep = |tenant: &TenantId| {
        let body = json!({"context": {"targetingKey": "user-1", "tenantId": tenant.as_str(), "country": "DE"}});
        ::http::Request::post("/ofrep/v1/evaluate/flags")
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    };
    let get = |uri: &str| ::http::Request::get(uri).body(Vec::new()).unwrap();
    vec![
        ("GET /health", get("/health")),
        ("GET /.well-known/jwks.json", get("/.well-known/jwks.json")),
        (
            "GET /.well-known/openid-configuration",
            get("/.well-known/openid-configuration"),
        ),
        ("OFREP bulk, 5 flags", ofrep(&e.five)),
        ("OFREP bulk, 100 flags", ofrep(&e.hundred)),
        (
            "GET /v1/flags",
            ::http::Request::get(format!("/v1/flags?tenant={}", e.five))
                .header("authorization", &bearer)
                .body(Vec::new())
                .unwrap(),
        ),
        (
            "POST /oauth/introspect",
            ::http::Request::post("/oauth/introspect")
                .header("authorization", &bearer)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={}", e.token).into_bytes())
                .unwrap(),
        ),
    ]
}

fn body(resp: &Response) -> Value {
    serde_json::from_slice(resp.body()).unwrap_or(Value::Null)
}

/// Serves every hot route once, checking each answered as a live app expects.
async fn serve_all(e: &Edge) -> Vec<(&'static str, Response)> {
    let mut out = Vec::new();
    for (name, req) in hot_routes(e) {
        let resp = handle(&e.p, req).await;
        assert_eq!(resp.status(), 200, "{name}: {}", body(&resp));
        out.push((name, resp));
    }
    out
}

#[test]
fn nfr_perf_001_warm_hot_paths_make_no_storage_call() {
    block_on(async {
        let e = warm_edge().await;
        // The set-up's changes settled long ago; the isolate warms up once.
        e.p.inner.clock.advance(PROPAGATION_MS);
        for (name, resp) in serve_all(&e).await {
            if name.starts_with("OFREP") {
                assert_eq!(
                    body(&resp)["flags"][0]["value"],
                    false,
                    "{name}: rules applied"
                );
            }
            if name == "POST /oauth/introspect" {
                assert_eq!(body(&resp)["active"], true);
            }
        }
        e.p.take_storage_calls();
        e.p.kv.read_keys.take();
        for round in 0..3 {
            for (name, req) in hot_routes(&e) {
                let resp = handle(&e.p, req).await;
                assert_eq!(resp.status(), 200, "{name}");
                assert_eq!(e.p.take_storage_calls(), 0, "{name}, warm round {round}");
            }
            e.p.inner.clock.advance(FRESHNESS_MS / 4);
        }
        // A second on: the isolate reads the change epoch once, whatever it serves, and keeps
        // everything else it holds.
        e.p.inner.clock.advance(FRESHNESS_MS);
        serve_all(&e).await;
        serve_all(&e).await;
        assert_eq!(e.p.kv.read_keys.take(), vec![edge::EPOCH_KEY]);
        assert_eq!(e.p.take_storage_calls(), 1);
    });
}

/// Where nothing is held between requests (Spin: an instance per request), a hot route reads
/// the key's record and then everything else it needs in one batched call to the store.
#[test]
fn nfr_perf_001_a_fresh_instance_reads_a_hot_route_s_values_in_two_calls() {
    block_on(async {
        let e = warm_edge().await;
        e.p.inner.clock.advance(PROPAGATION_MS);
        // The KV copies exist (the first requests rebuilt what was missing).
        let warm = serve_all(&e).await;
        e.p.take_storage_calls();
        let expected = [
            ("GET /health", 0, 0),
            ("GET /.well-known/jwks.json", 1, 0),
            ("GET /.well-known/openid-configuration", 0, 0),
            // The key record; then the app marker, the named tenant's marker and its snapshot.
            ("OFREP bulk, 5 flags", 2, 1),
            ("OFREP bulk, 100 flags", 2, 1),
            ("GET /v1/flags", 2, 1),
            // The key record; then the app marker, the key set, and the session, user and
            // tenant markers the token names.
            ("POST /oauth/introspect", 2, 1),
        ];
        for ((name, req), (expected_name, reads, batched)) in
            hot_routes(&e).into_iter().zip(expected)
        {
            assert_eq!(name, expected_name);
            edge::clear_isolate();
            crate::tokens::verified::clear_isolate();
            e.p.kv.batched_reads.set(0);
            let resp = handle(&e.p, req).await;
            assert_eq!(resp.status(), 200, "{name}: {}", body(&resp));
            let warm_body = &warm.iter().find(|(n, _)| *n == name).unwrap().1;
            if name != "POST /oauth/introspect" {
                assert_eq!(resp.body(), warm_body.body(), "{name}: the same answer");
            } else {
                assert_eq!(body(&resp)["active"], true);
            }
            assert_eq!(e.p.kv.batched_reads.get(), batched, "{name}: batched reads");
            assert_eq!(e.p.take_storage_calls(), reads, "{name}: storage calls");
        }
    });
}

#[test]
fn nfr_perf_001_a_change_elsewhere_reaches_a_warm_isolate_within_a_second() {
    block_on(async {
        let e = warm_edge().await;
        e.p.inner.clock.advance(PROPAGATION_MS);
        serve_all(&e).await;
        // Another isolate of the location suspends the tenant of the signed-in owner.
        edge::in_other_isolate(async {
            tenants::suspend(&e.p, &op(), &e.five, None, "r")
                .await
                .unwrap();
        })
        .await;
        let introspect = || {
            let (_, req) = hot_routes(&e).pop().unwrap();
            handle(&e.p, req)
        };
        e.p.inner.clock.advance(FRESHNESS_MS - 1);
        let held = introspect().await;
        assert_eq!(body(&held)["active"], true, "held within the bound");
        e.p.inner.clock.advance(1);
        let seen = introspect().await;
        assert_eq!(body(&seen)["active"], false, "not a moment past it");
    });
}

/// NFR-MON-001: on the edge (the Workers runtime, which vouches for `CF-Connecting-IP`) an API
/// key's client addresses are gathered in the isolate's memory, with no storage call on the hot
/// paths, and written as keyed hashes by the request metrics' flush, each once.
#[test]
fn nfr_mon_001_key_addresses_cost_the_hot_paths_no_storage_call() {
    use crate::ports::{Clock, Sql};
    block_on(async {
        let e = warm_edge().await;
        e.p.inner.runtime.set("workers");
        e.p.inner.clock.advance(PROPAGATION_MS);
        serve_all(&e).await;
        e.p.take_storage_calls();
        for round in 0..2 {
            for i in 0..20 {
                for (name, mut req) in hot_routes(&e) {
                    let addr = format!("198.51.100.{i}").parse().unwrap();
                    req.headers_mut().insert("cf-connecting-ip", addr);
                    let resp = handle(&e.p, req).await;
                    assert_eq!(resp.status(), 200, "{name}");
                    assert_eq!(e.p.take_storage_calls(), 0, "{name}, round {round}");
                }
            }
        }
        assert!(crate::anomalies::key_uses_pending());
        let now = e.p.inner.clock.now_ms();
        crate::metrics::flush(&e.p, now).await.unwrap();
        let rows =
            e.p.inner
                .sql
                .query(crate::ports::Stmt::new(
                    "SELECT subject, addr_hash FROM anomaly_addresses WHERE subject LIKE 'key:%'",
                ))
                .await
                .unwrap();
        assert_eq!(rows.len(), 20, "one row per distinct address");
        for r in &rows {
            assert!(!r.text("addr_hash").unwrap().contains("198.51.100."));
        }
        // Written once: a second flush has nothing of them to write.
        assert!(!crate::anomalies::key_uses_pending());
    });
}
