//! What a panic does to requests. Rust on Workers is built with `panic = "abort"`: a panic
//! traps the Wasm instance, which can neither unwind nor go on serving.
//!
//! * Later requests: workers-rs 0.8.7 and worker-build 0.8.7 handle this already. worker-build
//!   runs wasm-bindgen with `--experimental-reset-state-function --force-enable-abort-handler`
//!   and wraps the exports in a JS shim; workers-rs installs a panic hook (at instantiation) that
//!   flags the instance as broken and an abort handler that schedules a reinit. The next call
//!   into the module builds a fresh instance, so the isolate keeps serving. In-memory state
//!   (caches) is lost.
//! * Requests in flight: without help they never settle (the panicking one and any other
//!   awaiting I/O at that moment), and the runtime cancels them with a bare text 500 ("code had
//!   hung") or, for a Durable Object call, leaves the caller waiting. Here each request's
//!   response promise is settled from Rust ([`spawn_answered`]) rather than by a
//!   wasm-bindgen future, and a hook chained after workers-rs' one settles every unsettled
//!   promise with its own 500 answer *before* the trap. The future being polled marks itself
//!   as the running request, so the log line names the request that panicked.
//! * The request being polled inside its `fetch` call ([`answer`]), before it has a promise:
//!   the hook leaves its 500 answer in `globalThis`, and the worker's entry
//!   (`worker/js/entry.js`), through which the trap is thrown, answers with it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use serde_json::json;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::web_sys;

/// The answer a request gets when a panic kills the instance: status, headers and body.
pub type PanicAnswer = fn(request_id: &str) -> http::Response<Vec<u8>>;

#[wasm_bindgen(inline_js = "
export function respondLater(promise) {
  return promise.then((v) => v instanceof Response ? v : new Response(v.body, { status: v.status, headers: v.headers }));
}
export function leavePanicAnswer(answer) {
  globalThis.__edgeplanePanicAnswer = answer;
}
")]
extern "C" {
    /// Chains a pure-JS step after a request's promise that turns a plain `{status, headers,
    /// body}` object into a `Response`. Runs in the request's own I/O context (an I/O object
    /// made while another request panicked cannot be used by this one) and without Wasm (the
    /// instance is dead by then).
    #[wasm_bindgen(js_name = respondLater)]
    fn respond_later(promise: &js_sys::Promise) -> js_sys::Promise;

    /// Leaves the plain answer of a request that panicked while [`answer`] polled it at once
    /// where the worker's entry (`worker/js/entry.js`) takes it: that request has no promise to
    /// settle, its `fetch` call throws.
    #[wasm_bindgen(js_name = leavePanicAnswer)]
    fn leave_panic_answer(answer: &JsValue);
}

