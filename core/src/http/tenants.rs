//! Operator routes for tenants (UC-PROV-001, UC-TENANT-SUSPEND, UC-OPS-TENANT-DELETE;
//! FR-OPS-001, FR-OPS-002): request parsing, the tenants service, responses.

use ::http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::reply::Edge;
use super::{json, ApiError, Ctx, Request, Response};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::kernel::Links;
use crate::ports::Platform;
use crate::tenants::{
    self, configured_base_url, EdgeSync, Email, IdempotencyKey, ListTenants, Plan, ProvisionTenant,
    StatusChange, SuspensionReason, Tenant, TenantDomain, TenantId, TenantName, TenantStatus,
    UpdateTenant,
};

/// Body of `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProvisionTenantRequest {
    /// Surrounding whitespace is trimmed; then 1 to 200 characters, no control characters.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,198}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    name: String,
    /// 3 to 63 of a-z, 0-9 and -, starting and ending with a letter or digit (case-folded,
    /// surrounding whitespace trimmed).
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9][A-Za-z0-9-]{1,61}[A-Za-z0-9][\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    domain: String,
    /// A plan name (1 to 64 of a-z, 0-9, _ and -; case-folded, surrounding whitespace trimmed).
    /// Unknown plans are refused with 422.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_-]{1,64}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#,
        examples("free", "pro", "enterprise")
    )]
    plan: String,
    /// The owner's email address; the owner is invited to it.
    #[schema(format = Email)]
    owner_email: String,
    /// Ids of the managed apps to enable for the tenant; each must exist and be active.
    #[serde(default)]
    #[schema(max_items = 20)]
    apps: Vec<String>,
}

/// Body of `PATCH /v1/tenants/{id}`: the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTenantRequest {
    /// Surrounding whitespace is trimmed; then 1 to 200 characters, no control characters.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,198}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    name: Option<String>,
    /// A plan name (1 to 64 of a-z, 0-9, _ and -; case-folded, surrounding whitespace trimmed).
    /// Unknown plans are refused with 422.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_-]{1,64}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#,
        examples("free", "pro", "enterprise")
    )]
    plan: Option<String>,
    /// Refuse with 409 unless the tenant is at this version.
    #[serde(default, deserialize_with = "json::opt_integral")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    expected_version: Option<i64>,
}

/// Body of `POST /v1/tenants/{id}/suspend` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SuspendTenantRequest {
    /// Surrounding whitespace is trimmed; then 1 to 500 characters, no control characters
    /// except line breaks.
    #[schema(
        pattern = r#"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f](?:[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]{0,498}[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#
    )]
    reason: Option<String>,
}

/// One page of tenants.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantPage)]
pub(super) struct TenantListResponse {
    /// The tenants of this page.
    items: Vec<Tenant>,
    /// The `cursor` of the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A tenant after a status change, with whether the edge already sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantStatusChange)]
pub(super) struct StatusChangeResponse {
    /// The tenant afterwards.
    tenant: Tenant,
    /// False when the tenant already was in that state.
    changed: bool,
    /// pending: the edge marker write failed; repeat the call.
    #[schema(inline)]
    edge: Edge,
}

/// `POST /v1/tenants`: tenant, owner invitation, plan defaults and apps in one atomic write.
pub(super) async fn provision<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let body: ProvisionTenantRequest = json::parse_body(req)?;
    let cmd = ProvisionTenant {
        name: TenantName::parse(&body.name)
            .map_err(|e| ApiError::invalid_field("name", e.to_string()))?,
        domain: TenantDomain::parse(&body.domain)
            .map_err(|e| ApiError::invalid_field("domain", e.to_string()))?,
        plan: Plan::parse(&body.plan)
            .map_err(|e| ApiError::invalid_field("plan", e.to_string()))?,
        owner_email: Email::parse(&body.owner_email)
            .map_err(|e| ApiError::invalid_field("owner_email", e.to_string()))?,
        apps: body.apps,
    };
    let idempotency = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| IdempotencyKey::parse(s).ok())
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "Idempotency-Key",
                        "must be 1 to 255 printable characters",
                    )
                })?,
        ),
    };
    let links = mail_links(ctx, req)?;
    let outcome = tenants::provision(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        cmd,
        idempotency,
        &ctx.request_id,
        &links,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    ctx.tenant_id = Some(outcome.provisioned.tenant.id.as_str().to_owned());
    if let Some(e) = &outcome.mail_error {
        ctx.log("warn", "invitation mail failed", None, &e.to_string());
    }
    let mut resp = json::response(StatusCode::CREATED, &outcome.provisioned)?;
    let location = format!("/v1/tenants/{}", outcome.provisioned.tenant.id.as_str());
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if outcome.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// `GET /v1/tenants?q=&status=&cursor=&limit=`.
pub(super) async fn list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let mut query = ListTenants::default();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "q" => query.q = Some(v.into_owned()),
            "status" => {
                query.status = Some(
                    TenantStatus::parse(&v)
                        .map_err(|e| ApiError::invalid_field("status", e.to_string()))?,
                );
            }
            "cursor" => query.cursor = Some(v.into_owned()),
            "limit" => {
                query.limit = Some(
                    v.parse()
                        .map_err(|_| ApiError::invalid_field("limit", "must be an integer"))?,
                );
            }
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown query parameter (q, status, cursor, limit)",
                ));
            }
        }
    }
    let page = tenants::list(ctx.platform, &query)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &TenantListResponse {
            items: page.items,
            next_cursor: page.next_cursor,
        },
    )
}

