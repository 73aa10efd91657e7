//! The OpenID Connect provider for managed apps (FR-AUTH-001 OIDC): a managed app is the
//! client (`client_id` is its app id), its users sign in on the universal login page, and any
//! standard OIDC client library completes discovery, authorization code + PKCE, token exchange,
//! userinfo, refresh and end-session.
//!
//! The pieces: the pending authorization request (a login flow, [`flow`]), authorization codes
//! and the token endpoint ([`token`]), ID tokens ([`id_token`]), client authentication and
//! secrets ([`client`]), PKCE ([`pkce`]). Sign-in itself goes through the same path as
//! `/v1/auth/login` ([`crate::signin::authenticate`]), so rate limits and audit apply.

pub mod client;
pub mod flow;
pub mod id_token;
pub mod pkce;
pub mod token;

#[cfg(test)]
mod tests;

pub use client::{load_client, rotate_client_secret, Client, ClientSecretError};
pub use flow::{
    choose_tenant, load_flow, record_authenticated, record_mfa_step, resume_for_step_up,
    start_authorization, take_authenticated, AuthorizeError, AuthorizeRequest, Flow, FlowError,
    StartedFlow, TenantChoice,
};
pub use id_token::{verify_id_token, IdTokenClaims};
pub use token::{
    end_session, exchange, userinfo, EndSessionError, TokenError, TokenRequest, UserInfo,
};

use crate::audit::{self, Actor, AuditRecord};
use crate::crypto;
use crate::ports::{Clock, Platform, Sql, SqlError, Stmt};
use crate::sessions::SessionUser;

/// Lifetime of an authorization code: 60 seconds.
pub const CODE_TTL_MS: i64 = 60 * 1000;
/// Lifetime of a login flow (the page may take a while: password, second factor, SSO).
pub const FLOW_TTL_MS: i64 = 15 * 60 * 1000;
/// The scopes the provider knows; others in a request are ignored (OIDC Core 3.1.2.1).
pub const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
/// The claims an ID token or userinfo answer may carry.
pub const CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "tid",
    "amr",
    "azp",
    "email",
    "email_verified",
    "name",
];

/// Why a login flow could not be completed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompleteLoginError {
    /// Unknown, expired or already used login flow: start again from the app.
    #[error("the sign-in request has expired or was already used")]
    FlowInvalid,
    /// The user belongs to another tenant than the one the flow was started for.
    #[error("the account belongs to another organization")]
    TenantMismatch,
    /// The user's tenant does not subscribe to this app, or the app is disabled.
    #[error("this application is not enabled for the organization")]
    AppNotEnabled,
    /// The database failed.
    #[error("sign-in storage failed: {0}")]
    Storage(#[from] SqlError),
}

impl CompleteLoginError {
    /// A stable, searchable name.
    pub fn code(&self) -> &'static str {
        match self {
            CompleteLoginError::FlowInvalid => "login_flow_invalid",
            CompleteLoginError::TenantMismatch => "tenant_mismatch",
            CompleteLoginError::AppNotEnabled => "app_not_enabled",
            CompleteLoginError::Storage(_) => "storage",
        }
    }
}

