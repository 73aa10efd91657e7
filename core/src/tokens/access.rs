//! Access tokens: compact JWS (RFC 7515) signed with EdDSA (Ed25519), claims of DESIGN.md
//! "Tokens" (`iss`, `sub`, `aud`, `tid`, `role`, `sid`, `scope`, `iat`, `exp`, `jti`) plus
//! `auth_time` (the session's sign-in, for security changes), `kid` in the header. jwt-compact
//! signs them and parses them ([`crate::jws`]). Verification checks cheapest first: size,
//! segments, a header naming exactly `EdDSA` (the algorithm of every Edgeplane key) and a `kid`,
//! then the key, the signature (through the platform's [`SignatureVerifier`], over the signing
//! input of the token's text), and only then the claims.

use jwt_compact::Algorithm as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys::{self, ActiveKey, PublicJwk, SigningKeyError};
use super::verified;
use super::{issuer, ACCESS_AUDIENCE};
use crate::crypto::b64url_decode;
use crate::jws::{self, AlgorithmExt as _, Claims, Ed25519, Header};
use crate::ports::{Platform, SignatureVerifier, SqlError};

/// Longest access token accepted, in bytes (ours are ~600).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// The claims of an Edgeplane access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// The tenant id.
    pub tid: String,
    /// The user's tenant role (`owner`, `admin`, `user`).
    pub role: String,
    /// The session (refresh-token family) id: revoking it revokes the token.
    pub sid: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// When the user last proved who they are in this session (unix seconds): the sign-in
    /// itself, carried unchanged through refreshes. Security changes need it to be recent.
    /// Tokens issued before the claim existed read as 0 (never recent).
    #[serde(default)]
    pub auth_time: i64,
}

/// Why an access token was refused. Every variant answers the same to the client
/// (`invalid_token`); the code says which check failed, for logs and tests.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyTokenError {
    /// Size, segments, encoding, JSON or a claim of the wrong type.
    #[error("the token is not a well-formed access token")]
    Malformed,
    /// `alg` is not `EdDSA` (`none`, `HS256`...), or `kid` is missing.
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// No published key has the token's `kid`.
    #[error("the token's key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `iss` or `aud` is not Edgeplane's.
    #[error("the token is for another issuer or audience")]
    WrongAudience,
    /// `exp` passed, or `iat` is in the future.
    #[error("the token is expired")]
    Expired,
    /// The key set could not be read.
    #[error("token keys unavailable: {0}")]
    Storage(#[from] SqlError),
    /// The signature could not be checked (the runtime's cryptography failed).
    #[error("token signature check unavailable: {0}")]
    Unavailable(String),
}

impl VerifyTokenError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyTokenError::Malformed => "token_malformed",
            VerifyTokenError::Algorithm => "token_algorithm",
            VerifyTokenError::UnknownKey => "token_unknown_key",
            VerifyTokenError::BadSignature => "token_signature",
            VerifyTokenError::WrongAudience => "token_audience",
            VerifyTokenError::Expired => "token_expired",
            VerifyTokenError::Storage(_) => "storage",
            VerifyTokenError::Unavailable(_) => "token_verifier_unavailable",
        }
    }
}

/// Signs `claims` with the active key (created on first use).
pub async fn sign<P: Platform>(p: &P, claims: &AccessClaims) -> Result<String, SigningKeyError> {
    let key = keys::active_key(p).await?;
    Ok(sign_with(&key, claims))
}

/// Signs `claims` with `key` (header `alg` EdDSA, `kid`, `typ` `at+jwt`).
pub fn sign_with(key: &ActiveKey, claims: &AccessClaims) -> String {
    sign_json(key, "at+jwt", claims)
}

/// Signs any JSON `payload` with `key` as a compact JWS of type `typ` (ID tokens use `JWT`).
/// The payload is `payload` serialized as it is, members in its order: `Claims::new` leaves
/// jwt-compact's own `exp`, `nbf` and `iat` unset. Serializing a struct of strings and numbers
/// cannot fail; if a `payload` could, the empty string it signs to verifies nowhere.
pub fn sign_json<T: Serialize>(key: &ActiveKey, typ: &'static str, payload: &T) -> String {
    let header = Header::empty()
        .with_key_id(key.kid.as_str())
        .with_token_type(typ);
    Ed25519
        .token(&header, &Claims::new(payload), &key.key)
        .unwrap_or_default()
}

/// Verifies an access token's form, key, signature, issuer, audience and expiry at `now_ms`.
/// Revocation (session, user, tenant) is the caller's next step.
pub async fn verify<P: Platform>(
    p: &P,
    token: &str,
    now_ms: i64,
) -> Result<AccessClaims, VerifyTokenError> {
    verify_with(p, token, now_ms, |aud| aud == ACCESS_AUDIENCE).await
}

