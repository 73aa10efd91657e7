//! The ports: every way core reaches the world. Adapters (Workers, Spin, native tests) implement
//! these traits; core is generic over them through [`Platform`], so dispatch is static and no
//! platform type or error ever enters core.
//!
//! The traits use plain `async fn` without `Send` bounds: both runtimes run one thread per
//! isolate/instance.
#![allow(async_fn_in_trait)]

use std::collections::BTreeMap;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// A value bound to a statement parameter or read from a column (SQLite's storage classes).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer. D1 carries numbers as JS doubles: keep ids and counters below 2^53.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One SQL statement with its bound parameters (`?1`, `?2`, ... in the text). The text is
/// always a literal in core: input only ever travels as a parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The SQL text, in the SQLite dialect shared by D1, Spin SQLite and rusqlite.
    pub sql: &'static str,
    /// Positional parameters.
    pub params: Vec<Value>,
}

impl Stmt {
    /// A statement with no parameters.
    pub fn new(sql: &'static str) -> Self {
        Stmt {
            sql,
            params: Vec::new(),
        }
    }

    /// Appends a positional parameter.
    #[must_use]
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.params.push(v.into());
        self
    }
}

/// One result row: column name to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub BTreeMap<String, Value>);

impl Row {
    /// The raw value of a column, `None` if the query did not select it.
    pub fn get(&self, col: &str) -> Option<&Value> {
        self.0.get(col)
    }

    /// An integer column (`Null` or absent is an error).
    pub fn i64(&self, col: &str) -> Result<i64, SqlError> {
        match self.get(col) {
            Some(Value::Integer(v)) => Ok(*v),
            // D1 hands back numbers as doubles; integral ones are integers.
            Some(Value::Real(v)) if v.fract() == 0.0 => Ok(*v as i64),
            other => Err(SqlError::Decode(format!(
                "column {col}: expected integer, got {other:?}"
            ))),
        }
    }

    /// A nullable integer column.
    pub fn opt_i64(&self, col: &str) -> Result<Option<i64>, SqlError> {
        match self.get(col) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.i64(col).map(Some),
        }
    }

    /// A text column (`Null` or absent is an error).
    pub fn text(&self, col: &str) -> Result<String, SqlError> {
        match self.get(col) {
            Some(Value::Text(v)) => Ok(v.clone()),
            other => Err(SqlError::Decode(format!(
                "column {col}: expected text, got {other:?}"
            ))),
        }
    }

    /// A nullable text column.
    pub fn opt_text(&self, col: &str) -> Result<Option<String>, SqlError> {
        match self.get(col) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(col).map(Some),
        }
    }
}

/// Why a statement failed. Adapters classify their platform's errors into these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// A UNIQUE, PRIMARY KEY, FOREIGN KEY or CHECK constraint refused the write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The database could not be reached or is overloaded; the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row did not have the shape core expected.
    #[error("cannot decode row: {0}")]
    Decode(String),
    /// Anything else (syntax, I/O); a bug or an outage, never the client's fault.
    #[error("database error: {0}")]
    Other(String),
}

/// Relational storage: D1 on Workers, Spin SQLite on Spin, rusqlite natively.
pub trait Sql {
    /// Runs a query and returns every row (empty on no match).
    /// MUST return [`SqlError::Constraint`] when a constraint refuses a write.
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError>;

    /// Runs a write and returns the number of rows changed (0 when nothing matched).
    async fn execute(&self, stmt: Stmt) -> Result<u64, SqlError>;

    /// Runs the statements in order as one transaction: all apply or none does. Returns each
    /// statement's changed-row count. MUST roll back every statement if any fails.
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError>;
}

// ---------------------------------------------------------------------------------------------
// Key-value
// ---------------------------------------------------------------------------------------------

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KvError {
    /// The store could not be reached; the caller may retry.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("key-value error: {0}")]
    Other(String),
}

/// An eventually consistent key-value cache (Workers KV, Spin key-value). Never the source of
/// truth: every value in it can be rebuilt from SQL.
pub trait Kv {
    /// Reads a key. Returns `Ok(None)` on a miss. `cache_ttl_secs` lets the edge serve a cached
    /// copy for that long (Workers KV `cacheTtl`, at least 60); adapters without one ignore it.
    async fn get(&self, key: &str, cache_ttl_secs: Option<u32>)
        -> Result<Option<Vec<u8>>, KvError>;

