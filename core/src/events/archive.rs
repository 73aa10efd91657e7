//! The archive (FR-BILL-001, FR-LOG-001): the event log's tail is flushed in batches to the
//! blob store as immutable NDJSON objects, recorded in `archive_index` (D1), and only then
//! dropped from the log.
//!
//! Object keys: `{kind}/{tenant}/{yyyy}/{mm}/{dd}/{first_seq}-{last_seq}.ndjson`, the date being
//! the UTC day the events were received (a batch is split at midnight). Each line is one
//! [`ArchivedRecord`]: the stored event with its sequence number and both chain hashes, the
//! body kept as the exact JSON text its hash covers. An object is gzipped (key suffix `.gz`)
//! when that saves at least a tenth of its size, which it does for all but the smallest batches
//! (the repeated field names alone compress several-fold).
//!
//! Each object is anchored as it is indexed ([`anchor`](super::anchor)): its index row carries
//! an HMAC of its stream, range and last hash under a server secret, which a history rewritten
//! and rehashed without that secret cannot match.
//!
//! Every step is idempotent, so a flush interrupted anywhere is finished by the next one: an
//! object written but not indexed is rewritten (same key) or left orphaned (never read: exports
//! go through the index); a batch indexed but not yet dropped from the log is dropped first
//! thing next time. Two flushes racing on one stream cannot both index overlapping ranges: the
//! index insert refuses a range that does not start after the last indexed one.

use chrono::Datelike as _;
use serde::{Deserialize, Serialize};

use super::anchor::{Anchor, AnchorKey, AnchorKeyProblem, Position};
use crate::kernel::ErrorKind;
use crate::ports::{
    BlobError, Blobs, EventLog, EventLogError, Row, Sql, SqlError, Stmt, StoredEvent, StreamId,
};
use crate::time::date_of;

/// Events per archive object (at most; fewer at a day boundary or the end of the tail).
pub const FLUSH_BATCH: u32 = 1000;

/// Objects one flush of one stream writes at most, so a cron run stays short.
pub const MAX_OBJECTS_PER_FLUSH: usize = 50;

/// The content type of archive objects.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// The content type of gzipped archive objects (key suffix `.gz`).
pub const GZIP_CONTENT_TYPE: &str = "application/gzip";

/// The largest object [`unpack`] inflates: far above a batch of [`FLUSH_BATCH`] events, so only
/// a corrupt or hostile object reaches it.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// The stored form of an NDJSON batch under `key` (without suffix): gzipped with `.gz` added
/// when that saves at least 10%, else as it is.
pub fn pack(key: String, ndjson: Vec<u8>) -> (String, Vec<u8>, &'static str) {
    match gzip(&ndjson) {
        Ok(small) if small.len().saturating_mul(10) <= ndjson.len().saturating_mul(9) => {
            (format!("{key}.gz"), small, GZIP_CONTENT_TYPE)
        }
        _ => (key, ndjson, CONTENT_TYPE),
    }
}

/// `bytes` gzipped (default level).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    gz.finish()
}

/// The NDJSON text of a stored object (inflated if its key ends in `.gz`).
pub fn unpack(key: &str, bytes: Vec<u8>) -> Result<Vec<u8>, ArchiveError> {
    use std::io::Read;
    if !key.ends_with(".gz") {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .take(MAX_UNPACKED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArchiveError::Corrupt {
            key: key.to_owned(),
            problem: format!("not a gzip object: {e}"),
        })?;
    if out.len() as u64 > MAX_UNPACKED_BYTES {
        return Err(ArchiveError::Corrupt {
            key: key.to_owned(),
            problem: "inflates beyond the size limit".into(),
        });
    }
    Ok(out)
}

/// One line of an archive object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedRecord {
    /// Position in the stream.
    pub seq: i64,
    /// Event id.
    pub id: String,
    /// When it happened (unix ms).
    pub occurred_at: i64,
    /// When it was accepted (unix ms).
    pub received_at: i64,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
    /// The event as the exact JSON text the hash covers.
    pub body: String,
}

