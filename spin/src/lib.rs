//! Edgeplane on Spin (spin-sdk 5.2, WASI 0.2): turns Spin's SQLite, key-value and variables into
//! core's ports and serves core's router. Spin has no Durable Objects, R2 or cron, so the event
//! log and archive objects live in the SQLite database and the periodic jobs run through
//! `POST /internal/scheduled`. Migrations from `d1-migrations/` are applied on a request's first
//! SQL statement, so the hot paths that need none never open the database.

mod adapters;
mod convert;
mod fetch;

use adapters::SpinPlatform;
use edgeplane_core::ports::{Clock, Platform};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

/// The HTTP entry point: one component instance per request, as Spin runs it. The request is
/// streamed (its body read only up to core's limit), the response written and finished, and
/// then the work that follows an answer runs: Spin keeps the instance until this returns, and
/// the client already has its response. What that work does not finish (a host that ends the
/// instance with the response), the scheduled run does.
#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let platform = SpinPlatform::new();
    let req = match convert::to_http_request(req).await {
        Ok(req) => req,
        Err(cause) => return convert::respond(out, adapters::unreadable_request(&cause)),
    };
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let resp = edgeplane_core::handle(&platform, req).await;
    convert::respond(out, resp);
    if let Err(e) = edgeplane_core::http::after_response(&platform, &method, &path).await {
        adapters::log_error("mail delivery after request failed", &e.to_string());
    }
    // A sampled answer (or a 5xx) is written by its own instance: there is no later one.
    let now = platform.clock().now_ms();
    if edgeplane_core::metrics::claim_flush(now, true) {
        if let Err(e) = edgeplane_core::metrics::flush(&platform, now).await {
            adapters::log_error("request metrics flush failed", &e.to_string());
        }
    }
}