    /// Writes a key, replacing any value. `ttl_secs` expires it (Workers KV needs at least 60).
    async fn put(&self, key: &str, value: &[u8], ttl_secs: Option<u32>) -> Result<(), KvError>;

    /// Deletes a key. Deleting a missing key is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), KvError>;

    /// Reads several keys (each with its `cache_ttl_secs`, as [`Kv::get`]): their values in the
    /// order asked. An adapter whose store reads many keys in one call (Spin's
    /// `wasi:keyvalue/batch`) or reads concurrently (Workers KV: one round trip of latency)
    /// overrides this; the default reads them one after another.
    async fn get_many(
        &self,
        keys: &[(&str, Option<u32>)],
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let mut values = Vec::with_capacity(keys.len());
        for &(key, ttl) in keys {
            values.push(self.get(key, ttl).await?);
        }
        Ok(values)
    }
}

// ---------------------------------------------------------------------------------------------
// Event log
// ---------------------------------------------------------------------------------------------

/// Which stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    /// Billing events (FR-BILL-001).
    Billing,
    /// Audit events (FR-LOG-001).
    Audit,
}

impl StreamKind {
    /// The stable name used in storage keys and archive paths.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Billing => "billing",
            StreamKind::Audit => "audit",
        }
    }

    /// Parses [`StreamKind::as_str`] back.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "billing" => Some(StreamKind::Billing),
            "audit" => Some(StreamKind::Audit),
            _ => None,
        }
    }
}

/// One stream: a kind of events of one tenant (the platform's own stream uses tenant `_platform`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// Billing or audit.
    pub kind: StreamKind,
    /// The tenant id, or `_platform`.
    pub tenant: String,
}

impl StreamId {
    /// Parses the display form `<kind>/<tenant>` back.
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, tenant) = s.split_once('/')?;
        Some(StreamId {
            kind: StreamKind::parse(kind)?,
            tenant: tenant.to_owned(),
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.tenant)
    }
}

/// An event to append. `id` is the client's event id (or derived from its `Idempotency-Key`):
/// appending an id the stream already holds changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Deduplication key, unique within the stream.
    pub id: String,
    /// When the event happened (unix ms, from the client).
    pub occurred_at_ms: i64,
    /// The validated event as JSON text.
    pub body: String,
}

/// An event as stored: its position in the stream and when it was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the stream, strictly increasing from 1.
    pub seq: i64,
    /// The event id.
    pub id: String,
    /// When the event happened (unix ms).
    pub occurred_at_ms: i64,
    /// When the log accepted it (unix ms).
    pub received_at_ms: i64,
    /// The event as JSON text.
    pub body: String,
    /// The hash of the previous record of the stream (64 zeros for the first), hex.
    pub prev_hash: String,
    /// This record's hash over its fields and `prev_hash` (see `events::chain`), hex.
    pub hash: String,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Events newly written.
    pub appended: u32,
    /// Events already present (same id) and left unchanged.
    pub duplicates: u32,
}

/// Why an event-log operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventLogError {
    /// The log could not be reached; nothing was acknowledged, the caller may retry.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("event log error: {0}")]
    Other(String),
}

/// Durable, append-only storage of billing and audit events (a Durable Object per stream shard
/// on Workers; SQLite on Spin and natively). An `Ok` from [`EventLog::append`] means the events
/// are durably stored: only then may the API answer 202.
pub trait EventLog {
    /// Appends events to a stream, skipping ids already present. Atomic: all new events are
    /// stored, or none is and an error is returned.
    async fn append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError>;

    /// Reads up to `limit` events with `seq > after_seq`, in order. Empty at the end.
    async fn read(
        &self,
        stream: &StreamId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError>;

    /// Drops the events with `seq <= through_seq` once they are archived. The stream keeps
    /// its head (last sequence number and hash), so later appends continue the chain, and its
    /// recent event ids, so a late retry is still recognised. Returns the rows dropped (0 when
    /// none were left).
    async fn truncate(&self, stream: &StreamId, through_seq: i64) -> Result<u64, EventLogError>;

    /// Deletes everything the log holds for a stream (tenant purge, FR-OPS-002): events, ids,
    /// head. Deleting a stream that does not exist is `Ok`.
    async fn drop_stream(&self, stream: &StreamId) -> Result<(), EventLogError>;

    /// Checks the log answers (health).
    async fn ping(&self) -> Result<(), EventLogError>;
}

// ---------------------------------------------------------------------------------------------
// Blobs
// ---------------------------------------------------------------------------------------------

/// Why a blob operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlobError {
    /// The store could not be reached; the caller may retry.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("blob store error: {0}")]
    Other(String),
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlobPage {
    /// Keys in lexicographic order.
    pub keys: Vec<String>,
    /// Pass back to continue; `None` at the end.
    pub cursor: Option<String>,
}

/// Immutable archive objects (R2 on Workers; SQLite on Spin and natively).
pub trait Blobs {
    /// Stores an object, replacing any object of that key.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError>;

