//! Status changes: suspend and activate (FR-OPS-001), delete into a 30-day grace period and
//! restore (FR-OPS-002), and the KV marker the edge reads.
//!
//! Each change is D1 first (the status, the session revocation and the audit row in one
//! guarded batch), then the KV marker. Repeating an operation on a tenant already in the target
//! state changes nothing in D1 and rewrites the marker: that is how a failed marker write
//! ([`EdgeSync::Pending`]) is retried. A reconciler that repairs markers from D1 is a later job.

use crate::audit::{self, Actor, AuditRecord};
use crate::edge;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, KvError, Platform, Sql, SqlError, Stmt};

use super::model::{SuspensionReason, Tenant, TenantId, TenantStatus};
use super::{edge_marker_key, load_live, resource, Missing, MAX_ATTEMPTS};

/// The grace period between a deletion request and the purge: 30 days (FR-OPS-002).
pub const GRACE_PERIOD_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Marker value of a suspended tenant.
const MARKER_SUSPENDED: &[u8] = b"suspended";

/// Marker value of a tenant pending deletion or purged.
const MARKER_DELETED: &[u8] = b"deleted";

/// A tenant's status as the edge sees it (KV only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeStatus {
    /// No marker: serve it.
    Active,
    /// Suspended: refuse its users' sign-ins, token introspection and flag reads.
    Suspended,
    /// Pending deletion or purged: refuse as well.
    Deleted,
}

impl EdgeStatus {
    /// True if the tenant's requests may be served.
    pub fn is_active(self) -> bool {
        self == EdgeStatus::Active
    }
}

/// Whether the edge marker was brought in line with D1.
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeSync {
    /// The marker was written (or deleted).
    Synced,
    /// D1 changed but the marker write failed: the edge still sees the old status. Retry the
    /// same operation (idempotent) until it is `Synced`.
    Pending {
        /// Why the write failed, for the log.
        error: KvError,
    },
}

/// What a status change did.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// The tenant afterwards.
    pub tenant: Tenant,
    /// False when the tenant was already in the target state (no D1 write, no audit record).
    pub changed: bool,
    /// The KV marker's state.
    pub edge: EdgeSync,
}

/// Reads a tenant's status from its KV marker only (hot path: token introspection, flag reads,
/// sign-in), held in the isolate within the bounds of [`crate::edge`]. No marker is
/// [`EdgeStatus::Active`]; an unrecognised marker value refuses (fail closed).
pub async fn tenant_edge_status<P: Platform>(
    p: &P,
    tenant_id: &TenantId,
) -> Result<EdgeStatus, KvError> {
    let status = edge::read(p, &edge_marker_key(tenant_id), None, |v| {
        match v.as_deref() {
            None => EdgeStatus::Active,
            Some(MARKER_DELETED) => EdgeStatus::Deleted,
            Some(_) => EdgeStatus::Suspended,
        }
    })
    .await?;
    Ok(*status)
}

/// Declares a lifecycle error enum with the shared variants and their codes.
macro_rules! lifecycle_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* } => $code:literal, $kind:ident, $msg:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, thiserror::Error)]
        pub enum $name {
            /// No tenant has this id.
            #[error("no tenant {id}")]
            NotFound {
                /// The id asked for.
                id: TenantId,
            },
            /// The tenant was purged (ERR-RES-410).
            #[error("tenant {id} was deleted")]
            Gone {
                /// The id asked for.
                id: TenantId,
            },
            $(
                $(#[$vdoc])*
                #[error($msg)]
                $variant {
                    $(
                        $(#[$fdoc])*
                        $field: $ty
                    ),*
                },
            )*
            /// Concurrent changes kept winning the race; the caller may retry.
            #[error("tenant changed concurrently")]
            ConcurrentChange,
            /// The database failed; nothing was changed.
            #[error("storage failed: {0}")]
            Storage(#[from] SqlError),
        }

        impl $name {
            /// Stable machine-readable code.
            pub fn code(&self) -> &'static str {
                match self {
                    $name::NotFound { .. } => "tenant_not_found",
                    $name::Gone { .. } => "tenant_gone",
                    $($name::$variant { .. } => $code,)*
                    $name::ConcurrentChange => "concurrent_change",
                    $name::Storage(_) => "storage",
                }
            }

            /// What kind of failure it is (one kind per variant).
            pub fn kind(&self) -> ErrorKind {
                match self {
                    $name::NotFound { .. } => ErrorKind::NotFound,
                    $name::Gone { .. } => ErrorKind::Gone,
                    $($name::$variant { .. } => ErrorKind::$kind,)*
                    $name::ConcurrentChange => ErrorKind::Conflict,
                    $name::Storage(_) => ErrorKind::Internal,
                }
            }

            /// The lookup refusals.
            fn missing(m: Missing) -> Self {
                match m {
                    Missing::NotFound(id) => $name::NotFound { id },
                    Missing::Gone(id) => $name::Gone { id },
                    Missing::Storage(e) => $name::Storage(e),
                }
            }
        }

        crate::kernel::domain_errors!($name);
    };
}

