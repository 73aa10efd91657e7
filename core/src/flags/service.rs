//! Operators configure a tenant's flags (FR-FLAG-001): list, set, remove. Every change is one
//! atomic batch (the flag row, `tenants.flags_version`, the audit outbox row with the old and the
//! new definition), then the tenant's snapshot is published to KV.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::model::{Flag, FlagDefinition, FlagKey, MAX_FLAGS_PER_TENANT};
use super::snapshot::{self, flag_from_row, PublishError, Published};
use crate::audit::{self, Actor, AuditRecord};
use crate::ids;
use crate::kernel::ErrorKind;
use crate::kernel::TenantId;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// How often a change that lost a race is re-read and retried.
const MAX_ATTEMPTS: usize = 3;

/// A flag as operators see it: the definition and its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlagRecord {
    /// The definition as evaluated.
    #[serde(flatten)]
    pub flag: Flag,
    /// Free text.
    pub description: Option<String>,
    /// True when set for this tenant; false while it mirrors the plan's default.
    pub overridden: bool,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// Who made it (platform user id, or `system:...`).
    pub updated_by: Option<String>,
}

/// A tenant's flags.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlagSet {
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    pub tenant_id: TenantId,
    /// `tenants.flags_version`: bumped by every change of the set.
    pub version: i64,
    /// The flags by key.
    pub flags: Vec<FlagRecord>,
}

/// The outcome of a change.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagChange {
    /// The flag after the change (`None` after a removal without a plan default).
    pub flag: Option<FlagRecord>,
    /// The tenant's flag-set version after the change.
    pub set_version: i64,
    /// True if the flag was created (set) or reverted to its plan default (remove).
    pub created_or_reverted: bool,
    /// Whether the edge snapshot is already written; `Err` names why not (the reconciler cron
    /// repairs it).
    pub edge: Result<(), PublishError>,
}

macro_rules! flag_error {
    ($(#[$doc:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, thiserror::Error)]
        pub enum $name {
            /// No tenant has this id.
            #[error("no tenant {id}")]
            TenantNotFound {
                /// The id.
                id: TenantId,
            },
            /// The tenant was purged (ERR-RES-410).
            #[error("tenant {id} was deleted")]
            TenantGone {
                /// The id.
                id: TenantId,
            },
            /// Concurrent changes kept winning.
            #[error("the flag changed concurrently; retry")]
            ConcurrentChange,
            /// The database failed.
            #[error("storage failed: {0}")]
            Storage(#[from] SqlError),
            $($extra)*
        }
    };
}

flag_error!(
    /// Why the flags of a tenant could not be listed.
    ListFlagsError {}
);

flag_error!(
    /// Why a flag could not be set.
    SetFlagError {
        /// The tenant awaits deletion: restore it first.
        #[error("tenant {id} is pending deletion; restore it to change its flags")]
        TenantPendingDeletion {
            /// The id.
            id: TenantId,
        },
        /// A new flag would pass the per-tenant limit.
        #[error("a tenant may have at most {max} flags")]
        TooManyFlags {
            /// The limit.
            max: i64,
        },
    }
);

flag_error!(
    /// Why a flag could not be removed.
    RemoveFlagError {
        /// The tenant awaits deletion: restore it first.
        #[error("tenant {id} is pending deletion; restore it to change its flags")]
        TenantPendingDeletion {
            /// The id.
            id: TenantId,
        },
        /// The tenant has no flag of this key.
        #[error("tenant has no flag {key}")]
        FlagNotFound {
            /// The key.
            key: FlagKey,
        },
    }
);

impl ListFlagsError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ListFlagsError::TenantNotFound { .. } => "tenant_not_found",
            ListFlagsError::TenantGone { .. } => "tenant_gone",
            ListFlagsError::ConcurrentChange => "concurrent_change",
            ListFlagsError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ListFlagsError::TenantNotFound { .. } => ErrorKind::NotFound,
            ListFlagsError::TenantGone { .. } => ErrorKind::Gone,
            ListFlagsError::ConcurrentChange => ErrorKind::Conflict,
            ListFlagsError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(ListFlagsError);

impl SetFlagError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SetFlagError::TenantNotFound { .. } => "tenant_not_found",
            SetFlagError::TenantGone { .. } => "tenant_gone",
            SetFlagError::TenantPendingDeletion { .. } => "tenant_pending_deletion",
            SetFlagError::TooManyFlags { .. } => "too_many_flags",
            SetFlagError::ConcurrentChange => "concurrent_change",
            SetFlagError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SetFlagError::TenantNotFound { .. } => ErrorKind::NotFound,
            SetFlagError::TenantGone { .. } => ErrorKind::Gone,
            SetFlagError::TenantPendingDeletion { .. } => ErrorKind::Conflict,
            SetFlagError::TooManyFlags { .. } => ErrorKind::Refused,
            SetFlagError::ConcurrentChange => ErrorKind::Conflict,
            SetFlagError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(SetFlagError);

impl RemoveFlagError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RemoveFlagError::TenantNotFound { .. } => "tenant_not_found",
            RemoveFlagError::TenantGone { .. } => "tenant_gone",
            RemoveFlagError::TenantPendingDeletion { .. } => "tenant_pending_deletion",
            RemoveFlagError::FlagNotFound { .. } => "flag_not_found",
            RemoveFlagError::ConcurrentChange => "concurrent_change",
            RemoveFlagError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RemoveFlagError::TenantNotFound { .. } => ErrorKind::NotFound,
            RemoveFlagError::TenantGone { .. } => ErrorKind::Gone,
            RemoveFlagError::TenantPendingDeletion { .. } => ErrorKind::Conflict,
            RemoveFlagError::FlagNotFound { .. } => ErrorKind::NotFound,
            RemoveFlagError::ConcurrentChange => ErrorKind::Conflict,
            RemoveFlagError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(RemoveFlagError);

/// A tenant's status and flag-set version.
struct TenantState {
    status: String,
    flags_version: i64,
}

async fn tenant_state<P: Platform>(
    p: &P,
    tenant: &TenantId,
) -> Result<Option<TenantState>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT status, flags_version FROM tenants WHERE id = ?1")
                .bind(tenant.as_str()),
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(TenantState {
                status: r.text("status")?,
                flags_version: r.i64("flags_version")?,
            })
        })
        .transpose()
}

