//! A tenant's SSO configuration (FR-AUTH-003, UC-TENANT-SSO), one `sso_configs` row per tenant.
//! Only the tenant's owner reads or changes it, judged by the role stored now (not the one in a
//! possibly older access token). The client secret is sealed under `MASTER_KEY` (AES-256-GCM,
//! NFR-SEC-002) and never leaves core again except towards the IdP's token endpoint. A
//! configuration is saved only after the issuer's discovery document and key set were fetched
//! and judged usable, so a typo is refused at once rather than at the first sign-in.

use serde::Serialize;
use utoipa::ToSchema;

use super::discovery::{self, DiscoveryError};
use crate::audit::{self, Actor, AuditRecord};
use crate::auth::config::ENV_VAR;
use crate::ids;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Secrets, Sql, SqlError, Stmt};
use crate::tokens::master_key::MasterKey;

/// Longest client id or secret accepted.
const MAX_CLIENT_FIELD_LEN: usize = 512;

/// Why a configuration could not be read, saved or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoConfigError {
    /// The caller is not (or no longer) an active owner of the tenant.
    #[error("only the tenant's owner manages its SSO configuration")]
    NotOwner,
    /// The tenant has no SSO configuration.
    #[error("this tenant has no SSO configuration")]
    NotConfigured,
    /// A field is invalid: (field, what is wrong).
    #[error("{0} {1}")]
    Invalid(&'static str, String),
    /// The issuer does not work as an OpenID provider for Edgeplane: what failed (its message is
    /// fit for the owner; the upstream cause, if any, is inside for the log).
    #[error("{0}")]
    Discovery(DiscoveryError),
    /// `MASTER_KEY` is missing or invalid, or the stored secret does not open.
    #[error("the master key is unusable: {0}")]
    MasterKey(String),
    /// The database failed.
    #[error("SSO configuration storage failed: {0}")]
    Storage(String),
}

impl SsoConfigError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SsoConfigError::NotOwner => "sso_owner_only",
            SsoConfigError::NotConfigured => "sso_not_configured",
            SsoConfigError::Invalid(..) => "sso_invalid",
            SsoConfigError::Discovery(_) => "sso_discovery_failed",
            SsoConfigError::MasterKey(_) => "master_key",
            SsoConfigError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SsoConfigError::NotOwner => ErrorKind::Forbidden,
            SsoConfigError::NotConfigured => ErrorKind::NotFound,
            SsoConfigError::Invalid(field, _) => ErrorKind::InvalidField(field),
            SsoConfigError::Discovery(_) => ErrorKind::InvalidField("issuer_url"),
            SsoConfigError::MasterKey(_) => ErrorKind::Internal,
            SsoConfigError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(SsoConfigError);

impl From<SqlError> for SsoConfigError {
    fn from(e: SqlError) -> Self {
        SsoConfigError::Storage(e.to_string())
    }
}

/// What an owner submits.
#[derive(Debug, Clone, Default)]
pub struct SsoConfigInput {
    /// The IdP's issuer URL.
    pub issuer_url: String,
    /// Edgeplane's client id at the IdP.
    pub client_id: String,
    /// The client secret; `None` keeps the stored one, allowed only while issuer and client id
    /// stay the same.
    pub client_secret: Option<String>,
    /// Whether SSO sign-in is on (default: on).
    pub enabled: Option<bool>,
    /// Whether unknown verified emails get an account (default: off).
    pub allow_jit: Option<bool>,
    /// The role of such accounts: `user` (default) or `admin`.
    pub jit_role: Option<String>,
}

/// A tenant's SSO configuration (FR-AUTH-003) as shown to the owner: the client secret is
/// never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = SsoConfig)]
pub struct SsoConfigView {
    /// The IdP's issuer URL.
    #[schema(format = "uri")]
    pub issuer_url: String,
    /// Edgeplane's client id at the IdP.
    pub client_id: String,
    /// Always true: a secret is stored (it is never returned).
    pub client_secret_set: bool,
    /// Whether SSO sign-in is on.
    pub enabled: bool,
    /// Whether unknown verified emails get an account on first sign-in.
    pub allow_jit: bool,
    /// The role of such accounts: `user` or `admin`.
    #[schema(schema_with = jit_role_schema)]
    pub jit_role: String,
    /// Last change, unix ms.
    pub updated_at: i64,
}

/// The roles an account created on first sign-in may get.
pub const JIT_ROLES: [&str; 2] = ["user", "admin"];

fn jit_role_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&JIT_ROLES)
}

/// The stored configuration, for the sign-in flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// The view (no secret).
    pub view: SsoConfigView,
    /// The sealed client secret.
    pub client_secret_enc: String,
}

