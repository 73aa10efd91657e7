//! Passkey ceremonies against a software authenticator (real P-256 and Ed25519 keys, CBOR
//! written by ciborium's encoder, not by the decoding path under test), plus a fixed vector, on
//! real SQLite.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ciborium::Value as Cbor;
use futures_executor::block_on;
use serde_json::{json, Value};

use super::soft_authenticator::{cbor_bytes, int, Authenticator, ORIGIN, RP_ID};
use super::verify::{self, FLAG_UP, FLAG_UV};
use super::*;
use crate::audit::Actor;
use crate::crypto::{b64url_decode, b64url_encode};
use crate::ports::{Sql, Stmt};
use crate::sessions::SessionUser;
use crate::signin;
use crate::signin::{LoginError, LoginRequest, SecondFactor};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
use crate::testing::{FaultyPlatform, TestPlatform};
use crate::tokens::master_key::MASTER_KEY_SECRET;
use crate::users;
use crate::webauthn::service::MAX_CREDENTIALS_PER_USER;

const PASSWORD: &str = "correct horse battery staple";

fn challenge_of(options: &Options) -> String {
    options.public_key["challenge"].as_str().unwrap().to_owned()
}

fn expected(challenge: &str, require_uv: bool) -> Expected {
    Expected {
        rp_id: RP_ID.into(),
        origin: ORIGIN.into(),
        challenge_hash: crate::crypto::sha256_hex(challenge.as_bytes()),
        require_uv,
    }
}

fn reg(v: Value) -> RegistrationResponse {
    serde_json::from_value(v).unwrap()
}

fn auth(v: Value) -> AuthenticationResponse {
    serde_json::from_value(v).unwrap()
}

/// NFR-SEC-003: ES256 and EdDSA credentials register and then sign in, by the pure checks.
#[test]
fn es256_and_eddsa_register_and_assert_nfr_sec_003() {
    for (mut a, alg) in [
        (Authenticator::es256(7), ALG_ES256),
        (Authenticator::eddsa(7), ALG_EDDSA),
    ] {
        let c = b64url_encode(&[1u8; 32]);
        let cred = verify::verify_registration(&reg(a.register(&c)), &expected(&c, false)).unwrap();
        assert_eq!(cred.alg, alg);
        assert_eq!(cred.credential_id, a.credential_id);
        assert_eq!(cred.transports, vec!["internal", "hybrid"]);
        assert!(cred.user_verified);
        let c2 = b64url_encode(&[2u8; 32]);
        let v = verify::verify_assertion(
            &auth(a.assert(&c2, None)),
            &expected(&c2, true),
            &cred.cose_key,
        )
        .unwrap();
        assert_eq!(v.sign_count, 1);
        assert!(v.user_verified);
    }
}

/// NFR-SEC-003: each ceremony check refuses what it exists for.
#[test]
fn ceremony_checks_refuse_nfr_sec_003() {
    let c = b64url_encode(&[1u8; 32]);
    let exp = expected(&c, false);
    let refusal = |a: &Authenticator, challenge: &str, exp: &Expected| {
        verify::verify_registration(&reg(a.register(challenge)), exp).unwrap_err()
    };
    let a = Authenticator::es256(3);
    // Wrong challenge.
    assert_eq!(
        refusal(&a, &b64url_encode(&[9u8; 32]), &exp),
        CeremonyError::ChallengeMismatch
    );
    // Wrong origin.
    let mut bad = Authenticator::es256(3);
    bad.origin = "https://evil.test".into();
    assert_eq!(refusal(&bad, &c, &exp), CeremonyError::OriginMismatch);
    // Wrong rpIdHash.
    let mut bad = Authenticator::es256(3);
    bad.rp_id = "evil.test".into();
    assert_eq!(refusal(&bad, &c, &exp), CeremonyError::RpIdMismatch);
    // User presence missing.
    let mut bad = Authenticator::es256(3);
    bad.flags = FLAG_UV;
    assert_eq!(refusal(&bad, &c, &exp), CeremonyError::UserNotPresent);
    // User verification missing where required.
    let mut bad = Authenticator::es256(3);
    bad.flags = FLAG_UP;
    assert_eq!(
        refusal(&bad, &c, &expected(&c, true)),
        CeremonyError::UserNotVerified
    );
    assert!(verify::verify_registration(&reg(bad.register(&c)), &exp).is_ok());
    // Another attestation format.
    let mut bad = Authenticator::es256(3);
    bad.fmt = "packed";
    assert_eq!(
        refusal(&bad, &c, &exp),
        CeremonyError::UnsupportedAttestation("packed".into())
    );
    // Unsupported algorithm: an RS256 COSE key.
    let rsa = cbor_bytes(&Cbor::Map(vec![
        (int(1), int(3)),
        (int(3), int(-257)),
        (int(-1), Cbor::Bytes(vec![0xc5; 256])),
        (int(-2), Cbor::Bytes(vec![1, 0, 1])),
    ]));
    assert_eq!(
        verify::verify_registration(&reg(a.register_with_key(&c, &rsa)), &exp).unwrap_err(),
        CeremonyError::UnsupportedAlgorithm
    );
    // The create type where get is expected, and the reverse.
    let mut body = a.register(&c);
    body["response"]["clientDataJSON"] = b64url_encode(&a.client_data("webauthn.get", &c)).into();
    assert_eq!(
        verify::verify_registration(&reg(body), &exp).unwrap_err(),
        CeremonyError::WrongType
    );
    // A response whose id is not the attested credential's.
    let mut body = a.register(&c);
    body["id"] = b64url_encode(b"other").into();
    assert_eq!(
        verify::verify_registration(&reg(body), &exp).unwrap_err(),
        CeremonyError::CredentialIdMismatch
    );
}

