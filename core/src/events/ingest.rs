//! Ingestion (FR-BILL-002, FR-LOG-001): validated events go to their tenant's stream of their
//! kind, deduplicated, and are durable before the caller hears about it.

use serde::Serialize;
use serde_json::Value as Json;
use utoipa::ToSchema;

use super::model::{parse_events, InvalidEvent, ParsedEvent};
use crate::kernel::ErrorKind;
use crate::ports::{
    Clock, EventLog, EventLogError, NewEvent, Platform, Sql, SqlError, Stmt, StreamId, StreamKind,
};

/// The app and tenant an API key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// The key's app.
    pub app_id: String,
    /// The key's tenant; `None` for an app-wide key (each request names its tenant).
    pub tenant_id: Option<String>,
}

/// What an ingest did: how many events of the request were new, how many were already stored.
// The schema says `integer` (`value_type = i64`), without the `minimum: 0` of an unsigned type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct IngestOutcome {
    /// Events in the request.
    #[schema(value_type = i64)]
    pub received: u32,
    /// Events stored now.
    #[schema(value_type = i64)]
    pub accepted: u32,
    /// Events already stored (a retry), left unchanged.
    #[schema(value_type = i64)]
    pub duplicates: u32,
}

/// Why an ingest was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// A field of one event is invalid; nothing was stored.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// An app-wide key sent an event without `tenant_id`.
    #[error("event {index}: tenant_id: is required with an app-wide key")]
    TenantRequired {
        /// Position in the batch.
        index: usize,
    },
    /// Events of one request name different tenants (one request, one stream, one atomic
    /// append).
    #[error("event {index}: tenant_id: every event of a request must name the same tenant")]
    MixedTenants {
        /// Position in the batch.
        index: usize,
    },
    /// The tenant does not exist, is another tenant than the key's, or the app is not enabled
    /// for it (answered like a missing resource).
    #[error("no such tenant")]
    UnknownTenant,
    /// The tenant exists but is suspended or being deleted.
    #[error("the tenant is not active")]
    TenantNotActive,
    /// An event has neither an `id` nor a request `Idempotency-Key` to derive one from.
    #[error("event {index}: id: is required without an Idempotency-Key header")]
    IdRequired {
        /// Position in the batch.
        index: usize,
    },
    /// The log or the database could not be reached: nothing was acknowledged, retry.
    #[error("event storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("event storage failed: {0}")]
    Storage(String),
}

impl IngestError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Invalid(_) => "invalid_event",
            IngestError::TenantRequired { .. } => "tenant_required",
            IngestError::MixedTenants { .. } => "mixed_tenants",
            IngestError::UnknownTenant => "tenant_not_found",
            IngestError::TenantNotActive => "tenant_not_active",
            IngestError::IdRequired { .. } => "event_id_required",
            IngestError::Unavailable(_) => "event_log_unavailable",
            IngestError::Storage(_) => "event_log_failed",
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Invalid(_) => ErrorKind::Invalid,
            IngestError::TenantRequired { .. } => ErrorKind::Invalid,
            IngestError::MixedTenants { .. } => ErrorKind::Invalid,
            IngestError::UnknownTenant => ErrorKind::NotFound,
            IngestError::TenantNotActive => ErrorKind::Forbidden,
            IngestError::IdRequired { .. } => ErrorKind::Invalid,
            IngestError::Unavailable(_) => ErrorKind::Unavailable,
            IngestError::Storage(_) => ErrorKind::Internal,
        }
    }

    /// The event index and field a 400 names, if the error is about one event.
    pub fn field(&self) -> Option<(usize, &str)> {
        match self {
            IngestError::Invalid(e) => Some((e.index, &e.field)),
            IngestError::TenantRequired { index } | IngestError::MixedTenants { index } => {
                Some((*index, "tenant_id"))
            }
            IngestError::IdRequired { index } => Some((*index, "id")),
            _ => None,
        }
    }
}

crate::kernel::domain_errors!(IngestError);

impl From<EventLogError> for IngestError {
    fn from(e: EventLogError) -> Self {
        match e {
            EventLogError::Unavailable(m) => IngestError::Unavailable(m),
            EventLogError::Other(m) => IngestError::Storage(m),
        }
    }
}

impl From<SqlError> for IngestError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Unavailable(m) => IngestError::Unavailable(m),
            other => IngestError::Storage(other.to_string()),
        }
    }
}

