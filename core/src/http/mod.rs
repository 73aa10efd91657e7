//! The HTTP API over `http` types: routing, JSON bodies, problem details, request ids and the
//! request log. The same [`handle`] serves Workers, Spin and native tests; it is the only part
//! of core that knows status codes.

pub mod body;
pub mod json;
pub mod openapi;
pub mod problem;
pub mod router;

mod alerts;
mod app_health;
mod apps;
mod callers;
mod client_addr;
mod dev;
mod events;
mod flags;
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
mod journeys;
pub mod login_page;
mod metrics;
mod oidc;
mod operator;
mod passwords;
mod reply;
pub(crate) mod risk;
mod sign_in;
mod sign_in_notice;
pub mod sign_in_origin;
mod sso;
mod tenant_users;
mod tenants;
mod tokens;
mod totp;
mod webauthn;

pub use handlers::constant_time_eq;
pub use tenants::{links_under, INVITATION_PAGE, PASSWORD_RESET_PAGE};

#[cfg(test)]
mod adaptive_tests;
#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod hot_path_tests;
#[cfg(test)]
mod residency_tests;

use ::http::{header, HeaderValue, Method, StatusCode};

use crate::auth::OperatorPrincipal;
use crate::ids;
use crate::mail::queue::{deliver_due, DeliveryError};
use crate::ports::{Clock, Logger, Platform, Secrets};
pub use body::{BodyTooLarge, LimitedBody};
pub use problem::{ApiError, ProblemType};
use router::{Match, Route};

/// A request as core sees it: the whole body is read by the adapter, through a [`LimitedBody`].
pub type Request = ::http::Request<Vec<u8>>;
/// A response as core produces it.
pub type Response = ::http::Response<Vec<u8>>;

/// Largest request body accepted, in bytes (413 above it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The request id header, generated when absent or malformed and echoed on every response.
pub const REQUEST_ID: &str = "x-request-id";

/// Whether a request may have queued mail for [`after_response`] to deliver: the
/// forgot-password routes, and the sign-in steps that may mail a one-time code or a new
/// sign-in notice (NFR-SEC-006), whatever they answered. Cheap (no storage), so a runtime can
/// ask it before preparing anything for the work after a response.
pub fn delivers_after(method: &str, path: &str) -> bool {
    use router::RouteId as R;
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return false;
    };
    match router::find(&method, path) {
        Match::Found { route, .. } => matches!(
            route.id,
            R::PasswordForgot
                | R::OidcLoginForgot
                | R::AuthLogin
                | R::MfaVerify
                | R::OidcLoginPassword
                | R::OidcLoginMfa
                | R::WebAuthnLoginVerify
                | R::SsoCallback
        ),
        _ => false,
    }
}

/// Whether the risk check of a request's route reads its location (NFR-SEC-006): the sign-in
/// and refresh routes. A runtime that must copy the location out of a platform object
/// (Workers' `request.cf`) asks this first, so no other request pays for it.
pub fn needs_location(method: &str, path: &str) -> bool {
    use router::RouteId as R;
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return false;
    };
    match router::find(&method, path) {
        Match::Found { route, .. } => matches!(
            route.id,
            R::AuthLogin
                | R::AuthRefresh
                | R::OidcLoginPassword
                | R::WebAuthnLoginVerify
                | R::SsoCallback
                | R::OidcToken
        ),
        _ => false,
    }
}

/// Whether a request may leave work for after its response, whatever it answers: outbox
/// forwarding after a write ([`forward_after`]) or mail
/// ([`delivers_after`]). Decided from the method and path alone, before anything is prepared:
/// the hot paths (flag reads and evaluation, introspection, JWKS, liveness) answer `false`, so
/// a runtime builds no after-response task for them.
pub fn works_after(method: &str, path: &str) -> bool {
    may_forward_after(method, path) || delivers_after(method, path)
}

/// Whether a successful answer to this request registered an app's health URL
/// (`crate::apps::health`), so a runtime whose checks run on a timer of their own (Workers)
/// should wake it rather than wait for the next scheduled run.
pub fn wakes_app_health(method: &str, path: &str) -> bool {
    method == "PUT" && path.starts_with("/v1/apps/") && path.ends_with("/health-check")
}

