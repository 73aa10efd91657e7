//! Invitations by owners and admins (UC-TENANT-INVITE, UC-TENANT-INVITE-RESEND; FR-TENANT-001,
//! FR-TENANT-007): a user row with status `invited` and a single-use invitation (token hashed at
//! rest, configurable expiry, default 7 days) in one batch with its audit row, then the mail
//! through the `Mailer` port. A resend revokes the pending invitation and issues a fresh one.
//! The expiry job marks pending invitations past their expiry `expired`.

use serde::Serialize;
use utoipa::ToSchema;

use super::admin::{TenantActor, TenantRole};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::kernel::Email;
use crate::kernel::ErrorKind;
use crate::kernel::Links;
use crate::mail;
use crate::ports::{Clock, MailError, Mailer, Platform, Sql, SqlError, Stmt};

/// Default validity of an invitation, in days (FR-TENANT-001).
pub const DEFAULT_EXPIRY_DAYS: u32 = 7;
/// Longest validity an inviter may choose, in days.
pub const MAX_EXPIRY_DAYS: u32 = 30;
/// Most invitations one expiry run marks (one batch).
pub const EXPIRY_BATCH: i64 = 200;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// An invitation request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Whom to invite.
    pub email: Email,
    /// `admin` or `user` (UC-TENANT-INVITE).
    pub role: TenantRole,
    /// Validity in days, 1 to [`MAX_EXPIRY_DAYS`] (default [`DEFAULT_EXPIRY_DAYS`]).
    pub expires_in_days: Option<u32>,
}

/// An invitation issued (or reissued).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Invitation {
    /// The invitation id.
    pub invitation_id: String,
    /// The invited user (status invited).
    pub user_id: String,
    /// The invitee's address.
    pub email: String,
    /// The role the user gets.
    pub role: String,
    /// Always `pending`.
    #[schema(inline)]
    pub status: Pending,
    /// When it expires (unix ms).
    pub expires_at: i64,
    /// The invitation this one replaces (resend).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub previous_invitation_id: Option<String>,
    /// `sent`, or `failed` when the mailer refused (resend later).
    #[schema(inline)]
    pub mail: MailOutcome,
    /// Why the mail failed, for the log only.
    #[serde(skip)]
    pub mail_error: Option<MailError>,
}

/// The status of an invitation just issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pending {
    /// Waiting for the invitee.
    Pending,
}

/// Whether the invitation mail went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailOutcome {
    /// The mailer accepted it.
    Sent,
    /// The mailer refused it (resend later).
    Failed,
}

/// Why an invitation was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InviteError {
    /// The actor may not do this (ERR-AUTH-403); the reason is the code.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// No such invitation in this tenant (ERR-RES-404).
    #[error("no such invitation in this tenant")]
    NotFound,
    /// The address already has a user in the tenant (ERR-VAL-409).
    #[error("a user with this email already exists in the tenant")]
    Duplicate,
    /// Only `admin` and `user` can be invited.
    #[error("role must be admin or user")]
    InvalidRole,
    /// The expiry is out of range.
    #[error("expires_in_days must be between 1 and 30")]
    InvalidExpiry,
    /// The invitation was accepted or revoked, or its user is no longer invited (ERR-VAL-422).
    #[error("the invitation cannot be resent: {0}")]
    NotResendable(&'static str),
    /// The tenant is suspended or being deleted.
    #[error("the tenant is not active")]
    TenantNotActive,
    /// The database failed.
    #[error("invitation storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl InviteError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            InviteError::Forbidden(reason) | InviteError::NotResendable(reason) => reason,
            InviteError::NotFound => "invitation_not_found",
            InviteError::Duplicate => "duplicate_email",
            InviteError::InvalidRole => "invalid_role",
            InviteError::InvalidExpiry => "invalid_expiry",
            InviteError::TenantNotActive => "tenant_not_active",
            InviteError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            InviteError::Forbidden(_) => ErrorKind::Forbidden,
            InviteError::NotResendable(_) => ErrorKind::Refused,
            InviteError::NotFound => ErrorKind::NotFound,
            InviteError::Duplicate => ErrorKind::Conflict,
            InviteError::InvalidRole => ErrorKind::InvalidField("role"),
            InviteError::InvalidExpiry => ErrorKind::InvalidField("expires_in_days"),
            InviteError::TenantNotActive => ErrorKind::Refused,
            InviteError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(InviteError);

fn expiry_ms(days: Option<u32>) -> Result<i64, InviteError> {
    let days = days.unwrap_or(DEFAULT_EXPIRY_DAYS);
    if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
        return Err(InviteError::InvalidExpiry);
    }
    Ok(i64::from(days) * DAY_MS)
}

