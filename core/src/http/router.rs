//! The route table: every public route of the API, matched with `matchit`. The OpenAPI document
//! is checked against this table by a test, so neither can drift from the other.

use ::http::Method;

use crate::apps::Scope;

#[cfg(not(target_family = "wasm"))]
use super::openapi::decl::{at_or_ms, integer, of, string, text, At, Body, Doc, Hdr, Param, Reply};
#[cfg(not(target_family = "wasm"))]
use super::openapi::types as t;
#[cfg(not(target_family = "wasm"))]
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};

/// Which handler serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `GET /health`: liveness, no details.
    Liveness,
    /// `GET /v1/health`: dependencies with latency (FR-SYS-005).
    Health,
    /// `GET /v1/health/services`: error rates and latency of the key services (FR-SYS-005).
    HealthServices,
    /// `GET /v1/health/journeys`: the synthetic journeys' recent runs (NFR-MON-003).
    HealthJourneys,
    /// `POST /v1/alerts/channels`: add a notification channel (NFR-MON-002).
    AlertChannelCreate,
    /// `GET /v1/alerts/channels`: the channels, without their secrets.
    AlertChannelList,
    /// `DELETE /v1/alerts/channels/{id}`: remove a channel.
    AlertChannelDelete,
    /// `GET /v1/alerts`: firing and recently resolved alerts (NFR-MON-002).
    AlertList,
    /// `GET /v1/tenant/alerts`: the caller's tenant's anomaly alerts (NFR-MON-001).
    TenantAlertList,
    /// `PUT /__dev/faults`: makes storage ports fail on cue, in development with fault
    /// injection enabled only (`crate::faults`).
    DevFaults,
    /// `PUT /__dev/clock`: moves core's clock ahead, in development with fault injection
    /// enabled only (`crate::faults::Shifted`).
    DevClock,
    /// `PUT /v1/apps/{id}/health-check`.
    AppHealthSet,
    /// `DELETE /v1/apps/{id}/health-check`.
    AppHealthRemove,
    /// `GET /v1/apps/{id}/health`.
    AppHealthGet,
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
    /// `GET /v1/tenants/{id}/apps`: the apps linked to a tenant.
    TenantAppList,
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
    /// `GET /v1/tenants/{id}/usage`: the same summary for operators and auditors.
    TenantUsage,
    /// `GET /v1/tenant/usage`: the same summary for the tenant's owner and admins.
    OwnTenantUsage,
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
    /// `GET /v1/tenant`: owners and admins read their own tenant.
    TenantSelf,
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
    /// `GET /account/sign-ins/revoke`: the page of a new-sign-in notice's link (NFR-SEC-006).
    SignInRevokePage,
    /// `POST /account/sign-ins/revoke`: sign out the session of that sign-in (NFR-SEC-006).
    SignInRevoke,
    /// `GET /v1/tenant/risk-policy`: the adaptive authentication policy (NFR-SEC-006).
    RiskPolicyGet,
    /// `PUT /v1/tenant/risk-policy`: set it (owner; NFR-SEC-006).
    RiskPolicyPut,
    /// `GET /v1/tenant/risky-sign-ins`: recent medium- and high-risk sign-ins (NFR-SEC-006).
    RiskySignIns,
    /// `GET /v1/me/devices`: the caller's known devices (NFR-SEC-006).
    MyDevices,
    /// `DELETE /v1/me/devices/{id}`: forget one of them.
    MyDeviceDelete,
}

/// Who may call a route. The router checks it before the handler runs, and the document
/// states it as the operation's security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No credentials.
    Anyone,
    /// A browser's CORS preflight.
    Preflight,
    /// The scheduler, with the `CRON_SECRET` bearer token.
    Scheduler,
    /// An operator (operator-IdP token with the operator role).
    Operator,
    /// An operator or an auditor.
    OperatorOrAuditor,
    /// A managed app's API key (`Authorization: Bearer` or `X-API-Key`) with this scope.
    AppKey(Scope),
    /// An API key with `token:introspect`, checked by the handler together with the token it
    /// asks about (one storage round trip of latency instead of two).
    Introspector,
    /// A tenant user's Edgeplane access token.
    User,
    /// A tenant user who signed in within the last few minutes.
    RecentUser,
    /// An active owner or admin of the token's tenant.
    TenantAdmin,
    /// The active owner of the token's tenant.
    TenantOwner,
    /// An OpenID client at the token endpoint (a confidential one with its secret).
    OidcClient,
    /// A user's access token from the OpenID provider.
    OidcUser,
}

/// One route: method, path template (OpenAPI syntax), handler, caller, and (natively) what the
/// document says of it.
#[derive(Debug)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/v1/tenants/{id}`.
    pub path: &'static str,
    /// Handler.
    pub id: RouteId,
    /// Who may call it.
    pub caller: Caller,
    /// The `/`s in `path` and the length of its literal start (up to its first parameter),
    /// worked out at compile time: [`find`] compares these before it splits a template.
    shape: Shape,
    /// What the document says of it; `None` for routes outside the public API.
    #[cfg(not(target_family = "wasm"))]
    pub doc: Option<Doc>,
}

/// What [`find`] can tell of a template without splitting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// How many `/` the template has (a path it matches has as many).
    slashes: usize,
    /// The length of the template's literal start, before its first `{` (a path it matches
    /// starts with the same bytes).
    literal: usize,
}

impl Shape {
    /// The shape of `template`, at compile time.
    const fn of(template: &str) -> Shape {
        let bytes = template.as_bytes();
        let (mut i, mut slashes, mut literal) = (0, 0, bytes.len());
        while i < bytes.len() {
            if bytes[i] == b'/' {
                slashes += 1;
            } else if bytes[i] == b'{' && literal == bytes.len() {
                literal = i;
            }
            i += 1;
        }
        Shape { slashes, literal }
    }

    /// Whether a path with `slashes` slashes and these bytes can match the template: a cheap
    /// test that rules out all but a few routes before [`rank`] splits them.
    fn admits(self, template: &str, slashes: usize, path: &[u8]) -> bool {
        self.slashes == slashes && path.starts_with(&template.as_bytes()[..self.literal])
    }
}

/// A public route and its document part (left out of runtime builds).
macro_rules! route {
    ($method:ident $path:literal => $id:ident, $caller:expr, $doc:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            id: RouteId::$id,
            caller: $caller,
            shape: Shape::of($path),
            #[cfg(not(target_family = "wasm"))]
            doc: Some($doc),
        }
    };
}

/// A route outside the public API (development and scheduler routes).
macro_rules! hidden {
    ($method:ident $path:literal => $id:ident, $caller:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            id: RouteId::$id,
            caller: $caller,
            shape: Shape::of($path),
            #[cfg(not(target_family = "wasm"))]
            doc: None,
        }
    };
}

