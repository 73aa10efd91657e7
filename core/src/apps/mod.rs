//! Managed applications and their API keys (UC-DEV-REGISTER, UC-DEV-UPDATE): registration with
//! a generated id (FR-SYS-001), key issuance with the secret shown once and revocation
//! (FR-SYS-002), configuration and status changes (FR-SYS-003), and which tenants an app serves
//! (`tenant_apps`). [`authenticate_app_key`] is the hot path that checks a presented key.
//!
//! One row of `apps` is not a managed app: `edgeplane-console`, the tenant console's client of
//! the OpenID provider (migration 0009). The queries here leave it out: it is not listed,
//! read, changed, given keys or enabled for tenants.
//!
//! The operations are this module's functions; each takes the platform first and is generic
//! over it. Every change is one atomic [`Sql::batch`] carrying its audit outbox rows
//! (FR-LOG-003); refusals answered with a conflict are audited as failures.
//!
//! # Keys
//! The key format and its keyed hash (HMAC-SHA256 under `API_KEY_PEPPER`) are described in
//! [`secret`]. D1 stores the hash, never the secret; the secret is returned once, by issuance.
//!
//! # What the edge reads (KV only, in the common case)
//! - `apikey:{key id}`: the key's record ([`CachedKey`]: app, tenant binding, kind, scopes,
//!   expiry, revocation, whether the app is enabled for the bound tenant, and the hash), JSON,
//!   with a one-hour TTL. Written at issuance; on a miss, [`authenticate_app_key`] reads the row
//!   from D1 once and writes the record back. Revocation, and enabling or disabling the app for
//!   the bound tenant, rewrite the records concerned from D1 after the D1 batch. An isolate
//!   holds the record and the markers below in memory within the bounds of [`crate::edge`].
//! - `app:{app id}:status`: `disabled` while the app is disabled; absent means active (no TTL).
//!   Written by `PATCH /v1/apps/{id}` after its D1 batch, like the tenant marker. App status
//!   lives here rather than in each key record so that disabling an app is one KV write however
//!   many keys it has, and so that no cache refill can resurrect a disabled app: only status
//!   changes write the marker.
//! - `tenant:{tenant id}:status`: the tenant marker ([`crate::tenants::tenant_edge_status`]),
//!   read for tenant-bound keys.
//!
//! D1 stays the truth. A KV write that fails after the D1 batch is reported (`EdgeSync::Pending`
//! or an error) so the operator repeats the call, which is idempotent and rewrites KV. A known
//! window remains: a cache refill that read D1 just before a revocation may write its record
//! just after the revocation's, leaving the key usable until the record's TTL (one hour) ends.
//! Workers KV itself propagates a change to every location within about a minute.

mod authn;
pub mod health;
mod keys;
pub mod model;
mod query;
mod register;
pub mod secret;
mod tenant_apps;
mod update;

pub use authn::{
    authenticate_app_key, authenticate_app_key_reading, authenticate_app_key_with, AppKeyError,
    AppKeyPrincipal, CachedKey, KEY_CACHE_TTL_SECS,
};
pub use keys::{
    issue_key, revoke_key, IssueKey, IssueKeyError, IssuedKey, RevokeKeyError, RevokeOutcome,
};
pub use model::{
    AllowedOrigin, ApiKey, App, AppId, AppName, AppStatus, KeyId, KeyKind, KeyName, KeyStatus,
    RedirectUri, Scope, ScopeSet,
};
pub use query::{
    get, list, list_keys, GetAppError, ListApps, ListAppsError, ListKeys, ListKeysError,
};
pub use register::{register, RegisterApp, RegisterAppError};
pub use secret::PepperProblem;
pub use tenant_apps::{
    disable_for_tenant, enable_for_tenant, list_for_tenant, DisableTenantAppError,
    EnableTenantAppError, TenantApp, TenantAppChange,
};
pub use update::{update, UpdateApp, UpdateAppError, UpdateAppOutcome};

use std::rc::Rc;

use crate::audit::AuditRecord;
use crate::edge;
use crate::ports::{Platform, Sql, SqlError, Stmt};
use crate::tenants::EdgeSync;
use model::app_columns;

/// How often a change that lost an optimistic-concurrency race is re-read and retried.
const MAX_ATTEMPTS: usize = 3;

/// Value of the app status marker while the app is disabled.
const MARKER_DISABLED: &[u8] = b"disabled";

/// The KV key of an app's status marker.
pub fn app_marker_key(id: &AppId) -> String {
    format!("app:{id}:status")
}

/// The KV key of an API key's cached record.
pub fn key_cache_key(id: &KeyId) -> String {
    format!("apikey:{id}")
}

/// The KV key of an app's cached allowed origins (browser keys' CORS check).
pub fn origins_cache_key(id: &AppId) -> String {
    format!("app:{id}:origins")
}

/// How long an app's allowed origins stay cached in KV (seconds); a change deletes them.
const ORIGINS_CACHE_TTL_SECS: u32 = 3600;

