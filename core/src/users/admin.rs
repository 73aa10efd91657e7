//! Tenant user administration by owners and admins (UC-TENANT-USER-UPDATE,
//! UC-TENANT-USER-STATUS-UPDATE, UC-TENANT-USER-DELETE; FR-TENANT-002/004/006): the user list
//! (keyset pages on the tenant indexes), one user, role and status changes, and erasure.
//!
//! Rules, checked against D1 (an access token's role may be stale): the acting user must be an
//! active owner or admin of the tenant; only an owner grants or removes `owner`; an admin acts on
//! no owner; the tenant keeps at least one active owner (a guard inside the UPDATE itself, so two
//! owners demoting each other at once cannot both win). Every role change, disable and deletion
//! revokes the target's sessions in the same batch as the change, then writes the KV markers the
//! edge reads (`session:{sid}:revoked`, `user:{id}:status`). Reads of personal data are audited
//! too (CON-SEC-002).

use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::edge;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Random, Row, Sql, SqlError, Stmt};
use crate::sessions::{
    active_sids, mark_sessions_revoked, user_marker_key, SESSION_MARKER_TTL_SECS,
};

/// Default page size of the user list.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of the user list.
pub const MAX_LIMIT: u32 = 100;
/// Longest email search prefix, in characters.
const MAX_QUERY_CHARS: usize = 254;

/// A tenant role (FR-TENANT-004).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRole {
    /// Full access, including the plan.
    Owner,
    /// User management and configuration.
    Admin,
    /// The managed applications only.
    User,
}

impl TenantRole {
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(TenantRole::Owner),
            "admin" => Some(TenantRole::Admin),
            "user" => Some(TenantRole::User),
            _ => None,
        }
    }

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TenantRole::Owner => "owner",
            TenantRole::Admin => "admin",
            TenantRole::User => "user",
        }
    }
}

/// A user's status (`users.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Invited, not accepted yet.
    Invited,
    /// Can sign in.
    Active,
    /// Blocked by an owner or admin (FR-TENANT-006).
    Disabled,
    /// Erased (FR-TENANT-002, CON-COMP-001): a pseudonymous tombstone.
    Deleted,
}

impl UserStatus {
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(UserStatus::Invited),
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            "deleted" => Some(UserStatus::Deleted),
            _ => None,
        }
    }

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Deleted => "deleted",
        }
    }
}

/// The acting tenant user, as D1 knows them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantActor {
    /// Their user id.
    pub user_id: String,
    /// Their tenant.
    pub tenant_id: String,
    /// Their current role.
    pub role: TenantRole,
}

impl TenantActor {
    /// The audit actor.
    pub fn actor(&self) -> Actor {
        Actor::user(&self.user_id)
    }
}

/// Why an administration request was refused. Nothing was written unless said.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserAdminError {
    /// No such user in this tenant (ERR-RES-404: another tenant's user is not found either).
    #[error("no such user in this tenant")]
    NotFound,
    /// The actor may not do this (ERR-AUTH-403); the reason is the code.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// The change would leave the tenant without an active owner (ERR-VAL-422).
    #[error("the tenant must keep at least one active owner")]
    LastOwner,
    /// The user's state does not allow this change (ERR-VAL-422); the reason is the code.
    #[error("the user cannot be changed this way: {0}")]
    NotChangeable(&'static str),
    /// The page size is out of range.
    #[error("limit must be between 1 and {max}")]
    InvalidLimit {
        /// Largest allowed.
        max: u32,
    },
    /// The cursor was not produced by this list (or by another filter).
    #[error("cursor is not valid")]
    InvalidCursor,
    /// The search prefix is too long.
    #[error("q must be at most 254 characters")]
    QueryTooLong,
    /// Another change of the user won the race; the caller may retry.
    #[error("the user changed concurrently")]
    ConcurrentChange,
    /// The database failed; nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
    /// D1 holds the change but an edge marker could not be written (repeat to retry).
    #[error("changed, but the edge markers were not written: {0}")]
    EdgePending(String),
}

