//! Validation of the tenant IdP's ID token (OpenID Connect Core 1.0, section 3.1.3.7), cheapest
//! checks first: structure and `alg` (RS256 or ES256 only: `none`, HMAC and EdDSA are refused
//! here even though operator tokens may use EdDSA) before any key is tried, the signature by a
//! key of the IdP's JWKS (jwt-compact, under the key's own algorithm) before any claim is
//! judged, then `iss`, `aud`, `azp`, `exp`/`iat` (with the operator sign-in's leeway, time from
//! the Clock port), `nonce`, `sub` and a verified email.

use serde_json::Value as Json;

use crate::auth::jwk::{self, Alg};
use crate::auth::jwt::{self, LEEWAY_SECS};
use crate::auth::OperatorAuthError;
use crate::crypto::token_hash;
use crate::jws::JsonClaims;

/// Longest `sub` accepted (stored as the user's external subject).
const MAX_SUBJECT_LEN: usize = 255;

/// Why an ID token is refused. Each is a fact about the token, named in the 401's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a well-formed signed JWT, or a required claim is missing or of the wrong type.
    #[error("the ID token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not RS256 or ES256, or not the algorithm of the key its `kid` names.
    #[error("the ID token's signing algorithm is not accepted")]
    Algorithm,
    /// No key of the IdP's key set verifies the signature.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// `iss` is not the tenant's configured issuer.
    #[error("the ID token is from another issuer")]
    Issuer,
    /// `aud` does not contain the configured client id.
    #[error("the ID token is for another audience")]
    Audience,
    /// `azp` is present and not the client id, or absent with several audiences.
    #[error("the ID token was issued to another party")]
    AuthorizedParty,
    /// `exp` passed, or `iat` is in the future.
    #[error("the ID token is expired or not yet valid")]
    Expired,
    /// `nonce` is missing or not the one of this sign-in.
    #[error("the ID token's nonce does not match this sign-in")]
    Nonce,
    /// No `email`, or `email_verified` is not `true`.
    #[error("the ID token carries no verified email")]
    EmailNotVerified,
}

impl IdTokenError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            IdTokenError::Malformed => "id_token_malformed",
            IdTokenError::Algorithm => "id_token_algorithm",
            IdTokenError::Signature => "id_token_signature",
            IdTokenError::Issuer => "id_token_issuer",
            IdTokenError::Audience => "id_token_audience",
            IdTokenError::AuthorizedParty => "id_token_azp",
            IdTokenError::Expired => "id_token_expired",
            IdTokenError::Nonce => "id_token_nonce",
            IdTokenError::EmailNotVerified => "email_not_verified",
        }
    }
}

/// What the claims must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `iss`, exactly: the tenant's current configuration.
    pub issuer: &'a str,
    /// A member of `aud`: the configured client id.
    pub client_id: &'a str,
    /// SHA-256 hex of the nonce sent with the authorization request.
    pub nonce_hash: &'a str,
    /// Now, unix milliseconds (Clock port).
    pub now_ms: i64,
}

/// The identity an accepted ID token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, verified by the IdP.
    pub email: String,
    /// The IdP says the user gave more than one factor (`amr` or `acr`, see [`idp_mfa`]): the
    /// risk check trusts it as a second factor (NFR-SEC-006).
    pub mfa: bool,
}

/// Authentication methods of RFC 8176 that are a factor beyond a password (possession or
/// inherence).
const STRONG_AMR: [&str; 12] = [
    "otp", "hwk", "swk", "sc", "sms", "tel", "fpt", "face", "iris", "retina", "vbm", "pop",
];

/// Whether an ID token's claims say the user gave more than one factor: `amr` holds `mfa`, or
/// two methods of which one is a possession or inherence factor (RFC 8176); or `acr` names
/// multi-factor (OpenID PAPE's multi-factor policies, or a value containing `mfa`).
pub fn idp_mfa(claims: &serde_json::Map<String, Json>) -> bool {
    let amr: Vec<&str> = claims
        .get("amr")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let strong = amr.iter().any(|m| STRONG_AMR.contains(m));
    let mut distinct = amr.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let acr = claims.get("acr").and_then(Json::as_str).unwrap_or("");
    amr.contains(&"mfa")
        || strong && distinct.len() >= 2
        || acr.contains("multi-factor")
        || acr
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == "mfa")
}

