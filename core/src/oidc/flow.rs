//! The authorization request (`GET /oauth/authorize`) and the login flow it starts: the request
//! is checked (client, exact redirect URI, `response_type=code`, `openid` scope, PKCE S256),
//! then stored as a pending login flow that the universal login page drives (tenant, password,
//! second factor or tenant SSO) until [`super::complete_login_flow`] issues the code.
//!
//! Errors found before the redirect URI is known to be registered are shown to the user, never
//! redirected (RFC 6749 4.1.2.1); later ones go back to the client with `error=`.

use super::client::{load_client, Client};
use super::{known_scopes, pkce, with_query, FLOW_TTL_MS};
use crate::crypto;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions::SessionUser;
use crate::tenants::{Email, TenantDomain};

/// Longest `state` or `nonce` accepted.
pub const MAX_STATE_LEN: usize = 512;

/// The parameters of an authorization request, as received (query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// `client_id`: the app id.
    pub client_id: Option<String>,
    /// `redirect_uri`: must equal a registered one.
    pub redirect_uri: Option<String>,
    /// `response_type`: only `code`.
    pub response_type: Option<String>,
    /// `scope`: must include `openid`.
    pub scope: Option<String>,
    /// `state`, returned with the code.
    pub state: Option<String>,
    /// `nonce`, put in the ID token.
    pub nonce: Option<String>,
    /// `code_challenge` (S256).
    pub code_challenge: Option<String>,
    /// `code_challenge_method`: only `S256`.
    pub code_challenge_method: Option<String>,
    /// `prompt`: `none` cannot be honoured (no provider session), `login` is the default.
    pub prompt: Option<String>,
    /// `login_hint`: an email, whose domain may name the tenant.
    pub login_hint: Option<String>,
    /// `tenant`: the tenant's domain, to skip the tenant step.
    pub tenant: Option<String>,
    /// `request` or `request_uri` was present (not supported).
    pub request_object: bool,
    /// `response_mode`, if given (only `query`).
    pub response_mode: Option<String>,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthorizeError {
    /// Missing or unknown `client_id`, or a disabled app: shown, not redirected.
    #[error("unknown client")]
    UnknownClient,
    /// Missing `redirect_uri`, or one that is not exactly registered: shown, not redirected.
    #[error("the redirect_uri is not registered for this client")]
    InvalidRedirectUri,
    /// An error to send back to the client at `location` (RFC 6749 4.1.2.1).
    #[error("authorization request refused: {error}")]
    Redirect {
        /// The OAuth error code (`invalid_request`, `invalid_scope`, ...).
        error: &'static str,
        /// The redirect URI with `error`, `error_description` and `state`.
        location: String,
    },
    /// The database failed.
    #[error("authorization storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl AuthorizeError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            AuthorizeError::UnknownClient => "unknown_client",
            AuthorizeError::InvalidRedirectUri => "invalid_redirect_uri",
            AuthorizeError::Redirect { error, .. } => error,
            AuthorizeError::Storage(_) => "storage",
        }
    }
}

/// A tenant chosen for a login flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantChoice {
    /// Tenant id.
    pub id: String,
    /// Its domain.
    pub domain: String,
    /// Its display name.
    pub name: String,
    /// Whether it has enabled SSO (the page offers "Continue with your company SSO").
    pub sso: bool,
}

/// A live login flow, as the login page sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The client (app) id.
    pub client_id: String,
    /// The app's display name.
    pub client_name: String,
    /// The redirect URI the code goes to.
    pub redirect_uri: String,
    /// The client's `state`.
    pub state: Option<String>,
    /// The tenant, once known.
    pub tenant: Option<TenantChoice>,
    csrf_hash: String,
    mfa_hash: Option<String>,
}

impl Flow {
    /// Whether `token` is this flow's CSRF token (compared by hash).
    pub fn csrf_ok(&self, token: &str) -> bool {
        !token.is_empty()
            && token.len() <= 128
            && super::ct_eq(
                crypto::token_hash(token).as_bytes(),
                self.csrf_hash.as_bytes(),
            )
    }

    /// Whether `mfa_token` is the pending second factor of this flow.
    pub fn mfa_ok(&self, mfa_token: &str) -> bool {
        match &self.mfa_hash {
            Some(h) => {
                !mfa_token.is_empty()
                    && mfa_token.len() <= 128
                    && super::ct_eq(crypto::token_hash(mfa_token).as_bytes(), h.as_bytes())
            }
            None => false,
        }
    }
}

#[cfg(test)]
impl Flow {
    /// A flow as the login page tests render it: no stored hashes, so no token matches.
    pub fn for_page_tests(
        client_name: &str,
        redirect_uri: &str,
        tenant: Option<TenantChoice>,
    ) -> Flow {
        Flow {
            client_id: "app".to_owned(),
            client_name: client_name.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            state: None,
            tenant,
            csrf_hash: String::new(),
            mfa_hash: None,
        }
    }
}

