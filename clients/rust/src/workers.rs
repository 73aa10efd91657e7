//! The seams on Cloudflare Workers (feature `worker`, workers-rs 0.8.7): [`WorkerFetch`] sends
//! through `fetch` (the public network), [`ServiceBinding`] through a `worker::Fetcher` (a
//! service binding: the request goes to the bound Worker inside Cloudflare, with no public
//! network hop and no DNS), [`WorkerSleep`] waits on a JS timer and [`WorkerClock`] reads
//! `Date.now()`. [`random_seed`] gives the reporter's seed from `crypto.getRandomValues`.
//!
//! Both HTTP seams build the same request: redirects returned rather than followed (the
//! seam's contract), a timeout through an `AbortSignal` (10 s unless told), and the body read
//! up to 16 MiB. Through a service binding only the path and query of the URL matter to the
//! bound Worker, so the clients keep using Edgeplane's public base URL (also the tokens'
//! issuer) and the same code runs with either seam.

use std::time::Duration;

use futures_util::StreamExt;
use wasm_bindgen::JsCast as _;
use worker::{web_sys, Fetch, Fetcher, ResponseBody};

use crate::http::{Http, HttpError, Request, Response};
use crate::time::{Clock, Sleep};

/// How long a request may take, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read, in bytes (the native seam's limit too).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// `fetch` to the public network, as any Worker subrequest.
#[derive(Debug, Clone, Copy)]
pub struct WorkerFetch {
    timeout: Duration,
}

impl Default for WorkerFetch {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

impl WorkerFetch {
    /// A seam whose requests are aborted after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl Http for WorkerFetch {
    async fn send(&self, req: Request) -> Result<Response, HttpError> {
        let request = build(&req, self.timeout)?;
        let response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| HttpError::new(e.to_string()))?;
        read(response).await
    }
}

/// A service binding to another Worker (`[[services]]` in wrangler.toml, e.g. `EDGEPLANE`):
/// `env.service("EDGEPLANE")` wrapped as a seam.
#[derive(Debug, Clone)]
pub struct ServiceBinding {
    fetcher: Fetcher,
    timeout: Duration,
}

impl ServiceBinding {
    /// A seam over `fetcher`, with the default timeout.
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The binding named `name` in `env` (a service binding), if there is one.
    pub fn from_env(env: &worker::Env, name: &str) -> Result<Self, HttpError> {
        env.service(name)
            .map(Self::new)
            .map_err(|e| HttpError::new(format!("no service binding {name}: {e}")))
    }

    /// Aborts requests after `timeout` instead of 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Http for ServiceBinding {
    async fn send(&self, req: Request) -> Result<Response, HttpError> {
        let request = build(&req, self.timeout)?;
        let response = self
            .fetcher
            .fetch_request(request)
            .await
            .map_err(|e| HttpError::new(e.to_string()))?;
        read(response).await
    }
}

/// The seam's request as a Workers `Request`: method, headers, body, `redirect: "manual"` and
/// an `AbortSignal` that fires after `timeout`.
fn build(req: &Request, timeout: Duration) -> Result<worker::Request, HttpError> {
    let refused = |e: wasm_bindgen::JsValue| HttpError::new(format!("invalid request: {e:?}"));
    let headers = web_sys::Headers::new().map_err(refused)?;
    for (name, value) in &req.headers {
        headers.append(name, value).map_err(refused)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(req.method.as_str());
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if !req.body.is_empty() {
        init.set_body(&js_sys::Uint8Array::from(req.body.as_slice()));
    }
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(millis)));
    let request = web_sys::Request::new_with_str_and_init(&req.url, &init).map_err(refused)?;
    Ok(worker::Request::from(request))
}

/// Status, headers (lower-case names) and the body, read chunk by chunk up to
/// [`MAX_RESPONSE_BYTES`].
async fn read(mut response: worker::Response) -> Result<Response, HttpError> {
    let failed = |e: worker::Error| HttpError::new(format!("reading the body: {e}"));
    let status = response.status_code();
    let headers = response
        .headers()
        .entries()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let mut body = Vec::new();
    // No stream: a null body (204, 304).
    if matches!(response.body(), ResponseBody::Stream(_)) {
        let mut stream = response.stream().map_err(failed)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(failed)?;
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::new("the response body is larger than 16 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Waits on a JS timer (`setTimeout`, through `worker::Delay`), so the isolate serves other
/// requests meanwhile.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerSleep;

impl Sleep for WorkerSleep {
    async fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        // `Delay` hands the milliseconds to setTimeout as an i32: longer waits are cut to ~24 days.
        let most = Duration::from_millis(i32::MAX as u64);
        worker::Delay::from(duration.min(most)).await;
    }
}

/// `Date.now()`. In a Worker it advances only across I/O (Workers' Spectre mitigation), which
/// is precise enough for token expiry and a one-second cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerClock;

impl Clock for WorkerClock {
    fn now_unix_secs(&self) -> u64 {
        self.now_unix_millis() / 1000
    }

    fn now_unix_millis(&self) -> u64 {
        let now = js_sys::Date::now();
        if now.is_finite() && now > 0.0 {
            // Whole milliseconds since 1970, far below 2^53: the cast is exact.
            now as u64
        } else {
            0
        }
    }
}

/// Eight bytes from `crypto.getRandomValues`, for [`crate::ReporterOptions::seed`] (the
/// default seed with this feature): every isolate gets its own Idempotency-Key sequence. Falls
/// back to the time if the global has no `crypto` (not the case on Workers).
pub fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let filled = js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .crypto()
        .ok()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).ok())
        .is_some();
    if filled {
        u64::from_le_bytes(bytes)
    } else {
        WorkerClock.now_unix_millis() ^ 0x9e37_79b9_7f4a_7c15
    }
}
