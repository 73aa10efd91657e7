//! Which tenants an app serves (`tenant_apps`): enable and disable an app for one tenant. The
//! KV records of the app's keys bound to that tenant are rewritten afterwards, so a disabled
//! link refuses them at the edge.

use serde::Serialize;

use super::authn::{load_tenant_records, put_record};
use super::model::{AppId, AppStatus};
use super::{audit_if, load, Guard};
use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, KvError, Platform, Sql, SqlError, Stmt};
use crate::tenants::{self, EdgeSync, GetTenantError, TenantId, TenantStatus};

/// A tenant's link to an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantApp {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The app.
    pub app_id: AppId,
    /// Whether the app serves the tenant.
    pub enabled: bool,
}

/// What enabling or disabling did.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantAppChange {
    /// The link afterwards.
    pub link: TenantApp,
    /// False when the link already was in that state (no D1 write, no audit record).
    pub changed: bool,
    /// Whether the KV records of the app's keys bound to the tenant were rewritten.
    /// `Pending`: repeat the call.
    pub edge: EdgeSync,
}

/// Why enabling an app for a tenant was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnableTenantAppError {
    /// No tenant has this id.
    #[error("no tenant {id}")]
    TenantNotFound {
        /// The id asked for.
        id: TenantId,
    },
    /// The tenant was purged (ERR-RES-410).
    #[error("tenant {id} was deleted")]
    TenantGone {
        /// The id asked for.
        id: TenantId,
    },
    /// The tenant is pending deletion.
    #[error("tenant {id} is pending deletion")]
    TenantPendingDeletion {
        /// The tenant.
        id: TenantId,
    },
    /// No app has this id.
    #[error("no app {id}")]
    AppNotFound {
        /// The id asked for.
        id: AppId,
    },
    /// The app is disabled.
    #[error("app {id} is disabled")]
    AppDisabled {
        /// The app.
        id: AppId,
    },
    /// The database failed; nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl EnableTenantAppError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EnableTenantAppError::TenantNotFound { .. } => "tenant_not_found",
            EnableTenantAppError::TenantGone { .. } => "tenant_gone",
            EnableTenantAppError::TenantPendingDeletion { .. } => "tenant_pending_deletion",
            EnableTenantAppError::AppNotFound { .. } => "app_not_found",
            EnableTenantAppError::AppDisabled { .. } => "app_disabled",
            EnableTenantAppError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EnableTenantAppError::TenantNotFound { .. } => ErrorKind::NotFound,
            EnableTenantAppError::TenantGone { .. } => ErrorKind::Gone,
            EnableTenantAppError::TenantPendingDeletion { .. } => ErrorKind::Conflict,
            EnableTenantAppError::AppNotFound { .. } => ErrorKind::NotFound,
            EnableTenantAppError::AppDisabled { .. } => ErrorKind::Conflict,
            EnableTenantAppError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(EnableTenantAppError);

/// Why disabling an app for a tenant was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DisableTenantAppError {
    /// No tenant has this id.
    #[error("no tenant {id}")]
    TenantNotFound {
        /// The id asked for.
        id: TenantId,
    },
    /// The tenant was purged (ERR-RES-410).
    #[error("tenant {id} was deleted")]
    TenantGone {
        /// The id asked for.
        id: TenantId,
    },
    /// No app has this id.
    #[error("no app {id}")]
    AppNotFound {
        /// The id asked for.
        id: AppId,
    },
    /// The app was never enabled for the tenant (a disabled link is a no-op instead).
    #[error("app {id} is not linked to the tenant")]
    NotLinked {
        /// The app.
        id: AppId,
    },
    /// The database failed; nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl DisableTenantAppError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DisableTenantAppError::TenantNotFound { .. } => "tenant_not_found",
            DisableTenantAppError::TenantGone { .. } => "tenant_gone",
            DisableTenantAppError::AppNotFound { .. } => "app_not_found",
            DisableTenantAppError::NotLinked { .. } => "app_not_linked",
            DisableTenantAppError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DisableTenantAppError::TenantNotFound { .. } => ErrorKind::NotFound,
            DisableTenantAppError::TenantGone { .. } => ErrorKind::Gone,
            DisableTenantAppError::AppNotFound { .. } => ErrorKind::NotFound,
            DisableTenantAppError::NotLinked { .. } => ErrorKind::NotFound,
            DisableTenantAppError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(DisableTenantAppError);

/// The link's `enabled` value; `None` if there is no row.
async fn link_state<P: Platform>(
    p: &P,
    tenant_id: &TenantId,
    app_id: &AppId,
) -> Result<Option<bool>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT enabled FROM tenant_apps WHERE tenant_id = ?1 AND app_id = ?2")
                .bind(tenant_id.as_str())
                .bind(app_id.as_str()),
        )
        .await?;
    rows.first()
        .map(|r| r.i64("enabled").map(|e| e == 1))
        .transpose()
}

