//! The journey's steps, each one or two requests through the whole request handling
//! ([`crate::http::handle_synthetic`]: router, caller checks, handlers, storage), so a broken
//! route fails the journey as it would fail a customer. Each step checks what a client would
//! rely on, and on failure says what it got in general terms (a status and problem type).

use ::http::Method;
use serde_json::{json, Value as Json};

use super::super::{Request, Response};
use crate::auth::OperatorPrincipal;
use crate::journeys::canary::{self, Canary};
use crate::ports::{Clock, Platform};
use crate::time::format_rfc3339;
use crate::users::totp;

/// What a failed step says: general terms only.
pub(super) type StepError = String;

/// One journey request.
pub(super) struct Call<'a> {
    /// The method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Acting for this operator on operator routes (the hourly provisioning).
    pub operator: Option<OperatorPrincipal>,
    /// The request id (`journey-<run id>`), so the log lines of a run go together.
    pub request_id: &'a str,
}

impl<'a> Call<'a> {
    /// A call without headers, body or operator.
    pub fn new(method: Method, path: impl Into<String>, request_id: &'a str) -> Self {
        Call {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            operator: None,
            request_id,
        }
    }

    /// With a JSON body.
    pub fn json(mut self, body: &Json) -> Self {
        self.headers
            .push(("content-type", "application/json".to_owned()));
        self.body = body.to_string().into_bytes();
        self
    }

    /// With a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// With a bearer credential.
    pub fn bearer(self, credential: &str) -> Self {
        self.header("authorization", format!("Bearer {credential}"))
    }

    /// Sends it through the request handling; a request that cannot be built is a failure.
    pub async fn send<P: Platform>(self, p: &P) -> Result<Response, StepError> {
        let mut b = ::http::Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(super::super::REQUEST_ID, self.request_id);
        for (name, value) in &self.headers {
            b = b.header(*name, value.as_str());
        }
        let req: Request = b
            .body(self.body)
            .map_err(|_| format!("{} {} could not be built", self.method, self.path))?;
        // Boxed: the journey runs inside a scheduled run that a request may have started.
        Ok(Box::pin(super::super::handle_synthetic(p, req, self.operator)).await)
    }
}

/// The body of an answer as JSON (null when it is not).
pub(super) fn body(resp: &Response) -> Json {
    serde_json::from_slice(resp.body()).unwrap_or(Json::Null)
}

/// "answered 503 (unavailable)": the status and the problem type's last segment, if any.
pub(super) fn unexpected(what: &str, resp: &Response) -> StepError {
    let b = body(resp);
    let kind = b
        .get("type")
        .and_then(Json::as_str)
        .and_then(|t| t.rsplit('/').next())
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    format!("{what} answered {}{kind}", resp.status().as_u16())
}

/// Password sign-in: the canary has TOTP, so the answer is 401 `mfa-required` with an
/// `mfa_token`, which is returned.
pub(super) async fn sign_in<P: Platform>(
    p: &P,
    c: &Canary,
    rid: &str,
) -> Result<String, StepError> {
    let body_in =
        json!({ "tenant": canary::DOMAIN, "email": canary::EMAIL, "password": c.secrets.password });
    let resp = Call::new(Method::POST, "/v1/auth/login", rid)
        .json(&body_in)
        .send(p)
        .await?;
    let b = body(&resp);
    match b.get("mfa_token").and_then(Json::as_str) {
        Some(t) if resp.status().as_u16() == 401 => Ok(t.to_owned()),
        _ => Err(unexpected("POST /v1/auth/login", &resp)),
    }
}

/// The second factor: a TOTP code of now. Returns the access token.
pub(super) async fn second_factor<P: Platform>(
    p: &P,
    c: &Canary,
    mfa_token: &str,
    rid: &str,
) -> Result<String, StepError> {
    let step = totp::step_of(p.clock().now_ms().div_euclid(1000));
    let code = format!(
        "{:06}",
        totp::code_at(&c.secrets.totp_bytes(), u64::try_from(step).unwrap_or(0))
    );
    let resp = Call::new(Method::POST, "/v1/auth/mfa/verify", rid)
        .json(&json!({ "mfa_token": mfa_token, "code": code }))
        .send(p)
        .await?;
    match body(&resp).get("access_token").and_then(Json::as_str) {
        Some(t) if resp.status().is_success() => Ok(t.to_owned()),
        _ => Err(unexpected("POST /v1/auth/mfa/verify", &resp)),
    }
}

