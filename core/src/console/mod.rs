//! The web consoles under `/console/` (IF-OPS-CONSOLE, IF-AUDIT-CONSOLE, IF-TENANT-CONSOLE):
//! server-rendered pages over the same API the JSON clients use.
//!
//! - **Pages are forms.** Every action is a plain HTML form posted to the console, which checks
//!   the session and its CSRF token and then makes the API request on the signed-in person's
//!   behalf (the `api` module): the API's own caller checks, validation, idempotency and
//!   audit records apply unchanged, and its field errors are shown next to the fields. Hiding a
//!   button is never the control.
//! - **Sessions** ([`session`]): a random token in an `HttpOnly`, `SameSite=Lax` cookie
//!   (`__Host-` and `Secure` over https; on a loopback development server over plain http, the
//!   same cookie without the prefix, which browsers reserve to https), 30 minutes idle, 12 hours
//!   at most, revoked on the server at sign-out.
//! - **Sign-in**: operators and auditors at their identity provider ([`platform_signin`]).
//! - **Headers**: a Content Security Policy without inline script or style and with
//!   `frame-ancestors 'none'`, `no-store`, no referrer to other origins (`same-origin`: with `no-referrer` a browser sends `Origin: null` on a form post). Nothing is loaded from another origin.

mod account;
mod api;
mod assets;
mod auditor;
mod operator;
mod page;
mod plans;
pub mod platform_signin;
mod rules;
mod signin;
mod tenant;
mod tenant_signin;
mod usage_chart;

pub use crate::sessions::console as session;

#[cfg(test)]
mod tests;

use ::http::{header, HeaderValue, Method, StatusCode};
use maud::Markup;

use crate::http::{self as api_http, Request, Response};
use crate::ports::{Clock, Logger, Platform, Secrets};
use crate::tenants::configured_base_url;
use session::Session;

/// Where the consoles live.
pub const PREFIX: &str = "/console";

/// Whether a path is the console's (the runtime's one check before routing a request here).
pub fn is_console_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

/// Largest form body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The policy of every console answer: scripts and styles only from this origin's
/// `/console/assets/`, no framing, forms posted only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One console request, as its handlers see it.
pub(crate) struct Web<'a, P: Platform> {
    pub p: &'a P,
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    pub https: bool,
    pub origin: String,
    pub request_id: String,
    pub session: Option<Session>,
    /// The headers of the request, for an `Origin` check.
    pub origin_header: Option<String>,
    /// A tenant session's tokens once opened (or refreshed) by this request.
    tenant_tokens: std::cell::RefCell<Option<tenant_signin::Tokens>>,
}

