//! Managed app and API key tests on real SQLite with the real migration (TestPlatform), through
//! a wrapper that counts SQL statements and can fail KV writes on cue.

use futures_executor::block_on;
use serde_json::Value as Json;

use super::secret::{Pepper, PEPPER_SECRET};
use super::*;
use crate::apps;
use crate::audit::Actor;
use crate::crypto;
use crate::ports::{Kv, Row, Sql, Stmt};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantId, TenantName};
use crate::testing::{FaultyPlatform, TestPlatform, START_MS};

const HOUR_MS: i64 = 60 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// A platform that counts SQL statements and can fail KV writes
// ---------------------------------------------------------------------------------------------

/// The fault-injecting platform, in development (the development pepper) unless a test says
/// otherwise.
type Wrapped = FaultyPlatform;

async fn wrapped() -> Wrapped {
    let inner = TestPlatform::new().await;
    inner.secrets.set("EDGEPLANE_ENV", "development");
    FaultyPlatform::over(inner)
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn op() -> Actor {
    Actor::operator("op-1")
}

fn registration(name: &str) -> RegisterApp {
    RegisterApp {
        name: AppName::parse(name).unwrap(),
        redirect_uris: vec![RedirectUri::parse("https://crm.example/cb").unwrap()],
        allowed_origins: vec![AllowedOrigin::parse("https://crm.example").unwrap()],
    }
}

async fn register(p: &Wrapped, name: &str) -> App {
    apps::register(p, &op(), registration(name), "req-reg")
        .await
        .unwrap()
}

/// A tenant with `apps` enabled at provisioning.
async fn tenant(p: &Wrapped, domain: &str, apps: &[&AppId]) -> TenantId {
    let req = ProvisionTenant {
        name: TenantName::parse(domain).unwrap(),
        domain: TenantDomain::parse(domain).unwrap(),
        plan: Plan::parse("free").unwrap(),
        owner_email: Email::parse(&format!("owner@{domain}.test")).unwrap(),
        apps: apps.iter().map(|a| a.as_str().to_owned()).collect(),
    };
    tenants::provision(
        p,
        &op(),
        req,
        None,
        "req-prov",
        &crate::http::links_under("https://edgeplane.test"),
    )
    .await
    .unwrap()
    .provisioned
    .tenant
    .id
}

fn scopes(names: &[&str]) -> ScopeSet {
    ScopeSet::parse(names).unwrap()
}

fn server_key(names: &[&str], tenant_id: Option<&TenantId>) -> IssueKey {
    IssueKey {
        scopes: scopes(names),
        tenant_id: tenant_id.cloned(),
        expires_at: None,
        kind: KeyKind::Server,
        name: None,
    }
}

async fn issue(p: &Wrapped, app: &AppId, req: IssueKey) -> IssuedKey {
    apps::issue_key(p, &op(), app, req, "req-key")
        .await
        .unwrap()
}

async fn auth(p: &Wrapped, key: &str, scope: Scope) -> Result<AppKeyPrincipal, AppKeyError> {
    authenticate_app_key(p, key, scope).await
}

/// Disables an app as an operator.
async fn disable_app(p: &Wrapped, id: &AppId) {
    let off = UpdateApp {
        status: Some(AppStatus::Disabled),
        ..UpdateApp::default()
    };
    apps::update(p, &op(), id, off, "r").await.unwrap();
}

async fn rows<S: Sql>(sql: &S, stmt: &'static str) -> Vec<Row> {
    sql.query(Stmt::new(stmt)).await.unwrap()
}

/// Every outbox row's (action, outcome), in order.
async fn audit_trail(p: &Wrapped) -> Vec<(String, String)> {
    rows(
        &p.inner.sql,
        "SELECT action, outcome FROM audit_outbox ORDER BY seq",
    )
    .await
    .iter()
    .map(|r| (r.text("action").unwrap(), r.text("outcome").unwrap()))
    .collect()
}

/// The last outbox row with this action.
async fn last_audit(p: &Wrapped, action: &str) -> Row {
    let all = rows(&p.inner.sql, "SELECT * FROM audit_outbox ORDER BY seq").await;
    all.into_iter()
        .rev()
        .find(|r| r.text("action").unwrap() == action)
        .unwrap_or_else(|| panic!("no {action} audit row"))
}

fn meta(row: &Row) -> Json {
    serde_json::from_str(&row.text("metadata").unwrap()).unwrap()
}

/// Every text in the database and KV, to search for leaked secrets.
async fn everything_stored(p: &Wrapped) -> String {
    let mut all = String::new();
    for table in ["apps", "api_keys", "tenant_apps", "audit_outbox"] {
        let stmt = match table {
            "apps" => "SELECT * FROM apps WHERE id <> 'edgeplane-console'",
            "api_keys" => "SELECT * FROM api_keys",
            "tenant_apps" => "SELECT * FROM tenant_apps",
            _ => "SELECT * FROM audit_outbox",
        };
        for r in rows(&p.inner.sql, stmt).await {
            all.push_str(&format!("{:?}\n", r.0));
        }
    }
    for k in p.inner.kv.keys() {
        let v = p.inner.kv.get(&k, None).await.unwrap().unwrap();
        all.push_str(&format!("{k}={}\n", String::from_utf8_lossy(&v)));
    }
    all.push_str(&p.inner.logger.lines().join("\n"));
    all
}

// ---------------------------------------------------------------------------------------------
// Registration, reading, updating (FR-SYS-001, FR-SYS-003)
// ---------------------------------------------------------------------------------------------

/// FR-SYS-001, FR-LOG-003: registration generates a UUID, stores the app active and owned by
/// the operator, and audits app.create in the same batch.
#[test]
fn fr_sys_001_register_generates_a_unique_id_and_audits() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        assert!(crate::ids::is_uuid(app.id.as_str()));
        assert_eq!(app.status, AppStatus::Active);
        assert_eq!(app.owner_id, "op-1");
        assert_eq!((app.created_at, app.version), (START_MS, 1));
        assert_eq!(app.redirect_uris[0].as_str(), "https://crm.example/cb");
        assert_eq!(apps::get(&p, &app.id).await.unwrap(), app);
        let other = register(&p, "Billing").await;
        assert_ne!(other.id, app.id);

        let row = last_audit(&p, "app.create").await;
        assert_eq!(row.text("resource").unwrap(), format!("app:{}", other.id));
        assert_eq!(row.text("actor_id").unwrap(), "op-1");
        assert_eq!(row.text("outcome").unwrap(), "success");
        assert_eq!(row.text("request_id").unwrap(), "req-reg");
        assert_eq!(meta(&row)["name"], "Billing");
        assert_eq!(meta(&row)["redirect_uris"][0], "https://crm.example/cb");

        let unknown = AppId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        assert_eq!(
            apps::get(&p, &unknown).await.unwrap_err().code(),
            "app_not_found"
        );
    });
}

