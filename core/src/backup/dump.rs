//! The database as SQL text: its schema as `sqlite_master` holds it, then every row of every
//! table as an `INSERT`, then its indexes. The text is what `sqlite3 .dump` and
//! `wrangler d1 export` write, so it restores with `wrangler d1 execute --file` or `sqlite3`.
//!
//! Core runs literal statements only, so a table's rows are read by a statement written here
//! for that table ([`TABLES`]); a table the database holds that this list does not name is
//! reported ([`Dump::unlisted`]), never silently left out, and a unit test holds the list to
//! the migrations.

#![allow(async_fn_in_trait)]

use sha2::{Digest, Sha256};

use crate::ports::{Row, Sql, SqlError, Stmt, Value};

/// One table whose rows the dump reads.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// Rows after rowid `?1`, in rowid order, at most `?2`; the rowid as `__backup_rowid`.
    pub page: &'static str,
}

/// The column that carries the rowid through a page (never written to the dump).
const ROWID: &str = "__backup_rowid";

macro_rules! tables {
    ($($name:literal),* $(,)?) => {
        &[$(Table {
            name: $name,
            page: concat!(
                "SELECT rowid AS __backup_rowid, * FROM ", $name,
                " WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
            ),
        }),*]
    };
}

/// Every table a control-plane database may hold, in the migrations' order. Optional ones:
/// `d1_migrations` (wrangler's record of applied migrations, kept so that a restored database
/// needs no migration run), and the event log's tables where the log shares the database
/// (Spin).
pub const TABLES: &[Table] = tables![
    "d1_migrations",
    "roles",
    "plans",
    "tenants",
    "users",
    "password_history",
    "mfa_recovery_codes",
    "webauthn_credentials",
    "apps",
    "tenant_apps",
    "api_keys",
    "sessions",
    "auth_flows",
    "password_reset_tokens",
    "invitations",
    "sso_configs",
    "password_policies",
    "feature_flags",
    "plan_default_flags",
    "audit_outbox",
    "archive_index",
    "signing_keys",
    "idempotency_keys",
    "mail_outbox",
    "rate_limits",
    "event_streams",
    "oidc_client_secrets",
    "oidc_login_flows",
    "oidc_codes",
    "oidc_grants",
    "mail_queue",
    "console_sessions",
    "console_signins",
    "request_metrics",
    "alert_channels",
    "alerts",
    "alert_deliveries",
    "app_health_checks",
    "app_health_minutes",
    "journey_canary",
    "journey_runs",
    "anomaly_counts",
    "anomaly_addresses",
    "anomaly_key_hours",
    "risk_policies",
    "sign_in_attempts",
    "known_devices",
    "sign_in_revocations",
    "stream_events",
    "stream_event_ids",
    "stream_heads",
];

/// Whether a table is left out on purpose: SQLite's own (`sqlite_sequence` is written from its
/// rows instead), D1's internal ones (`_cf_*`, unreadable), and the blob store where it shares
/// the database (Spin), which holds the backups themselves and the event archives.
pub fn excluded(name: &str) -> bool {
    name.starts_with("sqlite_") || name.starts_with("_cf_") || name == crate::blobs::TABLE
}

/// Rows read per statement: small enough for any row size D1 allows, large enough to keep the
/// number of statements down.
const PAGE_ROWS: i64 = 500;

/// The first statement of a dump: foreign keys are checked at the end of the restore's
/// transaction, not row by row, so tables and rows may come in any order.
pub const HEADER: &str = "PRAGMA defer_foreign_keys = true;\n";

/// What a dump wrote of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// The table's name.
    pub name: String,
    /// Rows written.
    pub rows: u64,
    /// SHA-256 (hex) of the table's `INSERT` statements as written, one per line: equal
    /// hashes, equal content, whichever database they came from.
    pub sha256: String,
}

/// Where a dump's text goes: called with each chunk of whole statements once it is at least
/// the chunk size, and once more at the end.
pub trait Sink {
    /// Takes a chunk of whole statements.
    async fn chunk(&mut self, sql: String) -> Result<(), DumpError>;
}

/// Why a dump failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DumpError {
    /// The database refused a read.
    #[error("cannot read the database: {0}")]
    Sql(#[from] SqlError),
    /// The sink could not take a chunk.
    #[error("cannot store the dump: {0}")]
    Store(String),
}

/// What a whole dump wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// Every table written, in order.
    pub tables: Vec<TableSummary>,
    /// Tables the database holds that [`TABLES`] does not name: not in the dump.
    pub unlisted: Vec<String>,
    /// Bytes of SQL text written.
    pub sql_bytes: u64,
}

/// One schema object of `sqlite_master`.
struct SchemaObject {
    kind: String,
    name: String,
    table: String,
    sql: String,
}

/// Writes the whole database to `sink` in chunks of about `chunk_bytes`: schema, rows,
/// `sqlite_sequence`, then indexes, triggers and views (after the rows, so no trigger fires on
/// the restore's inserts and no index is updated row by row).
pub async fn dump<S: Sql, K: Sink>(
    sql: &S,
    sink: &mut K,
    chunk_bytes: usize,
) -> Result<Dump, DumpError> {
    let objects = schema(sql).await?;
    let mut out = Writer {
        sink,
        buf: String::from(HEADER),
        chunk_bytes,
        written: 0,
    };
    let mut report = Dump::default();
    let tables: Vec<&SchemaObject> = objects.iter().filter(|o| o.kind == "table").collect();
    for t in &tables {
        out.push(&statement(&t.sql)).await?;
    }
    for t in &tables {
        match TABLES.iter().find(|known| known.name == t.name) {
            Some(known) => report.tables.push(dump_rows(sql, known, &mut out).await?),
            None => report.unlisted.push(t.name.clone()),
        }
    }
    dump_sequences(sql, &mut out).await?;
    for o in objects.iter().filter(|o| o.kind != "table") {
        out.push(&statement(&o.sql)).await?;
    }
    report.sql_bytes = out.finish().await?;
    Ok(report)
}

