//! FR-SYS-004 end to end through [`authenticate_operator`]: real SQLite, in-memory KV, canned
//! IdP answers (`MapHttp`), the fixed clock.

use std::cell::RefCell;
use std::rc::Rc;

use futures_executor::block_on;
use p256::ecdsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::*;
use crate::crypto::b64url_encode;
use crate::ports::{Backends, FetchError, Row, Sql, SqlError, Stmt};
use crate::testing::{TestPlatform, START_MS};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "edgeplane";
const DISCOVERY: &str = "https://idp.example.com/.well-known/openid-configuration";
const JWKS_URI: &str = "https://idp.example.com/oauth2/keys";
const NOW: i64 = START_MS / 1000;

// ---------------------------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------------------------

/// A signing key of each accepted kind, with its kid.
#[allow(clippy::large_enum_variant)] // a handful per test
enum Key {
    Ed(ed25519_dalek::SigningKey, &'static str),
    Es(p256::ecdsa::SigningKey, &'static str),
    Rs(
        rsa::pkcs1v15::SigningKey<Sha256>,
        rsa::RsaPublicKey,
        &'static str,
    ),
}

fn ed(seed: u8, kid: &'static str) -> Key {
    Key::Ed(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]), kid)
}

fn es(seed: u8, kid: &'static str) -> Key {
    Key::Es(
        p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
        kid,
    )
}

/// The committed RSA test key (testdata/rsa-2048.json): generating one per run is slow.
fn rs(kid: &'static str) -> Key {
    rsa_from(include_str!("testdata/rsa-2048.json"), kid)
}

/// An RSA key from a private JWK (n, e, d, p, q).
fn rsa_from(json: &str, kid: &'static str) -> Key {
    let jwk: Json = serde_json::from_str(json).unwrap();
    let int = |name: &str| {
        let bytes = crate::crypto::b64url_decode(jwk[name].as_str().unwrap()).unwrap();
        rsa::BigUint::from_bytes_be(&bytes)
    };
    let private =
        rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
            .unwrap();
    let public = private.to_public_key();
    Key::Rs(rsa::pkcs1v15::SigningKey::new(private), public, kid)
}

/// A second committed RSA key, for signatures the published key must refuse.
fn rs_other(kid: &'static str) -> Key {
    rsa_from(include_str!("testdata/rsa-2048-other.json"), kid)
}

impl Key {
    fn kid(&self) -> &'static str {
        match self {
            Key::Ed(_, kid) | Key::Es(_, kid) | Key::Rs(_, _, kid) => kid,
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Ed(..) => "EdDSA",
            Key::Es(..) => "ES256",
            Key::Rs(..) => "RS256",
        }
    }

    /// The public JWK, as an IdP publishes it.
    fn jwk(&self) -> Json {
        match self {
            Key::Ed(k, kid) => json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                "x": b64url_encode(k.verifying_key().as_bytes()),
            }),
            Key::Es(k, kid) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                    "x": b64url_encode(point.x().unwrap()), "y": b64url_encode(point.y().unwrap()),
                })
            }
            Key::Rs(_, public, kid) => {
                use rsa::traits::PublicKeyParts as _;
                json!({
                    "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": b64url_encode(&public.n().to_bytes_be()),
                    "e": b64url_encode(&public.e().to_bytes_be()),
                })
            }
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Key::Ed(k, _) => ed25519_dalek::Signer::sign(k, msg).to_bytes().to_vec(),
            Key::Es(k, _) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_bytes().to_vec()
            }
            Key::Rs(k, _, _) => k.sign(msg).to_vec(),
        }
    }

    fn header(&self) -> Json {
        json!({ "alg": self.alg(), "typ": "JWT", "kid": self.kid() })
    }
}

/// The claims of a valid operator token at [`NOW`].
fn claims() -> Json {
    json!({
        "iss": ISSUER, "aud": [AUDIENCE, "other"], "sub": "op-alice",
        "roles": ["operator"], "email": "alice@example.com",
        "iat": NOW, "exp": NOW + 600,
    })
}