impl UserAdminError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            UserAdminError::NotFound => "user_not_found",
            UserAdminError::Forbidden(reason) | UserAdminError::NotChangeable(reason) => reason,
            UserAdminError::LastOwner => "last_owner",
            UserAdminError::InvalidLimit { .. } => "invalid_limit",
            UserAdminError::InvalidCursor => "invalid_cursor",
            UserAdminError::QueryTooLong => "query_too_long",
            UserAdminError::ConcurrentChange => "concurrent_change",
            UserAdminError::Storage(_) => "storage",
            UserAdminError::EdgePending(_) => "edge_pending",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UserAdminError::NotFound => ErrorKind::NotFound,
            UserAdminError::Forbidden(_) => ErrorKind::Forbidden,
            UserAdminError::NotChangeable(_) => ErrorKind::Refused,
            UserAdminError::LastOwner => ErrorKind::Refused,
            UserAdminError::InvalidLimit { .. } => ErrorKind::InvalidField("limit"),
            UserAdminError::InvalidCursor => ErrorKind::InvalidField("cursor"),
            UserAdminError::QueryTooLong => ErrorKind::InvalidField("q"),
            UserAdminError::ConcurrentChange => ErrorKind::Conflict,
            UserAdminError::Storage(_) => ErrorKind::Internal,
            UserAdminError::EdgePending(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(UserAdminError);

/// A tenant user as owners and admins see them. An erased user has no email or name, only
/// the pseudonym their history resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = TenantUser)]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Email; `None` once erased.
    pub email: Option<String>,
    /// Display name, if any.
    pub display_name: Option<String>,
    /// Tenant role: `owner`, `admin` or `user`.
    #[schema(schema_with = role_schema)]
    pub role: String,
    /// `invited`, `active`, `disabled` or `deleted`.
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// Whether TOTP is on.
    pub mfa_enabled: bool,
    /// Set once the user is erased (`erased-...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub pseudonym: Option<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last changed (unix ms).
    pub updated_at: i64,
    /// Last sign-in (unix ms).
    pub last_login_at: Option<i64>,
    /// Optimistic-concurrency version.
    #[serde(skip)]
    pub version: i64,
}

/// The names of [`TenantRole`].
pub const ROLE_NAMES: [&str; 3] = [
    TenantRole::Owner.as_str(),
    TenantRole::Admin.as_str(),
    TenantRole::User.as_str(),
];

fn role_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&ROLE_NAMES)
}

fn status_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&[
        UserStatus::Invited.as_str(),
        UserStatus::Active.as_str(),
        UserStatus::Disabled.as_str(),
        UserStatus::Deleted.as_str(),
    ])
}

macro_rules! user_columns {
    () => {
        "id, email, display_name, role, status, mfa_enabled, pseudonym, created_at, updated_at,
         last_login_at, version"
    };
}

impl UserView {
    fn from_row(r: &Row) -> Result<Self, SqlError> {
        Ok(UserView {
            id: r.text("id")?,
            email: r.opt_text("email")?,
            display_name: r.opt_text("display_name")?,
            role: r.text("role")?,
            status: r.text("status")?,
            mfa_enabled: r.i64("mfa_enabled")? != 0,
            pseudonym: r.opt_text("pseudonym")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            last_login_at: r.opt_i64("last_login_at")?,
            version: r.i64("version")?,
        })
    }

    fn role(&self) -> Option<TenantRole> {
        TenantRole::parse(&self.role)
    }

    fn status(&self) -> Option<UserStatus> {
        UserStatus::parse(&self.status)
    }
}

/// Loads the acting user from D1 and checks they are an active owner or admin of `tenant_id`.
pub async fn authorize_admin<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<TenantActor, UserAdminError> {
    let actor = load_actor(p, tenant_id, user_id).await?;
    if actor.role == TenantRole::User {
        return Err(UserAdminError::Forbidden("not_admin"));
    }
    Ok(actor)
}

/// Loads the acting user from D1 and checks they are active in `tenant_id` (any role).
pub async fn load_actor<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<TenantActor, UserAdminError> {
    let user = load_user(p, tenant_id, user_id)
        .await?
        .ok_or(UserAdminError::Forbidden("not_active"))?;
    match (user.status(), user.role()) {
        (Some(UserStatus::Active), Some(role)) => Ok(TenantActor {
            user_id: user.id,
            tenant_id: tenant_id.to_owned(),
            role,
        }),
        _ => Err(UserAdminError::Forbidden("not_active")),
    }
}

/// One user of a tenant, `None` if the id is not a user of that tenant.
pub(crate) async fn load_user<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<Option<UserView>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE id = ?1 AND tenant_id = ?2"
            ))
            .bind(user_id)
            .bind(tenant_id),
        )
        .await?;
    rows.first().map(UserView::from_row).transpose()
}

