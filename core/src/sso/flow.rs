//! The SSO sign-in (FR-AUTH-003, FR-AUTH-001): the redirect to the tenant's IdP and the
//! callback that turns its answer into a signed-in tenant user.
//!
//! [`start`] sends the browser to the IdP's authorization endpoint with the code flow, PKCE
//! (S256), a `state` and a `nonce`. The state's hash keys an `auth_flows` row (kind `sso`, single
//! use, 10 minutes) holding the nonce's hash, the PKCE verifier (sealed), and what the exchange
//! needs: the issuer, client (its secret still sealed) and endpoints of the configuration the
//! sign-in started with. Discovery is fetched at each start and key sets at each callback (no
//! cache: sign-in is not a hot path, and a rotated IdP key is picked up at once).
//!
//! [`callback`] consumes that row (once), exchanges the code at the token endpoint with the
//! client it started with, verifies the ID token with the keys of the issuer it came from, and
//! then judges its claims against the tenant's configuration as it is NOW: a token from an
//! issuer or for a client the owner has meanwhile replaced is refused. The user is found by
//! the linked external identity, else by the verified email within the tenant: invited users
//! are activated, active ones signed in, disabled or deleted ones refused, unknown emails
//! refused unless the tenant allows just-in-time accounts.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::config::{self, secret_context};
use super::discovery::{self, DiscoveryError, TokenAuth};
use super::id_token::{self, IdTokenError};
use crate::audit::{self, Actor, AuditRecord};
use crate::crypto::{b64url_encode, random_token, token_hash};
use crate::ids;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, HttpClient, Logger, Platform, Row, Sql, SqlError, Stmt};
use crate::sessions::SessionUser;
use crate::tenants::{Email, TenantDomain};
use crate::throttle::{self, Counter};
use crate::tokens::master_key::MasterKey;

/// How long a started sign-in may be completed: 10 minutes.
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// Largest token endpoint response read, in bytes.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest `state`, `code`, `login_flow` or `redirect_to` accepted.
const MAX_PARAM_LEN: usize = 2048;

/// Where to send the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoStart {
    /// The IdP's authorization URL with every parameter.
    pub authorization_url: String,
}

/// Why a sign-in could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoStartError {
    /// Unknown tenant, no or disabled SSO configuration, or a tenant that is not active: never
    /// says which.
    #[error("single sign-on is not available for this tenant")]
    NotAvailable,
    /// A parameter is invalid: (name, what is wrong).
    #[error("{0} {1}")]
    Invalid(&'static str, &'static str),
    /// The IdP's discovery document cannot be fetched or used now (cause inside, for the log).
    #[error("the tenant's identity provider is unavailable: {0}")]
    IdpUnavailable(String),
    /// `MASTER_KEY` is missing or invalid.
    #[error("the master key is unusable: {0}")]
    MasterKey(String),
    /// The database failed.
    #[error("SSO storage failed: {0}")]
    Storage(String),
}

impl SsoStartError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SsoStartError::NotAvailable => "sso_not_available",
            SsoStartError::Invalid(..) => "sso_invalid",
            SsoStartError::IdpUnavailable(_) => "sso_idp_unavailable",
            SsoStartError::MasterKey(_) => "master_key",
            SsoStartError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SsoStartError::NotAvailable => ErrorKind::NotFound,
            SsoStartError::Invalid(field, _) => ErrorKind::InvalidField(field),
            SsoStartError::IdpUnavailable(_) => ErrorKind::Unavailable,
            SsoStartError::MasterKey(_) => ErrorKind::Internal,
            SsoStartError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(SsoStartError);

impl From<SqlError> for SsoStartError {
    fn from(e: SqlError) -> Self {
        SsoStartError::Storage(e.to_string())
    }
}

/// What the single-use flow row keeps between the redirect and the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlowData {
    /// SHA-256 hex of the nonce.
    nonce_hash: String,
    /// The PKCE verifier, sealed under the master key.
    verifier_enc: String,
    /// The issuer the sign-in started with.
    issuer: String,
    /// The client the sign-in started with.
    client_id: String,
    /// That client's secret as stored (sealed under the tenant's secret context).
    client_secret_enc: String,
    /// The token endpoint from discovery.
    token_endpoint: String,
    /// The key set from discovery.
    jwks_uri: String,
    /// How to authenticate at the token endpoint.
    token_auth: TokenAuth,
    /// The `redirect_uri` sent, sent again with the code.
    redirect_uri: String,
    /// The universal login page's flow, when it started this sign-in.
    login_flow: Option<String>,
    /// Where the client wants to go afterwards (a path on this origin).
    redirect_to: Option<String>,
}

