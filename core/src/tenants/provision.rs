//! Provisioning (UC-PROV-001): the tenant, its invited owner, the plan's default flags and the
//! enabled apps, in one atomic batch with its audit rows and idempotency record; then the
//! owner's invitation mail.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::model::{Email, IdempotencyKey, Plan, Tenant, TenantDomain, TenantId, TenantName};
use super::{plan_exists, resource};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ids;
use crate::kernel::ErrorKind;
use crate::kernel::Links;
use crate::mail;
use crate::ports::{Clock, Mail, MailError, Mailer, Platform, Secrets, Sql, SqlError, Stmt};

/// How long an invitation stays valid: 7 days (FR-TENANT-001).
pub const INVITATION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// How long a provisioning result is kept for replay under its `Idempotency-Key`: 24 hours.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Most managed apps one provisioning request may enable.
pub const MAX_APPS: usize = 20;

/// `idempotency_keys.response_status` of a stored provisioning result. The table is shared with
/// route-level replays, whose rows hold the HTTP status; a provisioning replay answers like the
/// first call, which created the tenant (201). NULL would mean "in flight", which a provisioning
/// row never is: it is written in the same batch as the tenant.
const STORED_STATUS: i64 = 201;

/// What an operator asks for (the body of `POST /v1/tenants`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionTenant {
    /// Display name.
    pub name: TenantName,
    /// Unique handle.
    pub domain: TenantDomain,
    /// Subscription plan; must exist in `plans`.
    pub plan: Plan,
    /// The initial owner, invited.
    pub owner_email: Email,
    /// Ids of the managed apps to enable; each must exist and be active. Order and duplicates
    /// do not matter.
    pub apps: Vec<String>,
}

/// Whether the owner's invitation mail was handed to the mailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailDelivery {
    /// The mailer accepted it.
    Sent,
    /// The mailer refused or was unreachable: the tenant exists; give the owner the link.
    Failed,
    /// Not known: the result was replayed from a first call that did not record it.
    Pending,
}

/// The result of provisioning, as returned to the operator and stored for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ProvisionedTenant)]
pub struct Provisioned {
    /// The new tenant.
    pub tenant: Tenant,
    /// The owner's user id (status invited, role owner).
    pub owner_user_id: String,
    /// The owner's invitation id.
    pub invitation_id: String,
    /// A secret: the owner accepts the invitation with it. Shown to the operator who
    /// provisioned (and kept 24 h for replays), never logged or audited.
    pub invitation_link: String,
    /// When the invitation expires (unix ms).
    pub invitation_expires_at: i64,
    /// The managed apps enabled, sorted.
    pub apps: Vec<String>,
    /// Whether the invitation mail went out.
    #[schema(inline)]
    pub mail: MailDelivery,
}

/// What [`provision()`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionOutcome {
    /// The result (the same on a replay).
    pub provisioned: Provisioned,
    /// True when this is the stored result of an earlier call with the same `Idempotency-Key`:
    /// nothing was changed and no mail was sent.
    pub replayed: bool,
    /// Why the mail failed, for the log (never for the client).
    pub mail_error: Option<MailError>,
}

