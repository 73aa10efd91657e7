//! The OpenID Connect provider's routes (FR-AUTH-001 OIDC): discovery, authorization with the
//! universal login page (IF-LOGIN-UI), token, userinfo, end-session, and the operator route
//! setting an app's client secret.
//!
//! The token endpoint answers errors as RFC 6749 5.2 JSON (`error`, `error_description`), which
//! OAuth client libraries parse, rather than problem details; the HTML routes answer HTML.

use ::http::{header, HeaderValue, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::callers::client_address;
use super::login_page::{self, error_page, step_page, Note, Step};
use super::sign_in_origin;
use super::tenants::{link_base, request_origin};
use super::{json, ApiError, Ctx, Request, Response};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::crypto;
use crate::kernel::schema::string_enum;
use crate::kernel::ErrorKind;
use crate::oidc::{
    self, AuthorizeError, AuthorizeRequest, ClientSecretError, CompleteLoginError, EndSessionError,
    Flow, FlowError, TokenError, TokenRequest,
};
use crate::ports::{Platform, Stmt};
use crate::sessions;
use crate::signin;
use crate::signin::{AccessError, LoginError, LoginRequest, VerifyMfaError};
use crate::tenants::{Email, TenantDomain};
use crate::users;
use crate::webauthn::{AuthenticationResponse, RelyingParty};

/// Longest password read from the login form, in bytes (as `/v1/auth/login`).
const MAX_PASSWORD_BYTES: usize = 1024;

/// The provider's issuer: `PUBLIC_BASE_URL` (see [`link_base`]); the login page redirects and
/// the tokens it issues name it.
fn issuer<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<String, ApiError> {
    link_base(ctx, req)
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn form_pairs(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.body())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The single value of `name`; a repeated parameter counts as absent (RFC 6749 3.1).
fn single(pairs: &[(String, String)], name: &str) -> Option<String> {
    let mut it = pairs.iter().filter(|(k, _)| k == name);
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Some(v.clone()),
        _ => None,
    }
}

/// The form `pairs` as `T`: each name's single value as a string (a repeated name counts as
/// absent, as in [`single`]); names `T` does not have are ignored.
///
/// Every form type has only string fields, each optional or read as empty when missing (a
/// field the schema requires is one its handler refuses empty), so any set of pairs reads;
/// should one ever not, it reads as if no field were sent.
fn read_form<T: DeserializeOwned + Default>(pairs: &[(String, String)]) -> T {
    let mut values = serde_json::Map::new();
    let mut repeated = Vec::new();
    for (k, v) in pairs {
        if values.insert(k.clone(), v.clone().into()).is_some() {
            repeated.push(k);
        }
    }
    for k in repeated {
        values.remove(k);
    }
    serde_json::from_value(serde_json::Value::Object(values)).unwrap_or_default()
}

fn redirect(location: &str) -> Response {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// OpenID Connect Discovery 1.0 provider metadata: exactly what is implemented. Every member
/// is always sent; the schema requires those the specification requires.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OidcProviderMetadata)]
pub struct ProviderMetadata {
    /// The issuer identifier.
    issuer: String,
    /// `/oauth/authorize`
    authorization_endpoint: String,
    /// `/oauth/token`
    token_endpoint: String,
    /// `/oauth/userinfo`
    #[schema(required = false)]
    userinfo_endpoint: String,
    /// `/.well-known/jwks.json`
    jwks_uri: String,
    /// `/oauth/logout`
    #[schema(required = false)]
    end_session_endpoint: String,
    /// `code`.
    response_types_supported: &'static [&'static str],
    /// `query`.
    #[schema(required = false)]
    response_modes_supported: &'static [&'static str],
    /// `authorization_code` and `refresh_token`.
    #[schema(required = false)]
    grant_types_supported: &'static [&'static str],
    /// `public`.
    subject_types_supported: &'static [&'static str],
    /// `EdDSA`.
    id_token_signing_alg_values_supported: &'static [&'static str],
    /// `client_secret_basic`, `client_secret_post` and `none` (public clients).
    #[schema(required = false)]
    token_endpoint_auth_methods_supported: &'static [&'static str],
    /// `S256`.
    #[schema(required = false)]
    code_challenge_methods_supported: &'static [&'static str],
    /// The scopes the provider knows.
    #[schema(required = false)]
    scopes_supported: &'static [&'static str],
    /// The claims an ID token or userinfo answer may carry.
    #[schema(required = false)]
    claims_supported: &'static [&'static str],
    /// Always false.
    #[schema(required = false)]
    claims_parameter_supported: bool,
    /// Always false.
    #[schema(required = false)]
    request_parameter_supported: bool,
    /// Always false.
    #[schema(required = false)]
    request_uri_parameter_supported: bool,
    /// `none` and `login`.
    #[schema(required = false)]
    prompt_values_supported: &'static [&'static str],
}