/// [`verify`] accepting the audiences `aud_ok` accepts (OIDC access tokens name their client,
/// so they are refused by the Edgeplane API and accepted by `/oauth/userinfo`).
///
/// A token this isolate already verified under the current key set is not parsed or verified
/// again ([`verified`]); its issuer, audience and expiry are checked on every call all the same.
pub async fn verify_with<P: Platform>(
    p: &P,
    token: &str,
    now_ms: i64,
    aud_ok: impl Fn(&str) -> bool,
) -> Result<AccessClaims, VerifyTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyTokenError::Malformed);
    }
    let digest = verified::digest(token);
    // The key set is read only for a token this isolate holds, or after the cheap checks.
    if verified::holds(&digest) {
        let keys = keys::published(p).await?;
        if let Some(claims) = verified::get(&digest, &keys) {
            return check_claims(p, claims, now_ms, &aud_ok).inspect_err(|e| {
                if *e == VerifyTokenError::Expired {
                    verified::forget(&digest);
                }
            });
        }
    }
    let (verified, kid, keys) = verify_signature_in(p, token).await?;
    let claims: AccessClaims = jws::claims_as(&verified).ok_or(VerifyTokenError::Malformed)?;
    let claims = check_claims(p, claims, now_ms, &aud_ok)?;
    verified::put(digest, &keys, &kid, &claims, now_ms);
    Ok(claims)
}

/// The claims `token` carries, **unverified**: only to name what checking it will read (its
/// session, user and tenant markers) before the check runs. Never a basis for a decision.
pub fn unverified_claims(token: &str) -> Option<AccessClaims> {
    let untrusted = jws::parse(token, MAX_TOKEN_BYTES)?;
    jws::claims_as(&untrusted)
}

/// The checks after the signature: issuer, audience, and expiry at `now_ms`.
fn check_claims<P: Platform>(
    p: &P,
    claims: AccessClaims,
    now_ms: i64,
    aud_ok: impl Fn(&str) -> bool,
) -> Result<AccessClaims, VerifyTokenError> {
    if claims.iss != issuer(p) || !aud_ok(&claims.aud) {
        return Err(VerifyTokenError::WrongAudience);
    }
    let now = now_ms.div_euclid(1000);
    if claims.exp + LEEWAY_SECS <= now || claims.iat > now + LEEWAY_SECS {
        return Err(VerifyTokenError::Expired);
    }
    Ok(claims)
}

/// Checks a compact JWS signed by one of the published keys (form, `alg` exactly `EdDSA`,
/// `kid`, signature) and returns its claims as `T`; they are the caller's to check (access
/// tokens here, ID tokens in [`crate::oidc`]).
pub async fn verify_signature<P: Platform, T: DeserializeOwned>(
    p: &P,
    token: &str,
) -> Result<T, VerifyTokenError> {
    let (verified, _, _) = verify_signature_in(p, token).await?;
    jws::claims_as(&verified).ok_or(VerifyTokenError::Malformed)
}

/// [`verify_signature`], returning the verified token (jwt-compact's parse of it), the `kid`
/// that signed and the published key set it was looked up in. The signature is checked by the
/// platform's [`SignatureVerifier`]: jwt-compact hands over the header and the signature, the
/// signed bytes are the token's first two segments.
async fn verify_signature_in<'t, P: Platform>(
    p: &P,
    token: &'t str,
) -> Result<(jws::Untrusted<'t>, String, Vec<PublicJwk>), VerifyTokenError> {
    let untrusted = jws::parse(token, MAX_TOKEN_BYTES).ok_or(VerifyTokenError::Malformed)?;
    // Pinned to Edgeplane's keys, which are all Ed25519: `none`, HS256 keyed with a public key
    // and every other algorithm are refused before a key is looked up.
    let alg = Ed25519.name();
    let header = untrusted.header();
    if untrusted.algorithm() != alg || header.other_fields.crit.is_some() {
        return Err(VerifyTokenError::Algorithm);
    }
    let kid = header
        .key_id
        .clone()
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or(VerifyTokenError::Algorithm)?;
    let sig: [u8; 64] = untrusted
        .signature_bytes()
        .try_into()
        .map_err(|_| VerifyTokenError::Malformed)?;
    let signing_input = jws::signing_input(token).ok_or(VerifyTokenError::Malformed)?;
    let keys = keys::published(p).await?;
    let jwk = keys::published_key_in(p, &keys, &kid)
        .await?
        .filter(|k| k.alg == alg)
        .ok_or(VerifyTokenError::UnknownKey)?;
    let public: [u8; 32] = b64url_decode(&jwk.x)
        .and_then(|b| b.try_into().ok())
        .ok_or(VerifyTokenError::UnknownKey)?;
    let valid = p
        .signatures()
        .verify_ed25519(&kid, &public, signing_input.as_bytes(), &sig)
        .await
        .map_err(|e| VerifyTokenError::Unavailable(e.to_string()))?;
    if !valid {
        return Err(VerifyTokenError::BadSignature);
    }
    Ok((untrusted, kid, keys))
}