/// A flow just started: its id and CSRF token (both handed to the browser, stored hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedFlow {
    /// The flow id (in the page's forms and the SSO link).
    pub flow_id: String,
    /// The CSRF token of the page's forms (also set as a cookie).
    pub csrf: String,
    /// The flow.
    pub flow: Flow,
}

/// Why a login flow step failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlowError {
    /// Unknown, expired or used flow.
    #[error("the sign-in request has expired or was already used")]
    Invalid,
    /// No active tenant has this domain.
    #[error("no organization uses this domain")]
    UnknownTenant,
    /// The database failed.
    #[error("sign-in storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl FlowError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::Invalid => "login_flow_invalid",
            FlowError::UnknownTenant => "unknown_tenant",
            FlowError::Storage(_) => "storage",
        }
    }
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &'static str,
    description: &str,
) -> AuthorizeError {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    AuthorizeError::Redirect {
        error,
        location: with_query(redirect_uri, &params),
    }
}

/// Checks an authorization request and stores its login flow (FR-AUTH-001 OIDC).
pub async fn start_authorization<P: Platform>(
    p: &P,
    req: &AuthorizeRequest,
) -> Result<StartedFlow, AuthorizeError> {
    let (client, redirect_uri) = client_and_redirect(p, req).await?;
    // From here on errors go back to the client.
    let checked = check_request(req, redirect_uri)?;
    let tenant = match hinted_domain(req) {
        Some(d) => tenant_by_domain(p, &d).await?,
        None => None,
    };
    let tenant_id = tenant.as_ref().map(|t| t.id.as_str());
    let (flow_id, csrf) = store_flow(p, &client, redirect_uri, &checked, tenant_id).await?;
    Ok(StartedFlow {
        flow: Flow {
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state: checked.state.map(str::to_owned),
            tenant,
            csrf_hash: crypto::token_hash(&csrf),
            mfa_hash: None,
        },
        flow_id,
        csrf,
    })
}

/// An authorization request's values once checked.
struct CheckedRequest<'a> {
    /// The client's `state`, if it may be echoed.
    state: Option<&'a str>,
    /// The known scopes asked for, `openid` among them.
    scopes: Vec<&'static str>,
    /// The PKCE S256 challenge.
    challenge: &'a str,
    /// The client's `nonce`, if any.
    nonce: Option<&'a str>,
}

/// The active client and its registered redirect URI the request names; refusals are shown to
/// the user, never redirected.
async fn client_and_redirect<'r, P: Platform>(
    p: &P,
    req: &'r AuthorizeRequest,
) -> Result<(Client, &'r str), AuthorizeError> {
    let client: Client = match req.client_id.as_deref() {
        Some(id) => load_client(p, id).await?,
        None => None,
    }
    .filter(|c| c.active)
    .ok_or(AuthorizeError::UnknownClient)?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .filter(|u| client.redirect_uri_registered(u))
        .ok_or(AuthorizeError::InvalidRedirectUri)?;
    Ok((client, redirect_uri))
}