/// `GET /v1/tenants/{id}`.
pub(super) async fn get<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = tenant_id(ctx)?;
    let tenant = tenants::get(ctx.platform, &id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &tenant)
}

/// `GET /v1/tenant`: the signed-in owner's or admin's own tenant (its name, domain, plan and
/// status), for the tenant console.
pub(super) async fn own<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    user: crate::signin::UserPrincipal,
) -> Result<Response, ApiError> {
    let id = TenantId::parse(&user.claims.tid)
        .map_err(|_| ApiError::not_found("No tenant has this id."))?;
    let tenant = tenants::get(ctx.platform, &id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &tenant)
}

/// `PATCH /v1/tenants/{id}` `{name?, plan?, expected_version?}`.
pub(super) async fn update<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = tenant_id(ctx)?;
    let body: UpdateTenantRequest = json::parse_body(req)?;
    let change = UpdateTenant {
        name: body
            .name
            .map(|n| {
                TenantName::parse(&n).map_err(|e| ApiError::invalid_field("name", e.to_string()))
            })
            .transpose()?,
        plan: body
            .plan
            .map(|p| Plan::parse(&p).map_err(|e| ApiError::invalid_field("plan", e.to_string())))
            .transpose()?,
        expected_version: body.expected_version,
    };
    let outcome = tenants::update(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        change,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &outcome.tenant)
}

/// `POST /v1/tenants/{id}/suspend` `{reason?}` (FR-OPS-001).
pub(super) async fn suspend<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = tenant_id(ctx)?;
    let body: SuspendTenantRequest = json::parse_optional_body(req)?;
    let reason = body
        .reason
        .map(|r| {
            SuspensionReason::parse(&r)
                .map_err(|e| ApiError::invalid_field("reason", e.to_string()))
        })
        .transpose()?;
    let change = tenants::suspend(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        reason,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    status_change(ctx, StatusCode::OK, change)
}

/// `POST /v1/tenants/{id}/activate` (FR-OPS-001).
pub(super) async fn activate<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = tenant_id(ctx)?;
    let change = tenants::activate(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    status_change(ctx, StatusCode::OK, change)
}

/// `DELETE /v1/tenants/{id}`: 202, pending deletion for 30 days (FR-OPS-002).
pub(super) async fn delete<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = tenant_id(ctx)?;
    let change = tenants::delete(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    status_change(ctx, StatusCode::ACCEPTED, change)
}

/// `POST /v1/tenants/{id}/restore`: back from pending deletion within the grace period.
pub(super) async fn restore<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = tenant_id(ctx)?;
    let change = tenants::restore(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &id,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    status_change(ctx, StatusCode::OK, change)
}

fn status_change<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    status: StatusCode,
    change: StatusChange,
) -> Result<Response, ApiError> {
    ctx.tenant_id = Some(change.tenant.id.as_str().to_owned());
    let edge = match &change.edge {
        EdgeSync::Synced => Edge::Synced,
        EdgeSync::Pending { error } => {
            ctx.log(
                "warn",
                "tenant edge marker not written; repeat the call",
                None,
                &error.to_string(),
            );
            Edge::Pending
        }
    };
    json::response(
        status,
        &StatusChangeResponse {
            tenant: change.tenant,
            changed: change.changed,
            edge,
        },
    )
}

/// The path's tenant id; a malformed id names no tenant (404, like an unknown one).
fn tenant_id<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<TenantId, ApiError> {
    let id = TenantId::parse(ctx.param("id"))
        .map_err(|_| ApiError::not_found("No tenant has this id."))?;
    ctx.tenant_id = Some(id.as_str().to_owned());
    Ok(id)
}

/// The base of links mailed to users and of redirects: `PUBLIC_BASE_URL`. Only in development
/// may it fall back to the origin the request came to; elsewhere a missing `PUBLIC_BASE_URL` is
/// 503 with a log line naming it, because a `Host` header is the client's to choose (a reset
/// link mailed to `evil.example` would hand its token to whoever owns that host).
pub(super) fn link_base<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<String, ApiError> {
    if let Some(base) = configured_base_url(ctx.platform) {
        return Ok(base);
    }
    if super::is_development(ctx) {
        return Ok(request_origin(req));
    }
    Err(ApiError::unavailable(
        "PUBLIC_BASE_URL is not set: routes that mail links or redirect are refused until it is",
    ))
}

/// The page a mailed invitation opens (`?token=`).
pub const INVITATION_PAGE: &str = "/console/account/invitation";
/// The page a mailed password reset opens (`?token=`).
pub const PASSWORD_RESET_PAGE: &str = "/console/account/password-reset";

/// The links mailed to users, under `base`.
pub fn links_under(base: &str) -> Links {
    Links::new(base, INVITATION_PAGE, PASSWORD_RESET_PAGE)
}

/// The links mailed to users, under [`link_base`].
pub(super) fn mail_links<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Links, ApiError> {
    Ok(links_under(&link_base(ctx, req)?))
}

/// `scheme://host` of the request, as the client named it: for the cookie's `Secure` choice and
/// development defaults only, never for a link or a redirect (see [`link_base`]).
pub(super) fn request_origin(req: &Request) -> String {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let scheme = req.uri().scheme_str().unwrap_or("https");
    format!("{scheme}://{host}")
}
