//! JSON Web Keys (RFC 7517) of the operator identity provider, as public keys that verify one
//! JWS algorithm each. Only three algorithms exist here: RS256, ES256 and EdDSA (Ed25519); any
//! other key in a key set is skipped, never an error, so an IdP that also publishes keys of other
//! kinds still works.

use p256::ecdsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::crypto::b64url_decode;

/// Smallest RSA modulus accepted, in bits (RFC 7518 section 3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: bounds the cost of one verification.
const MAX_RSA_BITS: usize = 4096;
/// Most keys read from one key set.
pub const MAX_KEYS: usize = 32;

/// A JWS algorithm Edgeplane accepts for operator tokens. `none`, the HMAC family and
/// everything else are refused before any key is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// Parses a JOSE `alg` value; `None` for anything not accepted (case-sensitive, as JOSE is).
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// A JWK as published, every member optional (only what the three key types use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawJwk {
    /// Key type: `RSA`, `EC` or `OKP`.
    #[serde(default)]
    pub kty: Option<String>,
    /// Key id, matched against the token header's `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// The one algorithm the key is for, if the IdP says.
    #[serde(default)]
    pub alg: Option<String>,
    /// `sig` or `enc`; an `enc` key never verifies a token.
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// Curve of an EC or OKP key.
    #[serde(default)]
    pub crv: Option<String>,
    /// RSA modulus.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default)]
    pub y: Option<String>,
}

/// A key set document: `{"keys": [...]}`. Members that are not objects are skipped.
#[derive(Debug, Clone, Deserialize)]
pub struct RawJwks {
    /// The keys, as JSON values so one odd key does not spoil the set.
    pub keys: Vec<serde_json::Value>,
}

/// A public key ready to verify signatures of its one algorithm. Its `Debug` shows only the kid
/// and algorithm: the big-number formatting of a derived one would cost the wasm ~10 KB.
#[derive(Clone)]
pub struct PublicKey {
    /// The key id, if the JWK had one.
    pub kid: Option<String>,
    /// What it verifies.
    pub material: KeyMaterial,
}

/// The key itself, by algorithm.
#[derive(Clone)]
pub enum KeyMaterial {
    /// An RSA key of 2048 to 4096 bits, for RS256.
    Rsa(rsa::RsaPublicKey),
    /// A P-256 point, for ES256.
    P256(p256::ecdsa::VerifyingKey),
    /// An Ed25519 point, for EdDSA.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// The only algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self.material {
            KeyMaterial::Rsa(_) => Alg::Rs256,
            KeyMaterial::P256(_) => Alg::Es256,
            KeyMaterial::Ed25519(_) => Alg::EdDsa,
        }
    }

    /// Whether `signature` (the decoded third JWS segment) signs `message` (the ASCII
    /// `header.payload`) under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Rsa(key) => {
                // PKCS#1 v1.5 signatures are exactly as long as the modulus.
                if signature.len() != key.size() {
                    return false;
                }
                let digest = Sha256::digest(message);
                key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                    .is_ok()
            }
            KeyMaterial::P256(key) => {
                // JWS carries ES256 signatures as raw r || s (64 bytes), never DER.
                let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
                    return false;
                };
                signature.len() == 64 && key.verify(message, &sig).is_ok()
            }
            KeyMaterial::Ed25519(key) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                // Strict: refuses small-order keys and non-canonical signatures.
                key.verify_strict(message, &sig).is_ok()
            }
        }
    }
}

/// Why a JWK is not usable here. Never fatal for a key set: such keys are skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// A key type, curve or algorithm Edgeplane does not verify with.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// A member is missing or not valid base64url, or the key is not a valid point or modulus.
    #[error("invalid key: {0}")]
    Invalid(&'static str),
}

/// Decodes a base64url member of a JWK.
fn member(value: Option<&String>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    value
        .and_then(|v| b64url_decode(v))
        .ok_or(JwkError::Invalid(name))
}

/// Turns one JWK into a key, checking that its `kty`/`crv` and its `alg` (when present) agree.
pub fn parse_jwk(jwk: &RawJwk) -> Result<PublicKey, JwkError> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(JwkError::Unsupported("key not for signatures".into()));
    }
    let implied = match (jwk.kty.as_deref(), jwk.crv.as_deref()) {
        (Some("RSA"), _) => Alg::Rs256,
        (Some("EC"), Some("P-256")) => Alg::Es256,
        (Some("OKP"), Some("Ed25519")) => Alg::EdDsa,
        (kty, crv) => return Err(JwkError::Unsupported(format!("kty {kty:?} crv {crv:?}"))),
    };
    if let Some(alg) = jwk.alg.as_deref() {
        if Alg::parse(alg) != Some(implied) {
            return Err(JwkError::Unsupported(format!(
                "alg {alg} on a {} key",
                implied.name()
            )));
        }
    }
    let material = match implied {
        Alg::Rs256 => {
            let n = rsa::BigUint::from_bytes_be(&member(jwk.n.as_ref(), "n")?);
            let e = rsa::BigUint::from_bytes_be(&member(jwk.e.as_ref(), "e")?);
            let bits = n.bits();
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(JwkError::Invalid("RSA modulus size"));
            }
            let key = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                .map_err(|_| JwkError::Invalid("RSA key"))?;
            KeyMaterial::Rsa(key)
        }
        Alg::Es256 => {
            let x = member(jwk.x.as_ref(), "x")?;
            let y = member(jwk.y.as_ref(), "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(JwkError::Invalid("P-256 coordinate length"));
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| JwkError::Invalid("P-256 point"))?;
            KeyMaterial::P256(key)
        }
        Alg::EdDsa => {
            let x = member(jwk.x.as_ref(), "x")?;
            let bytes = <[u8; 32]>::try_from(x.as_slice())
                .map_err(|_| JwkError::Invalid("Ed25519 key length"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| JwkError::Invalid("Ed25519 point"))?;
            if key.is_weak() {
                return Err(JwkError::Invalid("Ed25519 small-order point"));
            }
            KeyMaterial::Ed25519(key)
        }
    };
    Ok(PublicKey {
        kid: jwk.kid.clone(),
        material,
    })
}

