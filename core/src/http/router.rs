//! The route table: every public route of the API, matched with `matchit`. The OpenAPI document
//! is checked against this table by a test, so neither can drift from the other.

use std::sync::OnceLock;

use ::http::Method;

/// Which handler serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `GET /health`: liveness, no details.
    Liveness,
    /// `GET /v1/health`: dependencies with latency (FR-SYS-005).
    Health,
    /// `GET /openapi.json`.
    OpenApi,
    /// `POST /internal/scheduled`: the periodic jobs, for runtimes without cron.
    Scheduled,
    /// `GET /__dev/panic`: panics on purpose, in development only, so the suite can check that
    /// a panic answers problem+json and leaves later requests working.
    DevPanic,
    /// `POST /v1/tenants`: provision (UC-PROV-001).
    TenantProvision,
    /// `GET /v1/tenants`: list, search, page.
    TenantList,
    /// `GET /v1/tenants/{id}`.
    TenantGet,
    /// `PATCH /v1/tenants/{id}`: name, plan.
    TenantUpdate,
    /// `DELETE /v1/tenants/{id}`: pending deletion (FR-OPS-002).
    TenantDelete,
    /// `POST /v1/tenants/{id}/suspend` (FR-OPS-001).
    TenantSuspend,
    /// `POST /v1/tenants/{id}/activate` (FR-OPS-001).
    TenantActivate,
    /// `POST /v1/tenants/{id}/restore` (FR-OPS-002).
    TenantRestore,
    /// `POST /v1/tenants/{id}/apps/{app_id}`: enable an app for a tenant.
    TenantAppEnable,
    /// `DELETE /v1/tenants/{id}/apps/{app_id}`: disable an app for a tenant.
    TenantAppDisable,
    /// `POST /v1/apps`: register (FR-SYS-001).
    AppRegister,
    /// `GET /v1/apps`: list, page.
    AppList,
    /// `GET /v1/apps/{id}`.
    AppGet,
    /// `PATCH /v1/apps/{id}`: configuration, status (FR-SYS-003).
    AppUpdate,
    /// `POST /v1/apps/{id}/keys`: issue, secret shown once (FR-SYS-002).
    AppKeyIssue,
    /// `GET /v1/apps/{id}/keys`: list without secrets.
    AppKeyList,
    /// `DELETE /v1/apps/{id}/keys/{key_id}`: revoke (FR-SYS-002).
    AppKeyRevoke,
    /// `GET /v1/tenants/{id}/flags`: a tenant's flags (FR-FLAG-001).
    FlagList,
    /// `PUT /v1/tenants/{id}/flags/{key}`: set a flag (FR-FLAG-001).
    FlagSet,
    /// `DELETE /v1/tenants/{id}/flags/{key}`: remove a flag (FR-FLAG-001).
    FlagRemove,
    /// `POST /ofrep/v1/evaluate/flags`: OFREP bulk evaluation (FR-FLAG-002).
    OfrepBulk,
    /// `POST /ofrep/v1/evaluate/flags/{key}`: OFREP single evaluation (FR-FLAG-002).
    OfrepSingle,
    /// `OPTIONS` on the OFREP routes: CORS preflight for browser keys.
    OfrepPreflight,
    /// `GET /v1/flags`: the plain snapshot for server keys (FR-FLAG-002).
    FlagSnapshot,
    /// `GET /v1/plans/{plan}/flags`: a plan's default flags.
    PlanFlagList,
    /// `PUT /v1/plans/{plan}/flags/{key}`: set a plan default (FR-FLAG-001).
    PlanFlagSet,
    /// `DELETE /v1/plans/{plan}/flags/{key}`: remove a plan default.
    PlanFlagRemove,
    /// `GET /.well-known/jwks.json`: published token signing keys (NFR-SEC-004).
    Jwks,
    /// `POST /v1/signing-keys/rotate`: operator key rotation (NFR-SEC-004).
    SigningKeyRotate,
    /// `POST /v1/invitations/accept`: set a password, activate (FR-TENANT-001).
    InvitationAccept,
    /// `POST /v1/auth/login`: password sign-in (UC-LISTEN, FR-AUTH-001).
    AuthLogin,
    /// `POST /v1/auth/refresh`: refresh-token rotation (FR-AUTH-005).
    AuthRefresh,
    /// `POST /v1/auth/logout`: end the session (UC-LOGOUT).
    AuthLogout,
    /// `POST /v1/auth/password/forgot`: mail a reset link, always 202 (FR-AUTH-004).
    PasswordForgot,
    /// `POST /v1/auth/password/reset` (UC-AUTH-RESET).
    PasswordReset,
    /// `POST /v1/auth/password/change` (FR-AUTH-004).
    PasswordChange,
    /// `GET /v1/tenant/password-policy` (FR-AUTH-006).
    PasswordPolicyGet,
    /// `PUT /v1/tenant/password-policy` (FR-AUTH-006).
    PasswordPolicyPut,
    /// `POST /oauth/introspect`: token introspection for apps (RFC 7662).
    Introspect,
    /// `GET /__dev/mail`: the dev outbox, in development only.
    DevMail,
    /// `POST /v1/auth/mfa/verify`: second step of an MFA sign-in (NFR-SEC-003).
    MfaVerify,
    /// `POST /v1/auth/mfa/totp`: start a TOTP enrollment.
    TotpEnroll,
    /// `POST /v1/auth/mfa/totp/confirm`: confirm it, get recovery codes.
    TotpConfirm,
    /// `DELETE /v1/auth/mfa/totp`: turn TOTP off.
    TotpDisable,
    /// `POST /v1/tenant/users/{id}/sessions/revoke`: end a user's sessions (FR-AUTH-005).
    UserSessionsRevoke,
    /// `POST /v1/auth/mfa/enroll`: TOTP enrollment during sign-in (tenant requires MFA).
    MfaEnrollDuringSignIn,
    /// `POST /v1/billing/events`: report billing events (FR-BILL-002).
    BillingIngest,
    /// `GET /v1/billing/events`: export billing events (FR-BILL-003).
    BillingExport,
    /// `GET /v1/billing/usage`: usage summary per day and type (FR-BILL-003).
    BillingUsage,
    /// `POST /v1/audit/events`: report audit events (FR-LOG-001).
    AuditIngest,
    /// `GET /v1/audit/export.csv`: the auditor's CSV export (FR-LOG-002).
    AuditExportCsv,
    /// `GET /v1/audit/verify`: hash-chain check of archives and tail.
    AuditVerify,
    /// `GET /__dev/blobs`: read archive objects, in development only.
    DevBlobGet,
    /// `PUT /__dev/blobs`: overwrite an archive object, in development only (tamper tests).
    DevBlobPut,
    /// `GET /v1/tenant/flags`: owners and admins read their tenant's flags (FR-FLAG-001).
    TenantOwnFlags,
    /// `GET /v1/tenant/users`: owners and admins list their users (FR-TENANT-004).
    TenantUserList,
    /// `GET /v1/tenant/users/{id}`: one user.
    TenantUserGet,
    /// `PATCH /v1/tenant/users/{id}`: role, status (FR-TENANT-004, FR-TENANT-006).
    TenantUserUpdate,
    /// `DELETE /v1/tenant/users/{id}`: erasure (FR-TENANT-002).
    TenantUserDelete,
    /// `POST /v1/tenant/invitations`: invite (FR-TENANT-001).
    TenantInvite,
    /// `GET /v1/tenant/invitations`: pending and expired invitations.
    TenantInvitationList,
    /// `POST /v1/tenant/invitations/{id}/resend` (FR-TENANT-007).
    TenantInvitationResend,
    /// `PATCH /v1/tenant/plan`: the owner changes the plan (FR-TENANT-003).
    TenantPlanUpdate,
    /// `GET /v1/me/export`: personal data export (CON-COMP-001).
    MeExport,
    /// `DELETE /v1/me`: erasure of oneself (CON-COMP-001).
    MeDelete,
    /// `GET /v1/tenant/sso`: the tenant's SSO configuration, no secret (owner; FR-AUTH-003).
    SsoConfigGet,
    /// `PUT /v1/tenant/sso`: configure SSO, checked by discovery (owner; FR-AUTH-003).
    SsoConfigPut,
    /// `DELETE /v1/tenant/sso`: remove the SSO configuration (owner; FR-AUTH-003).
    SsoConfigDelete,
    /// `GET /v1/auth/sso/start`: redirect to the tenant's IdP (FR-AUTH-003).
    SsoStart,
    /// `GET /v1/auth/sso/callback`: the IdP's redirect back; signs the user in (FR-AUTH-003).
    SsoCallback,
    /// `POST /v1/auth/webauthn/register/options`: passkey creation options (NFR-SEC-003).
    WebAuthnRegisterOptions,
    /// `POST /v1/auth/webauthn/register/verify`: store a passkey (NFR-SEC-003).
    WebAuthnRegisterVerify,
    /// `GET /v1/auth/webauthn/credentials`: the signed-in user's passkeys.
    WebAuthnCredentialList,
    /// `DELETE /v1/auth/webauthn/credentials/{id}`: remove one of them.
    WebAuthnCredentialDelete,
    /// `POST /v1/auth/webauthn/login/options`: passwordless sign-in options (NFR-SEC-003).
    WebAuthnLoginOptions,
    /// `POST /v1/auth/webauthn/login/verify`: passwordless sign-in (NFR-SEC-003).
    WebAuthnLoginVerify,
    /// `POST /v1/auth/mfa/webauthn/options`: passkey as the second factor (NFR-SEC-003).
    MfaWebAuthnOptions,
    /// `GET /.well-known/openid-configuration`: OIDC discovery (FR-AUTH-001 OIDC).
    OidcDiscovery,
    /// `GET /oauth/authorize`: authorization request, shows the universal login page (IF-LOGIN-UI).
    OidcAuthorize,
    /// `POST /oauth/authorize/tenant`: login page step 1, the organization.
    OidcLoginTenant,
    /// `POST /oauth/authorize/login`: login page step 2, email and password.
    OidcLoginPassword,
    /// `POST /oauth/authorize/mfa`: login page second factor.
    OidcLoginMfa,
    /// `POST /oauth/authorize/forgot`: login page forgot-password (FR-AUTH-004).
    OidcLoginForgot,
    /// `GET /oauth/assets/login.css`: the login page's stylesheet.
    OidcLoginCss,
    /// `GET /oauth/assets/passkey.js`: the passkey button of the second-factor step.
    OidcPasskeyJs,
    /// `POST /oauth/token`: code and refresh grants (FR-AUTH-001 OIDC).
    OidcToken,
    /// `GET|POST /oauth/userinfo`: claims of the token's user (FR-AUTH-001 OIDC).
    OidcUserinfo,
    /// `GET|POST /oauth/logout`: RP-initiated logout (FR-AUTH-001 OIDC).
    OidcEndSession,
    /// `POST /v1/apps/{id}/client-secret`: set or rotate an app's OIDC client secret.
    AppClientSecret,
    /// `POST /oauth/authorize/continue`: login page, continue after the recovery codes.
    OidcLoginContinue,
    /// `OPTIONS` on `/oauth/token` and `/oauth/userinfo`: CORS preflight for browser clients.
    OidcPreflight,
}

