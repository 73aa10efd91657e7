//! Small response shapes the route files share.

use ::http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

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

/// Whether the edge already sees a change: the `edge` member of the responses to changes that
/// also write an edge record (KV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Edge {
    /// The edge record was written.
    Synced,
    /// The edge record write failed and the edge still sees the old state: repeat the call.
    Pending,
}
