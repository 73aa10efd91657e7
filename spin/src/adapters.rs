//! Spin implementations of core's ports. Thin: each turns a Spin call into a port call.

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use edgeplane_core::blobs::SqlBlobs;
use edgeplane_core::crypto::DalekVerifier;
use edgeplane_core::events::SqlEventLog;
use edgeplane_core::faults::{Faultable, Shifted};
use edgeplane_core::http::{ApiError, REQUEST_ID};
use edgeplane_core::mail::{ConfiguredMailer, HttpMailer, OutboxMailer};
use edgeplane_core::ports::{
    AppendOutcome, Backends, Clock, EventLog, EventLogError, Kv, KvError, Logger, NewEvent,
    Platform, Random, Row, Secrets, Sql, SqlError, Stmt, StoredEvent, StreamId, Value,
};
use edgeplane_core::{ids, migrations};
use spin_sdk::wit::wasi::keyvalue;
use spin_sdk::{sqlite, variables};

use crate::fetch::SpinHttp;

/// The ports of one request's component instance. The storage ports fail on cue in
/// development with fault injection enabled ([`Faultable`]), and the clock moves there on cue
/// ([`Shifted`]).
pub struct SpinPlatform {
    sql: Faultable<SpinSql>,
    kv: Faultable<SpinKv>,
    events: Faultable<LazyEventLog>,
    blobs: Faultable<SqlBlobs<SpinSql, SpinClock>>,
    mailer: ConfiguredMailer<SpinSql, SpinClock, SpinHttp, SpinVariables>,
}

impl SpinPlatform {
    /// The ports, nothing opened yet: the `default` key-value store is opened by the request's
    /// first key-value call (see [`SpinKv`]), the `default` database by its first SQL
    /// statement (see [`SpinSql`]).
    pub fn new() -> Self {
        let sql = SpinSql::default();
        SpinPlatform {
            kv: Faultable::new(SpinKv::default()),
            events: Faultable::new(LazyEventLog {
                log: SqlEventLog::new(sql.clone(), SpinClock),
                ready: Cell::new(false),
            }),
            blobs: Faultable::new(SqlBlobs::new(sql.clone(), SpinClock)),
            mailer: ConfiguredMailer::new(
                OutboxMailer::new(sql.clone(), SpinClock),
                HttpMailer::new(SpinHttp, SpinVariables),
            ),
            sql: Faultable::new(sql),
        }
    }
}

/// The answer to a request that could not be read (its body broke off, or a method, URL or
/// header the `http` types refuse): a 400 problem, cause logged.
pub fn unreadable_request(cause: &str) -> http::Response<Vec<u8>> {
    let error = ApiError::invalid_input("The request could not be read.");
    adapter_problem(error, "request unreadable", cause)
}

/// A problem answered before core was reached, with a fresh request id in the body and the
/// header, the cause in the log.
fn adapter_problem(error: ApiError, msg: &str, cause: &str) -> http::Response<Vec<u8>> {
    let request_id = ids::new_id(&SpinRandom);
    let line = serde_json::json!({ "level": "error", "msg": msg, "request_id": request_id, "error": cause });
    SpinLogger.line(&line.to_string());
    let mut resp = error.into_response(&request_id);
    if let Ok(id) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, id);
    }
    resp
}

/// Logs a failure of the adapter itself (no request id: after the answer, or before any).
pub fn log_error(msg: &str, cause: &str) {
    let line =
        serde_json::json!({ "level": "error", "msg": msg, "request_id": "-", "cause": cause });
    SpinLogger.line(&line.to_string());
}

impl Platform for SpinPlatform {
    type Sql = Faultable<SpinSql>;
    type Kv = Faultable<SpinKv>;
    type EventLog = Faultable<LazyEventLog>;
    type Blobs = Faultable<SqlBlobs<SpinSql, SpinClock>>;
    type Mailer = ConfiguredMailer<SpinSql, SpinClock, SpinHttp, SpinVariables>;
    type Clock = Shifted<SpinClock>;
    type Random = SpinRandom;
    type Secrets = SpinVariables;
    type Logger = SpinLogger;
    type Http = SpinHttp;
    type Signatures = DalekVerifier;

