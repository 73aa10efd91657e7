//! Tenant service tests on real SQLite with the real migration (TestPlatform).

use futures_executor::block_on;
use serde_json::Value as Json;

use super::provision::{commit, Idem};
use super::*;
use crate::audit::Actor;
use crate::crypto;
use crate::ports::{Kv, Row, Sql, SqlError, Stmt};
use crate::tenants;
use crate::testing::{FaultyPlatform, NativeSql, TestPlatform, START_MS};

const BASE: &str = "https://edgeplane.test";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A platform with plan defaults and two apps (one disabled).
async fn platform() -> TestPlatform {
    let p = TestPlatform::new().await;
    seed(&p.sql);
    p
}

fn seed(sql: &NativeSql) {
    sql.exec_raw(
        "INSERT INTO plan_default_flags (plan, key, type, value, enabled, description, updated_at) VALUES
           ('free', 'sso', 'boolean', 'false', 1, 'Single sign-on', 0),
           ('free', 'max_users', 'number', '5', 1, NULL, 0),
           ('free', 'free_banner', 'boolean', 'true', 1, NULL, 0),
           ('pro', 'sso', 'boolean', 'true', 1, 'Single sign-on', 0),
           ('pro', 'max_users', 'number', '50', 1, NULL, 0),
           ('pro', 'audit_export', 'boolean', 'true', 1, NULL, 0);
         INSERT INTO apps (id, name, owner_id, status, created_at, updated_at) VALUES
           ('app-crm', 'CRM', 'op-1', 'active', 0, 0),
           ('app-old', 'Legacy', 'op-1', 'disabled', 0, 0);",
    )
    .unwrap();
}

fn op() -> Actor {
    Actor::operator("op-1")
}

fn req(domain: &str) -> ProvisionTenant {
    ProvisionTenant {
        name: TenantName::parse(&format!("{domain} Inc")).unwrap(),
        domain: TenantDomain::parse(domain).unwrap(),
        plan: Plan::parse("free").unwrap(),
        owner_email: Email::parse(&format!("Owner@{domain}.test")).unwrap(),
        apps: vec!["app-crm".into()],
    }
}

fn key(k: &str) -> Option<IdempotencyKey> {
    Some(IdempotencyKey::parse(k).unwrap())
}

async fn provision<P: crate::ports::Platform>(p: &P, domain: &str) -> Provisioned {
    tenants::provision(
        p,
        &op(),
        req(domain),
        None,
        "req-prov",
        &crate::http::links_under(BASE),
    )
    .await
    .unwrap()
    .provisioned
}

async fn rows<S: Sql>(sql: &S, stmt: &'static str) -> Vec<Row> {
    sql.query(Stmt::new(stmt)).await.unwrap()
}

/// Row counts of every table provisioning writes, in a fixed order.
async fn counts<S: Sql>(sql: &S) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for (name, stmt) in [
        ("tenants", "SELECT COUNT(*) AS n FROM tenants"),
        ("users", "SELECT COUNT(*) AS n FROM users"),
        ("invitations", "SELECT COUNT(*) AS n FROM invitations"),
        ("feature_flags", "SELECT COUNT(*) AS n FROM feature_flags"),
        ("tenant_apps", "SELECT COUNT(*) AS n FROM tenant_apps"),
        ("audit_outbox", "SELECT COUNT(*) AS n FROM audit_outbox"),
        (
            "idempotency_keys",
            "SELECT COUNT(*) AS n FROM idempotency_keys",
        ),
        ("mail_outbox", "SELECT COUNT(*) AS n FROM mail_outbox"),
    ] {
        out.push((name, rows(sql, stmt).await[0].i64("n").unwrap()));
    }
    out
}

fn count_of(c: &[(&'static str, i64)], table: &str) -> i64 {
    c.iter().find(|(t, _)| *t == table).map_or(-1, |(_, n)| *n)
}

/// Every outbox row, in order.
async fn outbox<S: Sql>(sql: &S) -> Vec<Row> {
    rows(sql, "SELECT * FROM audit_outbox ORDER BY seq").await
}

fn meta(row: &Row) -> Json {
    serde_json::from_str(&row.text("metadata").unwrap()).unwrap()
}

/// The token inside an invitation link.
fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_owned()
}

/// Inserts an active session for a tenant's owner.
fn add_session(sql: &NativeSql, tenant: &TenantId, user_id: &str, id: &str) {
    let stmt = format!(
        "INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash, created_at, expires_at)
         VALUES ('{id}', '{tenant}', '{user_id}', '{id}', 'hash-{id}', 0, 9999999999999)"
    );
    sql.exec_raw(&stmt).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A platform whose SQL and KV can misbehave on cue
// ---------------------------------------------------------------------------------------------

/// The fault-injecting platform over [`platform`].
type Wrapped = FaultyPlatform;

async fn wrapped() -> Wrapped {
    FaultyPlatform::over(platform().await)
}

use crate::ports::Clock as _;

// ---------------------------------------------------------------------------------------------
// Provisioning
// ---------------------------------------------------------------------------------------------

/// UC-PROV-001, FR-LOG-003: one call writes the tenant, the invited owner, the invitation (only
/// the token's hash), the plan's flags, the apps and both audit rows; the mail carries the link.
#[test]
fn uc_prov_001_provision_writes_everything_and_mails_the_owner() {
    block_on(async {
        let p = platform().await;
        let out = tenants::provision(
            &p,
            &op(),
            req("acme"),
            None,
            "req-1",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert!(!out.replayed);
        assert_eq!(out.mail_error, None);
        let got = out.provisioned;
        assert_eq!(got.mail, MailDelivery::Sent);
        assert_eq!(got.apps, ["app-crm"]);
        let t = &got.tenant;
        assert_eq!(t.status, TenantStatus::Active);
        assert_eq!(t.domain.as_ref().unwrap().as_str(), "acme");
        assert_eq!((t.created_at, t.version), (START_MS, 1));
        assert_eq!(tenants::get(&p, &t.id).await.unwrap(), *t);

        // The owner: invited, role owner, email with its domain lowercased.
        let users = rows(&p.sql, "SELECT * FROM users").await;
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].text("id").unwrap(), got.owner_user_id);
        assert_eq!(users[0].text("tenant_id").unwrap(), t.id.as_str());
        assert_eq!(users[0].text("email").unwrap(), "Owner@acme.test");
        assert_eq!(users[0].text("role").unwrap(), "owner");
        assert_eq!(users[0].text("status").unwrap(), "invited");

        // The invitation stores the SHA-256 of the token, never the token; 7 days.
        assert!(got
            .invitation_link
            .starts_with("https://edgeplane.test/console/account/invitation?token="));
        let token = token_of(&got.invitation_link);
        assert_eq!(crypto::b64url_decode(&token).unwrap().len(), 32);
        let inv = rows(&p.sql, "SELECT * FROM invitations").await;
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].text("id").unwrap(), got.invitation_id);
        assert_eq!(
            inv[0].text("token_hash").unwrap(),
            crypto::token_hash(&token)
        );
        assert_eq!(inv[0].text("status").unwrap(), "pending");
        assert_eq!(inv[0].text("role").unwrap(), "owner");
        assert_eq!(inv[0].text("invited_by").unwrap(), "op-1");
        assert_eq!(inv[0].i64("expires_at").unwrap(), START_MS + 7 * DAY_MS);
        assert_eq!(got.invitation_expires_at, START_MS + 7 * DAY_MS);

        // The plan's default flags, not overridden.
        let flags = rows(
            &p.sql,
            "SELECT key, type, value, overridden, description FROM feature_flags ORDER BY key",
        )
        .await;
        let keys: Vec<String> = flags.iter().map(|r| r.text("key").unwrap()).collect();
        assert_eq!(keys, ["free_banner", "max_users", "sso"]);
        assert!(flags.iter().all(|r| r.i64("overridden").unwrap() == 0));
        assert_eq!(flags[1].text("value").unwrap(), "5");
        assert_eq!(flags[2].text("description").unwrap(), "Single sign-on");
        let ids = rows(&p.sql, "SELECT id FROM feature_flags").await;
        assert!(ids
            .iter()
            .all(|r| crate::ids::is_uuid(&r.text("id").unwrap())));

        let apps = rows(&p.sql, "SELECT tenant_id, app_id, enabled FROM tenant_apps").await;
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].text("app_id").unwrap(), "app-crm");

        // Audit: tenant.create and user.invite by the operator, with the request id.
        let audit = outbox(&p.sql).await;
        let actions: Vec<String> = audit.iter().map(|r| r.text("action").unwrap()).collect();
        assert_eq!(actions, ["tenant.create", "user.invite"]);
        for r in &audit {
            assert_eq!(r.text("actor_id").unwrap(), "op-1");
            assert_eq!(r.text("actor_type").unwrap(), "operator");
            assert_eq!(r.text("outcome").unwrap(), "success");
            assert_eq!(r.text("request_id").unwrap(), "req-1");
            assert_eq!(r.text("tenant_id").unwrap(), t.id.as_str());
        }
        assert_eq!(
            audit[0].text("resource").unwrap(),
            format!("tenant:{}", t.id)
        );
        assert_eq!(meta(&audit[0])["plan"], "free");
        assert_eq!(meta(&audit[0])["apps"][0], "app-crm");
        assert_eq!(
            audit[1].text("resource").unwrap(),
            format!("user:{}", got.owner_user_id)
        );
        assert_eq!(meta(&audit[1])["role"], "owner");

        // The mail: plain text and HTML with the link.
        let mail = p.mailer.messages_to("owner@acme.test", 10).await.unwrap();
        assert_eq!(mail.len(), 1);
        assert!(mail[0].mail.text.contains(&got.invitation_link));
        assert!(mail[0].mail.text.contains("2026-01-08 00:00 UTC"));
        assert!(mail[0]
            .mail
            .html
            .contains(&format!("href=\"{}\"", got.invitation_link)));
        assert!(mail[0].mail.subject.contains("acme Inc"));
    });
}