/// Whether a runtime that can work after answering (Workers' `waitUntil`) should forward the
/// outbox after this request: a successful write may have added outbox rows (FR-LOG-003), and
/// forwarding them then keeps the audit stream minutes fresher than the cron alone
/// ([`crate::events::jobs::forward_outbox`]). Event
/// ingestion is excluded: it writes no outbox rows and is the hot write path. So are the POSTs
/// that only read, flag evaluation (OFREP) and token introspection: their path must read no D1.
pub fn forward_after(method: &str, path: &str, status: u16) -> bool {
    status < 400 && may_forward_after(method, path)
}

/// [`forward_after`] before the status is known: whether a successful answer to this request
/// would forward the outbox. Lets a runtime skip preparing any work after the response.
pub fn may_forward_after(method: &str, path: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
        && !matches!(
            path,
            "/v1/billing/events" | "/v1/audit/events" | "/oauth/introspect"
        )
        && !path.starts_with("/ofrep/")
}

/// Work done once the response is out, on runtimes that can keep working after answering
/// (Workers' `waitUntil`; Spin after the response body is finished): after a forgot-password
/// form ([`delivers_after`]), the reset mail it may have queued is delivered
/// ([`crate::mail::queue`]), so the answer never waits for the mail API, whether or not an
/// account was found (and whatever the status: the queue holds only what a batch committed).
/// Whatever this does not finish, the scheduled run delivers. Returns the messages delivered;
/// an error is for the log.
pub async fn after_response<P: Platform>(
    platform: &P,
    method: &str,
    path: &str,
) -> Result<u64, DeliveryError> {
    if !delivers_after(method, path) {
        return Ok(0);
    }
    deliver_due(platform, platform.clock().now_ms()).await
}

/// Per-request context handed to handlers.
pub struct Ctx<'a, P: Platform> {
    /// The runtime's ports.
    pub platform: &'a P,
    /// The correlation id of this request.
    pub request_id: String,
    /// Path parameters of the matched route.
    pub params: Vec<(String, String)>,
    /// The tenant the request acts on, once known (for the log).
    pub tenant_id: Option<String>,
    /// The matched route's method and path template (for the log and audit records).
    pub route: String,
    /// An operator or auditor the web console already authenticated (its session), who acts
    /// through this request in place of a bearer token: see [`handle_as`].
    pub(crate) delegate: Option<OperatorPrincipal>,
}

impl<P: Platform> Ctx<'_, P> {
    /// A log line about this request beyond its request line: what happened (`msg`), the
    /// domain error's code when there is one, and the cause. Never a secret or personal data.
    pub(crate) fn log(&self, level: &str, msg: &str, code: Option<&str>, cause: &str) {
        let line = serde_json::json!({
            "level": level, "msg": msg, "request_id": self.request_id, "code": code, "error": cause,
        });
        self.platform.logger().line(&line.to_string());
    }
}

impl<P: Platform> Ctx<'_, P> {
    /// A path parameter by name (empty if the route has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// True only where `EDGEPLANE_ENV` is `development` (`.dev.vars`, the test harnesses); a
/// deployment's `wrangler.toml` and `spin.toml` say `production`. Here rather than beside the
/// dispatch, so the route files need not import the module that imports them.
pub(crate) fn is_development<P: Platform>(ctx: &Ctx<'_, P>) -> bool {
    ctx.platform.secrets().get("EDGEPLANE_ENV").as_deref() == Some("development")
}

/// The scheduled run at the current time with the synthetic journey through this layer
/// (NFR-MON-003): what a runtime's cron trigger runs.
pub async fn run_scheduled<P: Platform>(
    platform: &P,
    cron: &str,
) -> (crate::scheduled::ScheduledReport, Vec<String>) {
    let now = platform.clock().now_ms();
    crate::scheduled::run_with(platform, cron, now, &journeys::ApiJourney).await
}

/// Serves one request. Never fails: every error becomes a problem+json response, and every
/// response carries `X-Request-Id` and the hardening headers (`nosniff`, and HSTS over https).
/// Writes one JSON log line.
pub async fn handle<P: Platform>(platform: &P, req: Request) -> Response {
    serve_request(platform, req, None, Traffic::Customer).await
}