impl<P: Platform> Web<'_, P> {
    /// A query parameter (first of the name), trimmed; `None` when absent or empty.
    pub fn q(&self, name: &str) -> Option<&str> {
        lookup(&self.query, name)
    }

    /// A form field (first of the name), as typed; `None` when absent.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A form field trimmed, `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.field(name).unwrap_or("").trim()
    }

    /// Every value of a repeated form field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The session's CSRF token, for the forms of a page.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    pub fn development(&self) -> bool {
        self.p.secrets().get("EDGEPLANE_ENV").as_deref() == Some("development")
    }

    /// The cookie names of this scheme: `__Host-` over https; without the prefix (and without
    /// `Secure`) on a plain-http development server.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.https {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    pub fn cookie(&self, base: &str) -> Option<&str> {
        let name = self.cookie_name(base);
        self.cookies
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` over https;
    /// `max_age` 0 deletes it.
    pub fn set_cookie(&self, base: &str, value: &str, max_age_secs: i64) -> String {
        let secure = if self.https { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}",
            self.cookie_name(base)
        )
    }
}

fn lookup<'v>(pairs: &'v [(String, String)], name: &str) -> Option<&'v str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session cookie's base name.
pub(crate) const SESSION_COOKIE: &str = "edgeplane-console";
/// The cookie holding the state of a sign-in in progress.
pub(crate) const SIGNIN_COOKIE: &str = "edgeplane-console-signin";

/// What a console handler answers.
pub(crate) enum Answer {
    /// A page.
    Page(StatusCode, Markup),
    /// A redirect (303: the browser follows with GET).
    Redirect(String),
    /// A static asset: content type and body.
    Asset(&'static str, &'static str),
    /// A file to save (`Content-Disposition: attachment`): content type, file name (letters,
    /// digits, `.`, `_` and `-` only, so it needs no quoting) and body.
    Download(&'static str, String, Vec<u8>),
}

impl Answer {
    pub fn page(markup: Markup) -> Self {
        Answer::Page(StatusCode::OK, markup)
    }

    pub fn to(location: impl Into<String>) -> Self {
        Answer::Redirect(location.into())
    }
}

/// Serves one console request. Never fails: an error is a page.
pub async fn handle<P: Platform>(p: &P, req: Request) -> Response {
    let started = p.clock().now_ms();
    let request_id = api_http::request_id(&req, p);
    let request_https = req.uri().scheme_str() == Some("https");
    let (parts, body) = req.into_parts();
    // The console's origin is PUBLIC_BASE_URL; only a development server takes it from the
    // request (never a deployment: the Host header is the client's to choose).
    let configured = configured_base_url(p);
    let origin = configured
        .clone()
        .unwrap_or_else(|| origin_of(&parts.uri, &parts.headers, request_https));
    let https = origin.starts_with("https://");
    let mut web = Web {
        p,
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default(),
        form: Vec::new(),
        cookies: cookies(&parts.headers),
        https,
        origin,
        request_id,
        session: None,
        origin_header: parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        tenant_tokens: std::cell::RefCell::new(None),
    };
    let mut set_cookies = Vec::new();
    let answer = if configured.is_none() && !web.development() {
        page::error(
            &web,
            StatusCode::SERVICE_UNAVAILABLE,
            "The console needs PUBLIC_BASE_URL, this deployment's https origin.",
        )
    } else {
        match prepare(&mut web, &parts.headers, &body).await {
            Ok(()) => route(&mut web, &mut set_cookies).await,
            Err(answer) => answer,
        }
    };
    let mut resp = respond(answer, set_cookies);
    if let Ok(v) = HeaderValue::from_str(&web.request_id) {
        resp.headers_mut().insert(api_http::REQUEST_ID, v);
    }
    api_http::hardening(&mut resp, request_https || https);
    if parts.method == Method::HEAD {
        resp.body_mut().clear();
    }
    log(
        &web,
        resp.status(),
        p.clock().now_ms().saturating_sub(started),
    );
    resp
}

/// Reads the session and, for a POST, the form, refusing a form without the session's CSRF
/// token or from another origin.
async fn prepare<P: Platform>(
    web: &mut Web<'_, P>,
    headers: &::http::HeaderMap,
    body: &[u8],
) -> Result<(), Answer> {
    let plain_http_allowed = web.development() && is_loopback_origin(&web.origin);
    if !web.https && !plain_http_allowed {
        return Err(page::error(
            web,
            StatusCode::FORBIDDEN,
            "The console is served over https only.",
        ));
    }
    if let Some(token) = web.cookie(SESSION_COOKIE).map(str::to_owned) {
        web.session = match session::load(web.p, &token).await {
            Ok(s) => s,
            Err(e) => {
                log_error(web, "console session lookup failed", &e.to_string());
                return Err(page::unavailable(web));
            }
        };
    }
    if web.method != Method::POST {
        return Ok(());
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !form_type.starts_with("application/x-www-form-urlencoded") || body.len() > MAX_FORM_BYTES {
        return Err(page::error(
            web,
            StatusCode::BAD_REQUEST,
            "This address takes a form posted from a console page.",
        ));
    }
    web.form = form_urlencoded::parse(body).into_owned().collect();
    // A form posted from another site: the browser names the origin it came from.
    if web
        .origin_header
        .as_deref()
        .is_some_and(|o| o != web.origin)
    {
        return Err(page::error(
            web,
            StatusCode::FORBIDDEN,
            "This form was not sent from a console page.",
        ));
    }
    // A mailed link's form carries its own capability (the token) and needs no session.
    if web.path.starts_with("/console/account/") {
        return Ok(());
    }
    let Some(session) = &web.session else {
        return Err(Answer::to(signin::signin_url(web, "expired")));
    };
    let presented = web.field("csrf").unwrap_or("");
    if !crate::http::constant_time_eq(presented.as_bytes(), session.csrf.as_bytes()) {
        return Err(page::error(
            web,
            StatusCode::FORBIDDEN,
            "This form is out of date or was not sent from a console page. Open the page again and resend it.",
        ));
    }
    Ok(())
}

async fn route<P: Platform>(web: &mut Web<'_, P>, set_cookies: &mut Vec<String>) -> Answer {
    let path = web.path.clone();
    let segments: Vec<&str> = path
        .trim_start_matches(PREFIX)
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get = web.method == Method::GET || web.method == Method::HEAD;
    let post = web.method == Method::POST;
    match (segments.as_slice(), get, post) {
        (["assets", name], true, _) => assets::serve(web, name),
        ([], true, _) => home(web),
        (["signin"], true, _) => signin::page(web),
        (["signin", "operator"], true, _) => signin::start_platform(web, set_cookies).await,
        (["signin", "tenant"], true, _) => tenant_signin::start(web, set_cookies).await,
        (["auth", "callback"], true, _) => signin::callback(web, set_cookies).await,
        (["auth", "tenant", "callback"], true, _) => {
            tenant_signin::callback(web, set_cookies).await
        }
        (["signout"], _, true) => signin::signout(web, set_cookies).await,
        (["account", more @ ..], _, _) => account::route(web, more, get).await,
        (rest, _, _) => match &web.session {
            None if get => Answer::to(signin::signin_url_returning(web)),
            None => Answer::to(signin::signin_url(web, "expired")),
            Some(s) if s.kind == session::Kind::Platform => match rest {
                ["audit", more @ ..] => auditor::route(web, more).await,
                ["plans", more @ ..] => plans::route(web, more).await,
                _ => operator::route(web, rest).await,
            },
            Some(_) => tenant::route(web, rest).await,
        },
    }
}

fn home<P: Platform>(web: &Web<'_, P>) -> Answer {
    match &web.session {
        None => Answer::to(format!("{PREFIX}/signin")),
        Some(s) if s.kind == session::Kind::Platform => Answer::to(format!("{PREFIX}/tenants")),
        Some(_) => Answer::to(format!("{PREFIX}/tenant/users")),
    }
}

/// Turns an answer into a response with the console's headers.
fn respond(answer: Answer, set_cookies: Vec<String>) -> Response {
    let mut builder = ::http::Response::builder();
    let body = match answer {
        Answer::Page(status, markup) => {
            builder = builder
                .status(status)
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8");
            markup.into_string().into_bytes()
        }
        Answer::Redirect(location) => {
            builder = builder
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, location);
            Vec::new()
        }
        Answer::Asset(content_type, body) => {
            builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type);
            body.as_bytes().to_vec()
        }
        Answer::Download(content_type, filename, body) => {
            let safe: String = filename
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{safe}\""),
                );
            body
        }
    };
    builder = builder
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "same-origin")
        .header("cross-origin-opener-policy", "same-origin");
    for c in set_cookies {
        builder = builder.header(header::SET_COOKIE, c);
    }
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Vec::new());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn cookies(headers: &::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// This request's origin, `scheme://host[:port]`, from its URL or `Host` header.
fn origin_of(uri: &::http::Uri, headers: &::http::HeaderMap, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    format!("{scheme}://{host}")
}

fn is_loopback_origin(origin: &str) -> bool {
    let host = origin
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn log<P: Platform>(web: &Web<'_, P>, status: StatusCode, duration_ms: i64) {
    let line = serde_json::json!({
        "ts": web.p.clock().now_ms(), "level": if status.is_server_error() { "error" } else { "info" },
        "msg": "console", "method": web.method.as_str(), "status": status.as_u16(),
        "duration_ms": duration_ms, "request_id": web.request_id,
    });
    web.p.logger().line(&line.to_string());
}

pub(crate) fn log_error<P: Platform>(web: &Web<'_, P>, msg: &str, cause: &str) {
    let line = serde_json::json!({
        "ts": web.p.clock().now_ms(), "level": "error", "msg": msg, "error": cause,
        "request_id": web.request_id,
    });
    web.p.logger().line(&line.to_string());
}
