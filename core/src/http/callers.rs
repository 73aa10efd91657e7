//! The caller of a request, as a tenant user: who signed in, how recently, with what role in
//! the tenant; and the client's address as the runtime vouches for it.

use ::http::header;

use super::{ApiError, Ctx, ProblemType, Request};
use crate::ports::{Clock, Platform, Secrets};
use crate::sessions;
use crate::signin::{authenticate_access_token, UserPrincipal};
use crate::users;

/// The client's address as the runtime vouches for it (see [`super::client_addr`]), for the
/// rate limits. Used only hashed.
pub(super) fn client_address<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Option<String> {
    super::client_addr::client_address(
        ctx.platform.backends().runtime,
        ctx.platform.secrets().get("TRUSTED_PROXIES").as_deref(),
        req,
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
