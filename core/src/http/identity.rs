//! Tenant-user identity routes (FR-AUTH-001/004/005/006, NFR-SEC-004): invitation acceptance,
//! sign-in, refresh, logout, password reset and change, the tenant password policy, signing keys
//! and their JWKS, and token introspection for managed apps (RFC 7662). The one mapping of their
//! domain errors to problem details is here.

use ::http::{header, HeaderValue, StatusCode};
use serde::Deserialize;

use super::apps::{note_key_tenant, presented_app_key, require_app_key};
use super::is_development;
use super::operator::require_platform_role;
use super::{json, ApiError, Ctx, ProblemType, Request, Response};
use crate::apps::{authenticate_app_key_with, Scope};
use crate::audit::Actor;
use crate::auth::PlatformRole;
use crate::ports::{Clock, Logger, Platform, Secrets, Sql, Stmt};
use crate::sessions::{self, SessionUser};
use crate::signin;
use crate::signin::{authenticate_access_token, LoginError, LoginRequest, UserPrincipal};
use crate::tenants::{Email, TenantDomain};
use crate::tokens::keys;
use crate::users::mfa::{self};
use crate::users::{
    self, policy, AcceptInvitationError, PasswordPolicy, PolicyRule, SetPasswordError,
};

/// Longest password read from a request, in bytes: bounds the argon2 input before any work.
const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInvitationRequest {
    token: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    tenant: String,
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgotPasswordRequest {
    tenant: String,
    email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetPasswordRequest {
    token: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyMfaRequest {
    mfa_token: String,
    #[serde(default)]
    code: Option<String>,
    /// A passkey assertion (`AuthenticationResponseJSON`) instead of a code (NFR-SEC-003).
    #[serde(default)]
    webauthn: Option<crate::webauthn::AuthenticationResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaEnrollRequest {
    mfa_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaCodeRequest {
    code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectRequest {
    token: String,
    #[serde(default)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

fn log<P: Platform>(ctx: &Ctx<'_, P>, level: &str, msg: &str, code: &str, cause: &str) {
    let line = serde_json::json!({
        "level": level, "msg": msg, "request_id": ctx.request_id, "code": code, "error": cause,
    });
    ctx.platform.logger().line(&line.to_string());
}

pub(super) fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(super) fn no_content() -> Response {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// The client's address as the runtime vouches for it (see [`super::client_addr`]), for the
/// rate limits. Used only hashed.
pub(super) fn client_address<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Option<String> {
    super::client_addr::client_address(
        ctx.platform.backends().runtime,
        ctx.platform.secrets().get("TRUSTED_PROXIES").as_deref(),
        req,
    )
}

/// ERR-RATE-429 with `Retry-After`.
fn check_password_size(field: &str, password: &str) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(field, "is too long"));
    }
    Ok(())
}

/// The problem of a password-policy refusal, naming every rule the password broke
/// (`errors: [{field, rule}]`).
fn with_broken_rules(problem: ApiError, field: &str, rules: &[PolicyRule]) -> ApiError {
    let names: Vec<&str> = rules.iter().map(|r| r.code()).collect();
    problem.with_extension(
        "errors",
        names
            .iter()
            .map(|r| serde_json::json!({ "field": field, "rule": r }))
            .collect::<Vec<_>>()
            .into(),
    )
}

/// Authenticates the tenant user of the request's access token.
pub(super) async fn require_user<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<UserPrincipal, ApiError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = authenticate_access_token(ctx.platform, authorization)
        .await
        .map_err(|e| ApiError::from(&e))?;
    ctx.tenant_id = Some(principal.claims.tid.clone());
    Ok(principal)
}

/// [`require_user`] whose session signed in within [`sessions::RECENT_AUTH_SECS`]: for security
/// changes (passkeys, TOTP, password, account deletion), which a stolen access token alone must
/// not make. Otherwise 403 `access-denied` with reason `reauthentication_required` and
/// `max_age`: the client signs in again (password and second factor) and retries with the new
/// token.
pub(super) async fn require_recent_user<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<UserPrincipal, ApiError> {
    let principal = require_user(ctx, req).await?;
    if !principal.signed_in_recently(ctx.platform.clock().now_ms()) {
        return Err(ApiError::new(
            ProblemType::AccessDenied,
            format!(
                "This change needs a sign-in from the last {} minutes: sign in again and retry.",
                sessions::RECENT_AUTH_SECS / 60
            ),
        )
        .with_extension("reason", "reauthentication_required".into())
        .with_extension("max_age", sessions::RECENT_AUTH_SECS.into()));
    }
    Ok(principal)
}

/// [`require_user`] who is an active owner or admin of the token's tenant *now*: the role is
/// read from the database, because a token's can be up to 15 minutes stale (a demoted or
/// disabled admin still holds one).
pub(super) async fn require_tenant_admin<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<UserPrincipal, ApiError> {
    let principal = require_user(ctx, req).await?;
    if !matches!(principal.claims.role.as_str(), "owner" | "admin") {
        return Err(ApiError::new(
            ProblemType::AccessDenied,
            "This operation needs the owner or admin role.",
        ));
    }
    let c = &principal.claims;
    users::admin::authorize_admin(ctx.platform, &c.tid, &c.sub)
        .await
        .map_err(|e| match e {
            users::admin::UserAdminError::Storage(cause) => ApiError::internal(cause.to_string()),
            e => ApiError::new(ProblemType::AccessDenied, format!("{e}."))
                .with_extension("reason", e.code().into()),
        })?;
    Ok(principal)
}

/// `GET /.well-known/jwks.json`: the published signing keys (NFR-SEC-004).
pub(super) async fn jwks<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Response, ApiError> {
    let keys = keys::published(ctx.platform)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut resp = json::response(StatusCode::OK, &serde_json::json!({ "keys": keys }))?;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// `POST /v1/signing-keys/rotate` (operator, NFR-SEC-004).
pub(super) async fn rotate_signing_key<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_platform_role(ctx, req, &[PlatformRole::Operator]).await?;
    let r = keys::rotate(
        ctx.platform,
        &Actor::operator(&principal.user_id),
        Some(&ctx.request_id),
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &serde_json::json!({ "kid": r.kid, "previous_kid": r.previous, "retired": r.retired }),
    )
}

/// `POST /v1/invitations/accept {token, password}` (FR-TENANT-001, FR-AUTH-006).
pub(super) async fn accept_invitation<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: AcceptInvitationRequest = json::parse_body(req)?;
    check_password_size("password", &body.password)?;
    let accepted =
        users::accept_invitation(ctx.platform, &body.token, &body.password, &ctx.request_id)
            .await
            .map_err(|e| match &e {
                AcceptInvitationError::Policy(rules) => {
                    with_broken_rules(ApiError::from(&e), "password", rules)
                }
                _ => ApiError::from(&e),
            })?;
    ctx.tenant_id = Some(accepted.tenant_id.clone());
    json::response(
        StatusCode::OK,
        &serde_json::json!({
            "user_id": accepted.user_id,
            "tenant_id": accepted.tenant_id,
            "role": accepted.role,
            "status": "active",
        }),
    )
}

/// `POST /v1/auth/login {tenant, email, password}` (UC-LISTEN, FR-AUTH-001, FR-AUTH-005).
pub(super) async fn login<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: LoginBody = json::parse_body(req)?;
    check_password_size("password", &body.password)?;
    let same_401 = || ApiError::from(&LoginError::InvalidCredentials);
    // A malformed domain or email cannot name an account: the same answer as a wrong password,
    // after the same work.
    let (Ok(tenant), Ok(email)) = (TenantDomain::parse(&body.tenant), Email::parse(&body.email))
    else {
        users::password::verify_nothing(&body.password);
        return Err(same_401());
    };
    let login = LoginRequest {
        tenant,
        email,
        password: body.password,
        client: client_address(ctx, req),
    };
    let pair = signin::login(ctx.platform, &login, &ctx.request_id)
        .await
        .map_err(|e| {
            // The routes to go on with are the HTTP layer's to name.
            let problem = ApiError::from(&e);
            match &e {
                LoginError::MfaRequired { mfa_token, enroll } => problem
                    .with_detail(if *enroll {
                        "This tenant requires MFA: enroll with this mfa_token at /v1/auth/mfa/enroll, then send the first code to /v1/auth/mfa/verify."
                    } else {
                        "Send a TOTP or recovery code, or a passkey assertion (options from /v1/auth/mfa/webauthn/options), with this mfa_token to /v1/auth/mfa/verify."
                    })
                    .with_extension("mfa_token", mfa_token.clone().into())
                    .with_extension("enrollment_required", (*enroll).into())
                    .with_extension("expires_in", (signin::MFA_TOKEN_TTL_MS / 1000).into()),
                LoginError::PasswordExpired => problem.with_detail(
                    "The password has expired: reset it through /v1/auth/password/forgot.",
                ),
                _ => problem,
            }
        })?;
    Ok(no_store(json::response(StatusCode::OK, &pair)?))
}

/// `POST /v1/auth/refresh {refresh_token}`: rotation with reuse detection (FR-AUTH-005).
pub(super) async fn refresh<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: RefreshRequest = json::parse_body(req)?;
    let pair = sessions::refresh(ctx.platform, &body.refresh_token, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &pair)?))
}

