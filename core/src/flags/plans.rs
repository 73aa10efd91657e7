//! The flags every tenant of a plan starts with (`plan_default_flags`, FR-FLAG-001,
//! FR-TENANT-003). Operators set and remove them; a change reaches, in the same batch, every
//! live tenant of the plan whose flag is not overridden, and those tenants' snapshots are then
//! republished (the first few at once, the rest by the reconciler cron).

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::model::{FlagKey, FlagType};
use super::snapshot;
use crate::audit::{self, Actor, AuditRecord};
use crate::ids;
use crate::kernel::ErrorKind;
use crate::kernel::Plan;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// How many affected tenants a change republishes before answering; the reconciler cron
/// publishes the rest (their flag-set version was bumped in the batch).
pub const INLINE_PUBLISH: usize = 25;

/// A plan's default flag.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanFlag {
    /// The plan.
    #[schema(value_type = String)]
    pub plan: Plan,
    /// The key.
    #[schema(value_type = String)]
    pub key: FlagKey,
    /// Its type.
    #[serde(rename = "type")]
    #[schema(inline)]
    pub flag_type: FlagType,
    /// Its value.
    pub value: Value,
    /// Whether it serves.
    pub enabled: bool,
    /// Free text.
    pub description: Option<String>,
    /// Last change (unix ms).
    pub updated_at: i64,
}

/// What a change of a plan default did to the plan's tenants.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanFlagChange {
    /// The default after the change (null after a removal).
    #[schema(required = true, schema_with = plan_flag_or_null)]
    pub flag: Option<PlanFlag>,
    /// Tenants of the plan whose (not overridden) flag changed.
    pub tenants_changed: u64,
    /// Of those, how many snapshots were republished before answering; the reconciler cron
    /// republishes the others.
    pub tenants_published: u64,
}

/// A [`PlanFlag`] or null, the flag listed first as the document has it (utoipa lists null
/// first for an `Option`).
fn plan_flag_or_null() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{Object, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name(PlanFlag::name()))
        .item(Object::with_type(Type::Null))
        .build()
        .into()
}

/// Why plan defaults could not be read or changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanFlagError {
    /// No plan has this name.
    #[error("no plan {plan}")]
    PlanNotFound {
        /// The name.
        plan: Plan,
    },
    /// The plan has no default of this key.
    #[error("plan has no default flag {key}")]
    FlagNotFound {
        /// The key.
        key: FlagKey,
    },
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl PlanFlagError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PlanFlagError::PlanNotFound { .. } => "plan_not_found",
            PlanFlagError::FlagNotFound { .. } => "flag_not_found",
            PlanFlagError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlanFlagError::PlanNotFound { .. } => ErrorKind::NotFound,
            PlanFlagError::FlagNotFound { .. } => ErrorKind::NotFound,
            PlanFlagError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(PlanFlagError);

fn from_row(plan: &Plan, row: &crate::ports::Row) -> Result<PlanFlag, SqlError> {
    let decode =
        |what: &str, e: String| SqlError::Decode(format!("plan_default_flags.{what}: {e}"));
    Ok(PlanFlag {
        plan: plan.clone(),
        key: FlagKey::parse(&row.text("key")?).map_err(|e| decode("key", e.to_string()))?,
        flag_type: FlagType::parse(&row.text("type")?)
            .map_err(|e| decode("type", e.to_string()))?,
        value: serde_json::from_str(&row.text("value")?)
            .map_err(|e| decode("value", e.to_string()))?,
        enabled: row.i64("enabled")? == 1,
        description: row.opt_text("description")?,
        updated_at: row.i64("updated_at")?,
    })
}

async fn check_plan<P: Platform>(p: &P, plan: &Plan) -> Result<(), PlanFlagError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT 1 AS found FROM plans WHERE name = ?1").bind(plan.as_str()))
        .await?;
    if rows.is_empty() {
        return Err(PlanFlagError::PlanNotFound { plan: plan.clone() });
    }
    Ok(())
}

async fn load<P: Platform>(
    p: &P,
    plan: &Plan,
    key: &FlagKey,
) -> Result<Option<PlanFlag>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT key, type, value, enabled, description, updated_at FROM plan_default_flags
                 WHERE plan = ?1 AND key = ?2",
            )
            .bind(plan.as_str())
            .bind(key.as_str()),
        )
        .await?;
    rows.first().map(|r| from_row(plan, r)).transpose()
}

fn audit_view(f: &PlanFlag) -> Value {
    json!({
        "type": f.flag_type.as_str(),
        "value": f.value,
        "enabled": f.enabled,
        "description": f.description,
    })
}

/// The live tenants of the plan with no row of `key`: they get the new default.
async fn tenants_without<P: Platform>(
    p: &P,
    plan: &Plan,
    key: &FlagKey,
) -> Result<Vec<String>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id FROM tenants t WHERE plan = ?1 AND status <> 'deleted'
                   AND NOT EXISTS (SELECT 1 FROM feature_flags f WHERE f.tenant_id = t.id AND f.key = ?2)",
            )
            .bind(plan.as_str())
            .bind(key.as_str()),
        )
        .await?;
    rows.iter().map(|r| r.text("id")).collect()
}

