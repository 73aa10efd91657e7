//! Operator routes for managed apps and their API keys (UC-DEV-REGISTER, UC-DEV-UPDATE;
//! FR-SYS-001, FR-SYS-002, FR-SYS-003) and for the apps a tenant uses: request parsing, the apps
//! service, responses; and the API-key check of the routes managed apps call.

use ::http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema};

use super::reply::{no_content, Edge};
use super::{json, ApiError, Ctx, Request, Response};
use crate::apps::{
    self, authenticate_app_key_reading, model::parse_list, AllowedOrigin, ApiKey, App, AppId,
    AppKeyPrincipal, AppName, AppStatus, IssueKey, KeyId, KeyKind, KeyName, KeyStatus, ListApps,
    ListKeys, RedirectUri, RegisterApp, Scope, ScopeSet, TenantAppChange, UpdateApp,
};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::kernel::schema;
use crate::ports::{Clock, Platform, Secrets};
use crate::tenants::{EdgeSync, ParseError, TenantId};

/// Body of `POST /v1/apps`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterAppRequest {
    /// Surrounding whitespace is trimmed; then 1 to 100 characters, no control characters.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,98}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    name: String,
    /// Absolute https URIs (http only for localhost, 127.0.0.1 or [::1]), no fragment;
    /// duplicates dropped.
    #[serde(default)]
    #[schema(max_items = 20, inline, value_type = Vec<RedirectUri>)]
    redirect_uris: Vec<String>,
    /// Exactly scheme://host[:port]: https, or http for a loopback host; stored lowercase
    /// without the default port.
    #[serde(default)]
    #[schema(max_items = 20, inline, value_type = Vec<AllowedOrigin>)]
    allowed_origins: Vec<String>,
}

/// Body of `PATCH /v1/apps/{id}`: the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateAppRequest {
    /// Surrounding whitespace is trimmed; then 1 to 100 characters, no control characters.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,98}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    name: Option<String>,
    /// Absolute https URIs (http only for localhost, 127.0.0.1 or [::1]), no fragment;
    /// duplicates dropped. Replaces the list.
    #[schema(max_items = 20, inline, value_type = Option<Vec<RedirectUri>>)]
    redirect_uris: Option<Vec<String>>,
    /// Exactly scheme://host[:port]: https, or http for a loopback host; stored lowercase
    /// without the default port. Replaces the list.
    #[schema(max_items = 20, inline, value_type = Option<Vec<AllowedOrigin>>)]
    allowed_origins: Option<Vec<String>>,
    /// `disabled` refuses every key of the app; `active` accepts them again.
    #[schema(schema_with = optional_app_status)]
    status: Option<String>,
}

fn optional_app_status() -> utoipa::openapi::schema::Schema {
    schema::or_null(schema::string_enum(&[
        AppStatus::Active.as_str(),
        AppStatus::Disabled.as_str(),
    ]))
}

/// Body of `POST /v1/apps/{id}/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IssueApiKeyRequest)]
pub(super) struct IssueKeyRequest {
    /// What the key may do. Duplicates are dropped.
    #[schema(min_items = 1, inline, value_type = Vec<Scope>)]
    scopes: Vec<String>,
    /// Binds the key to a live tenant for which the app is enabled.
    #[schema(format = "uuid")]
    tenant_id: Option<String>,
    /// When the key stops working: unix milliseconds, in the future.
    expires_at: Option<i64>,
    /// `server` (the default) or `browser`.
    #[schema(schema_with = optional_key_kind)]
    kind: Option<String>,
    /// Surrounding whitespace is trimmed; then 1 to 100 characters, no control characters.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,98}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    name: Option<String>,
}

fn optional_key_kind() -> utoipa::openapi::schema::Schema {
    let mut kind = schema::string_enum(&[KeyKind::Server.as_str(), KeyKind::Browser.as_str()]);
    kind.default = Some(KeyKind::Server.as_str().into());
    schema::or_null(kind)
}

