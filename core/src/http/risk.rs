//! Routes of adaptive authentication (NFR-SEC-006, CON-SEC-008): the tenant's policy, its
//! risky sign-ins, and each user's known devices.

use ::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::reply::no_content;
use super::{json, ApiError, Ctx, Request, Response};
use crate::ports::Platform;
use crate::risk::{self, KnownDevice, RiskLevel, RiskPolicy, RiskySignIn};
use crate::signin::UserPrincipal;
use crate::users::admin::TenantActor;

/// The most risky sign-ins one answer lists.
const MAX_RISKY: u32 = 200;

/// The answer of `GET /v1/me/devices`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// The devices, most recently seen first.
    pub items: Vec<KnownDevice>,
}

/// The answer of `GET /v1/tenant/risky-sign-ins`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskySignInList {
    /// Medium- and high-risk sign-ins, newest first.
    pub items: Vec<RiskySignIn>,
}

fn internal(e: impl ToString) -> ApiError {
    ApiError::internal(e.to_string())
}

/// `GET /v1/tenant/risk-policy` (owner, admin).
pub(super) async fn get_policy<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let policy = risk::policy::load(ctx.platform, &by.tenant_id)
        .await
        .map_err(internal)?;
    json::response(StatusCode::OK, &policy)
}

/// `PUT /v1/tenant/risk-policy` (owner).
pub(super) async fn put_policy<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let policy: RiskPolicy = json::parse_body(req)?;
    risk::policy::save(ctx.platform, &by, &policy, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &policy)
}

/// `GET /v1/tenant/risky-sign-ins?level=&limit=` (owner, admin).
pub(super) async fn risky_sign_ins<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    by: TenantActor,
) -> Result<Response, ApiError> {
    let mut limit = 50;
    let mut level = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_RISKY).contains(n))
                    .ok_or_else(|| ApiError::invalid_field("limit", "must be between 1 and 200"))?;
            }
            "level" => {
                level = Some(match v.as_ref() {
                    "medium" => RiskLevel::Medium,
                    "high" => RiskLevel::High,
                    _ => return Err(ApiError::invalid_field("level", "must be medium or high")),
                });
            }
            _ => {}
        }
    }
    let items = risk::risky_sign_ins(ctx.platform, &by.tenant_id, level, limit)
        .await
        .map_err(internal)?;
    json::response(StatusCode::OK, &RiskySignInList { items })
}

/// `GET /v1/me/devices`: the signed-in user's known devices.
pub(super) async fn list_devices<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let items = risk::list_devices(ctx.platform, &principal.claims.sub)
        .await
        .map_err(internal)?;
    json::response(StatusCode::OK, &DeviceList { items })
}

/// `DELETE /v1/me/devices/{id}`: forget one; its next sign-in is from a new device.
pub(super) async fn remove_device<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_owned();
    let removed = risk::remove_device(ctx.platform, &principal.claims.sub, &id)
        .await
        .map_err(internal)?;
    if !removed {
        return Err(ApiError::not_found("No such device."));
    }
    Ok(no_content())
}
