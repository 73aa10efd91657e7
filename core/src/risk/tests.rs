//! Adaptive authentication on real SQLite with the real migrations: the decisions of the
//! password sign-in under the policy, the mailed code, blocking, devices and pruning.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;

use super::*;
use crate::audit::Actor;
use crate::ports::{Row, Sql, Stmt};
use crate::sessions::TokenPair;
use crate::signin::{self, LoginError, LoginRequest, SecondFactor, VerifyMfaError};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
use crate::testing::TestPlatform;
use crate::tokens::master_key::MASTER_KEY_SECRET;
use crate::users;
use crate::users::admin::{TenantActor, TenantRole};

const PASSWORD: &str = "correct horse battery staple";
const HOUR_MS: i64 = 3_600_000;

struct Fixture {
    p: TestPlatform,
    tenant_id: String,
    user_id: String,
}

async fn fixture() -> Fixture {
    let p = TestPlatform::new().await;
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([3u8; 32]));
    let req = ProvisionTenant {
        name: TenantName::parse("Acme Inc").unwrap(),
        domain: TenantDomain::parse("acme").unwrap(),
        plan: Plan::parse("free").unwrap(),
        owner_email: Email::parse("owner@acme.test").unwrap(),
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
    let token = out
        .invitation_link
        .split_once("token=")
        .unwrap()
        .1
        .to_owned();
    let accepted = users::accept_invitation(&p, &token, PASSWORD, "r")
        .await
        .unwrap();
    Fixture {
        p,
        tenant_id: out.tenant.id.as_str().to_owned(),
        user_id: accepted.user_id,
    }
}

fn from(device: &str, country: &str) -> SignInContext {
    SignInContext {
        device: Some(device.into()),
        device_label: Some("Firefox on Linux".into()),
        location: Location::parse(Some(country), Some("FRA"), Some(3320)),
        client: Some("203.0.113.9".into()),
        links_base: None,
    }
}

fn login(password: &str, ctx: SignInContext) -> LoginRequest {
    LoginRequest::typed(
        "acme",
        "owner@acme.test",
        password.into(),
        Some("203.0.113.9".into()),
    )
    .unwrap()
    .with_context(ctx)
}

async fn rows(p: &TestPlatform, sql: &'static str) -> Vec<Row> {
    p.sql.query(Stmt::new(sql)).await.unwrap()
}

/// The code of the newest sign-in code mail in the queue.
async fn mailed_code(p: &TestPlatform) -> String {
    let r = rows(
        p,
        "SELECT text_body FROM mail_queue WHERE subject = 'Your sign-in code' ORDER BY id DESC",
    )
    .await;
    let body = r[0].text("text_body").unwrap();
    body.split_whitespace()
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned()
}

/// The user's first sign-in, from their laptop in the US: the baseline.
async fn sign_in_at_home(f: &Fixture) -> TokenPair {
    signin::login(
        &f.p,
        &login(PASSWORD, from("laptop-0000000001", "US")),
        "r1",
    )
    .await
    .unwrap()
}

/// A day after [`sign_in_at_home`], a sign-in from a new phone in Germany (a new device and a
/// new country: medium risk with the default weights).
async fn sign_in_from_abroad(f: &Fixture) -> Result<TokenPair, LoginError> {
    f.p.clock.advance(24 * HOUR_MS);
    signin::login(
        &f.p,
        &login(PASSWORD, from("phone-00000000002", "DE")),
        "r2",
    )
    .await
}

async fn set_policy(f: &Fixture, policy: &RiskPolicy) {
    set_policy_on(&f.p, &f.tenant_id, &f.user_id, policy.clone()).await;
}

/// [`set_policy`] by the owner `user_id` of `tenant_id` on `p`.
async fn set_policy_on(p: &TestPlatform, tenant_id: &str, user_id: &str, policy: RiskPolicy) {
    let owner = TenantActor {
        user_id: user_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        role: TenantRole::Owner,
    };
    policy::save(p, &owner, &policy, "r").await.unwrap();
}

async fn outcomes(p: &TestPlatform) -> Vec<(String, String)> {
    rows(
        p,
        "SELECT level, outcome FROM sign_in_attempts ORDER BY created_at, rowid",
    )
    .await
    .iter()
    .map(|r| (r.text("level").unwrap(), r.text("outcome").unwrap()))
    .collect()
}