/// One page of apps.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AppPage)]
pub(super) struct AppListResponse {
    /// The apps of this page.
    items: Vec<App>,
    /// The `cursor` of the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// An app after a change, with whether the edge already sees its status.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AppChange)]
pub(super) struct AppChangeResponse {
    /// The app afterwards.
    app: App,
    /// False when nothing changed.
    changed: bool,
    /// pending: the app status marker write failed; repeat the call.
    #[schema(inline)]
    edge: Edge,
}

/// A key as listed: its metadata and its state now. Never the secret or its hash. Its schema is
/// the key's with `status` added, as its JSON is (`flatten`).
#[derive(Debug, Serialize)]
pub(super) struct KeyResponse {
    #[serde(flatten)]
    key: ApiKey,
    /// The key's state now.
    status: KeyStatus,
}

impl PartialSchema for KeyResponse {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schema::with_property(ApiKey::schema(), "status", KeyStatus::schema())
    }
}

impl ToSchema for KeyResponse {
    fn name() -> std::borrow::Cow<'static, str> {
        "ApiKey".into()
    }
}

/// One page of keys.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKeyPage)]
pub(super) struct KeyListResponse {
    /// The keys of this page.
    items: Vec<KeyResponse>,
    /// The `cursor` of the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A key just issued: the only response that carries the key itself.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IssuedApiKey)]
pub(super) struct IssuedKeyResponse {
    #[serde(flatten)]
    key: KeyResponse,
    /// The API key, ep_<env>_<id>_<secret>: shown this once, never again. Present it as
    /// Authorization: Bearer or X-API-Key.
    secret: String,
}

/// A tenant's link to an app after enabling it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantApp)]
pub(super) struct TenantAppResponse {
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// The app.
    #[schema(value_type = String, format = "uuid")]
    app_id: AppId,
    /// Whether the app serves the tenant.
    enabled: bool,
    /// False when the app already was enabled for the tenant.
    changed: bool,
    /// pending: the edge records of the tenant's keys were not rewritten; repeat the call.
    #[schema(inline)]
    edge: Edge,
}

/// One app linked to a tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantAppLink)]
pub(super) struct TenantAppLinkResponse {
    /// The app.
    #[schema(value_type = String, format = "uuid")]
    app_id: AppId,
    /// Whether the app serves the tenant.
    enabled: bool,
}

/// The apps linked to a tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantAppList)]
pub(super) struct TenantAppListResponse {
    /// Oldest link first; disabled links included.
    items: Vec<TenantAppLinkResponse>,
}

/// `GET /v1/tenants/{id}/apps`: the apps linked to a tenant, enabled or not.
pub(super) async fn list_for_tenant<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let tenant = tenant_id(ctx)?;
    let links = apps::list_for_tenant(ctx.platform, &tenant)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let items = links
        .into_iter()
        .map(|l| TenantAppLinkResponse {
            app_id: l.app_id,
            enabled: l.enabled,
        })
        .collect();
    json::response(StatusCode::OK, &TenantAppListResponse { items })
}

/// `POST /v1/apps`: registers an app (FR-SYS-001).
pub(super) async fn register<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let body: RegisterAppRequest = json::parse_body(req)?;
    let cmd = RegisterApp {
        name: AppName::parse(&body.name)
            .map_err(|e| ApiError::invalid_field("name", e.to_string()))?,
        redirect_uris: parse_field_list("redirect_uris", &body.redirect_uris, RedirectUri::parse)?,
        allowed_origins: parse_field_list(
            "allowed_origins",
            &body.allowed_origins,
            AllowedOrigin::parse,
        )?,
    };
    let app = apps::register(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        cmd,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let mut resp = json::response(StatusCode::CREATED, &app)?;
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/apps/{}", app.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /v1/apps?status=&cursor=&limit=`.
pub(super) async fn list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let mut query = ListApps::default();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "status" => {
                query.status = Some(
                    AppStatus::parse(&v)
                        .map_err(|e| ApiError::invalid_field("status", e.to_string()))?,
                );
            }
            "cursor" => query.cursor = Some(v.into_owned()),
            "limit" => query.limit = Some(limit(&v)?),
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown query parameter (status, cursor, limit)",
                ));
            }
        }
    }
    let page = apps::list(ctx.platform, &query)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &AppListResponse {
            items: page.items,
            next_cursor: page.next_cursor,
        },
    )
}

/// `GET /v1/apps/{id}`.
pub(super) async fn get<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    let app = apps::get(ctx.platform, &id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &app)
}

