//! Conversions between the runtime's `Request`/`Response` and the `http` types core serves.

use edgeplane_core::http::{LimitedBody, REQUEST_ID};
use futures_util::StreamExt;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use worker::{web_sys, ByteStream};

use crate::sql_js::js_error_message;

/// Statuses whose responses must not have a body (the `Response` constructor throws).
const NULL_BODY: [u16; 4] = [101, 204, 205, 304];

/// Every header of a JS `Headers`, in order (repeated names stay repeated).
fn header_pairs(headers: &web_sys::Headers) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let iter = headers.entries();
    loop {
        let next = iter.next().map_err(|e| js_error_message(&e))?;
        if next.done() {
            return Ok(pairs);
        }
        let pair: Array = next.value().unchecked_into();
        pairs.push((
            pair.get(0).as_string().unwrap_or_default(),
            pair.get(1).as_string().unwrap_or_default(),
        ));
    }
}

/// Reads a Worker request into an `http` request: method, full URL, every header and the body.
/// `request_id` is set as `X-Request-Id` when the client sent none (or one core would not echo),
/// so the id is known here too (a panic answer carries it). The body is read chunk by chunk
/// through core's [`LimitedBody`]: past core's limit (declared or counted, chunked bodies
/// included) reading stops, the rest of the stream is cancelled, and core answers 413.
pub async fn to_http_request(
    req: &web_sys::Request,
    request_id: &str,
) -> Result<http::Request<Vec<u8>>, String> {
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.url());
    let mut has_id = false;
    for (name, value) in header_pairs(&req.headers())? {
        if name.eq_ignore_ascii_case(REQUEST_ID) {
            if value != request_id {
                continue;
            }
            has_id = true;
        }
        builder = builder.header(name, value);
    }
    if !has_id {
        builder = builder.header(REQUEST_ID, request_id);
    }
    let declared = req.headers().get("content-length").ok().flatten();
    let mut body = LimitedBody::new(declared.as_deref());
    if let Some(stream) = req.body().filter(|_| !body.is_too_large()) {
        let mut chunks = ByteStream::from(stream);
        while let Some(chunk) = chunks.next().await {
            body.push(&chunk.map_err(|e| e.to_string())?);
            if body.is_too_large() {
                // Dropping the stream cancels the rest of the body.
                break;
            }
        }
    }
    body.into_request(builder).map_err(|e| e.to_string())
}

/// Builds a Worker response from core's response.
pub fn to_web_response(resp: http::Response<Vec<u8>>) -> Result<web_sys::Response, String> {
    let (parts, body) = resp.into_parts();
    let headers = web_sys::Headers::new().map_err(|e| js_error_message(&e))?;
    for (name, value) in &parts.headers {
        // Header values from core are ASCII; a non-UTF-8 one is skipped, not fatal.
        if let Ok(value) = value.to_str() {
            headers
                .append(name.as_str(), value)
                .map_err(|e| js_error_message(&e))?;
        }
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(parts.status.as_u16());
    init.set_headers(&JsValue::from(headers));
    let body =
        (!NULL_BODY.contains(&parts.status.as_u16())).then(|| Uint8Array::from(body.as_slice()));
    web_sys::Response::new_with_opt_js_u8_array_and_init(body.as_ref(), &init)
        .map_err(|e| js_error_message(&e))
}

/// A bare 500 when even a problem response cannot be built.
pub fn last_resort() -> web_sys::Response {
    let init = web_sys::ResponseInit::new();
    init.set_status(500);
    web_sys::Response::new_with_opt_str_and_init(None, &init)
        .unwrap_or_else(|_| web_sys::Response::error())
}
