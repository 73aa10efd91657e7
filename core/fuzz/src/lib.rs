//! What the fuzz targets share: a platform whose stores answer from fixed data (the ports that
//! access-token verification and event ingestion reach), an executor for its futures, which
//! never wait, and the fixed instant and keys the targets verify against.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use edgeplane_core::crypto::{b64url_encode, DalekVerifier};
use edgeplane_core::ports::{
    AppendOutcome, Backends, BlobError, BlobPage, Blobs, Clock, EventLog, EventLogError,
    FetchError, HttpClient, Kv, KvError, Logger, Mail, MailError, Mailer, NewEvent,
    OutboundRequest, OutboundResponse, Platform, Random, Row, Secrets, Sql, SqlError, Stmt,
    StoredEvent, StreamId, Value,
};
use edgeplane_core::tokens::keys::{ActiveKey, PublicJwk, JWKS_KV_KEY};

/// The instant every target runs at: 2026-01-01T00:00:00Z, the `iat` of the recorded
/// development-issuer token.
pub const NOW_MS: i64 = 1_767_225_600_000;

/// The `kid` of the access-token signing key.
pub const ACCESS_KID: &str = "fuzz-2026";

/// The tenant the fixed platform knows (an active tenant with every app enabled).
pub const TENANT: &str = "0b5e3c2a-7f4d-4a51-9c1e-2d6f8a9b0c11";

/// Runs a future of core over [`FixedPlatform`] to completion. Its stores answer at once, so
/// the future never waits; one that does is a bug of the target, and panics.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a future over the fixed platform waited"),
    }
}

/// The key that signs the access tokens of the seed corpus (Ed25519, a fixed seed).
pub fn access_key() -> ActiveKey {
    ActiveKey {
        kid: ACCESS_KID.to_owned(),
        key: ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]),
    }
}

/// The published key set: the access key alone.
fn published_jwks() -> Vec<PublicJwk> {
    let key = access_key();
    vec![PublicJwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: b64url_encode(key.key.verifying_key().as_bytes()),
        kid: key.kid,
        alg: "EdDSA".into(),
        use_: "sig".into(),
    }]
}

/// A platform over fixed data: SQL knows the published signing keys and one active tenant,
/// KV holds the published key set, the event log accepts every append, and the other ports
/// refuse. Nothing it is asked changes what it answers, so every run of a target is alike.
#[derive(Default)]
pub struct FixedPlatform {
    sql: FixedSql,
    kv: FixedKv,
    events: CountingLog,
    none: Refusing,
    clock: FixedClock,
    random: CountingRandom,
    signatures: DalekVerifier,
}

impl FixedPlatform {
    /// A fresh platform.
    pub fn new() -> Self {
        Self::default()
    }
}

/// SQL answering the signing-key and tenant reads; writes change nothing.
#[derive(Default)]
pub struct FixedSql;

impl Sql for FixedSql {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, SqlError> {
        let row = |col: &str, v: Value| Row([(col.to_owned(), v)].into_iter().collect());
        if stmt.sql.contains("FROM signing_keys") {
            return Ok(published_jwks()
                .iter()
                .filter_map(|k| serde_json::to_string(k).ok())
                .map(|jwk| row("public_jwk", Value::Text(jwk)))
                .collect());
        }
        if stmt.sql.contains("FROM tenants t") {
            let known = stmt.params.first() == Some(&Value::Text(TENANT.to_owned()));
            return Ok(if known {
                vec![row("status", Value::Text("active".into()))]
            } else {
                Vec::new()
            });
        }
        Ok(Vec::new())
    }

    async fn execute(&self, _stmt: Stmt) -> Result<u64, SqlError> {
        Ok(1)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, SqlError> {
        Ok(vec![1; stmts.len()])
    }
}

/// KV holding the published key set under its key, nothing else; writes are dropped.
#[derive(Default)]
pub struct FixedKv;

impl Kv for FixedKv {
    async fn get(&self, key: &str, _ttl: Option<u32>) -> Result<Option<Vec<u8>>, KvError> {
        if key == JWKS_KV_KEY {
            return Ok(serde_json::to_vec(&published_jwks()).ok());
        }
        Ok(None)
    }