/// Republishes up to [`INLINE_PUBLISH`] tenants whose snapshot lags; returns how many.
async fn publish_some<P: Platform>(p: &P) -> u64 {
    match snapshot::reconcile(p, INLINE_PUBLISH as u32).await {
        Ok((done, _)) => u64::from(done),
        Err(_) => 0,
    }
}

/// A plan's default flags, by key.
pub async fn list_plan_flags<P: Platform>(
    p: &P,
    plan: &Plan,
) -> Result<Vec<PlanFlag>, PlanFlagError> {
    check_plan(p, plan).await?;
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT key, type, value, enabled, description, updated_at
                     FROM plan_default_flags WHERE plan = ?1 ORDER BY key",
            )
            .bind(plan.as_str()),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| from_row(plan, r))
        .collect::<Result<_, _>>()?)
}

/// Sets a plan's default flag. In the same batch: every live tenant of the plan whose flag
/// of this key is not overridden gets the new definition (a new version), tenants without
/// the key get it, their flag-set versions are bumped, and `plan_flag.set` is audited with
/// the old and new default. Overridden flags are left alone.
#[allow(clippy::too_many_arguments)]
pub async fn set_plan_flag<P: Platform>(
    p: &P,
    actor: &Actor,
    plan: &Plan,
    key: &FlagKey,
    flag_type: FlagType,
    value: &Value,
    enabled: bool,
    description: Option<&str>,
    request_id: &str,
) -> Result<PlanFlagChange, PlanFlagError> {
    check_plan(p, plan).await?;
    let old = load(p, plan, key).await?;
    let now = p.clock().now_ms();
    let missing = tenants_without(p, plan, key).await?;
    let pairs = new_flag_ids(p, &missing);
    let new = NewDefault {
        flag_type,
        value,
        value_text: value.to_string(),
        enabled,
        description,
    };
    let rec = set_audit(actor, plan, key, &new, old.as_ref(), request_id);
    let mut stmts = vec![
        audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        upsert_default(plan, key, &new, now),
    ];
    stmts.extend(follow_default(plan, key, &new, now, actor));
    stmts.extend(add_to_missing(key, &new, &missing, pairs, now, actor));
    let counts = p.sql().batch(stmts).await?;
    let changed = counts.get(3).copied().unwrap_or(0) + counts.get(4).copied().unwrap_or(0);
    let published = publish_some(p).await;
    Ok(PlanFlagChange {
        flag: load(p, plan, key).await?,
        tenants_changed: changed,
        tenants_published: published.min(changed),
    })
}

/// Removes a plan's default flag; every live tenant of the plan loses its non-overridden
/// flag of that key (overridden flags stay). Audited as `plan_flag.delete`.
pub async fn remove_plan_flag<P: Platform>(
    p: &P,
    actor: &Actor,
    plan: &Plan,
    key: &FlagKey,
    request_id: &str,
) -> Result<PlanFlagChange, PlanFlagError> {
    check_plan(p, plan).await?;
    let Some(old) = load(p, plan, key).await? else {
        return Err(PlanFlagError::FlagNotFound { key: key.clone() });
    };
    let now = p.clock().now_ms();
    let rec = AuditRecord::success(
        "plan_flag.delete",
        actor,
        None,
        format!("plan_flag:{plan}/{key}"),
        Some(request_id),
    )
    .with("plan", plan.as_str())
    .with("key", key.as_str())
    .with("old", audit_view(&old));
    let stmts = vec![
        audit::outbox_insert(&rec, &audit::new_event_id(p), now),
        Stmt::new(
            "UPDATE tenants SET flags_version = flags_version + 1
                 WHERE plan = ?1 AND status <> 'deleted' AND id IN (
                   SELECT tenant_id FROM feature_flags WHERE key = ?2 AND overridden = 0)",
        )
        .bind(plan.as_str())
        .bind(key.as_str()),
        Stmt::new(
            "DELETE FROM feature_flags WHERE key = ?2 AND overridden = 0
                   AND tenant_id IN (SELECT id FROM tenants WHERE plan = ?1 AND status <> 'deleted')",
        )
        .bind(plan.as_str())
        .bind(key.as_str()),
        Stmt::new("DELETE FROM plan_default_flags WHERE plan = ?1 AND key = ?2")
            .bind(plan.as_str())
            .bind(key.as_str()),
    ];
    let counts = p.sql().batch(stmts).await?;
    let changed = counts.get(2).copied().unwrap_or(0);
    let published = publish_some(p).await;
    Ok(PlanFlagChange {
        flag: None,
        tenants_changed: changed,
        tenants_published: published.min(changed),
    })
}

/// A plan default as it is being set.
struct NewDefault<'a> {
    /// Its type.
    flag_type: FlagType,
    /// Its value.
    value: &'a Value,
    /// Its value as stored (JSON text).
    value_text: String,
    /// Whether it serves.
    enabled: bool,
    /// Free text.
    description: Option<&'a str>,
}