    /// Reads an object. Returns `Ok(None)` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;

    /// Lists keys under a prefix, at most `limit` per page.
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BlobPage, BlobError>;

    /// Deletes an object. Deleting a missing key is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

// ---------------------------------------------------------------------------------------------
// Mail
// ---------------------------------------------------------------------------------------------

/// A message to one recipient, in plain text and HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Why a message could not be handed over.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MailError {
    /// The provider could not be reached or refused for now; the caller may retry.
    #[error("mail provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the message.
    #[error("mail refused: {0}")]
    Rejected(String),
}

/// Outgoing mail (invitations, password resets).
pub trait Mailer {
    /// Hands the message to the provider (or the dev outbox). `Ok` means accepted for delivery.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

// ---------------------------------------------------------------------------------------------
// Outbound HTTP
// ---------------------------------------------------------------------------------------------

/// An HTTP request core sends to another service (an identity provider's discovery document and
/// keys, the mail API). Header names are lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The method, upper case (`GET`, `POST`): a literal in core.
    pub method: &'static str,
    /// The absolute URL, `https://` (or `http://` to a loopback host in development).
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
    /// The largest response body the caller accepts, in bytes. The adapter stops reading past it
    /// (see [`HttpClient::fetch`]): whoever answers, the isolate never buffers more.
    pub max_body_bytes: usize,
}

impl OutboundRequest {
    /// A `GET` of `url` with an `accept` header, reading at most `max_body_bytes` of the answer.
    pub fn get(url: impl Into<String>, accept: &str, max_body_bytes: usize) -> Self {
        OutboundRequest {
            method: "GET",
            url: url.into(),
            headers: vec![("accept".to_owned(), accept.to_owned())],
            body: Vec::new(),
            max_body_bytes,
        }
    }
}

/// The answer to an [`OutboundRequest`], whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Response headers with lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The whole body, at most the request's `max_body_bytes`.
    pub body: Vec<u8>,
}

impl OutboundResponse {
    /// The first value of a header (`name` in lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an outbound request got no response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// The runtime refused to send it: a destination the deployment does not allow (Spin's
    /// `allowed_outbound_hosts`) or a URL it cannot send to. Retrying will not help.
    #[error("outbound request refused: {0}")]
    Refused(String),
    /// The destination could not be reached or did not answer (DNS, connection, TLS, timeout);
    /// the caller may retry later.
    #[error("destination unavailable: {0}")]
    Unavailable(String),
    /// The response body is longer than the request's `max_body_bytes` (the limit): reading
    /// stopped there. Retrying will not help.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// Anything else (the response could not be read).
    #[error("outbound request failed: {0}")]
    Other(String),
}

/// Outbound HTTP (Workers `fetch`, Spin `wasi:http/outgoing-handler`, canned responses natively).
pub trait HttpClient {
    /// Sends the request and reads the whole response. Any status, 4xx and 5xx included, is
    /// `Ok`: the caller judges it. MUST return [`FetchError::Refused`] when the runtime does not
    /// allow the destination, and [`FetchError::Unavailable`] when no response arrived.
    /// MUST NOT follow redirects: a 3xx is returned as it is.
    /// MUST return [`FetchError::TooLarge`] for a body longer than `req.max_body_bytes`, having
    /// read no more than that plus one chunk of the runtime's stream (a `content-length` above
    /// the limit may be refused before reading at all).
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError>;
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// Why a signature could not be checked. A signature that does not verify is not an error:
/// it is `Ok(false)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignatureError {
    /// The runtime's cryptography failed or refused the key; the caller cannot tell whether
    /// the signature is valid and must not accept it.
    #[error("signature verification unavailable: {0}")]
    Unavailable(String),
}

