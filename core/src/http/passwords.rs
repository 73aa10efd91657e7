//! Password routes (FR-AUTH-004, FR-AUTH-006, FR-TENANT-001): invitation acceptance, the
//! forgotten-password mail, reset and change, and the tenant's password policy.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::callers::client_address;
use super::reply::{no_content, no_store};
use super::{json, ApiError, Ctx, Request, Response};
use crate::audit::Actor;
use crate::kernel::schema::string_enum;
use crate::ports::Platform;
use crate::signin::UserPrincipal;
use crate::tenants::{Email, TenantDomain};
use crate::users::{
    self, policy, AcceptInvitationError, PasswordPolicy, PolicyRule, SetPasswordError,
};

/// Longest password read from a request, in bytes: bounds the argon2 input before any work.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The body of `POST /v1/invitations/accept`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The invitation token from the invitation mail.
    token: String,
    /// The new password (at most 1024 bytes), under the tenant's password policy.
    #[schema(max_length = 1024)]
    password: String,
}

/// The invitee, now an active user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedInvitation {
    /// The user id.
    user_id: String,
    /// The tenant id.
    tenant_id: String,
    /// The user's tenant role.
    #[schema(schema_with = role_schema)]
    role: String,
    /// Always `active`.
    #[schema(inline)]
    status: Activated,
}

/// The one value of [`AcceptedInvitation::status`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Activated {
    /// The user can sign in.
    Active,
}

fn role_schema() -> utoipa::openapi::Object {
    string_enum(&["owner", "admin", "user"])
}

/// The body of `POST /v1/auth/password/forgot`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The tenant's domain. Any text: the answer is 202 whatever it is.
    tenant: String,
    /// Any text: the answer is 202 whatever it is, and mail goes only to an account that
    /// exists.
    email: String,
}

/// The body of `POST /v1/auth/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The reset token from the mail.
    token: String,
    /// The new password (at most 1024 bytes), under the tenant's password policy.
    #[schema(max_length = 1024)]
    password: String,
}

/// The body of `POST /v1/auth/password/change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now (at most 1024 bytes).
    #[schema(max_length = 1024)]
    current_password: String,
    /// The new password (at most 1024 bytes), under the tenant's password policy.
    #[schema(max_length = 1024)]
    new_password: String,
}

/// ERR-RATE-429 with `Retry-After`.
pub(super) fn check_password_size(field: &str, password: &str) -> Result<(), ApiError> {
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
        &AcceptedInvitation {
            user_id: accepted.user_id,
            tenant_id: accepted.tenant_id,
            role: accepted.role,
            status: Activated::Active,
        },
    )
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
            ctx.log(
                "error",
                "password reset request failed",
                Some("reset_request"),
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
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
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
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let policy = policy::load(ctx.platform, &principal.claims.tid)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    json::response(StatusCode::OK, &policy)
}

/// `PUT /v1/tenant/password-policy` (owner, admin; FR-AUTH-006, CON-SEC-001).
pub(super) async fn put_password_policy<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
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
