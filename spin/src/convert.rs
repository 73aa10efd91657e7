//! Conversions between `wasi:http`'s streaming request and response and the `http` types core
//! serves. The request body is read chunk by chunk through core's [`LimitedBody`], so a body
//! past core's limit (a declared `Content-Length` or a chunked body that keeps coming) is never
//! held whole: reading stops and core answers 413.

use edgeplane_core::http::LimitedBody;
use futures_util::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

use crate::adapters::log_error;

/// Reads an incoming request into an `http` request: method, URL, headers and the body up to
/// core's limit. Dropping the body stream past the limit stops reading from the client.
pub async fn to_http_request(req: IncomingRequest) -> Result<http::Request<Vec<u8>>, String> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers().entries() {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = http::HeaderValue::from_bytes(&value).map_err(|e| e.to_string())?;
        // A repeated name keeps its last value, as spin-sdk's buffered request (a map) did:
        // core reads single values (X-Forwarded-For's rightmost hop comes from the proxy).
        headers.insert(name, value);
    }
    let mut builder = http::Request::builder()
        .method(req.method().to_string().as_str())
        .uri(req.uri());
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    let mut body = LimitedBody::new(declared);
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    if !body.is_too_large() {
        let mut chunks = req.into_body_stream();
        while let Some(chunk) = chunks.next().await {
            body.push(&chunk.map_err(|e| e.to_debug_string())?);
            if body.is_too_large() {
                break;
            }
        }
    }
    body.into_request(builder).map_err(|e| e.to_string())
}

/// Sends core's response: status, every header (repeated names stay repeated) and the body. The
/// body is finished when this returns, so the client has the whole answer.
pub async fn respond(out: ResponseOutparam, resp: http::Response<Vec<u8>>) {
    let (parts, body) = resp.into_parts();
    let headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let (fields, status, body) = match Fields::from_list(&headers) {
        Ok(fields) => (fields, parts.status.as_u16(), body),
        Err(e) => {
            // A header the host refuses: a bare 500 rather than no answer at all.
            log_error("response headers refused", &format!("{e:?}"));
            (Fields::new(), 500, Vec::new())
        }
    };
    let response = OutgoingResponse::new(fields);
    if response.set_status_code(status).is_err() {
        log_error("response status refused", &status.to_string());
    }
    // Dropping the body's sink at the end of `set_with_body` finishes the body.
    if let Err(e) = out.set_with_body(response, body).await {
        log_error("response body not written", &format!("{e:?}"));
    }
}