/// Whose traffic a request is, for the request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// A client's request: counted in the request metrics (FR-SYS-005).
    Customer,
    /// A synthetic journey's request (NFR-MON-003): served and logged like any other, but not
    /// counted, so the key services' error rate and p99 show what customers get.
    Synthetic,
}

/// Serves one request of a synthetic journey (`crate::journeys`): the same dispatch as
/// [`handle`] (router, caller checks, storage), left out of the request metrics. With
/// `operator`, operator routes act for that principal as in [`handle_as`].
pub async fn handle_synthetic<P: Platform>(
    platform: &P,
    req: Request,
    operator: Option<OperatorPrincipal>,
) -> Response {
    serve_request(platform, req, operator, Traffic::Synthetic).await
}

/// Serves one API request on behalf of an operator or auditor the web console signed in
/// (`crate::console`): routes for operators check the principal's role exactly as they check a
/// bearer token's, and every other caller the route declares is asked for its own credentials,
/// as usual. The request's `Authorization` header is not consulted for operator routes.
pub async fn handle_as<P: Platform>(
    platform: &P,
    req: Request,
    operator: OperatorPrincipal,
) -> Response {
    serve_request(platform, req, Some(operator), Traffic::Customer).await
}

async fn serve_request<P: Platform>(
    platform: &P,
    req: Request,
    delegate: Option<OperatorPrincipal>,
    traffic: Traffic,
) -> Response {
    let started = platform.clock().now_ms();
    let request_id = request_id(&req, platform);
    let method = req.method().clone();
    let is_head = method == Method::HEAD;
    let https = req.uri().scheme_str() == Some("https");

    let mut ctx = Ctx {
        platform,
        request_id,
        params: Vec::new(),
        tenant_id: None,
        route: String::new(),
        delegate,
    };
    let (template, result) = match router::find(&method, req.uri().path()) {
        Match::Found { route, params } => {
            ctx.params = params;
            ctx.route = format!("{} {}", route.method, route.path);
            (route.path, serve(&mut ctx, route, req).await)
        }
        Match::MethodNotAllowed { path, allow } => (path, Err(method_not_allowed(&allow))),
        Match::NotFound => (
            "<unmatched>",
            Err(ApiError::not_found("No route matches this path.")),
        ),
    };

    let (mut resp, cause) = match result {
        Ok(resp) => (resp, None),
        Err(e) => {
            let cause = e.cause.clone();
            (e.into_response(&ctx.request_id), cause)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    hardening(&mut resp, https);
    if is_head {
        resp.body_mut().clear();
    }
    let duration = platform.clock().now_ms().saturating_sub(started);
    if traffic == Traffic::Customer {
        metrics::count(
            platform,
            &method,
            template,
            resp.status().as_u16(),
            duration,
        );
    }
    log_request(
        platform,
        &ctx,
        &method,
        template,
        resp.status(),
        duration,
        cause,
    );
    resp
}

async fn serve<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    route: &Route,
    req: Request,
) -> Result<Response, ApiError> {
    if body::is_too_large(&req) {
        return Err(ApiError::invalid_input(format!(
            "The request body exceeds {MAX_BODY_BYTES} bytes."
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    if route.path.starts_with("/__dev/") && !is_development(ctx) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let principal = callers::authorize(ctx, route.caller, &req).await?;
    handlers::dispatch(ctx, route.id, req, principal).await
}

/// Headers every answer carries unless its handler chose otherwise: `nosniff` (a JSON body is
/// never run as a script or rendered as HTML by a browser that guesses), and over https
/// `Strict-Transport-Security` (a browser that has seen Edgeplane never talks to it in clear).
pub(crate) fn hardening(resp: &mut Response, https: bool) {
    let headers = resp.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if https {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            ));
    }
}

fn method_not_allowed(allow: &[Method]) -> ApiError {
    let list = allow
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut e = ApiError::invalid_input(format!("This path accepts only: {list}."))
        .with_status(StatusCode::METHOD_NOT_ALLOWED);
    if let Ok(v) = HeaderValue::from_str(&list) {
        e = e.with_header(header::ALLOW, v);
    }
    e
}

/// Takes a well-formed incoming `X-Request-Id` (so a caller's trace continues) or makes one.
pub(crate) fn request_id<P: Platform>(req: &Request, platform: &P) -> String {
    let incoming = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v));
    match incoming {
        Some(v) => v.to_owned(),
        None => ids::new_id(platform.random()),
    }
}

/// 1 to 128 characters of `[A-Za-z0-9._:-]`: safe to echo and to log.
pub fn is_valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// One structured line per request: no path values, query, headers or bodies (they may hold
/// PII or secrets), only the route template. Written by hand into one string: every request
/// pays for it, and a `serde_json::Value` map costs an allocation per field.
/// The edge's hot routes: answered by the thousand per second per isolate, each already in the
/// runtime's own invocation log (Workers Logs, Spin's access log) with its status and duration.
const HOT_ROUTES: [&str; 7] = [
    "/health",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/ofrep/v1/evaluate/flags",
    "/ofrep/v1/evaluate/flags/{key}",
    "/v1/flags",
    "/oauth/introspect",
];

/// A hot-route answer slower than this is logged even when it succeeded (ms).
pub const SLOW_HOT_ROUTE_MS: i64 = 250;

/// Whether a request goes unlogged: a hot route answered successfully (below 400) and quickly.
/// Its line would cost about as much as serving it (a `console.log` on Workers), and says no
/// more than the runtime's invocation log; errors and slow answers are always logged.
fn is_quiet(route: &str, status: StatusCode, duration_ms: i64) -> bool {
    HOT_ROUTES.contains(&route) && status.as_u16() < 400 && duration_ms < SLOW_HOT_ROUTE_MS
}

fn log_request<P: Platform>(
    platform: &P,
    ctx: &Ctx<'_, P>,
    method: &Method,
    route: &str,
    status: StatusCode,
    duration_ms: i64,
    cause: Option<String>,
) {
    // On Workers the clock moves only across I/O, so this is the storage time the check adds
    // (its reads and its one batch), which is what it costs a sign-in there; elsewhere it
    // includes the scoring too.
    let risk_ms = crate::risk::take_duration(&ctx.request_id);
    if is_quiet(route, status, duration_ms) {
        return;
    }
    let line = RequestLog {
        ts: platform.clock().now_ms(),
        method: method.as_str(),
        route,
        status: status.as_u16(),
        duration_ms,
        request_id: &ctx.request_id,
        tenant_id: ctx.tenant_id.as_deref(),
        risk_ms,
        error: cause.as_deref(),
    }
    .to_json();
    platform.logger().line(&line);
}

/// The fields of a request's log line.
struct RequestLog<'a> {
    ts: i64,
    method: &'a str,
    route: &'a str,
    status: u16,
    duration_ms: i64,
    request_id: &'a str,
    tenant_id: Option<&'a str>,
    /// The time the sign-in's risk check took (NFR-SEC-006), on lines of requests that ran it.
    risk_ms: Option<i64>,
    error: Option<&'a str>,
}