/// Why a tenant's flags may not change now.
enum Unwritable {
    /// No tenant has this id.
    NotFound(TenantId),
    /// The tenant was purged.
    Gone(TenantId),
    /// The tenant awaits deletion.
    PendingDeletion(TenantId),
    /// The database failed.
    Storage(SqlError),
}

impl From<SqlError> for Unwritable {
    fn from(e: SqlError) -> Self {
        Unwritable::Storage(e)
    }
}

impl From<Unwritable> for SetFlagError {
    fn from(u: Unwritable) -> Self {
        match u {
            Unwritable::NotFound(id) => SetFlagError::TenantNotFound { id },
            Unwritable::Gone(id) => SetFlagError::TenantGone { id },
            Unwritable::PendingDeletion(id) => SetFlagError::TenantPendingDeletion { id },
            Unwritable::Storage(e) => SetFlagError::Storage(e),
        }
    }
}

impl From<Unwritable> for RemoveFlagError {
    fn from(u: Unwritable) -> Self {
        match u {
            Unwritable::NotFound(id) => RemoveFlagError::TenantNotFound { id },
            Unwritable::Gone(id) => RemoveFlagError::TenantGone { id },
            Unwritable::PendingDeletion(id) => RemoveFlagError::TenantPendingDeletion { id },
            Unwritable::Storage(e) => RemoveFlagError::Storage(e),
        }
    }
}

/// The state of a tenant whose flags may change: it exists, is not purged and does not await
/// deletion.
async fn writable_state<P: Platform>(p: &P, tenant: &TenantId) -> Result<TenantState, Unwritable> {
    let Some(state) = tenant_state(p, tenant).await? else {
        return Err(Unwritable::NotFound(tenant.clone()));
    };
    match state.status.as_str() {
        "deleted" => Err(Unwritable::Gone(tenant.clone())),
        "pending_deletion" => Err(Unwritable::PendingDeletion(tenant.clone())),
        _ => Ok(state),
    }
}

