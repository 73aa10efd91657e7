//! The event reporter: billing or audit events queued in memory and sent in batches
//! (`POST /v1/billing/events`, `POST /v1/audit/events`), each batch under one
//! `Idempotency-Key` that every retry of it reuses, so Edgeplane applies it once however often
//! it is sent.
//!
//! Delivery, as the TypeScript client's:
//! - A batch holds at most `max_batch` events (the API's limit, [`MAX_BATCH`]) of one tenant
//!   (the API takes one tenant per request) and at most [`MAX_BODY_BYTES`] of JSON. Batches go
//!   one at a time, so a tenant's events keep their order.
//! - Network errors, 408, 429 and 5xx are retried with exponential backoff and full jitter (a
//!   random wait between 0 and `min(max_delay, base_delay * 2^(attempt-1))`); a `Retry-After`
//!   in seconds on 429 or 503 is waited for instead.
//! - Any other 4xx is not retried: its events go to `on_drop`. A 400 that names one event of a
//!   batch drops that event only; the others are queued again, first (nothing of a refused
//!   batch was stored).
//! - The queue holds at most `max_queue` events, waiting or being sent. When it is full the
//!   NEWEST event is refused: what was accepted (perhaps already sent under an
//!   `Idempotency-Key`) is never evicted, and the caller learns of the drop at once.
//!
//! There are no background timers (the reporter does not own an executor): events are sent
//! when the caller awaits [`EventReporter::flush`], e.g. every second from a task of its own,
//! or in a Worker with `ctx.wait_until` before the response is returned.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::{Http, Method, Request};
use crate::time::Sleep;

/// Most events in one request: `maxItems` of the API's batch (core's `events::model::MAX_BATCH`).
pub const MAX_BATCH: usize = 1000;
/// Largest request body the API reads (core's `http::MAX_BODY_BYTES`), in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest `metadata` object, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Largest billing quantity.
pub const MAX_QUANTITY: u64 = 1_000_000_000_000_000;
/// `{"events":[` and `]}`.
const BODY_OVERHEAD: usize = 13;

/// An event a reporter sends: its route and the cheap checks of the API's rules.
pub trait Event: Serialize + Clone {
    /// The route that takes a batch of these events.
    const PATH: &'static str;
    /// The tenant the event belongs to (`None` with a tenant-bound key).
    fn tenant_id(&self) -> Option<&str>;
    /// Refuses an event the API could never store.
    fn validate(&self) -> Result<(), InvalidEventError>;
}

/// A billing event (`bill:write`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillingEvent {
    /// Your id of the event: Edgeplane stores one event per id, so reporting it twice is safe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tenant; may be left out with a tenant-bound key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// What happened, e.g. `api.call` (`[A-Za-z0-9._:/-]{1,64}`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// How much, an integer up to [`MAX_QUANTITY`].
    pub quantity: u64,
    /// When, RFC 3339.
    pub timestamp: String,
    /// Anything else, at most [`MAX_METADATA_BYTES`] as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// An audit event (`log:write`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Your id of the event (see [`BillingEvent::id`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tenant; may be left out with a tenant-bound key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// When, RFC 3339.
    pub timestamp: String,
    /// Who acted.
    pub actor_id: String,
    /// What was done, e.g. `invoice.delete`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// To what.
    pub resource_id: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The actor's IP address.
    pub ip: String,
    /// Anything else, at most [`MAX_METADATA_BYTES`] as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Event for BillingEvent {
    const PATH: &'static str = "/v1/billing/events";

    fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    fn validate(&self) -> Result<(), InvalidEventError> {
        common(
            &self.id,
            &self.tenant_id,
            &self.event_type,
            &self.timestamp,
            &self.metadata,
        )?;
        if self.quantity > MAX_QUANTITY {
            return Err(InvalidEventError::new("quantity", "must be at most 10^18"));
        }
        Ok(())
    }
}

impl Event for AuditEvent {
    const PATH: &'static str = "/v1/audit/events";

    fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    fn validate(&self) -> Result<(), InvalidEventError> {
        common(
            &self.id,
            &self.tenant_id,
            &self.event_type,
            &self.timestamp,
            &self.metadata,
        )?;
        for (field, v) in [
            ("actor_id", &self.actor_id),
            ("resource_id", &self.resource_id),
        ] {
            let n = v.chars().count();
            if n == 0 || n > 256 || v.chars().any(char::is_control) {
                return Err(InvalidEventError::new(
                    field,
                    "must be 1 to 256 characters, no control characters",
                ));
            }
        }
        if self.outcome != "success" && self.outcome != "failure" {
            return Err(InvalidEventError::new(
                "outcome",
                "must be success or failure",
            ));
        }
        if self.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(InvalidEventError::new(
                "ip",
                "must be an IPv4 or IPv6 address",
            ));
        }
        Ok(())
    }
}

fn common(
    id: &Option<String>,
    tenant_id: &Option<String>,
    event_type: &str,
    timestamp: &str,
    metadata: &Option<Map<String, Value>>,
) -> Result<(), InvalidEventError> {
    let printable = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| (b'!'..=b'~').contains(&b))
    };
    if id.as_deref().is_some_and(|v| !printable(v, 128)) {
        return Err(InvalidEventError::new(
            "id",
            "must be 1 to 128 printable ASCII characters",
        ));
    }
    if tenant_id.as_deref().is_some_and(|v| !printable(v, 64)) {
        return Err(InvalidEventError::new(
            "tenant_id",
            "must be 1 to 64 printable ASCII characters",
        ));
    }
    let type_ok = !event_type.is_empty()
        && event_type.len() <= 64
        && event_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b));
    if !type_ok {
        return Err(InvalidEventError::new(
            "type",
            "must match [A-Za-z0-9._:/-]{1,64}",
        ));
    }
    if !is_rfc3339(timestamp) {
        return Err(InvalidEventError::new(
            "timestamp",
            "must be an RFC 3339 date-time",
        ));
    }
    if let Some(m) = metadata {
        if Value::Object(m.clone()).to_string().len() > MAX_METADATA_BYTES {
            return Err(InvalidEventError::new(
                "metadata",
                "must be at most 4,096 bytes as JSON",
            ));
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, by shape (the server checks the calendar).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0..4) && at(4, b"-") && digits(5..7) && at(7, b"-") && digits(8..10))
        || !(at(10, b"Tt")
            && digits(11..13)
            && at(13, b":")
            && digits(14..16)
            && at(16, b":")
            && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// An event refused by [`EventReporter::report`]: it could never be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEventError {
    /// The refused field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: &'static str,
}

impl InvalidEventError {
    fn new(field: &'static str, message: &'static str) -> Self {
        Self { field, message }
    }
}

impl fmt::Display for InvalidEventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for InvalidEventError {}

/// Why events were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The queue held `max_queue` events: the newest was refused.
    QueueFull,
    /// Edgeplane refused them with a 4xx other than 408 and 429; not retried.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The problem details, as text.
        body: String,
    },
    /// `max_attempts` sends all failed; the last status, if an answer came.
    RetriesExhausted {
        /// The last answer's status, `None` after a network error.
        status: Option<u16>,
    },
}

/// How a reporter batches and retries.
#[derive(Debug, Clone)]
pub struct ReporterOptions {
    /// Most events per request, 1 to [`MAX_BATCH`] (the default).
    pub max_batch: usize,
    /// Most events held at once, waiting or being sent (default 10,000).
    pub max_queue: usize,
    /// The first retry waits up to this long (default 200 ms).
    pub base_delay: Duration,
    /// No backoff wait is longer (default 30 s); a `Retry-After` may be.
    pub max_delay: Duration,
    /// Sends of one batch before its events are dropped (default: no limit).
    pub max_attempts: Option<u32>,
    /// Seeds the generator of Idempotency-Keys and jitter: must differ between processes.
    /// Natively the default comes from the OS, with feature `worker` from
    /// `crypto.getRandomValues`; in other wasm, set it yourself.
    pub seed: u64,
}

impl Default for ReporterOptions {
    fn default() -> Self {
        Self {
            max_batch: MAX_BATCH,
            max_queue: 10_000,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            seed: default_seed(),
        }
    }
}

