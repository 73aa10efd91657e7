//! Issuing and revoking API keys (FR-SYS-002): the secret is returned once and stored only as a
//! keyed hash; the key's record is cached in KV at issuance and rewritten at revocation.

use std::fmt;

use super::authn::{cache_record, load_record, put_record, CachedKey};
use super::model::{ApiKey, AppId, AppStatus, KeyId, KeyKind, KeyName, Scope, ScopeSet};
use super::secret::{self, Pepper, PepperProblem};
use super::{audit_if, load, Guard};
use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, KvError, Logger, Platform, Sql, SqlError, Stmt};
use crate::tenants::{self, EdgeSync, TenantId, TenantStatus};

/// What an operator asks for (the body of `POST /v1/apps/{id}/keys`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueKey {
    /// What the key may do.
    pub scopes: ScopeSet,
    /// The tenant to bind it to; `None` for an app-wide key.
    pub tenant_id: Option<TenantId>,
    /// When it stops working (unix ms, in the future); `None` never.
    pub expires_at: Option<i64>,
    /// Server (default) or browser.
    pub kind: KeyKind,
    /// Optional label.
    pub name: Option<KeyName>,
}

/// A key just issued: its metadata and the full key, which is never shown again.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The key as listed.
    pub key: ApiKey,
    /// `ep_<env>_<key id>_<secret>`: the only copy; not stored, logged or audited.
    pub secret: String,
    /// False when the KV record could not be written (the first use then reads D1).
    pub cached: bool,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .field("cached", &self.cached)
            .finish()
    }
}

/// Why a key was not issued. Nothing was written, except an audit record of a conflict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IssueKeyError {
    /// No app has this id.
    #[error("no app {id}")]
    AppNotFound {
        /// The id asked for.
        id: AppId,
    },
    /// The app is disabled: enable it before issuing keys.
    #[error("app {id} is disabled")]
    AppDisabled {
        /// The app.
        id: AppId,
    },
    /// No live tenant has this id (unknown or purged).
    #[error("no tenant {id}")]
    TenantNotFound {
        /// The id asked for.
        id: TenantId,
    },
    /// The tenant is pending deletion.
    #[error("tenant {id} is pending deletion")]
    TenantPendingDeletion {
        /// The tenant.
        id: TenantId,
    },
    /// The app is not enabled for the tenant (`POST /v1/tenants/{id}/apps/{app_id}`).
    #[error("the app is not enabled for tenant {id}")]
    AppNotEnabledForTenant {
        /// The tenant.
        id: TenantId,
    },
    /// A browser key must be bound to a tenant.
    #[error("a browser key must be bound to a tenant")]
    BrowserKeyNeedsTenant,
    /// A browser key may only hold `flags:read`.
    #[error("a browser key may only hold the flags:read scope")]
    BrowserKeyScopes,
    /// A browser key needs the app to list its allowed origins.
    #[error("a browser key needs the app to have allowed_origins")]
    BrowserKeyNeedsOrigins,
    /// `expires_at` is not in the future.
    #[error("expires_at must be in the future")]
    ExpiryNotInFuture,
    /// `API_KEY_PEPPER` is missing or too short in a deployment.
    #[error("{0}")]
    NotConfigured(PepperProblem),
    /// The database failed; nothing was issued.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl IssueKeyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IssueKeyError::AppNotFound { .. } => "app_not_found",
            IssueKeyError::AppDisabled { .. } => "app_disabled",
            IssueKeyError::TenantNotFound { .. } => "tenant_not_found",
            IssueKeyError::TenantPendingDeletion { .. } => "tenant_pending_deletion",
            IssueKeyError::AppNotEnabledForTenant { .. } => "app_not_enabled_for_tenant",
            IssueKeyError::BrowserKeyNeedsTenant => "browser_key_needs_tenant",
            IssueKeyError::BrowserKeyScopes => "browser_key_scopes",
            IssueKeyError::BrowserKeyNeedsOrigins => "browser_key_needs_origins",
            IssueKeyError::ExpiryNotInFuture => "expiry_not_in_future",
            IssueKeyError::NotConfigured(_) => "api_key_pepper_missing",
            IssueKeyError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IssueKeyError::AppNotFound { .. } => ErrorKind::NotFound,
            IssueKeyError::AppDisabled { .. } => ErrorKind::Conflict,
            IssueKeyError::TenantNotFound { .. } => ErrorKind::NotFound,
            IssueKeyError::TenantPendingDeletion { .. } => ErrorKind::Conflict,
            IssueKeyError::AppNotEnabledForTenant { .. } => ErrorKind::RefusedField("tenant_id"),
            IssueKeyError::BrowserKeyNeedsTenant => ErrorKind::InvalidField("tenant_id"),
            IssueKeyError::BrowserKeyScopes => ErrorKind::InvalidField("scopes"),
            IssueKeyError::BrowserKeyNeedsOrigins => ErrorKind::InvalidField("kind"),
            IssueKeyError::ExpiryNotInFuture => ErrorKind::RefusedField("expires_at"),
            IssueKeyError::NotConfigured(_) => ErrorKind::Unavailable,
            IssueKeyError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(IssueKeyError);