/// The associated data the PKCE verifier is sealed with.
fn verifier_context(state_hash: &str) -> String {
    format!("sso-pkce:{state_hash}")
}

/// A path on this origin: starts with one `/`, printable ASCII (anything else percent-encoded),
/// no backslash, bounded (no open redirect).
fn valid_redirect_to(v: &str) -> bool {
    v.starts_with('/')
        && !v.starts_with("//")
        && !v.contains('\\')
        && v.len() <= MAX_PARAM_LEN
        && v.bytes().all(|b| b.is_ascii_graphic())
}

/// Starts an SSO sign-in for the tenant of `domain`; `redirect_uri` is Edgeplane's callback
/// URL, where the IdP sends the browser back (registered with the IdP by the tenant's owner).
pub async fn start<P: Platform>(
    p: &P,
    domain: &TenantDomain,
    redirect_uri: &str,
    login_flow: Option<String>,
    redirect_to: Option<String>,
) -> Result<SsoStart, SsoStartError> {
    check_start_params(login_flow.as_deref(), redirect_to.as_deref())?;
    let (tenant_id, cfg) = start_config(p, domain).await?;
    let meta = discovery::discover_cached(p, &cfg.view.issuer_url, config::development(p))
        .await
        .map_err(|e| SsoStartError::IdpUnavailable(e.log_detail()))?;
    let master =
        MasterKey::load(p.secrets()).map_err(|e| SsoStartError::MasterKey(e.to_string()))?;
    let state = random_token(p.random());
    let nonce = random_token(p.random());
    let verifier = random_token(p.random());
    let state_hash = token_hash(&state);
    let challenge = b64url_encode(&Sha256::digest(verifier.as_bytes()));
    let data = FlowData {
        nonce_hash: token_hash(&nonce),
        verifier_enc: master.seal(
            p.random(),
            &verifier_context(&state_hash),
            verifier.as_bytes(),
        ),
        issuer: meta.issuer.clone(),
        client_id: cfg.view.client_id.clone(),
        client_secret_enc: cfg.client_secret_enc.clone(),
        token_endpoint: meta.token_endpoint.clone(),
        jwks_uri: meta.jwks_uri.clone(),
        token_auth: meta.token_auth,
        redirect_uri: redirect_uri.to_owned(),
        login_flow,
        redirect_to,
    };
    store_flow(p, &state_hash, &tenant_id, &data).await?;
    Ok(SsoStart {
        authorization_url: authorization_url(
            &meta.authorization_endpoint,
            &cfg.view.client_id,
            redirect_uri,
            &state,
            &nonce,
            &challenge,
        ),
    })
}

/// The IdP's authorization URL of the code flow with PKCE (S256), `state` and `nonce`.
fn authorization_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    challenge: &str,
) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{query}")
}

/// Refuses a `login_flow` or `redirect_to` that may not travel through the sign-in.
fn check_start_params(
    login_flow: Option<&str>,
    redirect_to: Option<&str>,
) -> Result<(), SsoStartError> {
    if login_flow
        .is_some_and(|f| f.is_empty() || f.len() > 256 || !f.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(SsoStartError::Invalid(
            "login_flow",
            "must be 1 to 256 printable ASCII characters",
        ));
    }
    if redirect_to.is_some_and(|r| !valid_redirect_to(r)) {
        return Err(SsoStartError::Invalid(
            "redirect_to",
            "must be a path on this origin (starting with a single /)",
        ));
    }
    Ok(())
}

/// The id and enabled SSO configuration of the active tenant of `domain`, or `NotAvailable`.
async fn start_config<P: Platform>(
    p: &P,
    domain: &TenantDomain,
) -> Result<(String, config::StoredConfig), SsoStartError> {
    let rows = p
        .sql()
        .query(Stmt::new("SELECT id, status FROM tenants WHERE domain = ?1").bind(domain.as_str()))
        .await?;
    let Some(tenant) = rows.first() else {
        return Err(SsoStartError::NotAvailable);
    };
    let tenant_id = tenant.text("id")?;
    if tenant.text("status")? != "active" {
        return Err(SsoStartError::NotAvailable);
    }
    let cfg = enabled_config(p, &tenant_id)
        .await?
        .ok_or(SsoStartError::NotAvailable)?;
    Ok((tenant_id, cfg))
}

