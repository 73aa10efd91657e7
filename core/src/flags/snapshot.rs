//! The per-tenant flag snapshot the edge serves from: built from D1 (the truth), put in KV under
//! `flags:{tenant id}`, read by the hot path through the isolate's memory ([`crate::edge`], FR-FLAG-002).

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::model::{Flag, FlagKey, FlagType};
use crate::edge;
use crate::kernel::AppId;
use crate::kernel::TenantId;
use crate::ports::{KvError, Platform, Row, Sql, SqlError, Stmt};

/// Layout version of [`Snapshot`]; a snapshot of another version is rebuilt.
const SNAPSHOT_VERSION: u8 = 1;

/// KV `cacheTtl` of snapshot reads (s): Workers KV's minimum, so a change reaches every edge
/// location within about a minute.
pub const KV_CACHE_TTL_SECS: u32 = 60;

/// How often a publication that lost a race republishes the latest version.
const MAX_PUBLISH_ATTEMPTS: usize = 3;

/// A tenant's flags as the edge evaluates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Layout version.
    pub v: u8,
    /// The tenant.
    pub tenant_id: TenantId,
    /// `tenants.flags_version` it was built from: the `ETag` of the flag set.
    pub version: i64,
    /// The apps enabled for the tenant: an app-wide key may read this tenant's flags only if
    /// its app is among them.
    pub apps: Vec<AppId>,
    /// The flags, by key order.
    pub flags: Vec<Flag>,
}

impl Snapshot {
    /// The flag of a key.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.flags
            .binary_search_by(|f| f.key.as_str().cmp(key))
            .ok()
            .and_then(|i| self.flags.get(i))
    }

    /// Whether `app` is enabled for the tenant.
    pub fn serves_app(&self, app: &AppId) -> bool {
        self.apps.contains(app)
    }
}

/// The KV key of a tenant's snapshot.
pub fn snapshot_key(tenant: &TenantId) -> String {
    format!("flags:{tenant}")
}

/// Why a snapshot could not be built or published.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishError {
    /// D1 failed.
    #[error("flag storage unavailable: {0}")]
    Sql(#[from] SqlError),
    /// KV failed: the reconciler will republish.
    #[error("flag snapshot not written: {0}")]
    Kv(#[from] KvError),
}

impl PublishError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Sql(_) => "flag_storage_unavailable",
            PublishError::Kv(_) => "flag_snapshot_not_written",
        }
    }
}

/// What [`publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The snapshot of this version is in KV.
    Version(i64),
    /// The tenant is purged or unknown: its snapshot was deleted.
    Removed,
}

