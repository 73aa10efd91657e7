//! Operator and auditor authentication at the HTTP edge: the bearer token of the operator
//! identity provider (FR-SYS-004), mapped to problem details.

use ::http::header;

use super::{ApiError, Ctx, ProblemType, Request};
use crate::audit::{record_refusal, Actor, AuditRecord};
use crate::auth::{authenticate_operator, OperatorPrincipal, PlatformRole};
use crate::ports::Platform;

/// Authenticates the request's operator token and checks its role is one of `allowed`.
pub async fn require_platform_role<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    allowed: &[PlatformRole],
) -> Result<OperatorPrincipal, ApiError> {
    let principal = match &ctx.delegate {
        // Signed in through the web console, which authenticated them at its own sign-in.
        Some(delegate) => delegate.clone(),
        None => {
            let authorization = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            authenticate_operator(ctx.platform, authorization)
                .await
                .map_err(|e| ApiError::from(&e))?
        }
    };
    if !allowed.contains(&principal.role) {
        // FR-LOG-003: a refused operation is audited with outcome failure.
        let record = AuditRecord::failure(
            "access.denied",
            &Actor::operator(&principal.user_id),
            None,
            ctx.route.clone(),
            Some(&ctx.request_id),
        )
        .with("role", principal.role.as_str())
        .with("required", role_list(allowed));
        record_refusal(ctx.platform, &record).await;
        return Err(ApiError::new(
            ProblemType::AccessDenied,
            format!("This operation needs the {} role.", role_list(allowed)),
        ));
    }
    Ok(principal)
}

fn role_list(roles: &[PlatformRole]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}
