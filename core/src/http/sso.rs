//! Tenant SSO routes (FR-AUTH-003, UC-TENANT-SSO): the owner's configuration
//! (`/v1/tenant/sso`) and the relying-party sign-in (`/v1/auth/sso/start`, `/callback`). The one
//! mapping of the SSO domain errors to problem details is here.

use ::http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::reply::no_store;
use super::sign_in_origin;
use super::tenants::link_base;
use super::{json, login_page, ApiError, Ctx, Request, Response};
use crate::oidc::{self, CompleteLoginError};
use crate::ports::Platform;
use crate::sessions;
use crate::signin::{self, LoginError, SsoOutcome, SsoStepUp, StepUpFactor, UserPrincipal};
use crate::sso::flow::{self, CallbackParams};
use crate::sso::{config, SsoCallbackError, SsoConfigError, SsoConfigInput, SsoSignIn};
use crate::tenants::TenantDomain;

/// Body of `PUT /v1/tenant/sso`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SsoConfigRequest {
    /// `https://` to a public host: loopback, private, link-local (incl. 169.254.169.254),
    /// unique-local, shared, multicast, documentation and unspecified addresses in any IP
    /// spelling, and names such as localhost, `*.local` and `*.internal` are refused. Only in
    /// development, a loopback host (localhost, 127.0.0.1, `[::1]`) over `http://` or
    /// `https://`. Its discovery document must name it exactly.
    #[schema(format = "uri")]
    issuer_url: String,
    /// Edgeplane's client id at the IdP: 1 to 512 printable characters.
    #[schema(min_length = 1, max_length = 512)]
    client_id: String,
    /// Required for a new configuration and whenever `issuer_url` or `client_id` changes (a
    /// stored secret is never sent to another issuer); omitted, it keeps the stored one. Sealed
    /// with AES-256-GCM.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 512)]
    client_secret: Option<String>,
    /// Whether SSO sign-in is on (default: on).
    #[serde(default)]
    #[schema(default = true)]
    enabled: Option<bool>,
    /// Whether unknown verified emails get an account on first sign-in (default: off).
    #[serde(default)]
    #[schema(default = false)]
    allow_jit: Option<bool>,
    /// The role of such accounts: `user` (default) or `admin`.
    #[serde(default)]
    #[schema(schema_with = jit_role_schema)]
    jit_role: Option<String>,
}

fn jit_role_schema() -> utoipa::openapi::Object {
    let mut schema = crate::kernel::schema::nullable_string_enum(&config::JIT_ROLES);
    schema.default = Some("user".into());
    schema
}

/// The problem of a refused configuration. A failed discovery names only which document
/// failed, in Edgeplane's words: the owner fixes the issuer or the IdP. The upstream status or
/// network error goes to the request's log line only; in the answer it would let this check
/// probe what answers where.
fn config_problem(e: &SsoConfigError) -> ApiError {
    let mut problem = ApiError::from(e);
    if let SsoConfigError::Discovery(what) = e {
        problem.cause = what.cause().map(str::to_owned);
    }
    problem
}

/// `GET /v1/tenant/sso` (owner): the configuration, never the secret.
pub(super) async fn get_config<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    let view = config::get(ctx.platform, &c.tid, &c.sub)
        .await
        .map_err(|e| config_problem(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &view)?))
}

/// `PUT /v1/tenant/sso` (owner): discovery-checked, sealed, audited.
pub(super) async fn put_config<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let body: SsoConfigRequest = json::parse_body(req)?;
    let input = SsoConfigInput {
        issuer_url: body.issuer_url,
        client_id: body.client_id,
        client_secret: body.client_secret,
        enabled: body.enabled,
        allow_jit: body.allow_jit,
        jit_role: body.jit_role,
    };
    let c = &principal.claims;
    let view = config::save(ctx.platform, &c.tid, &c.sub, &input, &ctx.request_id)
        .await
        .map_err(|e| config_problem(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &view)?))
}

