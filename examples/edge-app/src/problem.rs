//! Every refusal the app answers, as `application/problem+json` (RFC 9457): one variant per
//! reason, each with its status and a stable `code`, mapped in one place.

use edgeplane_client::TokenError;
use serde_json::json;
use worker::{Headers, Response};

/// Where the problem types live; `type` is this plus the code.
const TYPE_BASE: &str = "https://edgeplane.dev/problems/edge-app/";

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No `Authorization: Bearer` header.
    MissingToken,
    /// A genuine token past its `exp` (and the 30 s tolerance).
    TokenExpired,
    /// Not a token Edgeplane issued for this app: a bad signature, `alg` `none` or `HS256`, an
    /// unknown key, another issuer or audience, an ID token, garbage. `check` is the client's
    /// code for the check that failed.
    TokenInvalid {
        /// `signature`, `algorithm`, `unknown_key`, `issuer`, `audience`, `type`, `malformed`,
        /// `not_yet_valid`.
        check: &'static str,
    },
    /// Edgeplane says the token is no longer active: its session was revoked (logout, password
    /// change, an admin), or its user, tenant or app disabled.
    TokenRevoked,
    /// Edgeplane's key set could not be fetched, so no token can be checked.
    KeysUnavailable,
    /// A write needs Edgeplane's word on revocation, and it could not be had.
    RevocationCheckUnavailable,
    /// Flags could not be read from Edgeplane.
    FlagsUnavailable,
    /// The request body is not what the route takes.
    InvalidBody(String),
    /// No such route.
    NotFound,
    /// The route exists, not with this method; the methods it has.
    MethodNotAllowed(&'static str),
    /// The deployment lacks a var, secret or binding (named).
    Misconfigured(&'static str),
    /// Something failed that the caller cannot fix; the cause went to the log.
    Internal,
}

impl Problem {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingToken | Self::TokenExpired | Self::TokenInvalid { .. } => 401,
            Self::TokenRevoked => 401,
            Self::InvalidBody(_) => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::KeysUnavailable | Self::RevocationCheckUnavailable | Self::FlagsUnavailable => {
                503
            }
            Self::Misconfigured(_) | Self::Internal => 500,
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::TokenExpired => "token_expired",
            Self::TokenInvalid { .. } => "token_invalid",
            Self::TokenRevoked => "token_revoked",
            Self::KeysUnavailable => "keys_unavailable",
            Self::RevocationCheckUnavailable => "revocation_check_unavailable",
            Self::FlagsUnavailable => "flags_unavailable",
            Self::InvalidBody(_) => "invalid_body",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Misconfigured(_) => "misconfigured",
            Self::Internal => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::MissingToken => "An access token is required",
            Self::TokenExpired => "The access token has expired",
            Self::TokenInvalid { .. } => "The access token is not valid",
            Self::TokenRevoked => "The access token's session was revoked",
            Self::KeysUnavailable => "Edgeplane's signing keys are unavailable",
            Self::RevocationCheckUnavailable => "Edgeplane could not confirm the session",
            Self::FlagsUnavailable => "Feature flags are unavailable",
            Self::InvalidBody(_) => "The request body is not valid",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::Misconfigured(_) => "The app is not configured",
            Self::Internal => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::MissingToken => "Send `Authorization: Bearer <access token>`.".into(),
            Self::TokenExpired => "Refresh the token (POST /v1/auth/refresh) and retry.".into(),
            Self::TokenInvalid { check } => format!("The token failed the `{check}` check."),
            Self::TokenRevoked => "Sign in again.".into(),
            Self::KeysUnavailable | Self::RevocationCheckUnavailable | Self::FlagsUnavailable => {
                "Retry shortly.".into()
            }
            Self::InvalidBody(why) => why.clone(),
            Self::NotFound => "No route has this path.".into(),
            Self::MethodNotAllowed(allow) => format!("This route takes {allow}."),
            Self::Misconfigured(what) => format!("`{what}` is missing."),
            Self::Internal => "See the app's log.".into(),
        }
    }

    /// The response: problem+json, with `WWW-Authenticate` on 401 (RFC 6750) and `Allow` on
    /// 405.
    pub fn response(&self) -> worker::Result<Response> {
        let mut body = json!({
            "type": format!("{TYPE_BASE}{}", self.code().replace('_', "-")),
            "title": self.title(),
            "status": self.status(),
            "detail": self.detail(),
            "code": self.code(),
        });
        if let Self::TokenInvalid { check } = self {
            body["check"] = json!(check);
        }
        let headers = Headers::new();
        headers.set("content-type", "application/problem+json")?;
        headers.set("cache-control", "no-store")?;
        match self {
            Self::MissingToken => headers.set("www-authenticate", "Bearer")?,
            Self::TokenExpired | Self::TokenInvalid { .. } | Self::TokenRevoked => headers.set(
                "www-authenticate",
                &format!(
                    r#"Bearer error="invalid_token", error_description="{}""#,
                    self.code()
                ),
            )?,
            Self::MethodNotAllowed(allow) => headers.set("allow", allow)?,
            _ => {}
        }
        Ok(Response::from_bytes(body.to_string().into_bytes())?
            .with_status(self.status())
            .with_headers(headers))
    }
}

impl From<TokenError> for Problem {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => Self::TokenExpired,
            TokenError::JwksUnavailable(_) => Self::KeysUnavailable,
            other @ (TokenError::Malformed(_)
            | TokenError::Algorithm
            | TokenError::Type
            | TokenError::UnknownKey
            | TokenError::Signature
            | TokenError::Issuer
            | TokenError::Audience
            | TokenError::NotYetValid) => Self::TokenInvalid {
                check: other.code(),
            },
        }
    }
}