/// NFR-SEC-003: a changed signature, authenticator data or client data fails the signature.
#[test]
fn tampered_assertions_fail_the_signature_nfr_sec_003() {
    for mut a in [Authenticator::es256(4), Authenticator::eddsa(4)] {
        let key = a.cose_key();
        let c = b64url_encode(&[5u8; 32]);
        let exp = expected(&c, true);
        let good = a.assert(&c, None);
        assert!(verify::verify_assertion(&auth(good.clone()), &exp, &key).is_ok());
        let sig = b64url_decode(good["response"]["signature"].as_str().unwrap()).unwrap();
        let mut flipped = sig.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let mut body = good.clone();
        body["response"]["signature"] = b64url_encode(&flipped).into();
        assert_eq!(
            verify::verify_assertion(&auth(body), &exp, &key).unwrap_err(),
            CeremonyError::BadSignature
        );
        // The counter changed after signing.
        let mut ad =
            b64url_decode(good["response"]["authenticatorData"].as_str().unwrap()).unwrap();
        ad[36] ^= 0x10;
        let mut body = good.clone();
        body["response"]["authenticatorData"] = b64url_encode(&ad).into();
        assert_eq!(
            verify::verify_assertion(&auth(body), &exp, &key).unwrap_err(),
            CeremonyError::BadSignature
        );
        // Another credential's key.
        let other = Authenticator::eddsa(99).cose_key();
        assert_eq!(
            verify::verify_assertion(&auth(good), &exp, &other).unwrap_err(),
            CeremonyError::BadSignature
        );
    }
}

/// A registration and an assertion recorded once (ES256, P-256 key of seed 0x11; EdDSA, seed
/// 0x22) and kept as constants: a change of the test encoder cannot hide a verifier change.
mod vector {
    pub const CHALLENGE_REG: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
    pub const CHALLENGE_GET: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI";
    pub const ES256_REGISTRATION: &str = include_str!("testdata/es256_registration.json");
    pub const ES256_ASSERTION: &str = include_str!("testdata/es256_assertion.json");
    pub const EDDSA_REGISTRATION: &str = include_str!("testdata/eddsa_registration.json");
    pub const EDDSA_ASSERTION: &str = include_str!("testdata/eddsa_assertion.json");
}

/// Writes the fixed vectors (run once with `--ignored` to record them).
#[test]
#[ignore]
fn record_fixed_vectors() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/webauthn/testdata");
    std::fs::create_dir_all(dir).unwrap();
    for (name, mut a) in [
        ("es256", Authenticator::es256(0x11)),
        ("eddsa", Authenticator::eddsa(0x22)),
    ] {
        let r = a.register(vector::CHALLENGE_REG);
        let g = a.assert(vector::CHALLENGE_GET, Some("user-1"));
        std::fs::write(
            format!("{dir}/{name}_registration.json"),
            serde_json::to_string_pretty(&r).unwrap() + "\n",
        )
        .unwrap();
        std::fs::write(
            format!("{dir}/{name}_assertion.json"),
            serde_json::to_string_pretty(&g).unwrap() + "\n",
        )
        .unwrap();
    }
}