/// NFR-SEC-006 acceptance: a first sign-in sets the baseline; a new device in a new country is
/// stepped up with a mailed code (the user has no second factor); the same device again is not.
#[test]
fn nfr_sec_006_new_device_and_country_is_stepped_up_and_the_same_device_is_not() {
    block_on(async {
        let f = fixture().await;
        sign_in_at_home(&f).await;
        let err = sign_in_from_abroad(&f).await.unwrap_err();
        let LoginError::EmailCodeRequired { mfa_token } = err else {
            panic!("expected a mailed code, got {err:?}");
        };
        let code = mailed_code(&f.p).await;
        let done = signin::verify_mfa(&f.p, &mfa_token, &code, None, "r3")
            .await
            .unwrap();
        assert!(!done.tokens.access_token.is_empty());
        assert_eq!(
            outcomes(&f.p).await,
            vec![
                ("low".into(), "success".into()),
                ("medium".into(), "success".into())
            ]
        );
        // The phone is known now, and so is Germany.
        f.p.clock.advance(HOUR_MS);
        signin::login(
            &f.p,
            &login(PASSWORD, from("phone-00000000002", "DE")),
            "r4",
        )
        .await
        .unwrap();
        let devices = list_devices(&f.p, &f.user_id).await.unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].label, "Firefox on Linux");
        // The step-up and the notice of the new device went to the user.
        let subjects = rows(&f.p, "SELECT subject FROM mail_queue ORDER BY id").await;
        let subjects: Vec<String> = subjects
            .iter()
            .map(|r| r.text("subject").unwrap())
            .collect();
        assert_eq!(
            subjects,
            vec!["Your sign-in code", "New sign-in to your account"]
        );
        // Every decision is audited with its signals, and no address in clear.
        let audit = rows(
            &f.p,
            "SELECT metadata FROM audit_outbox WHERE action = 'session.risk' ORDER BY rowid",
        )
        .await;
        assert_eq!(audit.len(), 3);
        let second = audit[1].text("metadata").unwrap();
        assert!(
            second.contains("\"new_device\"") && second.contains("\"new_country\""),
            "{second}"
        );
        assert!(!second.contains("203.0.113.9"), "{second}");
    });
}

/// NFR-SEC-006: the mailed code is single use, limited in attempts, and expires.
#[test]
fn nfr_sec_006_the_mailed_code_is_single_use_and_expires() {
    block_on(async {
        let f = fixture().await;
        sign_in_at_home(&f).await;
        let step_up = || async {
            match signin::login(&f.p, &login(PASSWORD, from("other-0000000003", "JP")), "r").await {
                Err(LoginError::EmailCodeRequired { mfa_token }) => mfa_token,
                other => panic!("expected a mailed code, got {other:?}"),
            }
        };
        let token = step_up().await;
        let code = mailed_code(&f.p).await;
        let wrong = if code == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        let e = signin::verify_mfa(&f.p, &token, wrong, None, "r")
            .await
            .unwrap_err();
        assert_eq!(e, VerifyMfaError::InvalidCode);
        signin::verify_mfa(&f.p, &token, &code, None, "r")
            .await
            .unwrap();
        let e = signin::verify_mfa(&f.p, &token, &code, None, "r")
            .await
            .unwrap_err();
        assert_eq!(e, VerifyMfaError::InvalidToken, "single use");

        // Expired after ten minutes (a new device again: the last one is known now).
        let token = match signin::login(&f.p, &login(PASSWORD, from("fresh-0000000004", "AU")), "r")
            .await
        {
            Err(LoginError::EmailCodeRequired { mfa_token }) => mfa_token,
            other => panic!("expected a mailed code, got {other:?}"),
        };
        let code = mailed_code(&f.p).await;
        f.p.clock.advance(signin::EMAIL_CODE_TTL_MS + 1);
        let e = signin::verify_mfa(&f.p, &token, &code, None, "r")
            .await
            .unwrap_err();
        assert_eq!(e, VerifyMfaError::InvalidToken, "expired");
        // A passkey is no answer to a mailed code.
        let _ = SecondFactor::Code("");
    });
}

/// NFR-SEC-006: a user with TOTP is asked for it when the policy says second factor, and a
/// user without one cannot sign in at that level (refused like a wrong password).
#[test]
fn nfr_sec_006_second_factor_policy_refuses_users_without_one() {
    block_on(async {
        let f = fixture().await;
        set_policy(
            &f,
            &RiskPolicy {
                medium: RiskAction::SecondFactor,
                ..RiskPolicy::default()
            },
        )
        .await;
        sign_in_at_home(&f).await;
        let e = sign_in_from_abroad(&f).await.unwrap_err();
        assert_eq!(e, LoginError::InvalidCredentials);
        assert_eq!(outcomes(&f.p).await[1], ("medium".into(), "blocked".into()));
    });
}