thread_local! {
    /// The request whose future is being polled right now (Wasm runs one thread).
    static CURRENT: RefCell<Option<Rc<Pending>>> = const { RefCell::new(None) };
    /// Every request of this instance whose promise may still be unsettled.
    static LIVE: RefCell<Vec<Weak<Pending>>> = const { RefCell::new(Vec::new()) };
    /// Whether this instance has installed its hook (a reinitialised instance starts over).
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// The response promise of one request, settled exactly once: by its handler or by the hook.
struct Pending {
    resolve: RefCell<Option<js_sys::Function>>,
    request_id: String,
    on_panic: PanicAnswer,
    /// Being polled inside its `fetch` call ([`answer`]), before it has a promise.
    at_once: Cell<bool>,
}

impl Pending {
    /// Settles the promise with `response` (no-op if it is already settled).
    fn settle(&self, response: &JsValue) {
        let resolve = self
            .resolve
            .try_borrow_mut()
            .ok()
            .and_then(|mut r| r.take());
        if let Some(resolve) = resolve {
            // Calling a promise's resolve function does not throw.
            let _ = resolve.call1(&JsValue::UNDEFINED, response);
        }
    }

    fn is_settled(&self) -> bool {
        self.resolve.try_borrow().map_or(true, |r| r.is_none())
    }
}

/// A request's future that registers its [`Pending`] as the running request while polled.
struct Answering<F> {
    pending: Rc<Pending>,
    inner: Pin<Box<F>>,
}

impl<F: Future<Output = web_sys::Response>> Future for Answering<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let previous = CURRENT.with(|c| c.replace(Some(self.pending.clone())));
        let out = self.inner.as_mut().poll(cx);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        match out {
            Poll::Ready(response) => {
                self.pending.settle(&response.into());
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `serve` for the request `request_id` and returns the promise of its response. If a
/// panic kills the instance before `serve` completes, the promise gets `on_panic`'s answer.
pub fn spawn_answered<F>(request_id: String, on_panic: PanicAnswer, serve: F) -> js_sys::Promise
where
    F: Future<Output = web_sys::Response> + 'static,
{
    install_hook();
    let pending = track(request_id, on_panic, false);
    later(pending, Box::pin(serve))
}

/// Runs `serve` for the request `request_id` and polls it once at once: a request that waits
/// for nothing (a warm isolate's hot routes) gets its `Response` back from this call, with no
/// promise, task or microtask made for it; any other gets the promise of [`spawn_answered`].
/// A panic in that first poll leaves `on_panic`'s answer for the worker's entry, whose `fetch`
/// call then throws (see [`leave_panic_answer`]).
pub fn answer<F>(request_id: String, on_panic: PanicAnswer, serve: F) -> JsValue
where
    F: Future<Output = web_sys::Response> + 'static,
{
    install_hook();
    let pending = track(request_id, on_panic, true);
    let mut inner = Box::pin(serve);
    let previous = CURRENT.with(|c| c.replace(Some(pending.clone())));
    // What the future waits on keeps the waker of its latest poll: the task that polls it next
    // replaces this one.
    let first = inner.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    CURRENT.with(|c| *c.borrow_mut() = previous);
    pending.at_once.set(false);
    match first {
        Poll::Ready(response) => response.into(),
        Poll::Pending => later(pending, inner).into(),
    }
}

/// A request's [`Pending`], listed in [`LIVE`] for the hook.
fn track(request_id: String, on_panic: PanicAnswer, at_once: bool) -> Rc<Pending> {
    let pending = Rc::new(Pending {
        resolve: RefCell::new(None),
        request_id,
        on_panic,
        at_once: Cell::new(at_once),
    });
    LIVE.with(|live| {
        if let Ok(mut live) = live.try_borrow_mut() {
            live.retain(|p| p.strong_count() > 0);
            live.push(Rc::downgrade(&pending));
        }
    });
    pending
}

/// The promise of `inner`'s response, polled from now on by a task of its own.
fn later<F>(pending: Rc<Pending>, inner: Pin<Box<F>>) -> js_sys::Promise
where
    F: Future<Output = web_sys::Response> + 'static,
{
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Ok(mut slot) = pending.resolve.try_borrow_mut() {
            *slot = Some(resolve);
        }
    });
    wasm_bindgen_futures::spawn_local(Answering { pending, inner });
    respond_later(&promise)
}

/// Chains the answering hook after the current one (workers-rs'), once per instance.
pub fn install_hook() {
    if HOOKED.with(Cell::get) {
        return;
    }
    HOOKED.with(|h| h.set(true));
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        answer_live_requests(info);
        previous(info);
    }));
}

/// Settles every unsettled request of this instance with its panic answer and logs each one.
fn answer_live_requests(info: &std::panic::PanicHookInfo<'_>) {
    let current = CURRENT.with(|c| c.try_borrow().ok().and_then(|c| c.clone()));
    let live: Vec<Rc<Pending>> = LIVE.with(|l| {
        l.try_borrow()
            .map(|l| l.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    });
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    for pending in live.iter().filter(|p| p.at_once.get() || !p.is_settled()) {
        let panicked = current.as_ref().is_some_and(|c| Rc::ptr_eq(c, pending));
        let line = if panicked {
            json!({ "level": "error", "msg": "panic", "request_id": pending.request_id, "location": location })
        } else {
            json!({ "level": "error", "msg": "request aborted by a panic in another request", "request_id": pending.request_id })
        };
        web_sys::console::error_1(&JsValue::from_str(&line.to_string()));
        let answer = plain_response((pending.on_panic)(&pending.request_id));
        if pending.at_once.get() {
            leave_panic_answer(&answer);
        } else {
            pending.settle(&answer);
        }
    }
}

/// A response as a plain JS object `{status, headers: [[name, value]...], body: string}`: no
/// I/O object is created here, in the panicking request's context.
fn plain_response(resp: http::Response<Vec<u8>>) -> JsValue {
    let headers = js_sys::Array::new();
    for (name, value) in resp.headers() {
        if let Ok(value) = value.to_str() {
            headers.push(&js_sys::Array::of2(&name.as_str().into(), &value.into()));
        }
    }
    let obj = js_sys::Object::new();
    let body = String::from_utf8_lossy(resp.body());
    // Setting properties on a fresh plain object cannot fail.
    let _ = js_sys::Reflect::set(&obj, &"status".into(), &resp.status().as_u16().into());
    let _ = js_sys::Reflect::set(&obj, &"headers".into(), &headers);
    let _ = js_sys::Reflect::set(&obj, &"body".into(), &body.as_ref().into());
    obj.into()
}
