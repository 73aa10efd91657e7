//! Operator identity (FR-SYS-004): platform operators and auditors present a JWT from an
//! external OpenID Connect identity provider; this module verifies it and maps it to a platform
//! user, provisioned on first sign-in.
//!
//! [`authenticate_operator`] is the one entry point. In order, it
//! 1. reads the configuration ([`config`]: `OPERATOR_ISSUER`, `OPERATOR_AUDIENCE`,
//!    `OPERATOR_ROLE_CLAIM`, and the development-only `OPERATOR_DEV_JWKS`);
//! 2. parses the bearer token, checking size, segments and the `alg` allow-list (RS256, ES256,
//!    EdDSA) before any other work ([`jwt`]);
//! 3. finds the issuer's key named by `kid` through discovery and a KV cache, re-fetching once,
//!    rate-limited, for an unknown `kid` ([`keys`]); the key's type and `alg` must match the
//!    token's `alg` ([`jwk`]);
//! 4. verifies the signature through jwt-compact under that key's algorithm, then `iss`, `aud`,
//!    `exp`/`nbf`/`iat` (60 s leeway, the Clock port), `sub` and the role claim;
//! 5. provisions or reuses the platform user ([`provision`]).
//!
//! Errors are domain facts with stable codes; mapping them to HTTP is the HTTP layer's job.

pub mod config;
pub mod jwk;
pub mod jwt;
pub mod keys;
pub mod provision;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::kernel::ErrorKind;
use crate::ports::{Clock, Logger, Platform};

/// A platform role (the `roles` table, scope `platform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformRole {
    /// Full access to the control plane.
    Operator,
    /// Read-only access to audit logs and reports.
    Auditor,
}

impl PlatformRole {
    /// The stored and claimed name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformRole::Operator => "operator",
            PlatformRole::Auditor => "auditor",
        }
    }
}

/// A signed-in operator or auditor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPrincipal {
    /// The platform user's id: the `actor_id` of their audit records.
    pub user_id: String,
    /// The token's issuer.
    pub issuer: String,
    /// The token's subject at that issuer.
    pub subject: String,
    /// The role the token grants.
    pub role: PlatformRole,
}

/// Why an operator could not be authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorAuthError {
    /// Operator sign-in is off: `OPERATOR_ISSUER` or `OPERATOR_AUDIENCE` is unset, or invalid
    /// (the reason is logged).
    #[error("operator sign-in is not configured on this deployment (OPERATOR_ISSUER, OPERATOR_AUDIENCE)")]
    NotConfigured,
    /// No `Authorization: Bearer` token.
    #[error("an operator bearer token is required")]
    MissingToken,
    /// Not a well-formed signed JWT: size, segments, encoding, JSON, `crit`, or a required claim
    /// (`exp`, `sub`) missing or of the wrong type.
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// The header's `alg` is not RS256, ES256 or EdDSA, or is not the algorithm of the key its
    /// `kid` names.
    #[error("the token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The signature does not verify, or no key of the issuer has the token's `kid` (after one
    /// re-fetch of the issuer's keys).
    #[error("the token's signature does not verify")]
    BadSignature,
    /// The token is outside its validity period: `exp` passed, or `nbf`/`iat` in the future.
    #[error("the token is expired or not yet valid")]
    Expired,
    /// `iss` is not the configured issuer.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("the token is for another audience")]
    WrongAudience,
    /// The token grants neither `operator` nor `auditor`, or the platform user is disabled.
    #[error("the token grants no platform role")]
    NoRole,
    /// The issuer's discovery document or keys could not be fetched (cause inside, for the log).
    #[error("the operator identity provider is unavailable: {0}")]
    IssuerUnavailable(String),
    /// The database or key-value store failed (cause inside, for the log).
    #[error("operator sign-in storage failed: {0}")]
    Storage(String),
}

