//! NFR-MON-001 on real SQLite with the migrations and the fixed clock: each anomaly rule fires
//! above its threshold and not below, resolves after two clear runs, takes its thresholds from
//! the `ALERT_ANOMALY_*` variables, stays within its tenant, and no client address is stored.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;

use super::*;
use crate::alerts::anomalies::{self as rules, AnomalyThresholds};
use crate::alerts::{evaluate, for_tenant};
use crate::audit::Actor;
use crate::ports::{Clock, Row};
use crate::sessions::{self, RefreshError};
use crate::signin::{self, LoginError, LoginRequest};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
use crate::testing::TestPlatform;
use crate::users;

const PASSWORD: &str = "correct horse battery staple";
const MIN: i64 = 60_000;

/// A platform with two tenants, `acme` and `beta`, each with an active owner; returns their
/// ids.
async fn two_tenants() -> (TestPlatform, String, String) {
    let p = TestPlatform::new().await;
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([5u8; 32]));
    let mut ids = Vec::new();
    for domain in ["acme", "beta"] {
        let req = ProvisionTenant {
            name: TenantName::parse(&format!("{domain} Inc")).unwrap(),
            domain: TenantDomain::parse(domain).unwrap(),
            plan: Plan::parse("free").unwrap(),
            owner_email: Email::parse(&format!("owner@{domain}.test")).unwrap(),
            apps: vec![],
        };
        let out = tenants::provision(
            &p,
            &Actor::operator("op-1"),
            req,
            None,
            "r",
            &crate::http::links_under("https://e.test"),
        )
        .await
        .unwrap()
        .provisioned;
        let token = out.invitation_link.split_once("token=").unwrap().1;
        users::accept_invitation(&p, token, PASSWORD, "r")
            .await
            .unwrap();
        ids.push(out.tenant.id.as_str().to_owned());
    }
    let beta = ids.pop().unwrap();
    let acme = ids.pop().unwrap();
    (p, acme, beta)
}

fn login_as(domain: &str, email: &str, password: &str, client: &str) -> LoginRequest {
    LoginRequest::typed(domain, email, password.into(), Some(client.into())).unwrap()
}

async fn sign_in(p: &TestPlatform, domain: &str, client: &str) -> sessions::TokenPair {
    let email = format!("owner@{domain}.test");
    signin::login(p, &login_as(domain, &email, PASSWORD, client), "r")
        .await
        .unwrap()
}

async fn fail_sign_in(p: &TestPlatform, domain: &str, email: &str) {
    let req = login_as(domain, email, "wrong password", "198.51.100.77");
    let e = signin::login(p, &req, "r").await.unwrap_err();
    assert!(matches!(
        e,
        LoginError::InvalidCredentials | LoginError::RateLimited { .. }
    ));
}

/// Runs the alerts job now and returns the firing alerts as (rule, subject, tenant).
async fn run(p: &TestPlatform) -> Vec<(String, String, Option<String>)> {
    let out = evaluate(p, p.clock.now_ms()).await.unwrap();
    assert!(
        out.causes.iter().all(|c| !c.contains("anomal")),
        "{:?}",
        out.causes
    );
    let rows = p
        .sql
        .query(Stmt::new(
            "SELECT rule, subject, tenant_id FROM alerts WHERE state = 'firing' ORDER BY dedup_key",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.text("rule").unwrap(),
                r.text("subject").unwrap(),
                r.opt_text("tenant_id").unwrap(),
            )
        })
        .collect()
}

fn of_rule<'a>(
    firing: &'a [(String, String, Option<String>)],
    rule: &str,
) -> Vec<&'a (String, String, Option<String>)> {
    firing.iter().filter(|(r, _, _)| r == rule).collect()
}

/// Every text value of every table, for the scan for raw addresses.
async fn every_text(p: &TestPlatform) -> Vec<(String, String)> {
    let tables = p
        .sql
        .query(Stmt::new(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        ))
        .await
        .unwrap();
    let mut out = Vec::new();
    for t in &tables {
        let name = t.text("name").unwrap();
        let table = crate::backup::dump::TABLES
            .iter()
            .find(|tb| tb.name == name);
        let Some(table) = table else { continue };
        let rows: Vec<Row> = p
            .sql
            .query(Stmt::new(table.page).bind(0i64).bind(100_000i64))
            .await
            .unwrap();
        for r in &rows {
            out.push((name.clone(), format!("{r:?}")));
        }
    }
    out
}

