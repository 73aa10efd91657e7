//! RFC 9457 problem details: the one place where errors become HTTP. Every error response of the
//! API is `application/problem+json` with a `type` naming the spec's error (ERR-*), and 5xx
//! bodies never carry internals (CON-SEC-009): the cause goes to the request log only.

use ::http::{header, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::Response;

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://edgeplane.dev/problems/";

/// The error types of the spec (ERR-AUTH-*, ERR-VAL-*, ERR-RES-*, ERR-RATE-*, ERR-SYS-*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// ERR-AUTH-401: missing or invalid credentials.
    InvalidCredentials,
    /// ERR-AUTH-403: authenticated but not allowed.
    AccessDenied,
    /// ERR-AUTH-440: the session expired or was revoked.
    SessionExpired,
    /// ERR-AUTH-461: a second factor is required.
    MfaRequired,
    /// ERR-VAL-400: the request is malformed or a field is invalid.
    InvalidInput,
    /// ERR-VAL-409: the request conflicts with existing state.
    Conflict,
    /// ERR-VAL-422: a business rule refuses the request.
    BusinessRule,
    /// ERR-RES-404: no such resource (also for resources of another tenant).
    NotFound,
    /// ERR-RES-410: the resource existed and is gone.
    Gone,
    /// ERR-RATE-429: too many requests.
    RateLimited,
    /// ERR-SYS-500: an unexpected failure.
    Internal,
    /// ERR-SYS-503: a dependency is unavailable.
    Unavailable,
}

impl ProblemType {
    /// Every problem type, for documentation and tests.
    pub const ALL: [ProblemType; 12] = [
        ProblemType::InvalidCredentials,
        ProblemType::AccessDenied,
        ProblemType::SessionExpired,
        ProblemType::MfaRequired,
        ProblemType::InvalidInput,
        ProblemType::Conflict,
        ProblemType::BusinessRule,
        ProblemType::NotFound,
        ProblemType::Gone,
        ProblemType::RateLimited,
        ProblemType::Internal,
        ProblemType::Unavailable,
    ];

    /// The short name, last segment of the `type` URI.
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::InvalidCredentials => "invalid-credentials",
            ProblemType::AccessDenied => "access-denied",
            ProblemType::SessionExpired => "session-expired",
            ProblemType::MfaRequired => "mfa-required",
            ProblemType::InvalidInput => "invalid-input",
            ProblemType::Conflict => "conflict",
            ProblemType::BusinessRule => "business-rule",
            ProblemType::NotFound => "not-found",
            ProblemType::Gone => "gone",
            ProblemType::RateLimited => "rate-limited",
            ProblemType::Internal => "internal",
            ProblemType::Unavailable => "unavailable",
        }
    }

    /// The spec's error id.
    pub fn code(self) -> &'static str {
        match self {
            ProblemType::InvalidCredentials => "ERR-AUTH-401",
            ProblemType::AccessDenied => "ERR-AUTH-403",
            ProblemType::SessionExpired => "ERR-AUTH-440",
            ProblemType::MfaRequired => "ERR-AUTH-461",
            ProblemType::InvalidInput => "ERR-VAL-400",
            ProblemType::Conflict => "ERR-VAL-409",
            ProblemType::BusinessRule => "ERR-VAL-422",
            ProblemType::NotFound => "ERR-RES-404",
            ProblemType::Gone => "ERR-RES-410",
            ProblemType::RateLimited => "ERR-RATE-429",
            ProblemType::Internal => "ERR-SYS-500",
            ProblemType::Unavailable => "ERR-SYS-503",
        }
    }

    /// A short human-readable summary, the same for every occurrence.
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::InvalidCredentials => "Invalid credentials",
            ProblemType::AccessDenied => "Access denied",
            ProblemType::SessionExpired => "Session expired",
            ProblemType::MfaRequired => "Multi-factor authentication required",
            ProblemType::InvalidInput => "Invalid input",
            ProblemType::Conflict => "Conflict",
            ProblemType::BusinessRule => "Business rule violation",
            ProblemType::NotFound => "Resource not found",
            ProblemType::Gone => "Resource gone",
            ProblemType::RateLimited => "Rate limit exceeded",
            ProblemType::Internal => "Internal error",
            ProblemType::Unavailable => "Service unavailable",
        }
    }

    /// The status this type answers with unless a more precise one applies.
    pub fn status(self) -> StatusCode {
        match self {
            ProblemType::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ProblemType::AccessDenied => StatusCode::FORBIDDEN,
            // 440 is the spec's own code (ERR-AUTH-440); clients treat it as "sign in again".
            ProblemType::SessionExpired => {
                StatusCode::from_u16(440).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            // ERR-AUTH-461 is carried as a 401 with its own type, so generic clients re-authenticate.
            ProblemType::MfaRequired => StatusCode::UNAUTHORIZED,
            ProblemType::InvalidInput => StatusCode::BAD_REQUEST,
            ProblemType::Conflict => StatusCode::CONFLICT,
            ProblemType::BusinessRule => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemType::NotFound => StatusCode::NOT_FOUND,
            ProblemType::Gone => StatusCode::GONE,
            ProblemType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ProblemType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `type` URI.
    pub fn uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.name())
    }
}