/// NFR-SEC-006: a blocked sign-in is the same error as a wrong password, is not counted as a
/// failure of the account, and is audited as refused with its signals.
#[test]
fn nfr_sec_006_a_blocked_sign_in_looks_like_a_wrong_password() {
    block_on(async {
        let f = fixture().await;
        set_policy(
            &f,
            &RiskPolicy {
                medium: RiskAction::Block,
                high: RiskAction::Block,
                ..RiskPolicy::default()
            },
        )
        .await;
        sign_in_at_home(&f).await;
        let blocked = sign_in_from_abroad(&f).await.unwrap_err();
        let wrong = signin::login(
            &f.p,
            &login("wrong password!", from("laptop-0000000001", "US")),
            "r3",
        )
        .await
        .unwrap_err();
        assert_eq!(blocked, wrong);
        assert_eq!(blocked, LoginError::InvalidCredentials);
        let audit = rows(
            &f.p,
            "SELECT outcome, metadata FROM audit_outbox WHERE action = 'session.risk'
             ORDER BY rowid",
        )
        .await;
        assert_eq!(audit[1].text("outcome").unwrap(), "failure");
        assert!(audit[1].text("metadata").unwrap().contains("\"block\""));
        let risky = risky_sign_ins(&f.p, &f.tenant_id, None, 10).await.unwrap();
        assert_eq!(risky.len(), 1);
        assert_eq!(
            (risky[0].outcome.as_str(), risky[0].level.as_str()),
            ("blocked", "medium")
        );
        assert_eq!(risky[0].signals, vec!["new_device", "new_country"]);
    });
}

/// NFR-SEC-006: impossible travel between two sign-ins is flagged (high), even from a known
/// device.
#[test]
fn nfr_sec_006_impossible_travel_is_flagged() {
    block_on(async {
        let f = fixture().await;
        sign_in_at_home(&f).await;
        f.p.clock.advance(HOUR_MS);
        let e = signin::login(
            &f.p,
            &login(PASSWORD, from("laptop-0000000001", "AU")),
            "r2",
        )
        .await
        .unwrap_err();
        assert!(matches!(e, LoginError::EmailCodeRequired { .. }), "{e:?}");
        let risky = risky_sign_ins(&f.p, &f.tenant_id, None, 10).await.unwrap();
        assert_eq!(risky[0].level, "high");
        assert_eq!(risky[0].signals, vec!["new_country", "impossible_travel"]);
        assert_eq!(risky[0].country.as_deref(), Some("AU"));
        assert_eq!(risky[0].email.as_deref(), Some("owner@acme.test"));
        assert_eq!(risky[0].device_label.as_deref(), Some("Firefox on Linux"));
        // Filtered by level.
        let high = risky_sign_ins(&f.p, &f.tenant_id, Some(RiskLevel::High), 10);
        assert_eq!(high.await.unwrap().len(), 1);
        let medium = risky_sign_ins(&f.p, &f.tenant_id, Some(RiskLevel::Medium), 10);
        assert!(medium.await.unwrap().is_empty());
    });
}

/// NFR-SEC-006: the policy is the owner's to set, checked, and the defaults stand without it.
#[test]
fn nfr_sec_006_policy_is_set_by_the_owner_within_range() {
    block_on(async {
        let f = fixture().await;
        assert_eq!(
            policy::load(&f.p, &f.tenant_id).await.unwrap(),
            RiskPolicy::default()
        );
        let admin = TenantActor {
            user_id: f.user_id.clone(),
            tenant_id: f.tenant_id.clone(),
            role: TenantRole::Admin,
        };
        let e = policy::save(&f.p, &admin, &RiskPolicy::default(), "r")
            .await
            .unwrap_err();
        assert_eq!(e, SetRiskPolicyError::NotOwner);
        let bad = RiskPolicy {
            rules: RiskRules {
                high_at: 1,
                ..RiskRules::default()
            },
            ..RiskPolicy::default()
        };
        let owner = TenantActor {
            role: TenantRole::Owner,
            ..admin
        };
        let e = policy::save(&f.p, &owner, &bad, "r").await.unwrap_err();
        assert_eq!(
            e,
            SetRiskPolicyError::Invalid("rules.high_at", "must be between medium_at and 100")
        );
        assert!(
            rows(&f.p, "SELECT * FROM risk_policies").await.is_empty(),
            "nothing written"
        );
        let strict = RiskPolicy {
            low: RiskAction::EmailCode,
            ..RiskPolicy::default()
        };
        policy::save(&f.p, &owner, &strict, "r").await.unwrap();
        assert_eq!(policy::load(&f.p, &f.tenant_id).await.unwrap(), strict);
    });
}

