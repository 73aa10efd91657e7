//! Tenant owners and admins sign in to the console through Edgeplane's own universal login: the
//! console is a first-party public client (`edgeplane-console`) of Edgeplane's OpenID provider,
//! so the password, second factor, passkey and SSO steps are the login page's, unchanged.
//!
//! The code flow with PKCE (S256), `state` (also in a cookie of this browser) and `nonce`, the
//! code exchanged in process at `/oauth/token`; the session keeps the access and refresh tokens
//! sealed under the master key and acts with them ([`super::api`]), refreshing the access
//! token when it nears expiry. Revoking the user's sessions, disabling the user or suspending
//! the tenant therefore ends the console session too, at its next request.

use ::http::{header, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::session::{self, Kind, NewSession, Session};
use super::{page, signin, Answer, Web, PREFIX, SESSION_COOKIE, SIGNIN_COOKIE};
use crate::crypto::{b64url_encode, random_token, token_hash};
use crate::oidc::client::{CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID};
use crate::ports::{Clock, Platform, Sql, Stmt};
use crate::signin::authenticate_access_token;
use crate::tokens::master_key::MasterKey;

/// How long a started sign-in may be completed.
const SIGNIN_TTL_MS: i64 = 10 * 60 * 1000;
/// An access token this close to its expiry is refreshed before use (seconds).
const REFRESH_MARGIN_SECS: i64 = 60;

#[derive(Serialize, Deserialize)]
struct SignInData {
    nonce_hash: String,
    verifier_enc: String,
    return_to: Option<String>,
}

/// The tokens a tenant session acts with, open.
#[derive(Debug, Clone)]
pub(super) struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub exp: i64,
}

fn sealing_context(state_hash: &str) -> String {
    format!("console-tenant-signin:{state_hash}")
}

fn token_context(session_hash: &str) -> String {
    format!("console-session:{session_hash}")
}

/// `GET /console/signin/tenant?organization=`: to the universal login.
pub(super) async fn start<P: Platform>(web: &Web<'_, P>, set_cookies: &mut Vec<String>) -> Answer {
    let master = match MasterKey::load(web.p.secrets()) {
        Ok(m) => m,
        Err(e) => {
            super::log_error(web, "console sign-in: master key", &e.to_string());
            return page::unavailable(web);
        }
    };
    let state = random_token(web.p.random());
    let nonce = random_token(web.p.random());
    let verifier = random_token(web.p.random());
    let state_hash = token_hash(&state);
    let data = SignInData {
        nonce_hash: token_hash(&nonce),
        verifier_enc: master.seal(
            web.p.random(),
            &sealing_context(&state_hash),
            verifier.as_bytes(),
        ),
        return_to: signin::safe_next(web.q("next")),
    };
    let now = web.p.clock().now_ms();
    let stored = web
        .p
        .sql()
        .execute(
            Stmt::new(
                "INSERT INTO console_signins (state_hash, kind, data, created_at, expires_at)
                 VALUES (?1, 'tenant', ?2, ?3, ?4)",
            )
            .bind(state_hash)
            .bind(json!(data).to_string())
            .bind(now)
            .bind(now + SIGNIN_TTL_MS),
        )
        .await;
    if let Err(e) = stored {
        super::log_error(web, "console sign-in could not be stored", &e.to_string());
        return page::unavailable(web);
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri(web))
        .append_pair("scope", "openid email profile offline_access")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair(
            "code_challenge",
            &b64url_encode(&Sha256::digest(verifier.as_bytes())),
        )
        .append_pair("code_challenge_method", "S256");
    if let Some(org) = web.q("organization") {
        query.append_pair("tenant", org);
    }
    set_cookies.push(web.set_cookie(SIGNIN_COOKIE, &state, SIGNIN_TTL_MS / 1000));
    Answer::to(format!("/oauth/authorize?{}", query.finish()))
}

fn redirect_uri<P: Platform>(web: &Web<'_, P>) -> String {
    format!("{}{CONSOLE_CALLBACK_PATH}", web.origin)
}

