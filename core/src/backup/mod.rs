//! Daily backups of the control-plane database (NFR-OPS-004), taken by the scheduled job: the
//! whole database as SQL text ([`dump`]), gzip-compressed and sealed under the master key, in
//! parts of at most [`PART_SQL_BYTES`] of text (so a Worker never holds more than one part and
//! its compressed copy), written through the `Blobs` port under `backups/d1/{YYYY-MM-DD}/`
//! (R2 on Workers; the blob store of Spin's SQLite on Spin), with a manifest written last.
//!
//! A day's manifest is what makes its backup finished: a run finding it leaves that day alone
//! (never overwrites it), a run not finding it (the first attempt failed half-way) writes the
//! whole backup again. Backups older than [`KEEP_DAYS`] are deleted once today's is finished.
//!
//! A backup holds personal data (users' emails and names, password hashes): outside development
//! it is never written unsealed. Each part is AES-256-GCM under `MASTER_KEY` with the part's
//! object key as associated data (a part renamed or moved does not open); the manifest (table
//! names, row counts, hashes, no row content) is plain, and names the key by
//! [`MasterKey::key_id`]. `scripts/restore-d1.mjs` checks, opens and joins the parts into one
//! SQL file for `wrangler d1 execute`.

pub mod dump;

use serde::{Deserialize, Serialize};

use crate::crypto::sha256_hex;
use crate::ports::{BlobError, Blobs, Clock, Platform, Secrets};
use crate::tokens::master_key::{MasterKey, MasterKeyError};

use dump::{DumpError, Sink, TableSummary};

/// Where backups of the control-plane database are kept, one folder per UTC day.
pub const PREFIX: &str = "backups/d1/";

/// How many days of backups are kept (today's and the 34 before it).
pub const KEEP_DAYS: i64 = 35;

/// Most SQL text in one part, before compression: a part and its compressed, sealed copy stay
/// far below a Worker's 128 MB.
pub const PART_SQL_BYTES: usize = 4 * 1024 * 1024;

/// The format a manifest names, for the restore script.
pub const FORMAT: &str = "edgeplane-d1-sql/1";

/// The daily cron of wrangler.toml: the run that takes the backup.
pub const DAILY_CRON: &str = "17 3 * * *";

/// From this UTC hour on, any run takes the day's backup if the daily run did not (it failed,
/// or the runtime has no cron and its scheduler sends other expressions).
const CATCH_UP_HOUR: u32 = 4;

/// Most keys read per listing page.
const LIST_PAGE: u32 = 1000;

/// The manifest of one day's backup, written after its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// When the dump started and when its last part was written (unix ms). Rows are read
    /// table by table in that window, not as of one instant (D1 Time Travel restores an
    /// instant; see the README).
    pub started_at_ms: i64,
    /// See `started_at_ms`.
    pub finished_at_ms: i64,
    /// Whether parts are sealed under the master key.
    pub sealed: bool,
    /// [`MasterKey::key_id`] of the key that sealed them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_id: Option<String>,
    /// SQL text in all parts, before compression.
    pub sql_bytes: u64,
    /// Every table dumped, in order, with its row count and content hash.
    pub tables: Vec<ManifestTable>,
    /// The parts in the order they restore.
    pub parts: Vec<ManifestPart>,
    /// Tables the database holds that the dump does not know: not in this backup.
    #[serde(default)]
    pub unlisted_tables: Vec<String>,
}

/// One table of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestTable {
    /// The table's name.
    pub name: String,
    /// Rows dumped.
    pub rows: u64,
    /// SHA-256 (hex) of its `INSERT` statements: equal on two databases with equal content.
    pub sha256: String,
}

/// One part of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPart {
    /// The object key.
    pub key: String,
    /// SQL text in it, before compression.
    pub sql_bytes: u64,
    /// Bytes of the stored object.
    pub stored_bytes: u64,
    /// SHA-256 (hex) of the stored object.
    pub sha256: String,
}

/// Why a backup could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackupError {
    /// No usable master key outside development: nothing is written unsealed.
    #[error("backups are sealed under the master key: {0}")]
    Key(#[from] MasterKeyError),
    /// The database could not be read or a part not stored.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blobs(#[from] BlobError),
    /// A manifest could not be written or read.
    #[error("manifest: {0}")]
    Manifest(String),
}

/// The object key of a day's manifest.
pub fn manifest_key(date: &str) -> String {
    format!("{PREFIX}{date}/manifest.json")
}

/// Whether a run of `cron` at `now_ms` takes the day's backup if it is missing.
pub fn due(cron: &str, now_ms: i64) -> bool {
    cron == DAILY_CRON || crate::time::hour_of(now_ms) >= CATCH_UP_HOUR
}