lifecycle_error!(
    /// Why a suspension was refused.
    SuspendTenantError {
        /// The tenant is pending deletion: it is already refused at the edge.
        PendingDeletion {
            /// The id asked for.
            id: TenantId
        } => "tenant_pending_deletion", Conflict, "tenant {id} is pending deletion",
    }
);

lifecycle_error!(
    /// Why an activation was refused.
    ActivateTenantError {
        /// The tenant is pending deletion: restore it instead.
        PendingDeletion {
            /// The id asked for.
            id: TenantId
        } => "tenant_pending_deletion", Conflict, "tenant {id} is pending deletion",
    }
);

lifecycle_error!(
    /// Why a deletion request was refused.
    DeleteTenantError {}
);

lifecycle_error!(
    /// Why a restore was refused.
    RestoreTenantError {
        /// The tenant is not pending deletion.
        NotPendingDeletion {
            /// Its status now.
            status: TenantStatus
        } => "tenant_not_pending_deletion", Conflict, "tenant is {status}, not pending deletion",
        /// The grace period is over: the purge is due and cannot be undone.
        GracePeriodOver {
            /// When the grace period ended (unix ms).
            purge_after: i64
        } => "grace_period_over", Refused, "the grace period ended at {purge_after}",
    }
);

/// What the marker should become.
#[derive(Clone, Copy)]
enum Marker {
    /// No marker (active).
    Absent,
    /// `suspended`.
    Suspended,
    /// `deleted`.
    Deleted,
}

/// The marker of a status.
fn marker_of(status: TenantStatus) -> Marker {
    match status {
        TenantStatus::Active => Marker::Absent,
        TenantStatus::Suspended => Marker::Suspended,
        TenantStatus::PendingDeletion | TenantStatus::Deleted => Marker::Deleted,
    }
}

/// Writes a tenant's edge marker.
pub(super) async fn write_marker<P: Platform>(
    p: &P,
    id: &TenantId,
    status: TenantStatus,
) -> EdgeSync {
    let key = edge_marker_key(id);
    let result = match marker_of(status) {
        Marker::Absent => edge::delete(p, &key).await,
        Marker::Suspended => edge::put(p, &key, MARKER_SUSPENDED, None).await,
        Marker::Deleted => edge::put(p, &key, MARKER_DELETED, None).await,
    };
    match result {
        Ok(()) => EdgeSync::Synced,
        Err(error) => EdgeSync::Pending { error },
    }
}

/// The result of a no-op: the tenant as it is, its marker rewritten.
async fn unchanged<P: Platform>(p: &P, tenant: Tenant) -> StatusChange {
    let edge = write_marker(p, &tenant.id, tenant.status).await;
    StatusChange {
        tenant,
        changed: false,
        edge,
    }
}

/// Runs a guarded transition batch; `Ok(false)` if the tenant's version moved meanwhile (then
/// nothing was written).
async fn commit<P: Platform>(p: &P, stmts: Vec<Stmt>) -> Result<bool, SqlError> {
    let counts = p.sql().batch(stmts).await?;
    Ok(counts.last().copied() == Some(1))
}

/// Revokes every active session of a tenant, while the tenant has `version` (FR-OPS-001: a
/// suspended or deleted tenant's users lose access; refresh tokens stop working at once).
fn revoke_sessions(tenant_id: &str, version: i64, now: i64, reason: &str) -> Stmt {
    Stmt::new(
        "UPDATE sessions SET status = 'revoked', revoked_at = ?2, revoked_reason = ?3
         WHERE tenant_id = ?1 AND status = 'active'
           AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?4)",
    )
    .bind(tenant_id)
    .bind(now)
    .bind(reason)
    .bind(version)
}

