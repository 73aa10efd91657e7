//! Access tokens: compact JWS (RFC 7515) signed with EdDSA (Ed25519), claims of DESIGN.md
//! "Tokens" (`iss`, `sub`, `aud`, `tid`, `role`, `sid`, `scope`, `iat`, `exp`, `jti`) plus
//! `auth_time` (the session's sign-in, for security changes), `kid` in the header. Verification
//! checks cheapest first: size, segments, a header naming exactly `EdDSA` and a `kid`, then the
//! key, the signature (through the platform's [`SignatureVerifier`]), and only then the claims.

use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};

use super::keys::{self, ActiveKey, PublicJwk, SigningKeyError};
use super::verified;
use super::{issuer, ACCESS_AUDIENCE};
use crate::crypto::{b64url_decode, b64url_encode};
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

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Signs `claims` with the active key (created on first use).
pub async fn sign<P: Platform>(p: &P, claims: &AccessClaims) -> Result<String, SigningKeyError> {
    let key = keys::active_key(p).await?;
    Ok(sign_with(&key, claims))
}

/// Signs `claims` with `key`.
pub fn sign_with(key: &ActiveKey, claims: &AccessClaims) -> String {
    let header = serde_json::to_vec(&HeaderOut {
        alg: "EdDSA",
        typ: "at+jwt",
        kid: &key.kid,
    })
    .unwrap_or_default();
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!("{}.{}", b64url_encode(&header), b64url_encode(&payload));
    let sig = key.key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url_encode(&sig.to_bytes()))
}

/// Signs any JSON `payload` with `key` as a compact JWS of type `typ` (ID tokens use `JWT`).
pub fn sign_json<T: Serialize>(key: &ActiveKey, typ: &'static str, payload: &T) -> String {
    let header = serde_json::to_vec(&HeaderOut {
        alg: "EdDSA",
        typ,
        kid: &key.kid,
    })
    .unwrap_or_default();
    let payload = serde_json::to_vec(payload).unwrap_or_default();
    let signing_input = format!("{}.{}", b64url_encode(&header), b64url_encode(&payload));
    let sig = key.key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url_encode(&sig.to_bytes()))
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
    let (body, kid, keys) = verify_signature_in(p, token).await?;
    let claims: AccessClaims =
        serde_json::from_slice(&body).map_err(|_| VerifyTokenError::Malformed)?;
    let claims = check_claims(p, claims, now_ms, &aud_ok)?;
    verified::put(digest, &keys, &kid, &claims, now_ms);
    Ok(claims)
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
/// `kid`, signature) and returns its payload bytes; the claims are the caller's to check
/// (access tokens here, ID tokens in [`crate::oidc`]).
pub async fn verify_signature<P: Platform>(
    p: &P,
    token: &str,
) -> Result<Vec<u8>, VerifyTokenError> {
    Ok(verify_signature_in(p, token).await?.0)
}

/// [`verify_signature`], also returning the `kid` that signed and the published key set it
/// was looked up in. The signature is checked by the platform's [`SignatureVerifier`].
async fn verify_signature_in<P: Platform>(
    p: &P,
    token: &str,
) -> Result<(Vec<u8>, String, Vec<PublicJwk>), VerifyTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyTokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyTokenError::Malformed);
    };
    if h.is_empty() || body.is_empty() || sig.is_empty() {
        return Err(VerifyTokenError::Malformed);
    }
    let header: HeaderIn = b64url_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(VerifyTokenError::Malformed)?;
    if header.alg != "EdDSA" || header.crit.is_some() {
        return Err(VerifyTokenError::Algorithm);
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or(VerifyTokenError::Algorithm)?;
    let sig: [u8; 64] = b64url_decode(sig)
        .and_then(|b| b.try_into().ok())
        .ok_or(VerifyTokenError::Malformed)?;
    let keys = keys::published(p).await?;
    let jwk = keys::published_key_in(p, &keys, &kid)
        .await?
        .ok_or(VerifyTokenError::UnknownKey)?;
    let public: [u8; 32] = b64url_decode(&jwk.x)
        .and_then(|b| b.try_into().ok())
        .ok_or(VerifyTokenError::UnknownKey)?;
    let signing_input = token
        .get(..h.len() + 1 + body.len())
        .ok_or(VerifyTokenError::Malformed)?;
    let valid = p
        .signatures()
        .verify_ed25519(&kid, &public, signing_input.as_bytes(), &sig)
        .await
        .map_err(|e| VerifyTokenError::Unavailable(e.to_string()))?;
    if !valid {
        return Err(VerifyTokenError::BadSignature);
    }
    let payload = b64url_decode(body).ok_or(VerifyTokenError::Malformed)?;
    Ok((payload, kid, keys))
}