/// The tenant's display name, if it is active.
async fn active_tenant_name<P: Platform>(p: &P, tenant_id: &str) -> Result<String, InviteError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT name, status FROM tenants WHERE id = ?1").bind(tenant_id))
        .await?;
    match rows.first() {
        Some(r) if r.text("status")? == "active" => Ok(r.text("name")?),
        _ => Err(InviteError::TenantNotActive),
    }
}

async fn refuse<P: Platform>(
    p: &P,
    by: &TenantActor,
    action: &'static str,
    resource: String,
    request_id: &str,
    e: InviteError,
) -> InviteError {
    let rec = AuditRecord::failure(
        action,
        &by.actor(),
        Some(&by.tenant_id),
        resource,
        Some(request_id),
    )
    .with("reason", e.code());
    audit::record_refusal(p, &rec).await;
    e
}

async fn send_mail<P: Platform>(
    p: &P,
    tenant_name: &str,
    inv: &mut Invitation,
    token: &str,
    links: &Links,
) {
    let link = links.invitation(token);
    let m = mail::invitation_mail(&inv.email, tenant_name, &inv.role, &link, inv.expires_at);
    match p.mailer().send(&m).await {
        Ok(()) => inv.mail = MailOutcome::Sent,
        Err(e) => {
            inv.mail = MailOutcome::Failed;
            inv.mail_error = Some(e);
        }
    }
}

/// Invites `req.email` to the actor's tenant (FR-TENANT-001): the user (invited) and the
/// invitation in one batch with `user.invite` audited (no email in the audit row), then the mail
/// with the link to the invitation page ([`Links::invitation`]). An address that already has a user in the tenant is refused
/// (audited failure). A mail failure leaves the invitation in place (`mail: failed`).
pub async fn invite<P: Platform>(
    p: &P,
    by: &TenantActor,
    req: &Invite,
    links: &Links,
    request_id: &str,
) -> Result<Invitation, InviteError> {
    if req.role == TenantRole::Owner {
        return Err(InviteError::InvalidRole);
    }
    let ttl = expiry_ms(req.expires_in_days)?;
    let tenant_name = active_tenant_name(p, &by.tenant_id).await?;
    refuse_existing_user(p, by, &req.email, request_id).await?;
    let now = p.clock().now_ms();
    let user_id = ids::new_ordered_id(p.clock(), p.random());
    let invitation_id = ids::new_ordered_id(p.clock(), p.random());
    let token = crypto::random_token(p.random());
    let mut inv = Invitation {
        invitation_id,
        user_id,
        email: req.email.as_str().to_owned(),
        role: req.role.as_str().to_owned(),
        status: Pending::Pending,
        expires_at: now + ttl,
        previous_invitation_id: None,
        mail: MailOutcome::Failed,
        mail_error: None,
    };
    let rec = AuditRecord::success(
        "user.invite",
        &by.actor(),
        Some(&by.tenant_id),
        format!("user:{}", inv.user_id),
        Some(request_id),
    )
    .with("invitation_id", inv.invitation_id.as_str())
    .with("role", req.role.as_str())
    .with("expires_at", inv.expires_at);
    let written = p
        .sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO users (id, tenant_id, email, role, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'invited', ?5, ?5)",
            )
            .bind(inv.user_id.as_str())
            .bind(by.tenant_id.as_str())
            .bind(req.email.as_str())
            .bind(req.role.as_str())
            .bind(now),
            invitation_insert(by, &inv, &token, now),
            audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        ])
        .await;
    match written {
        Ok(_) => {}
        // A concurrent invitation of the same address won the unique index.
        Err(SqlError::Constraint(_)) => return Err(InviteError::Duplicate),
        Err(e) => return Err(e.into()),
    }
    send_mail(p, &tenant_name, &mut inv, &token, links).await;
    Ok(inv)
}

