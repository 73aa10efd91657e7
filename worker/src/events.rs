//! The event log on Durable Objects. [`DurableEventLog`] is core's `EventLog` port as seen from
//! a request: it sends each call to the object that owns the stream (one object per stream,
//! named after it) over the stub's `fetch`. [`EventStream`] is that object: it hosts core's
//! `SqlEventLog` over its own SQLite storage ([`DoSql`]), so an append is durable once the
//! object has answered. The small JSON wire format between the two lives here too.
//!
//! The object archives its own tail: the first append after a flush sets an alarm
//! [`FLUSH_DELAY_MS`] ahead, and the alarm runs core's flush (R2 and D1 from the object's own
//! bindings). The cron's flush through [`DurableEventLog`] is the backstop; both are idempotent
//! and the archive index refuses overlapping ranges, so they may race.

use std::cell::Cell;
use std::rc::Rc;

use edgeplane_core::events::anchor::AnchorKeys;
use edgeplane_core::events::archive::flush_stream;
use edgeplane_core::events::SqlEventLog;
use edgeplane_core::ports::{
    AppendOutcome, EventLog, EventLogError, NewEvent, StoredEvent, StreamId, StreamKind,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Env, Method, ObjectNamespace, Request, RequestInit, State};

use crate::d1::D1Sql;
use crate::do_sql::DoSql;
use crate::r2::R2Blobs;
use crate::runtime::{ConsoleLogger, EnvSecrets, WorkerClock};
use edgeplane_core::ports::{Clock, Logger};

/// How long after the first unarchived append the object flushes its tail to R2.
pub const FLUSH_DELAY_MS: i64 = 60_000;

/// How soon the alarm runs again when a flush left a backlog.
pub const BACKLOG_DELAY_MS: i64 = 100;

/// The object that answers [`DurableEventLog::ping`].
const HEALTH_OBJECT: &str = "_health";

/// The URL of calls to an event-stream object (only the body matters to it).
const OBJECT_URL: &str = "https://event-stream.internal/";

// ---------------------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------------------

/// A stream on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireStream {
    kind: String,
    tenant: String,
}

/// An event to append, on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireNewEvent {
    id: String,
    occurred_at_ms: i64,
    body: String,
}

/// A stored event, on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireStoredEvent {
    seq: i64,
    id: String,
    occurred_at_ms: i64,
    received_at_ms: i64,
    body: String,
    prev_hash: String,
    hash: String,
}

/// One call to an event-stream object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum WireRequest {
    Append {
        stream: WireStream,
        events: Vec<WireNewEvent>,
    },
    Read {
        stream: WireStream,
        after_seq: i64,
        limit: u32,
    },
    Truncate {
        stream: WireStream,
        through_seq: i64,
    },
    Drop {
        stream: WireStream,
    },
    Ping,
}

/// A successful answer.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WireResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appended: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duplicates: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events: Option<Vec<WireStoredEvent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped: Option<u64>,
}

/// A failed answer: `kind` is `unavailable` (retry) or `other`.
#[derive(Debug, Serialize, Deserialize)]
struct WireError {
    kind: String,
    message: String,
}

impl From<&StreamId> for WireStream {
    fn from(s: &StreamId) -> Self {
        WireStream {
            kind: s.kind.as_str().to_owned(),
            tenant: s.tenant.clone(),
        }
    }
}