/// `GET /console/auth/tenant/callback`: the universal login's answer.
pub(super) async fn callback<P: Platform>(
    web: &Web<'_, P>,
    set_cookies: &mut Vec<String>,
) -> Answer {
    set_cookies.push(web.set_cookie(SIGNIN_COOKIE, "", 0));
    let refused = |reason: &str| Answer::to(signin::signin_url(web, reason));
    let Some(state) = web.q("state").filter(|s| s.len() <= 256) else {
        return refused("console_signin_unknown");
    };
    if web.cookie(SIGNIN_COOKIE) != Some(state) {
        return refused("console_signin_unknown");
    }
    let state_hash = token_hash(state);
    let Some(data) = consume(web, &state_hash).await else {
        return refused("console_signin_unknown");
    };
    let (Some(code), None) = (web.q("code"), web.q("error")) else {
        return refused("console_signin_refused");
    };
    let verifier = MasterKey::load(web.p.secrets())
        .ok()
        .and_then(|m| {
            m.open(&sealing_context(&state_hash), &data.verifier_enc)
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok());
    let Some(verifier) = verifier else {
        return refused("console_signin_unknown");
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect_uri(web)),
        ("client_id", CONSOLE_CLIENT_ID),
        ("code_verifier", &verifier),
    ];
    let Some((tokens, id_token)) = token_request(web, &form).await else {
        return refused("console_signin_refused");
    };
    let claims = id_claims(id_token.as_deref());
    let nonce = claims.get("nonce").and_then(Json::as_str).map(token_hash);
    if nonce.as_deref() != Some(data.nonce_hash.as_str()) {
        return refused("console_signin_id_token");
    }
    let email = claims.get("email").and_then(Json::as_str).unwrap_or("");
    open_session(web, tokens, email, data.return_to, set_cookies).await
}

/// Marks the tenant sign-in of `state_hash` used and returns it, once.
async fn consume<P: Platform>(web: &Web<'_, P>, state_hash: &str) -> Option<SignInData> {
    let now = web.p.clock().now_ms();
    let rows = web
        .p
        .sql()
        .query(
            Stmt::new(
                "SELECT data FROM console_signins WHERE state_hash = ?1 AND kind = 'tenant'
                   AND consumed_at IS NULL AND expires_at > ?2",
            )
            .bind(state_hash)
            .bind(now),
        )
        .await
        .ok()?;
    let data: SignInData = serde_json::from_str(&rows.first()?.text("data").ok()?).ok()?;
    let claimed = web
        .p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE console_signins SET consumed_at = ?2
                 WHERE state_hash = ?1 AND consumed_at IS NULL",
            )
            .bind(state_hash)
            .bind(now),
        )
        .await
        .ok()?;
    (claimed == 1).then_some(data)
}

/// The claims of the ID token. It came straight from Edgeplane's own token endpoint, in
/// process: its signature needs no check here.
fn id_claims(id_token: Option<&str>) -> Json {
    id_token
        .and_then(|t| t.split('.').nth(1))
        .and_then(crate::crypto::b64url_decode)
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .unwrap_or(Json::Null)
}

/// A request to Edgeplane's own token endpoint, in process: the tokens, and the ID token.
async fn token_request<P: Platform>(
    web: &Web<'_, P>,
    form: &[(&str, &str)],
) -> Option<(Tokens, Option<String>)> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    let req = ::http::Request::builder()
        .method(Method::POST)
        .uri(format!("{}/oauth/token", web.origin))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(crate::http::REQUEST_ID, web.request_id.as_str())
        .body(body.into_bytes())
        .ok()?;
    let resp = Box::pin(crate::http::handle(web.p, req)).await;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let json: Json = serde_json::from_slice(resp.body()).ok()?;
    let now = web.p.clock().now_ms() / 1000;
    let tokens = Tokens {
        access: json.get("access_token")?.as_str()?.to_owned(),
        refresh: json
            .get("refresh_token")
            .and_then(Json::as_str)
            .map(str::to_owned),
        exp: now + json.get("expires_in").and_then(Json::as_i64).unwrap_or(0),
    };
    Some((
        tokens,
        json.get("id_token")
            .and_then(Json::as_str)
            .map(str::to_owned),
    ))
}