/// A compact JWS of `header` and `claims` signed by `key`.
fn token_with(key: &Key, header: &Json, claims: &Json) -> String {
    let input = format!(
        "{}.{}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64url_encode(&sig))
}

/// A valid token signed by `key`.
fn token(key: &Key) -> String {
    token_with(key, &key.header(), &claims())
}

/// `claims()` with one member replaced (or removed, for `null`).
fn claims_with(name: &str, value: Json) -> Json {
    let mut c = claims();
    if value.is_null() {
        c.as_object_mut().unwrap().remove(name);
    } else {
        c[name] = value;
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Platform
// ---------------------------------------------------------------------------------------------

/// Publishes `keys` at the IdP.
fn publish(p: &TestPlatform, keys: &[&Key]) {
    let jwks = json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    p.http.set(JWKS_URI, 200, &jwks.to_string());
}

/// A platform configured for the IdP at [`ISSUER`] publishing `keys`.
async fn platform(keys: &[&Key]) -> TestPlatform {
    let p = TestPlatform::new().await;
    p.secrets.set("OPERATOR_ISSUER", ISSUER);
    p.secrets.set("OPERATOR_AUDIENCE", AUDIENCE);
    p.http.set(
        DISCOVERY,
        200,
        &json!({ "issuer": ISSUER, "jwks_uri": JWKS_URI, "id_token_signing_alg_values_supported": ["RS256"] })
            .to_string(),
    );
    publish(&p, keys);
    p
}

async fn sign_in<P: Platform>(p: &P, token: &str) -> Result<OperatorPrincipal, OperatorAuthError> {
    authenticate_operator(p, Some(&format!("Bearer {token}"))).await
}

fn jwks_fetches(p: &TestPlatform) -> usize {
    p.http
        .urls()
        .iter()
        .filter(|u| u.as_str() == JWKS_URI)
        .count()
}

async fn platform_users(p: &TestPlatform) -> Vec<Row> {
    p.sql
        .query(Stmt::new(
            "SELECT id, tenant_id, email, role, status, external_issuer, external_subject
             FROM users WHERE tenant_id IS NULL ORDER BY created_at",
        ))
        .await
        .unwrap()
}

async fn audit_actions(p: &TestPlatform) -> Vec<(String, String)> {
    p.sql
        .query(Stmt::new(
            "SELECT action, actor_id FROM audit_outbox ORDER BY seq",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.text("action").unwrap(), r.text("actor_id").unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn fr_sys_004_accepts_rs256_es256_and_eddsa() {
    block_on(async {
        let (r, e, d) = (rs("rsa-1"), es(7, "ec-1"), ed(9, "ed-1"));
        let p = platform(&[&r, &e, &d]).await;
        for key in [&r, &e, &d] {
            let principal = sign_in(&p, &token(key)).await.unwrap_or_else(|err| {
                panic!("{} refused: {err:?}", key.alg());
            });
            assert_eq!(principal.issuer, ISSUER);
            assert_eq!(principal.subject, "op-alice");
            assert_eq!(principal.role, PlatformRole::Operator);
        }
        // Discovery and keys were fetched once, then served from KV.
        assert_eq!(p.http.urls(), [DISCOVERY, JWKS_URI]);

        // Each algorithm refuses a signature over other claims, and one by another key.
        let impostors = [
            (&r, rs_other("rsa-1")),
            (&e, es(8, "ec-1")),
            (&d, ed(10, "ed-1")),
        ];
        for (key, impostor) in impostors {
            let genuine = token(key);
            let (head, _) = genuine.rsplit_once('.').unwrap();
            let other = token_with(key, &key.header(), &claims_with("sub", json!("op-mallory")));
            let (_, other_sig) = other.rsplit_once('.').unwrap();
            let swapped = format!("{head}.{other_sig}");
            assert_eq!(
                sign_in(&p, &swapped).await,
                Err(OperatorAuthError::BadSignature),
                "{}",
                key.alg()
            );
            let forged = token(&impostor);
            assert_eq!(
                sign_in(&p, &forged).await,
                Err(OperatorAuthError::BadSignature),
                "{}",
                key.alg()
            );
        }
    });
}

#[test]
fn fr_sys_004_refusals() {
    block_on(async {
        let (e, d) = (es(7, "ec-1"), ed(9, "ed-1"));
        let p = platform(&[&e, &d]).await;
        let valid = token(&d);
        let (h, c, s) = {
            let mut parts = valid.split('.');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            )
        };
        let encode = |v: &Json| b64url_encode(v.to_string().as_bytes());
        let tampered = encode(&claims_with("sub", json!("op-mallory")));
        let cases: Vec<(&str, String, OperatorAuthError)> = vec![
            (
                "alg none",
                format!("{}.{c}.{s}", encode(&json!({"alg": "none", "kid": "ed-1"}))),
                OperatorAuthError::UnsupportedAlgorithm,
            ),
            (
                "alg none, no signature",
                format!("{}.{c}.", encode(&json!({"alg": "none"}))),
                OperatorAuthError::Malformed,
            ),
            (
                "HS256",
                token_with(&d, &json!({"alg": "HS256", "kid": "ed-1"}), &claims()),
                OperatorAuthError::UnsupportedAlgorithm,
            ),
            (
                "HS512",
                token_with(&d, &json!({"alg": "HS512"}), &claims()),
                OperatorAuthError::UnsupportedAlgorithm,
            ),
            // An ES256 signature presented under the Ed25519 key's kid.
            (
                "alg/key mismatch",
                token_with(&e, &json!({"alg": "ES256", "kid": "ed-1"}), &claims()),
                OperatorAuthError::UnsupportedAlgorithm,
            ),
            (
                "EdDSA under the EC key",
                token_with(&d, &json!({"alg": "EdDSA", "kid": "ec-1"}), &claims()),
                OperatorAuthError::UnsupportedAlgorithm,
            ),
            (
                "wrong iss",
                token_with(
                    &d,
                    &d.header(),
                    &claims_with("iss", json!("https://evil.example.com")),
                ),
                OperatorAuthError::WrongIssuer,
            ),
            (
                "wrong aud",
                token_with(&d, &d.header(), &claims_with("aud", json!("another-app"))),
                OperatorAuthError::WrongAudience,
            ),
            (
                "no aud",
                token_with(&d, &d.header(), &claims_with("aud", Json::Null)),
                OperatorAuthError::WrongAudience,
            ),
            (
                "expired",
                token_with(&d, &d.header(), &claims_with("exp", json!(NOW - 61))),
                OperatorAuthError::Expired,
            ),
            (
                "nbf in the future",
                token_with(&d, &d.header(), &claims_with("nbf", json!(NOW + 300))),
                OperatorAuthError::Expired,
            ),
            (
                "iat in the future",
                token_with(&d, &d.header(), &claims_with("iat", json!(NOW + 300))),
                OperatorAuthError::Expired,
            ),
            (
                "no exp",
                token_with(&d, &d.header(), &claims_with("exp", Json::Null)),
                OperatorAuthError::Malformed,
            ),
            (
                "no role",
                token_with(&d, &d.header(), &claims_with("roles", json!(["owner"]))),
                OperatorAuthError::NoRole,
            ),
            (
                "tampered payload",
                format!("{h}.{tampered}.{s}"),
                OperatorAuthError::BadSignature,
            ),
            (
                "signature of another key",
                token_with(&ed(10, "ed-1"), &d.header(), &claims()),
                OperatorAuthError::BadSignature,
            ),
            (
                "truncated signature",
                format!("{h}.{c}.{}", &s[..40]),
                OperatorAuthError::BadSignature,
            ),
            (
                "two segments",
                format!("{h}.{c}"),
                OperatorAuthError::Malformed,
            ),
            (
                "four segments",
                format!("{h}.{c}.{s}.{s}"),
                OperatorAuthError::Malformed,
            ),
            (
                "JWE-like",
                format!("{h}.{c}.{s}.{s}.{s}"),
                OperatorAuthError::Malformed,
            ),
            (
                "oversized",
                format!("{h}.{}.{s}", "A".repeat(9000)),
                OperatorAuthError::Malformed,
            ),
            (
                "garbage",
                "not-a-token".into(),
                OperatorAuthError::Malformed,
            ),
        ];
        for (name, token, want) in cases {
            assert_eq!(sign_in(&p, &token).await, Err(want), "{name}");
        }
        // Every refusal left the user table alone.
        assert!(platform_users(&p).await.is_empty());
        assert_eq!(
            authenticate_operator(&p, None).await,
            Err(OperatorAuthError::MissingToken)
        );
        assert_eq!(
            authenticate_operator(&p, Some(&format!("Basic {valid}"))).await,
            Err(OperatorAuthError::MissingToken)
        );
        assert!(sign_in(&p, &valid).await.is_ok());
    });
}

#[test]
fn fr_sys_004_unconfigured_is_refused_before_anything_else() {
    block_on(async {
        let d = ed(9, "ed-1");
        let p = platform(&[&d]).await;
        p.secrets.set("OPERATOR_ISSUER", "");
        assert_eq!(
            sign_in(&p, &token(&d)).await,
            Err(OperatorAuthError::NotConfigured)
        );
        assert_eq!(
            authenticate_operator(&p, None).await,
            Err(OperatorAuthError::NotConfigured)
        );
        p.secrets.set("OPERATOR_ISSUER", ISSUER);
        p.secrets.set("OPERATOR_AUDIENCE", "");
        assert_eq!(
            sign_in(&p, &token(&d)).await,
            Err(OperatorAuthError::NotConfigured)
        );
        // A plain-http issuer outside development is a misconfiguration, logged.
        p.secrets.set("OPERATOR_AUDIENCE", AUDIENCE);
        p.secrets.set("OPERATOR_ISSUER", "http://idp.example.com");
        assert_eq!(
            sign_in(&p, &token(&d)).await,
            Err(OperatorAuthError::NotConfigured)
        );
        assert!(p.logger.lines().iter().any(|l| l.contains("misconfigured")));
        assert!(p.http.urls().is_empty());
        assert_eq!(
            OperatorAuthError::NotConfigured.code(),
            "operator-auth-not-configured"
        );
    });
}

#[test]
fn fr_sys_004_unknown_kid_refetches_once_and_finds_a_rotated_key() {
    block_on(async {
        let (old, new) = (ed(1, "2026-01"), ed(2, "2026-02"));
        let p = platform(&[&old]).await;
        sign_in(&p, &token(&old)).await.unwrap();
        assert_eq!(jwks_fetches(&p), 1);
        // The IdP rotates; the cached set does not have the new kid yet.
        publish(&p, &[&old, &new]);
        p.clock.advance(5_000);
        let principal = sign_in(&p, &token_with(&new, &new.header(), &claims()))
            .await
            .unwrap();
        assert_eq!(principal.role, PlatformRole::Operator);
        assert_eq!(jwks_fetches(&p), 2);
        // The refreshed set is cached: both kids verify without fetching.
        sign_in(&p, &token(&old)).await.unwrap();
        sign_in(&p, &token(&new)).await.unwrap();
        assert_eq!(jwks_fetches(&p), 2);
    });
}

#[test]
fn fr_sys_004_unknown_kid_after_refetch_fails_and_refetches_are_rate_limited() {
    block_on(async {
        let (known, forged) = (ed(1, "known"), ed(3, "forged"));
        let p = platform(&[&known]).await;
        sign_in(&p, &token(&known)).await.unwrap();
        assert_eq!(
            sign_in(&p, &token(&forged)).await,
            Err(OperatorAuthError::BadSignature)
        );
        assert_eq!(jwks_fetches(&p), 2);
        // More unknown kids within a minute do not reach the IdP.
        for _ in 0..5 {
            assert_eq!(
                sign_in(&p, &token(&forged)).await,
                Err(OperatorAuthError::BadSignature)
            );
        }
        assert_eq!(jwks_fetches(&p), 2);
        // A minute later one more re-fetch is allowed.
        p.clock.advance(61_000);
        assert_eq!(
            sign_in(
                &p,
                &token_with(
                    &forged,
                    &forged.header(),
                    &claims_with("iat", json!(NOW + 61))
                )
            )
            .await,
            Err(OperatorAuthError::BadSignature)
        );
        assert_eq!(jwks_fetches(&p), 3);
        // The known key still works throughout.
        sign_in(&p, &token(&known)).await.unwrap();
    });
}

#[test]
fn fr_sys_004_keys_are_cached_an_hour_and_served_stale_while_the_idp_is_down() {
    block_on(async {
        let d = ed(9, "ed-1");
        let p = platform(&[&d]).await;
        sign_in(&p, &token(&d)).await.unwrap();
        assert_eq!(p.kv.keys().len(), 1, "{:?}", p.kv.keys());
        p.clock.advance(30 * 60 * 1000);
        let later = |offset: i64| {
            token_with(
                &d,
                &d.header(),
                &json!({
                    "iss": ISSUER, "aud": AUDIENCE, "sub": "op-alice", "roles": "operator",
                    "iat": NOW + offset, "exp": NOW + offset + 600,
                }),
            )
        };
        sign_in(&p, &later(1800)).await.unwrap();
        assert_eq!(jwks_fetches(&p), 1);
        // Past an hour the set is fetched again...
        p.clock.advance(31 * 60 * 1000);
        sign_in(&p, &later(3660)).await.unwrap();
        assert_eq!(jwks_fetches(&p), 2);
        // ...and when the IdP is down, the stale set still serves (and says so in the log).
        p.http.fail(
            DISCOVERY,
            FetchError::Unavailable("connection refused".into()),
        );
        p.clock.advance(2 * 60 * 60 * 1000);
        sign_in(&p, &later(3660 + 7200)).await.unwrap();
        assert!(p
            .logger
            .lines()
            .iter()
            .any(|l| l.contains("using its cached keys")));
    });
}

#[test]
fn fr_sys_004_issuer_unavailable_or_inconsistent() {
    block_on(async {
        let d = ed(9, "ed-1");
        // Down, with nothing cached.
        let p = platform(&[&d]).await;
        p.http
            .fail(DISCOVERY, FetchError::Unavailable("dns".into()));
        let err = sign_in(&p, &token(&d)).await.unwrap_err();
        assert!(
            matches!(err, OperatorAuthError::IssuerUnavailable(_)),
            "{err:?}"
        );
        assert_eq!(err.code(), "operator-issuer-unavailable");

        let cases = [
            // The document names another issuer.
            json!({ "issuer": "https://evil.example.com", "jwks_uri": JWKS_URI }),
            // Keys over plain http.
            json!({ "issuer": ISSUER, "jwks_uri": "http://idp.example.com/keys" }),
            json!({ "issuer": ISSUER }),
        ];
        for doc in cases {
            let p = platform(&[&d]).await;
            p.http.set(DISCOVERY, 200, &doc.to_string());
            let err = sign_in(&p, &token(&d)).await.unwrap_err();
            assert!(
                matches!(err, OperatorAuthError::IssuerUnavailable(_)),
                "{doc}: {err:?}"
            );
        }
        let p = platform(&[&d]).await;
        p.http.set(JWKS_URI, 500, "oops");
        assert!(matches!(
            sign_in(&p, &token(&d)).await,
            Err(OperatorAuthError::IssuerUnavailable(_))
        ));
        p.http.set(JWKS_URI, 200, &"x".repeat(70_000));
        assert!(matches!(
            sign_in(&p, &token(&d)).await,
            Err(OperatorAuthError::IssuerUnavailable(_))
        ));
    });
}

#[test]
fn fr_sys_004_first_sign_in_provisions_a_platform_user_then_reuses_it() {
    block_on(async {
        let d = ed(9, "ed-1");
        let p = platform(&[&d]).await;
        let first = sign_in(&p, &token(&d)).await.unwrap();
        let rows = platform_users(&p).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.text("id").unwrap(), first.user_id);
        assert_eq!(row.opt_text("tenant_id").unwrap(), None);
        assert_eq!(row.text("role").unwrap(), "operator");
        assert_eq!(row.text("status").unwrap(), "active");
        assert_eq!(row.text("external_issuer").unwrap(), ISSUER);
        assert_eq!(row.text("external_subject").unwrap(), "op-alice");
        assert_eq!(
            row.opt_text("email").unwrap().as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            audit_actions(&p).await,
            [("platform_user.provision".to_owned(), first.user_id.clone())]
        );

        // Later sign-ins reuse the row: same actor id, no new audit record.
        p.clock.advance(1_000);
        let again = sign_in(&p, &token(&d)).await.unwrap();
        assert_eq!(again.user_id, first.user_id);
        assert_eq!(platform_users(&p).await.len(), 1);
        assert_eq!(audit_actions(&p).await.len(), 1);

        // The IdP made alice an auditor: the row follows, audited.
        let auditor = token_with(&d, &d.header(), &claims_with("roles", json!("auditor")));
        let demoted = sign_in(&p, &auditor).await.unwrap();
        assert_eq!(demoted.user_id, first.user_id);
        assert_eq!(demoted.role, PlatformRole::Auditor);
        assert_eq!(platform_users(&p).await[0].text("role").unwrap(), "auditor");
        assert_eq!(audit_actions(&p).await[1].0, "platform_user.role_change");

        // Another subject is another platform user; no email claim is fine.
        let bob = token_with(&d, &d.header(), &claims_with("sub", json!("op-bob")));
        let bob = sign_in(&p, &bob).await.unwrap();
        assert_ne!(bob.user_id, first.user_id);
        let mut carol = claims_with("sub", json!("op-carol"));
        carol.as_object_mut().unwrap().remove("email");
        assert!(sign_in(&p, &token_with(&d, &d.header(), &carol))
            .await
            .is_ok());
        let users = platform_users(&p).await;
        assert_eq!(users.len(), 3);
        assert_eq!(users[2].opt_text("email").unwrap(), None);

        // A disabled platform user is refused even with a valid token.
        p.sql
            .execute(
                Stmt::new("UPDATE users SET status = 'disabled' WHERE id = ?1").bind(&bob.user_id),
            )
            .await
            .unwrap();
        let bob = token_with(&d, &d.header(), &claims_with("sub", json!("op-bob")));
        assert_eq!(sign_in(&p, &bob).await, Err(OperatorAuthError::NoRole));
    });
}

/// The platform of [`fr_sys_004_racing_first_sign_ins_share_one_user`]: its SQL lets another
/// sign-in's insert land just before this one's batch.
struct Racing {
    inner: TestPlatform,
    sql: RacingSql,
}

#[derive(Clone)]
struct RacingSql {
    inner: crate::testing::NativeSql,
    rival: Rc<RefCell<Option<Stmt>>>,
}

impl Sql for RacingSql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        self.inner.query(stmt).await
    }
    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        self.inner.execute(stmt).await
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        let rival = self.rival.borrow_mut().take();
        if let Some(rival) = rival {
            self.inner.execute(rival).await?;
        }
        self.inner.batch(stmts).await
    }
}

impl Platform for Racing {
    type Sql = RacingSql;
    type Kv = <TestPlatform as Platform>::Kv;
    type EventLog = <TestPlatform as Platform>::EventLog;
    type Blobs = <TestPlatform as Platform>::Blobs;
    type Mailer = <TestPlatform as Platform>::Mailer;
    type Clock = <TestPlatform as Platform>::Clock;
    type Random = <TestPlatform as Platform>::Random;
    type Secrets = <TestPlatform as Platform>::Secrets;
    type Logger = <TestPlatform as Platform>::Logger;
    type Http = <TestPlatform as Platform>::Http;
    type Signatures = <TestPlatform as Platform>::Signatures;

    fn sql(&self) -> &RacingSql {
        &self.sql
    }
    fn kv(&self) -> &Self::Kv {
        self.inner.kv()
    }
    fn event_log(&self) -> &Self::EventLog {
        self.inner.event_log()
    }
    fn blobs(&self) -> &Self::Blobs {
        self.inner.blobs()
    }
    fn mailer(&self) -> &Self::Mailer {
        self.inner.mailer()
    }
    fn clock(&self) -> &Self::Clock {
        self.inner.clock()
    }
    fn random(&self) -> &Self::Random {
        self.inner.random()
    }
    fn secrets(&self) -> &Self::Secrets {
        self.inner.secrets()
    }
    fn logger(&self) -> &Self::Logger {
        self.inner.logger()
    }
    fn http(&self) -> &Self::Http {
        self.inner.http()
    }
    fn signatures(&self) -> &Self::Signatures {
        self.inner.signatures()
    }
    fn backends(&self) -> Backends {
        self.inner.backends()
    }
}

#[test]
fn fr_sys_004_racing_first_sign_ins_share_one_user() {
    block_on(async {
        let d = ed(9, "ed-1");
        let inner = platform(&[&d]).await;
        let rival = Stmt::new(
            "INSERT INTO users (id, tenant_id, role, status, external_issuer, external_subject,
               created_at, updated_at)
             VALUES ('rival-id', NULL, 'operator', 'active', ?1, 'op-alice', ?2, ?2)",
        )
        .bind(ISSUER)
        .bind(START_MS);
        let p = Racing {
            sql: RacingSql {
                inner: inner.sql.clone(),
                rival: Rc::new(RefCell::new(Some(rival))),
            },
            inner,
        };
        let principal = sign_in(&p, &token(&d)).await.unwrap();
        assert_eq!(principal.user_id, "rival-id");
        assert_eq!(platform_users(&p.inner).await.len(), 1);
        // The losing insert's audit record went with it; the email was brought up to date.
        assert!(audit_actions(&p.inner).await.is_empty());
        assert_eq!(
            platform_users(&p.inner).await[0]
                .opt_text("email")
                .unwrap()
                .as_deref(),
            Some("alice@example.com")
        );
    });
}