/// The filters and position of a user list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUsers {
    /// Only this status (default: every status but `deleted`).
    pub status: Option<UserStatus>,
    /// Only this role.
    pub role: Option<TenantRole>,
    /// Email prefix, case-insensitive.
    pub q: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    pub limit: Option<u32>,
}

/// One page of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = TenantUserPage)]
pub struct UserPage {
    /// The users, by id (or by email when searching).
    pub items: Vec<UserView>,
    /// Pass back as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The statement of one page (one row more than the page, to know whether another follows).
/// Without a search it walks `users_tenant_status` (status filter) or `users_tenant_id` from
/// the cursor's id; a search walks `users_tenant_email` over the bounded range
/// `[q, q || U+10FFFF)` from the cursor's email. No OFFSET: a deep page costs what the first does.
pub(crate) fn list_stmt(tenant_id: &str, req: &ListUsers) -> Result<Stmt, UserAdminError> {
    let limit = page_limit(req.limit)?;
    let fetch = i64::from(limit) + 1;
    let q = req.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(UserAdminError::QueryTooLong);
    }
    let cursor = req
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, q.is_some()).ok_or(UserAdminError::InvalidCursor))
        .transpose()?;
    let role = req.role.map(TenantRole::as_str);
    let stmt = match (q, req.status) {
        (None, Some(status)) => Stmt::new(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = ?1 AND status = ?2 AND id > ?3
               AND (?4 IS NULL OR role = ?4)
             ORDER BY id LIMIT ?5"
        ))
        .bind(tenant_id)
        .bind(status.as_str())
        .bind(cursor.unwrap_or_default())
        .bind(role)
        .bind(fetch),
        (None, None) => Stmt::new(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = ?1 AND id > ?2 AND status <> 'deleted'
               AND (?3 IS NULL OR role = ?3)
             ORDER BY id LIMIT ?4"
        ))
        .bind(tenant_id)
        .bind(cursor.unwrap_or_default())
        .bind(role)
        .bind(fetch),
        (Some(q), status) => {
            let status = status.map(UserStatus::as_str);
            match cursor {
                None => Stmt::new(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id = ?1 AND email >= ?2 AND email < ?3
                       AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR role = ?5)
                     ORDER BY email LIMIT ?6"
                ))
                .bind(tenant_id)
                .bind(q.to_owned()),
                Some(after) => Stmt::new(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id = ?1 AND email > ?2 AND email < ?3
                       AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR role = ?5)
                     ORDER BY email LIMIT ?6"
                ))
                .bind(tenant_id)
                .bind(after),
            }
            .bind(prefix_end(q))
            .bind(status)
            .bind(role)
            .bind(fetch)
        }
    };
    Ok(stmt)
}

fn page_limit(limit: Option<u32>) -> Result<u32, UserAdminError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(UserAdminError::InvalidLimit { max: MAX_LIMIT });
    }
    Ok(limit)
}

/// The exclusive upper bound of a prefix range: the prefix followed by the largest character.
fn prefix_end(q: &str) -> String {
    let mut end = String::with_capacity(q.len() + 4);
    end.push_str(q);
    end.push(char::MAX);
    end
}

/// `i:<id>` for id order, `e:<email>` for search order, base64url.
fn encode_cursor(key: &str, search: bool) -> String {
    let tag = if search { "e" } else { "i" };
    crypto::b64url_encode(format!("{tag}:{key}").as_bytes())
}

fn decode_cursor(cursor: &str, search: bool) -> Option<String> {
    if cursor.len() > 400 {
        return None;
    }
    let text = String::from_utf8(crypto::b64url_decode(cursor)?).ok()?;
    let (tag, key) = text.split_once(':')?;
    let want = if search { "e" } else { "i" };
    (tag == want && !key.is_empty()).then(|| key.to_owned())
}

