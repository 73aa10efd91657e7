//! The caller of a request, as a tenant user: who signed in, how recently, with what role in
//! the tenant; and the client's address as the runtime vouches for it.

use ::http::header;

use super::apps::require_app_key;
use super::operator::require_platform_role;
use super::router::Caller;
use super::{ApiError, Ctx, ProblemType, Request};
use crate::apps::AppKeyPrincipal;
use crate::auth::{OperatorPrincipal, PlatformRole};
use crate::ports::{Clock, Platform, Secrets};
use crate::sessions;
use crate::signin::{authenticate_access_token, UserPrincipal};
use crate::users;
use crate::users::admin::TenantActor;

/// Who the router let through to the handler: the caller its route declares, authenticated.
#[derive(Debug)]
pub(super) enum Principal {
    /// No credentials were asked for, or the handler checks them by its own protocol (OAuth
    /// clients and bearer tokens, the scheduler's secret, token introspection).
    Unchecked,
    /// An operator or auditor.
    Operator(OperatorPrincipal),
    /// A managed app's API key.
    App(AppKeyPrincipal),
    /// A tenant user.
    User(UserPrincipal),
    /// A tenant's active owner or admin, with their role as the database holds it now.
    Admin(UserPrincipal, TenantActor),
}

impl Principal {
    fn mismatch(want: &str) -> ApiError {
        ApiError::internal(format!("the route's declared caller does not give {want}"))
    }

    /// The operator of an operator route.
    pub(super) fn operator(self) -> Result<OperatorPrincipal, ApiError> {
        match self {
            Principal::Operator(p) => Ok(p),
            _ => Err(Self::mismatch("an operator")),
        }
    }

    /// The key of an app-key route.
    pub(super) fn app(self) -> Result<AppKeyPrincipal, ApiError> {
        match self {
            Principal::App(p) => Ok(p),
            _ => Err(Self::mismatch("an app key")),
        }
    }

    /// The user of a user route (an admin route's too).
    pub(super) fn user(self) -> Result<UserPrincipal, ApiError> {
        match self {
            Principal::User(p) | Principal::Admin(p, _) => Ok(p),
            _ => Err(Self::mismatch("a user")),
        }
    }

    /// The acting owner or admin of an admin route.
    pub(super) fn admin(self) -> Result<TenantActor, ApiError> {
        match self {
            Principal::Admin(_, actor) => Ok(actor),
            _ => Err(Self::mismatch("an admin")),
        }
    }
}

/// Authenticates the caller a route declares, before its handler runs: a route cannot be
/// served to a caller its declaration does not admit.
pub(super) async fn authorize<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    caller: Caller,
    req: &Request,
) -> Result<Principal, ApiError> {
    Ok(match caller {
        Caller::Anyone
        | Caller::Preflight
        | Caller::Scheduler
        | Caller::Introspector
        | Caller::OidcClient
        | Caller::OidcUser => Principal::Unchecked,
        Caller::Operator => {
            Principal::Operator(require_platform_role(ctx, req, &[PlatformRole::Operator]).await?)
        }
        Caller::OperatorOrAuditor => Principal::Operator(
            require_platform_role(ctx, req, &[PlatformRole::Operator, PlatformRole::Auditor])
                .await?,
        ),
        Caller::AppKey(scope) => Principal::App(require_app_key(ctx, req, scope).await?),
        Caller::User | Caller::TenantOwner => Principal::User(require_user(ctx, req).await?),
        Caller::RecentUser => Principal::User(require_recent_user(ctx, req).await?),
        Caller::TenantAdmin => {
            let (user, actor) = require_tenant_admin(ctx, req).await?;
            Principal::Admin(user, actor)
        }
    })
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

/// Authenticates the tenant user of the request's access token.
async fn require_user<P: Platform>(
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
async fn require_recent_user<P: Platform>(
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
async fn require_tenant_admin<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
) -> Result<(UserPrincipal, TenantActor), ApiError> {
    let principal = require_user(ctx, req).await?;
    if !matches!(principal.claims.role.as_str(), "owner" | "admin") {
        return Err(ApiError::new(
            ProblemType::AccessDenied,
            "This operation needs the owner or admin role.",
        ));
    }
    let c = &principal.claims;
    let actor = users::admin::authorize_admin(ctx.platform, &c.tid, &c.sub)
        .await
        .map_err(|e| match e {
            users::admin::UserAdminError::Storage(cause) => ApiError::internal(cause.to_string()),
            e => ApiError::new(ProblemType::AccessDenied, format!("{e}."))
                .with_extension("reason", e.code().into()),
        })?;
    Ok((principal, actor))
}
