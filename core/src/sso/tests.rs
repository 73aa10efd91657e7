//! FR-AUTH-003 on real SQLite with the migrations, canned IdP answers (`MapHttp`) and the fixed
//! clock: configuration checks, discovery judgement, the ID token table, and the whole
//! start/callback flow with user matching.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_executor::block_on;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::config::{self, SsoConfigError, SsoConfigInput};
use super::discovery::{self, DiscoveryError, TokenAuth};
use super::flow::{self, CallbackParams, SsoCallbackError, SsoStartError};
use super::id_token::{self, Expected, IdTokenError};
use crate::audit::Actor;
use crate::auth::config::ENV_VAR;
use crate::crypto::{b64url_encode, token_hash};
use crate::ports::{Kv, Row, Sql, Stmt};
use crate::tenants::{self, Email, Plan, ProvisionTenant, TenantDomain, TenantName};
use crate::testing::{TestPlatform, START_MS};
use crate::tokens::master_key::{MasterKey, MASTER_KEY_SECRET};
use crate::users;

const ISSUER: &str = "https://idp.example.com";
const DISCOVERY: &str = "https://idp.example.com/.well-known/openid-configuration";
const JWKS: &str = "https://idp.example.com/jwks";
const TOKEN: &str = "https://idp.example.com/token";
const CLIENT: &str = "edgeplane";
const SECRET: &str = "s3cret-of-the-client";
const NOW: i64 = START_MS / 1000;

// ---------------------------------------------------------------------------------------------
// Keys and tokens
// ---------------------------------------------------------------------------------------------

#[allow(clippy::large_enum_variant)] // two per test
enum Key {
    Es(p256::ecdsa::SigningKey, &'static str),
    Rs(rsa::pkcs1v15::SigningKey<Sha256>, rsa::RsaPublicKey),
}

fn es(seed: u8, kid: &'static str) -> Key {
    Key::Es(
        p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
        kid,
    )
}

fn rs() -> Key {
    let jwk: Json = serde_json::from_str(include_str!("../auth/testdata/rsa-2048.json")).unwrap();
    let int = |name: &str| {
        rsa::BigUint::from_bytes_be(
            &crate::crypto::b64url_decode(jwk[name].as_str().unwrap()).unwrap(),
        )
    };
    let private =
        rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
            .unwrap();
    let public = private.to_public_key();
    Key::Rs(rsa::pkcs1v15::SigningKey::new(private), public)
}

impl Key {
    fn jwk(&self) -> Json {
        match self {
            Key::Es(k, kid) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                    "x": b64url_encode(point.x().unwrap()), "y": b64url_encode(point.y().unwrap()),
                })
            }
            Key::Rs(_, public) => {
                use rsa::traits::PublicKeyParts as _;
                json!({
                    "kty": "RSA", "kid": "rs", "alg": "RS256",
                    "n": b64url_encode(&public.n().to_bytes_be()),
                    "e": b64url_encode(&public.e().to_bytes_be()),
                })
            }
        }
    }

    fn sign_token(&self, claims: &Json) -> String {
        let header = match self {
            Key::Es(_, kid) => json!({ "alg": "ES256", "kid": kid }),
            Key::Rs(..) => json!({ "alg": "RS256", "kid": "rs" }),
        };
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let sig = match self {
            Key::Es(k, _) => {
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            Key::Rs(k, _) => {
                use rsa::signature::SignatureEncoding as _;
                k.sign(input.as_bytes()).to_vec()
            }
        };
        format!("{input}.{}", b64url_encode(&sig))
    }
}

fn id_claims(nonce: &str, email: &str) -> Json {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": format!("sub-{email}"), "nonce": nonce,
        "email": email, "email_verified": true, "iat": NOW, "exp": NOW + 300,
    })
}

fn expected(nonce_hash: &str) -> Expected<'_> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce_hash,
        now_ms: START_MS,
    }
}

/// FR-AUTH-003: the ID token table. Each refusal names its own reason.
#[test]
fn fr_auth_003_id_token_validation_table() {
    let key = es(7, "k1");
    let keys = vec![key.jwk(), rs().jwk()];
    let nonce_hash = token_hash("the-nonce");
    let with = |f: &dyn Fn(&mut Json)| {
        let mut c = id_claims("the-nonce", "ana@acme.test");
        f(&mut c);
        c
    };
    let check = |token: &str| {
        id_token::verify_signature(token, &keys)
            .and_then(|c| id_token::check_claims(&c, &expected(&nonce_hash)))
    };
    // Good, with ES256 and RS256.
    let ok = check(&key.sign_token(&with(&|_| {}))).unwrap();
    assert_eq!(ok.email, "ana@acme.test");
    assert_eq!(ok.subject, "sub-ana@acme.test");
    check(&rs().sign_token(&with(&|_| {}))).unwrap();

    let cases: Vec<(&str, Json, IdTokenError)> = vec![
        (
            "wrong nonce",
            with(&|c| c["nonce"] = json!("other")),
            IdTokenError::Nonce,
        ),
        (
            "no nonce",
            with(&|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
            IdTokenError::Nonce,
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("someone-else")),
            IdTokenError::Audience,
        ),
        (
            "aud list without azp",
            with(&|c| c["aud"] = json!([CLIENT, "x"])),
            IdTokenError::AuthorizedParty,
        ),
        (
            "azp of another party",
            with(&|c| c["azp"] = json!("x")),
            IdTokenError::AuthorizedParty,
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(NOW - 61)),
            IdTokenError::Expired,
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(NOW + 120)),
            IdTokenError::Expired,
        ),
        (
            "other issuer",
            with(&|c| c["iss"] = json!("https://evil.example.com")),
            IdTokenError::Issuer,
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            IdTokenError::Malformed,
        ),
        (
            "unverified email",
            with(&|c| c["email_verified"] = json!(false)),
            IdTokenError::EmailNotVerified,
        ),
        (
            "verified as a string",
            with(&|c| c["email_verified"] = json!("true")),
            IdTokenError::EmailNotVerified,
        ),
        (
            "no email",
            with(&|c| {
                c.as_object_mut().unwrap().remove("email");
            }),
            IdTokenError::EmailNotVerified,
        ),
    ];
    for (name, claims, want) in cases {
        assert_eq!(check(&key.sign_token(&claims)), Err(want), "{name}");
    }
    // Within the leeway still accepted.
    check(&key.sign_token(&with(&|c| c["exp"] = json!(NOW - 30)))).unwrap();

    // Signatures: another key, alg none, HS256 and EdDSA are refused before any claim is read.
    assert_eq!(
        check(&es(8, "k1").sign_token(&with(&|_| {}))),
        Err(IdTokenError::Signature)
    );
    let payload = b64url_encode(with(&|_| {}).to_string().as_bytes());
    for alg in ["none", "HS256", "EdDSA"] {
        let header = b64url_encode(json!({ "alg": alg, "kid": "k1" }).to_string().as_bytes());
        let token = format!("{header}.{payload}.c2ln");
        assert_eq!(check(&token), Err(IdTokenError::Algorithm), "{alg}");
    }
    assert_eq!(check("a.b"), Err(IdTokenError::Malformed));
}