/// The committed output of `scripts/dev-issuer.mjs` (keygen, then a token at START_MS).
fn dev_fixture() -> Json {
    serde_json::from_str(include_str!("testdata/dev-issuer.json")).unwrap()
}

#[test]
fn fr_sys_004_dev_issuer_tokens_verify_against_the_inline_key_set() {
    block_on(async {
        let fx = dev_fixture();
        let p = TestPlatform::new().await;
        p.secrets.set("EDGEPLANE_ENV", "development");
        p.secrets
            .set("OPERATOR_ISSUER", fx["issuer"].as_str().unwrap());
        p.secrets
            .set("OPERATOR_AUDIENCE", fx["audience"].as_str().unwrap());
        p.secrets
            .set("OPERATOR_DEV_JWKS", fx["jwks"].as_str().unwrap());
        let principal = sign_in(&p, fx["token"].as_str().unwrap()).await.unwrap();
        assert_eq!(principal.role, PlatformRole::Operator);
        assert_eq!(principal.subject, "dev-operator");
        // Nothing was fetched or cached.
        assert!(p.http.urls().is_empty());
        assert!(p.kv.keys().is_empty());
    });
}

#[test]
fn fr_sys_004_dev_key_set_is_ignored_unless_development_and_loopback() {
    block_on(async {
        let fx = dev_fixture();
        let token = fx["token"].as_str().unwrap();
        // (EDGEPLANE_ENV, OPERATOR_ISSUER, expected)
        type Check = fn(&OperatorAuthError) -> bool;
        let cases: [(&str, &str, Check); 3] = [
            // A deployment: the http issuer itself is refused.
            ("production", fx["issuer"].as_str().unwrap(), |e| {
                *e == OperatorAuthError::NotConfigured
            }),
            // Development with a real issuer: keys come from discovery, never from the variable.
            ("development", ISSUER, |e| {
                matches!(e, OperatorAuthError::IssuerUnavailable(_))
            }),
            ("production", ISSUER, |e| {
                matches!(e, OperatorAuthError::IssuerUnavailable(_))
            }),
        ];
        for (env, issuer, expected) in cases {
            let p = TestPlatform::new().await;
            p.secrets.set("EDGEPLANE_ENV", env);
            p.secrets.set("OPERATOR_ISSUER", issuer);
            p.secrets.set("OPERATOR_AUDIENCE", AUDIENCE);
            p.secrets
                .set("OPERATOR_DEV_JWKS", fx["jwks"].as_str().unwrap());
            let err = sign_in(&p, token).await.unwrap_err();
            assert!(expected(&err), "{env} {issuer}: {err:?}");
            assert!(platform_users(&p).await.is_empty());
        }
        // With a real issuer that publishes other keys, the dev token's key is unknown.
        let p = platform(&[&ed(9, "ed-1")]).await;
        p.secrets.set("EDGEPLANE_ENV", "development");
        p.secrets
            .set("OPERATOR_DEV_JWKS", fx["jwks"].as_str().unwrap());
        let forged = {
            let mut parts = token.split('.');
            let header = parts.next().unwrap();
            let sig = parts.nth(1).unwrap();
            format!(
                "{header}.{}.{sig}",
                b64url_encode(claims().to_string().as_bytes())
            )
        };
        assert_eq!(
            sign_in(&p, &forged).await,
            Err(OperatorAuthError::BadSignature)
        );
        assert!(jwks_fetches(&p) >= 1);
    });
}

#[test]
fn fr_sys_004_ignored_dev_key_set_is_logged_once() {
    let logger = crate::testing::VecLogger::default();
    let flag = AtomicBool::new(false);
    warn_once(&logger, &flag, START_MS);
    warn_once(&logger, &flag, START_MS);
    assert_eq!(logger.lines().len(), 1);
    assert!(logger.lines()[0].contains("OPERATOR_DEV_JWKS ignored"));
}

#[test]
fn fr_sys_004_error_codes_are_distinct() {
    let all = [
        OperatorAuthError::NotConfigured,
        OperatorAuthError::MissingToken,
        OperatorAuthError::Malformed,
        OperatorAuthError::UnsupportedAlgorithm,
        OperatorAuthError::BadSignature,
        OperatorAuthError::Expired,
        OperatorAuthError::WrongIssuer,
        OperatorAuthError::WrongAudience,
        OperatorAuthError::NoRole,
        OperatorAuthError::IssuerUnavailable(String::new()),
        OperatorAuthError::Storage(String::new()),
    ];
    let mut codes: Vec<_> = all.iter().map(OperatorAuthError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}
