//! OIDC clients: a managed app is the client, `client_id` is its id. An app with a client
//! secret (set by an operator, shown once, stored as a keyed hash like API keys) is a
//! confidential client authenticated by `client_secret_basic` or `client_secret_post`; an app
//! without one is a public client. Every client uses PKCE S256.

use crate::apps::secret::{Pepper, PepperProblem};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};

/// Longest client id or secret read from a request, checked before any other work.
pub const MAX_CLIENT_CREDENTIAL_LEN: usize = 128;

/// A managed app as an OIDC client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The app id, which is the `client_id`.
    pub id: String,
    /// The app's display name (shown on the login page).
    pub name: String,
    /// Whether the app is active.
    pub active: bool,
    /// The registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// The keyed hash of the client secret; `None` for a public client.
    secret_hash: Option<String>,
}

impl Client {
    /// Whether `uri` is exactly one of the registered redirect URIs (no prefix, no
    /// normalisation: RFC 6749 3.1.2.3, OAuth 2.1 exact match).
    pub fn redirect_uri_registered(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether the client is confidential (has a secret).
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }
}

/// The tenant console's client id: a first-party public client (migration 0009), enabled for
/// every tenant, whose redirect URI is the console's callback under `PUBLIC_BASE_URL`.
pub const CONSOLE_CLIENT_ID: &str = "edgeplane-console";

/// The tenant console's callback path, under `PUBLIC_BASE_URL`.
pub const CONSOLE_CALLBACK_PATH: &str = "/console/auth/tenant/callback";

/// The client of id `client_id`, `None` if no app has that id.
pub async fn load_client<P: Platform>(p: &P, client_id: &str) -> Result<Option<Client>, SqlError> {
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_CREDENTIAL_LEN {
        return Ok(None);
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT a.id, a.name, a.status, a.redirect_uris, s.secret_hash
                 FROM apps a LEFT JOIN oidc_client_secrets s ON s.app_id = a.id
                 WHERE a.id = ?1",
            )
            .bind(client_id),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut redirect_uris: Vec<String> =
        serde_json::from_str(&row.text("redirect_uris")?).unwrap_or_default();
    if client_id == CONSOLE_CLIENT_ID {
        if let Some(base) = crate::tenants::configured_base_url(p) {
            redirect_uris.push(format!("{base}{CONSOLE_CALLBACK_PATH}"));
        }
    }
    Ok(Some(Client {
        id: row.text("id")?,
        name: row.text("name")?,
        active: row.text("status")? == "active",
        redirect_uris,
        secret_hash: row.opt_text("secret_hash")?,
    }))
}

/// Why client authentication failed (RFC 6749 5.2 `invalid_client`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown or disabled client, wrong or missing secret, or a secret sent by a public client.
    #[error("client authentication failed")]
    Failed,
    /// The pepper needed to check secrets is not configured.
    #[error(transparent)]
    Pepper(#[from] PepperProblem),
    /// The database failed.
    #[error("client storage failed: {0}")]
    Storage(#[from] SqlError),
}

/// Authenticates the client of a token request: a confidential client must present its secret,
/// a public client must present none (it proves possession through PKCE).
pub async fn authenticate_client<P: Platform>(
    p: &P,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Client, ClientAuthError> {
    let client = load_client(p, client_id)
        .await?
        .filter(|c| c.active)
        .ok_or(ClientAuthError::Failed)?;
    match (&client.secret_hash, secret) {
        (None, None) => Ok(client),
        (Some(hash), Some(presented)) if presented.len() <= MAX_CLIENT_CREDENTIAL_LEN => {
            let pepper = Pepper::load(p)?;
            if pepper.verify(presented, hash) {
                Ok(client)
            } else {
                Err(ClientAuthError::Failed)
            }
        }
        _ => Err(ClientAuthError::Failed),
    }
}

/// Why a client secret could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientSecretError {
    /// No app of this id.
    #[error("no such app")]
    NotFound,
    /// The pepper needed to hash secrets is not configured.
    #[error(transparent)]
    Pepper(#[from] PepperProblem),
    /// The database failed.
    #[error("client secret storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl ClientSecretError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            ClientSecretError::NotFound => "app_not_found",
            ClientSecretError::Pepper(_) => "pepper_missing",
            ClientSecretError::Storage(_) => "storage",
        }
    }
}

/// Sets or replaces the client secret of app `app_id` (it becomes a confidential client) and
/// returns the new secret, shown once. Audited `app.client_secret_rotate`.
pub async fn rotate_client_secret<P: Platform>(
    p: &P,
    actor: &Actor,
    app_id: &str,
    request_id: &str,
) -> Result<String, ClientSecretError> {
    let pepper = Pepper::load(p)?;
    if load_client(p, app_id).await?.is_none() {
        return Err(ClientSecretError::NotFound);
    }
    let now = p.clock().now_ms();
    let secret = format!("epcs_{}", crypto::random_token(p.random()));
    let record = AuditRecord::success(
        "app.client_secret_rotate",
        actor,
        None,
        format!("app:{app_id}"),
        Some(request_id),
    );
    p.sql()
        .batch(vec![
            Stmt::new(
                "INSERT INTO oidc_client_secrets (app_id, secret_hash, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (app_id) DO UPDATE SET secret_hash = excluded.secret_hash,
                   created_at = excluded.created_at",
            )
            .bind(app_id)
            .bind(pepper.hash(&secret))
            .bind(now),
            audit::outbox_insert(&record, &audit::new_event_id(p), now),
        ])
        .await?;
    Ok(secret)
}