/// The bump of the tenant's flag-set version, last in every change's batch: it applies only
/// while the version is the one read, and its count says whether the change applied.
fn bump_set_version(tenant: &TenantId, version: i64) -> Stmt {
    Stmt::new(
        "UPDATE tenants SET flags_version = flags_version + 1
         WHERE id = ?1 AND flags_version = ?2",
    )
    .bind(tenant.as_str())
    .bind(version)
}

/// The columns [`record_from_row`] reads.
macro_rules! flag_columns {
    () => {
        "key, type, value, enabled, rules, version, description, overridden, updated_at, updated_by"
    };
}

/// The condition every statement of a change runs under: the tenant's flag-set version is still
/// the one read (`?1` tenant id, `?2` that version). Every writer of a tenant's flags bumps it,
/// so an unchanged version means an unchanged flag set.
macro_rules! unchanged_set {
    () => {
        "EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND flags_version = ?2)"
    };
}

/// The audit row of a flag change, written only while the tenant's flag set is still at
/// `version` (see [`unchanged_set!`]): it exists exactly when the change applied.
fn audit_if_unchanged(
    tenant: &TenantId,
    version: i64,
    rec: &AuditRecord,
    event_id: &str,
    now: i64,
) -> Stmt {
    let sql = concat!(
        crate::audit_outbox_columns!(),
        " SELECT ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 WHERE ",
        unchanged_set!()
    );
    let guarded = Stmt::new(sql).bind(tenant.as_str()).bind(version);
    audit::bind_row(guarded, rec, event_id, now)
}

fn record_from_row(row: &crate::ports::Row) -> Result<FlagRecord, SqlError> {
    Ok(FlagRecord {
        flag: flag_from_row(row)?,
        description: row.opt_text("description")?,
        overridden: row.i64("overridden")? == 1,
        updated_at: row.i64("updated_at")?,
        updated_by: row.opt_text("updated_by")?,
    })
}

async fn load_flag<P: Platform>(
    p: &P,
    tenant: &TenantId,
    key: &FlagKey,
) -> Result<Option<FlagRecord>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                flag_columns!(),
                " FROM feature_flags WHERE tenant_id = ?1 AND key = ?2"
            ))
            .bind(tenant.as_str())
            .bind(key.as_str()),
        )
        .await?;
    rows.first().map(record_from_row).transpose()
}

/// The audit view of a flag: its definition without bookkeeping.
fn audit_view(r: &FlagRecord) -> Value {
    json!({
        "type": r.flag.flag_type.as_str(),
        "value": r.flag.value,
        "enabled": r.flag.enabled,
        "rules": r.flag.rules,
        "description": r.description,
        "version": r.flag.version,
    })
}

/// The tenant's flags (D1, the truth), by key. Purged tenants answer `TenantGone`.
pub async fn list_flags<P: Platform>(p: &P, tenant: &TenantId) -> Result<FlagSet, ListFlagsError> {
    let Some(state) = tenant_state(p, tenant).await? else {
        return Err(ListFlagsError::TenantNotFound { id: tenant.clone() });
    };
    if state.status == "deleted" {
        return Err(ListFlagsError::TenantGone { id: tenant.clone() });
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(concat!(
                "SELECT ",
                flag_columns!(),
                " FROM feature_flags WHERE tenant_id = ?1 ORDER BY key"
            ))
            .bind(tenant.as_str()),
        )
        .await?;
    Ok(FlagSet {
        tenant_id: tenant.clone(),
        version: state.flags_version,
        flags: rows.iter().map(record_from_row).collect::<Result<_, _>>()?,
    })
}