/// An error on its way to the client. Domain errors convert into it in one place each; the
/// `cause` (internal detail) is logged, never sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The spec error.
    pub kind: ProblemType,
    /// The HTTP status (usually `kind.status()`).
    pub status: StatusCode,
    /// What went wrong, safe to show the client.
    pub detail: String,
    /// Extra members of the problem object (e.g. `errors`, `mfa_token`).
    pub extensions: Map<String, Value>,
    /// Extra response headers (e.g. `Allow`, `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Internal cause for the log; never in the response.
    pub cause: Option<String>,
}

impl ApiError {
    /// An error of the given type with its default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            status: kind.status(),
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// ERR-VAL-400.
    pub fn invalid_input(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::InvalidInput, detail)
    }

    /// ERR-VAL-400 naming the offending field (`errors: [{field, message}]`).
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::invalid_input(format!("{field}: {message}"))
            .with_extension("errors", json!([{ "field": field, "message": message }]))
    }

    /// ERR-AUTH-401 with a `WWW-Authenticate: Bearer` challenge.
    pub fn invalid_credentials(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::InvalidCredentials, detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// ERR-RES-404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::NotFound, detail)
    }

    /// ERR-SYS-500: the detail sent is generic; `cause` is logged.
    pub fn internal(cause: impl Into<String>) -> Self {
        let mut e = Self::new(
            ProblemType::Internal,
            "An unexpected error occurred. Quote the request id when reporting it.",
        );
        e.cause = Some(cause.into());
        e
    }

    /// ERR-SYS-503: the detail sent is generic; `cause` is logged.
    pub fn unavailable(cause: impl Into<String>) -> Self {
        let mut e = Self::new(
            ProblemType::Unavailable,
            "A dependency is temporarily unavailable. Retry later.",
        );
        e.cause = Some(cause.into());
        e
    }

    /// Overrides the status (e.g. 405, 413, 415 for `invalid-input`).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a member to the problem object.
    #[must_use]
    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Renders the problem response for a request.
    pub fn into_response(self, request_id: &str) -> Response {
        let mut body = Map::new();
        body.insert("type".into(), Value::String(self.kind.uri()));
        body.insert("title".into(), Value::String(self.kind.title().into()));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        body.insert("detail".into(), Value::String(self.detail));
        body.insert("code".into(), Value::String(self.kind.code().into()));
        body.insert("request_id".into(), Value::String(request_id.into()));
        for (k, v) in self.extensions {
            body.entry(k).or_insert(v);
        }
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut resp = Response::new(bytes);
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_distinct_name_code_and_an_error_status() {
        let mut names: Vec<_> = ProblemType::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ProblemType::ALL.len());
        for t in ProblemType::ALL {
            assert!(t.status().as_u16() >= 400, "{t:?}");
            assert!(
                t.code().ends_with(&t.status().as_u16().to_string())
                    || t == ProblemType::MfaRequired
            );
        }
        assert_eq!(ProblemType::SessionExpired.status().as_u16(), 440);
    }

    #[test]
    fn internal_errors_hide_the_cause() {
        let resp = ApiError::internal("D1_ERROR: no such table: tenants").into_response("req-1");
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8(resp.body().clone()).unwrap();
        assert!(!body.contains("D1_ERROR"), "{body}");
        assert!(!body.contains("tenants"), "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "https://edgeplane.dev/problems/internal");
        assert_eq!(v["status"], 500);
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["code"], "ERR-SYS-500");
    }

    #[test]
    fn field_errors_name_the_field() {
        let resp = ApiError::invalid_field("domain", "must be lowercase").into_response("r");
        let v: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(v["errors"][0]["field"], "domain");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