/// `POST /v1/auth/logout` with the access token: ends its session (UC-LOGOUT).
pub(super) async fn logout<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_user(ctx, req).await?;
    let c = &principal.claims;
    let user = SessionUser {
        user_id: c.sub.clone(),
        tenant_id: c.tid.clone(),
        role: c.role.clone(),
    };
    sessions::logout(ctx.platform, &c.sid, &user, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}

fn set_password_problem(field: &str, e: &SetPasswordError) -> ApiError {
    match e {
        SetPasswordError::Policy(rules) => with_broken_rules(ApiError::from(e), field, rules),
        _ => ApiError::from(e),
    }
}

/// `POST /v1/auth/password/forgot {tenant, email}`: always 202 (FR-AUTH-004, CON-SEC-009).
pub(super) async fn forgot_password<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: ForgotPasswordRequest = json::parse_body(req)?;
    if let (Ok(tenant), Ok(email)) = (TenantDomain::parse(&body.tenant), Email::parse(&body.email))
    {
        let links = super::tenants::mail_links(ctx, req)?;
        if let Err(cause) =
            users::forgot_password(ctx.platform, &tenant, &email, &links, &ctx.request_id).await
        {
            log(
                ctx,
                "error",
                "password reset request failed",
                "reset_request",
                &cause,
            );
        }
    }
    Ok(no_store(json::response(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "status": "accepted" }),
    )?))
}

