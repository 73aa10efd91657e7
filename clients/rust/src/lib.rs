//! What a Rust managed app links to, to use Edgeplane: verification of the access tokens
//! Edgeplane issues ([`TokenVerifier`]), OpenFeature OFREP flag evaluation with `ETag` caching
//! ([`FlagsClient`]), and a batching, exactly-once reporter of billing and audit events
//! ([`EventReporter`]).
//!
//! Every network call goes through the [`Http`] seam, and time, waiting and randomness are
//! parameters ([`Clock`], [`Sleep`], a seed), so the same code runs natively (feature `native`:
//! ureq on a thread, no async runtime required) and in a Cloudflare Worker (feature `worker`:
//! `fetch` or a service binding, a JS timer, `Date.now()`; see [`workers`]).
//! [`Introspector`] asks Edgeplane whether a token's session is still active, where a
//! revocation must show before the token expires.
//!
//! The futures are executor-agnostic and not `Send`: one thread, as in a Worker.
//!
//! ```no_run
//! use edgeplane_client::{BillingEvent, Clock, EventReporter, FlagsClient, SystemClock, TokenVerifier};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (bearer, api_key) = ("eyJ...", "ep_live_...");
//! futures_executor::block_on(async {
//!     let base = "https://edgeplane.example.com";
//!     let verifier = TokenVerifier::new(base, "edgeplane");
//!     let claims = verifier.verify(bearer, SystemClock.now_unix_secs()).await?;
//!
//!     let flags = FlagsClient::new(base, api_key);
//!     let context = serde_json::json!({ "tenantId": claims.tid, "targetingKey": claims.sub });
//!     let on = flags
//!         .evaluate_all(context.as_object().ok_or("not an object")?)
//!         .await?
//!         .bool_flag("new-checkout", false);
//!
//!     let billing = EventReporter::<BillingEvent, _, _>::new(base, api_key)
//!         .on_drop(|events, why| eprintln!("{} events dropped: {why:?}", events.len()));
//!     billing.report(BillingEvent {
//!         id: None,
//!         tenant_id: Some(claims.tid.clone()),
//!         event_type: if on { "checkout.new" } else { "checkout.old" }.into(),
//!         quantity: 1,
//!         timestamp: "2026-12-06T14:05:05Z".into(),
//!         metadata: None,
//!     })?;
//!     billing.flush().await;
//!     Ok(())
//! })
//! # }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod events;
pub mod flags;
pub mod http;
pub mod introspect;
pub mod time;
pub mod tokens;
#[cfg(feature = "worker")]
pub mod workers;

pub use events::{
    AuditEvent, BillingEvent, DropReason, Event, EventReporter, InvalidEventError, ReporterOptions,
    MAX_BATCH,
};
pub use flags::{FlagEvaluation, Flags, FlagsClient, FlagsError};
pub use http::{Http, HttpError, Method, Request, Response};
pub use introspect::{IntrospectError, Introspection, Introspector};
pub use time::{Clock, FixedClock, Sleep};
pub use tokens::{AccessTokenClaims, TokenError, TokenVerifier};

#[cfg(feature = "native")]
pub use http::NativeHttp;
#[cfg(feature = "native")]
pub use time::{NativeSleep, SystemClock};
#[cfg(feature = "worker")]
pub use workers::{random_seed, ServiceBinding, WorkerClock, WorkerFetch, WorkerSleep};

/// `base_url` without trailing slashes: Edgeplane's `iss` and every path are joined to it.
pub(crate) fn trim_base(base_url: &str) -> String {
    base_url.trim_end_matches('/').to_owned()
}