/// The associated data the client secret is sealed with: bound to its tenant.
pub fn secret_context(tenant_id: &str) -> String {
    format!("sso-client-secret:{tenant_id}")
}

/// Whether this deployment is a development one (loopback issuers allowed, over http too).
pub fn development<P: Platform>(p: &P) -> bool {
    p.secrets().get(ENV_VAR).as_deref() == Some("development")
}

/// Refuses unless `user_id` is an active owner of `tenant_id` now (FR-AUTH-003, NFR-SEC-005).
pub async fn require_owner<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<(), SsoConfigError> {
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT role, status FROM users WHERE id = ?1 AND tenant_id = ?2")
                .bind(user_id)
                .bind(tenant_id),
        )
        .await?;
    match rows.first() {
        Some(r) if r.text("role")? == "owner" && r.text("status")? == "active" => Ok(()),
        _ => Err(SsoConfigError::NotOwner),
    }
}

/// The tenant's stored configuration, if any.
pub async fn load<P: Platform>(p: &P, tenant_id: &str) -> Result<Option<StoredConfig>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT issuer_url, client_id, client_secret_enc, enabled, allow_jit, jit_role,
                        updated_at
                 FROM sso_configs WHERE tenant_id = ?1",
            )
            .bind(tenant_id),
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(StoredConfig {
        view: SsoConfigView {
            issuer_url: r.text("issuer_url")?,
            client_id: r.text("client_id")?,
            client_secret_set: true,
            enabled: r.i64("enabled")? == 1,
            allow_jit: r.i64("allow_jit")? == 1,
            jit_role: r.text("jit_role")?,
            updated_at: r.i64("updated_at")?,
        },
        client_secret_enc: r.text("client_secret_enc")?,
    }))
}

/// `GET /v1/tenant/sso`: the configuration without its secret (owner only).
pub async fn get<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
) -> Result<SsoConfigView, SsoConfigError> {
    require_owner(p, tenant_id, user_id).await?;
    load(p, tenant_id)
        .await?
        .map(|c| c.view)
        .ok_or(SsoConfigError::NotConfigured)
}