impl RequestLog<'_> {
    /// The line as one JSON object; `tenant_id`, `risk_ms` and `error` only when known.
    fn to_json(&self) -> String {
        use std::fmt::Write as _;
        let level = match self.status {
            500.. => "error",
            400..=499 => "warn",
            _ => "info",
        };
        let mut out = String::with_capacity(192);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r#"{{"ts":{},"level":"{level}","msg":"request","method":"#,
            self.ts
        );
        push_json_str(&mut out, self.method);
        out.push_str(r#","route":"#);
        push_json_str(&mut out, self.route);
        let _ = write!(
            out,
            r#","status":{},"duration_ms":{},"request_id":"#,
            self.status, self.duration_ms
        );
        push_json_str(&mut out, self.request_id);
        if let Some(t) = self.tenant_id {
            out.push_str(r#","tenant_id":"#);
            push_json_str(&mut out, t);
        }
        if let Some(ms) = self.risk_ms {
            let _ = write!(out, r#","risk_ms":{ms}"#);
        }
        if let Some(e) = self.error {
            out.push_str(r#","error":"#);
            push_json_str(&mut out, e);
        }
        out.push('}');
        out
    }
}

/// Appends `s` as a JSON string literal (RFC 8259: quote, backslash and control characters
/// escaped; everything else as it is, UTF-8).
fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_is_forwarded_after_successful_writes_only() {
        assert!(forward_after("POST", "/v1/tenants", 201));
        assert!(forward_after("DELETE", "/v1/tenants/x", 202));
        assert!(!forward_after("GET", "/v1/tenants", 200));
        assert!(!forward_after("POST", "/v1/tenants", 409));
        assert!(!forward_after("POST", "/v1/billing/events", 202));
        assert!(!forward_after("POST", "/v1/audit/events", 202));
        // Read-only POSTs on hot paths (FR-FLAG-002, RFC 7662) read no D1 after answering either.
        assert!(!forward_after("POST", "/ofrep/v1/evaluate/flags", 200));
        assert!(!forward_after(
            "POST",
            "/ofrep/v1/evaluate/flags/new-checkout",
            200
        ));
        assert!(!forward_after("POST", "/oauth/introspect", 200));
    }

    /// The hand-written line is the JSON a serializer would write, whatever the strings hold.
    #[test]
    fn request_log_lines_are_json_with_every_field() {
        let cause = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} é \u{1f600}";
        let line = RequestLog {
            ts: 1_700_000_000_123,
            method: "POST",
            route: "/v1/tenants/{id}",
            status: 503,
            duration_ms: 12,
            request_id: "req-1",
            tenant_id: Some("t-1"),
            risk_ms: Some(3),
            error: Some(cause),
        }
        .to_json();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ts": 1_700_000_000_123_i64, "level": "error", "msg": "request", "method": "POST",
                "route": "/v1/tenants/{id}", "status": 503, "duration_ms": 12,
                "request_id": "req-1", "tenant_id": "t-1", "risk_ms": 3, "error": cause,
            })
        );
        let line = RequestLog {
            ts: 1,
            method: "GET",
            route: "/health",
            status: 200,
            duration_ms: 0,
            request_id: "r",
            tenant_id: None,
            risk_ms: None,
            error: None,
        }
        .to_json();
        assert_eq!(
            line,
            r#"{"ts":1,"level":"info","msg":"request","method":"GET","route":"/health","status":200,"duration_ms":0,"request_id":"r"}"#
        );
    }

    #[test]
    fn request_ids_are_checked_before_echoing() {
        assert!(is_valid_request_id("abc-123_x.y:z"));
        assert!(is_valid_request_id(&"a".repeat(128)));
        assert!(!is_valid_request_id(&"a".repeat(129)));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("a b"));
        assert!(!is_valid_request_id("a\nb"));
        assert!(!is_valid_request_id("é"));
    }

    /// Only the forgot-password forms leave mail to deliver after the answer; the hot paths
    /// have no work after it.
    #[test]
    fn only_forgot_password_routes_deliver_after_the_answer() {
        assert!(delivers_after("POST", "/v1/auth/password/forgot"));
        assert!(delivers_after("POST", "/oauth/authorize/forgot"));
        assert!(!delivers_after("GET", "/v1/auth/password/forgot"));
        assert!(!delivers_after("POST", "/ofrep/v1/evaluate/flags"));
        assert!(!delivers_after("GET", "/v1/flags"));
        assert!(!delivers_after("POST", "/oauth/introspect"));
        assert!(!delivers_after("NOT A METHOD", "/v1/auth/password/forgot"));
        // NFR-SEC-006: an SSO sign-in may mail a step-up code or a new sign-in notice.
        assert!(delivers_after("GET", "/v1/auth/sso/callback"));
    }

    /// The hot paths prepare nothing for after the answer; writes and the forgot-password
    /// forms do.
    #[test]
    fn hot_paths_leave_no_work_after_the_answer() {
        for (method, path) in [
            ("GET", "/health"),
            ("GET", "/v1/flags"),
            ("POST", "/ofrep/v1/evaluate/flags"),
            ("POST", "/ofrep/v1/evaluate/flags/dark-mode"),
            ("POST", "/oauth/introspect"),
            ("GET", "/.well-known/jwks.json"),
            ("POST", "/v1/billing/events"),
        ] {
            assert!(!works_after(method, path), "{method} {path}");
        }
        assert!(works_after("POST", "/v1/tenants"));
        assert!(works_after("PUT", "/v1/tenants/t1/flags/dark-mode"));
        assert!(works_after("POST", "/v1/auth/password/forgot"));
    }
}