/// The schema objects to dump, in creation order.
async fn schema<S: Sql>(sql: &S) -> Result<Vec<SchemaObject>, SqlError> {
    let rows = sql
        .query(Stmt::new(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid",
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let o = SchemaObject {
            kind: r.text("type")?,
            name: r.text("name")?,
            table: r.text("tbl_name")?,
            sql: r.text("sql")?,
        };
        if !excluded(&o.name) && !excluded(&o.table) {
            out.push(o);
        }
    }
    Ok(out)
}

/// A schema statement as a line of the dump.
fn statement(sql: &str) -> String {
    format!("{};\n", sql.trim_end().trim_end_matches(';'))
}

/// Writes every row of `table`; returns its count and hash.
async fn dump_rows<S: Sql, K: Sink>(
    sql: &S,
    table: &Table,
    out: &mut Writer<'_, K>,
) -> Result<TableSummary, DumpError> {
    let mut hash = Sha256::new();
    let mut rows = 0u64;
    // Below any rowid SQLite assigns, and a number D1 carries exactly (it binds doubles).
    let mut after = -(1i64 << 53) + 1;
    loop {
        let page = sql
            .query(Stmt::new(table.page).bind(after).bind(PAGE_ROWS))
            .await?;
        for row in &page {
            after = row.i64(ROWID)?;
            let line = insert(table.name, row);
            hash.update(line.as_bytes());
            rows += 1;
            out.push(&line).await?;
        }
        if (page.len() as i64) < PAGE_ROWS {
            break;
        }
    }
    Ok(TableSummary {
        name: table.name.to_owned(),
        rows,
        sha256: crate::crypto::hex(&hash.finalize()),
    })
}

/// `AUTOINCREMENT` counters, so a restored table never hands out an id it used before (an
/// outbox sequence number reused would read as a duplicate downstream).
async fn dump_sequences<S: Sql, K: Sink>(
    sql: &S,
    out: &mut Writer<'_, K>,
) -> Result<(), DumpError> {
    let exists = sql
        .query(Stmt::new(
            "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
        ))
        .await?;
    if exists.is_empty() {
        return Ok(());
    }
    let rows = sql
        .query(Stmt::new(
            "SELECT name, seq FROM sqlite_sequence ORDER BY name",
        ))
        .await?;
    for r in rows {
        let name = r.text("name")?;
        if excluded(&name) {
            continue;
        }
        let name = literal(&Value::Text(name));
        let line = format!(
            "DELETE FROM sqlite_sequence WHERE name = {name};\nINSERT INTO sqlite_sequence (name, seq) VALUES ({name}, {});\n",
            r.i64("seq")?
        );
        out.push(&line).await?;
    }
    Ok(())
}

/// One row as an `INSERT` line, columns by name (a row holds them sorted).
pub fn insert(table: &str, row: &Row) -> String {
    let mut cols = String::new();
    let mut vals = String::new();
    for (name, value) in row.0.iter().filter(|(n, _)| n.as_str() != ROWID) {
        if !cols.is_empty() {
            cols.push(',');
            vals.push(',');
        }
        cols.push_str(&identifier(name));
        vals.push_str(&literal(value));
    }
    format!(
        "INSERT INTO {} ({cols}) VALUES ({vals});\n",
        identifier(table)
    )
}

/// A name as a quoted SQL identifier.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value as an SQL literal that reads back as the same value and storage class.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(v) => v.to_string(),
        Value::Real(v) if v.is_nan() => "NULL".to_owned(),
        Value::Real(v) if v.is_infinite() => if *v > 0.0 { "9e999" } else { "-9e999" }.to_owned(),
        // `{:?}` is the shortest text that parses back to the same double, and always shows a
        // fraction or an exponent, so SQLite reads a REAL.
        Value::Real(v) => format!("{v:?}"),
        // A NUL cannot sit inside a quoted literal; the bytes as text can.
        Value::Text(v) if v.contains('\0') => {
            format!("CAST(X'{}' AS TEXT)", crate::crypto::hex(v.as_bytes()))
        }
        Value::Text(v) => format!("'{}'", v.replace('\'', "''")),
        Value::Blob(v) => format!("X'{}'", crate::crypto::hex(v)),
    }
}

/// Gathers statements into chunks for the sink.
struct Writer<'a, K: Sink> {
    sink: &'a mut K,
    buf: String,
    chunk_bytes: usize,
    written: u64,
}

impl<K: Sink> Writer<'_, K> {
    /// Appends whole statements; hands a chunk over once it is full.
    async fn push(&mut self, text: &str) -> Result<(), DumpError> {
        self.buf.push_str(text);
        if self.buf.len() >= self.chunk_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), DumpError> {
        let chunk = std::mem::take(&mut self.buf);
        self.written += chunk.len() as u64;
        self.sink.chunk(chunk).await
    }

    /// Hands over the rest; returns the bytes written in all.
    async fn finish(mut self) -> Result<u64, DumpError> {
        if !self.buf.is_empty() {
            self.flush().await?;
        }
        Ok(self.written)
    }
}