/// The tenant's SSO configuration, `None` when it has none or it is disabled.
async fn enabled_config<P: Platform>(
    p: &P,
    tenant_id: &str,
) -> Result<Option<config::StoredConfig>, SqlError> {
    Ok(config::load(p, tenant_id)
        .await?
        .filter(|cfg| cfg.view.enabled))
}

/// Writes the single-use `auth_flows` row of a started sign-in, keyed by the state's hash.
async fn store_flow<P: Platform>(
    p: &P,
    state_hash: &str,
    tenant_id: &str,
    data: &FlowData,
) -> Result<(), SsoStartError> {
    let now = p.clock().now_ms();
    let json = serde_json::to_string(data).map_err(|e| SsoStartError::Storage(e.to_string()))?;
    p.sql()
        .execute(
            Stmt::new(
                "INSERT INTO auth_flows (token_hash, kind, tenant_id, data, created_at, expires_at)
                 VALUES (?1, 'sso', ?2, ?3, ?4, ?5)",
            )
            .bind(state_hash)
            .bind(tenant_id)
            .bind(json)
            .bind(now)
            .bind(now + FLOW_TTL_MS),
        )
        .await?;
    Ok(())
}

/// The query of the IdP's redirect to the callback.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The state of [`start`].
    pub state: Option<String>,
    /// The IdP's error (`access_denied`, ...), when it refused.
    pub error: Option<String>,
    /// The authorization response's issuer (RFC 9207), when the IdP sends one.
    pub iss: Option<String>,
}

/// A successful SSO sign-in: the session is started by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoSignIn {
    /// Who signed in.
    pub user: SessionUser,
    /// The universal login page's flow, when it started this sign-in.
    pub login_flow: Option<String>,
    /// Where the client wanted to go afterwards.
    pub redirect_to: Option<String>,
    /// The IdP vouched for its own MFA (`amr`/`acr`).
    pub idp_mfa: bool,
    /// The sign-in's risk decision, once the risk check admitted it (the session started for
    /// it is recorded there).
    pub attempt_id: Option<String>,
    /// The statements recording that decision, for the batch that starts the session or
    /// issues the code (see `risk::Decision::writes`).
    pub decided: Vec<Stmt>,
}

/// Why an SSO callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoCallbackError {
    /// No pending sign-in has this state (unknown, already used or expired), or no state.
    #[error("the sign-in state is unknown, used or expired")]
    InvalidState,
    /// The IdP answered with an error (its `error` code, sanitised).
    #[error("the identity provider refused the sign-in: {0}")]
    IdpError(String),
    /// The authorization response names another issuer than the one the sign-in went to
    /// (RFC 9207: a mix-up of identity providers).
    #[error("the authorization response is from another issuer")]
    ResponseIssuer,
    /// No code, or the token endpoint refused the code.
    #[error("the authorization code was refused")]
    CodeRefused,
    /// The ID token is not acceptable.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The tenant's SSO was removed or disabled since the sign-in started.
    #[error("single sign-on is not available for this tenant")]
    NotAvailable,
    /// The tenant is suspended or being deleted.
    #[error("the tenant is not active")]
    TenantNotActive,
    /// The identity maps to no account that may sign in: `unknown_user` (no JIT),
    /// `account_not_active`, `identity_mismatch` or `email_invalid`.
    #[error("no account of this tenant may sign in with this identity")]
    AccountRefused(&'static str),
    /// Too many failed SSO callbacks from this client (ERR-RATE-429).
    #[error("too many failed sign-in attempts")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// The IdP's token endpoint or key set cannot be reached or used (cause, for the log).
    #[error("the tenant's identity provider is unavailable: {0}")]
    IdpUnavailable(String),
    /// `MASTER_KEY` is missing or invalid, or a sealed value does not open.
    #[error("the master key is unusable: {0}")]
    MasterKey(String),
    /// The database failed.
    #[error("SSO storage failed: {0}")]
    Storage(String),
}

