//! Flag routes (FR-FLAG-001, FR-FLAG-002): operators configure a tenant's flags; managed apps
//! evaluate them through the OpenFeature Remote Evaluation Protocol (OFREP) or read the plain
//! snapshot. The read routes touch no D1 in the common case (see [`crate::flags`]).

use std::rc::Rc;

use ::http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::{json, ApiError, Ctx, ProblemType, Request, Response};
use crate::apps::{AppKeyPrincipal, KeyKind};
use crate::audit::Actor;
use crate::auth::OperatorPrincipal;
use crate::delivery::{self, TenantAccessError};
use crate::flags::eval::TARGETING_KEY;
use crate::flags::limit;
use crate::flags::model::{Rule, MAX_DESCRIPTION_LEN, MAX_RULES};
use crate::flags::ofrep;
use crate::flags::snapshot::Snapshot;
use crate::flags::PlanFlag;
use crate::flags::{
    self, evaluate, Context, FlagDefinition, FlagKey, FlagRecord, FlagType, InvalidFlag, Resolution,
};
use crate::ports::{Clock, Platform, Secrets};
use crate::signin::UserPrincipal;
use crate::tenants::{Plan, TenantId};

/// The context attribute naming the tenant for an app-wide key.
const TENANT_ATTRIBUTE: &str = "tenantId";

/// Body of `PUT /v1/tenants/{id}/flags/{key}`: a flag definition. Its `type` decides what
/// `value` and every rule's values must be ([`FlagDefinition::new`] checks them, after each rule
/// is parsed on its own so an error names its index).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetFlagRequest {
    /// `boolean`, `string`, `number` or `json` ([`FlagType::parse`]).
    #[serde(rename = "type")]
    flag_type: String,
    /// The value served when enabled and no rule matches.
    value: Value,
    /// Whether it serves (default: on).
    #[serde(default = "default_true")]
    enabled: bool,
    /// Free text for operators, at most 1000 characters.
    description: Option<String>,
    /// The targeting rules, in order, each parsed as a [`Rule`] by the handler.
    #[serde(default)]
    rules: Vec<Value>,
}

fn default_true() -> bool {
    true
}

/// One shape per flag type, each with its typed `value` and rules.
impl PartialSchema for SetFlagRequest {
    fn schema() -> RefOr<Schema> {
        definition_schema(true)
    }
}

/// A flag definition, one shape per flag type; a plan default has no rules.
fn definition_schema(with_rules: bool) -> RefOr<Schema> {
    let shape = |t: FlagType| {
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .property("type", crate::kernel::schema::string_enum(&[t.as_str()]))
            .required("type")
            .property("value", t.value_schema())
            .required("value")
            .property(
                "enabled",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .default(Some(default_true().into())),
            )
            .property(
                "description",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .max_length(Some(MAX_DESCRIPTION_LEN)),
            );
        if !with_rules {
            return object;
        }
        object.property(
            "rules",
            ArrayBuilder::new()
                .items(Ref::from_schema_name(Rule::schema_name(t)))
                .max_items(Some(MAX_RULES))
                .description(Some(
                    "At most 50 rules; the value and rules together at most 16 KiB of \
                     JSON. A tenant holds at most 1,000 flags (422 beyond).",
                )),
        )
    };
    FlagType::ALL
        .into_iter()
        .fold(
            OneOfBuilder::new().description(Some(
                "A flag definition; `value` (and every rule's value) is of the flag's `type`.",
            )),
            |choice, t| choice.item(shape(t)),
        )
        .into()
}

impl ToSchema for SetFlagRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for t in FlagType::ALL {
            schemas.push((Rule::schema_name(t), Rule::schema_of(Some(t)).into()));
        }
        <Rule as ToSchema>::schemas(schemas);
    }
}

/// A flag after a change, with whether the edge already serves it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FlagChange)]
pub(crate) struct FlagChangeResponse {
    #[serde(flatten)]
    flag: FlagRecord,
    /// The tenant's flag-set version after the change.
    set_version: i64,
    /// `synced`, or `pending` when the KV snapshot write failed (the reconciler cron repairs it).
    #[schema(inline)]
    edge: EdgeSync,
}

/// Whether the edge serves a change yet.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum EdgeSync {
    /// The tenant's snapshot is published.
    Synced,
    /// The snapshot write failed; the reconciler cron publishes it.
    Pending,
}

fn tenant_param<P: Platform>(ctx: &Ctx<'_, P>) -> Result<TenantId, ApiError> {
    // An id that is not a UUID names no tenant.
    TenantId::parse(ctx.param("id")).map_err(|_| ApiError::not_found("No such tenant."))
}