/// The discovery document (OpenID Connect Discovery 1.0): exactly what is implemented.
fn discovery_document(issuer: &str) -> ProviderMetadata {
    ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: format!("{issuer}/oauth/authorize"),
        token_endpoint: format!("{issuer}/oauth/token"),
        userinfo_endpoint: format!("{issuer}/oauth/userinfo"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        end_session_endpoint: format!("{issuer}/oauth/logout"),
        response_types_supported: &["code"],
        response_modes_supported: &["query"],
        grant_types_supported: &["authorization_code", "refresh_token"],
        subject_types_supported: &["public"],
        id_token_signing_alg_values_supported: &["EdDSA"],
        token_endpoint_auth_methods_supported: &[
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        code_challenge_methods_supported: &["S256"],
        scopes_supported: oidc::SCOPES,
        claims_supported: oidc::CLAIMS,
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        prompt_values_supported: &["none", "login"],
    }
}

/// An RFC 6749 5.2 error response of the token endpoint. Every member is always sent; the
/// schema requires only `error`, as RFC 6749 does.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError<'a> {
    /// The error code: `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unsupported_grant_type`, `temporarily_unavailable` or `server_error`.
    error: &'static str,
    /// Human-readable detail.
    #[schema(required = false)]
    error_description: String,
    /// The request id.
    #[schema(required = false)]
    request_id: &'a str,
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
pub(super) async fn discovery<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let mut resp = json::response(StatusCode::OK, &discovery_document(&issuer(ctx, req)?))?;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(resp)
}

/// `GET /oauth/assets/login.css`: the login page's only stylesheet.
pub(super) fn login_css() -> Result<Response, ApiError> {
    Ok(asset(login_page::LOGIN_CSS, "text/css; charset=utf-8"))
}

/// `GET /oauth/assets/passkey.js`: the second-factor step's passkey button.
pub(super) fn passkey_js() -> Result<Response, ApiError> {
    Ok(asset(
        login_page::PASSKEY_JS,
        "text/javascript; charset=utf-8",
    ))
}

/// A static asset of the login page, cached for an hour.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = Response::new(body.as_bytes().to_vec());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The CSRF cookie of a flow: per flow (so two tabs do not clash), `__Host-` and `Secure` on
/// https, `SameSite=Lax`, `HttpOnly`, as long as the flow lives.
fn csrf_cookie_name(req: &Request, flow_id: &str) -> String {
    let tag: String = crypto::sha256_hex(flow_id.as_bytes())
        .chars()
        .take(12)
        .collect();
    if is_https(req) {
        format!("__Host-ep_csrf_{tag}")
    } else {
        format!("ep_csrf_{tag}")
    }
}

/// Whether the request came over https (the cookies' `__Host-` names and `Secure`).
pub(super) fn is_https(req: &Request) -> bool {
    request_origin(req).starts_with("https://")
}

fn set_csrf_cookie(resp: &mut Response, req: &Request, flow_id: &str, csrf: &str) {
    let name = csrf_cookie_name(req, flow_id);
    let max_age = oidc::FLOW_TTL_MS / 1000;
    let cookie = if is_https(req) {
        format!("{name}={csrf}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax")
    } else {
        format!("{name}={csrf}; Path=/oauth/authorize; Max-Age={max_age}; HttpOnly; SameSite=Lax")
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `GET /oauth/authorize`: checks the request, starts a login flow and shows the first step.
pub(super) async fn authorize<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let q = query_pairs(req);
    let areq = AuthorizeRequest {
        client_id: single(&q, "client_id"),
        redirect_uri: single(&q, "redirect_uri"),
        response_type: single(&q, "response_type"),
        scope: single(&q, "scope"),
        state: single(&q, "state"),
        nonce: single(&q, "nonce"),
        code_challenge: single(&q, "code_challenge"),
        code_challenge_method: single(&q, "code_challenge_method"),
        prompt: single(&q, "prompt"),
        login_hint: single(&q, "login_hint"),
        tenant: single(&q, "tenant"),
        request_object: q.iter().any(|(k, _)| k == "request" || k == "request_uri"),
        response_mode: single(&q, "response_mode"),
    };
    let started = match oidc::start_authorization(ctx.platform, &areq).await {
        Ok(s) => s,
        Err(AuthorizeError::UnknownClient) => return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in request not valid",
            "The application that sent you here is not known (client_id). Go back and try again.",
        )),
        Err(AuthorizeError::InvalidRedirectUri) => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in request not valid",
                "The application's redirect_uri is not registered. Go back and try again.",
            ))
        }
        Err(AuthorizeError::Redirect { location, .. }) => return Ok(redirect(&location)),
        Err(AuthorizeError::Storage(e)) => return Err(ApiError::internal(e.to_string())),
    };
    let email = areq
        .login_hint
        .as_deref()
        .filter(|h| Email::parse(h).is_ok())
        .unwrap_or("");
    let step = if started.flow.tenant.is_some() {
        Step::Password { email }
    } else {
        Step::Tenant
    };
    let mut resp = step_page(
        StatusCode::OK,
        &started.flow,
        &started.flow_id,
        &started.csrf,
        step,
        Note::None,
    );
    set_csrf_cookie(&mut resp, req, &started.flow_id, &started.csrf);
    Ok(resp)
}

/// The body of `POST /oauth/authorize/tenant`: step 1, the organization.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcLoginTenantRequest)]
pub(super) struct LoginTenantForm {
    /// The login flow id from the page.
    #[schema(required = true)]
    #[serde(default)]
    flow: String,
    /// The CSRF token of the page (also in the flow's cookie).
    #[schema(required = true)]
    #[serde(default)]
    csrf: String,
    /// The tenant's domain; without one the step is shown again.
    #[schema(required = true)]
    #[serde(default)]
    tenant: String,
}

/// The body of `POST /oauth/authorize/login`: step 2, email and password.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcLoginPasswordRequest)]
pub(super) struct LoginPasswordForm {
    /// The login flow id from the page.
    #[schema(required = true)]
    #[serde(default)]
    flow: String,
    /// The CSRF token of the page (also in the flow's cookie).
    #[schema(required = true)]
    #[serde(default)]
    csrf: String,
    /// The user's email.
    #[schema(required = true)]
    #[serde(default)]
    email: String,
    /// The password.
    #[schema(required = true)]
    #[serde(default)]
    password: String,
}

