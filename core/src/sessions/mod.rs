//! Sessions of tenant users (FR-AUTH-005, UC-LOGOUT): starting one (the tokens), refresh-token
//! rotation with reuse detection, logout, and the revocation state the edge reads. Signing in
//! (password, second factor) and checking a token at the edge are [`crate::signin`]'s, which
//! stands on this module, the users, passkeys and tenants.
//!
//! A session is a refresh-token family: `sessions` holds one row per refresh token (hashed),
//! all with the session's `family_id`, which is the `sid` of every access token issued in it.
//! Rotation revokes the presented row and inserts its successor in one batch; presenting a
//! rotated token again revokes the whole family.
//!
//! Revocation reaches the edge through KV markers read by introspection (no D1 read there):
//! `session:{sid}:revoked` (set on logout, reuse, password reset or change; it only needs to
//! outlive the access tokens of the session), `user:{id}:status` (`disabled`/`deleted`) and the
//! tenant marker of [`crate::tenants::tenant_edge_status`]. All are written and read through
//! [`crate::edge`]: the isolate that revokes sees it at once, every other isolate of its
//! location within a second.

pub mod console;
mod refresh;

#[cfg(test)]
mod tests;

pub use refresh::{logout, refresh, RefreshError};
pub(crate) use refresh::{refresh_with, revoke_family};

use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, KvError, Platform, Sql, SqlError, Stmt};
use crate::tokens::{self, access, AccessClaims, SigningKeyError, ACCESS_TOKEN_TTL_SECS};

/// How long a session's refresh token stays usable without being rotated: 30 days.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Lifetime of a session revocation marker: longer than any access token of the session.
pub const SESSION_MARKER_TTL_SECS: u32 = (ACCESS_TOKEN_TTL_SECS as u32) + 300;
/// `scope` of access tokens for the Edgeplane API.
pub const API_SCOPE: &str = "edgeplane:api";

/// The KV key marking a revoked session.
pub fn session_marker_key(sid: &str) -> String {
    format!("session:{sid}:revoked")
}

/// The KV key of a user's edge status (`disabled` or `deleted`; absent: active).
pub fn user_marker_key(user_id: &str) -> String {
    format!("user:{user_id}:status")
}

/// Tokens handed to a signed-in user. (Only serialized: `deny_unknown_fields` closes its
/// schema to other properties.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPair {
    /// The EdDSA access token.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = bearer_schema)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The opaque refresh token (shown once; only its hash is stored).
    pub refresh_token: String,
    /// The session id (`sid`).
    pub session_id: String,
}

fn bearer_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&["Bearer"])
}

/// The signed-in user a session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// User id.
    pub user_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant role.
    pub role: String,
}

/// Why tokens could not be issued.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IssueError {
    /// No signing key is usable (master key missing or wrong).
    #[error(transparent)]
    Signing(#[from] SigningKeyError),
    /// The database failed.
    #[error("session storage failed: {0}")]
    Storage(#[from] SqlError),
    /// The user or their tenant stopped being active between the sign-in's checks and the
    /// session's creation (a concurrent suspension or disabling): no session was started.
    #[error("the account is no longer active")]
    NotActive,
}

impl IssueError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IssueError::Signing(e) => e.code(),
            IssueError::Storage(_) => "storage",
            IssueError::NotActive => "invalid_credentials",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IssueError::Signing(e) => e.kind(),
            IssueError::Storage(_) => ErrorKind::Internal,
            IssueError::NotActive => ErrorKind::Unauthenticated,
        }
    }
}

crate::kernel::domain_errors!(IssueError);

/// How recent a sign-in must be for a security change (passkeys, TOTP, password, account
/// deletion) with an access token alone: 5 minutes. A stolen 15-minute token is not enough to
/// add a way in or remove one.
pub const RECENT_AUTH_SECS: i64 = 5 * 60;

/// The access token for `user` in session `sid`, for audience `aud` with `scope` (the OIDC
/// provider issues tokens whose audience is the client, FR-AUTH-001); `auth_time_ms` is when
/// the session's sign-in happened.
pub(crate) async fn access_token_for<P: Platform>(
    p: &P,
    user: &SessionUser,
    sid: &str,
    grant: &Grant<'_>,
    auth_time_ms: i64,
) -> Result<String, SigningKeyError> {
    let (aud, scope) = (grant.aud, grant.scope);
    let now = p.clock().now_ms().div_euclid(1000);
    let claims = AccessClaims {
        iss: tokens::issuer(p),
        sub: user.user_id.clone(),
        aud: aud.to_owned(),
        tid: user.tenant_id.clone(),
        role: user.role.clone(),
        sid: sid.to_owned(),
        scope: scope.to_owned(),
        iat: now,
        exp: now + ACCESS_TOKEN_TTL_SECS,
        jti: ids::new_id(p.random()),
        auth_time: auth_time_ms.div_euclid(1000),
    };
    access::sign(p, &claims).await
}

