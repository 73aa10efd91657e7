//! The link of the new-sign-in notice that signs out the session that sign-in started
//! (NFR-SEC-006): "if it was not you, sign out that session".
//!
//! Each notice carries a fresh single-use token (256 bits from the Random port); only its
//! SHA-256 is stored, in `sign_in_revocations`, with the attempt, its tenant and user, and an
//! expiry of [`REVOKE_TOKEN_TTL_MS`]. Opening the link changes nothing (mail scanners fetch
//! links): [`notice`] only says which sign-in it was. Using it ([`revoke`]) marks the token
//! used, disowns the attempt (`outcome` becomes `revoked`, so it leaves the user's baseline and
//! a session not started yet never starts), revokes the session's whole refresh-token family
//! and audits `session.revoke` (reason `notice_link`), in one batch that only the request that
//! won the token acts in; then the session's edge marker makes introspection deny its access
//! tokens at once. The tenant's or the user's status does not matter: the link only takes
//! access away.

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions;

/// How long a notice's link works: 7 days.
pub const REVOKE_TOKEN_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// The path of the page the link opens (`?token=`).
pub const REVOKE_LINK_PATH: &str = "/account/sign-ins/revoke";

/// The link mailed for `token`, under `base` (no trailing slash).
pub fn revoke_link(base: &str, token: &str) -> String {
    format!(
        "{}{REVOKE_LINK_PATH}?token={token}",
        base.trim_end_matches('/')
    )
}

/// Whether `token` has the shape of a token this module mints (43 base64url characters):
/// anything else is refused before any storage is read.
pub fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh token for the notice of attempt `attempt_id` and the statement storing its hash.
pub(super) fn mint<P: Platform>(
    p: &P,
    attempt_id: &str,
    tenant_id: &str,
    user_id: &str,
    now: i64,
) -> (String, Stmt) {
    let token = crypto::random_token(p.random());
    let insert = Stmt::new(
        "INSERT INTO sign_in_revocations (token_hash, attempt_id, tenant_id, user_id, created_at,
           expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(crypto::token_hash(&token))
    .bind(attempt_id)
    .bind(tenant_id)
    .bind(user_id)
    .bind(now)
    .bind(now + REVOKE_TOKEN_TTL_MS);
    (token, insert)
}

/// The sign-in a live link is about, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInNotice {
    /// When the sign-in happened (unix ms).
    pub at_ms: i64,
    /// The coarse device label ("Firefox on Linux"), if known.
    pub device_label: Option<String>,
    /// The country the runtime vouched for, if any.
    pub country: Option<String>,
}

/// The SELECT of a live token's row (unused, unexpired), with its attempt where it is kept.
const LIVE_TOKEN: &str = "SELECT r.attempt_id, r.tenant_id, r.user_id, a.created_at,
        a.device_label, a.country, a.session_id
 FROM sign_in_revocations r LEFT JOIN sign_in_attempts a ON a.id = r.attempt_id
 WHERE r.token_hash = ?1 AND r.used_at IS NULL AND r.expires_at > ?2";

/// The sign-in of a live `token`; `None` when the token is malformed, unknown, used or expired
/// (the caller answers all four alike). Reads only.
pub async fn notice<P: Platform>(p: &P, token: &str) -> Result<Option<SignInNotice>, SqlError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(LIVE_TOKEN)
                .bind(crypto::token_hash(token))
                .bind(p.clock().now_ms()),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(SignInNotice {
        at_ms: row.opt_i64("created_at")?.unwrap_or(0),
        device_label: row.opt_text("device_label")?,
        country: row.opt_text("country")?,
    }))
}

/// What using a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The token is malformed, unknown, used or expired (or another request used it first):
    /// nothing changed.
    NotValid,
    /// The token is used now and the sign-in disowned; `was_active` says whether its session
    /// still had an active token (false: it had signed out or expired already).
    /// `edge_pending` holds the error when the session's edge marker could not be written
    /// (refresh is refused already; introspection catches up within the marker's reach).
    SignedOut {
        /// The session had an active refresh token until now.
        was_active: bool,
        /// Why the edge marker could not be written, if it could not.
        edge_pending: Option<String>,
    },
}

