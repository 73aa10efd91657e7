use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::access::{self, AccessClaims, VerifyTokenError};
use super::keys::{self, PREVIOUS_KEY_GRACE_MS, ROTATE_AFTER_MS};
use super::master_key::MASTER_KEY_SECRET;
use super::*;
use crate::audit::Actor;
use crate::crypto::{b64url_decode, b64url_encode};
use crate::ports::{Sql, Stmt};
use crate::testing::{TestPlatform, START_MS};

async fn platform() -> TestPlatform {
    let p = TestPlatform::new().await;
    p.secrets
        .set(MASTER_KEY_SECRET, &STANDARD.encode([9u8; 32]));
    p
}

fn claims(now_ms: i64) -> AccessClaims {
    let iat = now_ms / 1000;
    AccessClaims {
        auth_time: now_ms / 1000,
        iss: DEFAULT_ISSUER.into(),
        sub: "user-1".into(),
        aud: ACCESS_AUDIENCE.into(),
        tid: "tenant-1".into(),
        role: "owner".into(),
        sid: "session-1".into(),
        scope: "edgeplane:api".into(),
        iat,
        exp: iat + ACCESS_TOKEN_TTL_SECS,
        jti: "jti-1".into(),
    }
}

async fn count(p: &TestPlatform, status: &str) -> i64 {
    p.sql
        .query(Stmt::new("SELECT count(*) AS n FROM signing_keys WHERE status = ?1").bind(status))
        .await
        .unwrap()[0]
        .i64("n")
        .unwrap()
}

/// NFR-SEC-004: the first key is created lazily, sealed at rest, and signs verifiable tokens.
#[test]
fn nfr_sec_004_first_key_is_created_sealed_and_signs() {
    block_on(async {
        let p = platform().await;
        assert_eq!(count(&p, "active").await, 0);
        let token = access::sign(&p, &claims(START_MS)).await.unwrap();
        assert_eq!(count(&p, "active").await, 1);
        let row = &p
            .sql
            .query(Stmt::new("SELECT kid, private_key_enc FROM signing_keys"))
            .await
            .unwrap()[0];
        assert!(row.text("private_key_enc").unwrap().starts_with("v1."));
        let kid = row.text("kid").unwrap();
        let header = b64url_decode(token.split('.').next().unwrap()).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], kid.as_str());
        let got = access::verify(&p, &token, START_MS).await.unwrap();
        assert_eq!(got, claims(START_MS));
        // A second signature reuses the key.
        access::sign(&p, &claims(START_MS)).await.unwrap();
        assert_eq!(count(&p, "active").await, 1);
    });
}

#[test]
fn nothing_is_signed_without_a_master_key() {
    block_on(async {
        let p = TestPlatform::new().await;
        let e = access::sign(&p, &claims(START_MS)).await.unwrap_err();
        assert_eq!(e.code(), "master_key_missing");
        assert_eq!(count(&p, "active").await, 0);
    });
}

#[test]
fn a_changed_master_key_cannot_open_the_signing_key() {
    block_on(async {
        let p = platform().await;
        access::sign(&p, &claims(START_MS)).await.unwrap();
        p.secrets
            .set(MASTER_KEY_SECRET, &STANDARD.encode([1u8; 32]));
        let e = access::sign(&p, &claims(START_MS)).await.unwrap_err();
        assert_eq!(e.code(), "signing_key_undecryptable");
    });
}