/// `PATCH /v1/apps/{id}` `{name?, redirect_uris?, allowed_origins?, status?}` (FR-SYS-003).
pub(super) async fn update<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    let body: UpdateAppRequest = json::parse_body(req)?;
    let change = UpdateApp {
        name: body
            .name
            .map(|n| AppName::parse(&n).map_err(|e| ApiError::invalid_field("name", e.to_string())))
            .transpose()?,
        redirect_uris: body
            .redirect_uris
            .map(|u| parse_field_list("redirect_uris", &u, RedirectUri::parse))
            .transpose()?,
        allowed_origins: body
            .allowed_origins
            .map(|o| parse_field_list("allowed_origins", &o, AllowedOrigin::parse))
            .transpose()?,
        status: body
            .status
            .map(|s| {
                AppStatus::parse(&s).map_err(|e| ApiError::invalid_field("status", e.to_string()))
            })
            .transpose()?,
    };
    let outcome = apps::update(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        change,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let edge = edge(
        ctx,
        &outcome.edge,
        "app status marker not written; repeat the call",
    );
    json::response(
        StatusCode::OK,
        &AppChangeResponse {
            app: outcome.app,
            changed: outcome.changed,
            edge,
        },
    )
}

/// `POST /v1/apps/{id}/keys` `{scopes, tenant_id?, expires_at?, kind?, name?}` (FR-SYS-002):
/// 201 with the key, shown once.
pub(super) async fn issue_key<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    let body: IssueKeyRequest = json::parse_body(req)?;
    let cmd = IssueKey {
        scopes: ScopeSet::parse(&body.scopes)
            .map_err(|e| ApiError::invalid_field("scopes", e.to_string()))?,
        tenant_id: body
            .tenant_id
            .map(|t| {
                TenantId::parse(&t).map_err(|e| ApiError::invalid_field("tenant_id", e.to_string()))
            })
            .transpose()?,
        expires_at: body.expires_at,
        kind: body
            .kind
            .map(|k| KeyKind::parse(&k).map_err(|e| ApiError::invalid_field("kind", e.to_string())))
            .transpose()?
            .unwrap_or(KeyKind::Server),
        name: body
            .name
            .map(|n| KeyName::parse(&n).map_err(|e| ApiError::invalid_field("name", e.to_string())))
            .transpose()?,
    };
    if let Some(t) = &cmd.tenant_id {
        ctx.tenant_id = Some(t.as_str().to_owned());
    }
    let issued = apps::issue_key(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        cmd,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let status = issued.key.status(ctx.platform.clock().now_ms());
    let mut resp = json::response(
        StatusCode::CREATED,
        &IssuedKeyResponse {
            key: KeyResponse {
                key: issued.key,
                status,
            },
            secret: issued.secret,
        },
    )?;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /v1/apps/{id}/keys?cursor=&limit=`: no secrets, no hashes.
pub(super) async fn list_keys<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    let mut query = ListKeys::default();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "cursor" => query.cursor = Some(v.into_owned()),
            "limit" => query.limit = Some(limit(&v)?),
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown query parameter (cursor, limit)",
                ));
            }
        }
    }
    let page = apps::list_keys(ctx.platform, &id, &query)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let now = ctx.platform.clock().now_ms();
    json::response(
        StatusCode::OK,
        &KeyListResponse {
            items: page
                .items
                .into_iter()
                .map(|key| KeyResponse {
                    status: key.status(now),
                    key,
                })
                .collect(),
            next_cursor: page.next_cursor,
        },
    )
}

/// `DELETE /v1/apps/{id}/keys/{key_id}`: 204, also when already revoked. 503 when D1 says
/// revoked but the edge record could not be rewritten: repeat the call.
pub(super) async fn revoke_key<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    let key_id = KeyId::parse(ctx.param("key_id"))
        .map_err(|_| ApiError::not_found("The app has no key with this id."))?;
    let outcome = apps::revoke_key(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        &key_id,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    if let Some(t) = &outcome.key.tenant_id {
        ctx.tenant_id = Some(t.as_str().to_owned());
    }
    if let EdgeSync::Pending { error } = &outcome.edge {
        return Err(ApiError::unavailable(format!(
            "api key revoked in D1 but its edge record was not rewritten (repeat the DELETE): {error}"
        )));
    }
    Ok(no_content())
}

/// `POST /v1/tenants/{id}/apps/{app_id}`: enables the app for the tenant.
pub(super) async fn enable_for_tenant<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let tenant = tenant_id(ctx)?;
    let app = app_id(ctx, "app_id")?;
    let change = apps::enable_for_tenant(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &tenant,
        &app,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let TenantAppChange {
        link,
        changed,
        edge: sync,
    } = change;
    let edge = edge(
        ctx,
        &sync,
        "API key records of the tenant not rewritten; repeat the call",
    );
    json::response(
        StatusCode::OK,
        &TenantAppResponse {
            tenant_id: link.tenant_id,
            app_id: link.app_id,
            enabled: link.enabled,
            changed,
            edge,
        },
    )
}

/// `DELETE /v1/tenants/{id}/apps/{app_id}`: disables the app for the tenant; 204, also when
/// already disabled. 503 when the edge records of the tenant's keys could not be rewritten.
pub(super) async fn disable_for_tenant<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let tenant = tenant_id(ctx)?;
    let app = app_id(ctx, "app_id")?;
    let change = apps::disable_for_tenant(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &tenant,
        &app,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    if let EdgeSync::Pending { error } = &change.edge {
        return Err(ApiError::unavailable(format!(
            "app disabled for the tenant in D1 but its keys' edge records were not rewritten (repeat the DELETE): {error}"
        )));
    }
    Ok(no_content())
}

/// Authenticates the request's API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`)
/// for an operation needing `scope`, for the routes managed apps call (flags, billing, token
/// introspection). Sets the log's tenant for a tenant-bound key.
pub(super) async fn require_app_key<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    scope: Scope,
) -> Result<AppKeyPrincipal, ApiError> {
    let presented = presented_app_key(req)?;
    // A flag route reads its tenant's snapshot next: read along with the key's markers.
    let next = |_: &AppId, tenant: Option<&TenantId>| match scope {
        Scope::FlagsRead => super::flags::keys_read_next(req, tenant),
        _ => Vec::new(),
    };
    let principal = authenticate_app_key_reading(ctx.platform, presented, scope, next)
        .await
        .map_err(|e| ApiError::from(&e))?;
    note_key_tenant(ctx, &principal);
    note_key_address(ctx, req, &principal);
    Ok(principal)
}