/// The sessions the suspension committed at `now` revoked that may still hold an unexpired
/// access token: started or rotated within the access-token lifetime (a token is only issued
/// then). Read after the commit, so a session started while it ran is among them. Their markers
/// are written after a suspension (FR-OPS-001), so that the tokens stay refused once the tenant
/// is activated again, instead of working again until they expire.
async fn suspended_sids<P: Platform>(
    p: &P,
    tenant_id: &str,
    suspended_at: i64,
) -> Result<Vec<String>, SqlError> {
    let now = p.clock().now_ms();
    let since = now - crate::tokens::ACCESS_TOKEN_TTL_SECS * 1000;
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT DISTINCT family_id FROM sessions
                 WHERE tenant_id = ?1 AND status = 'revoked'
                   AND revoked_reason = 'tenant_suspended' AND revoked_at = ?2
                   AND (created_at >= ?3 OR last_used_at >= ?3)",
            )
            .bind(tenant_id)
            .bind(suspended_at)
            .bind(since),
        )
        .await?;
    rows.iter().map(|r| r.text("family_id")).collect()
}

/// Writes the markers of the sessions the suspension at `suspended_at` revoked.
async fn mark_suspended_sessions<P: Platform>(
    p: &P,
    id: &TenantId,
    suspended_at: i64,
) -> Result<(), KvError> {
    let sids = suspended_sids(p, id.as_str(), suspended_at)
        .await
        .map_err(|e| KvError::Other(e.to_string()))?;
    crate::sessions::mark_sessions_revoked(p, &sids).await
}

/// A suspension asked again: nothing changes; the tenant's marker and its revoked sessions'
/// markers are written again.
async fn resuspended<P: Platform>(p: &P, t: Tenant) -> StatusChange {
    let suspended_at = t.suspended_at;
    let mut change = unchanged(p, t).await;
    if let Some(at) = suspended_at {
        if let Err(error) = mark_suspended_sessions(p, &change.tenant.id, at).await {
            change.edge = EdgeSync::Pending { error };
        }
    }
    change
}

/// Audits a refused transition (a conflict with the tenant's state).
async fn refuse<P: Platform>(
    p: &P,
    actor: &Actor,
    action: &'static str,
    t: &Tenant,
    request_id: &str,
    reason: &'static str,
) {
    let rec = AuditRecord::failure(
        action,
        actor,
        Some(t.id.as_str()),
        resource(&t.id),
        Some(request_id),
    )
    .with("reason", reason)
    .with("status", t.status.as_str());
    audit::record_refusal(p, &rec).await;
}

/// Suspends an active tenant (FR-OPS-001): status `suspended` with the reason, every session
/// revoked and `tenant.suspend` audited in one batch, then the KV marker `suspended` (no TTL)
/// so the edge refuses the tenant's users and keys, and the markers of the sessions it revoked.
/// Suspending a suspended tenant changes nothing and rewrites those markers (a retry after
/// [`EdgeSync::Pending`] completes them).
pub async fn suspend<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    reason: Option<SuspensionReason>,
    request_id: &str,
) -> Result<StatusChange, SuspendTenantError> {
    for _ in 0..MAX_ATTEMPTS {
        let t = load_live(p, id)
            .await
            .map_err(SuspendTenantError::missing)?;
        match t.status {
            TenantStatus::Suspended => return Ok(resuspended(p, t).await),
            TenantStatus::PendingDeletion | TenantStatus::Deleted => {
                refuse(
                    p,
                    actor,
                    "tenant.suspend",
                    &t,
                    request_id,
                    "tenant_pending_deletion",
                )
                .await;
                return Err(SuspendTenantError::PendingDeletion { id: id.clone() });
            }
            TenantStatus::Active => {}
        }
        let now = p.clock().now_ms();
        let stmts = suspension_stmts(p, actor, id, &t, reason.as_ref(), now, request_id);
        if commit(p, stmts).await? {
            return Ok(after_suspension(p, id, t, reason, now).await);
        }
    }
    Err(SuspendTenantError::ConcurrentChange)
}