async fn assert_no_address_stored(p: &TestPlatform, addresses: &[&str]) {
    let all = every_text(p).await;
    assert!(all.iter().any(|(t, _)| t == "anomaly_addresses"), "scanned");
    for (table, row) in &all {
        for a in addresses {
            assert!(!row.contains(a), "{a} stored in {table}: {row}");
        }
    }
}

async fn tenant_audit(p: &TestPlatform, tenant: &str) -> Vec<String> {
    p.sql
        .query(
            Stmt::new(
                "SELECT action || ' ' || json_extract(metadata, '$.rule') AS a FROM audit_outbox
                 WHERE tenant_id = ?1 AND action LIKE 'alert.%' ORDER BY seq",
            )
            .bind(tenant),
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.text("a").unwrap())
        .collect()
}

#[test]
fn nfr_mon_001_thresholds_come_from_anomaly_variables_and_bad_ones_are_ignored() {
    block_on(async {
        let p = TestPlatform::new().await;
        let (t, warnings) = AnomalyThresholds::from_secrets(&p.secrets);
        assert_eq!(t, AnomalyThresholds::default());
        assert!(warnings.is_empty());
        assert_eq!((t.failed_sign_ins, t.failed_sign_in_minutes), (50, 5));
        for (name, value) in [
            (rules::FAILED_SIGN_INS_VAR, "7"),
            (rules::FAILED_SIGN_IN_MINUTES_VAR, "10"),
            (rules::REFRESH_REUSES_VAR, "3"),
            (rules::REFRESH_REUSE_MINUTES_VAR, "60"),
            (rules::ACCOUNT_ADDRESSES_VAR, "2"),
            (rules::KEY_ADDRESS_FACTOR_VAR, "nope"),
            (rules::KEY_ADDRESS_MIN_VAR, "0"),
        ] {
            p.secrets.set(name, value);
        }
        let (t, warnings) = AnomalyThresholds::from_secrets(&p.secrets);
        assert_eq!(
            t,
            AnomalyThresholds {
                failed_sign_ins: 7,
                failed_sign_in_minutes: 10,
                refresh_reuses: 3,
                refresh_reuse_minutes: 60,
                account_addresses: 2,
                ..AnomalyThresholds::default()
            }
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with(rules::KEY_ADDRESS_FACTOR_VAR));
        // A window past the counts' retention is refused too.
        p.secrets.set(rules::FAILED_SIGN_IN_MINUTES_VAR, "1441");
        let (t, warnings) = AnomalyThresholds::from_secrets(&p.secrets);
        assert_eq!(t.failed_sign_in_minutes, 5);
        assert_eq!(warnings.len(), 3);
    });
}

/// A burst of refused sign-ins (wrong passwords, unknown accounts) in one tenant fires at the
/// threshold, for that tenant only, audited in its log; it resolves after two clear runs.
#[test]
fn nfr_mon_001_failed_sign_in_burst_fires_per_tenant_and_resolves() {
    block_on(async {
        let (p, acme, beta) = two_tenants().await;
        p.secrets.set(rules::FAILED_SIGN_INS_VAR, "5");
        for i in 0..4 {
            let email = if i % 2 == 0 {
                "owner@acme.test".to_owned()
            } else {
                format!("nobody{i}@acme.test")
            };
            fail_sign_in(&p, "acme", &email).await;
        }
        // Another tenant's failures and an unknown tenant's count for nobody else.
        fail_sign_in(&p, "beta", "owner@beta.test").await;
        fail_sign_in(&p, "nosuchtenant", "owner@acme.test").await;
        assert!(of_rule(&run(&p).await, "failed_sign_in_burst").is_empty());

        fail_sign_in(&p, "acme", "someone@acme.test").await;
        let firing = run(&p).await;
        let burst = of_rule(&firing, "failed_sign_in_burst");
        assert_eq!(
            burst,
            vec![&(
                "failed_sign_in_burst".to_owned(),
                format!("tenant:{acme}"),
                Some(acme.clone())
            )]
        );
        assert_eq!(
            tenant_audit(&p, &acme).await,
            vec!["alert.fired failed_sign_in_burst"]
        );
        assert!(tenant_audit(&p, &beta).await.is_empty());
        let listed = for_tenant(&p, &acme).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            listed[0].summary.starts_with("5 failed sign-ins"),
            "{}",
            listed[0].summary
        );
        assert!(for_tenant(&p, &beta).await.unwrap().is_empty());

        // The failures leave the 5-minute window: one clear run keeps it, the second resolves.
        p.clock.advance(5 * MIN);
        assert_eq!(of_rule(&run(&p).await, "failed_sign_in_burst").len(), 1);
        p.clock.advance(5 * MIN);
        assert!(of_rule(&run(&p).await, "failed_sign_in_burst").is_empty());
        assert_eq!(
            tenant_audit(&p, &acme).await,
            vec![
                "alert.fired failed_sign_in_burst",
                "alert.resolved failed_sign_in_burst"
            ]
        );
    });
}

