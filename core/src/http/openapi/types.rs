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
fn written_schema(pointer: &str) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::new(format!("written:{pointer}")))
}

pub use crate::health::HealthReport;
pub use crate::http::handlers::Liveness;

written!(AcceptInvitationRequest);
written!(AcceptedInvitation);
written!(ApiKeyPage);
written!(App);
written!(AppChange);
written!(AppPage);
written!(
    BillingUsageResponse,
    "/paths/~1v1~1billing~1usage/get/responses/200/content/application~1json/schema"
);
written!(ChangePasswordRequest);
written!(ClientSecret);
written!(
    ExportBillingEventsResponse,
    "/paths/~1v1~1billing~1events/get/responses/200/content/application~1json/schema"
);
written!(FlagChange);
written!(FlagSet);
written!(FlagSnapshot);
written!(ForgotPasswordRequest);
written!(IngestOutcome);
written!(Introspection);
written!(IntrospectionRequest);
written!(Invitation);
written!(InvitationList);
written!(InviteRequest);
written!(IssueApiKeyRequest);
written!(IssuedApiKey);
written!(Jwks);
written!(
    ListPlanFlagsResponse,
    "/paths/~1v1~1plans~1{plan}~1flags/get/responses/200/content/application~1json/schema"
);
written!(LoginRequest);
written!(MfaCodeRequest);
written!(MfaEnrollRequest);
written!(MfaSignIn);
written!(MfaWebAuthnOptionsRequest);
written!(OAuthError);
written!(OfrepBulkResponse);
written!(OfrepEvaluation);
written!(OfrepRequest);
written!(
    OidcEndSessionPostRequest,
    "/paths/~1oauth~1logout/post/requestBody/content/application~1x-www-form-urlencoded/schema"
);
written!(OidcLoginContinueRequest, "/paths/~1oauth~1authorize~1continue/post/requestBody/content/application~1x-www-form-urlencoded/schema");
written!(OidcLoginForgotRequest, "/paths/~1oauth~1authorize~1forgot/post/requestBody/content/application~1x-www-form-urlencoded/schema");
written!(OidcLoginMfaRequest, "/paths/~1oauth~1authorize~1mfa/post/requestBody/content/application~1x-www-form-urlencoded/schema");
written!(OidcLoginPasswordRequest, "/paths/~1oauth~1authorize~1login/post/requestBody/content/application~1x-www-form-urlencoded/schema");
written!(OidcLoginTenantRequest, "/paths/~1oauth~1authorize~1tenant/post/requestBody/content/application~1x-www-form-urlencoded/schema");
written!(OidcProviderMetadata);
written!(
    OidcTokenRequest,
    "/paths/~1oauth~1token/post/requestBody/content/application~1x-www-form-urlencoded/schema"
);
written!(OidcTokenResponse);
written!(OidcUserinfo);
written!(PasswordPolicy);
written!(PersonalDataExport);
written!(PlanFlagChange);
written!(ProvisionTenantRequest);
written!(ProvisionedTenant);
written!(RecoveryCodes);
written!(RefreshRequest);
written!(RegisterAppRequest);
written!(
    ReportAuditEventsRequest,
    "/paths/~1v1~1audit~1events/post/requestBody/content/application~1json/schema"
);
written!(
    ReportBillingEventsRequest,
    "/paths/~1v1~1billing~1events/post/requestBody/content/application~1json/schema"
);
written!(ResendInvitationRequest);
written!(ResetPasswordRequest);
written!(SessionsRevoked);
written!(SetFlagRequest);
written!(
    SetPlanFlagRequest,
    "/paths/~1v1~1plans~1{plan}~1flags~1{key}/put/requestBody/content/application~1json/schema"
);
written!(SigningKeyRotation);
written!(SsoConfig);
written!(SsoConfigRequest);
written!(SuspendTenantRequest);
written!(Tenant);
written!(TenantApp);
written!(TenantPage);
written!(TenantPlanChange);
written!(TenantPlanRequest);
written!(TenantStatusChange);
written!(TenantUser);
written!(TenantUserPage);
written!(TokenPair);
written!(TotpEnrollment);
written!(UpdateAppRequest);
written!(UpdateTenantRequest);
written!(UpdateTenantUserRequest);
written!(
    VerifyEventChainResponse,
    "/paths/~1v1~1audit~1verify/get/responses/200/content/application~1json/schema"
);
written!(VerifyMfaRequest);
written!(WebAuthnCredential);
written!(WebAuthnCredentialList);
written!(WebAuthnLoginOptionsRequest);
written!(WebAuthnLoginRequest);
written!(WebAuthnOptions);
written!(WebAuthnRegisterRequest);
written!(Problem);