/// NFR-SEC-006: devices are the user's to remove, all forgotten on a password reset; old
/// decisions are pruned.
#[test]
fn nfr_sec_006_devices_are_removable_and_decisions_pruned() {
    block_on(async {
        let f = fixture().await;
        sign_in_at_home(&f).await;
        let devices = list_devices(&f.p, &f.user_id).await.unwrap();
        assert!(!remove_device(&f.p, "someone-else", &devices[0].id)
            .await
            .unwrap());
        assert!(remove_device(&f.p, &f.user_id, &devices[0].id)
            .await
            .unwrap());
        assert!(list_devices(&f.p, &f.user_id).await.unwrap().is_empty());

        assert_eq!(prune(&f.p, f.p.clock.now_ms()).await.unwrap(), 0);
        let later = f.p.clock.now_ms() + ATTEMPT_RETENTION_MS + 1;
        assert_eq!(prune(&f.p, later).await.unwrap(), 1);
    });
}

/// NFR-SEC-006: a refresh from a new country revokes the session by default, rotates under a
/// policy that allows it (recorded either way), and a refresh from home is untouched.
#[test]
fn nfr_sec_006_refresh_from_a_new_country_revokes_or_is_allowed_per_policy() {
    block_on(async {
        let f = fixture().await;
        let pair = signin::login(
            &f.p,
            &login(PASSWORD, from("laptop-0000000001", "US")),
            "r1",
        )
        .await
        .unwrap();
        let home = signin::refresh_from(&f.p, &pair.refresh_token, &from("x", "US"), "r2")
            .await
            .unwrap();
        let e = signin::refresh_from(&f.p, &home.refresh_token, &from("x", "BR"), "r3")
            .await
            .unwrap_err();
        assert_eq!(e, crate::sessions::RefreshError::Invalid);
        let status = rows(&f.p, "SELECT DISTINCT status FROM sessions").await;
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].text("status").unwrap(), "revoked");
        assert_eq!(outcomes(&f.p).await[1], ("low".into(), "revoked".into()));

        set_policy(
            &f,
            &RiskPolicy {
                refresh_new_country: RefreshAction::Allow,
                ..RiskPolicy::default()
            },
        )
        .await;
        let pair = signin::login(
            &f.p,
            &login(PASSWORD, from("laptop-0000000001", "US")),
            "r4",
        )
        .await
        .unwrap();
        signin::refresh_from(&f.p, &pair.refresh_token, &from("x", "BR"), "r5")
            .await
            .unwrap();
        let refreshes = rows(
            &f.p,
            "SELECT outcome FROM sign_in_attempts WHERE method = 'refresh' ORDER BY rowid",
        )
        .await;
        let got: Vec<String> = refreshes
            .iter()
            .map(|r| r.text("outcome").unwrap())
            .collect();
        assert_eq!(got, vec!["revoked", "success"]);
    });
}