/// Rewrites the KV records of the app's keys bound to the tenant from D1, and the tenant's flag
/// snapshot (its app list).
async fn refresh_tenant_keys<P: Platform>(p: &P, tenant_id: &TenantId, app_id: &AppId) -> EdgeSync {
    let records = match load_tenant_records(p, app_id, tenant_id).await {
        Ok(r) => r,
        Err(e) => {
            return EdgeSync::Pending {
                error: KvError::Other(format!("cannot read the keys to cache them: {e}")),
            }
        }
    };
    let mut edge = EdgeSync::Synced;
    for (id, record) in &records {
        if let Err(error) = put_record(p, id, record).await {
            edge = EdgeSync::Pending { error };
        }
    }
    // App-wide keys read the tenant's app list from its flag snapshot.
    if let Err(e) = crate::flags::snapshot::publish(p, tenant_id).await {
        edge = EdgeSync::Pending {
            error: KvError::Other(format!("flag snapshot not republished: {e}")),
        };
    }
    edge
}

/// The audit resource name of a link.
fn resource(tenant_id: &TenantId, app_id: &AppId) -> String {
    format!("tenant_app:{tenant_id}:{app_id}")
}

/// Enables an app for a tenant: the `tenant_apps` row inserted or set enabled, with
/// `tenant_app.enable`, in one batch; then the KV records of the app's keys bound to the
/// tenant are rewritten. The tenant must be live and not pending deletion, the app active.
/// Enabling an enabled link changes nothing and rewrites the records.
pub async fn enable_for_tenant<P: Platform>(
    p: &P,
    actor: &Actor,
    tenant_id: &TenantId,
    app_id: &AppId,
    request_id: &str,
) -> Result<TenantAppChange, EnableTenantAppError> {
    check_enable(p, actor, tenant_id, app_id, request_id).await?;
    let changed = if link_state(p, tenant_id, app_id).await? != Some(true) {
        enable_link(p, actor, tenant_id, app_id, request_id).await?
    } else {
        false
    };
    let edge = refresh_tenant_keys(p, tenant_id, app_id).await;
    Ok(TenantAppChange {
        link: TenantApp {
            tenant_id: tenant_id.clone(),
            app_id: app_id.clone(),
            enabled: true,
        },
        changed,
        edge,
    })
}

/// Disables an app for a tenant: the link set disabled, with `tenant_app.disable`, in one
/// batch; then the KV records of the app's keys bound to the tenant are rewritten, so the
/// edge refuses them. Disabling a disabled link changes nothing and rewrites the records.
pub async fn disable_for_tenant<P: Platform>(
    p: &P,
    actor: &Actor,
    tenant_id: &TenantId,
    app_id: &AppId,
    request_id: &str,
) -> Result<TenantAppChange, DisableTenantAppError> {
    match tenants::get(p, tenant_id).await {
        Ok(_) => {}
        Err(GetTenantError::NotFound { id }) => {
            return Err(DisableTenantAppError::TenantNotFound { id })
        }
        Err(GetTenantError::Gone { id }) => return Err(DisableTenantAppError::TenantGone { id }),
        Err(GetTenantError::Storage(e)) => return Err(e.into()),
    }
    if load(p, app_id).await?.is_none() {
        return Err(DisableTenantAppError::AppNotFound { id: app_id.clone() });
    }
    let mut changed = false;
    match link_state(p, tenant_id, app_id).await? {
        None => return Err(DisableTenantAppError::NotLinked { id: app_id.clone() }),
        Some(false) => {}
        Some(true) => {
            let now = p.clock().now_ms();
            let rec = link_record("tenant_app.disable", actor, tenant_id, app_id, request_id);
            let counts = p
                .sql()
                .batch(vec![
                    audit_if(
                        &rec,
                        &audit::new_event_id(p),
                        now,
                        Guard::TenantAppEnabled {
                            tenant_id: tenant_id.as_str(),
                            app_id: app_id.as_str(),
                            enabled: true,
                        },
                    ),
                    // The tenant's flag snapshot lists its apps.
                    Stmt::new(
                        "UPDATE tenants SET flags_version = flags_version + 1
                             WHERE id = ?1 AND EXISTS (SELECT 1 FROM tenant_apps
                               WHERE tenant_id = ?1 AND app_id = ?2 AND enabled = 1)",
                    )
                    .bind(tenant_id.as_str())
                    .bind(app_id.as_str()),
                    Stmt::new(
                        "UPDATE tenant_apps SET enabled = 0, updated_at = ?3
                             WHERE tenant_id = ?1 AND app_id = ?2 AND enabled = 1",
                    )
                    .bind(tenant_id.as_str())
                    .bind(app_id.as_str())
                    .bind(now),
                ])
                .await?;
            changed = counts.last().copied() == Some(1);
        }
    }
    let edge = refresh_tenant_keys(p, tenant_id, app_id).await;
    Ok(TenantAppChange {
        link: TenantApp {
            tenant_id: tenant_id.clone(),
            app_id: app_id.clone(),
            enabled: false,
        },
        changed,
        edge,
    })
}