    fn sql(&self) -> &Self::Sql {
        &self.sql
    }
    fn kv(&self) -> &Self::Kv {
        &self.kv
    }
    fn event_log(&self) -> &Self::EventLog {
        &self.events
    }
    fn blobs(&self) -> &Self::Blobs {
        &self.blobs
    }
    fn mailer(&self) -> &Self::Mailer {
        &self.mailer
    }
    fn clock(&self) -> &Shifted<SpinClock> {
        &Shifted(SpinClock)
    }
    fn random(&self) -> &SpinRandom {
        &SpinRandom
    }
    fn secrets(&self) -> &SpinVariables {
        &SpinVariables
    }
    fn logger(&self) -> &SpinLogger {
        &SpinLogger
    }
    fn http(&self) -> &SpinHttp {
        &SpinHttp
    }
    fn signatures(&self) -> &DalekVerifier {
        &DalekVerifier
    }
    fn backends(&self) -> Backends {
        Backends {
            runtime: "spin",
            sql: "spin-sqlite",
            kv: "spin-key-value",
            event_log: "spin-sqlite",
            blobs: "spin-sqlite",
        }
    }
    fn instance_per_request(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------

/// `Sql` over Spin SQLite (`fermyon:spin/sqlite@2.0.0`), connected on the request's first
/// statement. Spin gives every request a new instance and every instance a new SQLite connection
/// (opening the file and, on the first statement, parsing its schema): a request that needs no
/// SQL (the hot paths, served from key-value and memory) must not pay for one.
#[derive(Clone, Default)]
pub struct SpinSql(Rc<OnceCell<Connection>>);

impl SpinSql {
    /// The instance's connection, opened on first use: foreign keys on, pending migrations
    /// applied (after the first request ever, a check of the tracking table).
    async fn connection(&self) -> Result<&Connection, SqlError> {
        if let Some(conn) = self.0.get() {
            return Ok(conn);
        }
        let conn = Connection::open().await?;
        // Single-threaded: only a statement awaited during the opening could have won the race.
        Ok(self.0.get_or_init(|| conn))
    }
}

/// One open Spin SQLite connection.
struct Connection(sqlite::Connection);

impl Connection {
    async fn open() -> Result<Self, SqlError> {
        let conn = sqlite::Connection::open_default()
            .map(Connection)
            .map_err(|e| SqlError::Unavailable(format!("open sqlite: {e}")))?;
        // D1 enforces foreign keys; SQLite does only when asked, per connection.
        conn.run(&Stmt::new("PRAGMA foreign_keys = ON"))?;
        if let Err(first) = migrations::apply(&conn, SpinClock.now_ms()).await {
            // A concurrent first request may have applied them meanwhile: look once more.
            migrations::apply(&conn, SpinClock.now_ms())
                .await
                .map_err(|e| SqlError::Unavailable(format!("migrations: {first}; retry: {e}")))?;
        }
        Ok(conn)
    }
}

impl Sql for SpinSql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        self.connection().await?.query(stmt).await
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        self.connection().await?.execute(stmt).await
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        self.connection().await?.batch(stmts).await
    }
}

fn to_spin(v: &Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Integer(i) => sqlite::Value::Integer(*i),
        Value::Real(f) => sqlite::Value::Real(*f),
        Value::Text(s) => sqlite::Value::Text(s.clone()),
        Value::Blob(b) => sqlite::Value::Blob(b.clone()),
    }
}

fn from_spin(v: &sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Integer(*i),
        sqlite::Value::Real(f) => Value::Real(*f),
        sqlite::Value::Text(s) => Value::Text(s.clone()),
        sqlite::Value::Blob(b) => Value::Blob(b.clone()),
    }
}

fn sql_error(e: sqlite::Error) -> SqlError {
    match e {
        sqlite::Error::Io(m) if m.contains("constraint failed") => SqlError::Constraint(m),
        sqlite::Error::Io(m) if m.contains("database is locked") || m.contains("busy") => {
            SqlError::Unavailable(m)
        }
        sqlite::Error::Io(m) => SqlError::Other(m),
        other => SqlError::Unavailable(other.to_string()),
    }
}

impl Connection {
    fn run(&self, stmt: &Stmt) -> Result<sqlite::QueryResult, SqlError> {
        let params: Vec<sqlite::Value> = stmt.params.iter().map(to_spin).collect();
        self.0.execute(stmt.sql, &params).map_err(sql_error)
    }

