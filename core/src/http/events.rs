//! Billing and audit event routes (API-BILL, API-LOG): ingestion by managed apps
//! (FR-BILL-002, FR-LOG-001), the billing export and usage summary for the external billing
//! system (FR-BILL-003), the auditor's CSV export (FR-LOG-002) and chain verification, plus
//! the development-only blob route the contract suite tampers with.

use ::http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{json as j, Value as Json};
use utoipa::ToSchema;

use super::is_development;
use super::{json, ApiError, Ctx, Request, Response};
use crate::apps::AppKeyPrincipal;
use crate::auth::OperatorPrincipal;
use crate::events::anchor::{AnchorKeys, KeyStatus};
use crate::events::archive::{gzip, unpack, CONTENT_TYPE, GZIP_CONTENT_TYPE};
use crate::events::export;
use crate::events::ingest::{check_tenant, ingest, IngestError, IngestOutcome, Reporter};
use crate::events::model::BillingEvent;
use crate::events::read::{
    self, billing_items, page, streams_after, usage_by_day, Break, ExportedEvent, Period, UsageRow,
};
use crate::kernel::ErrorKind;
use crate::ports::{Blobs, Logger, Platform, StreamId, StreamKind};
use crate::tenants::{self, TenantId};
use crate::time::{format_rfc3339, parse_rfc3339};
use crate::users::admin::TenantActor;

/// `POST /v1/billing/events` (`bill:write`).
pub(super) async fn ingest_billing<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    key: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    ingest_kind(ctx, req, StreamKind::Billing, key).await
}

/// `POST /v1/audit/events` (`log:write`).
pub(super) async fn ingest_audit<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    key: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    ingest_kind(ctx, req, StreamKind::Audit, key).await
}

/// Validates and appends; 202 once durable, with how many events were new.
async fn ingest_kind<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    kind: StreamKind,
    key: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "Idempotency-Key",
                        "must be 1 to 128 printable ASCII characters without spaces",
                    )
                })?,
        ),
    };
    let body: Json = json::parse_json(req)?;
    let reporter = Reporter {
        app_id: key.app_id.as_str().to_owned(),
        tenant_id: key.tenant_id.as_ref().map(|t| t.as_str().to_owned()),
    };
    let out: IngestOutcome = ingest(ctx.platform, kind, &reporter, &body, idempotency_key)
        .await
        .map_err(|e| ingest_problem(&e))?;
    json::response(StatusCode::ACCEPTED, &out)
}

/// The problem of a refused batch: a refused event is named by its index and field.
fn ingest_problem(e: &IngestError) -> ApiError {
    let problem = ApiError::from(e);
    if e.kind() != ErrorKind::Invalid {
        return problem;
    }
    let (index, field) = e.field().unwrap_or((0, "events"));
    let message = match e {
        IngestError::Invalid(inv) => inv.message.clone(),
        other => other.to_string(),
    };
    problem.with_extension(
        "errors",
        j!([{ "index": index, "field": field, "message": message }]),
    )
}

/// The query parameters of the read routes.
#[derive(Debug, Default)]
struct Query {
    tenant: Option<String>,
    period: Period,
    cursor: Option<String>,
    limit: Option<usize>,
    group_by: Option<String>,
    action: Option<String>,
    kind: Option<StreamKind>,
}

/// Parses the query, accepting only the parameters in `allowed`.
fn query(req: &Request, allowed: &[&str]) -> Result<Query, ApiError> {
    let mut q = Query::default();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::invalid_field(
                &k,
                format!("unknown query parameter ({})", allowed.join(", ")),
            ));
        }
        match k.as_ref() {
            "tenant" => q.tenant = Some(token("tenant", &v, 64)?),
            "from" => q.period.from = Some(instant("from", &v)?),
            "to" => q.period.to = Some(instant("to", &v)?),
            "cursor" => q.cursor = Some(token("cursor", &v, 200)?),
            "limit" => {
                q.limit = Some(v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::invalid_field("limit", "must be a positive integer")
                })?);
            }
            "group_by" => q.group_by = Some(v.into_owned()),
            "action" => q.action = Some(token("action", &v, 64)?),
            "kind" => {
                q.kind =
                    Some(StreamKind::parse(&v).ok_or_else(|| {
                        ApiError::invalid_field("kind", "must be audit or billing")
                    })?);
            }
            _ => {}
        }
    }
    if let (Some(f), Some(t)) = (q.period.from, q.period.to) {
        if f >= t {
            return Err(ApiError::invalid_field("to", "must be after from"));
        }
    }
    Ok(q)
}