/// Checks the request's parameters (`state`, request objects, response type and mode, scopes,
/// PKCE, `nonce`, `prompt`); refusals go back to `redirect_uri`.
fn check_request<'a>(
    req: &'a AuthorizeRequest,
    redirect_uri: &str,
) -> Result<CheckedRequest<'a>, AuthorizeError> {
    // A state too long to echo is dropped.
    let state = req
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN);
    let refuse = |error, description: &str| redirect_error(redirect_uri, state, error, description);
    if req
        .state
        .as_deref()
        .is_some_and(|s| s.len() > MAX_STATE_LEN)
    {
        return Err(refuse("invalid_request", "state is too long"));
    }
    if req.request_object {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if req.response_type.as_deref() != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if req.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(refuse(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let scopes = known_scopes(req.scope.as_deref().unwrap_or(""));
    if !scopes.contains(&"openid") {
        return Err(refuse("invalid_scope", "the openid scope is required"));
    }
    let challenge = req.code_challenge.as_deref().unwrap_or("");
    if challenge.is_empty() {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    }
    if req.code_challenge_method.as_deref() != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if !pkce::is_s256_challenge(challenge) {
        return Err(refuse("invalid_request", "code_challenge is malformed"));
    }
    let nonce = req.nonce.as_deref().filter(|n| !n.is_empty());
    if nonce.is_some_and(|n| n.len() > MAX_STATE_LEN) {
        return Err(refuse("invalid_request", "nonce is too long"));
    }
    if req
        .prompt
        .as_deref()
        .is_some_and(|pr| pr.split(' ').any(|v| v == "none"))
    {
        // There is no provider-side session to reuse without showing the page.
        return Err(refuse("login_required", "the user must sign in"));
    }
    Ok(CheckedRequest {
        state,
        scopes,
        challenge,
        nonce,
    })
}

/// The tenant domain the request names: `tenant`, or the domain of a `login_hint` email.
fn hinted_domain(req: &AuthorizeRequest) -> Option<String> {
    match req.tenant.as_deref() {
        Some(t) => Some(t.to_owned()),
        None => req
            .login_hint
            .as_deref()
            .and_then(|h| Email::parse(h).ok())
            .and_then(|e| e.as_str().rsplit_once('@').map(|(_, d)| d.to_owned())),
    }
}

/// Stores the pending login flow (its id and CSRF token hashed) and returns both tokens.
async fn store_flow<P: Platform>(
    p: &P,
    client: &Client,
    redirect_uri: &str,
    checked: &CheckedRequest<'_>,
    tenant_id: Option<&str>,
) -> Result<(String, String), SqlError> {
    let now = p.clock().now_ms();
    let flow_id = crypto::random_token(p.random());
    let csrf = crypto::random_token(p.random());
    p.sql()
        .execute(
            Stmt::new(
                "INSERT INTO oidc_login_flows (id_hash, client_id, redirect_uri, scope, state, nonce,
                   code_challenge, tenant_id, csrf_hash, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .bind(crypto::token_hash(&flow_id))
            .bind(client.id.as_str())
            .bind(redirect_uri)
            .bind(checked.scopes.join(" "))
            .bind(checked.state)
            .bind(checked.nonce)
            .bind(checked.challenge)
            .bind(tenant_id)
            .bind(crypto::token_hash(&csrf))
            .bind(now)
            .bind(now + FLOW_TTL_MS),
        )
        .await?;
    Ok((flow_id, csrf))
}

/// The active tenant of domain `domain`, with whether it has SSO enabled.
pub async fn tenant_by_domain<P: Platform>(
    p: &P,
    domain: &str,
) -> Result<Option<TenantChoice>, SqlError> {
    let Ok(domain) = TenantDomain::parse(domain) else {
        return Ok(None);
    };
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT t.id, t.domain, t.name,
                        (SELECT count(*) FROM sso_configs s WHERE s.tenant_id = t.id
                           AND s.enabled = 1) AS sso
                 FROM tenants t WHERE t.domain = ?1 AND t.status = 'active'",
            )
            .bind(domain.as_str()),
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(TenantChoice {
                id: r.text("id")?,
                domain: r.text("domain")?,
                name: r.text("name")?,
                sso: r.i64("sso")? > 0,
            })
        })
        .transpose()
}

/// The live (unexpired, unused) login flow of id `flow_id`.
pub async fn load_flow<P: Platform>(p: &P, flow_id: &str) -> Result<Flow, FlowError> {
    if flow_id.is_empty() || flow_id.len() > 128 {
        return Err(FlowError::Invalid);
    }
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT f.client_id, a.name AS client_name, f.redirect_uri, f.state, f.csrf_hash,
                        f.mfa_hash, t.domain AS tenant_domain
                 FROM oidc_login_flows f JOIN apps a ON a.id = f.client_id
                   LEFT JOIN tenants t ON t.id = f.tenant_id
                 WHERE f.id_hash = ?1 AND f.consumed_at IS NULL AND f.expires_at > ?2",
            )
            .bind(crypto::token_hash(flow_id))
            .bind(p.clock().now_ms()),
        )
        .await?;
    let row = rows.first().ok_or(FlowError::Invalid)?;
    let tenant = match row.opt_text("tenant_domain")? {
        Some(d) => tenant_by_domain(p, &d).await?,
        None => None,
    };
    Ok(Flow {
        client_id: row.text("client_id")?,
        client_name: row.text("client_name")?,
        redirect_uri: row.text("redirect_uri")?,
        state: row.opt_text("state")?,
        tenant,
        csrf_hash: row.text("csrf_hash")?,
        mfa_hash: row.opt_text("mfa_hash")?,
    })
}

/// Sets the flow's tenant from the domain the user typed (step 1 of the page).
pub async fn choose_tenant<P: Platform>(
    p: &P,
    flow_id: &str,
    domain: &str,
) -> Result<TenantChoice, FlowError> {
    let tenant = tenant_by_domain(p, domain)
        .await?
        .ok_or(FlowError::UnknownTenant)?;
    let n = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE oidc_login_flows SET tenant_id = ?2, mfa_hash = NULL
                 WHERE id_hash = ?1 AND consumed_at IS NULL AND expires_at > ?3",
            )
            .bind(crypto::token_hash(flow_id))
            .bind(tenant.id.as_str())
            .bind(p.clock().now_ms()),
        )
        .await?;
    if n != 1 {
        return Err(FlowError::Invalid);
    }
    Ok(tenant)
}