    fn changes(&self) -> Result<u64, SqlError> {
        // Spin's sqlite 2.0 interface has no change count; SQLite's own is per connection.
        let r = self
            .0
            .execute("SELECT changes() AS n", &[])
            .map_err(sql_error)?;
        let n = r
            .rows()
            .next()
            .and_then(|row| row.get::<i64>("n"))
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Sql for Connection {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        let result = self.run(&stmt)?;
        Ok(result
            .rows
            .iter()
            .map(|r| {
                Row(result
                    .columns
                    .iter()
                    .cloned()
                    .zip(r.values.iter().map(from_spin))
                    .collect())
            })
            .collect())
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        self.run(&stmt)?;
        self.changes()
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        self.run(&Stmt::new("BEGIN IMMEDIATE"))?;
        let mut counts = Vec::with_capacity(stmts.len());
        for stmt in &stmts {
            match self.run(stmt).and_then(|_| self.changes()) {
                Ok(n) => counts.push(n),
                Err(e) => {
                    let _ = self.run(&Stmt::new("ROLLBACK"));
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.run(&Stmt::new("COMMIT")) {
            let _ = self.run(&Stmt::new("ROLLBACK"));
            return Err(e);
        }
        Ok(counts)
    }
}

// ---------------------------------------------------------------------------------------------

/// `Kv` over Spin key-value through `wasi:keyvalue` (Spin 3.0 and later serve it from the same
/// stores as `fermyon:spin/key-value`): the `default` store opened on the request's first call
/// (a request that reads nothing, such as `GET /health`, opens nothing), and a hot path's reads
/// in one `batch.get-many` call. Every call into Spin's store runs on a blocking thread of its
/// own, which costs more than the read itself. Spin's store has no expiry, so a value is stored
/// behind an 8-byte big-endian expiry (unix ms, 0 = never) and an expired value reads as a miss.
#[derive(Default)]
pub struct SpinKv(OnceCell<keyvalue::store::Bucket>);

impl SpinKv {
    /// The store, opened on first use; a failed open is retried by the next call.
    fn bucket(&self) -> Result<&keyvalue::store::Bucket, KvError> {
        if let Some(bucket) = self.0.get() {
            return Ok(bucket);
        }
        let bucket = keyvalue::store::open("default")
            .map_err(|e| KvError::Unavailable(format!("open key-value: {e:?}")))?;
        Ok(self.0.get_or_init(|| bucket))
    }
}

/// A stored value without its expiry header; `None` once expired (or without a header).
fn unexpired(raw: &[u8]) -> Option<Vec<u8>> {
    let (head, value) = raw.split_first_chunk::<8>()?;
    let expires = i64::from_be_bytes(*head);
    if expires != 0 && expires <= SpinClock.now_ms() {
        return None;
    }
    Some(value.to_vec())
}

fn kv_error(e: keyvalue::store::Error) -> KvError {
    KvError::Other(format!("{e:?}"))
}

impl Kv for SpinKv {
    async fn get(
        &self,
        key: &str,
        _cache_ttl_secs: Option<u32>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let found = self.bucket()?.get(key).map_err(kv_error)?;
        Ok(found.as_deref().and_then(unexpired))
    }

    async fn get_many(
        &self,
        keys: &[(&str, Option<u32>)],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let names: Vec<String> = keys.iter().map(|(k, _)| (*k).to_owned()).collect();
        let found = keyvalue::batch::get_many(self.bucket()?, &names).map_err(kv_error)?;
        // In the order asked, whatever order the store answers in.
        Ok(keys
            .iter()
            .map(|(key, _)| {
                found
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| v.as_deref())
                    .and_then(unexpired)
            })
            .collect())
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), KvError> {
        let expires = ttl_secs.map_or(0, |s| {
            SpinClock.now_ms().saturating_add(i64::from(s) * 1000)
        });
        let mut raw = Vec::with_capacity(8 + value.len());
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(value);
        self.bucket()?.set(key, &raw).map_err(kv_error)
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bucket()?.delete(key).map_err(kv_error)
    }
}

// ---------------------------------------------------------------------------------------------

/// The SQL event log, its tables created on first use in this instance.
pub struct LazyEventLog {
    log: SqlEventLog<SpinSql, SpinClock>,
    ready: Cell<bool>,
}

impl LazyEventLog {
    async fn ensure(&self) -> Result<(), EventLogError> {
        if !self.ready.get() {
            self.log.migrate().await?;
            self.ready.set(true);
        }
        Ok(())
    }
}

impl EventLog for LazyEventLog {
    async fn append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError> {
        self.ensure().await?;
        self.log.append(stream, events).await
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError> {
        self.ensure().await?;
        self.log.read(stream, after_seq, limit).await
    }

    async fn truncate(&self, stream: &StreamId, through_seq: i64) -> Result<u64, EventLogError> {
        self.ensure().await?;
        self.log.truncate(stream, through_seq).await
    }

    async fn drop_stream(&self, stream: &StreamId) -> Result<(), EventLogError> {
        self.ensure().await?;
        self.log.drop_stream(stream).await
    }

    async fn ping(&self) -> Result<(), EventLogError> {
        self.ensure().await?;
        self.log.ping().await
    }
}

// ---------------------------------------------------------------------------------------------

/// Wall clock from WASI.
#[derive(Clone, Copy)]
pub struct SpinClock;

impl Clock for SpinClock {
    #[allow(clippy::disallowed_methods)] // the adapter is where the platform clock is read
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// WASI `random` (the host's CSPRNG).
pub struct SpinRandom;

impl Random for SpinRandom {
    fn fill(&self, buf: &mut [u8]) {
        let bytes = wasi::random::random::get_random_bytes(buf.len() as u64);
        for (dst, src) in buf.iter_mut().zip(bytes) {
            *dst = src;
        }
    }
}

/// Spin variables: `CRON_SECRET` is read as the variable `cron_secret`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinVariables;

impl Secrets for SpinVariables {
    fn get(&self, name: &str) -> Option<String> {
        variables::get(&name.to_ascii_lowercase())
            .ok()
            .filter(|v| !v.is_empty())
    }
}

/// JSON lines on stdout, which Spin collects per component.
pub struct SpinLogger;

impl Logger for SpinLogger {
    fn line(&self, json: &str) {
        println!("{json}");
    }
}
