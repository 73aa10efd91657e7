//! The hot path: checking a presented API key with KV reads only, once its record is cached.

use std::future::Future;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::model::{AppId, KeyId, KeyKind, Scope, ScopeSet};
use super::secret::{self, Pepper, PepperProblem};
use super::{app_marker_key, key_cache_key};
use crate::edge;
use crate::kernel::join2;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, KvError, Logger, Platform, Row, Sql, SqlError, Stmt};
use crate::tenants::{edge_marker_key, tenant_edge_status, EdgeStatus, TenantId};

/// How long a key record stays in KV (seconds) before the next use re-reads it from D1.
pub const KEY_CACHE_TTL_SECS: u32 = 3600;

/// Version of the [`CachedKey`] layout; a record of another version is a miss.
const CACHE_VERSION: u8 = 1;

/// An authenticated API key: who is calling and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeyPrincipal {
    /// The key's id.
    pub key_id: KeyId,
    /// The app it belongs to (active).
    pub app_id: AppId,
    /// The tenant it is bound to (active, with the app enabled); `None` for an app-wide key,
    /// whose requests name the tenant themselves (the route checks it).
    pub tenant_id: Option<TenantId>,
    /// Server or browser key (a browser key's route checks the `Origin`).
    pub kind: KeyKind,
    /// Every scope the key holds (the required one among them).
    pub scopes: ScopeSet,
}

/// Why a presented key was refused. Each is a distinct fact with a stable code; the HTTP layer
/// answers 401 for the key itself (malformed, invalid, revoked, expired), 403 for what it may
/// not do now, 503 when the check could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppKeyError {
    /// Not an Edgeplane API key (`ep_<env>_<key id>_<secret>`).
    #[error("the API key is malformed")]
    Malformed,
    /// No key has this id, the secret does not match, or the key is from another environment.
    /// One variant for all three: a caller without the secret learns nothing about the id.
    #[error("the API key is not valid")]
    Invalid,
    /// The key was revoked (FR-SYS-002).
    #[error("the API key was revoked")]
    Revoked,
    /// The key is past its `expires_at`.
    #[error("the API key has expired")]
    Expired,
    /// The key's app is disabled (FR-SYS-003).
    #[error("the API key's app is disabled")]
    AppDisabled,
    /// The app is no longer enabled for the tenant the key is bound to.
    #[error("the app is not enabled for the key's tenant")]
    AppNotEnabledForTenant,
    /// The key's tenant is suspended (FR-OPS-001).
    #[error("the key's tenant is suspended")]
    TenantSuspended,
    /// The key's tenant is pending deletion or purged (FR-OPS-002).
    #[error("the key's tenant is deleted")]
    TenantDeleted,
    /// The key does not hold the scope the operation needs.
    #[error("the API key lacks the {required} scope")]
    MissingScope {
        /// The scope the operation needs.
        required: Scope,
    },
    /// `API_KEY_PEPPER` is missing or too short in a deployment: no key can be checked.
    #[error("{0}")]
    NotConfigured(PepperProblem),
    /// KV or D1 failed (cause inside, for the log).
    #[error("API key storage unavailable: {0}")]
    Unavailable(String),
}

impl AppKeyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppKeyError::Malformed => "api_key_malformed",
            AppKeyError::Invalid => "api_key_invalid",
            AppKeyError::Revoked => "api_key_revoked",
            AppKeyError::Expired => "api_key_expired",
            AppKeyError::AppDisabled => "app_disabled",
            AppKeyError::AppNotEnabledForTenant => "app_not_enabled_for_tenant",
            AppKeyError::TenantSuspended => "tenant_suspended",
            AppKeyError::TenantDeleted => "tenant_deleted",
            AppKeyError::MissingScope { .. } => "api_key_scope_missing",
            AppKeyError::NotConfigured(_) => "api_key_pepper_missing",
            AppKeyError::Unavailable(_) => "api_key_store_unavailable",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppKeyError::Malformed => ErrorKind::InvalidToken,
            AppKeyError::Invalid => ErrorKind::InvalidToken,
            AppKeyError::Revoked => ErrorKind::InvalidToken,
            AppKeyError::Expired => ErrorKind::InvalidToken,
            AppKeyError::AppDisabled => ErrorKind::InvalidToken,
            AppKeyError::AppNotEnabledForTenant => ErrorKind::Forbidden,
            AppKeyError::TenantSuspended => ErrorKind::Forbidden,
            AppKeyError::TenantDeleted => ErrorKind::Gone,
            AppKeyError::MissingScope { .. } => ErrorKind::Forbidden,
            AppKeyError::NotConfigured(_) => ErrorKind::Unavailable,
            AppKeyError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

