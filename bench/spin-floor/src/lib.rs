//! Spin's hello-world HTTP component (the template `spin new -t http-rust` makes), the floor of
//! the Spin table in `bench/edge.mjs`. Its one addition: the body names how many requests this
//! instance has served, so the benchmark can check that every request gets a fresh instance, as
//! Spin gives it (the answer is then always "1").

use std::sync::atomic::{AtomicU32, Ordering};

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

static SERVED: AtomicU32 = AtomicU32::new(0);

/// Answers every request with `hello <n>`, n the requests this instance has served.
#[http_component]
fn handle(_req: Request) -> anyhow::Result<impl IntoResponse> {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(format!("hello {served}"))
        .build())
}