/// The default threshold is 50 in 5 minutes: 49 do not fire.
#[test]
fn nfr_mon_001_failed_sign_in_default_threshold() {
    block_on(async {
        let (p, acme, _) = two_tenants().await;
        let now = p.clock.now_ms();
        let stmts = (0..49)
            .map(|_| count_stmt(Signal::SignInFailed, &acme, now))
            .collect();
        p.sql.batch(stmts).await.unwrap();
        assert!(of_rule(&run(&p).await, "failed_sign_in_burst").is_empty());
        failed_sign_in(&p, "acme", now).await;
        assert_eq!(of_rule(&run(&p).await, "failed_sign_in_burst").len(), 1);
    });
}

/// A refresh token presented again fires `refresh_reuse` for its tenant (any reuse by
/// default, at least N with the variable), and it resolves once the window passes.
#[test]
fn nfr_mon_001_refresh_token_reuse_fires_for_its_tenant() {
    block_on(async {
        let (p, acme, _) = two_tenants().await;
        let first = sign_in(&p, "acme", "203.0.113.1").await;
        sessions::refresh(&p, &first.refresh_token, "r")
            .await
            .unwrap();
        assert!(of_rule(&run(&p).await, "refresh_reuse").is_empty());

        p.secrets.set(rules::REFRESH_REUSES_VAR, "2");
        let e = sessions::refresh(&p, &first.refresh_token, "r").await;
        assert_eq!(e.unwrap_err(), RefreshError::Reused);
        assert!(of_rule(&run(&p).await, "refresh_reuse").is_empty());

        p.secrets.set(rules::REFRESH_REUSES_VAR, "1");
        let firing = run(&p).await;
        assert_eq!(
            of_rule(&firing, "refresh_reuse"),
            vec![&(
                "refresh_reuse".to_owned(),
                format!("tenant:{acme}"),
                Some(acme.clone())
            )]
        );
        let alert = &for_tenant(&p, &acme).await.unwrap()[0];
        assert_eq!(alert.severity, "error");
        assert_eq!(alert.details["reuse_detections"], 1);

        p.clock.advance(15 * MIN);
        assert_eq!(of_rule(&run(&p).await, "refresh_reuse").len(), 1);
        p.clock.advance(5 * MIN);
        assert!(of_rule(&run(&p).await, "refresh_reuse").is_empty());
    });
}

/// A reuse detected while the edge marker cannot be written still counts: the answer asks for
/// a retry (which writes the marker), and the alert fires all the same.
#[test]
fn nfr_mon_001_a_reuse_counts_when_its_edge_marker_is_not_written() {
    block_on(async {
        let (p, acme, _) = two_tenants().await;
        let first = sign_in(&p, "acme", "203.0.113.1").await;
        sessions::refresh(&p, &first.refresh_token, "r")
            .await
            .unwrap();
        let p = crate::testing::FaultyPlatform::over(p);
        p.kv.fail.set(true);
        let e = sessions::refresh(&p, &first.refresh_token, "r").await;
        assert!(matches!(e, Err(RefreshError::EdgePending(_))), "{e:?}");
        let firing = run(&p.inner).await;
        assert_eq!(
            of_rule(&firing, "refresh_reuse"),
            vec![&(
                "refresh_reuse".to_owned(),
                format!("tenant:{acme}"),
                Some(acme.clone())
            )]
        );
        // The retry writes the marker and answers as a reuse.
        p.kv.fail.set(false);
        let again = sessions::refresh(&p, &first.refresh_token, "r").await;
        assert_eq!(again.unwrap_err(), RefreshError::Reused);
    });
}