/// The body of `POST /oauth/authorize/mfa`: the second factor, a code or a passkey assertion
/// (or, in an enrollment, the first code of the new key).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcLoginMfaRequest)]
pub(super) struct LoginMfaForm {
    /// The login flow id from the page.
    #[schema(required = true)]
    #[serde(default)]
    flow: String,
    /// The CSRF token of the page (also in the flow's cookie).
    #[schema(required = true)]
    #[serde(default)]
    csrf: String,
    /// The pending sign-in of the password step.
    #[schema(required = true)]
    #[serde(default)]
    mfa_token: String,
    /// TOTP or recovery code.
    #[schema(nullable = false)]
    code: Option<String>,
    /// Instead of `code`: the passkey assertion (AuthenticationResponseJSON) answering the
    /// options the page carries, posted by /oauth/assets/passkey.js.
    #[schema(nullable = false)]
    webauthn: Option<String>,
    /// Enrollment only: the key shown, sent back for display (the check uses the stored one).
    #[schema(nullable = false)]
    enroll_secret: Option<String>,
    /// Enrollment only: the otpauth URI shown, sent back for display.
    #[schema(nullable = false)]
    otpauth_uri: Option<String>,
}

/// The body of `POST /oauth/authorize/forgot`: a password reset link for the typed email.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcLoginForgotRequest)]
pub(super) struct LoginForgotForm {
    /// The login flow id from the page.
    #[schema(required = true)]
    #[serde(default)]
    flow: String,
    /// The CSRF token of the page (also in the flow's cookie).
    #[schema(required = true)]
    #[serde(default)]
    csrf: String,
    /// The user's email; without one the page asks for it.
    #[schema(required = true)]
    #[serde(default)]
    email: String,
}

/// The body of `POST /oauth/authorize/continue`: on from the recovery codes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcLoginContinueRequest)]
pub(super) struct LoginContinueForm {
    /// The login flow id from the page.
    #[schema(required = true)]
    #[serde(default)]
    flow: String,
    /// The CSRF token of the page (also in the flow's cookie).
    #[schema(required = true)]
    #[serde(default)]
    csrf: String,
}

/// A form post of the login page, its flow loaded and its CSRF token checked.
struct Posted {
    flow_id: String,
    csrf: String,
    flow: Flow,
}

/// Loads the flow `flow_id` of a form post and checks the post's CSRF token `csrf` twice: it
/// must equal the flow's cookie and the token stored (hashed) with the flow.
async fn posted<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    flow_id: &str,
    csrf: &str,
) -> Result<Posted, Response> {
    let (flow_id, csrf) = (flow_id.to_owned(), csrf.to_owned());
    let flow = match oidc::load_flow(ctx.platform, &flow_id).await {
        Ok(f) => f,
        Err(FlowError::Storage(e)) => {
            ctx.log("error", "login flow read failed", Some("storage"), &e.to_string());
            return Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Sign-in is unavailable right now. Try again in a moment.",
            ));
        }
        Err(_) => {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request has expired or was already used. Go back to the application and sign in again.",
            ))
        }
    };
    let cookie_ok = cookie(req, &csrf_cookie_name(req, &flow_id))
        .is_some_and(|c| oidc::ct_eq(c.as_bytes(), csrf.as_bytes()));
    if !cookie_ok || !flow.csrf_ok(&csrf) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form not accepted",
            "The form was not sent from this sign-in page, or your browser blocked its cookie. Go back to the application and sign in again.",
        ));
    }
    Ok(Posted {
        flow_id,
        csrf,
        flow,
    })
}

/// The email and password step again, with `message` (a step expired, or sign in first).
fn password_step(p: &Posted, status: StatusCode, message: &str) -> Response {
    step_page(
        status,
        &p.flow,
        &p.flow_id,
        &p.csrf,
        Step::Password { email: "" },
        Note::Error(message),
    )
}

fn unavailable(ctx: &Ctx<'_, impl Platform>, p: &Posted, code: &str, cause: &str) -> Response {
    ctx.log("error", "sign-in failed", Some(code), cause);
    password_step(
        p,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in is unavailable right now. Try again in a moment.",
    )
}

/// `POST /oauth/authorize/tenant {flow, csrf, tenant}`: step 1, the organization.
pub(super) async fn login_tenant<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let form: LoginTenantForm = read_form(&form_pairs(req));
    let mut p = match posted(ctx, req, &form.flow, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let domain = form.tenant.trim();
    if domain.is_empty() {
        return Ok(step_page(
            StatusCode::OK,
            &p.flow,
            &p.flow_id,
            &p.csrf,
            Step::Tenant,
            Note::None,
        ));
    }
    match oidc::choose_tenant(ctx.platform, &p.flow_id, domain).await {
        Ok(t) => {
            p.flow.tenant = Some(t);
            Ok(step_page(
                StatusCode::OK,
                &p.flow,
                &p.flow_id,
                &p.csrf,
                Step::Password { email: "" },
                Note::None,
            ))
        }
        Err(FlowError::UnknownTenant) => Ok(step_page(
            StatusCode::NOT_FOUND,
            &p.flow,
            &p.flow_id,
            &p.csrf,
            Step::Tenant,
            Note::Error("No organization uses this domain. Check it and try again."),
        )),
        Err(FlowError::Invalid) => Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has expired. Go back to the application and sign in again.",
        )),
        Err(FlowError::Storage(e)) => Ok(unavailable(ctx, &p, "storage", &e.to_string())),
    }
}

