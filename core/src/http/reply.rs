//! Small response shapes the route files share.

use ::http::{header, HeaderValue, StatusCode};

use super::Response;

/// `resp` marked `Cache-Control: no-store` (tokens, secrets, anything per user).
pub(super) fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An empty 204.
pub(super) fn no_content() -> Response {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}
