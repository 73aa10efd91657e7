//! Token routes (NFR-SEC-004, RFC 7662): the published signing keys (JWKS), their rotation by
//! an operator, and token introspection for managed apps.

use std::borrow::Cow;

use ::http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::apps::{note_key_address, note_key_tenant, presented_app_key, require_app_key};
use super::reply::no_store;
use super::{json, ApiError, Ctx, Request, Response};
use crate::apps::{authenticate_app_key_with, Scope};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::kernel::schema::{array_of_closed, nullable_string};
use crate::ports::Platform;
use crate::signin;
use crate::tokens::keys::{self, PublicJwk};

/// The JSON body of `POST /oauth/introspect`; the form body has the same fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    /// The access token to check.
    token: String,
    /// Read and ignored (RFC 7662 2.1): only access tokens are introspected.
    #[serde(default)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// Written by hand: one schema serves the JSON body, which refuses unknown fields, and the
/// form body, which reads `token` and ignores every other field, so the schema leaves other
/// properties open (the derive would close them).
impl PartialSchema for IntrospectRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "The token to check (RFC 7662 2.1), as a form or as JSON. The form ignores \
                 fields other than token; JSON refuses fields other than these two.",
            ))
            .property(
                "token",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The access token to check.")),
            )
            .required("token")
            .property(
                "token_type_hint",
                ObjectBuilder::from(nullable_string()).description(Some(
                    "Read and ignored: only access tokens are introspected.",
                )),
            )
            .into()
    }
}

impl ToSchema for IntrospectRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("IntrospectionRequest")
    }
}

/// A JSON Web Key Set (RFC 7517) of the published Ed25519 keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// The active key and the previous keys whose tokens may still be valid.
    #[schema(schema_with = array_of_closed::<PublicJwk>)]
    keys: Vec<PublicJwk>,
}

/// What a signing-key rotation did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRotation {
    /// The new active key id.
    kid: String,
    /// The demoted key id, or null when there was no active key.
    #[schema(required = true)]
    previous_kid: Option<String>,
    /// How many expired previous keys were retired (their private keys destroyed).
    #[schema(value_type = i64)]
    retired: u64,
}

/// The answer of `POST /oauth/introspect` (RFC 7662 2.2): `{active: false}` alone, or the
/// claims of the active token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is active now.
    active: bool,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    iss: Option<String>,
    /// The user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    sub: Option<String>,
    /// Audience: the Edgeplane API or the app the OIDC provider issued the token to.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    aud: Option<String>,
    /// The tenant id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    tid: Option<String>,
    /// The user's tenant role.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    role: Option<String>,
    /// The session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    sid: Option<String>,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    scope: Option<String>,
    /// Issued at (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, nullable = false)]
    iat: Option<i64>,
    /// Expires at (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64, nullable = false)]
    exp: Option<i64>,
    /// Unique token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    jti: Option<String>,
    /// Always `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    token_type: Option<&'static str>,
    /// The calling app's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    client_id: Option<String>,
}

impl Introspection {
    fn inactive() -> Self {
        Introspection {
            active: false,
            iss: None,
            sub: None,
            aud: None,
            tid: None,
            role: None,
            sid: None,
            scope: None,
            iat: None,
            exp: None,
            jti: None,
            token_type: None,
            client_id: None,
        }
    }
}

/// `GET /.well-known/jwks.json`: the published signing keys (NFR-SEC-004).
pub(super) async fn jwks<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Response, ApiError> {
    let keys = keys::published(ctx.platform)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut resp = json::response(StatusCode::OK, &Jwks { keys })?;
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
        &SigningKeyRotation {
            kid: r.kid,
            previous_kid: r.previous,
            retired: r.retired,
        },
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
        |_, _| signin::keys_checked(&token),
        |app_id| {
            let app_id = app_id.to_owned();
            let token = token.as_str();
            async move { signin::introspect(platform, token, &app_id).await }
        },
    )
    .await;
    let (app, claims) = checked.map_err(|e| ApiError::from(&e))?;
    note_key_tenant(ctx, &app);
    note_key_address(ctx, req, &app);
    let claims = claims.map_err(|e| ApiError::from(&e))?;
    // A tenant-bound key learns only about its own tenant's tokens.
    let claims = claims.filter(|c| {
        app.tenant_id
            .as_ref()
            .is_none_or(|t| t.as_str() == c.tid.as_str())
    });
    let body = match claims {
        None => Introspection::inactive(),
        Some(c) => Introspection {
            active: true,
            iss: Some(c.iss),
            sub: Some(c.sub),
            aud: Some(c.aud),
            tid: Some(c.tid),
            role: Some(c.role),
            sid: Some(c.sid),
            scope: Some(c.scope),
            iat: Some(c.iat),
            exp: Some(c.exp),
            jti: Some(c.jti),
            token_type: Some("Bearer"),
            client_id: Some(app.app_id.as_str().to_owned()),
        },
    };
    Ok(no_store(json::response(StatusCode::OK, &body)?))
}
