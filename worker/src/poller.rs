//! The managed apps' health checks on Workers (`edgeplane_core::apps::health`): one Durable
//! Object, `HealthPoller` (binding `HEALTH`), whose alarm checks every registered app every
//! [`POLL_INTERVAL_MS`] and sets itself again while any app has a health URL. The scheduled run
//! and a newly registered URL wake it ([`arm`]); with no URL left it stops.

use std::rc::Rc;

use edgeplane_core::apps::health::{self, POLL_INTERVAL_MS};
use edgeplane_core::ports::Logger;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{web_sys, Env, State, Storage};

use crate::platform::WorkerPlatform;
use crate::runtime::ConsoleLogger;

/// Durable Object namespace binding of the `HealthPoller` class.
pub const HEALTH_BINDING: &str = "HEALTH";

/// The one object's name.
const OBJECT_NAME: &str = "poller";

/// Wakes the poller: its alarm is set unless one is pending. A failure is logged; the next
/// scheduled run tries again.
pub async fn arm(env: &Env) {
    let result = async {
        let stub = env
            .durable_object(HEALTH_BINDING)?
            .id_from_name(OBJECT_NAME)?
            .get_stub()?;
        stub.fetch_with_str("https://health-poller/arm").await?;
        Ok::<(), worker::Error>(())
    }
    .await;
    if let Err(e) = result {
        log("warn", "app health poller not armed", &e.to_string());
    }
}

fn log(level: &str, msg: &str, error: &str) {
    let line = serde_json::json!({ "level": level, "msg": msg, "error": error });
    ConsoleLogger.line(&line.to_string());
}

/// The Durable Object class `HealthPoller` (see `wrangler.toml`). Bound by hand, like
/// `EventStream`.
#[wasm_bindgen]
pub struct HealthPoller {
    inner: Rc<Poller>,
}

struct Poller {
    storage: Storage,
    env: Env,
}

#[wasm_bindgen]
impl HealthPoller {
    /// Called by the runtime when it instantiates the object.
    #[wasm_bindgen(constructor)]
    pub fn new(state: worker::worker_sys::DurableObjectState, env: Env) -> HealthPoller {
        HealthPoller {
            inner: Rc::new(Poller {
                storage: State::from(state).storage(),
                env,
            }),
        }
    }

    /// `arm`: sets the alarm unless one is pending; answers 204.
    pub fn fetch(&self, _req: web_sys::Request) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Err(e) = inner.arm().await {
                log("warn", "app health alarm not set", &e.to_string());
            }
            let init = web_sys::ResponseInit::new();
            init.set_status(204);
            let resp = web_sys::Response::new_with_opt_str_and_init(None, &init)?;
            Ok(JsValue::from(resp))
        })
    }

    /// Checks every app, then sets the next alarm while any app has a health URL.
    pub fn alarm(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            inner.poll().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

impl Poller {
    async fn arm(&self) -> worker::Result<()> {
        if self.storage.get_alarm().await?.is_none() {
            self.storage.set_alarm(POLL_INTERVAL_MS).await?;
        }
        Ok(())
    }

    async fn poll(&self) {
        let platform = match WorkerPlatform::from_env(&self.env) {
            Ok(p) => p,
            Err(e) => {
                return log(
                    "error",
                    "app health poll skipped: binding missing",
                    &e.to_string(),
                )
            }
        };
        if let Err(e) = health::poll(&platform).await {
            log("error", "app health poll failed", &e.to_string());
        }
        // Keep polling while there is something to poll (or the database cannot say).
        let again = health::any_registered(&platform).await.unwrap_or(true);
        if again {
            if let Err(e) = self.storage.set_alarm(POLL_INTERVAL_MS).await {
                log("error", "app health alarm not set", &e.to_string());
            }
        }
    }
}