/// FR-SYS-001: names are unique case-insensitively; the refusal changes nothing but its audit
/// record, also when the name is taken between the check and the write.
#[test]
fn fr_sys_001_duplicate_name_is_refused_and_audited() {
    block_on(async {
        let p = wrapped().await;
        register(&p, "CRM").await;
        let e = apps::register(&p, &op(), registration("crm"), "req-dup")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_name_taken");
        assert_eq!(
            rows(
                &p.inner.sql,
                "SELECT id FROM apps WHERE id <> 'edgeplane-console'"
            )
            .await
            .len(),
            1
        );
        assert_eq!(
            audit_trail(&p).await.last().unwrap(),
            &("app.create".to_owned(), "failure".to_owned())
        );

        // A concurrent registration takes the name just before our batch.
        *p.sql.before_batch.borrow_mut() = Some(
            "INSERT INTO apps (id, name, owner_id, created_at, updated_at)
             VALUES ('x', 'Racer', 'op-2', 0, 0)"
                .into(),
        );
        let e = apps::register(&p, &op(), registration("racer"), "req-race")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_name_taken");
    });
}

/// Apps list newest first, filter by status and page without gaps or repeats.
#[test]
fn apps_list_pages_and_filters() {
    block_on(async {
        let p = wrapped().await;
        let mut ids = Vec::new();
        for i in 0..7 {
            ids.push(register(&p, &format!("App {i}")).await.id);
            p.inner.clock.advance(1);
        }
        ids.reverse();
        disable_app(&p, &ids[1]).await;
        let mut seen = Vec::new();
        let mut req = ListApps {
            limit: Some(3),
            ..ListApps::default()
        };
        loop {
            let page = apps::list(&p, &req).await.unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.into_iter().map(|a| a.id));
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let only = apps::list(
            &p,
            &ListApps {
                status: Some(AppStatus::Disabled),
                ..ListApps::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(only.items.len(), 1);
        assert_eq!(only.items[0].id, ids[1]);
        for (bad, code) in [
            (
                ListApps {
                    limit: Some(0),
                    ..ListApps::default()
                },
                "invalid_limit",
            ),
            (
                ListApps {
                    cursor: Some("nope".into()),
                    ..ListApps::default()
                },
                "invalid_cursor",
            ),
        ] {
            assert_eq!(apps::list(&p, &bad).await.unwrap_err().code(), code);
        }
    });
}

/// FR-SYS-003: configuration changes are written with the old and new values audited; a
/// request changing nothing writes nothing; a taken name is refused and audited.
#[test]
fn fr_sys_003_update_changes_configuration_and_audits_it() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        register(&p, "Billing").await;
        p.inner.clock.advance(5);
        let change = UpdateApp {
            name: Some(AppName::parse("CRM Suite").unwrap()),
            redirect_uris: Some(vec![]),
            allowed_origins: Some(vec![
                AllowedOrigin::parse("https://crm.example").unwrap(),
                AllowedOrigin::parse("http://localhost:3000").unwrap(),
            ]),
            status: None,
        };
        let out = apps::update(&p, &op(), &app.id, change.clone(), "req-up")
            .await
            .unwrap();
        assert!(out.changed);
        assert_eq!(out.edge, EdgeSync::Synced);
        assert_eq!(out.app.name.as_str(), "CRM Suite");
        assert!(out.app.redirect_uris.is_empty());
        assert_eq!(out.app.allowed_origins.len(), 2);
        assert_eq!((out.app.version, out.app.updated_at), (2, START_MS + 5));
        assert_eq!(apps::get(&p, &app.id).await.unwrap(), out.app);
        let row = last_audit(&p, "app.update").await;
        let m = meta(&row);
        assert_eq!(m["changes"]["name"]["old"], "CRM");
        assert_eq!(m["changes"]["name"]["new"], "CRM Suite");
        assert_eq!(
            m["changes"]["redirect_uris"]["old"][0],
            "https://crm.example/cb"
        );
        assert!(m["changes"].get("allowed_origins").is_some());

        // The same request again: nothing to do, nothing audited.
        let before = audit_trail(&p).await.len();
        let again = apps::update(&p, &op(), &app.id, change, "r").await.unwrap();
        assert!(!again.changed);
        assert_eq!(again.app.version, 2);
        assert_eq!(audit_trail(&p).await.len(), before);

        // A case-only rename of itself is fine; another app's name is not.
        let recase = UpdateApp {
            name: Some(AppName::parse("crm suite").unwrap()),
            ..UpdateApp::default()
        };
        assert!(
            apps::update(&p, &op(), &app.id, recase, "r")
                .await
                .unwrap()
                .changed
        );
        let taken = UpdateApp {
            name: Some(AppName::parse("billing").unwrap()),
            ..UpdateApp::default()
        };
        let e = apps::update(&p, &op(), &app.id, taken, "req-taken")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_name_taken");
        assert_eq!(
            audit_trail(&p).await.last().unwrap(),
            &("app.update".to_owned(), "failure".to_owned())
        );
        let unknown = AppId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let e = apps::update(&p, &op(), &unknown, UpdateApp::default(), "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_not_found");
    });
}