/// Sets a flag (creates it or replaces its definition), marking it overridden so a plan
/// change leaves it alone. Audited as `flag.create` or `flag.update` with the old and new
/// definition. Setting the same definition again still counts as a change (new version).
pub async fn set_flag<P: Platform>(
    p: &P,
    actor: &Actor,
    tenant: &TenantId,
    key: &FlagKey,
    def: &FlagDefinition,
    request_id: &str,
) -> Result<FlagChange, SetFlagError> {
    let rules = serde_json::to_string(&def.rules)
        .map_err(|e| SqlError::Other(format!("cannot serialise rules: {e}")))?;
    let value = def.value.to_string();
    for _ in 0..MAX_ATTEMPTS {
        let state = writable_state(p, tenant).await?;
        let old = load_flag(p, tenant, key).await?;
        if old.is_none() {
            check_room(p, tenant).await?;
        }
        let now = p.clock().now_ms();
        let new = new_record(actor, key, def, old.as_ref(), now);
        let rec = set_audit(actor, tenant, &new, old.as_ref(), request_id);
        let stmts = set_stmts(p, tenant, state.flags_version, &new, &rec, &rules, &value);
        let counts = p.sql().batch(stmts).await?;
        if counts.last().copied() != Some(1) {
            continue;
        }
        let edge = snapshot::publish(p, tenant).await.map(|_| ());
        return Ok(FlagChange {
            created_or_reverted: old.is_none(),
            flag: Some(new),
            set_version: state.flags_version + 1,
            edge,
        });
    }
    Err(SetFlagError::ConcurrentChange)
}

/// Removes a tenant's flag. If the tenant's plan has a default for the key, the flag reverts
/// to that default (not overridden) instead of disappearing. Audited as `flag.delete`.
pub async fn remove_flag<P: Platform>(
    p: &P,
    actor: &Actor,
    tenant: &TenantId,
    key: &FlagKey,
    request_id: &str,
) -> Result<FlagChange, RemoveFlagError> {
    for _ in 0..MAX_ATTEMPTS {
        let state = writable_state(p, tenant).await?;
        let Some(old) = load_flag(p, tenant, key).await? else {
            return Err(RemoveFlagError::FlagNotFound { key: key.clone() });
        };
        let now = p.clock().now_ms();
        let rec = AuditRecord::success(
            "flag.delete",
            actor,
            Some(tenant.as_str()),
            format!("flag:{tenant}/{key}"),
            Some(request_id),
        )
        .with("key", key.as_str())
        .with("old", audit_view(&old));
        // As in `set_flag`: every statement runs only while the flag-set version is the one
        // read above, and the bump comes last.
        let event_id = audit::new_event_id(p);
        let stmts = vec![
            audit_if_unchanged(tenant, state.flags_version, &rec, &event_id, now),
            Stmt::new(concat!(
                "DELETE FROM feature_flags WHERE tenant_id = ?1 AND key = ?3 AND ",
                unchanged_set!()
            ))
            .bind(tenant.as_str())
            .bind(state.flags_version)
            .bind(key.as_str()),
            // The plan default comes back, one version above the removed flag, so any
            // cache keyed by the flag version sees a change.
            Stmt::new(
                "INSERT INTO feature_flags (id, tenant_id, key, type, value, enabled,
                       description, rules, overridden, version, created_at, updated_at, updated_by)
                     SELECT ?4, ?1, d.key, d.type, d.value, d.enabled, d.description, '[]', 0,
                       ?5, ?6, ?6, ?7
                     FROM plan_default_flags d JOIN tenants t ON t.plan = d.plan
                     WHERE t.id = ?1 AND t.flags_version = ?2 AND d.key = ?3",
            )
            .bind(tenant.as_str())
            .bind(state.flags_version)
            .bind(key.as_str())
            .bind(ids::new_id(p.random()))
            .bind(old.flag.version + 1)
            .bind(now)
            .bind(actor.id.as_str()),
            bump_set_version(tenant, state.flags_version),
        ];
        let counts = p.sql().batch(stmts).await?;
        if counts.last().copied() != Some(1) {
            continue;
        }
        let reverted = counts.get(2).copied() == Some(1);
        let flag = if reverted {
            load_flag(p, tenant, key).await?
        } else {
            None
        };
        let edge = snapshot::publish(p, tenant).await.map(|_| ());
        return Ok(FlagChange {
            flag,
            set_version: state.flags_version + 1,
            created_or_reverted: reverted,
            edge,
        });
    }
    Err(RemoveFlagError::ConcurrentChange)
}

