//! The pipeline's periodic work and the tenant purge's share of it: flushing every stream's
//! tail to the archive, forwarding Edgeplane's own audit outbox into the audit streams
//! (FR-LOG-003), enforcing retention (FR-OPS-003) and deleting a purged tenant's events
//! (FR-OPS-002). Each is idempotent, so a run cut short is completed by the next.

use serde_json::{Map, Value as Json};

use super::anchor::AnchorKeys;
use super::archive::{flush_stream, ArchiveError, FlushReport};
use super::ingest::register_stream;
use super::model::AuditEvent;
use super::read::streams_after;
use crate::ports::{
    BlobError, Blobs, EventLog, EventLogError, NewEvent, Platform, Sql, SqlError, Stmt, StreamId,
    StreamKind,
};
use crate::time::{format_rfc3339, years_before};

/// Audit logs are kept at least 7 years, billing events 5 (FR-OPS-003, CON-DATA-002/003).
pub const RETENTION_YEARS: [(StreamKind, i64); 2] =
    [(StreamKind::Audit, 7), (StreamKind::Billing, 5)];

/// Outbox rows one forward moves at most.
pub const FORWARD_BATCH: u32 = 500;

/// The stream of Edgeplane's own events about no tenant.
pub const PLATFORM_TENANT: &str = "_platform";

/// Flushes the tail of every registered stream to the archive. Without an anchor key
/// (outside development) it writes nothing and fails with
/// [`ArchiveError::AnchorKey`], which the cron reports, every run until the key is set.
pub async fn flush_all<P: Platform>(p: &P, now: i64) -> Result<FlushReport, ArchiveError> {
    let keys = AnchorKeys::load(p.secrets());
    let signer = keys.signer()?;
    let mut total = FlushReport::default();
    for kind in [StreamKind::Billing, StreamKind::Audit] {
        let mut after = String::new();
        loop {
            let streams = streams_after(p.sql(), kind, &after, 100).await?;
            let Some(last) = streams.last() else { break };
            after.clone_from(&last.tenant);
            for s in &streams {
                let r = flush_stream(p.event_log(), p.blobs(), p.sql(), signer, s, now).await?;
                total.objects += r.objects;
                total.events += r.events;
            }
        }
    }
    Ok(total)
}

/// Why forwarding the outbox failed; the rows stay unforwarded for the next run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForwardError {
    /// D1 failed.
    #[error("outbox: {0}")]
    Sql(#[from] SqlError),
    /// The event log failed.
    #[error("event log: {0}")]
    Log(#[from] EventLogError),
}

impl ForwardError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ForwardError::Sql(_) => "outbox_failed",
            ForwardError::Log(_) => "event_log_failed",
        }
    }
}

/// Forwards up to [`FORWARD_BATCH`] unforwarded outbox rows into the audit streams and marks
/// them `forwarded_at`. Rows about no tenant, or about a purged one (whose streams the purge
/// deletes, so its purge record would be lost with them), go to the `_platform` stream. The event id is the
/// outbox id, so a row forwarded twice (marking failed after the append) is stored once.
/// Returns the rows forwarded.
pub async fn forward_outbox<P: Platform>(p: &P, now: i64) -> Result<u64, ForwardError> {
    let rows = p
        .sql()
        .query(
            Stmt::new(
                "SELECT o.id AS id, o.occurred_at AS occurred_at, o.actor_id AS actor_id,
 o.actor_type AS actor_type, o.action AS action, o.resource AS resource, o.outcome AS outcome,
 o.request_id AS request_id, o.metadata AS metadata,
 (SELECT t.id FROM tenants t WHERE t.id = o.tenant_id AND t.status <> 'deleted') AS tenant_id
FROM audit_outbox o WHERE o.forwarded_at IS NULL ORDER BY o.seq LIMIT ?1",
            )
            .bind(i64::from(FORWARD_BATCH)),
        )
        .await?;
    // Grouped by stream, keeping outbox order within each.
    let mut groups: Vec<(String, Vec<NewEvent>)> = Vec::new();
    for r in &rows {
        let tenant = r
            .opt_text("tenant_id")?
            .unwrap_or_else(|| PLATFORM_TENANT.to_owned());
        let id = r.text("id")?;
        let occurred_at = r.i64("occurred_at")?;
        let mut metadata: Map<String, Json> =
            serde_json::from_str(&r.text("metadata")?).unwrap_or_default();
        metadata.insert("actor_type".into(), r.text("actor_type")?.into());
        if let Some(request_id) = r.opt_text("request_id")? {
            metadata.insert("request_id".into(), request_id.into());
        }
        let event = AuditEvent {
            id: id.clone(),
            tenant_id: tenant.clone(),
            app_id: None,
            timestamp: format_rfc3339(occurred_at),
            actor_id: r.text("actor_id")?,
            event_type: r.text("action")?,
            resource_id: r.text("resource")?,
            outcome: r.text("outcome")?,
            ip: None,
            metadata,
        };
        let body = serde_json::to_string(&event).map_err(|e| SqlError::Decode(e.to_string()))?;
        let new = NewEvent {
            id,
            occurred_at_ms: occurred_at,
            body,
        };
        match groups.iter_mut().find(|(t, _)| *t == tenant) {
            Some((_, events)) => events.push(new),
            None => groups.push((tenant, vec![new])),
        }
    }
    let mut forwarded = 0;
    for (tenant, events) in groups {
        let stream = StreamId {
            kind: StreamKind::Audit,
            tenant,
        };
        let ids = serde_json::to_string(&events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
            .map_err(|e| SqlError::Decode(e.to_string()))?;
        register_stream(p.sql(), &stream, now).await?;
        p.event_log().append(&stream, events).await?;
        forwarded += p
            .sql()
            .execute(
                Stmt::new(
                    "UPDATE audit_outbox SET forwarded_at = ?1
WHERE forwarded_at IS NULL AND id IN (SELECT value FROM json_each(?2))",
                )
                .bind(now)
                .bind(ids),
            )
            .await?;
    }
    Ok(forwarded)
}

/// Why retention or a purge failed part-way; the next run continues.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeleteEventsError {
    /// D1 failed.
    #[error("archive index: {0}")]
    Sql(#[from] SqlError),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// The event log failed.
    #[error("event log: {0}")]
    Log(#[from] EventLogError),
}

impl DeleteEventsError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DeleteEventsError::Sql(_) => "archive_index_failed",
            DeleteEventsError::Blob(_) => "blob_store_failed",
            DeleteEventsError::Log(_) => "event_log_failed",
        }
    }
}

