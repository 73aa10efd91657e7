//! Compact JWS (RFC 7515), the form of every JWT Edgeplane signs or reads. `jwt-compact` does
//! the work: it splits the token, decodes base64url, reads the header and the claims, and signs;
//! its validators verify a signature only under the algorithm they are for, so a token's `alg`
//! is pinned to the key that checks it. This module holds what Edgeplane adds around it:
//! - [`parse`]: the size and segment checks that come before any decoding;
//! - [`Extensions`]: `crit`, the header member jwt-compact does not model;
//! - [`signing_input`]: the bytes a signature covers, for the verifier port of Edgeplane's own
//!   tokens (jwt-compact keeps its copy private);
//! - [`claims_as`]: claims as a struct that names `exp` and `iat` itself;
//! - [`Rs256`] and [`Ed25519Strict`]: the two verifying algorithms core brings itself.

use std::borrow::Cow;
use std::convert::Infallible;

use jwt_compact::{Algorithm, AlgorithmSignature};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use sha2::{Digest as _, Sha256};

pub use jwt_compact::alg::{Ed25519, Es256};
pub use jwt_compact::{AlgorithmExt, Claims, Header, ValidationError};

/// Header members Edgeplane reads beyond jwt-compact's own (`alg`, `kid`, `typ`...).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Extensions {
    /// Critical extensions (RFC 7515 section 4.1.11). Edgeplane understands none, so a token
    /// naming any is unacceptable.
    #[serde(default)]
    pub crit: Option<Json>,
}

/// A token jwt-compact parsed, whose signature is not yet checked.
pub type Untrusted<'a> = jwt_compact::UntrustedToken<'a, Extensions>;

/// Claims as jwt-compact reads them from another issuer's token: `exp`, `nbf` and `iat` typed,
/// every other member as JSON.
pub type JsonClaims = Claims<Map<String, Json>>;

/// Parses `token` as a compact JWS: at most `max_bytes` long and exactly three non-empty
/// segments (checked before any decoding), then base64url segments and a JSON header whose
/// `cty`, if any, is JSON (jwt-compact). `None` when it is not one; the caller names the
/// refusal. The algorithm is not judged here.
pub fn parse(token: &str, max_bytes: usize) -> Option<Untrusted<'_>> {
    if token.len() > max_bytes {
        return None;
    }
    // Two segments are an unsecured JWT at best, five a JWE; an empty signature is `alg: none`.
    let mut segments = token.split('.');
    if segments.clone().count() != 3 || segments.any(str::is_empty) {
        return None;
    }
    Untrusted::try_from(token).ok()
}

/// The JWS signing input of a parsed `token`: its first two segments and the dot between them,
/// `BASE64URL(header) || '.' || BASE64URL(payload)` (RFC 7515 section 5.1).
pub fn signing_input(token: &str) -> Option<&str> {
    token.rsplit_once('.').map(|(input, _signature)| input)
}

/// The claims of `token` as `T`, without checking the signature (the caller has). jwt-compact
/// reads them; its [`Claims`] keeps `exp`, `nbf` and `iat` in typed fields apart from the
/// other members, so they are joined again, as whole seconds, for a `T` that names them itself.
pub fn claims_as<T: DeserializeOwned>(token: &Untrusted<'_>) -> Option<T> {
    let claims = token
        .deserialize_claims_unchecked::<Map<String, Json>>()
        .ok()?;
    serde_json::to_value(claims)
        .and_then(serde_json::from_value)
        .ok()
}

/// RS256 (RSASSA-PKCS1-v1_5 with SHA-256), verifying only. jwt-compact's own RSA algorithms
/// come with its `rsa` feature, which turns on `rand_core/getrandom`: core must not depend on
/// getrandom (on wasm32-unknown-unknown it needs JavaScript bindings), and Edgeplane never
/// signs with RSA.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rs256;

/// An RS256 signature: exactly as long as the modulus of the key that made it.
#[derive(Debug, Clone)]
pub struct RsaSignature(Vec<u8>);

