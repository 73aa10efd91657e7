//! Route handlers: parse the request, call the domain, shape the response.

use ::http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::callers::Principal;
use super::is_development;
use super::router::RouteId;
use super::sso;
use super::tenant_users;
use super::webauthn;
use super::{
    alerts, app_health, apps, dev, events, flags, json, oidc, openapi, passwords, risk, sign_in,
    sign_in_notice, tenants, tokens, totp, ApiError, Ctx, Request, Response,
};
use crate::ports::{Clock, Logger, Platform, Secrets};
use crate::{health, metrics, scheduled};

/// Runs the handler of a matched route.
pub(super) async fn dispatch<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    route: RouteId,
    req: Request,
    principal: Principal,
) -> Result<Response, ApiError> {
    match route {
        RouteId::Liveness => liveness(),
        RouteId::Health => health_details(ctx).await,
        RouteId::HealthServices => health_services(ctx).await,
        RouteId::HealthJourneys => super::journeys::list(ctx).await,
        RouteId::AlertList => alerts::list_alerts(ctx).await,
        RouteId::TenantAlertList => alerts::list_tenant_alerts(ctx, principal.user()?).await,
        RouteId::AlertChannelList => alerts::list_channels(ctx).await,
        RouteId::AlertChannelCreate => {
            alerts::create_channel(ctx, &req, principal.operator()?).await
        }
        RouteId::AlertChannelDelete => alerts::delete_channel(ctx, principal.operator()?).await,
        RouteId::OpenApi => Ok(openapi_document()),
        RouteId::Scheduled => run_scheduled(ctx, &req).await,
        RouteId::DevPanic => dev_panic(ctx),
        RouteId::DevFaults => dev::dev_faults(ctx, &req).await,
        RouteId::DevClock => dev::dev_clock(ctx, &req).await,
        RouteId::TenantProvision => tenants::provision(ctx, &req, principal.operator()?).await,
        RouteId::TenantList => tenants::list(ctx, &req, principal.operator()?).await,
        RouteId::TenantGet => tenants::get(ctx, principal.operator()?).await,
        RouteId::TenantUpdate => tenants::update(ctx, &req, principal.operator()?).await,
        RouteId::TenantDelete => tenants::delete(ctx, principal.operator()?).await,
        RouteId::TenantSuspend => tenants::suspend(ctx, &req, principal.operator()?).await,
        RouteId::TenantActivate => tenants::activate(ctx, principal.operator()?).await,
        RouteId::TenantRestore => tenants::restore(ctx, principal.operator()?).await,
        RouteId::TenantAppEnable => apps::enable_for_tenant(ctx, principal.operator()?).await,
        RouteId::TenantAppList => apps::list_for_tenant(ctx, principal.operator()?).await,
        RouteId::TenantAppDisable => apps::disable_for_tenant(ctx, principal.operator()?).await,
        RouteId::AppHealthSet => app_health::set(ctx, &req, principal.operator()?).await,
        RouteId::AppHealthRemove => app_health::remove(ctx, principal.operator()?).await,
        RouteId::AppHealthGet => app_health::get(ctx, principal.operator()?).await,
        RouteId::AppRegister => apps::register(ctx, &req, principal.operator()?).await,
        RouteId::AppList => apps::list(ctx, &req, principal.operator()?).await,
        RouteId::AppGet => apps::get(ctx, principal.operator()?).await,
        RouteId::AppUpdate => apps::update(ctx, &req, principal.operator()?).await,
        RouteId::AppKeyIssue => apps::issue_key(ctx, &req, principal.operator()?).await,
        RouteId::AppKeyList => apps::list_keys(ctx, &req, principal.operator()?).await,
        RouteId::AppKeyRevoke => apps::revoke_key(ctx, principal.operator()?).await,
        RouteId::FlagList => flags::list(ctx, principal.operator()?).await,
        RouteId::FlagSet => flags::set(ctx, &req, principal.operator()?).await,
        RouteId::FlagRemove => flags::remove(ctx, principal.operator()?).await,
        RouteId::OfrepBulk => flags::evaluate_all(ctx, &req, principal.app()?).await,
        RouteId::OfrepSingle => flags::evaluate_one(ctx, &req, principal.app()?).await,
        RouteId::OfrepPreflight => flags::preflight(&req),
        RouteId::FlagSnapshot => flags::snapshot(ctx, &req, principal.app()?).await,
        RouteId::PlanFlagList => flags::plan_list(ctx, principal.operator()?).await,
        RouteId::PlanFlagSet => flags::plan_set(ctx, &req, principal.operator()?).await,
        RouteId::PlanFlagRemove => flags::plan_remove(ctx, principal.operator()?).await,
        RouteId::Jwks => tokens::jwks(ctx).await,
        RouteId::SigningKeyRotate => tokens::rotate_signing_key(ctx, principal.operator()?).await,
        RouteId::InvitationAccept => passwords::accept_invitation(ctx, &req).await,
        RouteId::AuthLogin => sign_in::login(ctx, &req).await,
        RouteId::AuthRefresh => sign_in::refresh(ctx, &req).await,
        RouteId::AuthLogout => sign_in::logout(ctx, principal.user()?).await,
        RouteId::PasswordForgot => passwords::forgot_password(ctx, &req).await,
        RouteId::PasswordReset => passwords::reset_password(ctx, &req).await,
        RouteId::PasswordChange => passwords::change_password(ctx, &req, principal.user()?).await,
        RouteId::PasswordPolicyGet => passwords::get_password_policy(ctx, principal.user()?).await,
        RouteId::PasswordPolicyPut => {
            passwords::put_password_policy(ctx, &req, principal.user()?).await
        }
        RouteId::Introspect => tokens::introspect(ctx, &req).await,
        RouteId::DevMail => dev::dev_mail(ctx, &req).await,
        RouteId::MfaVerify => sign_in::verify_mfa(ctx, &req).await,
        RouteId::TotpEnroll => totp::enroll_totp(ctx, principal.user()?).await,
        RouteId::TotpConfirm => totp::confirm_totp(ctx, &req, principal.user()?).await,
        RouteId::TotpDisable => totp::disable_totp(ctx, &req, principal.user()?).await,
        RouteId::UserSessionsRevoke => {
            tenant_users::revoke_user_sessions(ctx, principal.user()?).await
        }
        RouteId::MfaEnrollDuringSignIn => sign_in::enroll_during_sign_in(ctx, &req).await,
        RouteId::BillingIngest => events::ingest_billing(ctx, &req, principal.app()?).await,
        RouteId::BillingExport => events::export_billing(ctx, &req, principal.app()?).await,
        RouteId::BillingUsage => events::usage(ctx, &req, principal.app()?).await,
        RouteId::TenantUsage => events::tenant_usage(ctx, &req, principal.operator()?).await,
        RouteId::OwnTenantUsage => events::own_usage(ctx, &req, principal.admin()?).await,
        RouteId::AuditIngest => events::ingest_audit(ctx, &req, principal.app()?).await,
        RouteId::AuditExportCsv => events::export_audit_csv(ctx, &req, principal.operator()?).await,
        RouteId::AuditVerify => events::verify(ctx, &req, principal.operator()?).await,
        RouteId::DevBlobGet => events::dev_blob_get(ctx, &req, principal.operator()?).await,
        RouteId::DevBlobPut => events::dev_blob_put(ctx, &req, principal.operator()?).await,
        RouteId::TenantOwnFlags => flags::own_list(ctx, principal.user()?).await,
        RouteId::TenantSelf => tenants::own(ctx, principal.user()?).await,
        RouteId::TenantUserList => tenant_users::list_users(ctx, &req, principal.admin()?).await,
        RouteId::TenantUserGet => tenant_users::get_user(ctx, principal.admin()?).await,
        RouteId::TenantUserUpdate => tenant_users::update_user(ctx, &req, principal.admin()?).await,
        RouteId::TenantUserDelete => tenant_users::delete_user(ctx, principal.admin()?).await,
        RouteId::TenantInvite => tenant_users::invite(ctx, &req, principal.admin()?).await,
        RouteId::TenantInvitationList => {
            tenant_users::list_invitations(ctx, principal.admin()?).await
        }
        RouteId::TenantInvitationResend => {
            tenant_users::resend_invitation(ctx, &req, principal.admin()?).await
        }
        RouteId::TenantPlanUpdate => tenant_users::update_plan(ctx, &req, principal.user()?).await,
        RouteId::MeExport => tenant_users::export_me(ctx, principal.user()?).await,
        RouteId::MeDelete => tenant_users::delete_me(ctx, principal.user()?).await,
        RouteId::RiskPolicyGet => risk::get_policy(ctx, principal.admin()?).await,
        RouteId::RiskPolicyPut => risk::put_policy(ctx, &req, principal.admin()?).await,
        RouteId::RiskySignIns => risk::risky_sign_ins(ctx, &req, principal.admin()?).await,
        RouteId::MyDevices => risk::list_devices(ctx, principal.user()?).await,
        RouteId::MyDeviceDelete => risk::remove_device(ctx, principal.user()?).await,
        RouteId::SsoConfigGet => sso::get_config(ctx, principal.user()?).await,
        RouteId::SsoConfigPut => sso::put_config(ctx, &req, principal.user()?).await,
        RouteId::SsoConfigDelete => sso::delete_config(ctx, principal.user()?).await,
        RouteId::SsoStart => sso::start(ctx, &req).await,
        RouteId::SsoCallback => sso::callback(ctx, &req).await,
        RouteId::WebAuthnRegisterOptions => {
            webauthn::register_options(ctx, &req, principal.user()?).await
        }
        RouteId::WebAuthnRegisterVerify => {
            webauthn::register_verify(ctx, &req, principal.user()?).await
        }
        RouteId::WebAuthnCredentialList => webauthn::list(ctx, principal.user()?).await,
        RouteId::WebAuthnCredentialDelete => webauthn::delete(ctx, principal.user()?).await,
        RouteId::WebAuthnLoginOptions => webauthn::login_options(ctx, &req).await,
        RouteId::WebAuthnLoginVerify => webauthn::login_verify(ctx, &req).await,
        RouteId::MfaWebAuthnOptions => webauthn::mfa_options(ctx, &req).await,
        RouteId::OidcDiscovery => oidc::discovery(ctx, &req).await,
        RouteId::OidcAuthorize => oidc::authorize(ctx, &req).await,
        RouteId::OidcLoginTenant => oidc::login_tenant(ctx, &req).await,
        RouteId::OidcLoginPassword => oidc::login_password(ctx, &req).await,
        RouteId::OidcLoginMfa => oidc::login_mfa(ctx, &req).await,
        RouteId::OidcLoginForgot => oidc::login_forgot(ctx, &req).await,
        RouteId::OidcLoginCss => oidc::login_css(),
        RouteId::OidcPasskeyJs => oidc::passkey_js(),
        RouteId::OidcToken => oidc::token(ctx, &req).await,
        RouteId::OidcUserinfo => oidc::userinfo(ctx, &req).await,
        RouteId::OidcEndSession => oidc::end_session(ctx, &req).await,
        RouteId::AppClientSecret => oidc::rotate_client_secret(ctx, principal.operator()?).await,
        RouteId::OidcLoginContinue => oidc::login_continue(ctx, &req).await,
        RouteId::OidcPreflight => oidc::preflight(&req),
        RouteId::SignInRevokePage => Ok(sign_in_notice::confirm(ctx, &req).await),
        RouteId::SignInRevoke => Ok(sign_in_notice::revoke(ctx, &req).await),
    }
}

