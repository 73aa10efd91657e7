//! The least a Rust Worker can do per request, the third floor of the Workers table in
//! `bench/edge.mjs`: a `fetch` exported with wasm-bindgen by hand (as Edgeplane's adapter
//! exports its own) behind a plain default export (`js/entry.js`) instead of worker-build's
//! proxied entrypoint class, which builds the same `Response` as the JS hello-world and returns
//! it at once, without reading the request, making a future or a promise. Beside the workers-rs hello-world
//! (`bench/worker-floor`, worker-build's own default export), it shows what the crossing into
//! wasm costs by itself.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::web_sys::{Headers, Response, ResponseInit};

/// Answers every request with `ok`.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch(_req: JsValue, _env: JsValue, _ctx: JsValue) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    headers.set("content-type", "text/plain")?;
    let init = ResponseInit::new();
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some("ok"), &init)
}
