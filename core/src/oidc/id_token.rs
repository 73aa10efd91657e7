//! ID tokens (OIDC Core 2): compact JWS signed EdDSA with the same signing keys as access
//! tokens (`kid` in the header, published at `/.well-known/jwks.json`), signed and read through
//! jwt-compact like them ([`access::sign_json`], [`access::verify_signature`]).

use serde::{Deserialize, Serialize};

use crate::ports::Platform;
use crate::tokens::access::{self, LEEWAY_SECS};
use crate::tokens::keys::ActiveKey;
use crate::tokens::VerifyTokenError;

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The provider's issuer identifier.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// The client id (authorized party).
    pub azp: String,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// When the user signed in (unix seconds).
    pub auth_time: i64,
    /// The authorization request's `nonce`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The session id.
    pub sid: String,
    /// The tenant id.
    pub tid: String,
    /// The authentication methods (`pwd`, `otp`, ...).
    pub amr: Vec<String>,
    /// The user's email (scope `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the email is verified (scope `email`): invitations are accepted through a link
    /// mailed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The user's display name (scope `profile`), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Signs `claims` with `key` (header `alg` EdDSA, `typ` JWT, `kid`).
pub fn sign(key: &ActiveKey, claims: &IdTokenClaims) -> String {
    access::sign_json(key, "JWT", claims)
}

/// Verifies an ID token issued by this provider for `issuer`: signature by a published key,
/// issuer, and (with `check_expiry`) expiry at `now_ms`. An `id_token_hint` is accepted after
/// expiry (OIDC RP-Initiated Logout 2).
pub async fn verify_id_token<P: Platform>(
    p: &P,
    issuer: &str,
    token: &str,
    now_ms: i64,
    check_expiry: bool,
) -> Result<IdTokenClaims, VerifyTokenError> {
    let claims: IdTokenClaims = access::verify_signature(p, token).await?;
    if claims.iss != issuer || claims.aud != claims.azp {
        return Err(VerifyTokenError::WrongAudience);
    }
    if check_expiry && claims.exp + LEEWAY_SECS <= now_ms.div_euclid(1000) {
        return Err(VerifyTokenError::Expired);
    }
    Ok(claims)
}