/// The pending sign-in's passkey request options as JSON, for the second-factor step; `None`
/// when the user has no passkey or passkeys are not configured here (the code form remains).
async fn passkey_options<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    mfa_token: &str,
) -> Option<String> {
    let rp = RelyingParty::configured(ctx.platform.secrets(), &request_origin(req)).ok()?;
    let options = signin::webauthn_options(ctx.platform, mfa_token, &rp)
        .await
        .ok()?;
    serde_json::to_string(&options).ok()
}

/// Sends the browser back to the client with a code, or shows why not.
async fn finish<P: Platform>(
    ctx: &Ctx<'_, P>,
    p: &Posted,
    user: &sessions::SessionUser,
    methods: &[&str],
    attempt: Option<&str>,
    decided: Vec<Stmt>,
) -> Response {
    match oidc::complete_login_flow(
        ctx.platform,
        &p.flow_id,
        user,
        methods,
        attempt,
        decided,
        &ctx.request_id,
    )
    .await
    {
        Ok(location) => {
            let mut resp = redirect(&location);
            login_page::secure_headers(&mut resp, Some(&p.flow.redirect_uri));
            resp
        }
        Err(CompleteLoginError::Storage(e)) => unavailable(ctx, p, "storage", &e.to_string()),
        Err(e) => error_page(
            StatusCode::FORBIDDEN,
            "Sign-in not possible",
            &e.to_string(),
        ),
    }
}

/// `POST /oauth/authorize/login {flow, csrf, email, password}`: step 2, through the same
/// sign-in path as `/v1/auth/login` (rate limits, audit, same work for unknown users).
pub(super) async fn login_password<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let form: LoginPasswordForm = read_form(&form_pairs(req));
    let p = match posted(ctx, req, &form.flow, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let LoginPasswordForm {
        email, password, ..
    } = form;
    let Some(tenant) = p.flow.tenant.clone() else {
        return Ok(step_page(
            StatusCode::OK,
            &p.flow,
            &p.flow_id,
            &p.csrf,
            Step::Tenant,
            Note::None,
        ));
    };
    let Some(login) = login_request(ctx, req, &tenant.domain, &email, password) else {
        return Ok(password_page(
            &p,
            &email,
            StatusCode::UNAUTHORIZED,
            Note::Error(WRONG_PASSWORD),
        ));
    };
    // NFR-SEC-006: the browser's signed device cookie, or the flow's fresh device, whose
    // cookie is set only once the sign-in completes: a password alone (a step-up left
    // unanswered) never makes a device known, nor gives the browser its cookie.
    let device = browser_device(ctx, req, &p.flow_id);
    let login = login.with_context(sign_in_origin::context(ctx, req, Some(device.id.clone())));
    let result = signin::authenticate(ctx.platform, &login, &ctx.request_id).await;
    let completed = result.is_ok();
    let mut resp = password_result(ctx, req, &p, &email, result).await;
    if completed {
        device.set_cookie(ctx, req, &mut resp);
    }
    Ok(resp)
}

/// The device of a browser on the login page (NFR-SEC-006): its signed cookie's, else the
/// login flow's fresh one.
pub(super) struct BrowserDevice {
    /// The device id for the risk check.
    pub(super) id: String,
    /// The browser holds no valid cookie for it yet.
    fresh: bool,
}

impl BrowserDevice {
    /// Sets the device cookie on `resp` if the browser has none; called only once a sign-in
    /// completed.
    pub(super) fn set_cookie<P: Platform>(
        &self,
        ctx: &Ctx<'_, P>,
        req: &Request,
        resp: &mut Response,
    ) {
        if !self.fresh {
            return;
        }
        if let Some(cookie) = sign_in_origin::device_cookie(ctx.platform, &self.id, is_https(req)) {
            resp.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
}

/// The device of this browser in the login flow `flow_id`.
pub(super) fn browser_device<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    flow_id: &str,
) -> BrowserDevice {
    match sign_in_origin::cookie_device(ctx.platform, req, is_https(req)) {
        Some(id) => BrowserDevice { id, fresh: false },
        None => BrowserDevice {
            id: sign_in_origin::flow_device(ctx.platform, flow_id),
            fresh: true,
        },
    }
}

/// The answer of the password step to the result of the sign-in.
async fn password_result<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    p: &Posted,
    email: &str,
    result: Result<signin::Authenticated, LoginError>,
) -> Response {
    match result {
        Ok(done) => {
            let decided = done.decided;
            finish(
                ctx,
                p,
                &done.user,
                &["pwd"],
                Some(&done.attempt_id),
                decided,
            )
            .await
        }
        Err(LoginError::MfaRequired {
            mfa_token,
            enroll: false,
        }) => second_factor_step(ctx, req, p, &mfa_token).await,
        // NFR-SEC-006: a risky sign-in of a user without a second factor: the mailed code.
        Err(LoginError::EmailCodeRequired { mfa_token }) => {
            second_factor_step(ctx, req, p, &mfa_token).await
        }
        // NFR-SEC-003: the tenant requires MFA; the user enrolls within this sign-in.
        Err(LoginError::MfaRequired {
            mfa_token,
            enroll: true,
        }) => enroll_step(ctx, p, &mfa_token).await,
        Err(LoginError::InvalidCredentials) => password_page(
            p,
            email,
            StatusCode::UNAUTHORIZED,
            Note::Error(WRONG_PASSWORD),
        ),
        Err(LoginError::TenantNotActive) => password_page(
            p,
            email,
            StatusCode::FORBIDDEN,
            Note::Error("This organization cannot sign in right now."),
        ),
        Err(LoginError::PasswordExpired) => password_page(
            p,
            email,
            StatusCode::FORBIDDEN,
            Note::Error("Your password has expired. Use \"Forgot password?\" to set a new one."),
        ),
        Err(LoginError::RateLimited { retry_after_secs }) => {
            let resp = password_page(
                p,
                email,
                StatusCode::TOO_MANY_REQUESTS,
                Note::Error("Too many failed attempts. Wait a few minutes and try again."),
            );
            with_retry_after(resp, retry_after_secs)
        }
        Err(e @ (LoginError::Signing(_) | LoginError::Storage(_))) => {
            unavailable(ctx, p, e.code(), &e.to_string())
        }
    }
}

