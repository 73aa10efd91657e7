//! Tenant administration routes for owners and admins (UC-TENANT-INVITE,
//! UC-TENANT-INVITE-RESEND, UC-TENANT-USER-DELETE, UC-TENANT-USER-UPDATE,
//! UC-TENANT-USER-STATUS-UPDATE; FR-TENANT-001..007), the tenant's plan (FR-TENANT-003) and
//! data subject rights (CON-COMP-001). Every route acts on the caller's own tenant only: an id
//! of another tenant is 404. The caller's role and status are read from D1 on every request (a
//! token's role may be stale). The one mapping of these domain errors to problem details is here.

use ::http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::reply::no_content;
use super::{json, ApiError, Ctx, ProblemType, Request, Response};
use crate::ports::Platform;
use crate::signin::UserPrincipal;
use crate::tenants::{self, Email, Plan, TenantId, UpdateTenant};
use crate::users::admin::{self, ListUsers, TenantActor, TenantRole, UpdateUser, UserStatus};
use crate::users::invite::{self, InvitationView, Invite};
use crate::users::privacy;

/// Body of `PATCH /v1/tenant/users/{id}`: a new role, a new status, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateTenantUserRequest)]
pub(crate) struct UpdateUserRequest {
    /// The new role: `owner`, `admin` or `user`.
    #[schema(schema_with = role_schema)]
    role: Option<String>,
    /// `active` to enable the user, `disabled` to block them (FR-TENANT-006).
    #[schema(schema_with = new_status_schema)]
    status: Option<String>,
}

fn role_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::nullable_string_enum(&admin::ROLE_NAMES)
}

fn new_status_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::nullable_string_enum(&[
        UserStatus::Active.as_str(),
        UserStatus::Disabled.as_str(),
    ])
}

/// Body of `POST /v1/tenant/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteRequest {
    /// Whom to invite.
    #[schema(format = Email)]
    email: String,
    /// The role the user gets: `admin` or `user`.
    #[schema(schema_with = invited_role_schema)]
    role: String,
    /// How long the invitation is valid, in days (default 7).
    #[schema(minimum = 1, maximum = 30, default = 7)]
    expires_in_days: Option<u32>,
}

fn invited_role_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&[TenantRole::Admin.as_str(), TenantRole::User.as_str()])
}

/// Body of `POST /v1/tenant/invitations/{id}/resend` (may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ResendInvitationRequest)]
pub(crate) struct ResendRequest {
    /// How long the new invitation is valid, in days (default 7).
    #[schema(minimum = 1, maximum = 30, default = 7)]
    expires_in_days: Option<u32>,
}

/// Body of `GET /v1/tenant/invitations`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationList {
    /// Pending and expired invitations, newest first (at most 100).
    #[schema(inline)]
    items: Vec<InvitationView>,
}

/// Body of `PATCH /v1/tenant/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TenantPlanRequest)]
pub(super) struct PlanRequest {
    /// A plan name (1 to 64 of a-z, 0-9, _ and -; case-folded, surrounding whitespace trimmed).
    /// Unknown plans are refused with 422.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_-]{1,64}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#,
        examples("free", "pro", "enterprise")
    )]
    plan: String,
}

/// The tenant's plan after `PATCH /v1/tenant/plan`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantPlanChange)]
pub(super) struct PlanChange<'a> {
    /// The caller's tenant.
    tenant_id: &'a str,
    /// Its plan now.
    plan: &'a str,
    /// False when the tenant already was on this plan.
    changed: bool,
    /// Whether the plan's default flags changed any of the tenant's flags.
    flags_changed: bool,
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn parse_role(field: &str, raw: &str) -> Result<TenantRole, ApiError> {
    TenantRole::parse(raw)
        .ok_or_else(|| ApiError::invalid_field(field, "must be owner, admin or user"))
}