impl SsoCallbackError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            SsoCallbackError::InvalidState => "sso_state_invalid",
            SsoCallbackError::IdpError(_) => "idp_error",
            SsoCallbackError::ResponseIssuer => "response_issuer",
            SsoCallbackError::CodeRefused => "code_refused",
            SsoCallbackError::IdToken(e) => e.code(),
            SsoCallbackError::NotAvailable => "sso_not_available",
            SsoCallbackError::TenantNotActive => "tenant_not_active",
            SsoCallbackError::AccountRefused(reason) => reason,
            SsoCallbackError::RateLimited { .. } => "rate_limited",
            SsoCallbackError::IdpUnavailable(_) => "sso_idp_unavailable",
            SsoCallbackError::MasterKey(_) => "master_key",
            SsoCallbackError::Storage(_) => "storage",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SsoCallbackError::InvalidState => ErrorKind::Unauthenticated,
            SsoCallbackError::IdpError(_) => ErrorKind::Unauthenticated,
            SsoCallbackError::ResponseIssuer => ErrorKind::Unauthenticated,
            SsoCallbackError::CodeRefused => ErrorKind::Unauthenticated,
            SsoCallbackError::IdToken(_) => ErrorKind::Unauthenticated,
            SsoCallbackError::NotAvailable => ErrorKind::Unauthenticated,
            SsoCallbackError::TenantNotActive => ErrorKind::Forbidden,
            SsoCallbackError::AccountRefused(_) => ErrorKind::Forbidden,
            SsoCallbackError::RateLimited { retry_after_secs } => ErrorKind::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            SsoCallbackError::IdpUnavailable(_) => ErrorKind::Unavailable,
            SsoCallbackError::MasterKey(_) => ErrorKind::Internal,
            SsoCallbackError::Storage(_) => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(SsoCallbackError);

impl From<SqlError> for SsoCallbackError {
    fn from(e: SqlError) -> Self {
        SsoCallbackError::Storage(e.to_string())
    }
}

/// An IdP `error` value as it may be echoed: the RFC 6749 charset, bounded.
fn sanitise_error(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if clean.is_empty() {
        "unspecified".to_owned()
    } else {
        clean
    }
}

/// Completes an SSO sign-in from the IdP's redirect: the IdP's answer checked and the user
/// matched (and linked, activated or created). `client` is the caller's address (rate limit,
/// stored hashed only). The risk check of the sign-in that follows, and its step-up, are the
/// sign-in service's (`signin::sso_sign_in`, which calls this): no session may start from this
/// alone.
pub async fn callback<P: Platform>(
    p: &P,
    params: &CallbackParams,
    client: Option<&str>,
    request_id: &str,
) -> Result<SsoSignIn, SsoCallbackError> {
    let now = p.clock().now_ms();
    let counter = client.map(|c| Counter::new(throttle::LOGIN_PER_CLIENT, c, now));
    let held = match throttle::admit(p, counter.into_iter().collect()).await? {
        throttle::Admission::Admitted(held) => held,
        throttle::Admission::Refused { retry_after_secs } => {
            refuse(p, None, None, "rate_limited", request_id).await?;
            return Err(SsoCallbackError::RateLimited { retry_after_secs });
        }
    };
    let outcome = complete(p, params, now).await;
    match outcome {
        Ok(done) => {
            held.release(p).await?;
            if let Some(mut audit) = done.record {
                audit.request_id = Some(request_id.to_owned());
                audit_batch(p, done.stmts, &audit, now).await?;
            } else if !done.stmts.is_empty() {
                p.sql().batch(done.stmts).await?;
            }
            Ok(done.sign_in)
        }
        Err((err, tenant_id, user_id)) => {
            if matches!(
                err,
                SsoCallbackError::Storage(_)
                    | SsoCallbackError::MasterKey(_)
                    | SsoCallbackError::IdpUnavailable(_)
            ) {
                // Edgeplane's or the IdP's failure, not the client's.
                held.release(p).await?;
            } else {
                refuse(
                    p,
                    tenant_id.as_deref(),
                    user_id.as_deref(),
                    err.code(),
                    request_id,
                )
                .await?;
                held.keep();
            }
            Err(err)
        }
    }
}

/// What a successful callback writes, then returns.
struct Completed {
    sign_in: SsoSignIn,
    stmts: Vec<Stmt>,
    record: Option<AuditRecord>,
}