/// What the password step says for a wrong email or password, whichever it was.
const WRONG_PASSWORD: &str = "The email or password is incorrect.";

/// The sign-in request of the password form; `None` (refused as a wrong password) for a
/// password too long to check, or an email or tenant domain that does not parse (after the
/// same hashing work as a real check).
fn login_request<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    domain: &str,
    email: &str,
    password: String,
) -> Option<LoginRequest> {
    if password.len() > MAX_PASSWORD_BYTES {
        return None;
    }
    LoginRequest::typed(domain, email, password, client_address(ctx, req))
}

/// The email and password step with `email` filled in and `note`.
fn password_page(p: &Posted, email: &str, status: StatusCode, note: Note<'_>) -> Response {
    step_page(
        status,
        &p.flow,
        &p.flow_id,
        &p.csrf,
        Step::Password { email },
        note,
    )
}

/// `resp` with a `Retry-After` of `secs` seconds.
fn with_retry_after(mut resp: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The second-factor step of a sign-in that needs one, recorded on the flow, with the
/// passkey options when the user has a passkey.
async fn second_factor_step<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    p: &Posted,
    mfa_token: &str,
) -> Response {
    if let Err(e) = oidc::record_mfa_step(ctx.platform, &p.flow_id, mfa_token).await {
        return unavailable(ctx, p, e.code(), &e.to_string());
    }
    let passkey = passkey_options(ctx, req, mfa_token).await;
    step_page(
        StatusCode::OK,
        &p.flow,
        &p.flow_id,
        &p.csrf,
        Step::Mfa {
            mfa_token,
            passkey: passkey.as_deref(),
        },
        Note::None,
    )
}

/// The login page's second-factor step for an SSO sign-in started on the page (`flow_id`)
/// that the risk check holds for a step-up (NFR-SEC-006): the same form, CSRF cookie and
/// passkey button as after a password, under a fresh CSRF token; the step's answer then goes
/// on to the client as a password sign-in's does.
pub(super) async fn sso_step_up_page<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    flow_id: &str,
    mfa_token: &str,
) -> Result<Response, ApiError> {
    let (flow, csrf) = match oidc::resume_for_step_up(ctx.platform, flow_id, mfa_token).await {
        Ok(resumed) => resumed,
        Err(FlowError::Storage(e)) => return Err(ApiError::internal(e.to_string())),
        Err(_) => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request has expired or was already used. Go back to the application and sign in again.",
            ))
        }
    };
    let passkey = passkey_options(ctx, req, mfa_token).await;
    let mut resp = step_page(
        StatusCode::OK,
        &flow,
        flow_id,
        &csrf,
        Step::Mfa {
            mfa_token,
            passkey: passkey.as_deref(),
        },
        Note::None,
    );
    set_csrf_cookie(&mut resp, req, flow_id, &csrf);
    Ok(resp)
}

/// The enrollment step of a sign-in whose tenant requires MFA the user has not set up:
/// recorded on the flow, with a new TOTP key to scan.
async fn enroll_step<P: Platform>(ctx: &Ctx<'_, P>, p: &Posted, mfa_token: &str) -> Response {
    if let Err(e) = oidc::record_mfa_step(ctx.platform, &p.flow_id, mfa_token).await {
        return unavailable(ctx, p, e.code(), &e.to_string());
    }
    match signin::enroll_during_sign_in(ctx.platform, mfa_token, &ctx.request_id).await {
        Ok(en) => step_page(
            StatusCode::OK,
            &p.flow,
            &p.flow_id,
            &p.csrf,
            Step::Enroll {
                mfa_token,
                secret: &en.secret,
                otpauth_uri: &en.otpauth_uri,
            },
            Note::None,
        ),
        Err(e) => unavailable(ctx, p, e.code(), &e.to_string()),
    }
}