/// Why provisioning was refused. Nothing was written, except an audit record of a conflict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProvisionTenantError {
    /// The plan is not in `plans`.
    #[error("unknown plan {plan}")]
    UnknownPlan {
        /// The plan asked for.
        plan: Plan,
    },
    /// An app id names no registered app.
    #[error("unknown app {app_id}")]
    UnknownApp {
        /// The id asked for.
        app_id: String,
    },
    /// An app is registered but disabled.
    #[error("app {app_id} is disabled")]
    AppDisabled {
        /// The id asked for.
        app_id: String,
    },
    /// More apps than [`MAX_APPS`].
    #[error("at most {max} apps may be enabled at provisioning")]
    TooManyApps {
        /// The limit.
        max: usize,
    },
    /// Another tenant (active, suspended or pending deletion) holds the domain.
    #[error("domain {domain} is taken")]
    DomainTaken {
        /// The domain asked for.
        domain: TenantDomain,
    },
    /// The `Idempotency-Key` was used by this operator for a different request in the last 24 h.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The database failed; nothing was provisioned.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl ProvisionTenantError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProvisionTenantError::UnknownPlan { .. } => "unknown_plan",
            ProvisionTenantError::UnknownApp { .. } => "unknown_app",
            ProvisionTenantError::AppDisabled { .. } => "app_disabled",
            ProvisionTenantError::TooManyApps { .. } => "too_many_apps",
            ProvisionTenantError::DomainTaken { .. } => "domain_taken",
            ProvisionTenantError::IdempotencyKeyReused => "idempotency_key_reused",
            ProvisionTenantError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProvisionTenantError::UnknownPlan { .. } => ErrorKind::RefusedField("plan"),
            ProvisionTenantError::UnknownApp { .. } => ErrorKind::RefusedField("apps"),
            ProvisionTenantError::AppDisabled { .. } => ErrorKind::RefusedField("apps"),
            ProvisionTenantError::TooManyApps { .. } => ErrorKind::InvalidField("apps"),
            ProvisionTenantError::DomainTaken { .. } => ErrorKind::Conflict,
            ProvisionTenantError::IdempotencyKeyReused => ErrorKind::Conflict,
            ProvisionTenantError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(ProvisionTenantError);

/// The base URL of links in mail and of redirects: the `PUBLIC_BASE_URL` secret or variable,
/// without a trailing slash; `None` when it is unset or empty. It never comes from a request:
/// a `Host` header is the client's to choose.
pub fn configured_base_url<P: Platform>(p: &P) -> Option<String> {
    p.secrets()
        .get("PUBLIC_BASE_URL")
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .filter(|v| !v.is_empty())
}

/// The canonical form of a request, hashed to recognise a retry.
#[derive(Serialize)]
struct Canonical<'a> {
    name: &'a str,
    domain: &'a str,
    plan: &'a str,
    owner_email: &'a str,
    apps: &'a [String],
}

/// An idempotency key with its scope and the hash of the request it guards.
pub(super) struct Idem {
    /// `tenant.provision:{actor id}`.
    pub(super) scope: String,
    /// The client's key.
    pub(super) key: IdempotencyKey,
    /// SHA-256 of the canonical request.
    pub(super) request_hash: String,
}

/// What the stored row says about a key.
enum Stored {
    /// No live record: proceed.
    None,
    /// The same request was provisioned: replay this.
    Replay(Box<Provisioned>),
    /// A different request holds the key.
    Reused,
}

