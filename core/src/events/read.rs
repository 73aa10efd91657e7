//! Reading a stream back across its archives and the log's tail, each record exactly once and
//! in sequence order, one archive object in memory at a time: the base of the billing export
//! (FR-BILL-003), the usage summary, the auditor's CSV export (FR-LOG-002) and the chain check.
//!
//! Sequence numbers have no gaps within a stream, so a scan always knows which record comes
//! next. A flush that moves records from the tail to an archive while a scan runs shows up as a
//! tail starting later than expected; the archive index then already holds the moved range
//! (the flush indexes before it drops), so the scan reads the index again. A gap the index
//! does not explain is retention at work (FR-OPS-003) and is skipped.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::anchor::{AnchorFault, AnchorKeys, Position};
use super::archive::{
    archived_through, decode, entries_from, ArchiveEntry, ArchiveError, ArchivedRecord,
};
use super::chain::{self, Link};
use super::model::{AuditEvent, BillingEvent};
use crate::ports::{Blobs, EventLog, Platform, Sql, StreamId};
use crate::time::format_day;

/// Archive entries read from the index per query.
const INDEX_PAGE: u32 = 20;
/// Tail records read from the log per call.
const TAIL_PAGE: u32 = 1000;

/// What a scan calls back with.
pub trait Visitor {
    /// An archive object about to be visited, with all its records (also those before the
    /// scan's start). Returns false to stop the scan.
    fn archive(&mut self, _entry: &ArchiveEntry, _records: &[ArchivedRecord]) -> bool {
        true
    }

    /// One record, in sequence order. Returns false to stop the scan after it.
    fn record(&mut self, record: &ArchivedRecord) -> bool;
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// The visitor stopped it.
    Stopped,
    /// Every record was visited.
    Exhausted,
}

/// Visits every record of `stream` with `seq >= from_seq`, skipping archive objects whose
/// `occurred_at` period does not meet `[period.0, period.1)` (their records are not visited;
/// tail records are all visited: filter them in the visitor).
pub async fn scan<P: Platform, V: Visitor>(
    p: &P,
    stream: &StreamId,
    from_seq: i64,
    period: Option<(i64, i64)>,
    visitor: &mut V,
) -> Result<ScanEnd, ArchiveError> {
    let mut next = from_seq.max(1);
    loop {
        let entries = entries_from(p.sql(), stream, next, INDEX_PAGE).await?;
        let full = entries.len() == INDEX_PAGE as usize;
        for e in entries {
            let outside =
                period.is_some_and(|(from, to)| e.period_end < from || e.period_start >= to);
            if !outside {
                let bytes = p
                    .blobs()
                    .get(&e.key)
                    .await?
                    .ok_or_else(|| ArchiveError::Corrupt {
                        key: e.key.clone(),
                        problem: "the indexed object is missing".into(),
                    })?;
                let records = decode(&e.key, bytes)?;
                if !visitor.archive(&e, &records) {
                    return Ok(ScanEnd::Stopped);
                }
                for r in records.iter().filter(|r| r.seq >= next) {
                    if !visitor.record(r) {
                        return Ok(ScanEnd::Stopped);
                    }
                }
            }
            next = next.max(e.last_seq + 1);
        }
        if full {
            continue;
        }
        let tail = p.event_log().read(stream, next - 1, TAIL_PAGE).await?;
        let starts_late = tail.first().is_none_or(|r| r.seq > next);
        if starts_late && archived_through(p.sql(), stream).await? >= next {
            // A flush archived what we expected in the tail: read the index again.
            continue;
        }
        let n = tail.len();
        for e in tail {
            let r = ArchivedRecord::from(e);
            next = r.seq + 1;
            if !visitor.record(&r) {
                return Ok(ScanEnd::Stopped);
            }
        }
        if n < TAIL_PAGE as usize {
            return Ok(ScanEnd::Exhausted);
        }
    }
}

/// An instant range `[from, to)` in unix ms; either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// Inclusive start.
    pub from: Option<i64>,
    /// Exclusive end.
    pub to: Option<i64>,
}

impl Period {
    /// True when `ms` lies in the range.
    pub fn contains(&self, ms: i64) -> bool {
        self.from.is_none_or(|f| ms >= f) && self.to.is_none_or(|t| ms < t)
    }

    /// The range for [`scan`].
    pub fn bounds(&self) -> Option<(i64, i64)> {
        match (self.from, self.to) {
            (None, None) => None,
            (f, t) => Some((f.unwrap_or(i64::MIN), t.unwrap_or(i64::MAX))),
        }
    }
}

