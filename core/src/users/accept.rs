//! Invitation acceptance (FR-TENANT-001): the invitee sets a password under the tenant's policy
//! and becomes active. This is how a provisioned owner first signs in.

use super::{checked_hash, PasswordRefused, PolicyRule};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// Longest invitation token accepted, in bytes (ours are 43).
const MAX_TOKEN_BYTES: usize = 128;

/// Who accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The now active user.
    pub user_id: String,
    /// Their tenant.
    pub tenant_id: String,
    /// Their role.
    pub role: String,
}

/// Why an invitation could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AcceptInvitationError {
    /// No invitation has this token.
    #[error("no invitation matches this token")]
    NotFound,
    /// The invitation was already accepted or was revoked.
    #[error("the invitation is no longer pending")]
    NotPending,
    /// The invitation expired (ERR-VAL-422); it is now marked expired.
    #[error("the invitation has expired")]
    Expired,
    /// The tenant is suspended or being deleted.
    #[error("the tenant is not active")]
    TenantNotActive,
    /// The password breaks the policy (ERR-VAL-422).
    #[error("the password breaks the password policy")]
    Policy(Vec<PolicyRule>),
    /// Hashing or storage failed.
    #[error("invitation storage failed: {0}")]
    Storage(String),
}

impl AcceptInvitationError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            AcceptInvitationError::NotFound => "invitation_not_found",
            AcceptInvitationError::NotPending => "invitation_not_pending",
            AcceptInvitationError::Expired => "invitation_expired",
            AcceptInvitationError::TenantNotActive => "tenant_not_active",
            AcceptInvitationError::Policy(_) => "password_policy",
            AcceptInvitationError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AcceptInvitationError::NotFound => ErrorKind::NotFound,
            AcceptInvitationError::NotPending => ErrorKind::Refused,
            AcceptInvitationError::Expired => ErrorKind::Refused,
            AcceptInvitationError::TenantNotActive => ErrorKind::Refused,
            AcceptInvitationError::Policy(_) => ErrorKind::Refused,
            AcceptInvitationError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(AcceptInvitationError);

impl From<SqlError> for AcceptInvitationError {
    fn from(e: SqlError) -> Self {
        AcceptInvitationError::Storage(e.to_string())
    }
}

impl From<PasswordRefused> for AcceptInvitationError {
    fn from(e: PasswordRefused) -> Self {
        match e {
            PasswordRefused::Policy(rules) => AcceptInvitationError::Policy(rules),
            PasswordRefused::Internal(e) => AcceptInvitationError::Storage(e),
        }
    }
}

/// Accepts the invitation of `token` with `new_password`: one batch marks it accepted,
/// activates the user with the password hash, records the password history and audits
/// `invitation.accept`. An expired invitation is marked expired (audited) and refused.
pub async fn accept_invitation<P: Platform>(
    p: &P,
    token: &str,
    new_password: &str,
    request_id: &str,
) -> Result<Accepted, AcceptInvitationError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(AcceptInvitationError::NotFound);
    }
    let now = p.clock().now_ms();
    let inv = load_acceptable(p, token, now, request_id).await?;
    let hash = checked_hash(
        p,
        &inv.accepted.tenant_id,
        &inv.accepted.user_id,
        new_password,
    )
    .await?;
    let stmts = accept_batch(p, &inv, &hash, now, request_id);
    let counts = p.sql().batch(stmts).await?;
    if counts.first().copied() != Some(1) {
        return Err(AcceptInvitationError::NotPending);
    }
    Ok(inv.accepted)
}

/// A pending invitation of an active tenant, and who accepting it makes active.
struct Acceptable {
    /// The invitation.
    invitation_id: String,
    /// The user, tenant and role it activates.
    accepted: Accepted,
}

/// The invitation of `token` if it may be accepted now: pending, unexpired (an expired one is
/// marked so, audited `invitation.expire`), its tenant active.
async fn load_acceptable<P: Platform>(
    p: &P,
    token: &str,
    now: i64,
    request_id: &str,
) -> Result<Acceptable, AcceptInvitationError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT i.id, i.tenant_id, i.user_id, i.role, i.status, i.expires_at,
                        t.status AS tenant_status
                 FROM invitations i JOIN tenants t ON t.id = i.tenant_id
                 WHERE i.token_hash = ?1",
            )
            .bind(crypto::token_hash(token)),
        )
        .await?;
    let row = rows.first().ok_or(AcceptInvitationError::NotFound)?;
    let invitation_id = row.text("id")?;
    let tenant_id = row.text("tenant_id")?;
    let user_id = row
        .opt_text("user_id")?
        .ok_or(AcceptInvitationError::NotFound)?;
    match row.text("status")?.as_str() {
        "pending" => {}
        // Marked by the expiry job (FR-TENANT-001): still an expiry, not a used invitation.
        "expired" => return Err(AcceptInvitationError::Expired),
        _ => return Err(AcceptInvitationError::NotPending),
    }
    if row.i64("expires_at")? <= now {
        mark_expired(p, &tenant_id, &invitation_id, now, request_id).await?;
        return Err(AcceptInvitationError::Expired);
    }
    if row.text("tenant_status")? != "active" {
        return Err(AcceptInvitationError::TenantNotActive);
    }
    Ok(Acceptable {
        invitation_id,
        accepted: Accepted {
            user_id,
            tenant_id,
            role: row.text("role")?,
        },
    })
}