crate::kernel::domain_errors!(AppKeyError);

impl From<KvError> for AppKeyError {
    fn from(e: KvError) -> Self {
        AppKeyError::Unavailable(e.to_string())
    }
}

impl From<SqlError> for AppKeyError {
    fn from(e: SqlError) -> Self {
        AppKeyError::Unavailable(e.to_string())
    }
}

/// A key's record as cached in KV under `apikey:{key id}` (JSON). Everything the hot path needs
/// except the app's status (its own marker) and the tenant's (the tenant marker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedKey {
    /// Layout version (`CACHE_VERSION`).
    pub v: u8,
    /// The app.
    pub app_id: AppId,
    /// The bound tenant, if any.
    pub tenant_id: Option<TenantId>,
    /// Server or browser.
    pub kind: KeyKind,
    /// What it may do.
    pub scopes: ScopeSet,
    /// Expiry (unix ms).
    pub expires_at: Option<i64>,
    /// Revocation time (unix ms).
    pub revoked_at: Option<i64>,
    /// For a tenant-bound key, whether the app is enabled for that tenant (`tenant_apps`);
    /// always true for an app-wide key.
    pub tenant_app_enabled: bool,
    /// `api_keys.key_hash`: the keyed hash, never the secret.
    pub hash: String,
}

impl CachedKey {
    /// The record of a row selecting `key_hash`, the [`CachedKey`] fields and
    /// `tenant_app_enabled` (NULL when there is no link).
    fn from_row(row: &Row) -> Result<Self, SqlError> {
        let bad = |e: crate::tenants::ParseError| {
            SqlError::Decode(format!("api_keys row: {}: {e}", e.what))
        };
        let scopes: Vec<String> = serde_json::from_str(&row.text("scopes")?)
            .map_err(|e| SqlError::Decode(format!("column scopes: {e}")))?;
        let tenant_id = row
            .opt_text("tenant_id")?
            .map(|t| TenantId::parse(&t))
            .transpose()
            .map_err(bad)?;
        let linked = row.opt_i64("tenant_app_enabled")? == Some(1);
        Ok(CachedKey {
            v: CACHE_VERSION,
            app_id: AppId::parse(&row.text("app_id")?).map_err(bad)?,
            tenant_app_enabled: tenant_id.is_none() || linked,
            tenant_id,
            kind: KeyKind::parse(&row.text("kind")?).map_err(bad)?,
            scopes: ScopeSet::parse(&scopes).map_err(bad)?,
            expires_at: row.opt_i64("expires_at")?,
            revoked_at: row.opt_i64("revoked_at")?,
            hash: row.text("key_hash")?,
        })
    }
}

/// The cached record of one key, from D1; `None` if there is no such key.
pub(super) async fn load_record<P: Platform>(
    p: &P,
    id: &KeyId,
) -> Result<Option<CachedKey>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT k.app_id, k.tenant_id, k.kind, k.scopes, k.expires_at, k.revoked_at,
                   k.key_hash, ta.enabled AS tenant_app_enabled
                 FROM api_keys k
                 LEFT JOIN tenant_apps ta ON ta.tenant_id = k.tenant_id AND ta.app_id = k.app_id
                 WHERE k.id = ?1",
            )
            .bind(id.as_str()),
        )
        .await?;
    rows.first().map(CachedKey::from_row).transpose()
}

/// The cached records of every key of `app_id` bound to `tenant_id`, from D1.
pub(super) async fn load_tenant_records<P: Platform>(
    p: &P,
    app_id: &AppId,
    tenant_id: &TenantId,
) -> Result<Vec<(KeyId, CachedKey)>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT k.id, k.app_id, k.tenant_id, k.kind, k.scopes, k.expires_at, k.revoked_at,
                   k.key_hash, ta.enabled AS tenant_app_enabled
                 FROM api_keys k
                 LEFT JOIN tenant_apps ta ON ta.tenant_id = k.tenant_id AND ta.app_id = k.app_id
                 WHERE k.tenant_id = ?1 AND k.app_id = ?2",
            )
            .bind(tenant_id.as_str())
            .bind(app_id.as_str()),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id = KeyId::parse(&r.text("id")?)
                .map_err(|e| SqlError::Decode(format!("api_keys row: {e}")))?;
            Ok((id, CachedKey::from_row(r)?))
        })
        .collect()
}

/// Writes a changed key's record to KV with [`KEY_CACHE_TTL_SECS`] and announces the change
/// ([`crate::edge::put`]): revocation, and the app enabled or disabled for the key's tenant.
pub(super) async fn put_record<P: Platform>(
    p: &P,
    id: &KeyId,
    record: &CachedKey,
) -> Result<(), KvError> {
    edge::put(
        p,
        &key_cache_key(id),
        &record_json(record)?,
        Some(KEY_CACHE_TTL_SECS),
    )
    .await
}

