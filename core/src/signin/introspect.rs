//! Checking an access token at the edge: the signature and claims ([`crate::tokens::access`]),
//! then the revocation markers in KV (session, user, tenant), with no D1 read on a warm key set.
//! Token introspection (RFC 7662) and the tenant-user routes share it.

use crate::edge;
use crate::kernel::join2;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, KvError, Platform, SqlError};
use crate::sessions::{session_marker_key, user_marker_key};
use crate::tenants::{edge_marker_key, tenant_edge_status, TenantId};
use crate::tokens::{access, AccessClaims, VerifyTokenError};

/// An authenticated tenant user (a valid, unrevoked access token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    /// The token's claims.
    pub claims: AccessClaims,
}

impl UserPrincipal {
    /// Whether the session's sign-in is at most [`crate::sessions::RECENT_AUTH_SECS`] old at `now_ms`.
    pub fn signed_in_recently(&self, now_ms: i64) -> bool {
        now_ms.div_euclid(1000) - self.claims.auth_time <= crate::sessions::RECENT_AUTH_SECS
    }
}

/// Why a tenant user's access token was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccessError {
    /// No `Authorization: Bearer` token.
    #[error("an access token is required")]
    Missing,
    /// The token fails a check of [`VerifyTokenError`] (code inside).
    #[error("the access token is not valid")]
    Invalid(&'static str),
    /// The session was revoked, or the user or tenant may no longer act (ERR-AUTH-440).
    #[error("the session has ended")]
    Revoked,
    /// The key set or a marker could not be read.
    #[error("token check unavailable: {0}")]
    Unavailable(String),
}

impl AccessError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::Missing => "access_token_missing",
            AccessError::Invalid(code) => code,
            AccessError::Revoked => "session_revoked",
            AccessError::Unavailable(_) => "unavailable",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AccessError::Missing => ErrorKind::Unauthenticated,
            AccessError::Invalid(_) => ErrorKind::InvalidToken,
            AccessError::Revoked => ErrorKind::SessionEnded,
            AccessError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(AccessError);

impl From<KvError> for AccessError {
    fn from(e: KvError) -> Self {
        AccessError::Unavailable(e.to_string())
    }
}

impl From<SqlError> for AccessError {
    fn from(e: SqlError) -> Self {
        AccessError::Unavailable(e.to_string())
    }
}

/// Verifies `token` and checks it is not revoked: the session marker, the user's status marker
/// and the tenant's, so a logout, a disabled user or a suspended tenant is denied at once.
pub async fn check_token<P: Platform>(p: &P, token: &str) -> Result<AccessClaims, AccessError> {
    check_token_with(p, token, |aud| aud == crate::tokens::ACCESS_AUDIENCE).await
}

/// `check_token` for the audiences `aud_ok` accepts (`/oauth/userinfo`: OIDC clients).
pub async fn check_token_with<P: Platform>(
    p: &P,
    token: &str,
    aud_ok: impl Fn(&str) -> bool,
) -> Result<AccessClaims, AccessError> {
    let claims = access::verify_with(p, token, p.clock().now_ms(), aud_ok)
        .await
        .map_err(|e| match e {
            VerifyTokenError::Storage(e) => AccessError::Unavailable(e.to_string()),
            VerifyTokenError::Unavailable(e) => AccessError::Unavailable(e),
            other => AccessError::Invalid(other.code()),
        })?;
    let tenant =
        TenantId::parse(&claims.tid).map_err(|_| AccessError::Invalid("token_malformed"))?;
    // The three markers, held in the isolate within the bounds of `crate::edge`, else read at
    // once (one KV round trip of latency on Workers).
    let present = |v: Option<Vec<u8>>| v.is_some();
    let (session, (user, tenant)) = join2(
        edge::read(p, &session_marker_key(&claims.sid), None, present),
        join2(
            edge::read(p, &user_marker_key(&claims.sub), None, present),
            tenant_edge_status(p, &tenant),
        ),
    )
    .await;
    // Any marker value refuses (fail closed); a failed read is an error, never "active".
    if *session? || *user? || !tenant?.is_active() {
        return Err(AccessError::Revoked);
    }
    Ok(claims)
}

/// The KV keys [`check_token_with`] of `token` reads, each with its cache TTL: the published key set
/// and the session, user and tenant markers the token's claims name (taken before any check,
/// see [`access::unverified_claims`]), for one batched read ahead of the check
/// ([`edge::prefetch`]). Only the key set for a token that does not parse.
pub fn keys_checked(token: &str) -> Vec<(String, Option<u32>)> {
    let mut keys = vec![(
        crate::tokens::keys::JWKS_KV_KEY.to_owned(),
        Some(crate::tokens::keys::JWKS_KV_CACHE_TTL_SECS),
    )];
    if let Some(claims) = access::unverified_claims(token) {
        keys.push((session_marker_key(&claims.sid), None));
        keys.push((user_marker_key(&claims.sub), None));
        if let Ok(tenant) = TenantId::parse(&claims.tid) {
            keys.push((edge_marker_key(&tenant), None));
        }
    }
    keys
}

/// Token introspection (RFC 7662) by the app `app_id`: `Some(claims)` for an active token,
/// `None` for one that is forged, expired, or revoked (session, user, tenant). Active tokens are
/// Edgeplane API tokens and the access tokens the OIDC provider issued to `app_id` itself; a
/// token issued to another client is inactive for this caller (its audience is not the caller).
/// Fails only when it cannot tell.
pub async fn introspect<P: Platform>(
    p: &P,
    token: &str,
    app_id: &str,
) -> Result<Option<AccessClaims>, AccessError> {
    let aud_ok = |aud: &str| aud == crate::tokens::ACCESS_AUDIENCE || aud == app_id;
    match check_token_with(p, token, aud_ok).await {
        Ok(claims) => Ok(Some(claims)),
        Err(AccessError::Unavailable(e)) => Err(AccessError::Unavailable(e)),
        Err(_) => Ok(None),
    }
}

/// Authenticates the tenant user of an `Authorization` header value.
pub async fn authenticate_access_token<P: Platform>(
    p: &P,
    authorization: Option<&str>,
) -> Result<UserPrincipal, AccessError> {
    let token = authorization
        .map(str::trim)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or(AccessError::Missing)?;
    Ok(UserPrincipal {
        claims: check_token(p, token).await?,
    })
}
