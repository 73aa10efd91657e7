//! Fault injection for the contract suite (FR-SYS-005, NFR-MON-002): a storage port that fails
//! on cue, so a test can watch `/v1/health` turn degraded, the alert fire and then resolve.
//!
//! The adapters put [`Faultable`] in front of their SQL, key-value, event-log and blob ports. It
//! fails every call of a port whose bit is set in this isolate's mask and otherwise delegates
//! (one thread-local read per call; the mask is empty unless a test set it). The mask is set
//! only through `PUT /__dev/faults`, which exists only in development with
//! `EDGEPLANE_FAULT_INJECTION=on`; it is also kept under [`MASK_KEY`] in the key-value store, so
//! a runtime that makes an instance per request (Spin) reads it at the start of each request
//! ([`load`]).
//!
//! The same switch moves time: `PUT /__dev/clock` sets an offset that [`Shifted`], the clock
//! the adapters hand to core, adds to the runtime's clock (so a test can let a one-time code
//! or a session expire without waiting). It is kept under [`CLOCK_KEY`] and loaded alike.

use std::cell::Cell;

use crate::ports::Row;
use crate::ports::{
    AppendOutcome, BlobError, BlobPage, Blobs, Clock, EventLog, EventLogError, Kv, KvError,
    NewEvent, Platform, Secrets, Sql, SqlError, Stmt, StoredEvent, StreamId,
};

/// The variable that enables fault injection (with `EDGEPLANE_ENV=development`).
pub const ENABLE_VAR: &str = "EDGEPLANE_FAULT_INJECTION";

/// The key-value key that keeps the mask between instances.
pub const MASK_KEY: &str = "dev:faults";

/// The key-value key that keeps the clock offset between instances (8 bytes, little-endian
/// milliseconds).
pub const CLOCK_KEY: &str = "dev:clock";

/// What an injected failure says.
const CAUSE: &str = "injected fault";

/// A port that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The SQL database.
    Sql,
    /// The key-value store.
    Kv,
    /// The event log.
    EventLog,
    /// The archive's object store.
    Blobs,
}

impl Port {
    /// Every port, with its name in `PUT /__dev/faults`.
    pub const ALL: [(Port, &'static str); 4] = [
        (Port::Sql, "sql"),
        (Port::Kv, "kv"),
        (Port::EventLog, "event_log"),
        (Port::Blobs, "blobs"),
    ];

    fn bit(self) -> u8 {
        match self {
            Port::Sql => 1,
            Port::Kv => 2,
            Port::EventLog => 4,
            Port::Blobs => 8,
        }
    }

    /// The port of a name.
    pub fn parse(name: &str) -> Option<Port> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }
}

thread_local! {
    static MASK: Cell<u8> = const { Cell::new(0) };
    static CLOCK_OFFSET: Cell<i64> = const { Cell::new(0) };
}

/// How far ahead of the runtime's clock [`Shifted`] reads in this isolate (ms); 0 unless a
/// test moved it.
pub fn clock_offset() -> i64 {
    CLOCK_OFFSET.with(Cell::get)
}

/// Makes [`Shifted`] read `offset_ms` ahead in this isolate.
pub fn set_clock_offset(offset_ms: i64) {
    CLOCK_OFFSET.with(|o| o.set(offset_ms));
}

/// Whether calls to `port` fail now.
pub fn failing(port: Port) -> bool {
    MASK.with(|m| m.get() & port.bit() != 0)
}

/// The ports failing now.
pub fn mask() -> u8 {
    MASK.with(Cell::get)
}

/// Makes exactly the ports of `mask` fail in this isolate.
pub fn set_mask(mask: u8) {
    MASK.with(|m| m.set(mask & 0x0f));
}

/// The mask of a list of ports.
pub fn mask_of(ports: &[Port]) -> u8 {
    ports.iter().fold(0, |m, p| m | p.bit())
}

/// Whether fault injection is enabled: development only, and only when asked for.
pub fn enabled<S: Secrets>(secrets: &S) -> bool {
    secrets.get("EDGEPLANE_ENV").as_deref() == Some("development")
        && secrets.get(ENABLE_VAR).as_deref() == Some("on")
}

/// Where injection is enabled and an instance serves one request, reads the mask kept in the
/// key-value store into this instance (before anything could fail, the mask being empty at
/// the start of an instance). Elsewhere a no-op, without a storage call.
pub async fn load<P: Platform>(p: &P) {
    if !p.instance_per_request() || !enabled(p.secrets()) {
        return;
    }
    if let Ok(Some(v)) = p.kv().get(MASK_KEY, None).await {
        set_mask(v.first().copied().unwrap_or(0));
    }
    if let Ok(Some(v)) = p.kv().get(CLOCK_KEY, None).await {
        set_clock_offset(<[u8; 8]>::try_from(v.as_slice()).map_or(0, i64::from_le_bytes));
    }
}