/// An account signing in from more than N distinct addresses within an hour fires for that
/// account; the addresses are stored only as keyed hashes.
#[test]
fn nfr_mon_001_account_many_addresses_fires_above_the_threshold() {
    block_on(async {
        let (p, acme, beta) = two_tenants().await;
        p.secrets.set(rules::ACCOUNT_ADDRESSES_VAR, "2");
        let addresses = ["203.0.113.10", "203.0.113.11", "2001:db8::12"];
        // The same address twice counts once; beta's owner signs in from all three too, but
        // only after acme's check.
        sign_in(&p, "acme", addresses[0]).await;
        sign_in(&p, "acme", addresses[0]).await;
        sign_in(&p, "acme", addresses[1]).await;
        assert!(of_rule(&run(&p).await, "account_many_addresses").is_empty());

        sign_in(&p, "acme", addresses[2]).await;
        let firing = run(&p).await;
        let many = of_rule(&firing, "account_many_addresses");
        assert_eq!(many.len(), 1, "{firing:?}");
        assert!(many[0].1.starts_with(&format!("tenant:{acme}/user:")));
        assert_eq!(many[0].2.as_deref(), Some(acme.as_str()));
        let alert = &for_tenant(&p, &acme).await.unwrap()[0];
        assert_eq!(alert.details["distinct_addresses"], 3);
        assert!(for_tenant(&p, &beta).await.unwrap().is_empty());
        assert_no_address_stored(&p, &addresses).await;

        // An hour on, the sightings are out of the window: resolved after two clear runs.
        p.clock.advance(61 * MIN);
        sign_in(&p, "beta", addresses[0]).await;
        assert_eq!(of_rule(&run(&p).await, "account_many_addresses").len(), 1);
        p.clock.advance(5 * MIN);
        assert!(of_rule(&run(&p).await, "account_many_addresses").is_empty());
    });
}

/// The many-addresses rule sees every sign-in path, not only the password API: a sign-in the
/// risk check admits (passkey and SSO sign-ins, the login page) notes its address there.
#[test]
fn nfr_mon_001_passkey_and_sso_sign_ins_count_for_the_account_rule() {
    block_on(async {
        let (p, acme, _) = two_tenants().await;
        p.secrets.set(rules::ACCOUNT_ADDRESSES_VAR, "2");
        let owner = p
            .sql
            .query(
                Stmt::new("SELECT id, tenant_id, role FROM users WHERE tenant_id = ?1")
                    .bind(acme.as_str()),
            )
            .await
            .unwrap();
        let user = sessions::SessionUser {
            user_id: owner[0].text("id").unwrap(),
            tenant_id: owner[0].text("tenant_id").unwrap(),
            role: owner[0].text("role").unwrap(),
        };
        let strong = crate::risk::Factors {
            has_second_factor: true,
            asked_anyway: false,
            satisfied: true,
        };
        let methods = [
            crate::risk::SignInMethod::Passkey,
            crate::risk::SignInMethod::Sso,
            crate::risk::SignInMethod::Passkey,
        ];
        for (i, method) in methods.into_iter().enumerate() {
            let ctx = crate::risk::SignInContext {
                client: Some(format!("198.51.100.{}", 20 + i)),
                ..Default::default()
            };
            let mut d = crate::risk::decide(&p, &user, &ctx, method, None, strong, "r")
                .await
                .unwrap();
            d.commit(&p).await.unwrap();
        }
        let firing = run(&p).await;
        assert_eq!(
            of_rule(&firing, "account_many_addresses").len(),
            1,
            "{firing:?}"
        );
    });
}

/// Writes the key uses this isolate gathered, as the request metrics' flush does.
async fn flush_key_uses(p: &TestPlatform) {
    crate::metrics::flush(p, p.clock.now_ms()).await.unwrap();
    assert!(!key_uses_pending());
}

fn use_key(p: &TestPlatform, key: &str, tenant: Option<&str>, range: std::ops::Range<u32>) {
    for i in range {
        let addr = format!("192.0.2.{i}");
        note_key_use(key, tenant, Some(&addr), p.clock.now_ms());
        // A repeated address is noted once.
        note_key_use(key, tenant, Some(&addr), p.clock.now_ms());
    }
}