/// What a revocation did.
#[derive(Debug, Clone, PartialEq)]
pub struct RevokeOutcome {
    /// The key afterwards.
    pub key: ApiKey,
    /// False when it was already revoked (no D1 write, no audit record).
    pub changed: bool,
    /// Whether the KV record now says revoked. `Pending`: the key may still be accepted at the
    /// edge until its cached record expires; repeat the revocation.
    pub edge: EdgeSync,
}

/// Why a revocation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RevokeKeyError {
    /// No app has this id.
    #[error("no app {id}")]
    AppNotFound {
        /// The id asked for.
        id: AppId,
    },
    /// The app has no key with this id.
    #[error("the app has no key {id}")]
    KeyNotFound {
        /// The id asked for.
        id: KeyId,
    },
    /// The database failed; nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl RevokeKeyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RevokeKeyError::AppNotFound { .. } => "app_not_found",
            RevokeKeyError::KeyNotFound { .. } => "key_not_found",
            RevokeKeyError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RevokeKeyError::AppNotFound { .. } => ErrorKind::NotFound,
            RevokeKeyError::KeyNotFound { .. } => ErrorKind::NotFound,
            RevokeKeyError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(RevokeKeyError);

/// Issues a key (FR-SYS-002). Checks, in order: the pepper (a deployment without
/// `API_KEY_PEPPER` issues nothing), `expires_at` in the future, the browser-key rules
/// (tenant-bound, `flags:read` only, the app has allowed origins), the app (exists, active),
/// the tenant (live, not pending deletion, the app enabled for it). Then one batch writes
/// the key (only the keyed hash) and `api_key.issue` (key id, kind, scopes, tenant, expiry;
/// never the secret or hash), guarded so that a concurrent disable of the app or of its
/// link to the tenant leaves nothing written. Finally the key's record is put in KV.
pub async fn issue_key<P: Platform>(
    p: &P,
    actor: &Actor,
    app_id: &AppId,
    req: IssueKey,
    request_id: &str,
) -> Result<IssuedKey, IssueKeyError> {
    let pepper = Pepper::load(p).map_err(IssueKeyError::NotConfigured)?;
    let now = p.clock().now_ms();
    check_request(&req, now)?;
    for attempt in 0..2 {
        check(p, actor, app_id, &req, request_id).await?;
        let (key, full) = new_api_key(p, app_id, &req, &pepper, now)?;
        let hash = pepper.hash(&full);
        let stmts = issue_stmts(p, actor, &key, &hash, now, request_id);
        let counts = p.sql().batch(stmts).await?;
        if counts.first().copied() != Some(1) {
            // Something changed between the checks and the batch: check again, which
            // names what (or, if all is well again, issue on the second attempt).
            if attempt == 0 {
                continue;
            }
            return Err(SqlError::Other("api key insert kept being refused".into()).into());
        }
        let cached = cache_issued(p, &key, hash, request_id).await;
        return Ok(IssuedKey {
            key,
            secret: full,
            cached,
        });
    }
    Err(SqlError::Other("api key insert kept being refused".into()).into())
}

