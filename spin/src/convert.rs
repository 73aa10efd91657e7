//! Conversions between `wasi:http`'s streaming request and response and the `http` types core
//! serves. The request body is read chunk by chunk through core's [`LimitedBody`], so a body
//! past core's limit (a declared `Content-Length` or a chunked body that keeps coming) is never
//! held whole: reading stops and core answers 413.

use edgeplane_core::http::LimitedBody;
use futures_util::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::{OutputStream, StreamError};

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

/// Sends core's response: status, every header (repeated names stay repeated), a
/// `Content-Length` for a body that has bytes, and the body. As Spin's hello-world does, the
/// host gets the answer whole: the body is written and finished before the response is handed
/// over, so the host writes head and body in one go instead of a head alone, then the body, then
/// the end of a chunked body, each small write waiting on the client's delayed ACK (Nagle's
/// algorithm) on a kept-alive connection. A body larger than the host buffers unread is written
/// after the hand-over. The body is finished when this returns, so the client has the whole
/// answer.
pub fn respond(out: ResponseOutparam, resp: http::Response<Vec<u8>>) {
    let (mut parts, body) = resp.into_parts();
    if !body.is_empty() {
        // Core's body is complete, so its length is known; an empty one (HEAD, 204, 304) keeps
        // the headers its handler chose.
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
    }
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
    let Ok(outgoing) = response.body() else {
        log_error("response body refused", "outgoing-response.body");
        return out.set(response);
    };
    let Ok(stream) = outgoing.write() else {
        log_error("response body refused", "outgoing-body.write");
        return out.set(response);
    };
    let mut rest = body.as_slice();
    let written = write_unblocked(&stream, &mut rest);
    if written.is_ok() && rest.is_empty() {
        finish(stream, outgoing);
        return out.set(response);
    }
    out.set(response);
    if let Err(e) = written.and_then(|()| write_blocking(&stream, &mut rest)) {
        log_error("response body not written", &format!("{e:?}"));
    }
    finish(stream, outgoing);
}

/// Writes what the host accepts without waiting, advancing `rest` past it.
fn write_unblocked(stream: &OutputStream, rest: &mut &[u8]) -> Result<(), StreamError> {
    while !rest.is_empty() {
        let permitted = usize::try_from(stream.check_write()?).unwrap_or(usize::MAX);
        if permitted == 0 {
            break;
        }
        let (now, later) = rest.split_at(permitted.min(rest.len()));
        stream.write(now)?;
        *rest = later;
    }
    Ok(())
}

/// Writes all of `rest`, waiting while the host drains what it holds.
fn write_blocking(stream: &OutputStream, rest: &mut &[u8]) -> Result<(), StreamError> {
    while !rest.is_empty() {
        write_unblocked(stream, rest)?;
        if !rest.is_empty() {
            stream.subscribe().block();
        }
    }
    Ok(())
}

/// Ends the body: the stream goes first, as `outgoing-body.finish` requires.
fn finish(stream: OutputStream, outgoing: OutgoingBody) {
    drop(stream);
    if let Err(e) = OutgoingBody::finish(outgoing, None) {
        log_error("response body not finished", &format!("{e:?}"));
    }
}