/// Publishes the tenant's snapshot (after any change of its flags, plan or apps made
/// elsewhere). Failures are for the log: the reconciler cron repairs them.
pub async fn republish<P: Platform>(p: &P, tenant: &TenantId) -> Result<Published, PublishError> {
    snapshot::publish(p, tenant).await
}

/// Refuses a new flag past the per-tenant limit.
async fn check_room<P: Platform>(p: &P, tenant: &TenantId) -> Result<(), SetFlagError> {
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT COUNT(*) AS n FROM feature_flags WHERE tenant_id = ?1")
                .bind(tenant.as_str()),
        )
        .await?;
    if rows.first().map(|r| r.i64("n")).transpose()?.unwrap_or(0) >= MAX_FLAGS_PER_TENANT {
        return Err(SetFlagError::TooManyFlags {
            max: MAX_FLAGS_PER_TENANT,
        });
    }
    Ok(())
}

/// The flag as `def` sets it: overridden, one version above the `old` one (or 1).
fn new_record(
    actor: &Actor,
    key: &FlagKey,
    def: &FlagDefinition,
    old: Option<&FlagRecord>,
    now: i64,
) -> FlagRecord {
    FlagRecord {
        flag: Flag {
            key: key.clone(),
            flag_type: def.flag_type,
            value: def.value.clone(),
            enabled: def.enabled,
            rules: def.rules.clone(),
            version: old.map_or(1, |o| o.flag.version + 1),
        },
        description: def.description.clone(),
        overridden: true,
        updated_at: now,
        updated_by: Some(actor.id.clone()),
    }
}

/// The audit record of a set: `flag.create`, or `flag.update` with the old definition too.
fn set_audit(
    actor: &Actor,
    tenant: &TenantId,
    new: &FlagRecord,
    old: Option<&FlagRecord>,
    request_id: &str,
) -> AuditRecord {
    let key = &new.flag.key;
    let action = if old.is_some() {
        "flag.update"
    } else {
        "flag.create"
    };
    let mut rec = AuditRecord::success(
        action,
        actor,
        Some(tenant.as_str()),
        format!("flag:{tenant}/{key}"),
        Some(request_id),
    )
    .with("key", key.as_str())
    .with("new", audit_view(new));
    if let Some(o) = old {
        rec = rec.with("old", audit_view(o));
    }
    rec
}

/// The batch of a set: the audit row, the flag `new` upserted (with its `rules` and `value` as
/// JSON; who and when from the record), the flag-set version bumped.
fn set_stmts<P: Platform>(
    p: &P,
    tenant: &TenantId,
    version: i64,
    new: &FlagRecord,
    rec: &AuditRecord,
    rules: &str,
    value: &str,
) -> Vec<Stmt> {
    let now = new.updated_at;
    // Every statement runs only while the tenant's flag-set version is the one read: every
    // writer of a tenant's flags bumps it, so an unchanged version means an unchanged flag
    // set. The bump comes last; after a concurrent change nothing applies and the caller
    // re-reads.
    let event_id = audit::new_event_id(p);
    vec![
        audit_if_unchanged(tenant, version, rec, &event_id, now),
        Stmt::new(concat!(
            "INSERT INTO feature_flags (id, tenant_id, key, type, value, enabled,
               description, rules, overridden, version, created_at, updated_at, updated_by)
             SELECT ?3, ?1, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?11, ?12
             WHERE ",
            unchanged_set!(),
            " ON CONFLICT (tenant_id, key) DO UPDATE SET type = excluded.type,
               value = excluded.value, enabled = excluded.enabled,
               description = excluded.description, rules = excluded.rules,
               overridden = 1, version = excluded.version,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by"
        ))
        .bind(tenant.as_str())
        .bind(version)
        .bind(ids::new_id(p.random()))
        .bind(new.flag.key.as_str())
        .bind(new.flag.flag_type.as_str())
        .bind(value)
        .bind(i64::from(new.flag.enabled))
        .bind(new.description.as_deref())
        .bind(rules)
        .bind(new.flag.version)
        .bind(now)
        .bind(new.updated_by.as_deref()),
        bump_set_version(tenant, version),
    ]
}