/// A lost optimistic-concurrency race is retried and leaves exactly one audit row.
#[test]
fn fr_sys_003_update_retries_a_lost_race() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        *p.sql.before_batch.borrow_mut() = Some(format!(
            "UPDATE apps SET version = version + 1, allowed_origins = '[]' WHERE id = '{}'",
            app.id
        ));
        let change = UpdateApp {
            name: Some(AppName::parse("CRM 2").unwrap()),
            ..UpdateApp::default()
        };
        let out = apps::update(&p, &op(), &app.id, change, "r").await.unwrap();
        assert_eq!(out.app.version, 3);
        assert!(
            out.app.allowed_origins.is_empty(),
            "the re-read saw the concurrent change"
        );
        let updates = audit_trail(&p)
            .await
            .into_iter()
            .filter(|(a, _)| a == "app.update")
            .count();
        assert_eq!(updates, 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Issuing keys (FR-SYS-002)
// ---------------------------------------------------------------------------------------------

/// FR-SYS-002: the key carries its id and a 32-byte secret, is returned once, and only its
/// HMAC-SHA256 under the pepper is stored; nothing else holds the secret or the hash except the
/// KV record (the hash).
#[test]
fn fr_sys_002_issue_returns_the_secret_once_and_stores_only_a_keyed_hash() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let t = tenant(&p, "acme", &[&app.id]).await;
        let req = IssueKey {
            name: Some(KeyName::parse("flags reader").unwrap()),
            expires_at: Some(START_MS + 24 * HOUR_MS),
            ..server_key(&["log:write", "flags:read", "flags:read"], Some(&t))
        };
        let issued = apps::issue_key(&p, &op(), &app.id, req, "req-key")
            .await
            .unwrap();
        assert!(issued.cached);
        let key = &issued.key;
        assert_eq!(key.scopes.names(), ["flags:read", "log:write"]);
        assert_eq!(key.prefix, format!("ep_dev_{}", key.id));
        assert!(issued.secret.starts_with(&format!("{}_", key.prefix)));
        let secret_part = &issued.secret[key.prefix.len() + 1..];
        assert_eq!(crypto::b64url_decode(secret_part).unwrap().len(), 32);
        assert!(
            !format!("{issued:?}").contains(secret_part),
            "Debug redacts the secret"
        );

        let stored = rows(&p.inner.sql, "SELECT * FROM api_keys").await;
        assert_eq!(stored.len(), 1);
        let hash = stored[0].text("key_hash").unwrap();
        let pepper = Pepper::load(&p).unwrap();
        assert_eq!(hash, pepper.hash(&issued.secret));
        assert_ne!(hash, crypto::sha256_hex(issued.secret.as_bytes()));
        assert_eq!(stored[0].text("tenant_id").unwrap(), t.as_str());
        assert_eq!(
            stored[0].text("scopes").unwrap(),
            r#"["flags:read","log:write"]"#
        );

        // The audit record names the key, never its secret or hash.
        let row = last_audit(&p, "api_key.issue").await;
        assert_eq!(row.text("tenant_id").unwrap(), t.as_str());
        let m = meta(&row);
        assert_eq!(m["key_id"], key.id.as_str());
        assert_eq!(m["scopes"], serde_json::json!(["flags:read", "log:write"]));
        assert_eq!(m["kind"], "server");
        let all = everything_stored(&p).await;
        assert!(!all.contains(secret_part), "the secret is stored nowhere");
        assert_eq!(
            all.matches(&hash).count(),
            2,
            "the hash: api_keys and its KV record"
        );

        // Listing shows the key without secret or hash.
        let page = apps::list_keys(&p, &app.id, &ListKeys::default())
            .await
            .unwrap();
        assert_eq!(page.items, vec![key.clone()]);
        let listed = serde_json::to_string(&page.items).unwrap();
        assert!(!listed.contains(secret_part) && !listed.contains(&hash));

        // And the key works.
        let who = auth(&p, &issued.secret, Scope::LogWrite).await.unwrap();
        assert_eq!(who.app_id, app.id);
        assert_eq!(who.tenant_id.as_ref(), Some(&t));
        assert_eq!(who.key_id, key.id);
    });
}

/// FR-SYS-002: every refusal of an issuance, each with its own code; none writes a key.
#[test]
fn fr_sys_002_issue_refusals() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let bare = apps::register(
            &p,
            &op(),
            RegisterApp {
                allowed_origins: vec![],
                ..registration("Bare")
            },
            "r",
        )
        .await
        .unwrap();
        let enabled = tenant(&p, "acme", &[&app.id, &bare.id]).await;
        let other = tenant(&p, "other", &[]).await;
        let unknown_tenant = TenantId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let unknown_app = AppId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let browser = |t: Option<&TenantId>, s: &[&str]| IssueKey {
            kind: KeyKind::Browser,
            ..server_key(s, t)
        };
        let cases: Vec<(&AppId, IssueKey, &str)> = vec![
            (
                &unknown_app,
                server_key(&["flags:read"], None),
                "app_not_found",
            ),
            (
                &app.id,
                IssueKey {
                    expires_at: Some(START_MS),
                    ..server_key(&["flags:read"], None)
                },
                "expiry_not_in_future",
            ),
            (
                &app.id,
                browser(None, &["flags:read"]),
                "browser_key_needs_tenant",
            ),
            (
                &app.id,
                browser(Some(&enabled), &["flags:read", "bill:write"]),
                "browser_key_scopes",
            ),
            (
                &bare.id,
                browser(Some(&enabled), &["flags:read"]),
                "browser_key_needs_origins",
            ),
            (
                &app.id,
                server_key(&["flags:read"], Some(&unknown_tenant)),
                "tenant_not_found",
            ),
            (
                &app.id,
                server_key(&["flags:read"], Some(&other)),
                "app_not_enabled_for_tenant",
            ),
        ];
        for (app_id, req, code) in cases {
            let e = apps::issue_key(&p, &op(), app_id, req, "r")
                .await
                .unwrap_err();
            assert_eq!(e.code(), code);
        }
        // A tenant pending deletion, and a disabled app: conflicts, audited.
        tenants::delete(&p, &op(), &enabled, "r").await.unwrap();
        let e = apps::issue_key(
            &p,
            &op(),
            &app.id,
            server_key(&["flags:read"], Some(&enabled)),
            "r",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "tenant_pending_deletion");
        disable_app(&p, &app.id).await;
        let e = apps::issue_key(&p, &op(), &app.id, server_key(&["flags:read"], None), "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_disabled");
        let failures: Vec<_> = audit_trail(&p)
            .await
            .into_iter()
            .filter(|(a, o)| a == "api_key.issue" && o == "failure")
            .collect();
        assert_eq!(failures.len(), 2);
        assert!(rows(&p.inner.sql, "SELECT id FROM api_keys")
            .await
            .is_empty());

        // A browser key done right.
        let ok = tenant(&p, "good", &[&bare.id]).await;
        let origins = UpdateApp {
            allowed_origins: Some(vec![AllowedOrigin::parse("https://app.example").unwrap()]),
            ..UpdateApp::default()
        };
        apps::update(&p, &op(), &bare.id, origins, "r")
            .await
            .unwrap();
        let key = issue(&p, &bare.id, browser(Some(&ok), &["flags:read"])).await;
        assert_eq!(key.key.kind, KeyKind::Browser);
        let who = auth(&p, &key.secret, Scope::FlagsRead).await.unwrap();
        assert_eq!(who.kind, KeyKind::Browser);
    });
}

