//! RFC 9457 problem details: the one place where errors become HTTP. Every error response of the
//! API is `application/problem+json` with a `type` naming the spec's error (ERR-*), and 5xx
//! bodies never carry internals (CON-SEC-009): the cause goes to the request log only.

use ::http::{header, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::ToSchema;

use super::Response;
use crate::kernel::{DomainError, ErrorKind};

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

    /// Replaces the detail (a route naming where to go on, for example).
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
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
        let mut extensions = self.extensions;
        // The standard members are the problem's own: an extension never replaces one.
        for member in ProblemBody::MEMBERS {
            extensions.remove(member);
        }
        let body = ProblemBody {
            kind: self.kind.uri(),
            title: self.kind.title(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.kind.code(),
            request_id: request_id.to_owned(),
            errors: extensions.remove("errors"),
            extensions,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
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

/// The body of every error response: RFC 9457 problem details, `application/problem+json`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub(super) struct ProblemBody {
    /// The problem type: one URI per error of the specification.
    #[serde(rename = "type")]
    #[schema(schema_with = problem_type_schema)]
    kind: String,
    /// A short summary of the problem type, the same for every occurrence.
    title: &'static str,
    /// The HTTP status of the response.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, safe to show.
    detail: String,
    /// The specification's error id, e.g. ERR-VAL-400.
    #[schema(pattern = "^ERR-[A-Z]+-[0-9]{3}$")]
    code: &'static str,
    /// The request's id; quote it when reporting a problem.
    request_id: String,
    /// Per-field errors of invalid input.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<FieldError>, inline)]
    errors: Option<Value>,
    /// Further members of some problems (`reason`, `retry_after`, `mfa_token`, ...).
    #[serde(flatten)]
    #[schema(ignore)]
    extensions: Map<String, Value>,
}

impl ProblemBody {
    /// The members every problem has.
    const MEMBERS: [&'static str; 6] = ["type", "title", "status", "detail", "code", "request_id"];
}

/// One invalid field of a request (an item of `errors`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FieldError {
    /// The field, as named in the request.
    field: String,
    /// What is wrong with it.
    message: String,
}

/// The `type` of a problem: the URI of one of [`ProblemType::ALL`].
fn problem_type_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri".into())))
        .enum_values(Some(ProblemType::ALL.map(ProblemType::uri)))
        .build()
}

/// The one mapping of domain errors to problems: the error's kind decides the problem type,
/// status and headers; its code is the `reason`; its message the `detail`, except for server-side
/// failures, whose message and code go to the log only.
impl<E: DomainError + ?Sized> From<&E> for ApiError {
    fn from(e: &E) -> Self {
        ApiError::of_kind(e.kind(), e)
    }
}

impl ApiError {
    /// The problem for `e` taken as a failure of `kind` (the [`From`] mapping uses `e.kind()`;
    /// a route whose context changes what a refusal means passes another kind).
    pub fn of_kind<E: DomainError + ?Sized>(kind: ErrorKind, e: &E) -> Self {
        let reason = |p: ApiError| p.with_extension("reason", e.code().into());
        let detail = || {
            let message = e.to_string();
            if message.ends_with('.') {
                message
            } else {
                format!("{message}.")
            }
        };
        match kind {
            ErrorKind::Invalid => reason(ApiError::invalid_input(detail())),
            ErrorKind::InvalidField(field) => {
                // "limit must be …" names its field once, as `errors[].field`.
                let message = e.to_string();
                let message = message
                    .strip_prefix(field)
                    .and_then(|rest| rest.strip_prefix(": ").or(rest.strip_prefix(' ')))
                    .filter(|rest| !rest.is_empty())
                    .unwrap_or(&message);
                reason(ApiError::invalid_field(field, message))
            }
            ErrorKind::Unauthenticated => reason(ApiError::invalid_credentials(detail())),
            ErrorKind::InvalidToken => reason(
                ApiError::new(ProblemType::InvalidCredentials, detail()).with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ),
            ),
            ErrorKind::SessionEnded => reason(ApiError::new(ProblemType::SessionExpired, detail())),
            ErrorKind::SecondFactorRequired => {
                reason(ApiError::new(ProblemType::MfaRequired, detail()))
            }
            ErrorKind::Forbidden => reason(ApiError::new(ProblemType::AccessDenied, detail())),
            ErrorKind::NotFound => reason(ApiError::not_found(detail())),
            ErrorKind::Gone => reason(ApiError::new(ProblemType::Gone, detail())),
            ErrorKind::Conflict => reason(ApiError::new(ProblemType::Conflict, detail())),
            ErrorKind::Refused => reason(ApiError::new(ProblemType::BusinessRule, detail())),
            ErrorKind::RefusedField(field) => {
                let message = e.to_string();
                reason(
                    ApiError::new(ProblemType::BusinessRule, format!("{field}: {message}."))
                        .with_extension("errors", json!([{ "field": field, "message": message }])),
                )
            }
            ErrorKind::RateLimited { retry_after_secs } => {
                reason(ApiError::rate_limited(retry_after_secs))
            }
            ErrorKind::Unavailable => ApiError::unavailable(format!("{}: {e}", e.code())),
            ErrorKind::Internal => ApiError::internal(format!("{}: {e}", e.code())),
        }
    }

    /// ERR-RATE-429 with `Retry-After` (and `retry_after` in the body).
    pub fn rate_limited(retry_after_secs: i64) -> Self {
        let mut e = ApiError::new(
            ProblemType::RateLimited,
            "Too many failed attempts. Retry later.",
        )
        .with_extension("retry_after", retry_after_secs.into());
        if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
            e = e.with_header(header::RETRY_AFTER, v);
        }
        e
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

    /// A domain error of any kind, for the mapping's tests.
    struct Failure(ErrorKind, &'static str);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl DomainError for Failure {
        fn code(&self) -> &'static str {
            "some_code"
        }
        fn kind(&self) -> ErrorKind {
            self.0
        }
    }

    #[test]
    fn each_kind_maps_to_one_problem_type() {
        let cases = [
            (ErrorKind::Invalid, ProblemType::InvalidInput, 400),
            (
                ErrorKind::InvalidField("limit"),
                ProblemType::InvalidInput,
                400,
            ),
            (
                ErrorKind::Unauthenticated,
                ProblemType::InvalidCredentials,
                401,
            ),
            (
                ErrorKind::InvalidToken,
                ProblemType::InvalidCredentials,
                401,
            ),
            (ErrorKind::SessionEnded, ProblemType::SessionExpired, 440),
            (
                ErrorKind::SecondFactorRequired,
                ProblemType::MfaRequired,
                401,
            ),
            (ErrorKind::Forbidden, ProblemType::AccessDenied, 403),
            (ErrorKind::NotFound, ProblemType::NotFound, 404),
            (ErrorKind::Gone, ProblemType::Gone, 410),
            (ErrorKind::Conflict, ProblemType::Conflict, 409),
            (ErrorKind::Refused, ProblemType::BusinessRule, 422),
            (
                ErrorKind::RefusedField("plan"),
                ProblemType::BusinessRule,
                422,
            ),
            (
                ErrorKind::RateLimited {
                    retry_after_secs: 7,
                },
                ProblemType::RateLimited,
                429,
            ),
            (ErrorKind::Unavailable, ProblemType::Unavailable, 503),
            (ErrorKind::Internal, ProblemType::Internal, 500),
        ];
        for (kind, problem, status) in cases {
            let e = ApiError::from(&Failure(kind, "no tenant t-1"));
            assert_eq!((e.kind, e.status.as_u16()), (problem, status), "{kind:?}");
            if kind.is_server_side() {
                assert!(!e.detail.contains("t-1"), "{kind:?}: {}", e.detail);
                assert!(!e.extensions.contains_key("reason"), "{kind:?}");
                assert_eq!(e.cause.as_deref(), Some("some_code: no tenant t-1"));
            } else {
                assert_eq!(e.extensions["reason"], "some_code", "{kind:?}");
                // A rate limit says the same whatever was limited.
                let shown = !matches!(kind, ErrorKind::RateLimited { .. });
                assert_eq!(
                    e.detail.contains("no tenant t-1"),
                    shown,
                    "{kind:?}: {}",
                    e.detail
                );
            }
        }
    }

    #[test]
    fn credential_kinds_challenge_as_rfc_6750_says() {
        let challenge = |kind| {
            let e = ApiError::from(&Failure(kind, "refused"));
            let resp = e.into_response("r");
            resp.headers()[header::WWW_AUTHENTICATE].clone()
        };
        assert_eq!(challenge(ErrorKind::Unauthenticated), "Bearer");
        assert_eq!(
            challenge(ErrorKind::InvalidToken),
            "Bearer error=\"invalid_token\""
        );
        let limited = ApiError::from(&Failure(
            ErrorKind::RateLimited {
                retry_after_secs: 7,
            },
            "slow down",
        ))
        .into_response("r");
        assert_eq!(limited.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn a_field_error_names_its_field_once() {
        let e = ApiError::from(&Failure(
            ErrorKind::InvalidField("limit"),
            "limit must be between 1 and 100",
        ));
        assert_eq!(e.detail, "limit: must be between 1 and 100");
        assert_eq!(e.extensions["errors"][0]["field"], "limit");
        let e = ApiError::from(&Failure(ErrorKind::InvalidField("q"), "query too long"));
        assert_eq!(e.detail, "q: query too long");
        let e = ApiError::from(&Failure(ErrorKind::InvalidField("plan"), "plan: unknown"));
        assert_eq!(e.detail, "plan: unknown");
    }

    /// The body holds the standard members once each, then every extension as it was added.
    #[test]
    fn extensions_are_members_and_never_replace_the_standard_ones() {
        let resp = ApiError::invalid_field("ip", "must be an address")
            .with_extension(
                "errors",
                json!([{ "index": 3, "field": "ip", "message": "must be an address" }]),
            )
            .with_extension("reason", "invalid_event".into())
            .with_extension("status", 200.into())
            .into_response("r");
        let body = String::from_utf8(resp.body().clone()).unwrap();
        assert_eq!(body.matches("\"status\"").count(), 1, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let want = json!({
            "type": "https://edgeplane.dev/problems/invalid-input",
            "title": "Invalid input",
            "status": 400,
            "detail": "ip: must be an address",
            "code": "ERR-VAL-400",
            "request_id": "r",
            "errors": [{ "index": 3, "field": "ip", "message": "must be an address" }],
            "reason": "invalid_event",
        });
        assert_eq!(v, want);
        let plain: Value =
            serde_json::from_slice(ApiError::not_found("gone").into_response("r").body()).unwrap();
        assert!(plain.get("errors").is_none(), "{plain}");
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