/// One route: method, path template (OpenAPI syntax), handler.
#[derive(Debug)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/v1/tenants/{id}`.
    pub path: &'static str,
    /// Handler.
    pub id: RouteId,
}

/// Every route of the API.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    Route { method: Method::GET,    path: "/health",                        id: RouteId::Liveness },
    Route { method: Method::GET,    path: "/v1/health",                     id: RouteId::Health },
    Route { method: Method::GET,    path: "/openapi.json",                  id: RouteId::OpenApi },
    Route { method: Method::POST,   path: "/internal/scheduled",            id: RouteId::Scheduled },
    Route { method: Method::GET,    path: "/__dev/panic",                   id: RouteId::DevPanic },
    Route { method: Method::POST,   path: "/v1/tenants",                    id: RouteId::TenantProvision },
    Route { method: Method::GET,    path: "/v1/tenants",                    id: RouteId::TenantList },
    Route { method: Method::GET,    path: "/v1/tenants/{id}",               id: RouteId::TenantGet },
    Route { method: Method::PATCH,  path: "/v1/tenants/{id}",               id: RouteId::TenantUpdate },
    Route { method: Method::DELETE, path: "/v1/tenants/{id}",               id: RouteId::TenantDelete },
    Route { method: Method::POST,   path: "/v1/tenants/{id}/suspend",       id: RouteId::TenantSuspend },
    Route { method: Method::POST,   path: "/v1/tenants/{id}/activate",      id: RouteId::TenantActivate },
    Route { method: Method::POST,   path: "/v1/tenants/{id}/restore",       id: RouteId::TenantRestore },
    Route { method: Method::POST,   path: "/v1/tenants/{id}/apps/{app_id}", id: RouteId::TenantAppEnable },
    Route { method: Method::DELETE, path: "/v1/tenants/{id}/apps/{app_id}", id: RouteId::TenantAppDisable },
    Route { method: Method::POST,   path: "/v1/apps",                       id: RouteId::AppRegister },
    Route { method: Method::GET,    path: "/v1/apps",                       id: RouteId::AppList },
    Route { method: Method::GET,    path: "/v1/apps/{id}",                  id: RouteId::AppGet },
    Route { method: Method::PATCH,  path: "/v1/apps/{id}",                  id: RouteId::AppUpdate },
    Route { method: Method::POST,   path: "/v1/apps/{id}/keys",             id: RouteId::AppKeyIssue },
    Route { method: Method::GET,    path: "/v1/apps/{id}/keys",             id: RouteId::AppKeyList },
    Route { method: Method::DELETE, path: "/v1/apps/{id}/keys/{key_id}",    id: RouteId::AppKeyRevoke },
    Route { method: Method::GET,    path: "/v1/tenants/{id}/flags",         id: RouteId::FlagList },
    Route { method: Method::PUT,    path: "/v1/tenants/{id}/flags/{key}",   id: RouteId::FlagSet },
    Route { method: Method::DELETE, path: "/v1/tenants/{id}/flags/{key}",   id: RouteId::FlagRemove },
    Route { method: Method::POST,   path: "/ofrep/v1/evaluate/flags",       id: RouteId::OfrepBulk },
    Route { method: Method::OPTIONS, path: "/ofrep/v1/evaluate/flags",      id: RouteId::OfrepPreflight },
    Route { method: Method::POST,   path: "/ofrep/v1/evaluate/flags/{key}", id: RouteId::OfrepSingle },
    Route { method: Method::OPTIONS, path: "/ofrep/v1/evaluate/flags/{key}", id: RouteId::OfrepPreflight },
    Route { method: Method::GET,    path: "/v1/flags",                      id: RouteId::FlagSnapshot },
    Route { method: Method::GET,    path: "/v1/plans/{plan}/flags",         id: RouteId::PlanFlagList },
    Route { method: Method::PUT,    path: "/v1/plans/{plan}/flags/{key}",   id: RouteId::PlanFlagSet },
    Route { method: Method::DELETE, path: "/v1/plans/{plan}/flags/{key}",   id: RouteId::PlanFlagRemove },
    Route { method: Method::GET,    path: "/.well-known/jwks.json",         id: RouteId::Jwks },
    Route { method: Method::POST,   path: "/v1/signing-keys/rotate",        id: RouteId::SigningKeyRotate },
    Route { method: Method::POST,   path: "/v1/invitations/accept",         id: RouteId::InvitationAccept },
    Route { method: Method::POST,   path: "/v1/auth/login",                 id: RouteId::AuthLogin },
    Route { method: Method::POST,   path: "/v1/auth/refresh",               id: RouteId::AuthRefresh },
    Route { method: Method::POST,   path: "/v1/auth/logout",                id: RouteId::AuthLogout },
    Route { method: Method::POST,   path: "/v1/auth/password/forgot",       id: RouteId::PasswordForgot },
    Route { method: Method::POST,   path: "/v1/auth/password/reset",        id: RouteId::PasswordReset },
    Route { method: Method::POST,   path: "/v1/auth/password/change",       id: RouteId::PasswordChange },
    Route { method: Method::GET,    path: "/v1/tenant/password-policy",     id: RouteId::PasswordPolicyGet },
    Route { method: Method::PUT,    path: "/v1/tenant/password-policy",     id: RouteId::PasswordPolicyPut },
    Route { method: Method::POST,   path: "/oauth/introspect",              id: RouteId::Introspect },
    Route { method: Method::GET,    path: "/__dev/mail",                    id: RouteId::DevMail },
    Route { method: Method::POST,   path: "/v1/auth/mfa/verify",            id: RouteId::MfaVerify },
    Route { method: Method::POST,   path: "/v1/auth/mfa/totp",              id: RouteId::TotpEnroll },
    Route { method: Method::POST,   path: "/v1/auth/mfa/totp/confirm",      id: RouteId::TotpConfirm },
    Route { method: Method::DELETE, path: "/v1/auth/mfa/totp",              id: RouteId::TotpDisable },
    Route { method: Method::POST,   path: "/v1/tenant/users/{id}/sessions/revoke", id: RouteId::UserSessionsRevoke },
    Route { method: Method::POST,   path: "/v1/auth/mfa/enroll",            id: RouteId::MfaEnrollDuringSignIn },
    Route { method: Method::POST,   path: "/v1/billing/events",             id: RouteId::BillingIngest },
    Route { method: Method::GET,    path: "/v1/billing/events",             id: RouteId::BillingExport },
    Route { method: Method::GET,    path: "/v1/billing/usage",              id: RouteId::BillingUsage },
    Route { method: Method::POST,   path: "/v1/audit/events",               id: RouteId::AuditIngest },
    Route { method: Method::GET,    path: "/v1/audit/export.csv",           id: RouteId::AuditExportCsv },
    Route { method: Method::GET,    path: "/v1/audit/verify",               id: RouteId::AuditVerify },
    Route { method: Method::GET,    path: "/__dev/blobs",                   id: RouteId::DevBlobGet },
    Route { method: Method::PUT,    path: "/__dev/blobs",                   id: RouteId::DevBlobPut },
    Route { method: Method::GET,    path: "/v1/tenant/flags",               id: RouteId::TenantOwnFlags },
    Route { method: Method::GET,    path: "/v1/tenant/users",               id: RouteId::TenantUserList },
    Route { method: Method::GET,    path: "/v1/tenant/users/{id}",          id: RouteId::TenantUserGet },
    Route { method: Method::PATCH,  path: "/v1/tenant/users/{id}",          id: RouteId::TenantUserUpdate },
    Route { method: Method::DELETE, path: "/v1/tenant/users/{id}",          id: RouteId::TenantUserDelete },
    Route { method: Method::POST,   path: "/v1/tenant/invitations",         id: RouteId::TenantInvite },
    Route { method: Method::GET,    path: "/v1/tenant/invitations",         id: RouteId::TenantInvitationList },
    Route { method: Method::POST,   path: "/v1/tenant/invitations/{id}/resend", id: RouteId::TenantInvitationResend },
    Route { method: Method::PATCH,  path: "/v1/tenant/plan",                id: RouteId::TenantPlanUpdate },
    Route { method: Method::GET,    path: "/v1/me/export",                  id: RouteId::MeExport },
    Route { method: Method::DELETE, path: "/v1/me",                         id: RouteId::MeDelete },
    Route { method: Method::GET,    path: "/v1/tenant/sso",                 id: RouteId::SsoConfigGet },
    Route { method: Method::PUT,    path: "/v1/tenant/sso",                 id: RouteId::SsoConfigPut },
    Route { method: Method::DELETE, path: "/v1/tenant/sso",                 id: RouteId::SsoConfigDelete },
    Route { method: Method::GET,    path: "/v1/auth/sso/start",             id: RouteId::SsoStart },
    Route { method: Method::GET,    path: "/v1/auth/sso/callback",          id: RouteId::SsoCallback },
    Route { method: Method::POST,   path: "/v1/auth/webauthn/register/options", id: RouteId::WebAuthnRegisterOptions },
    Route { method: Method::POST,   path: "/v1/auth/webauthn/register/verify", id: RouteId::WebAuthnRegisterVerify },
    Route { method: Method::GET,    path: "/v1/auth/webauthn/credentials",  id: RouteId::WebAuthnCredentialList },
    Route { method: Method::DELETE, path: "/v1/auth/webauthn/credentials/{id}", id: RouteId::WebAuthnCredentialDelete },
    Route { method: Method::POST,   path: "/v1/auth/webauthn/login/options", id: RouteId::WebAuthnLoginOptions },
    Route { method: Method::POST,   path: "/v1/auth/webauthn/login/verify", id: RouteId::WebAuthnLoginVerify },
    Route { method: Method::POST,   path: "/v1/auth/mfa/webauthn/options",  id: RouteId::MfaWebAuthnOptions },
    Route { method: Method::GET,    path: "/.well-known/openid-configuration", id: RouteId::OidcDiscovery },
    Route { method: Method::GET,    path: "/oauth/authorize",               id: RouteId::OidcAuthorize },
    Route { method: Method::POST,   path: "/oauth/authorize/tenant",        id: RouteId::OidcLoginTenant },
    Route { method: Method::POST,   path: "/oauth/authorize/login",         id: RouteId::OidcLoginPassword },
    Route { method: Method::POST,   path: "/oauth/authorize/mfa",           id: RouteId::OidcLoginMfa },
    Route { method: Method::POST,   path: "/oauth/authorize/forgot",        id: RouteId::OidcLoginForgot },
    Route { method: Method::GET,    path: "/oauth/assets/passkey.js",       id: RouteId::OidcPasskeyJs },
    Route { method: Method::GET,    path: "/oauth/assets/login.css",        id: RouteId::OidcLoginCss },
    Route { method: Method::GET,    path: "/oauth/assets/passkey.js",       id: RouteId::OidcPasskeyJs },
    Route { method: Method::POST,   path: "/oauth/token",                   id: RouteId::OidcToken },
    Route { method: Method::GET,    path: "/oauth/userinfo",                id: RouteId::OidcUserinfo },
    Route { method: Method::POST,   path: "/oauth/userinfo",                id: RouteId::OidcUserinfo },
    Route { method: Method::GET,    path: "/oauth/logout",                  id: RouteId::OidcEndSession },
    Route { method: Method::POST,   path: "/v1/apps/{id}/client-secret",    id: RouteId::AppClientSecret },
    Route { method: Method::POST,   path: "/oauth/authorize/continue",      id: RouteId::OidcLoginContinue },
    Route { method: Method::POST,   path: "/oauth/logout",                  id: RouteId::OidcEndSession },
    Route { method: Method::OPTIONS, path: "/oauth/token",                  id: RouteId::OidcPreflight },
    Route { method: Method::OPTIONS, path: "/oauth/userinfo",               id: RouteId::OidcPreflight },
];