/// Lists a tenant's users (owner, admin): a keyset page, audited as `user.list` (a read of
/// personal data, CON-SEC-002; the search text is not recorded).
pub async fn list_users<P: Platform>(
    p: &P,
    by: &TenantActor,
    req: &ListUsers,
    request_id: &str,
) -> Result<UserPage, UserAdminError> {
    let stmt = list_stmt(&by.tenant_id, req)?;
    let limit = usize::try_from(page_limit(req.limit)?).unwrap_or(usize::MAX);
    let searching = req.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    let rows = p.sql().query(stmt).await?;
    let mut items = rows
        .iter()
        .map(UserView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = match items.last() {
        Some(last) if more && searching => last.email.as_deref().map(|e| encode_cursor(e, true)),
        Some(last) if more => Some(encode_cursor(&last.id, false)),
        _ => None,
    };
    let rec = AuditRecord::success(
        "user.list",
        &by.actor(),
        Some(&by.tenant_id),
        "users",
        Some(request_id),
    )
    .with("count", items.len())
    .with("status", req.status.map(UserStatus::as_str))
    .with("role", req.role.map(TenantRole::as_str))
    .with("search", searching);
    audit::record(p, &rec).await?;
    Ok(UserPage { items, next_cursor })
}

/// One user of the actor's tenant, audited as `user.read` (CON-SEC-002).
pub async fn get_user<P: Platform>(
    p: &P,
    by: &TenantActor,
    user_id: &str,
    request_id: &str,
) -> Result<UserView, UserAdminError> {
    let user = load_user(p, &by.tenant_id, user_id)
        .await?
        .ok_or(UserAdminError::NotFound)?;
    let rec = AuditRecord::success(
        "user.read",
        &by.actor(),
        Some(&by.tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    );
    audit::record(p, &rec).await?;
    Ok(user)
}

/// A role and/or status change; absent fields stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateUser {
    /// New role.
    pub role: Option<TenantRole>,
    /// New status: `Active` (enable) or `Disabled` (disable) only.
    pub status: Option<UserStatus>,
}

/// The audit row of `record` written only if user `user_id` has `version` when it runs: placed
/// after the guarded UPDATE that moves the user to `version`, it exists exactly when that did.
fn outbox_insert_if_user_version(
    record: &AuditRecord,
    id: &str,
    now_ms: i64,
    user_id: &str,
    version: i64,
) -> Stmt {
    let sql = concat!(
        crate::audit_outbox_columns!(),
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         WHERE EXISTS (SELECT 1 FROM users WHERE id = ?11 AND version = ?12)"
    );
    audit::bind_row(Stmt::new(sql), record, id, now_ms)
        .bind(user_id)
        .bind(version)
}

/// Audits a refusal by `by` of `action` on the user (outcome failure) and returns the error.
async fn refuse<P: Platform>(
    p: &P,
    by: &TenantActor,
    action: &'static str,
    user_id: &str,
    request_id: &str,
    e: UserAdminError,
) -> UserAdminError {
    let rec = AuditRecord::failure(
        action,
        &by.actor(),
        Some(&by.tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("reason", e.code());
    audit::record_refusal(p, &rec).await;
    e
}

/// Whether the tenant has an active owner other than `user_id`.
async fn other_owner_exists<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<bool, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT 1 AS found FROM users
                 WHERE tenant_id = ?1 AND role = 'owner' AND status = 'active' AND id <> ?2
                 LIMIT 1",
            )
            .bind(tenant_id)
            .bind(user_id),
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The rules every action of `by` on `target` obeys: an admin acts on no owner.
fn check_may_act(by: &TenantActor, target: &UserView) -> Result<(), UserAdminError> {
    if by.role != TenantRole::Owner && target.role() == Some(TenantRole::Owner) {
        return Err(UserAdminError::Forbidden("target_is_owner"));
    }
    Ok(())
}

/// The audited action of a role/status change (refusals; the changes audit their own).
const UPDATE_ACTION: &str = "user.update";

/// Changes a user's role and/or status (FR-TENANT-004, FR-TENANT-006). A role change or a
/// disable revokes every session of the user in the same batch (audited `user.role_update`,
/// `user.status_update`), then marks the sessions revoked at the edge; a disable also writes
/// the `user:{id}:status` marker `disabled`, an enable removes it.
pub async fn update_user<P: Platform>(
    p: &P,
    by: &TenantActor,
    user_id: &str,
    change: UpdateUser,
    request_id: &str,
) -> Result<UserView, UserAdminError> {
    let target = load_target(p, by, user_id).await?;
    let Some(ch) = decide_update(p, by, &target, change, request_id).await? else {
        return Ok(target);
    };
    ensure_owner_remains(p, by, UPDATE_ACTION, user_id, request_id, ch.loses_owner).await?;
    let sids = if ch.revokes_sessions() {
        active_sids(p, user_id).await?
    } else {
        Vec::new()
    };
    let now = p.clock().now_ms();
    let stmts = update_batch(p, by, &target, &ch, &sids, now, request_id);
    let counts = p.sql().batch(stmts).await?;
    check_applied(
        p,
        by,
        UPDATE_ACTION,
        user_id,
        request_id,
        ch.loses_owner,
        &counts,
    )
    .await?;
    sync_update_edge(p, user_id, &ch, &sids).await?;
    Ok(UserView {
        role: ch.new_role.as_str().to_owned(),
        status: ch.new_status.as_str().to_owned(),
        updated_at: now,
        version: target.version + 1,
        ..target
    })
}

/// A role and/or status change that the rules allow, old and new side by side.
struct RoleStatusChange {
    /// The role before.
    old_role: TenantRole,
    /// The role after.
    new_role: TenantRole,
    /// The status before.
    old_status: UserStatus,
    /// The status after.
    new_status: UserStatus,
    /// Whether the tenant loses an active owner by it.
    loses_owner: bool,
}

impl RoleStatusChange {
    /// Whether the role changes.
    fn role_changed(&self) -> bool {
        self.new_role != self.old_role
    }

    /// Whether the status changes.
    fn status_changed(&self) -> bool {
        self.new_status != self.old_status
    }

    /// Whether the user's sessions are revoked: a role change or a disable.
    fn revokes_sessions(&self) -> bool {
        self.role_changed() || self.new_status == UserStatus::Disabled
    }
}

/// The target user of an action by `by`, in `by`'s tenant, or `NotFound`.
async fn load_target<P: Platform>(
    p: &P,
    by: &TenantActor,
    user_id: &str,
) -> Result<UserView, UserAdminError> {
    load_user(p, &by.tenant_id, user_id)
        .await?
        .ok_or(UserAdminError::NotFound)
}

/// Checks `change` against the rules (refusals of the actor audited); `None` when it changes
/// nothing.
async fn decide_update<P: Platform>(
    p: &P,
    by: &TenantActor,
    target: &UserView,
    change: UpdateUser,
    request_id: &str,
) -> Result<Option<RoleStatusChange>, UserAdminError> {
    let user_id = target.id.as_str();
    let (Some(old_role), Some(old_status)) = (target.role(), target.status()) else {
        return Err(UserAdminError::NotFound);
    };
    if old_status == UserStatus::Deleted {
        return Err(UserAdminError::NotChangeable("user_deleted"));
    }
    if let Err(e) = check_may_act(by, target) {
        return Err(refuse(p, by, UPDATE_ACTION, user_id, request_id, e).await);
    }
    let new_role = change.role.unwrap_or(old_role);
    let new_status = change.status.unwrap_or(old_status);
    if new_role == TenantRole::Owner
        && old_role != TenantRole::Owner
        && by.role != TenantRole::Owner
    {
        let e = UserAdminError::Forbidden("owner_only");
        return Err(refuse(p, by, UPDATE_ACTION, user_id, request_id, e).await);
    }
    if !matches!(new_status, UserStatus::Active | UserStatus::Disabled) && new_status != old_status
    {
        return Err(UserAdminError::NotChangeable("invalid_status"));
    }
    if old_status == UserStatus::Invited && new_status != old_status {
        return Err(UserAdminError::NotChangeable("user_invited"));
    }
    if new_role == old_role && new_status == old_status {
        return Ok(None);
    }
    let loses_owner = old_role == TenantRole::Owner
        && old_status == UserStatus::Active
        && (new_role != TenantRole::Owner || new_status != UserStatus::Active);
    Ok(Some(RoleStatusChange {
        old_role,
        new_role,
        old_status,
        new_status,
        loses_owner,
    }))
}

/// Refuses (audited `LastOwner`) a change that takes the tenant's last active owner away.
async fn ensure_owner_remains<P: Platform>(
    p: &P,
    by: &TenantActor,
    action: &'static str,
    user_id: &str,
    request_id: &str,
    loses_owner: bool,
) -> Result<(), UserAdminError> {
    if loses_owner && !other_owner_exists(p, &by.tenant_id, user_id).await? {
        let e = UserAdminError::LastOwner;
        return Err(refuse(p, by, action, user_id, request_id, e).await);
    }
    Ok(())
}

/// Refuses a batch whose guarded first UPDATE did not apply: the last owner went meanwhile, or
/// another change of the user won the race.
async fn check_applied<P: Platform>(
    p: &P,
    by: &TenantActor,
    action: &'static str,
    user_id: &str,
    request_id: &str,
    loses_owner: bool,
    counts: &[u64],
) -> Result<(), UserAdminError> {
    if counts.first().copied() == Some(1) {
        return Ok(());
    }
    ensure_owner_remains(p, by, action, user_id, request_id, loses_owner).await?;
    Err(UserAdminError::ConcurrentChange)
}

/// The batch of a role/status change: the guarded UPDATE, the pending invitation's role, the
/// session revocation and the audit records, each after the first guarded on the new version.
fn update_batch<P: Platform>(
    p: &P,
    by: &TenantActor,
    target: &UserView,
    ch: &RoleStatusChange,
    sids: &[String],
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let user_id = target.id.as_str();
    let new_version = target.version + 1;
    let mut stmts = vec![Stmt::new(
        "UPDATE users SET role = ?3, status = ?4, updated_at = ?5, version = version + 1
         WHERE id = ?1 AND tenant_id = ?2 AND version = ?6
           AND (?7 = 0 OR EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = ?2
                AND o.role = 'owner' AND o.status = 'active' AND o.id <> ?1))",
    )
    .bind(user_id)
    .bind(by.tenant_id.as_str())
    .bind(ch.new_role.as_str())
    .bind(ch.new_status.as_str())
    .bind(now)
    .bind(target.version)
    .bind(ch.loses_owner)];
    if ch.role_changed() && ch.old_status == UserStatus::Invited {
        // The pending invitation carries the role the acceptance reports.
        stmts.push(
            Stmt::new(
                "UPDATE invitations SET role = ?2 WHERE user_id = ?1 AND status = 'pending'
                   AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?3)",
            )
            .bind(user_id)
            .bind(ch.new_role.as_str())
            .bind(new_version),
        );
    }
    if ch.revokes_sessions() {
        let reason = if ch.role_changed() {
            "role_change"
        } else {
            "user_disabled"
        };
        stmts.push(
            Stmt::new(
                "UPDATE sessions SET status = 'revoked', revoked_at = ?2, revoked_reason = ?3
                 WHERE user_id = ?1 AND status = 'active'
                   AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?4)",
            )
            .bind(user_id)
            .bind(now)
            .bind(reason)
            .bind(new_version),
        );
    }
    stmts.extend(update_audit(p, by, target, ch, sids, now, request_id));
    stmts
}