/// Writes a key's record to KV as the cache of what D1 holds (a fill, or a new key): nothing
/// changed that an isolate may hold, so nothing is announced. This isolate holds it at once.
pub(super) async fn cache_record<P: Platform>(
    p: &P,
    id: &KeyId,
    record: &CachedKey,
) -> Result<(), KvError> {
    let key = key_cache_key(id);
    edge::fill(p, &key, &record_json(record)?, Some(KEY_CACHE_TTL_SECS)).await?;
    edge::remember(p, &key, Rc::new(Some(record.clone())));
    Ok(())
}

/// A key record's JSON.
fn record_json(record: &CachedKey) -> Result<Vec<u8>, KvError> {
    serde_json::to_vec(record)
        .map_err(|e| KvError::Other(format!("cannot serialise a key record: {e}")))
}

/// Reads a key's record through the isolate's memory ([`crate::edge`]); a missing, unreadable
/// or other-version record is `None`.
async fn get_record<P: Platform>(p: &P, id: &KeyId) -> Result<Rc<Option<CachedKey>>, KvError> {
    edge::read(p, &key_cache_key(id), None, |v| {
        v.and_then(|bytes| serde_json::from_slice::<CachedKey>(&bytes).ok())
            .filter(|r| r.v == CACHE_VERSION)
    })
    .await
}

/// Authenticates a presented API key for an operation needing `required_scope`.
///
/// In order: the key's form (before any I/O), the pepper, the key's record from KV (on a miss:
/// one D1 read, written back with a one-hour TTL), the keyed hash in constant time (so only a
/// holder of the secret learns anything more), revocation, expiry (Clock port), then the app
/// status marker and, for a tenant-bound key, the tenant marker (read concurrently), the
/// app's link to that tenant, and the scope. A warm cache means no SQL at all: two or three KV
/// reads. `last_used_at` is written when the record is read from D1 (at most once per key and
/// [`KEY_CACHE_TTL_SECS`], as long as the cached copy lives), not on every request.
pub async fn authenticate_app_key<P: Platform>(
    p: &P,
    presented: &str,
    required_scope: Scope,
) -> Result<AppKeyPrincipal, AppKeyError> {
    authenticate_app_key_reading(p, presented, required_scope, |_, _| Vec::new()).await
}

/// [`authenticate_app_key`] for a route that reads the KV keys `next(app, tenant)` names once
/// the key is accepted (a flag route: its tenant's snapshot): where the isolate holds nothing of
/// the key's app, they are read in one batch with its markers ([`edge::prefetch`]).
pub async fn authenticate_app_key_reading<P, N>(
    p: &P,
    presented: &str,
    required_scope: Scope,
    next: N,
) -> Result<AppKeyPrincipal, AppKeyError>
where
    P: Platform,
    N: FnOnce(&AppId, Option<&TenantId>) -> Vec<(String, Option<u32>)>,
{
    authenticate_app_key_with(p, presented, required_scope, next, |_| async {})
        .await
        .map(|(principal, ())| principal)
}

