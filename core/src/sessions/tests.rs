//! Sign-in, sessions and password flows on real SQLite with the real migrations.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;

use super::*;
use crate::audit::Actor;
use crate::ports::{Clock, Kv, Row, Sql, Stmt};
use crate::signin::*;
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantId, TenantName};
use crate::testing::{FaultyPlatform, TestPlatform};
use crate::throttle;
use crate::tokens::master_key::MASTER_KEY_SECRET;
use crate::users::{self, AcceptInvitationError, PolicyRule, SetPasswordError};

const PASSWORD: &str = "correct horse battery staple";

struct Fixture {
    p: TestPlatform,
    tenant_id: String,
    invitation_token: String,
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
    Fixture {
        p,
        tenant_id: out.tenant.id.as_str().to_owned(),
        invitation_token: out
            .invitation_link
            .split_once("token=")
            .unwrap()
            .1
            .to_owned(),
    }
}

fn login_req(password: &str) -> LoginRequest {
    LoginRequest {
        tenant: TenantDomain::parse("acme").unwrap(),
        email: Email::parse("OWNER@acme.test").unwrap(),
        password: password.into(),
        client: Some("203.0.113.9".into()),
        context: Default::default(),
    }
}

async fn active_fixture() -> Fixture {
    let f = fixture().await;
    users::accept_invitation(&f.p, &f.invitation_token, PASSWORD, "r-accept")
        .await
        .unwrap();
    f
}

async fn rows(p: &TestPlatform, sql: &'static str) -> Vec<Row> {
    p.sql.query(Stmt::new(sql)).await.unwrap()
}

/// FR-TENANT-001, FR-AUTH-006: the invitation is accepted once, under the policy, audited.
#[test]
fn fr_tenant_001_accept_invitation_activates_the_owner() {
    block_on(async {
        let f = fixture().await;
        let e = users::accept_invitation(&f.p, &f.invitation_token, "short", "r")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            AcceptInvitationError::Policy(vec![PolicyRule::MinLength])
        );
        let e = users::accept_invitation(&f.p, &f.invitation_token, "1qaz2wsx3EDC", "r")
            .await
            .unwrap_err();
        assert_eq!(e, AcceptInvitationError::Policy(vec![PolicyRule::Common]));
        let ok = users::accept_invitation(&f.p, &f.invitation_token, PASSWORD, "r")
            .await
            .unwrap();
        assert_eq!(ok.role, "owner");
        let u = rows(&f.p, "SELECT status, password_hash FROM users").await;
        assert_eq!(u[0].text("status").unwrap(), "active");
        assert!(u[0]
            .text("password_hash")
            .unwrap()
            .starts_with("$argon2id$"));
        assert_eq!(
            rows(&f.p, "SELECT status FROM invitations").await[0]
                .text("status")
                .unwrap(),
            "accepted"
        );
        assert_eq!(
            rows(
                &f.p,
                "SELECT count(*) AS n FROM audit_outbox WHERE action = 'invitation.accept'"
            )
            .await[0]
                .i64("n")
                .unwrap(),
            1
        );
        let again = users::accept_invitation(&f.p, &f.invitation_token, PASSWORD, "r").await;
        assert_eq!(again.unwrap_err(), AcceptInvitationError::NotPending);
        let unknown = users::accept_invitation(&f.p, "nope", PASSWORD, "r").await;
        assert_eq!(unknown.unwrap_err(), AcceptInvitationError::NotFound);
    });
}

/// ERR-VAL-422: an expired invitation is refused and marked expired.
#[test]
fn err_val_422_expired_invitation_is_marked_expired() {
    block_on(async {
        let f = fixture().await;
        f.p.clock.advance(crate::tenants::INVITATION_TTL_MS + 1);
        let e = users::accept_invitation(&f.p, &f.invitation_token, PASSWORD, "r")
            .await
            .unwrap_err();
        assert_eq!(e, AcceptInvitationError::Expired);
        assert_eq!(
            rows(&f.p, "SELECT status FROM invitations").await[0]
                .text("status")
                .unwrap(),
            "expired"
        );
        assert_eq!(
            rows(&f.p, "SELECT status FROM users").await[0]
                .text("status")
                .unwrap(),
            "invited"
        );
    });
}