/// Ends a login flow with a signed-in `user` (password, second factor, or tenant SSO): issues
/// a single-use authorization code bound to the flow's client, redirect URI, PKCE challenge and
/// nonce, and returns the URL to send the browser to (the client's redirect URI with `code` and
/// `state`). `methods` are the authentication methods used (`amr`); `attempt` is the sign-in's
/// risk decision, which the code carries to the session it starts, and `decided` the
/// statements recording it when that is still to be done (first in the code's batch).
/// Audited `oidc.authorize`.
pub async fn complete_login_flow<P: Platform>(
    p: &P,
    flow_id: &str,
    user: &SessionUser,
    methods: &[&str],
    attempt: Option<&str>,
    decided: Vec<Stmt>,
    request_id: &str,
) -> Result<String, CompleteLoginError> {
    if flow_id.is_empty() || flow_id.len() > 128 {
        return Err(CompleteLoginError::FlowInvalid);
    }
    let now = p.clock().now_ms();
    let flow_hash = crypto::token_hash(flow_id);
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT f.client_id, f.redirect_uri, f.state, f.tenant_id, a.status AS app_status,
                        ta.enabled AS app_enabled
                 FROM oidc_login_flows f JOIN apps a ON a.id = f.client_id
                   LEFT JOIN tenant_apps ta ON ta.app_id = f.client_id AND ta.tenant_id = ?3
                 WHERE f.id_hash = ?1 AND f.consumed_at IS NULL AND f.expires_at > ?2",
            )
            .bind(flow_hash.as_str())
            .bind(now)
            .bind(user.tenant_id.as_str()),
        )
        .await?;
    let row = rows.first().ok_or(CompleteLoginError::FlowInvalid)?;
    if let Some(t) = row.opt_text("tenant_id")? {
        if t != user.tenant_id {
            return Err(CompleteLoginError::TenantMismatch);
        }
    }
    let enabled = row.opt_i64("app_enabled")? == Some(1)
        || row.text("client_id")? == client::CONSOLE_CLIENT_ID;
    if row.text("app_status")? != "active" || !enabled {
        return Err(CompleteLoginError::AppNotEnabled);
    }
    let client_id = row.text("client_id")?;
    let redirect_uri = row.text("redirect_uri")?;
    let state = row.opt_text("state")?;
    let code = crypto::random_token(p.random());
    let record = AuditRecord::success(
        "oidc.authorize",
        &Actor::user(&user.user_id),
        Some(&user.tenant_id),
        format!("app:{client_id}"),
        Some(request_id),
    )
    .with("methods", methods.to_vec());
    let code_row = decided.len();
    let mut stmts = decided;
    stmts.extend([
        Stmt::new(
            "INSERT INTO oidc_codes (code_hash, client_id, redirect_uri, scope, nonce,
                   code_challenge, tenant_id, user_id, auth_methods, auth_time, created_at,
                   expires_at, attempt_id)
                 SELECT ?1, client_id, redirect_uri, scope, nonce, code_challenge, ?2, ?3, ?4, ?5,
                   ?5, ?6, ?8
                 FROM oidc_login_flows WHERE id_hash = ?7 AND consumed_at IS NULL",
        )
        .bind(crypto::token_hash(&code))
        .bind(user.tenant_id.as_str())
        .bind(user.user_id.as_str())
        .bind(serde_json::to_string(methods).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(now + CODE_TTL_MS)
        .bind(flow_hash.as_str())
        .bind(attempt),
        Stmt::new(
            "UPDATE oidc_login_flows SET consumed_at = ?2, tenant_id = ?3
                 WHERE id_hash = ?1 AND consumed_at IS NULL",
        )
        .bind(flow_hash.as_str())
        .bind(now)
        .bind(user.tenant_id.as_str()),
        audit::outbox_insert(&record, &audit::new_event_id(p), now),
    ]);
    let counts = p.sql().batch(stmts).await?;
    if counts.get(code_row).copied() != Some(1) {
        // A concurrent completion consumed the flow first.
        return Err(CompleteLoginError::FlowInvalid);
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &state {
        params.push(("state", s.as_str()));
    }
    Ok(with_query(&redirect_uri, &params))
}

/// How long a used or expired code is kept, so that a late replay still revokes its session.
pub const CODE_KEEP_MS: i64 = 60 * 60 * 1000;

/// Scheduled cleanup: deletes expired login flows, and codes an hour past their expiry.
/// Returns how many rows went.
pub async fn expire<P: Platform>(p: &P, now: i64) -> Result<u64, SqlError> {
    let counts = p
        .sql()
        .batch(vec![
            Stmt::new("DELETE FROM oidc_login_flows WHERE expires_at < ?1").bind(now),
            Stmt::new("DELETE FROM oidc_codes WHERE expires_at < ?1").bind(now - CODE_KEEP_MS),
        ])
        .await?;
    Ok(counts.iter().sum())
}

/// `uri` with `params` appended to its query (RFC 6749 4.1.2: keep the registered query).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let q = q.finish();
    // Registered redirect URIs carry no fragment (RFC 6749 3.1.2); drop one defensively.
    let base = uri.split('#').next().unwrap_or(uri);
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{q}")
}

/// The scopes of a space-separated list that the provider knows, deduplicated, in order.
pub fn known_scopes(raw: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if let Some(known) = SCOPES.iter().find(|k| **k == s) {
            if !out.contains(known) {
                out.push(known);
            }
        }
    }
    out
}

/// Compares two byte strings without leaking where they first differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