/// Introspection of the access token: active, of the canary user and tenant.
pub(super) async fn introspect<P: Platform>(
    p: &P,
    c: &Canary,
    token: &str,
    rid: &str,
) -> Result<(), StepError> {
    let mut call = Call::new(Method::POST, "/oauth/introspect", rid)
        .bearer(&c.secrets.api_key)
        .header("content-type", "application/x-www-form-urlencoded");
    call.body = format!("token={token}").into_bytes();
    let resp = call.send(p).await?;
    let b = body(&resp);
    let active = b.get("active") == Some(&Json::Bool(true))
        && b.get("sub").and_then(Json::as_str) == Some(c.user_id.as_str());
    if resp.status().is_success() && active {
        Ok(())
    } else if resp.status().is_success() {
        Err("POST /oauth/introspect: the token is not active for the canary user".to_owned())
    } else {
        Err(unexpected("POST /oauth/introspect", &resp))
    }
}

/// OFREP evaluation of the canary flag: `true`.
pub(super) async fn evaluate_flag<P: Platform>(
    p: &P,
    c: &Canary,
    rid: &str,
) -> Result<(), StepError> {
    let path = format!("/ofrep/v1/evaluate/flags/{}", canary::FLAG_KEY);
    let resp = Call::new(Method::POST, path, rid)
        .bearer(&c.secrets.api_key)
        .json(&json!({ "context": { "targetingKey": "canary" } }))
        .send(p)
        .await?;
    if !resp.status().is_success() {
        return Err(unexpected("POST /ofrep/v1/evaluate/flags/{key}", &resp));
    }
    match body(&resp).get("value") {
        Some(Json::Bool(true)) => Ok(()),
        _ => Err("POST /ofrep/v1/evaluate/flags/{key}: the canary flag is not true".to_owned()),
    }
}

/// Ingests one billing event under an idempotency key (accepted: 202).
pub(super) async fn ingest<P: Platform>(
    p: &P,
    c: &Canary,
    event_id: &str,
    rid: &str,
) -> Result<(), StepError> {
    let at = format_rfc3339(p.clock().now_ms());
    let event = json!({ "id": event_id, "type": "journey.check", "quantity": 1, "timestamp": at });
    let resp = Call::new(Method::POST, "/v1/billing/events", rid)
        .bearer(&c.secrets.api_key)
        .header("idempotency-key", event_id)
        .json(&event)
        .send(p)
        .await?;
    if resp.status().as_u16() == 202 {
        Ok(())
    } else {
        Err(unexpected("POST /v1/billing/events", &resp))
    }
}

/// Reads the ingested event back from the billing export (the log's unflushed tail).
pub(super) async fn read_back<P: Platform>(
    p: &P,
    c: &Canary,
    event_id: &str,
    rid: &str,
) -> Result<(), StepError> {
    let now = p.clock().now_ms();
    let path = format!(
        "/v1/billing/events?from={}&to={}&limit=1000",
        now - 10 * 60_000,
        now + 60_000
    );
    let resp = Call::new(Method::GET, path, rid)
        .bearer(&c.secrets.api_key)
        .send(p)
        .await?;
    if !resp.status().is_success() {
        return Err(unexpected("GET /v1/billing/events", &resp));
    }
    let found = body(&resp)
        .get("items")
        .and_then(Json::as_array)
        .is_some_and(|items| {
            items
                .iter()
                .any(|e| e.get("id").and_then(Json::as_str) == Some(event_id))
        });
    if found {
        Ok(())
    } else {
        Err("GET /v1/billing/events: the ingested event is not there".to_owned())
    }
}

/// Signs out, so the canary's sessions do not pile up.
pub(super) async fn sign_out<P: Platform>(p: &P, token: &str, rid: &str) -> Result<(), StepError> {
    let resp = Call::new(Method::POST, "/v1/auth/logout", rid)
        .bearer(token)
        .send(p)
        .await?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(unexpected("POST /v1/auth/logout", &resp))
    }
}