/// Takes today's backup unless it is finished already. Returns its manifest, or `None` when
/// the day had one.
pub async fn daily<P: Platform>(p: &P, now_ms: i64) -> Result<Option<Manifest>, BackupError> {
    let date = crate::time::format_day(now_ms);
    if read_manifest(p, &date).await?.is_some() {
        return Ok(None);
    }
    write(p, &date, now_ms).await.map(Some)
}

/// A day's manifest, `None` if that day has no finished backup.
pub async fn read_manifest<P: Platform>(
    p: &P,
    date: &str,
) -> Result<Option<Manifest>, BackupError> {
    match p.blobs().get(&manifest_key(date)).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BackupError::Manifest(e.to_string())),
    }
}

/// Dumps the database into `date`'s folder, parts first, then the manifest.
pub async fn write<P: Platform>(p: &P, date: &str, now_ms: i64) -> Result<Manifest, BackupError> {
    let key = sealing_key(p.secrets())?;
    let mut sink = PartSink {
        p,
        date,
        key: key.as_ref(),
        parts: Vec::new(),
    };
    let dumped = dump::dump(p.sql(), &mut sink, PART_SQL_BYTES).await?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        date: date.to_owned(),
        started_at_ms: now_ms,
        finished_at_ms: p.clock().now_ms(),
        sealed: key.is_some(),
        key_id: key.as_ref().map(MasterKey::key_id),
        sql_bytes: dumped.sql_bytes,
        tables: dumped.tables.into_iter().map(ManifestTable::from).collect(),
        parts: sink.parts,
        unlisted_tables: dumped.unlisted,
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest(e.to_string()))?;
    p.blobs()
        .put(&manifest_key(date), json, "application/json")
        .await?;
    Ok(manifest)
}

/// The master key, or `None` in development without one (a local backup unsealed).
fn sealing_key<S: Secrets + ?Sized>(secrets: &S) -> Result<Option<MasterKey>, BackupError> {
    match MasterKey::load(secrets) {
        Ok(key) => Ok(Some(key)),
        Err(MasterKeyError::Missing)
            if secrets.get("EDGEPLANE_ENV").as_deref() == Some("development") =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

impl From<TableSummary> for ManifestTable {
    fn from(t: TableSummary) -> Self {
        ManifestTable {
            name: t.name,
            rows: t.rows,
            sha256: t.sha256,
        }
    }
}

/// Stores each chunk of the dump as one part.
struct PartSink<'a, P: Platform> {
    p: &'a P,
    date: &'a str,
    key: Option<&'a MasterKey>,
    parts: Vec<ManifestPart>,
}

impl<P: Platform> Sink for PartSink<'_, P> {
    async fn chunk(&mut self, sql: String) -> Result<(), DumpError> {
        let n = self.parts.len() + 1;
        let suffix = if self.key.is_some() { ".enc" } else { "" };
        let key = format!("{PREFIX}{}/part-{n:05}.sql.gz{suffix}", self.date);
        let gz = gzip(sql.as_bytes()).map_err(|e| DumpError::Store(e.to_string()))?;
        let (bytes, content_type) = match self.key {
            Some(k) => (
                k.seal_bytes(self.p.random(), &key, &gz),
                "application/octet-stream",
            ),
            None => (gz, "application/gzip"),
        };
        let part = ManifestPart {
            key: key.clone(),
            sql_bytes: sql.len() as u64,
            stored_bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        };
        drop(sql);
        self.p
            .blobs()
            .put(&key, bytes, content_type)
            .await
            .map_err(|e| DumpError::Store(e.to_string()))?;
        self.parts.push(part);
        Ok(())
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    gz.finish()
}

/// Deletes every backup object of a day before the last [`KEEP_DAYS`], provided today's
/// backup is finished (so the newest backups are never the ones that go). Returns how many
/// objects it deleted.
pub async fn expire<P: Platform>(p: &P, now_ms: i64) -> Result<u64, BackupError> {
    let today = crate::time::format_day(now_ms);
    if read_manifest(p, &today).await?.is_none() {
        return Ok(0);
    }
    let oldest_kept = crate::time::format_day(now_ms - (KEEP_DAYS - 1) * 86_400_000);
    let mut old = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = p.blobs().list(PREFIX, cursor.as_deref(), LIST_PAGE).await?;
        for key in page.keys {
            let day = key[PREFIX.len().min(key.len())..]
                .split('/')
                .next()
                .unwrap_or("");
            if is_day(day) && day < oldest_kept.as_str() {
                old.push(key);
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for key in &old {
        p.blobs().delete(key).await?;
    }
    Ok(old.len() as u64)
}

/// Whether `s` looks like `YYYY-MM-DD` (anything else under the prefix is left alone).
fn is_day(s: &str) -> bool {
    s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

#[cfg(test)]
mod tests;