/// Binds a pending second factor (the `mfa_token` of the password step) to the flow, so the
/// MFA form of this flow alone can complete it.
pub async fn record_mfa_step<P: Platform>(
    p: &P,
    flow_id: &str,
    mfa_token: &str,
) -> Result<(), FlowError> {
    let n = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE oidc_login_flows SET mfa_hash = ?2
                 WHERE id_hash = ?1 AND consumed_at IS NULL AND expires_at > ?3",
            )
            .bind(crypto::token_hash(flow_id))
            .bind(crypto::token_hash(mfa_token))
            .bind(p.clock().now_ms()),
        )
        .await?;
    if n != 1 {
        return Err(FlowError::Invalid);
    }
    Ok(())
}

/// Brings a sign-in that left the page back to it for a step-up: the tenant's IdP answered
/// (FR-AUTH-003) and the risk check holds the sign-in for a second factor or a mailed code
/// (NFR-SEC-006). Binds the pending sign-in `mfa_token` to the flow, as [`record_mfa_step`]
/// does, and gives the flow a fresh CSRF token: the page's own token never reaches the IdP's
/// redirect, and its cookie may not either (over plain http its path is the page's). Returns
/// the flow and the new token.
pub async fn resume_for_step_up<P: Platform>(
    p: &P,
    flow_id: &str,
    mfa_token: &str,
) -> Result<(Flow, String), FlowError> {
    if flow_id.is_empty() || flow_id.len() > 128 {
        return Err(FlowError::Invalid);
    }
    let csrf = crypto::random_token(p.random());
    let n = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE oidc_login_flows SET csrf_hash = ?2, mfa_hash = ?3
                 WHERE id_hash = ?1 AND consumed_at IS NULL AND expires_at > ?4",
            )
            .bind(crypto::token_hash(flow_id))
            .bind(crypto::token_hash(&csrf))
            .bind(crypto::token_hash(mfa_token))
            .bind(p.clock().now_ms()),
        )
        .await?;
    if n != 1 {
        return Err(FlowError::Invalid);
    }
    Ok((load_flow(p, flow_id).await?, csrf))
}

/// Records a sign-in that completed on the page but waits for the user to continue (an MFA
/// enrollment shows the recovery codes first): the next [`take_authenticated`] finishes it.
pub async fn record_authenticated<P: Platform>(
    p: &P,
    flow_id: &str,
    user: &SessionUser,
    methods: &[&str],
    attempt: Option<&str>,
) -> Result<(), FlowError> {
    let n = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE oidc_login_flows SET user_id = ?2, auth_methods = ?3, mfa_hash = NULL,
                   attempt_id = ?6
                 WHERE id_hash = ?1 AND consumed_at IS NULL AND expires_at > ?4
                   AND (tenant_id IS NULL OR tenant_id = ?5)",
            )
            .bind(crypto::token_hash(flow_id))
            .bind(user.user_id.as_str())
            .bind(serde_json::to_string(methods).unwrap_or_else(|_| "[]".into()))
            .bind(p.clock().now_ms())
            .bind(user.tenant_id.as_str())
            .bind(attempt),
        )
        .await?;
    if n != 1 {
        return Err(FlowError::Invalid);
    }
    Ok(())
}

/// The sign-in recorded by [`record_authenticated`] on a live flow, if its user may still sign
/// in: the user, the methods used and the sign-in's risk decision.
pub async fn take_authenticated<P: Platform>(
    p: &P,
    flow_id: &str,
) -> Result<(SessionUser, Vec<String>, Option<String>), FlowError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT u.id, u.tenant_id, u.role, f.auth_methods, f.attempt_id
                 FROM oidc_login_flows f JOIN users u ON u.id = f.user_id
                   JOIN tenants t ON t.id = u.tenant_id
                 WHERE f.id_hash = ?1 AND f.consumed_at IS NULL AND f.expires_at > ?2
                   AND u.status = 'active' AND t.status = 'active'",
            )
            .bind(crypto::token_hash(flow_id))
            .bind(p.clock().now_ms()),
        )
        .await?;
    let row = rows.first().ok_or(FlowError::Invalid)?;
    let methods: Vec<String> =
        serde_json::from_str(&row.opt_text("auth_methods")?.unwrap_or_default())
            .unwrap_or_default();
    Ok((
        SessionUser {
            user_id: row.text("id")?,
            tenant_id: row.text("tenant_id")?,
            role: row.text("role")?,
        },
        methods,
        row.opt_text("attempt_id")?,
    ))
}