/// NFR-MON-001: notes the key's client address in the isolate's memory only (no storage
/// call), for the anomaly rule on keys used from many more addresses than usual.
pub(super) fn note_key_address<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    principal: &AppKeyPrincipal,
) {
    let p = ctx.platform;
    let runtime = p.backends().runtime;
    // Only Spin reads the trusted proxies: the edge does not pay for an env lookup.
    let trusted = (runtime == "spin")
        .then(|| p.secrets().get("TRUSTED_PROXIES"))
        .flatten();
    let client = super::client_addr::client_address(runtime, trusted.as_deref(), req);
    crate::anomalies::note_key_use(
        principal.key_id.as_str(),
        principal.tenant_id.as_ref().map(TenantId::as_str),
        client.as_deref(),
        p.clock().now_ms(),
    );
}

/// The API key a request presents (`X-API-Key`, else `Authorization: Bearer`); 401 without one.
pub(super) fn presented_app_key(req: &Request) -> Result<&str, ApiError> {
    req.headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_credentials(
                "An API key is required (Authorization: Bearer <key> or X-API-Key).",
            )
        })
}

/// Sets the log's tenant for a tenant-bound key.
pub(super) fn note_key_tenant<P: Platform>(ctx: &mut Ctx<'_, P>, principal: &AppKeyPrincipal) {
    if let Some(t) = &principal.tenant_id {
        ctx.tenant_id = Some(t.as_str().to_owned());
    }
}

/// The `edge` member of a response, logging a pending write.
fn edge<P: Platform>(ctx: &Ctx<'_, P>, sync: &EdgeSync, msg: &str) -> Edge {
    match sync {
        EdgeSync::Synced => Edge::Synced,
        EdgeSync::Pending { error } => {
            ctx.log("warn", msg, Some("edge_pending"), &error.to_string());
            Edge::Pending
        }
    }
}

