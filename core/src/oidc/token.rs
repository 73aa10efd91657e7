//! The token endpoint (authorization code and refresh grants), userinfo and end-session.
//!
//! A code is single use: the exchange consumes it before anything else, and a code presented
//! again revokes the session its first exchange started (RFC 6749 4.1.2). Sessions started here
//! are ordinary sessions (refresh rotation with reuse detection, revocation markers) whose
//! `app_id` is the client; their access tokens name the client as audience, so the Edgeplane
//! API refuses them and `/oauth/userinfo` accepts them.

use serde::Serialize;
use utoipa::ToSchema;

use super::client::{authenticate_client, ClientAuthError};
use super::id_token::{self, IdTokenClaims};
use super::{pkce, with_query};
use crate::crypto;
use crate::kernel::ErrorKind;
use crate::ports::{Clock, Platform, Row, Sql, SqlError, Stmt};
use crate::risk::SignInContext;
use crate::sessions::{self, Grant, RefreshError, SessionUser, TokenPair};
use crate::signin::{self, check_token_with, AccessError};
use crate::tokens::{keys, SigningKeyError, ACCESS_AUDIENCE, ACCESS_TOKEN_TTL_SECS};

/// A token request, as received (form body and client credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// `grant_type`: `authorization_code` or `refresh_token`.
    pub grant_type: String,
    /// The client id (form `client_id` or HTTP Basic user).
    pub client_id: String,
    /// The client secret (HTTP Basic password or form `client_secret`), if sent.
    pub client_secret: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `redirect_uri`: must equal the authorization request's.
    pub redirect_uri: Option<String>,
    /// `code_verifier` (PKCE).
    pub code_verifier: Option<String>,
    /// `refresh_token`.
    pub refresh_token: Option<String>,
    /// Where the request comes from, for the refresh grant's risk check (NFR-SEC-006).
    pub origin: SignInContext,
}

/// The token response (RFC 6749 5.1, OIDC Core 3.1.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = OidcTokenResponse)]
pub struct TokenResponse {
    /// EdDSA access token whose audience is the client.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// EdDSA ID token.
    pub id_token: String,
    /// With `offline_access`: rotate it through the `refresh_token` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub refresh_token: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// Why a token request failed (RFC 6749 5.2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// Missing or malformed parameter.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed.
    #[error("client authentication failed")]
    InvalidClient,
    /// The code or refresh token is invalid, expired, used, for another client or redirect
    /// URI, or the PKCE verifier does not match.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// A grant type other than `authorization_code` and `refresh_token`.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// No signing key is usable, or the pepper is missing.
    #[error("token issuance unavailable: {0}")]
    Unavailable(String),
    /// The database failed.
    #[error("token storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl TokenError {
    /// A stable, searchable name: the RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::Unavailable(_) => "temporarily_unavailable",
            TokenError::Storage(_) => "server_error",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenError::InvalidRequest(_) => ErrorKind::Invalid,
            TokenError::InvalidClient => ErrorKind::Unauthenticated,
            TokenError::InvalidGrant(_) => ErrorKind::Invalid,
            TokenError::UnsupportedGrantType => ErrorKind::Invalid,
            TokenError::Unavailable(_) => ErrorKind::Unavailable,
            TokenError::Storage(_) => ErrorKind::Internal,
        }
    }
}

impl From<SigningKeyError> for TokenError {
    fn from(e: SigningKeyError) -> Self {
        TokenError::Unavailable(e.to_string())
    }
}

impl From<sessions::IssueError> for TokenError {
    fn from(e: sessions::IssueError) -> Self {
        match e {
            sessions::IssueError::Signing(e) => e.into(),
            sessions::IssueError::Storage(e) => TokenError::Storage(e),
            sessions::IssueError::NotActive => {
                TokenError::InvalidGrant("the account is not active")
            }
        }
    }
}

impl From<ClientAuthError> for TokenError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::Failed => TokenError::InvalidClient,
            ClientAuthError::Pepper(p) => TokenError::Unavailable(p.to_string()),
            ClientAuthError::Storage(e) => TokenError::Storage(e),
        }
    }
}