/// The origins an app's browser keys may be used from: KV-cached, read from D1 on a miss and
/// cached again. An unknown app has none.
pub async fn allowed_origins<P: Platform>(
    p: &P,
    id: &AppId,
) -> Result<Vec<AllowedOrigin>, SqlError> {
    let key = origins_cache_key(id);
    let cached = edge::read(p, &key, None, |v| {
        v.and_then(|bytes| serde_json::from_slice::<Vec<AllowedOrigin>>(&bytes).ok())
    })
    .await;
    if let Ok(Some(list)) = cached.as_deref() {
        return Ok(list.clone());
    }
    let origins = load(p, id)
        .await?
        .map(|a| a.allowed_origins)
        .unwrap_or_default();
    if let Ok(json) = serde_json::to_vec(&origins) {
        // Best effort: a miss next time reads D1 again.
        if edge::fill(p, &key, &json, Some(ORIGINS_CACHE_TTL_SECS))
            .await
            .is_ok()
        {
            edge::remember(p, &key, Rc::new(Some(origins.clone())));
        }
    }
    Ok(origins)
}

/// The audit resource name of an app.
fn resource(id: &AppId) -> String {
    format!("app:{id}")
}

/// Reads an app by id; `None` if there is no such row.
async fn load<P: Platform>(p: &P, id: &AppId) -> Result<Option<App>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                app_columns!(),
                " FROM apps WHERE id = ?1 AND id <> 'edgeplane-console'"
            ))
            .bind(id.as_str()),
        )
        .await?;
    rows.first().map(App::from_row).transpose()
}

/// Whether an app other than `except` holds the name (case-insensitively).
async fn name_taken<P: Platform>(
    p: &P,
    name: &AppName,
    except: Option<&AppId>,
) -> Result<bool, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT 1 AS found FROM apps WHERE name = ?1 AND id IS NOT ?2")
                .bind(name.as_str())
                .bind(except.map(AppId::as_str)),
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Writes an app's status marker: `disabled`, or absent for active.
async fn write_marker<P: Platform>(p: &P, id: &AppId, status: AppStatus) -> EdgeSync {
    let key = app_marker_key(id);
    let result = match status {
        AppStatus::Active => edge::delete(p, &key).await,
        AppStatus::Disabled => edge::put(p, &key, MARKER_DISABLED, None).await,
    };
    match result {
        Ok(()) => EdgeSync::Synced,
        Err(error) => EdgeSync::Pending { error },
    }
}

/// The INSERT of an outbox row that is written only if `guard` holds when it runs, for batches
/// whose change may apply to nothing (a lost race): placed before the change, with the same
/// condition, it is written exactly when the change is.
fn audit_if(record: &AuditRecord, id: &str, now_ms: i64, guard: Guard<'_>) -> Stmt {
    let sql = match guard {
        Guard::AppVersion { .. } => {
            concat!(
                crate::audit_outbox_columns!(),
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE EXISTS (SELECT 1 FROM apps WHERE id = ?11 AND version = ?12)"
            )
        }
        Guard::KeyLive { .. } => {
            concat!(
                crate::audit_outbox_columns!(),
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?11 AND revoked_at IS NULL)"
            )
        }
        Guard::KeyExists { .. } => {
            concat!(
                crate::audit_outbox_columns!(),
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?11)"
            )
        }
        Guard::TenantAppEnabled { .. } => {
            concat!(
                crate::audit_outbox_columns!(),
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE COALESCE((SELECT enabled FROM tenant_apps
                             WHERE tenant_id = ?11 AND app_id = ?12), 0) = ?13"
            )
        }
    };
    let stmt = crate::audit::bind_row(Stmt::new(sql), record, id, now_ms);
    match guard {
        Guard::AppVersion { app_id, version } => stmt.bind(app_id).bind(version),
        Guard::KeyLive { key_id } | Guard::KeyExists { key_id } => stmt.bind(key_id),
        Guard::TenantAppEnabled {
            tenant_id,
            app_id,
            enabled,
        } => stmt.bind(tenant_id).bind(app_id).bind(enabled),
    }
}

/// The condition of an [`audit_if`] row.
#[derive(Clone, Copy)]
enum Guard<'a> {
    /// The app still has this version.
    AppVersion {
        /// The app.
        app_id: &'a str,
        /// The version read.
        version: i64,
    },
    /// The key exists and is not revoked.
    KeyLive {
        /// The key.
        key_id: &'a str,
    },
    /// The key exists.
    KeyExists {
        /// The key.
        key_id: &'a str,
    },
    /// The tenant's link to the app is (`true`) or is not (`false`, also when absent) enabled.
    TenantAppEnabled {
        /// The tenant.
        tenant_id: &'a str,
        /// The app.
        app_id: &'a str,
        /// The state the link must be in.
        enabled: bool,
    },
}

#[cfg(test)]
mod tests;