/// A failure with the tenant and user it concerns, if known (for the audit record).
type Failed = (SsoCallbackError, Option<String>, Option<String>);

/// The callback's work, without the refusal bookkeeping.
async fn complete<P: Platform>(
    p: &P,
    params: &CallbackParams,
    now: i64,
) -> Result<Completed, Failed> {
    let (tenant_id, state_hash, data) = consume_flow(p, params, now).await?;
    let on_tenant = |e: SsoCallbackError| (e, Some(tenant_id.clone()), None);
    let code = check_response(params, &data).map_err(on_tenant)?;
    let cfg = callback_config(p, &tenant_id).await.map_err(on_tenant)?;
    let (verifier, secret) =
        open_flow_secrets(p, &tenant_id, &state_hash, &data).map_err(on_tenant)?;
    let id_token = exchange(p, &data, code, &verifier, &secret)
        .await
        .map_err(on_tenant)?;
    let identity = verify_id_token(p, &data, &id_token, &cfg.view, now)
        .await
        .map_err(on_tenant)?;
    let email = Email::parse(&identity.email)
        .map_err(|_| on_tenant(SsoCallbackError::AccountRefused("email_invalid")))?;
    let (user, stmts, record) = match_user(
        p,
        &tenant_id,
        &identity.issuer,
        &identity.subject,
        &email,
        &cfg.view,
        now,
    )
    .await?;
    Ok(Completed {
        sign_in: SsoSignIn {
            user,
            login_flow: data.login_flow,
            redirect_to: data.redirect_to,
            idp_mfa: identity.mfa,
            attempt_id: None,
            decided: Vec::new(),
        },
        stmts,
        record,
    })
}

/// Consumes the pending sign-in of the callback's `state` (single use: only the request whose
/// UPDATE changed the row goes on) and returns its tenant, the state's hash and its data.
async fn consume_flow<P: Platform>(
    p: &P,
    params: &CallbackParams,
    now: i64,
) -> Result<(String, String, FlowData), Failed> {
    let plain = |e: SsoCallbackError| (e, None, None);
    let state = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= MAX_PARAM_LEN)
        .ok_or_else(|| plain(SsoCallbackError::InvalidState))?;
    let state_hash = token_hash(state);
    let consumed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE auth_flows SET consumed_at = ?2
                 WHERE token_hash = ?1 AND kind = 'sso' AND consumed_at IS NULL AND expires_at > ?2",
            )
            .bind(state_hash.as_str())
            .bind(now),
        )
        .await
        .map_err(|e| plain(e.into()))?;
    if consumed != 1 {
        return Err(plain(SsoCallbackError::InvalidState));
    }
    let rows = p
        .sql()
        .query(
            Stmt::new("SELECT tenant_id, data FROM auth_flows WHERE token_hash = ?1")
                .bind(state_hash.as_str()),
        )
        .await
        .map_err(|e| plain(e.into()))?;
    let row = rows
        .first()
        .ok_or_else(|| plain(SsoCallbackError::InvalidState))?;
    let tenant_id = row
        .opt_text("tenant_id")
        .map_err(|e| plain(e.into()))?
        .ok_or_else(|| plain(SsoCallbackError::InvalidState))?;
    let data: FlowData = serde_json::from_str(&row.text("data").map_err(|e| plain(e.into()))?)
        .map_err(|_| {
            (
                SsoCallbackError::InvalidState,
                Some(tenant_id.clone()),
                None,
            )
        })?;
    Ok((tenant_id, state_hash, data))
}

/// Checks the IdP's redirect against the flow: its issuer (RFC 9207), its error, and returns
/// its code.
fn check_response<'a>(
    params: &'a CallbackParams,
    data: &FlowData,
) -> Result<&'a str, SsoCallbackError> {
    if params.iss.as_deref().is_some_and(|iss| iss != data.issuer) {
        return Err(SsoCallbackError::ResponseIssuer);
    }
    if let Some(error) = &params.error {
        return Err(SsoCallbackError::IdpError(sanitise_error(error)));
    }
    params
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= MAX_PARAM_LEN)
        .ok_or(SsoCallbackError::CodeRefused)
}