impl OperatorAuthError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            OperatorAuthError::NotConfigured => "operator-auth-not-configured",
            OperatorAuthError::MissingToken => "operator-token-missing",
            OperatorAuthError::Malformed => "operator-token-malformed",
            OperatorAuthError::UnsupportedAlgorithm => "operator-token-algorithm",
            OperatorAuthError::BadSignature => "operator-token-signature",
            OperatorAuthError::Expired => "operator-token-expired",
            OperatorAuthError::WrongIssuer => "operator-token-issuer",
            OperatorAuthError::WrongAudience => "operator-token-audience",
            OperatorAuthError::NoRole => "operator-no-role",
            OperatorAuthError::IssuerUnavailable(_) => "operator-issuer-unavailable",
            OperatorAuthError::Storage(_) => "operator-auth-storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            OperatorAuthError::NotConfigured => ErrorKind::Unauthenticated,
            OperatorAuthError::MissingToken => ErrorKind::Unauthenticated,
            OperatorAuthError::Malformed => ErrorKind::InvalidToken,
            OperatorAuthError::UnsupportedAlgorithm => ErrorKind::InvalidToken,
            OperatorAuthError::BadSignature => ErrorKind::InvalidToken,
            OperatorAuthError::Expired => ErrorKind::InvalidToken,
            OperatorAuthError::WrongIssuer => ErrorKind::InvalidToken,
            OperatorAuthError::WrongAudience => ErrorKind::InvalidToken,
            OperatorAuthError::NoRole => ErrorKind::Forbidden,
            OperatorAuthError::IssuerUnavailable(_) => ErrorKind::Unavailable,
            OperatorAuthError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(OperatorAuthError);

/// Set once `OPERATOR_DEV_JWKS` was reported as ignored in this isolate/instance.
static DEV_JWKS_IGNORED_LOGGED: AtomicBool = AtomicBool::new(false);

/// Authenticates an operator or auditor from the request's `Authorization` header value,
/// provisioning their platform user on first sign-in (FR-SYS-004).
pub async fn authenticate_operator<P: Platform>(
    p: &P,
    authorization_header: Option<&str>,
) -> Result<OperatorPrincipal, OperatorAuthError> {
    let loaded = match config::load(p.secrets()) {
        Ok(loaded) => loaded,
        Err(config::ConfigProblem::Missing(_)) => return Err(OperatorAuthError::NotConfigured),
        Err(config::ConfigProblem::Invalid(var, why)) => {
            log(
                p,
                "error",
                "operator sign-in misconfigured",
                &format!("{var}: {why}"),
            );
            return Err(OperatorAuthError::NotConfigured);
        }
    };
    if loaded.dev_jwks_ignored {
        warn_once(p.logger(), &DEV_JWKS_IGNORED_LOGGED, p.clock().now_ms());
    }
    let cfg = loaded.config;

    let token = jwt::bearer(authorization_header)?;
    let untrusted = jwt::parse(token)?;
    let keys = keys::candidates(p, &cfg, untrusted.alg, untrusted.kid.as_deref()).await?;
    let claims = jwt::check_claims(
        &untrusted.verify(&keys)?,
        &jwt::Expected {
            issuer: &cfg.issuer,
            audience: &cfg.audience,
            role_claim: &cfg.role_claim,
            now_ms: p.clock().now_ms(),
        },
    )?;
    let user_id = provision::provision(
        p,
        &cfg.issuer,
        &claims.subject,
        claims.role,
        claims.email.as_deref(),
    )
    .await?;
    Ok(OperatorPrincipal {
        user_id,
        issuer: cfg.issuer,
        subject: claims.subject,
        role: claims.role,
    })
}

/// Logs, once per `flag`, that `OPERATOR_DEV_JWKS` is set where it does not apply.
fn warn_once<L: Logger + ?Sized>(logger: &L, flag: &AtomicBool, now_ms: i64) {
    if !flag.swap(true, Ordering::Relaxed) {
        let line = serde_json::json!({
            "ts": now_ms,
            "level": "warn",
            "msg": "OPERATOR_DEV_JWKS ignored: it applies only with EDGEPLANE_ENV=development and an http://127.0.0.1 or http://localhost OPERATOR_ISSUER",
        });
        logger.line(&line.to_string());
    }
}

/// One log line about operator sign-in (never the token or claims).
fn log<P: Platform>(p: &P, level: &str, msg: &str, cause: &str) {
    let line = serde_json::json!({
        "ts": p.clock().now_ms(),
        "level": level,
        "msg": msg,
        "error": cause,
    });
    p.logger().line(&line.to_string());
}
