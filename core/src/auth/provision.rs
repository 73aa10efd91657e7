//! Just-in-time provisioning of platform users (FR-SYS-004): the first successful sign-in of an
//! external identity (issuer + subject) creates its `users` row (tenant_id NULL, role from the
//! token, status active) with an audit record in the same batch; later sign-ins reuse the row,
//! updating its role (audited) or email when the IdP changed them. The row's id is the actor id
//! of everything the operator does.
//!
//! Two first sign-ins racing: the unique index `users_platform_external` refuses the second
//! insert, which then reads the row the first one wrote.

use super::{OperatorAuthError, PlatformRole};
use crate::audit::{self, Actor, AuditRecord};
use crate::ids;
use crate::ports::{Clock, Platform, Row, Sql, SqlError, Stmt};

/// `last_login_at` is refreshed at most this often (ms): every operator request is a sign-in,
/// and a write per request would be waste.
const LAST_LOGIN_RESOLUTION_MS: i64 = 60 * 60 * 1000;

/// A platform user as sign-in needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlatformUser {
    id: String,
    role: String,
    status: String,
    email: Option<String>,
    last_login_at: Option<i64>,
}

/// The identity's platform user id, creating or updating the row as needed. `NoRole` when the
/// row exists but is not active (an operator disabled it).
pub async fn provision<P: Platform>(
    p: &P,
    issuer: &str,
    subject: &str,
    role: PlatformRole,
    email: Option<&str>,
) -> Result<String, OperatorAuthError> {
    if let Some(user) = find(p, issuer, subject).await? {
        return reuse(p, user, role, email).await;
    }
    let id = ids::new_ordered_id(p.clock(), p.random());
    let now = p.clock().now_ms();
    let insert = Stmt::new(
        "INSERT INTO users (id, tenant_id, email, role, status, external_issuer,
           external_subject, last_login_at, created_at, updated_at)
         VALUES (?1, NULL, ?2, ?3, 'active', ?4, ?5, ?6, ?6, ?6)",
    )
    .bind(&id)
    .bind(email)
    .bind(role.as_str())
    .bind(issuer)
    .bind(subject)
    .bind(now);
    let record = AuditRecord::success(
        "platform_user.provision",
        &Actor::operator(&id),
        None,
        format!("user:{id}"),
        None,
    )
    .with("role", role.as_str());
    let audit = audit::outbox_insert(&record, &audit::new_event_id(p), now);
    match p.sql().batch(vec![insert, audit]).await {
        Ok(_) => Ok(id),
        Err(SqlError::Constraint(cause)) => {
            // Another first sign-in of the same identity won the race: use its row.
            let user = find(p, issuer, subject).await?.ok_or_else(|| {
                OperatorAuthError::Storage(format!("platform user insert refused: {cause}"))
            })?;
            reuse(p, user, role, email).await
        }
        Err(e) => Err(OperatorAuthError::Storage(e.to_string())),
    }
}

/// The platform user of an external identity, if provisioned.
async fn find<P: Platform>(
    p: &P,
    issuer: &str,
    subject: &str,
) -> Result<Option<PlatformUser>, OperatorAuthError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, role, status, email, last_login_at FROM users
                 WHERE tenant_id IS NULL AND external_issuer = ?1 AND external_subject = ?2",
            )
            .bind(issuer)
            .bind(subject),
        )
        .await
        .map_err(storage)?;
    rows.first().map(decode).transpose().map_err(storage)
}

/// Decodes a row of [`find`].
fn decode(row: &Row) -> Result<PlatformUser, SqlError> {
    Ok(PlatformUser {
        id: row.text("id")?,
        role: row.text("role")?,
        status: row.text("status")?,
        email: row.opt_text("email")?,
        last_login_at: row.opt_i64("last_login_at")?,
    })
}

/// Signs in an existing platform user: refuses an inactive one, brings role and email up to
/// date, refreshes `last_login_at` when it is old.
async fn reuse<P: Platform>(
    p: &P,
    user: PlatformUser,
    role: PlatformRole,
    email: Option<&str>,
) -> Result<String, OperatorAuthError> {
    if user.status != "active" {
        return Err(OperatorAuthError::NoRole);
    }
    let now = p.clock().now_ms();
    let role_changed = user.role != role.as_str();
    let email_changed = email.is_some_and(|e| user.email.as_deref() != Some(e));
    if role_changed || email_changed {
        let update = Stmt::new(
            "UPDATE users SET role = ?2, email = COALESCE(?3, email), last_login_at = ?4,
               updated_at = ?4, version = version + 1
             WHERE id = ?1",
        )
        .bind(&user.id)
        .bind(role.as_str())
        .bind(email)
        .bind(now);
        let mut batch = vec![update];
        if role_changed {
            let record = AuditRecord::success(
                "platform_user.role_change",
                &Actor::operator(&user.id),
                None,
                format!("user:{}", user.id),
                None,
            )
            .with("from", user.role.as_str())
            .with("to", role.as_str());
            batch.push(audit::outbox_insert(&record, &audit::new_event_id(p), now));
        }
        p.sql().batch(batch).await.map_err(storage)?;
    } else if user
        .last_login_at
        .is_none_or(|at| now.saturating_sub(at) >= LAST_LOGIN_RESOLUTION_MS)
    {
        p.sql()
            .execute(
                Stmt::new("UPDATE users SET last_login_at = ?2 WHERE id = ?1")
                    .bind(&user.id)
                    .bind(now),
            )
            .await
            .map_err(storage)?;
    }
    Ok(user.id)
}

/// A storage failure, with its cause for the log.
fn storage(e: SqlError) -> OperatorAuthError {
    OperatorAuthError::Storage(e.to_string())
}
