//! [`WorkerPlatform`]: core's `Platform` assembled from the Worker's `env`. It holds only binding
//! handles, so an isolate builds it once per `env` object ([`WorkerPlatform::for_env`]) and every
//! request served with that `env` shares it.

use std::cell::RefCell;
use std::rc::Rc;

use edgeplane_core::faults::{Faultable, Shifted};
use edgeplane_core::mail::{ConfiguredMailer, HttpMailer, OutboxMailer};
use edgeplane_core::ports::{Backends, Platform};
use wasm_bindgen::JsCast;
use worker::{Env, ObjectNamespace};

use crate::d1::D1Sql;
use crate::events::DurableEventLog;
use crate::fetch::WorkerHttp;
use crate::kv::KvStore;
use crate::r2::R2Blobs;
use crate::runtime::{ConsoleLogger, EnvSecrets, WorkerClock, WorkerRandom};
use crate::signatures::WebCryptoVerifier;

/// D1 database binding (`wrangler.toml` `[[d1_databases]]`).
pub const DB_BINDING: &str = "DB";
/// KV namespace binding.
pub const FLAGS_BINDING: &str = "FLAGS";
/// Durable Object namespace binding of the `EventStream` class.
pub const EVENTS_BINDING: &str = "EVENTS";
/// Optional var: the jurisdiction (`eu`) the event streams' Durable Objects are created and
/// kept in (NFR-DATA-001). Unset: Cloudflare places them near their first caller. An object's
/// id depends on it, so it is set before the first event is accepted, never changed after.
pub const EVENTS_JURISDICTION_VAR: &str = "EVENTS_JURISDICTION";
/// R2 bucket binding.
pub const ARCHIVE_BINDING: &str = "ARCHIVE";

/// Every port, backed by the Worker's bindings. The storage ports fail on cue in development
/// with fault injection enabled ([`Faultable`]), and the clock moves there on cue ([`Shifted`]);
/// elsewhere each is one thread-local read a call.
pub struct WorkerPlatform {
    sql: Faultable<D1Sql>,
    kv: Faultable<KvStore>,
    events: Faultable<DurableEventLog>,
    blobs: Faultable<R2Blobs>,
    mailer: ConfiguredMailer<D1Sql, WorkerClock, WorkerHttp, EnvSecrets>,
    secrets: EnvSecrets,
}

thread_local! {
    /// The platform built for the `env` the runtime last passed, with that `env`.
    static SHARED: RefCell<Option<(Env, Rc<WorkerPlatform>)>> = const { RefCell::new(None) };
}

impl WorkerPlatform {
    /// The platform of `env`: the isolate's shared one when `env` is the object it was built
    /// from (workerd passes every request of an isolate the same `env`), otherwise a new one,
    /// which is then kept. Saves each request the binding lookups (a crossing into JavaScript
    /// each).
    pub fn for_env(env: &Env) -> worker::Result<Rc<Self>> {
        let held = SHARED.with(|shared| {
            shared.try_borrow().ok().and_then(|held| {
                held.as_ref()
                    .filter(|(built_from, _)| {
                        AsRef::<wasm_bindgen::JsValue>::as_ref(built_from)
                            == AsRef::<wasm_bindgen::JsValue>::as_ref(env)
                    })
                    .map(|(_, platform)| Rc::clone(platform))
            })
        });
        if let Some(platform) = held {
            return Ok(platform);
        }
        let platform = Rc::new(Self::from_env(env)?);
        SHARED.with(|shared| {
            if let Ok(mut held) = shared.try_borrow_mut() {
                *held = Some((env.clone(), Rc::clone(&platform)));
            }
        });
        Ok(platform)
    }

    /// Looks up the four bindings; fails (naming the binding) if one is missing.
    pub fn from_env(env: &Env) -> worker::Result<Self> {
        let sql = D1Sql::new(&env.d1(DB_BINDING)?);
        Ok(WorkerPlatform {
            mailer: ConfiguredMailer::new(
                OutboxMailer::new(sql.clone(), WorkerClock),
                HttpMailer::new(WorkerHttp, EnvSecrets::new(env.clone())),
            ),
            sql: Faultable::new(sql),
            kv: Faultable::new(KvStore::new(env.kv(FLAGS_BINDING)?)),
            events: Faultable::new(DurableEventLog::new(events_namespace(env)?)),
            blobs: Faultable::new(R2Blobs::new(env.bucket(ARCHIVE_BINDING)?)),
            secrets: EnvSecrets::new(env.clone()),
        })
    }
}

/// The `EVENTS` namespace, restricted to [`EVENTS_JURISDICTION_VAR`]'s jurisdiction when set
/// (`namespace.jurisdiction("eu")`, which workers-rs 0.8 does not wrap).
fn events_namespace(env: &Env) -> worker::Result<ObjectNamespace> {
    let ns = env.durable_object(EVENTS_BINDING)?;
    let jurisdiction = env
        .var(EVENTS_JURISDICTION_VAR)
        .map(|v| v.to_string())
        .unwrap_or_default();
    if jurisdiction.is_empty() {
        return Ok(ns);
    }
    let restrict: js_sys::Function = js_sys::Reflect::get(ns.as_ref(), &"jurisdiction".into())?
        .dyn_into()
        .map_err(|_| worker::Error::RustError("EVENTS has no jurisdiction()".into()))?;
    let restricted = restrict.call1(ns.as_ref(), &jurisdiction.into())?;
    Ok(ObjectNamespace::unchecked_from_js(restricted))
}

impl Platform for WorkerPlatform {
    type Sql = Faultable<D1Sql>;
    type Kv = Faultable<KvStore>;
    type EventLog = Faultable<DurableEventLog>;
    type Blobs = Faultable<R2Blobs>;
    type Mailer = ConfiguredMailer<D1Sql, WorkerClock, WorkerHttp, EnvSecrets>;
    type Clock = Shifted<WorkerClock>;
    type Random = WorkerRandom;
    type Secrets = EnvSecrets;
    type Logger = ConsoleLogger;
    type Http = WorkerHttp;
    type Signatures = WebCryptoVerifier;

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
    fn clock(&self) -> &Shifted<WorkerClock> {
        &Shifted(WorkerClock)
    }
    fn random(&self) -> &WorkerRandom {
        &WorkerRandom
    }
    fn secrets(&self) -> &EnvSecrets {
        &self.secrets
    }
    fn logger(&self) -> &ConsoleLogger {
        &ConsoleLogger
    }
    fn http(&self) -> &WorkerHttp {
        &WorkerHttp
    }
    fn signatures(&self) -> &WebCryptoVerifier {
        &WebCryptoVerifier
    }
    fn backends(&self) -> Backends {
        Backends {
            runtime: "workers",
            sql: "d1",
            kv: "workers-kv",
            event_log: "durable-object",
            blobs: "r2",
        }
    }
}
