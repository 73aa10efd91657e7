//! Registration (UC-DEV-REGISTER, FR-SYS-001): a new app with a generated id, audited in the
//! same batch.

use super::model::{to_json_list, AllowedOrigin, App, AppId, AppName, AppStatus, RedirectUri};
use super::{name_taken, resource};
use crate::audit::{self, Actor, AuditRecord};
use crate::ids;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// What an operator asks for (the body of `POST /v1/apps`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterApp {
    /// Unique display name.
    pub name: AppName,
    /// OAuth redirect URIs, deduplicated.
    pub redirect_uris: Vec<RedirectUri>,
    /// Browser origins, deduplicated.
    pub allowed_origins: Vec<AllowedOrigin>,
}

/// Why a registration was refused. Nothing was written, except an audit record of a conflict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegisterAppError {
    /// Another app has this name (case-insensitively).
    #[error("an app named {name} already exists")]
    NameTaken {
        /// The name asked for.
        name: AppName,
    },
    /// The database failed; nothing was registered.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl RegisterAppError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RegisterAppError::NameTaken { .. } => "app_name_taken",
            RegisterAppError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegisterAppError::NameTaken { .. } => ErrorKind::Conflict,
            RegisterAppError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(RegisterAppError);

/// Registers an app (FR-SYS-001): a fresh time-ordered UUID, status active, owned by the
/// actor, audited as `app.create` in the same batch. A taken name is refused and audited as
/// a failure, also when a concurrent registration takes it first.
pub async fn register<P: Platform>(
    p: &P,
    actor: &Actor,
    req: RegisterApp,
    request_id: &str,
) -> Result<App, RegisterAppError> {
    if name_taken(p, &req.name, None).await? {
        return Err(refuse_name(p, actor, request_id, &req.name).await);
    }
    let now = p.clock().now_ms();
    let id = AppId::parse(&ids::new_ordered_id(p.clock(), p.random()))
        .map_err(|e| SqlError::Other(format!("generated app id: {e}")))?;
    let app = App {
        id,
        name: req.name,
        owner_id: actor.id.clone(),
        status: AppStatus::Active,
        redirect_uris: req.redirect_uris,
        allowed_origins: req.allowed_origins,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let rec = AuditRecord::success(
        "app.create",
        actor,
        None,
        resource(&app.id),
        Some(request_id),
    )
    .with("name", app.name.as_str())
    .with("redirect_uris", to_list(&app.redirect_uris))
    .with("allowed_origins", to_list(&app.allowed_origins));
    let stmts = vec![
        Stmt::new(
            "INSERT INTO apps (id, name, owner_id, status, redirect_uris, allowed_origins,
                   created_at, updated_at, version)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6, 1)",
        )
        .bind(app.id.as_str())
        .bind(app.name.as_str())
        .bind(&app.owner_id)
        .bind(to_json_list(&app.redirect_uris))
        .bind(to_json_list(&app.allowed_origins))
        .bind(now),
        audit::outbox_insert(&rec, &audit::new_event_id(p), now),
    ];
    match p.sql().batch(stmts).await {
        Ok(_) => Ok(app),
        Err(SqlError::Constraint(cause)) => {
            // Lost a race for the name (the id is fresh): refuse like the check above.
            if name_taken(p, &app.name, None).await? {
                return Err(refuse_name(p, actor, request_id, &app.name).await);
            }
            Err(SqlError::Constraint(cause).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A list's values as JSON strings, for audit metadata.
pub(super) fn to_list<T: AsRef<str>>(items: &[T]) -> Vec<String> {
    items.iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Audits a name conflict and returns the error.
async fn refuse_name<P: Platform>(
    p: &P,
    actor: &Actor,
    request_id: &str,
    name: &AppName,
) -> RegisterAppError {
    let rec = AuditRecord::failure("app.create", actor, None, "app", Some(request_id))
        .with("reason", "app_name_taken")
        .with("name", name.as_str());
    audit::record_refusal(p, &rec).await;
    RegisterAppError::NameTaken { name: name.clone() }
}