/// Revokes a key of an app (FR-SYS-002): `revoked_at` set and `api_key.revoke` audited in
/// one batch, then the KV record rewritten from D1 so the edge refuses the key at once.
/// Revoking a revoked key changes nothing and rewrites the record (so a repeat repairs a
/// failed write).
pub async fn revoke_key<P: Platform>(
    p: &P,
    actor: &Actor,
    app_id: &AppId,
    key_id: &KeyId,
    request_id: &str,
) -> Result<RevokeOutcome, RevokeKeyError> {
    if load(p, app_id).await?.is_none() {
        return Err(RevokeKeyError::AppNotFound { id: app_id.clone() });
    }
    let key = load_key(p, app_id, key_id)
        .await?
        .ok_or_else(|| RevokeKeyError::KeyNotFound { id: key_id.clone() })?;
    let mut changed = false;
    let mut key = key;
    if key.revoked_at.is_none() {
        let now = p.clock().now_ms();
        let rec = AuditRecord::success(
            "api_key.revoke",
            actor,
            key.tenant_id.as_ref().map(TenantId::as_str),
            format!("api_key:{key_id}"),
            Some(request_id),
        )
        .with("key_id", key_id.as_str())
        .with("app_id", app_id.as_str());
        let counts = p
            .sql()
            .batch(vec![
                audit_if(
                    &rec,
                    &audit::new_event_id(p),
                    now,
                    Guard::KeyLive {
                        key_id: key_id.as_str(),
                    },
                ),
                Stmt::new(
                    "UPDATE api_keys SET revoked_at = ?3
                         WHERE id = ?1 AND app_id = ?2 AND revoked_at IS NULL",
                )
                .bind(key_id.as_str())
                .bind(app_id.as_str())
                .bind(now),
            ])
            .await?;
        changed = counts.last().copied() == Some(1);
        // A concurrent revocation may have won: the row says when.
        key = load_key(p, app_id, key_id)
            .await?
            .ok_or_else(|| RevokeKeyError::KeyNotFound { id: key_id.clone() })?;
    }
    let edge = refresh(p, key_id).await;
    Ok(RevokeOutcome { key, changed, edge })
}

/// The checks of an issuance that need no database: `expires_at` in the future, and a browser
/// key tenant-bound with `flags:read` only.
fn check_request(req: &IssueKey, now: i64) -> Result<(), IssueKeyError> {
    if req.expires_at.is_some_and(|at| at <= now) {
        return Err(IssueKeyError::ExpiryNotInFuture);
    }
    if req.kind == KeyKind::Browser {
        if req.tenant_id.is_none() {
            return Err(IssueKeyError::BrowserKeyNeedsTenant);
        }
        if req.scopes.as_slice() != [Scope::FlagsRead] {
            return Err(IssueKeyError::BrowserKeyScopes);
        }
    }
    Ok(())
}