/// FR-SYS-002: a deployment without API_KEY_PEPPER (or with a short one) issues no key and
/// accepts none; nothing is written.
#[test]
fn fr_sys_002_no_pepper_no_keys_in_production() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let dev_key = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        p.inner.secrets.set("EDGEPLANE_ENV", "production");
        let e = apps::issue_key(&p, &op(), &app.id, server_key(&["flags:read"], None), "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "api_key_pepper_missing");
        assert_eq!(
            auth(&p, &dev_key.secret, Scope::FlagsRead)
                .await
                .unwrap_err()
                .code(),
            "api_key_pepper_missing"
        );
        p.inner.secrets.set(PEPPER_SECRET, "too-short");
        assert!(matches!(
            apps::issue_key(&p, &op(), &app.id, server_key(&["flags:read"], None), "r").await,
            Err(IssueKeyError::NotConfigured(PepperProblem::TooShort))
        ));
        assert_eq!(rows(&p.inner.sql, "SELECT id FROM api_keys").await.len(), 1);

        // With a pepper: live keys; the development key is from another environment.
        p.inner.secrets.set(PEPPER_SECRET, &"p".repeat(40));
        let live = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        assert!(live.secret.starts_with("ep_live_"));
        assert!(auth(&p, &live.secret, Scope::FlagsRead).await.is_ok());
        assert_eq!(
            auth(&p, &dev_key.secret, Scope::FlagsRead)
                .await
                .unwrap_err(),
            AppKeyError::Invalid
        );
        // Another pepper: the stored hashes no longer verify.
        p.inner.secrets.set(PEPPER_SECRET, &"q".repeat(40));
        assert_eq!(
            auth(&p, &live.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Invalid
        );
    });
}

/// An issuance racing a disable of the app writes nothing and reports the disable.
#[test]
fn fr_sys_002_issue_racing_an_app_disable_writes_nothing() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        *p.sql.before_batch.borrow_mut() = Some(format!(
            "UPDATE apps SET status = 'disabled' WHERE id = '{}'",
            app.id
        ));
        let e = apps::issue_key(&p, &op(), &app.id, server_key(&["flags:read"], None), "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_disabled");
        assert!(rows(&p.inner.sql, "SELECT id FROM api_keys")
            .await
            .is_empty());
        assert!(!audit_trail(&p)
            .await
            .contains(&("api_key.issue".to_owned(), "success".to_owned())));
        assert!(p.inner.kv.keys().iter().all(|k| !k.starts_with("apikey:")));
    });
}

// ---------------------------------------------------------------------------------------------
// The hot path
// ---------------------------------------------------------------------------------------------

/// FR-SYS-002 hot path: a warm cache answers with no SQL statement, and from the isolate's
/// memory with no KV read either; a cold cache costs exactly one D1 read, then the record is
/// cached for an hour.
#[test]
fn fr_sys_002_authentication_reads_no_sql_on_a_warm_cache() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let t = tenant(&p, "acme", &[&app.id]).await;
        let wide = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        let bound = issue(&p, &app.id, server_key(&["bill:write"], Some(&t))).await;

        p.take_statements();
        p.kv.reads.set(0);
        for _ in 0..5 {
            auth(&p, &wide.secret, Scope::FlagsRead).await.unwrap();
        }
        assert_eq!(p.take_statements(), 0, "app-wide key, warm: no SQL");
        assert_eq!(
            p.kv.reads.replace(0),
            1,
            "the app marker once (the record is held since this isolate issued the key)"
        );
        auth(&p, &bound.secret, Scope::BillWrite).await.unwrap();
        auth(&p, &bound.secret, Scope::BillWrite).await.unwrap();
        assert_eq!(p.take_statements(), 0, "tenant-bound key, warm: no SQL");
        assert_eq!(
            p.kv.reads.replace(0),
            1,
            "the tenant marker once (its record and the app marker are held)"
        );

        // Cold: the record expired from KV.
        p.inner.clock.advance(i64::from(KEY_CACHE_TTL_SECS) * 1000);
        auth(&p, &bound.secret, Scope::BillWrite).await.unwrap();
        assert_eq!(
            p.take_statements(),
            2,
            "a miss is one D1 read and the last-use write"
        );
        let used = rows(
            &p.inner.sql,
            "SELECT id, last_used_at FROM api_keys WHERE last_used_at IS NOT NULL",
        )
        .await;
        assert_eq!(used.len(), 1, "only the key read from D1 just now");
        assert_eq!(used[0].text("id").unwrap(), bound.key.id.as_str());
        assert_eq!(
            used[0].i64("last_used_at").unwrap(),
            crate::ports::Clock::now_ms(&p.inner.clock)
        );
        auth(&p, &bound.secret, Scope::BillWrite).await.unwrap();
        assert_eq!(p.take_statements(), 0, "and is cached again");
        auth(&p, &wide.secret, Scope::FlagsRead).await.unwrap();
        assert_eq!(p.take_statements(), 2, "the other record expired too");

        // Refusals on a warm cache read no SQL either.
        assert!(auth(&p, &wide.secret, Scope::BillRead).await.is_err());
        let wrong = format!(
            "{}_{}",
            wide.key.prefix,
            crypto::random_token(&crate::testing::SeededRandom::new(9))
        );
        assert_eq!(
            auth(&p, &wrong, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Invalid
        );
        assert_eq!(p.take_statements(), 0);

        // A corrupt record is a miss, repaired by the refill (once this isolate's copy is old:
        // nothing announced this write, so only the maximum age ends the copy).
        p.inner
            .kv
            .put(&key_cache_key(&wide.key.id), b"{not json", None)
            .await
            .unwrap();
        p.inner.clock.advance(crate::edge::MAX_AGE_MS);
        auth(&p, &wide.secret, Scope::FlagsRead).await.unwrap();
        assert_eq!(p.take_statements(), 2);
        auth(&p, &wide.secret, Scope::FlagsRead).await.unwrap();
        assert_eq!(p.take_statements(), 0);
    });
}

