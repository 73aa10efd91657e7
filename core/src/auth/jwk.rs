//! JSON Web Keys (RFC 7517) of the operator identity provider, as public keys that verify one
//! JWS algorithm each. Only three algorithms exist here: RS256, ES256 and EdDSA (Ed25519); any
//! other key in a key set is skipped, never an error, so an IdP that also publishes keys of other
//! kinds still works.

use serde::Deserialize;

use crate::crypto::b64url_decode;
use crate::jws::{self, AlgorithmExt as _, JsonClaims};

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

    /// The claims of `token` if this key verified its signature: jwt-compact's validator for
    /// the key's one algorithm, which refuses a header `alg` that is not that algorithm
    /// ([`jws::ValidationError::AlgorithmMismatch`]) before looking at the signature. ES256
    /// signatures are raw `r || s` (64 bytes, never DER), RS256 ones as long as the modulus;
    /// Ed25519 verifies strictly (small-order points and `S` not below the group order are
    /// refused).
    pub fn verify(&self, token: &jws::Untrusted<'_>) -> Result<JsonClaims, jws::ValidationError> {
        let verified = match &self.material {
            KeyMaterial::Rsa(key) => jws::Rs256.validator(key).validate(token),
            KeyMaterial::P256(key) => jws::Es256.validator(key).validate(token),
            KeyMaterial::Ed25519(key) => jws::Ed25519Strict.validator(key).validate(token),
        }?;
        Ok(verified.into_parts().1)
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

    /// A compact JWS of `header` and `payload` whose signature `sign` makes over the input.
    fn token(header: serde_json::Value, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        use crate::crypto::b64url_encode;
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(payload.as_bytes())
        );
        format!("{input}.{}", b64url_encode(&sign(input.as_bytes())))
    }

    fn verify(key: &PublicKey, token: &str) -> Result<(), jws::ValidationError> {
        key.verify(&jws::parse(token, 8192).unwrap()).map(|_| ())
    }

    /// The key decides the algorithm, not the token: an Ed25519 key refuses a header naming
    /// any other `alg` (`none`, HS256, RS256...) although the signature is really its own.
    #[test]
    fn fr_sys_004_an_ed25519_key_verifies_eddsa_only() {
        use ed25519_dalek::Signer as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let x = crate::crypto::b64url_encode(signing.verifying_key().as_bytes());
        let key = parse_jwk(&jwk(serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x}))).unwrap();
        let payload = r#"{"sub":"alice","exp":2000000000}"#;
        let sign = |m: &[u8]| signing.sign(m).to_bytes().to_vec();
        assert_eq!(
            verify(
                &key,
                &token(serde_json::json!({"alg":"EdDSA"}), payload, sign)
            )
            .ok(),
            Some(())
        );
        for alg in ["RS256", "ES256", "HS256", "none", "Ed25519", "eddsa"] {
            let forged = token(serde_json::json!({ "alg": alg }), payload, sign);
            assert!(
                matches!(
                    verify(&key, &forged),
                    Err(jws::ValidationError::AlgorithmMismatch { .. })
                ),
                "{alg}"
            );
        }
        // A malleated signature (S plus the group order) is refused.
        let genuine = token(serde_json::json!({"alg":"EdDSA"}), payload, sign);
        let (input, sig) = genuine.rsplit_once('.').unwrap();
        let mut sig = crate::crypto::b64url_decode(sig).unwrap();
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, o) in sig[32..].iter_mut().zip(order) {
            let sum = u16::from(*b) + u16::from(o) + carry;
            *b = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        let malleated = format!("{input}.{}", crate::crypto::b64url_encode(&sig));
        assert!(matches!(
            verify(&key, &malleated),
            Err(jws::ValidationError::InvalidSignature
                | jws::ValidationError::MalformedSignature(_))
        ));
    }

    /// HS256 "signed" with an RSA key's public parts as the HMAC secret (the classic confusion)
    /// is refused by the RSA key for its algorithm, before any MAC or signature is computed.
    #[test]
    fn fr_sys_004_an_rsa_key_refuses_hs256_keyed_with_its_public_key() {
        use hmac::Mac as _;
        let private: serde_json::Value =
            serde_json::from_str(include_str!("testdata/rsa-2048.json")).unwrap();
        let public = serde_json::json!({"kty":"RSA","n":private["n"],"e":private["e"]});
        let key = parse_jwk(&jwk(public.clone())).unwrap();
        assert_eq!(key.alg(), Alg::Rs256);
        let n = crate::crypto::b64url_decode(public["n"].as_str().unwrap()).unwrap();
        let public_text = public.to_string();
        for secret in [n.as_slice(), public_text.as_bytes()] {
            let mac = |m: &[u8]| {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
                mac.update(m);
                mac.finalize().into_bytes().to_vec()
            };
            let forged = token(serde_json::json!({"alg":"HS256"}), r#"{"sub":"x"}"#, mac);
            assert!(matches!(
                verify(&key, &forged),
                Err(jws::ValidationError::AlgorithmMismatch { .. })
            ));
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
