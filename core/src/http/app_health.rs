//! The managed apps' own health checks (platform PRD): registering a health URL and reading
//! what the checks found (`crate::apps::health`).

use ::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::apps::app_id;
use super::reply::{no_content, no_store};
use super::{is_development, json, ApiError, Ctx, ProblemType, Request, Response};
use crate::apps::health::{self, HealthUrl};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::ports::{Clock, Platform};

/// The body of `PUT /v1/apps/{id}/health-check`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetHealthCheckRequest {
    /// The URL Edgeplane checks with a `GET`: https (http only to a loopback host, in
    /// development). A 2xx answer is healthy; redirects are not followed.
    #[schema(schema_with = health_url_schema)]
    pub url: String,
}

/// What [`HealthUrl::parse`] accepts in development (the redirect URI grammar); a deployment
/// also refuses loopback `http://` (422).
fn health_url_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    <crate::apps::model::RedirectUri as utoipa::PartialSchema>::schema()
}

/// `PUT /v1/apps/{id}/health-check` `{url}`: registers (or replaces) the app's health URL.
pub(super) async fn set<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    let body: SetHealthCheckRequest = json::parse_body(req)?;
    let url = HealthUrl::parse(&body.url, is_development(ctx)).map_err(|e| {
        if e.reason == health::HTTPS_REQUIRED {
            // Well formed, refused by a rule of this deployment.
            ApiError::new(ProblemType::BusinessRule, format!("url: {}.", e.reason))
                .with_extension("errors", json!([{ "field": "url", "message": e.reason }]))
        } else {
            ApiError::invalid_field("url", e.to_string())
        }
    })?;
    health::set_url(
        ctx.platform,
        &id,
        Some(&url),
        &Actor::operator(&operator.user_id),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    report_of(ctx, &id).await
}

/// `DELETE /v1/apps/{id}/health-check`: stops checking the app and forgets its history.
pub(super) async fn remove<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    health::set_url(
        ctx.platform,
        &id,
        None,
        &Actor::operator(&operator.user_id),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}

/// `GET /v1/apps/{id}/health`: green, red or unknown, the latest check and the last hour.
pub(super) async fn get<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = app_id(ctx, "id")?;
    report_of(ctx, &id).await
}

async fn report_of<P: Platform>(
    ctx: &Ctx<'_, P>,
    id: &crate::apps::model::AppId,
) -> Result<Response, ApiError> {
    let now = ctx.platform.clock().now_ms();
    let report = health::report(ctx.platform, id, now)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &report)?))
}