/// UC-PROV-001: the base of links comes from PUBLIC_BASE_URL only, without a trailing slash.
#[test]
fn uc_prov_001_public_base_url_comes_from_the_environment() {
    block_on(async {
        let p = platform().await;
        assert_eq!(configured_base_url(&p), None);
        p.secrets.set("PUBLIC_BASE_URL", " ");
        assert_eq!(configured_base_url(&p), None);
        p.secrets.set("PUBLIC_BASE_URL", "https://cp.example.com/");
        assert_eq!(
            configured_base_url(&p).as_deref(),
            Some("https://cp.example.com")
        );
    });
}

/// FR-LOG-003, UC-PROV-001: a batch that fails half-way writes nothing at all — no tenant, no
/// user, no invitation, no flags, no outbox row (forced past the pre-checks: an unknown plan and
/// a taken domain hit the schema's constraints).
#[test]
fn fr_log_003_provisioning_is_atomic() {
    block_on(async {
        let p = platform().await;
        let empty = counts(&p.sql).await;
        let mut bad = req("acme");
        bad.plan = Plan::parse("platinum").unwrap();
        let apps = bad.apps.clone();
        let err = commit(
            &p,
            &op(),
            &bad,
            &apps,
            None,
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SqlError::Constraint(_)), "{err:?}");
        assert_eq!(counts(&p.sql).await, empty);

        // An unknown app also fails the batch late (foreign key), writing nothing.
        let mut bad = req("acme");
        bad.apps = vec!["app-ghost".into()];
        let apps = bad.apps.clone();
        let err = commit(
            &p,
            &op(),
            &bad,
            &apps,
            None,
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SqlError::Constraint(_)), "{err:?}");
        assert_eq!(counts(&p.sql).await, empty);

        // A taken domain (case-insensitively), with an idempotency key: still nothing.
        provision(&p, "acme").await;
        let before = counts(&p.sql).await;
        let dup = ProvisionTenant {
            domain: TenantDomain::parse("ACME").unwrap(),
            ..req("other")
        };
        let idem = Idem {
            scope: "tenant.provision:op-1".into(),
            key: IdempotencyKey::parse("k").unwrap(),
            request_hash: "h".into(),
        };
        let err = commit(
            &p,
            &op(),
            &dup,
            &[],
            Some(&idem),
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SqlError::Constraint(_)), "{err:?}");
        assert_eq!(counts(&p.sql).await, before);
    });
}

/// UC-PROV-001: a taken domain is refused by the pre-check, audited as a failure, and nothing
/// else is written.
#[test]
fn uc_prov_001_domain_taken_is_refused_and_audited() {
    block_on(async {
        let p = platform().await;
        provision(&p, "acme").await;
        let before = counts(&p.sql).await;
        let dup = ProvisionTenant {
            domain: TenantDomain::parse(" Acme ").unwrap(),
            ..req("other")
        };
        let err = tenants::provision(
            &p,
            &op(),
            dup,
            None,
            "req-dup",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err,
            ProvisionTenantError::DomainTaken {
                domain: TenantDomain::parse("acme").unwrap()
            }
        );
        assert_eq!(err.code(), "domain_taken");
        let after = counts(&p.sql).await;
        assert_eq!(count_of(&after, "tenants"), count_of(&before, "tenants"));
        assert_eq!(count_of(&after, "users"), count_of(&before, "users"));
        assert_eq!(
            count_of(&after, "audit_outbox"),
            count_of(&before, "audit_outbox") + 1
        );
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.create");
        assert_eq!(last.text("outcome").unwrap(), "failure");
        assert_eq!(last.text("request_id").unwrap(), "req-dup");
        assert_eq!(last.opt_text("tenant_id").unwrap(), None);
        assert_eq!(meta(&last)["reason"], "domain_taken");
    });
}

/// UC-PROV-001: a domain taken between the pre-check and the batch (a concurrent provisioning)
/// is still reported as DomainTaken, from the batch's constraint error.
#[test]
fn uc_prov_001_domain_taken_in_a_race_is_detected_from_the_batch() {
    block_on(async {
        let p = wrapped().await;
        *p.sql.before_batch.borrow_mut() = Some(
            "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at)
             VALUES ('00000000-0000-4000-8000-000000000001', 'Rival', 'acme', 'free', 0, 0)"
                .into(),
        );
        let err = tenants::provision(
            &p,
            &op(),
            req("acme"),
            None,
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "domain_taken");
        let c = counts(&p.sql.inner).await;
        assert_eq!(count_of(&c, "tenants"), 1);
        assert_eq!(count_of(&c, "users"), 0);
        assert_eq!(count_of(&c, "mail_outbox"), 0);
    });
}