/// `POST /v1/auth/password/reset {token, password}` (UC-AUTH-RESET).
pub(super) async fn reset_password<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: ResetPasswordRequest = json::parse_body(req)?;
    check_password_size("password", &body.password)?;
    users::reset_password(ctx.platform, &body.token, &body.password, &ctx.request_id)
        .await
        .map_err(|e| set_password_problem("password", &e))?;
    Ok(no_content())
}

/// `POST /v1/auth/password/change {current_password, new_password}` (FR-AUTH-004).
pub(super) async fn change_password<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_recent_user(ctx, req).await?;
    let body: ChangePasswordRequest = json::parse_body(req)?;
    check_password_size("current_password", &body.current_password)?;
    check_password_size("new_password", &body.new_password)?;
    let c = &principal.claims;
    users::change_password(
        ctx.platform,
        &c.sub,
        &c.tid,
        &body.current_password,
        &body.new_password,
        client_address(ctx, req).as_deref(),
        &ctx.request_id,
    )
    .await
    .map_err(|e| set_password_problem("new_password", &e))?;
    Ok(no_content())
}

/// `GET /v1/tenant/password-policy` (owner, admin; FR-AUTH-006).
pub(super) async fn get_password_policy<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_tenant_admin(ctx, req).await?;
    let policy = policy::load(ctx.platform, &principal.claims.tid)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    json::response(StatusCode::OK, &policy)
}

