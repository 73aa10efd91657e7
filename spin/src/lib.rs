//! Edgeplane on Spin (spin-sdk 5.2, WASI 0.2): turns Spin's SQLite, key-value and variables into
//! core's ports and serves core's router. Spin has no Durable Objects, R2 or cron, so the event
//! log and archive objects live in the SQLite database and the periodic jobs run through
//! `POST /internal/scheduled`. Migrations from `d1-migrations/` are applied on first use.

mod adapters;
mod fetch;

use adapters::SpinPlatform;
use spin_sdk::http_component;

/// The HTTP entry point: one component instance per request, as Spin runs it.
#[http_component]
async fn handle(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    match SpinPlatform::open().await {
        Ok(platform) => edgeplane_core::handle(&platform, req).await,
        Err(cause) => adapters::startup_failure(&cause),
    }
}