/// Signature checks under public keys the caller already trusts (Edgeplane's own published
/// signing keys): WebCrypto on Workers, where it is native code in the runtime and about twice
/// as fast as Rust compiled to wasm; `ed25519-dalek` on Spin and natively
/// ([`crate::crypto::DalekVerifier`]).
pub trait SignatureVerifier {
    /// Whether `signature` is a valid Ed25519 signature (RFC 8032, the `EdDSA` of RFC 8037) of
    /// `message` under `public_key`. `kid` names the key, so an adapter may keep what it derives
    /// from the key (an imported key) per `kid`; it MUST still verify under `public_key` as given
    /// whenever that differs from what it kept.
    /// MUST return `Ok(false)` for a signature that does not verify, including one whose `S`
    /// is not below the group order (a malleated copy of a valid signature).
    /// MUST return [`SignatureError::Unavailable`] only when it could not tell (the key could
    /// not be used, the runtime's cryptography failed).
    async fn verify_ed25519(
        &self,
        kid: &str,
        public_key: &[u8; 32],
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<bool, SignatureError>;
}

// ---------------------------------------------------------------------------------------------
// Clock, randomness, secrets, logs
// ---------------------------------------------------------------------------------------------

/// Wall-clock time. Workers' clock advances only across I/O, which is enough for latencies of
/// I/O and for timestamps.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// A cryptographically secure random source (crypto.getRandomValues, WASI random, OS).
pub trait Random {
    /// Fills `buf` with random bytes. Adapters MUST use a CSPRNG.
    fn fill(&self, buf: &mut [u8]);
}

/// Secrets and configuration from the environment (`.dev.vars`, `wrangler secret`, Spin
/// variables). Values never reach a log.
pub trait Secrets {
    /// The value of a named secret or variable; `None` if unset or empty.
    fn get(&self, name: &str) -> Option<String>;
}

/// Where structured log lines go (the runtime's console: Workers Logs, Spin's stdout).
pub trait Logger {
    /// Writes one JSON log line. Callers never pass PII or secrets.
    fn line(&self, json: &str);
}

// ---------------------------------------------------------------------------------------------
// The platform
// ---------------------------------------------------------------------------------------------

/// Names of the backing services, reported by `/v1/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    /// The runtime: `workers`, `spin` or `native`.
    pub runtime: &'static str,
    /// e.g. `d1`, `spin-sqlite`, `sqlite`.
    pub sql: &'static str,
    /// e.g. `workers-kv`, `spin-key-value`.
    pub kv: &'static str,
    /// e.g. `durable-object`, `sqlite`.
    pub event_log: &'static str,
    /// e.g. `r2`, `sqlite`.
    pub blobs: &'static str,
}

/// Everything one runtime provides. Core's services and the HTTP API are generic over it.
pub trait Platform {
    /// Relational storage.
    type Sql: Sql;
    /// Key-value cache.
    type Kv: Kv;
    /// Billing and audit event log.
    type EventLog: EventLog;
    /// Archive objects.
    type Blobs: Blobs;
    /// Outgoing mail.
    type Mailer: Mailer;
    /// Wall clock.
    type Clock: Clock;
    /// CSPRNG.
    type Random: Random;
    /// Secrets and configuration.
    type Secrets: Secrets;
    /// Log sink.
    type Logger: Logger;
    /// Outbound HTTP.
    type Http: HttpClient;
    /// Signature checks.
    type Signatures: SignatureVerifier;

    /// Relational storage.
    fn sql(&self) -> &Self::Sql;
    /// Key-value cache.
    fn kv(&self) -> &Self::Kv;
    /// Event log.
    fn event_log(&self) -> &Self::EventLog;
    /// Archive objects.
    fn blobs(&self) -> &Self::Blobs;
    /// Outgoing mail.
    fn mailer(&self) -> &Self::Mailer;
    /// Wall clock.
    fn clock(&self) -> &Self::Clock;
    /// CSPRNG.
    fn random(&self) -> &Self::Random;
    /// Secrets and configuration.
    fn secrets(&self) -> &Self::Secrets;
    /// Log sink.
    fn logger(&self) -> &Self::Logger;
    /// Outbound HTTP.
    fn http(&self) -> &Self::Http;
    /// Signature checks.
    fn signatures(&self) -> &Self::Signatures;
    /// What backs each port, for health reports.
    fn backends(&self) -> Backends;
    /// Whether the runtime makes an instance per request (Spin), so that nothing held in
    /// memory outlives the request: what is aggregated in an isolate elsewhere must then be
    /// sampled or written at once.
    fn instance_per_request(&self) -> bool {
        false
    }
}
