//! The OIDC provider on real SQLite with the real migrations (FR-AUTH-001 OIDC).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;

use super::client::{authenticate_client, ClientAuthError};
use super::*;
use crate::apps::{self, AppName, RedirectUri, RegisterApp};
use crate::audit::Actor;
use crate::ports::{Row, Sql, Stmt};
use crate::signin::{check_token_with, introspect, AccessError};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
use crate::testing::TestPlatform;
use crate::tokens::master_key::MASTER_KEY_SECRET;
use crate::tokens::ACCESS_AUDIENCE;
use crate::users;

const PASSWORD: &str = "correct horse battery staple";
const ISSUER: &str = "https://id.example";
const REDIRECT: &str = "https://crm.example/cb";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Fixture {
    p: TestPlatform,
    client_id: String,
    user: SessionUser,
}

async fn fixture() -> Fixture {
    let p = TestPlatform::new().await;
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([5u8; 32]));
    p.secrets.set("EDGEPLANE_ENV", "development");
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
            name: TenantName::parse("Acme Inc").unwrap(),
            domain: TenantDomain::parse("acme").unwrap(),
            plan: Plan::parse("free").unwrap(),
            owner_email: Email::parse("owner@acme.test").unwrap(),
            apps: vec![app.id.as_str().to_owned()],
        },
        None,
        "r",
        &crate::http::links_under("https://e.test"),
    )
    .await
    .unwrap()
    .provisioned;
    let token = out.invitation_link.split_once("token=").unwrap().1;
    let accepted = users::accept_invitation(&p, token, PASSWORD, "r")
        .await
        .unwrap();
    let user = SessionUser {
        user_id: accepted.user_id.clone(),
        tenant_id: out.tenant.id.as_str().to_owned(),
        role: "owner".into(),
    };
    Fixture {
        p,
        client_id: app.id.as_str().to_owned(),
        user,
    }
}

fn request(client_id: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        client_id: Some(client_id.into()),
        redirect_uri: Some(REDIRECT.into()),
        response_type: Some("code".into()),
        scope: Some("openid email offline_access unknown".into()),
        state: Some("st&ate".into()),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some(CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
        ..AuthorizeRequest::default()
    }
}