/// The outcome of matching a request line.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// A route serves it; `params` are the path parameters by name.
    Found {
        /// The route.
        route: &'static Route,
        /// Path parameters.
        params: Vec<(String, String)>,
    },
    /// The path exists but not for this method; `allow` lists the methods it has.
    MethodNotAllowed {
        /// Path template, for the log.
        path: &'static str,
        /// Allowed methods.
        allow: Vec<Method>,
    },
    /// No route has this path.
    NotFound,
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method && self.path == other.path && self.id == other.id
    }
}
impl Eq for Route {}

type Table = matchit::Router<Vec<&'static Route>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut by_path: Vec<(&'static str, Vec<&'static Route>)> = Vec::new();
        for r in ROUTES {
            match by_path.iter_mut().find(|(p, _)| *p == r.path) {
                Some((_, rs)) => rs.push(r),
                None => by_path.push((r.path, vec![r])),
            }
        }
        let mut router = matchit::Router::new();
        for (path, routes) in by_path {
            // The table is a constant checked by `every_route_is_registered`; a bad template
            // would only drop that route, never take the API down.
            let _ = router.insert(path, routes);
        }
        router
    })
}

/// Finds the route for a method and path. `HEAD` is served by the `GET` route.
pub fn find(method: &Method, path: &str) -> Match {
    let Ok(m) = table().at(path) else {
        return Match::NotFound;
    };
    let want = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    match m.value.iter().find(|r| r.method == *want) {
        Some(route) => Match::Found {
            route,
            params: m
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        },
        None => Match::MethodNotAllowed {
            path: m.value.first().map_or("", |r| r.path),
            allow: m.value.iter().map(|r| r.method.clone()).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_registered() {
        for r in ROUTES {
            let concrete = r.path.replace('{', "x").replace('}', "");
            match find(&r.method, &concrete) {
                Match::Found { route, .. } => assert_eq!(route, r),
                other => panic!("{} {} -> {other:?}", r.method, r.path),
            }
        }
    }

    #[test]
    fn head_uses_get_and_wrong_methods_list_allowed_ones() {
        assert!(matches!(
            find(&Method::HEAD, "/health"),
            Match::Found { .. }
        ));
        match find(&Method::DELETE, "/health") {
            Match::MethodNotAllowed { allow, .. } => assert_eq!(allow, vec![Method::GET]),
            other => panic!("{other:?}"),
        }
        assert_eq!(find(&Method::GET, "/nope"), Match::NotFound);
        assert_eq!(find(&Method::GET, "/health/"), Match::NotFound);
    }
}