/// `PUT /v1/tenant/password-policy` (owner, admin; FR-AUTH-006, CON-SEC-001).
pub(super) async fn put_password_policy<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_tenant_admin(ctx, req).await?;
    let policy: PasswordPolicy = json::parse_body(req)?;
    let c = &principal.claims;
    policy::save(
        ctx.platform,
        &c.tid,
        &policy,
        &Actor::user(&c.sub),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &policy)
}

/// `POST /oauth/introspect` (RFC 7662) for API keys with `token:introspect`: `{active:false}`
/// for any token that is forged, expired or revoked; the claims when active. Edgeplane API tokens
/// and the OIDC access tokens issued to the calling app are answered; another client's OIDC
/// tokens are inactive to it. The body is a form (`token=...`, as RFC 7662 says) or JSON.
pub(super) async fn introspect<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let parsed = if json::is_json(req) {
        json::parse_body::<IntrospectRequest>(req).map(|b| b.token)
    } else {
        form_urlencoded::parse(req.body())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| ApiError::invalid_field("token", "is required"))
    };
    let token = match parsed {
        Ok(token) => token,
        Err(bad_body) => {
            // A bad key is 401 whatever the body.
            require_app_key(ctx, req, Scope::TokenIntrospect).await?;
            return Err(bad_body);
        }
    };
    // The token's checks run alongside the key's app and tenant markers (one KV round trip of
    // latency, not two), and only for a key whose hash, expiry and scope have passed.
    let platform = ctx.platform;
    let checked = authenticate_app_key_with(
        platform,
        presented_app_key(req)?,
        Scope::TokenIntrospect,
        |app_id| {
            let app_id = app_id.to_owned();
            let token = token.as_str();
            async move { signin::introspect(platform, token, &app_id).await }
        },
    )
    .await;
    let (app, claims) = checked.map_err(|e| ApiError::from(&e))?;
    note_key_tenant(ctx, &app);
    let claims = claims.map_err(|e| ApiError::from(&e))?;
    // A tenant-bound key learns only about its own tenant's tokens.
    let claims = claims.filter(|c| {
        app.tenant_id
            .as_ref()
            .is_none_or(|t| t.as_str() == c.tid.as_str())
    });
    let body = match claims {
        None => serde_json::json!({ "active": false }),
        Some(c) => serde_json::json!({
            "active": true,
            "iss": c.iss, "sub": c.sub, "aud": c.aud, "tid": c.tid, "role": c.role,
            "sid": c.sid, "scope": c.scope, "iat": c.iat, "exp": c.exp, "jti": c.jti,
            "token_type": "Bearer", "client_id": app.app_id.as_str(),
        }),
    };
    Ok(no_store(json::response(StatusCode::OK, &body)?))
}

/// `GET /__dev/mail?to=<address>` (development only): the latest messages of the dev outbox to
/// an address, so the suite and the demo can follow mailed links. Queued mail that is due is
/// delivered first: a reader right after a forgot-password answer sees the reset mail although
/// its delivery after that answer may still be under way (or, without a runtime that works
/// after answering, waiting for the scheduled run).
pub(super) async fn dev_mail<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    if !is_development(ctx) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let to = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::invalid_field("to", "is required"))?;
    let now = ctx.platform.clock().now_ms();
    if let Err(e) = crate::mail::queue::deliver_due(ctx.platform, now).await {
        log(
            ctx,
            "error",
            "queued mail delivery failed",
            e.code(),
            &e.to_string(),
        );
    }
    let rows = ctx
        .platform
        .sql()
        .query(
            Stmt::new(
                "SELECT id, subject, text_body, created_at FROM mail_outbox
                 WHERE to_addr = ?1 ORDER BY id DESC LIMIT 10",
            )
            .bind(to),
        )
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.i64("id").unwrap_or(0),
                "subject": r.text("subject").unwrap_or_default(),
                "text": r.text("text_body").unwrap_or_default(),
                "created_at": r.i64("created_at").unwrap_or(0),
            })
        })
        .collect();
    Ok(no_store(json::response(
        StatusCode::OK,
        &serde_json::json!({ "items": items }),
    )?))
}

