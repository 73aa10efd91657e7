//! Updating a tenant's name and plan (`PATCH /v1/tenants/{id}`, FR-TENANT-003 for the plan).

use serde_json::{json, Map};

use super::model::{Plan, Tenant, TenantId, TenantName, TenantStatus};
use super::provision::copy_plan_flags;
use super::{load, load_live, plan_exists, resource, Missing, MAX_ATTEMPTS};
use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// The changes asked for; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateTenant {
    /// New display name.
    pub name: Option<TenantName>,
    /// New plan; must exist in `plans`.
    pub plan: Option<Plan>,
    /// If set, the update applies only to this version (e.g. from `If-Match`).
    pub expected_version: Option<i64>,
}

/// What [`update()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// The tenant after the update.
    pub tenant: Tenant,
    /// False when nothing differed (no write, no audit record).
    pub changed: bool,
    /// True when the plan changed: the tenant's flag set changed (`flags_version` was bumped),
    /// so its KV flag snapshot must be rebuilt (the flags module's job).
    pub flags_changed: bool,
}

/// Why an update was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateTenantError {
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
    /// The tenant is pending deletion: restore it first.
    #[error("tenant {id} is pending deletion")]
    PendingDeletion {
        /// The id asked for.
        id: TenantId,
    },
    /// The plan is not in `plans`.
    #[error("unknown plan {plan}")]
    UnknownPlan {
        /// The plan asked for.
        plan: Plan,
    },
    /// `expected_version` is not the tenant's version.
    #[error("tenant changed: version is {current}")]
    VersionConflict {
        /// The tenant's version now.
        current: i64,
    },
    /// Concurrent changes kept winning the race; the caller may retry.
    #[error("tenant changed concurrently")]
    ConcurrentChange,
    /// The database failed; nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl UpdateTenantError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            UpdateTenantError::NotFound { .. } => "tenant_not_found",
            UpdateTenantError::Gone { .. } => "tenant_gone",
            UpdateTenantError::PendingDeletion { .. } => "tenant_pending_deletion",
            UpdateTenantError::UnknownPlan { .. } => "unknown_plan",
            UpdateTenantError::VersionConflict { .. } => "version_conflict",
            UpdateTenantError::ConcurrentChange => "concurrent_change",
            UpdateTenantError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpdateTenantError::NotFound { .. } => ErrorKind::NotFound,
            UpdateTenantError::Gone { .. } => ErrorKind::Gone,
            UpdateTenantError::PendingDeletion { .. } => ErrorKind::Conflict,
            UpdateTenantError::UnknownPlan { .. } => ErrorKind::RefusedField("plan"),
            UpdateTenantError::VersionConflict { .. } => ErrorKind::Conflict,
            UpdateTenantError::ConcurrentChange => ErrorKind::Conflict,
            UpdateTenantError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(UpdateTenantError);

/// Changes a tenant's name and/or plan, audited as `tenant.update` with old and new values.
/// A plan change re-derives the tenant's non-overridden flags from the new plan's defaults
/// (values updated, keys the new plan lacks removed, keys it adds inserted) and leaves
/// operator-overridden flags alone, all in the same batch. Active and suspended tenants can
/// be updated; a pending deletion cannot.
pub async fn update<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &TenantId,
    req: UpdateTenant,
    request_id: &str,
) -> Result<UpdateOutcome, UpdateTenantError> {
    if let Some(plan) = &req.plan {
        if !plan_exists(p, plan).await? {
            return Err(UpdateTenantError::UnknownPlan { plan: plan.clone() });
        }
    }
    for _ in 0..MAX_ATTEMPTS {
        let t = load_live(p, id).await.map_err(UpdateTenantError::missing)?;
        check_updatable(p, actor, &t, &req, request_id).await?;
        let name = req.name.clone().filter(|n| *n != t.name);
        let plan = req.plan.clone().filter(|pl| *pl != t.plan);
        if name.is_none() && plan.is_none() {
            return Ok(UpdateOutcome {
                tenant: t,
                changed: false,
                flags_changed: false,
            });
        }
        let now = p.clock().now_ms();
        let rec = update_audit(actor, &t, name.as_ref(), plan.as_ref(), request_id);
        let new_name = name.unwrap_or_else(|| t.name.clone());
        let plan_changed = plan.is_some();
        let new_plan = plan.unwrap_or_else(|| t.plan.clone());
        let mut stmts = Vec::new();
        if plan_changed {
            stmts.extend(plan_flag_stmts(p, actor, &t, &new_plan, now).await?);
        }
        stmts.push(audit::outbox_insert_if_tenant_version(
            &rec,
            &audit::new_event_id(p),
            now,
            id.as_str(),
            t.version,
        ));
        stmts.push(update_stmt(&t, &new_name, &new_plan, plan_changed, now));
        let counts = p.sql().batch(stmts).await?;
        if counts.last().copied() != Some(1) {
            if req.expected_version.is_some() {
                let current = load(p, id).await?.map_or(t.version, |t| t.version);
                return Err(UpdateTenantError::VersionConflict { current });
            }
            continue;
        }
        let tenant = Tenant {
            name: new_name,
            plan: new_plan,
            updated_at: now,
            version: t.version + 1,
            ..t
        };
        if plan_changed {
            // Best effort: the reconciler cron republishes a lagging snapshot.
            let _ = crate::flags::snapshot::publish(p, id).await;
        }
        return Ok(UpdateOutcome {
            tenant,
            changed: true,
            flags_changed: plan_changed,
        });
    }
    Err(UpdateTenantError::ConcurrentChange)
}