/// `DELETE /v1/tenant/sso` (owner): 204, audited.
pub(super) async fn delete_config<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    config::delete(ctx.platform, &c.tid, &c.sub, &ctx.request_id)
        .await
        .map_err(|e| config_problem(&e))?;
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

/// The query parameters of a request, first value of each name.
fn query_param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether the client asked for HTML first (a browser navigating), not JSON.
fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.trim().starts_with("text/html"))
        })
}

/// `GET /v1/auth/sso/start?tenant=<domain>&login_flow=&redirect_to=`: 302 to the tenant's IdP.
pub(super) async fn start<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let tenant = query_param(req, "tenant")
        .ok_or_else(|| ApiError::invalid_field("tenant", "is required"))?;
    let domain = TenantDomain::parse(&tenant)
        .map_err(|_| ApiError::invalid_field("tenant", "is not a tenant domain"))?;
    let callback = format!("{}/v1/auth/sso/callback", link_base(ctx, req)?);
    let started = flow::start(
        ctx.platform,
        &domain,
        &callback,
        query_param(req, "login_flow"),
        query_param(req, "redirect_to"),
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::FOUND;
    let location = HeaderValue::from_str(&started.authorization_url)
        .map_err(|_| ApiError::internal("authorization URL is not a header value"))?;
    resp.headers_mut().insert(header::LOCATION, location);
    Ok(no_store(resp))
}

/// The problem of a refused callback, with the IdP's own error code when it sent one.
fn callback_problem(e: &SsoCallbackError) -> ApiError {
    let problem = ApiError::from(e);
    match e {
        SsoCallbackError::IdpError(idp) => problem.with_extension("idp_error", idp.clone().into()),
        _ => problem,
    }
}

/// `GET /v1/auth/sso/callback?code=&state=` (or `error=`): validates the IdP's answer and,
/// through the risk check (NFR-SEC-006), starts a session exactly as password sign-in does,
/// with `amr` `sso`; or holds it for the same local step-up as a password sign-in's.
pub(super) async fn callback<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let params = CallbackParams {
        code: query_param(req, "code"),
        state: query_param(req, "state"),
        error: query_param(req, "error"),
        iss: query_param(req, "iss"),
    };
    // NFR-SEC-006: the browser's signed device cookie (the callback is a request to this
    // host), else an API client's device header, else a fresh device whose cookie is set
    // once the sign-in completes.
    let https = super::oidc::is_https(req);
    let cookie = sign_in_origin::cookie_device(ctx.platform, req, https);
    let named = cookie.or(sign_in_origin::api_context(ctx, req).device);
    let fresh = named.is_none();
    let origin = sign_in_origin::context(ctx, req, named);
    let state = params.state.clone().unwrap_or_default();
    let platform = ctx.platform;
    let fresh_device = |login_flow: Option<&str>| {
        sign_in_origin::flow_device(platform, login_flow.unwrap_or(&state))
    };
    let outcome = signin::sso_sign_in(
        ctx.platform,
        &params,
        &origin,
        fresh_device,
        &ctx.request_id,
    )
    .await;
    let signed_in = match outcome {
        Ok(SsoOutcome::SignedIn(s)) => s,
        Ok(SsoOutcome::StepUp(step_up)) => {
            ctx.tenant_id = Some(step_up.sign_in.user.tenant_id.clone());
            return step_up_answer(ctx, req, &step_up).await;
        }
        Err(e) => return refusal(req, &e),
    };
    ctx.tenant_id = Some(signed_in.user.tenant_id.clone());
    let mut resp = signed_in_answer(ctx, &signed_in).await?;
    if fresh {
        let device = fresh_device(signed_in.login_flow.as_deref());
        if let Some(c) = sign_in_origin::device_cookie(ctx.platform, &device, https) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(resp)
}

/// The answer of a refused callback: a browser gets a page saying why; API clients (and every
/// 5xx, whose cause is logged) get the problem details.
fn refusal(req: &Request, e: &SsoCallbackError) -> Result<Response, ApiError> {
    let problem = callback_problem(e);
    if wants_html(req) && problem.status.is_client_error() {
        let mut page = login_page::error_page(
            problem.status,
            "Sign-in failed",
            &format!(
                "{} Go back to the application and sign in again.",
                problem.detail
            ),
        );
        for (name, value) in problem.headers {
            page.headers_mut().append(name, value);
        }
        return Ok(page);
    }
    Err(problem)
}

