//! [`WorkerHttp`]: core's `HttpClient` port over the Workers `fetch` API (outbound subrequests).

use edgeplane_core::ports::{FetchError, HttpClient, OutboundRequest, OutboundResponse};
use futures_util::StreamExt;
use worker::{
    AbortSignal, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response,
    ResponseBody,
};

/// How long one outbound request may take before it is abandoned as unavailable. Workers puts
/// no limit of its own on a subrequest while the client waits.
const TIMEOUT_MS: u32 = 5_000;

/// Outbound HTTP through `fetch`, with redirects returned rather than followed (the port's
/// contract), a timeout, and the body read only up to the request's `max_body_bytes`.
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
        let headers: Vec<(String, String)> = response
            .headers()
            .entries()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let declared = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > req.max_body_bytes) {
            return Err(FetchError::TooLarge(req.max_body_bytes));
        }
        let body = read_body(&mut response, req.max_body_bytes).await?;
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

/// Reads the body chunk by chunk, refusing it once it passes `limit`: `bytes()` would buffer
/// whatever the server sends. Dropping the stream cancels the rest of the body.
async fn read_body(response: &mut Response, limit: usize) -> Result<Vec<u8>, FetchError> {
    let failed = |e: worker::Error| FetchError::Other(format!("reading the response body: {e}"));
    let mut body = Vec::new();
    if !matches!(response.body(), ResponseBody::Stream(_)) {
        // No stream: a null body (204, 304, HEAD).
        return Ok(body);
    }
    let mut stream = response.stream().map_err(failed)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(failed)?;
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