/// A JSON array of `[tenant id, new flag id]` for each tenant in `missing` (ids from the Random
/// port).
fn new_flag_ids<P: Platform>(p: &P, missing: &[String]) -> String {
    let pairs: Vec<Value> = missing
        .iter()
        .map(|t| json!([t, ids::new_id(p.random())]))
        .collect();
    Value::Array(pairs).to_string()
}

/// The audit record `plan_flag.set` with the new default and the old one, if any.
fn set_audit(
    actor: &Actor,
    plan: &Plan,
    key: &FlagKey,
    new: &NewDefault<'_>,
    old: Option<&PlanFlag>,
    request_id: &str,
) -> AuditRecord {
    let mut rec = AuditRecord::success(
        "plan_flag.set",
        actor,
        None,
        format!("plan_flag:{plan}/{key}"),
        Some(request_id),
    )
    .with("plan", plan.as_str())
    .with("key", key.as_str())
    .with(
        "new",
        json!({"type": new.flag_type.as_str(), "value": new.value, "enabled": new.enabled, "description": new.description}),
    );
    if let Some(o) = old {
        rec = rec.with("old", audit_view(o));
    }
    rec
}

/// The plan's default row, created or replaced.
fn upsert_default(plan: &Plan, key: &FlagKey, new: &NewDefault<'_>, now: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO plan_default_flags (plan, key, type, value, enabled, description, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (plan, key) DO UPDATE SET type = excluded.type, value = excluded.value,
           enabled = excluded.enabled, description = excluded.description,
           updated_at = excluded.updated_at",
    )
    .bind(plan.as_str())
    .bind(key.as_str())
    .bind(new.flag_type.as_str())
    .bind(new.value_text.as_str())
    .bind(i64::from(new.enabled))
    .bind(new.description)
    .bind(now)
}

/// The live tenants of the plan whose non-overridden flag differs from the new default: their
/// flag-set version bumped first, while the difference is still visible, then the flag
/// rewritten (a new version).
fn follow_default(
    plan: &Plan,
    key: &FlagKey,
    new: &NewDefault<'_>,
    now: i64,
    actor: &Actor,
) -> [Stmt; 2] {
    [
        Stmt::new(
            "UPDATE tenants SET flags_version = flags_version + 1
             WHERE plan = ?1 AND status <> 'deleted' AND id IN (
               SELECT tenant_id FROM feature_flags WHERE key = ?2 AND overridden = 0
                 AND (type IS NOT ?3 OR value IS NOT ?4 OR enabled IS NOT ?5
                   OR description IS NOT ?6))",
        )
        .bind(plan.as_str())
        .bind(key.as_str())
        .bind(new.flag_type.as_str())
        .bind(new.value_text.as_str())
        .bind(i64::from(new.enabled))
        .bind(new.description),
        Stmt::new(
            "UPDATE feature_flags SET type = ?3, value = ?4, enabled = ?5, description = ?6,
               version = version + 1, updated_at = ?7, updated_by = ?8
             WHERE key = ?2 AND overridden = 0
               AND (type IS NOT ?3 OR value IS NOT ?4 OR enabled IS NOT ?5
                 OR description IS NOT ?6)
               AND tenant_id IN (SELECT id FROM tenants WHERE plan = ?1 AND status <> 'deleted')",
        )
        .bind(plan.as_str())
        .bind(key.as_str())
        .bind(new.flag_type.as_str())
        .bind(new.value_text.as_str())
        .bind(i64::from(new.enabled))
        .bind(new.description)
        .bind(now)
        .bind(actor.id.as_str()),
    ]
}

/// The tenants of the plan without the key get the new default (ids from `pairs`, see
/// [`new_flag_ids`]), and their flag-set version bumped.
fn add_to_missing(
    key: &FlagKey,
    new: &NewDefault<'_>,
    missing: &[String],
    pairs: String,
    now: i64,
    actor: &Actor,
) -> [Stmt; 2] {
    [
        Stmt::new(
            "INSERT INTO feature_flags (id, tenant_id, key, type, value, enabled, description,
               rules, overridden, version, created_at, updated_at, updated_by)
             SELECT json_extract(j.value, '$[1]'), json_extract(j.value, '$[0]'), ?2, ?3, ?4,
               ?5, ?6, '[]', 0, 1, ?7, ?7, ?8
             FROM json_each(?1) j
             WHERE NOT EXISTS (SELECT 1 FROM feature_flags f
               WHERE f.tenant_id = json_extract(j.value, '$[0]') AND f.key = ?2)",
        )
        .bind(pairs)
        .bind(key.as_str())
        .bind(new.flag_type.as_str())
        .bind(new.value_text.as_str())
        .bind(i64::from(new.enabled))
        .bind(new.description)
        .bind(now)
        .bind(actor.id.as_str()),
        Stmt::new(
            "UPDATE tenants SET flags_version = flags_version + 1
             WHERE id IN (SELECT json_extract(j.value, '$[0]') FROM json_each(?1) j)",
        )
        .bind(Value::Array(missing.iter().map(|t| json!([t])).collect()).to_string()),
    ]
}