/// UC-PROV-001: unknown plan, unknown or disabled app, too many apps: refused before any write.
#[test]
fn uc_prov_001_plan_and_apps_are_checked_first() {
    block_on(async {
        let p = platform().await;
        let empty = counts(&p.sql).await;
        let mut r = req("acme");
        r.plan = Plan::parse("platinum").unwrap();
        let err = tenants::provision(&p, &op(), r, None, "r", &crate::http::links_under(BASE))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unknown_plan");

        let mut r = req("acme");
        r.apps = vec!["app-crm".into(), "app-ghost".into()];
        let err = tenants::provision(&p, &op(), r, None, "r", &crate::http::links_under(BASE))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ProvisionTenantError::UnknownApp {
                app_id: "app-ghost".into()
            }
        );

        let mut r = req("acme");
        r.apps = vec!["app-old".into()];
        let err = tenants::provision(&p, &op(), r, None, "r", &crate::http::links_under(BASE))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "app_disabled");

        let mut r = req("acme");
        r.apps = (0..=MAX_APPS).map(|i| format!("app-{i}")).collect();
        let err = tenants::provision(&p, &op(), r, None, "r", &crate::http::links_under(BASE))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "too_many_apps");
        assert_eq!(counts(&p.sql).await, empty);

        // Duplicates and no apps at all are fine.
        let mut r = req("acme");
        r.apps = vec!["app-crm".into(), "app-crm".into()];
        let got = tenants::provision(&p, &op(), r, None, "r", &crate::http::links_under(BASE))
            .await
            .unwrap();
        assert_eq!(got.provisioned.apps, ["app-crm"]);
        let mut r = req("bolt");
        r.apps = vec![];
        tenants::provision(&p, &op(), r, None, "r", &crate::http::links_under(BASE))
            .await
            .unwrap();
    });
}

/// UC-PROV-001: a retry with the same Idempotency-Key and request returns the stored result
/// (same tenant, same link) and changes nothing; no second mail.
#[test]
fn uc_prov_001_idempotent_retry_returns_the_same_result() {
    block_on(async {
        let p = platform().await;
        let first = tenants::provision(
            &p,
            &op(),
            req("acme"),
            key("k-1"),
            "r1",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert!(!first.replayed);
        let after_first = counts(&p.sql).await;
        p.clock.advance(60_000);
        // Apps in another order and with a duplicate are the same request.
        let mut again = req("acme");
        again.apps = vec!["app-crm".into(), "app-crm".into()];
        let second = tenants::provision(
            &p,
            &op(),
            again,
            key("k-1"),
            "r2",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert!(second.replayed);
        assert_eq!(second.provisioned, first.provisioned);
        assert_eq!(second.provisioned.mail, MailDelivery::Sent);
        assert_eq!(counts(&p.sql).await, after_first);

        let stored = rows(&p.sql, "SELECT * FROM idempotency_keys").await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].text("scope").unwrap(), "tenant.provision:op-1");
        assert_eq!(stored[0].i64("response_status").unwrap(), 201);
        assert_eq!(stored[0].i64("expires_at").unwrap(), START_MS + DAY_MS);
    });
}