/// Forged tokens are refused: `alg: none`, HS256 keyed with the public key, tampered
/// payload, unknown `kid`, wrong `aud`/`iss`, expired.
#[test]
fn forged_and_expired_tokens_are_refused() {
    block_on(async {
        let p = platform().await;
        let token = access::sign(&p, &claims(START_MS)).await.unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let kid = keys::published(&p).await.unwrap()[0].kid.clone();
        let x = keys::published(&p).await.unwrap()[0].x.clone();
        let enc = |v: serde_json::Value| b64url_encode(v.to_string().as_bytes());
        let verify = |t: String| {
            let p = &p;
            async move { access::verify(p, &t, START_MS).await.unwrap_err() }
        };

        let none = format!(
            "{}.{}.",
            enc(serde_json::json!({"alg":"none","kid":kid})),
            parts[1]
        );
        assert_eq!(verify(none).await, VerifyTokenError::Malformed);
        let none_sig = format!(
            "{}.{}.{}",
            enc(serde_json::json!({"alg":"none","kid":kid})),
            parts[1],
            parts[2]
        );
        assert_eq!(verify(none_sig).await, VerifyTokenError::Algorithm);

        let hs_input = format!(
            "{}.{}",
            enc(serde_json::json!({"alg":"HS256","kid":kid})),
            parts[1]
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(x.as_bytes()).unwrap();
        mac.update(hs_input.as_bytes());
        let hs = format!("{hs_input}.{}", b64url_encode(&mac.finalize().into_bytes()));
        assert_eq!(verify(hs).await, VerifyTokenError::Algorithm);

        let mut c = claims(START_MS);
        c.role = "admin".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64url_encode(&serde_json::to_vec(&c).unwrap()),
            parts[2]
        );
        assert_eq!(verify(tampered).await, VerifyTokenError::BadSignature);

        let unknown = format!(
            "{}.{}.{}",
            enc(serde_json::json!({"alg":"EdDSA","kid":"nope"})),
            parts[1],
            parts[2]
        );
        assert_eq!(verify(unknown).await, VerifyTokenError::UnknownKey);

        let mut c = claims(START_MS);
        c.aud = "other".into();
        let wrong_aud = access::sign(&p, &c).await.unwrap();
        assert_eq!(verify(wrong_aud).await, VerifyTokenError::WrongAudience);
        let mut c = claims(START_MS);
        c.iss = "https://evil.example".into();
        let wrong_iss = access::sign(&p, &c).await.unwrap();
        assert_eq!(verify(wrong_iss).await, VerifyTokenError::WrongAudience);

        let late = START_MS + (ACCESS_TOKEN_TTL_SECS + access::LEEWAY_SECS) * 1000;
        assert_eq!(
            access::verify(&p, &token, late).await.unwrap_err(),
            VerifyTokenError::Expired
        );
        assert!(access::verify(&p, &token, late - 1000).await.is_ok());
        assert_eq!(verify("a.b".into()).await, VerifyTokenError::Malformed);
    });
}

/// NFR-SEC-004: rotation keeps the previous key published until its tokens expired, then a
/// later run retires it and destroys its private key.
#[test]
fn nfr_sec_004_rotation_publishes_previous_keys_until_their_tokens_expire() {
    block_on(async {
        let p = platform().await;
        let old = access::sign(&p, &claims(START_MS)).await.unwrap();
        let r = keys::rotate(&p, &Actor::operator("op-1"), Some("req-1"))
            .await
            .unwrap();
        assert!(r.previous.is_some());
        assert_eq!(count(&p, "active").await, 1);
        assert_eq!(count(&p, "previous").await, 1);
        let published = keys::published(&p).await.unwrap();
        assert_eq!(published.len(), 2);
        assert_eq!(published[0].kid, r.kid);
        assert!(access::verify(&p, &old, START_MS).await.is_ok());
        let new = access::sign(&p, &claims(START_MS)).await.unwrap();
        assert!(access::verify(&p, &new, START_MS).await.is_ok());
        let audit = p
            .sql
            .query(Stmt::new(
                "SELECT actor_id, request_id FROM audit_outbox WHERE action = 'signing_key.rotate'",
            ))
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].text("actor_id").unwrap(), "op-1");

        // After the grace period, the cron retires the old key and destroys its private key.
        let later = START_MS + PREVIOUS_KEY_GRACE_MS + 1;
        p.clock.set(later);
        assert_eq!(keys::scheduled_rotation(&p, later).await.unwrap(), 1);
        assert_eq!(count(&p, "retired").await, 1);
        let destroyed = p
            .sql
            .query(Stmt::new(
                "SELECT private_key_enc FROM signing_keys WHERE status = 'retired'",
            ))
            .await
            .unwrap();
        assert_eq!(destroyed[0].opt_text("private_key_enc").unwrap(), None);
        assert_eq!(keys::published(&p).await.unwrap().len(), 1);
    });
}

/// NFR-SEC-004: the cron rotates a key once it is a year old, not before.
#[test]
fn nfr_sec_004_cron_rotates_yearly() {
    block_on(async {
        let p = platform().await;
        access::sign(&p, &claims(START_MS)).await.unwrap();
        let before = START_MS + ROTATE_AFTER_MS - 1;
        p.clock.set(before);
        assert_eq!(keys::scheduled_rotation(&p, before).await.unwrap(), 0);
        assert_eq!(count(&p, "previous").await, 0);
        let due = START_MS + ROTATE_AFTER_MS;
        p.clock.set(due);
        assert_eq!(keys::scheduled_rotation(&p, due).await.unwrap(), 1);
        assert_eq!(count(&p, "previous").await, 1);
        assert_eq!(count(&p, "active").await, 1);
    });
}