/// One exported billing event with its position and chain hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportedEvent<E> {
    /// Position in the tenant's stream.
    pub seq: i64,
    /// When Edgeplane accepted it (unix ms).
    pub received_at: i64,
    /// The record's chain hash.
    pub hash: String,
    /// The event.
    #[serde(flatten)]
    pub event: E,
}

/// One page of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<E> {
    /// The events, in sequence order.
    pub items: Vec<E>,
    /// Pass back as `cursor` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Collects a page of records in a period.
struct Collect<F> {
    period: Period,
    limit: usize,
    items: Vec<ArchivedRecord>,
    filter: F,
}

impl<F: FnMut(&ArchivedRecord) -> bool> Visitor for Collect<F> {
    fn record(&mut self, r: &ArchivedRecord) -> bool {
        if self.period.contains(r.occurred_at) && (self.filter)(r) {
            self.items.push(r.clone());
        }
        self.items.len() < self.limit
    }
}

/// A page of `stream` after the cursor `after_seq`: at most `limit` records in `period` that
/// pass `filter`. The cursor is the last sequence number returned, so every record is in
/// exactly one page, wherever it was (archive or tail) when each page was read.
pub async fn page<P: Platform>(
    p: &P,
    stream: &StreamId,
    after_seq: i64,
    period: Period,
    limit: usize,
    filter: impl FnMut(&ArchivedRecord) -> bool,
) -> Result<(Vec<ArchivedRecord>, Option<i64>), ArchiveError> {
    let mut c = Collect {
        period,
        limit: limit.max(1),
        items: Vec::new(),
        filter,
    };
    let end = scan(p, stream, after_seq + 1, period.bounds(), &mut c).await?;
    let next = match end {
        ScanEnd::Stopped => c.items.last().map(|r| r.seq),
        ScanEnd::Exhausted => None,
    };
    Ok((c.items, next))
}

/// Billing export items from archived records.
pub fn billing_items(
    records: Vec<ArchivedRecord>,
) -> Result<Vec<ExportedEvent<BillingEvent>>, ArchiveError> {
    records
        .into_iter()
        .map(|r| {
            let event = serde_json::from_str(&r.body).map_err(|e| ArchiveError::Corrupt {
                key: format!("seq {}", r.seq),
                problem: e.to_string(),
            })?;
            Ok(ExportedEvent {
                seq: r.seq,
                received_at: r.received_at,
                hash: r.hash,
                event,
            })
        })
        .collect()
}

/// One row of the usage summary (BB-BIL-001 aggregates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageRow {
    /// The UTC day, `YYYY-MM-DD`.
    pub period: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Sum of quantities.
    pub quantity: i64,
    /// Number of events.
    pub events: i64,
}

/// Sums quantities per UTC day (of `timestamp`) and type over the same records the export
/// returns for `period`, so the two always agree.
pub async fn usage_by_day<P: Platform>(
    p: &P,
    stream: &StreamId,
    period: Period,
) -> Result<Vec<UsageRow>, ArchiveError> {
    struct Sum {
        period: Period,
        rows: BTreeMap<(String, String), (i64, i64)>,
        bad: Option<ArchiveError>,
    }
    impl Visitor for Sum {
        fn record(&mut self, r: &ArchivedRecord) -> bool {
            if !self.period.contains(r.occurred_at) {
                return true;
            }
            match serde_json::from_str::<BillingEvent>(&r.body) {
                Ok(e) => {
                    let row = self
                        .rows
                        .entry((format_day(r.occurred_at), e.event_type))
                        .or_insert((0, 0));
                    row.0 = row.0.saturating_add(e.quantity);
                    row.1 += 1;
                    true
                }
                Err(e) => {
                    self.bad = Some(ArchiveError::Corrupt {
                        key: format!("seq {}", r.seq),
                        problem: e.to_string(),
                    });
                    false
                }
            }
        }
    }
    let mut sum = Sum {
        period,
        rows: BTreeMap::new(),
        bad: None,
    };
    scan(p, stream, 1, period.bounds(), &mut sum).await?;
    if let Some(e) = sum.bad {
        return Err(e);
    }
    Ok(sum
        .rows
        .into_iter()
        .map(|((period, event_type), (quantity, events))| UsageRow {
            period,
            event_type,
            quantity,
            events,
        })
        .collect())
}

/// What kind of break [`verify`] found: a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakCode {
    /// The object does not hold the range, count or last sequence number its index row names.
    RangeMismatch,
    /// The object's first or last hash differs from its index row.
    EndHashMismatch,
    /// A record's content does not match its hash.
    HashMismatch,
    /// A record's `prev_hash` is not the previous record's hash.
    LinkMismatch,
    /// The first record of the stream does not start from the genesis hash.
    GenesisMismatch,
    /// An indexed object is missing or unreadable.
    ArchiveUnreadable,
    /// An archive object has no anchor.
    AnchorMissing,
    /// No anchor key is configured, so no anchor can be checked.
    AnchorKeyMissing,
    /// An anchor was made with a key that is not configured.
    AnchorKeyUnknown,
    /// An anchor does not match its object: the history was rewritten.
    AnchorMismatch,
}

