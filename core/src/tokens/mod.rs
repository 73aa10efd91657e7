//! Tokens Edgeplane issues to tenant users (DESIGN.md "Tokens", NFR-SEC-004): the signing keys
//! ([`keys`], sealed under the master key of [`master_key`]) and the EdDSA access tokens
//! ([`access`]) that managed apps verify through `/.well-known/jwks.json` or introspection, and
//! the isolate's memory of tokens already verified ([`verified`]).

pub mod access;
pub mod keys;
pub mod master_key;
pub mod verified;

#[cfg(test)]
mod tests;

use crate::ports::{Platform, Secrets};

pub use access::{AccessClaims, VerifyTokenError};
pub use keys::{PublicJwk, Rotation, SigningKeyError};
pub use master_key::{MasterKey, MasterKeyError};

/// Lifetime of an access token: 15 minutes. Self-verifying apps see a revocation at the latest
/// this long after it; introspection sees it at once.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;

/// `aud` of access tokens for the Edgeplane API.
pub const ACCESS_AUDIENCE: &str = "edgeplane";

/// Issuer used when `PUBLIC_BASE_URL` is not set.
pub const DEFAULT_ISSUER: &str = "edgeplane";

/// `iss` of every token: `PUBLIC_BASE_URL` (without a trailing slash) when set, so one
/// deployment has one stable issuer whatever host a request came through.
pub fn issuer<P: Platform>(p: &P) -> String {
    p.secrets()
        .get("PUBLIC_BASE_URL")
        .map(|s| s.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| DEFAULT_ISSUER.to_owned())
}