/// [`authenticate_app_key`] that also runs `alongside(app_id)` concurrently with the app and
/// tenant marker reads, started only once everything else about the key has passed (its hash,
/// revocation, expiry, the app's link to the tenant, the scope): a route that reads KV for its
/// own work (token introspection) then waits for one round trip instead of two. Its output is
/// returned only with an accepted key; the refusals and their order are those of
/// [`authenticate_app_key`]. `next` names the KV keys `alongside` reads, as in
/// [`authenticate_app_key_reading`].
pub async fn authenticate_app_key_with<P, N, F, Fut>(
    p: &P,
    presented: &str,
    required_scope: Scope,
    next: N,
    alongside: F,
) -> Result<(AppKeyPrincipal, Fut::Output), AppKeyError>
where
    P: Platform,
    N: FnOnce(&AppId, Option<&TenantId>) -> Vec<(String, Option<u32>)>,
    F: FnOnce(&str) -> Fut,
    Fut: Future,
{
    let key = secret::parse_presented(presented).ok_or(AppKeyError::Malformed)?;
    let pepper = Pepper::load(p).map_err(AppKeyError::NotConfigured)?;
    if key.env != pepper.env() {
        return Err(AppKeyError::Invalid);
    }
    let held = get_record(p, &key.id).await?;
    let (record, from_d1) = match held.as_ref() {
        Some(r) => (r.clone(), false),
        None => (fill(p, &key.id).await?.ok_or(AppKeyError::Invalid)?, true),
    };
    check_key_record(p, &pepper, presented, &record)?;
    // Known without I/O, reported after the markers (a disabled app or tenant comes first).
    let usable = usable_for(&record, required_scope);
    let app_marker = app_marker_key(&record.app_id);
    // Where the isolate holds none of them (Spin: an instance per request), the markers and
    // what the route reads next come in one call to the store instead of one each.
    let tenant_marker = record.tenant_id.as_ref().map(edge_marker_key);
    let mut markers = vec![(app_marker.as_str(), None)];
    markers.extend(tenant_marker.as_deref().map(|key| (key, None)));
    edge::prefetch(p, &markers, || match usable {
        Ok(()) => next(&record.app_id, record.tenant_id.as_ref()),
        Err(_) => Vec::new(),
    })
    .await;
    let markers = join2(edge::read(p, &app_marker, None, |v| v.is_some()), async {
        match &record.tenant_id {
            Some(t) => Some(tenant_edge_status(p, t).await),
            None => None,
        }
    });
    let work = async {
        match usable {
            Ok(()) => Ok(alongside(record.app_id.as_str()).await),
            Err(e) => Err(e),
        }
    };
    let ((app, tenant), output) = join2(markers, work).await;
    check_markers(app, tenant)?;
    let output = output?;
    if from_d1 {
        // The record was just read from D1 (first use, or its cached copy expired): note the
        // use then, so `last_used_at` is exact to the cache TTL without a D1 write per request.
        // Best effort: a failed write loses a timestamp, not a request.
        let _ = p
            .sql()
            .execute(last_used_update(&key.id, p.clock().now_ms()))
            .await;
    }
    Ok((principal_of(key.id, record), output))
}

/// Refuses a key whose record `presented` does not match (keyed hash, constant time), then a
/// revoked key, then an expired one (the clock is read only for a key with an expiry).
fn check_key_record<P: Platform>(
    p: &P,
    pepper: &Pepper,
    presented: &str,
    record: &CachedKey,
) -> Result<(), AppKeyError> {
    if !pepper.verify(presented, &record.hash) {
        return Err(AppKeyError::Invalid);
    }
    if record.revoked_at.is_some() {
        return Err(AppKeyError::Revoked);
    }
    if record.expires_at.is_some_and(|at| at <= p.clock().now_ms()) {
        return Err(AppKeyError::Expired);
    }
    Ok(())
}

/// Whether the key of `record` may do an operation needing `required_scope`, as far as its
/// record tells: the app enabled for the key's tenant, then the scope held.
fn usable_for(record: &CachedKey, required_scope: Scope) -> Result<(), AppKeyError> {
    if !record.tenant_app_enabled {
        Err(AppKeyError::AppNotEnabledForTenant)
    } else if !record.scopes.contains(required_scope) {
        Err(AppKeyError::MissingScope {
            required: required_scope,
        })
    } else {
        Ok(())
    }
}

/// Refuses a key whose app marker is set, then one whose tenant marker says suspended or
/// deleted. Any app marker value refuses (fail closed); absent is active.
fn check_markers(
    app: Result<Rc<bool>, KvError>,
    tenant: Option<Result<EdgeStatus, KvError>>,
) -> Result<(), AppKeyError> {
    if *app? {
        return Err(AppKeyError::AppDisabled);
    }
    match tenant.transpose()? {
        Some(EdgeStatus::Suspended) => Err(AppKeyError::TenantSuspended),
        Some(EdgeStatus::Deleted) => Err(AppKeyError::TenantDeleted),
        Some(EdgeStatus::Active) | None => Ok(()),
    }
}

/// Notes that key `id` was used at `now` (`last_used_at`).
fn last_used_update(id: &KeyId, now: i64) -> Stmt {
    Stmt::new("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")
        .bind(id.as_str())
        .bind(now)
}

/// The principal of an accepted key: its id and what its record says.
fn principal_of(key_id: KeyId, record: CachedKey) -> AppKeyPrincipal {
    AppKeyPrincipal {
        key_id,
        app_id: record.app_id,
        tenant_id: record.tenant_id,
        kind: record.kind,
        scopes: record.scopes,
    }
}

/// A cache miss: the record from D1, written back to KV (a failed write is logged; the next
/// request reads D1 again).
async fn fill<P: Platform>(p: &P, id: &KeyId) -> Result<Option<CachedKey>, AppKeyError> {
    let Some(record) = load_record(p, id).await? else {
        return Ok(None);
    };
    if let Err(e) = cache_record(p, id, &record).await {
        let line = serde_json::json!({
            "level": "warn",
            "msg": "API key record not cached; the next request reads D1 again",
            "error": e.to_string(),
        });
        p.logger().line(&line.to_string());
    }
    Ok(Some(record))
}