/// Refuses (audited) an address that already has a user in the actor's tenant.
async fn refuse_existing_user<P: Platform>(
    p: &P,
    by: &TenantActor,
    email: &Email,
    request_id: &str,
) -> Result<(), InviteError> {
    let existing = p
        .sql()
        .query(
            Stmt::new("SELECT id FROM users WHERE tenant_id = ?1 AND email = ?2")
                .bind(by.tenant_id.as_str())
                .bind(email.as_str()),
        )
        .await?;
    let Some(row) = existing.first() else {
        return Ok(());
    };
    let resource = format!("user:{}", row.text("id")?);
    Err(refuse(
        p,
        by,
        "user.invite",
        resource,
        request_id,
        InviteError::Duplicate,
    )
    .await)
}

/// The INSERT of the pending invitation `inv` by `by` (only the token's hash is stored).
fn invitation_insert(by: &TenantActor, inv: &Invitation, token: &str, now: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO invitations (id, tenant_id, user_id, email, role, token_hash, status,
           invited_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)",
    )
    .bind(inv.invitation_id.as_str())
    .bind(by.tenant_id.as_str())
    .bind(inv.user_id.as_str())
    .bind(inv.email.as_str())
    .bind(inv.role.as_str())
    .bind(crypto::token_hash(token))
    .bind(by.user_id.as_str())
    .bind(now)
    .bind(inv.expires_at)
}

/// Resends invitation `invitation_id` (FR-TENANT-007): if it is pending or expired and its user
/// still invited, one batch revokes every pending invitation of the user (the old token stops
/// working), inserts a fresh one with a new token and expiry, and audits `invitation.resend`;
/// then the mail. Admins cannot resend an owner's invitation.
pub async fn resend<P: Platform>(
    p: &P,
    by: &TenantActor,
    invitation_id: &str,
    expires_in_days: Option<u32>,
    links: &Links,
    request_id: &str,
) -> Result<Invitation, InviteError> {
    let ttl = expiry_ms(expires_in_days)?;
    let (user_id, email, role) = resendable(p, by, invitation_id, request_id).await?;
    let tenant_name = active_tenant_name(p, &by.tenant_id).await?;
    let now = p.clock().now_ms();
    let new_id = ids::new_ordered_id(p.clock(), p.random());
    let token = crypto::random_token(p.random());
    let mut inv = Invitation {
        invitation_id: new_id,
        user_id,
        email,
        role,
        status: Pending::Pending,
        expires_at: now + ttl,
        previous_invitation_id: Some(invitation_id.to_owned()),
        mail: MailOutcome::Failed,
        mail_error: None,
    };
    let rec = AuditRecord::success(
        RESEND_ACTION,
        &by.actor(),
        Some(&by.tenant_id),
        format!("user:{}", inv.user_id),
        Some(request_id),
    )
    .with("previous_invitation_id", invitation_id)
    .with("invitation_id", inv.invitation_id.as_str())
    .with("expires_at", inv.expires_at);
    p.sql()
        .batch(vec![
            Stmt::new(
                "UPDATE invitations SET status = 'revoked', revoked_at = ?2
                 WHERE user_id = ?1 AND status = 'pending'",
            )
            .bind(inv.user_id.as_str())
            .bind(now),
            invitation_insert(by, &inv, &token, now),
            audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        ])
        .await?;
    send_mail(p, &tenant_name, &mut inv, &token, links).await;
    Ok(inv)
}

/// The audited action of a resend.
const RESEND_ACTION: &str = "invitation.resend";