/// NFR-SEC-003: the recorded vectors still verify, and their keys are what was recorded.
#[test]
fn fixed_vectors_verify_nfr_sec_003() {
    for (registration, assertion, alg) in [
        (
            vector::ES256_REGISTRATION,
            vector::ES256_ASSERTION,
            ALG_ES256,
        ),
        (
            vector::EDDSA_REGISTRATION,
            vector::EDDSA_ASSERTION,
            ALG_EDDSA,
        ),
    ] {
        let r: RegistrationResponse = serde_json::from_str(registration).unwrap();
        let cred = verify::verify_registration(&r, &expected(vector::CHALLENGE_REG, true)).unwrap();
        assert_eq!(cred.alg, alg);
        assert_eq!(cred.sign_count, 0);
        let a: AuthenticationResponse = serde_json::from_str(assertion).unwrap();
        let v =
            verify::verify_assertion(&a, &expected(vector::CHALLENGE_GET, true), &cred.cose_key)
                .unwrap();
        assert_eq!(v.sign_count, 1);
        assert_eq!(
            verify::assertion_user_handle(&a).unwrap().as_deref(),
            Some(&b"user-1"[..])
        );
        // The same vector under another challenge or relying party fails.
        assert!(verify::verify_assertion(
            &a,
            &expected(vector::CHALLENGE_REG, true),
            &cred.cose_key
        )
        .is_err());
        let mut other = expected(vector::CHALLENGE_GET, true);
        other.rp_id = "acme.test".into();
        assert_eq!(
            verify::verify_assertion(&a, &other, &cred.cose_key).unwrap_err(),
            CeremonyError::RpIdMismatch
        );
    }
}

// ---- The service, on SQLite -------------------------------------------------------------

struct Fixture {
    p: TestPlatform,
    acme: SessionUser,
    globex: SessionUser,
}

async fn provision(p: &TestPlatform, domain: &str) -> SessionUser {
    let out = tenants::provision(
        p,
        &Actor::operator("op-1"),
        ProvisionTenant {
            name: TenantName::parse(domain).unwrap(),
            domain: TenantDomain::parse(domain).unwrap(),
            plan: Plan::parse("free").unwrap(),
            owner_email: Email::parse(&format!("owner@{domain}.test")).unwrap(),
            apps: vec![],
        },
        None,
        "r",
        &crate::http::links_under("https://e.test"),
    )
    .await
    .unwrap()
    .provisioned;
    let token = out.invitation_link.split_once("token=").unwrap().1;
    let accepted = users::accept_invitation(p, token, PASSWORD, "r")
        .await
        .unwrap();
    SessionUser {
        user_id: accepted.user_id,
        tenant_id: accepted.tenant_id,
        role: accepted.role,
    }
}

async fn fixture() -> Fixture {
    let p = TestPlatform::new().await;
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([3u8; 32]));
    let acme = provision(&p, "acme").await;
    let globex = provision(&p, "globex").await;
    Fixture { p, acme, globex }
}

fn rp() -> RelyingParty {
    RelyingParty {
        id: RP_ID.into(),
        origin: ORIGIN.into(),
    }
}

async fn register_passkey(
    p: &TestPlatform,
    u: &SessionUser,
    a: &Authenticator,
) -> CredentialSummary {
    let o = registration_options(p, &u.user_id, &u.tenant_id, &rp())
        .await
        .unwrap();
    register(
        p,
        &u.user_id,
        &u.tenant_id,
        o.flow.as_deref().unwrap(),
        &reg(a.register(&challenge_of(&o))),
        Some("laptop"),
        "r-reg",
    )
    .await
    .unwrap()
}

async fn audit_actions(p: &TestPlatform) -> Vec<String> {
    p.sql
        .query(Stmt::new(
            "SELECT action, outcome FROM audit_outbox ORDER BY seq",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.text("action").unwrap(),
                r.text("outcome").unwrap()
            )
        })
        .collect()
}