// ---------------------------------------------------------------------------------------------
// Discovery and configuration
// ---------------------------------------------------------------------------------------------

fn metadata() -> Json {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": TOKEN,
        "jwks_uri": JWKS,
        "response_types_supported": ["code", "id_token"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    })
}

/// FR-AUTH-003: a discovery document is judged field by field; every endpoint must be on the
/// issuer's origin, so outbound fetches never leave it.
#[test]
fn fr_auth_003_discovery_checks_name_what_failed() {
    block_on(async {
        let p = TestPlatform::new().await;
        p.http.set(DISCOVERY, 200, &metadata().to_string());
        let meta = discovery::discover(&p, ISSUER, false).await.unwrap();
        assert_eq!(meta.token_auth, TokenAuth::ClientSecretBasic);
        assert_eq!(meta.token_endpoint, TOKEN);

        type Change = Box<dyn Fn(&mut Json)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            (
                "issuer",
                Box::new(|m| m["issuer"] = json!("https://idp.example.com/")),
                "names another issuer",
            ),
            (
                "token",
                Box::new(|m| m["token_endpoint"] = json!("https://evil.example.com/token")),
                "token_endpoint",
            ),
            (
                "jwks",
                Box::new(|m| m["jwks_uri"] = json!("https://idp.example.com:8443/jwks")),
                "jwks_uri",
            ),
            (
                "authz",
                Box::new(|m| {
                    m.as_object_mut().unwrap().remove("authorization_endpoint");
                }),
                "no authorization_endpoint",
            ),
            (
                "code",
                Box::new(|m| m["response_types_supported"] = json!(["id_token"])),
                "code flow",
            ),
            (
                "pkce",
                Box::new(|m| m["code_challenge_methods_supported"] = json!(["plain"])),
                "S256",
            ),
            (
                "pkce absent",
                Box::new(|m| {
                    m.as_object_mut()
                        .unwrap()
                        .remove("code_challenge_methods_supported");
                }),
                "S256",
            ),
            (
                "algs",
                Box::new(|m| m["id_token_signing_alg_values_supported"] = json!(["HS256"])),
                "RS256",
            ),
            (
                "auth",
                Box::new(|m| {
                    m["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"])
                }),
                "client_secret_basic",
            ),
        ];
        for (name, change, needle) in cases {
            let mut m = metadata();
            change(&mut m);
            p.http.set(DISCOVERY, 200, &m.to_string());
            match discovery::discover(&p, ISSUER, false).await {
                Err(DiscoveryError::Unusable(why)) => {
                    assert!(why.contains(needle), "{name}: {why}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut m = metadata();
        m["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
        p.http.set(DISCOVERY, 200, &m.to_string());
        assert_eq!(
            discovery::discover(&p, ISSUER, false)
                .await
                .unwrap()
                .token_auth,
            TokenAuth::ClientSecretPost
        );
        p.http.set(DISCOVERY, 404, "");
        assert!(matches!(
            discovery::discover(&p, ISSUER, false).await,
            Err(DiscoveryError::Unreachable { .. })
        ));
        // The key set is fetched only from the issuer's origin.
        assert!(matches!(
            discovery::fetch_keys(&p, ISSUER, "https://evil.example.com/jwks", false).await,
            Err(DiscoveryError::Unusable(_))
        ));
        assert!(!p.http.urls().iter().any(|u| u.contains("evil")));
    });
}

/// FR-AUTH-003: issuers are https, or http to a loopback host in development only.
#[test]
fn fr_auth_003_issuer_urls_are_https_outside_development() {
    for (issuer, dev, ok) in [
        ("https://idp.example.com", false, true),
        ("https://idp.example.com/realms/acme", false, true),
        ("http://idp.example.com", true, false),
        ("http://127.0.0.1:9000", false, false),
        ("http://127.0.0.1:9000", true, true),
        ("https://idp.example.com?x=1", false, false),
        ("idp.example.com", false, false),
    ] {
        assert_eq!(
            discovery::issuer_origin(issuer, dev).is_ok(),
            ok,
            "{issuer} dev={dev}"
        );
    }
    assert_eq!(
        discovery::origin_of("https://IdP.example.com:8443/x?y").as_deref(),
        Some("https://idp.example.com:8443")
    );
}

/// FR-AUTH-003: the worker fetches what an owner names, so an issuer must be
/// a public https host. IP literals of loopback, private, link-local (the cloud metadata
/// address), unique-local, shared (CGNAT), multicast, broadcast, documentation and unspecified
/// ranges are refused in every spelling a URL parser accepts (IPv4-mapped IPv6, decimal, octal
/// and hex IPv4), and so are internal names. Development keeps exactly one allowance: a loopback
/// host (`localhost`, `127.0.0.1`, `[::1]`), for the local IdP of the contract suite.
#[test]
fn fr_auth_003_issuers_must_be_public_hosts() {
    let refused = [
        "https://10.0.0.1",
        "https://10.255.255.255/realm",
        "https://172.16.0.1",
        "https://172.31.255.254",
        "https://192.168.1.1:8443",
        "https://127.0.0.1",
        "https://127.1.2.3",
        "https://169.254.169.254",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1",
        "https://100.127.255.255",
        "https://0.0.0.0",
        "https://224.0.0.1",
        "https://239.255.255.250",
        "https://255.255.255.255",
        "https://240.0.0.1",
        "https://192.0.2.10",
        "https://198.51.100.7",
        "https://203.0.113.9",
        "https://198.18.0.1",
        "https://[::1]",
        "https://[::]",
        "https://[fe80::1]",
        "https://[fc00::1]",
        "https://[fd12:3456::1]",
        "https://[ff02::1]",
        "https://[2001:db8::1]",
        "https://[::ffff:127.0.0.1]",
        "https://[::ffff:169.254.169.254]",
        "https://[::ffff:a9fe:a9fe]",
        "https://[::ffff:10.0.0.1]",
        "https://[64:ff9b::a00:1]",
        "https://2130706433",
        "https://0x7f000001",
        "https://0177.0.0.1",
        "https://127.1",
        "https://0x7f.0.0.1",
        "https://169.254.169.254.",
        "https://10.0.0.1.",
        "https://127.0.0.%31",
        "https://localhost",
        "https://localhost.",
        "https://LOCALHOST",
        "https://idp.localhost",
        "https://printer.local",
        "https://metadata.google.internal",
        "https://idp.corp.internal:8443",
        "https://intranet",
        "http://idp.example.com",
        "http://127.0.0.1:9000",
    ];
    for issuer in refused {
        assert!(
            discovery::issuer_origin(issuer, false).is_err(),
            "{issuer} was accepted"
        );
    }
    // Development: loopback only, as before; every other internal destination stays refused.
    for issuer in [
        "http://127.0.0.1:9000",
        "http://localhost:9000/realms/x",
        "http://[::1]:9000",
    ] {
        assert!(
            discovery::issuer_origin(issuer, true).is_ok(),
            "{issuer} dev"
        );
    }
    for issuer in [
        "http://10.0.0.1",
        "https://169.254.169.254",
        "http://127.0.0.2:9000",
        "http://idp.localhost",
        "https://[::ffff:127.0.0.1]",
        "http://idp.example.com",
    ] {
        assert!(
            discovery::issuer_origin(issuer, true).is_err(),
            "{issuer} dev"
        );
    }
    for issuer in [
        "https://idp.example.com",
        "https://login.microsoftonline.com/tenant/v2.0",
        "https://8.8.8.8",
        "https://[2606:4700::1111]",
        "https://172.32.0.1",
        "https://100.128.0.1",
        "https://idp.example.com.",
        "https://xn--mnchen-3ya.example",
        "https://0x.example.com",
    ] {
        assert!(
            discovery::issuer_origin(issuer, false).is_ok(),
            "{issuer} was refused"
        );
    }
}

/// FR-AUTH-003: the check holds where the fetch happens, not only where a
/// configuration is saved: a configuration stored before it existed (issuer on a private
/// address), even with its metadata cached, starts no sign-in and is never fetched.
#[test]
fn fr_auth_003_a_stored_private_issuer_is_never_fetched() {
    block_on(async {
        let f = fixture().await;
        let p = &f.p;
        config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        let private = "https://10.0.0.5";
        p.sql
            .execute(Stmt::new("UPDATE sso_configs SET issuer_url = ?1").bind(private))
            .await
            .unwrap();
        let meta = json!({
            "issuer": private,
            "authorization_endpoint": format!("{private}/authorize"),
            "token_endpoint": format!("{private}/token"),
            "jwks_uri": format!("{private}/jwks"),
            "token_auth": "client_secret_basic",
        });
        p.kv.put(
            &format!("sso:meta:{}", crate::crypto::sha256_hex(private.as_bytes())),
            meta.to_string().as_bytes(),
            None,
        )
        .await
        .unwrap();
        let started = flow::start(
            p,
            &TenantDomain::parse("acme").unwrap(),
            "https://edge.test/v1/auth/sso/callback",
            None,
            None,
        )
        .await;
        assert!(
            matches!(started, Err(SsoStartError::IdpUnavailable(_))),
            "{started:?}"
        );
        // The key set of such an issuer is not fetched either.
        assert!(
            discovery::fetch_keys(p, private, &format!("{private}/jwks"), false)
                .await
                .is_err()
        );
        assert!(
            !p.http.urls().iter().any(|u| u.contains("10.0.0.5")),
            "{:?}",
            p.http.urls()
        );
    });
}

/// FR-AUTH-003, CON-SEC-009: when discovery fails, the owner is told what
/// failed in Edgeplane's words only: no upstream status, body, value or network error reaches
/// the caller (it would turn the check into a probe of what answers where).
#[test]
fn fr_auth_003_discovery_failures_do_not_echo_the_upstream() {
    block_on(async {
        let f = fixture().await;
        let p = &f.p;
        let marker = "upstream-marker";
        let check = |what: &str, got: Result<config::SsoConfigView, SsoConfigError>| match got {
            Err(e @ SsoConfigError::Discovery(_)) => {
                let shown = e.to_string();
                for leak in [marker, "503", "10.9.8.7", "status"] {
                    assert!(!shown.contains(leak), "{what}: {shown}");
                }
                shown
            }
            other => panic!("{what}: {other:?}"),
        };
        p.http
            .set(DISCOVERY, 503, &json!({ "error": marker }).to_string());
        let shown = check(
            "status",
            config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r").await,
        );
        assert!(shown.contains("discovery document"), "{shown}");
        p.http.fail(
            DISCOVERY,
            crate::ports::FetchError::Unavailable(format!("connect 10.9.8.7:443: {marker}")),
        );
        check(
            "network",
            config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r").await,
        );
        for (name, value) in [
            ("issuer", format!("https://{marker}.example")),
            ("token_endpoint", format!("https://{marker}.example/token")),
            ("jwks_uri", format!("https://idp.example.com/{marker}")),
        ] {
            let mut m = metadata();
            m[name] = json!(value);
            if name == "jwks_uri" {
                p.http.set(&value, 200, &format!("not json {marker}"));
            }
            p.http.set(DISCOVERY, 200, &m.to_string());
            check(
                name,
                config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r").await,
            );
        }
        p.http
            .set(DISCOVERY, 200, &format!("<html>{marker}</html>"));
        check(
            "not json",
            config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r").await,
        );
    });
}

struct Fixture {
    p: TestPlatform,
    tenant_id: String,
    owner_id: String,
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
    let accepted = users::accept_invitation(&p, &token, "correct horse battery staple", "r")
        .await
        .unwrap();
    p.http.set(DISCOVERY, 200, &metadata().to_string());
    p.http.set(
        JWKS,
        200,
        &json!({ "keys": [es(7, "k1").jwk()] }).to_string(),
    );
    Fixture {
        p,
        tenant_id: out.tenant.id.as_str().to_owned(),
        owner_id: accepted.user_id,
    }
}

fn input(allow_jit: bool) -> SsoConfigInput {
    SsoConfigInput {
        issuer_url: ISSUER.to_owned(),
        client_id: CLIENT.to_owned(),
        client_secret: Some(SECRET.to_owned()),
        allow_jit: Some(allow_jit),
        ..SsoConfigInput::default()
    }
}

async fn rows(p: &TestPlatform, sql: &'static str) -> Vec<Row> {
    p.sql.query(Stmt::new(sql)).await.unwrap()
}

/// FR-AUTH-003, NFR-SEC-002: owner only; the secret is sealed, never shown; saves are audited;
/// a broken issuer is refused naming the failure.
#[test]
fn fr_auth_003_configuration_is_owner_only_sealed_and_checked() {
    block_on(async {
        let f = fixture().await;
        let p = &f.p;
        assert_eq!(
            config::get(p, &f.tenant_id, &f.owner_id).await,
            Err(SsoConfigError::NotConfigured)
        );
        // Not an owner (an unknown user id, or one of another tenant): refused.
        assert_eq!(
            config::save(p, &f.tenant_id, "someone", &input(false), "r").await,
            Err(SsoConfigError::NotOwner)
        );
        let mut no_secret = input(false);
        no_secret.client_secret = None;
        assert!(matches!(
            config::save(p, &f.tenant_id, &f.owner_id, &no_secret, "r").await,
            Err(SsoConfigError::Invalid("client_secret", _))
        ));
        let mut bad_role = input(true);
        bad_role.jit_role = Some("owner".to_owned());
        assert!(matches!(
            config::save(p, &f.tenant_id, &f.owner_id, &bad_role, "r").await,
            Err(SsoConfigError::Invalid("jit_role", _))
        ));
        p.http.set(JWKS, 200, r#"{"keys":[]}"#);
        match config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r").await {
            Err(SsoConfigError::Discovery(why)) => {
                assert!(why.to_string().contains("no RS256 or ES256"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        p.http.set(
            JWKS,
            200,
            &json!({ "keys": [es(7, "k1").jwk()] }).to_string(),
        );

        let view = config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r-save")
            .await
            .unwrap();
        assert!(view.client_secret_set && view.enabled && !view.allow_jit);
        assert!(!serde_json::to_string(&view).unwrap().contains(SECRET));
        let stored = rows(p, "SELECT client_secret_enc FROM sso_configs").await;
        let sealed = stored[0].text("client_secret_enc").unwrap();
        assert!(!sealed.contains(SECRET));
        let master = MasterKey::load(&p.secrets).unwrap();
        assert_eq!(
            master
                .open(&config::secret_context(&f.tenant_id), &sealed)
                .unwrap(),
            SECRET.as_bytes()
        );
        let audit = rows(
            p,
            "SELECT metadata FROM audit_outbox WHERE action = 'sso.configure'",
        )
        .await;
        assert_eq!(audit.len(), 1);
        assert!(!audit[0].text("metadata").unwrap().contains(SECRET));

        // A new save without a secret keeps the stored one.
        config::save(p, &f.tenant_id, &f.owner_id, &no_secret, "r")
            .await
            .unwrap();
        let again = rows(p, "SELECT client_secret_enc FROM sso_configs").await;
        assert_eq!(again[0].text("client_secret_enc").unwrap(), sealed);

        config::delete(p, &f.tenant_id, &f.owner_id, "r")
            .await
            .unwrap();
        assert_eq!(
            config::delete(p, &f.tenant_id, &f.owner_id, "r").await,
            Err(SsoConfigError::NotConfigured)
        );
        assert_eq!(
            rows(p, "SELECT id FROM audit_outbox WHERE action = 'sso.remove'")
                .await
                .len(),
            1
        );
    });
}

/// FR-AUTH-003, NFR-SEC-002: the stored client secret belongs to the issuer
/// and client it was given for. A save that changes either must bring the secret again;
/// otherwise whoever holds the owner account could point the issuer at their own IdP and
/// receive the company IdP's secret at their token endpoint on the next sign-in.
#[test]
fn fr_auth_003_changing_issuer_or_client_requires_the_secret_again() {
    block_on(async {
        let f = fixture().await;
        let p = &f.p;
        // A second, working provider: without the rule, the save below would succeed.
        let other = "https://idp.other.example";
        let mut m = metadata();
        for (name, path) in [
            ("authorization_endpoint", "/authorize"),
            ("token_endpoint", "/token"),
            ("jwks_uri", "/jwks"),
        ] {
            m[name] = json!(format!("{other}{path}"));
        }
        m["issuer"] = json!(other);
        p.http.set(
            &format!("{other}/.well-known/openid-configuration"),
            200,
            &m.to_string(),
        );
        p.http.set(
            &format!("{other}/jwks"),
            200,
            &json!({ "keys": [es(7, "k1").jwk()] }).to_string(),
        );
        config::save(p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        let before = rows(p, "SELECT * FROM sso_configs").await;
        let audits = rows(p, "SELECT id FROM audit_outbox").await.len();
        let fetches = p.http.urls().len();

        let mut new_issuer = input(false);
        new_issuer.issuer_url = other.to_owned();
        new_issuer.client_secret = None;
        let mut new_client = input(false);
        new_client.client_id = "another-client".to_owned();
        new_client.client_secret = None;
        for (name, changed) in [("issuer", &new_issuer), ("client", &new_client)] {
            match config::save(p, &f.tenant_id, &f.owner_id, changed, "r").await {
                Err(SsoConfigError::Invalid("client_secret", why)) => {
                    assert!(why.contains("issuer_url or client_id"), "{name}: {why}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // Nothing changed, nothing was audited, and the other IdP was never contacted.
        assert_eq!(rows(p, "SELECT * FROM sso_configs").await, before);
        assert_eq!(rows(p, "SELECT id FROM audit_outbox").await.len(), audits);
        assert_eq!(p.http.urls().len(), fetches);

        // With the secret the change is an ordinary save.
        new_issuer.client_secret = Some("the-other-secret".to_owned());
        let view = config::save(p, &f.tenant_id, &f.owner_id, &new_issuer, "r")
            .await
            .unwrap();
        assert_eq!(view.issuer_url, other);
        // Keeping issuer and client, the secret may still be omitted.
        let mut same = new_issuer.clone();
        same.client_secret = None;
        same.allow_jit = Some(true);
        assert!(
            config::save(p, &f.tenant_id, &f.owner_id, &same, "r")
                .await
                .unwrap()
                .allow_jit
        );
    });
}

// ---------------------------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------------------------

fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// Starts a sign-in and has the IdP answer the code with an ID token of `claims(nonce)`.
async fn run(
    f: &Fixture,
    claims: impl Fn(&str) -> Json,
) -> Result<flow::SsoSignIn, SsoCallbackError> {
    run_signed(f, es(7, "k1"), claims).await
}

/// [`run`] with the ID token signed by `key`.
async fn run_signed(
    f: &Fixture,
    key: Key,
    claims: impl Fn(&str) -> Json,
) -> Result<flow::SsoSignIn, SsoCallbackError> {
    let params = idp_answers(f, key, claims).await;
    flow::callback(&f.p, &params, Some("203.0.113.5"), "r-cb").await
}

/// Starts a sign-in (from the login page's flow `lf-1`) and has the IdP answer the code with
/// an ID token signed by `key` of `claims(nonce)`: the parameters of the callback.
async fn idp_answers(f: &Fixture, key: Key, claims: impl Fn(&str) -> Json) -> CallbackParams {
    let started = flow::start(
        &f.p,
        &TenantDomain::parse("acme").unwrap(),
        "https://edge.test/v1/auth/sso/callback",
        Some("lf-1".to_owned()),
        None,
    )
    .await
    .unwrap();
    let url = started.authorization_url;
    assert!(url.starts_with("https://idp.example.com/authorize?"));
    assert_eq!(
        param(&url, "redirect_uri"),
        "https://edge.test/v1/auth/sso/callback"
    );
    assert_eq!(param(&url, "code_challenge_method"), "S256");
    let token = key.sign_token(&claims(&param(&url, "nonce")));
    f.p.http.set(
        TOKEN,
        200,
        &json!({ "id_token": token, "token_type": "Bearer" }).to_string(),
    );
    CallbackParams {
        code: Some("the-code".to_owned()),
        state: Some(param(&url, "state")),
        error: None,
        iss: None,
    }
}

/// FR-AUTH-003: an active user signs in; the exchange sends the PKCE verifier and the client's
/// Basic credentials to the token endpoint only; the state is single use; the identity is linked.
#[test]
fn fr_auth_003_active_user_signs_in_and_is_linked() {
    block_on(async {
        let f = fixture().await;
        config::save(&f.p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        let done = run(&f, |n| id_claims(n, "OWNER@acme.test")).await.unwrap();
        assert_eq!(done.user.user_id, f.owner_id);
        assert_eq!(done.user.role, "owner");
        assert_eq!(done.login_flow.as_deref(), Some("lf-1"));
        let token_req =
            f.p.http
                .requests()
                .into_iter()
                .find(|r| r.url == TOKEN)
                .unwrap();
        assert_eq!(token_req.method, "POST");
        let body = String::from_utf8(token_req.body.clone()).unwrap();
        assert!(body.contains("code_verifier=") && body.contains("grant_type=authorization_code"));
        let basic = token_req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap();
        assert_eq!(
            basic.1,
            format!("Basic {}", STANDARD.encode(format!("{CLIENT}:{SECRET}")))
        );
        let linked = rows(
            &f.p,
            "SELECT external_issuer, external_subject FROM users WHERE role = 'owner'",
        )
        .await;
        assert_eq!(linked[0].text("external_issuer").unwrap(), ISSUER);
        // Later the IdP changes the email: the link by subject still finds the account.
        let done = run(&f, |n| {
            let mut c = id_claims(n, "renamed@acme.test");
            c["sub"] = json!("sub-OWNER@acme.test");
            c
        })
        .await
        .unwrap();
        assert_eq!(done.user.user_id, f.owner_id);
        // Each flow row was consumed by its callback (single use).
        let used = rows(
            &f.p,
            "SELECT token_hash FROM auth_flows WHERE consumed_at IS NOT NULL",
        )
        .await;
        assert_eq!(used.len(), 2);
    });
}

/// FR-AUTH-003: sign-ins reuse the provider's metadata and key set from KV; an ID token signed
/// by a key the cached set lacks (the IdP rotated) makes the callback fetch the set once more.
#[test]
fn fr_auth_003_metadata_and_keys_are_cached_and_a_rotation_refetches() {
    block_on(async {
        let f = fixture().await;
        config::save(&f.p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        let fetches = |url: &str| f.p.http.requests().iter().filter(|r| r.url == url).count();
        let (discovered, keyed) = (fetches(DISCOVERY), fetches(JWKS));
        run(&f, |n| id_claims(n, "owner@acme.test")).await.unwrap();
        run(&f, |n| id_claims(n, "owner@acme.test")).await.unwrap();
        assert_eq!(fetches(DISCOVERY), discovered, "metadata from the cache");
        assert_eq!(fetches(JWKS), keyed, "keys from the cache");

        // The IdP rotates to k2: one more key set fetch, then the sign-in succeeds.
        f.p.http.set(
            JWKS,
            200,
            &json!({ "keys": [es(9, "k2").jwk()] }).to_string(),
        );
        run_signed(&f, es(9, "k2"), |n| id_claims(n, "owner@acme.test"))
            .await
            .unwrap();
        assert_eq!(fetches(JWKS), keyed + 1);
        // A token no key of the fresh set verifies is still refused.
        let refused = run_signed(&f, es(11, "k3"), |n| id_claims(n, "owner@acme.test")).await;
        assert!(
            matches!(refused, Err(SsoCallbackError::IdToken(_))),
            "{refused:?}"
        );
    });
}

/// FR-AUTH-003, FR-TENANT-001: an invited user is activated by SSO; disabled users are refused;
/// unknown emails only with JIT (then created with jit_role); refusals are audited without PII.
#[test]
fn fr_auth_003_user_matching_invited_disabled_unknown_jit() {
    block_on(async {
        let f = fixture().await;
        config::save(&f.p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        let now = START_MS;
        for (id, email, status) in [
            ("u-inv", "inv@acme.test", "invited"),
            ("u-dis", "dis@acme.test", "disabled"),
        ] {
            f.p.sql
                .execute(
                    Stmt::new(
                        "INSERT INTO users (id, tenant_id, email, role, status, created_at, updated_at)
                         VALUES (?1, ?2, ?3, 'user', ?4, ?5, ?5)",
                    )
                    .bind(id)
                    .bind(f.tenant_id.as_str())
                    .bind(email)
                    .bind(status)
                    .bind(now),
                )
                .await
                .unwrap();
        }
        let done = run(&f, |n| id_claims(n, "inv@acme.test")).await.unwrap();
        assert_eq!(done.user.user_id, "u-inv");
        let status = rows(&f.p, "SELECT status FROM users WHERE id = 'u-inv'").await;
        assert_eq!(status[0].text("status").unwrap(), "active");

        assert_eq!(
            run(&f, |n| id_claims(n, "dis@acme.test")).await,
            Err(SsoCallbackError::AccountRefused("account_not_active"))
        );
        assert_eq!(
            run(&f, |n| id_claims(n, "new@acme.test")).await,
            Err(SsoCallbackError::AccountRefused("unknown_user"))
        );
        assert_eq!(
            run(&f, |n| {
                let mut c = id_claims(n, "inv@acme.test");
                c["email_verified"] = json!(false);
                c
            })
            .await,
            Err(SsoCallbackError::IdToken(IdTokenError::EmailNotVerified))
        );
        let refusals = rows(
            &f.p,
            "SELECT metadata FROM audit_outbox WHERE action = 'session.create' AND outcome = 'failure'",
        )
        .await;
        assert_eq!(refusals.len(), 3);
        for r in &refusals {
            let m = r.text("metadata").unwrap();
            assert!(!m.contains("@acme.test") && !m.contains("203.0.113"), "{m}");
        }

        let mut jit = input(true);
        jit.jit_role = Some("admin".to_owned());
        config::save(&f.p, &f.tenant_id, &f.owner_id, &jit, "r")
            .await
            .unwrap();
        let done = run(&f, |n| id_claims(n, "new@acme.test")).await.unwrap();
        assert_eq!(done.user.role, "admin");
        let created = rows(
            &f.p,
            "SELECT status, email FROM users WHERE email = 'new@acme.test'",
        )
        .await;
        assert_eq!(created[0].text("status").unwrap(), "active");
    });
}

/// FR-AUTH-003: the callback refuses a replayed or unknown state, an IdP error, and tokens that
/// fail validation; SSO is unavailable for unknown tenants or without a configuration.
#[test]
fn fr_auth_003_callback_refusals() {
    block_on(async {
        let f = fixture().await;
        let acme = TenantDomain::parse("acme").unwrap();
        assert_eq!(
            flow::start(
                &f.p,
                &acme,
                "https://e.test/v1/auth/sso/callback",
                None,
                None
            )
            .await,
            Err(SsoStartError::NotAvailable)
        );
        assert_eq!(
            flow::start(
                &f.p,
                &TenantDomain::parse("nope").unwrap(),
                "https://e.test/v1/auth/sso/callback",
                None,
                None
            )
            .await,
            Err(SsoStartError::NotAvailable)
        );
        config::save(&f.p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        assert!(matches!(
            flow::start(
                &f.p,
                &acme,
                "https://e.test/v1/auth/sso/callback",
                None,
                Some("//evil.example".to_owned())
            )
            .await,
            Err(SsoStartError::Invalid("redirect_to", _))
        ));
        let started = flow::start(
            &f.p,
            &acme,
            "https://e.test/v1/auth/sso/callback",
            None,
            None,
        )
        .await
        .unwrap();
        let state = param(&started.authorization_url, "state");
        let params = CallbackParams {
            code: None,
            state: Some(state.clone()),
            error: Some("access_denied".to_owned()),
            iss: None,
        };
        assert_eq!(
            flow::callback(&f.p, &params, None, "r").await,
            Err(SsoCallbackError::IdpError("access_denied".to_owned()))
        );
        // The state was consumed by that answer.
        let params = CallbackParams {
            code: Some("c".to_owned()),
            state: Some(state),
            error: None,
            iss: None,
        };
        assert_eq!(
            flow::callback(&f.p, &params, None, "r").await,
            Err(SsoCallbackError::InvalidState)
        );
        for (name, change, want) in [
            ("nonce", json!({ "nonce": "x" }), IdTokenError::Nonce),
            ("aud", json!({ "aud": "x" }), IdTokenError::Audience),
            ("exp", json!({ "exp": NOW - 3600 }), IdTokenError::Expired),
            (
                "iss",
                json!({ "iss": "https://other.example.com" }),
                IdTokenError::Issuer,
            ),
        ] {
            let got = run(&f, |n| {
                let mut c = id_claims(n, "owner@acme.test");
                for (k, v) in change.as_object().unwrap() {
                    c[k] = v.clone();
                }
                c
            })
            .await;
            assert_eq!(got, Err(SsoCallbackError::IdToken(want)), "{name}");
        }
        // The token endpoint refusing the code.
        let started = flow::start(
            &f.p,
            &acme,
            "https://e.test/v1/auth/sso/callback",
            None,
            None,
        )
        .await
        .unwrap();
        f.p.http.set(TOKEN, 400, r#"{"error":"invalid_grant"}"#);
        let params = CallbackParams {
            code: Some("c".to_owned()),
            state: Some(param(&started.authorization_url, "state")),
            error: None,
            iss: None,
        };
        assert_eq!(
            flow::callback(&f.p, &params, None, "r").await,
            Err(SsoCallbackError::CodeRefused)
        );
        // RFC 9207: an authorization response naming another issuer is a mix-up.
        let started = flow::start(
            &f.p,
            &acme,
            "https://e.test/v1/auth/sso/callback",
            None,
            None,
        )
        .await
        .unwrap();
        let params = CallbackParams {
            code: Some("c".to_owned()),
            state: Some(param(&started.authorization_url, "state")),
            error: None,
            iss: Some("https://other.example.com".to_owned()),
        };
        assert_eq!(
            flow::callback(&f.p, &params, None, "r").await,
            Err(SsoCallbackError::ResponseIssuer)
        );
        // Expired flows are refused.
        let started = flow::start(
            &f.p,
            &acme,
            "https://e.test/v1/auth/sso/callback",
            None,
            None,
        )
        .await
        .unwrap();
        f.p.clock.advance(flow::FLOW_TTL_MS + 1);
        let params = CallbackParams {
            code: Some("c".to_owned()),
            state: Some(param(&started.authorization_url, "state")),
            error: None,
            iss: None,
        };
        assert_eq!(
            flow::callback(&f.p, &params, None, "r").await,
            Err(SsoCallbackError::InvalidState)
        );
    });
}

/// FR-AUTH-003: every request to the IdP tells the adapter to stop reading
/// at 64 KiB, so a hostile IdP cannot make the worker buffer an unbounded body; a longer
/// document is refused as unreachable, the size going to the log only.
#[test]
fn fr_auth_003_idp_answers_are_read_up_to_64_kib() {
    block_on(async {
        let f = fixture().await;
        config::save(&f.p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        run(&f, |n| id_claims(n, "owner@acme.test")).await.unwrap();
        let requests = f.p.http.requests();
        for url in [DISCOVERY, JWKS, TOKEN] {
            let req = requests.iter().find(|r| r.url == url).unwrap();
            assert_eq!(req.max_body_bytes, 64 * 1024, "{url}");
        }
        let mut big = metadata();
        big["padding"] = json!("x".repeat(64 * 1024));
        f.p.http.set(DISCOVERY, 200, &big.to_string());
        match discovery::discover(&f.p, ISSUER, false).await {
            Err(e @ DiscoveryError::Unreachable { .. }) => {
                assert_eq!(
                    e.to_string(),
                    "the issuer's discovery document could not be fetched"
                );
                assert!(
                    e.cause().unwrap().contains("larger than 65536 bytes"),
                    "{e:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    });
}

/// The development-only loopback issuer needs EDGEPLANE_ENV=development.
#[test]
fn fr_auth_003_loopback_issuer_only_in_development() {
    block_on(async {
        let f = fixture().await;
        let mut i = input(false);
        i.issuer_url = "http://127.0.0.1:9000".to_owned();
        assert!(matches!(
            config::save(&f.p, &f.tenant_id, &f.owner_id, &i, "r").await,
            Err(SsoConfigError::Invalid("issuer_url", _))
        ));
        f.p.secrets.set(ENV_VAR, "development");
        // Now the URL is accepted and discovery is attempted (and fails: nothing answers).
        assert!(matches!(
            config::save(&f.p, &f.tenant_id, &f.owner_id, &i, "r").await,
            Err(SsoConfigError::Discovery(_))
        ));
    });
}

// ---------------------------------------------------------------------------------------------
// The risk check (NFR-SEC-006)
// ---------------------------------------------------------------------------------------------

mod risk_check {
    use super::*;
    use crate::ports::Clock;
    use crate::risk::{Location, RiskAction, RiskPolicy, SignInContext};
    use crate::signin::{self, FirstFactor, SecondFactor, SsoOutcome, StepUpFactor};
    use crate::users::admin::{TenantActor, TenantRole};

    const DAY_MS: i64 = 24 * 3_600_000;

    fn from(device: &str, country: &str) -> SignInContext {
        SignInContext {
            device: Some(device.into()),
            device_label: Some("Firefox on Linux".into()),
            location: Location::parse(Some(country), Some("FRA"), Some(3320)),
            client: Some("203.0.113.5".into()),
            links_base: None,
        }
    }

    /// The owner's ID token now, with `amr` when given.
    fn owner_claims(f: &Fixture, nonce: &str, amr: Option<Json>) -> Json {
        let now = f.p.clock.now_ms() / 1000;
        let mut c = id_claims(nonce, "owner@acme.test");
        c["iat"] = json!(now);
        c["exp"] = json!(now + 300);
        if let Some(amr) = amr {
            c["amr"] = amr;
        }
        c
    }

    /// A whole SSO sign-in of the owner from `origin`, through the risk check; one that is
    /// admitted starts its session (which records the decision).
    async fn sso(
        f: &Fixture,
        origin: &SignInContext,
        amr: Option<Json>,
    ) -> Result<SsoOutcome, SsoCallbackError> {
        let params = idp_answers(f, es(7, "k1"), |n| owner_claims(f, n, amr.clone())).await;
        let out = signin::sso_sign_in(
            &f.p,
            &params,
            origin,
            |_| panic!("the origin names its device"),
            "r-cb",
        )
        .await;
        if let Ok(SsoOutcome::SignedIn(s)) = &out {
            crate::sessions::start(
                &f.p,
                &s.user,
                &["sso"],
                s.attempt_id.as_deref(),
                s.decided.clone(),
                "r-cb",
            )
            .await
            .unwrap();
        }
        out
    }

    async fn configured() -> Fixture {
        let f = fixture().await;
        config::save(&f.p, &f.tenant_id, &f.owner_id, &input(false), "r")
            .await
            .unwrap();
        f
    }

    /// The baseline: the owner's first SSO sign-in, from the laptop in the US, completes.
    async fn baseline(f: &Fixture) {
        let done = sso(f, &from("laptop-0000000001", "US"), None)
            .await
            .unwrap();
        assert!(matches!(done, SsoOutcome::SignedIn(_)), "{done:?}");
        f.p.clock.advance(DAY_MS);
    }

    fn outcomes(rows: &[Row]) -> Vec<String> {
        rows.iter().map(|r| r.text("outcome").unwrap()).collect()
    }

    async fn mailed_code(p: &TestPlatform) -> String {
        let r = rows(
            p,
            "SELECT text_body FROM mail_queue WHERE subject = 'Your sign-in code'
             ORDER BY id DESC",
        )
        .await;
        let body = r[0].text("text_body").unwrap();
        body.split_whitespace()
            .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
            .unwrap()
            .to_owned()
    }

    /// NFR-SEC-006: an SSO sign-in from a new device in a new country, without the IdP's MFA,
    /// continues into the local step-up of a password sign-in (the owner has no TOTP or
    /// passkey: a mailed code), held `challenged` with its device unknown until the code is
    /// given; then it is a success, its device known, and its `amr` says SSO and the code.
    #[test]
    fn nfr_sec_006_sso_without_idp_mfa_is_stepped_up_with_a_mailed_code() {
        block_on(async {
            let f = configured().await;
            baseline(&f).await;
            let out = sso(&f, &from("phone-00000000002", "DE"), None)
                .await
                .unwrap();
            let SsoOutcome::StepUp(step_up) = out else {
                panic!("expected a step-up, got {out:?}");
            };
            assert_eq!(step_up.factor, StepUpFactor::EmailCode);
            assert_eq!(step_up.sign_in.user.user_id, f.owner_id);
            assert_eq!(step_up.sign_in.login_flow.as_deref(), Some("lf-1"));
            let attempts = rows(
                &f.p,
                "SELECT outcome FROM sign_in_attempts WHERE method = 'sso' ORDER BY rowid",
            )
            .await;
            assert_eq!(outcomes(&attempts), ["success", "challenged"]);
            assert_eq!(rows(&f.p, "SELECT id FROM known_devices").await.len(), 1);
            let to = rows(
                &f.p,
                "SELECT to_addr FROM mail_queue WHERE subject = 'Your sign-in code'",
            )
            .await;
            assert_eq!(to[0].text("to_addr").unwrap(), "owner@acme.test");

            let code = mailed_code(&f.p).await;
            let done = signin::verify_second_factor(
                &f.p,
                &step_up.mfa_token,
                SecondFactor::Code(&code),
                None,
                "r",
            )
            .await
            .unwrap();
            assert_eq!(done.user.user_id, f.owner_id);
            assert_eq!(done.first, FirstFactor::Sso);
            assert_eq!(done.methods(), ["sso", "email"]);
            let attempts = rows(
                &f.p,
                "SELECT outcome FROM sign_in_attempts WHERE method = 'sso' ORDER BY rowid",
            )
            .await;
            assert_eq!(outcomes(&attempts), ["success", "success"]);
            assert_eq!(rows(&f.p, "SELECT id FROM known_devices").await.len(), 2);
        });
    }

    /// NFR-SEC-006: the IdP's own MFA (`amr` with `mfa`) satisfies the step-up.
    #[test]
    fn nfr_sec_006_sso_with_idp_mfa_is_not_stepped_up() {
        block_on(async {
            let f = configured().await;
            baseline(&f).await;
            let out = sso(
                &f,
                &from("phone-00000000002", "DE"),
                Some(json!(["pwd", "mfa"])),
            )
            .await
            .unwrap();
            assert!(matches!(out, SsoOutcome::SignedIn(_)), "{out:?}");
            let attempts = rows(
                &f.p,
                "SELECT outcome FROM sign_in_attempts WHERE method = 'sso' ORDER BY rowid",
            )
            .await;
            assert_eq!(outcomes(&attempts), ["success", "success"]);
            assert!(rows(
                &f.p,
                "SELECT id FROM mail_queue WHERE subject = 'Your sign-in code'"
            )
            .await
            .is_empty());
        });
    }

    /// NFR-SEC-006: the same decision as a password's: a level the policy blocks is refused,
    /// and so is `second_factor` for a user with neither TOTP nor a passkey; nothing starts.
    #[test]
    fn nfr_sec_006_sso_is_refused_where_a_password_sign_in_would_be() {
        block_on(async {
            let f = configured().await;
            let owner = TenantActor {
                user_id: f.owner_id.clone(),
                tenant_id: f.tenant_id.clone(),
                role: TenantRole::Owner,
            };
            baseline(&f).await;
            for (action, device) in [
                (RiskAction::Block, "phone-00000000003"),
                (RiskAction::SecondFactor, "phone-00000000004"),
            ] {
                let policy = RiskPolicy {
                    medium: action,
                    ..RiskPolicy::default()
                };
                crate::risk::policy::save(&f.p, &owner, &policy, "r")
                    .await
                    .unwrap();
                let e = sso(&f, &from(device, "DE"), None).await.unwrap_err();
                assert_eq!(
                    e,
                    SsoCallbackError::AccountRefused("risk_blocked"),
                    "{action:?}"
                );
            }
            assert!(
                rows(&f.p, "SELECT token_hash FROM auth_flows WHERE kind = 'mfa'")
                    .await
                    .is_empty()
            );
        });
    }
}