/// Panics on purpose (development only): the runtimes' panic handling is tested through it.
#[allow(clippy::panic)]
fn dev_panic<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Response, ApiError> {
    if !is_development(ctx) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    panic!("deliberate panic from GET /__dev/panic");
}

/// The body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`: an answer is the signal.
    #[schema(inline)]
    status: Alive,
}

/// The one value of [`Liveness::status`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Alive {
    /// Serving.
    Ok,
}

fn liveness() -> Result<Response, ApiError> {
    let mut resp = json::response(StatusCode::OK, &Liveness { status: Alive::Ok })?;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// FR-SYS-005: 200 when every dependency answers, 503 (same body shape) when one does not.
async fn health_details<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Response, ApiError> {
    let (report, causes) = health::check(ctx.platform).await;
    for cause in causes {
        log_cause(ctx, "health check failed", &cause);
    }
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = json::response(status, &report)?;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The key services' figures (FR-SYS-005), for operators and auditors.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceHealthReport {
    /// When the figures were read (unix ms).
    pub generated_at_ms: i64,
    /// One entry per key service, every one present.
    pub services: Vec<metrics::ServiceFigures>,
    /// The latest synthetic journey run (NFR-MON-003; `GET /v1/health/journeys` has more);
    /// null before the first, or when it could not be read.
    pub latest_journey: Option<crate::journeys::JourneyRun>,
}

async fn health_services<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Response, ApiError> {
    let now = ctx.platform.clock().now_ms();
    let services = metrics::figures(ctx.platform, now)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let latest_journey = match crate::journeys::store::latest(ctx.platform).await {
        Ok(run) => run,
        Err(e) => {
            log_cause(ctx, "journey runs unreadable", &e.to_string());
            None
        }
    };
    let report = ServiceHealthReport {
        generated_at_ms: now,
        services,
        latest_journey,
    };
    let mut resp = json::response(StatusCode::OK, &report)?;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn openapi_document() -> Response {
    let mut resp = json::raw(
        StatusCode::OK,
        openapi::DOCUMENT.as_bytes().to_vec(),
        "application/json",
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// Body of `POST /internal/scheduled`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduledRequest {
    /// The cron expression to report as the trigger (defaults to `manual`).
    cron: Option<String>,
    /// Development only: run the jobs as if it were this time (unix ms).
    now_ms: Option<i64>,
}

/// Runs the periodic jobs on runtimes without cron. Authenticated by the `CRON_SECRET` bearer;
/// without a configured secret the route does not exist.
async fn run_scheduled<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response, ApiError> {
    let Some(secret) = ctx.platform.secrets().get("CRON_SECRET") else {
        return Err(ApiError::not_found("No route matches this path."));
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
        return Err(ApiError::invalid_credentials(
            "A valid scheduler bearer token is required.",
        ));
    }
    let body: ScheduledRequest = json::parse_optional_body(req)?;
    let cron = body.cron.unwrap_or_else(|| "manual".to_owned());
    if cron.is_empty() || cron.len() > 64 || cron.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "cron",
            "must be 1 to 64 printable characters",
        ));
    }
    let now = match body.now_ms {
        None => ctx.platform.clock().now_ms(),
        Some(now) if is_development(ctx) => now,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "now_ms",
                "is accepted only in development",
            ))
        }
    };
    let (report, causes) =
        scheduled::run_with(ctx.platform, &cron, now, &super::journeys::ApiJourney).await;
    for cause in causes {
        log_cause(ctx, "scheduled job failed", &cause);
    }
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    json::response(status, &report)
}

/// Logs an internal failure that does not fail the request itself.
fn log_cause<P: Platform>(ctx: &Ctx<'_, P>, msg: &str, cause: &str) {
    let line = serde_json::json!({ "level": "error", "msg": msg, "request_id": ctx.request_id, "error": cause });
    ctx.platform.logger().line(&line.to_string());
}

/// Compares secrets without leaking the position of the first difference through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