/// Refuses to enable an app for a tenant that is gone or awaits deletion, or an app that is
/// unknown or disabled (refusals of state audited).
async fn check_enable<P: Platform>(
    p: &P,
    actor: &Actor,
    tenant_id: &TenantId,
    app_id: &AppId,
    request_id: &str,
) -> Result<(), EnableTenantAppError> {
    let tenant = match tenants::get(p, tenant_id).await {
        Ok(t) => t,
        Err(GetTenantError::NotFound { id }) => {
            return Err(EnableTenantAppError::TenantNotFound { id })
        }
        Err(GetTenantError::Gone { id }) => return Err(EnableTenantAppError::TenantGone { id }),
        Err(GetTenantError::Storage(e)) => return Err(e.into()),
    };
    let app = load(p, app_id)
        .await?
        .ok_or_else(|| EnableTenantAppError::AppNotFound { id: app_id.clone() })?;
    if tenant.status == TenantStatus::PendingDeletion {
        refuse(
            p,
            actor,
            "tenant_app.enable",
            tenant_id,
            app_id,
            request_id,
            "tenant_pending_deletion",
        )
        .await;
        return Err(EnableTenantAppError::TenantPendingDeletion {
            id: tenant_id.clone(),
        });
    }
    if app.status == AppStatus::Disabled {
        refuse(
            p,
            actor,
            "tenant_app.enable",
            tenant_id,
            app_id,
            request_id,
            "app_disabled",
        )
        .await;
        return Err(EnableTenantAppError::AppDisabled { id: app_id.clone() });
    }
    Ok(())
}

/// Enables the link in one batch with `tenant_app.enable` and a new flag-set version (the
/// tenant's snapshot lists its apps); false when a concurrent enable won.
async fn enable_link<P: Platform>(
    p: &P,
    actor: &Actor,
    tenant_id: &TenantId,
    app_id: &AppId,
    request_id: &str,
) -> Result<bool, SqlError> {
    let now = p.clock().now_ms();
    let rec = link_record("tenant_app.enable", actor, tenant_id, app_id, request_id);
    let counts = p
        .sql()
        .batch(vec![
            audit_if(
                &rec,
                &audit::new_event_id(p),
                now,
                Guard::TenantAppEnabled {
                    tenant_id: tenant_id.as_str(),
                    app_id: app_id.as_str(),
                    enabled: false,
                },
            ),
            // The tenant's flag snapshot lists its apps: a new version is published.
            Stmt::new(
                "UPDATE tenants SET flags_version = flags_version + 1
                 WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM tenant_apps
                   WHERE tenant_id = ?1 AND app_id = ?2 AND enabled = 1)",
            )
            .bind(tenant_id.as_str())
            .bind(app_id.as_str()),
            Stmt::new(
                "INSERT INTO tenant_apps (tenant_id, app_id, enabled, created_at, updated_at)
                 VALUES (?1, ?2, 1, ?3, ?3)
                 ON CONFLICT (tenant_id, app_id) DO UPDATE SET enabled = 1, updated_at = ?3
                   WHERE enabled = 0",
            )
            .bind(tenant_id.as_str())
            .bind(app_id.as_str())
            .bind(now),
        ])
        .await?;
    Ok(counts.last().copied() == Some(1))
}

/// The audit record of a link change (`tenant_app.enable`, `tenant_app.disable`).
fn link_record(
    action: &'static str,
    actor: &Actor,
    tenant_id: &TenantId,
    app_id: &AppId,
    request_id: &str,
) -> AuditRecord {
    AuditRecord::success(
        action,
        actor,
        Some(tenant_id.as_str()),
        resource(tenant_id, app_id),
        Some(request_id),
    )
    .with("app_id", app_id.as_str())
}

/// Audits a refused link change.
async fn refuse<P: Platform>(
    p: &P,
    actor: &Actor,
    action: &'static str,
    tenant_id: &TenantId,
    app_id: &AppId,
    request_id: &str,
    reason: &'static str,
) {
    let rec = AuditRecord::failure(
        action,
        actor,
        Some(tenant_id.as_str()),
        resource(tenant_id, app_id),
        Some(request_id),
    )
    .with("app_id", app_id.as_str())
    .with("reason", reason);
    audit::record_refusal(p, &rec).await;
}

/// The apps linked to tenant `tenant` (enabled or not), oldest link first; the tenant must exist.
pub async fn list_for_tenant<P: Platform>(
    p: &P,
    tenant: &TenantId,
) -> Result<Vec<TenantApp>, GetTenantError> {
    tenants::get(p, tenant).await?;
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT app_id, enabled FROM tenant_apps
                 WHERE tenant_id = ?1 AND app_id <> 'edgeplane-console'
                 ORDER BY created_at, app_id",
            )
            .bind(tenant.as_str()),
        )
        .await
        .map_err(GetTenantError::from)?;
    rows.iter()
        .map(|r| {
            let app_id = AppId::parse(&r.text("app_id")?)
                .map_err(|e| SqlError::Decode(format!("tenant_apps.app_id: {e}")))?;
            Ok(TenantApp {
                tenant_id: tenant.clone(),
                app_id,
                enabled: r.i64("enabled")? == 1,
            })
        })
        .collect::<Result<Vec<_>, SqlError>>()
        .map_err(GetTenantError::from)
}
