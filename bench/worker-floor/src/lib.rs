//! A Rust hello-world Worker (what `cargo generate cloudflare/workers-rs` makes), the second
//! floor of the Workers table in `bench/edge.mjs`: what any Rust Worker pays per request before
//! it does anything, beside the JS hello-world (`bench/floor-worker.js`).

use worker::{event, Context, Env, Request, Response, Result};

/// Answers every request with `ok`.
#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let mut resp = Response::ok("ok")?;
    resp.headers_mut().set("content-type", "text/plain")?;
    Ok(resp)
}