/// The audit records of a role/status change (`user.role_update`, `user.status_update`), each
/// written only if the user reached the new version.
fn update_audit<P: Platform>(
    p: &P,
    by: &TenantActor,
    target: &UserView,
    ch: &RoleStatusChange,
    sids: &[String],
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let user_id = target.id.as_str();
    let record = |action, from: &str, to: &str| {
        AuditRecord::success(
            action,
            &by.actor(),
            Some(&by.tenant_id),
            format!("user:{user_id}"),
            Some(request_id),
        )
        .with("from", from)
        .with("to", to)
        .with("sessions_revoked", sids.len())
    };
    let mut records = Vec::new();
    if ch.role_changed() {
        records.push(record(
            "user.role_update",
            ch.old_role.as_str(),
            ch.new_role.as_str(),
        ));
    }
    if ch.status_changed() {
        let (from, to) = (ch.old_status.as_str(), ch.new_status.as_str());
        records.push(record("user.status_update", from, to));
    }
    let new_version = target.version + 1;
    records
        .iter()
        .map(|rec| {
            let id = audit::new_event_id(p);
            outbox_insert_if_user_version(rec, &id, now, user_id, new_version)
        })
        .collect()
}

/// Writes the edge markers of a committed change: each revoked session, and the user's status
/// marker (`disabled` written, an enable removing it).
async fn sync_update_edge<P: Platform>(
    p: &P,
    user_id: &str,
    ch: &RoleStatusChange,
    sids: &[String],
) -> Result<(), UserAdminError> {
    let mut edge = mark_sessions_revoked(p, sids).await;
    if ch.status_changed() {
        let marker = user_marker_key(user_id);
        let r = if ch.new_status == UserStatus::Disabled {
            edge::put(p, &marker, b"disabled", Some(SESSION_MARKER_TTL_SECS)).await
        } else {
            edge::delete(p, &marker).await
        };
        edge = edge.and(r);
    }
    edge.map_err(|e| UserAdminError::EdgePending(e.to_string()))
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The pseudonym the user's history now resolves to.
    pub pseudonym: String,
    /// False when the user was already erased (nothing written).
    pub changed: bool,
    /// Sessions that were active and are now revoked.
    pub sessions_revoked: usize,
}

