//! Who is calling, and whether to believe it: the app's revocation policy.
//!
//! - Every request: the Bearer token is verified locally (EdDSA against Edgeplane's key set,
//!   cached in the isolate; issuer, audience, type, expiry). No call to Edgeplane once the keys
//!   are cached.
//! - Reads ([`Check::Local`]) are served on that alone: a token of a revoked session is still
//!   served until it expires (at most 15 minutes after it was issued).
//! - Writes ([`Check::Introspect`]) also ask Edgeplane (`POST /oauth/introspect` through the
//!   binding), whose answer is kept for 1 s per token (by its SHA-256): a revoked session is
//!   refused on writes within 1 s of Edgeplane knowing it. If Edgeplane cannot answer, the
//!   write is refused (503), never let through.

use edgeplane_client::{AccessTokenClaims, Clock as _};
use worker::{console_error, Request};

use crate::edge::EdgeApp;
use crate::problem::Problem;

/// How much to check a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Signature and claims, locally.
    Local,
    /// Locally, then Edgeplane's introspection (cached 1 s).
    Introspect,
}

/// The verified claims of the request's token, or why it is refused.
pub async fn caller(
    app: &EdgeApp,
    req: &Request,
    check: Check,
) -> Result<AccessTokenClaims, Problem> {
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let token = bearer(&header).ok_or(Problem::MissingToken)?;
    let claims = app
        .verifier
        .verify(token, app.clock.now_unix_secs())
        .await
        .map_err(|e| {
            if let edgeplane_client::TokenError::JwksUnavailable(why) = &e {
                console_error!("Edgeplane's key set: {why}");
            }
            Problem::from(e)
        })?;
    if check == Check::Introspect {
        let answer = app
            .introspector
            .introspect(token, app.clock.now_unix_millis())
            .await
            .map_err(|e| {
                console_error!("introspection: {e}");
                Problem::RevocationCheckUnavailable
            })?;
        if !answer.active {
            return Err(Problem::TokenRevoked);
        }
    }
    Ok(claims)
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