/// Serves a token request for the provider of `issuer` (FR-AUTH-001 OIDC).
pub async fn exchange<P: Platform>(
    p: &P,
    issuer: &str,
    req: &TokenRequest,
    request_id: &str,
) -> Result<TokenResponse, TokenError> {
    match req.grant_type.as_str() {
        "authorization_code" => {
            authenticate_client(p, &req.client_id, req.client_secret.as_deref()).await?;
            code_grant(p, issuer, req, request_id).await
        }
        "refresh_token" => {
            authenticate_client(p, &req.client_id, req.client_secret.as_deref()).await?;
            refresh_grant(p, issuer, req, request_id).await
        }
        "" => Err(TokenError::InvalidRequest("grant_type is required")),
        _ => Err(TokenError::UnsupportedGrantType),
    }
}

/// The user of a grant, if still allowed to sign in (active user in an active tenant).
async fn active_user<P: Platform>(
    p: &P,
    user_id: &str,
) -> Result<Option<(SessionUser, Option<String>, Option<String>)>, SqlError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT u.id, u.tenant_id, u.role, u.email, u.display_name
                 FROM users u JOIN tenants t ON t.id = u.tenant_id
                 WHERE u.id = ?1 AND u.status = 'active' AND t.status = 'active'",
            )
            .bind(user_id),
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok((
                SessionUser {
                    user_id: r.text("id")?,
                    tenant_id: r.text("tenant_id")?,
                    role: r.text("role")?,
                },
                r.opt_text("email")?,
                r.opt_text("display_name")?,
            ))
        })
        .transpose()
}

/// What an ID token needs beyond the user.
struct IdContext<'a> {
    issuer: &'a str,
    client_id: &'a str,
    scope: &'a str,
    sid: &'a str,
    auth_time_ms: i64,
    amr: Vec<String>,
    nonce: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

async fn sign_id_token<P: Platform>(
    p: &P,
    user: &SessionUser,
    c: IdContext<'_>,
) -> Result<String, SigningKeyError> {
    let now = p.clock().now_ms().div_euclid(1000);
    let has = |s: &str| c.scope.split(' ').any(|x| x == s);
    let claims = IdTokenClaims {
        iss: c.issuer.to_owned(),
        sub: user.user_id.clone(),
        aud: c.client_id.to_owned(),
        azp: c.client_id.to_owned(),
        exp: now + ACCESS_TOKEN_TTL_SECS,
        iat: now,
        auth_time: c.auth_time_ms.div_euclid(1000),
        nonce: c.nonce,
        sid: c.sid.to_owned(),
        tid: user.tenant_id.clone(),
        amr: c.amr,
        email_verified: (has("email") && c.email.is_some()).then_some(true),
        email: c.email.filter(|_| has("email")),
        name: c.name.filter(|_| has("profile")),
    };
    let key = keys::active_key(p).await?;
    Ok(id_token::sign(&key, &claims))
}

/// The authorization code grant: the code consumed and checked, then a session for its user
/// with the client's grant, and an ID token.
async fn code_grant<P: Platform>(
    p: &P,
    issuer: &str,
    req: &TokenRequest,
    request_id: &str,
) -> Result<TokenResponse, TokenError> {
    let (code, redirect_uri, verifier) = code_params(req)?;
    let now = p.clock().now_ms();
    let hash = crypto::token_hash(code);
    let row = consume_code(p, &hash, now, request_id).await?;
    check_code(&row, req, redirect_uri, verifier, now)?;
    let client_id = row.text("client_id")?;
    let (user, email, name) = active_user(p, &row.text("user_id")?)
        .await?
        .ok_or(TokenError::InvalidGrant("the user may no longer sign in"))?;
    let scope = row.text("scope")?;
    let amr: Vec<String> = serde_json::from_str(&row.text("auth_methods")?).unwrap_or_default();
    let auth_time = row.i64("auth_time")?;
    let attempt = row.opt_text("attempt_id")?;
    let grant = CodeGrant {
        client_id: &client_id,
        scope: &scope,
        amr: &amr,
        auth_time,
        code_hash: &hash,
        attempt: attempt.as_deref(),
    };
    let pair = start_code_session(p, &user, &grant, now, request_id).await?;
    let id_token = sign_id_token(
        p,
        &user,
        IdContext {
            issuer,
            client_id: &client_id,
            scope: &scope,
            sid: &pair.session_id,
            auth_time_ms: auth_time,
            amr: amr.clone(),
            nonce: row.opt_text("nonce")?,
            email,
            name,
        },
    )
    .await?;
    Ok(response(pair, id_token, &scope))
}

