//! The canary the journeys sign in with (NFR-MON-003): one well-known tenant marked `canary`,
//! a user with a password and TOTP enrolled, an app with a tenant-bound API key holding the
//! scopes the journey needs, and a flag to evaluate.
//!
//! The first run creates it in one batch (so two first runs racing leave one canary: the
//! loser's batch fails on `journey_canary`'s single row and it reads the winner's). The
//! journey needs its secrets in clear, so they are generated from the Random port and kept
//! sealed under the master key in `journey_canary.secrets_enc`, as SSO client secrets are;
//! only hashes of the password and key are where the sign-in paths look for them. They are
//! never logged.

use serde::{Deserialize, Serialize};

use crate::apps::model::KeyId;
use crate::apps::secret::{new_key, Pepper};
use crate::crypto;
use crate::ids;
use crate::ports::{Clock, Platform, Random, Sql, SqlError, Stmt};
use crate::tokens::MasterKey;
use crate::users::{mfa, password, totp};

/// The canary tenant's domain: the tenant it signs in to.
pub const DOMAIN: &str = "edgeplane-canary";
/// The canary user's email (`.invalid`, RFC 2606: no mail can reach it).
pub const EMAIL: &str = "canary@edgeplane-canary.invalid";
/// The flag the journey evaluates; it is `true`.
pub const FLAG_KEY: &str = "edgeplane-canary";
/// The canary app's name.
const APP_NAME: &str = "Edgeplane canary";
/// Who created the canary, in `apps.owner_id` and `feature_flags.updated_by`.
pub const SYSTEM_ACTOR: &str = "system:journeys";
/// Associated data of the sealed secrets.
const SEAL_CONTEXT: &str = "journey.canary";
/// The API key's scopes: evaluate flags, introspect tokens, write and read billing events.
const SCOPES: &str = r#"["flags:read","token:introspect","bill:write","bill:read"]"#;

/// The canary, with its secrets open.
#[derive(Clone)]
pub struct Canary {
    /// The canary tenant's id.
    pub tenant_id: String,
    /// The canary user's id.
    pub user_id: String,
    /// The canary app's id.
    pub app_id: String,
    /// The secrets.
    pub secrets: CanarySecrets,
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// What the journey signs in and calls with; sealed at rest.
#[derive(Clone, Serialize, Deserialize)]
pub struct CanarySecrets {
    /// The canary user's password.
    pub password: String,
    /// The TOTP secret, base64url.
    pub totp: String,
    /// The API key (`ep_<env>_<id>_<secret>`).
    pub api_key: String,
}

impl CanarySecrets {
    /// The TOTP secret's bytes.
    pub fn totp_bytes(&self) -> Vec<u8> {
        crypto::b64url_decode(&self.totp).unwrap_or_default()
    }
}

/// Why the canary could not be read or created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CanaryError {
    /// `MASTER_KEY` is missing or invalid: secrets cannot be sealed or opened.
    #[error("master key unavailable: {0}")]
    MasterKey(String),
    /// `API_KEY_PEPPER` is missing or too short: no key can be issued.
    #[error("API key pepper unavailable: {0}")]
    Pepper(String),
    /// The sealed secrets do not open or parse.
    #[error("canary secrets unreadable")]
    Unreadable,
    /// Hashing the password failed.
    #[error("{0}")]
    Hash(String),
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl CanaryError {
    /// What a journey record says of it: general terms, no internals.
    pub fn general(&self) -> &'static str {
        match self {
            CanaryError::MasterKey(_) => "MASTER_KEY is missing or invalid",
            CanaryError::Pepper(_) => "API_KEY_PEPPER is missing or too short",
            CanaryError::Unreadable => "the canary secrets do not open under MASTER_KEY",
            CanaryError::Hash(_) => "password hashing failed",
            CanaryError::Storage(_) => "storage failed",
        }
    }
}

/// Whether the deployment can hold a canary: `MASTER_KEY` (to seal its secrets) and an API key
/// pepper are set. Without them no customer can sign in or use a key either, which the
/// request metrics and health show; the journey is skipped rather than failed every run.
pub fn configured<P: Platform>(p: &P) -> bool {
    MasterKey::load(p.secrets()).is_ok() && Pepper::load(p).is_ok()
}

/// The canary, created by the first call (idempotent: later calls, and a call that lost a race
/// with another first call, read the one that exists).
pub async fn ensure<P: Platform>(p: &P) -> Result<Canary, CanaryError> {
    let master = MasterKey::load(p.secrets()).map_err(|e| CanaryError::MasterKey(e.to_string()))?;
    if let Some(c) = load(p, &master).await? {
        return Ok(c);
    }
    match create(p, &master).await {
        Ok(c) => Ok(c),
        Err(CanaryError::Storage(SqlError::Constraint(cause))) => load(p, &master)
            .await?
            .ok_or(CanaryError::Storage(SqlError::Constraint(cause))),
        Err(e) => Err(e),
    }
}

/// The stored canary, if any.
async fn load<P: Platform>(p: &P, master: &MasterKey) -> Result<Option<Canary>, CanaryError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT tenant_id, user_id, app_id, secrets_enc FROM journey_canary WHERE id = 1",
        ))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let sealed = row.text("secrets_enc")?;
    let clear = master
        .open(SEAL_CONTEXT, &sealed)
        .map_err(|_| CanaryError::Unreadable)?;
    let secrets = serde_json::from_slice(&clear).map_err(|_| CanaryError::Unreadable)?;
    Ok(Some(Canary {
        tenant_id: row.text("tenant_id")?,
        user_id: row.text("user_id")?,
        app_id: row.text("app_id")?,
        secrets,
    }))
}

