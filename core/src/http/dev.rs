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

/// The body of `PUT /__dev/faults`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    /// The ports to fail from now on (`sql`, `kv`, `event_log`, `blobs`); empty heals them all.
    fail: Vec<String>,
}

/// `PUT /__dev/faults` (development with `EDGEPLANE_FAULT_INJECTION=on` only): makes the named
/// storage ports fail on every call until the next change, so the suite can watch health,
/// metrics and alerts react to a real outage and to its recovery (`crate::faults`).
pub(super) async fn dev_faults<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    if !crate::faults::enabled(ctx.platform.secrets()) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let body: FaultsBody = json::parse_body(req)?;
    let mut ports = Vec::new();
    for name in &body.fail {
        let port = crate::faults::Port::parse(name)
            .ok_or_else(|| ApiError::invalid_field("fail", "names sql, kv, event_log or blobs"))?;
        ports.push(port);
    }
    crate::faults::store(ctx.platform, crate::faults::mask_of(&ports))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    ctx.log(
        "warn",
        "development fault injection changed",
        None,
        &body.fail.join(","),
    );
    let resp = json::response(StatusCode::OK, &serde_json::json!({ "fail": body.fail }))?;
    Ok(no_store(resp))
}

/// The body of `PUT /__dev/clock`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    /// How far ahead of the runtime's clock core reads time from now on (ms); 0 resets it.
    offset_ms: i64,
}

/// The largest offset accepted: a year either way (ms), so a typo cannot overflow a deadline.
const MAX_CLOCK_OFFSET_MS: i64 = 366 * 24 * 60 * 60 * 1000;

/// `PUT /__dev/clock` (development with `EDGEPLANE_FAULT_INJECTION=on` only): makes core's
/// clock read `offset_ms` ahead until the next change, so the suite can watch a one-time code,
/// a token or a session expire without waiting (`crate::faults::Shifted`).
pub(super) async fn dev_clock<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    if !crate::faults::enabled(ctx.platform.secrets()) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let body: ClockBody = json::parse_body(req)?;
    if body.offset_ms.abs() > MAX_CLOCK_OFFSET_MS {
        return Err(ApiError::invalid_field(
            "offset_ms",
            "is at most a year either way",
        ));
    }
    crate::faults::store_clock_offset(ctx.platform, body.offset_ms)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    ctx.log(
        "warn",
        "development clock offset changed",
        None,
        &body.offset_ms.to_string(),
    );
    let resp = json::response(
        StatusCode::OK,
        &serde_json::json!({ "offset_ms": body.offset_ms }),
    )?;
    Ok(no_store(resp))
}