thread_local! {
    /// Streams this isolate/instance already registered: a D1 write per ingest request would
    /// otherwise be most of its cost. Never stale in a harmful way: a registry row is only
    /// deleted by the purge of a tenant, whose keys can no longer ingest.
    static REGISTERED: std::cell::RefCell<std::collections::HashSet<String>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Records that a stream exists (`event_streams`), so the flush, exports across tenants and
/// the purge can find it. Idempotent; at most one D1 write per stream per isolate.
pub async fn register_stream<S: Sql>(sql: &S, stream: &StreamId, now: i64) -> Result<(), SqlError> {
    let name = stream.to_string();
    if REGISTERED.with(|r| r.borrow().contains(&name)) {
        return Ok(());
    }
    sql.execute(
        Stmt::new(
            "INSERT INTO event_streams (kind, tenant_id, created_at) VALUES (?1, ?2, ?3)
ON CONFLICT (kind, tenant_id) DO NOTHING",
        )
        .bind(stream.kind.as_str())
        .bind(&stream.tenant)
        .bind(now),
    )
    .await?;
    REGISTERED.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= 10_000 {
            r.clear();
        }
        r.insert(name);
    });
    Ok(())
}

/// Validates `body` (one event or a batch), resolves the tenant, and appends the events to the
/// tenant's stream of `kind`. `Ok` only once the events are durable (FR-BILL-001): the caller
/// may then answer 202. Events without an `id` take `<idempotency key>:<index>`, so a retried
/// request with the same `Idempotency-Key` is applied once.
pub async fn ingest<P: Platform>(
    p: &P,
    kind: StreamKind,
    reporter: &Reporter,
    body: &Json,
    idempotency_key: Option<&str>,
) -> Result<IngestOutcome, IngestError> {
    let now = p.clock().now_ms();
    let parsed = parse_events(kind, body, now)?;
    let tenant = resolve_tenant(reporter, &parsed)?;
    if reporter.tenant_id.is_none() {
        check_tenant(p, &reporter.app_id, &tenant, true).await?;
    }
    let mut events = Vec::with_capacity(parsed.len());
    for (index, e) in parsed.iter().enumerate() {
        let id = match (&e.id, idempotency_key) {
            (Some(id), _) => id.clone(),
            (None, Some(key)) => format!("{key}:{index}"),
            (None, None) => return Err(IngestError::IdRequired { index }),
        };
        let body = e
            .body(&id, &tenant, &reporter.app_id)
            .map_err(IngestError::Storage)?;
        events.push(NewEvent {
            id,
            occurred_at_ms: e.occurred_at_ms,
            body,
        });
    }
    let stream = StreamId { kind, tenant };
    register_stream(p.sql(), &stream, now).await?;
    let received = u32::try_from(events.len()).unwrap_or(u32::MAX);
    let out = p.event_log().append(&stream, events).await?;
    Ok(IngestOutcome {
        received,
        accepted: out.appended,
        duplicates: out.duplicates,
    })
}

/// The one tenant of a request: the key's (events may repeat it, never name another), or the
/// one every event names for an app-wide key.
fn resolve_tenant(reporter: &Reporter, events: &[ParsedEvent]) -> Result<String, IngestError> {
    if let Some(bound) = &reporter.tenant_id {
        if events
            .iter()
            .any(|e| e.tenant_id.as_ref().is_some_and(|t| t != bound))
        {
            return Err(IngestError::UnknownTenant);
        }
        return Ok(bound.clone());
    }
    let mut tenant: Option<&String> = None;
    for (index, e) in events.iter().enumerate() {
        let Some(t) = &e.tenant_id else {
            return Err(IngestError::TenantRequired { index });
        };
        match tenant {
            Some(first) if first != t => return Err(IngestError::MixedTenants { index }),
            _ => tenant = Some(t),
        }
    }
    tenant
        .cloned()
        .ok_or(IngestError::TenantRequired { index: 0 })
}

/// For an app-wide key: the tenant exists, has the app enabled and, if `require_active`, is
/// active (reading back a suspended tenant's events stays possible).
pub async fn check_tenant<P: Platform>(
    p: &P,
    app_id: &str,
    tenant: &str,
    require_active: bool,
) -> Result<(), IngestError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT t.status AS status FROM tenants t
JOIN tenant_apps ta ON ta.tenant_id = t.id AND ta.app_id = ?2 AND ta.enabled = 1
WHERE t.id = ?1",
            )
            .bind(tenant)
            .bind(app_id),
        )
        .await?;
    match rows.first().map(|r| r.text("status")).transpose()? {
        None => Err(IngestError::UnknownTenant),
        Some(s) if s == "deleted" => Err(IngestError::UnknownTenant),
        Some(s) if s == "active" || !require_active => Ok(()),
        Some(_) => Err(IngestError::TenantNotActive),
    }
}
