//! Alerting routes (NFR-MON-002): the operators' notification channels
//! (`/v1/alerts/channels`) and the firing and recent alerts (`/v1/alerts`).

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::reply::{no_content, no_store};
use super::{json, ApiError, Ctx, Request, Response};
use crate::alerts::{self, channels, Alert, ChannelView, NewChannel};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::kernel::schema::string_enum;
use crate::ports::Platform;
use crate::signin::UserPrincipal;

/// Body of `POST /v1/alerts/channels`: `kind` and the fields of that kind (the document states
/// each kind's fields as one branch of a choice; a field of another kind is refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateAlertChannelRequest {
    /// `email`, `slack`, `pagerduty` or `webhook`.
    kind: String,
    /// A label; defaults to the kind.
    #[serde(default)]
    name: Option<String>,
    /// `email`: the address.
    #[serde(default)]
    to: Option<String>,
    /// `slack`, `webhook`: the destination; `pagerduty`: another Events API endpoint.
    #[serde(default)]
    url: Option<String>,
    /// `pagerduty`: the routing key.
    #[serde(default)]
    routing_key: Option<String>,
    /// `webhook`: the signing secret; generated when absent.
    #[serde(default)]
    secret: Option<String>,
}

/// Surrounding whitespace trimmed, then 1 to 100 characters without control characters (the
/// rule of app names).
const NAME_PATTERN: &str = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,98}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#;

impl PartialSchema for CreateAlertChannelRequest {
    fn schema() -> RefOr<Schema> {
        let string = |nullable: bool| {
            let t = if nullable {
                SchemaType::from_iter([Type::String, Type::Null])
            } else {
                SchemaType::new(Type::String)
            };
            ObjectBuilder::new().schema_type(t)
        };
        let url = |nullable: bool, what: &str| {
            string(nullable)
                .format(Some(SchemaFormat::Custom("uri".into())))
                .max_length(Some(2048))
                .description(Some(format!(
                    "{what} `https://` to a public host; in development also `http://` to a \
                     loopback host (another destination is refused with 422). Sealed under the \
                     master key, never returned."
                )))
        };
        let branch = |kind: &str, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(description))
                .property("kind", string_enum(&[kind]))
                .required("kind")
                .property(
                    "name",
                    string(true)
                        .pattern(Some(NAME_PATTERN))
                        .description(Some("A label, 1 to 100 characters; defaults to the kind.")),
                )
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let email = branch("email", "Mail through the deployment's mail provider.")
            .property(
                "to",
                string(false)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                    .description(Some(
                        "The address alerts are mailed to. Sealed, never returned.",
                    )),
            )
            .required("to");
        let slack = branch("slack", "A Slack incoming webhook: POST {\"text\": ...}.")
            .property(
                "url",
                url(false, "The incoming-webhook URL (a credential):"),
            )
            .required("url");
        let pagerduty = branch(
            "pagerduty",
            "PagerDuty Events API v2: trigger and resolve events with the alert's dedup_key.",
        )
        .property(
            "routing_key",
            string(false)
                .pattern(Some("^[A-Za-z0-9]{1,128}$"))
                .description(Some(
                    "The integration's routing key. Sealed, never returned.",
                )),
        )
        .required("routing_key")
        .property(
            "url",
            url(
                true,
                "Another Events API endpoint than https://events.pagerduty.com/v2/enqueue (e.g. \
                 the EU region's):",
            ),
        );
        let webhook = branch(
            "webhook",
            "Any receiver: POST JSON signed with X-Edgeplane-Timestamp and X-Edgeplane-Signature.",
        )
        .property("url", url(false, "The receiver:"))
        .required("url")
        .property(
            "secret",
            string(true)
                .pattern(Some("^[!-~]{16,256}$"))
                .description(Some(
                    "The HMAC-SHA256 signing secret, 16 to 256 printable ASCII characters without \
                     spaces; omitted, Edgeplane generates one and returns it once. Sealed, never \
                     returned again.",
                )),
        );
        OneOfBuilder::new()
            .description(Some("A channel of one kind and the fields of that kind."))
            .item(email)
            .item(slack)
            .item(pagerduty)
            .item(webhook)
            .into()
    }
}

impl ToSchema for CreateAlertChannelRequest {}

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
    let body: CreateAlertChannelRequest = json::parse_body(req)?;
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

/// `GET /v1/tenant/alerts` (owners, admins; NFR-MON-001): the anomaly alerts of the caller's
/// tenant, as operators see them.
pub(super) async fn list_tenant_alerts<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let alerts = alerts::for_tenant(ctx.platform, &principal.claims.tid)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &AlertListResponse { alerts },
    )?))
}