/// The answer of an SSO sign-in held for a step-up (NFR-SEC-006). Started from the universal
/// login page: the page's second-factor step, whose answer goes on to the managed app as a
/// password sign-in's does. Otherwise the 401 `mfa-required` of `/v1/auth/login`, its
/// `mfa_token` for `/v1/auth/mfa/verify`.
async fn step_up_answer<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    step_up: &SsoStepUp,
) -> Result<Response, ApiError> {
    if let Some(flow_id) = step_up.sign_in.login_flow.as_deref() {
        return super::oidc::sso_step_up_page(ctx, req, flow_id, &step_up.mfa_token).await;
    }
    let mfa_token = step_up.mfa_token.clone();
    Err(super::sign_in::login_problem(&match step_up.factor {
        StepUpFactor::EmailCode => LoginError::EmailCodeRequired { mfa_token },
        StepUpFactor::SecondFactor => LoginError::MfaRequired {
            mfa_token,
            enroll: false,
        },
    }))
}

/// The answer of a completed SSO sign-in: started from the universal login page, its
/// authorization request resumes, so the browser goes back to the managed app with a code
/// (FR-AUTH-001 with FR-AUTH-003); otherwise the session's tokens.
async fn signed_in_answer<P: Platform>(
    ctx: &Ctx<'_, P>,
    signed_in: &SsoSignIn,
) -> Result<Response, ApiError> {
    if let Some(flow_id) = signed_in.login_flow.as_deref() {
        return Ok(
            match oidc::complete_login_flow(
                ctx.platform,
                flow_id,
                &signed_in.user,
                &["sso"],
                signed_in.attempt_id.as_deref(),
                signed_in.decided.clone(),
                &ctx.request_id,
            )
            .await
            {
                Ok(location) => {
                    let mut resp = Response::new(Vec::new());
                    *resp.status_mut() = StatusCode::FOUND;
                    let location = HeaderValue::from_str(&location)
                        .map_err(|_| ApiError::internal("redirect URI is not a header value"))?;
                    resp.headers_mut().insert(header::LOCATION, location);
                    login_page::secure_headers(&mut resp, None);
                    resp
                }
                Err(CompleteLoginError::Storage(e)) => {
                    return Err(ApiError::internal(e.to_string()))
                }
                Err(e) => login_page::error_page(
                    StatusCode::FORBIDDEN,
                    "Sign-in not possible",
                    &e.to_string(),
                ),
            },
        );
    }
    let attempt = signed_in.attempt_id.as_deref();
    let pair = sessions::start(
        ctx.platform,
        &signed_in.user,
        &["sso"],
        attempt,
        signed_in.decided.clone(),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let mut body = serde_json::to_value(&pair).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(obj), Some(to)) = (body.as_object_mut(), signed_in.redirect_to.clone()) {
        obj.insert("redirect_to".to_owned(), to.into());
    }
    Ok(no_store(json::response(StatusCode::OK, &body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sso::discovery::{DiscoveryError, Document};

    /// A failed discovery tells the caller which document failed, and keeps
    /// the upstream cause for the log line.
    #[test]
    fn fr_auth_003_discovery_problem_keeps_the_cause_out_of_the_answer() {
        let cause = "GET https://idp.example.com/x: destination unavailable: connect 10.1.2.3";
        let problem = config_problem(&SsoConfigError::Discovery(DiscoveryError::Unreachable {
            document: Document::Discovery,
            cause: cause.to_owned(),
        }));
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            problem.detail,
            "issuer_url: the issuer's discovery document could not be fetched"
        );
        let shown = serde_json::to_string(&problem.extensions).unwrap_or_default();
        assert!(!shown.contains("10.1.2.3"), "{shown}");
        assert_eq!(problem.cause.as_deref(), Some(cause));
    }
}
