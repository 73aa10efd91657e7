//! The small ports every runtime provides: [`WorkerClock`] (`Date.now`), [`WorkerRandom`]
//! (`crypto.getRandomValues`), [`EnvSecrets`] (secrets and vars of the Worker's `env`) and
//! [`ConsoleLogger`] (`console.log`, which Workers Logs collects).

use std::cell::RefCell;

use edgeplane_core::ports::{Clock, Logger, Random, Secrets};
use js_sys::Uint8Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues`, the Workers CSPRNG.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &Uint8Array) -> Result<JsValue, JsValue>;
}

/// The largest request `getRandomValues` accepts, in bytes.
const MAX_RANDOM_CHUNK: usize = 65_536;

/// Wall-clock time from `Date.now()` (advances across I/O only, as Workers' clock does).
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}

/// Random bytes from `crypto.getRandomValues` (a CSPRNG).
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerRandom;

impl Random for WorkerRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(MAX_RANDOM_CHUNK) {
            let js = Uint8Array::new_with_length(chunk.len() as u32);
            if let Err(e) = get_random_values(&js) {
                // The port has no error channel and returning non-random bytes would be a
                // security bug; `crypto` is always present on Workers, so this cannot happen in
                // practice. The panic is answered as a 500 and the isolate reinitialised.
                #[allow(clippy::panic)]
                {
                    panic!("crypto.getRandomValues failed: {e:?}");
                }
            }
            js.copy_to(chunk);
        }
    }
}

/// Secrets (`wrangler secret`, `.dev.vars`) and plain-text vars (`[vars]`) of the Worker's `env`.
/// Each name is read from `env` once and then answered from memory: an `env` object never
/// changes (a new secret or var is a new deployment, whose isolates get a new `env`, and so a
/// new [`WorkerPlatform`](crate::WorkerPlatform) with its own `EnvSecrets`).
#[derive(Debug, Clone)]
pub struct EnvSecrets {
    env: worker::Env,
    /// The names read so far and what `env` held for each (a handful: a linear scan).
    read: RefCell<Vec<(String, Option<String>)>>,
}

impl EnvSecrets {
    /// Reads from this `env`.
    pub fn new(env: worker::Env) -> Self {
        EnvSecrets {
            env,
            read: RefCell::new(Vec::new()),
        }
    }

    /// What `env` holds under `name`, read from it.
    fn read_env(&self, name: &str) -> Option<String> {
        // Secrets and vars are both plain strings on `env`; bindings (objects) are not secrets.
        js_sys::Reflect::get(&self.env, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .filter(|v| !v.is_empty())
    }
}

impl Secrets for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        if let Ok(read) = self.read.try_borrow() {
            if let Some((_, value)) = read.iter().find(|(n, _)| n == name) {
                return value.clone();
            }
        }
        let value = self.read_env(name);
        if let Ok(mut read) = self.read.try_borrow_mut() {
            read.push((name.to_owned(), value.clone()));
        }
        value
    }
}

/// Writes each JSON line with one `console.log` string argument, as-is: Workers Logs parses
/// JSON lines into fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleLogger;

impl Logger for ConsoleLogger {
    fn line(&self, json: &str) {
        worker::web_sys::console::log_1(&JsValue::from_str(json));
    }
}