/// The code, `redirect_uri` and `code_verifier` of a code grant, each required.
fn code_params(req: &TokenRequest) -> Result<(&str, &str, &str), TokenError> {
    let code = req
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .ok_or(TokenError::InvalidRequest("code is required"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or(TokenError::InvalidRequest("redirect_uri is required"))?;
    let verifier = req
        .code_verifier
        .as_deref()
        .ok_or(TokenError::InvalidRequest(
            "code_verifier is required (PKCE)",
        ))?;
    Ok((code, redirect_uri, verifier))
}

/// Consumes the code of hash `hash` and returns its row. Consumed first, whatever the outcome:
/// a code gets one exchange attempt, and one presented again revokes the session its first
/// exchange started (RFC 6749 4.1.2).
async fn consume_code<P: Platform>(
    p: &P,
    hash: &str,
    now: i64,
    request_id: &str,
) -> Result<Row, TokenError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT client_id, redirect_uri, scope, nonce, code_challenge, user_id,
                        auth_methods, auth_time, session_id, expires_at, consumed_at, attempt_id
                 FROM oidc_codes WHERE code_hash = ?1",
            )
            .bind(hash),
        )
        .await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or(TokenError::InvalidGrant("unknown code"))?;
    if row.opt_i64("consumed_at")?.is_some() {
        if let Some(sid) = row.opt_text("session_id")? {
            if let Some((user, _, _)) = active_user(p, &row.text("user_id")?).await? {
                let _ = sessions::revoke_family(p, &sid, &user, "code_reuse", request_id).await;
            }
        }
        return Err(TokenError::InvalidGrant("code already used"));
    }
    let consumed = p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE oidc_codes SET consumed_at = ?2 WHERE code_hash = ?1 AND consumed_at IS NULL",
            )
            .bind(hash)
            .bind(now),
        )
        .await?;
    if consumed != 1 {
        return Err(TokenError::InvalidGrant("code already used"));
    }
    Ok(row)
}

/// Checks a consumed code against the request: unexpired, issued to this client for this
/// `redirect_uri`, and the PKCE verifier matching its challenge.
fn check_code(
    row: &Row,
    req: &TokenRequest,
    redirect_uri: &str,
    verifier: &str,
    now: i64,
) -> Result<(), TokenError> {
    if row.i64("expires_at")? <= now {
        return Err(TokenError::InvalidGrant("code expired"));
    }
    if row.text("client_id")? != req.client_id {
        return Err(TokenError::InvalidGrant("code issued to another client"));
    }
    if row.text("redirect_uri")? != redirect_uri {
        return Err(TokenError::InvalidGrant("redirect_uri differs"));
    }
    if !pkce::verify(verifier, &row.text("code_challenge")?) {
        return Err(TokenError::InvalidGrant("code_verifier does not match"));
    }
    Ok(())
}

/// What a code granted, as its session is started with.
struct CodeGrant<'a> {
    /// The client the code was issued to.
    client_id: &'a str,
    /// The scopes granted.
    scope: &'a str,
    /// How the user authenticated.
    amr: &'a [String],
    /// When the user authenticated (unix ms).
    auth_time: i64,
    /// The code's hash, to record the session on it.
    code_hash: &'a str,
    /// The sign-in attempt that issued the code (its risk decision).
    attempt: Option<&'a str>,
}

