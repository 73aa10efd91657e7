//! The auditor's CSV export (FR-LOG-002): audit events in a period as RFC 4180 CSV, of one
//! tenant or all (tenant order, then stream order), optionally of one action, a page at a time.
//! A page reads one archive object at a time and ends after `limit` rows, or where the stream
//! listing it read ends; its cursor (`<tenant>:<seq>`) resumes after the last row returned.

use super::archive::ArchiveError;
use super::csv;
use super::read::{audit_event, customer_streams_after, page, Period};
use crate::kernel::ErrorKind;
use crate::ports::{Platform, SqlError, StreamId, StreamKind};

/// Streams one page reads at most (one registry query).
pub const STREAMS_PER_PAGE: u32 = 1000;

/// What a page of the export asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvRequest {
    /// Only this tenant's events.
    pub tenant: Option<String>,
    /// The period, by event timestamp.
    pub period: Period,
    /// Only events of this action.
    pub action: Option<String>,
    /// The previous page's `next` cursor.
    pub cursor: Option<String>,
    /// Most rows in the page.
    pub limit: usize,
}

/// A page of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvPage {
    /// The CSV, with its header row.
    pub csv: String,
    /// The cursor of the next page, when one follows.
    pub next: Option<String>,
}

/// Why a page could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CsvExportError {
    /// The cursor is not one this export issued (or names another tenant than `tenant`).
    #[error("is not a cursor of this export")]
    BadCursor,
    /// The stream registry could not be read.
    #[error("the stream listing failed: {0}")]
    Listing(SqlError),
    /// An archive or the log could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl CsvExportError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CsvExportError::BadCursor => "invalid_cursor",
            CsvExportError::Listing(_) => "stream_listing_failed",
            CsvExportError::Archive(e) => e.code(),
        }
    }

    /// What kind of failure it is (one kind per variant).
    pub fn kind(&self) -> ErrorKind {
        match self {
            CsvExportError::BadCursor => ErrorKind::InvalidField("cursor"),
            CsvExportError::Listing(_) => ErrorKind::Unavailable,
            CsvExportError::Archive(e) => e.kind(),
        }
    }
}

crate::kernel::domain_errors!(CsvExportError);

/// One page of the export.
pub async fn audit_csv_page<P: Platform>(
    p: &P,
    req: &CsvRequest,
) -> Result<CsvPage, CsvExportError> {
    let (start_tenant, after) = parse_cursor(req.cursor.as_deref())?;
    let (streams, listing_full) = streams(p, req, start_tenant, after).await?;
    write_page(p, req, streams, listing_full).await
}

/// The tenant a cursor resumes in and the last sequence number returned there; `(None, 0)`
/// without one.
fn parse_cursor(cursor: Option<&str>) -> Result<(Option<String>, i64), CsvExportError> {
    match cursor {
        None => Ok((None, 0)),
        Some(c) => {
            let (t, s) = c.rsplit_once(':').ok_or(CsvExportError::BadCursor)?;
            let seq = s.parse::<i64>().map_err(|_| CsvExportError::BadCursor)?;
            Ok((Some(t.to_owned()), seq))
        }
    }
}

/// The audit streams a page reads, each with the sequence number to resume after: the named
/// tenant's, or the cursor's tenant then those after it in tenant order. True when the listing
/// was full: more streams follow, and the page ends after the last one listed.
async fn streams<P: Platform>(
    p: &P,
    req: &CsvRequest,
    start_tenant: Option<String>,
    after: i64,
) -> Result<(Vec<(StreamId, i64)>, bool), CsvExportError> {
    let audit = |tenant: &str| StreamId {
        kind: StreamKind::Audit,
        tenant: tenant.to_owned(),
    };
    match (&req.tenant, &start_tenant) {
        (Some(t), Some(s)) if t != s => Err(CsvExportError::BadCursor),
        (Some(t), _) => Ok((vec![(audit(t), after)], false)),
        (None, start) => {
            let mut streams: Vec<(StreamId, i64)> = Vec::new();
            if let Some(s) = start {
                streams.push((audit(s), after));
            }
            let from = start.clone().unwrap_or_default();
            let rest = customer_streams_after(p.sql(), StreamKind::Audit, &from, STREAMS_PER_PAGE)
                .await
                .map_err(CsvExportError::Listing)?;
            let listing_full = rest.len() == STREAMS_PER_PAGE as usize;
            streams.extend(rest.into_iter().map(|s| (s, 0)));
            Ok((streams, listing_full))
        }
    }
}

/// Writes at most `req.limit` rows of the streams (those of `req.action` only, if named) as CSV
/// with the cursor of the next page, if one follows.
async fn write_page<P: Platform>(
    p: &P,
    req: &CsvRequest,
    streams: Vec<(StreamId, i64)>,
    listing_full: bool,
) -> Result<CsvPage, CsvExportError> {
    let mut out = String::new();
    csv::header(&mut out);
    let mut rows = 0;
    let mut next = None;
    let mut resume = None;
    for (stream, after) in streams {
        let action = req.action.clone();
        let (records, more) = page(p, &stream, after, req.period, req.limit - rows, |r| {
            action
                .as_ref()
                .is_none_or(|a| audit_event(r).is_ok_and(|e| e.event_type == *a))
        })
        .await?;
        for r in &records {
            csv::audit_row(&mut out, r, &audit_event(r)?);
        }
        rows += records.len();
        let last = records.last().map_or(after, |r| r.seq);
        if let Some(seq) = more {
            next = Some(format!("{}:{seq}", stream.tenant));
            break;
        }
        resume = Some(format!("{}:{last}", stream.tenant));
        if rows >= req.limit {
            // Full exactly at the end of this stream: later streams follow on the next page.
            next = resume.take();
            break;
        }
    }
    if next.is_none() && listing_full {
        next = resume;
    }
    Ok(CsvPage { csv: out, next })
}