/// The user id, address and role of an invitation of the actor's tenant that `by` may resend:
/// pending or expired, its user still invited, and an owner's only by an owner (refusals
/// audited).
async fn resendable<P: Platform>(
    p: &P,
    by: &TenantActor,
    invitation_id: &str,
    request_id: &str,
) -> Result<(String, String, String), InviteError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT i.user_id, i.email, i.role, i.status, u.status AS user_status
                 FROM invitations i JOIN users u ON u.id = i.user_id
                 WHERE i.id = ?1 AND i.tenant_id = ?2",
            )
            .bind(invitation_id)
            .bind(by.tenant_id.as_str()),
        )
        .await?;
    let row = rows.first().ok_or(InviteError::NotFound)?;
    let user_id = row.text("user_id")?;
    let role = row.text("role")?;
    let resource = format!("invitation:{invitation_id}");
    if by.role != TenantRole::Owner && role == "owner" {
        let e = InviteError::Forbidden("target_is_owner");
        return Err(refuse(p, by, RESEND_ACTION, resource, request_id, e).await);
    }
    if !matches!(row.text("status")?.as_str(), "pending" | "expired") {
        let e = InviteError::NotResendable("invitation_not_resendable");
        return Err(refuse(p, by, RESEND_ACTION, resource, request_id, e).await);
    }
    if row.text("user_status")? != "invited" {
        let e = InviteError::NotResendable("user_not_invited");
        return Err(refuse(p, by, RESEND_ACTION, resource, request_id, e).await);
    }
    Ok((user_id, row.text("email")?, role))
}

/// An invitation as owners and admins list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvitationView {
    /// Invitation id.
    pub id: String,
    /// The invited user.
    pub user_id: Option<String>,
    /// The invitee's address.
    pub email: String,
    /// The role offered.
    pub role: String,
    /// `pending` or `expired` (only those are listed).
    #[schema(schema_with = listed_status_schema)]
    pub status: String,
    /// Created (unix ms).
    pub created_at: i64,
    /// Expires (unix ms).
    pub expires_at: i64,
}

fn listed_status_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&["pending", "expired"])
}

/// The tenant's pending and expired invitations, newest first (at most 100), audited as
/// `invitation.list` (they hold addresses, CON-SEC-002).
pub async fn list_invitations<P: Platform>(
    p: &P,
    by: &TenantActor,
    request_id: &str,
) -> Result<Vec<InvitationView>, InviteError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, user_id, email, role, status, created_at, expires_at FROM invitations
                 WHERE tenant_id = ?1 AND status IN ('pending', 'expired')
                 ORDER BY created_at DESC LIMIT 100",
            )
            .bind(by.tenant_id.as_str()),
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(InvitationView {
                id: r.text("id")?,
                user_id: r.opt_text("user_id")?,
                email: r.text("email")?,
                role: r.text("role")?,
                status: r.text("status")?,
                created_at: r.i64("created_at")?,
                expires_at: r.i64("expires_at")?,
            })
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    let rec = AuditRecord::success(
        "invitation.list",
        &by.actor(),
        Some(&by.tenant_id),
        "invitations",
        Some(request_id),
    )
    .with("count", items.len());
    audit::record(p, &rec).await?;
    Ok(items)
}

/// The expiry job (FR-TENANT-001): pending invitations whose expiry is at or before `now` are
/// marked `expired`, each audited `invitation.expire` by the system at its expiry time, at most
/// [`EXPIRY_BATCH`] per run. Returns how many were marked.
pub async fn expire_due<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    let rows = p.sql().query(expire_due_stmt(now)).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let actor = Actor::system("invitation-expiry");
    let mut stmts = Vec::with_capacity(rows.len() * 2);
    for r in &rows {
        let id = r.text("id")?;
        let tenant_id = r.text("tenant_id")?;
        // The fact dates from the expiry itself, not from whenever the job noticed it.
        let expired_at = r.i64("expires_at")?;
        let rec = AuditRecord::success(
            "invitation.expire",
            &actor,
            Some(&tenant_id),
            format!("invitation:{id}"),
            None,
        );
        stmts.push(
            Stmt::new(
                "UPDATE invitations SET status = 'expired' WHERE id = ?1 AND status = 'pending'",
            )
            .bind(id.as_str()),
        );
        stmts.push(audit::outbox_insert(
            &rec,
            &audit::new_event_id(p),
            expired_at,
        ));
    }
    let counts = p.sql().batch(stmts).await?;
    Ok(counts.iter().step_by(2).sum())
}

/// The due pending invitations, on the partial index `invitations_pending_expires`.
pub(crate) fn expire_due_stmt(now: i64) -> Stmt {
    Stmt::new(
        "SELECT id, tenant_id, expires_at FROM invitations
         WHERE status = 'pending' AND expires_at <= ?1
         ORDER BY expires_at LIMIT ?2",
    )
    .bind(now)
    .bind(EXPIRY_BATCH)
}
