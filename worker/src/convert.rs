//! Conversions between the runtime's `Request`/`Response` and the `http` types core serves.

use edgeplane_core::http::{LimitedBody, REQUEST_ID};
use edgeplane_core::risk::Location;
use futures_util::StreamExt;
use js_sys::Uint8Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{web_sys, ByteStream};

use crate::sql_js::js_error_message;

/// Statuses whose responses must not have a body (the `Response` constructor throws).
const NULL_BODY: [u16; 4] = [101, 204, 205, 304];

#[wasm_bindgen(inline_js = "
export function requestHead(req) {
  let s = (req.body === null ? '-' : 'b') + req.method + '\\n' + req.url + '\\n';
  for (const [name, value] of req.headers) s += name + '\\n' + value + '\\n';
  return s;
}
export function newResponse(status, headerLines, body) {
  const headers = new Headers();
  const parts = headerLines.split('\\n');
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
  return new Response(body === undefined ? null : body.slice(), { status, headers });
}
")]
extern "C" {
    /// A request's method, URL and every header as `\n`-ended lines (`method`, `url`, then
    /// `name`, `value` per header, in order; repeated names stay repeated), the method
    /// prefixed with `b` when the request has a body stream and `-` when it has none: one call
    /// across the boundary instead of one per part. None of them can hold a line feed.
    #[wasm_bindgen(js_name = requestHead)]
    fn request_head(req: &web_sys::Request) -> String;

    /// A `Response` of `status` with the headers of `header_lines` (as [`header_lines`] writes
    /// them) and a copy of `body` (none when `undefined`), built in one call.
    #[wasm_bindgen(js_name = newResponse, catch)]
    fn new_response(
        status: u16,
        header_lines: &str,
        body: Option<&[u8]>,
    ) -> Result<web_sys::Response, JsValue>;
}

/// What [`request_head`] read of a request: everything but its body.
pub struct Head {
    text: String,
    method_end: usize,
    url_end: usize,
}

/// Where the method starts in [`request_head`]'s text (after the body mark).
const METHOD_START: usize = 1;

impl Head {
    /// Reads the method, URL and headers of `req` in one call.
    pub fn read(req: &web_sys::Request) -> Self {
        let text = request_head(req);
        let method_end = text.find('\n').unwrap_or(text.len());
        let url_end = text[method_end..]
            .get(1..)
            .and_then(|rest| rest.find('\n'))
            .map_or(text.len(), |i| method_end + 1 + i);
        Head {
            text,
            method_end,
            url_end,
        }
    }

    /// The request method.
    pub fn method(&self) -> &str {
        self.text.get(METHOD_START..self.method_end).unwrap_or("")
    }

    /// Whether the request has a body stream (it may still be empty).
    pub fn has_body(&self) -> bool {
        self.text.starts_with('b')
    }

    /// The full URL.
    pub fn url(&self) -> &str {
        self.text
            .get(self.method_end + 1..self.url_end)
            .unwrap_or("")
    }

    /// The `(name, value)` pairs of the headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.text.get(self.url_end + 1..).unwrap_or("").split('\n');
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Reads a Worker request into an `http` request: method, full URL, every header and the body.
/// `request_id` is set as `X-Request-Id` when the client sent none (or one core would not echo),
/// so the id is known here too (a panic answer carries it). `read` is the body when the worker's
/// entry has read it already. Otherwise a body whose declared length is within core's limit is
/// read whole; any other is read chunk by chunk through core's
/// [`LimitedBody`]: past core's limit (declared or counted, chunked bodies included) reading
/// stops, the rest of the stream is cancelled, and core answers 413.
pub async fn to_http_request(
    req: &web_sys::Request,
    head: &Head,
    read: Option<Uint8Array>,
    request_id: &str,
) -> Result<http::Request<Vec<u8>>, String> {
    let mut builder = http::Request::builder()
        .method(head.method())
        .uri(head.url());
    let mut has_id = false;
    let mut declared = None;
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case(REQUEST_ID) {
            if value != request_id {
                continue;
            }
            has_id = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            declared = Some(value);
        }
        builder = builder.header(name, value);
    }
    if !has_id {
        builder = builder.header(REQUEST_ID, request_id);
    }
    let mut body = LimitedBody::new(declared);
    if let Some(read) = read {
        // Read by the entry, which does so only for a declared length below core's limit.
        if !body.is_too_large() {
            body.push(&read.to_vec());
        }
        return body.into_request(builder).map_err(|e| e.to_string());
    }
    if !head.has_body() {
        // Nothing to read: a request that needs no I/O then completes in its first poll.
        return body.into_request(builder).map_err(|e| e.to_string());
    }
    if declared.is_some() && !body.is_too_large() && req.body().is_some() {
        // A declared length within core's limit bounds the body (the runtime holds a client to
        // it): read it whole, one promise instead of one per chunk.
        let whole = req.array_buffer().map_err(|e| js_error_message(&e))?;
        let whole = JsFuture::from(whole)
            .await
            .map_err(|e| js_error_message(&e))?;
        body.push(&Uint8Array::new(&whole).to_vec());
        return body.into_request(builder).map_err(|e| e.to_string());
    }
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

/// The location Cloudflare attached to the request (`request.cf`: `country`, `colo`, `asn`),
/// for core's risk check; empty where the runtime attached none.
pub fn cf_location(req: &web_sys::Request) -> Location {
    let cf = js_sys::Reflect::get(req.as_ref(), &JsValue::from_str("cf"))
        .ok()
        .filter(JsValue::is_object);
    let field = |name: &str| {
        cf.as_ref()
            .and_then(|cf| js_sys::Reflect::get(cf, &JsValue::from_str(name)).ok())
    };
    let country = field("country").and_then(|v| v.as_string());
    let colo = field("colo").and_then(|v| v.as_string());
    // An ASN is a 32-bit number: the cast cannot lose anything a real one holds.
    let asn = field("asn")
        .and_then(|v| v.as_f64())
        .filter(|n| n.fract() == 0.0 && (1.0..=4_294_967_295.0).contains(n))
        .map(|n| n as i64);
    Location::parse(country.as_deref(), colo.as_deref(), asn)
}

/// Builds a Worker response from core's response.
pub fn to_web_response(resp: http::Response<Vec<u8>>) -> Result<web_sys::Response, String> {
    let (parts, body) = resp.into_parts();
    let mut lines = String::with_capacity(parts.headers.len() * 48);
    for (name, value) in &parts.headers {
        // Header values from core are ASCII; a non-UTF-8 one is skipped, not fatal. A header
        // value cannot hold a line feed (`http` refuses control characters).
        if let Ok(value) = value.to_str() {
            lines.push_str(name.as_str());
            lines.push('\n');
            lines.push_str(value);
            lines.push('\n');
        }
    }
    let status = parts.status.as_u16();
    let body = (!NULL_BODY.contains(&status)).then_some(body.as_slice());
    new_response(status, &lines, body).map_err(|e| js_error_message(&e))
}

/// A bare 500 when even a problem response cannot be built.
pub fn last_resort() -> web_sys::Response {
    let init = web_sys::ResponseInit::new();
    init.set_status(500);
    web_sys::Response::new_with_opt_str_and_init(None, &init)
        .unwrap_or_else(|_| web_sys::Response::error())
}