/// `POST /oauth/authorize/mfa {flow, csrf, mfa_token, code}`: the second factor.
pub(super) async fn login_mfa<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let form: LoginMfaForm = read_form(&form_pairs(req));
    let p = match posted(ctx, req, &form.flow, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    if !p.flow.mfa_ok(&form.mfa_token) {
        return Ok(password_step(
            &p,
            StatusCode::BAD_REQUEST,
            "The sign-in step expired. Sign in again.",
        ));
    }
    // The passkey form posts an assertion instead of a code (NFR-SEC-003).
    let Ok(assertion) = form.assertion() else {
        let passkey = passkey_options(ctx, req, &form.mfa_token).await;
        return Ok(form.again(
            &p,
            StatusCode::BAD_REQUEST,
            "The passkey answer could not be read. Try again.",
            passkey.as_deref(),
        ));
    };
    let factor = match &assertion {
        Some(a) => signin::SecondFactor::Passkey(a),
        None => signin::SecondFactor::Code(form.code.as_deref().unwrap_or_default()),
    };
    let client = client_address(ctx, req);
    let checked = signin::verify_second_factor(
        ctx.platform,
        &form.mfa_token,
        factor,
        client.as_deref(),
        &ctx.request_id,
    )
    .await;
    // A failed attempt shows the step again, with fresh passkey options (a challenge is single use).
    let passkey = match (&checked, form.enrollment().is_none()) {
        (Err(VerifyMfaError::InvalidCode | VerifyMfaError::RateLimited { .. }), true) => {
            passkey_options(ctx, req, &form.mfa_token).await
        }
        _ => None,
    };
    let resp = match checked {
        Ok(done) => {
            // NFR-SEC-006: the sign-in completed: now the browser's device cookie.
            let mut resp = second_factor_done(ctx, &p, done).await;
            browser_device(ctx, req, &p.flow_id).set_cookie(ctx, req, &mut resp);
            resp
        }
        Err(VerifyMfaError::InvalidCode) => form.again(
            &p,
            StatusCode::UNAUTHORIZED,
            if assertion.is_some() {
                "The passkey was not accepted. Try again, or enter a code."
            } else {
                "The code is not valid. Try again."
            },
            passkey.as_deref(),
        ),
        Err(VerifyMfaError::RateLimited { .. }) => form.again(
            &p,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes. Wait a few minutes and try again.",
            passkey.as_deref(),
        ),
        Err(VerifyMfaError::InvalidToken) => password_step(
            &p,
            StatusCode::BAD_REQUEST,
            "The sign-in step expired. Sign in again.",
        ),
        Err(e) => unavailable(ctx, &p, e.code(), &e.to_string()),
    };
    Ok(resp)
}

impl LoginMfaForm {
    /// The passkey assertion posted instead of a code: `Ok(None)` without one (or an empty
    /// one), `Err` when it cannot be read.
    fn assertion(&self) -> Result<Option<AuthenticationResponse>, serde_json::Error> {
        self.webauthn
            .as_deref()
            .filter(|w| !w.is_empty())
            .map(serde_json::from_str::<AuthenticationResponse>)
            .transpose()
    }

    /// The key and `otpauth://` URI an enrollment form carries back for display; `None` for
    /// the code form (no or an empty key).
    fn enrollment(&self) -> Option<(&str, &str)> {
        let secret = self.enroll_secret.as_deref().filter(|s| !s.is_empty())?;
        Some((secret, self.otpauth_uri.as_deref().unwrap_or_default()))
    }

    /// The same step again (code or enrollment form) with `msg`.
    fn again(&self, p: &Posted, status: StatusCode, msg: &str, passkey: Option<&str>) -> Response {
        let step = match self.enrollment() {
            None => Step::Mfa {
                mfa_token: &self.mfa_token,
                passkey,
            },
            Some((secret, otpauth_uri)) => Step::Enroll {
                mfa_token: &self.mfa_token,
                secret,
                otpauth_uri,
            },
        };
        step_page(status, &p.flow, &p.flow_id, &p.csrf, step, Note::Error(msg))
    }
}

/// After an accepted second factor: back to the client with a code, or, after an enrollment,
/// the recovery codes first (the sign-in recorded on the flow; the user continues).
async fn second_factor_done<P: Platform>(
    ctx: &Ctx<'_, P>,
    p: &Posted,
    done: signin::CheckedFactor,
) -> Response {
    let methods = done.methods();
    let attempt = done.attempt_id.as_deref();
    let Some(codes) = done.recovery_codes else {
        // The decision was recorded when the sign-in was held for its second factor.
        return finish(ctx, p, &done.user, &methods, attempt, Vec::new()).await;
    };
    if let Err(e) =
        oidc::record_authenticated(ctx.platform, &p.flow_id, &done.user, &methods, attempt).await
    {
        return unavailable(ctx, p, e.code(), &e.to_string());
    }
    login_page::recovery_codes_page(&p.flow, &p.flow_id, &p.csrf, &codes)
}

/// `POST /oauth/authorize/continue {flow, csrf}`: finishes a sign-in recorded before the
/// recovery codes were shown.
pub(super) async fn login_continue<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let form: LoginContinueForm = read_form(&form_pairs(req));
    let p = match posted(ctx, req, &form.flow, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    match oidc::take_authenticated(ctx.platform, &p.flow_id).await {
        Ok((user, methods, attempt)) => {
            let methods: Vec<&str> = methods.iter().map(String::as_str).collect();
            Ok(finish(ctx, &p, &user, &methods, attempt.as_deref(), Vec::new()).await)
        }
        Err(FlowError::Storage(e)) => Ok(unavailable(ctx, &p, "storage", &e.to_string())),
        Err(_) => Ok(password_step(&p, StatusCode::BAD_REQUEST, "Sign in first.")),
    }
}

/// `POST /oauth/authorize/forgot {flow, csrf, email}`: the forgot-password flow of
/// `/v1/auth/password/forgot` (FR-AUTH-004), always the same answer (CON-SEC-009).
pub(super) async fn login_forgot<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let form: LoginForgotForm = read_form(&form_pairs(req));
    let p = match posted(ctx, req, &form.flow, &form.csrf).await {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let email_raw = form.email;
    if let Some(t) = &p.flow.tenant {
        if let (Ok(tenant), Ok(email)) = (TenantDomain::parse(&t.domain), Email::parse(&email_raw))
        {
            let links = super::tenants::mail_links(ctx, req)?;
            if let Err(cause) =
                users::forgot_password(ctx.platform, &tenant, &email, &links, &ctx.request_id).await
            {
                ctx.log(
                    "error",
                    "password reset request failed",
                    Some("reset_request"),
                    &cause,
                );
            }
        }
    }
    // The button shares the sign-in form (formaction), so the typed email comes with it.
    let note = if email_raw.is_empty() {
        Note::Error("Enter your email first, then choose \"Forgot password?\".")
    } else {
        Note::Notice("If an account uses this email, a link to reset the password is on its way.")
    };
    Ok(step_page(
        StatusCode::OK,
        &p.flow,
        &p.flow_id,
        &p.csrf,
        Step::Password { email: &email_raw },
        note,
    ))
}