impl From<StoredEvent> for ArchivedRecord {
    fn from(e: StoredEvent) -> Self {
        ArchivedRecord {
            seq: e.seq,
            id: e.id,
            occurred_at: e.occurred_at_ms,
            received_at: e.received_at_ms,
            prev_hash: e.prev_hash,
            hash: e.hash,
            body: e.body,
        }
    }
}

/// One row of `archive_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The object key.
    pub key: String,
    /// First sequence number in it.
    pub first_seq: i64,
    /// Last sequence number in it.
    pub last_seq: i64,
    /// Hash of its first record.
    pub first_hash: Option<String>,
    /// Hash of its last record.
    pub last_hash: Option<String>,
    /// Records in it.
    pub count: i64,
    /// Earliest `occurred_at` in it.
    pub period_start: i64,
    /// Latest `occurred_at` in it.
    pub period_end: i64,
    /// Its anchor; `None` for an object indexed without one (before anchoring existed, or
    /// stripped).
    pub anchor: Option<Anchor>,
}

impl ArchiveEntry {
    pub(crate) fn from_row(r: &Row) -> Result<Self, SqlError> {
        Ok(ArchiveEntry {
            key: r.text("key")?,
            first_seq: r.i64("first_seq")?,
            last_seq: r.i64("last_seq")?,
            first_hash: r.opt_text("first_hash")?,
            last_hash: r.opt_text("last_hash")?,
            count: r.i64("count")?,
            period_start: r.i64("period_start")?,
            period_end: r.i64("period_end")?,
            anchor: match (r.opt_text("anchor_kid")?, r.opt_text("anchor")?) {
                (Some(kid), Some(mac)) => Some(Anchor { kid, mac }),
                _ => None,
            },
        })
    }
}

/// What a flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Objects written and indexed.
    pub objects: u64,
    /// Events archived.
    pub events: u64,
}

/// Why a flush or a read of the archive failed. Nothing is lost: the tail stays in the log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArchiveError {
    /// The event log failed.
    #[error("event log: {0}")]
    Log(#[from] EventLogError),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// D1 failed.
    #[error("archive index: {0}")]
    Index(#[from] SqlError),
    /// No key can anchor the objects a flush would write (nothing was written).
    #[error("{0}")]
    AnchorKey(#[from] AnchorKeyProblem),
    /// An indexed object is missing or unreadable.
    #[error("archive object {key}: {problem}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl ArchiveError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Log(_) => "event_log_failed",
            ArchiveError::Blob(_) => "blob_store_failed",
            ArchiveError::Index(_) => "archive_index_failed",
            ArchiveError::AnchorKey(p) => p.code(),
            ArchiveError::Corrupt { .. } => "archive_corrupt",
        }
    }

    /// What kind of failure it is: a store that could not be reached is unavailable (a retry
    /// may succeed); anything else is internal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Log(EventLogError::Unavailable(_))
            | ArchiveError::Blob(BlobError::Unavailable(_))
            | ArchiveError::Index(SqlError::Unavailable(_)) => ErrorKind::Unavailable,
            ArchiveError::Log(_)
            | ArchiveError::Blob(_)
            | ArchiveError::Index(_)
            | ArchiveError::AnchorKey(_)
            | ArchiveError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

crate::kernel::domain_errors!(ArchiveError);

/// The object key of a batch.
pub fn object_key(stream: &StreamId, received_at: i64, first_seq: i64, last_seq: i64) -> String {
    let d = date_of(received_at);
    format!(
        "{}/{}/{:04}/{:02}/{:02}/{first_seq}-{last_seq}.ndjson",
        stream.kind.as_str(),
        stream.tenant,
        d.year(),
        d.month(),
        d.day()
    )
}

/// The NDJSON text of a batch.
pub fn encode(records: &[ArchivedRecord]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Parses a stored archive object back into its records.
pub fn decode(key: &str, bytes: Vec<u8>) -> Result<Vec<ArchivedRecord>, ArchiveError> {
    let bytes = unpack(key, bytes)?;
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).map_err(|e| ArchiveError::Corrupt {
                key: key.to_owned(),
                problem: format!("unreadable line: {e}"),
            })
        })
        .collect()
}