fn token(field: &str, v: &str, max: usize) -> Result<String, ApiError> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1 to {max} printable ASCII characters"),
        ));
    }
    Ok(v.to_owned())
}

/// An RFC 3339 date-time or unix milliseconds.
fn instant(field: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|ms| *ms >= 0)
        .or_else(|| parse_rfc3339(v))
        .ok_or_else(|| ApiError::invalid_field(field, "must be an RFC 3339 date-time or unix ms"))
}

/// The tenant a `bill:read` request reads: the key's, or the one named by an app-wide key
/// (with the app enabled for it). Another tenant answers 404.
async fn billing_stream<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    key: &crate::apps::AppKeyPrincipal,
    q: &Query,
) -> Result<StreamId, ApiError> {
    let tenant = match (&key.tenant_id, &q.tenant) {
        (Some(bound), Some(named)) if bound.as_str() != named => {
            return Err(ApiError::not_found("No such tenant."))
        }
        (Some(bound), _) => bound.as_str().to_owned(),
        (None, Some(named)) => {
            check_tenant(ctx.platform, key.app_id.as_str(), named, false)
                .await
                .map_err(|e| ingest_problem(&e))?;
            named.clone()
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "tenant",
                "is required with an app-wide key",
            ))
        }
    };
    ctx.tenant_id = Some(tenant.clone());
    Ok(StreamId {
        kind: StreamKind::Billing,
        tenant,
    })
}

/// `GET /v1/billing/events` (`bill:read`, FR-BILL-003): a page of the tenant's billing events
/// in `[from, to)` by `timestamp`, in stream order, with a cursor stable across flushes.
pub(super) async fn export_billing<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    key: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    // The caller first: an anonymous request learns nothing, not even what its query lacks.
    let q = query(req, &["tenant", "from", "to", "cursor", "limit"])?;
    let stream = billing_stream(ctx, &key, &q).await?;
    let after =
        match &q.cursor {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor of this export")
            })?,
        };
    let limit = q.limit.unwrap_or(100).min(1000);
    let (records, next) = page(ctx.platform, &stream, after, q.period, limit, |_| true)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let items = billing_items(records).map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &BillingPage {
            items,
            next_cursor: next.map(|n| n.to_string()),
        },
    )
}

#[cfg(not(target_family = "wasm"))]
pub(super) use batch::EventBatch;

/// The schema of an event batch, for the document (native builds only).
#[cfg(not(target_family = "wasm"))]
mod batch {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use crate::events::model::MAX_BATCH;

    /// The body of `POST /v1/billing/events` and `POST /v1/audit/events`: one event, an array of
    /// events, or `{"events": [...]}`, at most [`MAX_BATCH`] events. The events are read field by
    /// field ([`crate::events::model`]); this type only declares the schema, around the event's.
    pub(in crate::http) struct EventBatch<E>(std::marker::PhantomData<E>);

    impl<E: ToSchema> PartialSchema for EventBatch<E> {
        fn schema() -> RefOr<Schema> {
            let event = || Ref::from_schema_name(E::name());
            let list = || {
                ArrayBuilder::new()
                    .items(event())
                    .min_items(Some(1))
                    .max_items(Some(MAX_BATCH))
            };
            OneOfBuilder::new()
                .item(event())
                .item(list())
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .property("events", list())
                        .required("events"),
                )
                .into()
        }
    }

    impl<E: ToSchema> ToSchema for EventBatch<E> {
        fn name() -> std::borrow::Cow<'static, str> {
            format!("Report{}sRequest", E::name()).into()
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((E::name().into_owned(), E::schema()));
            E::schemas(schemas);
        }
    }
}

/// A page of the billing export.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExportBillingEventsResponse)]
pub(super) struct BillingPage {
    /// The events, in stream order.
    #[schema(value_type = Vec<Object>)]
    items: Vec<ExportedEvent<BillingEvent>>,
    /// Pass back as `cursor` for the next page; null at the end.
    next_cursor: Option<String>,
}

/// The usage summary.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BillingUsageResponse)]
pub(super) struct UsageResponse {
    /// The tenant.
    tenant_id: String,
    /// Only `day`.
    group_by: &'static str,
    /// The period's start, RFC 3339; null when open.
    from: Option<String>,
    /// The period's end (exclusive), RFC 3339; null when open.
    to: Option<String>,
    /// Quantities per UTC day and event type.
    #[schema(inline)]
    items: Vec<UsageRow>,
}