fn query_params(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /v1/tenant/users?status=&role=&q=&cursor=&limit=` (owner, admin): keyset pages.
pub(super) async fn list_users<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let mut list = ListUsers::default();
    for (k, v) in query_params(req) {
        match k.as_str() {
            "status" => {
                list.status = Some(UserStatus::parse(&v).ok_or_else(|| {
                    ApiError::invalid_field(
                        "status",
                        "must be invited, active, disabled or deleted",
                    )
                })?);
            }
            "role" => list.role = Some(parse_role("role", &v)?),
            "q" => list.q = Some(v),
            "cursor" => list.cursor = Some(v),
            "limit" => {
                list.limit = Some(
                    v.parse()
                        .map_err(|_| ApiError::invalid_field("limit", "must be a number"))?,
                );
            }
            _ => {}
        }
    }
    let page = admin::list_users(ctx.platform, &by, &list, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &page)?))
}

/// `GET /v1/tenant/users/{id}` (owner, admin).
pub(super) async fn get_user<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_owned();
    let user = admin::get_user(ctx.platform, &by, &id, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &user)?))
}

/// `PATCH /v1/tenant/users/{id} {role?, status?: active|disabled}` (FR-TENANT-004/006).
pub(super) async fn update_user<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_owned();
    let body: UpdateUserRequest = json::parse_body(req)?;
    let change = UpdateUser {
        role: body
            .role
            .as_deref()
            .map(|r| parse_role("role", r))
            .transpose()?,
        status: body
            .status
            .as_deref()
            .map(|s| match UserStatus::parse(s) {
                Some(st @ (UserStatus::Active | UserStatus::Disabled)) => Ok(st),
                _ => Err(ApiError::invalid_field(
                    "status",
                    "must be active or disabled",
                )),
            })
            .transpose()?,
    };
    if change.role.is_none() && change.status.is_none() {
        return Err(ApiError::invalid_input("Give role, status or both."));
    }
    let user = admin::update_user(ctx.platform, &by, &id, change, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &user)?))
}

/// `DELETE /v1/tenant/users/{id}` (owner, admin): erasure with a pseudonym (FR-TENANT-002).
pub(super) async fn delete_user<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_owned();
    admin::erase_user(ctx.platform, &by, &id, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}

/// `POST /v1/tenant/invitations {email, role, expires_in_days?}` -> 201 (FR-TENANT-001).
pub(super) async fn invite<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let body: InviteRequest = json::parse_body(req)?;
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::invalid_field("email", e.to_string()))?;
    let request = Invite {
        email,
        role: parse_role("role", &body.role)?,
        expires_in_days: body.expires_in_days,
    };
    let links = super::tenants::mail_links(ctx, req)?;
    let inv = invite::invite(ctx.platform, &by, &request, &links, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    if let Some(e) = &inv.mail_error {
        ctx.log(
            "error",
            "invitation mail failed",
            Some("mail"),
            &e.to_string(),
        );
    }
    Ok(no_store(json::response(StatusCode::CREATED, &inv)?))
}

/// `GET /v1/tenant/invitations` (owner, admin): pending and expired invitations.
pub(super) async fn list_invitations<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let items = invite::list_invitations(ctx.platform, &by, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &InvitationList { items },
    )?))
}

/// `POST /v1/tenant/invitations/{id}/resend {expires_in_days?}` -> 201 (FR-TENANT-007).
pub(super) async fn resend_invitation<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_owned();
    let body: ResendRequest = json::parse_optional_body(req)?;
    let links = super::tenants::mail_links(ctx, req)?;
    let inv = invite::resend(
        ctx.platform,
        &by,
        &id,
        body.expires_in_days,
        &links,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    if let Some(e) = &inv.mail_error {
        ctx.log(
            "error",
            "invitation mail failed",
            Some("mail"),
            &e.to_string(),
        );
    }
    Ok(no_store(json::response(StatusCode::CREATED, &inv)?))
}

/// `PATCH /v1/tenant/plan {plan}` (owner only, FR-TENANT-003): the plan's default flags replace
/// the tenant's non-overridden flags, and the flag snapshot is republished.
pub(super) async fn update_plan<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    let by = admin::load_actor(ctx.platform, &c.tid, &c.sub)
        .await
        .map_err(|e| ApiError::from(&e))?;
    if by.role != TenantRole::Owner {
        return Err(ApiError::new(
            ProblemType::AccessDenied,
            "Only an owner changes the plan (FR-TENANT-003).",
        )
        .with_extension("reason", "owner_only".into()));
    }
    let body: PlanRequest = json::parse_body(req)?;
    let plan =
        Plan::parse(&body.plan).map_err(|e| ApiError::invalid_field("plan", e.to_string()))?;
    let tenant_id = TenantId::parse(&by.tenant_id)
        .map_err(|e| ApiError::internal(format!("tenant id of a token: {e}")))?;
    let outcome = tenants::update(
        ctx.platform,
        &by.actor(),
        &tenant_id,
        UpdateTenant {
            plan: Some(plan),
            ..UpdateTenant::default()
        },
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &PlanChange {
            tenant_id: outcome.tenant.id.as_str(),
            plan: outcome.tenant.plan.as_str(),
            changed: outcome.changed,
            flags_changed: outcome.flags_changed,
        },
    )
}

/// `GET /v1/me/export`: the caller's personal data as JSON (CON-COMP-001 access, portability).
pub(super) async fn export_me<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    let data = privacy::export_user_data(ctx.platform, &c.tid, &c.sub, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let mut resp = no_store(json::response(StatusCode::OK, &data)?);
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"edgeplane-personal-data.json\""),
    );
    Ok(resp)
}

/// `DELETE /v1/me`: the caller erases themselves (CON-COMP-001 erasure); the last owner cannot.
pub(super) async fn delete_me<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    let by = admin::load_actor(ctx.platform, &c.tid, &c.sub)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let user_id = by.user_id.clone();
    admin::erase_user(ctx.platform, &by, &user_id, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}

/// How many sessions of a user were revoked.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsRevoked {
    /// The user whose sessions were revoked.
    user_id: String,
    /// How many sessions were live and are now revoked.
    sessions_revoked: usize,
}

/// `POST /v1/tenant/users/{id}/sessions/revoke` (owner, admin): ends every session of a user of
/// the caller's tenant at once (FR-AUTH-005, UC-TENANT-SESSION-REVOKE).
pub(super) async fn revoke_user_sessions<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    let user_id = ctx.param("id").to_owned();
    let revoked = crate::sessions::revoke_all_sessions(
        ctx.platform,
        &c.tid,
        &user_id,
        &crate::audit::Actor::user(&c.sub),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &SessionsRevoked {
            user_id,
            sessions_revoked: revoked,
        },
    )
}
