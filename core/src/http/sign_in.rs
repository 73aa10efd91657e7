//! Sign-in routes of tenant users (FR-AUTH-001, FR-AUTH-005, NFR-SEC-003): password sign-in,
//! the second factor, refresh-token rotation and logout.

use ::http::StatusCode;
use serde::Deserialize;
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, RefBuilder, Schema, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::callers::client_address;
use super::passwords::check_password_size;
use super::reply::{no_content, no_store};
use super::sign_in_origin;
use super::{json, ApiError, Ctx, Request, Response};
use crate::ports::Platform;
use crate::sessions::{self, SessionUser};
use crate::signin;
use crate::signin::UserPrincipal;
use crate::signin::{LoginError, LoginRequest};
use crate::webauthn::AuthenticationResponse;

/// The body of `POST /v1/auth/login`. A tenant or email that does not parse is refused as
/// wrong credentials (401), like a wrong password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoginRequest)]
pub struct LoginBody {
    /// The tenant's domain.
    tenant: String,
    /// The user's email.
    #[schema(format = Email)]
    email: String,
    /// The password (at most 1024 bytes).
    #[schema(max_length = 1024)]
    password: String,
}

/// The body of `POST /v1/auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last answer: it is rotated, and a reused one revokes the
    /// session.
    refresh_token: String,
}

/// The body of `POST /v1/auth/mfa/verify`: the `mfa_token` and exactly one of `code` and
/// `webauthn`; null is the same as absent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyMfaRequest {
    mfa_token: String,
    #[serde(default)]
    code: Option<String>,
    /// A passkey assertion (`AuthenticationResponseJSON`) instead of a code (NFR-SEC-003).
    #[serde(default)]
    webauthn: Option<AuthenticationResponse>,
}

/// Written by hand: the rule "exactly one of `code` and `webauthn`, the other null or absent"
/// is a choice of two closed objects, which the derive cannot write.
impl PartialSchema for VerifyMfaRequest {
    fn schema() -> RefOr<Schema> {
        let mfa_token = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The mfa_token of the sign-in, from /v1/auth/login."))
        };
        let absent = |what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Null)
                .description(Some(format!("Null or absent: {what} is given instead.")))
        };
        let closed = || {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let by_code = closed()
            .property("mfa_token", mfa_token())
            .required("mfa_token")
            .property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("A TOTP or recovery code.")),
            )
            .required("code")
            .property("webauthn", absent("code"));
        let by_passkey = closed()
            .property("mfa_token", mfa_token())
            .required("mfa_token")
            .property("code", absent("webauthn"))
            .property(
                "webauthn",
                RefBuilder::new()
                    .ref_location_from_schema_name(AuthenticationResponse::name())
                    .description(Some(
                        "A passkey assertion answering /v1/auth/mfa/webauthn/options.",
                    )),
            )
            .required("webauthn");
        OneOfBuilder::new()
            .description(Some(
                "The mfa_token and exactly one of code (TOTP or recovery code) and webauthn (a \
                 passkey assertion answering /v1/auth/mfa/webauthn/options); the other may be \
                 null or absent.",
            ))
            .item(by_code)
            .item(by_passkey)
            .into()
    }
}

impl ToSchema for VerifyMfaRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            AuthenticationResponse::name().into_owned(),
            AuthenticationResponse::schema(),
        ));
        <AuthenticationResponse as ToSchema>::schemas(schemas);
    }
}

/// The body of `POST /v1/auth/mfa/enroll`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaEnrollRequest {
    /// The `mfa_token` of the sign-in that asked for enrollment.
    mfa_token: String,
}

/// `POST /v1/auth/login {tenant, email, password}` (UC-LISTEN, FR-AUTH-001, FR-AUTH-005).
pub(super) async fn login<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: LoginBody = json::parse_body(req)?;
    check_password_size("password", &body.password)?;
    let client = client_address(ctx, req);
    let login = LoginRequest::typed(&body.tenant, &body.email, body.password, client)
        .ok_or_else(|| ApiError::from(&LoginError::InvalidCredentials))?
        .with_context(sign_in_origin::api_context(ctx, req));
    let pair = signin::login(ctx.platform, &login, &ctx.request_id)
        .await
        .map_err(|e| login_problem(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &pair)?))
}

/// The problem of a refused or held sign-in; a held one names the route to go on with and
/// the pending sign-in's token (the SSO callback's step-up answers the same).
pub(super) fn login_problem(e: &LoginError) -> ApiError {
    // The routes to go on with are the HTTP layer's to name.
    let problem = ApiError::from(e);
    match e {
        LoginError::MfaRequired { mfa_token, enroll } => problem
            .with_detail(if *enroll {
                "This tenant requires MFA: enroll with this mfa_token at /v1/auth/mfa/enroll, then send the first code to /v1/auth/mfa/verify."
            } else {
                "Send a TOTP or recovery code, or a passkey assertion (options from /v1/auth/mfa/webauthn/options), with this mfa_token to /v1/auth/mfa/verify."
            })
            .with_extension("mfa_token", mfa_token.clone().into())
            .with_extension("enrollment_required", (*enroll).into())
            .with_extension("expires_in", (signin::MFA_TOKEN_TTL_MS / 1000).into()),
        LoginError::EmailCodeRequired { mfa_token } => problem
            .with_detail("This sign-in needs a one-time code, mailed to the account's address: send it as code with this mfa_token to /v1/auth/mfa/verify.")
            .with_extension("mfa_token", mfa_token.clone().into())
            .with_extension("factor", "email_code".into())
            .with_extension("enrollment_required", false.into())
            .with_extension("expires_in", (signin::EMAIL_CODE_TTL_MS / 1000).into()),
        LoginError::PasswordExpired => problem.with_detail(
            "The password has expired: reset it through /v1/auth/password/forgot.",
        ),
        _ => problem,
    }
}

/// `POST /v1/auth/refresh {refresh_token}`: rotation with reuse detection (FR-AUTH-005); a
/// use from a new country rotates or revokes per the tenant's policy (NFR-SEC-006).
pub(super) async fn refresh<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: RefreshRequest = json::parse_body(req)?;
    let origin = sign_in_origin::api_context(ctx, req);
    let pair = signin::refresh_from(ctx.platform, &body.refresh_token, &origin, &ctx.request_id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    Ok(no_store(json::response(StatusCode::OK, &pair)?))
}

/// `POST /v1/auth/logout` with the access token: ends its session (UC-LOGOUT).
pub(super) async fn logout<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
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
    Ok(no_store(json::response(StatusCode::OK, &e)?))
}