/// NFR-SEC-003: a signed-in user registers a passkey (audited, listed, excluded from the next
/// options), then signs in without a password; the challenge is single use.
#[test]
fn register_then_passwordless_sign_in_nfr_sec_003() {
    block_on(async {
        let f = fixture().await;
        let mut a = Authenticator::eddsa(1);
        let summary = register_passkey(&f.p, &f.acme, &a).await;
        assert_eq!(summary.algorithm, "EdDSA");
        assert!(audit_actions(&f.p)
            .await
            .contains(&"webauthn.register:success".to_owned()));
        let listed = list_credentials(&f.p, &f.acme.user_id).await.unwrap();
        assert_eq!(listed, vec![summary.clone()]);
        let again = registration_options(&f.p, &f.acme.user_id, &f.acme.tenant_id, &rp())
            .await
            .unwrap();
        assert_eq!(
            again.public_key["excludeCredentials"][0]["id"],
            summary.credential_id
        );
        // The same authenticator again: already registered.
        let dup = register(
            &f.p,
            &f.acme.user_id,
            &f.acme.tenant_id,
            again.flow.as_deref().unwrap(),
            &reg(a.register(&challenge_of(&again))),
            None,
            "r",
        )
        .await;
        assert_eq!(dup.unwrap_err(), WebAuthnError::CredentialExists);

        let o = login_options(&f.p, "acme", Some("owner@acme.test"), &rp())
            .await
            .unwrap();
        assert_eq!(
            o.public_key["allowCredentials"][0]["id"],
            summary.credential_id
        );
        assert_eq!(o.public_key["userVerification"], "required");
        let flow = o.flow.clone().unwrap();
        let body = auth(a.assert(&challenge_of(&o), Some(&f.acme.user_id)));
        let pair = login(&f.p, &flow, &body, Some("203.0.113.1"), "r-login")
            .await
            .unwrap();
        assert_eq!(pair.token_type, "Bearer");
        let methods =
            f.p.sql
                .query(
                    Stmt::new("SELECT auth_methods FROM sessions WHERE id = ?1")
                        .bind(pair.session_id.as_str()),
                )
                .await
                .unwrap();
        assert_eq!(methods[0].text("auth_methods").unwrap(), r#"["hwk","mfa"]"#);
        let listed = list_credentials(&f.p, &f.acme.user_id).await.unwrap();
        assert!(listed[0].last_used_at.is_some());
        // Replayed: the flow is used up, even with a fresh signature.
        let replay = auth(a.assert(&challenge_of(&o), Some(&f.acme.user_id)));
        assert_eq!(
            login(&f.p, &flow, &replay, None, "r").await.unwrap_err(),
            WebAuthnError::InvalidFlow
        );
        // Discoverable (no email): the user handle names the owner.
        let o = login_options(&f.p, "acme", None, &rp()).await.unwrap();
        assert_eq!(o.public_key["allowCredentials"], json!([]));
        let body = auth(a.assert(&challenge_of(&o), Some(&f.acme.user_id)));
        assert!(login(&f.p, o.flow.as_deref().unwrap(), &body, None, "r")
            .await
            .is_ok());
        // Discoverable without a user handle, or with another's: refused.
        for handle in [None, Some(f.globex.user_id.as_str())] {
            let o = login_options(&f.p, "acme", None, &rp()).await.unwrap();
            let body = auth(a.assert(&challenge_of(&o), handle));
            assert_eq!(
                login(&f.p, o.flow.as_deref().unwrap(), &body, None, "r")
                    .await
                    .unwrap_err(),
                WebAuthnError::UnknownCredential
            );
        }
    });
}

/// NFR-SEC-003: passwordless sign-in requires user verification.
#[test]
fn passwordless_requires_uv_nfr_sec_003() {
    block_on(async {
        let f = fixture().await;
        let mut a = Authenticator::es256(2);
        a.flags = FLAG_UP;
        register_passkey(&f.p, &f.acme, &a).await;
        let o = login_options(&f.p, "acme", Some("owner@acme.test"), &rp())
            .await
            .unwrap();
        let body = auth(a.assert(&challenge_of(&o), None));
        assert_eq!(
            login(&f.p, o.flow.as_deref().unwrap(), &body, None, "r")
                .await
                .unwrap_err(),
            WebAuthnError::Ceremony(CeremonyError::UserNotVerified)
        );
        let actions = audit_actions(&f.p).await;
        assert_eq!(actions.last().unwrap(), "session.create:failure");
    });
}

/// NFR-SEC-003: a sign count that does not rise is refused and audited as a possible clone.
#[test]
fn sign_count_regression_is_refused_nfr_sec_003() {
    block_on(async {
        let f = fixture().await;
        let mut a = Authenticator::es256(5);
        register_passkey(&f.p, &f.acme, &a).await;
        a.counter = 9;
        let o = login_options(&f.p, "acme", Some("owner@acme.test"), &rp())
            .await
            .unwrap();
        let body = auth(a.assert(&challenge_of(&o), None));
        login(&f.p, o.flow.as_deref().unwrap(), &body, None, "r")
            .await
            .unwrap();
        // A clone still at 5 signs with 6 < 10.
        a.counter = 5;
        let o = login_options(&f.p, "acme", Some("owner@acme.test"), &rp())
            .await
            .unwrap();
        let body = auth(a.assert(&challenge_of(&o), None));
        assert_eq!(
            login(&f.p, o.flow.as_deref().unwrap(), &body, None, "r")
                .await
                .unwrap_err(),
            WebAuthnError::PossibleClone
        );
        assert!(audit_actions(&f.p)
            .await
            .contains(&"webauthn.clone_suspected:failure".to_owned()));
        let count =
            f.p.sql
                .query(Stmt::new("SELECT sign_count FROM webauthn_credentials"))
                .await
                .unwrap();
        assert_eq!(count[0].i64("sign_count").unwrap(), 10);
    });
}

/// NFR-SEC-003, ERR-RES-404: another tenant's passkey neither signs in here nor is deletable.
#[test]
fn foreign_credentials_are_not_found_nfr_sec_003() {
    block_on(async {
        let f = fixture().await;
        let mut a = Authenticator::eddsa(6);
        let summary = register_passkey(&f.p, &f.globex, &a).await;
        let o = login_options(&f.p, "acme", None, &rp()).await.unwrap();
        let body = auth(a.assert(&challenge_of(&o), Some(&f.globex.user_id)));
        assert_eq!(
            login(&f.p, o.flow.as_deref().unwrap(), &body, None, "r")
                .await
                .unwrap_err(),
            WebAuthnError::UnknownCredential
        );
        assert_eq!(
            delete_credential(&f.p, &f.acme.user_id, &f.acme.tenant_id, &summary.id, "r")
                .await
                .unwrap_err(),
            WebAuthnError::NotFound
        );
        delete_credential(
            &f.p,
            &f.globex.user_id,
            &f.globex.tenant_id,
            &summary.id,
            "r",
        )
        .await
        .unwrap();
        assert!(list_credentials(&f.p, &f.globex.user_id)
            .await
            .unwrap()
            .is_empty());
        // An unknown email gets stand-ins, the same each time, never another user's id.
        let x = login_options(&f.p, "acme", Some("nobody@acme.test"), &rp())
            .await
            .unwrap();
        let y = login_options(&f.p, "acme", Some("nobody@acme.test"), &rp())
            .await
            .unwrap();
        assert_eq!(
            x.public_key["allowCredentials"],
            y.public_key["allowCredentials"]
        );
        let stand_ins = x.public_key["allowCredentials"].as_array().unwrap();
        assert!((1..=3).contains(&stand_ins.len()), "{stand_ins:?}");
        assert!(!stand_ins.contains(&json!({ "type": "public-key", "id": summary.credential_id })));
    });
}

/// The `allowCredentials` of a passwordless sign-in for `email` at acme.
async fn allowed(p: &TestPlatform, email: &str) -> Vec<Value> {
    login_options(p, "acme", Some(email), &rp())
        .await
        .unwrap()
        .public_key["allowCredentials"]
        .as_array()
        .cloned()
        .unwrap()
}

/// NFR-SEC-003, CON-SEC-009: the options for an email that names no account look like a real
/// account's: one to a few credentials with ids of the lengths authenticators make, varying from
/// email to email, the same on every request for one email, and derived under the server's
/// secret, so no one without it can tell them from real ones.
#[test]
fn unknown_emails_get_stand_ins_shaped_like_real_credentials_nfr_sec_003() {
    block_on(async {
        let f = fixture().await;
        let real = Authenticator::es256(11);
        register_passkey(&f.p, &f.acme, &real).await;
        let owner = allowed(&f.p, "owner@acme.test").await;
        assert_eq!(owner.len(), 1);
        let shape = |d: &Value| {
            let mut keys: Vec<String> = d.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let (mut counts, mut lengths) = (Vec::new(), Vec::new());
        for i in 0..300 {
            let email = format!("nobody{i}@acme.test");
            let stand_ins = allowed(&f.p, &email).await;
            assert_eq!(stand_ins, allowed(&f.p, &email).await, "stable for {email}");
            // The case of the address does not change them either.
            assert_eq!(stand_ins, allowed(&f.p, &email.to_uppercase()).await);
            for d in &stand_ins {
                assert_eq!(shape(d), shape(&owner[0]));
                assert_eq!(d["type"], "public-key");
                let id = b64url_decode(d["id"].as_str().unwrap()).unwrap();
                lengths.push(id.len());
            }
            counts.push(stand_ins.len());
        }
        counts.sort_unstable();
        counts.dedup();
        lengths.sort_unstable();
        lengths.dedup();
        assert_eq!(counts, [1, 2, 3], "how many stand-ins an email gets varies");
        assert_eq!(
            lengths,
            [16, 20, 32, 48, 64],
            "stand-in ids have the lengths real credential ids have"
        );
        // Another server secret derives other stand-ins: they are not computable without it.
        let before = allowed(&f.p, "nobody0@acme.test").await;
        f.p.secrets
            .set(MASTER_KEY_SECRET, &STANDARD.encode([4u8; 32]));
        assert_ne!(before, allowed(&f.p, "nobody0@acme.test").await);
        // And they cost the same queries as a real account's list, tenant or not.
        let p = FaultyPlatform::over(f.p);
        let mut work = Vec::new();
        for (domain, email) in [
            ("acme", "owner@acme.test"),
            ("acme", "nobody@acme.test"),
            ("nowhere", "nobody@nowhere.test"),
        ] {
            p.take_texts();
            login_options(&p, domain, Some(email), &rp()).await.unwrap();
            work.push(p.take_texts());
        }
        assert_eq!(work[0], work[1]);
        assert_eq!(work[0], work[2]);
    });
}

/// NFR-SEC-003: a passkey makes the password sign-in ask for a second factor, which the
/// passkey then gives (`amr` pwd, hwk); the challenge is bound to that pending sign-in.
#[test]
fn passkey_as_second_factor_nfr_sec_003() {
    block_on(async {
        let f = fixture().await;
        let req = LoginRequest {
            tenant: TenantDomain::parse("acme").unwrap(),
            email: Email::parse("owner@acme.test").unwrap(),
            password: PASSWORD.into(),
            client: None,
            context: Default::default(),
        };
        assert!(signin::login(&f.p, &req, "r").await.is_ok());
        let mut a = Authenticator::es256(8);
        a.flags = FLAG_UP;
        register_passkey(&f.p, &f.acme, &a).await;
        let Err(LoginError::MfaRequired { mfa_token, enroll }) =
            signin::login(&f.p, &req, "r").await
        else {
            panic!("a passkey makes MFA required");
        };
        assert!(!enroll);
        // A TOTP code does not do for a passkey-only user.
        assert!(signin::verify_mfa(&f.p, &mfa_token, "123456", None, "r")
            .await
            .is_err());
        let o = signin::webauthn_options(&f.p, &mfa_token, &rp())
            .await
            .unwrap();
        assert!(o.flow.is_none());
        // The challenge is bound to this mfa_token: another pending sign-in cannot use it.
        let Err(LoginError::MfaRequired {
            mfa_token: other, ..
        }) = signin::login(&f.p, &req, "r").await
        else {
            panic!();
        };
        let body = auth(a.assert(&challenge_of(&o), None));
        assert!(
            signin::verify_mfa_with(&f.p, &other, SecondFactor::Passkey(&body), None, "r")
                .await
                .is_err()
        );
        let o = signin::webauthn_options(&f.p, &mfa_token, &rp())
            .await
            .unwrap();
        let body = auth(a.assert(&challenge_of(&o), None));
        let signed_in =
            signin::verify_mfa_with(&f.p, &mfa_token, SecondFactor::Passkey(&body), None, "r")
                .await
                .unwrap();
        let methods =
            f.p.sql
                .query(
                    Stmt::new("SELECT auth_methods FROM sessions WHERE id = ?1")
                        .bind(signed_in.tokens.session_id.as_str()),
                )
                .await
                .unwrap();
        assert_eq!(methods[0].text("auth_methods").unwrap(), r#"["pwd","hwk"]"#);
        // A user without passkeys gets no options.
        assert_eq!(
            signin::webauthn_options(&f.p, "not-a-token", &rp())
                .await
                .unwrap_err(),
            WebAuthnError::InvalidFlow
        );
    });
}

/// The relying party comes from WEBAUTHN_ORIGIN/WEBAUTHN_RP_ID, or in development from the
/// request; a production deployment without them is not configured.
#[test]
fn relying_party_configuration() {
    let s = crate::testing::MapSecrets::default();
    assert_eq!(
        RelyingParty::configured(&s, "http://127.0.0.1:8787"),
        Err(WebAuthnError::NotConfigured)
    );
    s.set("EDGEPLANE_ENV", "development");
    assert_eq!(
        RelyingParty::configured(&s, "http://127.0.0.1:8787").unwrap(),
        RelyingParty {
            id: "127.0.0.1".into(),
            origin: "http://127.0.0.1:8787".into()
        }
    );
    s.set("WEBAUTHN_ORIGIN", "https://login.acme.test/");
    s.set("WEBAUTHN_RP_ID", "acme.test");
    assert_eq!(
        RelyingParty::configured(&s, "http://x").unwrap(),
        RelyingParty {
            id: "acme.test".into(),
            origin: "https://login.acme.test".into()
        }
    );
    s.set("WEBAUTHN_RP_ID", "other.test");
    assert_eq!(
        RelyingParty::configured(&s, "http://x"),
        Err(WebAuthnError::NotConfigured)
    );
}

/// NFR-SEC-003: concurrent registrations cannot pass the per-user limit. A user one passkey
/// short of it finishes five ceremonies at once, each statement giving way to the others (as
/// D1 does): exactly one passkey is added, the other four are refused, only the stored one is
/// audited as registered, and each refusal is audited as one.
#[test]
fn nfr_sec_003_concurrent_registrations_stop_at_the_limit() {
    block_on(async {
        let f = fixture().await;
        // Distinct credential ids (the soft authenticator derives one from a key byte).
        let authenticator = |seed: u8| {
            let mut a = Authenticator::eddsa(seed);
            a.credential_id = vec![seed; 20];
            a
        };
        for seed in 0..MAX_CREDENTIALS_PER_USER as u8 - 1 {
            register_passkey(&f.p, &f.acme, &authenticator(seed + 10)).await;
        }
        let mut ceremonies = Vec::new();
        for seed in 0..5u8 {
            let o = registration_options(&f.p, &f.acme.user_id, &f.acme.tenant_id, &rp())
                .await
                .unwrap();
            let a = authenticator(seed + 100);
            let resp = reg(a.register(&challenge_of(&o)));
            ceremonies.push((o.flow.unwrap(), resp));
        }
        f.p.sql.interleave();
        let outcomes = futures_util::future::join_all(ceremonies.iter().map(|(flow, resp)| {
            register(
                &f.p,
                &f.acme.user_id,
                &f.acme.tenant_id,
                flow,
                resp,
                Some("racing"),
                "r-race",
            )
        }))
        .await;
        let added = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(WebAuthnError::TooManyCredentials)))
            .count();
        assert_eq!((added, refused), (1, 4), "{outcomes:?}");
        let stored = list_credentials(&f.p, &f.acme.user_id).await.unwrap();
        assert_eq!(stored.len(), MAX_CREDENTIALS_PER_USER);
        let registered = audit_actions(&f.p)
            .await
            .iter()
            .filter(|a| *a == "webauthn.register:success")
            .count();
        assert_eq!(registered, MAX_CREDENTIALS_PER_USER);
        let refused_audits = audit_actions(&f.p)
            .await
            .iter()
            .filter(|a| *a == "webauthn.register:failure")
            .count();
        assert_eq!(refused_audits, 4, "each refusal is audited");
    });
}
