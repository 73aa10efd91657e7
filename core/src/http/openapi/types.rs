//! The Rust types the document names, by their schema names.
//!
//! Transitional: a name still written as `written!(Name)` takes its schema from the written
//! document until its Rust type derives one.

use std::borrow::Cow;

use utoipa::openapi::{RefOr, Schema};

/// A schema read from the written document, for a type that does not derive one yet.
macro_rules! written {
    ($name:ident) => {
        written!($name, concat!("/components/schemas/", stringify!($name)));
    };
    ($name:ident, $pointer:expr) => {
        #[doc = concat!("The written schema of `", stringify!($name), "`.")]
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                written_schema($pointer)
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

/// A marker the generator replaces with the written JSON at `pointer`.
pub(in crate::http) use crate::health::HealthReport;
pub(in crate::http) use crate::http::handlers::Liveness;

fn written_schema(pointer: &str) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::new(format!("written:{pointer}")))
}

pub(in crate::http) use crate::apps::model::App;
pub(in crate::http) use crate::http::apps::AppChangeResponse as AppChange;
pub(in crate::http) use crate::http::apps::AppListResponse as AppPage;
pub(in crate::http) use crate::http::apps::KeyListResponse as ApiKeyPage;
pub(in crate::http) use crate::http::passwords::AcceptInvitationRequest;
pub(in crate::http) use crate::http::passwords::AcceptedInvitation;
written!(
    BillingUsageResponse,
    "/paths/~1v1~1billing~1usage/get/responses/200/content/application~1json/schema"
);
pub(in crate::http) use crate::http::passwords::ChangePasswordRequest;
pub(in crate::http) type ClientSecret = crate::http::oidc::ClientSecret<'static>;
written!(
    ExportBillingEventsResponse,
    "/paths/~1v1~1billing~1events/get/responses/200/content/application~1json/schema"
);
pub(in crate::http) use crate::flags::FlagSet;
pub(in crate::http) use crate::http::flags::FlagChangeResponse as FlagChange;
pub(in crate::http) type FlagSnapshot = crate::http::flags::SnapshotResponse<'static>;
pub(in crate::http) use crate::events::ingest::IngestOutcome;
pub(in crate::http) use crate::http::apps::IssueKeyRequest as IssueApiKeyRequest;
pub(in crate::http) use crate::http::apps::IssuedKeyResponse as IssuedApiKey;
pub(in crate::http) use crate::http::passwords::ForgotPasswordRequest;
pub(in crate::http) use crate::http::tenant_users::InvitationList;
pub(in crate::http) use crate::http::tenant_users::InviteRequest;
pub(in crate::http) use crate::http::tokens::IntrospectRequest as IntrospectionRequest;
pub(in crate::http) use crate::http::tokens::Introspection;
pub(in crate::http) use crate::http::tokens::Jwks;
pub(in crate::http) use crate::users::invite::Invitation;
written!(
    ListPlanFlagsResponse,
    "/paths/~1v1~1plans~1{plan}~1flags/get/responses/200/content/application~1json/schema"
);
pub(in crate::http) use crate::http::sign_in::LoginBody as LoginRequest;
pub(in crate::http) use crate::http::sign_in::MfaEnrollRequest;
pub(in crate::http) use crate::http::totp::MfaCodeRequest;
pub(in crate::http) use crate::http::webauthn::MfaOptionsRequest as MfaWebAuthnOptionsRequest;
pub(in crate::http) use crate::signin::MfaSignIn;
pub(in crate::http) type OAuthError = crate::http::oidc::OAuthError<'static>;
pub(in crate::http) type OfrepBulkResponse = crate::flags::ofrep::Bulk<'static>;
pub(in crate::http) type OfrepEvaluation = crate::flags::ofrep::Evaluation<'static>;
pub(in crate::http) use crate::flags::plans::PlanFlagChange;
pub(in crate::http) use crate::http::apps::RegisterAppRequest;
pub(in crate::http) use crate::http::flags::OfrepRequest;
pub(in crate::http) use crate::http::oidc::EndSessionForm as OidcEndSessionPostRequest;
pub(in crate::http) use crate::http::oidc::LoginContinueForm as OidcLoginContinueRequest;
pub(in crate::http) use crate::http::oidc::LoginForgotForm as OidcLoginForgotRequest;
pub(in crate::http) use crate::http::oidc::LoginMfaForm as OidcLoginMfaRequest;
pub(in crate::http) use crate::http::oidc::LoginPasswordForm as OidcLoginPasswordRequest;
pub(in crate::http) use crate::http::oidc::LoginTenantForm as OidcLoginTenantRequest;
pub(in crate::http) use crate::http::oidc::ProviderMetadata as OidcProviderMetadata;
pub(in crate::http) use crate::http::oidc::TokenForm as OidcTokenRequest;
pub(in crate::http) use crate::http::sign_in::RefreshRequest;
pub(in crate::http) use crate::http::tenants::ProvisionTenantRequest;
pub(in crate::http) use crate::http::totp::RecoveryCodes;
pub(in crate::http) use crate::oidc::token::TokenResponse as OidcTokenResponse;
pub(in crate::http) use crate::oidc::token::UserinfoClaims as OidcUserinfo;
pub(in crate::http) use crate::tenants::Provisioned as ProvisionedTenant;
pub(in crate::http) use crate::users::policy::PasswordPolicy;
pub(in crate::http) use crate::users::privacy::PersonalDataExport;
written!(
    ReportAuditEventsRequest,
    "/paths/~1v1~1audit~1events/post/requestBody/content/application~1json/schema"
);
written!(
    ReportBillingEventsRequest,
    "/paths/~1v1~1billing~1events/post/requestBody/content/application~1json/schema"
);
pub(in crate::http) use crate::http::flags::SetFlagRequest;
pub(in crate::http) use crate::http::passwords::ResetPasswordRequest;
pub(in crate::http) use crate::http::tenant_users::ResendRequest as ResendInvitationRequest;
pub(in crate::http) use crate::http::tenant_users::SessionsRevoked;
written!(
    SetPlanFlagRequest,
    "/paths/~1v1~1plans~1{plan}~1flags~1{key}/put/requestBody/content/application~1json/schema"
);
pub(in crate::http) use crate::http::apps::TenantAppResponse as TenantApp;
pub(in crate::http) use crate::http::sso::SsoConfigRequest;
pub(in crate::http) use crate::http::tenants::SuspendTenantRequest;
pub(in crate::http) use crate::http::tenants::TenantListResponse as TenantPage;
pub(in crate::http) use crate::http::tokens::SigningKeyRotation;
pub(in crate::http) use crate::sso::config::SsoConfigView as SsoConfig;
pub(in crate::http) use crate::tenants::model::Tenant;
pub(in crate::http) type TenantPlanChange = crate::http::tenant_users::PlanChange<'static>;
pub(in crate::http) use crate::http::apps::UpdateAppRequest;
pub(in crate::http) use crate::http::tenant_users::PlanRequest as TenantPlanRequest;
pub(in crate::http) use crate::http::tenant_users::UpdateUserRequest as UpdateTenantUserRequest;
pub(in crate::http) use crate::http::tenants::StatusChangeResponse as TenantStatusChange;
pub(in crate::http) use crate::http::tenants::UpdateTenantRequest;
pub(in crate::http) use crate::sessions::TokenPair;
pub(in crate::http) use crate::users::admin::UserPage as TenantUserPage;
pub(in crate::http) use crate::users::admin::UserView as TenantUser;
pub(in crate::http) use crate::users::mfa::Enrollment as TotpEnrollment;
written!(
    VerifyEventChainResponse,
    "/paths/~1v1~1audit~1verify/get/responses/200/content/application~1json/schema"
);
pub(in crate::http) use crate::http::problem::ProblemBody as Problem;
pub(in crate::http) use crate::http::sign_in::VerifyMfaRequest;
pub(in crate::http) use crate::http::webauthn::CredentialList as WebAuthnCredentialList;
pub(in crate::http) use crate::http::webauthn::LoginOptionsRequest as WebAuthnLoginOptionsRequest;
pub(in crate::http) use crate::http::webauthn::LoginVerifyRequest as WebAuthnLoginRequest;
pub(in crate::http) use crate::http::webauthn::RegisterVerifyRequest as WebAuthnRegisterRequest;
pub(in crate::http) use crate::webauthn::CredentialSummary as WebAuthnCredential;
pub(in crate::http) use crate::webauthn::Options as WebAuthnOptions;
