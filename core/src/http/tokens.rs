//! Token routes (NFR-SEC-004, RFC 7662): the published signing keys (JWKS), their rotation by
//! an operator, and token introspection for managed apps.

use ::http::{header, HeaderValue, StatusCode};
use serde::Deserialize;

use super::apps::{note_key_tenant, presented_app_key, require_app_key};
use super::reply::no_store;
use super::{json, ApiError, Ctx, Request, Response};
use crate::apps::{authenticate_app_key_with, Scope};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::ports::Platform;
use crate::signin;
use crate::tokens::keys;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectRequest {
    token: String,
    #[serde(default)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// `GET /.well-known/jwks.json`: the published signing keys (NFR-SEC-004).
pub(super) async fn jwks<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Response, ApiError> {
    let keys = keys::published(ctx.platform)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut resp = json::response(StatusCode::OK, &serde_json::json!({ "keys": keys }))?;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// `POST /v1/signing-keys/rotate` (operator, NFR-SEC-004).
pub(super) async fn rotate_signing_key<P: Platform>(
    ctx: &Ctx<'_, P>,
    principal: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let r = keys::rotate(
        ctx.platform,
        &Actor::operator(&principal.user_id),
        Some(&ctx.request_id),
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &serde_json::json!({ "kid": r.kid, "previous_kid": r.previous, "retired": r.retired }),
    )
}

/// `POST /oauth/introspect` (RFC 7662) for API keys with `token:introspect`: `{active:false}`
/// for any token that is forged, expired or revoked; the claims when active. Edgeplane API tokens
/// and the OIDC access tokens issued to the calling app are answered; another client's OIDC
/// tokens are inactive to it. The body is a form (`token=...`, as RFC 7662 says) or JSON.
pub(super) async fn introspect<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let parsed = if json::is_json(req) {
        json::parse_body::<IntrospectRequest>(req).map(|b| b.token)
    } else {
        form_urlencoded::parse(req.body())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| ApiError::invalid_field("token", "is required"))
    };
    let token = match parsed {
        Ok(token) => token,
        Err(bad_body) => {
            // A bad key is 401 whatever the body.
            require_app_key(ctx, req, Scope::TokenIntrospect).await?;
            return Err(bad_body);
        }
    };
    // The token's checks run alongside the key's app and tenant markers (one KV round trip of
    // latency, not two), and only for a key whose hash, expiry and scope have passed.
    let platform = ctx.platform;
    let checked = authenticate_app_key_with(
        platform,
        presented_app_key(req)?,
        Scope::TokenIntrospect,
        |app_id| {
            let app_id = app_id.to_owned();
            let token = token.as_str();
            async move { signin::introspect(platform, token, &app_id).await }
        },
    )
    .await;
    let (app, claims) = checked.map_err(|e| ApiError::from(&e))?;
    note_key_tenant(ctx, &app);
    let claims = claims.map_err(|e| ApiError::from(&e))?;
    // A tenant-bound key learns only about its own tenant's tokens.
    let claims = claims.filter(|c| {
        app.tenant_id
            .as_ref()
            .is_none_or(|t| t.as_str() == c.tid.as_str())
    });
    let body = match claims {
        None => serde_json::json!({ "active": false }),
        Some(c) => serde_json::json!({
            "active": true,
            "iss": c.iss, "sub": c.sub, "aud": c.aud, "tid": c.tid, "role": c.role,
            "sid": c.sid, "scope": c.scope, "iat": c.iat, "exp": c.exp, "jti": c.jti,
            "token_type": "Bearer", "client_id": app.app_id.as_str(),
        }),
    };
    Ok(no_store(json::response(StatusCode::OK, &body)?))
}
