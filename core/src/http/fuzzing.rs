//! Entry points for the fuzz targets of `core/fuzz/`: the body parsing of routes whose handlers
//! also authenticate and touch storage, reached here on the body alone. Hidden, not an API:
//! nothing else calls it, and it may change with the fuzz targets.

use ::http::{header, HeaderValue};

use super::{flags, ApiError, Request};
use crate::flags::{Context, FlagDefinition};

/// A request carrying `body` as JSON, as the adapters hand one to core.
fn json_request(body: &[u8]) -> Request {
    let mut req = Request::new(body.to_vec());
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    req
}

/// The evaluation context of an OFREP request body (`POST /ofrep/v1/evaluate/flags`), or the
/// problem the route answers with.
pub fn ofrep_context(body: &[u8]) -> Result<Context, ApiError> {
    flags::ofrep_context(&json_request(body), None)
}

/// The checked flag definition of a `PUT /v1/tenants/{id}/flags/{key}` body, or the problem the
/// route answers with.
pub fn flag_definition(body: &[u8]) -> Result<FlagDefinition, ApiError> {
    flags::flag_definition(&json_request(body))
}