/// The first broken link found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Break {
    /// The stream, `<kind>/<tenant>`.
    pub stream: String,
    /// The record, or the first record of the archive object, where the chain breaks.
    pub seq: i64,
    /// The archive object key, or `tail` for the event log.
    pub location: String,
    /// What kind of break, stable.
    #[schema(inline)]
    pub code: BreakCode,
    /// What does not match, in words.
    pub reason: String,
}

/// What [`verify`] found for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Records whose hash was recomputed.
    pub records: u64,
    /// Archive objects checked against the index.
    pub archives: u64,
    /// Archive objects whose anchor was checked and holds.
    pub anchors: u64,
    /// The first broken link, if any.
    pub first_break: Option<Break>,
}

/// Recomputes the chain of `stream` over records in `period` (and the whole of every archive
/// object touching it): each record's hash, each link to the previous record, each archive
/// object against its index row (range, count, first and last hash), and each object's anchor
/// under `keys` (a missing anchor is a break: every flush writes one). Stops at the first
/// break. The unarchived tail has no anchor yet; its chain is checked as it is.
pub async fn verify<P: Platform>(
    p: &P,
    stream: &StreamId,
    period: Period,
    keys: &AnchorKeys,
) -> Result<Verification, ArchiveError> {
    let mut check = ChainCheck {
        stream: stream.to_string(),
        keys,
        prev: None,
        location: String::new(),
        records: 0,
        archives: 0,
        anchors: 0,
        first_break: None,
    };
    match scan(p, stream, 1, period.bounds(), &mut check).await {
        Ok(_) => {}
        // A missing or unreadable object is a broken chain, not an outage.
        Err(ArchiveError::Corrupt { key, problem }) => {
            check.location = key;
            let seq = check.prev.as_ref().map_or(0, |(s, _)| s + 1);
            check.broken(seq, BreakCode::ArchiveUnreadable, problem);
        }
        Err(e) => return Err(e),
    }
    Ok(Verification {
        records: check.records,
        archives: check.archives,
        anchors: check.anchors,
        first_break: check.first_break,
    })
}

/// The visitor of [`verify`]: what it has checked so far and the first break.
struct ChainCheck<'k> {
    /// The stream, `<kind>/<tenant>`.
    stream: String,
    /// The keys anchors are checked under.
    keys: &'k AnchorKeys,
    /// The last record checked: its sequence number and hash.
    prev: Option<(i64, String)>,
    /// The archive object being checked, or `tail`.
    location: String,
    /// Records whose hash was recomputed.
    records: u64,
    /// Archive objects checked against the index.
    archives: u64,
    /// Anchors that hold.
    anchors: u64,
    /// The first break found.
    first_break: Option<Break>,
}