/// Marks a pending invitation found past its expiry `expired`, audited as the expiry job would.
async fn mark_expired<P: Platform>(
    p: &P,
    tenant_id: &str,
    invitation_id: &str,
    now: i64,
    request_id: &str,
) -> Result<(), SqlError> {
    let record = AuditRecord::success(
        "invitation.expire",
        &Actor::system("invitation-expiry"),
        Some(tenant_id),
        format!("invitation:{invitation_id}"),
        Some(request_id),
    );
    p.sql()
        .batch(vec![
            Stmt::new(
                "UPDATE invitations SET status = 'expired' WHERE id = ?1 AND status = 'pending'",
            )
            .bind(invitation_id),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}

/// The acceptance batch: the invitation accepted, the user activated with password `hash`, the
/// password's history and `invitation.accept`, the last three only for the request that
/// accepted.
fn accept_batch<P: Platform>(
    p: &P,
    inv: &Acceptable,
    hash: &str,
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let user_id = inv.accepted.user_id.as_str();
    let record = AuditRecord::success(
        "invitation.accept",
        &Actor::user(user_id),
        Some(&inv.accepted.tenant_id),
        format!("invitation:{}", inv.invitation_id),
        Some(request_id),
    )
    .with("user_id", user_id);
    vec![
        Stmt::new(
            "UPDATE invitations SET status = 'accepted', accepted_at = ?2
             WHERE id = ?1 AND status = 'pending'",
        )
        .bind(inv.invitation_id.as_str())
        .bind(now),
        // Activation and the password apply only for the request whose UPDATE above accepted
        // the invitation: a concurrent acceptance (same token) finds the user active and
        // changes nothing.
        Stmt::new(
            "UPDATE users SET status = 'active', password_hash = ?2, password_changed_at = ?3,
               updated_at = ?3, failed_logins = 0, version = version + 1
             WHERE id = ?1 AND status = 'invited'",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now),
        Stmt::new(
            "INSERT INTO password_history (user_id, password_hash, created_at)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1 AND password_hash = ?2)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now),
        outbox_insert_if_password(&record, &audit::new_event_id(p), now, user_id, hash),
    ]
}

/// The audit row of `record`, written only if user `user_id` now has password `hash` (salted,
/// so this acceptance's own): placed after the activation, it exists exactly when this request
/// accepted, and a concurrent acceptance that lost leaves no record.
fn outbox_insert_if_password(
    record: &AuditRecord,
    id: &str,
    now_ms: i64,
    user_id: &str,
    hash: &str,
) -> Stmt {
    let sql = concat!(
        crate::audit_outbox_columns!(),
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         WHERE EXISTS (SELECT 1 FROM users WHERE id = ?11 AND password_hash = ?12)"
    );
    audit::bind_row(Stmt::new(sql), record, id, now_ms)
        .bind(user_id)
        .bind(hash)
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::testing::{TestPlatform, START_MS};

    /// FR-TENANT-001, FR-LOG-003: of two concurrent acceptances of one invitation, only the one
    /// that activated the user leaves an `invitation.accept` record.
    #[test]
    fn fr_tenant_001_a_lost_acceptance_race_leaves_no_audit_record() {
        block_on(async {
            let p = TestPlatform::new().await;
            let token_hash = crypto::token_hash("tok");
            p.sql
                .exec_raw(&format!(
                    "INSERT INTO tenants (id, name, domain, plan, created_at, updated_at)
                       VALUES ('t-1', 'Acme', 'acme', 'free', 0, 0);
                     INSERT INTO users (id, tenant_id, email, role, status, created_at, updated_at)
                       VALUES ('u-1', 't-1', 'a@acme.test', 'user', 'invited', 0, 0);
                     INSERT INTO invitations (id, tenant_id, user_id, email, role, token_hash,
                       status, created_at, expires_at)
                       VALUES ('i-1', 't-1', 'u-1', 'a@acme.test', 'user', '{token_hash}',
                         'pending', 0, {})",
                    START_MS * 2
                ))
                .unwrap();
            // Both requests read the invitation as pending before either writes.
            let first = load_acceptable(&p, "tok", START_MS, "r1").await.unwrap();
            let second = load_acceptable(&p, "tok", START_MS, "r2").await.unwrap();
            let won = p
                .sql
                .batch(accept_batch(&p, &first, "hash-1", START_MS, "r1"))
                .await
                .unwrap();
            let lost = p
                .sql
                .batch(accept_batch(&p, &second, "hash-2", START_MS, "r2"))
                .await
                .unwrap();
            assert_eq!((won[0], lost[0]), (1, 0));
            let rows = p
                .sql
                .query(Stmt::new(
                    "SELECT request_id FROM audit_outbox WHERE action = 'invitation.accept'",
                ))
                .await
                .unwrap();
            let ids: Vec<String> = rows.iter().map(|r| r.text("request_id").unwrap()).collect();
            assert_eq!(ids, ["r1"]);
        });
    }
}
