//! A native [`Platform`] for core's unit tests: real SQLite (rusqlite) migrated with the files in
//! `d1-migrations/`, the SQL event log over a second database, in-memory key-value and blobs,
//! the outbox mailer, a fixed clock and a seeded (not secure) random source.
//!
//! The in-memory stores are cheap handles over shared state: clones see the same data, so a test
//! can keep a handle and inspect what the code under test wrote.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};

use crate::crypto::DalekVerifier;
use crate::events::SqlEventLog;
use crate::mail::OutboxMailer;
use crate::migrations;
use crate::ports::{
    AppendOutcome, Backends, BlobError, BlobPage, Blobs, Clock, EventLog, EventLogError,
    FetchError, HttpClient, Kv, KvError, Logger, NewEvent, OutboundRequest, OutboundResponse,
    Platform, Random, Row, Secrets, SignatureError, SignatureVerifier, Sql, SqlError, Stmt,
    StoredEvent, StreamId, Value,
};

/// The instant every test starts at: 2026-01-01T00:00:00Z, in unix milliseconds.
pub const START_MS: i64 = 1_767_225_600_000;

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// [`Sql`] over rusqlite, with foreign keys enforced as on D1. Clones share the connection.
#[derive(Clone)]
pub struct NativeSql {
    conn: Rc<RefCell<Connection>>,
    interleave: Rc<Cell<bool>>,
}

impl NativeSql {
    /// A fresh, empty in-memory database.
    pub fn memory() -> Self {
        let conn = Connection::open_in_memory().expect("open in-memory SQLite");
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .expect("enable foreign keys");
        NativeSql {
            conn: Rc::new(RefCell::new(conn)),
            interleave: Rc::new(Cell::new(false)),
        }
    }

    /// From now on every call yields once before it runs, as a call to D1 or Spin SQLite gives
    /// way to the isolate's other requests: futures polled together (concurrent requests)
    /// then interleave at each statement, which is how check-then-act races show natively.
    pub fn interleave(&self) {
        self.interleave.set(true);
    }

    async fn round_trip(&self) {
        if self.interleave.get() {
            YieldOnce(false).await;
        }
    }

    /// Runs raw SQL, possibly several statements, outside the port (test fixtures only).
    pub fn exec_raw(&self, sql: &str) -> Result<(), SqlError> {
        self.conn.borrow().execute_batch(sql).map_err(classify)
    }

    /// The `EXPLAIN QUERY PLAN` of a statement, one plan step per line.
    pub fn explain(&self, stmt: Stmt) -> Result<String, SqlError> {
        let conn = self.conn.borrow();
        let mut prepared = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", stmt.sql))
            .map_err(classify)?;
        let mut rows = prepared
            .query(rusqlite::params_from_iter(
                stmt.params.iter().map(to_sqlite),
            ))
            .map_err(classify)?;
        let mut plan = String::new();
        while let Some(row) = rows.next().map_err(classify)? {
            let detail: String = row.get("detail").map_err(classify)?;
            plan.push_str(&detail);
            plan.push('\n');
        }
        Ok(plan)
    }
}

/// A future that is pending once (waking itself), then ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

impl Sql for NativeSql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        self.round_trip().await;
        run(&self.conn.borrow(), &stmt).map(|(rows, _)| rows)
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        self.round_trip().await;
        run(&self.conn.borrow(), &stmt).map(|(_, changed)| changed)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        self.round_trip().await;
        let mut conn = self.conn.borrow_mut();
        // Dropping the transaction on an early return rolls it back.
        let tx = conn.transaction().map_err(classify)?;
        let mut changed = Vec::with_capacity(stmts.len());
        for stmt in &stmts {
            changed.push(run(&tx, stmt)?.1);
        }
        tx.commit().map_err(classify)?;
        Ok(changed)
    }
}

/// Runs one statement and returns its rows and the number of rows it changed.
fn run(conn: &Connection, stmt: &Stmt) -> Result<(Vec<Row>, u64), SqlError> {
    let before = conn.total_changes();
    let mut prepared = conn.prepare(stmt.sql).map_err(classify)?;
    let names: Vec<String> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut rows = prepared
        .query(rusqlite::params_from_iter(
            stmt.params.iter().map(to_sqlite),
        ))
        .map_err(classify)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(classify)? {
        let mut columns = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            columns.insert(
                name.clone(),
                from_sqlite(row.get_ref(i).map_err(classify)?)?,
            );
        }
        out.push(Row(columns));
    }
    drop(rows);
    drop(prepared);
    // `changes()` keeps the count of the last write, so a read or DDL must not report it.
    let changed = if conn.total_changes() == before {
        0
    } else {
        conn.changes()
    };
    Ok((out, changed))
}