/// FR-SYS-002: every refusal of a presented key is a distinct error, and a caller without the
/// secret cannot tell an unknown id from a known one.
#[test]
fn fr_sys_002_presented_key_refusals() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let key = issue(
            &p,
            &app.id,
            IssueKey {
                expires_at: Some(START_MS + HOUR_MS),
                ..server_key(&["flags:read"], None)
            },
        )
        .await;
        assert_eq!(
            auth(&p, "not a key", Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Malformed
        );
        assert_eq!(
            auth(&p, &"ep_dev_".repeat(30), Scope::FlagsRead)
                .await
                .unwrap_err(),
            AppKeyError::Malformed
        );
        let other_secret = crypto::random_token(&crate::testing::SeededRandom::new(7));
        let wrong_secret = format!("{}_{other_secret}", key.key.prefix);
        let unknown_id = format!("ep_dev_{}_{other_secret}", "0".repeat(32));
        let other_env = key.secret.replacen("ep_dev_", "ep_live_", 1);
        for presented in [&wrong_secret, &unknown_id, &other_env] {
            assert_eq!(
                auth(&p, presented, Scope::FlagsRead).await.unwrap_err(),
                AppKeyError::Invalid,
                "{presented}"
            );
        }
        // Revocation and expiry are only told to a holder of the secret.
        assert_eq!(
            auth(&p, &key.secret, Scope::TokenIntrospect)
                .await
                .unwrap_err(),
            AppKeyError::MissingScope {
                required: Scope::TokenIntrospect
            }
        );
        p.inner.clock.advance(HOUR_MS);
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Expired
        );
        assert_eq!(
            auth(&p, &wrong_secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Invalid
        );
        let codes: std::collections::BTreeSet<&str> = [
            AppKeyError::Malformed,
            AppKeyError::Invalid,
            AppKeyError::Revoked,
            AppKeyError::Expired,
            AppKeyError::AppDisabled,
            AppKeyError::AppNotEnabledForTenant,
            AppKeyError::TenantSuspended,
            AppKeyError::TenantDeleted,
            AppKeyError::MissingScope {
                required: Scope::FlagsRead,
            },
            AppKeyError::NotConfigured(PepperProblem::Missing),
            AppKeyError::Unavailable(String::new()),
        ]
        .iter()
        .map(AppKeyError::code)
        .collect();
        assert_eq!(codes.len(), 11, "every refusal has its own code");
    });
}

// ---------------------------------------------------------------------------------------------
// Revocation, disabling, tenant links
// ---------------------------------------------------------------------------------------------

/// FR-SYS-002: a revoked key is refused at once, from the rewritten KV record (no SQL);
/// revoking again changes nothing; the revocation is audited once.
#[test]
fn fr_sys_002_revoke_refuses_the_key_at_once() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let key = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        let keep = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        auth(&p, &key.secret, Scope::FlagsRead).await.unwrap();
        p.inner.clock.advance(10);
        let out = apps::revoke_key(&p, &op(), &app.id, &key.key.id, "req-rev")
            .await
            .unwrap();
        assert!(out.changed);
        assert_eq!(out.edge, EdgeSync::Synced);
        assert_eq!(out.key.revoked_at, Some(START_MS + 10));
        assert_eq!(out.key.status(START_MS + 10), KeyStatus::Revoked);
        p.take_statements();
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Revoked
        );
        assert_eq!(p.take_statements(), 0, "refused from KV");
        auth(&p, &keep.secret, Scope::FlagsRead).await.unwrap();

        let again = apps::revoke_key(&p, &op(), &app.id, &key.key.id, "r")
            .await
            .unwrap();
        assert!(!again.changed);
        assert_eq!(again.key.revoked_at, Some(START_MS + 10));
        let revokes: Vec<_> = audit_trail(&p)
            .await
            .into_iter()
            .filter(|(a, _)| a == "api_key.revoke")
            .collect();
        assert_eq!(revokes.len(), 1);
        let m = meta(&last_audit(&p, "api_key.revoke").await);
        assert_eq!(m["key_id"], key.key.id.as_str());

        // After the record's TTL the refusal comes from D1, and is cached again.
        p.inner.clock.advance(i64::from(KEY_CACHE_TTL_SECS) * 1000);
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Revoked
        );

        // Another app's key, or an unknown one: not found.
        let other = register(&p, "Other").await;
        let e = apps::revoke_key(&p, &op(), &other.id, &keep.key.id, "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "key_not_found");
        let unknown = AppId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let e = apps::revoke_key(&p, &op(), &unknown, &keep.key.id, "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_not_found");
    });
}

/// FR-SYS-002: a revocation whose KV write failed says so, and a repeat repairs the record.
#[test]
fn fr_sys_002_failed_revocation_cache_write_is_reported_and_repaired() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let key = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        p.kv.fail.set(true);
        let out = apps::revoke_key(&p, &op(), &app.id, &key.key.id, "r")
            .await
            .unwrap();
        assert!(out.changed);
        assert!(matches!(out.edge, EdgeSync::Pending { .. }));
        // The stale record still admits the key: this is what the 503 tells the operator.
        assert!(auth(&p, &key.secret, Scope::FlagsRead).await.is_ok());
        p.kv.fail.set(false);
        let again = apps::revoke_key(&p, &op(), &app.id, &key.key.id, "r")
            .await
            .unwrap();
        assert!(!again.changed);
        assert_eq!(again.edge, EdgeSync::Synced);
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Revoked
        );
    });
}