/// An RFC 6749 5.2 error answer.
fn token_error<P: Platform>(ctx: &Ctx<'_, P>, e: &TokenError, basic: bool) -> Response {
    // RFC 6749 5.2: 401 for a client that failed to authenticate, 400 for every other refusal.
    let status = match e.kind() {
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let description = if e.kind().is_server_side() {
        ctx.log(
            "error",
            "token request failed",
            Some(e.code()),
            &e.to_string(),
        );
        "The server could not issue tokens now.".to_owned()
    } else {
        e.to_string()
    };
    let body = OAuthError {
        error: e.code(),
        error_description: description,
        request_id: &ctx.request_id,
    };
    // Three strings always serialize.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = json::raw(status, bytes, "application/json");
    if matches!(e, TokenError::InvalidClient) && basic {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"edgeplane\""),
        );
    }
    no_store(resp)
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// `client_secret_basic` credentials (RFC 6749 2.3.1: form-urlencoded, then base64).
fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 1024 {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let dec = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

/// The body of `POST /oauth/token` (RFC 6749 4.1.3, 6): which fields a grant needs depends on
/// `grant_type`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcTokenRequest)]
pub(super) struct TokenForm {
    /// The schema lists the grant types served; the field is read as any string, so that an
    /// empty one is refused as `invalid_request` and any other as `unsupported_grant_type`.
    #[schema(required = true, schema_with = grant_types)]
    #[serde(default)]
    grant_type: String,
    /// The authorization code.
    #[schema(nullable = false)]
    code: Option<String>,
    /// The redirect_uri of the authorization request.
    #[schema(nullable = false)]
    redirect_uri: Option<String>,
    /// The PKCE verifier.
    #[schema(nullable = false)]
    code_verifier: Option<String>,
    /// The refresh token.
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    /// The app id (client_secret_post or public client).
    #[schema(nullable = false)]
    client_id: Option<String>,
    /// client_secret_post.
    #[schema(nullable = false)]
    client_secret: Option<String>,
}

/// The grant types the token endpoint serves.
fn grant_types() -> utoipa::openapi::schema::Object {
    let mut o = string_enum(&["authorization_code", "refresh_token"]);
    o.description = Some("authorization_code or refresh_token.".to_owned());
    o
}

/// `POST /oauth/token`: authorization code and refresh grants (RFC 6749, OIDC Core 3.1.3).
pub(super) async fn token<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let form: TokenForm = read_form(&form_pairs(req));
    let basic = basic_credentials(req);
    let has_auth_header = req.headers().contains_key(header::AUTHORIZATION);
    let posted_id = form.client_id;
    let posted_secret = form.client_secret;
    let (client_id, client_secret) = match (basic, has_auth_header) {
        (Some((id, secret)), _) => {
            // One method per request (RFC 6749 2.3), and the posted id must agree.
            if posted_secret.is_some() || posted_id.as_deref().is_some_and(|p| p != id) {
                let e = TokenError::InvalidRequest("use one client authentication method");
                return Ok(token_error(ctx, &e, false));
            }
            (id, Some(secret))
        }
        (None, true) => return Ok(token_error(ctx, &TokenError::InvalidClient, true)),
        (None, false) => (posted_id.unwrap_or_default(), posted_secret),
    };
    let cors_client = client_id.clone();
    let treq = TokenRequest {
        grant_type: form.grant_type,
        client_id,
        client_secret,
        code: form.code,
        redirect_uri: form.redirect_uri,
        code_verifier: form.code_verifier,
        refresh_token: form.refresh_token,
        // NFR-SEC-006: the refresh grant's risk check, as /v1/auth/refresh's.
        origin: sign_in_origin::api_context(ctx, req),
    };
    let mut resp =
        match oidc::exchange(ctx.platform, &issuer(ctx, req)?, &treq, &ctx.request_id).await {
            Ok(resp) => no_store(json::response(StatusCode::OK, &resp)?),
            Err(e) => token_error(ctx, &e, has_auth_header),
        };
    cors(ctx, req, &mut resp, &cors_client).await;
    Ok(resp)
}

/// CORS for browser clients (single-page apps, public clients): the answer may be read by an
/// origin the client lists in its `allowed_origins`, and by no other.
async fn cors<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, resp: &mut Response, client_id: &str) {
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return;
    };
    let Ok(id) = crate::apps::AppId::parse(client_id) else {
        return;
    };
    let allowed = crate::apps::allowed_origins(ctx.platform, &id)
        .await
        .unwrap_or_default();
    if allowed
        .iter()
        .any(|o| origin.to_str().is_ok_and(|v| v == o.as_str()))
    {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}

/// `OPTIONS /oauth/token` and `/oauth/userinfo`: CORS preflight. It names no client, so it
/// allows the request shape only; the answer itself carries the client's origin check.
pub(super) fn preflight(req: &Request) -> Result<Response, ApiError> {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    Ok(resp)
}