fn key_param<P: Platform>(ctx: &Ctx<'_, P>) -> Result<FlagKey, ApiError> {
    FlagKey::parse(ctx.param("key")).map_err(|e| ApiError::invalid_field("key", e.to_string()))
}

/// `GET /v1/tenants/{id}/flags`: the tenant's flags from D1 (operators, auditors).
pub(super) async fn list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let tenant = tenant_param(ctx)?;
    ctx.tenant_id = Some(tenant.as_str().to_owned());
    let set = flags::list_flags(ctx.platform, &tenant)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let mut resp = json::response(StatusCode::OK, &set)?;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /v1/tenant/flags`: the signed-in owner's or admin's own tenant's flags, read-only
/// (FR-FLAG-001: operators configure them).
pub(super) async fn own_list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: UserPrincipal,
) -> Result<Response, ApiError> {
    let tenant = TenantId::parse(&principal.claims.tid)
        .map_err(|_| ApiError::internal("an access token names a malformed tenant"))?;
    let set = flags::list_flags(ctx.platform, &tenant)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let mut resp = json::response(StatusCode::OK, &set)?;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `PUT /v1/tenants/{id}/flags/{key}`: creates (201) or replaces (200) a flag, overriding the
/// plan default; publishes the tenant's snapshot.
pub(super) async fn set<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let tenant = tenant_param(ctx)?;
    ctx.tenant_id = Some(tenant.as_str().to_owned());
    let key = key_param(ctx)?;
    let def = flag_definition(req)?;
    let change = flags::set_flag(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &tenant,
        &key,
        &def,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let edge = edge(ctx, &change.edge);
    let Some(flag) = change.flag else {
        return Err(ApiError::internal("a set flag came back empty"));
    };
    let status = if change.created_or_reverted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json::response(
        status,
        &FlagChangeResponse {
            flag,
            set_version: change.set_version,
            edge,
        },
    )
}

/// The checked definition of a `PUT /v1/tenants/{id}/flags/{key}` body; a rule that does not
/// parse is named by its index.
pub(super) fn flag_definition(req: &Request) -> Result<FlagDefinition, ApiError> {
    let body: SetFlagRequest = json::parse_body(req)?;
    let flag_type = FlagType::parse(&body.flag_type)
        .map_err(|e| ApiError::invalid_field("type", e.to_string()))?;
    let mut rules = Vec::with_capacity(body.rules.len());
    for (i, raw) in body.rules.into_iter().enumerate() {
        let rule: Rule = serde_json::from_value(raw)
            .map_err(|e| ApiError::invalid_field(&format!("rules[{i}]"), e.to_string()))?;
        rules.push(rule);
    }
    FlagDefinition::new(flag_type, body.value, body.enabled, body.description, rules)
        .map_err(flag_problem)
}

/// `DELETE /v1/tenants/{id}/flags/{key}`: removes the tenant's flag; 204, or 200 with the plan
/// default the flag reverted to.
pub(super) async fn remove<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let tenant = tenant_param(ctx)?;
    ctx.tenant_id = Some(tenant.as_str().to_owned());
    let key = key_param(ctx)?;
    let change = flags::remove_flag(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &tenant,
        &key,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    let edge = edge(ctx, &change.edge);
    match change.flag {
        Some(flag) => json::response(
            StatusCode::OK,
            &FlagChangeResponse {
                flag,
                set_version: change.set_version,
                edge,
            },
        ),
        None => {
            let mut resp = Response::new(Vec::new());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            Ok(resp)
        }
    }
}

/// Body of `PUT /v1/plans/{plan}/flags/{key}`: a definition without rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetPlanFlagRequest {
    #[serde(rename = "type")]
    flag_type: String,
    value: Value,
    #[serde(default = "default_true")]
    enabled: bool,
    description: Option<String>,
}

impl PartialSchema for SetPlanFlagRequest {
    fn schema() -> RefOr<Schema> {
        definition_schema(false)
    }
}

impl ToSchema for SetPlanFlagRequest {}

/// Body of `GET /v1/plans/{plan}/flags`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListPlanFlagsResponse)]
pub(super) struct PlanFlags {
    /// The plan.
    #[schema(value_type = String)]
    plan: Plan,
    /// Its default flags, by key.
    flags: Vec<PlanFlag>,
}

/// A refused definition: 400 naming the field, or 422 for one over a size limit.
fn flag_problem(e: InvalidFlag) -> ApiError {
    if !e.over_limit {
        return ApiError::invalid_field(&e.field, e.reason);
    }
    ApiError::new(
        ProblemType::BusinessRule,
        format!("{}: {}.", e.field, e.reason),
    )
    .with_extension(
        "errors",
        serde_json::json!([{ "field": e.field, "message": e.reason }]),
    )
}

fn plan_param<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Plan, ApiError> {
    Plan::parse(ctx.param("plan")).map_err(|_| ApiError::not_found("No such plan."))
}

/// `GET /v1/plans/{plan}/flags`: the flags every tenant of the plan starts with.
pub(super) async fn plan_list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let plan = plan_param(ctx)?;
    let flags = flags::list_plan_flags(ctx.platform, &plan)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &PlanFlags { plan, flags })
}

/// `PUT /v1/plans/{plan}/flags/{key}`: sets a plan default; the plan's tenants without an
/// override follow.
pub(super) async fn plan_set<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let plan = plan_param(ctx)?;
    let key = key_param(ctx)?;
    let body: SetPlanFlagRequest = json::parse_body(req)?;
    let flag_type = FlagType::parse(&body.flag_type)
        .map_err(|e| ApiError::invalid_field("type", e.to_string()))?;
    let def = FlagDefinition::new(
        flag_type,
        body.value,
        body.enabled,
        body.description,
        vec![],
    )
    .map_err(flag_problem)?;
    let change = flags::set_plan_flag(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &plan,
        &key,
        def.flag_type,
        &def.value,
        def.enabled,
        def.description.as_deref(),
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &change)
}

/// `DELETE /v1/plans/{plan}/flags/{key}`: removes a plan default and the plan's tenants' flags
/// that followed it.
pub(super) async fn plan_remove<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    operator: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let plan = plan_param(ctx)?;
    let key = key_param(ctx)?;
    let change = flags::remove_plan_flag(
        ctx.platform,
        &Actor::operator(&operator.user_id),
        &plan,
        &key,
        &ctx.request_id,
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    json::response(StatusCode::OK, &change)
}

fn edge<P: Platform>(
    ctx: &Ctx<'_, P>,
    published: &Result<(), crate::flags::PublishError>,
) -> EdgeSync {
    match published {
        Ok(()) => EdgeSync::Synced,
        Err(e) => {
            ctx.log(
                "warn",
                "flag snapshot not published; the reconciler will",
                None,
                &e.to_string(),
            );
            EdgeSync::Pending
        }
    }
}

// ------------------------------------------------------------------------------------------
// Delivery: OFREP and the plain snapshot
// ------------------------------------------------------------------------------------------

/// An OFREP request problem: problem+json carrying OFREP's `errorCode` and `errorDetails` (and
/// the flag `key` for a single evaluation), so OFREP providers read it as their error shape.
fn ofrep_error(
    status: StatusCode,
    code: &'static str,
    details: String,
    key: Option<&str>,
) -> ApiError {
    let mut e = ApiError::invalid_input(details.clone())
        .with_status(status)
        .with_extension("errorCode", code.into())
        .with_extension("errorDetails", details.into());
    if status == StatusCode::NOT_FOUND {
        e = ApiError::new(
            ProblemType::NotFound,
            format!("No flag `{}`.", key.unwrap_or("")),
        )
        .with_extension("errorCode", code.into());
    }
    if let Some(k) = key {
        e = e.with_extension("key", k.into());
    }
    e
}

/// Body of the OFREP evaluations (`POST /ofrep/v1/evaluate/flags[/{key}]`), which may be
/// empty; other members are ignored.
#[derive(Debug, ToSchema)]
pub(crate) struct OfrepRequest {
    /// The evaluation context: `targetingKey` (a string), `tenantId` (for app-wide keys) and any
    /// attributes.
    #[schema(value_type = Option<Object>)]
    context: Option<Context>,
}

/// The evaluation context of an OFREP request body (`{"context": {...}}`, or no body).
pub(super) fn ofrep_context(req: &Request, key: Option<&str>) -> Result<Context, ApiError> {
    let body = req.body();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Context::new());
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        ofrep_error(
            StatusCode::BAD_REQUEST,
            "PARSE_ERROR",
            format!("The body is not JSON: {e}."),
            key,
        )
    })?;
    let invalid = |why: &str| {
        ofrep_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
            why.to_owned(),
            key,
        )
    };
    let Value::Object(mut top) = parsed else {
        return Err(invalid(
            "The body must be a JSON object {\"context\": {...}}.",
        ));
    };
    let request = OfrepRequest {
        context: match top.remove("context") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(invalid("`context` must be a JSON object.")),
        },
    };
    let ctx = request.context.unwrap_or_default();
    if ctx.get(TARGETING_KEY).is_some_and(|v| !v.is_string()) {
        return Err(invalid("`targetingKey` must be a string."));
    }
    Ok(ctx)
}

/// The KV keys a flag route will read for a key of `tenant` (`None`: app-wide), before the
/// request is checked: the tenant's snapshot, and for an app-wide key the marker of the tenant
/// the request names (`tenant` in the query, else `context.tenantId` in an OFREP body). Read in
/// one batch with the key's markers ([`crate::edge::prefetch`]); the route itself decides.
pub(super) fn keys_read_next(
    req: &Request,
    tenant: Option<&TenantId>,
) -> Vec<(String, Option<u32>)> {
    let named = match tenant {
        Some(_) => None,
        None => named_tenant(req),
    };
    let Some(tenant) = tenant.or(named.as_ref()) else {
        return Vec::new();
    };
    let mut keys = vec![(
        crate::flags::snapshot::snapshot_key(tenant),
        Some(crate::flags::snapshot::KV_CACHE_TTL_SECS),
    )];
    if named.is_some() {
        keys.push((crate::tenants::edge_marker_key(tenant), None));
    }
    keys
}

/// The tenant a request for an app-wide key names, read loosely (a malformed request names none).
fn named_tenant(req: &Request) -> Option<TenantId> {
    let query = req.uri().query().unwrap_or("");
    if let Some((_, v)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "tenant") {
        return TenantId::parse(&v).ok();
    }
    #[derive(serde::Deserialize)]
    struct Body {
        context: Option<Named>,
    }
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(rename = "tenantId")]
        tenant_id: Option<String>,
    }
    let body: Body = serde_json::from_slice(req.body()).ok()?;
    TenantId::parse(&body.context?.tenant_id?).ok()
}

/// The snapshot a key may read ([`crate::delivery`]); the tenant goes to the request's log
/// line. An app-wide key that names no tenant gets OFREP's `INVALID_CONTEXT`.
async fn tenant_snapshot<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    principal: &AppKeyPrincipal,
    named: Option<&str>,
    key: Option<&str>,
) -> Result<Rc<Snapshot>, ApiError> {
    let refused = |e: TenantAccessError| {
        match e {
        TenantAccessError::TenantRequired => ofrep_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
            "An app-wide API key needs the tenant: `tenantId` in the context (or `tenant` in the query).".to_owned(),
            key,
        ),
        e => ApiError::from(&e),
    }
    };
    let tenant = delivery::tenant_for_key(ctx.platform, principal, named)
        .await
        .map_err(refused)?;
    ctx.tenant_id = Some(tenant.as_str().to_owned());
    delivery::snapshot_for_key(ctx.platform, principal, &tenant)
        .await
        .map_err(refused)
}

/// ERR-RATE-429: the per-isolate guard of [`crate::flags::limit`], per key.
fn rate_limit<P: Platform>(ctx: &Ctx<'_, P>, principal: &AppKeyPrincipal) -> Result<(), ApiError> {
    let per_second = ctx
        .platform
        .secrets()
        .get("FLAGS_RATE_LIMIT_PER_SECOND")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(limit::DEFAULT_PER_SECOND);
    let now = ctx.platform.clock().now_ms();
    limit::take(principal.key_id.as_str(), now, per_second).map_err(|retry| {
        let mut e = ApiError::new(
            ProblemType::RateLimited,
            "Too many flag requests for this API key; retry later.",
        );
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            e = e.with_header(header::RETRY_AFTER, v);
        }
        e
    })
}

/// The CORS headers of a response to a browser: only a browser key, from one of its app's
/// allowed origins, gets them (and a browser key from any other origin is refused). Server keys
/// get none, so a page cannot read their responses.
async fn cors<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    principal: &AppKeyPrincipal,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(None);
    };
    if principal.kind != KeyKind::Browser {
        return Ok(None);
    }
    let allowed = crate::apps::allowed_origins(ctx.platform, &principal.app_id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let o = origin.to_str().unwrap_or("");
    if allowed.iter().any(|a| a.as_str() == o) {
        Ok(Some(origin.clone()))
    } else {
        Err(ApiError::new(
            ProblemType::AccessDenied,
            "This origin is not among the app's allowed origins.",
        )
        .with_extension("reason", "origin_not_allowed".into()))
    }
}

fn add_cors(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    if let Some(o) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, X-Request-Id"),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// `OPTIONS` on the OFREP routes: the CORS preflight. A preflight carries no key, so it is
/// answered for any origin; the request that follows is checked against the key's app.
pub(super) fn preflight(req: &Request) -> Result<Response, ApiError> {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-api-key, if-none-match"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    Ok(resp)
}

/// Whether `If-None-Match` lists `etag` (or `*`); weak tags compare by their opaque part.
fn matches_if_none_match(req: &Request, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn not_modified(etag: &str, origin: Option<HeaderValue>) -> Response {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    add_cors(resp.headers_mut(), origin);
    resp
}

fn with_delivery_headers(
    mut resp: Response,
    etag: Option<&str>,
    origin: Option<HeaderValue>,
) -> Response {
    let h = resp.headers_mut();
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert(header::ETAG, tag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    add_cors(h, origin);
    resp
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the tenant evaluated for the context, with an
/// `ETag`; `If-None-Match` with the current tag answers 304 without evaluating.
pub(super) async fn evaluate_all<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    rate_limit(ctx, &principal)?;
    let origin = cors(ctx, req, &principal).await?;
    let context = ofrep_context(req, None)?;
    let named = context.get(TENANT_ATTRIBUTE).and_then(Value::as_str);
    let snap = tenant_snapshot(ctx, &principal, named, None).await?;
    let etag = ofrep::bulk_etag(&snap, &context);
    if matches_if_none_match(req, &etag) {
        return Ok(not_modified(&etag, origin));
    }
    let body = ofrep::bulk_body(&snap, &context)
        .map_err(|e| ApiError::internal(format!("cannot serialise an evaluation: {e}")))?;
    let resp = json::raw(StatusCode::OK, body, "application/json");
    Ok(with_delivery_headers(resp, Some(&etag), origin))
}

/// `POST /ofrep/v1/evaluate/flags/{key}`: one flag evaluated for the context; 404
/// `FLAG_NOT_FOUND` for an unknown key, 400 with OFREP's error code for a context that does not
/// allow the evaluation.
pub(super) async fn evaluate_one<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    rate_limit(ctx, &principal)?;
    let origin = cors(ctx, req, &principal).await?;
    let key = ctx.param("key").to_owned();
    let context = ofrep_context(req, Some(&key))?;
    let named = context.get(TENANT_ATTRIBUTE).and_then(Value::as_str);
    let snap = tenant_snapshot(ctx, &principal, named, Some(&key)).await?;
    let Some(flag) = snap.flag(&key) else {
        return Err(ofrep_error(
            StatusCode::NOT_FOUND,
            "FLAG_NOT_FOUND",
            format!("No flag `{key}`."),
            Some(&key),
        ));
    };
    let resolution = evaluate(flag, &context);
    if let Resolution::Error(e) = &resolution {
        return Err(ofrep_error(
            StatusCode::BAD_REQUEST,
            e.code(),
            e.details(),
            Some(&key),
        ));
    }
    let resp = json::response(StatusCode::OK, &ofrep::evaluation(&key, resolution))?;
    Ok(with_delivery_headers(resp, None, origin))
}

/// Body of `GET /v1/flags`: the tenant's flag definitions.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FlagSnapshot)]
pub(crate) struct SnapshotResponse<'a> {
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: &'a TenantId,
    /// The flag-set version (also the `ETag`).
    version: i64,
    /// The flags, by key.
    flags: &'a [crate::flags::Flag],
}

/// `GET /v1/flags?tenant=`: the tenant's flag definitions for apps that evaluate locally, with
/// an `ETag` (the flag-set version). Server keys only: the rules may name users.
pub(super) async fn snapshot<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    principal: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    rate_limit(ctx, &principal)?;
    if principal.kind == KeyKind::Browser {
        return Err(ApiError::new(
            ProblemType::AccessDenied,
            "Browser keys may only evaluate flags (OFREP); the definitions are for server keys.",
        )
        .with_extension("reason", "browser_key".into()));
    }
    let mut named = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "tenant" => named = Some(v.into_owned()),
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "is not a parameter of this route (tenant)",
                ))
            }
        }
    }
    let snap = tenant_snapshot(ctx, &principal, named.as_deref(), None).await?;
    let etag = format!("\"{}\"", snap.version);
    if matches_if_none_match(req, &etag) {
        return Ok(not_modified(&etag, None));
    }
    let resp = json::response(
        StatusCode::OK,
        &SnapshotResponse {
            tenant_id: &snap.tenant_id,
            version: snap.version,
            flags: &snap.flags,
        },
    )?;
    Ok(with_delivery_headers(resp, Some(&etag), None))
}