/// Parses `token` and verifies its signature with a key of `keys` (a JWKS's members), through
/// jwt-compact under the key's own algorithm; returns its claims.
pub fn verify_signature(token: &str, keys: &[Json]) -> Result<JsonClaims, IdTokenError> {
    let untrusted = jwt::parse(token).map_err(|e| match e {
        OperatorAuthError::UnsupportedAlgorithm => IdTokenError::Algorithm,
        _ => IdTokenError::Malformed,
    })?;
    if !matches!(untrusted.alg, Alg::Rs256 | Alg::Es256) {
        return Err(IdTokenError::Algorithm);
    }
    let found = jwk::candidates(keys, untrusted.alg, untrusted.kid.as_deref());
    if found.keys.is_empty() && found.alg_mismatch {
        return Err(IdTokenError::Algorithm);
    }
    untrusted.verify(&found.keys).map_err(|e| match e {
        OperatorAuthError::Malformed => IdTokenError::Malformed,
        OperatorAuthError::UnsupportedAlgorithm => IdTokenError::Algorithm,
        _ => IdTokenError::Signature,
    })
}

/// Checks verified claims against `expected`, in the order of OIDC Core 3.1.3.7. The times are
/// checked here against the Clock port's `now_ms`.
pub fn check_claims(token: &JsonClaims, expected: &Expected<'_>) -> Result<Identity, IdTokenError> {
    let claims = &token.custom;
    if claims.get("iss").and_then(Json::as_str) != Some(expected.issuer) {
        return Err(IdTokenError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Json::String(aud)) => vec![aud.as_str()],
        Some(Json::Array(auds)) => auds.iter().filter_map(Json::as_str).collect(),
        _ => return Err(IdTokenError::Audience),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(IdTokenError::Audience);
    }
    match claims.get("azp") {
        Some(azp) if azp.as_str() != Some(expected.client_id) => {
            return Err(IdTokenError::AuthorizedParty)
        }
        None if audiences.len() > 1 => return Err(IdTokenError::AuthorizedParty),
        _ => {}
    }
    let now = expected.now_ms.div_euclid(1000);
    let exp = token.expiration.ok_or(IdTokenError::Malformed)?.timestamp();
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(IdTokenError::Expired);
    }
    let iat = token.issued_at.ok_or(IdTokenError::Malformed)?.timestamp();
    if iat > now.saturating_add(LEEWAY_SECS) {
        return Err(IdTokenError::Expired);
    }
    let nonce = claims
        .get("nonce")
        .and_then(Json::as_str)
        .ok_or(IdTokenError::Nonce)?;
    if token_hash(nonce) != expected.nonce_hash {
        return Err(IdTokenError::Nonce);
    }
    let subject = claims
        .get("sub")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN && !s.chars().any(char::is_control))
        .ok_or(IdTokenError::Malformed)?
        .to_owned();
    let email = claims
        .get("email")
        .and_then(Json::as_str)
        .ok_or(IdTokenError::EmailNotVerified)?;
    // Only the JSON boolean true: an IdP that says "true" as a string is not followed.
    if claims.get("email_verified") != Some(&Json::Bool(true)) {
        return Err(IdTokenError::EmailNotVerified);
    }
    Ok(Identity {
        issuer: expected.issuer.to_owned(),
        subject,
        email: email.to_owned(),
        mfa: idp_mfa(claims),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NFR-SEC-006: the IdP's own MFA is trusted only when `amr` or `acr` says so.
    #[test]
    fn nfr_sec_006_idp_mfa_from_amr_and_acr() {
        let cases: &[(Json, bool)] = &[
            (serde_json::json!({ "amr": ["pwd", "otp"] }), true),
            (serde_json::json!({ "amr": ["mfa"] }), true),
            (serde_json::json!({ "amr": ["hwk", "pin"] }), true),
            (serde_json::json!({ "amr": ["pwd"] }), false),
            (serde_json::json!({ "amr": ["otp", "otp"] }), false),
            (serde_json::json!({ "amr": "mfa" }), false),
            (
                serde_json::json!({ "acr": "http://schemas.openid.net/pape/policies/2007/06/multi-factor" }),
                true,
            ),
            (serde_json::json!({ "acr": "urn:example:loa:mfa" }), true),
            (serde_json::json!({ "acr": "urn:example:loa:1" }), false),
            (serde_json::json!({}), false),
        ];
        for (claims, want) in cases {
            let map = claims.as_object().cloned().unwrap_or_default();
            assert_eq!(idp_mfa(&map), *want, "{claims}");
        }
    }
}
