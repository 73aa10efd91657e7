//! The console acts through the API: each action is the API request a JSON client would send,
//! made in process on behalf of the session's person, so the API's caller checks, validation,
//! idempotency and audit records apply to the console unchanged.

use ::http::{header, Method};
use serde_json::Value as Json;

use super::session::{Kind, Session};
use super::Web;
use crate::auth::{OperatorPrincipal, PlatformRole};
use crate::crypto::sha256_hex;
use crate::http::{self as api_http, Request};
use crate::ports::Platform;

/// The API's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status.
    pub status: u16,
    /// Its JSON body (`Null` when empty or not JSON).
    pub body: Json,
    /// Its raw body (a CSV export).
    pub raw: Vec<u8>,
    /// Its headers (a CSV export's `X-Next-Cursor`).
    pub headers: ::http::HeaderMap,
}

impl Reply {
    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The problem's errors, when it is one.
    pub fn errors(&self) -> FieldErrors {
        FieldErrors::from_problem(&self.body)
    }
}

/// What a refused form gets back from the API: its `detail` and its per-field messages.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    /// The problem's detail, when no field message says it.
    pub detail: Option<String>,
    /// (field path, message) pairs.
    pub fields: Vec<(String, String)>,
}

impl FieldErrors {
    /// None.
    pub fn none() -> Self {
        Self::default()
    }

    /// The errors of a problem body.
    pub fn from_problem(body: &Json) -> Self {
        let fields: Vec<(String, String)> = body
            .get("errors")
            .and_then(Json::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| {
                        let field = e.get("field").and_then(Json::as_str)?;
                        let msg = e
                            .get("message")
                            .and_then(Json::as_str)
                            .unwrap_or("is invalid");
                        Some((field.to_owned(), msg.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let detail = body
            .get("detail")
            .and_then(Json::as_str)
            .filter(|_| fields.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                fields
                    .is_empty()
                    .then(|| "The request was refused.".to_owned())
            });
        FieldErrors { detail, fields }
    }

    /// The message of a field, or of its first sub-field (`rules[0].rollout` under `rules`).
    pub fn field(&self, name: &str) -> Option<String> {
        let prefix_dot = format!("{name}.");
        let prefix_idx = format!("{name}[");
        let mut hits = self
            .fields
            .iter()
            .filter(|(f, _)| f == name || f.starts_with(&prefix_dot) || f.starts_with(&prefix_idx));
        hits.next().map(|(f, m)| {
            if f == name {
                m.clone()
            } else {
                format!("{f}: {m}")
            }
        })
    }

    /// Whether there is anything to show.
    pub fn any(&self) -> bool {
        self.detail.is_some() || !self.fields.is_empty()
    }
}

/// The operator of a platform session.
fn operator(session: &Session) -> Option<OperatorPrincipal> {
    let role = match session.role.as_str() {
        "operator" => PlatformRole::Operator,
        "auditor" => PlatformRole::Auditor,
        _ => return None,
    };
    Some(OperatorPrincipal {
        user_id: session.user_id.clone(),
        issuer: session.data.get("issuer")?.as_str()?.to_owned(),
        subject: session.data.get("subject")?.as_str()?.to_owned(),
        role,
    })
}

/// Calls the API: `path` with its query, `body` as JSON. The API's future is boxed: a page
/// awaits several at once, and on the stack (1 MiB in wasm) their state would not fit. A write carries an `Idempotency-Key`
/// derived from the session, the form's rendering, the request and its body, so a form sent
/// twice (a double click, a reload) is applied once.
pub async fn call<P: Platform>(
    web: &Web<'_, P>,
    method: Method,
    path: &str,
    body: Option<&Json>,
) -> Reply {
    let Some(session) = &web.session else {
        return Reply {
            status: 401,
            body: Json::Null,
            raw: Vec::new(),
            headers: ::http::HeaderMap::new(),
        };
    };
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let mut builder = ::http::Request::builder()
        .method(method.clone())
        .uri(format!("{}{path}", web.origin))
        .header(api_http::REQUEST_ID, web.request_id.as_str())
        .header(header::ACCEPT, "application/json");
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    // `once` is a random value each rendering of a form carries: the same form sent twice
    // carries the same one, the next rendering another.
    if let Some(once) = web.field("once").filter(|_| method != Method::GET) {
        let key = sha256_hex(
            format!(
                "{}\n{once}\n{method}\n{path}\n{}",
                session.csrf,
                String::from_utf8_lossy(&bytes)
            )
            .as_bytes(),
        );
        builder = builder.header("idempotency-key", format!("console-{}", &key[..40]));
    }
    let req: Request = match builder.body(bytes) {
        Ok(r) => r,
        Err(_) => {
            return Reply {
                status: 400,
                body: Json::Null,
                raw: Vec::new(),
                headers: ::http::HeaderMap::new(),
            }
        }
    };
    let resp = match (session.kind, operator(session)) {
        (Kind::Platform, Some(op)) => Box::pin(api_http::handle_as(web.p, req, op)).await,
        (Kind::Tenant, _) => {
            // The Edgeplane session behind it ended (revoked, user disabled, tenant suspended):
            // so does the console session.
            let Some(access) = super::tenant_signin::access_token(web).await else {
                let _ = super::session::revoke(web.p, &session.token_hash).await;
                return unauthenticated();
            };
            let mut req = req;
            match ::http::HeaderValue::from_str(&format!("Bearer {access}")) {
                Ok(v) => req.headers_mut().insert(header::AUTHORIZATION, v),
                Err(_) => return unauthenticated(),
            };
            let resp = Box::pin(api_http::handle(web.p, req)).await;
            // 401, or 440 (ERR-AUTH-440: the session was revoked or expired).
            if matches!(resp.status().as_u16(), 401 | 440) {
                let _ = super::session::revoke(web.p, &session.token_hash).await;
            }
            resp
        }
        _ => return unauthenticated(),
    };
    let status = resp.status().as_u16();
    let (parts, raw) = resp.into_parts();
    let body = serde_json::from_slice(&raw).unwrap_or(Json::Null);
    Reply {
        status,
        body,
        raw,
        headers: parts.headers,
    }
}

/// Calls the API without credentials (the forms of mailed links, whose token is the
/// capability).
pub async fn call_anonymous<P: Platform>(
    web: &Web<'_, P>,
    method: Method,
    path: &str,
    body: &Json,
) -> Reply {
    let req = ::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", web.origin))
        .header(api_http::REQUEST_ID, web.request_id.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes());
    let Ok(req) = req else {
        return unauthenticated();
    };
    let resp = Box::pin(api_http::handle(web.p, req)).await;
    let status = resp.status().as_u16();
    let (parts, raw) = resp.into_parts();
    let body = serde_json::from_slice(&raw).unwrap_or(Json::Null);
    Reply {
        status,
        body,
        raw,
        headers: parts.headers,
    }
}

fn unauthenticated() -> Reply {
    Reply {
        status: 401,
        body: Json::Null,
        raw: Vec::new(),
        headers: ::http::HeaderMap::new(),
    }
}

/// Percent-encodes a path segment.
pub fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