/// The tenant's SSO configuration as it is now, refusing a tenant that is gone, not active or
/// no longer has SSO enabled.
async fn callback_config<P: Platform>(
    p: &P,
    tenant_id: &str,
) -> Result<config::StoredConfig, SsoCallbackError> {
    let tenant_rows = p
        .sql()
        .query(Stmt::new("SELECT status FROM tenants WHERE id = ?1").bind(tenant_id))
        .await?;
    let tenant_status = match tenant_rows.first() {
        Some(r) => r.text("status")?,
        None => return Err(SsoCallbackError::NotAvailable),
    };
    if tenant_status != "active" {
        return Err(SsoCallbackError::TenantNotActive);
    }
    enabled_config(p, tenant_id)
        .await?
        .ok_or(SsoCallbackError::NotAvailable)
}

/// Opens the flow's sealed PKCE verifier and client secret under the master key.
fn open_flow_secrets<P: Platform>(
    p: &P,
    tenant_id: &str,
    state_hash: &str,
    data: &FlowData,
) -> Result<(String, String), SsoCallbackError> {
    let master =
        MasterKey::load(p.secrets()).map_err(|e| SsoCallbackError::MasterKey(e.to_string()))?;
    let open = |context: &str, sealed: &str| {
        master
            .open(context, sealed)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                SsoCallbackError::MasterKey("a sealed SSO value does not open".to_owned())
            })
    };
    let verifier = open(&verifier_context(state_hash), &data.verifier_enc)?;
    let secret = open(&secret_context(tenant_id), &data.client_secret_enc)?;
    Ok((verifier, secret))
}

/// Verifies the ID token's signature with the issuer's keys (fetched once more when cached
/// keys fail: the IdP may have rotated them) and its claims against the configuration now.
async fn verify_id_token<P: Platform>(
    p: &P,
    data: &FlowData,
    id_token: &str,
    cfg: &config::SsoConfigView,
    now: i64,
) -> Result<id_token::Identity, SsoCallbackError> {
    let unavailable = |e: DiscoveryError| SsoCallbackError::IdpUnavailable(e.log_detail());
    let development = config::development(p);
    let (keys, cached) = discovery::keys_cached(p, &data.issuer, &data.jwks_uri, development)
        .await
        .map_err(unavailable)?;
    let claims = match id_token::verify_signature(id_token, &keys) {
        Err(IdTokenError::Signature | IdTokenError::Algorithm) if cached => {
            let fresh = discovery::fetch_keys(p, &data.issuer, &data.jwks_uri, development)
                .await
                .map_err(unavailable)?;
            id_token::verify_signature(id_token, &fresh)
        }
        verified => verified,
    }?;
    let identity = id_token::check_claims(
        &claims,
        &id_token::Expected {
            issuer: &cfg.issuer_url,
            client_id: &cfg.client_id,
            nonce_hash: &data.nonce_hash,
            now_ms: now,
        },
    )?;
    Ok(identity)
}

/// The token endpoint's answer Edgeplane reads.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// Exchanges `code` at the flow's token endpoint (which must be on its issuer's origin and an
/// allowed destination, checked here because the secret goes there) and returns the ID token.
async fn exchange<P: Platform>(
    p: &P,
    data: &FlowData,
    code: &str,
    verifier: &str,
    secret: &str,
) -> Result<String, SsoCallbackError> {
    let origin = discovery::origin_of(&data.issuer);
    if origin.is_none() || discovery::origin_of(&data.token_endpoint) != origin {
        return Err(SsoCallbackError::IdpUnavailable(
            "token endpoint is not on the issuer's origin".to_owned(),
        ));
    }
    discovery::destination(&data.token_endpoint, config::development(p))
        .map_err(|why| SsoCallbackError::IdpUnavailable(format!("token endpoint {why}")))?;
    let client = discovery::TokenClient {
        endpoint: &data.token_endpoint,
        auth: data.token_auth,
        id: &data.client_id,
        secret,
    };
    let req = discovery::code_exchange(
        client,
        code,
        &data.redirect_uri,
        verifier,
        MAX_TOKEN_RESPONSE_BYTES,
    );
    let resp = p
        .http()
        .fetch(req)
        .await
        .map_err(|e| SsoCallbackError::IdpUnavailable(format!("token endpoint: {e}")))?;
    if resp.status >= 500 {
        return Err(SsoCallbackError::IdpUnavailable(format!(
            "token endpoint: status {}",
            resp.status
        )));
    }
    if resp.status != 200 || resp.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        // The IdP's own error code is worth a log line (no secrets in it).
        let error = serde_json::from_slice::<Json>(&resp.body)
            .ok()
            .and_then(|j| j.get("error").and_then(Json::as_str).map(sanitise_error))
            .unwrap_or_default();
        let line = serde_json::json!({
            "ts": p.clock().now_ms(), "level": "warn", "msg": "SSO token endpoint refused the code",
            "status": resp.status, "error": error,
        });
        p.logger().line(&line.to_string());
        return Err(SsoCallbackError::CodeRefused);
    }
    serde_json::from_slice::<TokenResponse>(&resp.body)
        .ok()
        .and_then(|t| t.id_token)
        .ok_or(SsoCallbackError::IdToken(IdTokenError::Malformed))
}