/// FR-SYS-003: disabling an app refuses every one of its keys at once (one KV marker, no key
/// record touched, no SQL on the hot path); enabling it accepts them again; both audited.
#[test]
fn fr_sys_003_disabling_an_app_refuses_every_key_at_once() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let other = register(&p, "Other").await;
        let t = tenant(&p, "acme", &[&app.id]).await;
        let keys = [
            issue(&p, &app.id, server_key(&["flags:read"], None)).await,
            issue(&p, &app.id, server_key(&["flags:read"], Some(&t))).await,
            issue(&p, &app.id, server_key(&["flags:read", "bill:write"], None)).await,
        ];
        let bystander = issue(&p, &other.id, server_key(&["flags:read"], None)).await;
        for k in &keys {
            auth(&p, &k.secret, Scope::FlagsRead).await.unwrap();
        }
        let disable = UpdateApp {
            status: Some(AppStatus::Disabled),
            ..UpdateApp::default()
        };
        let out = apps::update(&p, &op(), &app.id, disable.clone(), "req-dis")
            .await
            .unwrap();
        assert!(out.changed);
        assert_eq!(out.app.status, AppStatus::Disabled);
        assert_eq!(out.edge, EdgeSync::Synced);
        assert_eq!(
            p.inner
                .kv
                .get(&app_marker_key(&app.id), None)
                .await
                .unwrap(),
            Some(b"disabled".to_vec())
        );
        p.take_statements();
        for k in &keys {
            assert_eq!(
                auth(&p, &k.secret, Scope::FlagsRead).await.unwrap_err(),
                AppKeyError::AppDisabled
            );
        }
        assert_eq!(p.take_statements(), 0);
        auth(&p, &bystander.secret, Scope::FlagsRead).await.unwrap();
        let row = last_audit(&p, "app.disable").await;
        assert_eq!(meta(&row)["new_status"], "disabled");
        assert_eq!(row.text("request_id").unwrap(), "req-dis");

        // Repeating it changes nothing and rewrites the marker (repairing a lost write).
        p.inner.kv.delete(&app_marker_key(&app.id)).await.unwrap();
        let again = apps::update(&p, &op(), &app.id, disable, "r")
            .await
            .unwrap();
        assert!(!again.changed);
        assert!(p
            .inner
            .kv
            .get(&app_marker_key(&app.id), None)
            .await
            .unwrap()
            .is_some());

        let enable = UpdateApp {
            status: Some(AppStatus::Active),
            ..UpdateApp::default()
        };
        apps::update(&p, &op(), &app.id, enable, "r").await.unwrap();
        assert!(p
            .inner
            .kv
            .get(&app_marker_key(&app.id), None)
            .await
            .unwrap()
            .is_none());
        for k in &keys {
            auth(&p, &k.secret, Scope::FlagsRead).await.unwrap();
        }
        let trail = audit_trail(&p).await;
        assert_eq!(trail.iter().filter(|(a, _)| a == "app.disable").count(), 1);
        assert_eq!(trail.iter().filter(|(a, _)| a == "app.enable").count(), 1);
    });
}

/// FR-SYS-003: a failed marker write is reported as pending, and the repeat syncs it.
#[test]
fn fr_sys_003_failed_marker_write_is_reported() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        p.kv.fail.set(true);
        let disable = UpdateApp {
            status: Some(AppStatus::Disabled),
            ..UpdateApp::default()
        };
        let out = apps::update(&p, &op(), &app.id, disable.clone(), "r")
            .await
            .unwrap();
        assert!(out.changed && matches!(out.edge, EdgeSync::Pending { .. }));
        p.kv.fail.set(false);
        let again = apps::update(&p, &op(), &app.id, disable, "r")
            .await
            .unwrap();
        assert_eq!((again.changed, again.edge), (false, EdgeSync::Synced));
    });
}

/// A tenant-bound key follows its tenant's edge marker (FR-OPS-001, FR-OPS-002); app-wide keys
/// do not.
#[test]
fn tenant_bound_keys_follow_the_tenant_status() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let t = tenant(&p, "acme", &[&app.id]).await;
        let bound = issue(&p, &app.id, server_key(&["flags:read"], Some(&t))).await;
        let wide = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        tenants::suspend(&p, &op(), &t, None, "r").await.unwrap();
        assert_eq!(
            auth(&p, &bound.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::TenantSuspended
        );
        auth(&p, &wide.secret, Scope::FlagsRead).await.unwrap();
        tenants::activate(&p, &op(), &t, "r").await.unwrap();
        auth(&p, &bound.secret, Scope::FlagsRead).await.unwrap();
        tenants::delete(&p, &op(), &t, "r").await.unwrap();
        assert_eq!(
            auth(&p, &bound.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::TenantDeleted
        );
    });
}

/// Enabling and disabling an app for a tenant: audited, idempotent, and a disabled link refuses
/// the app's keys bound to that tenant at once (their KV records are rewritten).
#[test]
fn tenant_app_links_enable_disable_and_refuse_bound_keys() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let t = tenant(&p, "acme", &[]).await;
        let u = tenant(&p, "umbrella", &[&app.id]).await;
        let e = apps::issue_key(
            &p,
            &op(),
            &app.id,
            server_key(&["flags:read"], Some(&t)),
            "r",
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "app_not_enabled_for_tenant");

        let on = apps::enable_for_tenant(&p, &op(), &t, &app.id, "req-on")
            .await
            .unwrap();
        assert!(on.changed && on.link.enabled);
        assert_eq!(on.edge, EdgeSync::Synced);
        let row = last_audit(&p, "tenant_app.enable").await;
        assert_eq!(row.text("tenant_id").unwrap(), t.as_str());
        assert_eq!(
            row.text("resource").unwrap(),
            format!("tenant_app:{t}:{}", app.id)
        );
        let again = apps::enable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap();
        assert!(!again.changed);

        let key = issue(&p, &app.id, server_key(&["flags:read"], Some(&t))).await;
        let other = issue(&p, &app.id, server_key(&["flags:read"], Some(&u))).await;
        auth(&p, &key.secret, Scope::FlagsRead).await.unwrap();

        let off = apps::disable_for_tenant(&p, &op(), &t, &app.id, "req-off")
            .await
            .unwrap();
        assert!(off.changed && !off.link.enabled);
        p.take_statements();
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::AppNotEnabledForTenant
        );
        assert_eq!(
            p.take_statements(),
            0,
            "refused from the rewritten KV record"
        );
        auth(&p, &other.secret, Scope::FlagsRead).await.unwrap();
        let twice = apps::disable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap();
        assert!(!twice.changed);
        // After the TTL the refusal comes from D1 too.
        p.inner.clock.advance(i64::from(KEY_CACHE_TTL_SECS) * 1000);
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::AppNotEnabledForTenant
        );
        apps::enable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap();
        auth(&p, &key.secret, Scope::FlagsRead).await.unwrap();

        let trail = audit_trail(&p).await;
        assert_eq!(
            trail
                .iter()
                .filter(|(a, _)| a == "tenant_app.enable")
                .count(),
            2
        );
        assert_eq!(
            trail
                .iter()
                .filter(|(a, _)| a == "tenant_app.disable")
                .count(),
            1
        );
    });
}

