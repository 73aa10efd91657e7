//! The event pipeline's lag (NFR-MON-002): how long the oldest event Edgeplane acknowledged
//! (202) has waited in the event log without being archived. Events reach the archive only
//! through the scheduled flush ([`super::jobs::flush_all`]), so a healthy pipeline's lag stays
//! under one scheduled interval (5 minutes on Workers); a flush that keeps failing (the blob
//! store down, no anchor key) makes it grow run after run.
//!
//! Each stream's archived position comes from `archive_index` (one query for all), and its
//! oldest unarchived event from one read of the log's tail. At most [`MAX_STREAMS`] streams are
//! looked at per run, the ones archived least recently first, so a deployment with more
//! streams still has its most behind judged.

use crate::ports::{EventLog, EventLogError, Platform, Sql, SqlError, Stmt, StreamId, StreamKind};

/// Most streams one measure reads.
pub const MAX_STREAMS: u32 = 500;

/// What the pipeline's backlog looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineLag {
    /// The age of the oldest acknowledged event not yet archived (ms); 0 when none waits.
    pub lag_ms: i64,
    /// The stream holding it.
    pub oldest_stream: Option<String>,
    /// Streams with events waiting.
    pub streams_behind: u64,
    /// Streams looked at.
    pub streams_checked: u64,
}

/// Why the lag could not be measured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LagError {
    /// The stream registry or archive index could not be read.
    #[error("registry: {0}")]
    Sql(#[from] SqlError),
    /// The event log could not be read.
    #[error("event log: {0}")]
    Log(#[from] EventLogError),
}

/// Measures the lag at `now` (unix ms).
pub async fn measure<P: Platform>(p: &P, now: i64) -> Result<PipelineLag, LagError> {
    let streams = positions(p.sql()).await?;
    let mut lag = PipelineLag {
        lag_ms: 0,
        oldest_stream: None,
        streams_behind: 0,
        streams_checked: streams.len() as u64,
    };
    for (stream, through) in streams {
        let Some(first) = p
            .event_log()
            .read(&stream, through, 1)
            .await?
            .into_iter()
            .next()
        else {
            continue;
        };
        lag.streams_behind += 1;
        let age = now.saturating_sub(first.received_at_ms).max(0);
        if age >= lag.lag_ms {
            lag.lag_ms = age;
            lag.oldest_stream = Some(stream.to_string());
        }
    }
    Ok(lag)
}

/// Every registered stream (up to [`MAX_STREAMS`], least recently archived first) with the
/// last position archived (0: none).
async fn positions<S: Sql>(sql: &S) -> Result<Vec<(StreamId, i64)>, SqlError> {
    let rows = sql
        .query(
            Stmt::new(
                "SELECT s.kind AS kind, s.tenant_id AS tenant_id,
                   COALESCE(MAX(a.last_seq), 0) AS through, MAX(a.created_at) AS archived_at
                 FROM event_streams s
                 LEFT JOIN archive_index a ON a.kind = s.kind AND a.tenant_id = s.tenant_id
                 GROUP BY s.kind, s.tenant_id
                 ORDER BY archived_at IS NOT NULL, archived_at, s.kind, s.tenant_id
                 LIMIT ?1",
            )
            .bind(i64::from(MAX_STREAMS)),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(kind) = StreamKind::parse(&r.text("kind")?) else {
            continue;
        };
        let stream = StreamId {
            kind,
            tenant: r.text("tenant_id")?,
        };
        out.push((stream, r.i64("through")?));
    }
    Ok(out)
}