/// Runs the authorization request and the sign-in; returns the code.
async fn code_for(f: &Fixture) -> String {
    let started = start_authorization(&f.p, &request(&f.client_id))
        .await
        .unwrap();
    let location =
        complete_login_flow(&f.p, &started.flow_id, &f.user, &["pwd"], None, vec![], "r")
            .await
            .unwrap();
    assert!(
        location.starts_with("https://crm.example/cb?code="),
        "{location}"
    );
    assert!(location.ends_with("&state=st%26ate"), "{location}");
    let q = location.split_once('?').unwrap().1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

fn exchange_req(client_id: &str, code: &str) -> TokenRequest {
    TokenRequest {
        grant_type: "authorization_code".into(),
        client_id: client_id.into(),
        client_secret: None,
        code: Some(code.into()),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: Some(VERIFIER.into()),
        refresh_token: None,
        origin: Default::default(),
    }
}

async fn rows(p: &TestPlatform, sql: &'static str) -> Vec<Row> {
    p.sql.query(Stmt::new(sql)).await.unwrap()
}

#[test]
fn fr_auth_001_pkce_s256_matches_rfc_7636_appendix_b() {
    assert_eq!(pkce::s256(VERIFIER), CHALLENGE);
    assert!(pkce::verify(VERIFIER, CHALLENGE));
    assert!(pkce::is_s256_challenge(CHALLENGE));
    // A different verifier, a too short one, and one outside the alphabet fail.
    assert!(!pkce::verify(&VERIFIER.replace('d', "e"), CHALLENGE));
    assert!(!pkce::verify("short", &pkce::s256("short")));
    let bad = format!("{}+", &VERIFIER[..43]);
    assert!(!pkce::verify(&bad, &pkce::s256(&bad)));
    // The `plain` method: the verifier itself is not a valid S256 challenge match.
    assert!(!pkce::verify(VERIFIER, VERIFIER));
}

#[test]
fn fr_auth_001_redirect_uri_must_match_exactly_and_errors_before_it_are_not_redirected() {
    block_on(async {
        let f = fixture().await;
        for uri in [
            "https://crm.example/cb/",
            "https://crm.example/cb?x=1",
            "https://CRM.example/cb",
            "https://crm.example/c",
            "https://crm.example/cb#f",
            "http://crm.example/cb",
        ] {
            let mut r = request(&f.client_id);
            r.redirect_uri = Some(uri.into());
            assert_eq!(
                start_authorization(&f.p, &r).await.unwrap_err(),
                AuthorizeError::InvalidRedirectUri,
                "{uri}"
            );
        }
        let mut r = request("00000000-0000-4000-8000-000000000000");
        r.redirect_uri = Some(REDIRECT.into());
        assert_eq!(
            start_authorization(&f.p, &r).await.unwrap_err(),
            AuthorizeError::UnknownClient
        );
        // After the redirect URI checks out, errors go back to the client with the state.
        let mut r = request(&f.client_id);
        r.code_challenge = None;
        match start_authorization(&f.p, &r).await.unwrap_err() {
            AuthorizeError::Redirect { error, location } => {
                assert_eq!(error, "invalid_request");
                assert!(location.starts_with("https://crm.example/cb?error=invalid_request"));
                assert!(location.ends_with("&state=st%26ate"), "{location}");
            }
            other => panic!("{other:?}"),
        }
        let mut r = request(&f.client_id);
        r.code_challenge_method = Some("plain".into());
        assert!(matches!(
            start_authorization(&f.p, &r).await.unwrap_err(),
            AuthorizeError::Redirect {
                error: "invalid_request",
                ..
            }
        ));
        let mut r = request(&f.client_id);
        r.scope = Some("email".into());
        assert!(matches!(
            start_authorization(&f.p, &r).await.unwrap_err(),
            AuthorizeError::Redirect {
                error: "invalid_scope",
                ..
            }
        ));
        let mut r = request(&f.client_id);
        r.response_type = Some("token".into());
        assert!(matches!(
            start_authorization(&f.p, &r).await.unwrap_err(),
            AuthorizeError::Redirect {
                error: "unsupported_response_type",
                ..
            }
        ));
    });
}

#[test]
fn fr_auth_001_code_exchange_issues_a_verifiable_id_token_and_userinfo() {
    block_on(async {
        let f = fixture().await;
        let code = code_for(&f).await;
        let t = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap();
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.scope, "openid email offline_access");
        assert!(t.refresh_token.is_some());
        // The ID token verifies with the published EdDSA keys.
        let header: serde_json::Value = serde_json::from_slice(
            &crate::crypto::b64url_decode(t.id_token.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert!(header["kid"].is_string());
        let now = f.p.clock.now_ms();
        let c = verify_id_token(&f.p, ISSUER, &t.id_token, now, true)
            .await
            .unwrap();
        assert_eq!(c.iss, ISSUER);
        assert_eq!(c.sub, f.user.user_id);
        assert_eq!(c.aud, f.client_id);
        assert_eq!(c.tid, f.user.tenant_id);
        assert_eq!(c.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert_eq!(c.amr, vec!["pwd".to_owned()]);
        assert_eq!(c.email.as_deref(), Some("owner@acme.test"));
        assert_eq!(c.email_verified, Some(true));
        assert_eq!(c.name, None, "no profile scope");
        assert_eq!(c.iat, now / 1000);
        assert_eq!(c.auth_time, now / 1000);
        assert_eq!(c.exp, now / 1000 + 900);
        // Another issuer does not accept it.
        assert!(
            verify_id_token(&f.p, "https://other.example", &t.id_token, now, true)
                .await
                .is_err()
        );
        // The access token is for the client: the Edgeplane API refuses it, userinfo serves it.
        assert!(matches!(
            check_token_with(&f.p, &t.access_token, |a| a == ACCESS_AUDIENCE).await,
            Err(AccessError::Invalid("token_audience"))
        ));
        let info = userinfo(&f.p, &t.access_token).await.unwrap();
        assert_eq!(info.claims.sub, f.user.user_id);
        assert_eq!(info.client_id, f.client_id);
        // Introspection answers for the client's own tokens only (RFC 7662 section 4: a
        // resource server learns nothing about tokens that are not meant for it).
        let seen = introspect(&f.p, &t.access_token, &f.client_id)
            .await
            .unwrap();
        assert_eq!(seen.map(|c| c.aud), Some(f.client_id.clone()));
        assert_eq!(
            introspect(&f.p, &t.access_token, "another-app")
                .await
                .unwrap(),
            None
        );
        assert_eq!(info.claims.email.as_deref(), Some("owner@acme.test"));
        // The session is the client's.
        let s = rows(&f.p, "SELECT app_id FROM sessions").await;
        assert_eq!(s[0].text("app_id").unwrap(), f.client_id);
        // Audited: the authorization and the session.
        let n = rows(
            &f.p,
            "SELECT count(*) AS n FROM audit_outbox WHERE action IN ('oidc.authorize', 'session.create')",
        )
        .await;
        assert_eq!(n[0].i64("n").unwrap(), 2);
    });
}

#[test]
fn fr_auth_001_a_code_is_single_use_and_its_reuse_revokes_the_session() {
    block_on(async {
        let f = fixture().await;
        let code = code_for(&f).await;
        let t = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap();
        let again = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap_err();
        assert_eq!(again, TokenError::InvalidGrant("code already used"));
        assert_eq!(
            userinfo(&f.p, &t.access_token).await.unwrap_err(),
            AccessError::Revoked
        );
        let refreshed = exchange(
            &f.p,
            ISSUER,
            &TokenRequest {
                grant_type: "refresh_token".into(),
                client_id: f.client_id.clone(),
                refresh_token: t.refresh_token.clone(),
                ..TokenRequest::default()
            },
            "r",
        )
        .await;
        assert!(matches!(refreshed, Err(TokenError::InvalidGrant(_))));
    });
}

#[test]
fn fr_auth_001_codes_expire_after_60_seconds_by_the_clock() {
    block_on(async {
        let f = fixture().await;
        let code = code_for(&f).await;
        f.p.clock.advance(CODE_TTL_MS);
        assert_eq!(
            exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
                .await
                .unwrap_err(),
            TokenError::InvalidGrant("code expired")
        );
        // Within 60 s it works.
        let code = code_for(&f).await;
        f.p.clock.advance(CODE_TTL_MS - 1);
        assert!(
            exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
                .await
                .is_ok()
        );
    });
}

#[test]
fn fr_auth_001_wrong_verifier_redirect_uri_or_client_burn_the_code() {
    block_on(async {
        let f = fixture().await;
        let code = code_for(&f).await;
        let mut r = exchange_req(&f.client_id, &code);
        r.code_verifier = Some(VERIFIER.replace('d', "e"));
        assert_eq!(
            exchange(&f.p, ISSUER, &r, "r").await.unwrap_err(),
            TokenError::InvalidGrant("code_verifier does not match")
        );
        assert!(
            exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
                .await
                .is_err()
        );
        let code = code_for(&f).await;
        let mut r = exchange_req(&f.client_id, &code);
        r.redirect_uri = Some("https://crm.example/cb/".into());
        assert_eq!(
            exchange(&f.p, ISSUER, &r, "r").await.unwrap_err(),
            TokenError::InvalidGrant("redirect_uri differs")
        );
        let code = code_for(&f).await;
        let mut r = exchange_req(&f.client_id, &code);
        r.code_verifier = None;
        assert!(matches!(
            exchange(&f.p, ISSUER, &r, "r").await.unwrap_err(),
            TokenError::InvalidRequest(_)
        ));
    });
}

#[test]
fn fr_auth_001_confidential_clients_authenticate_with_their_secret() {
    block_on(async {
        let f = fixture().await;
        // Public client: no secret accepted, none needed.
        assert!(authenticate_client(&f.p, &f.client_id, None).await.is_ok());
        assert_eq!(
            authenticate_client(&f.p, &f.client_id, Some("x"))
                .await
                .unwrap_err(),
            ClientAuthError::Failed
        );
        let secret = rotate_client_secret(&f.p, &Actor::operator("op-1"), &f.client_id, "r")
            .await
            .unwrap();
        assert!(secret.starts_with("epcs_"));
        let stored = rows(&f.p, "SELECT secret_hash FROM oidc_client_secrets").await;
        assert_ne!(stored[0].text("secret_hash").unwrap(), secret);
        assert!(authenticate_client(&f.p, &f.client_id, Some(&secret))
            .await
            .is_ok());
        for wrong in [None, Some("epcs_wrong"), Some("")] {
            assert_eq!(
                authenticate_client(&f.p, &f.client_id, wrong)
                    .await
                    .unwrap_err(),
                ClientAuthError::Failed
            );
        }
        // The code grant refuses a confidential client without its secret.
        let code = code_for(&f).await;
        assert_eq!(
            exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
                .await
                .unwrap_err(),
            TokenError::InvalidClient
        );
        let code = code_for(&f).await;
        let mut r = exchange_req(&f.client_id, &code);
        r.client_secret = Some(secret.clone());
        assert!(exchange(&f.p, ISSUER, &r, "r").await.is_ok());
        // Rotation replaces the secret.
        let next = rotate_client_secret(&f.p, &Actor::operator("op-1"), &f.client_id, "r")
            .await
            .unwrap();
        assert!(authenticate_client(&f.p, &f.client_id, Some(&secret))
            .await
            .is_err());
        assert!(authenticate_client(&f.p, &f.client_id, Some(&next))
            .await
            .is_ok());
    });
}

#[test]
fn fr_auth_001_refresh_rotates_and_is_bound_to_the_client() {
    block_on(async {
        let f = fixture().await;
        let code = code_for(&f).await;
        let t = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap();
        let rt = t.refresh_token.clone().unwrap();
        // The API's refresh refuses a client's refresh token.
        assert!(crate::sessions::refresh(&f.p, &rt, "r").await.is_err());
        let refresh = |token: String| TokenRequest {
            grant_type: "refresh_token".into(),
            client_id: f.client_id.clone(),
            refresh_token: Some(token),
            ..TokenRequest::default()
        };
        f.p.clock.advance(5_000);
        let r = exchange(&f.p, ISSUER, &refresh(rt.clone()), "r")
            .await
            .unwrap();
        assert_ne!(r.refresh_token.as_deref(), Some(rt.as_str()));
        let c = verify_id_token(&f.p, ISSUER, &r.id_token, f.p.clock.now_ms(), true)
            .await
            .unwrap();
        assert_eq!(
            c.sid,
            verify_id_token(&f.p, ISSUER, &t.id_token, 0, false)
                .await
                .unwrap()
                .sid
        );
        assert_eq!(c.auth_time, t_auth_time(&f, &t).await);
        assert!(userinfo(&f.p, &r.access_token).await.is_ok());
        // Reusing the rotated token revokes the session.
        assert!(exchange(&f.p, ISSUER, &refresh(rt), "r").await.is_err());
        assert_eq!(
            userinfo(&f.p, &r.access_token).await.unwrap_err(),
            AccessError::Revoked
        );
    });
}

async fn t_auth_time(f: &Fixture, t: &token::TokenResponse) -> i64 {
    verify_id_token(&f.p, ISSUER, &t.id_token, 0, false)
        .await
        .unwrap()
        .auth_time
}

#[test]
fn fr_auth_001_login_flows_are_single_use_and_tenant_bound() {
    block_on(async {
        let f = fixture().await;
        let started = start_authorization(&f.p, &request(&f.client_id))
            .await
            .unwrap();
        assert!(started.flow.csrf_ok(&started.csrf));
        assert!(!started.flow.csrf_ok("forged"));
        let other = SessionUser {
            tenant_id: "00000000-0000-4000-8000-000000000000".into(),
            ..f.user.clone()
        };
        choose_tenant(&f.p, &started.flow_id, "acme").await.unwrap();
        assert_eq!(
            complete_login_flow(&f.p, &started.flow_id, &other, &["pwd"], None, vec![], "r")
                .await
                .unwrap_err(),
            CompleteLoginError::TenantMismatch
        );
        complete_login_flow(&f.p, &started.flow_id, &f.user, &["pwd"], None, vec![], "r")
            .await
            .unwrap();
        assert_eq!(
            complete_login_flow(&f.p, &started.flow_id, &f.user, &["pwd"], None, vec![], "r")
                .await
                .unwrap_err(),
            CompleteLoginError::FlowInvalid
        );
        // Expired flows are gone.
        let started = start_authorization(&f.p, &request(&f.client_id))
            .await
            .unwrap();
        f.p.clock.advance(FLOW_TTL_MS);
        assert_eq!(
            load_flow(&f.p, &started.flow_id).await.unwrap_err(),
            FlowError::Invalid
        );
    });
}

#[test]
fn fr_auth_001_end_session_revokes_and_redirects_only_to_registered_uris() {
    block_on(async {
        let f = fixture().await;
        let code = code_for(&f).await;
        let t = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap();
        assert_eq!(
            end_session(
                &f.p,
                ISSUER,
                Some(&t.id_token),
                Some("https://evil.example/"),
                None,
                None,
                "r"
            )
            .await
            .unwrap_err(),
            EndSessionError::InvalidRedirect
        );
        assert!(userinfo(&f.p, &t.access_token).await.is_ok());
        let to = end_session(
            &f.p,
            ISSUER,
            Some(&t.id_token),
            Some(REDIRECT),
            None,
            Some("bye"),
            "r",
        )
        .await
        .unwrap();
        assert_eq!(to.as_deref(), Some("https://crm.example/cb?state=bye"));
        assert_eq!(
            userinfo(&f.p, &t.access_token).await.unwrap_err(),
            AccessError::Revoked
        );
        assert_eq!(
            end_session(&f.p, ISSUER, Some("a.b.c"), None, None, None, "r")
                .await
                .unwrap_err(),
            EndSessionError::InvalidHint
        );
    });
}

#[test]
fn fr_auth_001_scheduled_cleanup_drops_expired_flows_and_old_codes() {
    block_on(async {
        let f = fixture().await;
        let _live = start_authorization(&f.p, &request(&f.client_id))
            .await
            .unwrap();
        let _code = code_for(&f).await;
        let now = f.p.clock.now_ms();
        assert_eq!(expire(&f.p, now).await.unwrap(), 0);
        // Past the flow lifetime the flows go; the code stays an hour past its expiry.
        assert_eq!(expire(&f.p, now + FLOW_TTL_MS + 1).await.unwrap(), 2);
        assert_eq!(
            expire(&f.p, now + CODE_TTL_MS + CODE_KEEP_MS + 1)
                .await
                .unwrap(),
            1
        );
    });
}

/// NFR-SEC-006: a login page sign-in's risk decision travels with its code to the session the
/// code starts, so its notice's link signs out that session; a sign-in disowned through the
/// link before its code is exchanged gets no session.
#[test]
fn nfr_sec_006_the_code_carries_its_sign_in_to_the_session() {
    use crate::risk::{self, Factors, RevokeOutcome, SignInContext, SignInMethod};
    block_on(async {
        let f = &fixture().await;
        let from = |device: &str| SignInContext {
            device: Some(device.into()),
            links_base: Some("https://e.test".into()),
            ..SignInContext::default()
        };
        let decide = |device: &'static str| {
            let ctx = from(device);
            let (p, user) = (&f.p, &f.user);
            async move {
                let mut d = risk::decide(
                    p,
                    user,
                    &ctx,
                    SignInMethod::Password,
                    None,
                    Factors::default(),
                    "r",
                )
                .await
                .unwrap();
                d.commit(p).await.unwrap();
                d
            }
        };
        let sign_in = |attempt: String| async move {
            let started = start_authorization(&f.p, &request(&f.client_id))
                .await
                .unwrap();
            let location = complete_login_flow(
                &f.p,
                &started.flow_id,
                &f.user,
                &["pwd"],
                Some(&attempt),
                vec![],
                "r",
            )
            .await
            .unwrap();
            let q = location.split_once('?').unwrap().1;
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned()
        };
        let newest_link_token = || async {
            let r = rows(
                &f.p,
                "SELECT text_body FROM mail_queue
                 WHERE subject = 'New sign-in to your account' ORDER BY id DESC",
            )
            .await;
            let text = r[0].text("text_body").unwrap();
            text.split_once("?token=")
                .unwrap()
                .1
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        decide("home-device-000001").await;
        f.p.clock.advance(3_600_000);

        let first = decide("new-device-0000002").await;
        let code = sign_in(first.attempt_id.clone()).await;
        let t = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap();
        let claims = introspect(&f.p, &t.access_token, &f.client_id)
            .await
            .unwrap()
            .unwrap();
        let linked = rows(
            &f.p,
            "SELECT session_id FROM sign_in_attempts WHERE session_id IS NOT NULL",
        )
        .await;
        assert_eq!(linked.len(), 1);
        assert_eq!(linked[0].text("session_id").unwrap(), claims.sid);
        let token = newest_link_token().await;
        assert!(matches!(
            risk::revoke::revoke(&f.p, &token, "r").await.unwrap(),
            RevokeOutcome::SignedOut {
                was_active: true,
                ..
            }
        ));
        assert!(introspect(&f.p, &t.access_token, &f.client_id)
            .await
            .unwrap()
            .is_none());

        let second = decide("new-device-0000003").await;
        let code = sign_in(second.attempt_id).await;
        let token = newest_link_token().await;
        risk::revoke::revoke(&f.p, &token, "r").await.unwrap();
        let e = exchange(&f.p, ISSUER, &exchange_req(&f.client_id, &code), "r")
            .await
            .unwrap_err();
        assert!(matches!(e, TokenError::InvalidGrant(_)), "{e:?}");
        let active = rows(&f.p, "SELECT id FROM sessions WHERE status = 'active'").await;
        assert!(active.is_empty(), "no session for a disowned sign-in");
    });
}
