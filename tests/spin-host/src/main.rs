//! `spin-test-host`: a **test host for the Spin build** of Edgeplane. It is not Spin.
//!
//! It serves one WASI 0.2 HTTP component (built with `spin-sdk` 5.2, exporting
//! `wasi:http/incoming-handler@0.2.0`) the way `spin up` serves a single component on
//! `route = "/..."`, and implements only the subset of Spin the Edgeplane component uses:
//!
//! - WASI 0.2 (`wasi:cli` with only the component's `environment`, clocks, random, io) and
//!   `wasi:http` from `wasmtime-wasi`/`wasmtime-wasi-http`, the crates Spin itself embeds;
//! - `fermyon:spin/key-value@2.0.0`, `fermyon:spin/sqlite@2.0.0`,
//!   `fermyon:spin/variables@2.0.0`, and `wasi:keyvalue/store` and `wasi:keyvalue/batch`
//!   `@0.2.0-draft2` over the same key-value stores (see [`spin_apis`]);
//! - the manifest's grants: `key_value_stores`, `sqlite_databases`, `allowed_outbound_hosts`,
//!   `environment` and variables (see [`manifest`]).
//!
//! The component is compiled once; each request gets a fresh instance and `Store`, as in Spin,
//! on an engine configured as Spin's (epoch interruption, pooling allocator; see [`engine`]).
//! When ready the host prints one line, `{"url":"http://127.0.0.1:PORT"}`, on stdout (the
//! component's stdout and stderr go to the host's stderr). It exits on stdin EOF, SIGTERM,
//! ctrl-c, or after `--max-seconds`.

mod engine;
mod manifest;
mod spin_apis;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use manifest::OutboundRule;
use spin_apis::{SpinServices, SpinView};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{bail, format_err, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

const USAGE: &str = "usage: spin-test-host --manifest <spin.toml> --wasm <component.wasm> \
--state-dir <dir> [--listen 127.0.0.1:0] [--var name=value]... [--max-seconds 1800]";

struct Args {
    manifest: PathBuf,
    wasm: PathBuf,
    state_dir: PathBuf,
    listen: SocketAddr,
    vars: HashMap<String, String>,
    max_seconds: u64,
}

fn parse_args() -> Result<Args> {
    let (mut manifest, mut wasm, mut state_dir) = (None, None, None);
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let (mut vars, mut max_seconds) = (HashMap::new(), 1800);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format_err!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--wasm" => wasm = Some(PathBuf::from(value()?)),
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
            "--listen" => listen = value()?.parse::<SocketAddr>().context("--listen")?,
            "--max-seconds" => max_seconds = value()?.parse::<u64>().context("--max-seconds")?,
            "--var" => {
                let v = value()?;
                let (name, val) = v.split_once('=').context("--var expects name=value")?;
                vars.insert(name.to_string(), val.to_string());
            }
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if !listen.ip().is_loopback() {
        bail!("--listen {listen}: only loopback addresses are allowed");
    }
    let missing = |name: &str| format_err!("{name} is required\n{USAGE}");
    Ok(Args {
        manifest: manifest.ok_or_else(|| missing("--manifest"))?,
        wasm: wasm.ok_or_else(|| missing("--wasm"))?,
        state_dir: state_dir.ok_or_else(|| missing("--state-dir"))?,
        listen,
        vars,
        max_seconds,
    })
}

/// Per-request `Store` data.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: OutboundPolicy,
    spin: Arc<SpinServices>,
    memory: MemoryPeak,
}

/// The largest linear memory an instance grew to, printed when its store is dropped and
/// `SPIN_HOST_MEMORY_LOG` is set: under the pooling allocator, each request's reset costs grow
/// with it.
struct MemoryPeak {
    peak: usize,
    log: bool,
}

impl wasmtime::ResourceLimiter for MemoryPeak {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        self.peak = self.peak.max(current).max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _max: Option<usize>) -> Result<bool> {
        Ok(true)
    }
}

