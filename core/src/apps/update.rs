//! Configuration and status changes (UC-DEV-UPDATE, FR-SYS-003): name, redirect URIs, allowed
//! origins, and disable/enable, which the edge sees through the app status marker.

use serde_json::{json, Map};

use super::model::{to_json_list, AllowedOrigin, App, AppId, AppName, AppStatus, RedirectUri};
use super::register::to_list;
use super::{
    audit_if, load, name_taken, origins_cache_key, resource, write_marker, Guard, MAX_ATTEMPTS,
};
use crate::audit::{self, Actor, AuditRecord};
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::tenants::EdgeSync;

/// What an operator asks to change (the body of `PATCH /v1/apps/{id}`), parsed. `None` leaves
/// a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateApp {
    /// New name.
    pub name: Option<AppName>,
    /// New redirect URIs (replacing the list).
    pub redirect_uris: Option<Vec<RedirectUri>>,
    /// New allowed origins (replacing the list).
    pub allowed_origins: Option<Vec<AllowedOrigin>>,
    /// New status: `disabled` refuses every key of the app at once.
    pub status: Option<AppStatus>,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateAppOutcome {
    /// The app afterwards.
    pub app: App,
    /// False when nothing differed (no D1 write, no audit record).
    pub changed: bool,
    /// The status marker's state when the request named a status (it is rewritten even when
    /// the status did not change, so a repeat repairs a failed write); `Synced` otherwise.
    pub edge: EdgeSync,
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateAppError {
    /// No app has this id.
    #[error("no app {id}")]
    NotFound {
        /// The id asked for.
        id: AppId,
    },
    /// Another app has the new name.
    #[error("an app named {name} already exists")]
    NameTaken {
        /// The name asked for.
        name: AppName,
    },
    /// Concurrent changes kept winning the race; the caller may retry.
    #[error("app changed concurrently")]
    ConcurrentChange,
    /// The database failed; nothing was changed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl UpdateAppError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            UpdateAppError::NotFound { .. } => "app_not_found",
            UpdateAppError::NameTaken { .. } => "app_name_taken",
            UpdateAppError::ConcurrentChange => "concurrent_change",
            UpdateAppError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpdateAppError::NotFound { .. } => ErrorKind::NotFound,
            UpdateAppError::NameTaken { .. } => ErrorKind::Conflict,
            UpdateAppError::ConcurrentChange => ErrorKind::Conflict,
            UpdateAppError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(UpdateAppError);

/// Applies a change (FR-SYS-003). One guarded batch writes the app (version bumped) with
/// `app.update` for configuration changes (old and new values) and `app.disable` or
/// `app.enable` for a status change; then, if a status was named, the marker
/// `app:{id}:status` is written (`disabled`) or deleted (active), so every key of a disabled
/// app is refused at the edge without touching the keys.
pub async fn update<P: Platform>(
    p: &P,
    actor: &Actor,
    id: &AppId,
    req: UpdateApp,
    request_id: &str,
) -> Result<UpdateAppOutcome, UpdateAppError> {
    for _ in 0..MAX_ATTEMPTS {
        let app = load(p, id)
            .await?
            .ok_or_else(|| UpdateAppError::NotFound { id: id.clone() })?;
        let diff = req.differing_from(&app);
        if diff.is_empty() {
            let edge = status_marker(p, id, req.status).await;
            return Ok(UpdateAppOutcome {
                app,
                changed: false,
                edge,
            });
        }
        if let Some(n) = &diff.name {
            // Case-only renames of itself are fine; another app's name is not.
            if name_taken(p, n, Some(id)).await? {
                return Err(refuse_name(p, actor, request_id, id, n).await);
            }
        }
        let now = p.clock().now_ms();
        let mut stmts = update_audit(p, actor, &app, &diff, now, request_id);
        let origins_changed = diff.allowed_origins.is_some();
        let updated = diff.applied_to(&app, now);
        stmts.push(update_stmt(&app, &updated, now));
        if !write_update(p, actor, request_id, stmts, &updated).await? {
            continue;
        }
        let edge = sync_edge(p, id, req.status, origins_changed).await;
        return Ok(UpdateAppOutcome {
            app: updated,
            changed: true,
            edge,
        });
    }
    Err(UpdateAppError::ConcurrentChange)
}

impl UpdateApp {
    /// The fields of this request that differ from `app`; the others `None`.
    fn differing_from(&self, app: &App) -> UpdateApp {
        UpdateApp {
            name: self.name.clone().filter(|n| *n != app.name),
            redirect_uris: self
                .redirect_uris
                .clone()
                .filter(|u| *u != app.redirect_uris),
            allowed_origins: self
                .allowed_origins
                .clone()
                .filter(|o| *o != app.allowed_origins),
            status: self.status.filter(|s| *s != app.status),
        }
    }

    /// True when no field is named.
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.redirect_uris.is_none()
            && self.allowed_origins.is_none()
            && self.status.is_none()
    }

    /// `app` with these fields applied, at the next version.
    fn applied_to(self, app: &App, now: i64) -> App {
        App {
            name: self.name.unwrap_or_else(|| app.name.clone()),
            redirect_uris: self
                .redirect_uris
                .unwrap_or_else(|| app.redirect_uris.clone()),
            allowed_origins: self
                .allowed_origins
                .unwrap_or_else(|| app.allowed_origins.clone()),
            status: self.status.unwrap_or(app.status),
            updated_at: now,
            version: app.version + 1,
            ..app.clone()
        }
    }
}

/// The audit rows of a change, each written only while the app has the version read:
/// `app.update` with the old and new configuration values, `app.disable` or `app.enable`.
fn update_audit<P: Platform>(
    p: &P,
    actor: &Actor,
    app: &App,
    diff: &UpdateApp,
    now: i64,
    request_id: &str,
) -> Vec<Stmt> {
    let id = &app.id;
    let guard = Guard::AppVersion {
        app_id: id.as_str(),
        version: app.version,
    };
    let mut stmts = Vec::new();
    let mut changes = Map::new();
    if let Some(n) = &diff.name {
        changes.insert("name".into(), json!({"old": app.name, "new": n}));
    }
    if let Some(u) = &diff.redirect_uris {
        let old = to_list(&app.redirect_uris);
        changes.insert(
            "redirect_uris".into(),
            json!({"old": old, "new": to_list(u)}),
        );
    }
    if let Some(o) = &diff.allowed_origins {
        let old = to_list(&app.allowed_origins);
        changes.insert(
            "allowed_origins".into(),
            json!({"old": old, "new": to_list(o)}),
        );
    }
    if !changes.is_empty() {
        let rec = AuditRecord::success("app.update", actor, None, resource(id), Some(request_id))
            .with("changes", changes);
        stmts.push(audit_if(&rec, &audit::new_event_id(p), now, guard));
    }
    if let Some(s) = diff.status {
        let action = match s {
            AppStatus::Disabled => "app.disable",
            AppStatus::Active => "app.enable",
        };
        let rec = AuditRecord::success(action, actor, None, resource(id), Some(request_id))
            .with("old_status", app.status.as_str())
            .with("new_status", s.as_str());
        stmts.push(audit_if(&rec, &audit::new_event_id(p), now, guard));
    }
    stmts
}

/// The UPDATE of the app to `updated`, applied only while it has the version read.
fn update_stmt(app: &App, updated: &App, now: i64) -> Stmt {
    Stmt::new(
        "UPDATE apps SET name = ?3, redirect_uris = ?4, allowed_origins = ?5,
           status = ?6, updated_at = ?7, version = version + 1
         WHERE id = ?1 AND version = ?2",
    )
    .bind(app.id.as_str())
    .bind(app.version)
    .bind(updated.name.as_str())
    .bind(to_json_list(&updated.redirect_uris))
    .bind(to_json_list(&updated.allowed_origins))
    .bind(updated.status.as_str())
    .bind(now)
}

/// Runs the batch; false when a concurrent change won the version race. A name taken
/// meanwhile by a registration or rename is refused (audited).
async fn write_update<P: Platform>(
    p: &P,
    actor: &Actor,
    request_id: &str,
    stmts: Vec<Stmt>,
    updated: &App,
) -> Result<bool, UpdateAppError> {
    let id = &updated.id;
    let counts = match p.sql().batch(stmts).await {
        Ok(counts) => counts,
        Err(SqlError::Constraint(cause)) => {
            // A concurrent registration or rename took the name.
            if name_taken(p, &updated.name, Some(id)).await? {
                return Err(refuse_name(p, actor, request_id, id, &updated.name).await);
            }
            return Err(SqlError::Constraint(cause).into());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(counts.last().copied() == Some(1))
}

/// The status marker when the request named a status (rewritten even when it did not change,
/// so a repeat repairs a failed write); `Synced` otherwise.
async fn status_marker<P: Platform>(p: &P, id: &AppId, status: Option<AppStatus>) -> EdgeSync {
    match status {
        Some(s) => write_marker(p, id, s).await,
        None => EdgeSync::Synced,
    }
}

/// The edge after a committed change: the status marker, and the origins cache dropped when
/// the allowed origins changed.
async fn sync_edge<P: Platform>(
    p: &P,
    id: &AppId,
    status: Option<AppStatus>,
    origins_changed: bool,
) -> EdgeSync {
    let mut edge = status_marker(p, id, status).await;
    if origins_changed {
        if let Err(error) = crate::edge::delete(p, &origins_cache_key(id)).await {
            edge = EdgeSync::Pending { error };
        }
    }
    edge
}

/// Audits a name conflict and returns the error.
async fn refuse_name<P: Platform>(
    p: &P,
    actor: &Actor,
    request_id: &str,
    id: &AppId,
    name: &AppName,
) -> UpdateAppError {
    let rec = AuditRecord::failure("app.update", actor, None, resource(id), Some(request_id))
        .with("reason", "app_name_taken")
        .with("name", name.as_str());
    audit::record_refusal(p, &rec).await;
    UpdateAppError::NameTaken { name: name.clone() }
}
