//! Passkey routes (NFR-SEC-003): registration by a signed-in user, the user's passkey list,
//! passwordless sign-in, and passkey options for the second factor of a password sign-in.

use ::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::reply::{no_content, no_store};
use super::{json, ApiError, Ctx, Request, Response};
use crate::kernel::ErrorKind;
use crate::ports::Platform;
use crate::signin;
use crate::signin::UserPrincipal;
use crate::tenants::{Email, TenantDomain};
use crate::webauthn::{
    self, AuthenticationResponse, CredentialSummary, RegistrationResponse, RelyingParty,
    WebAuthnError,
};

/// Longest passkey label, in characters.
const MAX_NAME_CHARS: usize = 64;

/// The body of `POST /v1/auth/webauthn/register/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebAuthnRegisterRequest)]
pub struct RegisterVerifyRequest {
    /// The `flow` of the registration options.
    flow: String,
    /// The new credential.
    credential: RegistrationResponse,
    /// The owner's label for the passkey: at most 64 printable characters once trimmed; null
    /// or blank is no label.
    #[serde(default)]
    #[schema(max_length = 64)]
    name: Option<String>,
}

/// The body of `POST /v1/auth/webauthn/login/options`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebAuthnLoginOptionsRequest)]
pub struct LoginOptionsRequest {
    /// The tenant's domain.
    tenant: String,
    /// Optional: lists the user's passkeys in allowCredentials. Any email gets options, so the
    /// answer does not tell whether it names an account.
    #[serde(default)]
    email: Option<String>,
}

/// The body of `POST /v1/auth/webauthn/login/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebAuthnLoginRequest)]
pub struct LoginVerifyRequest {
    /// The `flow` of the login options.
    flow: String,
    /// The assertion.
    credential: AuthenticationResponse,
}

/// The body of `POST /v1/auth/mfa/webauthn/options`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MfaWebAuthnOptionsRequest)]
pub struct MfaOptionsRequest {
    /// The `mfa_token` of the pending password sign-in.
    mfa_token: String,
}

/// The signed-in user's passkeys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebAuthnCredentialList)]
pub struct CredentialList {
    /// Every passkey of the user.
    items: Vec<CredentialSummary>,
}

/// Where this request's ceremony must run (see [`RelyingParty::configured`]).
fn relying_party<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<RelyingParty, ApiError> {
    RelyingParty::configured(ctx.platform.secrets(), &super::tenants::request_origin(req))
        .map_err(|e| problem(&e, false))
}

/// The problem of a passkey error. `signing_in`: a refused ceremony is a failed sign-in (401);
/// otherwise it is a registration by a signed-in user, whose token is fine (422).
fn problem(e: &WebAuthnError, signing_in: bool) -> ApiError {
    match e.kind() {
        ErrorKind::Unauthenticated if !signing_in => ApiError::of_kind(ErrorKind::Refused, e),
        _ => ApiError::from(e),
    }
}

/// `POST /v1/auth/webauthn/register/options`: creation options for the signed-in user.
pub(super) async fn register_options<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let rp = relying_party(ctx, req)?;
    let c = &principal.claims;
    let options = webauthn::registration_options(ctx.platform, &c.sub, &c.tid, &rp)
        .await
        .map_err(|e| problem(&e, false))?;
    Ok(no_store(json::response(StatusCode::OK, &options)?))
}

/// `POST /v1/auth/webauthn/register/verify {flow, credential, name?}`: stores the passkey.
pub(super) async fn register_verify<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let body: RegisterVerifyRequest = json::parse_body(req)?;
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control)) {
        return Err(ApiError::invalid_field(
            "name",
            "must be at most 64 printable characters",
        ));
    }
    let c = &principal.claims;
    let summary = webauthn::register(
        ctx.platform,
        &c.sub,
        &c.tid,
        &body.flow,
        &body.credential,
        name,
        &ctx.request_id,
    )
    .await
    .map_err(|e| problem(&e, false))?;
    json::response(StatusCode::CREATED, &summary)
}

/// `GET /v1/auth/webauthn/credentials`: the signed-in user's passkeys.
pub(super) async fn list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let items = webauthn::list_credentials(ctx.platform, &principal.claims.sub)
        .await
        .map_err(|e| problem(&e, false))?;
    Ok(no_store(json::response(
        StatusCode::OK,
        &CredentialList { items },
    )?))
}

/// `DELETE /v1/auth/webauthn/credentials/{id}`: removes one of the user's passkeys.
pub(super) async fn delete<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_owned();
    let c = &principal.claims;
    webauthn::delete_credential(ctx.platform, &c.sub, &c.tid, &id, &ctx.request_id)
        .await
        .map_err(|e| problem(&e, false))?;
    Ok(no_content())
}

/// `POST /v1/auth/webauthn/login/options {tenant, email?}`: request options for a passwordless
/// sign-in; an unknown tenant or email gets options all the same.
pub(super) async fn login_options<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: LoginOptionsRequest = json::parse_body(req)?;
    let rp = relying_party(ctx, req)?;
    let domain = TenantDomain::parse(&body.tenant)
        .map(|d| d.as_str().to_owned())
        .unwrap_or_else(|_| body.tenant.chars().take(253).collect());
    let email = body.email.as_deref().map(|e| {
        Email::parse(e)
            .map(|e| e.as_str().to_owned())
            .unwrap_or_else(|_| e.chars().take(320).collect())
    });
    let options = webauthn::login_options(ctx.platform, &domain, email.as_deref(), &rp)
        .await
        .map_err(|e| problem(&e, true))?;
    Ok(no_store(json::response(StatusCode::OK, &options)?))
}

/// `POST /v1/auth/webauthn/login/verify {flow, credential}`: passwordless sign-in; the same
/// tokens as `/v1/auth/login`.
pub(super) async fn login_verify<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: LoginVerifyRequest = json::parse_body(req)?;
    let origin = super::sign_in_origin::api_context(ctx, req);
    let pair = webauthn::login_from(
        ctx.platform,
        &body.flow,
        &body.credential,
        &origin,
        &ctx.request_id,
    )
    .await
    .map_err(|e| problem(&e, true))?;
    Ok(no_store(json::response(StatusCode::OK, &pair)?))
}

/// `POST /v1/auth/mfa/webauthn/options {mfa_token}`: passkey options for the second factor of
/// a pending password sign-in; the assertion then goes to `/v1/auth/mfa/verify`.
pub(super) async fn mfa_options<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> Result<Response, ApiError> {
    let body: MfaOptionsRequest = json::parse_body(req)?;
    let rp = relying_party(ctx, req)?;
    let options = signin::webauthn_options(ctx.platform, &body.mfa_token, &rp)
        .await
        .map_err(|e| problem(&e, true))?;
    Ok(no_store(json::response(StatusCode::OK, &options)?))
}