/// A new key as requested, with a fresh id and secret; returns it with the full key string.
fn new_api_key<P: Platform>(
    p: &P,
    app_id: &AppId,
    req: &IssueKey,
    pepper: &Pepper,
    now: i64,
) -> Result<(ApiKey, String), IssueKeyError> {
    let id = KeyId::generate(p)?;
    let new = secret::new_key(p.random(), pepper.env(), &id);
    let key = ApiKey {
        id,
        app_id: app_id.clone(),
        tenant_id: req.tenant_id.clone(),
        kind: req.kind,
        name: req.name.clone(),
        prefix: new.prefix,
        scopes: req.scopes.clone(),
        created_at: now,
        expires_at: req.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    Ok((key, new.full))
}

/// The issuance batch: the key (only its keyed `hash`) and `api_key.issue` (never the secret
/// or hash), written only while the app is active and, for a tenant-bound key, the tenant is
/// live (not pending deletion) with the app enabled: the checks, again, inside the transaction.
fn issue_stmts<P: Platform>(
    p: &P,
    actor: &Actor,
    key: &ApiKey,
    hash: &str,
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let id = &key.id;
    let rec = AuditRecord::success(
        "api_key.issue",
        actor,
        key.tenant_id.as_ref().map(TenantId::as_str),
        format!("api_key:{id}"),
        Some(request_id),
    )
    .with("key_id", id.as_str())
    .with("app_id", key.app_id.as_str())
    .with("kind", key.kind.as_str())
    .with("scopes", key.scopes.names())
    .with("expires_at", key.expires_at);
    vec![
        Stmt::new(
            "INSERT INTO api_keys (id, app_id, tenant_id, kind, name, prefix, key_hash,
               scopes, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE EXISTS (SELECT 1 FROM apps WHERE id = ?2 AND status = 'active'
                             AND id <> 'edgeplane-console')
               AND (?3 IS NULL OR EXISTS (
                 SELECT 1 FROM tenants t JOIN tenant_apps ta ON ta.tenant_id = t.id
                 WHERE t.id = ?3 AND t.status IN ('active', 'suspended')
                   AND ta.app_id = ?2 AND ta.enabled = 1))",
        )
        .bind(id.as_str())
        .bind(key.app_id.as_str())
        .bind(key.tenant_id.as_ref().map(TenantId::as_str))
        .bind(key.kind.as_str())
        .bind(key.name.as_ref().map(KeyName::as_str))
        .bind(key.prefix.as_str())
        .bind(hash)
        .bind(serde_json::Value::from(key.scopes.names()).to_string())
        .bind(now)
        .bind(key.expires_at),
        audit_if(
            &rec,
            &audit::new_event_id(p),
            now,
            Guard::KeyExists {
                key_id: id.as_str(),
            },
        ),
    ]
}

/// Puts the issued key's record in KV; false (logged) when it could not, and its first use then
/// reads D1.
async fn cache_issued<P: Platform>(p: &P, key: &ApiKey, hash: String, request_id: &str) -> bool {
    let record = CachedKey {
        v: 1,
        app_id: key.app_id.clone(),
        tenant_id: key.tenant_id.clone(),
        kind: key.kind,
        scopes: key.scopes.clone(),
        expires_at: key.expires_at,
        revoked_at: None,
        tenant_app_enabled: true,
        hash,
    };
    match cache_record(p, &key.id, &record).await {
        Ok(()) => true,
        Err(e) => {
            let line = serde_json::json!({
                "level": "warn",
                "msg": "issued API key not cached; its first use reads D1",
                "request_id": request_id,
                "error": e.to_string(),
            });
            p.logger().line(&line.to_string());
            false
        }
    }
}

/// The checks of an issuance that read the database; refusals of state are audited.
async fn check<P: Platform>(
    p: &P,
    actor: &Actor,
    app_id: &AppId,
    req: &IssueKey,
    request_id: &str,
) -> Result<(), IssueKeyError> {
    let app = load(p, app_id)
        .await?
        .ok_or_else(|| IssueKeyError::AppNotFound { id: app_id.clone() })?;
    if app.status == AppStatus::Disabled {
        refuse(p, actor, app_id, None, request_id, "app_disabled").await;
        return Err(IssueKeyError::AppDisabled { id: app_id.clone() });
    }
    if req.kind == KeyKind::Browser && app.allowed_origins.is_empty() {
        return Err(IssueKeyError::BrowserKeyNeedsOrigins);
    }
    let Some(tid) = &req.tenant_id else {
        return Ok(());
    };
    let tenant = match tenants::get(p, tid).await {
        Ok(t) => t,
        Err(crate::tenants::GetTenantError::Storage(e)) => return Err(e.into()),
        Err(_) => return Err(IssueKeyError::TenantNotFound { id: tid.clone() }),
    };
    if tenant.status == TenantStatus::PendingDeletion {
        refuse(
            p,
            actor,
            app_id,
            Some(tid),
            request_id,
            "tenant_pending_deletion",
        )
        .await;
        return Err(IssueKeyError::TenantPendingDeletion { id: tid.clone() });
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT 1 AS found FROM tenant_apps
                 WHERE tenant_id = ?1 AND app_id = ?2 AND enabled = 1",
            )
            .bind(tid.as_str())
            .bind(app_id.as_str()),
        )
        .await?;
    if rows.is_empty() {
        return Err(IssueKeyError::AppNotEnabledForTenant { id: tid.clone() });
    }
    Ok(())
}

/// Audits a refused issuance.
async fn refuse<P: Platform>(
    p: &P,
    actor: &Actor,
    app_id: &AppId,
    tenant_id: Option<&TenantId>,
    request_id: &str,
    reason: &'static str,
) {
    let rec = AuditRecord::failure(
        "api_key.issue",
        actor,
        tenant_id.map(TenantId::as_str),
        "api_key",
        Some(request_id),
    )
    .with("app_id", app_id.as_str())
    .with("reason", reason);
    audit::record_refusal(p, &rec).await;
}

/// A key of an app, without its hash; `None` if the app has no key with this id.
async fn load_key<P: Platform>(
    p: &P,
    app_id: &AppId,
    key_id: &KeyId,
) -> Result<Option<ApiKey>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                super::model::key_columns!(),
                " FROM api_keys WHERE id = ?1 AND app_id = ?2"
            ))
            .bind(key_id.as_str())
            .bind(app_id.as_str()),
        )
        .await?;
    rows.first().map(ApiKey::from_row).transpose()
}

/// Rewrites one key's KV record from D1 (deleting it if the key is gone).
pub(super) async fn refresh<P: Platform>(p: &P, key_id: &KeyId) -> EdgeSync {
    let result = match load_record(p, key_id).await {
        Ok(Some(record)) => put_record(p, key_id, &record).await,
        Ok(None) => crate::edge::delete(p, &super::key_cache_key(key_id)).await,
        Err(e) => Err(KvError::Other(format!(
            "cannot read the key to cache it: {e}"
        ))),
    };
    match result {
        Ok(()) => EdgeSync::Synced,
        Err(error) => EdgeSync::Pending { error },
    }
}
