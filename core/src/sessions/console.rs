//! Sessions of the web consoles (`crate::console`): a random token in an `HttpOnly` cookie, its
//! SHA-256 in `console_sessions`, with an idle and an absolute expiry, revocable on the server,
//! and a CSRF token that every form of the session carries.

use serde_json::Value as Json;

use crate::crypto::{random_token, token_hash};
use crate::ports::{Clock, Platform, Row, Sql, SqlError, Stmt};

/// A session ends this long after its last request.
pub const IDLE_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// A session ends this long after its sign-in, however active.
pub const ABSOLUTE_TIMEOUT_MS: i64 = 12 * 60 * 60 * 1000;
/// `last_seen_at` is written at most this often (a page view is not worth a write each time).
const TOUCH_INTERVAL_MS: i64 = 60 * 1000;

/// Who a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An operator or auditor, signed in at the operator identity provider.
    Platform,
    /// A tenant's owner or admin, signed in through Edgeplane's own login.
    Tenant,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Platform => "platform",
            Kind::Tenant => "tenant",
        }
    }
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored hash of the cookie's token: the session's id.
    pub token_hash: String,
    /// Platform or tenant.
    pub kind: Kind,
    /// The platform user or tenant user.
    pub user_id: String,
    /// `operator`, `auditor`, `owner` or `admin`, as at sign-in.
    pub role: String,
    /// The tenant of a tenant session.
    pub tenant_id: Option<String>,
    /// What the header shows (an email).
    pub display_name: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// What the session needs to act (see the migration).
    pub data: Json,
    /// When it ends, however active.
    pub expires_at: i64,
}

/// What a new session is made of.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Platform or tenant.
    pub kind: Kind,
    /// The platform user or tenant user.
    pub user_id: String,
    /// The role.
    pub role: String,
    /// The tenant of a tenant session.
    pub tenant_id: Option<String>,
    /// What the header shows.
    pub display_name: String,
    /// What the session needs to act.
    pub data: Json,
}

/// Creates a session; returns the cookie's token (never stored) and the session.
pub async fn create<P: Platform>(p: &P, new: NewSession) -> Result<(String, Session), SqlError> {
    let token = random_token(p.random());
    let csrf = random_token(p.random());
    let now = p.clock().now_ms();
    let session = Session {
        token_hash: token_hash(&token),
        kind: new.kind,
        user_id: new.user_id,
        role: new.role,
        tenant_id: new.tenant_id,
        display_name: new.display_name,
        csrf,
        data: new.data,
        expires_at: now + ABSOLUTE_TIMEOUT_MS,
    };
    p.sql()
        .execute(
            Stmt::new(
                "INSERT INTO console_sessions (token_hash, kind, user_id, role, tenant_id,
                   display_name, csrf, data, created_at, last_seen_at, idle_timeout_ms, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)",
            )
            .bind(session.token_hash.as_str())
            .bind(session.kind.as_str())
            .bind(session.user_id.as_str())
            .bind(session.role.as_str())
            .bind(session.tenant_id.clone())
            .bind(session.display_name.as_str())
            .bind(session.csrf.as_str())
            .bind(session.data.to_string())
            .bind(now)
            .bind(IDLE_TIMEOUT_MS)
            .bind(session.expires_at),
        )
        .await?;
    Ok((token, session))
}

/// The live session of a cookie's `token`: `None` when unknown, revoked, idle too long or past
/// its absolute expiry. Records the request as the session's last activity (at most once a
/// minute).
pub async fn load<P: Platform>(p: &P, token: &str) -> Result<Option<Session>, SqlError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = token_hash(token);
    let now = p.clock().now_ms();
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT kind, user_id, role, tenant_id, display_name, csrf, data, last_seen_at,
                        idle_timeout_ms, expires_at
                 FROM console_sessions
                 WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2
                   AND last_seen_at + idle_timeout_ms > ?2",
            )
            .bind(hash.as_str())
            .bind(now),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let session = from_row(hash, row)?;
    if now - row.i64("last_seen_at")? >= TOUCH_INTERVAL_MS {
        p.sql()
            .execute(
                Stmt::new("UPDATE console_sessions SET last_seen_at = ?2 WHERE token_hash = ?1")
                    .bind(session.token_hash.as_str())
                    .bind(now),
            )
            .await?;
    }
    Ok(Some(session))
}

fn from_row(token_hash: String, row: &Row) -> Result<Session, SqlError> {
    let kind = match row.text("kind")?.as_str() {
        "tenant" => Kind::Tenant,
        _ => Kind::Platform,
    };
    Ok(Session {
        token_hash,
        kind,
        user_id: row.text("user_id")?,
        role: row.text("role")?,
        tenant_id: row.opt_text("tenant_id")?,
        display_name: row.text("display_name")?,
        csrf: row.text("csrf")?,
        data: serde_json::from_str(&row.text("data")?).unwrap_or(Json::Null),
        expires_at: row.i64("expires_at")?,
    })
}

/// Replaces what a session keeps to act (a tenant session's refreshed tokens).
pub async fn update_data<P: Platform>(p: &P, session: &Session) -> Result<(), SqlError> {
    p.sql()
        .execute(
            Stmt::new("UPDATE console_sessions SET data = ?2 WHERE token_hash = ?1")
                .bind(session.token_hash.as_str())
                .bind(session.data.to_string()),
        )
        .await?;
    Ok(())
}

/// Ends a session (sign-out).
pub async fn revoke<P: Platform>(p: &P, token_hash: &str) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    p.sql()
        .execute(
            Stmt::new(
                "UPDATE console_sessions SET revoked_at = ?2
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .bind(now),
        )
        .await?;
    Ok(())
}

/// Scheduled cleanup: deletes sessions that ended (expired, idle or revoked) a day ago, and
/// console sign-ins past their expiry. Returns how many rows went.
pub async fn expire<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    let counts = p
        .sql()
        .batch(vec![
            Stmt::new(
                "DELETE FROM console_sessions
                 WHERE expires_at < ?1 - 86400000 OR revoked_at < ?1 - 86400000
                    OR last_seen_at + idle_timeout_ms < ?1 - 86400000",
            )
            .bind(now),
            Stmt::new("DELETE FROM console_signins WHERE expires_at < ?1").bind(now),
        ])
        .await?;
    Ok(counts.iter().sum())
}