/// Every route of the API.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    route!(GET "/health" => Liveness, Caller::Anyone, Doc {
        operation_id: "liveness",
        tag: "health",
        summary: "Liveness: answers while the runtime serves requests. No details.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "Alive.", content: &[("application/json", of::<t::Liveness>)], headers: &[Hdr::RequestId] },
        ],
        problems: &[],
    }),
    route!(GET "/v1/health" => Health, Caller::Anyone, Doc {
        operation_id: "health",
        tag: "health",
        summary: "Health of every dependency (SQL, key-value, event log, blobs) with its latency (FR-SYS-005).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "Every dependency answered.", content: &[("application/json", of::<t::HealthReport>)], headers: &[Hdr::RequestId] },
            Reply { status: 503, description: "At least one dependency failed; the body says which.", content: &[("application/json", of::<t::HealthReport>)], headers: &[Hdr::RequestId] },
        ],
        problems: &[],
    }),
    route!(GET "/v1/health/services" => HealthServices, Caller::OperatorOrAuditor, Doc {
        operation_id: "serviceHealth",
        tag: "health",
        summary: "Requests, 5xx and 4xx answers, error rate and latency percentiles of each key service (sign-in, introspection, OFREP, event ingestion, administration) over the last 5 and 60 minutes (FR-SYS-005).",
        notes: "Each isolate counts its answers in memory and adds them to per-minute rows at most every 10 seconds, so another isolate's latest seconds may be missing; what the answering isolate has not written yet is included. Latencies are the upper bounds of fixed histogram buckets (1, 2, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30 s): p99_ms 50 means 99% of answers took less than 50 ms. On Workers the clock advances only across I/O, so a latency is the time spent waiting on storage and subrequests. Where an instance serves one request (Spin), one answer of a key service in 100 that is not a 5xx is recorded, counting for 100, every 5xx is recorded, and other routes' answers only when 5xx (Spin's own OpenTelemetry metrics count every request).",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The figures.", content: &[("application/json", of::<t::ServiceHealthReport>)], headers: &[Hdr::RequestId] },
        ],
        problems: &[401, 403, 503],
    }),
    route!(GET "/v1/health/journeys" => HealthJourneys, Caller::OperatorOrAuditor, Doc {
        operation_id: "journeyHealth",
        tag: "health",
        summary: "The synthetic journeys' latest runs, newest first, with each step's outcome and duration, and the latest failed run (NFR-MON-003).",
        notes: "At every scheduled run (5 minutes on Workers) a canary tenant's user signs in with a password and TOTP, the access token is introspected, a flag is evaluated over OFREP, and a billing event is ingested and read back; once an hour a throwaway canary tenant is also provisioned and purged. The requests go through the whole API in process and are not counted in the request metrics. A failed run fires the journey alert. Runs are kept 7 days; the latest 48 are shown.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The runs.", content: &[("application/json", of::<t::JourneyReport>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[401, 403, 503],
    }),
    route!(GET "/v1/alerts" => AlertList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listAlerts",
        tag: "health",
        summary: "Firing alerts, then those resolved within 7 days (NFR-MON-002, NFR-MON-001, NFR-MON-003): one per rule and subject (a key service's 5-minute error rate or p99, a failing dependency, a failed synthetic journey, the event pipeline's lag, a tenant's anomaly), with its stable dedup_key.",
        notes: "The scheduled job judges the rules every run (5 minutes on Workers): an alert fires on the first run that sees its condition and resolves after two consecutive clear runs. Thresholds: error rate above 1% with at least 20 requests (ALERT_ERROR_RATE, ALERT_MIN_REQUESTS), p99 above sign_in 2500, introspection 250, ofrep 250, ingestion 1000, admin 2500 ms (ALERT_P99_MS), event pipeline lag (the oldest acknowledged event not yet archived) above 900 s (ALERT_PIPELINE_LAG_SECONDS); the journey alert fires when the latest synthetic journey run failed, naming the step. Anomalies per tenant (ALERT_ANOMALY_*): at least 50 failed sign-ins in 5 minutes, any refresh-token reuse in 15 minutes, an account signing in from more than 5 addresses in an hour, an API key used from at least 20 addresses in an hour and more than 4 times its busiest hour of the previous 7 days.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The alerts.", content: &[("application/json", of::<t::AlertList>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[401, 403, 503],
    }),
    route!(POST "/v1/alerts/channels" => AlertChannelCreate, Caller::Operator, Doc {
        operation_id: "createAlertChannel",
        tag: "health",
        summary: "Adds a channel alerts are sent to (NFR-MON-002): email, a Slack incoming webhook, PagerDuty Events API v2 or a signed webhook. Its address, URL, routing key and secret are sealed under the master key and never returned; a webhook secret Edgeplane generates is returned this once.",
        notes: "Webhook notices are POSTed as JSON with X-Edgeplane-Timestamp (unix seconds) and X-Edgeplane-Signature: v1=hex(HMAC-SHA256(secret, timestamp + \".\" + body)). At most 20 channels (422 beyond). 503 while the deployment has no MASTER_KEY.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::CreateAlertChannelRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The channel (and a generated webhook secret, shown this once).", content: &[("application/json", of::<t::CreatedAlertChannel>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[400, 401, 403, 415, 422, 503],
    }),
    route!(GET "/v1/alerts/channels" => AlertChannelList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listAlertChannels",
        tag: "health",
        summary: "Lists the alert channels, oldest first, each with a hint of its destination: never an address, URL, routing key or secret.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The channels.", content: &[("application/json", of::<t::AlertChannelList>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[401, 403, 503],
    }),
    route!(DELETE "/v1/alerts/channels/{id}" => AlertChannelDelete, Caller::Operator, Doc {
        operation_id: "deleteAlertChannel",
        tag: "health",
        summary: "Removes an alert channel; it is sent nothing more.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "The channel.", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Removed.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404, 503],
    }),
    route!(GET "/openapi.json" => OpenApi, Caller::Anyone, Doc {
        operation_id: "openapi",
        tag: "meta",
        summary: "This document.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The OpenAPI 3.1 document.", content: &[("application/json", |_| ObjectBuilder::new().schema_type(Type::Object).into())], headers: &[] },
        ],
        problems: &[],
    }),
    hidden!(POST "/internal/scheduled" => Scheduled, Caller::Scheduler),
    hidden!(GET "/__dev/panic" => DevPanic, Caller::Anyone),
    hidden!(PUT "/__dev/faults" => DevFaults, Caller::Anyone),
    hidden!(PUT "/__dev/clock" => DevClock, Caller::Anyone),
    route!(POST "/v1/tenants" => TenantProvision, Caller::Operator, Doc {
        operation_id: "provisionTenant",
        tag: "tenants",
        summary: "Provisions a tenant in one atomic write: the tenant, its owner (invited; the invitation link is returned and mailed), the plan's default flags and the managed apps enabled, with audit records (UC-PROV-001). Retry-safe with Idempotency-Key.",
        notes: "",
        params: &[
            Param { name: "Idempotency-Key", at: At::Header, required: false, description: "Makes a retry return the first result instead of provisioning again (kept 24 h).", schema: |_| string().min_length(Some(1)).max_length(Some(255)).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::ProvisionTenantRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The tenant was provisioned (or this is the stored result of the same Idempotency-Key, marked by Idempotent-Replayed: true).", content: &[("application/json", of::<t::ProvisionedTenant>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 409, 415],
    }),
    route!(GET "/v1/tenants" => TenantList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listTenants",
        tag: "tenants",
        summary: "Lists tenants, newest first, with a case-insensitive prefix search on name or domain, a status filter and keyset cursor pagination.",
        notes: "",
        params: &[
            Param { name: "q", at: At::Query, required: false, description: "", schema: |_| string().max_length(Some(200)).into() },
            Param { name: "status", at: At::Query, required: false, description: "", schema: |_| string().enum_values(Some(["active", "suspended", "pending_deletion", "deleted"])).into() },
            Param { name: "cursor", at: At::Query, required: false, description: "", schema: |_| string().min_length(Some(1)).into() },
            Param { name: "limit", at: At::Query, required: false, description: "", schema: |_| integer().minimum(Some(1)).maximum(Some(100)).default(Some(50.into())).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "One page.", content: &[("application/json", of::<t::TenantPage>)], headers: &[] },
        ],
        problems: &[400, 401, 403],
    }),
    route!(GET "/v1/tenants/{id}" => TenantGet, Caller::OperatorOrAuditor, Doc {
        operation_id: "getTenant",
        tag: "tenants",
        summary: "One tenant; 410 once purged.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tenant.", content: &[("application/json", of::<t::Tenant>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 410],
    }),
    route!(PATCH "/v1/tenants/{id}" => TenantUpdate, Caller::Operator, Doc {
        operation_id: "updateTenant",
        tag: "tenants",
        summary: "Renames a tenant or changes its plan (the new plan's default flags replace those not overridden).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::UpdateTenantRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The tenant after the change.", content: &[("application/json", of::<t::Tenant>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 410, 415],
    }),
    route!(DELETE "/v1/tenants/{id}" => TenantDelete, Caller::Operator, Doc {
        operation_id: "deleteTenant",
        tag: "tenants",
        summary: "Marks a tenant for deletion: refused at the edge at once, restorable for 30 days, then purged by the scheduled job (FR-OPS-002).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 202, description: "Pending deletion.", content: &[("application/json", of::<t::TenantStatusChange>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 410],
    }),
    route!(POST "/v1/tenants/{id}/suspend" => TenantSuspend, Caller::Operator, Doc {
        operation_id: "suspendTenant",
        tag: "tenants",
        summary: "Suspends a tenant: its users, tokens and flag reads are refused at the edge at once (FR-OPS-001).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: Some(Body { required: false, content: &[("application/json", of::<t::SuspendTenantRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The tenant after the change.", content: &[("application/json", of::<t::TenantStatusChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 410, 422],
    }),
    route!(POST "/v1/tenants/{id}/activate" => TenantActivate, Caller::Operator, Doc {
        operation_id: "activateTenant",
        tag: "tenants",
        summary: "Reactivates a suspended tenant (FR-OPS-001).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tenant after the change.", content: &[("application/json", of::<t::TenantStatusChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 410, 422],
    }),
    route!(POST "/v1/tenants/{id}/restore" => TenantRestore, Caller::Operator, Doc {
        operation_id: "restoreTenant",
        tag: "tenants",
        summary: "Restores a tenant pending deletion within its 30-day grace period (FR-OPS-002).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tenant after the change.", content: &[("application/json", of::<t::TenantStatusChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 410, 422],
    }),
    route!(GET "/v1/tenants/{id}/apps" => TenantAppList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listTenantApps",
        tag: "apps",
        summary: "The managed apps linked to a tenant (tenant_apps), enabled or not.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "The tenant.", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tenant's apps.", content: &[("application/json", of::<t::TenantAppList>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 410, 503],
    }),
    route!(POST "/v1/tenants/{id}/apps/{app_id}" => TenantAppEnable, Caller::Operator, Doc {
        operation_id: "enableTenantApp",
        tag: "apps",
        summary: "Enables a managed app for a tenant (tenant_apps). The tenant must not be pending deletion and the app must be active. Repeating it changes nothing.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "The tenant.", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "app_id", at: At::Path, required: true, description: "The app.", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The link, enabled; edge: pending when the cached records of the tenant's keys could not be rewritten (repeat the call).", content: &[("application/json", of::<t::TenantApp>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 409, 410],
    }),
    route!(DELETE "/v1/tenants/{id}/apps/{app_id}" => TenantAppDisable, Caller::Operator, Doc {
        operation_id: "disableTenantApp",
        tag: "apps",
        summary: "Disables a managed app for a tenant: the app's keys bound to the tenant are refused at the edge at once. Disabling a disabled link is a no-op.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "The tenant.", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "app_id", at: At::Path, required: true, description: "The app.", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Disabled.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404, 410, 503],
    }),
    route!(POST "/v1/apps" => AppRegister, Caller::Operator, Doc {
        operation_id: "registerApp",
        tag: "apps",
        summary: "Registers a managed app with a generated id (FR-SYS-001). Names are unique case-insensitively.",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::RegisterAppRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The app, active.", content: &[("application/json", of::<t::App>)], headers: &[Hdr::Plain { name: "Location", description: "/v1/apps/{id}", schema: text }] },
        ],
        problems: &[400, 401, 403, 409, 415],
    }),
    route!(GET "/v1/apps" => AppList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listApps",
        tag: "apps",
        summary: "Lists managed apps, newest first, with a status filter and keyset cursor pagination.",
        notes: "",
        params: &[
            Param { name: "status", at: At::Query, required: false, description: "", schema: |_| string().enum_values(Some(["active", "disabled"])).into() },
            Param { name: "cursor", at: At::Query, required: false, description: "", schema: |_| string().min_length(Some(1)).into() },
            Param { name: "limit", at: At::Query, required: false, description: "", schema: |_| integer().minimum(Some(1)).maximum(Some(100)).default(Some(50.into())).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "One page.", content: &[("application/json", of::<t::AppPage>)], headers: &[] },
        ],
        problems: &[400, 401, 403],
    }),
    route!(GET "/v1/apps/{id}" => AppGet, Caller::OperatorOrAuditor, Doc {
        operation_id: "getApp",
        tag: "apps",
        summary: "One managed app.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The app.", content: &[("application/json", of::<t::App>)], headers: &[] },
        ],
        problems: &[401, 403, 404],
    }),
    route!(PUT "/v1/apps/{id}/health-check" => AppHealthSet, Caller::Operator, Doc {
        operation_id: "setAppHealthCheck",
        tag: "apps",
        summary: "Registers (or replaces) the URL Edgeplane checks to watch the app's own health; a new URL starts without history.",
        notes: "Edgeplane sends a GET every 5 seconds on Workers (a Durable Object alarm) and at each scheduled run on Spin. A 2xx answer is healthy; a redirect is not followed and counts as a failure, as does an error status, no answer within the runtime's timeout, or an answer over 4 KiB. Outside development the URL must be https; on Spin its origin must also be granted (spin.toml `app_health_origin`). Audited as app.health_check.set.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: Some(Body { content: &[("application/json", of::<t::SetHealthCheckRequest>)], required: true }),
        replies: &[
            Reply { status: 200, description: "The health check as it now stands.", content: &[("application/json", of::<t::AppHealth>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 422],
    }),
    route!(DELETE "/v1/apps/{id}/health-check" => AppHealthRemove, Caller::Operator, Doc {
        operation_id: "removeAppHealthCheck",
        tag: "apps",
        summary: "Stops checking the app's health and forgets its history. Audited as app.health_check.remove.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Removed (or there was none).", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404],
    }),
    route!(GET "/v1/apps/{id}/health" => AppHealthGet, Caller::OperatorOrAuditor, Doc {
        operation_id: "getAppHealth",
        tag: "apps",
        summary: "The app's own health: green (its latest check answered 2xx), red (it did not) or unknown (no URL, never checked, or not for 10 minutes), the latest check, and the last hour's checks, failures and latencies by minute.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The health.", content: &[("application/json", of::<t::AppHealth>)], headers: &[] },
        ],
        problems: &[401, 403, 404],
    }),
    route!(PATCH "/v1/apps/{id}" => AppUpdate, Caller::Operator, Doc {
        operation_id: "updateApp",
        tag: "apps",
        summary: "Changes an app's name, redirect URIs or allowed origins, or its status (FR-SYS-003): disabled refuses every key of the app at the edge at once; active accepts them again.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::UpdateAppRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The app after the change.", content: &[("application/json", of::<t::AppChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 415],
    }),
    route!(POST "/v1/apps/{id}/keys" => AppKeyIssue, Caller::Operator, Doc {
        operation_id: "issueApiKey",
        tag: "apps",
        summary: "Issues an API key for the app (FR-SYS-002). The response carries the key (`secret`) once: only a keyed hash is stored. A browser key must be tenant-bound, hold only flags:read, and the app must list allowed_origins.",
        notes: "503 while the deployment has no API_KEY_PEPPER secret.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::IssueApiKeyRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The key, with its secret shown this once.", content: &[("application/json", of::<t::IssuedApiKey>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[400, 401, 403, 404, 409, 415, 503],
    }),
    route!(GET "/v1/apps/{id}/keys" => AppKeyList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listApiKeys",
        tag: "apps",
        summary: "Lists an app's keys, newest first, revoked and expired ones included. Never a secret or a hash.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "cursor", at: At::Query, required: false, description: "", schema: |_| string().min_length(Some(1)).into() },
            Param { name: "limit", at: At::Query, required: false, description: "", schema: |_| integer().minimum(Some(1)).maximum(Some(100)).default(Some(50.into())).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "One page.", content: &[("application/json", of::<t::ApiKeyPage>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404],
    }),
    route!(DELETE "/v1/apps/{id}/keys/{key_id}" => AppKeyRevoke, Caller::Operator, Doc {
        operation_id: "revokeApiKey",
        tag: "apps",
        summary: "Revokes an API key (FR-SYS-002): refused at the edge at once. Revoking a revoked key is a no-op.",
        notes: "503 when the revocation is stored but the edge cache could not be updated: repeat the call.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "key_id", at: At::Path, required: true, description: "The key id (32 lowercase hex digits), as in the key's prefix.", schema: |_| string().pattern(Some("^[0-9a-f]{32}$")).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Revoked.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404, 503],
    }),
    route!(GET "/v1/tenants/{id}/flags" => FlagList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listTenantFlags",
        tag: "flags",
        summary: "A tenant's feature flags from the source of truth (FR-FLAG-001), with the flag-set version.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The flags by key.", content: &[("application/json", of::<t::FlagSet>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 410, 503],
    }),
    route!(PUT "/v1/tenants/{id}/flags/{key}" => FlagSet, Caller::Operator, Doc {
        operation_id: "setTenantFlag",
        tag: "flags",
        summary: "Creates or replaces a tenant's flag, overriding its plan default (FR-FLAG-001). Versioned and audited with the old and new definition; the tenant's edge snapshot is republished.",
        notes: "`edge` is `pending` when the KV snapshot could not be written; the reconciler cron repairs it.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "key", at: At::Path, required: true, description: "The flag key.", schema: |_| string().pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::SetFlagRequest>)] }),
        replies: &[
            Reply { status: 200, description: "Replaced.", content: &[("application/json", of::<t::FlagChange>)], headers: &[] },
            Reply { status: 201, description: "Created.", content: &[("application/json", of::<t::FlagChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 410, 415, 422, 503],
    }),
    route!(DELETE "/v1/tenants/{id}/flags/{key}" => FlagRemove, Caller::Operator, Doc {
        operation_id: "removeTenantFlag",
        tag: "flags",
        summary: "Removes a tenant's flag (FR-FLAG-001); where the plan has a default for the key, the flag reverts to it.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "key", at: At::Path, required: true, description: "The flag key.", schema: |_| string().pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "Reverted to the plan default.", content: &[("application/json", of::<t::FlagChange>)], headers: &[] },
            Reply { status: 204, description: "Removed.", content: &[], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 410, 503],
    }),
    route!(POST "/ofrep/v1/evaluate/flags" => OfrepBulk, Caller::AppKey(Scope::FlagsRead), Doc {
        operation_id: "ofrepEvaluateFlags",
        tag: "ofrep",
        summary: "OpenFeature Remote Evaluation Protocol, bulk (FR-FLAG-002): every flag of the tenant evaluated for the context.",
        notes: "An app-wide key names the tenant as `tenantId` in the context. `If-None-Match` with the current `ETag` answers 304 without evaluating. Browser keys are served only from their app's allowed origins (CORS). Error bodies are problem+json carrying OFREP's `errorCode` and `errorDetails`.",
        params: &[
            Param { name: "If-None-Match", at: At::Header, required: false, description: "", schema: text },
        ],
        body: Some(Body { required: false, content: &[("application/json", of::<t::OfrepRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The evaluations.", content: &[("application/json", of::<t::OfrepBulkResponse>)], headers: &[Hdr::Plain { name: "ETag", description: "", schema: text }] },
            Reply { status: 304, description: "Not modified since the `ETag` given.", content: &[], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 410, 503],
    }),
    route!(OPTIONS "/ofrep/v1/evaluate/flags" => OfrepPreflight, Caller::Preflight, Doc {
        operation_id: "ofrepEvaluateFlagsPreflight",
        tag: "ofrep",
        summary: "CORS preflight for browser keys.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 204, description: "The methods and headers a page may send.", content: &[], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/ofrep/v1/evaluate/flags/{key}" => OfrepSingle, Caller::AppKey(Scope::FlagsRead), Doc {
        operation_id: "ofrepEvaluateFlag",
        tag: "ofrep",
        summary: "OpenFeature Remote Evaluation Protocol, one flag (FR-FLAG-002).",
        notes: "404 with `errorCode` FLAG_NOT_FOUND for an unknown key; 400 with TARGETING_KEY_MISSING, INVALID_CONTEXT or PARSE_ERROR when the context does not allow the evaluation.",
        params: &[
            Param { name: "key", at: At::Path, required: true, description: "The flag key.", schema: |_| string().pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")).into() },
        ],
        body: Some(Body { required: false, content: &[("application/json", of::<t::OfrepRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The evaluation.", content: &[("application/json", of::<t::OfrepEvaluation>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 410, 503],
    }),
    route!(OPTIONS "/ofrep/v1/evaluate/flags/{key}" => OfrepPreflight, Caller::Preflight, Doc {
        operation_id: "ofrepEvaluateFlagPreflight",
        tag: "ofrep",
        summary: "CORS preflight for browser keys.",
        notes: "",
        params: &[
            Param { name: "key", at: At::Path, required: true, description: "The flag key.", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "The methods and headers a page may send.", content: &[], headers: &[] },
        ],
        problems: &[],
    }),
    route!(GET "/v1/flags" => FlagSnapshot, Caller::AppKey(Scope::FlagsRead), Doc {
        operation_id: "getFlagSnapshot",
        tag: "flags",
        summary: "The tenant's flag definitions, for server apps that evaluate locally (FR-FLAG-002), with an `ETag` (the flag-set version).",
        notes: "an app-wide key names the tenant in `tenant`.",
        params: &[
            Param { name: "tenant", at: At::Query, required: false, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "If-None-Match", at: At::Header, required: false, description: "", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The snapshot.", content: &[("application/json", of::<t::FlagSnapshot>)], headers: &[Hdr::Plain { name: "ETag", description: "", schema: text }] },
            Reply { status: 304, description: "Not modified.", content: &[], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 410, 503],
    }),
    route!(GET "/v1/plans/{plan}/flags" => PlanFlagList, Caller::OperatorOrAuditor, Doc {
        operation_id: "listPlanFlags",
        tag: "flags",
        summary: "The flags every tenant of a plan starts with (FR-FLAG-001).",
        notes: "",
        params: &[
            Param { name: "plan", at: At::Path, required: true, description: "", schema: |_| string().pattern(Some("^[a-z0-9_-]{1,64}$")).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The plan's default flags by key.", content: &[("application/json", of::<t::ListPlanFlagsResponse>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 503],
    }),
    route!(PUT "/v1/plans/{plan}/flags/{key}" => PlanFlagSet, Caller::Operator, Doc {
        operation_id: "setPlanFlag",
        tag: "flags",
        summary: "Sets a plan's default flag (FR-FLAG-001, FR-TENANT-003); every live tenant of the plan without an override follows in the same write, and their snapshots are republished (the first 25 at once, the rest by the reconciler cron).",
        notes: "Audited as plan_flag.set with the old and new default.",
        params: &[
            Param { name: "plan", at: At::Path, required: true, description: "", schema: |_| string().pattern(Some("^[a-z0-9_-]{1,64}$")).into() },
            Param { name: "key", at: At::Path, required: true, description: "", schema: |_| string().pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::SetPlanFlagRequest>)] }),
        replies: &[
            Reply { status: 200, description: "Set.", content: &[("application/json", of::<t::PlanFlagChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 415, 503],
    }),
    route!(DELETE "/v1/plans/{plan}/flags/{key}" => PlanFlagRemove, Caller::Operator, Doc {
        operation_id: "removePlanFlag",
        tag: "flags",
        summary: "Removes a plan's default flag; the plan's tenants lose the flags that followed it (overrides stay).",
        notes: "Audited as plan_flag.delete.",
        params: &[
            Param { name: "plan", at: At::Path, required: true, description: "", schema: |_| string().pattern(Some("^[a-z0-9_-]{1,64}$")).into() },
            Param { name: "key", at: At::Path, required: true, description: "", schema: |_| string().pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "Removed.", content: &[("application/json", of::<t::PlanFlagChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 503],
    }),
    route!(GET "/.well-known/jwks.json" => Jwks, Caller::Anyone, Doc {
        operation_id: "getJwks",
        tag: "tokens",
        summary: "The public keys that sign access tokens: the active key and previous keys whose tokens may still be valid (NFR-SEC-004).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "A JSON Web Key Set (RFC 7517) of Ed25519 keys.", content: &[("application/json", of::<t::Jwks>)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/v1/signing-keys/rotate" => SigningKeyRotate, Caller::Operator, Doc {
        operation_id: "rotateSigningKey",
        tag: "tokens",
        summary: "Rotates the token signing key; the previous key stays published until its tokens expire (NFR-SEC-004).",
        notes: "The cron also rotates yearly.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The new and previous key ids.", content: &[("application/json", of::<t::SigningKeyRotation>)], headers: &[] },
        ],
        problems: &[401, 403],
    }),
    route!(POST "/v1/invitations/accept" => InvitationAccept, Caller::Anyone, Doc {
        operation_id: "acceptInvitation",
        tag: "identity",
        summary: "Accepts an invitation: sets the password under the tenant policy and activates the user (FR-TENANT-001, FR-AUTH-006).",
        notes: "422 `business-rule` for an expired, used or revoked invitation, or a password that breaks the policy (`errors` names each failed rule).",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::AcceptInvitationRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The activated user.", content: &[("application/json", of::<t::AcceptedInvitation>)], headers: &[] },
        ],
        problems: &[400, 404, 422],
    }),
    route!(POST "/v1/auth/login" => AuthLogin, Caller::Anyone, Doc {
        operation_id: "login",
        tag: "identity",
        summary: "Password sign-in of a tenant user: starts a session and issues an EdDSA access token and a refresh token (UC-LISTEN, FR-AUTH-001, FR-AUTH-005).",
        notes: "Unknown email, wrong password and an account that cannot sign in all answer the same 401 `invalid-credentials` (CON-SEC-009). A suspended tenant answers 403. A password older than the tenant policy's max_age_days answers 422 (reset it first). Too many failures for the account or from the client answer 429 with Retry-After.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::LoginRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The tokens.", content: &[("application/json", of::<t::TokenPair>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 422, 429],
    }),
    route!(POST "/v1/auth/refresh" => AuthRefresh, Caller::Anyone, Doc {
        operation_id: "refreshTokens",
        tag: "identity",
        summary: "Exchanges a refresh token for a new pair; the old refresh token is rotated, and presenting it again revokes the session (FR-AUTH-005).",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::RefreshRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The new tokens.", content: &[("application/json", of::<t::TokenPair>)], headers: &[] },
        ],
        problems: &[400, 401],
    }),
    route!(POST "/v1/auth/logout" => AuthLogout, Caller::User, Doc {
        operation_id: "logout",
        tag: "identity",
        summary: "Ends the session of the access token; introspection denies its tokens at once (UC-LOGOUT).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 204, description: "The session is revoked.", content: &[], headers: &[] },
        ],
        problems: &[401, 440],
    }),
    route!(POST "/v1/auth/password/forgot" => PasswordForgot, Caller::Anyone, Doc {
        operation_id: "forgotPassword",
        tag: "identity",
        summary: "Mails a single-use, one-hour password reset link if the account exists; always 202 (FR-AUTH-004).",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::ForgotPasswordRequest>)] }),
        replies: &[
            Reply { status: 202, description: "Accepted, whether or not the account exists.", content: &[], headers: &[] },
        ],
        problems: &[400],
    }),
    route!(POST "/v1/auth/password/reset" => PasswordReset, Caller::Anyone, Doc {
        operation_id: "resetPassword",
        tag: "identity",
        summary: "Sets a new password with a mailed reset token and revokes every session of the user (UC-AUTH-RESET, FR-AUTH-004).",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::ResetPasswordRequest>)] }),
        replies: &[
            Reply { status: 204, description: "The password is set.", content: &[], headers: &[] },
        ],
        problems: &[400, 422],
    }),
    route!(POST "/v1/auth/password/change" => PasswordChange, Caller::RecentUser, Doc {
        operation_id: "changePassword",
        tag: "identity",
        summary: "Changes the signed-in user's password and revokes every session of the user (FR-AUTH-004).",
        notes: "Wrong codes or passwords here count against the same rate limits as sign-in (429 with `Retry-After`).",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::ChangePasswordRequest>)] }),
        replies: &[
            Reply { status: 204, description: "The password is changed.", content: &[], headers: &[] },
        ],
        problems: &[400, 401, 403, 422, 429, 440],
    }),
    route!(GET "/v1/tenant/alerts" => TenantAlertList, Caller::TenantAdmin, Doc {
        operation_id: "listTenantAlerts",
        tag: "identity",
        summary: "The anomaly alerts of the caller's tenant (NFR-MON-001), firing then those resolved within 7 days: bursts of failed sign-ins, refresh-token reuse, an account signing in from many addresses, an API key used from many more addresses than usual.",
        notes: "Owners and admins only. The same alerts operators see in GET /v1/alerts, limited to this tenant; their figures are counts, never addresses. Each transition is also in the tenant's audit log (alert.fired, alert.resolved).",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tenant's alerts.", content: &[("application/json", of::<t::AlertList>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[401, 403, 440, 503],
    }),
    route!(GET "/v1/tenant/password-policy" => PasswordPolicyGet, Caller::TenantAdmin, Doc {
        operation_id: "getPasswordPolicy",
        tag: "identity",
        summary: "The tenant's password policy (FR-AUTH-006).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The policy (defaults when never set).", content: &[("application/json", of::<t::PasswordPolicy>)], headers: &[] },
        ],
        problems: &[401, 403, 440],
    }),
    route!(PUT "/v1/tenant/password-policy" => PasswordPolicyPut, Caller::TenantAdmin, Doc {
        operation_id: "setPasswordPolicy",
        tag: "identity",
        summary: "Sets the tenant's password policy, enforced on every password set (FR-AUTH-006, CON-SEC-001).",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::PasswordPolicy>)] }),
        replies: &[
            Reply { status: 200, description: "The policy as stored.", content: &[("application/json", of::<t::PasswordPolicy>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 440],
    }),
    route!(POST "/oauth/introspect" => Introspect, Caller::Introspector, Doc {
        operation_id: "introspectToken",
        tag: "tokens",
        summary: "Token introspection (RFC 7662): whether an access token is active now, with its claims; revocation (logout, disabled user, suspended tenant) shows at once.",
        notes: "Answers for Edgeplane API access tokens and for the access tokens the OIDC provider issued to the key's own app (`aud` is the app id); another client's OIDC tokens are inactive to it. A tenant-bound key sees only its tenant's tokens as active.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::IntrospectionRequest>), ("application/json", of::<t::IntrospectionRequest>)] }),
        replies: &[
            Reply { status: 200, description: "`{active:false}` or the claims with `active:true`.", content: &[("application/json", of::<t::Introspection>)], headers: &[] },
        ],
        problems: &[400, 401, 403],
    }),
    hidden!(GET "/__dev/mail" => DevMail, Caller::Anyone),
    route!(POST "/v1/auth/mfa/verify" => MfaVerify, Caller::Anyone, Doc {
        operation_id: "verifyMfa",
        tag: "identity",
        summary: "Completes the sign-in of an MFA user: the mfa_token of the 401 mfa-required answer and a TOTP or recovery code, or a passkey assertion (NFR-SEC-003, ERR-AUTH-461).",
        notes: "A code is accepted once; five wrong codes end the pending sign-in.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::VerifyMfaRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The tokens.", content: &[("application/json", of::<t::MfaSignIn>)], headers: &[] },
        ],
        problems: &[400, 401, 429],
    }),
    route!(POST "/v1/auth/mfa/totp" => TotpEnroll, Caller::RecentUser, Doc {
        operation_id: "enrollTotp",
        tag: "identity",
        summary: "Starts a TOTP enrollment (RFC 6238, SHA-1, 6 digits, 30 s): the secret and its otpauth:// URI (NFR-SEC-003).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The secret, shown once.", content: &[("application/json", of::<t::TotpEnrollment>)], headers: &[] },
        ],
        problems: &[401, 403, 409, 440],
    }),
    route!(POST "/v1/auth/mfa/totp/confirm" => TotpConfirm, Caller::RecentUser, Doc {
        operation_id: "confirmTotp",
        tag: "identity",
        summary: "Confirms the enrollment with a current code: TOTP is on, and ten single-use recovery codes are returned once.",
        notes: "Wrong codes or passwords here count against the same rate limits as sign-in (429 with `Retry-After`).",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::MfaCodeRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The recovery codes.", content: &[("application/json", of::<t::RecoveryCodes>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 409, 422, 429, 440],
    }),
    route!(DELETE "/v1/auth/mfa/totp" => TotpDisable, Caller::RecentUser, Doc {
        operation_id: "disableTotp",
        tag: "identity",
        summary: "Turns TOTP off after a current TOTP or recovery code.",
        notes: "Wrong codes or passwords here count against the same rate limits as sign-in (429 with `Retry-After`).",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::MfaCodeRequest>)] }),
        replies: &[
            Reply { status: 204, description: "TOTP is off.", content: &[], headers: &[] },
        ],
        problems: &[400, 401, 403, 409, 429, 440],
    }),
    route!(POST "/v1/tenant/users/{id}/sessions/revoke" => UserSessionsRevoke, Caller::TenantAdmin, Doc {
        operation_id: "revokeUserSessions",
        tag: "identity",
        summary: "Ends every session of a user of the caller's tenant: introspection denies their tokens at once, refresh tokens stop working (FR-AUTH-005).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "How many sessions were active.", content: &[("application/json", of::<t::SessionsRevoked>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 440],
    }),
    route!(POST "/v1/auth/mfa/enroll" => MfaEnrollDuringSignIn, Caller::Anyone, Doc {
        operation_id: "enrollTotpDuringSignIn",
        tag: "identity",
        summary: "TOTP enrollment within the sign-in of a user whose tenant requires MFA (the 401 mfa-required answer said enrollment_required); the first code then goes to /v1/auth/mfa/verify, which also returns the recovery codes (NFR-SEC-003).",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::MfaEnrollRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The secret, shown once.", content: &[("application/json", of::<t::TotpEnrollment>)], headers: &[] },
        ],
        problems: &[400, 401],
    }),
    route!(POST "/v1/billing/events" => BillingIngest, Caller::AppKey(Scope::BillWrite), Doc {
        operation_id: "reportBillingEvents",
        tag: "events",
        summary: "Reports billing events: one event, a JSON array, or {\"events\": [...]} of up to 1,000. CloudEvents 1.0 JSON (`specversion`, `subject` = tenant, `data.quantity` or `data.value`) is accepted too (FR-BILL-002).",
        notes: "Every field is validated; one bad event rejects the request (400 naming its `index` and `field`) and nothing is stored. 202 only once the events are durable. Events are deduplicated by `id` (or `Idempotency-Key`), so a retried request is applied once.",
        params: &[
            Param { name: "Idempotency-Key", at: At::Header, required: false, description: "", schema: |_| string().max_length(Some(128)).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::ReportBillingEventsRequest>)] }),
        replies: &[
            Reply { status: 202, description: "Stored durably.", content: &[("application/json", of::<t::IngestOutcome>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 413, 415, 503],
    }),
    route!(GET "/v1/billing/events" => BillingExport, Caller::AppKey(Scope::BillRead), Doc {
        operation_id: "exportBillingEvents",
        tag: "events",
        summary: "Billing events of a tenant by period, in stream order, archives and unflushed tail alike, each exactly once across pages (FR-BILL-003).",
        notes: "`next_cursor` is the last sequence number returned; pass it back as `cursor`.",
        params: &[
            Param { name: "tenant", at: At::Query, required: false, description: "The tenant. Required with an app-wide key; a tenant-bound key reads its own tenant (another tenant answers 404).", schema: |_| string().pattern(Some("^[!-~]{1,64}$")).into() },
            Param { name: "from", at: At::Query, required: false, description: "Start of the period (inclusive) by event timestamp: RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "to", at: At::Query, required: false, description: "End of the period (exclusive): RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "cursor", at: At::Query, required: false, description: "From a previous page's next_cursor.", schema: |_| string().pattern(Some("^[!-~]{1,200}$")).into() },
            Param { name: "limit", at: At::Query, required: false, description: "1 to 1000, default 100.", schema: |_| integer().minimum(Some(1)).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "A page.", content: &[("application/json", of::<t::ExportBillingEventsResponse>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 503],
    }),
    route!(GET "/v1/billing/usage" => BillingUsage, Caller::AppKey(Scope::BillRead), Doc {
        operation_id: "billingUsage",
        tag: "events",
        summary: "Quantities and event counts per UTC day and event type, summed over exactly the events the export returns for the period (FR-BILL-003).",
        notes: "",
        params: &[
            Param { name: "tenant", at: At::Query, required: false, description: "The tenant. Required with an app-wide key; a tenant-bound key reads its own tenant (another tenant answers 404).", schema: |_| string().pattern(Some("^[!-~]{1,64}$")).into() },
            Param { name: "from", at: At::Query, required: false, description: "Start of the period (inclusive) by event timestamp: RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "to", at: At::Query, required: false, description: "End of the period (exclusive): RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "group_by", at: At::Query, required: false, description: "Only `day`.", schema: |_| string().enum_values(Some(["day"])).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The summary.", content: &[("application/json", of::<t::BillingUsageResponse>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 503],
    }),
    route!(GET "/v1/tenants/{id}/usage" => TenantUsage, Caller::OperatorOrAuditor, Doc {
        operation_id: "tenantUsage",
        tag: "events",
        summary: "A tenant's billing usage for operators and auditors: quantities and event counts per UTC day and event type, the same summary as GET /v1/billing/usage gives the tenant's apps (FR-BILL-003).",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
            Param { name: "from", at: At::Query, required: false, description: "Start of the period (inclusive) by event timestamp: RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "to", at: At::Query, required: false, description: "End of the period (exclusive): RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "group_by", at: At::Query, required: false, description: "Only `day`.", schema: |_| string().enum_values(Some(["day"])).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The summary.", content: &[("application/json", of::<t::BillingUsageResponse>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 410, 503],
    }),
    route!(GET "/v1/tenant/usage" => OwnTenantUsage, Caller::TenantAdmin, Doc {
        operation_id: "ownTenantUsage",
        tag: "tenant-admin",
        summary: "The signed-in owner's or admin's tenant's billing usage: quantities and event counts per UTC day and event type, the same summary as GET /v1/billing/usage gives the tenant's apps (FR-BILL-003).",
        notes: "",
        params: &[
            Param { name: "from", at: At::Query, required: false, description: "Start of the period (inclusive) by event timestamp: RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "to", at: At::Query, required: false, description: "End of the period (exclusive): RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "group_by", at: At::Query, required: false, description: "Only `day`.", schema: |_| string().enum_values(Some(["day"])).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The summary.", content: &[("application/json", of::<t::BillingUsageResponse>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 440, 503],
    }),
    route!(POST "/v1/audit/events" => AuditIngest, Caller::AppKey(Scope::LogWrite), Doc {
        operation_id: "reportAuditEvents",
        tag: "events",
        summary: "Reports audit events: one event, a JSON array, or {\"events\": [...]} of up to 1,000. (FR-LOG-001)",
        notes: "Every field is validated; one bad event rejects the request (400 naming its `index` and `field`) and nothing is stored. 202 only once the events are durable. Events are deduplicated by `id` (or `Idempotency-Key`), so a retried request is applied once.",
        params: &[
            Param { name: "Idempotency-Key", at: At::Header, required: false, description: "", schema: |_| string().max_length(Some(128)).into() },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::ReportAuditEventsRequest>)] }),
        replies: &[
            Reply { status: 202, description: "Stored durably.", content: &[("application/json", of::<t::IngestOutcome>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 413, 415, 503],
    }),
    route!(GET "/v1/audit/export.csv" => AuditExportCsv, Caller::OperatorOrAuditor, Doc {
        operation_id: "exportAuditCsv",
        tag: "events",
        summary: "Audit events as RFC 4180 CSV from the archives plus the unflushed tail, one tenant or all (FR-LOG-002).",
        notes: "Cells starting with =, +, -, @, tab or CR are prefixed with ' against formula injection. At most `limit` rows per response (default 10,000, at most 50,000); when more follow, `X-Next-Cursor` and `Link: rel=\"next\"` give the next page.",
        params: &[
            Param { name: "from", at: At::Query, required: false, description: "Start of the period (inclusive) by event timestamp: RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "to", at: At::Query, required: false, description: "End of the period (exclusive): RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "tenant", at: At::Query, required: false, description: "One tenant (default: all).", schema: |_| string().pattern(Some("^[!-~]{1,64}$")).into() },
            Param { name: "action", at: At::Query, required: false, description: "Only events of this type.", schema: |_| string().pattern(Some("^[!-~]{1,64}$")).into() },
            Param { name: "cursor", at: At::Query, required: false, description: "From a previous page's X-Next-Cursor.", schema: |_| string().pattern(Some("^[!-~]{1,200}$")).into() },
            Param { name: "limit", at: At::Query, required: false, description: "Rows per response.", schema: |_| integer().minimum(Some(1)).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "CSV.", content: &[("text/csv", text)], headers: &[] },
        ],
        problems: &[400, 401, 403, 503],
    }),
    route!(GET "/v1/audit/verify" => AuditVerify, Caller::OperatorOrAuditor, Doc {
        operation_id: "verifyEventChain",
        tag: "events",
        summary: "Recomputes the hash chain of a tenant's stream (or all streams of the kind) across archives and tail, checks each archive object's anchor, and reports ok or the first broken link.",
        notes: "A record's hash is SHA-256 over a length-framed encoding of its stream, seq, id, timestamps, previous hash and body (see core/src/events/chain.rs). That chain is unkeyed, so every archive object also carries an anchor written by the flush: HMAC-SHA256 of its stream, sequence range and last hash under the server secret EVENT_ANCHOR_KEY (see core/src/events/anchor.rs). A history rewritten and rehashed without the key fails its anchor (anchor_mismatch); an archive without an anchor (anchor_missing), under a key no longer configured (anchor_key_unknown) or checked where no key is configured (anchor_key_missing) is a break too. The unflushed tail has no anchor yet: only its chain is checked.",
        params: &[
            Param { name: "tenant", at: At::Query, required: false, description: "One tenant (default: all).", schema: |_| string().pattern(Some("^[!-~]{1,64}$")).into() },
            Param { name: "from", at: At::Query, required: false, description: "Start of the period (inclusive) by event timestamp: RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "to", at: At::Query, required: false, description: "End of the period (exclusive): RFC 3339 or unix ms.", schema: at_or_ms },
            Param { name: "kind", at: At::Query, required: false, description: "audit (default) or billing.", schema: |_| string().enum_values(Some(["audit", "billing"])).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The result.", content: &[("application/json", of::<t::VerifyEventChainResponse>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 503],
    }),
    hidden!(GET "/__dev/blobs" => DevBlobGet, Caller::Operator),
    hidden!(PUT "/__dev/blobs" => DevBlobPut, Caller::Operator),
    route!(GET "/v1/tenant" => TenantSelf, Caller::TenantAdmin, Doc {
        operation_id: "getOwnTenant",
        tag: "tenant-admin",
        summary: "The signed-in owner's or admin's own tenant: name, domain, plan and status.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tenant.", content: &[("application/json", of::<t::Tenant>)], headers: &[] },
        ],
        problems: &[401, 403, 410, 503],
    }),
    route!(GET "/v1/tenant/flags" => TenantOwnFlags, Caller::TenantAdmin, Doc {
        operation_id: "listOwnTenantFlags",
        tag: "flags",
        summary: "The signed-in owner's or admin's tenant's flags, read-only (FR-FLAG-001: operators configure them).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The flags by key.", content: &[("application/json", of::<t::FlagSet>)], headers: &[] },
        ],
        problems: &[401, 403, 410, 503],
    }),
    route!(GET "/v1/tenant/users" => TenantUserList, Caller::TenantAdmin, Doc {
        operation_id: "listTenantUsers",
        tag: "tenant-admin",
        summary: "The caller's tenant's users, filtered by status and role, searched by email prefix, in keyset pages (FR-TENANT-004).",
        notes: "Audited.",
        params: &[
            Param { name: "status", at: At::Query, required: false, description: "Only this status (default: all but deleted).", schema: |_| string().enum_values(Some(["invited", "active", "disabled", "deleted"])).into() },
            Param { name: "role", at: At::Query, required: false, description: "Only this role.", schema: |_| string().enum_values(Some(["owner", "admin", "user"])).into() },
            Param { name: "q", at: At::Query, required: false, description: "Email prefix, case-insensitive.", schema: |_| string().max_length(Some(254)).into() },
            Param { name: "cursor", at: At::Query, required: false, description: "next_cursor of the previous page.", schema: |_| string().min_length(Some(1)).into() },
            Param { name: "limit", at: At::Query, required: false, description: "Page size.", schema: |_| integer().minimum(Some(1)).maximum(Some(100)).default(Some(50.into())).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "One page.", content: &[("application/json", of::<t::TenantUserPage>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 440],
    }),
    route!(GET "/v1/tenant/users/{id}" => TenantUserGet, Caller::TenantAdmin, Doc {
        operation_id: "getTenantUser",
        tag: "tenant-admin",
        summary: "One user of the caller's tenant; an erased user shows only the pseudonym.",
        notes: "Audited.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The user.", content: &[("application/json", of::<t::TenantUser>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 440],
    }),
    route!(PATCH "/v1/tenant/users/{id}" => TenantUserUpdate, Caller::TenantAdmin, Doc {
        operation_id: "updateTenantUser",
        tag: "tenant-admin",
        summary: "Changes a user's role and/or status (FR-TENANT-004, FR-TENANT-006): the user's sessions end at once.",
        notes: "Audited. Only an owner grants or removes owner; admins cannot act on owners; the last active owner cannot be demoted or disabled (422).",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: Some(Body { required: true, content: &[("application/json", of::<t::UpdateTenantUserRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The user after the change.", content: &[("application/json", of::<t::TenantUser>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 409, 422, 440],
    }),
    route!(DELETE "/v1/tenant/users/{id}" => TenantUserDelete, Caller::TenantAdmin, Doc {
        operation_id: "deleteTenantUser",
        tag: "tenant-admin",
        summary: "Deletes a user by erasure (FR-TENANT-002, CON-COMP-001): personal data removed, sessions ended, history kept under a pseudonym.",
        notes: "Audited. Admins cannot delete owners; the last active owner cannot be deleted (422).",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Erased (or already erased).", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404, 409, 422, 440],
    }),
    route!(POST "/v1/tenant/invitations" => TenantInvite, Caller::TenantAdmin, Doc {
        operation_id: "inviteTenantUser",
        tag: "tenant-admin",
        summary: "Invites a user (FR-TENANT-001): a user with status invited and a single-use invitation, mailed; 409 if the email already has a user in the tenant.",
        notes: "Audited.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::InviteRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The invitation (the token travels only in the mail).", content: &[("application/json", of::<t::Invitation>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 409, 422, 440],
    }),
    route!(GET "/v1/tenant/invitations" => TenantInvitationList, Caller::TenantAdmin, Doc {
        operation_id: "listTenantInvitations",
        tag: "tenant-admin",
        summary: "The caller's tenant's pending and expired invitations, newest first.",
        notes: "Audited.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The invitations.", content: &[("application/json", of::<t::InvitationList>)], headers: &[] },
        ],
        problems: &[401, 403, 440],
    }),
    route!(POST "/v1/tenant/invitations/{id}/resend" => TenantInvitationResend, Caller::TenantAdmin, Doc {
        operation_id: "resendTenantInvitation",
        tag: "tenant-admin",
        summary: "Resends an invitation (FR-TENANT-007): the previous token stops working, a new one with a fresh expiry is mailed.",
        notes: "Audited.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: Some(Body { required: false, content: &[("application/json", of::<t::ResendInvitationRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The new invitation.", content: &[("application/json", of::<t::Invitation>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 404, 422, 440],
    }),
    route!(PATCH "/v1/tenant/plan" => TenantPlanUpdate, Caller::TenantOwner, Doc {
        operation_id: "updateTenantPlan",
        tag: "tenant-admin",
        summary: "The owner changes the tenant's plan (FR-TENANT-003); the plan's default flags apply to keys not overridden.",
        notes: "Audited as tenant.update.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::TenantPlanRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The plan now.", content: &[("application/json", of::<t::TenantPlanChange>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 409, 440],
    }),
    route!(GET "/v1/me/export" => MeExport, Caller::User, Doc {
        operation_id: "exportMyData",
        tag: "privacy",
        summary: "The caller's personal data as JSON: profile, sessions, invitations and the audit records they are the actor of (CON-COMP-001).",
        notes: "Audited as user.export.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The export.", content: &[("application/json", of::<t::PersonalDataExport>)], headers: &[] },
        ],
        problems: &[401, 440],
    }),
    route!(DELETE "/v1/me" => MeDelete, Caller::RecentUser, Doc {
        operation_id: "eraseMe",
        tag: "privacy",
        summary: "Erases the caller (CON-COMP-001): personal data removed, sessions ended, history kept under a pseudonym; the last owner cannot (422).",
        notes: "Audited as user.delete.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 204, description: "Erased.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 409, 422, 440],
    }),
    route!(GET "/v1/tenant/risk-policy" => RiskPolicyGet, Caller::TenantAdmin, Doc {
        operation_id: "getRiskPolicy",
        tag: "identity",
        summary: "The tenant's adaptive authentication policy: what each risk level of a sign-in requires, and the rules that score it (NFR-SEC-006).",
        notes: "The defaults when never set.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The policy.", content: &[("application/json", of::<t::RiskPolicy>)], headers: &[] },
        ],
        problems: &[401, 403, 440],
    }),
    route!(PUT "/v1/tenant/risk-policy" => RiskPolicyPut, Caller::TenantAdmin, Doc {
        operation_id: "setRiskPolicy",
        tag: "identity",
        summary: "Sets the tenant's adaptive authentication policy (owner only; an admin gets 403) (NFR-SEC-006, CON-SEC-008).",
        notes: "Audited as risk_policy.update.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::RiskPolicy>)] }),
        replies: &[
            Reply { status: 200, description: "The policy as stored.", content: &[("application/json", of::<t::RiskPolicy>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 440],
    }),
    route!(GET "/v1/tenant/risky-sign-ins" => RiskySignIns, Caller::TenantAdmin, Doc {
        operation_id: "listRiskySignIns",
        tag: "identity",
        summary: "The tenant's recent medium- and high-risk sign-ins, newest first, with their signals, the action the policy required and the outcome (NFR-SEC-006).",
        notes: "No address or device identifier is shown or kept in clear.",
        params: &[
            Param { name: "level", at: At::Query, required: false, description: "Only the sign-ins of this level.", schema: |_| string().enum_values(Some(["medium", "high"])).into() },
            Param { name: "limit", at: At::Query, required: false, description: "How many.", schema: |_| integer().minimum(Some(1)).maximum(Some(200)).default(Some(50.into())).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The sign-ins.", content: &[("application/json", of::<t::RiskySignInList>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 440],
    }),
    route!(GET "/v1/me/devices" => MyDevices, Caller::User, Doc {
        operation_id: "listMyDevices",
        tag: "identity",
        summary: "The devices the caller signed in from (the login page's device cookie, or an API client's Edgeplane-Device header), most recently seen first (NFR-SEC-006).",
        notes: "A password reset forgets them all.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The devices.", content: &[("application/json", of::<t::DeviceList>)], headers: &[] },
        ],
        problems: &[401, 440],
    }),
    route!(DELETE "/v1/me/devices/{id}" => MyDeviceDelete, Caller::User, Doc {
        operation_id: "deleteMyDevice",
        tag: "identity",
        summary: "Forgets one of the caller's devices: its next sign-in counts as from a new device. Another user's device is 404.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Forgotten.", content: &[], headers: &[] },
        ],
        problems: &[401, 404, 440],
    }),
    route!(GET "/v1/tenant/sso" => SsoConfigGet, Caller::TenantOwner, Doc {
        operation_id: "getTenantSso",
        tag: "identity",
        summary: "The tenant's SSO configuration, without the client secret (FR-AUTH-003).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The configuration.", content: &[("application/json", of::<t::SsoConfig>)], headers: &[] },
        ],
        problems: &[401, 403, 404, 440],
    }),
    route!(PUT "/v1/tenant/sso" => SsoConfigPut, Caller::TenantOwner, Doc {
        operation_id: "setTenantSso",
        tag: "identity",
        summary: "Configures the tenant's OpenID Connect identity provider (FR-AUTH-003, UC-TENANT-SSO).",
        notes: "The issuer's discovery document and key set are fetched and checked before saving: the issuer must match exactly, the authorization, token and JWKS endpoints must be on the issuer's origin (and so public hosts too), the code flow and PKCE S256 supported; each document is read up to 64 KiB. A failure is a 400 naming what failed in Edgeplane's words: which check, or which document could not be fetched, never the IdP's status, body or network error. A change of issuer_url or client_id without client_secret is a 400 (invalid-input, field client_secret) and changes nothing. Audited as sso.configure.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::SsoConfigRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The configuration.", content: &[("application/json", of::<t::SsoConfig>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 440],
    }),
    route!(DELETE "/v1/tenant/sso" => SsoConfigDelete, Caller::TenantOwner, Doc {
        operation_id: "removeTenantSso",
        tag: "identity",
        summary: "Removes the tenant's SSO configuration (FR-AUTH-003).",
        notes: "Audited as sso.remove.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 204, description: "Removed.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404, 440],
    }),
    route!(GET "/v1/auth/sso/start" => SsoStart, Caller::Anyone, Doc {
        operation_id: "startSso",
        tag: "identity",
        summary: "Starts a tenant SSO sign-in: redirects to the tenant's identity provider (FR-AUTH-003).",
        notes: "Authorization code flow with PKCE (S256), state and nonce; the pending sign-in is kept 10 minutes and completes once.",
        params: &[
            Param { name: "tenant", at: At::Query, required: true, description: "The tenant's domain.", schema: |_| string().pattern(Some("^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[A-Za-z0-9][A-Za-z0-9-]{1,61}[A-Za-z0-9][\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$")).description(Some("3 to 63 of a-z, 0-9 and -, starting and ending with a letter or digit (case-folded, surrounding whitespace trimmed).")).into() },
            Param { name: "login_flow", at: At::Query, required: false, description: "Opaque id of the universal login page's flow, handed back on completion.", schema: |_| string().pattern(Some("^[!-~]{1,256}$")).into() },
            Param { name: "redirect_to", at: At::Query, required: false, description: "A path on this origin to go to afterwards, returned with the tokens.", schema: |_| string().pattern(Some("^/(?:[!-.0-\\[\\]-~][!-\\[\\]-~]{0,2046})?$")).description(Some("A path on this origin (one leading /, printable ASCII, no backslash) to go to afterwards, returned with the tokens.")).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 302, description: "To the IdP's authorization endpoint.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uri".into()))).into() }] },
        ],
        problems: &[400, 404, 503],
    }),
    route!(GET "/v1/auth/sso/callback" => SsoCallback, Caller::Anyone, Doc {
        operation_id: "completeSso",
        tag: "identity",
        summary: "The IdP's redirect back: exchanges the code, validates the ID token and signs the user in (FR-AUTH-003).",
        notes: "The ID token must be signed (RS256 or ES256) by a key of the IdP, from the configured issuer, for the configured client, unexpired, with this sign-in's nonce and a verified email. The user is matched by that email within the tenant (invited users are activated; unknown emails are refused unless the tenant allows JIT). A refusal is a 401 or 403 whose reason names it; an IdP error (error=access_denied...) is a 401 with idp_error. Started from the universal login page (`login_flow`), a success redirects (302) to the managed app's redirect URI with a code instead of answering tokens. The sign-in goes through the risk check (NFR-SEC-006), the device being the browser's `__Host-ep_device` cookie (set on a completed sign-in when absent) or the `Edgeplane-Device` header: the IdP's MFA (`amr`/`acr`) satisfies a step-up; without it a level that requires one is held for the step-up of a password sign-in: from the login page, its second-factor step (200, HTML), whose answer goes on to the app; otherwise the 401 `mfa-required` of /v1/auth/login with the `mfa_token` for /v1/auth/mfa/verify. A refusal is problem details, or an HTML page when `Accept` names `text/html` first (a browser).",
        params: &[
            Param { name: "code", at: At::Query, required: false, description: "The authorization code.", schema: text },
            Param { name: "state", at: At::Query, required: false, description: "The state of /v1/auth/sso/start.", schema: text },
            Param { name: "error", at: At::Query, required: false, description: "The IdP's error code, when it refused.", schema: text },
            Param { name: "iss", at: At::Query, required: false, description: "The authorization response's issuer (RFC 9207); must be the IdP the sign-in went to.", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The tokens (amr sso), with redirect_to when the sign-in started with one; or, for a sign-in started from the login page and held for a step-up, the page's second-factor step.", content: &[("application/json", of::<t::TokenPair>), ("text/html", text)], headers: &[] },
            Reply { status: 302, description: "Sign-in started from the login page: back to the managed app with `code` and `state`.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 429, 503],
    }),
    route!(POST "/v1/auth/webauthn/register/options" => WebAuthnRegisterOptions, Caller::RecentUser, Doc {
        operation_id: "webauthnRegisterOptions",
        tag: "identity",
        summary: "Passkey creation options for the signed-in user, with a single-use challenge valid 5 minutes (NFR-SEC-003).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The options and the flow handle.", content: &[("application/json", of::<t::WebAuthnOptions>)], headers: &[] },
        ],
        problems: &[401, 403, 440, 503],
    }),
    route!(POST "/v1/auth/webauthn/register/verify" => WebAuthnRegisterVerify, Caller::RecentUser, Doc {
        operation_id: "webauthnRegisterVerify",
        tag: "identity",
        summary: "Verifies the registration (WebAuthn section 7.1: client data type, challenge, origin, rpIdHash, user presence, attestation none, ES256 or EdDSA) and stores the passkey, audited (NFR-SEC-003).",
        notes: "A registered passkey counts as a second factor for the password sign-in (401 mfa-required then accepts a passkey). 422 with reason webauthn_* names the failed check; 409 if the credential is already registered.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::WebAuthnRegisterRequest>)] }),
        replies: &[
            Reply { status: 201, description: "The stored passkey.", content: &[("application/json", of::<t::WebAuthnCredential>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 409, 422, 440],
    }),
    route!(GET "/v1/auth/webauthn/credentials" => WebAuthnCredentialList, Caller::User, Doc {
        operation_id: "webauthnListCredentials",
        tag: "identity",
        summary: "The signed-in user's passkeys.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The passkeys, oldest first.", content: &[("application/json", of::<t::WebAuthnCredentialList>)], headers: &[] },
        ],
        problems: &[401, 440],
    }),
    route!(DELETE "/v1/auth/webauthn/credentials/{id}" => WebAuthnCredentialDelete, Caller::RecentUser, Doc {
        operation_id: "webauthnDeleteCredential",
        tag: "identity",
        summary: "Removes one of the signed-in user's passkeys, audited. Another user's or tenant's passkey is 404.",
        notes: "",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 204, description: "Removed.", content: &[], headers: &[] },
        ],
        problems: &[401, 403, 404, 440],
    }),
    route!(POST "/v1/auth/webauthn/login/options" => WebAuthnLoginOptions, Caller::Anyone, Doc {
        operation_id: "webauthnLoginOptions",
        tag: "identity",
        summary: "Passkey request options for a passwordless sign-in (user verification required, NFR-SEC-003). Unknown tenants and emails get options too.",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::WebAuthnLoginOptionsRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The options and the flow handle.", content: &[("application/json", of::<t::WebAuthnOptions>)], headers: &[] },
        ],
        problems: &[400, 503],
    }),
    route!(POST "/v1/auth/webauthn/login/verify" => WebAuthnLoginVerify, Caller::Anyone, Doc {
        operation_id: "webauthnLogin",
        tag: "identity",
        summary: "Passwordless sign-in with a passkey (WebAuthn section 7.2, UV required, sign count must rise): the same tokens as /v1/auth/login (NFR-SEC-003).",
        notes: "Failures are 401 (reason webauthn_*), throttled like password sign-ins (429) and audited; a suspended tenant is 403.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::WebAuthnLoginRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The tokens.", content: &[("application/json", of::<t::TokenPair>)], headers: &[] },
        ],
        problems: &[400, 401, 403, 429],
    }),
    route!(POST "/v1/auth/mfa/webauthn/options" => MfaWebAuthnOptions, Caller::Anyone, Doc {
        operation_id: "mfaWebAuthnOptions",
        tag: "identity",
        summary: "Passkey request options for the second factor of a pending password sign-in (the mfa_token of 401 mfa-required); the assertion goes to /v1/auth/mfa/verify as webauthn (NFR-SEC-003).",
        notes: "",
        params: &[],
        body: Some(Body { required: true, content: &[("application/json", of::<t::MfaWebAuthnOptionsRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The options.", content: &[("application/json", of::<t::WebAuthnOptions>)], headers: &[] },
        ],
        problems: &[400, 401, 409, 503],
    }),
    route!(GET "/.well-known/openid-configuration" => OidcDiscovery, Caller::Anyone, Doc {
        operation_id: "getOpenIdConfiguration",
        tag: "oidc",
        summary: "OpenID Connect discovery (FR-AUTH-001 OIDC): the provider's endpoints and exactly the features implemented (code flow, PKCE S256, EdDSA ID tokens).",
        notes: "The issuer is PUBLIC_BASE_URL when set, else the origin of the request.",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "The provider metadata (OpenID Connect Discovery 1.0).", content: &[("application/json", of::<t::OidcProviderMetadata>)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(GET "/oauth/authorize" => OidcAuthorize, Caller::Anyone, Doc {
        operation_id: "oidcAuthorize",
        tag: "oidc",
        summary: "Authorization request (FR-AUTH-001 OIDC): checks it and shows the universal login page (IF-LOGIN-UI).",
        notes: "An unknown client_id or an unregistered redirect_uri is shown as an HTML error page, never redirected. Later errors are redirected to the redirect_uri with `error`, `error_description` and `state` (RFC 6749 4.1.2.1). PKCE S256 is required. The page is HTML with a strict Content-Security-Policy and sets the flow's CSRF cookie.",
        params: &[
            Param { name: "client_id", at: At::Query, required: true, description: "The app id.", schema: text },
            Param { name: "redirect_uri", at: At::Query, required: true, description: "Exactly one of the app's redirect_uris.", schema: text },
            Param { name: "response_type", at: At::Query, required: true, description: "`code`.", schema: text },
            Param { name: "scope", at: At::Query, required: true, description: "Must include `openid`; also `profile`, `email`, `offline_access`.", schema: text },
            Param { name: "state", at: At::Query, required: false, description: "Returned with the code.", schema: text },
            Param { name: "nonce", at: At::Query, required: false, description: "Put in the ID token.", schema: text },
            Param { name: "code_challenge", at: At::Query, required: true, description: "PKCE S256 challenge.", schema: text },
            Param { name: "code_challenge_method", at: At::Query, required: true, description: "`S256`.", schema: text },
            Param { name: "prompt", at: At::Query, required: false, description: "`none` is answered with login_required; `login`.", schema: text },
            Param { name: "login_hint", at: At::Query, required: false, description: "An email to pre-fill; its domain may name the tenant.", schema: text },
            Param { name: "tenant", at: At::Query, required: false, description: "The tenant's domain, to skip the organization step.", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The login page (organization step, or email and password when the tenant is known).", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "An error sent back to the client's redirect_uri.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "The request cannot be redirected (unknown client or unregistered redirect_uri).", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/oauth/authorize/tenant" => OidcLoginTenant, Caller::Anyone, Doc {
        operation_id: "oidcLoginTenant",
        tag: "oidc",
        summary: "Login page step 1: the organization's domain.",
        notes: "A form post of the login page: `csrf` must equal the flow's cookie and the token stored with the flow, else 403. On success the browser is redirected (303) to the client's redirect_uri with `code` and `state`.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::OidcLoginTenantRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The email and password step, or the organization step again with an error.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed in: the client's redirect_uri with code and state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Expired or used login flow.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 403, description: "CSRF check failed, or sign-in not possible.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/oauth/authorize/login" => OidcLoginPassword, Caller::Anyone, Doc {
        operation_id: "oidcLoginPassword",
        tag: "oidc",
        summary: "Login page step 2: email and password, through the same sign-in path as POST /v1/auth/login (rate limits, audit).",
        notes: "A form post of the login page: `csrf` must equal the flow's cookie and the token stored with the flow, else 403. On success the browser is redirected (303) to the client's redirect_uri with `code` and `state`.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::OidcLoginPasswordRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The second-factor step, or the same step with an error (401 wrong credentials, 429 rate limited).", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed in: the client's redirect_uri with code and state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Expired or used login flow.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 403, description: "CSRF check failed, or sign-in not possible.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/oauth/authorize/mfa" => OidcLoginMfa, Caller::Anyone, Doc {
        operation_id: "oidcLoginMfa",
        tag: "oidc",
        summary: "Login page second factor: a TOTP or recovery code, a passkey assertion, or the first code of an enrollment when the tenant requires MFA (NFR-SEC-003).",
        notes: "A form post of the login page: `csrf` must equal the flow's cookie and the token stored with the flow, else 403. On success the browser is redirected (303) to the client's redirect_uri with `code` and `state`.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::OidcLoginMfaRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The same step with an error.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed in: the client's redirect_uri with code and state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Expired or used login flow.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 403, description: "CSRF check failed, or sign-in not possible.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/oauth/authorize/forgot" => OidcLoginForgot, Caller::Anyone, Doc {
        operation_id: "oidcLoginForgot",
        tag: "oidc",
        summary: "Login page forgot-password: mails a reset link if the account exists, always the same answer (FR-AUTH-004, CON-SEC-009).",
        notes: "A form post of the login page: `csrf` must equal the flow's cookie and the token stored with the flow, else 403. On success the browser is redirected (303) to the client's redirect_uri with `code` and `state`.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::OidcLoginForgotRequest>)] }),
        replies: &[
            Reply { status: 200, description: "The email and password step with a neutral notice.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed in: the client's redirect_uri with code and state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Expired or used login flow.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 403, description: "CSRF check failed, or sign-in not possible.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(GET "/oauth/assets/passkey.js" => OidcPasskeyJs, Caller::Anyone, Doc {
        operation_id: "getPasskeyScript",
        tag: "oidc",
        summary: "The passkey button of the login page's second-factor step (loaded only there, never inline).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "JavaScript.", content: &[("text/javascript", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(GET "/oauth/assets/login.css" => OidcLoginCss, Caller::Anyone, Doc {
        operation_id: "getLoginCss",
        tag: "oidc",
        summary: "The login page's stylesheet (the page has no inline styles or scripts).",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "CSS.", content: &[("text/css", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/oauth/token" => OidcToken, Caller::OidcClient, Doc {
        operation_id: "oidcToken",
        tag: "oidc",
        summary: "Token endpoint (FR-AUTH-001 OIDC): authorization_code (with the PKCE code_verifier) and refresh_token grants.",
        notes: "Confidential clients (apps with a client secret) authenticate with client_secret_basic or client_secret_post; public clients send only client_id. A code is single use and valid 60 seconds; a reused code revokes the session it started. The refresh grant goes through the risk check of /v1/auth/refresh (NFR-SEC-006): a use from a country none of the user's sign-ins came from rotates, or revokes the session (invalid_grant), as the tenant's policy says. Errors are RFC 6749 JSON, not problem details.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::OidcTokenRequest>)] }),
        replies: &[
            Reply { status: 200, description: "Tokens: an EdDSA ID token, an access token for the client, and a refresh token when offline_access was granted.", content: &[("application/json", of::<t::OidcTokenResponse>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
            Reply { status: 400, description: "An RFC 6749 5.2 error: `invalid_request`, `invalid_client` (401), `invalid_grant`, `unsupported_grant_type`.", content: &[("application/json", of::<t::OAuthError>)], headers: &[] },
            Reply { status: 401, description: "An RFC 6749 5.2 error: `invalid_request`, `invalid_client` (401), `invalid_grant`, `unsupported_grant_type`.", content: &[("application/json", of::<t::OAuthError>)], headers: &[] },
            Reply { status: 503, description: "An RFC 6749 5.2 error: `invalid_request`, `invalid_client` (401), `invalid_grant`, `unsupported_grant_type`.", content: &[("application/json", of::<t::OAuthError>)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(GET "/oauth/userinfo" => OidcUserinfo, Caller::OidcUser, Doc {
        operation_id: "oidcUserinfo",
        tag: "oidc",
        summary: "Userinfo (OIDC Core 5.3): the claims of the bearer access token's user; the token is checked for revocation like introspection.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "`sub`, `tid`, and `email`, `email_verified` (scope email), `name` (scope profile).", content: &[("application/json", of::<t::OidcUserinfo>)], headers: &[] },
        ],
        problems: &[401, 503],
    }),
    route!(POST "/oauth/userinfo" => OidcUserinfo, Caller::OidcUser, Doc {
        operation_id: "oidcUserinfoPost",
        tag: "oidc",
        summary: "Userinfo (OIDC Core 5.3): the claims of the bearer access token's user; the token is checked for revocation like introspection.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 200, description: "`sub`, `tid`, and `email`, `email_verified` (scope email), `name` (scope profile).", content: &[("application/json", of::<t::OidcUserinfo>)], headers: &[] },
        ],
        problems: &[401, 503],
    }),
    route!(GET "/oauth/logout" => OidcEndSession, Caller::Anyone, Doc {
        operation_id: "oidcEndSession",
        tag: "oidc",
        summary: "RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): revokes the session of the id_token_hint.",
        notes: "post_logout_redirect_uri must be exactly one of the client's redirect_uris and needs an id_token_hint; otherwise an HTML page says the user is signed out.",
        params: &[
            Param { name: "id_token_hint", at: At::Query, required: false, description: "An ID token of this provider (may be expired).", schema: text },
            Param { name: "post_logout_redirect_uri", at: At::Query, required: false, description: "Where to go after logout.", schema: text },
            Param { name: "client_id", at: At::Query, required: false, description: "The client, checked against the hint.", schema: text },
            Param { name: "state", at: At::Query, required: false, description: "Returned to post_logout_redirect_uri.", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "Signed out.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed out: post_logout_redirect_uri with state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Invalid id_token_hint or post_logout_redirect_uri.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/v1/apps/{id}/client-secret" => AppClientSecret, Caller::Operator, Doc {
        operation_id: "rotateClientSecret",
        tag: "apps",
        summary: "Sets or rotates the app's OIDC client secret, shown once (the app becomes a confidential client; only a keyed hash is stored).",
        notes: "503 while the deployment has no API_KEY_PEPPER secret.",
        params: &[
            Param { name: "id", at: At::Path, required: true, description: "", schema: |_| string().format(Some(SchemaFormat::Custom("uuid".into()))).into() },
        ],
        body: None,
        replies: &[
            Reply { status: 201, description: "The client id and the new secret, shown this once.", content: &[("application/json", of::<t::ClientSecret>)], headers: &[Hdr::Plain { name: "Cache-Control", description: "no-store", schema: text }] },
        ],
        problems: &[401, 403, 404, 503],
    }),
    route!(POST "/oauth/authorize/continue" => OidcLoginContinue, Caller::Anyone, Doc {
        operation_id: "oidcLoginContinue",
        tag: "oidc",
        summary: "Login page: continue to the app after the recovery codes of an enrollment during sign-in were shown (NFR-SEC-003).",
        notes: "A form post of the login page: `csrf` must equal the flow's cookie and the token stored with the flow, else 403. On success the browser is redirected (303) to the client's redirect_uri with `code` and `state`.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::OidcLoginContinueRequest>)] }),
        replies: &[
            Reply { status: 200, description: "Nothing to continue: the password step with an error.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed in: the client's redirect_uri with code and state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Expired or used login flow.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 403, description: "CSRF check failed, or sign-in not possible.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/oauth/logout" => OidcEndSession, Caller::Anyone, Doc {
        operation_id: "oidcEndSessionPost",
        tag: "oidc",
        summary: "RP-initiated logout with a form body (the same parameters as GET).",
        notes: "post_logout_redirect_uri must be exactly one of the client's redirect_uris and needs an id_token_hint; otherwise an HTML page says the user is signed out.",
        params: &[],
        body: Some(Body { required: false, content: &[("application/x-www-form-urlencoded", of::<t::OidcEndSessionPostRequest>)] }),
        replies: &[
            Reply { status: 200, description: "Signed out.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 303, description: "Signed out: post_logout_redirect_uri with state.", content: &[], headers: &[Hdr::Plain { name: "Location", description: "Where the browser goes next.", schema: text }] },
            Reply { status: 400, description: "Invalid id_token_hint or post_logout_redirect_uri.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(GET "/account/sign-ins/revoke" => SignInRevokePage, Caller::Anyone, Doc {
        operation_id: "signInRevokePage",
        tag: "identity",
        summary: "The page of the link in a new-sign-in notice (NFR-SEC-006): says when, from what device and where the sign-in was, with a button that signs out the session it started.",
        notes: "Opening the link changes nothing (mail scanners fetch links); only the form's POST signs out. An unknown, used, expired or malformed token answers the same page, 404. HTML with the login page's strict Content-Security-Policy, never framed or cached.",
        params: &[
            Param { name: "token", at: At::Query, required: true, description: "The single-use token of the notice's link.", schema: text },
        ],
        body: None,
        replies: &[
            Reply { status: 200, description: "The sign-in and the sign-out button.", content: &[("text/html", text)], headers: &[] },
            Reply { status: 404, description: "The link is no longer valid (unknown, used, expired or malformed: one answer).", content: &[("text/html", text)], headers: &[] },
            Reply { status: 503, description: "Storage unavailable.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(POST "/account/sign-ins/revoke" => SignInRevoke, Caller::Anyone, Doc {
        operation_id: "signInRevoke",
        tag: "identity",
        summary: "Signs out the session of a new-sign-in notice (NFR-SEC-006): the token is used once; the session's refresh tokens are revoked and its access tokens are inactive at introspection at once.",
        notes: "The form post of the link's page; the token in the body is the capability (no cookie). Works whatever the tenant's or the user's status. A second post, or an unknown, expired or malformed token, answers the no-longer-valid page and changes nothing. Audited `session.revoke` with reason `notice_link`.",
        params: &[],
        body: Some(Body { required: true, content: &[("application/x-www-form-urlencoded", of::<t::SignInRevokeRequest>)] }),
        replies: &[
            Reply { status: 200, description: "Signed out (or the session had ended already).", content: &[("text/html", text)], headers: &[] },
            Reply { status: 404, description: "The link is no longer valid (unknown, used, expired or malformed: one answer).", content: &[("text/html", text)], headers: &[] },
            Reply { status: 503, description: "Storage unavailable.", content: &[("text/html", text)], headers: &[] },
        ],
        problems: &[],
    }),
    route!(OPTIONS "/oauth/token" => OidcPreflight, Caller::Preflight, Doc {
        operation_id: "oidcTokenPreflight",
        tag: "oidc",
        summary: "CORS preflight for browser clients; the answer itself is readable only by an origin in the client's allowed_origins.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 204, description: "The methods and headers a page may send.", content: &[], headers: &[] },
        ],
        problems: &[],
    }),
    route!(OPTIONS "/oauth/userinfo" => OidcPreflight, Caller::Preflight, Doc {
        operation_id: "oidcUserinfoPreflight",
        tag: "oidc",
        summary: "CORS preflight for browser clients; the answer itself is readable only by an origin in the client's allowed_origins.",
        notes: "",
        params: &[],
        body: None,
        replies: &[
            Reply { status: 204, description: "The methods and headers a page may send.", content: &[], headers: &[] },
        ],
        problems: &[],
    }),
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

/// Finds the route for a method and path. `HEAD` is served by the `GET` route.
///
/// A scan of [`ROUTES`] that allocates nothing but the parameters, rather than a prefix tree:
/// where an instance serves one request (Spin), a tree would be built for every request, which
/// cost more than the rest of a hot route's work (bench/RESULTS.md). Every template is made of
/// whole segments, each literal or one `{name}` parameter matching a non-empty segment. Of the
/// templates that match, the one whose first parameter comes latest wins (a literal segment
/// before a parameter at the same place: `/v1/tenants/me` before `/v1/tenants/{id}`), as in a
/// prefix tree that tries literals first and backtracks.
pub fn find(method: &Method, path: &str) -> Match {
    find_in(ROUTES, method, path)
}

/// [`find`] in `routes`.
fn find_in(routes: &'static [Route], method: &Method, path: &str) -> Match {
    let mut best: Option<(u64, &'static str)> = None;
    let bytes = path.as_bytes();
    let slashes = bytes.iter().filter(|&&b| b == b'/').count();
    for r in routes {
        if !r.shape.admits(r.path, slashes, bytes) {
            continue;
        }
        if let Some(rank) = rank(r.path, path) {
            if best.is_none_or(|(b, _)| rank < b) {
                best = Some((rank, r.path));
            }
        }
    }
    let Some((_, template)) = best else {
        return Match::NotFound;
    };
    let want = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let mut same = routes.iter().filter(|r| r.path == template);
    match same.clone().find(|r| r.method == *want) {
        Some(route) => Match::Found {
            route,
            params: params(template, path),
        },
        None => Match::MethodNotAllowed {
            path: template,
            allow: same.by_ref().map(|r| r.method.clone()).collect(),
        },
    }
}

/// Whether `template` matches `path`, and if so its rank: one bit per segment, most significant
/// first, set where the template has a parameter (lower ranks win).
fn rank(template: &str, path: &str) -> Option<u64> {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    let mut rank = 0u64;
    let mut bit = 1u64 << 63;
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(rank),
            (Some(ts), Some(ps)) => {
                if ts.starts_with('{') {
                    if ps.is_empty() {
                        return None;
                    }
                    rank |= bit;
                } else if ts != ps {
                    return None;
                }
                bit >>= 1;
            }
            _ => return None,
        }
    }
}

/// The parameters of `path` under `template` (which matches it), by name.
fn params(template: &str, path: &str) -> Vec<(String, String)> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), p.to_owned()))
        })
        .collect()
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

    /// Literal segments win over parameters at the same place, whatever the order of the table,
    /// and a literal that does not match falls back to the parameter (the table has no such
    /// overlap today; this one does).
    #[test]
    fn a_literal_segment_wins_over_a_parameter() {
        static OVERLAP: &[Route] = &[
            hidden!(GET "/t/{id}/users" => Liveness, Caller::Anyone),
            hidden!(GET "/t/{id}/{kind}" => Health, Caller::Anyone),
            hidden!(GET "/t/me/users" => OpenApi, Caller::Anyone),
            hidden!(POST "/t/me/{kind}" => DevPanic, Caller::Anyone),
        ];
        let found = |path: &str| match find_in(OVERLAP, &Method::GET, path) {
            Match::Found { route, params } => Some((route.path, params)),
            Match::MethodNotAllowed { path, .. } => Some((path, Vec::new())),
            Match::NotFound => None,
        };
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(found("/t/me/users"), Some(("/t/me/users", vec![])));
        assert_eq!(
            found("/t/7/users"),
            Some(("/t/{id}/users", vec![p("id", "7")]))
        );
        assert_eq!(found("/t/me/x"), Some(("/t/me/{kind}", vec![])));
        assert_eq!(
            found("/t/7/x"),
            Some(("/t/{id}/{kind}", vec![p("id", "7"), p("kind", "x")]))
        );
        assert_eq!(found("/t//users"), None);
    }

    /// The segments of a template: `None` for a parameter.
    fn shape(template: &str) -> Vec<Option<&str>> {
        template
            .split('/')
            .map(|s| (!s.starts_with('{')).then_some(s))
            .collect()
    }

    #[test]
    fn no_two_templates_match_the_same_paths() {
        let mut seen = std::collections::HashMap::new();
        for r in ROUTES {
            if let Some(other) = seen.insert(shape(r.path), r.path) {
                assert_eq!(other, r.path, "two templates of one shape");
            }
        }
    }

    /// The scan finds what a prefix tree (matchit, what the router used before) finds, over
    /// every template filled in with a plain value and with every literal of the table at each
    /// parameter (where literal-first priority decides), and over near misses.
    #[test]
    fn the_scan_agrees_with_a_prefix_tree() {
        let mut tree = matchit::Router::new();
        let mut templates: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        templates.dedup();
        for t in &templates {
            // Same-path routes are adjacent or not; a repeated insert is the one error expected.
            let _ = tree.insert(*t, *t);
        }
        let words: std::collections::BTreeSet<&str> = templates
            .iter()
            .flat_map(|t| t.split('/'))
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .collect();
        let mut paths = vec![
            "/".to_owned(),
            String::new(),
            "//health".to_owned(),
            "/health//".to_owned(),
        ];
        for t in &templates {
            let segs: Vec<&str> = t.split('/').collect();
            let plain: Vec<String> = segs
                .iter()
                .map(|s| {
                    if s.starts_with('{') {
                        "x1".to_owned()
                    } else {
                        (*s).to_owned()
                    }
                })
                .collect();
            paths.push(plain.join("/"));
            paths.push(format!("{}/", plain.join("/")));
            paths.push(format!("{}/extra", plain.join("/")));
            for (i, s) in segs.iter().enumerate() {
                if s.starts_with('{') {
                    let mut empty = plain.clone();
                    empty[i] = String::new();
                    paths.push(empty.join("/"));
                    for w in &words {
                        let mut with = plain.clone();
                        with[i] = (*w).to_owned();
                        paths.push(with.join("/"));
                    }
                }
            }
        }
        assert!(paths.len() > 1_000, "{} paths", paths.len());
        for path in &paths {
            let by_tree = tree.at(path).ok().map(|m| {
                let params: Vec<(String, String)> = m
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (*m.value, params)
            });
            let by_scan = match find(&Method::OPTIONS, path) {
                Match::Found { route, params } => Some((route.path, params)),
                Match::MethodNotAllowed { path: t, .. } => Some((t, params(t, path))),
                Match::NotFound => None,
            };
            assert_eq!(by_scan, by_tree, "{path}");
        }
    }
}