    async fn put(&self, _key: &str, _value: &[u8], _ttl: Option<u32>) -> Result<(), KvError> {
        Ok(())
    }

    async fn delete(&self, _key: &str) -> Result<(), KvError> {
        Ok(())
    }
}

/// An event log that accepts every append as new and stores nothing.
#[derive(Default)]
pub struct CountingLog;

impl EventLog for CountingLog {
    async fn append(
        &self,
        _stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError> {
        Ok(AppendOutcome {
            appended: u32::try_from(events.len()).unwrap_or(u32::MAX),
            duplicates: 0,
        })
    }

    async fn read(
        &self,
        _stream: &StreamId,
        _after_seq: i64,
        _limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError> {
        Ok(Vec::new())
    }

    async fn truncate(&self, _stream: &StreamId, _through: i64) -> Result<u64, EventLogError> {
        Ok(0)
    }

    async fn drop_stream(&self, _stream: &StreamId) -> Result<(), EventLogError> {
        Ok(())
    }

    async fn ping(&self) -> Result<(), EventLogError> {
        Ok(())
    }
}

/// The ports no target reaches (blobs, mail, outbound HTTP): each call is refused.
#[derive(Default)]
pub struct Refusing;

impl Blobs for Refusing {
    async fn put(&self, _key: &str, _bytes: Vec<u8>, _ct: &str) -> Result<(), BlobError> {
        Err(BlobError::Other("no blobs here".into()))
    }

    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Err(BlobError::Other("no blobs here".into()))
    }

    async fn list(
        &self,
        _prefix: &str,
        _cursor: Option<&str>,
        _limit: u32,
    ) -> Result<BlobPage, BlobError> {
        Err(BlobError::Other("no blobs here".into()))
    }

    async fn delete(&self, _key: &str) -> Result<(), BlobError> {
        Err(BlobError::Other("no blobs here".into()))
    }
}

impl Mailer for Refusing {
    async fn send(&self, _mail: &Mail) -> Result<(), MailError> {
        Err(MailError::Rejected("no mail here".into()))
    }
}

impl HttpClient for Refusing {
    async fn fetch(&self, _req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        Err(FetchError::Refused("no network here".into()))
    }
}

impl Secrets for Refusing {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

impl Logger for Refusing {
    fn line(&self, _json: &str) {}
}

/// The clock standing still at [`NOW_MS`].
#[derive(Default)]
pub struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW_MS
    }
}

/// Bytes from a counter: distinct, predictable, not secret (nothing a target makes is kept).
#[derive(Default)]
pub struct CountingRandom(Cell<u8>);

impl Random for CountingRandom {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            let next = self.0.get().wrapping_add(1);
            self.0.set(next);
            *b = next;
        }
    }
}

impl Platform for FixedPlatform {
    type Sql = FixedSql;
    type Kv = FixedKv;
    type EventLog = CountingLog;
    type Blobs = Refusing;
    type Mailer = Refusing;
    type Clock = FixedClock;
    type Random = CountingRandom;
    type Secrets = Refusing;
    type Logger = Refusing;
    type Http = Refusing;
    type Signatures = DalekVerifier;

    fn sql(&self) -> &FixedSql {
        &self.sql
    }
    fn kv(&self) -> &FixedKv {
        &self.kv
    }
    fn event_log(&self) -> &CountingLog {
        &self.events
    }
    fn blobs(&self) -> &Refusing {
        &self.none
    }
    fn mailer(&self) -> &Refusing {
        &self.none
    }
    fn clock(&self) -> &FixedClock {
        &self.clock
    }
    fn random(&self) -> &CountingRandom {
        &self.random
    }
    fn secrets(&self) -> &Refusing {
        &self.none
    }
    fn logger(&self) -> &Refusing {
        &self.none
    }
    fn http(&self) -> &Refusing {
        &self.none
    }
    fn signatures(&self) -> &DalekVerifier {
        &self.signatures
    }
    fn backends(&self) -> Backends {
        Backends {
            runtime: "fuzz",
            sql: "fixed",
            kv: "fixed",
            event_log: "counting",
            blobs: "none",
        }
    }
}