/// A matched user, the writes that link, activate or create them, and their audit record.
type Matched = (SessionUser, Vec<Stmt>, Option<AuditRecord>);

/// Finds (or, with JIT, creates) the tenant user of an identity and prepares the writes that
/// link it, activate it or create it.
async fn match_user<P: Platform>(
    p: &P,
    tenant_id: &str,
    issuer: &str,
    subject: &str,
    email: &Email,
    cfg: &config::SsoConfigView,
    now: i64,
) -> Result<Matched, Failed> {
    let rows = find_user(p, tenant_id, issuer, subject, email)
        .await
        .map_err(|e| (e.into(), Some(tenant_id.to_owned()), None))?;
    match rows.first() {
        Some(row) => sign_in_known(tenant_id, issuer, subject, row, now),
        None if cfg.allow_jit => Ok(create_jit(p, tenant_id, issuer, subject, email, cfg, now)),
        None => Err((
            SsoCallbackError::AccountRefused("unknown_user"),
            Some(tenant_id.to_owned()),
            None,
        )),
    }
}

/// The tenant's user linked to the external identity, else the one with the verified email.
async fn find_user<P: Platform>(
    p: &P,
    tenant_id: &str,
    issuer: &str,
    subject: &str,
    email: &Email,
) -> Result<Vec<Row>, SqlError> {
    let by_identity = p
        .sql()
        .query(
            Stmt::new(
                "SELECT id, role, status, external_issuer, external_subject FROM users
                 WHERE tenant_id = ?1 AND external_issuer = ?2 AND external_subject = ?3",
            )
            .bind(tenant_id)
            .bind(issuer)
            .bind(subject),
        )
        .await?;
    if !by_identity.is_empty() {
        return Ok(by_identity);
    }
    p.sql()
        .query(
            Stmt::new(
                "SELECT id, role, status, external_issuer, external_subject FROM users
                 WHERE tenant_id = ?1 AND email = ?2",
            )
            .bind(tenant_id)
            .bind(email.as_str()),
        )
        .await
}

/// A just-in-time account: an active user with the configured role, linked to the identity
/// (audited `user.create` by the system).
fn create_jit<P: Platform>(
    p: &P,
    tenant_id: &str,
    issuer: &str,
    subject: &str,
    email: &Email,
    cfg: &config::SsoConfigView,
    now: i64,
) -> Matched {
    let user_id = ids::new_id(p.random());
    let record = AuditRecord::success(
        "user.create",
        &Actor::system("sso-jit"),
        Some(tenant_id),
        format!("user:{user_id}"),
        None,
    )
    .with("role", cfg.jit_role.as_str())
    .with("method", "sso");
    let stmts = vec![Stmt::new(
        "INSERT INTO users (id, tenant_id, email, role, status, external_issuer,
           external_subject, last_login_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?7, ?7, ?7)",
    )
    .bind(user_id.as_str())
    .bind(tenant_id)
    .bind(email.as_str())
    .bind(cfg.jit_role.as_str())
    .bind(issuer)
    .bind(subject)
    .bind(now)];
    let user = SessionUser {
        user_id,
        tenant_id: tenant_id.to_owned(),
        role: cfg.jit_role.clone(),
    };
    (user, stmts, Some(record))
}

