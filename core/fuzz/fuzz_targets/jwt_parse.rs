//! Bearer tokens from anyone: the operator sign-in's JWT parsing, key selection, signature and
//! claim checks against a fixed key set (the recorded development issuer's Ed25519 key, the
//! RSA test key, a P-256 key), and Edgeplane's own access-token verification against its
//! published key over the fixed platform. Input starting with `{` is also read as a key set
//! document (JWKS), whose keys then verify a fixed signature.
//!
//! Beyond "no panic": an access token that verifies verifies again to the same claims (the
//! second time from the isolate's memory), and every key a key set yields is of the algorithm
//! it was asked for.

#![no_main]

use std::sync::LazyLock;

use edgeplane_core::auth::jwk::{self, Alg};
use edgeplane_core::auth::jwt;
use edgeplane_core::crypto::{b64url_encode, unhex};
use edgeplane_core::jws;
use edgeplane_core::tokens::access;
use edgeplane_fuzz::{block_on, FixedPlatform, NOW_MS};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The operator issuer's key set, as [`jwk::parse_jwks`] returns it.
struct Issuer {
    issuer: String,
    audience: String,
    token: String,
    keys: Vec<serde_json::Value>,
}

static ISSUER: LazyLock<Issuer> = LazyLock::new(|| {
    let dev: serde_json::Value =
        serde_json::from_str(include_str!("../../src/auth/testdata/dev-issuer.json"))
            .expect("the recorded development issuer");
    let text = |k: &str| {
        dev[k]
            .as_str()
            .expect("a member of the recorded issuer")
            .to_owned()
    };
    let mut keys = jwk::parse_jwks(text("jwks").as_bytes()).expect("the recorded key set");
    let rsa: serde_json::Value =
        serde_json::from_str(include_str!("../../src/auth/testdata/rsa-2048.json"))
            .expect("the RSA test key");
    keys.push(serde_json::json!({"kty": "RSA", "kid": "rsa", "n": rsa["n"], "e": rsa["e"]}));
    // The P-256 base point: the public key of the private key 1.
    let coord = |hex: &str| b64url_encode(&unhex(hex).expect("hex"));
    keys.push(serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "p256",
        "x": coord("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
        "y": coord("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    }));
    Issuer {
        issuer: text("issuer"),
        audience: text("audience"),
        token: text("token"),
        keys,
    }
});

thread_local! {
    static PLATFORM: FixedPlatform = FixedPlatform::new();
}

/// An operator token: parse, candidate keys, signature; then the claim checks on whatever the
/// payload says, signed or not (they must never panic either).
fn operator_token(token: &str) {
    let issuer = &*ISSUER;
    let Ok(untrusted) = jwt::parse(token) else {
        return;
    };
    let candidates = jwk::candidates(&issuer.keys, untrusted.alg, untrusted.kid.as_deref());
    for key in &candidates.keys {
        assert_eq!(key.alg(), untrusted.alg);
    }
    let _ = untrusted.verify(&candidates.keys);
    let Some(parsed) = jws::parse(token, jwt::MAX_TOKEN_BYTES) else {
        return;
    };
    let _ = jws::claims_as::<access::AccessClaims>(&parsed);
    let Ok(claims) = parsed.deserialize_claims_unchecked::<Map<String, Value>>() else {
        return;
    };
    let expected = jwt::Expected {
        issuer: &issuer.issuer,
        audience: &issuer.audience,
        role_claim: "roles",
        now_ms: NOW_MS,
    };
    let _ = jwt::check_claims(&claims, &expected);
    let _ = jwt::role_from(&claims.custom, "realm_access.roles");
}

/// An Edgeplane access token, verified twice: the second answer must be the first.
fn access_token(token: &str) {
    PLATFORM.with(|p| {
        let first = block_on(access::verify(p, token, NOW_MS));
        if let Ok(claims) = &first {
            assert_eq!(claims.iss, "edgeplane");
            let again = block_on(access::verify(p, token, NOW_MS));
            assert_eq!(again.as_ref(), Ok(claims));
        }
        let _ = block_on(access::verify_signature::<_, Value>(p, token));
    });
}

/// A key set document: every key that parses checks the signature of a recorded token.
fn key_set(doc: &[u8]) {
    let Ok(keys) = jwk::parse_jwks(doc) else {
        return;
    };
    let Some(token) = jws::parse(&ISSUER.token, jwt::MAX_TOKEN_BYTES) else {
        return;
    };
    for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
        for key in jwk::candidates(&keys, alg, None).keys {
            assert_eq!(key.alg(), alg);
            let _ = key.verify(&token);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') {
        key_set(data);
        return;
    }
    if let Ok(token) = jwt::bearer(Some(text)) {
        operator_token(token);
    }
    operator_token(text);
    access_token(text);
});