/// The refusals of tenant links: unknown ids are not found, a purged tenant is gone, a tenant
/// pending deletion or a disabled app conflicts (audited), a link never made is not found.
#[test]
fn tenant_app_link_refusals() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let t = tenant(&p, "acme", &[]).await;
        let unknown_t = TenantId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let unknown_a = AppId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let code = |r: Result<TenantAppChange, EnableTenantAppError>| r.unwrap_err().code();
        assert_eq!(
            code(apps::enable_for_tenant(&p, &op(), &unknown_t, &app.id, "r").await),
            "tenant_not_found"
        );
        assert_eq!(
            code(apps::enable_for_tenant(&p, &op(), &t, &unknown_a, "r").await),
            "app_not_found"
        );
        let e = apps::disable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_not_linked");

        let disabled = register(&p, "Old").await;
        disable_app(&p, &disabled.id).await;
        assert_eq!(
            code(apps::enable_for_tenant(&p, &op(), &t, &disabled.id, "r").await),
            "app_disabled"
        );
        tenants::delete(&p, &op(), &t, "r").await.unwrap();
        assert_eq!(
            code(apps::enable_for_tenant(&p, &op(), &t, &app.id, "r").await),
            "tenant_pending_deletion"
        );
        let failures = audit_trail(&p)
            .await
            .into_iter()
            .filter(|(a, o)| a == "tenant_app.enable" && o == "failure")
            .count();
        assert_eq!(failures, 2);
        p.inner
            .sql
            .exec_raw(&format!(
                "UPDATE tenants SET status = 'deleted', domain = NULL WHERE id = '{t}'"
            ))
            .unwrap();
        assert_eq!(
            code(apps::enable_for_tenant(&p, &op(), &t, &app.id, "r").await),
            "tenant_gone"
        );
        let e = apps::disable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "tenant_gone");
    });
}

/// Keys list newest first, page by cursor, and only the app's own keys.
#[test]
fn keys_list_pages_and_is_per_app() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let other = register(&p, "Other").await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(
                issue(&p, &app.id, server_key(&["flags:read"], None))
                    .await
                    .key
                    .id,
            );
            p.inner.clock.advance(1);
        }
        issue(&p, &other.id, server_key(&["flags:read"], None)).await;
        ids.reverse();
        let mut req = ListKeys {
            limit: Some(2),
            ..ListKeys::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = apps::list_keys(&p, &app.id, &req).await.unwrap();
            seen.extend(page.items.into_iter().map(|k| k.id));
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let unknown = AppId::parse("00000000-0000-4000-8000-000000000000").unwrap();
        let e = apps::list_keys(&p, &unknown, &ListKeys::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "app_not_found");
    });
}

/// FR-LOG-003: every change of this module is audited with its actor and request id, in the
/// order made, and no outbox row holds a key's secret or hash.
#[test]
fn fr_log_003_every_change_is_audited_without_secrets() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let t = tenant(&p, "acme", &[]).await;
        apps::enable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap();
        let key = issue(&p, &app.id, server_key(&["flags:read"], Some(&t))).await;
        apps::revoke_key(&p, &op(), &app.id, &key.key.id, "r")
            .await
            .unwrap();
        apps::disable_for_tenant(&p, &op(), &t, &app.id, "r")
            .await
            .unwrap();
        let rename = UpdateApp {
            name: Some(AppName::parse("CRM 2").unwrap()),
            status: Some(AppStatus::Disabled),
            ..UpdateApp::default()
        };
        apps::update(&p, &op(), &app.id, rename, "r").await.unwrap();
        let actions: Vec<String> = audit_trail(&p)
            .await
            .into_iter()
            .map(|(a, _)| a)
            .filter(|a| !a.starts_with("tenant.") && !a.starts_with("user."))
            .collect();
        assert_eq!(
            actions,
            [
                "app.create",
                "tenant_app.enable",
                "api_key.issue",
                "api_key.revoke",
                "tenant_app.disable",
                "app.update",
                "app.disable"
            ]
        );
        let outbox = rows(&p.inner.sql, "SELECT actor_id, metadata FROM audit_outbox").await;
        let hash = rows(&p.inner.sql, "SELECT key_hash FROM api_keys").await[0]
            .text("key_hash")
            .unwrap();
        let secret_part = &key.secret[key.key.prefix.len() + 1..];
        for r in &outbox {
            assert_eq!(r.text("actor_id").unwrap(), "op-1");
            let m = r.text("metadata").unwrap();
            assert!(!m.contains(secret_part) && !m.contains(&hash), "{m}");
        }
    });
}

/// FR-SYS-002: a revocation made by another isolate of the location is seen here within
/// [`crate::edge::FRESHNESS_MS`], however recently this isolate read the key's record; the
/// revoking isolate itself refuses the key at once (`fr_sys_002_revoke_refuses_the_key_at_once`).
#[test]
fn fr_sys_002_a_revocation_elsewhere_is_seen_within_a_second() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let key = issue(&p, &app.id, server_key(&["flags:read"], None)).await;
        // Long after the set-up's changes settled, this isolate holds the record.
        p.inner.clock.advance(crate::edge::PROPAGATION_MS);
        auth(&p, &key.secret, Scope::FlagsRead).await.unwrap();
        p.inner.clock.advance(crate::edge::FRESHNESS_MS);
        auth(&p, &key.secret, Scope::FlagsRead).await.unwrap();
        crate::edge::in_other_isolate(async {
            apps::revoke_key(&p, &op(), &app.id, &key.key.id, "r")
                .await
                .unwrap();
            assert_eq!(
                auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
                AppKeyError::Revoked
            );
        })
        .await;
        p.inner.clock.advance(crate::edge::FRESHNESS_MS - 1);
        assert!(auth(&p, &key.secret, Scope::FlagsRead).await.is_ok());
        p.inner.clock.advance(1);
        assert_eq!(
            auth(&p, &key.secret, Scope::FlagsRead).await.unwrap_err(),
            AppKeyError::Revoked
        );
    });
}

/// No KV keys read along with the markers.
fn none(_: &AppId, _: Option<&TenantId>) -> Vec<(String, Option<u32>)> {
    Vec::new()
}