/// UC-LISTEN, CON-SEC-009: unknown email, wrong password and an invited account all give the
/// same error; a right password gives a verifiable token with the DESIGN.md claims.
#[test]
fn uc_listen_login_issues_tokens_and_hides_which_check_failed() {
    block_on(async {
        let f = fixture().await;
        // Invited, no password yet.
        assert_eq!(
            login(&f.p, &login_req(PASSWORD), "r").await.unwrap_err(),
            LoginError::InvalidCredentials
        );
        users::accept_invitation(&f.p, &f.invitation_token, PASSWORD, "r")
            .await
            .unwrap();
        assert_eq!(
            login(&f.p, &login_req("wrong password!!"), "r")
                .await
                .unwrap_err(),
            LoginError::InvalidCredentials
        );
        let mut other = login_req(PASSWORD);
        other.email = Email::parse("nobody@acme.test").unwrap();
        assert_eq!(
            login(&f.p, &other, "r").await.unwrap_err(),
            LoginError::InvalidCredentials
        );
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let claims = introspect(&f.p, &pair.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claims.tid, f.tenant_id);
        assert_eq!(claims.role, "owner");
        assert_eq!(claims.sid, pair.session_id);
        assert_eq!(
            claims.exp - claims.iat,
            crate::tokens::ACCESS_TOKEN_TTL_SECS
        );
        let stored = rows(&f.p, "SELECT refresh_token_hash FROM sessions").await;
        assert_eq!(
            stored[0].text("refresh_token_hash").unwrap(),
            crate::crypto::token_hash(&pair.refresh_token)
        );
        let failures = rows(
            &f.p,
            "SELECT count(*) AS n FROM audit_outbox WHERE action = 'session.create' AND outcome = 'failure'",
        )
        .await;
        assert_eq!(failures[0].i64("n").unwrap(), 3);
    });
}

/// FR-OPS-001: a suspended tenant's users cannot sign in, and their tokens are inactive at once.
#[test]
fn fr_ops_001_suspension_refuses_login_and_deactivates_tokens() {
    block_on(async {
        let f = active_fixture().await;
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let id = TenantId::parse(&f.tenant_id).unwrap();
        tenants::suspend(&f.p, &Actor::operator("op-1"), &id, None, "r")
            .await
            .unwrap();
        assert_eq!(
            introspect(&f.p, &pair.access_token, "app-1").await.unwrap(),
            None
        );
        assert_eq!(
            login(&f.p, &login_req(PASSWORD), "r").await.unwrap_err(),
            LoginError::TenantNotActive
        );
    });
}

/// FR-AUTH-005: refresh rotates; reusing a rotated token revokes the whole session.
#[test]
fn fr_auth_005_refresh_rotates_and_reuse_revokes_the_family() {
    block_on(async {
        let f = active_fixture().await;
        let first = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let second = refresh(&f.p, &first.refresh_token, "r").await.unwrap();
        assert_eq!(second.session_id, first.session_id);
        assert_ne!(second.refresh_token, first.refresh_token);
        assert!(introspect(&f.p, &second.access_token, "app-1")
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            refresh(&f.p, &first.refresh_token, "r").await.unwrap_err(),
            RefreshError::Reused
        );
        // The whole family is gone: the successor too, and its access token at the edge.
        assert_eq!(
            refresh(&f.p, &second.refresh_token, "r").await.unwrap_err(),
            RefreshError::Invalid
        );
        assert_eq!(
            introspect(&f.p, &second.access_token, "app-1")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            refresh(&f.p, "unknown", "r").await.unwrap_err(),
            RefreshError::Invalid
        );
    });
}

