//! Data subject rights (CON-COMP-001): a user's export of their personal data (access and
//! portability) as JSON, audited as `user.export` (CON-SEC-002). Erasure is
//! [`super::admin::erase_user`], by the user or an owner or admin.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::admin::UserAdminError;
use crate::audit::{self, Actor, AuditRecord};
use crate::ports::{Platform, Row, Sql, SqlError, Stmt};

/// The format name of [`PersonalDataExport::format`].
pub const EXPORT_FORMAT: &str = "edgeplane.personal-data.v1";

/// A user's personal data as exported (`GET /v1/me/export`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PersonalDataExport {
    /// The format and its version: `edgeplane.personal-data.v1`.
    pub format: &'static str,
    /// The user's row (no credential hashes or secrets).
    #[schema(value_type = Object)]
    pub profile: Value,
    /// The user's sessions, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub sessions: Vec<Value>,
    /// The user's invitations, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub invitations: Vec<Value>,
    /// The audit records the user is the actor of in the tenant, oldest first, at most
    /// [`MAX_EXPORTED_AUDIT_RECORDS`].
    #[schema(value_type = Vec<Object>)]
    pub audit_records: Vec<Value>,
    /// True when more audit records exist than were exported.
    pub audit_records_truncated: bool,
}

/// Most audit records one export carries (newest kept out beyond it, flagged `truncated`).
pub const MAX_EXPORTED_AUDIT_RECORDS: i64 = 5000;

fn session_json(r: &Row) -> Result<Value, SqlError> {
    let methods = r.text("auth_methods")?;
    Ok(json!({
        "id": r.text("id")?,
        "session_id": r.text("family_id")?,
        "app_id": r.opt_text("app_id")?,
        "status": r.text("status")?,
        "auth_methods": serde_json::from_str::<Value>(&methods).unwrap_or(Value::Null),
        "created_at": r.i64("created_at")?,
        "expires_at": r.i64("expires_at")?,
        "last_used_at": r.opt_i64("last_used_at")?,
        "revoked_at": r.opt_i64("revoked_at")?,
        "revoked_reason": r.opt_text("revoked_reason")?,
    }))
}

fn audit_json(r: &Row) -> Result<Value, SqlError> {
    let metadata = r.text("metadata")?;
    Ok(json!({
        "id": r.text("id")?,
        "occurred_at": r.i64("occurred_at")?,
        "action": r.text("action")?,
        "resource": r.text("resource")?,
        "outcome": r.text("outcome")?,
        "request_id": r.opt_text("request_id")?,
        "metadata": serde_json::from_str::<Value>(&metadata).unwrap_or(Value::Null),
    }))
}

/// Everything Edgeplane holds about user `user_id` of `tenant_id`: the profile (no credential
/// hashes or secrets), the sessions, the invitations, and the audit records they are the actor
/// of (oldest first, at most [`MAX_EXPORTED_AUDIT_RECORDS`]). The export itself is audited.
pub async fn export_user_data<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
    request_id: &str,
) -> Result<PersonalDataExport, UserAdminError> {
    let profile = profile(p, tenant_id, user_id).await?;
    let sessions = sessions(p, user_id).await?;
    let invitations = invitations(p, user_id).await?;
    let (audit_records, truncated) = audit_records(p, tenant_id, user_id).await?;
    let rec = AuditRecord::success(
        "user.export",
        &Actor::user(user_id),
        Some(tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("sessions", sessions.len())
    .with("audit_records", audit_records.len());
    audit::record(p, &rec).await?;
    Ok(PersonalDataExport {
        format: EXPORT_FORMAT,
        profile,
        sessions,
        invitations,
        audit_records,
        audit_records_truncated: truncated,
    })
}

/// The user's row as exported (no secret columns), or `NotFound` outside the tenant.
async fn profile<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<Value, UserAdminError> {
    let users = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, tenant_id, email, display_name, role, status, mfa_enabled,
                   password_changed_at, last_login_at, external_issuer, external_subject,
                   created_at, updated_at
                 FROM users WHERE id = ?1 AND tenant_id = ?2",
            )
            .bind(user_id)
            .bind(tenant_id),
        )
        .await?;
    let u = users.first().ok_or(UserAdminError::NotFound)?;
    Ok(json!({
        "id": u.text("id")?,
        "tenant_id": u.text("tenant_id")?,
        "email": u.opt_text("email")?,
        "display_name": u.opt_text("display_name")?,
        "role": u.text("role")?,
        "status": u.text("status")?,
        "mfa_enabled": u.i64("mfa_enabled")? != 0,
        "password_changed_at": u.opt_i64("password_changed_at")?,
        "last_login_at": u.opt_i64("last_login_at")?,
        "external_issuer": u.opt_text("external_issuer")?,
        "external_subject": u.opt_text("external_subject")?,
        "created_at": u.i64("created_at")?,
        "updated_at": u.i64("updated_at")?,
    }))
}

/// The user's sessions, oldest first.
async fn sessions<P: Platform>(p: &P, user_id: &str) -> Result<Vec<Value>, SqlError> {
    p.sql()
        .query(
            Stmt::new(
                "SELECT id, family_id, app_id, status, auth_methods, created_at, expires_at,
                   last_used_at, revoked_at, revoked_reason
                 FROM sessions WHERE user_id = ?1 ORDER BY created_at, id",
            )
            .bind(user_id),
        )
        .await?
        .iter()
        .map(session_json)
        .collect()
}

/// The user's invitations, oldest first.
async fn invitations<P: Platform>(p: &P, user_id: &str) -> Result<Vec<Value>, SqlError> {
    p.sql()
        .query(
            Stmt::new(
                "SELECT id, email, role, status, created_at, expires_at, accepted_at
                 FROM invitations WHERE user_id = ?1 ORDER BY created_at",
            )
            .bind(user_id),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(json!({
                "id": r.text("id")?,
                "email": r.text("email")?,
                "role": r.text("role")?,
                "status": r.text("status")?,
                "created_at": r.i64("created_at")?,
                "expires_at": r.i64("expires_at")?,
                "accepted_at": r.opt_i64("accepted_at")?,
            }))
        })
        .collect()
}

/// The audit records the user made in the tenant, oldest first, at most
/// [`MAX_EXPORTED_AUDIT_RECORDS`]; true when more exist.
async fn audit_records<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<(Vec<Value>, bool), SqlError> {
    let mut records = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, occurred_at, action, resource, outcome, request_id, metadata
                 FROM audit_outbox WHERE actor_id = ?1 AND tenant_id = ?2
                 ORDER BY seq LIMIT ?3",
            )
            .bind(user_id)
            .bind(tenant_id)
            .bind(MAX_EXPORTED_AUDIT_RECORDS + 1),
        )
        .await?
        .iter()
        .map(audit_json)
        .collect::<Result<Vec<_>, _>>()?;
    let max = usize::try_from(MAX_EXPORTED_AUDIT_RECORDS).unwrap_or(usize::MAX);
    let truncated = records.len() > max;
    records.truncate(max);
    Ok((records, truncated))
}