/// Starts the session of a code grant, recording the client's grant and the session on the
/// code in the same batch.
async fn start_code_session<P: Platform>(
    p: &P,
    user: &SessionUser,
    g: &CodeGrant<'_>,
    now: i64,
    request_id: &str,
) -> Result<TokenPair, TokenError> {
    let methods: Vec<&str> = g.amr.iter().map(String::as_str).collect();
    let grant = Grant {
        app_id: Some(g.client_id),
        aud: access_audience(g.client_id),
        scope: g.scope,
        attempt: g.attempt,
    };
    let pair = sessions::start_with(
        p,
        user,
        &methods,
        &grant,
        // The risk decision was recorded when the code was issued.
        Vec::new(),
        |sid| {
            vec![
                Stmt::new(
                    "INSERT INTO oidc_grants (session_id, client_id, tenant_id, scope, auth_time,
                       created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .bind(sid)
                .bind(g.client_id)
                .bind(user.tenant_id.as_str())
                .bind(g.scope)
                .bind(g.auth_time)
                .bind(now),
                Stmt::new("UPDATE oidc_codes SET session_id = ?2 WHERE code_hash = ?1")
                    .bind(g.code_hash)
                    .bind(sid),
            ]
        },
        request_id,
    )
    .await?;
    Ok(pair)
}

fn response(pair: TokenPair, id_token: String, scope: &str) -> TokenResponse {
    let offline = scope.split(' ').any(|s| s == "offline_access");
    TokenResponse {
        access_token: pair.access_token,
        token_type: "Bearer",
        expires_in: pair.expires_in,
        id_token,
        refresh_token: offline.then_some(pair.refresh_token),
        scope: scope.to_owned(),
    }
}

async fn refresh_grant<P: Platform>(
    p: &P,
    issuer: &str,
    req: &TokenRequest,
    request_id: &str,
) -> Result<TokenResponse, TokenError> {
    let token = req
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or(TokenError::InvalidRequest("refresh_token is required"))?;
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT s.family_id, s.auth_methods, g.client_id, g.scope, g.auth_time
                 FROM sessions s JOIN oidc_grants g ON g.session_id = s.family_id
                 WHERE s.refresh_token_hash = ?1",
            )
            .bind(crypto::token_hash(token)),
        )
        .await?;
    let row = rows
        .first()
        .ok_or(TokenError::InvalidGrant("unknown refresh token"))?;
    let client_id = row.text("client_id")?;
    let scope = row.text("scope")?;
    if client_id != req.client_id || !scope.split(' ').any(|s| s == "offline_access") {
        return Err(TokenError::InvalidGrant("refresh token of another client"));
    }
    let grant = Grant {
        app_id: Some(&client_id),
        aud: access_audience(&client_id),
        scope: &scope,
        attempt: None,
    };
    // NFR-SEC-006: the same check as /v1/auth/refresh; a session the tenant's policy revokes
    // for a use from a new country is an invalid grant (the user signs in again).
    let pair = signin::refresh_grant_from(p, token, &grant, &req.origin, request_id)
        .await
        .map_err(|e| match e {
            RefreshError::Invalid => TokenError::InvalidGrant("refresh token not valid"),
            RefreshError::Reused => TokenError::InvalidGrant("refresh token reused"),
            RefreshError::Signing(s) => s.into(),
            RefreshError::Storage(s) => TokenError::Storage(s),
            RefreshError::EdgePending(s) => TokenError::Unavailable(s),
        })?;
    let claims =
        crate::tokens::access::verify_with(p, &pair.access_token, p.clock().now_ms(), |aud| {
            aud == access_audience(&client_id)
        })
        .await
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let (user, email, name) = active_user(p, &claims.sub)
        .await?
        .ok_or(TokenError::InvalidGrant("the user may no longer sign in"))?;
    let amr: Vec<String> = serde_json::from_str(&row.text("auth_methods")?).unwrap_or_default();
    let id_token = sign_id_token(
        p,
        &user,
        IdContext {
            issuer,
            client_id: &client_id,
            scope: &scope,
            sid: &pair.session_id,
            auth_time_ms: row.i64("auth_time")?,
            amr,
            nonce: None,
            email,
            name,
        },
    )
    .await?;
    Ok(response(pair, id_token, &scope))
}

/// A userinfo answer and whom it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    /// The claims answered (OIDC Core 5.3.2).
    pub claims: UserinfoClaims,
    /// The verified token's audience: the client whose origins may read the answer.
    pub client_id: String,
}

/// The claims of a userinfo answer (OIDC Core 5.3.2): those the token's scopes grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = OidcUserinfo)]
pub struct UserinfoClaims {
    /// User id.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Scope `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub email: Option<String>,
    /// Scope `email`: always true when `email` is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool, nullable = false)]
    pub email_verified: Option<bool>,
    /// Scope `profile`, when the user has a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub name: Option<String>,
}

/// The audience of the access tokens issued to `client_id`: the client itself, so that an app's
/// token is no Edgeplane API token; but the tenant console, a first-party client, acts through
/// the API, so its tokens are API tokens (the audience of `/v1/auth/login`'s).
fn access_audience(client_id: &str) -> &str {
    if client_id == super::client::CONSOLE_CLIENT_ID {
        ACCESS_AUDIENCE
    } else {
        client_id
    }
}

