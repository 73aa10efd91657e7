//! Tenants: provisioning (UC-PROV-001), listing and lookup, updates (name, plan), suspension
//! (FR-OPS-001), deletion with a 30-day grace period, restore and purge (FR-OPS-002).
//!
//! Every change is one atomic [`Sql::batch`] that carries its audit
//! outbox rows (FR-LOG-003). Changes to an existing tenant use optimistic concurrency: every
//! statement of the batch is guarded by the tenant's version as read, and the tenant's own
//! UPDATE (which bumps the version) comes last, so the batch applies as a whole or not at all
//! even against a concurrent writer; a lost race is retried a few times.
//!
//! The edge learns a tenant's status from a KV marker `tenant:{id}:status` (`suspended` or
//! `deleted`, no TTL; no marker means active), written AFTER the D1 batch: D1 is the truth, and a
//! failed KV write is reported ([`EdgeSync::Pending`]) so the caller can retry (repeating the
//! operation is idempotent and rewrites the marker). [`tenant_edge_status`] reads only KV, held
//! in the isolate within the bounds of [`crate::edge`], for the hot paths (token introspection,
//! flag reads, sign-in).
//!
//! The operations are this module's functions; each takes the platform first and is generic
//! over it.
//!
//! Domain and SQL only: the HTTP layer parses input with the newtypes of [`model`] and maps the
//! error enums (each variant has a stable `code()`) to problem details.

mod lifecycle;
pub mod model;
mod provision;
mod purge;
mod query;
mod update;

pub use lifecycle::{
    activate, delete, restore, suspend, tenant_edge_status, ActivateTenantError, DeleteTenantError,
    EdgeStatus, EdgeSync, RestoreTenantError, StatusChange, SuspendTenantError, GRACE_PERIOD_MS,
};
pub use model::{
    Email, IdempotencyKey, ParseError, Plan, SuspensionReason, Tenant, TenantDomain, TenantId,
    TenantName, TenantStatus,
};
pub use provision::{
    configured_base_url, provision, MailDelivery, ProvisionOutcome, ProvisionTenant,
    ProvisionTenantError, Provisioned, IDEMPOTENCY_TTL_MS, INVITATION_TTL_MS, MAX_APPS,
};
pub use purge::{purge_due, purge_one_due, PurgeReport, PurgeTenantsError, PURGE_BATCH};
pub use query::{
    get, list, GetTenantError, ListTenants, ListTenantsError, Page, DEFAULT_LIMIT, MAX_LIMIT,
};
pub use update::{update, UpdateOutcome, UpdateTenant, UpdateTenantError};

use crate::ports::{Platform, Sql, SqlError, Stmt};
use model::tenant_columns;

/// How often a change that lost an optimistic-concurrency race is re-read and retried.
const MAX_ATTEMPTS: usize = 3;

/// The KV key of a tenant's edge status marker.
pub fn edge_marker_key(id: &TenantId) -> String {
    format!("tenant:{id}:status")
}

/// The audit resource name of a tenant.
fn resource(id: &TenantId) -> String {
    format!("tenant:{id}")
}

/// Reads a tenant by id (any status); `None` if there is no such row.
async fn load<P: Platform>(p: &P, id: &TenantId) -> Result<Option<Tenant>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                tenant_columns!(),
                " FROM tenants WHERE id = ?1"
            ))
            .bind(id.as_str()),
        )
        .await?;
    rows.first().map(Tenant::from_row).transpose()
}

/// A failed lookup of a live tenant.
pub(super) enum Missing {
    /// No such tenant.
    NotFound(TenantId),
    /// Purged.
    Gone(TenantId),
    /// The database failed.
    Storage(SqlError),
}

/// Reads a tenant that has not been purged.
pub(super) async fn load_live<P: Platform>(p: &P, id: &TenantId) -> Result<Tenant, Missing> {
    match load(p, id).await {
        Err(e) => Err(Missing::Storage(e)),
        Ok(None) => Err(Missing::NotFound(id.clone())),
        Ok(Some(t)) if t.status == TenantStatus::Deleted => Err(Missing::Gone(id.clone())),
        Ok(Some(t)) => Ok(t),
    }
}

/// Whether a plan exists in `plans`.
async fn plan_exists<P: Platform>(p: &P, plan: &Plan) -> Result<bool, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT 1 AS found FROM plans WHERE name = ?1").bind(plan.as_str()))
        .await?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests;