/// Uses `token`: single use, in one batch whose every statement after the first acts only for
/// the request that marked the token used (two concurrent uses revoke once). See the module
/// documentation.
pub async fn revoke<P: Platform>(
    p: &P,
    token: &str,
    request_id: &str,
) -> Result<RevokeOutcome, SqlError> {
    if !well_formed(token) {
        return Ok(RevokeOutcome::NotValid);
    }
    let now = p.clock().now_ms();
    let hash = crypto::token_hash(token);
    let rows = p
        .sql()
        .query(Stmt::new(LIVE_TOKEN).bind(hash.as_str()).bind(now))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(RevokeOutcome::NotValid);
    };
    let attempt = row.text("attempt_id")?;
    let (tenant_id, user_id) = (row.text("tenant_id")?, row.text("user_id")?);
    // This request's mark on the token: what the later statements check for.
    let used_by = ids::new_id(p.random());
    let record = AuditRecord::success(
        "session.revoke",
        &Actor::user(&user_id),
        Some(&tenant_id),
        row.opt_text("session_id")?
            .map_or_else(|| format!("sign_in:{attempt}"), |s| format!("session:{s}")),
        Some(request_id),
    )
    .with("reason", "notice_link")
    .with("sign_in", attempt.as_str());
    let counts = p
        .sql()
        .batch(vec![
            Stmt::new(
                "UPDATE sign_in_revocations SET used_at = ?2, used_by = ?3
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            )
            .bind(hash.as_str())
            .bind(now)
            .bind(used_by.as_str()),
            Stmt::new(
                "UPDATE sessions SET status = 'revoked', revoked_at = ?4,
                   revoked_reason = 'notice_link'
                 WHERE family_id = (SELECT session_id FROM sign_in_attempts WHERE id = ?1)
                   AND tenant_id = ?2 AND user_id = ?3 AND status = 'active'
                   AND EXISTS (SELECT 1 FROM sign_in_revocations
                               WHERE token_hash = ?5 AND used_by = ?6)",
            )
            .bind(attempt.as_str())
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .bind(now)
            .bind(hash.as_str())
            .bind(used_by.as_str()),
            Stmt::new(
                "UPDATE sign_in_attempts SET outcome = 'revoked'
                 WHERE id = ?1 AND user_id = ?2
                   AND EXISTS (SELECT 1 FROM sign_in_revocations
                               WHERE token_hash = ?3 AND used_by = ?4)",
            )
            .bind(attempt.as_str())
            .bind(user_id.as_str())
            .bind(hash.as_str())
            .bind(used_by.as_str()),
            audit::outbox_insert_where(
                &record,
                &audit::new_event_id(p),
                now,
                concat!(
                    crate::audit_outbox_columns!(),
                    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                     WHERE EXISTS (SELECT 1 FROM sign_in_revocations
                                   WHERE token_hash = ?11 AND used_by = ?12)"
                ),
            )
            .bind(hash.as_str())
            .bind(used_by.as_str()),
        ])
        .await?;
    if counts.first().copied() != Some(1) {
        // Another request used it between the read and the batch.
        return Ok(RevokeOutcome::NotValid);
    }
    let was_active = counts.get(1).copied().unwrap_or(0) > 0;
    let edge_pending = if was_active {
        mark_revoked(p, &attempt).await
    } else {
        None
    };
    Ok(RevokeOutcome::SignedOut {
        was_active,
        edge_pending,
    })
}

/// Writes the edge marker of the session attempt `attempt` started; the error, if any.
async fn mark_revoked<P: Platform>(p: &P, attempt: &str) -> Option<String> {
    let sid = match p
        .sql()
        .query(Stmt::new("SELECT session_id FROM sign_in_attempts WHERE id = ?1").bind(attempt))
        .await
    {
        Ok(rows) => rows
            .first()
            .and_then(|r| r.opt_text("session_id").ok().flatten()),
        Err(e) => return Some(e.to_string()),
    }?;
    sessions::mark_sessions_revoked(p, &[sid])
        .await
        .err()
        .map(|e| e.to_string())
}

/// Deletes the tokens past their expiry (used or not); returns how many.
pub(super) async fn prune<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    p.sql()
        .execute(Stmt::new("DELETE FROM sign_in_revocations WHERE expires_at <= ?1").bind(now))
        .await
}
