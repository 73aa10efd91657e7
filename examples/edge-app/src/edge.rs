//! What the app keeps in its isolate between requests: the Edgeplane clients, all over one
//! service binding. Built on the first request and reused, so the key set, the flags' `ETag`s
//! and the introspection answers stay cached; a new isolate starts over.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use edgeplane_client::{
    AuditEvent, BillingEvent, Clock, EventReporter, FlagsClient, Introspector, ReporterOptions,
    ServiceBinding, TokenVerifier, WorkerClock, WorkerSleep,
};
use worker::{console_error, Env};

use crate::problem::Problem;

/// The service binding to Edgeplane's Worker (wrangler.toml `[[services]]`).
pub const BINDING: &str = "EDGEPLANE";

/// Every client shares the binding.
pub type Edge = Rc<ServiceBinding>;

/// The app's Edgeplane clients and clock.
pub struct EdgeApp {
    /// Access tokens, checked locally against Edgeplane's cached key set.
    pub verifier: TokenVerifier<Edge>,
    /// Whether a token's session is still active, answers kept for 1 s.
    pub introspector: Introspector<Edge>,
    /// The tenant's flags over OFREP, with `ETag` caching.
    pub flags: FlagsClient<Edge>,
    /// Billing events, flushed after the response.
    pub billing: EventReporter<BillingEvent, Edge, WorkerSleep>,
    /// Audit events, flushed after the response.
    pub audit: EventReporter<AuditEvent, Edge, WorkerSleep>,
    /// `Date.now()`, shifted in development only (see [`AppClock`]).
    pub clock: AppClock,
}

thread_local! {
    static APP: RefCell<Option<Rc<EdgeApp>>> = const { RefCell::new(None) };
}

/// The isolate's app, built from `env` on first use.
pub fn app(env: &Env) -> Result<Rc<EdgeApp>, Problem> {
    if let Some(app) = APP.with(|a| a.borrow().clone()) {
        return Ok(app);
    }
    let app = Rc::new(EdgeApp::from_env(env)?);
    APP.with(|a| *a.borrow_mut() = Some(Rc::clone(&app)));
    Ok(app)
}

impl EdgeApp {
    fn from_env(env: &Env) -> Result<Self, Problem> {
        let issuer =
            text(env, "EDGEPLANE_ISSUER").ok_or(Problem::Misconfigured("EDGEPLANE_ISSUER"))?;
        let audience = text(env, "EDGEPLANE_AUDIENCE")
            .unwrap_or_else(|| edgeplane_client::tokens::API_AUDIENCE.to_owned());
        let api_key =
            text(env, "EDGEPLANE_API_KEY").ok_or(Problem::Misconfigured("EDGEPLANE_API_KEY"))?;
        let edge: Edge = Rc::new(
            ServiceBinding::from_env(env, BINDING)
                .map_err(|_| Problem::Misconfigured(BINDING))?
                .timeout(Duration::from_secs(5)),
        );
        // Flushed inside `wait_until`, which Workers cancels 30 s after the response: a few
        // quick retries, then the events go to the log (see README, "Events").
        let options = ReporterOptions {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_attempts: Some(5),
            ..ReporterOptions::default()
        };
        let billing = EventReporter::with_seams(
            Rc::clone(&edge),
            WorkerSleep,
            &issuer,
            &api_key,
            options.clone(),
        )
        .on_drop(|events: &[BillingEvent], why| {
            console_error!("{} billing events dropped: {why:?}", events.len());
        });
        let audit =
            EventReporter::with_seams(Rc::clone(&edge), WorkerSleep, &issuer, &api_key, options)
                .on_drop(|events: &[AuditEvent], why| {
                    console_error!("{} audit events dropped: {why:?}", events.len());
                });
        Ok(Self {
            verifier: TokenVerifier::with_http(Rc::clone(&edge), &issuer, &audience),
            introspector: Introspector::with_http(Rc::clone(&edge), &issuer, &api_key),
            flags: FlagsClient::with_http(Rc::clone(&edge), &issuer, &api_key),
            billing,
            audit,
            clock: AppClock::from_env(env),
        })
    }
}

/// A var or a secret (both are strings to the Worker), if set and not empty.
fn text(env: &Env, name: &str) -> Option<String> {
    let value = env
        .secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()?;
    Some(value).filter(|v| !v.trim().is_empty())
}

/// `Date.now()`, plus `CLOCK_OFFSET_SECS` when `EDGE_APP_ENV` is `development`: the tests run
/// a second copy of the app "later" to see a genuine token expire without waiting 15 minutes.
/// Ignored in any other environment.
#[derive(Debug, Clone, Copy)]
pub struct AppClock {
    offset_ms: i64,
}

impl AppClock {
    fn from_env(env: &Env) -> Self {
        let development = text(env, "EDGE_APP_ENV").as_deref() == Some("development");
        let offset_secs = text(env, "CLOCK_OFFSET_SECS")
            .filter(|_| development)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        Self {
            offset_ms: offset_secs.saturating_mul(1000),
        }
    }
}

impl Clock for AppClock {
    fn now_unix_secs(&self) -> u64 {
        self.now_unix_millis() / 1000
    }

    fn now_unix_millis(&self) -> u64 {
        let now = i64::try_from(WorkerClock.now_unix_millis()).unwrap_or(i64::MAX);
        u64::try_from(now.saturating_add(self.offset_ms)).unwrap_or(0)
    }
}
