//! The purge (FR-OPS-002): after the 30-day grace period, a tenant's data is deleted for good
//! and its row becomes a tombstone (status `deleted`, domain NULL so it can be reused, name
//! scrubbed) that answers Gone (ERR-RES-410).
//!
//! Scope of this module: the control-plane database. The tenant's billing and audit events (the
//! event log) and their archives (blob store) are purged by the caller, with the ids this
//! returns; that part belongs to the event pipeline (a later issue). Edgeplane's own audit
//! outbox rows about the tenant are kept: they are the platform's audit trail of what operators
//! did, including this purge.

use crate::audit::{self, Actor, AuditRecord};
use crate::ports::{Logger, Platform, Sql, SqlError, Stmt};

use super::lifecycle::write_marker;
use super::model::{tenant_columns, Tenant, TenantId, TenantStatus};
use super::{resource, EdgeSync};

/// Most tenants purged by one run: each is its own batch, and a cron run must stay short.
pub const PURGE_BATCH: u32 = 10;

/// The name a purged tenant's tombstone keeps.
const TOMBSTONE_NAME: &str = "(purged)";

/// What one purge run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurgeReport {
    /// Tenants purged by this run. Their event streams and archives are still to be purged.
    pub purged: Vec<TenantId>,
    /// Rows deleted across every table, for the job report.
    pub rows_deleted: u64,
    /// Tenants whose purge failed (retried by the next run), with the cause for the log.
    pub failed: Vec<(TenantId, SqlError)>,
    /// True when more tenants were due than [`PURGE_BATCH`]: the next run continues.
    pub more_due: bool,
}

/// Why the purge could not run at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PurgeTenantsError {
    /// The due tenants could not be read.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl PurgeTenantsError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PurgeTenantsError::Storage(_) => "storage",
        }
    }
}

/// Purges up to [`PURGE_BATCH`] tenants whose grace period ended by `now_ms` (oldest first),
/// one batch each: every child row (users and their credentials, sessions, sign-in flows,
/// invitations, SSO and password settings, flags, app links, tenant-bound API keys) is
/// deleted, the tenant becomes a tombstone, and `tenant.purge` is audited by the system actor.
/// Idempotent: a purged tenant is never picked again, and a tenant restored or changed
/// meanwhile is left alone (every statement is guarded by the version read).
pub async fn purge_due<P: Platform>(p: &P, now_ms: i64) -> Result<PurgeReport, PurgeTenantsError> {
    let rows = p.sql().query(due_stmt(now_ms)).await?;
    let mut due = rows
        .iter()
        .map(Tenant::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = PurgeReport {
        more_due: due.len() > PURGE_BATCH as usize,
        ..PurgeReport::default()
    };
    due.truncate(PURGE_BATCH as usize);
    let actor = Actor::system("tenant-purge");
    for t in due {
        purge_into(p, &actor, t, now_ms, &mut report).await;
    }
    Ok(report)
}

/// Purges the one tenant `id` if it is pending deletion and due by `now_ms`, as
/// [`purge_due`] would: what the synthetic journeys do with their throwaway tenant, without
/// purging any other tenant ahead of the purge job.
pub async fn purge_one_due<P: Platform>(
    p: &P,
    id: &TenantId,
    now_ms: i64,
) -> Result<PurgeReport, PurgeTenantsError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                tenant_columns!(),
                " FROM tenants WHERE id = ?1 AND status = 'pending_deletion' AND purge_after <= ?2"
            ))
            .bind(id.as_str())
            .bind(now_ms),
        )
        .await?;
    let mut report = PurgeReport::default();
    if let Some(row) = rows.first() {
        let t = Tenant::from_row(row)?;
        purge_into(p, &Actor::system("tenant-purge"), t, now_ms, &mut report).await;
    }
    Ok(report)
}

/// Purges `t` and adds the outcome to `report`; then rewrites its edge marker and removes its
/// flag snapshot (failures logged: the marker was written at deletion, the reconciler repairs
/// the snapshot).
async fn purge_into<P: Platform>(
    p: &P,
    actor: &Actor,
    t: Tenant,
    now_ms: i64,
    report: &mut PurgeReport,
) {
    match purge_one(p, actor, &t, now_ms).await {
        Ok(Some(rows)) => {
            report.rows_deleted += rows;
            if let EdgeSync::Pending { error } = write_marker(p, &t.id, TenantStatus::Deleted).await
            {
                let line = serde_json::json!({
                    "level": "warn",
                    "msg": "tenant edge marker write failed after purge",
                    "tenant_id": t.id.as_str(),
                    "error": error.to_string(),
                });
                p.logger().line(&line.to_string());
            }
            if let Err(e) = crate::flags::snapshot::publish(p, &t.id).await {
                let line = serde_json::json!({
                    "level": "warn",
                    "msg": "flag snapshot of a purged tenant not removed",
                    "tenant_id": t.id.as_str(),
                    "error": e.to_string(),
                });
                p.logger().line(&line.to_string());
            }
            report.purged.push(t.id);
        }
        Ok(None) => {}
        Err(e) => report.failed.push((t.id, e)),
    }
}