/// The last sequence number archived for a stream (0 if none).
pub async fn archived_through<S: Sql>(sql: &S, stream: &StreamId) -> Result<i64, SqlError> {
    let rows = sql
        .query(
            Stmt::new(
                "SELECT COALESCE(MAX(last_seq), 0) AS n FROM archive_index WHERE kind = ?1 AND tenant_id = ?2",
            )
            .bind(stream.kind.as_str())
            .bind(&stream.tenant),
        )
        .await?;
    rows.first().map_or(Ok(0), |r| r.i64("n"))
}

/// Archives a stream's tail: up to [`MAX_OBJECTS_PER_FLUSH`] objects of up to
/// [`FLUSH_BATCH`] events each, each indexed with its anchor under `signer`, then drops what
/// was archived from the log. The caller loads the key first
/// ([`AnchorKeys::signer`](super::anchor::AnchorKeys::signer)), so a deployment without one
/// writes nothing rather than an unanchored archive.
pub async fn flush_stream<L: EventLog, B: Blobs, S: Sql>(
    log: &L,
    blobs: &B,
    sql: &S,
    signer: &AnchorKey,
    stream: &StreamId,
    now: i64,
) -> Result<FlushReport, ArchiveError> {
    let stream_name = stream.to_string();
    let mut report = FlushReport::default();
    for _ in 0..MAX_OBJECTS_PER_FLUSH {
        let records = next_batch(log, sql, stream).await?;
        let Some(batch) = Batch::of(&records) else {
            break;
        };
        let (key, size) = write_object(blobs, stream, &batch).await?;
        let anchor = signer.sign(&Position {
            stream: &stream_name,
            first_seq: batch.first.seq,
            last_seq: batch.last.seq,
            last_hash: &batch.last.hash,
        });
        let inserted = index_object(sql, stream, &key, &batch, size, anchor, now).await?;
        if inserted == 0 {
            delete_if_orphan(sql, blobs, &key).await?;
            continue;
        }
        log.truncate(stream, batch.last.seq).await?;
        report.objects += 1;
        report.events += u64::try_from(batch.count()).unwrap_or(0);
    }
    Ok(report)
}

/// The next batch of the stream's tail not yet archived: the events received on the UTC day
/// of its first one, at most [`FLUSH_BATCH`]; empty when the tail is. A range an earlier flush
/// indexed but did not drop from the log is dropped first.
async fn next_batch<L: EventLog, S: Sql>(
    log: &L,
    sql: &S,
    stream: &StreamId,
) -> Result<Vec<ArchivedRecord>, ArchiveError> {
    let through = archived_through(sql, stream).await?;
    if through > 0 {
        // Finishes an earlier flush that indexed but did not drop.
        log.truncate(stream, through).await?;
    }
    let tail = log.read(stream, through, FLUSH_BATCH).await?;
    let Some(first) = tail.first() else {
        return Ok(Vec::new());
    };
    // One object per UTC day of receipt.
    let day = date_of(first.received_at_ms);
    Ok(tail
        .into_iter()
        .take_while(|e| date_of(e.received_at_ms) == day)
        .map(ArchivedRecord::from)
        .collect())
}

/// The records of one archive object, with its first and last.
struct Batch<'a> {
    /// Every record, in order.
    records: &'a [ArchivedRecord],
    /// The first record.
    first: &'a ArchivedRecord,
    /// The last record.
    last: &'a ArchivedRecord,
}

