//! Operator and auditor authentication at the HTTP edge: the bearer token of the operator
//! identity provider (FR-SYS-004), mapped to problem details.

use ::http::{header, HeaderValue};

use super::{ApiError, Ctx, ProblemType, Request};
use crate::audit::{record_refusal, Actor, AuditRecord};
use crate::auth::{authenticate_operator, OperatorAuthError, OperatorPrincipal, PlatformRole};
use crate::ports::{Logger, Platform};

/// Authenticates the request's operator token and checks its role is one of `allowed`.
pub async fn require_platform_role<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    allowed: &[PlatformRole],
) -> Result<OperatorPrincipal, ApiError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = authenticate_operator(ctx.platform, authorization)
        .await
        .map_err(|e| {
            if let OperatorAuthError::IssuerUnavailable(_) | OperatorAuthError::Storage(_) = &e {
                let line = serde_json::json!({
                    "level": "error", "msg": "operator authentication failed",
                    "request_id": ctx.request_id, "code": e.code(), "error": e.to_string(),
                });
                ctx.platform.logger().line(&line.to_string());
            }
            operator_problem(&e)
        })?;
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

/// The one mapping of operator authentication failures to problems.
fn operator_problem(e: &OperatorAuthError) -> ApiError {
    match e {
        OperatorAuthError::NoRole => ApiError::new(ProblemType::AccessDenied, e.to_string()),
        OperatorAuthError::IssuerUnavailable(cause) => ApiError::unavailable(cause.clone()),
        OperatorAuthError::Storage(cause) => ApiError::internal(cause.clone()),
        OperatorAuthError::NotConfigured | OperatorAuthError::MissingToken => {
            ApiError::invalid_credentials(format!("{e}."))
        }
        OperatorAuthError::Malformed
        | OperatorAuthError::UnsupportedAlgorithm
        | OperatorAuthError::BadSignature
        | OperatorAuthError::Expired
        | OperatorAuthError::WrongIssuer
        | OperatorAuthError::WrongAudience => {
            let mut problem = ApiError::new(ProblemType::InvalidCredentials, format!("{e}."));
            problem = problem.with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            problem.with_extension("reason", e.code().into())
        }
    }
}