/// Creates the canary in one batch, then publishes its flag snapshot (best effort: the first
/// evaluation builds it otherwise).
async fn create<P: Platform>(p: &P, master: &MasterKey) -> Result<Canary, CanaryError> {
    let pepper = Pepper::load(p).map_err(|e| CanaryError::Pepper(e.to_string()))?;
    let key_id = KeyId::generate(p)?;
    let key = new_key(p.random(), pepper.env(), &key_id);
    let mut totp_secret = [0u8; totp::SECRET_BYTES];
    p.random().fill(&mut totp_secret);
    let canary = Canary {
        tenant_id: ids::new_id(p.random()),
        user_id: ids::new_id(p.random()),
        app_id: ids::new_id(p.random()),
        secrets: CanarySecrets {
            password: crypto::random_token(p.random()),
            totp: crypto::b64url_encode(&totp_secret),
            api_key: key.full.clone(),
        },
    };
    let password_hash = password::hash(p.random(), &canary.secrets.password)
        .map_err(|e| CanaryError::Hash(e.to_string()))?;
    let totp_sealed = master.seal(p.random(), &mfa::context(&canary.user_id), &totp_secret);
    let secrets_json = serde_json::to_vec(&canary.secrets).map_err(|_| CanaryError::Unreadable)?;
    let sealed = master.seal(p.random(), SEAL_CONTEXT, &secrets_json);
    let now = p.clock().now_ms();
    let rows = Rows {
        canary: &canary,
        key_id: key_id.as_str(),
        prefix: &key.prefix,
        key_hash: &pepper.hash(&key.full),
        password_hash: &password_hash,
        totp_sealed: &totp_sealed,
        sealed: &sealed,
        now,
    };
    p.sql().batch(rows.statements(p)).await?;
    if let Ok(t) = crate::tenants::model::TenantId::parse(&canary.tenant_id) {
        let _ = crate::flags::snapshot::publish(p, &t).await;
    }
    Ok(canary)
}

/// The values of the canary's rows.
struct Rows<'a> {
    canary: &'a Canary,
    key_id: &'a str,
    prefix: &'a str,
    key_hash: &'a str,
    password_hash: &'a str,
    totp_sealed: &'a str,
    sealed: &'a str,
    now: i64,
}

impl Rows<'_> {
    /// The batch: `journey_canary` first, so a second creation fails before writing anything.
    fn statements<P: Platform>(&self, p: &P) -> Vec<Stmt> {
        let c = self.canary;
        vec![
            Stmt::new(
                "INSERT INTO journey_canary (id, tenant_id, user_id, app_id, key_id, secrets_enc, created_at)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(c.tenant_id.as_str())
            .bind(c.user_id.as_str())
            .bind(c.app_id.as_str())
            .bind(self.key_id)
            .bind(self.sealed)
            .bind(self.now),
            Stmt::new(
                "INSERT INTO tenants (id, name, domain, plan, status, flags_version, created_at, updated_at, canary)
                 VALUES (?1, 'Edgeplane canary', ?2, 'free', 'active', 1, ?3, ?3, 1)",
            )
            .bind(c.tenant_id.as_str())
            .bind(DOMAIN)
            .bind(self.now),
            Stmt::new(
                "INSERT INTO users (id, tenant_id, email, display_name, role, status, password_hash,
                   password_changed_at, mfa_enabled, totp_secret_enc, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'Canary', 'user', 'active', ?4, ?5, 1, ?6, ?5, ?5)",
            )
            .bind(c.user_id.as_str())
            .bind(c.tenant_id.as_str())
            .bind(EMAIL)
            .bind(self.password_hash)
            .bind(self.now)
            .bind(self.totp_sealed),
            Stmt::new(
                "INSERT INTO apps (id, name, owner_id, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?4)",
            )
            .bind(c.app_id.as_str())
            .bind(APP_NAME)
            .bind(SYSTEM_ACTOR)
            .bind(self.now),
            Stmt::new(
                "INSERT INTO tenant_apps (tenant_id, app_id, enabled, created_at, updated_at)
                 VALUES (?1, ?2, 1, ?3, ?3)",
            )
            .bind(c.tenant_id.as_str())
            .bind(c.app_id.as_str())
            .bind(self.now),
            Stmt::new(
                "INSERT INTO api_keys (id, app_id, tenant_id, kind, name, prefix, key_hash, scopes, created_at)
                 VALUES (?1, ?2, ?3, 'server', 'journeys', ?4, ?5, ?6, ?7)",
            )
            .bind(self.key_id)
            .bind(c.app_id.as_str())
            .bind(c.tenant_id.as_str())
            .bind(self.prefix)
            .bind(self.key_hash)
            .bind(SCOPES)
            .bind(self.now),
            Stmt::new(
                "INSERT INTO feature_flags (id, tenant_id, key, type, value, enabled, description,
                   overridden, created_at, updated_at, updated_by)
                 VALUES (?1, ?2, ?3, 'boolean', 'true', 1, 'Evaluated by the synthetic journeys', 1, ?4, ?4, ?5)",
            )
            .bind(ids::new_id(p.random()))
            .bind(c.tenant_id.as_str())
            .bind(FLAG_KEY)
            .bind(self.now)
            .bind(SYSTEM_ACTOR),
        ]
    }
}

/// Whether a tenant is a canary: the journeys' own, left out of listings and summaries.
pub async fn is_canary<S: Sql>(sql: &S, tenant_id: &str) -> Result<bool, SqlError> {
    let rows = sql
        .query(Stmt::new("SELECT canary FROM tenants WHERE id = ?1").bind(tenant_id))
        .await?;
    Ok(rows
        .first()
        .map(|r| r.i64("canary"))
        .transpose()?
        .is_some_and(|c| c == 1))
}