/// NFR-SEC-006's bound on what the check adds to a sign-in: one read. A decision that admits
/// the sign-in hands its writes (the attempt, the device, the audit record, the anomaly rule's
/// address and, from a new device or country, the notice with its sign-out link) to the batch
/// that starts the session; one that holds or refuses it writes them itself.
#[test]
fn nfr_sec_006_the_risk_check_adds_one_read_to_an_admitted_sign_in() {
    block_on(async {
        let f = fixture().await;
        set_policy(
            &f,
            &RiskPolicy {
                medium: RiskAction::Allow,
                high: RiskAction::Allow,
                ..RiskPolicy::default()
            },
        )
        .await;
        let user = crate::sessions::SessionUser {
            user_id: f.user_id.clone(),
            tenant_id: f.tenant_id.clone(),
            role: "owner".into(),
        };
        let p = crate::testing::FaultyPlatform::over(f.p);
        let account = account_subject("acme", "owner@acme.test");
        let check = |ctx: SignInContext, request_id: &'static str| {
            let (p, user, account) = (&p, &user, &account);
            async move {
                p.take_round_trips();
                let d = decide(
                    p,
                    user,
                    &ctx,
                    SignInMethod::Password,
                    Some(account),
                    Factors::default(),
                    request_id,
                )
                .await
                .unwrap();
                let trips = p.take_round_trips();
                // The session's batch, as `sessions::start` writes it.
                let pair = crate::sessions::start(
                    p,
                    user,
                    &["pwd"],
                    Some(&d.attempt_id),
                    d.writes.clone(),
                    request_id,
                )
                .await
                .unwrap();
                (d, trips, pair)
            }
        };
        let (first, trips, _) = check(linked("laptop-0000000001", "US"), "r1").await;
        assert_eq!(trips, 1, "the first sign-in");
        assert_eq!(first.requirement, Requirement::Nothing);
        assert!(!first.writes.is_empty());
        p.inner.clock.advance(HOUR_MS);
        let (again, trips, _) = check(linked("laptop-0000000001", "US"), "r2").await;
        assert_eq!(trips, 1, "the same device again");
        assert!(
            again.assessment.signals.is_empty(),
            "{:?}",
            again.assessment
        );
        p.inner.clock.advance(24 * HOUR_MS);
        let (abroad, trips, pair) = check(linked("phone-00000000002", "DE"), "r3").await;
        assert_eq!(trips, 1, "a new device in a new country");
        assert!(
            abroad.assessment.signals.contains(&Signal::NewDevice)
                && abroad.assessment.signals.contains(&Signal::NewCountry),
            "{:?}",
            abroad.assessment
        );
        // What the one batch carried.
        let count = |sql: &'static str| {
            let p = &p;
            async move {
                p.inner.sql.query(Stmt::new(sql)).await.unwrap()[0]
                    .i64("n")
                    .unwrap()
            }
        };
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM sign_in_attempts WHERE outcome = 'success'").await,
            3
        );
        assert_eq!(count("SELECT COUNT(*) AS n FROM known_devices").await, 2);
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM audit_outbox WHERE action = 'session.risk'").await,
            3
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM anomaly_addresses WHERE subject LIKE 'user:%'").await,
            3,
            "one row per hour"
        );
        // Only the sign-in from abroad was notified (the first one set the baseline), with its
        // sign-out link.
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM mail_queue WHERE subject = 'New sign-in to your account'")
                .await,
            1
        );
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM sign_in_revocations").await,
            1
        );
        let token = notice_token(&p.inner, "owner@acme.test").await;
        let n = revoke::notice(&p.inner, &token).await.unwrap().unwrap();
        assert_eq!(n.country.as_deref(), Some("DE"));
        // The session its batch started is recorded on its attempt (the link signs it out).
        let on_attempt = p
            .inner
            .sql
            .query(
                Stmt::new("SELECT session_id FROM sign_in_attempts WHERE id = ?1")
                    .bind(abroad.attempt_id.as_str()),
            )
            .await
            .unwrap();
        assert_eq!(
            on_attempt[0].opt_text("session_id").unwrap().as_deref(),
            Some(pair.session_id.as_str())
        );

        // A sign-in held for a step-up is recorded by the check itself: one read, one batch.
        set_policy_on(&p.inner, &f.tenant_id, &f.user_id, RiskPolicy::default()).await;
        p.inner.clock.advance(24 * HOUR_MS);
        p.take_round_trips();
        let held = decide(
            &p,
            &user,
            &linked("tablet-0000000003", "FR"),
            SignInMethod::Password,
            Some(&account),
            Factors::default(),
            "r4",
        )
        .await
        .unwrap();
        assert_eq!(p.take_round_trips(), 2);
        assert_eq!(held.requirement, Requirement::EmailCode);
        assert!(held.writes.is_empty());
        assert_eq!(
            count("SELECT COUNT(*) AS n FROM sign_in_attempts WHERE outcome = 'challenged'").await,
            1
        );
    });
}