/// Provisions a tenant (UC-PROV-001): one atomic batch writes the tenant, its owner (invited,
/// role owner), the owner's invitation (token: 32 bytes from the Random port, base64url; only
/// its SHA-256 is stored; expires in 7 days), the plan's default flags, the enabled apps, the
/// audit rows `tenant.create` and `user.invite`, and (with `idempotency`) the result for
/// replay. Then the invitation mail is sent with its link ([`Links::invitation`]); if
/// it fails the tenant still exists and the result says so ([`MailDelivery::Failed`]).
///
/// With an `Idempotency-Key`, a retry of the same request by the same actor within 24 h
/// returns the stored result, changing nothing; the same key with another request is
/// [`ProvisionTenantError::IdempotencyKeyReused`]. The stored result includes the invitation
/// link: it is a secret, but the record is readable only under this actor's scope and
/// expires after 24 h, and returning the same link is what makes the retry safe.
pub async fn provision<P: Platform>(
    p: &P,
    actor: &Actor,
    req: ProvisionTenant,
    idempotency: Option<IdempotencyKey>,
    request_id: &str,
    links: &Links,
) -> Result<ProvisionOutcome, ProvisionTenantError> {
    let mut apps = req.apps.clone();
    apps.sort();
    apps.dedup();
    if apps.len() > MAX_APPS {
        return Err(ProvisionTenantError::TooManyApps { max: MAX_APPS });
    }
    let idem = idempotency.map(|key| Idem {
        scope: format!("tenant.provision:{}", actor.id),
        key,
        request_hash: request_hash(&req, &apps),
    });

    if let Some(idem) = &idem {
        match stored(p, idem).await? {
            Stored::None => {}
            Stored::Replay(provisioned) => return Ok(replay(*provisioned)),
            Stored::Reused => return Err(refuse_reused(p, actor, request_id, &req).await),
        }
    }
    if !plan_exists(p, &req.plan).await? {
        return Err(ProvisionTenantError::UnknownPlan { plan: req.plan });
    }
    check_apps(p, &apps).await?;
    if domain_taken(p, &req.domain).await? {
        return Err(refuse_domain(p, actor, request_id, &req.domain).await);
    }

    let committed = commit(p, actor, &req, &apps, idem.as_ref(), request_id, links).await;
    let provisioned = match committed {
        Ok(done) => done,
        Err(SqlError::Constraint(cause)) => {
            // Lost a race: a concurrent call with this key, or another tenant took the domain.
            if let Some(idem) = &idem {
                match stored(p, idem).await? {
                    Stored::None => {}
                    Stored::Replay(provisioned) => return Ok(replay(*provisioned)),
                    Stored::Reused => return Err(refuse_reused(p, actor, request_id, &req).await),
                }
            }
            if domain_taken(p, &req.domain).await? {
                return Err(refuse_domain(p, actor, request_id, &req.domain).await);
            }
            return Err(SqlError::Constraint(cause).into());
        }
        Err(e) => return Err(e.into()),
    };

    // Best effort: on a miss the first flag read builds the snapshot from D1.
    let _ = crate::flags::snapshot::publish(p, &provisioned.tenant.id).await;
    let mail = invitation_mail(&req, &provisioned);
    let (delivery, mail_error) = match p.mailer().send(&mail).await {
        Ok(()) => (MailDelivery::Sent, None),
        Err(e) => (MailDelivery::Failed, Some(e)),
    };
    let provisioned = Provisioned {
        mail: delivery,
        ..provisioned
    };
    if let Some(idem) = &idem {
        // Best effort: a replay of a row left at `pending` says the delivery is unknown.
        let _ = record_delivery(p, idem, &provisioned).await;
    }
    Ok(ProvisionOutcome {
        provisioned,
        replayed: false,
        mail_error,
    })
}

/// A replayed result.
fn replay(provisioned: Provisioned) -> ProvisionOutcome {
    ProvisionOutcome {
        provisioned,
        replayed: true,
        mail_error: None,
    }
}

/// SHA-256 of the canonical JSON of a parsed request (apps sorted and deduplicated).
fn request_hash(req: &ProvisionTenant, apps: &[String]) -> String {
    let canonical = Canonical {
        name: req.name.as_str(),
        domain: req.domain.as_str(),
        plan: req.plan.as_str(),
        owner_email: req.owner_email.as_str(),
        apps,
    };
    // Serialising plain strings cannot fail; an empty hash would only fail to match.
    let text = serde_json::to_string(&canonical).unwrap_or_default();
    crypto::sha256_hex(text.as_bytes())
}

/// Looks up a live idempotency record.
async fn stored<P: Platform>(p: &P, idem: &Idem) -> Result<Stored, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT request_hash, response_body FROM idempotency_keys
                 WHERE scope = ?1 AND key = ?2 AND expires_at > ?3",
            )
            .bind(&idem.scope)
            .bind(idem.key.as_str())
            .bind(p.clock().now_ms()),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(Stored::None);
    };
    if row.text("request_hash")? != idem.request_hash {
        return Ok(Stored::Reused);
    }
    let body = row.opt_text("response_body")?.ok_or_else(|| {
        SqlError::Decode("idempotency record of a provisioning has no response".into())
    })?;
    serde_json::from_str(&body)
        .map(|p| Stored::Replay(Box::new(p)))
        .map_err(|e| SqlError::Decode(format!("stored provisioning result: {e}")))
}