/// The keys of a key set that could verify a token with header `alg` and `kid`: those with
/// that kid (all keys when the token names none) whose algorithm is `alg`. Keys that do not
/// parse are skipped. Also says whether some key had the kid but another algorithm, which is
/// an algorithm confusion attempt rather than an unknown key.
pub fn candidates(keys: &[serde_json::Value], alg: Alg, kid: Option<&str>) -> Candidates {
    let mut out = Candidates::default();
    for value in keys.iter().take(MAX_KEYS) {
        let Ok(raw) = serde_json::from_value::<RawJwk>(value.clone()) else {
            continue;
        };
        if kid.is_some() && raw.kid.as_deref() != kid {
            continue;
        }
        match parse_jwk(&raw) {
            Ok(key) if key.alg() == alg => out.keys.push(key),
            Ok(_) => out.alg_mismatch = true,
            // A key of an unsupported kind named by the token is still a mismatch.
            Err(JwkError::Unsupported(_)) if kid.is_some() => out.alg_mismatch = true,
            Err(_) => {}
        }
    }
    out
}

/// What [`candidates`] found.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Keys that may verify the token.
    pub keys: Vec<PublicKey>,
    /// A key matched the kid but is for another algorithm.
    pub alg_mismatch: bool,
}

/// Parses a key set document and keeps the members that are objects, at most [`MAX_KEYS`].
pub fn parse_jwks(json: &[u8]) -> Result<Vec<serde_json::Value>, JwkError> {
    let set: RawJwks = serde_json::from_slice(json).map_err(|_| JwkError::Invalid("key set"))?;
    Ok(set
        .keys
        .into_iter()
        .filter(serde_json::Value::is_object)
        .take(MAX_KEYS)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: serde_json::Value) -> RawJwk {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn fr_sys_004_algorithms_are_an_allow_list() {
        for refused in [
            "none", "None", "HS256", "HS512", "RS384", "PS256", "ES384", "ES256K", "rs256", "",
        ] {
            assert_eq!(Alg::parse(refused), None, "{refused}");
        }
        for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            assert_eq!(Alg::parse(alg.name()), Some(alg));
        }
    }

    #[test]
    fn fr_sys_004_jwk_type_and_alg_must_agree() {
        let x = crate::crypto::b64url_encode(
            ed25519_dalek::SigningKey::from_bytes(&[1; 32])
                .verifying_key()
                .as_bytes(),
        );
        let ok = parse_jwk(&jwk(serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x}))).unwrap();
        assert_eq!(ok.alg(), Alg::EdDsa);
        // An alg member naming another algorithm, or an encryption key, is unusable.
        for bad in [
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x,"alg":"ES256"}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x,"alg":"HS256"}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x,"use":"enc"}),
            serde_json::json!({"kty":"OKP","crv":"X25519","x":x}),
            serde_json::json!({"kty":"oct","k":"c2VjcmV0"}),
            serde_json::json!({"kty":"EC","crv":"P-384","x":x,"y":x}),
        ] {
            assert!(
                matches!(parse_jwk(&jwk(bad.clone())), Err(JwkError::Unsupported(_))),
                "{bad}"
            );
        }
        for bad in [
            serde_json::json!({"kty":"OKP","crv":"Ed25519"}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"AAAA"}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"not base64!"}),
            serde_json::json!({"kty":"EC","crv":"P-256","x":x,"y":x}),
            serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB"}),
        ] {
            assert!(
                matches!(parse_jwk(&jwk(bad.clone())), Err(JwkError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_sets_skip_what_is_not_an_object_and_cap_the_count() {
        let many: Vec<_> = (0..40).map(|i| serde_json::json!({"kid": i})).collect();
        let doc = serde_json::json!({"keys": [1, "x", null, many]}).to_string();
        // The nested array is not an object either.
        assert!(parse_jwks(doc.as_bytes()).unwrap().is_empty());
        let doc = serde_json::json!({ "keys": many }).to_string();
        assert_eq!(parse_jwks(doc.as_bytes()).unwrap().len(), MAX_KEYS);
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"[]").is_err());
    }
}