/// `GET /v1/billing/usage` (`bill:read`, BB-BIL-001): quantities per UTC day and event type,
/// summed over exactly the events the export returns for the same period.
pub(super) async fn usage<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    key: AppKeyPrincipal,
) -> Result<Response, ApiError> {
    let q = usage_query(req, &["tenant", "from", "to", "group_by"])?;
    let stream = billing_stream(ctx, &key, &q).await?;
    usage_response(ctx, stream, q.period).await
}

/// `GET /v1/tenants/{id}/usage` (operator or auditor): the summary of [`usage`] for one tenant
/// that exists (404) and is not purged (410), read by the platform's people rather than the
/// tenant's apps.
pub(super) async fn tenant_usage<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let id = TenantId::parse(ctx.param("id"))
        .map_err(|_| ApiError::not_found("No tenant has this id."))?;
    ctx.tenant_id = Some(id.as_str().to_owned());
    let q = usage_query(req, &["from", "to", "group_by"])?;
    tenants::get(ctx.platform, &id)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let stream = StreamId {
        kind: StreamKind::Billing,
        tenant: id.as_str().to_owned(),
    };
    usage_response(ctx, stream, q.period).await
}

/// `GET /v1/tenant/usage` (the tenant's owner or an admin): the summary of [`usage`] for the
/// caller's own tenant, the one their token names, for the tenant console's subscription page.
pub(super) async fn own_usage<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    actor: TenantActor,
) -> Result<Response, ApiError> {
    let q = usage_query(req, &["from", "to", "group_by"])?;
    let stream = StreamId {
        kind: StreamKind::Billing,
        tenant: actor.tenant_id,
    };
    usage_response(ctx, stream, q.period).await
}

/// The query of a usage summary: `group_by` may only be `day`.
fn usage_query(req: &Request, allowed: &[&str]) -> Result<Query, ApiError> {
    let q = query(req, allowed)?;
    if q.group_by.as_deref().is_some_and(|g| g != "day") {
        return Err(ApiError::invalid_field("group_by", "must be day"));
    }
    Ok(q)
}

/// Sums `stream` per UTC day and type over `period` ([`usage_by_day`]).
async fn usage_response<P: Platform>(
    ctx: &Ctx<'_, P>,
    stream: StreamId,
    period: Period,
) -> Result<Response, ApiError> {
    let items = usage_by_day(ctx.platform, &stream, period)
        .await
        .map_err(|e| ApiError::from(&e))?;
    json::response(
        StatusCode::OK,
        &UsageResponse {
            tenant_id: stream.tenant,
            group_by: "day",
            from: period.from.map(format_rfc3339),
            to: period.to.map(format_rfc3339),
            items,
        },
    )
}

/// Default and largest rows per CSV response.
const CSV_PAGE: usize = 10_000;
const CSV_MAX_PAGE: usize = 50_000;

/// `GET /v1/audit/export.csv` (auditor or operator, FR-LOG-002): a page of the audit export
/// ([`crate::events::export`]); when more follow, `X-Next-Cursor` and a `Link: rel="next"` to
/// the next page.
pub(super) async fn export_audit_csv<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let q = query(req, &["tenant", "from", "to", "action", "cursor", "limit"])?;
    let page = export::audit_csv_page(
        ctx.platform,
        &export::CsvRequest {
            tenant: q.tenant,
            period: q.period,
            action: q.action,
            cursor: q.cursor,
            limit: q.limit.unwrap_or(CSV_PAGE).min(CSV_MAX_PAGE),
        },
    )
    .await
    .map_err(|e| ApiError::from(&e))?;
    Ok(csv_response(req, page.csv, page.next))
}

/// The CSV as a download, with `X-Next-Cursor` and a `Link: rel="next"` (the request's query
/// with the new cursor) when a next page follows.
fn csv_response(req: &Request, out: String, next: Option<String>) -> Response {
    let mut resp = json::raw(StatusCode::OK, out.into_bytes(), "text/csv; charset=utf-8");
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-export.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cursor) = next {
        let mut link = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
            if k != "cursor" {
                link.append_pair(&k, &v);
            }
        }
        link.append_pair("cursor", &cursor);
        let link = format!("</v1/audit/export.csv?{}>; rel=\"next\"", link.finish());
        if let (Ok(c), Ok(l)) = (HeaderValue::from_str(&cursor), HeaderValue::from_str(&link)) {
            h.insert("x-next-cursor", c);
            h.insert(header::LINK, l);
        }
    }
    resp
}

