//! Edgeplane on Cloudflare Workers. This crate only adapts: it turns the Worker's bindings into
//! core's ports ([`WorkerPlatform`]), converts requests and responses, and hands every request
//! and cron run to `edgeplane-core`. No domain logic lives here.
//!
//! Bindings (`wrangler.toml`): `DB` (D1), `FLAGS` (KV), `EVENTS` (Durable Object class
//! [`EventStream`], SQLite storage), `ARCHIVE` (R2).

mod convert;
mod d1;
mod do_sql;
mod events;
mod fetch;
mod kv;
mod panic;
mod platform;
mod poller;
mod r2;
mod runtime;
mod signatures;
mod sql_js;

pub use d1::D1Sql;
pub use do_sql::DoSql;
pub use events::{DurableEventLog, EventStream};
pub use fetch::WorkerHttp;
pub use kv::KvStore;
pub use platform::WorkerPlatform;
pub use poller::HealthPoller;
pub use r2::R2Blobs;
pub use runtime::{ConsoleLogger, EnvSecrets, WorkerClock, WorkerRandom};
pub use signatures::WebCryptoVerifier;

use edgeplane_core::http::{is_valid_request_id, ApiError, REQUEST_ID};
use edgeplane_core::ports::{Clock, Logger, Platform};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use worker::{event, web_sys, Env, ScheduleContext, ScheduledEvent};

/// The Worker's `fetch` handler. Hand-written rather than `#[event(fetch)]` so the response
/// promise is settled from Rust, which lets a panic still be answered (see the `panic` module),
/// and so a request that waits for nothing is answered at once, with no promise: the `Response`
/// itself is returned (`panic::answer`; ~20 µs of a request, bench/RESULTS.md 2026-12-07).
/// `body` is the request's body when the worker's entry (`worker/js/entry.js`) has read it
/// already (a small one of declared length); otherwise the body is read here.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(
    req: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
    body: Option<js_sys::Uint8Array>,
) -> wasm_bindgen::JsValue {
    let head = convert::Head::read(&req);
    let request_id = head
        .header(REQUEST_ID)
        .filter(|id| is_valid_request_id(id))
        .map_or_else(|| edgeplane_core::ids::new_id(&WorkerRandom), str::to_owned);
    let path = head.url().parse::<http::Uri>().map(|u| u.path().to_owned());
    // Decided before anything is prepared for it: most requests (the hot paths among them)
    // have no work after the response, and a `waitUntil` task costs a promise chain each.
    // The isolate's request metrics go to storage every ten seconds or so, after the answer
    // of the request that finds them due (FR-SYS-005).
    let flush_metrics = edgeplane_core::metrics::claim_flush(WorkerClock.now_ms(), false);
    let after = path
        .ok()
        .filter(|path| flush_metrics || edgeplane_core::http::works_after(head.method(), path))
        .map(|path| (head.method().to_owned(), path, env.clone()));
    let response = panic::answer(request_id.clone(), panic_answer, async move {
        serve(&req, &head, body, &env, &request_id).await
    });
    if let Some((method, path, env)) = after {
        let answered = js_sys::Promise::resolve(&response);
        let work = work_after(answered, method, path, env, flush_metrics);
        let _ = ctx.wait_until(&work);
    }
    response
}