/// Creates the console session of a signed-in owner or admin; anyone else is signed out again.
async fn open_session<P: Platform>(
    web: &Web<'_, P>,
    tokens: Tokens,
    email: &str,
    return_to: Option<String>,
    set_cookies: &mut Vec<String>,
) -> Answer {
    let bearer = format!("Bearer {}", tokens.access);
    let Ok(user) = authenticate_access_token(web.p, Some(&bearer)).await else {
        return Answer::to(signin::signin_url(web, "console_signin_refused"));
    };
    let claims = user.claims;
    if claims.role != "owner" && claims.role != "admin" {
        logout(web, &tokens.access).await;
        return Answer::to(signin::signin_url(web, "console_signin_not_admin"));
    }
    if let Some(old) = &web.session {
        let _ = session::revoke(web.p, &old.token_hash).await;
    }
    let new = NewSession {
        kind: Kind::Tenant,
        user_id: claims.sub.clone(),
        role: claims.role.clone(),
        tenant_id: Some(claims.tid.clone()),
        display_name: email.to_owned(),
        data: json!({}),
    };
    let created = session::create(web.p, new).await;
    let Ok((cookie, mut s)) = created else {
        super::log_error(web, "console session could not be stored", "create");
        return page::unavailable(web);
    };
    if store_tokens(web, &mut s, &tokens).await.is_err() {
        return page::unavailable(web);
    }
    set_cookies.push(web.set_cookie(SESSION_COOKIE, &cookie, session::ABSOLUTE_TIMEOUT_MS / 1000));
    Answer::to(return_to.unwrap_or_else(|| format!("{PREFIX}/")))
}

/// Seals the tokens into the session's data and saves it.
async fn store_tokens<P: Platform>(
    web: &Web<'_, P>,
    s: &mut Session,
    tokens: &Tokens,
) -> Result<(), ()> {
    let master = MasterKey::load(web.p.secrets()).map_err(|_| ())?;
    let ctx = token_context(&s.token_hash);
    let seal = |v: &str| master.seal(web.p.random(), &ctx, v.as_bytes());
    s.data = json!({
        "access": seal(&tokens.access),
        "refresh": tokens.refresh.as_deref().map(seal),
        "exp": tokens.exp,
        "email": s.display_name,
    });
    let saved = web
        .p
        .sql()
        .execute(
            Stmt::new(
                "UPDATE console_sessions SET data = ?2, display_name = ?3 WHERE token_hash = ?1",
            )
            .bind(s.token_hash.as_str())
            .bind(s.data.to_string())
            .bind(s.display_name.as_str()),
        )
        .await;
    saved
        .map(|_| ())
        .map_err(|e| super::log_error(web, "console session tokens", &e.to_string()))
}

/// The session's tokens, opened.
fn open_tokens<P: Platform>(web: &Web<'_, P>, s: &Session) -> Option<Tokens> {
    let master = MasterKey::load(web.p.secrets()).ok()?;
    let ctx = token_context(&s.token_hash);
    let open = |v: &Json| {
        v.as_str()
            .and_then(|sealed| master.open(&ctx, sealed).ok())
            .and_then(|b| String::from_utf8(b).ok())
    };
    Some(Tokens {
        access: open(&s.data["access"])?,
        refresh: open(&s.data["refresh"]),
        exp: s.data["exp"].as_i64().unwrap_or(0),
    })
}

/// The access token this request acts with: the session's, or a fresh one when it is about to
/// expire (the refresh token rotates; the session keeps the new pair). `None`: the session can
/// no longer act (its Edgeplane session was revoked or expired).
pub(super) async fn access_token<P: Platform>(web: &Web<'_, P>) -> Option<String> {
    if let Some(t) = web.tenant_tokens.borrow().as_ref() {
        return Some(t.access.clone());
    }
    let s = web.session.as_ref()?;
    let tokens = open_tokens(web, s)?;
    let now = web.p.clock().now_ms() / 1000;
    let tokens = if tokens.exp - REFRESH_MARGIN_SECS > now {
        tokens
    } else {
        let refresh = tokens.refresh?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", CONSOLE_CLIENT_ID),
        ];
        let (fresh, _) = token_request(web, &form).await?;
        let mut s = s.clone();
        store_tokens(web, &mut s, &fresh).await.ok()?;
        fresh
    };
    let access = tokens.access.clone();
    *web.tenant_tokens.borrow_mut() = Some(tokens);
    Some(access)
}

/// Ends the Edgeplane session behind the console session (its refresh token dies with it).
pub(super) async fn logout<P: Platform>(web: &Web<'_, P>, access: &str) {
    let req = ::http::Request::builder()
        .method(Method::POST)
        .uri(format!("{}/v1/auth/logout", web.origin))
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Vec::new());
    if let Ok(req) = req {
        let _ = Box::pin(crate::http::handle(web.p, req)).await;
    }
}