/// UC-LOGOUT: logout revokes the session in D1 and at the edge.
#[test]
fn uc_logout_revokes_the_session_at_once() {
    block_on(async {
        let f = active_fixture().await;
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let c = introspect(&f.p, &pair.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        let user = SessionUser {
            user_id: c.sub.clone(),
            tenant_id: c.tid.clone(),
            role: c.role.clone(),
        };
        logout(&f.p, &c.sid, &user, "r").await.unwrap();
        assert_eq!(
            introspect(&f.p, &pair.access_token, "app-1").await.unwrap(),
            None
        );
        assert!(f
            .p
            .kv
            .get(&session_marker_key(&c.sid), None)
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            refresh(&f.p, &pair.refresh_token, "r").await.unwrap_err(),
            RefreshError::Invalid
        );
    });
}

/// A disabled user's tokens are inactive at once in the isolate that wrote the
/// `user:{id}:status` marker.
#[test]
fn a_user_status_marker_deactivates_tokens() {
    block_on(async {
        let f = active_fixture().await;
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let c = introspect(&f.p, &pair.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        crate::edge::put(&f.p, &user_marker_key(&c.sub), b"disabled", None)
            .await
            .unwrap();
        assert_eq!(
            introspect(&f.p, &pair.access_token, "app-1").await.unwrap(),
            None
        );
    });
}

/// UC-AUTH-RESET, FR-AUTH-004: the mailed token resets once and revokes every session.
#[test]
fn uc_auth_reset_mailed_token_resets_once_and_revokes_sessions() {
    block_on(async {
        let f = active_fixture().await;
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let domain = TenantDomain::parse("acme").unwrap();
        // Unknown accounts get no mail and no error.
        users::forgot_password(
            &f.p,
            &domain,
            &Email::parse("x@acme.test").unwrap(),
            &crate::http::links_under("https://e.test"),
            "r",
        )
        .await
        .unwrap();
        users::forgot_password(
            &f.p,
            &domain,
            &Email::parse("owner@acme.test").unwrap(),
            &crate::http::links_under("https://e.test"),
            "r",
        )
        .await
        .unwrap();
        // The mail goes out after the answer.
        assert_eq!(
            crate::mail::queue::deliver_due(&f.p, f.p.clock.now_ms()).await,
            Ok(1)
        );
        let mail = f.p.mailer.messages_to("owner@acme.test", 1).await.unwrap();
        assert!(mail[0].mail.subject.contains("Reset"));
        let token = mail[0]
            .mail
            .text
            .split("token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let e = users::reset_password(&f.p, &token, "short", "r")
            .await
            .unwrap_err();
        assert_eq!(e, SetPasswordError::Policy(vec![PolicyRule::MinLength]));
        users::reset_password(&f.p, &token, "a brand new passphrase", "r")
            .await
            .unwrap();
        assert_eq!(
            introspect(&f.p, &pair.access_token, "app-1").await.unwrap(),
            None
        );
        assert_eq!(
            users::reset_password(&f.p, &token, "another new passphrase", "r")
                .await
                .unwrap_err(),
            SetPasswordError::InvalidToken
        );
        assert!(login(&f.p, &login_req(PASSWORD), "r").await.is_err());
        assert!(login(&f.p, &login_req("a brand new passphrase"), "r")
            .await
            .is_ok());
    });
}

/// FR-AUTH-004, FR-AUTH-006: change checks the current password and the history, and revokes
/// every session.
#[test]
fn fr_auth_004_change_checks_history_and_revokes_sessions() {
    block_on(async {
        let f = active_fixture().await;
        crate::users::policy::save(
            &f.p,
            &f.tenant_id,
            &crate::users::PasswordPolicy {
                history_count: 3,
                ..Default::default()
            },
            &Actor::user("u"),
            "r",
        )
        .await
        .unwrap();
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let c = introspect(&f.p, &pair.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        let change = |cur: &'static str, new: &'static str| {
            let (p, sub, tid) = (&f.p, c.sub.clone(), c.tid.clone());
            async move { users::change_password(p, &sub, &tid, cur, new, None, "r").await }
        };
        assert_eq!(
            change("wrong password!", "a fresh passphrase")
                .await
                .unwrap_err(),
            SetPasswordError::WrongPassword
        );
        assert_eq!(
            change(PASSWORD, PASSWORD).await.unwrap_err(),
            SetPasswordError::Policy(vec![PolicyRule::History])
        );
        change(PASSWORD, "a fresh passphrase").await.unwrap();
        assert_eq!(
            introspect(&f.p, &pair.access_token, "app-1").await.unwrap(),
            None
        );
        let revoked = rows(
            &f.p,
            "SELECT count(*) AS n FROM sessions WHERE status = 'active'",
        )
        .await;
        assert_eq!(revoked[0].i64("n").unwrap(), 0);
    });
}

/// The code of the user's enrolled secret (base32) for the step `offset` steps from now.
fn totp_code(p: &TestPlatform, secret_b32: &str, offset: i64) -> String {
    let mut bits = 0u32;
    let mut acc = 0u32;
    let mut secret = Vec::new();
    for c in secret_b32.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            secret.push((acc >> bits) as u8);
        }
    }
    let step = crate::users::totp::step_of(p.clock.now_ms() / 1000) + offset;
    format!(
        "{:06}",
        crate::users::totp::code_at(&secret, u64::try_from(step).unwrap())
    )
}

/// NFR-SEC-003: two confirmations of one TOTP enrollment race (a double submit). The one that
/// loses changes nothing: the recovery codes the winner showed stay the user's, and only the
/// winner is audited.
#[test]
fn nfr_sec_003_a_confirmation_that_loses_the_race_keeps_the_winner_s_recovery_codes() {
    use crate::users::mfa::{self, MfaError};
    block_on(async {
        let f = active_fixture().await;
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let c = introspect(&f.p, &pair.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        let e = mfa::enroll(&f.p, &c.sub, &c.tid, "r").await.unwrap();
        let code = totp_code(&f.p, &e.secret, 0);
        let p = FaultyPlatform::over(f.p);
        // The other confirmation commits between this one's checks and its batch.
        *p.sql.before_batch.borrow_mut() = Some(format!(
            "UPDATE users SET mfa_enabled = 1 WHERE id = '{0}';
             DELETE FROM mfa_recovery_codes WHERE user_id = '{0}';
             INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at)
               VALUES ('{0}', 'the-winner-s-code', 0);",
            c.sub
        ));
        assert_eq!(
            mfa::confirm(&p, &c.sub, &c.tid, &code, "r")
                .await
                .unwrap_err(),
            MfaError::AlreadyEnabled
        );
        let kept = rows(
            &p.inner,
            "SELECT code_hash FROM mfa_recovery_codes ORDER BY code_hash",
        )
        .await;
        let kept: Vec<String> = kept.iter().map(|r| r.text("code_hash").unwrap()).collect();
        assert_eq!(kept, vec!["the-winner-s-code"]);
        let audited = rows(
            &p.inner,
            "SELECT id FROM audit_outbox WHERE action = 'mfa.totp.confirm'",
        )
        .await;
        assert!(audited.is_empty(), "the losing confirmation was audited");
    });
}

/// NFR-SEC-003, ERR-AUTH-461: TOTP enrollment, the two-step sign-in, no replay, single-use
/// recovery codes, disabling.
#[test]
fn nfr_sec_003_totp_sign_in_without_replay() {
    use crate::users::mfa::{self, MfaError};
    block_on(async {
        let f = active_fixture().await;
        let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let c = introspect(&f.p, &pair.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        let e = mfa::enroll(&f.p, &c.sub, &c.tid, "r").await.unwrap();
        assert!(e
            .otpauth_uri
            .starts_with("otpauth://totp/Edgeplane:owner%40acme.test?secret="));
        let sealed = rows(&f.p, "SELECT totp_secret_enc FROM users").await;
        assert!(!sealed[0]
            .text("totp_secret_enc")
            .unwrap()
            .contains(&e.secret));
        assert_eq!(
            mfa::confirm(&f.p, &c.sub, &c.tid, "000000", "r")
                .await
                .unwrap_err(),
            MfaError::InvalidCode
        );
        let codes = mfa::confirm(&f.p, &c.sub, &c.tid, &totp_code(&f.p, &e.secret, 0), "r")
            .await
            .unwrap();
        assert_eq!(codes.len(), 10);

        let Err(LoginError::MfaRequired { mfa_token, .. }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("an MFA user gets mfa-required");
        };
        // The code already used to confirm is refused (replay), a wrong one too.
        let replay = totp_code(&f.p, &e.secret, 0);
        assert_eq!(
            verify_mfa(&f.p, &mfa_token, &replay, None, "r")
                .await
                .unwrap_err(),
            VerifyMfaError::InvalidCode
        );
        let next = totp_code(&f.p, &e.secret, 1);
        let pair = verify_mfa(&f.p, &mfa_token, &next, None, "r")
            .await
            .unwrap();
        assert!(introspect(&f.p, &pair.tokens.access_token, "app-1")
            .await
            .unwrap()
            .is_some());
        // The pending sign-in is used up.
        assert_eq!(
            verify_mfa(&f.p, &mfa_token, &next, None, "r")
                .await
                .unwrap_err(),
            VerifyMfaError::InvalidToken
        );

        // A recovery code works once.
        let Err(LoginError::MfaRequired { mfa_token, .. }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("mfa-required again");
        };
        verify_mfa(&f.p, &mfa_token, &codes[0].to_uppercase(), None, "r")
            .await
            .unwrap();
        let Err(LoginError::MfaRequired { mfa_token, .. }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("mfa-required again");
        };
        assert_eq!(
            verify_mfa(&f.p, &mfa_token, &codes[0], None, "r")
                .await
                .unwrap_err(),
            VerifyMfaError::InvalidCode
        );
        // Five wrong codes end the pending sign-in.
        for _ in 0..4 {
            let _ = verify_mfa(&f.p, &mfa_token, "123456", None, "r").await;
        }
        assert_eq!(
            verify_mfa(&f.p, &mfa_token, &codes[1], None, "r")
                .await
                .unwrap_err(),
            VerifyMfaError::InvalidToken
        );

        mfa::disable(&f.p, &c.sub, &c.tid, &codes[2], "r")
            .await
            .unwrap();
        assert!(login(&f.p, &login_req(PASSWORD), "r").await.is_ok());
    });
}

/// ERR-RATE-429: after ten failures the account is refused, even with the right password,
/// before any password check; each refusal is audited.
#[test]
fn err_rate_429_login_failures_are_limited_per_account() {
    block_on(async {
        let f = active_fixture().await;
        for _ in 0..throttle::LOGIN_PER_ACCOUNT.max {
            assert_eq!(
                login(&f.p, &login_req("wrong password!!"), "r")
                    .await
                    .unwrap_err(),
                LoginError::InvalidCredentials
            );
        }
        let Err(LoginError::RateLimited { retry_after_secs }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("the account is limited");
        };
        assert!(retry_after_secs > 0 && retry_after_secs <= 900);
        let denied = rows(
            &f.p,
            "SELECT count(*) AS n FROM audit_outbox WHERE metadata LIKE '%rate_limited%'",
        )
        .await;
        assert_eq!(denied[0].i64("n").unwrap(), 1);
        // The window ends: the right password works again.
        f.p.clock.advance(throttle::LOGIN_PER_ACCOUNT.window_ms);
        assert!(login(&f.p, &login_req(PASSWORD), "r").await.is_ok());
    });
}

/// FR-AUTH-005: an administrator's revocation ends every session of the user at once; a user
/// of another tenant is not found.
#[test]
fn fr_auth_005_admin_revocation_ends_every_session() {
    block_on(async {
        let f = active_fixture().await;
        let a = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let b = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
        let c = introspect(&f.p, &a.access_token, "app-1")
            .await
            .unwrap()
            .unwrap();
        let admin = Actor::user(&c.sub);
        assert_eq!(
            revoke_all_sessions(&f.p, "another-tenant", &c.sub, &admin, "r")
                .await
                .unwrap_err(),
            RevokeSessionsError::NotFound
        );
        assert_eq!(
            revoke_all_sessions(&f.p, &c.tid, &c.sub, &admin, "r")
                .await
                .unwrap(),
            2
        );
        for pair in [&a, &b] {
            assert_eq!(
                introspect(&f.p, &pair.access_token, "app-1").await.unwrap(),
                None
            );
            assert_eq!(
                refresh(&f.p, &pair.refresh_token, "r").await.unwrap_err(),
                RefreshError::Invalid
            );
        }
    });
}

/// CON-SEC-001: a password older than the policy's maximum age must be reset first.
#[test]
fn con_sec_001_expired_password_must_be_reset() {
    block_on(async {
        let f = active_fixture().await;
        crate::users::policy::save(
            &f.p,
            &f.tenant_id,
            &crate::users::PasswordPolicy {
                max_age_days: Some(90),
                ..Default::default()
            },
            &Actor::user("u"),
            "r",
        )
        .await
        .unwrap();
        f.p.clock.advance(89 * 24 * 3600 * 1000);
        assert!(login(&f.p, &login_req(PASSWORD), "r").await.is_ok());
        f.p.clock.advance(24 * 3600 * 1000);
        assert_eq!(
            login(&f.p, &login_req(PASSWORD), "r").await.unwrap_err(),
            LoginError::PasswordExpired
        );
        // A wrong password still says only "invalid credentials".
        assert_eq!(
            login(&f.p, &login_req("wrong password!!"), "r")
                .await
                .unwrap_err(),
            LoginError::InvalidCredentials
        );
    });
}

/// FR-AUTH-004: forgot-password mails are capped per account (the answer stays the same).
#[test]
fn fr_auth_004_reset_mails_are_capped_per_account() {
    block_on(async {
        let f = active_fixture().await;
        let domain = TenantDomain::parse("acme").unwrap();
        let email = Email::parse("owner@acme.test").unwrap();
        for _ in 0..throttle::RESET_MAILS_PER_ACCOUNT.max + 3 {
            users::forgot_password(
                &f.p,
                &domain,
                &email,
                &crate::http::links_under("https://e.test"),
                "r",
            )
            .await
            .unwrap();
        }
        crate::mail::queue::deliver_due(&f.p, f.p.clock.now_ms())
            .await
            .unwrap();
        let sent = f.p.mailer.messages_to("owner@acme.test", 50).await.unwrap();
        let resets = sent
            .iter()
            .filter(|m| m.mail.subject.contains("Reset"))
            .count();
        assert_eq!(resets as i64, throttle::RESET_MAILS_PER_ACCOUNT.max);
    });
}

/// FR-AUTH-004, CON-SEC-009: a reset request for an account that exists and one that does not
/// run the same statements in the same order, under the per-account limit and over it, and
/// neither sends anything before it answers (no mail API call, nothing in the outbox), so
/// neither the answer's timing nor its content tells which accounts exist.
#[test]
fn fr_auth_004_forgot_password_does_the_same_work_for_unknown_accounts() {
    block_on(async {
        let f = active_fixture().await;
        let p = FaultyPlatform::over(f.p);
        let domain = TenantDomain::parse("acme").unwrap();
        let known = Email::parse("owner@acme.test").unwrap();
        let unknown = Email::parse("nobody@acme.test").unwrap();
        for round in 0..throttle::RESET_MAILS_PER_ACCOUNT.max + 2 {
            let mut work = Vec::new();
            for email in [&known, &unknown] {
                p.take_texts();
                users::forgot_password(
                    &p,
                    &domain,
                    email,
                    &crate::http::links_under("https://e.test"),
                    "r",
                )
                .await
                .unwrap();
                work.push(p.take_texts());
            }
            assert!(!work[0].is_empty());
            assert_eq!(work[0], work[1], "round {round}: known vs unknown account");
        }
        assert!(
            resets_to(&p.inner, "owner@acme.test").await.is_empty(),
            "nothing sent yet"
        );
        assert!(p.inner.http.requests().is_empty());
        // Delivery after the answer mails the account that exists, up to its limit, and
        // nobody else.
        let now = p.inner.clock.now_ms();
        let delivered = crate::mail::queue::deliver_due(&p, now).await.unwrap();
        assert_eq!(delivered as i64, throttle::RESET_MAILS_PER_ACCOUNT.max);
        assert_eq!(
            delivered as usize,
            resets_to(&p.inner, "owner@acme.test").await.len()
        );
        assert!(resets_to(&p.inner, "nobody@acme.test").await.is_empty());
        // Both kinds of request were audited (one row each), the unknown one without the email.
        let audited = p
            .inner
            .sql
            .query(Stmt::new(
                "SELECT outcome, COUNT(*) AS n, MAX(resource) AS resource FROM audit_outbox
                 WHERE action = 'password.reset_request' GROUP BY outcome ORDER BY outcome",
            ))
            .await
            .unwrap();
        let n = throttle::RESET_MAILS_PER_ACCOUNT.max;
        assert_eq!(audited[0].text("outcome").unwrap(), "failure");
        assert_eq!(audited[0].i64("n").unwrap(), n);
        assert_eq!(audited[0].text("resource").unwrap(), "user");
        assert_eq!(audited[1].i64("n").unwrap(), n);
    });
}

/// The texts of the reset mails in the outbox to `to`, newest first.
async fn resets_to(p: &TestPlatform, to: &str) -> Vec<String> {
    p.mailer
        .messages_to(to, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.mail.subject.contains("Reset"))
        .map(|m| m.mail.text)
        .collect()
}

/// NFR-SEC-003: a tenant that requires MFA makes a user without it enroll during sign-in; the
/// first code completes both and returns the recovery codes.
#[test]
fn nfr_sec_003_tenant_requirement_enrolls_during_sign_in() {
    use crate::users::PasswordPolicy;
    block_on(async {
        let f = active_fixture().await;
        let policy = PasswordPolicy {
            require_mfa: true,
            ..Default::default()
        };
        crate::users::policy::save(&f.p, &f.tenant_id, &policy, &Actor::user("u"), "r")
            .await
            .unwrap();
        let Err(LoginError::MfaRequired { mfa_token, enroll }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("mfa-required");
        };
        assert!(enroll);
        // No code can pass before enrolling.
        assert_eq!(
            verify_mfa(&f.p, &mfa_token, "123456", None, "r")
                .await
                .unwrap_err(),
            VerifyMfaError::InvalidCode
        );
        let e = enroll_during_sign_in(&f.p, &mfa_token, "r").await.unwrap();
        let done = verify_mfa(&f.p, &mfa_token, &totp_code(&f.p, &e.secret, 0), None, "r")
            .await
            .unwrap();
        assert_eq!(done.recovery_codes.map(|c| c.len()), Some(10));
        assert!(introspect(&f.p, &done.tokens.access_token, "app-1")
            .await
            .unwrap()
            .is_some());
        // From now on it is the ordinary second step.
        let Err(LoginError::MfaRequired { enroll, .. }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("mfa-required");
        };
        assert!(!enroll);
        // An ordinary pending sign-in cannot enroll.
        let Err(LoginError::MfaRequired { mfa_token, .. }) =
            login(&f.p, &login_req(PASSWORD), "r").await
        else {
            panic!("mfa-required");
        };
        assert_eq!(
            enroll_during_sign_in(&f.p, &mfa_token, "r")
                .await
                .unwrap_err(),
            VerifyMfaError::InvalidToken
        );
    });
}

/// An active owner with TOTP enrolled and confirmed; returns the TOTP secret.
async fn mfa_fixture() -> (Fixture, String) {
    use crate::users::mfa;
    let f = active_fixture().await;
    let pair = login(&f.p, &login_req(PASSWORD), "r").await.unwrap();
    let c = introspect(&f.p, &pair.access_token, "app-1")
        .await
        .unwrap()
        .unwrap();
    let e = mfa::enroll(&f.p, &c.sub, &c.tid, "r").await.unwrap();
    mfa::confirm(&f.p, &c.sub, &c.tid, &totp_code(&f.p, &e.secret, 0), "r")
        .await
        .unwrap();
    // Past the step of the confirming code, so the current code is fresh.
    f.p.clock.advance(30_000);
    (f, e.secret)
}

async fn mfa_token_of(p: &TestPlatform) -> String {
    match login(p, &login_req(PASSWORD), "r").await {
        Err(LoginError::MfaRequired { mfa_token, .. }) => mfa_token,
        other => panic!("an MFA user gets mfa-required, got {other:?}"),
    }
}

/// ERR-RATE-429, NFR-SEC-003: wrong second factors count against the user across pending
/// sign-ins: a fresh password sign-in (the password is known) does not buy fresh guesses, and
/// past the limit even the right code waits.
#[test]
fn err_rate_429_wrong_second_factors_are_limited_per_user_across_sign_ins() {
    block_on(async {
        let (f, secret) = mfa_fixture().await;
        let mut wrong = 0;
        while wrong < throttle::MFA_PER_ACCOUNT.max {
            let token = mfa_token_of(&f.p).await;
            for _ in 0..3 {
                let client = format!("198.51.100.{wrong}");
                assert_eq!(
                    verify_mfa(&f.p, &token, "000000", Some(&client), "r")
                        .await
                        .unwrap_err(),
                    VerifyMfaError::InvalidCode
                );
                wrong += 1;
                if wrong == throttle::MFA_PER_ACCOUNT.max {
                    break;
                }
            }
        }
        let token = mfa_token_of(&f.p).await;
        let right = totp_code(&f.p, &secret, 0);
        let Err(VerifyMfaError::RateLimited { retry_after_secs }) =
            verify_mfa(&f.p, &token, &right, Some("198.51.100.200"), "r").await
        else {
            panic!("the user's second factor is limited");
        };
        assert!(retry_after_secs > 0 && retry_after_secs <= 900);
        // The window passes: the right code works on a pending sign-in, and gives its place
        // back (a valid code is not a failure).
        f.p.clock.advance(throttle::MFA_PER_ACCOUNT.window_ms);
        let token = mfa_token_of(&f.p).await;
        let right = totp_code(&f.p, &secret, 0);
        let sql = "SELECT COALESCE(SUM(count), 0) AS n FROM rate_limits WHERE key LIKE 'mfa-%'";
        let before = rows(&f.p, sql).await[0].i64("n").unwrap();
        verify_mfa(&f.p, &token, &right, None, "r").await.unwrap();
        assert_eq!(rows(&f.p, sql).await[0].i64("n").unwrap(), before);
    });
}

/// ERR-RATE-429, NFR-SEC-003: wrong codes from one client address count across users.
#[test]
fn err_rate_429_wrong_second_factors_are_limited_per_client() {
    block_on(async {
        let (f, _) = mfa_fixture().await;
        // Stand-ins for other users' failures from the same address.
        let counters: Vec<_> = (0..throttle::MFA_PER_CLIENT.max)
            .map(|i| {
                throttle::Counter::new(
                    throttle::MFA_PER_CLIENT,
                    "203.0.113.50",
                    f.p.clock.now_ms() - i,
                )
            })
            .collect();
        for c in counters {
            match throttle::admit(&f.p, vec![c]).await.unwrap() {
                throttle::Admission::Admitted(h) => h.keep(),
                throttle::Admission::Refused { .. } => panic!("below the limit"),
            }
        }
        let token = mfa_token_of(&f.p).await;
        assert!(matches!(
            verify_mfa(&f.p, &token, "000000", Some("203.0.113.50"), "r").await,
            Err(VerifyMfaError::RateLimited { .. })
        ));
    });
}

/// FR-OPS-001: a sign-in racing a suspension never leaves an active session in the suspended
/// tenant (its checks passed before the suspension, its session insert came after). The
/// suspension is started at every point of the sign-in's statements (each statement gives way
/// to the other, as on D1).
#[test]
fn fr_ops_001_a_sign_in_racing_a_suspension_leaves_no_active_session() {
    for head_start in 0..12 {
        block_on(async {
            let f = active_fixture().await;
            let tenant = TenantId::parse(&f.tenant_id).unwrap();
            f.p.sql.interleave();
            let req = login_req(PASSWORD);
            let sign_in = login(&f.p, &req, "r-login");
            let suspend = async {
                for _ in 0..head_start {
                    f.p.sql.query(Stmt::new("SELECT 1")).await.unwrap();
                }
                tenants::suspend(&f.p, &Actor::operator("op-1"), &tenant, None, "r-s").await
            };
            let (signed_in, suspended) = futures_util::future::join(sign_in, suspend).await;
            assert!(suspended.unwrap().changed);
            let active = rows(&f.p, "SELECT id FROM sessions WHERE status = 'active'").await;
            assert!(
                active.is_empty(),
                "an active session survived the suspension (suspension after {head_start} \
                 statements; sign-in said {signed_in:?})"
            );
        });
    }
}

/// NFR-SEC-003: concurrent codes on one pending sign-in get at most its five attempts (a read
/// of the count followed by a separate increment lets every concurrent request through).
#[test]
fn nfr_sec_003_concurrent_codes_share_the_five_attempts_of_a_pending_sign_in() {
    block_on(async {
        let (f, _) = mfa_fixture().await;
        let token = mfa_token_of(&f.p).await;
        f.p.sql.interleave();
        let guesses: Vec<String> = (0..20).map(|i| format!("{:06}", 100_000 + i)).collect();
        let outcomes = futures_util::future::join_all(
            guesses
                .iter()
                .map(|g| verify_mfa(&f.p, &token, g, None, "r")),
        )
        .await;
        let checked = outcomes
            .iter()
            .filter(|o| matches!(o, Err(VerifyMfaError::InvalidCode)))
            .count();
        assert_eq!(checked as i64, MAX_MFA_ATTEMPTS, "{outcomes:?}");
    });
}

/// ERR-RATE-429: concurrent wrong passwords for one account get exactly the limit's number of
/// password checks; the rest are refused before any hashing.
#[test]
fn err_rate_429_concurrent_login_guesses_get_exactly_the_limit() {
    block_on(async {
        let f = active_fixture().await;
        f.p.sql.interleave();
        let reqs: Vec<LoginRequest> = (0..25).map(|_| login_req("wrong password!!")).collect();
        let outcomes =
            futures_util::future::join_all(reqs.iter().map(|r| login(&f.p, r, "r"))).await;
        let checked = outcomes
            .iter()
            .filter(|o| matches!(o, Err(LoginError::InvalidCredentials)))
            .count();
        let limited = outcomes
            .iter()
            .filter(|o| matches!(o, Err(LoginError::RateLimited { .. })))
            .count();
        assert_eq!(checked as i64, throttle::LOGIN_PER_ACCOUNT.max);
        assert_eq!(checked + limited, 25);
    });
}