impl Drop for MemoryPeak {
    fn drop(&mut self) {
        if self.log {
            eprintln!("spin-test-host: memory peak {} KiB", self.peak / 1024);
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Refuses outgoing HTTP not granted by `allowed_outbound_hosts`, as Spin does.
struct OutboundPolicy(Arc<Vec<OutboundRule>>);

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    hyper::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https");
        let host = uri.host().unwrap_or_default();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        if !self.0.iter().any(|rule| rule.allows(scheme, host, port)) {
            eprintln!("spin-test-host: refused outbound {scheme}://{host}:{port} (not in allowed_outbound_hosts)");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

/// Everything shared by all requests.
struct Server {
    pre: ProxyPre<RequestState>,
    spin: Arc<SpinServices>,
    environment: Vec<(String, String)>,
    outbound: Arc<Vec<OutboundRule>>,
    authority: String,
    memory_log: bool,
}

impl Server {
    /// Serves one request on a fresh instance (following the `wasmtime_wasi_http::p2` docs).
    async fn handle(
        &self,
        mut req: hyper::Request<Incoming>,
        client: SocketAddr,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        // The request headers Spin adds for a `/...` route.
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let spin_headers = [
            (
                "spin-full-url",
                format!("http://{}{path_and_query}", self.authority),
            ),
            ("spin-path-info", req.uri().path().to_string()),
            ("spin-matched-route", "/...".into()),
            ("spin-raw-component-route", "/...".into()),
            ("spin-component-route", String::new()),
            ("spin-base-path", "/".into()),
            ("spin-client-addr", client.to_string()),
        ];
        let headers = req.headers_mut();
        if !headers.contains_key(HOST) {
            headers.insert(HOST, HeaderValue::from_str(&self.authority)?);
        }
        for (name, value) in spin_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(&value)?,
            );
        }

        let wasi = WasiCtx::builder()
            .envs(&self.environment)
            .stdout(wasmtime_wasi::cli::stderr())
            .stderr(wasmtime_wasi::cli::stderr())
            .build();
        let state = RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: OutboundPolicy(self.outbound.clone()),
            spin: self.spin.clone(),
            memory: MemoryPeak {
                peak: 0,
                log: self.memory_log,
            },
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        // The host has no request timeout; Spin sets the same far deadline when it has none.
        store.set_epoch_deadline(engine::NO_DEADLINE);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        // The guest may keep running (streaming the body) after it has sent the response head.
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, req, out)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => bail!("component answered with error code {code:?}"),
            Err(_) => {
                let e = match task.await {
                    Ok(Ok(())) => format_err!("the component never set a response"),
                    Ok(Err(e)) => e,
                    Err(e) => e.into(),
                };
                Err(e.context("the component failed before sending a response"))
            }
        }
    }
}

/// Any host-side failure becomes a 500 with a short text body.
fn error_response(e: &wasmtime::Error) -> hyper::Response<HyperOutgoingBody> {
    eprintln!("spin-test-host: request failed: {e:#}");
    let body = Full::new(hyper::body::Bytes::from(format!("spin-test-host: {e}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    response
}

async fn run(args: Args) -> Result<()> {
    let config = manifest::load(&args.manifest, args.vars)?;
    let spin = Arc::new(SpinServices::open(
        &args.state_dir,
        config.key_value_stores,
        &config.sqlite_databases,
        config.variables,
    )?);

    let (engine, pooling) = engine::new()?;
    eprintln!(
        "spin-test-host: pooling instance allocator {}",
        if pooling { "on" } else { "off" }
    );
    let started = Instant::now();
    let component = Component::from_file(&engine, &args.wasm)
        .with_context(|| format!("compiling {:?}", args.wasm))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    spin_apis::add_to_linker(&mut linker, |s: &mut RequestState| SpinView {
        services: &s.spin,
        table: &mut s.table,
    })?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    eprintln!(
        "spin-test-host: compiled {:?} in {} ms",
        args.wasm,
        started.elapsed().as_millis()
    );

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let server = Arc::new(Server {
        pre,
        spin,
        environment: config.environment,
        outbound: Arc::new(config.outbound),
        authority: addr.to_string(),
        memory_log: std::env::var_os("SPIN_HOST_MEMORY_LOG").is_some(),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{{\"url\":\"http://{addr}\"}}")?;
    stdout.flush()?;
    drop(stdout);

    let reason = tokio::select! {
        () = serve(listener, server) => "listener stopped",
        () = stdin_closed() => "stdin closed",
        () = terminated() => "signalled",
        () = tokio::time::sleep(Duration::from_secs(args.max_seconds)) => "--max-seconds reached",
    };
    eprintln!("spin-test-host: {reason}, exiting");
    Ok(())
}

async fn serve(listener: tokio::net::TcpListener, server: Arc<Server>) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("spin-test-host: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move {
                    let response = match server.handle(req, client).await {
                        Ok(response) => response,
                        Err(e) => error_response(&e),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            // As Spin's trigger-http serves a connection (crates/trigger-http/src/server.rs):
            // hyper-util's auto builder with its defaults, on the accepted stream as it is (no
            // TCP_NODELAY), so a response written in pieces over a kept-alive connection meets
            // Nagle's algorithm and the client's delayed ACKs here as it does on Spin.
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("spin-test-host: connection from {client}: {e}");
            }
        });
    }
}

/// Resolves when stdin reaches EOF (the parent test process went away). A plain thread: tokio's
/// stdin reader could not be cancelled at shutdown.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Resolves on SIGTERM or ctrl-c.
async fn terminated() {
    let mut sigterm = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn main() {
    let code = match parse_args() {
        Err(e) => {
            eprintln!("spin-test-host: {e}");
            2
        }
        Ok(args) => match tokio::runtime::Runtime::new() {
            Err(e) => {
                eprintln!("spin-test-host: {e}");
                1
            }
            Ok(runtime) => {
                let result = runtime.block_on(run(args));
                runtime.shutdown_timeout(Duration::from_secs(1));
                match result {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("spin-test-host: {e:#}");
                        1
                    }
                }
            }
        },
    };
    // Exit without waiting for the stdin reader thread.
    std::process::exit(code);
}
