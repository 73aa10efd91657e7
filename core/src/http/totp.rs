//! TOTP management by a signed-in user (NFR-SEC-003): enroll, confirm with recovery codes,
//! turn off.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::callers::client_address;
use super::reply::{no_content, no_store};
use super::{json, ApiError, Ctx, Request, Response};
use crate::ports::Platform;
use crate::signin::UserPrincipal;
use crate::users::mfa;

/// A current TOTP code, for confirming an enrollment or turning TOTP off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaCodeRequest {
    /// The code the authenticator app shows now.
    code: String,
}

/// The recovery codes issued when TOTP is turned on, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodes {
    /// Ten single-use codes, each accepted once instead of a TOTP code.
    #[schema(min_items = 10, max_items = 10)]
    recovery_codes: Vec<String>,
}

/// `POST /v1/auth/mfa/totp`: starts a TOTP enrollment of the signed-in user (NFR-SEC-003).
pub(super) async fn enroll_totp<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let c = &principal.claims;
    let e = mfa::enroll(ctx.platform, &c.sub, &c.tid, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &e)?))
}

/// `POST /v1/auth/mfa/totp/confirm {code}`: turns TOTP on and returns ten recovery codes once.
pub(super) async fn confirm_totp<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let body: MfaCodeRequest = json::parse_body(req)?;
    let c = &principal.claims;
    let client = client_address(ctx, req);
    let confirm = mfa::confirm(ctx.platform, &c.sub, &c.tid, &body.code, &ctx.request_id);
    let codes = mfa::limited(ctx.platform, &c.sub, client.as_deref(), confirm)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &RecoveryCodes {
            recovery_codes: codes,
        },
    )?))
}

/// `DELETE /v1/auth/mfa/totp {code}`: turns TOTP off after a current code.
pub(super) async fn disable_totp<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let body: MfaCodeRequest = json::parse_body(req)?;
    let c = &principal.claims;
    let client = client_address(ctx, req);
    let disable = mfa::disable(ctx.platform, &c.sub, &c.tid, &body.code, &ctx.request_id);
    mfa::limited(ctx.platform, &c.sub, client.as_deref(), disable)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_content())
}