/// A token verified once is not verified again: the second check is a hit of the isolate's
/// cache of verified tokens (no signature check), with the same claims.
#[test]
fn a_verified_token_is_not_verified_again() {
    block_on(async {
        let p = platform().await;
        let token = access::sign(&p, &claims(START_MS)).await.unwrap();
        let first = access::verify(&p, &token, START_MS).await.unwrap();
        assert_eq!(p.signatures.checks.get(), 1);
        let second = access::verify(&p, &token, START_MS + 60_000).await.unwrap();
        assert_eq!(p.signatures.checks.get(), 1, "the second check is a hit");
        assert_eq!(first, second);

        // Another token is verified on its own, and a forged copy of a cached one is not a hit.
        let mut c = claims(START_MS);
        c.jti = "jti-2".into();
        let other = access::sign(&p, &c).await.unwrap();
        assert!(access::verify(&p, &other, START_MS).await.is_ok());
        assert_eq!(p.signatures.checks.get(), 2);
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let mut bytes = b64url_decode(sig).unwrap();
        bytes[0] ^= 1;
        let forged = format!("{signed}.{}", b64url_encode(&bytes));
        assert_eq!(
            access::verify(&p, &forged, START_MS).await.unwrap_err(),
            VerifyTokenError::BadSignature
        );
        assert_eq!(p.signatures.checks.get(), 3);
    });
}

/// A cached token is still refused once it expires: expiry is checked on every call.
#[test]
fn a_cached_token_is_refused_once_expired() {
    block_on(async {
        let p = platform().await;
        let token = access::sign(&p, &claims(START_MS)).await.unwrap();
        assert!(access::verify(&p, &token, START_MS).await.is_ok());
        let late = START_MS + (ACCESS_TOKEN_TTL_SECS + access::LEEWAY_SECS) * 1000;
        assert_eq!(
            access::verify(&p, &token, late).await.unwrap_err(),
            VerifyTokenError::Expired
        );
        assert_eq!(p.signatures.checks.get(), 1, "refused from the cache");
        assert_eq!(
            access::verify(&p, &token, late).await.unwrap_err(),
            VerifyTokenError::Expired
        );
    });
}

/// A token whose key left the published set is refused even though it was cached: a change of
/// the key set empties the cache.
#[test]
fn a_cached_token_of_a_removed_key_is_refused() {
    block_on(async {
        let p = platform().await;
        let old = access::sign(&p, &claims(START_MS)).await.unwrap();
        assert!(access::verify(&p, &old, START_MS).await.is_ok());

        // A rotation changes the set but keeps the old key: still valid (verified again).
        keys::rotate(&p, &Actor::operator("op-1"), None)
            .await
            .unwrap();
        assert!(access::verify(&p, &old, START_MS).await.is_ok());
        assert_eq!(
            p.signatures.checks.get(),
            2,
            "the new key set emptied the cache"
        );
        assert!(access::verify(&p, &old, START_MS).await.is_ok());
        assert_eq!(p.signatures.checks.get(), 2);

        // The old key is retired: its token is refused, at an instant it has not expired at.
        let later = START_MS + PREVIOUS_KEY_GRACE_MS + 1;
        p.clock.set(later);
        assert_eq!(keys::scheduled_rotation(&p, later).await.unwrap(), 1);
        assert_eq!(
            access::verify(&p, &old, START_MS).await.unwrap_err(),
            VerifyTokenError::UnknownKey
        );
    });
}

/// Two audiences are not confused: the audience predicate runs on every call, hit or not.
#[test]
fn a_cached_token_is_checked_against_each_callers_audience() {
    block_on(async {
        let p = platform().await;
        let mut c = claims(START_MS);
        c.aud = "app-1".into();
        let token = access::sign(&p, &c).await.unwrap();
        let for_app = |aud: &str| aud == "app-1";
        assert!(access::verify_with(&p, &token, START_MS, for_app)
            .await
            .is_ok());
        assert_eq!(
            access::verify(&p, &token, START_MS).await.unwrap_err(),
            VerifyTokenError::WrongAudience
        );
        assert_eq!(
            access::verify_with(&p, &token, START_MS, |aud| aud == "app-2")
                .await
                .unwrap_err(),
            VerifyTokenError::WrongAudience
        );
        assert!(access::verify_with(&p, &token, START_MS, for_app)
            .await
            .is_ok());
        assert_eq!(
            p.signatures.checks.get(),
            1,
            "every check after the first hit"
        );
    });
}