/// Checks every app exists and is active.
async fn check_apps<P: Platform>(p: &P, apps: &[String]) -> Result<(), ProvisionTenantError> {
    if apps.is_empty() {
        return Ok(());
    }
    let list = serde_json::Value::from(apps.to_vec()).to_string();
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT id, status FROM apps WHERE id IN (SELECT value FROM json_each(?1)) AND id <> 'edgeplane-console'")
                .bind(list),
        )
        .await?;
    for app_id in apps {
        let row = rows
            .iter()
            .find(|r| r.text("id").is_ok_and(|id| &id == app_id));
        match row {
            None => {
                return Err(ProvisionTenantError::UnknownApp {
                    app_id: app_id.clone(),
                })
            }
            Some(r) if r.text("status")? != "active" => {
                return Err(ProvisionTenantError::AppDisabled {
                    app_id: app_id.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether any tenant row holds the domain (purged tombstones hold none).
async fn domain_taken<P: Platform>(p: &P, domain: &TenantDomain) -> Result<bool, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT 1 AS found FROM tenants WHERE domain = ?1").bind(domain.as_str()))
        .await?;
    Ok(!rows.is_empty())
}

/// Audits a domain conflict and returns the error.
async fn refuse_domain<P: Platform>(
    p: &P,
    actor: &Actor,
    request_id: &str,
    domain: &TenantDomain,
) -> ProvisionTenantError {
    let rec = AuditRecord::failure("tenant.create", actor, None, "tenant", Some(request_id))
        .with("reason", "domain_taken")
        .with("domain", domain.as_str());
    audit::record_refusal(p, &rec).await;
    ProvisionTenantError::DomainTaken {
        domain: domain.clone(),
    }
}

/// Audits a reused idempotency key and returns the error.
async fn refuse_reused<P: Platform>(
    p: &P,
    actor: &Actor,
    request_id: &str,
    req: &ProvisionTenant,
) -> ProvisionTenantError {
    let rec = AuditRecord::failure("tenant.create", actor, None, "tenant", Some(request_id))
        .with("reason", "idempotency_key_reused")
        .with("domain", req.domain.as_str());
    audit::record_refusal(p, &rec).await;
    ProvisionTenantError::IdempotencyKeyReused
}

/// Builds and runs the provisioning batch. Returns the result (mail still `pending`; the
/// invitation token travels only inside its link). Checks nothing beforehand: the constraints of the schema refuse a taken
/// domain, an unknown plan or app, or a used idempotency key, and then nothing is written.
pub(super) async fn commit<P: Platform>(
    p: &P,
    actor: &Actor,
    req: &ProvisionTenant,
    apps: &[String],
    idem: Option<&Idem>,
    request_id: &str,
    links: &Links,
) -> Result<Provisioned, SqlError> {
    let now = p.clock().now_ms();
    let (provisioned, token) = new_result(p, req, apps, links, now)?;
    let tid = provisioned.tenant.id.as_str();
    let mut stmts = Vec::new();
    if let Some(idem) = idem {
        stmts.push(drop_expired_key(idem, now));
    }
    stmts.extend(tenant_and_owner_rows(actor, req, &provisioned, &token, now));
    stmts.push(copy_plan_flags(p, tid, &req.plan, 1, actor, now).await?);
    stmts.extend(tenant_app_rows(tid, apps, now));
    stmts.extend(provision_audit(
        p,
        actor,
        req,
        &provisioned,
        request_id,
        now,
    ));
    if let Some(idem) = idem {
        stmts.push(store_result(idem, &provisioned, now)?);
    }
    p.sql().batch(stmts).await?;
    Ok(provisioned)
}

/// The result of a provisioning about to be written, with fresh ids (tenant, owner,
/// invitation, from the Random port in that order) and the invitation token it links to.
fn new_result<P: Platform>(
    p: &P,
    req: &ProvisionTenant,
    apps: &[String],
    links: &Links,
    now: i64,
) -> Result<(Provisioned, String), SqlError> {
    let tenant_id = TenantId::parse(&ids::new_ordered_id(p.clock(), p.random()))
        .map_err(|e| SqlError::Other(format!("generated tenant id: {e}")))?;
    let user_id = ids::new_ordered_id(p.clock(), p.random());
    let invitation_id = ids::new_ordered_id(p.clock(), p.random());
    let token = crypto::random_token(p.random());
    let tenant = Tenant {
        id: tenant_id,
        name: req.name.clone(),
        domain: Some(req.domain.clone()),
        plan: req.plan.clone(),
        status: super::TenantStatus::Active,
        suspended_reason: None,
        suspended_at: None,
        deletion_requested_at: None,
        purge_after: None,
        deleted_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let provisioned = Provisioned {
        tenant,
        owner_user_id: user_id,
        invitation_id,
        invitation_link: links.invitation(&token),
        invitation_expires_at: now + INVITATION_TTL_MS,
        apps: apps.to_vec(),
        mail: MailDelivery::Pending,
    };
    Ok((provisioned, token))
}

/// Drops an expired record of this key, which may linger until the cleanup job: it no longer
/// counts.
fn drop_expired_key(idem: &Idem, now: i64) -> Stmt {
    Stmt::new("DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND expires_at <= ?3")
        .bind(&idem.scope)
        .bind(idem.key.as_str())
        .bind(now)
}

/// The tenant row, its owner (invited) and the owner's pending invitation (only the token's
/// hash is stored).
fn tenant_and_owner_rows(
    actor: &Actor,
    req: &ProvisionTenant,
    provisioned: &Provisioned,
    token: &str,
    now: i64,
) -> [Stmt; 3] {
    let tid = provisioned.tenant.id.as_str();
    let user_id = provisioned.owner_user_id.as_str();
    [
        Stmt::new(
            "INSERT INTO tenants (id, name, domain, plan, status, created_at, updated_at, version)
             VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?5, 1)",
        )
        .bind(tid)
        .bind(req.name.as_str())
        .bind(req.domain.as_str())
        .bind(req.plan.as_str())
        .bind(now),
        Stmt::new(
            "INSERT INTO users (id, tenant_id, email, role, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'owner', 'invited', ?4, ?4)",
        )
        .bind(user_id)
        .bind(tid)
        .bind(req.owner_email.as_str())
        .bind(now),
        Stmt::new(
            "INSERT INTO invitations (id, tenant_id, user_id, email, role, token_hash, status,
               invited_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, 'owner', ?5, 'pending', ?6, ?7, ?8)",
        )
        .bind(provisioned.invitation_id.as_str())
        .bind(tid)
        .bind(user_id)
        .bind(req.owner_email.as_str())
        .bind(crypto::token_hash(token))
        .bind(&actor.id)
        .bind(now)
        .bind(provisioned.invitation_expires_at),
    ]
}

/// One enabled `tenant_apps` row per app.
fn tenant_app_rows(tenant_id: &str, apps: &[String], now: i64) -> Vec<Stmt> {
    apps.iter()
        .map(|app_id| {
            Stmt::new(
                "INSERT INTO tenant_apps (tenant_id, app_id, enabled, created_at, updated_at)
                 VALUES (?1, ?2, 1, ?3, ?3)",
            )
            .bind(tenant_id)
            .bind(app_id)
            .bind(now)
        })
        .collect()
}

/// The audit rows `tenant.create` and `user.invite` (no email: the user id identifies the
/// invitee, PII stays out of the trail).
fn provision_audit<P: Platform>(
    p: &P,
    actor: &Actor,
    req: &ProvisionTenant,
    provisioned: &Provisioned,
    request_id: &str,
    now: i64,
) -> [Stmt; 2] {
    let tenant_id = &provisioned.tenant.id;
    let tid = tenant_id.as_str();
    let user_id = provisioned.owner_user_id.as_str();
    let create = AuditRecord::success(
        "tenant.create",
        actor,
        Some(tid),
        resource(tenant_id),
        Some(request_id),
    )
    .with("name", req.name.as_str())
    .with("domain", req.domain.as_str())
    .with("plan", req.plan.as_str())
    .with("apps", provisioned.apps.clone())
    .with("owner_user_id", user_id);
    let create = audit::outbox_insert(&create, &audit::new_event_id(p), now);
    let invite = AuditRecord::success(
        "user.invite",
        actor,
        Some(tid),
        format!("user:{user_id}"),
        Some(request_id),
    )
    .with("invitation_id", provisioned.invitation_id.as_str())
    .with("role", "owner")
    .with("expires_at", provisioned.invitation_expires_at);
    [
        create,
        audit::outbox_insert(&invite, &audit::new_event_id(p), now),
    ]
}

/// The idempotency record holding the result for replays for [`IDEMPOTENCY_TTL_MS`].
fn store_result(idem: &Idem, provisioned: &Provisioned, now: i64) -> Result<Stmt, SqlError> {
    Ok(Stmt::new(
        "INSERT INTO idempotency_keys (scope, key, request_hash, response_status,
           response_body, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&idem.scope)
    .bind(idem.key.as_str())
    .bind(&idem.request_hash)
    .bind(STORED_STATUS)
    .bind(to_json(provisioned)?)
    .bind(now)
    .bind(now + IDEMPOTENCY_TTL_MS))
}

/// The INSERT copying a plan's default flags into a tenant's flags (not overridden), for keys
/// the tenant has no flag for; it runs only while the tenant has `version`. Ids come from the
/// Random port, one per default key read now: a default added between this read and the batch
/// is left out, exactly as if it had been added just after.
pub(super) async fn copy_plan_flags<P: Platform>(
    p: &P,
    tenant_id: &str,
    plan: &Plan,
    version: i64,
    actor: &Actor,
    now: i64,
) -> Result<Stmt, SqlError> {
    let ids = flag_ids(p, plan).await?;
    Ok(Stmt::new(
        "INSERT INTO feature_flags (id, tenant_id, key, type, value, enabled, description, rules,
           overridden, version, created_at, updated_at, updated_by)
         SELECT json_extract(j.value, '$[1]'), ?1, d.key, d.type, d.value, d.enabled,
           d.description, '[]', 0, 1, ?2, ?2, ?3
         FROM plan_default_flags d JOIN json_each(?4) j ON d.key = json_extract(j.value, '$[0]')
         WHERE d.plan = ?5
           AND NOT EXISTS (SELECT 1 FROM feature_flags f WHERE f.tenant_id = ?1 AND f.key = d.key)
           AND EXISTS (SELECT 1 FROM tenants WHERE id = ?1 AND version = ?6)",
    )
    .bind(tenant_id)
    .bind(now)
    .bind(&actor.id)
    .bind(ids)
    .bind(plan.as_str())
    .bind(version))
}

/// A JSON array of `[key, new id]` for every default flag of a plan.
async fn flag_ids<P: Platform>(p: &P, plan: &Plan) -> Result<String, SqlError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT key FROM plan_default_flags WHERE plan = ?1").bind(plan.as_str()))
        .await?;
    let mut pairs = Vec::with_capacity(rows.len());
    for row in &rows {
        pairs.push(json!([row.text("key")?, ids::new_id(p.random())]));
    }
    Ok(serde_json::Value::Array(pairs).to_string())
}

/// Records the mail outcome in the stored result, so a replay reports it.
async fn record_delivery<P: Platform>(
    p: &P,
    idem: &Idem,
    provisioned: &Provisioned,
) -> Result<(), SqlError> {
    p.sql()
        .execute(
            Stmt::new(
                "UPDATE idempotency_keys SET response_body = ?3
                 WHERE scope = ?1 AND key = ?2 AND request_hash = ?4",
            )
            .bind(&idem.scope)
            .bind(idem.key.as_str())
            .bind(to_json(provisioned)?)
            .bind(&idem.request_hash),
        )
        .await?;
    Ok(())
}

/// A result as stored JSON.
fn to_json(provisioned: &Provisioned) -> Result<String, SqlError> {
    serde_json::to_string(provisioned)
        .map_err(|e| SqlError::Other(format!("cannot serialise the provisioning result: {e}")))
}

/// The owner's invitation, in plain text and HTML.
fn invitation_mail(req: &ProvisionTenant, provisioned: &Provisioned) -> Mail {
    mail::owner_invitation_mail(
        req.owner_email.as_str(),
        req.name.as_str(),
        req.domain.as_str(),
        &provisioned.invitation_link,
        provisioned.invitation_expires_at,
    )
}
