//! Refresh-token rotation with reuse detection, and logout (FR-AUTH-005, UC-LOGOUT).

use super::{
    access_token_for, mark_sessions_revoked, Grant, IssueError, SessionUser, TokenPair, API_SCOPE,
    REFRESH_TTL_MS,
};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Row, Sql, SqlError, Stmt};
use crate::tokens::{SigningKeyError, ACCESS_AUDIENCE, ACCESS_TOKEN_TTL_SECS};

/// Longest refresh token accepted, in bytes (ours are 43).
const MAX_REFRESH_TOKEN_BYTES: usize = 128;

/// Why a refresh or logout failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired or revoked refresh token, or a user or tenant that may no longer sign in.
    #[error("the refresh token is not valid")]
    Invalid,
    /// A refresh token already rotated was presented again: the whole session was revoked.
    #[error("the refresh token was already used: the session is revoked")]
    Reused,
    /// No signing key is usable.
    #[error(transparent)]
    Signing(#[from] SigningKeyError),
    /// The database failed.
    #[error("session storage failed: {0}")]
    Storage(#[from] SqlError),
    /// D1 revoked the session but the edge marker could not be written (repeat to retry).
    #[error("session revoked but the edge marker write failed: {0}")]
    EdgePending(String),
}

impl RefreshError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            RefreshError::Invalid => "refresh_token_invalid",
            RefreshError::Reused => "refresh_token_reused",
            RefreshError::Signing(e) => e.code(),
            RefreshError::Storage(_) => "storage",
            RefreshError::EdgePending(_) => "edge_pending",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RefreshError::Invalid => ErrorKind::Unauthenticated,
            RefreshError::Reused => ErrorKind::Unauthenticated,
            RefreshError::Signing(e) => e.kind(),
            RefreshError::Storage(_) => ErrorKind::Internal,
            RefreshError::EdgePending(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(RefreshError);

impl From<IssueError> for RefreshError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Signing(e) => RefreshError::Signing(e),
            IssueError::Storage(e) => RefreshError::Storage(e),
            IssueError::NotActive => RefreshError::Invalid,
        }
    }
}

/// Exchanges a refresh token for a new pair: the presented row is revoked (`rotated`) and its
/// successor inserted in one batch, guarded so two concurrent uses cannot both rotate.
/// Presenting a rotated token revokes the whole session (reuse detection).
pub async fn refresh<P: Platform>(
    p: &P,
    refresh_token: &str,
    request_id: &str,
) -> Result<TokenPair, RefreshError> {
    let api = Grant {
        app_id: None,
        aud: ACCESS_AUDIENCE,
        scope: API_SCOPE,
        attempt: None,
    };
    refresh_with(p, refresh_token, &api, request_id).await
}

/// [`refresh`] of a session issued for `grant`: the session's client must be `grant.app_id`
/// (an OIDC client's refresh token is refused by `/v1/auth/refresh` and by other clients).
pub(crate) async fn refresh_with<P: Platform>(
    p: &P,
    refresh_token: &str,
    grant: &Grant<'_>,
    request_id: &str,
) -> Result<TokenPair, RefreshError> {
    if refresh_token.is_empty() || refresh_token.len() > MAX_REFRESH_TOKEN_BYTES {
        return Err(RefreshError::Invalid);
    }
    let now = p.clock().now_ms();
    let Some(row) = find_session_by_refresh_token(p, refresh_token).await? else {
        return Err(RefreshError::Invalid);
    };
    let sid = row.text("family_id")?;
    let user = session_user_of(&row)?;
    check_refreshable(p, &row, &sid, &user, grant, now, request_id).await?;

    // The session's sign-in: its first row was written then, and refreshing is not signing in.
    let auth_time = row.opt_i64("auth_time")?.unwrap_or(0);
    let access = access_token_for(p, &user, &sid, grant, auth_time).await?;
    let new_token = rotate_session_row(p, &row, &sid, &user, now, request_id).await?;
    Ok(TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token: new_token,
        session_id: sid,
    })
}

/// The session row whose refresh token is `refresh_token`, joined with its user's and tenant's
/// status and the time of the sign-in that started its family; `None` if no row has it.
async fn find_session_by_refresh_token<P: Platform>(
    p: &P,
    refresh_token: &str,
) -> Result<Option<Row>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT s.id, s.family_id, s.status, s.revoked_reason, s.expires_at, s.user_id,
                        s.tenant_id, s.auth_methods, s.app_id, u.role, u.status AS user_status,
                        t.status AS tenant_status,
                        (SELECT f.created_at FROM sessions f WHERE f.id = s.family_id)
                          AS auth_time
                 FROM sessions s JOIN users u ON u.id = s.user_id
                   JOIN tenants t ON t.id = s.tenant_id
                 WHERE s.refresh_token_hash = ?1",
            )
            .bind(crypto::token_hash(refresh_token)),
        )
        .await?;
    Ok(rows.into_iter().next())
}