/// UC-PROV-001: the same key with a different request is refused (and audited); another
/// operator's identical key is another scope; an expired key starts afresh.
#[test]
fn uc_prov_001_idempotency_key_reuse_scope_and_expiry() {
    block_on(async {
        let p = platform().await;
        tenants::provision(
            &p,
            &op(),
            req("acme"),
            key("k-1"),
            "r1",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        let before = counts(&p.sql).await;
        let err = tenants::provision(
            &p,
            &op(),
            req("bolt"),
            key("k-1"),
            "r2",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap_err();
        assert_eq!(err, ProvisionTenantError::IdempotencyKeyReused);
        assert_eq!(err.code(), "idempotency_key_reused");
        let after = counts(&p.sql).await;
        assert_eq!(count_of(&after, "tenants"), count_of(&before, "tenants"));
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(
            (last.text("outcome").unwrap(), meta(&last)["reason"].clone()),
            ("failure".to_owned(), Json::from("idempotency_key_reused"))
        );

        // Another operator's k-1 is its own key.
        let other = Actor::operator("op-2");
        let got = tenants::provision(
            &p,
            &other,
            req("bolt"),
            key("k-1"),
            "r3",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert!(!got.replayed);

        // After 24 h the key is free again (the stale row is replaced in the batch).
        p.clock.advance(DAY_MS);
        let got = tenants::provision(
            &p,
            &op(),
            req("cove"),
            key("k-1"),
            "r4",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert!(!got.replayed);
        assert_eq!(got.provisioned.tenant.domain.unwrap().as_str(), "cove");
    });
}

/// UC-PROV-001: when the mailer fails the tenant still exists, the link is returned and the
/// failure is reported (and replayed as such).
#[test]
fn uc_prov_001_mail_failure_keeps_the_tenant_and_returns_the_link() {
    block_on(async {
        let p = platform().await;
        p.sql.exec_raw("DROP TABLE mail_outbox").unwrap();
        let out = tenants::provision(
            &p,
            &op(),
            req("acme"),
            key("k"),
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert_eq!(out.provisioned.mail, MailDelivery::Failed);
        assert!(out.mail_error.is_some());
        assert!(out.provisioned.invitation_link.contains("token="));
        tenants::get(&p, &out.provisioned.tenant.id).await.unwrap();
        let replay = tenants::provision(
            &p,
            &op(),
            req("acme"),
            key("k"),
            "r",
            &crate::http::links_under(BASE),
        )
        .await
        .unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.provisioned.mail, MailDelivery::Failed);
    });
}

/// FR-LOG-003: nothing secret or personal reaches the audit outbox: not the invitation token,
/// not its link, not the owner's email.
#[test]
fn fr_log_003_outbox_holds_no_token_or_email() {
    block_on(async {
        let p = platform().await;
        let got = provision(&p, "acme").await;
        let token = token_of(&got.invitation_link);
        for r in outbox(&p.sql).await {
            let all = format!("{:?}", r.0);
            assert!(!all.contains(&token));
            assert!(!all.to_lowercase().contains("owner@acme.test"));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Get and list
// ---------------------------------------------------------------------------------------------

/// ERR-RES-404 / ERR-RES-410: unknown is NotFound, pending deletion is returned, purged is Gone.
#[test]
fn get_distinguishes_unknown_pending_and_purged() {
    block_on(async {
        let p = platform().await;
        let unknown = TenantId::parse("00000000-0000-4000-8000-000000000009").unwrap();
        let err = tenants::get(&p, &unknown).await.unwrap_err();
        assert_eq!(err.code(), "tenant_not_found");
        let t = provision(&p, "acme").await.tenant;
        tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        let got = tenants::get(&p, &t.id).await.unwrap();
        assert_eq!(got.status, TenantStatus::PendingDeletion);
        p.clock.advance(GRACE_PERIOD_MS);
        tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        let err = tenants::get(&p, &t.id).await.unwrap_err();
        assert_eq!(err, GetTenantError::Gone { id: t.id.clone() });
    });
}

/// Seeds `n` tenants quickly (raw SQL): names `Acme {i}`, domains `d{i:03}`, every 5th
/// suspended, three per millisecond so created_at ties are broken by id.
fn seed_tenants(p: &TestPlatform, n: usize) {
    let mut sql = String::new();
    for i in 0..n {
        let id = crate::ids::new_id(&p.random);
        let status = if i % 5 == 0 { "suspended" } else { "active" };
        let created = START_MS + (i / 3) as i64;
        sql.push_str(&format!(
            "INSERT INTO tenants (id, name, domain, plan, status, created_at, updated_at)
             VALUES ('{id}', 'Acme {i}', 'd{i:03}', 'free', '{status}', {created}, {created});\n"
        ));
    }
    p.sql.exec_raw(&sql).unwrap();
}

/// Every page of a list, walked with `limit`.
async fn walk(p: &TestPlatform, mut req: ListTenants) -> Vec<Tenant> {
    let mut all = Vec::new();
    loop {
        let page = tenants::list(p, &req).await.unwrap();
        assert!(page.items.len() <= req.limit.unwrap_or(DEFAULT_LIMIT) as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => return all,
        }
    }
}

/// The expected list, computed in Rust from every row.
async fn expected(p: &TestPlatform, keep: impl Fn(&Tenant) -> bool) -> Vec<String> {
    let mut all: Vec<Tenant> = rows(
        &p.sql,
        concat!("SELECT ", model::tenant_columns!(), " FROM tenants"),
    )
    .await
    .iter()
    .map(|r| Tenant::from_row(r).unwrap())
    .filter(|t| keep(t))
    .collect();
    all.sort_by(|a, b| (b.created_at, b.id.as_str()).cmp(&(a.created_at, a.id.as_str())));
    all.into_iter().map(|t| t.id.to_string()).collect()
}

fn ids_of(ts: &[Tenant]) -> Vec<String> {
    ts.iter().map(|t| t.id.to_string()).collect()
}

/// NFR-CAP-001: 250 tenants paged by keyset with every filter combination: each page is at
/// most `limit`, and the pages together are exactly the matching tenants, newest first, with no
/// duplicate and no gap.
#[test]
fn nfr_cap_001_list_pages_250_tenants_without_duplicates_or_gaps() {
    block_on(async {
        let p = platform().await;
        seed_tenants(&p, 250);
        let first_page = tenants::list(&p, &ListTenants::default()).await.unwrap();
        assert_eq!(first_page.items.len(), DEFAULT_LIMIT as usize);

        let all = walk(
            &p,
            ListTenants {
                limit: Some(7),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids_of(&all), expected(&p, |_| true).await);
        assert_eq!(all.len(), 250);

        let suspended = walk(
            &p,
            ListTenants {
                status: Some(TenantStatus::Suspended),
                limit: Some(9),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(suspended.len(), 50);
        assert_eq!(
            ids_of(&suspended),
            expected(&p, |t| t.status == TenantStatus::Suspended).await
        );

        // Name prefix, case-insensitive: Acme 1, Acme 10-19, Acme 100-199.
        let by_name = walk(
            &p,
            ListTenants {
                q: Some(" aCmE 1".into()),
                limit: Some(10),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(by_name.len(), 111);
        assert_eq!(
            ids_of(&by_name),
            expected(&p, |t| t.name.as_str().starts_with("Acme 1")).await
        );

        // Domain prefix with a status filter.
        let by_domain = walk(
            &p,
            ListTenants {
                q: Some("D02".into()),
                status: Some(TenantStatus::Active),
                limit: Some(3),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            ids_of(&by_domain),
            expected(&p, |t| {
                t.status == TenantStatus::Active
                    && t.domain
                        .as_ref()
                        .is_some_and(|d| d.as_str().starts_with("d02"))
            })
            .await
        );
        assert_eq!(by_domain.len(), 8);

        // LIKE wildcards in q are literal.
        let none = walk(
            &p,
            ListTenants {
                q: Some("%".into()),
                ..Default::default()
            },
        )
        .await;
        assert!(none.is_empty());
    });
}

/// Keyset pages stay consistent while tenants are created between page reads.
#[test]
fn list_pages_do_not_repeat_rows_when_tenants_are_added() {
    block_on(async {
        let p = platform().await;
        seed_tenants(&p, 20);
        let before = expected(&p, |_| true).await;
        let mut req = ListTenants {
            limit: Some(6),
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = tenants::list(&p, &req).await.unwrap();
            seen.extend(ids_of(&page.items));
            p.clock.advance(10_000);
            provision(&p, &format!("new{}", seen.len())).await;
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, before);
    });
}

/// Purged tombstones are left out unless asked for; bad limits and cursors are refused.
#[test]
fn list_filters_tombstones_and_checks_its_parameters() {
    block_on(async {
        let p = platform().await;
        let a = provision(&p, "acme").await.tenant;
        let b = provision(&p, "bolt").await.tenant;
        tenants::delete(&p, &op(), &a.id, "r").await.unwrap();
        p.clock.advance(GRACE_PERIOD_MS);
        tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        let page = tenants::list(&p, &ListTenants::default()).await.unwrap();
        assert_eq!(ids_of(&page.items), [b.id.to_string()]);
        assert_eq!(page.next_cursor, None);
        let deleted = tenants::list(
            &p,
            &ListTenants {
                status: Some(TenantStatus::Deleted),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(ids_of(&deleted.items), [a.id.to_string()]);
        assert_eq!(deleted.items[0].domain, None);

        for (limit, ok) in [(0, false), (1, true), (100, true), (101, false)] {
            let r = tenants::list(
                &p,
                &ListTenants {
                    limit: Some(limit),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(r.is_ok(), ok, "{limit}");
        }
        let err = tenants::list(
            &p,
            &ListTenants {
                cursor: Some("garbage".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "invalid_cursor");
        let err = tenants::list(
            &p,
            &ListTenants {
                q: Some("x".repeat(201)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "query_too_long");
    });
}

/// NFR-CAP-001: every list query reads an index range (no full table scan, and no sort for the
/// unfiltered and status-filtered lists), as SQLite plans it with the migration's indexes.
#[test]
fn nfr_cap_001_list_queries_use_indexes() {
    block_on(async {
        let p = platform().await;
        seed_tenants(&p, 250);
        let cursor = tenants::list(&p, &ListTenants::default())
            .await
            .unwrap()
            .next_cursor;
        for q in [None, Some("acme 1".to_owned())] {
            for status in [None, Some(TenantStatus::Suspended)] {
                for cursor in [None, cursor.clone()] {
                    let req = ListTenants {
                        q: q.clone(),
                        status,
                        cursor,
                        limit: None,
                    };
                    let plan = p.sql.explain(query::list_stmt(&req).unwrap()).unwrap();
                    let want: &[&str] = match (&q, status) {
                        (None, None) => &["USING INDEX tenants_created"],
                        (None, Some(_)) => &["USING INDEX tenants_status_created"],
                        (Some(_), _) => &[
                            "USING INDEX tenants_name (name>? AND name<?)",
                            "USING INDEX tenants_domain (domain>? AND domain<?)",
                        ],
                    };
                    for w in want {
                        assert!(plan.contains(w), "{req:?}: {plan}");
                    }
                    assert!(
                        !plan.lines().any(|l| l.trim() == "SCAN tenants"),
                        "{req:?}: {plan}"
                    );
                    if q.is_none() {
                        assert!(!plan.contains("TEMP B-TREE"), "{req:?}: {plan}");
                    }
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

/// Flags of a tenant as (key, value, overridden), by key.
async fn flags_of(p: &TestPlatform) -> Vec<(String, String, i64)> {
    rows(
        &p.sql,
        "SELECT key, value, overridden FROM feature_flags ORDER BY key",
    )
    .await
    .iter()
    .map(|r| {
        (
            r.text("key").unwrap(),
            r.text("value").unwrap(),
            r.i64("overridden").unwrap(),
        )
    })
    .collect()
}

/// FR-TENANT-003, FR-LOG-003: renaming and changing the plan is audited with old and new
/// values; the plan change re-derives non-overridden flags and leaves overridden ones alone.
#[test]
fn fr_tenant_003_update_changes_name_and_plan_and_rederives_flags() {
    block_on(async {
        let p = platform().await;
        let t = provision(&p, "acme").await.tenant;
        // The operator overrides max_users; sso and free_banner still follow the plan.
        p.sql
            .exec_raw(
                "UPDATE feature_flags SET value = '7', overridden = 1 WHERE key = 'max_users'",
            )
            .unwrap();
        p.clock.advance(1000);
        let out = tenants::update(
            &p,
            &op(),
            &t.id,
            UpdateTenant {
                name: Some(TenantName::parse("Acme Corp").unwrap()),
                plan: Some(Plan::parse("pro").unwrap()),
                expected_version: Some(1),
            },
            "req-up",
        )
        .await
        .unwrap();
        assert!(out.changed && out.flags_changed);
        assert_eq!(out.tenant.name.as_str(), "Acme Corp");
        assert_eq!(out.tenant.plan.as_str(), "pro");
        assert_eq!(out.tenant.version, 2);
        assert_eq!(out.tenant.updated_at, START_MS + 1000);
        assert_eq!(tenants::get(&p, &t.id).await.unwrap(), out.tenant);

        assert_eq!(
            flags_of(&p).await,
            [
                ("audit_export".to_owned(), "true".to_owned(), 0),
                ("max_users".to_owned(), "7".to_owned(), 1),
                ("sso".to_owned(), "true".to_owned(), 0),
            ]
        );
        let fv = rows(&p.sql, "SELECT flags_version FROM tenants").await;
        assert_eq!(fv[0].i64("flags_version").unwrap(), 1);
        let sso = rows(
            &p.sql,
            "SELECT version, updated_by FROM feature_flags WHERE key = 'sso'",
        )
        .await;
        assert_eq!(sso[0].i64("version").unwrap(), 2);
        assert_eq!(sso[0].text("updated_by").unwrap(), "op-1");

        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.update");
        assert_eq!(last.text("actor_id").unwrap(), "op-1");
        assert_eq!(last.text("request_id").unwrap(), "req-up");
        let m = meta(&last);
        assert_eq!(m["changes"]["name"]["old"], "acme Inc");
        assert_eq!(m["changes"]["name"]["new"], "Acme Corp");
        assert_eq!(m["changes"]["plan"]["old"], "free");
        assert_eq!(m["changes"]["plan"]["new"], "pro");

        // Back to free: audit_export goes, free_banner comes back, the override stays.
        tenants::update(
            &p,
            &op(),
            &t.id,
            UpdateTenant {
                plan: Some(Plan::parse("free").unwrap()),
                ..Default::default()
            },
            "r",
        )
        .await
        .unwrap();
        assert_eq!(
            flags_of(&p).await,
            [
                ("free_banner".to_owned(), "true".to_owned(), 0),
                ("max_users".to_owned(), "7".to_owned(), 1),
                ("sso".to_owned(), "false".to_owned(), 0),
            ]
        );
    });
}

/// Updates: a no-op writes nothing; a stale version, an unknown plan, a pending deletion and a
/// purged tenant are refused.
#[test]
fn update_refusals_and_no_ops() {
    block_on(async {
        let p = platform().await;
        let t = provision(&p, "acme").await.tenant;
        let audit_before = outbox(&p.sql).await.len();
        let same = UpdateTenant {
            name: Some(t.name.clone()),
            plan: Some(t.plan.clone()),
            expected_version: None,
        };
        let out = tenants::update(&p, &op(), &t.id, same, "r").await.unwrap();
        assert!(!out.changed);
        assert_eq!(out.tenant, t);
        assert_eq!(outbox(&p.sql).await.len(), audit_before);

        let rename = |v| UpdateTenant {
            name: Some(TenantName::parse("New").unwrap()),
            plan: None,
            expected_version: v,
        };
        let err = tenants::update(&p, &op(), &t.id, rename(Some(7)), "r")
            .await
            .unwrap_err();
        assert_eq!(err, UpdateTenantError::VersionConflict { current: 1 });
        let err = tenants::update(
            &p,
            &op(),
            &t.id,
            UpdateTenant {
                plan: Some(Plan::parse("platinum").unwrap()),
                ..Default::default()
            },
            "r",
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "unknown_plan");

        tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        let err = tenants::update(&p, &op(), &t.id, rename(None), "r")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "tenant_pending_deletion");
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(
            (last.text("action").unwrap(), last.text("outcome").unwrap()),
            ("tenant.update".to_owned(), "failure".to_owned())
        );

        let unknown = TenantId::parse("00000000-0000-4000-8000-000000000009").unwrap();
        let err = tenants::update(&p, &op(), &unknown, rename(None), "r")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "tenant_not_found");
    });
}

/// A concurrent writer between the read and the batch: the guarded batch writes nothing (not
/// even its audit row), then the retry applies on the new version; with an expected version it
/// is a conflict instead.
#[test]
fn update_retries_a_lost_race_and_leaves_no_stray_audit_row() {
    block_on(async {
        let p = wrapped().await;
        let t = provision(&p, "acme").await.tenant;
        let bump = format!(
            "UPDATE tenants SET version = version + 1 WHERE id = '{}'",
            t.id
        );
        *p.sql.before_batch.borrow_mut() = Some(bump.clone());
        let out = tenants::update(
            &p,
            &op(),
            &t.id,
            UpdateTenant {
                name: Some(TenantName::parse("Renamed").unwrap()),
                ..Default::default()
            },
            "r",
        )
        .await
        .unwrap();
        assert_eq!(out.tenant.version, 3);
        let updates = rows(
            &p.sql.inner,
            "SELECT COUNT(*) AS n FROM audit_outbox WHERE action = 'tenant.update'",
        )
        .await;
        assert_eq!(updates[0].i64("n").unwrap(), 1);

        *p.sql.before_batch.borrow_mut() = Some(bump);
        let err = tenants::update(
            &p,
            &op(),
            &t.id,
            UpdateTenant {
                name: Some(TenantName::parse("Again").unwrap()),
                plan: None,
                expected_version: Some(3),
            },
            "r",
        )
        .await
        .unwrap_err();
        assert_eq!(err, UpdateTenantError::VersionConflict { current: 4 });
        let updates = rows(
            &p.sql.inner,
            "SELECT COUNT(*) AS n FROM audit_outbox WHERE action = 'tenant.update'",
        )
        .await;
        assert_eq!(updates[0].i64("n").unwrap(), 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Suspend and activate
// ---------------------------------------------------------------------------------------------

/// FR-OPS-001: a session started while a suspension is being committed is revoked by it and
/// gets its edge marker too, so its access token stays refused after the tenant is activated
/// again. A sign-in's session insert is placed at every point of the suspension's statements
/// (each statement gives way to the other, as on D1); wherever it lands, every session the
/// suspension revoked has a marker.
#[test]
fn fr_ops_001_a_session_started_during_a_suspension_gets_its_marker() {
    for head_start in 0..8 {
        block_on(async {
            let p = platform().await;
            let got = provision(&p, "acme").await;
            let t = got.tenant;
            p.sql.interleave();
            let sign_in = async {
                for _ in 0..head_start {
                    p.sql.query(Stmt::new("SELECT 1")).await.unwrap();
                }
                p.sql
                    .execute(
                        Stmt::new(
                            "INSERT INTO sessions (id, tenant_id, user_id, family_id,
                               refresh_token_hash, created_at, expires_at)
                             VALUES ('s-race', ?1, ?2, 's-race', 'hash-race', ?3, ?4)",
                        )
                        .bind(t.id.as_str())
                        .bind(got.owner_user_id.as_str())
                        .bind(START_MS)
                        .bind(START_MS + 86_400_000),
                    )
                    .await
                    .unwrap();
            };
            let operator = op();
            let suspend = tenants::suspend(&p, &operator, &t.id, None, "req-s");
            let (out, ()) = futures_util::future::join(suspend, sign_in).await;
            assert!(out.unwrap().changed);
            let revoked = rows(
                &p.sql,
                "SELECT family_id FROM sessions WHERE revoked_reason = 'tenant_suspended'",
            )
            .await;
            for r in &revoked {
                let sid = r.text("family_id").unwrap();
                assert!(
                    p.kv.get(&crate::sessions::session_marker_key(&sid), None)
                        .await
                        .unwrap()
                        .is_some(),
                    "session {sid} revoked by the suspension has no edge marker \
                     (sign-in after {head_start} statements)"
                );
            }
        });
    }
}

/// FR-OPS-001: suspension writes D1 (status, reason, sessions revoked, audit row) then the KV
/// marker the edge reads; activation clears both. Repeating either is a no-op.
#[test]
fn fr_ops_001_suspend_sets_the_edge_marker_and_activate_clears_it() {
    block_on(async {
        let p = platform().await;
        let got = provision(&p, "acme").await;
        let t = got.tenant;
        add_session(&p.sql, &t.id, &got.owner_user_id, "s-1");
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Active
        );

        p.clock.advance(5000);
        let reason = SuspensionReason::parse("unpaid invoice").unwrap();
        let out = tenants::suspend(&p, &op(), &t.id, Some(reason), "req-s")
            .await
            .unwrap();
        assert!(out.changed);
        assert_eq!(out.edge, EdgeSync::Synced);
        assert_eq!(out.tenant.status, TenantStatus::Suspended);
        assert_eq!(
            out.tenant.suspended_reason.as_deref(),
            Some("unpaid invoice")
        );
        assert_eq!(out.tenant.suspended_at, Some(START_MS + 5000));
        assert_eq!(tenants::get(&p, &t.id).await.unwrap(), out.tenant);
        assert_eq!(
            p.kv.get(&edge_marker_key(&t.id), None).await.unwrap(),
            Some(b"suspended".to_vec())
        );
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Suspended
        );
        assert!(!tenant_edge_status(&p, &t.id).await.unwrap().is_active());

        let s = rows(
            &p.sql,
            "SELECT status, revoked_reason, revoked_at FROM sessions",
        )
        .await;
        assert_eq!(s[0].text("status").unwrap(), "revoked");
        assert_eq!(s[0].text("revoked_reason").unwrap(), "tenant_suspended");

        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.suspend");
        assert_eq!(last.text("request_id").unwrap(), "req-s");
        assert_eq!(meta(&last)["reason"], "unpaid invoice");

        let n = outbox(&p.sql).await.len();
        let again = tenants::suspend(&p, &op(), &t.id, None, "r").await.unwrap();
        assert!(!again.changed);
        assert_eq!(
            again.tenant.suspended_reason.as_deref(),
            Some("unpaid invoice")
        );
        assert_eq!(outbox(&p.sql).await.len(), n);

        let out = tenants::activate(&p, &op(), &t.id, "req-a").await.unwrap();
        assert!(out.changed);
        assert_eq!(out.tenant.status, TenantStatus::Active);
        assert_eq!(
            (out.tenant.suspended_reason, out.tenant.suspended_at),
            (None, None)
        );
        assert_eq!(p.kv.get(&edge_marker_key(&t.id), None).await.unwrap(), None);
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Active
        );
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.activate");
        // Revoked sessions stay revoked.
        let s = rows(&p.sql, "SELECT status FROM sessions").await;
        assert_eq!(s[0].text("status").unwrap(), "revoked");

        let again = tenants::activate(&p, &op(), &t.id, "r").await.unwrap();
        assert!(!again.changed);
    });
}

/// FR-OPS-001: when the KV write fails after D1 changed, the outcome says the edge is pending;
/// repeating the operation changes nothing in D1 and repairs the marker.
#[test]
fn fr_ops_001_failed_marker_write_is_reported_and_repaired_by_a_retry() {
    block_on(async {
        let p = wrapped().await;
        let t = provision(&p, "acme").await.tenant;
        p.kv.fail.set(true);
        let out = tenants::suspend(&p, &op(), &t.id, None, "r").await.unwrap();
        assert!(out.changed);
        assert!(matches!(out.edge, EdgeSync::Pending { .. }));
        assert_eq!(out.tenant.status, TenantStatus::Suspended);
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Active
        );

        p.kv.fail.set(false);
        let retry = tenants::suspend(&p, &op(), &t.id, None, "r").await.unwrap();
        assert!(!retry.changed);
        assert_eq!(retry.edge, EdgeSync::Synced);
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Suspended
        );
        let suspends = rows(
            &p.sql.inner,
            "SELECT COUNT(*) AS n FROM audit_outbox WHERE action = 'tenant.suspend'",
        )
        .await;
        assert_eq!(suspends[0].i64("n").unwrap(), 1);
    });
}

/// FR-OPS-001: an unknown marker value refuses (fail closed); unknown tenants and pending
/// deletions are refused by suspend and activate.
#[test]
fn fr_ops_001_edge_status_fails_closed_and_refusals() {
    block_on(async {
        let p = platform().await;
        let t = provision(&p, "acme").await.tenant;
        p.kv.put(&edge_marker_key(&t.id), b"???", None)
            .await
            .unwrap();
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Suspended
        );
        p.kv.delete(&edge_marker_key(&t.id)).await.unwrap();

        let unknown = TenantId::parse("00000000-0000-4000-8000-000000000009").unwrap();
        let err = tenants::suspend(&p, &op(), &unknown, None, "r")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "tenant_not_found");

        tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        let err = tenants::suspend(&p, &op(), &t.id, None, "r")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "tenant_pending_deletion");
        let err = tenants::activate(&p, &op(), &t.id, "r").await.unwrap_err();
        assert_eq!(err.code(), "tenant_pending_deletion");
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.activate");
        assert_eq!(last.text("outcome").unwrap(), "failure");
    });
}

// ---------------------------------------------------------------------------------------------
// Delete, restore, purge
// ---------------------------------------------------------------------------------------------

/// FR-OPS-002: deletion starts a 30-day grace period (marker `deleted`, sessions revoked);
/// restore within it returns the tenant to active and clears the marker.
#[test]
fn fr_ops_002_delete_then_restore_within_the_grace_period() {
    block_on(async {
        let p = platform().await;
        let got = provision(&p, "acme").await;
        let t = got.tenant;
        add_session(&p.sql, &t.id, &got.owner_user_id, "s-1");
        let out = tenants::delete(&p, &op(), &t.id, "req-d").await.unwrap();
        assert!(out.changed);
        assert_eq!(out.tenant.status, TenantStatus::PendingDeletion);
        assert_eq!(out.tenant.deletion_requested_at, Some(START_MS));
        assert_eq!(out.tenant.purge_after, Some(START_MS + 30 * DAY_MS));
        assert_eq!(tenants::get(&p, &t.id).await.unwrap(), out.tenant);
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Deleted
        );
        let s = rows(&p.sql, "SELECT status, revoked_reason FROM sessions").await;
        assert_eq!(s[0].text("revoked_reason").unwrap(), "tenant_deleted");
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.delete");
        assert_eq!(meta(&last)["previous_status"], "active");
        assert_eq!(meta(&last)["purge_after"], START_MS + 30 * DAY_MS);

        // Deleting again keeps the original purge date.
        p.clock.advance(DAY_MS);
        let again = tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        assert!(!again.changed);
        assert_eq!(again.tenant.purge_after, Some(START_MS + 30 * DAY_MS));

        p.clock.advance(28 * DAY_MS);
        let out = tenants::restore(&p, &op(), &t.id, "req-r").await.unwrap();
        assert!(out.changed);
        assert_eq!(out.tenant.status, TenantStatus::Active);
        assert_eq!(
            (out.tenant.purge_after, out.tenant.deletion_requested_at),
            (None, None)
        );
        assert_eq!(tenants::get(&p, &t.id).await.unwrap(), out.tenant);
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Active
        );
        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.restore");
        assert_eq!(meta(&last)["status"], "active");

        // Nothing to restore now.
        let err = tenants::restore(&p, &op(), &t.id, "r").await.unwrap_err();
        assert_eq!(
            err,
            RestoreTenantError::NotPendingDeletion {
                status: TenantStatus::Active
            }
        );
        // The data survived.
        assert_eq!(rows(&p.sql, "SELECT id FROM users").await.len(), 1);
    });
}

/// FR-OPS-002: a deletion never lifts a suspension: a suspended tenant restored is suspended.
#[test]
fn fr_ops_002_restore_returns_a_suspended_tenant_to_suspended() {
    block_on(async {
        let p = platform().await;
        let t = provision(&p, "acme").await.tenant;
        let reason = SuspensionReason::parse("abuse").unwrap();
        tenants::suspend(&p, &op(), &t.id, Some(reason), "r")
            .await
            .unwrap();
        let out = tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        assert_eq!(out.tenant.suspended_reason.as_deref(), Some("abuse"));
        let out = tenants::restore(&p, &op(), &t.id, "r").await.unwrap();
        assert_eq!(out.tenant.status, TenantStatus::Suspended);
        assert_eq!(out.tenant.suspended_reason.as_deref(), Some("abuse"));
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Suspended
        );
    });
}

/// FR-OPS-002, ERR-RES-410: after 30 days (not a millisecond before) the purge deletes every
/// child row, leaves a tombstone answering Gone, frees the domain, audits `tenant.purge` by the
/// system, and is idempotent. Restore is refused once the grace period is over.
#[test]
fn fr_ops_002_purge_after_30_days() {
    block_on(async {
        let p = platform().await;
        let got = provision(&p, "acme").await;
        let keep = provision(&p, "bolt").await;
        let t = got.tenant;
        add_session(&p.sql, &t.id, &got.owner_user_id, "s-1");
        add_session(&p.sql, &keep.tenant.id, &keep.owner_user_id, "s-2");
        p.sql
            .exec_raw(&format!(
                "INSERT INTO api_keys (id, app_id, tenant_id, prefix, key_hash, scopes, created_at)
                 VALUES ('k1', 'app-crm', '{}', 'ep_', 'kh1', '[]', 0);
                 INSERT INTO password_policies (tenant_id, updated_at) VALUES ('{}', 0);
                 INSERT INTO password_history (user_id, password_hash, created_at) VALUES ('{}', 'x', 0);",
                t.id, t.id, got.owner_user_id
            ))
            .unwrap();
        tenants::delete(&p, &op(), &t.id, "r").await.unwrap();

        p.clock.advance(30 * DAY_MS - 1);
        let report = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(report, PurgeReport::default());
        tenants::get(&p, &t.id).await.unwrap();

        p.clock.advance(1);
        let err = tenants::restore(&p, &op(), &t.id, "r").await.unwrap_err();
        assert_eq!(
            err,
            RestoreTenantError::GracePeriodOver {
                purge_after: p.clock.now_ms()
            }
        );

        let report = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(report.purged, std::slice::from_ref(&t.id));
        assert!(report.failed.is_empty() && !report.more_due);
        assert!(report.rows_deleted >= 8, "{report:?}");

        assert_eq!(
            tenants::get(&p, &t.id).await.unwrap_err(),
            GetTenantError::Gone { id: t.id.clone() }
        );
        let tomb = rows(&p.sql, "SELECT * FROM tenants WHERE domain IS NULL").await;
        assert_eq!(tomb.len(), 1);
        assert_eq!(tomb[0].text("status").unwrap(), "deleted");
        assert_eq!(tomb[0].text("name").unwrap(), "(purged)");
        assert_eq!(tomb[0].i64("deleted_at").unwrap(), p.clock.now_ms());
        assert_eq!(
            tenant_edge_status(&p, &t.id).await.unwrap(),
            EdgeStatus::Deleted
        );

        // Every child of the purged tenant is gone; the other tenant is untouched.
        for (table, stmt) in [
            ("users", "SELECT tenant_id FROM users"),
            ("invitations", "SELECT tenant_id FROM invitations"),
            ("feature_flags", "SELECT tenant_id FROM feature_flags"),
            ("tenant_apps", "SELECT tenant_id FROM tenant_apps"),
            ("sessions", "SELECT tenant_id FROM sessions"),
            ("api_keys", "SELECT tenant_id FROM api_keys"),
            (
                "password_policies",
                "SELECT tenant_id FROM password_policies",
            ),
        ] {
            let left = rows(&p.sql, stmt).await;
            assert!(
                left.iter()
                    .all(|r| r.text("tenant_id").unwrap() == keep.tenant.id.as_str()),
                "{table}"
            );
        }
        assert!(rows(&p.sql, "SELECT id FROM password_history")
            .await
            .is_empty());
        assert_eq!(rows(&p.sql, "SELECT id FROM users").await.len(), 1);
        assert_eq!(rows(&p.sql, "SELECT id FROM sessions").await.len(), 1);

        let last = outbox(&p.sql).await.pop().unwrap();
        assert_eq!(last.text("action").unwrap(), "tenant.purge");
        assert_eq!(last.text("actor_id").unwrap(), "system:tenant-purge");
        assert_eq!(last.text("actor_type").unwrap(), "system");
        assert_eq!(last.text("tenant_id").unwrap(), t.id.as_str());

        // Idempotent: nothing more to purge; lifecycle calls answer Gone.
        let again = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(again, PurgeReport::default());
        let err = tenants::delete(&p, &op(), &t.id, "r").await.unwrap_err();
        assert_eq!(err.code(), "tenant_gone");
        let err = tenants::restore(&p, &op(), &t.id, "r").await.unwrap_err();
        assert_eq!(err.code(), "tenant_gone");

        // The domain is free again.
        let reborn = provision(&p, "acme").await;
        assert_ne!(reborn.tenant.id, t.id);
    });
}

/// FR-OPS-002: a run purges at most PURGE_BATCH tenants and says more are due.
#[test]
fn fr_ops_002_purge_is_batch_limited() {
    block_on(async {
        let p = platform().await;
        let n = PURGE_BATCH as usize + 2;
        for i in 0..n {
            let t = provision(&p, &format!("t{i:03}")).await.tenant;
            tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        }
        p.clock.advance(GRACE_PERIOD_MS);
        let first = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(first.purged.len(), PURGE_BATCH as usize);
        assert!(first.more_due);
        let second = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(second.purged.len(), 2);
        assert!(!second.more_due);
        let mut all: Vec<_> = first.purged.iter().chain(&second.purged).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    });
}

/// FR-OPS-002: the purge's due query reads the partial purge index.
#[test]
fn fr_ops_002_purge_query_uses_its_index() {
    block_on(async {
        let p = platform().await;
        let plan = p.sql.explain(purge::due_stmt(START_MS)).unwrap();
        assert!(plan.contains("USING INDEX tenants_purge"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    });
}

/// FR-LOG-003: every change of a tenant's life leaves exactly one outbox row naming the actor,
/// in order.
#[test]
fn fr_log_003_every_change_is_audited_with_its_actor() {
    block_on(async {
        let p = platform().await;
        let t = provision(&p, "acme").await.tenant;
        let other = Actor::operator("op-2");
        tenants::update(
            &p,
            &other,
            &t.id,
            UpdateTenant {
                name: Some(TenantName::parse("Acme 2").unwrap()),
                ..Default::default()
            },
            "r",
        )
        .await
        .unwrap();
        tenants::suspend(&p, &other, &t.id, None, "r")
            .await
            .unwrap();
        tenants::activate(&p, &op(), &t.id, "r").await.unwrap();
        tenants::delete(&p, &other, &t.id, "r").await.unwrap();
        tenants::restore(&p, &op(), &t.id, "r").await.unwrap();
        tenants::delete(&p, &op(), &t.id, "r").await.unwrap();
        p.clock.advance(GRACE_PERIOD_MS);
        tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        let trail: Vec<(String, String, String)> = outbox(&p.sql)
            .await
            .iter()
            .map(|r| {
                (
                    r.text("action").unwrap(),
                    r.text("actor_id").unwrap(),
                    r.text("outcome").unwrap(),
                )
            })
            .collect();
        let want = [
            ("tenant.create", "op-1"),
            ("user.invite", "op-1"),
            ("tenant.update", "op-2"),
            ("tenant.suspend", "op-2"),
            ("tenant.activate", "op-1"),
            ("tenant.delete", "op-2"),
            ("tenant.restore", "op-1"),
            ("tenant.delete", "op-1"),
            ("tenant.purge", "system:tenant-purge"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned(), "success".to_owned()))
            .collect();
        assert_eq!(trail, want);
        let ids = rows(&p.sql, "SELECT COUNT(DISTINCT id) AS n FROM audit_outbox").await;
        assert_eq!(ids[0].i64("n").unwrap(), 9);
    });
}

/// NFR-CAP-002: a tenant at the spec's scale (10,000 users, each with a session) is purged in
/// one run, and the other tenants' users are untouched.
#[test]
fn nfr_cap_002_purge_handles_a_tenant_with_10000_users() {
    block_on(async {
        let p = platform().await;
        let big = provision(&p, "big").await.tenant;
        let small = provision(&p, "small").await;
        p.sql
            .exec_raw(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
                 INSERT INTO users (id, tenant_id, email, role, status, created_at, updated_at)
                 SELECT 'u-' || i, '{t}', 'user' || i || '@big.test', 'user', 'active', 0, 0 FROM n;
                 INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash,
                   created_at, expires_at)
                 SELECT 's-' || id, tenant_id, id, 's-' || id, 'h-' || id, 0, 1
                 FROM users WHERE tenant_id = '{t}';",
                t = big.id
            ))
            .unwrap();
        let users = rows(&p.sql, "SELECT COUNT(*) AS n FROM users").await;
        assert_eq!(users[0].i64("n").unwrap(), 10_001);
        tenants::delete(&p, &op(), &big.id, "r").await.unwrap();
        p.clock.advance(GRACE_PERIOD_MS);
        let report = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(report.purged, std::slice::from_ref(&big.id));
        assert!(report.rows_deleted >= 20_000, "{report:?}");
        let left = rows(&p.sql, "SELECT id FROM users").await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].text("id").unwrap(), small.owner_user_id);
        assert!(rows(&p.sql, "SELECT id FROM sessions").await.is_empty());
    });
}

/// FR-OPS-002, CON-COMP-001: the OpenID provider's rows of a purged tenant (pending sign-ins,
/// authorization codes, grants) go with it; the tenant row stays as a tombstone, so nothing
/// cascades from it, and Spin's SQLite does not enforce foreign keys at all.
#[test]
fn fr_ops_002_purge_removes_the_tenants_openid_rows() {
    block_on(async {
        let p = platform().await;
        let got = provision(&p, "acme").await;
        let keep = provision(&p, "bolt").await;
        for (tenant, user, n) in [
            (&got.tenant.id, &got.owner_user_id, 1),
            (&keep.tenant.id, &keep.owner_user_id, 2),
        ] {
            p.sql
                .exec_raw(&format!(
                    "INSERT INTO oidc_login_flows (id_hash, client_id, redirect_uri, scope,
                         code_challenge, tenant_id, csrf_hash, created_at, expires_at)
                     VALUES ('f{n}', 'app-crm', 'https://a.example/cb', 'openid', 'c', '{tenant}',
                         'x', 0, 1);
                     INSERT INTO oidc_codes (code_hash, client_id, redirect_uri, scope,
                         code_challenge, tenant_id, user_id, auth_time, created_at, expires_at)
                     VALUES ('c{n}', 'app-crm', 'https://a.example/cb', 'openid', 'c', '{tenant}',
                         '{user}', 0, 0, 1);
                     INSERT INTO oidc_grants (session_id, client_id, tenant_id, scope, auth_time,
                         created_at)
                     VALUES ('s{n}', 'app-crm', '{tenant}', 'openid', 0, 0);"
                ))
                .unwrap();
        }
        // As on Spin: nothing cascades from the users the purge deletes.
        p.sql.exec_raw("PRAGMA foreign_keys = OFF").unwrap();
        tenants::delete(&p, &op(), &got.tenant.id, "r")
            .await
            .unwrap();
        p.clock.advance(GRACE_PERIOD_MS);
        let report = tenants::purge_due(&p, p.clock.now_ms()).await.unwrap();
        assert_eq!(report.purged, std::slice::from_ref(&got.tenant.id));

        for (table, stmt) in [
            ("oidc_login_flows", "SELECT tenant_id FROM oidc_login_flows"),
            ("oidc_codes", "SELECT tenant_id FROM oidc_codes"),
            ("oidc_grants", "SELECT tenant_id FROM oidc_grants"),
        ] {
            let left = rows(&p.sql, stmt).await;
            assert_eq!(left.len(), 1, "{table}: {left:?}");
            assert_eq!(
                left[0].text("tenant_id").unwrap(),
                keep.tenant.id.as_str(),
                "{table}"
            );
        }
    });
}