/// Starts a session (FR-AUTH-005): signs the access token first (so a missing master key
/// changes nothing), then one batch inserts the session row, records the sign-in on the user
/// and audits `session.create`. `attempt` is the sign-in's risk decision and `decided` the
/// statements recording it when that is still to be done (see [`start_with`]).
pub(crate) async fn start<P: Platform>(
    p: &P,
    user: &SessionUser,
    methods: &[&str],
    attempt: Option<&str>,
    decided: Vec<Stmt>,
    request_id: &str,
) -> Result<TokenPair, IssueError> {
    let api = Grant {
        app_id: None,
        aud: tokens::ACCESS_AUDIENCE,
        scope: API_SCOPE,
        attempt,
    };
    start_with(p, user, methods, &api, decided, |_| Vec::new(), request_id).await
}

/// Who a session's tokens are for: the Edgeplane API, or a managed app (OIDC client).
pub(crate) struct Grant<'a> {
    /// The client (`sessions.app_id`), `None` for the Edgeplane API.
    pub app_id: Option<&'a str>,
    /// `aud` of the access tokens.
    pub aud: &'a str,
    /// `scope` of the access tokens.
    pub scope: &'a str,
    /// The sign-in attempt (`sign_in_attempts`, the risk decision) this session completes:
    /// the session is recorded on it (its new-sign-in notice's link signs out this session),
    /// and none starts if the user already disowned that sign-in through the link.
    pub attempt: Option<&'a str>,
}

/// [`start`] for `grant`; `decided` (the risk decision's writes, [`crate::risk::Decision`])
/// come first in the batch, before the session row that refers to the attempt, and
/// `extra(sid)` adds statements at its end (the OIDC provider records its grant and marks the
/// code with the session it started).
pub(crate) async fn start_with<P: Platform>(
    p: &P,
    user: &SessionUser,
    methods: &[&str],
    grant: &Grant<'_>,
    decided: Vec<Stmt>,
    extra: impl FnOnce(&str) -> Vec<Stmt>,
    request_id: &str,
) -> Result<TokenPair, IssueError> {
    let now = p.clock().now_ms();
    let sid = ids::new_ordered_id(p.clock(), p.random());
    let access_token = access_token_for(p, user, &sid, grant, now).await?;
    let refresh_token = crypto::random_token(p.random());
    let mut record = AuditRecord::success(
        "session.create",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("session:{sid}"),
        Some(request_id),
    )
    .with("methods", methods.to_vec());
    if let Some(client) = grant.app_id {
        record = record.with("client_id", client);
    }
    // The session is stored only while its user and tenant are still active: a suspension or
    // a disabling committed since the sign-in's checks revoked every session, and this one must
    // not start after it (FR-OPS-001).
    let mut stmts = vec![
        Stmt::new(
            "INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash, status,
                   auth_methods, created_at, expires_at, last_used_at, app_id)
                 SELECT ?1, ?2, ?3, ?1, ?4, 'active', ?5, ?6, ?7, ?6, ?8
                 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?2 AND status = 'active')
                   AND EXISTS (SELECT 1 FROM users WHERE id = ?3 AND status = 'active')
                   AND NOT EXISTS (SELECT 1 FROM sign_in_attempts
                                   WHERE id = ?9 AND outcome = 'revoked')",
        )
        .bind(sid.as_str())
        .bind(user.tenant_id.as_str())
        .bind(user.user_id.as_str())
        .bind(crypto::token_hash(&refresh_token))
        .bind(serde_json::to_string(methods).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(now + REFRESH_TTL_MS)
        .bind(grant.app_id)
        .bind(grant.attempt),
        Stmt::new(
            "UPDATE users SET last_login_at = ?2, failed_logins = 0, updated_at = ?2
                 WHERE id = ?1",
        )
        .bind(user.user_id.as_str())
        .bind(now),
        audit::outbox_insert_where(
            &record,
            &audit::new_event_id(p),
            now,
            concat!(
                crate::audit_outbox_columns!(),
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?11)"
            ),
        )
        .bind(sid.as_str()),
    ];
    if let Some(attempt) = grant.attempt {
        stmts.push(
            Stmt::new(
                "UPDATE sign_in_attempts SET session_id = ?2
                 WHERE id = ?1 AND session_id IS NULL AND EXISTS (SELECT 1 FROM sessions WHERE id = ?2)",
            )
            .bind(attempt)
            .bind(sid.as_str()),
        );
    }
    stmts.extend(extra(&sid));
    let session_row = decided.len();
    let applied = p
        .sql()
        .batch(decided.into_iter().chain(stmts).collect())
        .await?;
    if applied.get(session_row).copied().unwrap_or(0) == 0 {
        return Err(IssueError::NotActive);
    }
    Ok(TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token,
        session_id: sid,
    })
}