/// NFR-PERF-001: what the risk check adds to a sign-in (its reads, the rules and its write),
/// on real SQLite with a user's full baseline. Run with
/// `cargo test -p edgeplane-core --release --lib risk_check_latency -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run on demand"]
#[allow(clippy::disallowed_methods)]
fn risk_check_latency() {
    block_on(async {
        let f = fixture().await;
        let user = crate::sessions::SessionUser {
            user_id: f.user_id.clone(),
            tenant_id: f.tenant_id.clone(),
            role: "owner".into(),
        };
        let factors = Factors::default();
        let account = account_subject("acme", "owner@acme.test");
        let mut times = Vec::new();
        for i in 0..400 {
            f.p.clock.advance(60_000);
            let ctx = from(&format!("device-{:0>12}", i % 7), ["US", "DE", "FR"][i % 3]);
            let started = std::time::Instant::now();
            let mut d = decide(
                &f.p,
                &user,
                &ctx,
                SignInMethod::Password,
                Some(&account),
                factors,
                "r",
            )
            .await
            .unwrap();
            d.commit(&f.p).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        let p50 = times[times.len() / 2];
        let p99 = times[times.len() * 99 / 100];
        eprintln!("risk check on native SQLite: p50 {p50:?}, p99 {p99:?}");
        assert!(p50 < std::time::Duration::from_millis(5), "p50 {p50:?}");
    });
}

// ---- The notice's link that signs out the session of the sign-in (NFR-SEC-006) ----

const LINKS: &str = "https://e.test";

/// [`from`] with the base of the notice's links.
fn linked(device: &str, country: &str) -> SignInContext {
    SignInContext {
        links_base: Some(LINKS.into()),
        ..from(device, country)
    }
}

/// The revoke token in the newest notice to `to`, read from its text and checked against the
/// link in its HTML part.
async fn notice_token(p: &TestPlatform, to: &str) -> String {
    let r = p
        .sql
        .query(
            Stmt::new(
                "SELECT text_body, html_body FROM mail_queue
                 WHERE subject = 'New sign-in to your account' AND to_addr = ?1
                 ORDER BY id DESC",
            )
            .bind(to),
        )
        .await
        .unwrap();
    let text = r[0].text("text_body").unwrap();
    let prefix = format!("{LINKS}{REVOKE_LINK_PATH}?token=");
    let token = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no revoke link in the notice: {text}"))
        .to_owned();
    let html = r[0].text("html_body").unwrap();
    assert!(
        html.contains(&format!("href=\"{prefix}{token}\"")),
        "{html}"
    );
    token
}

/// A second tenant, `beta`, with its owner (who accepted with [`PASSWORD`]).
async fn second_tenant(p: &TestPlatform) -> String {
    let req = ProvisionTenant {
        name: TenantName::parse("Beta Inc").unwrap(),
        domain: TenantDomain::parse("beta").unwrap(),
        plan: Plan::parse("free").unwrap(),
        owner_email: Email::parse("owner@beta.test").unwrap(),
        apps: vec![],
    };
    let out = tenants::provision(
        p,
        &Actor::operator("op-1"),
        req,
        None,
        "r",
        &crate::http::links_under(LINKS),
    )
    .await
    .unwrap()
    .provisioned;
    let token = out.invitation_link.split_once("token=").unwrap().1;
    users::accept_invitation(p, token, PASSWORD, "r")
        .await
        .unwrap()
        .user_id
}

/// The baseline at home, then (an hour later) a sign-in from a new laptop at home: low risk,
/// admitted at once, and notified with the link. Returns both sessions and the link's token.
async fn new_device_sign_in(f: &Fixture) -> (TokenPair, TokenPair, String) {
    let home = sign_in_at_home(f).await;
    f.p.clock.advance(HOUR_MS);
    let new = signin::login(
        &f.p,
        &login(PASSWORD, linked("laptop-0000000009", "US")),
        "r-new",
    )
    .await
    .unwrap();
    let token = notice_token(&f.p, "owner@acme.test").await;
    (home, new, token)
}

async fn count(p: &TestPlatform, sql: &'static str) -> i64 {
    rows(p, sql).await[0].i64("n").unwrap()
}

/// Everything a use of the link may change, to compare before and after a `GET`.
async fn revocation_state(p: &TestPlatform) -> Vec<String> {
    let r = rows(
        p,
        "SELECT (SELECT json_group_array(json_array(id, status)) FROM sessions) AS s,
                (SELECT json_group_array(json_array(token_hash, used_at, used_by))
                   FROM sign_in_revocations) AS t,
                (SELECT json_group_array(outcome) FROM sign_in_attempts) AS a,
                (SELECT COUNT(*) FROM audit_outbox) AS n",
    )
    .await;
    ["s", "t", "a"]
        .iter()
        .map(|c| r[0].text(c).unwrap())
        .chain([r[0].i64("n").unwrap().to_string()])
        .collect()
}

/// NFR-SEC-006: the notice of a new device links to signing out the session that sign-in
/// started; the link's page changes nothing; its use revokes the session's refresh tokens and
/// makes its access token inactive at once, is audited, and works once. Only the token's hash
/// is stored.
#[test]
fn nfr_sec_006_the_notice_link_signs_out_that_session_once() {
    block_on(async {
        let f = fixture().await;
        let (home, new, token) = new_device_sign_in(&f).await;
        assert_eq!(token.len(), 43, "256 random bits, base64url");

        // Stored: the hash only, with the attempt whose session it names.
        let stored = rows(&f.p, "SELECT * FROM sign_in_revocations").await;
        assert_eq!(stored.len(), 1);
        let dump = format!("{:?}", stored[0]);
        assert!(!dump.contains(&token), "the raw token is stored: {dump}");
        assert_eq!(
            stored[0].text("token_hash").unwrap(),
            crate::crypto::sha256_hex(token.as_bytes())
        );
        let linked_session = rows(
            &f.p,
            "SELECT a.session_id FROM sign_in_attempts a
             JOIN sign_in_revocations r ON r.attempt_id = a.id",
        )
        .await;
        assert_eq!(
            linked_session[0].opt_text("session_id").unwrap().as_deref(),
            Some(new.session_id.as_str())
        );
        assert_eq!(
            stored[0].i64("expires_at").unwrap() - stored[0].i64("created_at").unwrap(),
            REVOKE_TOKEN_TTL_MS
        );

        // Opening the link (twice: a mail scanner, then the user) changes nothing.
        let before = revocation_state(&f.p).await;
        for _ in 0..2 {
            let n = revoke::notice(&f.p, &token).await.unwrap().unwrap();
            assert_eq!(n.device_label.as_deref(), Some("Firefox on Linux"));
            assert_eq!(n.country.as_deref(), Some("US"));
        }
        assert_eq!(revocation_state(&f.p).await, before);
        assert!(signin::introspect(&f.p, &new.access_token, "app-1")
            .await
            .unwrap()
            .is_some());

        let done = revoke::revoke(&f.p, &token, "r-revoke").await.unwrap();
        assert_eq!(
            done,
            RevokeOutcome::SignedOut {
                was_active: true,
                edge_pending: None
            }
        );
        assert_eq!(
            crate::sessions::refresh(&f.p, &new.refresh_token, "r")
                .await
                .unwrap_err(),
            crate::sessions::RefreshError::Invalid
        );
        assert!(signin::introspect(&f.p, &new.access_token, "app-1")
            .await
            .unwrap()
            .is_none());
        // The session at home is not that sign-in's (its access token of an hour ago has
        // expired: a refreshed one).
        let home = crate::sessions::refresh(&f.p, &home.refresh_token, "r")
            .await
            .unwrap();
        assert!(signin::introspect(&f.p, &home.access_token, "app-1")
            .await
            .unwrap()
            .is_some());
        // The sign-in is disowned: it leaves the baseline.
        let outcomes = outcomes(&f.p).await;
        assert_eq!(outcomes[1], ("low".into(), "revoked".into()));
        // Audited with ids only.
        let audit = rows(
            &f.p,
            "SELECT resource, metadata FROM audit_outbox
             WHERE action = 'session.revoke' ORDER BY rowid",
        )
        .await;
        assert_eq!(audit.len(), 1);
        assert_eq!(
            audit[0].text("resource").unwrap(),
            format!("session:{}", new.session_id)
        );
        let meta = audit[0].text("metadata").unwrap();
        assert!(meta.contains("\"notice_link\""), "{meta}");
        assert!(
            !meta.contains("acme.test") && !meta.contains(&token),
            "{meta}"
        );

        // Single use: a second post changes nothing, and the page says the link is spent.
        let after = revocation_state(&f.p).await;
        assert_eq!(
            revoke::revoke(&f.p, &token, "r-again").await.unwrap(),
            RevokeOutcome::NotValid
        );
        assert_eq!(revocation_state(&f.p).await, after);
        assert_eq!(revoke::notice(&f.p, &token).await.unwrap(), None);
    });
}

/// NFR-SEC-006: a link expires after 7 days (and is pruned), and a token that is not one,
/// or is one character off, is refused without a change.
#[test]
fn nfr_sec_006_a_notice_link_expires_and_a_wrong_token_changes_nothing() {
    block_on(async {
        let f = fixture().await;
        let (_, new, token) = new_device_sign_in(&f).await;
        let before = revocation_state(&f.p).await;
        let mut off = token.clone().into_bytes();
        off[0] = if off[0] == b'A' { b'B' } else { b'A' };
        let off = String::from_utf8(off).unwrap();
        for wrong in [
            "",
            "abc",
            &format!("{token}x"),
            &off,
            "'; DROP TABLE sessions; --",
        ] {
            assert_eq!(revoke::notice(&f.p, wrong).await.unwrap(), None, "{wrong}");
            assert_eq!(
                revoke::revoke(&f.p, wrong, "r").await.unwrap(),
                RevokeOutcome::NotValid,
                "{wrong}"
            );
        }
        assert_eq!(revocation_state(&f.p).await, before);

        f.p.clock.advance(REVOKE_TOKEN_TTL_MS);
        assert_eq!(revoke::notice(&f.p, &token).await.unwrap(), None);
        assert_eq!(
            revoke::revoke(&f.p, &token, "r").await.unwrap(),
            RevokeOutcome::NotValid
        );
        assert_eq!(revocation_state(&f.p).await, before);
        // The expired link left the session alone.
        crate::sessions::refresh(&f.p, &new.refresh_token, "r")
            .await
            .unwrap();
        let n = count(&f.p, "SELECT COUNT(*) AS n FROM sign_in_revocations").await;
        assert_eq!(n, 1);
        prune(&f.p, f.p.clock.now_ms()).await.unwrap();
        let n = count(&f.p, "SELECT COUNT(*) AS n FROM sign_in_revocations").await;
        assert_eq!(n, 0, "expired links are pruned");
    });
}

/// NFR-SEC-006: two concurrent posts of one link (each statement giving way to the other, as
/// on D1) sign out once: one is told it signed out, the other that the link is spent, and
/// there is one audit record.
#[test]
fn nfr_sec_006_concurrent_uses_of_a_notice_link_revoke_once() {
    for head_start in 0..6 {
        block_on(async {
            let f = fixture().await;
            let (_, _, token) = new_device_sign_in(&f).await;
            f.p.sql.interleave();
            let first = revoke::revoke(&f.p, &token, "r-1");
            let second = async {
                for _ in 0..head_start {
                    f.p.sql.query(Stmt::new("SELECT 1")).await.unwrap();
                }
                revoke::revoke(&f.p, &token, "r-2").await
            };
            let (a, b) = futures_util::future::join(first, second).await;
            let (a, b) = (a.unwrap(), b.unwrap());
            let signed_out = [&a, &b]
                .iter()
                .filter(|o| matches!(o, RevokeOutcome::SignedOut { .. }))
                .count();
            assert_eq!(signed_out, 1, "head start {head_start}: {a:?} {b:?}");
            let audited = count(
                &f.p,
                "SELECT COUNT(*) AS n FROM audit_outbox WHERE action = 'session.revoke'",
            )
            .await;
            assert_eq!(audited, 1, "head start {head_start}");
        });
    }
}

/// NFR-SEC-006: a link signs out its own session only: not the user's other sessions, not
/// another tenant's user's session that a notice of its own names.
#[test]
fn nfr_sec_006_a_notice_link_touches_no_other_session() {
    block_on(async {
        let f = fixture().await;
        second_tenant(&f.p).await;
        let beta_login = |device: &str| {
            LoginRequest::typed("beta", "owner@beta.test", PASSWORD.into(), None)
                .unwrap()
                .with_context(linked(device, "US"))
        };
        signin::login(&f.p, &beta_login("beta-home-00000001"), "r")
            .await
            .unwrap();
        f.p.clock.advance(HOUR_MS);
        let beta = signin::login(&f.p, &beta_login("beta-new-000000002"), "r")
            .await
            .unwrap();
        let beta_token = notice_token(&f.p, "owner@beta.test").await;
        let (home, new, token) = new_device_sign_in(&f).await;
        assert_ne!(token, beta_token);

        revoke::revoke(&f.p, &token, "r").await.unwrap();
        for (pair, active) in [(&home, true), (&new, false), (&beta, true)] {
            let live = crate::sessions::refresh(&f.p, &pair.refresh_token, "r")
                .await
                .is_ok();
            assert_eq!(live, active, "session {}", pair.session_id);
        }
        let active = count(
            &f.p,
            "SELECT COUNT(*) AS n FROM sessions WHERE status = 'active'",
        )
        .await;
        assert_eq!(active, 3, "home and both beta sessions");
        // Beta's own link is still good, and still names beta's session.
        assert!(revoke::notice(&f.p, &beta_token).await.unwrap().is_some());
    });
}

/// NFR-SEC-006: a suspended tenant's user can still use the link (it only takes access
/// away): the token is spent and the page says the session is signed out.
#[test]
fn nfr_sec_006_a_notice_link_works_in_a_suspended_tenant() {
    block_on(async {
        let f = fixture().await;
        let (_, _, token) = new_device_sign_in(&f).await;
        let id = tenants::TenantId::parse(&f.tenant_id).unwrap();
        tenants::suspend(&f.p, &Actor::operator("op-1"), &id, None, "r")
            .await
            .unwrap();
        assert!(revoke::notice(&f.p, &token).await.unwrap().is_some());
        assert!(matches!(
            revoke::revoke(&f.p, &token, "r").await.unwrap(),
            RevokeOutcome::SignedOut { .. }
        ));
        assert_eq!(
            revoke::revoke(&f.p, &token, "r").await.unwrap(),
            RevokeOutcome::NotValid
        );
    });
}

/// NFR-SEC-006: a sign-in disowned through its link before its session started (a login
/// page's code not yet exchanged) never gets one.
#[test]
fn nfr_sec_006_a_sign_in_disowned_before_its_session_starts_gets_none() {
    block_on(async {
        let f = fixture().await;
        sign_in_at_home(&f).await;
        f.p.clock.advance(HOUR_MS);
        let user = crate::sessions::SessionUser {
            user_id: f.user_id.clone(),
            tenant_id: f.tenant_id.clone(),
            role: "owner".into(),
        };
        let mut decision = decide(
            &f.p,
            &user,
            &linked("laptop-0000000009", "US"),
            SignInMethod::Password,
            None,
            Factors::default(),
            "r",
        )
        .await
        .unwrap();
        // Recorded (and its notice queued) before the session starts, as a step-up's
        // completion does.
        decision.commit(&f.p).await.unwrap();
        let token = notice_token(&f.p, "owner@acme.test").await;
        assert_eq!(
            revoke::revoke(&f.p, &token, "r").await.unwrap(),
            RevokeOutcome::SignedOut {
                was_active: false,
                edge_pending: None
            }
        );
        let started = crate::sessions::start(
            &f.p,
            &user,
            &["pwd"],
            Some(&decision.attempt_id),
            vec![],
            "r",
        )
        .await;
        assert_eq!(started, Err(crate::sessions::IssueError::NotActive));
        // A sign-in not disowned starts as ever.
        crate::sessions::start(&f.p, &user, &["pwd"], None, vec![], "r")
            .await
            .unwrap();
    });
}