/// FR-OPS-003: deletes archive objects whose newest event is older than its kind's retention
/// (7 calendar years for audit, 5 for billing, counted back from `now`), object first, then
/// its index row. Returns the objects deleted.
pub async fn enforce_retention<P: Platform>(p: &P, now: i64) -> Result<u64, DeleteEventsError> {
    let mut deleted = 0;
    for (kind, years) in RETENTION_YEARS {
        let cutoff = years_before(now, years);
        for _ in 0..10 {
            let rows = p
                .sql()
                .query(
                    Stmt::new(
                        "SELECT key FROM archive_index WHERE kind = ?1 AND period_end < ?2 LIMIT 200",
                    )
                    .bind(kind.as_str())
                    .bind(cutoff),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                deleted += delete_archive(p, &r.text("key")?).await?;
            }
        }
    }
    Ok(deleted)
}

/// Deletes one archive object, then its index row.
async fn delete_archive<P: Platform>(p: &P, key: &str) -> Result<u64, DeleteEventsError> {
    p.blobs().delete(key).await?;
    Ok(p.sql()
        .execute(Stmt::new("DELETE FROM archive_index WHERE key = ?1").bind(key))
        .await?)
}

/// FR-OPS-002: deletes the events of tenants purged since the last run (a few per run) with
/// [`purge_tenant_events`]. Returns the tenants cleaned.
pub async fn purge_deleted_tenants<P: Platform>(p: &P) -> Result<u64, DeleteEventsError> {
    let rows = p
        .sql()
        .query(Stmt::new(
            "SELECT tenant_id FROM event_streams WHERE tenant_id IN (SELECT id FROM tenants WHERE status = 'deleted')
UNION SELECT tenant_id FROM archive_index WHERE tenant_id IN (SELECT id FROM tenants WHERE status = 'deleted')
LIMIT 20",
        ))
        .await?;
    for r in &rows {
        purge_tenant_events(p, &r.text("tenant_id")?).await?;
    }
    Ok(rows.len() as u64)
}

/// FR-OPS-002: deletes every event of a purged tenant: its archive objects (indexed or
/// orphaned), their index rows, both streams in the event log and their registry rows.
pub async fn purge_tenant_events<P: Platform>(
    p: &P,
    tenant: &str,
) -> Result<(), DeleteEventsError> {
    for kind in [StreamKind::Billing, StreamKind::Audit] {
        let stream = StreamId {
            kind,
            tenant: tenant.to_owned(),
        };
        loop {
            let rows = p
                .sql()
                .query(
                    Stmt::new("SELECT key FROM archive_index WHERE kind = ?1 AND tenant_id = ?2 LIMIT 200")
                        .bind(kind.as_str())
                        .bind(tenant),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                delete_archive(p, &r.text("key")?).await?;
            }
        }
        let prefix = format!("{}/{tenant}/", kind.as_str());
        loop {
            let page = p.blobs().list(&prefix, None, 1000).await?;
            if page.keys.is_empty() {
                break;
            }
            for key in &page.keys {
                p.blobs().delete(key).await?;
            }
        }
        p.event_log().drop_stream(&stream).await?;
        p.sql()
            .execute(
                Stmt::new("DELETE FROM event_streams WHERE kind = ?1 AND tenant_id = ?2")
                    .bind(kind.as_str())
                    .bind(tenant),
            )
            .await?;
    }
    Ok(())
}