/// Signs in a known user by their status: an active one is linked to the identity, an invited
/// one accepts the invitation, any other is refused; so is an account linked to another subject.
fn sign_in_known(
    tenant_id: &str,
    issuer: &str,
    subject: &str,
    row: &Row,
    now: i64,
) -> Result<Matched, Failed> {
    let fail = |e: SsoCallbackError, user: Option<String>| (e, Some(tenant_id.to_owned()), user);
    let sql_fail = |e: SqlError| fail(e.into(), None);
    let user_id = row.text("id").map_err(sql_fail)?;
    let linked_here = row
        .opt_text("external_issuer")
        .map_err(sql_fail)?
        .as_deref()
        == Some(issuer);
    let linked_subject = row.opt_text("external_subject").map_err(sql_fail)?;
    // An account already linked to another subject of this issuer is that person's, even if
    // the IdP now hands its email to someone else.
    if linked_here && linked_subject.as_deref() != Some(subject) {
        return Err(fail(
            SsoCallbackError::AccountRefused("identity_mismatch"),
            Some(user_id),
        ));
    }
    let user = SessionUser {
        user_id: user_id.clone(),
        tenant_id: tenant_id.to_owned(),
        role: row.text("role").map_err(sql_fail)?,
    };
    match row.text("status").map_err(sql_fail)?.as_str() {
        "active" => Ok((user, link_active(&user_id, issuer, subject, now), None)),
        // FR-TENANT-001: signing in through the tenant's IdP accepts the invitation.
        "invited" => {
            let (stmts, record) = accept_invitation(tenant_id, &user_id, issuer, subject, now);
            Ok((user, stmts, Some(record)))
        }
        _ => Err(fail(
            SsoCallbackError::AccountRefused("account_not_active"),
            Some(user_id),
        )),
    }
}

/// Links an active user to the identity (and clears their failed sign-ins).
fn link_active(user_id: &str, issuer: &str, subject: &str, now: i64) -> Vec<Stmt> {
    vec![Stmt::new(
        "UPDATE users SET external_issuer = ?2, external_subject = ?3, failed_logins = 0,
           updated_at = ?4
         WHERE id = ?1 AND status = 'active'",
    )
    .bind(user_id)
    .bind(issuer)
    .bind(subject)
    .bind(now)]
}

/// Accepts an invited user's pending invitation and activates them linked to the identity
/// (audited `invitation.accept`).
fn accept_invitation(
    tenant_id: &str,
    user_id: &str,
    issuer: &str,
    subject: &str,
    now: i64,
) -> (Vec<Stmt>, AuditRecord) {
    let record = AuditRecord::success(
        "invitation.accept",
        &Actor::user(user_id),
        Some(tenant_id),
        format!("user:{user_id}"),
        None,
    )
    .with("user_id", user_id)
    .with("method", "sso");
    let stmts = vec![
        Stmt::new(
            "UPDATE invitations SET status = 'accepted', accepted_at = ?2
             WHERE user_id = ?1 AND status = 'pending'",
        )
        .bind(user_id)
        .bind(now),
        Stmt::new(
            "UPDATE users SET status = 'active', external_issuer = ?2,
               external_subject = ?3, failed_logins = 0, updated_at = ?4,
               version = version + 1
             WHERE id = ?1 AND status = 'invited'",
        )
        .bind(user_id)
        .bind(issuer)
        .bind(subject)
        .bind(now),
    ];
    (stmts, record)
}

/// Runs `stmts` with the outbox row of `record` in one batch.
async fn audit_batch<P: Platform>(
    p: &P,
    mut stmts: Vec<Stmt>,
    record: &AuditRecord,
    now: i64,
) -> Result<(), SqlError> {
    stmts.push(audit::outbox_insert(record, &audit::new_event_id(p), now));
    p.sql().batch(stmts).await?;
    Ok(())
}

/// Audits a refused SSO sign-in (no email, subject or address in it; the client's rate limit
/// counted the attempt before it was checked).
async fn refuse<P: Platform>(
    p: &P,
    tenant_id: Option<&str>,
    user_id: Option<&str>,
    reason: &str,
    request_id: &str,
) -> Result<(), SqlError> {
    let now = p.clock().now_ms();
    let record = AuditRecord::failure(
        "session.create",
        &Actor::user(user_id.unwrap_or("anonymous")),
        tenant_id,
        user_id.map_or_else(|| "session".to_owned(), |u| format!("user:{u}")),
        Some(request_id),
    )
    .with("method", "sso")
    .with("reason", reason);
    p.sql()
        .execute(audit::outbox_insert(&record, &audit::new_event_id(p), now))
        .await?;
    Ok(())
}