/// A port value as a rusqlite parameter.
fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Integer(i) => rusqlite::types::Value::Integer(*i),
        Value::Real(f) => rusqlite::types::Value::Real(*f),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

/// A column value as a port value.
fn from_sqlite(v: ValueRef<'_>) -> Result<Value, SqlError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| SqlError::Decode(format!("text column is not UTF-8: {e}")))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

/// Classifies a rusqlite error the way the D1 and Spin adapters classify theirs.
fn classify(e: rusqlite::Error) -> SqlError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => SqlError::Constraint(e.to_string()),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            SqlError::Unavailable(e.to_string())
        }
        _ => SqlError::Other(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Key-value and blobs
// ---------------------------------------------------------------------------------------------

/// In-memory [`Kv`] that honours TTLs against the [`FixedClock`] and refuses what Workers KV
/// refuses (TTL under 60 s, empty keys or keys over 512 bytes), so tests catch it natively.
#[derive(Clone)]
pub struct MemKv {
    clock: FixedClock,
    entries: Rc<RefCell<BTreeMap<String, KvEntry>>>,
}

/// A stored value and when it expires (unix ms).
struct KvEntry {
    value: Vec<u8>,
    expires_at: Option<i64>,
}

impl MemKv {
    /// An empty store reading time from `clock`.
    pub fn new(clock: FixedClock) -> Self {
        MemKv {
            clock,
            entries: Rc::default(),
        }
    }

    /// The entries that have not expired, key and value, in key order.
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        let now = self.clock.now_ms();
        let entries = self.entries.borrow();
        entries
            .iter()
            .filter(|(_, e)| live(e.expires_at, now))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// The keys that have not expired, in order.
    pub fn keys(&self) -> Vec<String> {
        let now = self.clock.now_ms();
        let entries = self.entries.borrow();
        entries
            .iter()
            .filter(|(_, e)| live(e.expires_at, now))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// Whether an entry with that expiry is still readable at `now`.
fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|at| now < at)
}

/// Checks a key against Workers KV's limits.
fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > 512 {
        return Err(KvError::Other(format!("invalid key length {}", key.len())));
    }
    Ok(())
}