/// Activates a suspended tenant (FR-OPS-001): status `active`, the suspension reason cleared,
/// `tenant.activate` audited, then the KV marker deleted. Activating an active tenant changes
/// nothing and deletes the marker. Sessions revoked by the suspension stay revoked: users
/// sign in again.
pub async fn activate<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    request_id: &str,
) -> Result<StatusChange, ActivateTenantError> {
    for _ in 0..MAX_ATTEMPTS {
        let t = load_live(p, id)
            .await
            .map_err(ActivateTenantError::missing)?;
        match t.status {
            TenantStatus::Active => return Ok(unchanged(p, t).await),
            TenantStatus::PendingDeletion | TenantStatus::Deleted => {
                refuse(
                    p,
                    actor,
                    "tenant.activate",
                    &t,
                    request_id,
                    "tenant_pending_deletion",
                )
                .await;
                return Err(ActivateTenantError::PendingDeletion { id: id.clone() });
            }
            TenantStatus::Suspended => {}
        }
        let now = p.clock().now_ms();
        let tid = id.as_str();
        let rec = AuditRecord::success(
            "tenant.activate",
            actor,
            Some(tid),
            resource(id),
            Some(request_id),
        );
        let stmts = vec![
            audit::outbox_insert_if_tenant_version(
                &rec,
                &audit::new_event_id(p),
                now,
                tid,
                t.version,
            ),
            Stmt::new(
                "UPDATE tenants SET status = 'active', suspended_reason = NULL,
                   suspended_at = NULL, updated_at = ?2, version = version + 1
                 WHERE id = ?1 AND version = ?3 AND status = 'suspended'",
            )
            .bind(tid)
            .bind(now)
            .bind(t.version),
        ];
        if commit(p, stmts).await? {
            let tenant = Tenant {
                status: TenantStatus::Active,
                suspended_reason: None,
                suspended_at: None,
                updated_at: now,
                version: t.version + 1,
                ..t
            };
            let edge = write_marker(p, id, tenant.status).await;
            return Ok(StatusChange {
                tenant,
                changed: true,
                edge,
            });
        }
    }
    Err(ActivateTenantError::ConcurrentChange)
}

/// Requests a tenant's deletion (FR-OPS-002): status `pending_deletion`, `purge_after` 30
/// days from now, every session revoked and `tenant.delete` audited in one batch, then the KV
/// marker `deleted`. A suspended tenant keeps its suspension details, so a restore returns
/// it to `suspended`. Deleting a tenant already pending deletion changes nothing (the
/// original purge date stands) and rewrites the marker.
pub async fn delete<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    request_id: &str,
) -> Result<StatusChange, DeleteTenantError> {
    for _ in 0..MAX_ATTEMPTS {
        let t = load_live(p, id).await.map_err(DeleteTenantError::missing)?;
        if t.status == TenantStatus::PendingDeletion {
            return Ok(unchanged(p, t).await);
        }
        let now = p.clock().now_ms();
        let purge_after = now + GRACE_PERIOD_MS;
        let tid = id.as_str();
        let rec = AuditRecord::success(
            "tenant.delete",
            actor,
            Some(tid),
            resource(id),
            Some(request_id),
        )
        .with("previous_status", t.status.as_str())
        .with("purge_after", purge_after);
        let stmts = vec![
            revoke_sessions(tid, t.version, now, "tenant_deleted"),
            audit::outbox_insert_if_tenant_version(
                &rec,
                &audit::new_event_id(p),
                now,
                tid,
                t.version,
            ),
            Stmt::new(
                "UPDATE tenants SET status = 'pending_deletion', deletion_requested_at = ?2,
                   purge_after = ?3, updated_at = ?2, version = version + 1
                 WHERE id = ?1 AND version = ?4 AND status IN ('active', 'suspended')",
            )
            .bind(tid)
            .bind(now)
            .bind(purge_after)
            .bind(t.version),
        ];
        if commit(p, stmts).await? {
            let tenant = Tenant {
                status: TenantStatus::PendingDeletion,
                deletion_requested_at: Some(now),
                purge_after: Some(purge_after),
                updated_at: now,
                version: t.version + 1,
                ..t
            };
            let edge = write_marker(p, id, tenant.status).await;
            return Ok(StatusChange {
                tenant,
                changed: true,
                edge,
            });
        }
    }
    Err(DeleteTenantError::ConcurrentChange)
}

/// Restores a tenant pending deletion while its grace period lasts (FR-OPS-002): back to the
/// status it had before the deletion (`suspended` if it was suspended, so a deletion never
/// lifts a suspension; otherwise `active`), `tenant.restore` audited, then the KV marker set
/// accordingly. Sessions revoked by the deletion stay revoked.
pub async fn restore<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    request_id: &str,
) -> Result<StatusChange, RestoreTenantError> {
    for _ in 0..MAX_ATTEMPTS {
        let t = load_live(p, id)
            .await
            .map_err(RestoreTenantError::missing)?;
        if t.status != TenantStatus::PendingDeletion {
            refuse(
                p,
                actor,
                "tenant.restore",
                &t,
                request_id,
                "tenant_not_pending_deletion",
            )
            .await;
            return Err(RestoreTenantError::NotPendingDeletion { status: t.status });
        }
        let now = p.clock().now_ms();
        let purge_after = t.purge_after.unwrap_or(now);
        if now >= purge_after {
            refuse(
                p,
                actor,
                "tenant.restore",
                &t,
                request_id,
                "grace_period_over",
            )
            .await;
            return Err(RestoreTenantError::GracePeriodOver { purge_after });
        }
        let status = status_before_deletion(&t);
        let stmts = restore_stmts(p, actor, id, &t, status, now, request_id);
        if commit(p, stmts).await? {
            return Ok(after_restore(p, id, t, status, now).await);
        }
    }
    Err(RestoreTenantError::ConcurrentChange)
}