/// `POST /v1/auth/mfa/verify {mfa_token, code}`: the second step of an MFA sign-in
/// (NFR-SEC-003, ERR-AUTH-461).
pub(super) async fn verify_mfa<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: VerifyMfaRequest = json::parse_body(req)?;
    let client = client_address(ctx, req);
    let factor = match (&body.code, &body.webauthn) {
        (Some(code), None) => signin::SecondFactor::Code(code),
        (None, Some(assertion)) => signin::SecondFactor::Passkey(assertion),
        _ => {
            return Err(ApiError::invalid_field(
                "code",
                "give exactly one of code and webauthn",
            ))
        }
    };
    let pair = signin::verify_mfa_with(
        ctx.platform,
        &body.mfa_token,
        factor,
        client.as_deref(),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &pair)?))
}

/// `POST /v1/auth/mfa/totp`: starts a TOTP enrollment of the signed-in user (NFR-SEC-003).
pub(super) async fn enroll_totp<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_recent_user(ctx, req).await?;
    let c = &principal.claims;
    let e = mfa::enroll(ctx.platform, &c.sub, &c.tid, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &serde_json::json!({ "secret": e.secret, "otpauth_uri": e.otpauth_uri }),
    )?))
}

/// `POST /v1/auth/mfa/totp/confirm {code}`: turns TOTP on and returns ten recovery codes once.
pub(super) async fn confirm_totp<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_recent_user(ctx, req).await?;
    let body: MfaCodeRequest = json::parse_body(req)?;
    let c = &principal.claims;
    let client = client_address(ctx, req);
    let confirm = mfa::confirm(ctx.platform, &c.sub, &c.tid, &body.code, &ctx.request_id);
    let codes = mfa::limited(ctx.platform, &c.sub, client.as_deref(), confirm)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &serde_json::json!({ "recovery_codes": codes }),
    )?))
}

/// `DELETE /v1/auth/mfa/totp {code}`: turns TOTP off after a current code.
pub(super) async fn disable_totp<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_recent_user(ctx, req).await?;
    let body: MfaCodeRequest = json::parse_body(req)?;
    let c = &principal.claims;
    let client = client_address(ctx, req);
    let disable = mfa::disable(ctx.platform, &c.sub, &c.tid, &body.code, &ctx.request_id);
    mfa::limited(ctx.platform, &c.sub, client.as_deref(), disable)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}

/// `POST /v1/tenant/users/{id}/sessions/revoke` (owner, admin): ends every session of a user of
/// the caller's tenant at once (FR-AUTH-005, UC-TENANT-SESSION-REVOKE).
pub(super) async fn revoke_user_sessions<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let principal = require_tenant_admin(ctx, req).await?;
    let c = &principal.claims;
    let user_id = ctx.param("id").to_owned();
    let revoked = sessions::revoke_all_sessions(
        ctx.platform,
        &c.tid,
        &user_id,
        &Actor::user(&c.sub),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &serde_json::json!({ "user_id": user_id, "sessions_revoked": revoked }),
    )
}

/// `POST /v1/auth/mfa/enroll {mfa_token}`: TOTP enrollment within the sign-in of a user whose
/// tenant requires MFA (NFR-SEC-003); the first code then goes to `/v1/auth/mfa/verify`.
pub(super) async fn enroll_during_sign_in<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: MfaEnrollRequest = json::parse_body(req)?;
    let e = signin::enroll_during_sign_in(ctx.platform, &body.mfa_token, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &serde_json::json!({ "secret": e.secret, "otpauth_uri": e.otpauth_uri }),
    )?))
}