impl UpdateTenantError {
    /// The lookup refusals.
    fn missing(m: Missing) -> Self {
        match m {
            Missing::NotFound(id) => UpdateTenantError::NotFound { id },
            Missing::Gone(id) => UpdateTenantError::Gone { id },
            Missing::Storage(e) => UpdateTenantError::Storage(e),
        }
    }
}

/// Refuses to update a tenant pending deletion (audited) or one not at the expected version.
async fn check_updatable<P: Platform>(
    p: &P,
    actor: &Actor,
    t: &Tenant,
    req: &UpdateTenant,
    request_id: &str,
) -> Result<(), UpdateTenantError> {
    let id = &t.id;
    if t.status == TenantStatus::PendingDeletion {
        let rec = AuditRecord::failure(
            "tenant.update",
            actor,
            Some(id.as_str()),
            resource(id),
            Some(request_id),
        )
        .with("reason", "tenant_pending_deletion");
        audit::record_refusal(p, &rec).await;
        return Err(UpdateTenantError::PendingDeletion { id: id.clone() });
    }
    if let Some(expected) = req.expected_version {
        if expected != t.version {
            return Err(UpdateTenantError::VersionConflict { current: t.version });
        }
    }
    Ok(())
}

/// The audit record `tenant.update` with the old and new value of each changed field.
fn update_audit(
    actor: &Actor,
    t: &Tenant,
    name: Option<&TenantName>,
    plan: Option<&Plan>,
    request_id: &str,
) -> AuditRecord {
    let mut changes = Map::new();
    if let Some(n) = name {
        changes.insert("name".into(), json!({"old": t.name, "new": n}));
    }
    if let Some(pl) = plan {
        changes.insert("plan".into(), json!({"old": t.plan, "new": pl}));
    }
    AuditRecord::success(
        "tenant.update",
        actor,
        Some(t.id.as_str()),
        resource(&t.id),
        Some(request_id),
    )
    .with("changes", changes)
}

/// The statements of a plan change: the tenant's non-overridden flags aligned with the new
/// plan's defaults and the keys it adds copied, each only while the tenant has its version.
async fn plan_flag_stmts<P: Platform>(
    p: &P,
    actor: &Actor,
    t: &Tenant,
    plan: &Plan,
    now: i64,
) -> Result<Vec<Stmt>, SqlError> {
    let tid = t.id.as_str();
    let mut stmts = resync_plan_flags(tid, plan, t.version, actor, now);
    stmts.push(copy_plan_flags(p, tid, plan, t.version, actor, now).await?);
    Ok(stmts)
}

/// The guarded UPDATE of the tenant's name and plan (a plan change bumps its flag set too).
fn update_stmt(t: &Tenant, name: &TenantName, plan: &Plan, plan_changed: bool, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE tenants SET name = ?2, plan = ?3, flags_version = flags_version + ?4,
           updated_at = ?5, version = version + 1
         WHERE id = ?1 AND version = ?6",
    )
    .bind(t.id.as_str())
    .bind(name.as_str())
    .bind(plan.as_str())
    .bind(i64::from(plan_changed))
    .bind(now)
    .bind(t.version)
}

/// Statements that align a tenant's non-overridden flags with `plan`'s defaults: remove keys the
/// plan lacks, rewrite values that differ. Each runs only while the tenant has `version`.
fn resync_plan_flags(
    tenant_id: &str,
    plan: &Plan,
    version: i64,
    actor: &Actor,
    now: i64,
) -> Vec<Stmt> {
    vec![
        Stmt::new(
            "DELETE FROM feature_flags
             WHERE tenant_id = ?1 AND overridden = 0
               AND key NOT IN (SELECT key FROM plan_default_flags WHERE plan = ?2)
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?3)",
        )
        .bind(tenant_id)
        .bind(plan.as_str())
        .bind(version),
        Stmt::new(
            "UPDATE feature_flags SET (type, value, enabled, description) =
               (SELECT d.type, d.value, d.enabled, d.description FROM plan_default_flags d
                WHERE d.plan = ?2 AND d.key = feature_flags.key),
               version = version + 1, updated_at = ?4, updated_by = ?5
             WHERE tenant_id = ?1 AND overridden = 0
               AND EXISTS (SELECT 1 FROM plan_default_flags d
                 WHERE d.plan = ?2 AND d.key = feature_flags.key
                   AND (d.type IS NOT feature_flags.type OR d.value IS NOT feature_flags.value
                     OR d.enabled IS NOT feature_flags.enabled
                     OR d.description IS NOT feature_flags.description))
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?3)",
        )
        .bind(tenant_id)
        .bind(plan.as_str())
        .bind(version)
        .bind(now)
        .bind(actor.id.as_str()),
    ]
}