/// A list field parsed item by item; the problem names the field and the item.
fn parse_field_list<T: PartialEq>(
    field: &str,
    raw: &[String],
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<Vec<T>, ApiError> {
    parse_list(raw, parse).map_err(|(index, e)| match index {
        Some(i) => ApiError::invalid_field(field, format!("item {i}: {e}")),
        None => ApiError::invalid_field(field, e.to_string()),
    })
}

fn limit(v: &str) -> Result<u32, ApiError> {
    v.parse()
        .map_err(|_| ApiError::invalid_field("limit", "must be an integer"))
}

/// A path's app id; a malformed id names no app (404, like an unknown one).
pub(super) fn app_id<P: Platform>(ctx: &Ctx<'_, P>, param: &str) -> Result<AppId, ApiError> {
    AppId::parse(ctx.param(param)).map_err(|_| ApiError::not_found("No app has this id."))
}

/// The path's tenant id; a malformed id names no tenant (404, like an unknown one).
fn tenant_id<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<TenantId, ApiError> {
    let id = TenantId::parse(ctx.param("id"))
        .map_err(|_| ApiError::not_found("No tenant has this id."))?;
    ctx.tenant_id = Some(id.as_str().to_owned());
    Ok(id)
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::testing::TestPlatform;

    fn ctx(p: &TestPlatform) -> Ctx<'_, TestPlatform> {
        Ctx {
            platform: p,
            request_id: "req-1".into(),
            params: Vec::new(),
            tenant_id: None,
            route: String::new(),
            delegate: None,
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut b = ::http::Request::builder().method("GET").uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Vec::new()).unwrap()
    }

    /// The API-key check reads the key from either header and maps refusals to 401/403/503.
    #[test]
    fn fr_sys_002_app_key_check_maps_refusals() {
        block_on(async {
            let p = TestPlatform::new().await;
            p.secrets.set("EDGEPLANE_ENV", "development");
            let op = Actor::operator("op-1");
            let app = apps::register(
                &p,
                &op,
                RegisterApp {
                    name: AppName::parse("CRM").unwrap(),
                    redirect_uris: vec![],
                    allowed_origins: vec![],
                },
                "r",
            )
            .await
            .unwrap();
            let issued = apps::issue_key(
                &p,
                &op,
                &app.id,
                IssueKey {
                    scopes: ScopeSet::parse(&["flags:read"]).unwrap(),
                    tenant_id: None,
                    expires_at: None,
                    kind: KeyKind::Server,
                    name: None,
                },
                "r",
            )
            .await
            .unwrap();
            let key = issued.secret.as_str();
            let bearer = format!("Bearer {key}");
            for headers in [[("authorization", bearer.as_str())], [("x-api-key", key)]] {
                let mut c = ctx(&p);
                let got = require_app_key(&mut c, &request(&headers), Scope::FlagsRead).await;
                assert_eq!(got.unwrap().app_id, app.id);
            }
            let mut c = ctx(&p);
            let e = require_app_key(&mut c, &request(&[]), Scope::FlagsRead)
                .await
                .unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED);
            let e = require_app_key(&mut c, &request(&[("x-api-key", "nope")]), Scope::FlagsRead)
                .await
                .unwrap_err();
            assert_eq!(
                (e.status, &e.extensions["reason"]),
                (StatusCode::UNAUTHORIZED, &"api_key_malformed".into())
            );
            let e = require_app_key(&mut c, &request(&[("x-api-key", key)]), Scope::BillWrite)
                .await
                .unwrap_err();
            assert_eq!(
                (e.status, &e.extensions["reason"]),
                (StatusCode::FORBIDDEN, &"api_key_scope_missing".into())
            );
            p.secrets.set("EDGEPLANE_ENV", "production");
            let e = require_app_key(&mut c, &request(&[("x-api-key", key)]), Scope::FlagsRead)
                .await
                .unwrap_err();
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
            // The request's log line carries the cause, and never the key.
            let cause = e.cause.unwrap_or_default();
            assert!(cause.contains("api_key_pepper_missing"), "{cause}");
            assert!(!cause.contains(key), "{cause}");
            assert!(!p.logger.lines().iter().any(|l| l.contains(key)));
        });
    }

    /// FR-SYS-002: without API_KEY_PEPPER a deployment refuses issuance with 503 and a log line
    /// naming the secret to set.
    #[test]
    fn fr_sys_002_issuance_without_pepper_is_503_and_logged() {
        let e = ApiError::from(&crate::apps::IssueKeyError::NotConfigured(
            crate::apps::PepperProblem::Missing,
        ));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !e.detail.contains("PEPPER"),
            "the client sees a generic detail"
        );
        // The request's log line carries the cause.
        let cause = e.cause.unwrap_or_default();
        assert!(cause.contains("API_KEY_PEPPER"), "{cause}");
    }
}