/// Once the response is out: after a successful write, forward the audit outbox
/// (FR-LOG-003); deliver the mail the request may have queued (FR-AUTH-004); write the
/// isolate's request metrics when this request claimed them.
fn work_after(
    answered: js_sys::Promise,
    method: String,
    path: String,
    env: Env,
    flush_metrics: bool,
) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let status = wasm_bindgen_futures::JsFuture::from(answered)
            .await
            .ok()
            .and_then(|r| r.dyn_into::<web_sys::Response>().ok())
            .map_or(500, |r| r.status());
        let forward = edgeplane_core::http::forward_after(&method, &path, status);
        let deliver = edgeplane_core::http::delivers_after(&method, &path);
        if !forward && !deliver && !flush_metrics {
            return Ok(wasm_bindgen::JsValue::UNDEFINED);
        }
        let Ok(platform) = WorkerPlatform::for_env(&env) else {
            return Ok(wasm_bindgen::JsValue::UNDEFINED);
        };
        if flush_metrics {
            let now = platform.clock().now_ms();
            if let Err(e) = edgeplane_core::metrics::flush(&*platform, now).await {
                log_error("-", "request metrics flush failed", &e.to_string());
            }
        }
        if forward {
            let now = platform.clock().now_ms();
            if let Err(e) = edgeplane_core::events::jobs::forward_outbox(&*platform, now).await {
                log_error(
                    "-",
                    "audit outbox forward after request failed",
                    &e.to_string(),
                );
            }
        }
        if forward && edgeplane_core::http::wakes_app_health(&method, &path) {
            poller::arm(&env).await;
        }
        if forward || deliver {
            if let Err(e) = edgeplane_core::http::after_response(&*platform, &method, &path).await {
                log_error("-", "mail delivery after request failed", &e.to_string());
            }
        }
        Ok(wasm_bindgen::JsValue::UNDEFINED)
    })
}

/// The answer to a request lost to a panic: core's problem+json 500.
fn panic_answer(request_id: &str) -> http::Response<Vec<u8>> {
    problem(ApiError::internal("panic"), request_id)
}

/// A problem response with the request id header (core adds it only to what it serves).
fn problem(problem: ApiError, request_id: &str) -> http::Response<Vec<u8>> {
    let mut resp = problem.into_response(request_id);
    if let Ok(id) = http::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(REQUEST_ID, id);
    }
    resp
}

/// Serves one request through core; every failure of the adapter itself becomes a problem.
async fn serve(
    req: &web_sys::Request,
    head: &convert::Head,
    body: Option<js_sys::Uint8Array>,
    env: &Env,
    request_id: &str,
) -> web_sys::Response {
    let resp = match (
        WorkerPlatform::for_env(env),
        convert::to_http_request(req, head, body, request_id).await,
    ) {
        (Ok(platform), Ok(mut http_req)) => {
            // NFR-SEC-006: the sign-in routes' risk check reads where the request came from;
            // only the runtime's `request.cf` says so, never a header.
            let (method, path) = (http_req.method().as_str(), http_req.uri().path());
            if edgeplane_core::http::needs_location(method, path) {
                let location = convert::cf_location(req);
                http_req.extensions_mut().insert(location);
            }
            edgeplane_core::handle(&*platform, http_req).await
        }
        (Err(e), _) => adapter_error(
            ApiError::internal("binding missing"),
            request_id,
            &e.to_string(),
        ),
        (_, Err(e)) => adapter_error(
            ApiError::invalid_input("The request could not be read."),
            request_id,
            &e,
        ),
    };
    match convert::to_web_response(resp) {
        Ok(resp) => resp,
        Err(e) => {
            log_error(request_id, "response conversion failed", &e);
            convert::last_resort()
        }
    }
}

/// A problem response for a failure before core was reached, logged with its cause.
fn adapter_error(error: ApiError, request_id: &str, cause: &str) -> http::Response<Vec<u8>> {
    log_error(request_id, "adapter error", cause);
    problem(error, request_id)
}

/// Logs an adapter failure as one JSON line.
fn log_error(request_id: &str, msg: &str, cause: &str) {
    let line = serde_json::json!({ "level": "error", "msg": msg, "request_id": request_id, "cause": cause });
    ConsoleLogger.line(&line.to_string());
}

/// The cron trigger: runs core's periodic jobs and logs their report.
#[event(scheduled)]
pub async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // A panic here still answers any request in flight in this instance.
    panic::install_hook();
    let cron = event.cron();
    match WorkerPlatform::from_env(&env) {
        Ok(platform) => {
            let (report, causes) = edgeplane_core::http::run_scheduled(&platform, &cron).await;
            // The apps' health checks run every few seconds from their own object's alarm.
            poller::arm(&env).await;
            let line = serde_json::json!({
                "level": if report.is_ok() { "info" } else { "error" },
                "msg": "scheduled run",
                "report": report,
                "causes": causes,
            });
            platform.logger().line(&line.to_string());
        }
        Err(e) => log_error(
            "-",
            "scheduled run skipped: binding missing",
            &e.to_string(),
        ),
    }
}