/// Sets the clock offset in this isolate and keeps it for other instances.
pub async fn store_clock_offset<P: Platform>(p: &P, offset_ms: i64) -> Result<(), KvError> {
    p.kv()
        .put(CLOCK_KEY, &offset_ms.to_le_bytes(), None)
        .await?;
    set_clock_offset(offset_ms);
    Ok(())
}

/// The runtime's clock, read [`clock_offset`] ahead: what the adapters give core as its
/// `Clock`. Outside tests that moved it the offset is 0 (one thread-local read a call).
#[derive(Debug, Clone, Copy, Default)]
pub struct Shifted<C>(pub C);

impl<C: Clock> Clock for Shifted<C> {
    fn now_ms(&self) -> i64 {
        self.0.now_ms().saturating_add(clock_offset())
    }
}

/// Sets the mask in this isolate and keeps it for other instances. Ports that stay or become
/// healthy are healed first, so the key-value store is reachable for the write unless it fails
/// both before and after (then only this isolate changes).
pub async fn store<P: Platform>(p: &P, new: u8) -> Result<(), KvError> {
    set_mask(mask() & new);
    let kept = if failing(Port::Kv) {
        Ok(())
    } else {
        p.kv().put(MASK_KEY, &[new], None).await
    };
    set_mask(new);
    kept
}

/// A port in front of another that fails while its [`Port`] is in the isolate's mask.
#[derive(Debug, Clone)]
pub struct Faultable<T> {
    inner: T,
}

impl<T> Faultable<T> {
    /// `inner`, failing on cue.
    pub fn new(inner: T) -> Self {
        Self { inner }
    }

    /// The port behind.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: Sql> Sql for Faultable<T> {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        if failing(Port::Sql) {
            return Err(SqlError::Unavailable(CAUSE.into()));
        }
        self.inner.query(stmt).await
    }
    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError> {
        if failing(Port::Sql) {
            return Err(SqlError::Unavailable(CAUSE.into()));
        }
        self.inner.execute(stmt).await
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        if failing(Port::Sql) {
            return Err(SqlError::Unavailable(CAUSE.into()));
        }
        self.inner.batch(stmts).await
    }
}

impl<T: Kv> Kv for Faultable<T> {
    async fn get(
        &self,
        key: &str,
        cache_ttl_secs: Option<u32>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        if failing(Port::Kv) {
            return Err(KvError::Unavailable(CAUSE.into()));
        }
        self.inner.get(key, cache_ttl_secs).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), KvError> {
        if failing(Port::Kv) {
            return Err(KvError::Unavailable(CAUSE.into()));
        }
        self.inner.put(key, value, ttl_secs).await
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        if failing(Port::Kv) {
            return Err(KvError::Unavailable(CAUSE.into()));
        }
        self.inner.delete(key).await
    }
    async fn get_many(
        &self,
        keys: &[(&str, Option<u32>)],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if failing(Port::Kv) {
            return Err(KvError::Unavailable(CAUSE.into()));
        }
        self.inner.get_many(keys).await
    }
}

impl<T: EventLog> EventLog for Faultable<T> {
    async fn append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError> {
        if failing(Port::EventLog) {
            return Err(EventLogError::Unavailable(CAUSE.into()));
        }
        self.inner.append(stream, events).await
    }
    async fn read(
        &self,
        stream: &StreamId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError> {
        if failing(Port::EventLog) {
            return Err(EventLogError::Unavailable(CAUSE.into()));
        }
        self.inner.read(stream, after_seq, limit).await
    }
    async fn truncate(&self, stream: &StreamId, through_seq: i64) -> Result<u64, EventLogError> {
        if failing(Port::EventLog) {
            return Err(EventLogError::Unavailable(CAUSE.into()));
        }
        self.inner.truncate(stream, through_seq).await
    }
    async fn drop_stream(&self, stream: &StreamId) -> Result<(), EventLogError> {
        if failing(Port::EventLog) {
            return Err(EventLogError::Unavailable(CAUSE.into()));
        }
        self.inner.drop_stream(stream).await
    }
    async fn ping(&self) -> Result<(), EventLogError> {
        if failing(Port::EventLog) {
            return Err(EventLogError::Unavailable(CAUSE.into()));
        }
        self.inner.ping().await
    }
}

impl<T: Blobs> Blobs for Faultable<T> {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        if failing(Port::Blobs) {
            return Err(BlobError::Unavailable(CAUSE.into()));
        }
        self.inner.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        if failing(Port::Blobs) {
            return Err(BlobError::Unavailable(CAUSE.into()));
        }
        self.inner.get(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BlobPage, BlobError> {
        if failing(Port::Blobs) {
            return Err(BlobError::Unavailable(CAUSE.into()));
        }
        self.inner.list(prefix, cursor, limit).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        if failing(Port::Blobs) {
            return Err(BlobError::Unavailable(CAUSE.into()));
        }
        self.inner.delete(key).await
    }
}
