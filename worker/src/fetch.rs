//! [`WorkerHttp`]: core's `HttpClient` port over the Workers `fetch` API (outbound subrequests).

use edgeplane_core::ports::{FetchError, HttpClient, OutboundRequest, OutboundResponse};
use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// How long one outbound request may take before it is abandoned as unavailable. Workers puts
/// no limit of its own on a subrequest while the client waits.
const TIMEOUT_MS: u32 = 5_000;

/// Outbound HTTP through `fetch`, with redirects returned rather than followed (the port's
/// contract) and a timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerHttp;

impl HttpClient for WorkerHttp {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        // Building the request fails only on what the runtime refuses: a bad URL or header.
        let refused = |e: worker::Error| FetchError::Refused(e.to_string());
        let headers = Headers::new();
        for (name, value) in &req.headers {
            headers.append(name, value).map_err(refused)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(req.method.to_owned()))
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if !req.body.is_empty() {
            init.with_body(Some(js_sys::Uint8Array::from(req.body.as_slice()).into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(refused)?;
        let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(TIMEOUT_MS));
        let mut response = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        let status = response.status_code();
        let headers = response
            .headers()
            .entries()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::Other(format!("reading the response body: {e}")))?;
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}