#[cfg(feature = "native")]
fn default_seed() -> u64 {
    use std::hash::BuildHasher;
    // std's SipHash keys are random per process (and differ per `RandomState`): a seed
    // without another dependency.
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

#[cfg(all(feature = "worker", not(feature = "native")))]
fn default_seed() -> u64 {
    crate::workers::random_seed()
}

#[cfg(not(any(feature = "native", feature = "worker")))]
fn default_seed() -> u64 {
    0x9e37_79b9_7f4a_7c15
}

/// A queued event, its tenant and its size as JSON.
struct Entry<E> {
    event: E,
    tenant: String,
    bytes: usize,
}

/// Told of every dropped event, with why.
pub type OnDrop<E> = Box<dyn Fn(&[E], &DropReason)>;

/// Sends billing ([`BillingEvent`]) or audit ([`AuditEvent`]) events in batches; see the
/// module's documentation for the delivery rules.
pub struct EventReporter<E, H, S> {
    http: H,
    sleep: S,
    url: String,
    api_key: String,
    options: ReporterOptions,
    waiting: RefCell<VecDeque<Entry<E>>>,
    sending: Cell<usize>,
    rng: Cell<u64>,
    on_drop: Option<OnDrop<E>>,
    /// One flush sends at a time; a second waits for it, then sends what is left.
    flushing: futures_util::lock::Mutex<()>,
}

impl<E, H, S> fmt::Debug for EventReporter<E, H, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventReporter")
            .field("url", &self.url)
            .field(
                "pending",
                &(self.waiting.borrow().len() + self.sending.get()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "native")]
impl<E: Event> EventReporter<E, crate::http::NativeHttp, crate::time::NativeSleep> {
    /// A reporter to the Edgeplane at `base_url`, with an API key holding `bill:write`
    /// (billing) or `log:write` (audit), default options, ureq and thread sleeps.
    pub fn new(base_url: &str, api_key: &str) -> Self {
        Self::with_seams(
            crate::http::NativeHttp::default(),
            crate::time::NativeSleep,
            base_url,
            api_key,
            ReporterOptions::default(),
        )
    }
}

impl<E: Event, H: Http, S: Sleep> EventReporter<E, H, S> {
    /// A reporter that sends through `http` and waits through `sleep`.
    pub fn with_seams(
        http: H,
        sleep: S,
        base_url: &str,
        api_key: &str,
        options: ReporterOptions,
    ) -> Self {
        let mut options = options;
        options.max_batch = options.max_batch.clamp(1, MAX_BATCH);
        options.max_queue = options.max_queue.max(1);
        Self {
            http,
            sleep,
            url: format!("{}{}", crate::trim_base(base_url), E::PATH),
            api_key: api_key.to_owned(),
            // xorshift must not start at zero.
            rng: Cell::new(options.seed | 1),
            options,
            waiting: RefCell::new(VecDeque::new()),
            sending: Cell::new(0),
            on_drop: None,
            flushing: futures_util::lock::Mutex::new(()),
        }
    }

    /// Calls `f` with every dropped event and why (a full queue, a refusal, retries exhausted).
    pub fn on_drop(mut self, f: impl Fn(&[E], &DropReason) + 'static) -> Self {
        self.on_drop = Some(Box::new(f));
        self
    }

    /// Events held now, waiting or being sent.
    pub fn pending(&self) -> usize {
        self.waiting.borrow().len() + self.sending.get()
    }

    /// Queues `event`: `Ok(true)` if queued, `Ok(false)` (after telling `on_drop`) if the
    /// queue is full; `Err` if the event breaks the API's rules and could never be stored.
    pub fn report(&self, event: E) -> Result<bool, InvalidEventError> {
        event.validate()?;
        let bytes = serde_json::to_vec(&event)
            .map_err(|_| InvalidEventError::new("event", "cannot be serialized"))?
            .len();
        if self.pending() >= self.options.max_queue {
            self.drop_events(&[event], &DropReason::QueueFull);
            return Ok(false);
        }
        let tenant = event.tenant_id().unwrap_or_default().to_owned();
        self.waiting.borrow_mut().push_back(Entry {
            event,
            tenant,
            bytes,
        });
        Ok(true)
    }

    /// Sends everything queued; resolves once each event was acknowledged or dropped.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        loop {
            let batch = self.take();
            if batch.is_empty() {
                return;
            }
            self.sending.set(batch.len());
            self.send(batch).await;
            self.sending.set(0);
        }
    }

    /// The next batch: the oldest event's tenant, its events in order up to the first that
    /// does not fit either limit; the rest stays queued in its order.
    fn take(&self) -> Vec<Entry<E>> {
        let mut waiting = self.waiting.borrow_mut();
        let Some(tenant) = waiting.front().map(|e| e.tenant.clone()) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut rest = VecDeque::with_capacity(waiting.len());
        let mut bytes = BODY_OVERHEAD;
        let mut full = false;
        for entry in waiting.drain(..) {
            if !full && entry.tenant == tenant {
                full = batch.len() >= self.options.max_batch
                    || bytes + entry.bytes + 1 > MAX_BODY_BYTES;
                if !full {
                    bytes += entry.bytes + 1;
                    batch.push(entry);
                    continue;
                }
            }
            rest.push_back(entry);
        }
        *waiting = rest;
        batch
    }

    /// Sends one batch until it is acknowledged, refused or out of attempts.
    async fn send(&self, batch: Vec<Entry<E>>) {
        let events: Vec<E> = batch.into_iter().map(|e| e.event).collect();
        let Ok(body) = serde_json::to_vec(&serde_json::json!({ "events": &events })) else {
            self.drop_events(
                &events,
                &DropReason::Rejected {
                    status: 0,
                    body: "unserializable".into(),
                },
            );
            return;
        };
        let key = self.idempotency_key();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let req = Request::new(Method::Post, &self.url)
                .header("authorization", format!("Bearer {}", self.api_key))
                .header("idempotency-key", key.clone())
                .json(body.clone());
            let mut status = None;
            let mut wait = None;
            if let Ok(resp) = self.http.send(req).await {
                if resp.is_success() {
                    return;
                }
                status = Some(resp.status);
                if !retryable(resp.status) {
                    self.refused(events, resp.status, &resp.body);
                    return;
                }
                if resp.status == 429 || resp.status == 503 {
                    wait = resp
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                }
            }
            if self.options.max_attempts.is_some_and(|max| attempt >= max) {
                self.drop_events(&events, &DropReason::RetriesExhausted { status });
                return;
            }
            let wait = wait.unwrap_or_else(|| self.backoff(attempt));
            self.sleep.sleep(wait).await;
        }
    }

    /// Full jitter: a random wait up to `min(max_delay, base_delay * 2^(attempt-1))`.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.options.base_delay.as_millis() as u64;
        let cap = base
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(32))
            .min(self.options.max_delay.as_millis() as u64);
        Duration::from_millis(self.next_random() % (cap + 1))
    }

    /// A refused batch: a 400 naming one event of several drops that event and queues the
    /// others again, first; anything else drops the batch.
    fn refused(&self, mut events: Vec<E>, status: u16, body: &[u8]) {
        #[derive(Deserialize)]
        struct Problem {
            #[serde(default)]
            errors: Vec<FieldError>,
        }
        #[derive(Deserialize)]
        struct FieldError {
            #[serde(default)]
            field: String,
            index: Option<usize>,
        }
        let text = String::from_utf8_lossy(body).into_owned();
        let named = serde_json::from_slice::<Problem>(body)
            .ok()
            .and_then(|p| p.errors.into_iter().next())
            // A request-wide rule (the tenant of an app-wide key, ids) is every event's problem.
            .filter(|e| e.field != "tenant_id" && e.field != "id")
            .and_then(|e| e.index)
            .filter(|i| status == 400 && events.len() > 1 && *i < events.len());
        let reason = DropReason::Rejected { status, body: text };
        let Some(index) = named else {
            self.drop_events(&events, &reason);
            return;
        };
        let bad = events.remove(index);
        self.drop_events(&[bad], &reason);
        let mut waiting = self.waiting.borrow_mut();
        for event in events.into_iter().rev() {
            let bytes = serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(0);
            let tenant = event.tenant_id().unwrap_or_default().to_owned();
            waiting.push_front(Entry {
                event,
                tenant,
                bytes,
            });
        }
    }

    fn drop_events(&self, events: &[E], reason: &DropReason) {
        if let Some(f) = &self.on_drop {
            f(events, reason);
        }
    }

    /// xorshift64*: not cryptographic, only distinct across processes (see `seed`).
    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A UUID v4 drawn from the generator.
    fn idempotency_key(&self) -> String {
        let hi = (self.next_random() & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
        let lo = (self.next_random() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_by_shape() {
        for ok in [
            "2026-12-06T14:05:05Z",
            "2026-12-06t14:05:05.123+01:00",
            "2026-12-06T14:05:05-08:00",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "2026-12-06",
            "2026-12-06T14:05:05",
            "2026-12-06T14:05:05.Z",
            "2026-12-06 14:05:05Z",
            "2026-12-06T14:05:05+0100",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