impl Kv for MemKv {
    async fn get(
        &self,
        key: &str,
        _cache_ttl_secs: Option<u32>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let now = self.clock.now_ms();
        let entries = self.entries.borrow();
        Ok(entries
            .get(key)
            .filter(|e| live(e.expires_at, now))
            .map(|e| e.value.clone()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), KvError> {
        check_key(key)?;
        if ttl_secs.is_some_and(|ttl| ttl < 60) {
            return Err(KvError::Other(
                "expiration TTL must be at least 60 seconds".into(),
            ));
        }
        let expires_at = ttl_secs.map(|ttl| self.clock.now_ms() + i64::from(ttl) * 1000);
        self.entries.borrow_mut().insert(
            key.to_owned(),
            KvEntry {
                value: value.to_vec(),
                expires_at,
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        check_key(key)?;
        self.entries.borrow_mut().remove(key);
        Ok(())
    }
}

/// In-memory [`Blobs`]: key to bytes and content type.
#[derive(Clone, Default)]
pub struct MemBlobs {
    objects: Rc<RefCell<BTreeMap<String, BlobObject>>>,
}

/// A stored object.
struct BlobObject {
    bytes: Vec<u8>,
    content_type: String,
}

impl MemBlobs {
    /// The content type an object was stored with.
    pub fn content_type(&self, key: &str) -> Option<String> {
        self.objects
            .borrow()
            .get(key)
            .map(|o| o.content_type.clone())
    }
}

impl Blobs for MemBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        let object = BlobObject {
            bytes,
            content_type: content_type.to_owned(),
        };
        self.objects.borrow_mut().insert(key.to_owned(), object);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self.objects.borrow().get(key).map(|o| o.bytes.clone()))
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BlobPage, BlobError> {
        let objects = self.objects.borrow();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        // The cursor is the last key of the previous page.
        let mut keys = objects
            .keys()
            .filter(|k| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c))
            .take(limit + 1)
            .cloned()
            .collect::<Vec<_>>();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let cursor = if more { keys.last().cloned() } else { None };
        Ok(BlobPage { keys, cursor })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Clock, randomness, secrets, logs
// ---------------------------------------------------------------------------------------------

/// A clock that stands still until the test moves it. Clones share the time.
#[derive(Clone, Debug)]
pub struct FixedClock {
    now: Rc<Cell<i64>>,
}

impl FixedClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        FixedClock {
            now: Rc::new(Cell::new(now_ms)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: i64) {
        self.now.set(now_ms);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now.set(self.now.get() + ms);
    }
}

impl Default for FixedClock {
    fn default() -> Self {
        FixedClock::new(START_MS)
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.now.get()
    }
}

/// A deterministic byte stream (SplitMix64) from a seed. Not secure: tests only.
#[derive(Debug)]
pub struct SeededRandom {
    state: Cell<u64>,
}

impl SeededRandom {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom {
            state: Cell::new(seed),
        }
    }

    /// The next 64 random bits.
    fn next_u64(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// [`Secrets`] from a map the test fills. Empty values read as unset, as in the adapters.
#[derive(Clone, Default, Debug)]
pub struct MapSecrets {
    values: Rc<RefCell<HashMap<String, String>>>,
}

impl MapSecrets {
    /// Sets a secret or variable.
    pub fn set(&self, name: &str, value: &str) {
        self.values
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }
}

impl Secrets for MapSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.values
            .borrow()
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
    }
}

/// A [`Logger`] that keeps every line for the test to inspect.
#[derive(Clone, Default, Debug)]
pub struct VecLogger {
    lines: Rc<RefCell<Vec<String>>>,
}

impl VecLogger {
    /// The lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

impl Logger for VecLogger {
    fn line(&self, json: &str) {
        self.lines.borrow_mut().push(json.to_owned());
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound HTTP
// ---------------------------------------------------------------------------------------------

/// [`HttpClient`] with canned answers by exact URL; every request is recorded. A URL with no
/// answer is [`FetchError::Unavailable`], as an unreachable host would be; an answer longer than
/// the request's `max_body_bytes` is [`FetchError::TooLarge`], as the adapters answer it. Clones
/// share state.
#[derive(Clone, Default)]
pub struct MapHttp {
    answers: Rc<RefCell<HashMap<String, Result<OutboundResponse, FetchError>>>>,
    requests: Rc<RefCell<Vec<OutboundRequest>>>,
}

impl MapHttp {
    /// Answers `url` with `status` and `body` (and a JSON content type) from now on.
    pub fn set(&self, url: &str, status: u16, body: &str) {
        let response = OutboundResponse {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.as_bytes().to_vec(),
        };
        self.answers
            .borrow_mut()
            .insert(url.to_owned(), Ok(response));
    }

    /// Fails requests to `url` with `error` from now on.
    pub fn fail(&self, url: &str, error: FetchError) {
        self.answers.borrow_mut().insert(url.to_owned(), Err(error));
    }

    /// Forgets the answer for `url` (it becomes unreachable).
    pub fn remove(&self, url: &str) {
        self.answers.borrow_mut().remove(url);
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.requests.borrow().clone()
    }

    /// The URLs requested so far, in order.
    pub fn urls(&self) -> Vec<String> {
        self.requests
            .borrow()
            .iter()
            .map(|r| r.url.clone())
            .collect()
    }
}

impl HttpClient for MapHttp {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let answer = self.answers.borrow().get(&req.url).cloned();
        let (url, limit) = (req.url.clone(), req.max_body_bytes);
        self.requests.borrow_mut().push(req);
        match answer {
            Some(Ok(resp)) if resp.body.len() > limit => Err(FetchError::TooLarge(limit)),
            Some(answer) => answer,
            None => Err(FetchError::Unavailable(format!("no answer for {url}"))),
        }
    }
}

/// [`SignatureVerifier`] in Rust ([`DalekVerifier`]) counting the signatures it checks.
#[derive(Debug, Default)]
pub struct CountingVerifier {
    /// Signatures checked so far.
    pub checks: Cell<usize>,
}

impl SignatureVerifier for CountingVerifier {
    async fn verify_ed25519(
        &self,
        kid: &str,
        public_key: &[u8; 32],
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<bool, SignatureError> {
        self.checks.set(self.checks.get() + 1);
        DalekVerifier
            .verify_ed25519(kid, public_key, message, signature)
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// The platform
// ---------------------------------------------------------------------------------------------

/// Everything core needs, natively. Fields are public so tests can reach behind the ports.
pub struct TestPlatform {
    /// The control-plane database, migrated.
    pub sql: NativeSql,
    /// Key-value cache.
    pub kv: MemKv,
    /// The event log, over its own database.
    pub event_log: SqlEventLog<NativeSql, FixedClock>,
    /// Archive objects.
    pub blobs: MemBlobs,
    /// The outbox mailer, over [`TestPlatform::sql`].
    pub mailer: OutboxMailer<NativeSql, FixedClock>,
    /// The clock every part shares.
    pub clock: FixedClock,
    /// Seeded random source.
    pub random: SeededRandom,
    /// Secrets: only [`TEST_ANCHOR_KEY`] until the test sets more.
    pub secrets: MapSecrets,
    /// Collected log lines.
    pub logger: VecLogger,
    /// Outbound HTTP with canned answers, none until the test sets some.
    pub http: MapHttp,
    /// Signature checks in Rust, counted.
    pub signatures: CountingVerifier,
    /// The runtime [`Platform::backends`] names: `native` unless a test plays another one
    /// (`workers` reads the client address from `cf-connecting-ip`).
    pub runtime: Cell<&'static str>,
}

impl TestPlatform {
    /// A platform at [`START_MS`] with freshly migrated databases.
    pub async fn new() -> Self {
        // Isolate caches live per thread, and tests share threads with repeating seeded ids.
        crate::edge::clear_isolate();
        crate::tokens::verified::clear_isolate();
        crate::metrics::clear_isolate();
        crate::anomalies::clear_isolate();
        crate::faults::set_mask(0);
        let clock = FixedClock::default();
        let sql = NativeSql::memory();
        migrations::apply(&sql, clock.now_ms())
            .await
            .expect("apply migrations");
        let event_log = SqlEventLog::new(NativeSql::memory(), clock.clone());
        event_log
            .migrate()
            .await
            .expect("create the event log schema");
        TestPlatform {
            kv: MemKv::new(clock.clone()),
            event_log,
            blobs: MemBlobs::default(),
            mailer: OutboxMailer::new(sql.clone(), clock.clone()),
            sql,
            clock,
            random: SeededRandom::new(42),
            secrets: anchored_secrets(),
            logger: VecLogger::default(),
            http: MapHttp::default(),
            signatures: CountingVerifier::default(),
            runtime: Cell::new("native"),
        }
    }
}

/// The `EVENT_ANCHOR_KEY` every [`TestPlatform`] starts with: outside development the archive
/// flush writes nothing without one, and most tests flush as a deployment would.
pub const TEST_ANCHOR_KEY: &str = "test-event-anchor-key-of-32-bytes-or-more";

/// Secrets holding only [`TEST_ANCHOR_KEY`].
fn anchored_secrets() -> MapSecrets {
    let secrets = MapSecrets::default();
    secrets.set(crate::events::anchor::KEY_SECRET, TEST_ANCHOR_KEY);
    secrets
}

impl Platform for TestPlatform {
    type Sql = NativeSql;
    type Kv = MemKv;
    type EventLog = SqlEventLog<NativeSql, FixedClock>;
    type Blobs = MemBlobs;
    type Mailer = OutboxMailer<NativeSql, FixedClock>;
    type Clock = FixedClock;
    type Random = SeededRandom;
    type Secrets = MapSecrets;
    type Logger = VecLogger;
    type Http = MapHttp;
    type Signatures = CountingVerifier;

    fn sql(&self) -> &NativeSql {
        &self.sql
    }
    fn kv(&self) -> &MemKv {
        &self.kv
    }
    fn event_log(&self) -> &Self::EventLog {
        &self.event_log
    }
    fn blobs(&self) -> &MemBlobs {
        &self.blobs
    }
    fn mailer(&self) -> &Self::Mailer {
        &self.mailer
    }
    fn clock(&self) -> &FixedClock {
        &self.clock
    }
    fn random(&self) -> &SeededRandom {
        &self.random
    }
    fn secrets(&self) -> &MapSecrets {
        &self.secrets
    }
    fn logger(&self) -> &VecLogger {
        &self.logger
    }
    fn http(&self) -> &MapHttp {
        &self.http
    }
    fn signatures(&self) -> &CountingVerifier {
        &self.signatures
    }
    fn backends(&self) -> Backends {
        Backends {
            runtime: self.runtime.get(),
            sql: "sqlite",
            kv: "memory",
            event_log: "sqlite",
            blobs: "memory",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A platform whose SQL and KV can misbehave on cue
// ---------------------------------------------------------------------------------------------

/// [`Sql`] over [`NativeSql`] counting every statement it runs and keeping its text,
/// optionally running a raw statement just before the next batch (to lose a race on purpose).
pub struct CountingSql {
    /// The database.
    pub inner: NativeSql,
    /// Statements run.
    pub statements: Cell<usize>,
    /// The text of every statement run, in order (a batch's statements one by one).
    pub texts: RefCell<Vec<&'static str>>,
    /// A raw statement to run just before the next batch.
    pub before_batch: RefCell<Option<String>>,
    /// Calls made (a query, an execute or a whole batch: one round trip each on D1).
    pub round_trips: Cell<usize>,
}

impl CountingSql {
    fn count(&self, stmt: &Stmt) {
        self.statements.set(self.statements.get() + 1);
        self.texts.borrow_mut().push(stmt.sql);
    }
}

impl Sql for CountingSql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        self.count(&stmt);
        self.round_trips.set(self.round_trips.get() + 1);
        self.inner.query(stmt).await
    }
    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        self.count(&stmt);
        self.round_trips.set(self.round_trips.get() + 1);
        self.inner.execute(stmt).await
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        stmts.iter().for_each(|s| self.count(s));
        self.round_trips.set(self.round_trips.get() + 1);
        if let Some(raw) = self.before_batch.borrow_mut().take() {
            self.inner.exec_raw(&raw)?;
        }
        self.inner.batch(stmts).await
    }
}

/// [`Kv`] over [`MemKv`] that fails writes while `fail` is set (reads while `fail_reads` is)
/// and counts reads and writes.
pub struct FlakyKv {
    /// The store.
    pub inner: MemKv,
    /// Fail writes while set.
    pub fail: Cell<bool>,
    /// Fail reads while set.
    pub fail_reads: Cell<bool>,
    /// Reads so far.
    pub reads: Cell<usize>,
    /// The keys read so far, in order.
    pub read_keys: RefCell<Vec<String>>,
    /// Of `reads`, those that read several keys at once ([`Kv::get_many`]).
    pub batched_reads: Cell<usize>,
    /// Writes and deletes so far.
    pub writes: Cell<usize>,
    /// Fail writes to this one key while set (Workers KV refuses a second write of a key within
    /// a second).
    pub fail_writes_to: RefCell<Option<String>>,
}

impl Kv for FlakyKv {
    async fn get(&self, key: &str, ttl: Option<u32>) -> Result<Option<Vec<u8>>, KvError> {
        self.reads.set(self.reads.get() + 1);
        self.read_keys.borrow_mut().push(key.to_owned());
        if self.fail_reads.get() {
            return Err(KvError::Unavailable("injected".into()));
        }
        self.inner.get(key, ttl).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl: Option<u32>) -> Result<(), KvError> {
        self.writes.set(self.writes.get() + 1);
        if self.fail_writes_to.borrow().as_deref() == Some(key) {
            return Err(KvError::Unavailable("429 Too Many Requests".into()));
        }
        if self.fail.get() {
            return Err(KvError::Unavailable("injected".into()));
        }
        self.inner.put(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.writes.set(self.writes.get() + 1);
        if self.fail.get() {
            return Err(KvError::Unavailable("injected".into()));
        }
        self.inner.delete(key).await
    }
    /// One read, as an adapter with a batched read makes it (counted once, every key noted).
    async fn get_many(
        &self,
        keys: &[(&str, Option<u32>)],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.reads.set(self.reads.get() + 1);
        self.batched_reads.set(self.batched_reads.get() + 1);
        self.read_keys
            .borrow_mut()
            .extend(keys.iter().map(|(k, _)| (*k).to_owned()));
        if self.fail_reads.get() {
            return Err(KvError::Unavailable("injected".into()));
        }
        let mut values = Vec::with_capacity(keys.len());
        for &(key, ttl) in keys {
            values.push(self.inner.get(key, ttl).await?);
        }
        Ok(values)
    }
}

/// [`TestPlatform`] with [`CountingSql`] and [`FlakyKv`] in front of its stores, so tests can
/// count statements, lose a race on purpose and fail KV writes.
pub struct FaultyPlatform {
    /// The platform behind.
    pub inner: TestPlatform,
    /// Counting, hookable SQL.
    pub sql: CountingSql,
    /// Flaky, counting KV.
    pub kv: FlakyKv,
    /// Counting event log.
    pub events: CountingEventLog,
    /// Counting blobs.
    pub blobs: CountingBlobs,
}

impl FaultyPlatform {
    /// Puts the counting SQL and flaky KV in front of `inner`'s stores.
    pub fn over(inner: TestPlatform) -> Self {
        FaultyPlatform {
            sql: CountingSql {
                inner: inner.sql.clone(),
                statements: Cell::new(0),
                texts: RefCell::new(Vec::new()),
                before_batch: RefCell::new(None),
                round_trips: Cell::new(0),
            },
            kv: FlakyKv {
                inner: inner.kv.clone(),
                fail: Cell::new(false),
                fail_reads: Cell::new(false),
                reads: Cell::new(0),
                read_keys: RefCell::new(Vec::new()),
                batched_reads: Cell::new(0),
                writes: Cell::new(0),
                fail_writes_to: RefCell::new(None),
            },
            events: CountingEventLog {
                inner: inner.event_log.clone(),
                calls: Cell::new(0),
            },
            blobs: CountingBlobs {
                inner: inner.blobs.clone(),
                calls: Cell::new(0),
            },
            inner,
        }
    }

    /// Statements run so far, resetting the count.
    pub fn take_statements(&self) -> usize {
        self.sql.statements.replace(0)
    }

    /// SQL round trips (queries, executes, batches) so far, resetting the count.
    pub fn take_round_trips(&self) -> usize {
        self.sql.round_trips.replace(0)
    }

    /// The text of each statement run so far, in order, resetting the list.
    pub fn take_texts(&self) -> Vec<&'static str> {
        self.sql.texts.take()
    }

    /// Calls to any store so far (SQL statements, KV reads and writes, event log and blob
    /// operations), resetting every count.
    pub fn take_storage_calls(&self) -> usize {
        self.take_statements()
            + self.kv.reads.replace(0)
            + self.kv.writes.replace(0)
            + self.events.calls.replace(0)
            + self.blobs.calls.replace(0)
    }
}

/// [`EventLog`] over the test platform's, counting every call.
pub struct CountingEventLog {
    inner: SqlEventLog<NativeSql, FixedClock>,
    /// Calls so far.
    pub calls: Cell<usize>,
}

impl CountingEventLog {
    fn count(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

impl EventLog for CountingEventLog {
    async fn append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError> {
        self.count();
        self.inner.append(stream, events).await
    }
    async fn read(
        &self,
        stream: &StreamId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError> {
        self.count();
        self.inner.read(stream, after_seq, limit).await
    }
    async fn truncate(&self, stream: &StreamId, through_seq: i64) -> Result<u64, EventLogError> {
        self.count();
        self.inner.truncate(stream, through_seq).await
    }
    async fn drop_stream(&self, stream: &StreamId) -> Result<(), EventLogError> {
        self.count();
        self.inner.drop_stream(stream).await
    }
    async fn ping(&self) -> Result<(), EventLogError> {
        self.count();
        self.inner.ping().await
    }
}

/// [`Blobs`] over [`MemBlobs`], counting every call.
pub struct CountingBlobs {
    inner: MemBlobs,
    /// Calls so far.
    pub calls: Cell<usize>,
}

impl CountingBlobs {
    fn count(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

impl Blobs for CountingBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        self.count();
        self.inner.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        self.count();
        self.inner.get(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BlobPage, BlobError> {
        self.count();
        self.inner.list(prefix, cursor, limit).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.count();
        self.inner.delete(key).await
    }
}

impl crate::ports::Platform for FaultyPlatform {
    type Sql = CountingSql;
    type Kv = FlakyKv;
    type EventLog = CountingEventLog;
    type Blobs = CountingBlobs;
    type Mailer = <TestPlatform as crate::ports::Platform>::Mailer;
    type Clock = <TestPlatform as crate::ports::Platform>::Clock;
    type Random = <TestPlatform as crate::ports::Platform>::Random;
    type Secrets = <TestPlatform as crate::ports::Platform>::Secrets;
    type Logger = <TestPlatform as crate::ports::Platform>::Logger;
    type Http = <TestPlatform as crate::ports::Platform>::Http;
    type Signatures = <TestPlatform as crate::ports::Platform>::Signatures;

    fn sql(&self) -> &CountingSql {
        &self.sql
    }
    fn kv(&self) -> &FlakyKv {
        &self.kv
    }
    fn event_log(&self) -> &CountingEventLog {
        &self.events
    }
    fn blobs(&self) -> &CountingBlobs {
        &self.blobs
    }
    fn mailer(&self) -> &Self::Mailer {
        self.inner.mailer()
    }
    fn clock(&self) -> &Self::Clock {
        self.inner.clock()
    }
    fn random(&self) -> &Self::Random {
        self.inner.random()
    }
    fn secrets(&self) -> &Self::Secrets {
        self.inner.secrets()
    }
    fn logger(&self) -> &Self::Logger {
        self.inner.logger()
    }
    fn http(&self) -> &Self::Http {
        self.inner.http()
    }
    fn signatures(&self) -> &Self::Signatures {
        self.inner.signatures()
    }
    fn backends(&self) -> crate::ports::Backends {
        self.inner.backends()
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;

    #[test]
    fn native_sql_maps_rows_changes_and_constraints() {
        block_on(async {
            let sql = NativeSql::memory();
            sql.execute(Stmt::new("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, b BLOB, r REAL)"))
                .await
                .unwrap();
            let n = sql
                .execute(
                    Stmt::new("INSERT INTO t (name, b, r) VALUES (?1, ?2, ?3)")
                        .bind("a")
                        .bind(Value::Blob(vec![1, 2]))
                        .bind(Value::Real(0.5)),
                )
                .await
                .unwrap();
            assert_eq!(n, 1);
            // A read after a write reports no changes of its own.
            assert_eq!(sql.execute(Stmt::new("SELECT * FROM t")).await.unwrap(), 0);
            let rows = sql
                .query(Stmt::new("SELECT id, name, b, r, NULL AS absent FROM t"))
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].i64("id").unwrap(), 1);
            assert_eq!(rows[0].text("name").unwrap(), "a");
            assert_eq!(rows[0].get("b"), Some(&Value::Blob(vec![1, 2])));
            assert_eq!(rows[0].get("r"), Some(&Value::Real(0.5)));
            assert_eq!(rows[0].opt_text("absent").unwrap(), None);

            let err = sql
                .execute(Stmt::new("INSERT INTO t (name) VALUES ('a')"))
                .await
                .unwrap_err();
            assert!(matches!(err, SqlError::Constraint(_)), "{err:?}");
            let err = sql
                .execute(Stmt::new("INSERT INTO t (name) VALUES (NULL)"))
                .await
                .unwrap_err();
            assert!(matches!(err, SqlError::Constraint(_)), "{err:?}");
            let err = sql.execute(Stmt::new("SELEC 1")).await.unwrap_err();
            assert!(matches!(err, SqlError::Other(_)), "{err:?}");
        });
    }

    #[test]
    fn native_sql_batch_is_all_or_nothing() {
        block_on(async {
            let sql = NativeSql::memory();
            sql.execute(Stmt::new("CREATE TABLE t (name TEXT PRIMARY KEY)"))
                .await
                .unwrap();
            let ok = sql
                .batch(vec![
                    Stmt::new("INSERT INTO t VALUES ('a')"),
                    Stmt::new("INSERT INTO t VALUES ('b')"),
                    Stmt::new("UPDATE t SET name = name || '!' WHERE name = 'zzz'"),
                ])
                .await
                .unwrap();
            assert_eq!(ok, vec![1, 1, 0]);
            let err = sql
                .batch(vec![
                    Stmt::new("INSERT INTO t VALUES ('c')"),
                    Stmt::new("INSERT INTO t VALUES ('a')"),
                ])
                .await
                .unwrap_err();
            assert!(matches!(err, SqlError::Constraint(_)));
            let n = sql
                .query(Stmt::new("SELECT COUNT(*) AS n FROM t"))
                .await
                .unwrap();
            assert_eq!(n[0].i64("n").unwrap(), 2);
        });
    }

    #[test]
    fn mem_kv_honours_ttl_and_workers_limits() {
        block_on(async {
            let clock = FixedClock::default();
            let kv = MemKv::new(clock.clone());
            kv.put("k", b"v", Some(60)).await.unwrap();
            kv.put("forever", b"x", None).await.unwrap();
            assert_eq!(kv.get("k", None).await.unwrap(), Some(b"v".to_vec()));
            clock.advance(59_999);
            assert!(kv.get("k", Some(60)).await.unwrap().is_some());
            clock.advance(1);
            assert_eq!(kv.get("k", None).await.unwrap(), None);
            assert_eq!(kv.keys(), vec!["forever".to_owned()]);
            assert!(kv.put("short", b"x", Some(59)).await.is_err());
            assert!(kv.put("", b"x", None).await.is_err());
            kv.delete("forever").await.unwrap();
            kv.delete("missing").await.unwrap();
            assert!(kv.keys().is_empty());
        });
    }

    #[test]
    fn mem_blobs_list_pages_under_a_prefix() {
        block_on(async {
            let blobs = MemBlobs::default();
            for key in ["a/1", "a/2", "a/3", "b/1"] {
                blobs
                    .put(key, key.as_bytes().to_vec(), "application/x-ndjson")
                    .await
                    .unwrap();
            }
            let first = blobs.list("a/", None, 2).await.unwrap();
            assert_eq!(first.keys, ["a/1", "a/2"]);
            let second = blobs.list("a/", first.cursor.as_deref(), 2).await.unwrap();
            assert_eq!(
                second,
                BlobPage {
                    keys: vec!["a/3".into()],
                    cursor: None
                }
            );
            assert_eq!(blobs.get("b/1").await.unwrap(), Some(b"b/1".to_vec()));
            assert_eq!(
                blobs.content_type("b/1").as_deref(),
                Some("application/x-ndjson")
            );
            blobs.delete("b/1").await.unwrap();
            assert_eq!(blobs.get("b/1").await.unwrap(), None);
        });
    }

    #[test]
    fn seeded_random_is_deterministic() {
        let (a, b) = (SeededRandom::new(7), SeededRandom::new(7));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        a.fill(&mut x);
        assert_ne!(x, y);
    }

    #[test]
    fn secrets_clock_and_logger() {
        let secrets = MapSecrets::default();
        secrets.set("A", "1");
        secrets.set("EMPTY", "");
        assert_eq!(secrets.get("A").as_deref(), Some("1"));
        assert_eq!(secrets.get("EMPTY"), None);
        assert_eq!(secrets.get("MISSING"), None);

        let clock = FixedClock::default();
        let shared = clock.clone();
        clock.advance(5);
        assert_eq!(shared.now_ms(), START_MS + 5);
        shared.set(1);
        assert_eq!(clock.now_ms(), 1);

        let logger = VecLogger::default();
        logger.line("{\"msg\":\"hi\"}");
        assert_eq!(logger.lines(), ["{\"msg\":\"hi\"}"]);
    }

    #[test]
    fn map_http_answers_by_url_and_records_requests() {
        block_on(async {
            let http = MapHttp::default();
            http.set("https://a.example/x", 200, "{}");
            http.fail(
                "https://b.example/",
                FetchError::Refused("not allowed".into()),
            );
            let ok = http
                .fetch(OutboundRequest::get(
                    "https://a.example/x",
                    "application/json",
                    2,
                ))
                .await
                .unwrap();
            assert_eq!((ok.status, ok.body.as_slice()), (200, b"{}".as_slice()));
            assert_eq!(ok.header("content-type"), Some("application/json"));
            // One byte past the caller's limit is refused, as the adapters refuse it.
            let too_large = http
                .fetch(OutboundRequest::get("https://a.example/x", "*/*", 1))
                .await;
            assert_eq!(too_large, Err(FetchError::TooLarge(1)));
            let refused = http
                .fetch(OutboundRequest::get("https://b.example/", "*/*", 64))
                .await;
            assert!(matches!(refused, Err(FetchError::Refused(_))));
            http.remove("https://a.example/x");
            let gone = http
                .fetch(OutboundRequest::get("https://a.example/x", "*/*", 64))
                .await;
            assert!(matches!(gone, Err(FetchError::Unavailable(_))));
            assert_eq!(
                http.urls(),
                [
                    "https://a.example/x",
                    "https://a.example/x",
                    "https://b.example/",
                    "https://a.example/x"
                ]
            );
            assert_eq!(http.requests()[0].method, "GET");
        });
    }

    #[test]
    fn test_platform_is_migrated_and_wired() {
        block_on(async {
            let p = TestPlatform::new().await;
            let rows = p
                .sql()
                .query(Stmt::new("SELECT COUNT(*) AS n FROM roles"))
                .await
                .unwrap();
            assert_eq!(rows[0].i64("n").unwrap(), 5);
            crate::ports::EventLog::ping(p.event_log()).await.unwrap();
            assert_eq!(p.clock().now_ms(), START_MS);
            assert_eq!(p.backends().sql, "sqlite");
        });
    }
}