impl WireStream {
    fn parse(self) -> Result<StreamId, EventLogError> {
        let kind = StreamKind::parse(&self.kind)
            .ok_or_else(|| EventLogError::Other(format!("unknown stream kind {:?}", self.kind)))?;
        Ok(StreamId {
            kind,
            tenant: self.tenant,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The port, caller side
// ---------------------------------------------------------------------------------------------

/// The `EventLog` port over the Durable Object namespace `EVENTS`: one object per stream.
pub struct DurableEventLog {
    ns: ObjectNamespace,
}

impl DurableEventLog {
    /// Wraps the Durable Object namespace binding.
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableEventLog { ns }
    }

    /// Sends one call to the object named `object` and decodes its answer.
    async fn call(&self, object: &str, call: &WireRequest) -> Result<WireResponse, EventLogError> {
        let other = |e: worker::Error| EventLogError::Other(e.to_string());
        // Failing to reach the object (network, reset, overload) is transient.
        let unavailable = |e: worker::Error| EventLogError::Unavailable(e.to_string());
        let body = serde_json::to_string(call).map_err(|e| EventLogError::Other(e.to_string()))?;
        let stub = self
            .ns
            .id_from_name(object)
            .and_then(|id| id.get_stub())
            .map_err(other)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let req = Request::new_with_init(OBJECT_URL, &init).map_err(other)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
        let status = resp.status_code();
        let text = resp.text().await.map_err(unavailable)?;
        if status == 200 {
            return serde_json::from_str(&text)
                .map_err(|e| EventLogError::Other(format!("bad event-stream answer: {e}")));
        }
        match serde_json::from_str::<WireError>(&text) {
            Ok(e) if e.kind == "unavailable" => Err(EventLogError::Unavailable(e.message)),
            Ok(e) => Err(EventLogError::Other(e.message)),
            Err(_) if status >= 500 => Err(EventLogError::Unavailable(format!(
                "event-stream object answered {status}"
            ))),
            Err(_) => Err(EventLogError::Other(format!(
                "event-stream object answered {status}"
            ))),
        }
    }
}

impl EventLog for DurableEventLog {
    async fn append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventLogError> {
        let call = WireRequest::Append {
            stream: stream.into(),
            events: events
                .into_iter()
                .map(|e| WireNewEvent {
                    id: e.id,
                    occurred_at_ms: e.occurred_at_ms,
                    body: e.body,
                })
                .collect(),
        };
        let resp = self.call(&stream.to_string(), &call).await?;
        Ok(AppendOutcome {
            appended: resp.appended.unwrap_or(0),
            duplicates: resp.duplicates.unwrap_or(0),
        })
    }

    async fn read(
        &self,
        stream: &StreamId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, EventLogError> {
        let call = WireRequest::Read {
            stream: stream.into(),
            after_seq,
            limit,
        };
        let resp = self.call(&stream.to_string(), &call).await?;
        Ok(resp
            .events
            .unwrap_or_default()
            .into_iter()
            .map(|e| StoredEvent {
                seq: e.seq,
                id: e.id,
                occurred_at_ms: e.occurred_at_ms,
                received_at_ms: e.received_at_ms,
                body: e.body,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect())
    }

    async fn truncate(&self, stream: &StreamId, through_seq: i64) -> Result<u64, EventLogError> {
        let call = WireRequest::Truncate {
            stream: stream.into(),
            through_seq,
        };
        let resp = self.call(&stream.to_string(), &call).await?;
        Ok(resp.dropped.unwrap_or(0))
    }

    async fn drop_stream(&self, stream: &StreamId) -> Result<(), EventLogError> {
        let call = WireRequest::Drop {
            stream: stream.into(),
        };
        self.call(&stream.to_string(), &call).await.map(drop)
    }

    async fn ping(&self) -> Result<(), EventLogError> {
        self.call(HEALTH_OBJECT, &WireRequest::Ping).await.map(drop)
    }
}

// ---------------------------------------------------------------------------------------------
// The object
// ---------------------------------------------------------------------------------------------

/// The Durable Object class `EventStream` (SQLite-backed, see `wrangler.toml`): it owns one
/// stream and stores it with core's `SqlEventLog`.
///
/// The class is bound by hand rather than with `#[durable_object]`: its `fetch` returns a
/// promise settled from Rust, so a panic inside the object still answers the caller (with a
/// wire error) instead of leaving it waiting (see the `panic` module).
#[wasm_bindgen]
pub struct EventStream {
    inner: Rc<StreamObject>,
}

#[wasm_bindgen]
impl EventStream {
    /// Called by the runtime when it instantiates the object.
    #[wasm_bindgen(constructor)]
    pub fn new(state: worker::worker_sys::DurableObjectState, env: Env) -> EventStream {
        let storage = State::from(state).storage();
        EventStream {
            inner: Rc::new(StreamObject {
                log: SqlEventLog::new(DoSql::new(&storage), WorkerClock),
                migrated: Cell::new(false),
                alarm_set: Cell::new(false),
                storage,
                env,
            }),
        }
    }

    /// Called by the runtime when the alarm set after an append fires: archives the tail.
    /// A rejected promise makes the runtime retry the alarm with backoff.
    pub fn alarm(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match inner.flush().await {
                Ok(()) => Ok(JsValue::UNDEFINED),
                Err(e) => {
                    let line = serde_json::json!({ "level": "error", "msg": "event-stream alarm flush failed", "error": e });
                    ConsoleLogger.line(&line.to_string());
                    Err(JsValue::from_str("flush failed"))
                }
            }
        })
    }

    /// Serves one call from a [`DurableEventLog`].
    pub fn fetch(&self, req: web_sys::Request) -> js_sys::Promise {
        let inner = self.inner.clone();
        crate::panic::spawn_answered("event-stream".into(), wire_panic_answer, async move {
            let (status, body) = inner.fetch(req).await;
            let resp = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body)
                .unwrap_or_default();
            crate::convert::to_web_response(resp).unwrap_or_else(|_| crate::convert::last_resort())
        })
    }
}

/// What a call lost to a panic answers: a wire error the caller maps to `EventLogError::Other`.
fn wire_panic_answer(_: &str) -> http::Response<Vec<u8>> {
    let (status, body) = json(
        500,
        &WireError {
            kind: "other".into(),
            message: "the event-stream object panicked".into(),
        },
    );
    let mut resp = http::Response::new(body);
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

/// The state of one `EventStream` object.
struct StreamObject {
    log: SqlEventLog<DoSql, WorkerClock>,
    /// Set once `migrate` succeeded in this instance (a fresh instance checks again).
    migrated: Cell<bool>,
    /// Set once this instance knows an alarm is pending (saves a storage call per append).
    alarm_set: Cell<bool>,
    /// The object's storage (for its alarm).
    storage: worker::durable::Storage,
    /// The Worker's bindings (R2 and D1 for the flush).
    env: Env,
}

/// A JSON body.
fn json<T: Serialize>(status: u16, value: &T) -> (u16, Vec<u8>) {
    match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(_) => (
            500,
            br#"{"kind":"other","message":"cannot encode the answer"}"#.to_vec(),
        ),
    }
}

impl StreamObject {
    /// Archives every stream this object holds a tail of (core's flush, the same code the cron
    /// runs), then sets the alarm again if a tail is left.
    async fn flush(&self) -> Result<(), String> {
        // The alarm that called this has fired: none is pending any more.
        self.alarm_set.set(false);
        if !self.migrated.get() {
            self.log.migrate().await.map_err(|e| e.to_string())?;
            self.migrated.set(true);
        }
        // Without EVENT_ANCHOR_KEY (outside development) nothing is archived: the tail stays
        // here, and the rejected alarm is retried and logged until the secret is set.
        let keys = AnchorKeys::load(&EnvSecrets::new(self.env.clone()));
        let signer = keys.signer().map_err(|e| format!("{}: {e}", e.code()))?;
        let blobs = R2Blobs::new(
            self.env
                .bucket(crate::platform::ARCHIVE_BINDING)
                .map_err(|e| e.to_string())?,
        );
        let sql = D1Sql::new(
            &self
                .env
                .d1(crate::platform::DB_BINDING)
                .map_err(|e| e.to_string())?,
        );
        for stream in self
            .log
            .pending_streams()
            .await
            .map_err(|e| e.to_string())?
        {
            flush_stream(
                &self.log,
                &blobs,
                &sql,
                signer,
                &stream,
                WorkerClock.now_ms(),
            )
            .await
            .map_err(|e| format!("{}: {e}", e.code()))?;
        }
        if !self
            .log
            .pending_streams()
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            // A backlog (one flush writes at most 50 objects): continue at once rather than a
            // delay later, or a stream taking more than ~800 events/s would outgrow its archive.
            // (Replaces any later alarm an append set meanwhile.)
            self.storage
                .set_alarm(BACKLOG_DELAY_MS)
                .await
                .map_err(|e| e.to_string())?;
            self.alarm_set.set(true);
        }
        Ok(())
    }

    /// [`FLUSH_DELAY_MS`], or the `EVENT_FLUSH_DELAY_MS` variable (at least one second), which
    /// the contract suite lowers to watch an alarm fire.
    fn flush_delay_ms(&self) -> i64 {
        self.env
            .var("EVENT_FLUSH_DELAY_MS")
            .ok()
            .and_then(|v| v.to_string().parse::<i64>().ok())
            .map_or(FLUSH_DELAY_MS, |ms| ms.max(1000))
    }

    /// Sets the flush alarm unless one is pending. A failure is only logged: the cron's flush
    /// archives the tail anyway.
    async fn schedule_flush(&self) {
        if self.alarm_set.get() {
            return;
        }
        let result = match self.storage.get_alarm().await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => self.storage.set_alarm(self.flush_delay_ms()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => self.alarm_set.set(true),
            Err(e) => {
                let line = serde_json::json!({ "level": "warn", "msg": "event-stream alarm not set", "error": e.to_string() });
                ConsoleLogger.line(&line.to_string());
            }
        }
    }

    /// Decodes one call, serves it and encodes the answer.
    async fn fetch(&self, req: web_sys::Request) -> (u16, Vec<u8>) {
        let text = match req.text() {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        let call = match text
            .map(|t| serde_json::from_str::<WireRequest>(&t.as_string().unwrap_or_default()))
        {
            Ok(Ok(call)) => call,
            Ok(Err(e)) => {
                let message = format!("bad call: {e}");
                return json(
                    400,
                    &WireError {
                        kind: "other".into(),
                        message,
                    },
                );
            }
            Err(e) => {
                let message = crate::sql_js::js_error_message(&e);
                return json(
                    503,
                    &WireError {
                        kind: "unavailable".into(),
                        message,
                    },
                );
            }
        };
        match self.serve(call).await {
            Ok(resp) => json(200, &resp),
            Err(EventLogError::Unavailable(message)) => json(
                503,
                &WireError {
                    kind: "unavailable".into(),
                    message,
                },
            ),
            Err(EventLogError::Other(message)) => json(
                500,
                &WireError {
                    kind: "other".into(),
                    message,
                },
            ),
        }
    }

    /// Serves one decoded call.
    async fn serve(&self, call: WireRequest) -> Result<WireResponse, EventLogError> {
        if !self.migrated.get() {
            self.log.migrate().await?;
            self.migrated.set(true);
        }
        match call {
            WireRequest::Append { stream, events } => {
                let events = events
                    .into_iter()
                    .map(|e| NewEvent {
                        id: e.id,
                        occurred_at_ms: e.occurred_at_ms,
                        body: e.body,
                    })
                    .collect();
                let out = self.log.append(&stream.parse()?, events).await?;
                if out.appended > 0 {
                    self.schedule_flush().await;
                }
                Ok(WireResponse {
                    appended: Some(out.appended),
                    duplicates: Some(out.duplicates),
                    ..WireResponse::default()
                })
            }
            WireRequest::Read {
                stream,
                after_seq,
                limit,
            } => {
                let events = self.log.read(&stream.parse()?, after_seq, limit).await?;
                Ok(WireResponse {
                    events: Some(
                        events
                            .into_iter()
                            .map(|e| WireStoredEvent {
                                seq: e.seq,
                                id: e.id,
                                occurred_at_ms: e.occurred_at_ms,
                                received_at_ms: e.received_at_ms,
                                body: e.body,
                                prev_hash: e.prev_hash,
                                hash: e.hash,
                            })
                            .collect(),
                    ),
                    ..WireResponse::default()
                })
            }
            WireRequest::Truncate {
                stream,
                through_seq,
            } => {
                let dropped = self.log.truncate(&stream.parse()?, through_seq).await?;
                Ok(WireResponse {
                    dropped: Some(dropped),
                    ..WireResponse::default()
                })
            }
            WireRequest::Drop { stream } => {
                self.log.drop_stream(&stream.parse()?).await?;
                Ok(WireResponse::default())
            }
            WireRequest::Ping => self.log.ping().await.map(|()| WireResponse::default()),
        }
    }
}
