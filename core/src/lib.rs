//! Edgeplane's core: the domain logic and the HTTP API of the control plane, written once and
//! served by the Workers adapter, the Spin adapter and native tests alike. Core reaches the world
//! only through the traits in [`ports`]; it depends on no runtime crate.

#![forbid(unsafe_code)]

pub mod apps;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod crypto;
pub mod delivery;
pub mod edge;
pub mod events;
pub mod flags;
pub mod health;
pub mod http;
pub mod ids;
pub mod jws;
pub mod kernel;
pub mod mail;
pub mod migrations;
pub mod net;
pub mod oidc;
pub mod ports;
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

pub use crate::http::handle;