impl AlgorithmSignature for RsaSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(RsaSignature(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

impl Algorithm for Rs256 {
    /// None: Edgeplane only verifies RS256.
    type SigningKey = Infallible;
    type VerifyingKey = rsa::RsaPublicKey;
    type Signature = RsaSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("RS256")
    }

    fn sign(&self, signing_key: &Infallible, _message: &[u8]) -> RsaSignature {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &RsaSignature,
        verifying_key: &rsa::RsaPublicKey,
        message: &[u8],
    ) -> bool {
        use rsa::traits::PublicKeyParts as _;
        // PKCS#1 v1.5 signatures are exactly as long as the modulus.
        if signature.0.len() != verifying_key.size() {
            return false;
        }
        let digest = Sha256::digest(message);
        verifying_key
            .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature.0)
            .is_ok()
    }
}

/// EdDSA (Ed25519) verifying strictly: jwt-compact's [`Ed25519`], whose signing this reuses,
/// verifies with `ed25519-dalek`'s lenient `verify`; this one also refuses small-order keys and
/// `R` points (`verify_strict`). Both refuse an `S` that is not below the group order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519Strict;

impl Algorithm for Ed25519Strict {
    type SigningKey = ed25519_dalek::SigningKey;
    type VerifyingKey = ed25519_dalek::VerifyingKey;
    type Signature = ed25519_dalek::Signature;

    fn name(&self) -> Cow<'static, str> {
        Ed25519.name()
    }

    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        Ed25519.sign(signing_key, message)
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key.verify_strict(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url_encode;

    fn enc(json: &str) -> String {
        b64url_encode(json.as_bytes())
    }

    #[test]
    fn parse_refuses_what_is_not_three_segments_before_decoding() {
        let (h, p) = (enc(r#"{"alg":"EdDSA"}"#), enc("{}"));
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{h}.{p}"),
            format!("{h}.{p}."),
            format!(".{p}.c2ln"),
            format!("{h}..c2ln"),
            format!("{h}.{p}.c2ln.x"),
            format!("{h}.{p}.c2ln.x.y"),
            // Padding, a character outside the alphabet, and non-zero trailing bits.
            format!("{h}.{p}.c2ln="),
            format!("{h}.{p}.!!"),
            format!("{h}.{p}.c2l"),
            format!("{}.{p}.c2ln", enc("not json")),
            format!("{}.{p}.c2ln", enc(r#"{"kid":"k"}"#)),
            format!("{}.{p}.c2ln", enc(r#"{"alg":"EdDSA","cty":"CBOR"}"#)),
        ] {
            assert!(parse(&bad, 100).is_none(), "{bad}");
        }
        let token = format!("{h}.{p}.c2ln");
        assert!(parse(&token, token.len() - 1).is_none());
        let ok = parse(&token, token.len()).unwrap();
        assert_eq!(ok.algorithm(), "EdDSA");
        assert_eq!(ok.signature_bytes(), b"sig");
        assert_eq!(signing_input(&token), Some(format!("{h}.{p}").as_str()));
    }

    #[test]
    fn crit_is_read_from_the_header() {
        let p = enc("{}");
        let plain = format!("{}.{p}.c2ln", enc(r#"{"alg":"EdDSA"}"#));
        assert!(parse(&plain, 100)
            .unwrap()
            .header()
            .other_fields
            .crit
            .is_none());
        let crit = format!("{}.{p}.c2ln", enc(r#"{"alg":"EdDSA","crit":["exp"]}"#));
        assert!(parse(&crit, 100)
            .unwrap()
            .header()
            .other_fields
            .crit
            .is_some());
    }

    /// Claims structs that name `exp` and `iat` get them back from jwt-compact's typed fields.
    #[test]
    fn claims_as_joins_the_times_again() {
        #[derive(Deserialize, PartialEq, Debug)]
        struct Body {
            sub: String,
            iat: i64,
            exp: i64,
        }
        let token = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"EdDSA"}"#),
            enc(r#"{"sub":"u","iat":1700000000,"exp":1700000900.5}"#)
        );
        let t = parse(&token, 200).unwrap();
        assert_eq!(
            claims_as::<Body>(&t),
            Some(Body {
                sub: "u".into(),
                iat: 1_700_000_000,
                exp: 1_700_000_900,
            })
        );
        let no_exp = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"EdDSA"}"#),
            enc(r#"{"sub":"u","iat":1}"#)
        );
        assert_eq!(claims_as::<Body>(&parse(&no_exp, 200).unwrap()), None);
        let text_exp = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"EdDSA"}"#),
            enc(r#"{"sub":"u","iat":1,"exp":"soon"}"#)
        );
        assert_eq!(claims_as::<Body>(&parse(&text_exp, 200).unwrap()), None);
    }
}