/// A client id or secret: 1 to 512 printable characters.
fn client_field(field: &'static str, value: &str) -> Result<(), SsoConfigError> {
    if value.is_empty() || value.len() > MAX_CLIENT_FIELD_LEN || value.chars().any(char::is_control)
    {
        return Err(SsoConfigError::Invalid(
            field,
            "must be 1 to 512 printable characters".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `input` names the issuer and client the stored secret was given for. The secret is
/// only sent to that issuer's token endpoint: kept across a change of either, it would go to
/// whatever IdP the new issuer names, so such a change must bring the secret again.
/// Exact comparison, as `iss` is compared: any other spelling is another issuer.
fn same_client(stored: &SsoConfigView, input: &SsoConfigInput) -> bool {
    stored.issuer_url == input.issuer_url && stored.client_id == input.client_id
}

/// `PUT /v1/tenant/sso` (owner only): validates the input, runs discovery against the issuer
/// and fetches its key set (ERR-VAL-400 naming what failed), seals the secret, then upserts the
/// row and audits `sso.configure` in one batch.
pub async fn save<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
    input: &SsoConfigInput,
    request_id: &str,
) -> Result<SsoConfigView, SsoConfigError> {
    require_owner(p, tenant_id, user_id).await?;
    let dev = development(p);
    let jit_role = check_input(input, dev)?;
    let existing = load(p, tenant_id).await?;
    let sealed = sealed_secret(p, tenant_id, input, existing.as_ref())?;
    check_idp(p, &input.issuer_url, dev).await?;
    let now = p.clock().now_ms();
    let view = SsoConfigView {
        issuer_url: input.issuer_url.clone(),
        client_id: input.client_id.clone(),
        client_secret_set: true,
        enabled: input.enabled.unwrap_or(true),
        allow_jit: input.allow_jit.unwrap_or(false),
        jit_role,
        updated_at: now,
    };
    let record = AuditRecord::success(
        "sso.configure",
        &Actor::user(user_id),
        Some(tenant_id),
        format!("tenant:{tenant_id}"),
        Some(request_id),
    )
    .with("issuer_url", view.issuer_url.as_str())
    .with("client_id", view.client_id.as_str())
    .with("enabled", view.enabled)
    .with("allow_jit", view.allow_jit)
    .with("jit_role", view.jit_role.as_str())
    .with("secret_changed", input.client_secret.is_some());
    p.sql()
        .batch(vec![
            upsert_config(p, tenant_id, &view, sealed),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(view)
}

/// Checks the input's own fields (issuer URL, client id and secret, JIT role) and returns the
/// JIT role, `user` by default.
fn check_input(input: &SsoConfigInput, dev: bool) -> Result<String, SsoConfigError> {
    discovery::issuer_origin(&input.issuer_url, dev)
        .map_err(|why| SsoConfigError::Invalid("issuer_url", why.to_owned()))?;
    client_field("client_id", &input.client_id)?;
    if let Some(secret) = &input.client_secret {
        client_field("client_secret", secret)?;
    }
    let jit_role = input.jit_role.clone().unwrap_or_else(|| "user".to_owned());
    if !JIT_ROLES.contains(&jit_role.as_str()) {
        return Err(SsoConfigError::Invalid(
            "jit_role",
            "must be user or admin".to_owned(),
        ));
    }
    Ok(jit_role)
}

/// The client secret as stored: the new one sealed under the master key, or the stored one
/// when the issuer and client stay; a new configuration or a new client needs a secret.
fn sealed_secret<P: Platform>(
    p: &P,
    tenant_id: &str,
    input: &SsoConfigInput,
    existing: Option<&StoredConfig>,
) -> Result<String, SsoConfigError> {
    let master =
        MasterKey::load(p.secrets()).map_err(|e| SsoConfigError::MasterKey(e.to_string()))?;
    match (&input.client_secret, existing) {
        (Some(secret), _) => {
            Ok(master.seal(p.random(), &secret_context(tenant_id), secret.as_bytes()))
        }
        (None, Some(stored)) if same_client(&stored.view, input) => {
            Ok(stored.client_secret_enc.clone())
        }
        (None, Some(_)) => Err(SsoConfigError::Invalid(
            "client_secret",
            "is required again when issuer_url or client_id changes".to_owned(),
        )),
        (None, None) => Err(SsoConfigError::Invalid(
            "client_secret",
            "is required for a new configuration".to_owned(),
        )),
    }
}

/// Checks the IdP now: its discovery document, and a key set holding a usable key.
async fn check_idp<P: Platform>(p: &P, issuer_url: &str, dev: bool) -> Result<(), SsoConfigError> {
    let meta = discovery::discover(p, issuer_url, dev)
        .await
        .map_err(SsoConfigError::Discovery)?;
    let keys = discovery::fetch_keys(p, &meta.issuer, &meta.jwks_uri, dev)
        .await
        .map_err(SsoConfigError::Discovery)?;
    if !discovery::has_usable_key(&keys) {
        return Err(SsoConfigError::Discovery(DiscoveryError::Unusable(
            "the key set holds no RS256 or ES256 key".to_owned(),
        )));
    }
    Ok(())
}

/// The tenant's configuration row, created or replaced (a new version).
fn upsert_config<P: Platform>(
    p: &P,
    tenant_id: &str,
    view: &SsoConfigView,
    sealed: String,
) -> Stmt {
    Stmt::new(
        "INSERT INTO sso_configs (id, tenant_id, issuer_url, client_id, client_secret_enc,
           enabled, allow_jit, jit_role, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (tenant_id) DO UPDATE SET issuer_url = excluded.issuer_url,
           client_id = excluded.client_id, client_secret_enc = excluded.client_secret_enc,
           enabled = excluded.enabled, allow_jit = excluded.allow_jit,
           jit_role = excluded.jit_role, updated_at = excluded.updated_at,
           version = sso_configs.version + 1",
    )
    .bind(ids::new_id(p.random()))
    .bind(tenant_id)
    .bind(view.issuer_url.as_str())
    .bind(view.client_id.as_str())
    .bind(sealed)
    .bind(i64::from(view.enabled))
    .bind(i64::from(view.allow_jit))
    .bind(view.jit_role.as_str())
    .bind(view.updated_at)
}

/// `DELETE /v1/tenant/sso` (owner only): removes the configuration, audited in the same batch.
pub async fn delete<P: Platform>(
    p: &P,
    tenant_id: &str,
    user_id: &str,
    request_id: &str,
) -> Result<(), SsoConfigError> {
    require_owner(p, tenant_id, user_id).await?;
    if load(p, tenant_id).await?.is_none() {
        return Err(SsoConfigError::NotConfigured);
    }
    let now = p.clock().now_ms();
    let record = AuditRecord::success(
        "sso.remove",
        &Actor::user(user_id),
        Some(tenant_id),
        format!("tenant:{tenant_id}"),
        Some(request_id),
    );
    p.sql()
        .batch(vec![
            Stmt::new("DELETE FROM sso_configs WHERE tenant_id = ?1").bind(tenant_id),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(())
}
