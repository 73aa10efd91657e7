//! Alerting routes (NFR-MON-002): the operators' notification channels
//! (`/v1/alerts/channels`) and the firing and recent alerts (`/v1/alerts`).

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::reply::{no_content, no_store};
use super::{json, ApiError, Ctx, Request, Response};
use crate::alerts::{self, channels, Alert, ChannelView, NewChannel};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::ports::Platform;

/// Body of `POST /v1/alerts/channels`. Which fields apply depends on `kind`; a field of another
/// kind is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAlertChannelRequest)]
pub(super) struct CreateChannelRequest {
    /// `email`, `slack` (an incoming webhook), `pagerduty` (Events API v2) or `webhook`
    /// (HMAC-SHA256 signed).
    #[schema(schema_with = kind_schema)]
    kind: String,
    /// A label, 1 to 100 characters; defaults to the kind.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// `email`: the address alerts are mailed to.
    #[serde(default)]
    #[schema(format = "email")]
    to: Option<String>,
    /// `slack`: the incoming-webhook URL; `webhook`: the receiver; `pagerduty`: another Events
    /// API endpoint (default `https://events.pagerduty.com/v2/enqueue`; e.g. the EU region's).
    /// `https://` to a public host; in development also `http://` to a loopback host. Sealed
    /// under the master key and never returned (a Slack URL is a credential).
    #[serde(default)]
    #[schema(format = "uri", max_length = 2048)]
    url: Option<String>,
    /// `pagerduty`: the integration's routing key (letters and digits). Sealed, never returned.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    routing_key: Option<String>,
    /// `webhook`: the HMAC-SHA256 signing secret, 16 to 256 printable ASCII characters; omitted,
    /// Edgeplane generates one and returns it once. Sealed, never returned again.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 256)]
    secret: Option<String>,
}

fn kind_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(
        &channels::ChannelKind::ALL.map(channels::ChannelKind::as_str),
    )
}

/// A channel just created: the channel and, for a webhook whose secret Edgeplane generated, that
/// secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedAlertChannel)]
pub(super) struct CreatedChannelResponse {
    /// The channel.
    #[serde(flatten)]
    channel: ChannelView,
    /// The generated webhook signing secret (`whsec_` and 64 hex digits), shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    secret: Option<String>,
}

/// Body of `GET /v1/alerts/channels`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertChannelList)]
pub(super) struct ChannelListResponse {
    /// Every channel, oldest first.
    channels: Vec<ChannelView>,
}

/// Body of `GET /v1/alerts`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertList)]
pub(super) struct AlertListResponse {
    /// Firing alerts first, then those resolved within 7 days; most recently changed first.
    alerts: Vec<Alert>,
}

/// `POST /v1/alerts/channels` (operators): 201 with the channel; audited.
pub(super) async fn create_channel<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let body: CreateChannelRequest = json::parse_body(req)?;
    let input = NewChannel {
        kind: body.kind,
        name: body.name,
        to: body.to,
        url: body.url,
        routing_key: body.routing_key,
        secret: body.secret,
    };
    let created = channels::create(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &input,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let body = CreatedChannelResponse {
        channel: created.view,
        secret: created.generated_secret,
    };
    Ok(no_store(json::response(StatusCode::CREATED, &body)?))
}

/// `GET /v1/alerts/channels` (operators, auditors): hints only.
pub(super) async fn list_channels<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<Response, ApiError> {
    let channels = channels::list(ctx.platform)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &ChannelListResponse { channels },
    )?))
}

/// `DELETE /v1/alerts/channels/{id}` (operators): 204; audited.
pub(super) async fn delete_channel<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_ascii_lowercase();
    if !crate::ids::is_uuid(&id) {
        return Err(ApiError::from(&channels::AlertChannelError::NotFound));
    }
    channels::delete(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}

/// `GET /v1/alerts` (operators, auditors): firing and recently resolved alerts.
pub(super) async fn list_alerts<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<Response, ApiError> {
    let alerts = alerts::recent(ctx.platform)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &AlertListResponse { alerts },
    )?))
}