/// A key used from more than its usual addresses (K times its busiest hour of the last week,
/// at least the minimum) fires; one within bounds, or new with few addresses, does not.
#[test]
fn nfr_mon_001_api_key_many_addresses_compares_with_its_own_baseline() {
    block_on(async {
        let (p, acme, beta) = two_tenants().await;
        p.secrets.set(rules::KEY_ADDRESS_FACTOR_VAR, "4");
        p.secrets.set(rules::KEY_ADDRESS_MIN_VAR, "5");
        let (steady, fresh, wide) = ("a".repeat(32), "b".repeat(32), "c".repeat(32));
        // Three hours ago: the steady key from 3 addresses (its baseline), rolled up.
        use_key(&p, &steady, Some(&acme), 0..3);
        flush_key_uses(&p).await;
        p.clock.advance(3 * 60 * MIN);
        upkeep(&p, p.clock.now_ms()).await.unwrap();
        let hours = p
            .sql
            .query(Stmt::new("SELECT addresses FROM anomaly_key_hours"))
            .await
            .unwrap();
        assert_eq!(hours[0].i64("addresses").unwrap(), 3);

        // Now: 12 addresses is 4 times its baseline, not more; a new key from 4, below the
        // minimum; an app-wide key from 5, above the minimum with no history.
        use_key(&p, &steady, Some(&acme), 100..112);
        use_key(&p, &fresh, Some(&beta), 100..104);
        flush_key_uses(&p).await;
        assert!(of_rule(&run(&p).await, "api_key_many_addresses").is_empty());
        use_key(&p, &wide, None, 100..105);
        use_key(&p, &steady, Some(&acme), 112..113);
        flush_key_uses(&p).await;
        let firing = run(&p).await;
        let keys = of_rule(&firing, "api_key_many_addresses");
        assert_eq!(
            keys.iter()
                .map(|(_, s, t)| (s.clone(), t.clone()))
                .collect::<Vec<_>>(),
            vec![
                (format!("key:{wide}"), None),
                (format!("tenant:{acme}/key:{steady}"), Some(acme.clone())),
            ]
        );
        let alert = for_tenant(&p, &acme).await.unwrap();
        assert_eq!(alert[0].details["baseline"], 3);
        assert_eq!(alert[0].details["distinct_addresses"], 13);
        assert!(for_tenant(&p, &beta).await.unwrap().is_empty());
        assert_no_address_stored(&p, &["192.0.2."]).await;

        // Quiet for an hour: both resolve after two clear runs.
        p.clock.advance(61 * MIN);
        assert_eq!(of_rule(&run(&p).await, "api_key_many_addresses").len(), 2);
        p.clock.advance(5 * MIN);
        assert!(of_rule(&run(&p).await, "api_key_many_addresses").is_empty());
    });
}

/// Without a master key nothing about addresses is kept: an unkeyed hash of an IPv4 address
/// is reversed by trying them all.
#[test]
fn nfr_mon_001_no_master_key_no_address_rows() {
    block_on(async {
        let p = TestPlatform::new().await;
        assert_eq!(address_hash(&p.secrets, "203.0.113.1"), None);
        note_key_use("k", None, Some("203.0.113.1"), p.clock.now_ms());
        crate::metrics::flush(&p, p.clock.now_ms()).await.unwrap();
        signed_in(&p, "t", "u", Some("203.0.113.1"), p.clock.now_ms()).await;
        let n = p
            .sql
            .query(Stmt::new("SELECT count(*) AS n FROM anomaly_addresses"))
            .await
            .unwrap();
        assert_eq!(n[0].i64("n").unwrap(), 0);
        p.secrets
            .set(MASTER_KEY_SECRET, &STANDARD.encode([5u8; 32]));
        let h = address_hash(&p.secrets, "203.0.113.1").unwrap();
        assert_eq!(h.len(), 32);
        assert_ne!(h, crate::crypto::sha256_hex(b"203.0.113.1")[..32]);
        p.secrets
            .set(MASTER_KEY_SECRET, &STANDARD.encode([6u8; 32]));
        assert_ne!(address_hash(&p.secrets, "203.0.113.1").unwrap(), h);
    });
}
