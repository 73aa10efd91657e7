//! Edgeplane's core: the domain logic and the HTTP API of the control plane, written once and
//! served by the Workers adapter, the Spin adapter and native tests alike. Core reaches the world
//! only through the traits in [`ports`]; it depends on no runtime crate.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod anomalies;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod console;
pub mod crypto;
pub mod delivery;
pub mod edge;
pub mod events;
pub mod faults;
pub mod flags;
pub mod health;
pub mod http;
pub mod ids;
pub mod journeys;
pub mod jws;
pub mod kernel;
pub mod mail;
pub mod metrics;
pub mod migrations;
pub mod net;
pub mod oidc;
pub mod ports;
pub mod risk;
pub mod scheduled;
pub mod sessions;
pub mod signin;
pub mod sso;
pub mod tenants;
pub mod throttle;
pub mod time;
pub mod tokens;
pub mod users;
pub mod webauthn;

#[cfg(test)]
pub mod testing;

/// Serves one request: the web consoles under `/console/` ([`console`]), everything else the
/// API ([`http::handle`]). Never fails: every error is an answer.
pub async fn handle<P: ports::Platform>(platform: &P, req: http::Request) -> http::Response {
    faults::load(platform).await;
    if console::is_console_path(req.uri().path()) {
        console::handle(platform, req).await
    } else {
        http::handle(platform, req).await
    }
}