/// The chain check's answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VerifyEventChainResponse)]
pub(super) struct VerifyResponse {
    /// True when every link holds.
    ok: bool,
    /// The stream kind checked.
    kind: &'static str,
    /// Streams checked.
    #[schema(value_type = i64)]
    streams: u64,
    /// Records whose hash was recomputed.
    #[schema(value_type = i64)]
    records: u64,
    /// Archive objects checked against the archive index.
    #[schema(value_type = i64)]
    archives: u64,
    /// Archive objects whose anchor was checked and holds; equals archives when ok.
    #[schema(value_type = i64)]
    anchors: u64,
    /// Which key anchors archives here: EVENT_ANCHOR_KEY (configured), the public development
    /// key (development, protects nothing), none (missing: flushes write nothing and anchors
    /// cannot be checked) or one too short to use (invalid).
    #[schema(inline)]
    anchor_key: KeyStatus,
    /// The first broken link; null when ok.
    #[schema(inline)]
    first_break: Option<Break>,
}

/// `GET /v1/audit/verify` (auditor or operator): recomputes the hash chain of one tenant's
/// stream (or every stream of the kind) over `[from, to)`, archives and tail, checks each
/// archive object's anchor, and reports ok or the first broken link. `kind` defaults to
/// `audit`.
pub(super) async fn verify<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    let q = query(req, &["tenant", "from", "to", "kind"])?;
    let kind = q.kind.unwrap_or(StreamKind::Audit);
    let streams = match &q.tenant {
        Some(t) => vec![StreamId {
            kind,
            tenant: t.clone(),
        }],
        None => streams_after(ctx.platform.sql(), kind, "", 10_000)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?,
    };
    let keys = AnchorKeys::load(ctx.platform.secrets());
    let mut resp = VerifyResponse {
        ok: true,
        kind: kind.as_str(),
        streams: 0,
        records: 0,
        archives: 0,
        anchors: 0,
        anchor_key: keys.status(),
        first_break: None,
    };
    for s in &streams {
        let v = read::verify(ctx.platform, s, q.period, &keys)
            .await
            .map_err(|e| ApiError::from(&e))?;
        resp.streams += 1;
        resp.records += v.records;
        resp.archives += v.archives;
        resp.anchors += v.anchors;
        if v.first_break.is_some() {
            resp.ok = false;
            resp.first_break = v.first_break;
            break;
        }
    }
    json::response(StatusCode::OK, &resp)
}

/// `GET /__dev/blobs?key=` (an object's content, inflated for a `.gz` key) or `?prefix=` (its keys), development only,
/// operator only: lets the contract suite find archive objects.
pub(super) async fn dev_blob_get<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    if !is_development(ctx) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let mut key = None;
    let mut prefix = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "key" => key = Some(v.into_owned()),
            "prefix" => prefix = Some(v.into_owned()),
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "unknown query parameter (key, prefix)",
                ))
            }
        }
    }
    let blobs = ctx.platform.blobs();
    if let Some(key) = key {
        let bytes = blobs
            .get(&key)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?
            .ok_or_else(|| ApiError::not_found("No such object."))?;
        // Gzipped archives are shown inflated (PUT deflates them again).
        let bytes = unpack(&key, bytes).map_err(|e| ApiError::invalid_input(e.to_string()))?;
        return Ok(json::raw(StatusCode::OK, bytes, "application/octet-stream"));
    }
    let page = blobs
        .list(&prefix.unwrap_or_default(), None, 1000)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    json::response(StatusCode::OK, &j!({ "keys": page.keys }))
}

/// `PUT /__dev/blobs?key=`, development only, operator only: replaces an object's content
/// (deflated again for a `.gz` key), so
/// the contract suite can tamper with an archive and see `/v1/audit/verify` notice.
pub(super) async fn dev_blob_put<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: &Request,
    _caller: OperatorPrincipal,
) -> Result<Response, ApiError> {
    if !is_development(ctx) {
        return Err(ApiError::not_found("No route matches this path."));
    }
    let key = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::invalid_field("key", "is required"))?;
    let (bytes, content_type) = if key.ends_with(".gz") {
        let packed = gzip(req.body()).map_err(|e| ApiError::internal(e.to_string()))?;
        (packed, GZIP_CONTENT_TYPE)
    } else {
        (req.body().clone(), CONTENT_TYPE)
    };
    ctx.platform
        .blobs()
        .put(&key, bytes, content_type)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let line = j!({ "level": "warn", "msg": "development blob overwritten", "request_id": ctx.request_id });
    ctx.platform.logger().line(&line.to_string());
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