/// The statement revoking every active row of the sessions of `user_id` (password reset or
/// change, FR-AUTH-004), for the caller's batch. Pair it with [`mark_sessions_revoked`].
pub(crate) fn revoke_user_sessions_stmt(user_id: &str, reason: &str, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE sessions SET status = 'revoked', revoked_at = ?2, revoked_reason = ?3
         WHERE user_id = ?1 AND status = 'active'",
    )
    .bind(user_id)
    .bind(now)
    .bind(reason)
}

/// The session ids (families) of `user_id` with an active row, read before revoking them so
/// their markers can be written after.
pub(crate) async fn active_sids<P: Platform>(
    p: &P,
    user_id: &str,
) -> Result<Vec<String>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT DISTINCT family_id FROM sessions WHERE user_id = ?1 AND status = 'active'",
            )
            .bind(user_id),
        )
        .await?;
    rows.iter().map(|r| r.text("family_id")).collect()
}

/// Writes the revocation marker of each session, after the D1 batch that revoked them.
pub(crate) async fn mark_sessions_revoked<P: Platform>(
    p: &P,
    sids: &[String],
) -> Result<(), KvError> {
    let mut result = Ok(());
    for sid in sids {
        let marker = session_marker_key(sid);
        if let Err(e) =
            crate::edge::put(p, &marker, b"revoked", Some(SESSION_MARKER_TTL_SECS)).await
        {
            result = Err(e);
        }
    }
    result
}

/// Why a user's sessions could not be revoked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RevokeSessionsError {
    /// No user of this id in the tenant (ERR-RES-404: another tenant's user is not found either).
    #[error("no such user in this tenant")]
    NotFound,
    /// The database failed.
    #[error("session storage failed: {0}")]
    Storage(#[from] SqlError),
    /// D1 revoked the sessions but an edge marker could not be written (repeat to retry).
    #[error("sessions revoked but the edge markers were not written: {0}")]
    EdgePending(String),
}

impl RevokeSessionsError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            RevokeSessionsError::NotFound => "user_not_found",
            RevokeSessionsError::Storage(_) => "storage",
            RevokeSessionsError::EdgePending(_) => "edge_pending",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RevokeSessionsError::NotFound => ErrorKind::NotFound,
            RevokeSessionsError::Storage(_) => ErrorKind::Internal,
            RevokeSessionsError::EdgePending(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(RevokeSessionsError);

/// Administrative revocation (FR-AUTH-005, UC-TENANT-SESSION-REVOKE): every session of a user
/// of `tenant_id` ends, in D1 (audited `session.revoke_all` by `actor`) and at the edge.
/// Returns how many sessions were active.
pub async fn revoke_all_sessions<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
    actor: &Actor,
    request_id: &str,
) -> Result<usize, RevokeSessionsError> {
    let found = p
        .sql()
        .query(
            Stmt::new("SELECT 1 AS found FROM users WHERE id = ?1 AND tenant_id = ?2")
                .bind(user_id)
                .bind(tenant_id),
        )
        .await?;
    if found.is_empty() {
        return Err(RevokeSessionsError::NotFound);
    }
    let now = p.clock().now_ms();
    let sids = active_sids(p, user_id).await?;
    let record = AuditRecord::success(
        "session.revoke_all",
        actor,
        Some(tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("sessions_revoked", sids.len());
    p.sql()
        .batch(vec![
            revoke_user_sessions_stmt(user_id, "admin", now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    mark_sessions_revoked(p, &sids)
        .await
        .map_err(|e| RevokeSessionsError::EdgePending(e.to_string()))?;
    Ok(sids.len())
}