/// The user a session row belongs to.
fn session_user_of(row: &Row) -> Result<SessionUser, SqlError> {
    Ok(SessionUser {
        user_id: row.text("user_id")?,
        tenant_id: row.text("tenant_id")?,
        role: row.text("role")?,
    })
}

/// Refuses a session row that may not be refreshed for `grant` at `now`. A row already rotated
/// means its token was stolen or replayed: the whole session `sid` is revoked first.
async fn check_refreshable<P: Platform>(
    p: &P,
    row: &Row,
    sid: &str,
    user: &SessionUser,
    grant: &Grant<'_>,
    now: i64,
    request_id: &str,
) -> Result<(), RefreshError> {
    if row.opt_text("app_id")?.as_deref() != grant.app_id {
        return Err(RefreshError::Invalid);
    }
    let status = row.text("status")?;
    if status == "revoked" && row.opt_text("revoked_reason")?.as_deref() == Some("rotated") {
        let revoked = revoke_family(p, sid, user, "reuse", request_id).await;
        // NFR-MON-001: the tenant's count of reuse detections, whether or not the edge marker
        // could be written (a retry writes it; the detection happened either way).
        crate::anomalies::refresh_reused(p, &user.tenant_id, now).await;
        revoked?;
        return Err(RefreshError::Reused);
    }
    if status != "active"
        || row.i64("expires_at")? <= now
        || row.text("user_status")? != "active"
        || row.text("tenant_status")? != "active"
    {
        return Err(RefreshError::Invalid);
    }
    Ok(())
}

/// Revokes the presented row (`rotated`) and inserts its successor with a fresh refresh token,
/// audited, in one batch guarded on the row still being active; returns the new token.
/// A concurrent request that rotated the row first wins, and this one is refused.
async fn rotate_session_row<P: Platform>(
    p: &P,
    row: &Row,
    sid: &str,
    user: &SessionUser,
    now: i64,
    request_id: &str,
) -> Result<String, RefreshError> {
    let old_id = row.text("id")?;
    let new_id = ids::new_ordered_id(p.clock(), p.random());
    let new_token = crypto::random_token(p.random());
    let record = AuditRecord::success(
        "session.refresh",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("session:{sid}"),
        Some(request_id),
    );
    let counts = p
        .sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO sessions (id, tenant_id, user_id, family_id, refresh_token_hash,
                   status, auth_methods, created_at, expires_at, last_used_at, app_id)
                 SELECT ?1, tenant_id, user_id, family_id, ?2, 'active', auth_methods, ?3, ?4, ?3,
                   app_id
                 FROM sessions WHERE id = ?5 AND status = 'active'",
            )
            .bind(new_id.as_str())
            .bind(crypto::token_hash(&new_token))
            .bind(now)
            .bind(now + REFRESH_TTL_MS)
            .bind(old_id.as_str()),
            Stmt::new(
                "UPDATE sessions SET status = 'revoked', revoked_at = ?2, revoked_reason = 'rotated',
                   last_used_at = ?2
                 WHERE id = ?1 AND status = 'active'",
            )
            .bind(old_id.as_str())
            .bind(now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    if counts.first().copied() != Some(1) {
        // A concurrent request rotated it first; that one won.
        return Err(RefreshError::Invalid);
    }
    Ok(new_token)
}

/// Ends the session `sid` of `user` (UC-LOGOUT): every row of the family revoked and audited
/// in one batch, then the edge marker written so introspection denies at once.
pub async fn logout<P: Platform>(
    p: &P,
    sid: &str,
    user: &SessionUser,
    request_id: &str,
) -> Result<(), RefreshError> {
    revoke_family(p, sid, user, "logout", request_id).await
}

/// Revokes every row of session `sid` (audited `session.revoke` with `reason`) and writes its
/// edge marker.
pub(crate) async fn revoke_family<P: Platform>(
    p: &P,
    sid: &str,
    user: &SessionUser,
    reason: &'static str,
    request_id: &str,
) -> Result<(), RefreshError> {
    let now = p.clock().now_ms();
    let record = AuditRecord::success(
        "session.revoke",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("session:{sid}"),
        Some(request_id),
    )
    .with("reason", reason);
    p.sql()
        .batch(vec![
            Stmt::new(
                "UPDATE sessions SET status = 'revoked', revoked_at = ?2, revoked_reason = ?3
                 WHERE family_id = ?1 AND status = 'active'",
            )
            .bind(sid)
            .bind(now)
            .bind(reason),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    mark_sessions_revoked(p, &[sid.to_owned()])
        .await
        .map_err(|e| RefreshError::EdgePending(e.to_string()))
}