/// The userinfo answer (OIDC Core 5.3) for a bearer access token issued by this provider:
/// the token is checked like introspection (signature, expiry, session, user and tenant
/// markers) and must carry the `openid` scope.
pub async fn userinfo<P: Platform>(p: &P, token: &str) -> Result<UserInfo, AccessError> {
    let claims = check_token_with(p, token, |aud| aud != ACCESS_AUDIENCE).await?;
    if !claims.scope.split(' ').any(|s| s == "openid") {
        return Err(AccessError::Invalid("token_scope"));
    }
    let (user, email, name) = active_user(p, &claims.sub)
        .await?
        .ok_or(AccessError::Revoked)?;
    let has = |s: &str| claims.scope.split(' ').any(|x| x == s);
    let email = email.filter(|_| has("email"));
    let out = UserinfoClaims {
        sub: user.user_id,
        tid: user.tenant_id,
        email_verified: email.as_ref().map(|_| true),
        email,
        name: name.filter(|_| has("profile")),
    };
    Ok(UserInfo {
        claims: out,
        client_id: claims.aud,
    })
}

/// Why an end-session request was refused (shown to the user, never redirected).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndSessionError {
    /// The `id_token_hint` is not an ID token of this provider.
    #[error("the id_token_hint is not valid")]
    InvalidHint,
    /// `post_logout_redirect_uri` is not registered for the token's client, or was sent
    /// without an `id_token_hint` naming the client.
    #[error("the post_logout_redirect_uri is not registered for this client")]
    InvalidRedirect,
    /// The database or the key set failed.
    #[error("end-session storage failed: {0}")]
    Storage(String),
}

impl EndSessionError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            EndSessionError::InvalidHint => "id_token_hint_invalid",
            EndSessionError::InvalidRedirect => "post_logout_redirect_uri_invalid",
            EndSessionError::Storage(_) => "storage",
        }
    }
}

/// RP-initiated logout: revokes the session named by `id_token_hint` and returns where to
/// send the browser (the registered `post_logout_redirect_uri` with `state`), if anywhere.
pub async fn end_session<P: Platform>(
    p: &P,
    issuer: &str,
    id_token_hint: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    client_id: Option<&str>,
    state: Option<&str>,
    request_id: &str,
) -> Result<Option<String>, EndSessionError> {
    let claims = match id_token_hint.filter(|h| !h.is_empty()) {
        Some(hint) => Some(
            id_token::verify_id_token(p, issuer, hint, p.clock().now_ms(), false)
                .await
                .map_err(|e| match e {
                    crate::tokens::VerifyTokenError::Storage(s) => {
                        EndSessionError::Storage(s.to_string())
                    }
                    crate::tokens::VerifyTokenError::Unavailable(s) => EndSessionError::Storage(s),
                    _ => EndSessionError::InvalidHint,
                })?,
        ),
        None => None,
    };
    if let (Some(c), Some(id)) = (&claims, client_id) {
        if c.aud != id {
            return Err(EndSessionError::InvalidHint);
        }
    }
    let location = match post_logout_redirect_uri.filter(|u| !u.is_empty()) {
        Some(uri) => {
            let client = match claims.as_ref().map(|c| c.aud.as_str()).or(client_id) {
                Some(id) => super::load_client(p, id)
                    .await
                    .map_err(|e| EndSessionError::Storage(e.to_string()))?,
                None => None,
            };
            if !client.is_some_and(|c| c.redirect_uri_registered(uri)) || claims.is_none() {
                return Err(EndSessionError::InvalidRedirect);
            }
            let mut params = Vec::new();
            if let Some(s) = state.filter(|s| !s.is_empty() && s.len() <= 512) {
                params.push(("state", s));
            }
            Some(if params.is_empty() {
                uri.to_owned()
            } else {
                with_query(uri, &params)
            })
        }
        None => None,
    };
    if let Some(c) = &claims {
        let user = SessionUser {
            user_id: c.sub.clone(),
            tenant_id: c.tid.clone(),
            role: String::new(),
        };
        sessions::revoke_family(p, &c.sid, &user, "logout", request_id)
            .await
            .map_err(|e| EndSessionError::Storage(e.to_string()))?;
    }
    Ok(location)
}