/// Adds the Ed25519 group order to the `S` half of a signature: a malleated copy of it.
fn malleate(sig: &[u8]) -> Vec<u8> {
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = sig.to_vec();
    let mut carry = 0u16;
    for (b, o) in out[32..].iter_mut().zip(ORDER) {
        let sum = u16::from(*b) + u16::from(o) + carry;
        *b = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    out
}

/// The header's `alg` is pinned to the keys' algorithm: a token whose signature Edgeplane's own
/// key really made is refused when its header names another algorithm (so a verifier that
/// read `alg` from the token could be steered), and no signature is even checked.
#[test]
fn a_header_naming_another_algorithm_is_refused_even_with_a_valid_signature() {
    use ed25519_dalek::Signer as _;
    block_on(async {
        let p = platform().await;
        let genuine = access::sign(&p, &claims(START_MS)).await.unwrap();
        let key = keys::active_key(&p).await.unwrap();
        let payload = genuine.split('.').nth(1).unwrap();
        for alg in ["RS256", "HS256", "ES256", "none", "eddsa", "Ed25519", ""] {
            let header = serde_json::json!({"alg": alg, "kid": key.kid, "typ": "at+jwt"});
            let input = format!("{}.{payload}", b64url_encode(header.to_string().as_bytes()));
            let sig = key.key.sign(input.as_bytes()).to_bytes();
            let token = format!("{input}.{}", b64url_encode(&sig));
            assert_eq!(
                access::verify(&p, &token, START_MS).await.unwrap_err(),
                VerifyTokenError::Algorithm,
                "{alg}"
            );
            let id: Result<serde_json::Value, _> = access::verify_signature(&p, &token).await;
            assert_eq!(id.unwrap_err(), VerifyTokenError::Algorithm, "{alg}");
        }
        assert_eq!(
            p.signatures.checks.get(),
            0,
            "refused before any signature check"
        );
        // The same header with `EdDSA`, signed the same way, verifies: only `alg` was wrong.
        let header = serde_json::json!({"alg": "EdDSA", "kid": key.kid, "typ": "at+jwt"});
        let input = format!("{}.{payload}", b64url_encode(header.to_string().as_bytes()));
        let sig = key.key.sign(input.as_bytes()).to_bytes();
        let token = format!("{input}.{}", b64url_encode(&sig));
        assert_eq!(
            access::verify(&p, &token, START_MS).await.unwrap(),
            claims(START_MS)
        );
    });
}

/// A valid signature made malleable (`S` plus the group order) is refused, and is not a hit of
/// the cache the genuine token is in.
#[test]
fn a_malleated_signature_is_refused() {
    block_on(async {
        let p = platform().await;
        let token = access::sign(&p, &claims(START_MS)).await.unwrap();
        assert!(access::verify(&p, &token, START_MS).await.is_ok());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let malleated = format!(
            "{input}.{}",
            b64url_encode(&malleate(&b64url_decode(sig).unwrap()))
        );
        assert_eq!(
            access::verify(&p, &malleated, START_MS).await.unwrap_err(),
            VerifyTokenError::BadSignature
        );
    });
}

/// The token's bytes: header members `alg`, `kid`, `typ`; the payload is the claims serialized
/// as they are, in their order, with nothing added.
#[test]
fn the_token_layout_is_the_claims_as_serialized() {
    block_on(async {
        let p = platform().await;
        let token = access::sign(&p, &claims(START_MS)).await.unwrap();
        let kid = keys::published(&p).await.unwrap()[0].kid.clone();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            String::from_utf8(b64url_decode(parts[0]).unwrap()).unwrap(),
            format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"at+jwt"}}"#)
        );
        assert_eq!(
            b64url_decode(parts[1]).unwrap(),
            serde_json::to_vec(&claims(START_MS)).unwrap()
        );
        assert_eq!(b64url_decode(parts[2]).unwrap().len(), 64);
    });
}