impl<'a> Batch<'a> {
    /// `records` as a batch; `None` when there are none.
    fn of(records: &'a [ArchivedRecord]) -> Option<Self> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return None;
        };
        Some(Batch {
            records,
            first,
            last,
        })
    }

    /// How many records it holds.
    fn count(&self) -> i64 {
        i64::try_from(self.records.len()).unwrap_or(i64::MAX)
    }
}

/// Writes `batch` to the blob store as one NDJSON object (gzipped when that pays); returns its
/// key and its stored size in bytes.
async fn write_object<B: Blobs>(
    blobs: &B,
    stream: &StreamId,
    batch: &Batch<'_>,
) -> Result<(String, i64), ArchiveError> {
    let key = object_key(
        stream,
        batch.first.received_at,
        batch.first.seq,
        batch.last.seq,
    );
    let ndjson = encode(batch.records).map_err(|e| ArchiveError::Corrupt {
        key: key.clone(),
        problem: e.to_string(),
    })?;
    let (key, bytes, content_type) = pack(key, ndjson);
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    blobs.put(&key, bytes, content_type).await?;
    Ok((key, size))
}

/// Records the object `key` holding `batch` in `archive_index` with its `anchor`, unless a
/// range ending at or after its start is indexed already; returns the rows inserted (0 or 1).
async fn index_object<S: Sql>(
    sql: &S,
    stream: &StreamId,
    key: &str,
    batch: &Batch<'_>,
    size: i64,
    anchor: Anchor,
    now: i64,
) -> Result<u64, SqlError> {
    let (first, last) = (batch.first, batch.last);
    let period_start = batch
        .records
        .iter()
        .map(|r| r.occurred_at)
        .min()
        .unwrap_or(0);
    let period_end = batch
        .records
        .iter()
        .map(|r| r.occurred_at)
        .max()
        .unwrap_or(0);
    sql.execute(
        Stmt::new(
            "INSERT INTO archive_index (key, kind, tenant_id, first_seq, last_seq, first_hash,
 last_hash, count, bytes, period_start, period_end, created_at, anchor_kid, anchor)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
WHERE NOT EXISTS (SELECT 1 FROM archive_index WHERE kind = ?2 AND tenant_id = ?3 AND last_seq >= ?4)",
        )
        .bind(key)
        .bind(stream.kind.as_str())
        .bind(&stream.tenant)
        .bind(first.seq)
        .bind(last.seq)
        .bind(&first.hash)
        .bind(&last.hash)
        .bind(batch.count())
        .bind(size)
        .bind(period_start)
        .bind(period_end)
        .bind(now)
        .bind(anchor.kid)
        .bind(anchor.mac),
    )
    .await
}

/// After a concurrent flush archived the range first: deletes the object `key` unless it is
/// the very object that flush indexed.
async fn delete_if_orphan<S: Sql, B: Blobs>(
    sql: &S,
    blobs: &B,
    key: &str,
) -> Result<(), ArchiveError> {
    let indexed = sql
        .query(Stmt::new("SELECT 1 AS x FROM archive_index WHERE key = ?1").bind(key))
        .await?;
    if indexed.is_empty() {
        blobs.delete(key).await?;
    }
    Ok(())
}

/// The archive entries of a stream holding sequence numbers from `from_seq` on, in order, at
/// most `limit`.
pub async fn entries_from<S: Sql>(
    sql: &S,
    stream: &StreamId,
    from_seq: i64,
    limit: u32,
) -> Result<Vec<ArchiveEntry>, SqlError> {
    let rows = sql
        .query(
            Stmt::new(
                "SELECT key, first_seq, last_seq, first_hash, last_hash, count, period_start, period_end,
 anchor_kid, anchor
FROM archive_index WHERE kind = ?1 AND tenant_id = ?2 AND last_seq >= ?3
ORDER BY first_seq LIMIT ?4",
            )
            .bind(stream.kind.as_str())
            .bind(&stream.tenant)
            .bind(from_seq)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter().map(ArchiveEntry::from_row).collect()
}