/// Reads the tenant's flag set from D1 and builds its snapshot; `None` if the tenant is unknown
/// or purged.
pub async fn build<P: Platform>(p: &P, tenant: &TenantId) -> Result<Option<Snapshot>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT status, flags_version FROM tenants WHERE id = ?1")
                .bind(tenant.as_str()),
        )
        .await?;
    let Some(t) = rows.first() else {
        return Ok(None);
    };
    if t.text("status")? == "deleted" {
        return Ok(None);
    }
    let version = t.i64("flags_version")?;
    let flag_rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT key, type, value, enabled, rules, version FROM feature_flags
                 WHERE tenant_id = ?1 ORDER BY key",
            )
            .bind(tenant.as_str()),
        )
        .await?;
    let mut flags = flag_rows
        .iter()
        .map(flag_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    // SQLite orders by its collation (binary for TEXT): the same as str's Ord, but keep the
    // binary search honest whatever the storage did.
    flags.sort_by(|a, b| a.key.cmp(&b.key));
    let app_rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT app_id FROM tenant_apps WHERE tenant_id = ?1 AND enabled = 1
                 ORDER BY app_id",
            )
            .bind(tenant.as_str()),
        )
        .await?;
    let apps = app_rows
        .iter()
        .map(|r| {
            AppId::parse(&r.text("app_id")?)
                .map_err(|e| SqlError::Decode(format!("tenant_apps.app_id: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Snapshot {
        v: SNAPSHOT_VERSION,
        tenant_id: tenant.clone(),
        version,
        apps,
        flags,
    }))
}

/// A `feature_flags` row as a [`Flag`].
pub(super) fn flag_from_row(row: &Row) -> Result<Flag, SqlError> {
    let decode = |what: &str, e: String| SqlError::Decode(format!("feature_flags.{what}: {e}"));
    Ok(Flag {
        key: FlagKey::parse(&row.text("key")?).map_err(|e| decode("key", e.to_string()))?,
        flag_type: FlagType::parse(&row.text("type")?)
            .map_err(|e| decode("type", e.to_string()))?,
        value: serde_json::from_str(&row.text("value")?)
            .map_err(|e| decode("value", e.to_string()))?,
        enabled: row.i64("enabled")? == 1,
        rules: serde_json::from_str(&row.text("rules")?)
            .map_err(|e| decode("rules", e.to_string()))?,
        version: row.i64("version")?,
    })
}

/// Builds the tenant's snapshot from D1 and puts it in KV (or deletes it for a purged tenant),
/// then records the published version in D1. A concurrent publication of a newer version may
/// have been overwritten by ours: when the recorded version is not ours, the latest is built
/// and put again, so KV ends with the newest version. Drops this isolate's cached copy.
pub async fn publish<P: Platform>(p: &P, tenant: &TenantId) -> Result<Published, PublishError> {
    forget(tenant);
    let mut outcome = Published::Removed;
    for _ in 0..MAX_PUBLISH_ATTEMPTS {
        let Some(snapshot) = build(p, tenant).await? else {
            edge::delete(p, &snapshot_key(tenant)).await?;
            p.sql()
                .execute(
                    Stmt::new(
                        "UPDATE tenants SET flags_published_version = flags_version
                         WHERE id = ?1 AND status = 'deleted'",
                    )
                    .bind(tenant.as_str()),
                )
                .await?;
            return Ok(Published::Removed);
        };
        let json = serde_json::to_vec(&snapshot)
            .map_err(|e| KvError::Other(format!("cannot serialise a flag snapshot: {e}")))?;
        edge::put(p, &snapshot_key(tenant), &json, None).await?;
        let recorded = p
            .sql()
            .execute(
                Stmt::new(
                    "UPDATE tenants SET flags_published_version = ?2
                     WHERE id = ?1 AND flags_published_version < ?2 AND flags_version = ?2",
                )
                .bind(tenant.as_str())
                .bind(snapshot.version),
            )
            .await?;
        outcome = Published::Version(snapshot.version);
        if recorded == 1 {
            break;
        }
        // Not recorded: either a newer version exists (build it and put it again), or another
        // writer already recorded this very version (both put the same content: done).
        let rows = p
            .sql()
            .query(
                Stmt::new(
                    "SELECT flags_version, flags_published_version FROM tenants WHERE id = ?1",
                )
                .bind(tenant.as_str()),
            )
            .await?;
        match rows.first() {
            Some(r)
                if r.i64("flags_version")? == snapshot.version
                    && r.i64("flags_published_version")? >= snapshot.version =>
            {
                break
            }
            _ => continue,
        }
    }
    forget(tenant);
    Ok(outcome)
}

/// Republishes up to `limit` tenants whose published snapshot lags D1 (a KV write that failed
/// or raced). Returns how many were republished, and the errors met.
pub async fn reconcile<P: Platform>(p: &P, limit: u32) -> Result<(u32, Vec<String>), SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id FROM tenants WHERE flags_published_version < flags_version
                 ORDER BY id LIMIT ?1",
            )
            .bind(i64::from(limit)),
        )
        .await?;
    let mut done = 0;
    let mut errors = Vec::new();
    for row in &rows {
        let id = row.text("id")?;
        let Ok(tenant) = TenantId::parse(&id) else {
            continue;
        };
        match publish(p, &tenant).await {
            Ok(_) => done += 1,
            Err(e) => errors.push(format!("tenant {tenant}: {e}")),
        }
    }
    Ok((done, errors))
}

/// Drops this isolate's copy of a tenant's snapshot.
pub fn forget(tenant: &TenantId) {
    edge::forget(&snapshot_key(tenant));
}

/// Why the hot path has no snapshot to serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// KV failed and there is no cached copy.
    #[error("flag snapshot unavailable: {0}")]
    Unavailable(String),
}

/// The snapshot of a tenant for the hot path: held in the isolate's memory within the bounds of
/// [`crate::edge`], else read from KV (with `cacheTtl`); a missing or outdated KV snapshot is
/// rebuilt from D1 and published (the only D1 read of the path, once per tenant). `None` when
/// the tenant has no snapshot and D1 does not know it.
pub async fn load<P: Platform>(
    p: &P,
    tenant: &TenantId,
) -> Result<Option<Rc<Snapshot>>, LoadError> {
    let key = snapshot_key(tenant);
    let held = edge::read(p, &key, Some(KV_CACHE_TTL_SECS), |v| {
        v.and_then(|bytes| serde_json::from_slice::<Snapshot>(&bytes).ok())
            .filter(|s| s.v == SNAPSHOT_VERSION && &s.tenant_id == tenant)
            .map(Rc::new)
    })
    .await
    .map_err(|e| LoadError::Unavailable(e.to_string()))?;
    if let Some(s) = held.as_ref() {
        return Ok(Some(Rc::clone(s)));
    }
    let built = build(p, tenant)
        .await
        .map_err(|e| LoadError::Unavailable(e.to_string()))?;
    let Some(snapshot) = built else {
        return Ok(None);
    };
    // Best effort: the next request of any isolate then finds it in KV.
    let _ = publish(p, tenant).await;
    let snapshot = Rc::new(snapshot);
    edge::remember(p, &key, Rc::new(Some(Rc::clone(&snapshot))));
    Ok(Some(snapshot))
}