/// `GET|POST /oauth/userinfo` with a bearer access token of this provider (OIDC Core 5.3).
pub(super) async fn userinfo<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .unwrap_or_default();
    let challenge = |e: &str| {
        HeaderValue::from_str(&format!("Bearer realm=\"edgeplane\", error=\"{e}\""))
            .unwrap_or(HeaderValue::from_static("Bearer"))
    };
    if token.is_empty() {
        return Err(
            ApiError::invalid_credentials("A bearer access token is required.").with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"edgeplane\""),
            ),
        );
    }
    match oidc::userinfo(ctx.platform, &token).await {
        Ok(info) => {
            let mut resp = no_store(json::response(StatusCode::OK, &info.claims)?);
            cors(ctx, req, &mut resp, &info.client_id).await;
            Ok(resp)
        }
        Err(AccessError::Unavailable(cause)) => Err(ApiError::unavailable(cause)),
        // RFC 6750 3.1: a revoked token is an invalid_token 401, which OAuth clients act on.
        Err(e @ AccessError::Revoked) => Err(ApiError::invalid_credentials(format!("{e}."))
            .with_extension("reason", e.code().into())
            .with_header(header::WWW_AUTHENTICATE, challenge("invalid_token"))),
        Err(e) => Err(
            ApiError::invalid_credentials("The access token is not valid.")
                .with_extension("reason", e.code().into())
                .with_header(header::WWW_AUTHENTICATE, challenge("invalid_token")),
        ),
    }
}

/// The parameters of `GET|POST /oauth/logout` (OpenID Connect RP-Initiated Logout 1.0 2), in
/// the query or a form body; all optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = OidcEndSessionPostRequest)]
pub(super) struct EndSessionForm {
    /// An ID token of this provider (may be expired).
    #[schema(nullable = false)]
    id_token_hint: Option<String>,
    /// Where to go after logout.
    #[schema(nullable = false)]
    post_logout_redirect_uri: Option<String>,
    /// The client, checked against the hint.
    #[schema(nullable = false)]
    client_id: Option<String>,
    /// Returned to post_logout_redirect_uri.
    #[schema(nullable = false)]
    state: Option<String>,
}

/// `GET|POST /oauth/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0),
/// parameters in the query (GET) or a form body (POST).
pub(super) async fn end_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let q: EndSessionForm = if req.method() == ::http::Method::POST {
        read_form(&form_pairs(req))
    } else {
        read_form(&query_pairs(req))
    };
    match oidc::end_session(
        ctx.platform,
        &issuer(ctx, req)?,
        q.id_token_hint.as_deref(),
        q.post_logout_redirect_uri.as_deref(),
        q.client_id.as_deref(),
        q.state.as_deref(),
        &ctx.request_id,
    )
    .await
    {
        Ok(Some(location)) => Ok(redirect(&location)),
        Ok(None) => Ok(login_page::notice_page(
            StatusCode::OK,
            "Signed out",
            "You are signed out. You can close this window.",
        )),
        Err(EndSessionError::Storage(cause)) => {
            ctx.log("error", "end session failed", Some("storage"), &cause);
            Ok(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Sign-out is unavailable right now. Try again in a moment.",
            ))
        }
        Err(e) => Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Sign-out request not valid",
            &e.to_string(),
        )),
    }
}

/// `POST /v1/apps/{id}/client-secret`: sets or rotates an app's OIDC client secret (operator),
/// shown once; the app becomes a confidential client.
pub(super) async fn rotate_client_secret<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = crate::apps::AppId::parse(ctx.param("id"))
        .map_err(|_| ApiError::not_found("No app has this id."))?;
    let secret = oidc::rotate_client_secret(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        id.as_str(),
        &ctx.request_id,
    )
    .await
    .map_err(|e| match e {
        ClientSecretError::NotFound => ApiError::not_found("No app has this id."),
        ClientSecretError::Pepper(p) => ApiError::unavailable(p.to_string()),
        ClientSecretError::Storage(s) => ApiError::internal(s.to_string()),
    })?;
    Ok(no_store(json::response(
        StatusCode::CREATED,
        &ClientSecret {
            client_id: id.as_str(),
            client_secret: secret,
        },
    )?))
}

/// An app's new OIDC client secret.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ClientSecret<'a> {
    /// The app id.
    client_id: &'a str,
    /// The secret, shown once.
    client_secret: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fr_auth_001_discovery_advertises_what_is_implemented() {
        let d = serde_json::to_value(discovery_document("https://id.example")).unwrap();
        assert_eq!(d["issuer"], "https://id.example");
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            d["id_token_signing_alg_values_supported"],
            serde_json::json!(["EdDSA"])
        );
        assert_eq!(d["token_endpoint"], "https://id.example/oauth/token");
        assert_eq!(d["end_session_endpoint"], "https://id.example/oauth/logout");
    }

    fn pairs(raw: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn a_form_reads_single_values_and_ignores_other_names() {
        let f: TokenForm = read_form(&pairs(
            "grant_type=refresh_token&refresh_token=r&scope=openid&client_id=a&client_id=b",
        ));
        assert_eq!(f.grant_type, "refresh_token");
        assert_eq!(f.refresh_token.as_deref(), Some("r"));
        // RFC 6749 3.1: a repeated parameter counts as absent.
        assert_eq!(f.client_id, None);
        assert_eq!(f.code, None);
    }

    #[test]
    fn a_missing_or_repeated_required_field_reads_as_empty() {
        let f: LoginMfaForm = read_form(&pairs("flow=f&flow=g&mfa_token=m&webauthn="));
        assert_eq!(f.flow, "");
        assert_eq!(f.csrf, "");
        assert_eq!(f.mfa_token, "m");
        assert!(matches!(f.assertion(), Ok(None)));
        assert!(f.enrollment().is_none());
        let t: TokenForm = read_form(&[]);
        assert_eq!(t.grant_type, "");
    }
}