/// The tenants due for purge at `now_ms`, oldest first, one more than a batch.
pub(super) fn due_stmt(now_ms: i64) -> Stmt {
    Stmt::new(concat!(
        "SELECT ",
        tenant_columns!(),
        // Without statistics SQLite would prefer tenants_status_created and sort.
        " FROM tenants INDEXED BY tenants_purge
         WHERE status = 'pending_deletion' AND purge_after <= ?1
         ORDER BY purge_after LIMIT ?2"
    ))
    .bind(now_ms)
    .bind(i64::from(PURGE_BATCH) + 1)
}

/// Purges one tenant as read; `Ok(None)` if it changed meanwhile (nothing written). Returns
/// the number of child rows deleted.
async fn purge_one<P: Platform>(
    p: &P,
    actor: &Actor,
    t: &Tenant,
    now: i64,
) -> Result<Option<u64>, SqlError> {
    let tid = t.id.as_str();
    let v = t.version;
    // Explicit deletes rather than ON DELETE CASCADE: the tenant row stays (tombstone), and
    // Spin's SQLite does not enforce foreign keys. Each runs only while the tenant has `v`.
    // The users' rows go first: they are found through `users`.
    let mut stmts = user_row_deletes(tid, v);
    stmts.extend(tenant_row_deletes(tid, v));
    let deletes = stmts.len();
    stmts.push(purge_audit_insert(p, actor, t, now));
    stmts.push(tombstone_update(tid, v, now));
    let counts = p.sql().batch(stmts).await?;
    if counts.last().copied() != Some(1) {
        return Ok(None);
    }
    Ok(Some(counts.iter().take(deletes).sum()))
}

/// Deletes of the rows that belong to tenant `tid`'s users: their credentials, reset tokens,
/// sessions and sign-in flows, and the OpenID provider's flows, codes and grants, each guarded
/// on the tenant still having version `v`.
fn user_row_deletes(tid: &str, v: i64) -> Vec<Stmt> {
    let guarded = |sql: &'static str| Stmt::new(sql).bind(tid).bind(v);
    vec![
        guarded(
            "DELETE FROM password_history WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM mfa_recovery_codes WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM webauthn_credentials WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM password_reset_tokens WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM sessions
             WHERE (tenant_id = ?1 OR user_id IN (SELECT id FROM users WHERE tenant_id = ?1))
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM auth_flows
             WHERE (tenant_id = ?1 OR user_id IN (SELECT id FROM users WHERE tenant_id = ?1))
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        // Adaptive authentication (NFR-SEC-006): decisions, devices and the policy.
        guarded(
            "DELETE FROM sign_in_attempts WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM known_devices WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM sign_in_revocations WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM risk_policies WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        // The OpenID provider's rows: nothing cascades from the tombstone, and Spin's SQLite
        // does not enforce foreign keys.
        guarded(
            "DELETE FROM oidc_login_flows
             WHERE (tenant_id = ?1 OR user_id IN (SELECT id FROM users WHERE tenant_id = ?1))
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM oidc_codes
             WHERE (tenant_id = ?1 OR user_id IN (SELECT id FROM users WHERE tenant_id = ?1))
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM oidc_grants WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
    ]
}

/// Deletes of tenant `tid`'s own rows: invitations, users, SSO and password settings, flags,
/// app links and tenant-bound API keys, each guarded on the tenant still having version `v`.
fn tenant_row_deletes(tid: &str, v: i64) -> Vec<Stmt> {
    let guarded = |sql: &'static str| Stmt::new(sql).bind(tid).bind(v);
    vec![
        guarded(
            "DELETE FROM invitations WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM users WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM sso_configs WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM password_policies WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM feature_flags WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM tenant_apps WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
        guarded(
            "DELETE FROM api_keys WHERE tenant_id = ?1
               AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?2)",
        ),
    ]
}

/// The `tenant.purge` audit record by `actor`, written only while tenant `t` still has the
/// version read.
fn purge_audit_insert<P: Platform>(p: &P, actor: &Actor, t: &Tenant, now: i64) -> Stmt {
    let tid = t.id.as_str();
    let rec = AuditRecord::success("tenant.purge", actor, Some(tid), resource(&t.id), None)
        .with("deletion_requested_at", t.deletion_requested_at)
        .with("purge_after", t.purge_after);
    audit::outbox_insert_if_tenant_version(&rec, &audit::new_event_id(p), now, tid, t.version)
}

/// Turns tenant `tid` at version `v` into its tombstone: status `deleted`, domain freed, name
/// scrubbed. Counts 1 only if the tenant was still pending deletion at `v`.
fn tombstone_update(tid: &str, v: i64, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE tenants SET status = 'deleted', domain = NULL, name = ?3,
           suspended_reason = NULL, deleted_at = ?4, updated_at = ?4, version = version + 1
         WHERE id = ?1 AND version = ?2 AND status = 'pending_deletion'",
    )
    .bind(tid)
    .bind(v)
    .bind(TOMBSTONE_NAME)
    .bind(now)
}