/// The audited action of an erasure.
const ERASE_ACTION: &str = "user.delete";

/// A fresh pseudonym: `erased-` and 12 hex digits of a hash of the id and 16 random bytes, so it
/// cannot be recomputed from the id.
fn pseudonym<R: Random>(random: &R, user_id: &str) -> String {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let mut data = user_id.as_bytes().to_vec();
    data.extend_from_slice(&salt);
    let hex = crypto::sha256_hex(&data);
    format!("erased-{}", hex.get(..12).unwrap_or(&hex))
}

/// What an erasure deletes besides scrubbing the user row: credentials, reset tokens and
/// sign-ins in flight (OIDC codes live a minute, login flows 15). Each runs only once the row is
/// erased at the expected version (`?1` user id, `?2` new version), in the same batch.
const ERASED_WITH_THE_USER: [&str; 10] = [
    "DELETE FROM known_devices WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM sign_in_revocations WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM sign_in_attempts WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM password_history WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM mfa_recovery_codes WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM webauthn_credentials WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM password_reset_tokens WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM auth_flows WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM oidc_codes WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
    "DELETE FROM oidc_login_flows WHERE user_id = ?1
       AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?2 AND status = 'deleted')",
];

/// Deletes a user by erasure (FR-TENANT-002, CON-COMP-001 right to erasure), by an owner or admin
/// of the tenant or by the user themselves: one batch scrubs email, name and credentials (password
/// and its history, TOTP, recovery codes, WebAuthn, reset tokens, sign-in flows), sets status
/// `deleted` with a pseudonym, revokes every session and pending invitation, replaces the email
/// on past invitations with the pseudonym, drops dev-outbox mail to the address, and audits
/// `user.delete`. The row stays, so audit and billing history naming `user:{id}` still resolves
/// (to the pseudonym). Then the edge markers: `user:{id}:status` = `deleted` and each session.
pub async fn erase_user<P: Platform>(
    p: &P,
    by: &TenantActor,
    user_id: &str,
    request_id: &str,
) -> Result<Erased, UserAdminError> {
    let target = load_target(p, by, user_id).await?;
    if target.status() == Some(UserStatus::Deleted) {
        return Ok(Erased {
            pseudonym: target.pseudonym.unwrap_or_default(),
            changed: false,
            sessions_revoked: 0,
        });
    }
    check_may_erase(p, by, &target, request_id).await?;
    let loses_owner =
        target.role() == Some(TenantRole::Owner) && target.status() == Some(UserStatus::Active);
    ensure_owner_remains(p, by, ERASE_ACTION, user_id, request_id, loses_owner).await?;
    let sids = active_sids(p, user_id).await?;
    let now = p.clock().now_ms();
    let alias = pseudonym(p.random(), user_id);
    let rec = AuditRecord::success(
        ERASE_ACTION,
        &by.actor(),
        Some(&by.tenant_id),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("pseudonym", alias.as_str())
    .with(
        "erasure",
        if by.user_id == target.id {
            "self"
        } else {
            "admin"
        },
    )
    .with("sessions_revoked", sids.len());
    let mut stmts = erase_batch(&by.tenant_id, &target, &alias, loses_owner, now);
    let v = target.version + 1;
    stmts.push(outbox_insert_if_user_version(
        &rec,
        &audit::new_event_id(p),
        now,
        user_id,
        v,
    ));
    let counts = p.sql().batch(stmts).await?;
    check_applied(
        p,
        by,
        ERASE_ACTION,
        user_id,
        request_id,
        loses_owner,
        &counts,
    )
    .await?;
    sync_erase_edge(p, user_id, &sids).await?;
    Ok(Erased {
        pseudonym: alias,
        changed: true,
        sessions_revoked: sids.len(),
    })
}

/// Checks that `by` may erase `target`: themselves, or as an owner or admin acting on no owner
/// unless an owner (refusals audited).
async fn check_may_erase<P: Platform>(
    p: &P,
    by: &TenantActor,
    target: &UserView,
    request_id: &str,
) -> Result<(), UserAdminError> {
    if by.user_id == target.id {
        return Ok(());
    }
    if by.role == TenantRole::User {
        let e = UserAdminError::Forbidden("not_admin");
        return Err(refuse(p, by, ERASE_ACTION, &target.id, request_id, e).await);
    }
    if let Err(e) = check_may_act(by, target) {
        return Err(refuse(p, by, ERASE_ACTION, &target.id, request_id, e).await);
    }
    Ok(())
}

/// The erasure batch but its audit record: every statement after the first runs only if the
/// first erased the row (guard on the new version and status), so a lost race or the last-owner
/// guard leaves nothing half done.
fn erase_batch(
    tenant_id: &str,
    target: &UserView,
    alias: &str,
    loses_owner: bool,
    now: i64,
) -> Vec<Stmt> {
    let user_id = target.id.as_str();
    let v = target.version + 1;
    let mut stmts = vec![
        Stmt::new(
            "UPDATE users SET email = NULL, display_name = NULL, password_hash = NULL,
               password_changed_at = NULL, mfa_enabled = 0, totp_secret_enc = NULL,
               totp_last_step = NULL, failed_logins = 0, locked_until = NULL,
               external_issuer = NULL, external_subject = NULL, status = 'deleted',
               pseudonym = ?3, erased_at = ?4, updated_at = ?4, version = version + 1
             WHERE id = ?1 AND tenant_id = ?2 AND version = ?5
               AND (?6 = 0 OR EXISTS (SELECT 1 FROM users o WHERE o.tenant_id = ?2
                    AND o.role = 'owner' AND o.status = 'active' AND o.id <> ?1))",
        )
        .bind(user_id)
        .bind(tenant_id)
        .bind(alias)
        .bind(now)
        .bind(target.version)
        .bind(loses_owner),
        Stmt::new(
            "UPDATE sessions SET status = 'revoked', revoked_at = ?2, revoked_reason = 'user_deleted'
             WHERE user_id = ?1 AND status = 'active'
               AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?3 AND status = 'deleted')",
        )
        .bind(user_id)
        .bind(now)
        .bind(v),
        Stmt::new(
            "UPDATE invitations SET status = 'revoked', revoked_at = ?2
             WHERE user_id = ?1 AND status = 'pending'
               AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?3 AND status = 'deleted')",
        )
        .bind(user_id)
        .bind(now)
        .bind(v),
        Stmt::new(
            "UPDATE invitations SET email = ?2 WHERE user_id = ?1
               AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND version = ?3 AND status = 'deleted')",
        )
        .bind(user_id)
        .bind(alias)
        .bind(v),
    ];
    stmts.extend(
        ERASED_WITH_THE_USER
            .iter()
            .map(|sql| Stmt::new(sql).bind(user_id).bind(v)),
    );
    if let Some(email) = &target.email {
        stmts.push(
            Stmt::new(
                "DELETE FROM mail_outbox WHERE to_addr = ?1
                   AND EXISTS (SELECT 1 FROM users WHERE id = ?2 AND version = ?3 AND status = 'deleted')",
            )
            .bind(email.as_str())
            .bind(user_id)
            .bind(v),
        );
        stmts.push(
            Stmt::new(
                "DELETE FROM mail_queue WHERE to_addr = ?1
                   AND EXISTS (SELECT 1 FROM users WHERE id = ?2 AND version = ?3 AND status = 'deleted')",
            )
            .bind(email.as_str())
            .bind(user_id)
            .bind(v),
        );
    }
    stmts
}

/// Writes the edge markers of an erasure: `user:{id}:status` = `deleted`, then each revoked
/// session.
async fn sync_erase_edge<P: Platform>(
    p: &P,
    user_id: &str,
    sids: &[String],
) -> Result<(), UserAdminError> {
    let marker = edge::put(
        p,
        &user_marker_key(user_id),
        b"deleted",
        Some(SESSION_MARKER_TTL_SECS),
    )
    .await;
    marker
        .and(mark_sessions_revoked(p, sids).await)
        .map_err(|e| UserAdminError::EdgePending(e.to_string()))
}