impl ChainCheck<'_> {
    /// Records the break at `seq` in the current location; false, to stop the scan.
    fn broken(&mut self, seq: i64, code: BreakCode, reason: String) -> bool {
        self.first_break = Some(Break {
            stream: self.stream.clone(),
            seq,
            location: self.location.clone(),
            code,
            reason,
        });
        false
    }

    /// The object against its index row: the range, the count, the first and last hash.
    fn matches_index(&mut self, e: &ArchiveEntry, records: &[ArchivedRecord]) -> bool {
        let seqs_ok = records
            .iter()
            .enumerate()
            .all(|(i, r)| r.seq == e.first_seq + i64::try_from(i).unwrap_or(i64::MAX));
        let (first, last) = (records.first(), records.last());
        if !seqs_ok
            || i64::try_from(records.len()).ok() != Some(e.count)
            || last.map(|r| r.seq) != Some(e.last_seq)
        {
            return self.broken(
                e.first_seq,
                BreakCode::RangeMismatch,
                "the object does not hold the indexed range".into(),
            );
        }
        if first.map(|r| &r.hash) != e.first_hash.as_ref()
            || last.map(|r| &r.hash) != e.last_hash.as_ref()
        {
            return self.broken(
                e.first_seq,
                BreakCode::EndHashMismatch,
                "the object's end hashes differ from the index".into(),
            );
        }
        true
    }

    /// The object's anchor, checked after its records so that a plain edit is named at
    /// the record it touched; a consistent rewrite passes those and fails here.
    fn anchor(&mut self, e: &ArchiveEntry) -> bool {
        let Some(last_hash) = e.last_hash.as_deref() else {
            return self.broken(
                e.first_seq,
                BreakCode::EndHashMismatch,
                "the index row has no last hash".into(),
            );
        };
        let at = Position {
            stream: &self.stream,
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            last_hash,
        };
        match self.keys.check(&at, e.anchor.as_ref()) {
            Ok(()) => {
                self.anchors += 1;
                true
            }
            Err(fault) => {
                let code = match fault {
                    AnchorFault::Missing => BreakCode::AnchorMissing,
                    AnchorFault::NoKey(_) => BreakCode::AnchorKeyMissing,
                    AnchorFault::UnknownKey { .. } => BreakCode::AnchorKeyUnknown,
                    AnchorFault::Mismatch => BreakCode::AnchorMismatch,
                };
                self.broken(e.first_seq, code, fault.to_string())
            }
        }
    }

    /// One record: its hash recomputed, its link to the previous record (or to the genesis).
    fn link(&mut self, r: &ArchivedRecord) -> bool {
        let recomputed = chain::hash(&Link {
            stream: &self.stream,
            seq: r.seq,
            id: &r.id,
            occurred_at_ms: r.occurred_at,
            received_at_ms: r.received_at,
            prev_hash: &r.prev_hash,
            body: &r.body,
        });
        if recomputed != r.hash {
            return self.broken(
                r.seq,
                BreakCode::HashMismatch,
                "the record's content does not match its hash".into(),
            );
        }
        if let Some((seq, hash)) = &self.prev {
            if *seq + 1 == r.seq && *hash != r.prev_hash {
                return self.broken(
                    r.seq,
                    BreakCode::LinkMismatch,
                    "prev_hash does not match the previous record".into(),
                );
            }
        } else if r.seq == 1 && r.prev_hash != chain::GENESIS {
            return self.broken(
                r.seq,
                BreakCode::GenesisMismatch,
                "the first record does not start the chain".into(),
            );
        }
        self.prev = Some((r.seq, r.hash.clone()));
        self.records += 1;
        true
    }
}

impl Visitor for ChainCheck<'_> {
    fn archive(&mut self, e: &ArchiveEntry, records: &[ArchivedRecord]) -> bool {
        self.location.clone_from(&e.key);
        self.archives += 1;
        if !self.matches_index(e, records) {
            return false;
        }
        // Check every record of a touched object, not only those in the period.
        for r in records {
            if !self.link(r) {
                return false;
            }
        }
        self.anchor(e)
    }

    fn record(&mut self, r: &ArchivedRecord) -> bool {
        if self.prev.as_ref().is_some_and(|(seq, _)| *seq >= r.seq) {
            return true; // already checked with its archive
        }
        self.location = "tail".into();
        self.link(r)
    }
}

/// Audit export rows from archived records.
pub fn audit_event(r: &ArchivedRecord) -> Result<AuditEvent, ArchiveError> {
    serde_json::from_str(&r.body).map_err(|e| ArchiveError::Corrupt {
        key: format!("seq {}", r.seq),
        problem: e.to_string(),
    })
}

/// [`streams_after`] without the canary tenants' streams (NFR-MON-003): what an all-tenant
/// export reads, so the synthetic journeys' events never appear in one.
pub async fn customer_streams_after<S: Sql>(
    sql: &S,
    kind: crate::ports::StreamKind,
    after_tenant: &str,
    limit: u32,
) -> Result<Vec<StreamId>, crate::ports::SqlError> {
    let rows = sql
        .query(
            crate::ports::Stmt::new(
                "SELECT tenant_id FROM event_streams WHERE kind = ?1 AND tenant_id > ?2
                   AND tenant_id NOT IN (SELECT id FROM tenants WHERE canary = 1)
                 ORDER BY tenant_id LIMIT ?3",
            )
            .bind(kind.as_str())
            .bind(after_tenant)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StreamId {
                kind,
                tenant: r.text("tenant_id")?,
            })
        })
        .collect()
}

/// The streams of a kind (from the registry), in tenant order, starting after `after_tenant`.
pub async fn streams_after<S: Sql>(
    sql: &S,
    kind: crate::ports::StreamKind,
    after_tenant: &str,
    limit: u32,
) -> Result<Vec<StreamId>, crate::ports::SqlError> {
    let rows = sql
        .query(
            crate::ports::Stmt::new(
                "SELECT tenant_id FROM event_streams WHERE kind = ?1 AND tenant_id > ?2 ORDER BY tenant_id LIMIT ?3",
            )
            .bind(kind.as_str())
            .bind(after_tenant)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StreamId {
                kind,
                tenant: r.text("tenant_id")?,
            })
        })
        .collect()
}
