//! Development-only routes (`/__dev/`), answered 404 outside development.

use ::http::StatusCode;

use super::is_development;
use super::reply::no_store;
use super::{json, ApiError, Ctx, Request, Response};
use crate::ports::{Clock, Platform};

/// `GET /__dev/mail?to=<address>` (development only): the latest messages of the dev outbox to
/// an address, so the suite and the demo can follow mailed links. Queued mail that is due is
/// delivered first: a reader right after a forgot-password answer sees the reset mail although
/// its delivery after that answer may still be under way (or, without a runtime that works
/// after answering, waiting for the scheduled run).
pub(super) async fn dev_mail<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    if !is_development(ctx) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let to = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::invalid_field("to", "is required"))?;
    let now = ctx.platform.clock().now_ms();
    if let Err(e) = crate::mail::queue::deliver_due(ctx.platform, now).await {
        ctx.log(
            "error",
            "queued mail delivery failed",
            Some(e.code()),
            &e.to_string(),
        );
    }
    let messages = crate::mail::messages_to(ctx.platform.sql(), &to, 10)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let items: Vec<_> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "subject": m.mail.subject,
                "text": m.mail.text,
                "created_at": m.created_at_ms,
            })
        })
        .collect();
    Ok(no_store(json::response(
        StatusCode::OK,
        &serde_json::json!({ "items": items }),
    )?))
}