/// NFR-PERF-004: the work run alongside the key's markers (introspection) starts only for a key
/// that passed its own checks, gets the key's app id, and is returned only when the key is
/// accepted; the refusals are those of `authenticate_app_key`.
#[test]
fn nfr_perf_004_work_alongside_the_markers_runs_only_for_an_accepted_key() {
    block_on(async {
        let p = wrapped().await;
        let app = register(&p, "CRM").await;
        let key = issue(&p, &app.id, server_key(&["token:introspect"], None)).await;
        let runs = std::cell::RefCell::new(Vec::<String>::new());
        let alongside = |app_id: &str| {
            runs.borrow_mut().push(app_id.to_owned());
            async { 42 }
        };
        let (principal, out) =
            authenticate_app_key_with(&p, &key.secret, Scope::TokenIntrospect, none, alongside)
                .await
                .unwrap();
        assert_eq!((principal.app_id.as_str(), out), (app.id.as_str(), 42));
        assert_eq!(runs.borrow().as_slice(), [app.id.as_str().to_owned()]);

        // A missing scope or a wrong secret: refused as before, the work never starts.
        runs.borrow_mut().clear();
        let alongside = |app_id: &str| {
            runs.borrow_mut().push(app_id.to_owned());
            async {}
        };
        let err = authenticate_app_key_with(&p, &key.secret, Scope::FlagsRead, none, alongside)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AppKeyError::MissingScope {
                required: Scope::FlagsRead
            }
        );
        let mut forged = key.secret.clone();
        let last = forged
            .pop()
            .map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
        forged.push(last);
        let alongside = |app_id: &str| {
            runs.borrow_mut().push(app_id.to_owned());
            async {}
        };
        let err = authenticate_app_key_with(&p, &forged, Scope::TokenIntrospect, none, alongside)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AppKeyError::Invalid | AppKeyError::Malformed),
            "{err:?}"
        );
        assert!(runs.borrow().is_empty(), "{:?}", runs.borrow());

        // A disabled app: the work may have run beside the marker read, its output is dropped.
        disable_app(&p, &app.id).await;
        let err =
            authenticate_app_key_with(&p, &key.secret, Scope::TokenIntrospect, none, |_| async {
                "claims"
            })
            .await
            .unwrap_err();
        assert_eq!(err, AppKeyError::AppDisabled);
    });
}

// ---------------------------------------------------------------------------------------------
// The apps' own health checks
// ---------------------------------------------------------------------------------------------

mod app_health {
    use super::*;
    use crate::apps::health::{self, HealthState, HealthUrl, STALE_MS};
    use crate::ports::Clock;

    const URL: &str = "https://crm.example/healthz";

    fn url() -> HealthUrl {
        HealthUrl::parse(URL, false).unwrap()
    }

    #[test]
    fn health_urls_are_https_except_loopback_in_development() {
        assert!(HealthUrl::parse(URL, false).is_ok());
        assert!(HealthUrl::parse("http://crm.example/healthz", true).is_err());
        assert!(HealthUrl::parse("http://127.0.0.1:9/healthz", false).is_err());
        assert!(HealthUrl::parse("http://127.0.0.1:9/healthz", true).is_ok());
        assert!(HealthUrl::parse("ftp://crm.example/", true).is_err());
        assert!(HealthUrl::parse("https://user@crm.example/", true).is_err());
    }

    #[test]
    fn prd_an_app_turns_green_then_red_and_keeps_its_minutes() {
        block_on(async {
            let p = wrapped().await;
            let app = register(&p, "CRM").await;
            let before = health::report(&p, &app.id, p.inner.clock.now_ms())
                .await
                .unwrap();
            assert_eq!((before.state, before.url), (HealthState::Unknown, None));

            health::set_url(&p, &app.id, Some(&url()), &op(), "req-1")
                .await
                .unwrap();
            p.inner.http.set(URL, 200, "{}");
            assert_eq!(health::poll(&p).await.unwrap(), 1);
            p.inner.clock.advance(5_000);
            assert_eq!(health::poll(&p).await.unwrap(), 1);
            let now = p.inner.clock.now_ms();
            let green = health::report(&p, &app.id, now).await.unwrap();
            assert_eq!(green.state, HealthState::Green);
            assert_eq!(green.last_status, Some(200));
            assert_eq!(green.consecutive_failures, 0);
            let checks: u64 = green.minutes.iter().map(|m| m.checks).sum();
            assert_eq!(checks, 2);

            // A redirect is not followed: a failed check, as an error status or no answer.
            p.inner.http.set(URL, 302, "");
            p.inner.clock.advance(5_000);
            health::poll(&p).await.unwrap();
            p.inner.http.remove(URL);
            p.inner.clock.advance(5_000);
            health::poll(&p).await.unwrap();
            let red = health::report(&p, &app.id, p.inner.clock.now_ms())
                .await
                .unwrap();
            assert_eq!(red.state, HealthState::Red);
            assert_eq!(red.consecutive_failures, 2);
            assert_eq!(red.last_status, None);
            assert_eq!(red.last_error.as_deref(), Some("no answer"));
            let failures: u64 = red.minutes.iter().map(|m| m.failures).sum();
            assert_eq!(failures, 2);
            let requested: Vec<String> = p.inner.http.urls();
            assert!(
                requested.iter().all(|u| u == URL),
                "only the registered URL: {requested:?}"
            );

            // Not checked for a while: unknown, not green or red.
            let later = p.inner.clock.now_ms() + STALE_MS;
            let stale = health::report(&p, &app.id, later).await.unwrap();
            assert_eq!(stale.state, HealthState::Unknown);
        });
    }

    #[test]
    fn prd_removing_the_url_stops_the_checks_and_changes_are_audited() {
        block_on(async {
            let p = wrapped().await;
            let app = register(&p, "CRM").await;
            health::set_url(&p, &app.id, Some(&url()), &op(), "req-1")
                .await
                .unwrap();
            p.inner.http.set(URL, 200, "{}");
            health::poll(&p).await.unwrap();
            assert!(health::any_registered(&p).await.unwrap());

            p.inner.clock.advance(1);
            health::set_url(&p, &app.id, None, &op(), "req-2")
                .await
                .unwrap();
            assert_eq!(health::poll(&p).await.unwrap(), 0);
            assert!(!health::any_registered(&p).await.unwrap());
            let gone = health::report(&p, &app.id, p.inner.clock.now_ms())
                .await
                .unwrap();
            assert_eq!((gone.url, gone.minutes.len()), (None, 0));

            let rows = p
                .inner
                .sql
                .query(Stmt::new(
                    "SELECT action FROM audit_outbox WHERE action LIKE 'app.health_check.%' ORDER BY occurred_at, action",
                ))
                .await
                .unwrap();
            let actions: Vec<String> = rows.iter().map(|r| r.text("action").unwrap()).collect();
            assert_eq!(actions, ["app.health_check.set", "app.health_check.remove"]);

            let missing = AppId::parse("01900000-0000-7000-8000-000000000000").unwrap();
            let err = health::set_url(&p, &missing, Some(&url()), &op(), "req-3")
                .await
                .unwrap_err();
            assert_eq!(err.code(), "app_not_found");
        });
    }
}