/// The suspension of tenant `t` (read as active) with `reason`, in one batch guarded by its
/// version: every session revoked, `tenant.suspend` audited, the status set.
fn suspension_stmts<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    t: &Tenant,
    reason: Option<&SuspensionReason>,
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let tid = id.as_str();
    let mut rec = AuditRecord::success(
        "tenant.suspend",
        actor,
        Some(tid),
        resource(id),
        Some(request_id),
    );
    if let Some(r) = reason {
        rec = rec.with("reason", r.as_str());
    }
    vec![
        revoke_sessions(tid, t.version, now, "tenant_suspended"),
        audit::outbox_insert_if_tenant_version(&rec, &audit::new_event_id(p), now, tid, t.version),
        Stmt::new(
            "UPDATE tenants SET status = 'suspended', suspended_reason = ?2,
               suspended_at = ?3, updated_at = ?3, version = version + 1
             WHERE id = ?1 AND version = ?4 AND status = 'active'",
        )
        .bind(tid)
        .bind(reason.map(SuspensionReason::as_str))
        .bind(now)
        .bind(t.version),
    ]
}

/// The committed suspension of `t`: the tenant as it now is, its marker written, and the
/// markers of the sessions it revoked that may still hold access tokens.
async fn after_suspension<P: Platform>(
    p: &P,
    id: &TenantId,
    t: Tenant,
    reason: Option<SuspensionReason>,
    now: i64,
) -> StatusChange {
    let tenant = Tenant {
        status: TenantStatus::Suspended,
        suspended_reason: reason.map(String::from),
        suspended_at: Some(now),
        updated_at: now,
        version: t.version + 1,
        ..t
    };
    let mut edge = write_marker(p, id, tenant.status).await;
    if let Err(error) = mark_suspended_sessions(p, id, now).await {
        edge = EdgeSync::Pending { error };
    }
    StatusChange {
        tenant,
        changed: true,
        edge,
    }
}

/// The status a tenant pending deletion had before: `suspended` if it was suspended, so a
/// deletion never lifts a suspension; otherwise `active`.
fn status_before_deletion(t: &Tenant) -> TenantStatus {
    if t.suspended_at.is_some() {
        TenantStatus::Suspended
    } else {
        TenantStatus::Active
    }
}

/// The restore of tenant `t` (read as pending deletion) to `status`, in one batch guarded by
/// its version and its grace period: `tenant.restore` audited, the status set.
fn restore_stmts<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    t: &Tenant,
    status: TenantStatus,
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let tid = id.as_str();
    let rec = AuditRecord::success(
        "tenant.restore",
        actor,
        Some(tid),
        resource(id),
        Some(request_id),
    )
    .with("status", status.as_str());
    vec![
        audit::outbox_insert_if_tenant_version(&rec, &audit::new_event_id(p), now, tid, t.version),
        Stmt::new(
            "UPDATE tenants SET status = ?2, deletion_requested_at = NULL,
               purge_after = NULL, updated_at = ?3, version = version + 1
             WHERE id = ?1 AND version = ?4 AND status = 'pending_deletion'
               AND purge_after > ?3",
        )
        .bind(tid)
        .bind(status.as_str())
        .bind(now)
        .bind(t.version),
    ]
}

/// The committed restore of `t` to `status`: the tenant as it now is, and its marker written.
async fn after_restore<P: Platform>(
    p: &P,
    id: &TenantId,
    t: Tenant,
    status: TenantStatus,
    now: i64,
) -> StatusChange {
    let tenant = Tenant {
        status,
        deletion_requested_at: None,
        purge_after: None,
        updated_at: now,
        version: t.version + 1,
        ..t
    };
    let edge = write_marker(p, id, tenant.status).await;
    StatusChange {
        tenant,
        changed: true,
        edge,
    }
}
