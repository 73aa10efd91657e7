//! Starting a runtime, talking HTTP to it, and the assertions every contract test shares.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use ureq::http::{self, HeaderMap, Method};

/// Per-request timeout of the HTTP client.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a runtime may take to print its ready line, unless `EDGEPLANE_READY_TIMEOUT_SECS`.
const WORKERD_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A debug-built test host compiles the component with unoptimised Cranelift: give it longer.
const SPIN_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a server may take to exit after its stdin closes.
const GRACEFUL_STOP: Duration = Duration::from_secs(15);

/// Problem `type` names of the spec's errors (DESIGN.md conventions, ERR-*).
pub const PROBLEM_NAMES: &[&str] = &[
    "invalid-credentials",
    "access-denied",
    "session-expired",
    "mfa-required",
    "invalid-input",
    "conflict",
    "business-rule",
    "not-found",
    "gone",
    "rate-limited",
    "internal",
    "unavailable",
];

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://edgeplane.dev/problems/";

/// A runtime the suite can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The worker build in workerd, through Miniflare (tests/harness/workerd.mjs).
    Workerd,
    /// The Spin build in the wasmtime-based test host (tests/spin-host).
    Spin,
}

impl Runtime {
    /// Parses a name of `EDGEPLANE_RUNTIMES`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "workerd" => Some(Self::Workerd),
            "spin" => Some(Self::Spin),
            _ => None,
        }
    }

    /// The name used in `EDGEPLANE_RUNTIMES` and in test names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Workerd => "workerd",
            Self::Spin => "spin",
        }
    }

    /// What `GET /v1/health` reports as `runtime`.
    pub fn health_name(self) -> &'static str {
        match self {
            Self::Workerd => "workers",
            Self::Spin => "spin",
        }
    }

    /// The backend `GET /v1/health` must report for each dependency.
    pub fn backends(self) -> [(&'static str, &'static str); 4] {
        match self {
            Self::Workerd => [
                ("sql", "d1"),
                ("kv", "workers-kv"),
                ("event_log", "durable-object"),
                ("blobs", "r2"),
            ],
            Self::Spin => [
                ("sql", "spin-sqlite"),
                ("kv", "spin-key-value"),
                ("event_log", "spin-sqlite"),
                ("blobs", "spin-sqlite"),
            ],
        }
    }
}

/// A running application as the tests see it.
#[derive(Clone)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// The same application served by another isolate over the same stores (workerd: a second
    /// copy of the worker beside the first, as another isolate of one location); on Spin, where
    /// every request gets a fresh instance, [`TestApp::base_url`] again.
    pub second_url: String,
    /// Which runtime serves it.
    pub runtime: Runtime,
    /// Bearer secret of `POST /internal/scheduled` for this run.
    pub cron_secret: String,
    /// HTTP client: statuses are not errors, no redirects, no proxy, no pooling, 30 s timeout.
    pub client: ureq::Agent,
    /// This run's development operator issuer (`scripts/dev-issuer.mjs keygen` output).
    pub issuer_env: PathBuf,
}

/// How long after a change another isolate of the location may still serve the old value
/// (`core::edge::FRESHNESS_MS`), and the margin the tests wait beyond it.
pub const EDGE_FRESHNESS: Duration = Duration::from_millis(1_000 + 250);

impl TestApp {
    /// This application as another isolate serves it ([`TestApp::second_url`]).
    pub fn second_isolate(&self) -> TestApp {
        TestApp {
            base_url: self.second_url.clone(),
            ..self.clone()
        }
    }

    /// A token of the run's development operator issuer (FR-SYS-004) for `role`
    /// (`operator`/`auditor`) and subject `sub`, signed by `scripts/dev-issuer.mjs`.
    pub fn operator_token(&self, role: &str, sub: &str) -> Result<String, String> {
        dev_issuer(
            &["token", "--role", role, "--sub", sub, "--env-file"],
            Some(&self.issuer_env),
        )
    }
}

/// Runs `node scripts/dev-issuer.mjs ARGS [FILE]` and returns its stdout, trimmed.
fn dev_issuer(args: &[&str], file: Option<&Path>) -> Result<String, String> {
    let mut command = Command::new("node");
    command
        .current_dir(repo_root())
        .arg("scripts/dev-issuer.mjs")
        .args(args);
    if let Some(f) = file {
        command.arg(f);
    }
    let out = command
        .output()
        .map_err(|e| format!("cannot run the dev issuer: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dev issuer {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A fresh development issuer for one run: its env lines (`NAME=value`) written to `path`.
fn dev_issuer_vars(path: &Path) -> Result<Vec<(String, String)>, String> {
    let lines = dev_issuer(&["keygen"], None)?;
    std::fs::write(path, format!("{lines}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(lines
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "OPERATOR_DEV_PRIVATE_JWK")
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect())
}

/// A response, read whole.
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Vec<u8>,
    /// `METHOD path`, for failure messages.
    pub what: String,
}

impl ApiResponse {
    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("{}: body is not JSON ({e}): {}", self.what, self.excerpt()))
    }

    /// The media type of `Content-Type` without parameters, lower-cased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The `X-Request-Id` response header, or an error naming the request.
    pub fn request_id(&self) -> Result<&str, String> {
        match self.header("x-request-id") {
            Some(id) if !id.is_empty() => Ok(id),
            Some(_) => Err(format!("{}: X-Request-Id header is empty", self.what)),
            None => Err(format!(
                "{}: response has no X-Request-Id header",
                self.what
            )),
        }
    }

    /// Status and the start of the body, for failure messages.
    pub fn excerpt(&self) -> String {
        let text = self.text();
        let cut: String = text.chars().take(600).collect();
        let more = if cut.len() < text.len() { "..." } else { "" };
        format!("HTTP {} {cut}{more}", self.status)
    }

    /// Fails unless the status is `expected`.
    pub fn expect_status(&self, expected: u16) -> Result<(), String> {
        if self.status == expected {
            Ok(())
        } else {
            Err(format!(
                "{}: expected HTTP {expected}, got {}",
                self.what,
                self.excerpt()
            ))
        }
    }

    /// Fails unless the status is `expected` and the body is `application/json`; returns it.
    pub fn expect_json(&self, expected: u16) -> Result<Value, String> {
        self.expect_status(expected)?;
        let media = self.media_type();
        if media.as_deref() != Some("application/json") {
            return Err(format!(
                "{}: expected Content-Type application/json, got {:?}",
                self.what,
                self.header("content-type")
            ));
        }
        self.json()
    }
}

impl TestApp {
    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<ApiResponse, String> {
        self.request("GET", path, &[], None)
    }

    /// `GET path` with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<ApiResponse, String> {
        self.request("GET", path, headers, None)
    }

    /// The development outbox for `to` (`GET /__dev/mail?to=`, its `items`) once it holds a
    /// message whose subject contains `subject`, waiting up to 5 s: reset mail is delivered
    /// after the answer of the request that asked for it.
    pub fn dev_mail_with(&self, to: &str, subject: &str) -> Result<Value, String> {
        let mut mail = Value::Null;
        for _ in 0..50 {
            mail = self
                .get(&format!("/__dev/mail?to={to}"))?
                .expect_json(200)?;
            let found = mail["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|m| m["subject"].as_str().unwrap_or_default().contains(subject))
            });
            if found {
                return Ok(mail);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "no mail to {to} with {subject:?} within 5 s: {mail}"
        ))
    }

    /// `POST path` with a JSON body (`Content-Type: application/json`) and extra headers.
    pub fn post_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<ApiResponse, String> {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, Some(body.to_string().into_bytes()))
    }

    /// Any request. A transport error (refused, timeout, reset) is an `Err`; every HTTP status
    /// is an `Ok` response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<ApiResponse, String> {
        let what = format!("{method} {path}");
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| format!("{what}: bad method: {e}"))?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(bytes) => builder
                .body(bytes)
                .map_err(|e| format!("{what}: cannot build request: {e}"))
                .and_then(|req| self.client.run(req).map_err(|e| transport_error(&what, e))),
            None => builder
                .body(())
                .map_err(|e| format!("{what}: cannot build request: {e}"))
                .and_then(|req| self.client.run(req).map_err(|e| transport_error(&what, e))),
        }?;
        let (parts, mut response_body) = result.into_parts();
        let body = response_body
            .read_to_vec()
            .map_err(|e| format!("{what}: cannot read the response body: {e}"))?;
        Ok(ApiResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            what,
        })
    }

    /// A request over a raw connection that keeps reading while it writes, for bodies the
    /// server may refuse before reading them (413): a server may answer early and close, and
    /// the early answer is the response (curl reads it too), while a client that stops at the
    /// first failed write (ureq: "broken pipe") would report no response at all.
    pub fn request_early_response(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<ApiResponse, String> {
        let what = format!("{method} {path}");
        let addr = self
            .base_url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{what}: base url {} is not http://", self.base_url))?;
        let stream = TcpStream::connect(addr).map_err(|e| format!("{what}: connect: {e}"))?;
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(HTTP_TIMEOUT)))
            .map_err(|e| format!("{what}: socket timeouts: {e}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut writer = stream
            .try_clone()
            .map_err(|e| format!("{what}: socket clone: {e}"))?;
        let sender = std::thread::spawn(move || {
            // Errors are expected once the server has answered and closed; the reader decides.
            let _ = writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(&body));
        });
        let mut received = Vec::new();
        let read_result = (&stream).read_to_end(&mut received);
        let _ = sender.join();
        parse_raw_response(&what, &received).map_err(|e| match read_result {
            Err(io) => format!("{e} (connection ended with: {io})"),
            Ok(_) => e,
        })
    }

    /// A request whose body goes out with `Transfer-Encoding: chunked` and no `Content-Length`,
    /// in chunks of `chunk` bytes, over a raw connection that reads while it writes. Writing
    /// stops as soon as the answer starts to arrive (then the write side is shut), so a server
    /// that answers before it has read the whole body is seen doing so. Returns the response and
    /// the body bytes written before the answer came: all of them when the server read the
    /// whole body first.
    pub fn request_chunked(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        chunk: usize,
    ) -> Result<(ApiResponse, usize), String> {
        let what = format!("{method} {path} (chunked)");
        let addr = self
            .base_url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{what}: base url {} is not http://", self.base_url))?;
        let stream = TcpStream::connect(addr).map_err(|e| format!("{what}: connect: {e}"))?;
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(HTTP_TIMEOUT)))
            .map_err(|e| format!("{what}: socket timeouts: {e}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut writer = stream
            .try_clone()
            .map_err(|e| format!("{what}: socket clone: {e}"))?;
        let answered = Arc::new(AtomicBool::new(false));
        let stop = answered.clone();
        let sender = std::thread::spawn(move || {
            let mut written = 0;
            // Errors are expected once the server has answered and closed; the reader decides.
            if writer.write_all(head.as_bytes()).is_err() {
                return written;
            }
            for piece in body.chunks(chunk.max(1)) {
                if stop.load(Ordering::SeqCst) {
                    let _ = writer.shutdown(std::net::Shutdown::Write);
                    return written;
                }
                let framed = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
                if writer.write_all(&framed).is_err() {
                    return written;
                }
                written += piece.len();
            }
            let _ = writer.write_all(b"0\r\n\r\n");
            written
        });
        let mut received = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let read_result = loop {
            match (&stream).read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    answered.store(true, Ordering::SeqCst);
                    received.extend_from_slice(&buf[..n]);
                }
                Err(e) => break Err(e),
            }
        };
        let written = sender
            .join()
            .map_err(|_| format!("{what}: the writer thread panicked"))?;
        let resp = parse_raw_response(&what, &received).map_err(|e| match read_result {
            Err(io) => format!("{e} (connection ended with: {io})"),
            Ok(()) => e,
        })?;
        Ok((resp, written))
    }
}

/// Parses an HTTP/1.1 response read to the end of the connection.
fn parse_raw_response(what: &str, raw: &[u8]) -> Result<ApiResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "{what}: no complete HTTP response ({} bytes received)",
                raw.len()
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("{what}: bad status line {status_line:?}"))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("{what}: bad header line {line:?}"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("{what}: bad header name {name:?}: {e}"))?;
        let value = http::HeaderValue::from_str(value.trim())
            .map_err(|e| format!("{what}: bad header value {value:?}: {e}"))?;
        headers.append(name, value);
    }
    let rest = &raw[end + 4..];
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| format!("{what}: truncated chunked body"))?
    } else if let Some(len) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        if rest.len() < len {
            return Err(format!(
                "{what}: body truncated at {} of {len} bytes",
                rest.len()
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(ApiResponse {
        status,
        headers,
        body,
        what: what.to_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

fn transport_error(what: &str, e: ureq::Error) -> String {
    format!("{what}: no HTTP response ({e})")
}

/// Checks an RFC 9457 problem response (CC-ERR-004): status `status`, Content-Type
/// `application/problem+json`, `type` = `https://edgeplane.dev/problems/<name>`, a string
/// `title` and `detail`, `status` equal to the HTTP status, `request_id` equal to the
/// `X-Request-Id` header, and nothing that looks like an internal (CON-SEC-009). Returns the body.
pub fn assert_problem(resp: &ApiResponse, status: u16, name: &str) -> Result<Value, String> {
    let what = &resp.what;
    resp.expect_status(status)?;
    let media = resp.media_type();
    if media.as_deref() != Some("application/problem+json") {
        return Err(format!(
            "{what}: expected Content-Type application/problem+json, got {:?}; {}",
            resp.header("content-type"),
            resp.excerpt()
        ));
    }
    let body = resp.json()?;
    let field = |key: &str| -> Result<&str, String> {
        body.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{what}: problem has no string `{key}`: {}", resp.excerpt()))
    };
    let ty = field("type")?;
    let problem = ty.strip_prefix(PROBLEM_BASE).unwrap_or_default();
    if !PROBLEM_NAMES.contains(&problem) {
        return Err(format!(
            "{what}: problem type {ty:?} is not {PROBLEM_BASE}<one of {}>",
            PROBLEM_NAMES.join(", ")
        ));
    }
    if problem != name {
        return Err(format!(
            "{what}: expected problem type {PROBLEM_BASE}{name}, got {ty}"
        ));
    }
    if field("title")?.trim().is_empty() {
        return Err(format!("{what}: problem `title` is empty"));
    }
    if field("detail")?.trim().is_empty() {
        return Err(format!("{what}: problem `detail` is empty"));
    }
    match body.get("status").and_then(Value::as_u64) {
        Some(s) if s == u64::from(status) => {}
        _ => {
            return Err(format!(
                "{what}: problem `status` must be the number {status}, got {}",
                body["status"]
            ))
        }
    }
    let header_id = resp.request_id()?;
    let body_id = field("request_id")?;
    if body_id != header_id {
        return Err(format!(
            "{what}: problem `request_id` {body_id:?} differs from X-Request-Id {header_id:?}"
        ));
    }
    assert_no_internals(resp)?;
    Ok(body)
}

/// Fails if the body looks like it carries internals: stack traces, panics, source paths,
/// SQL or storage errors, runtime names (CON-SEC-009, CC-ERR-003).
pub fn assert_no_internals(resp: &ApiResponse) -> Result<(), String> {
    const TELLTALES: &[&str] = &[
        "panicked at",
        "stack backtrace",
        "RUST_BACKTRACE",
        ".rs:",
        "src/",
        "/home/",
        "/work/",
        "/root/",
        "SQLITE_",
        "SqliteError",
        "sqlite error",
        "D1_ERROR",
        "D1 error",
        "no such table",
        "RuntimeError",
        "wasm-function",
        "wasmtime",
        "workerd",
        "miniflare",
        "Durable Object",
    ];
    let text = resp.text();
    let lower = text.to_ascii_lowercase();
    match TELLTALES
        .iter()
        .find(|t| lower.contains(&t.to_ascii_lowercase()))
    {
        Some(t) => Err(format!(
            "{}: response reveals internals ({t:?}; CON-SEC-009): {}",
            resp.what,
            resp.excerpt()
        )),
        None => Ok(()),
    }
}

/// Whether `s` is a hyphenated UUID (`8-4-4-4-12` hex digits).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `s` is a semantic version (`MAJOR.MINOR.PATCH`, optional `-pre` and `+build`).
pub fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n.len() == 1 || !n.starts_with('0'))
    };
    let idents_ok = |x: Option<&str>| {
        x.is_none_or(|x| {
            x.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
    };
    numbers.len() == 3 && numbers.iter().all(number_ok) && idents_ok(pre) && idents_ok(build)
}

/// The repository root (this crate lives in `<root>/tests`). `cargo test` names the crate's
/// directory at run time; the one compiled in is only the fallback, since a test binary
/// reused from a target directory shared between clones names the clone it was built in.
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.clone())
}

/// A started runtime: the app to test, and what is needed to stop it and report on it.
pub struct Server {
    /// The app under test.
    pub app: TestApp,
    child: Child,
    stdin: Option<ChildStdin>,
    dir: Option<TempDir>,
    log_path: PathBuf,
}

/// What stopping a server had to say.
pub struct StopReport {
    /// Where the log and state were kept, and the log's tail, when tests failed.
    pub note: Option<String>,
    /// Set when the server did not exit on its own and had to be killed.
    pub error: Option<String>,
}

/// Starts `runtime` on a fresh state directory and a random cron secret, and waits for its
/// ready line. The error names the missing artifact and the `make` target that builds it.
pub fn spawn_app(runtime: Runtime) -> Result<Server, String> {
    spawn_app_with(runtime, &[])
}

/// [`spawn_app`] with more vars (`NAME`, value), passed after the suite's own: a name given
/// here overrides the suite's value of it.
pub fn spawn_app_with(runtime: Runtime, extra: &[(&str, &str)]) -> Result<Server, String> {
    spawn(runtime, extra, None)
}

/// [`spawn_app_with`] over an existing state directory (one a restore wrote) instead of a fresh
/// one; the directory is left in place when the server stops.
pub fn spawn_app_on(
    runtime: Runtime,
    state: &Path,
    extra: &[(&str, &str)],
) -> Result<Server, String> {
    spawn(runtime, extra, Some(state))
}

fn spawn(runtime: Runtime, extra: &[(&str, &str)], on: Option<&Path>) -> Result<Server, String> {
    let root = repo_root();
    let cron_secret = random_secret()?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("edgeplane-e2e-{}-", runtime.name()))
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let state = on.map_or_else(|| dir.path().join("state"), Path::to_path_buf);
    std::fs::create_dir_all(&state)
        .map_err(|e| format!("cannot create {}: {e}", state.display()))?;

    let issuer_env = dir.path().join("dev-issuer.env");
    let mut vars = dev_issuer_vars(&issuer_env)?;
    vars.push(("CRON_SECRET".to_owned(), cron_secret.clone()));
    vars.push(("MASTER_KEY".to_owned(), master_key()?));
    // Tenant SSO (sso::*): the local IdPs listen on random loopback ports; Spin needs them
    // granted in allowed_outbound_hosts (spin.toml `sso_idp_origins`).
    vars.push((
        "SSO_IDP_ORIGINS".to_owned(),
        "http://127.0.0.1:*".to_owned(),
    ));
    // The managed apps' health endpoints (app_health::*) listen on loopback too.
    vars.push((
        "APP_HEALTH_ORIGINS".to_owned(),
        "http://127.0.0.1:*".to_owned(),
    ));
    if matches!(runtime, Runtime::Spin) {
        // The suite stands in for the proxy in front of Spin: it connects from loopback and
        // names the client in X-Forwarded-For (the only way a client address reaches Spin).
        vars.push(("TRUSTED_PROXIES".to_owned(), "127.0.0.1".to_owned()));
        // ... and names the client's country the way Cloudflare in front of Spin would
        // (adaptive::*); on workerd the location is Miniflare's request.cf.
        vars.push((
            "LOCATION_COUNTRY_HEADER".to_owned(),
            "CF-IPCountry".to_owned(),
        ));
    }
    if matches!(runtime, Runtime::Workerd) {
        // The event streams' alarm flush, soon enough for events::alarm_* to watch it.
        vars.push(("EVENT_FLUSH_DELAY_MS".to_owned(), "2000".to_owned()));
    }
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let mut command = match runtime {
        Runtime::Workerd => workerd_command(&root, &state, &vars)?,
        Runtime::Spin => spin_command(&root, &state, &vars)?,
    };
    let log_path = dir.path().join("server.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
    command
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_for_stderr));
    // Its own process group: Ctrl-C on the suite does not hit it first (it exits on stdin EOF),
    // and a last-resort kill can take its children (workerd) with it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);

    let program = format!("{:?}", command.get_program());
    let mut child = command.spawn().map_err(|e| match runtime {
        Runtime::Workerd => format!("cannot start {program} (Node 20 must be on PATH): {e}"),
        Runtime::Spin => format!("cannot start {program}: {e}"),
    })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();

    let timeout = ready_timeout(runtime);
    let ready = match stdout {
        Some(stdout) => wait_for_ready_line(stdout, log, timeout),
        None => Err("no stdout pipe".to_owned()),
    };
    let mut server = Server {
        app: TestApp {
            base_url: String::new(),
            second_url: String::new(),
            runtime,
            cron_secret,
            client: http_client(),
            issuer_env,
        },
        child,
        stdin,
        dir: Some(dir),
        log_path,
    };
    match ready.and_then(|line| parse_ready_line(&line)) {
        Ok((url, second)) => {
            server.app.second_url = second.unwrap_or_else(|| url.clone());
            server.app.base_url = url;
            Ok(server)
        }
        Err(e) => {
            let report = server.stop(true);
            let mut message = format!("{} did not become ready: {e}", runtime.name());
            if let Some(note) = report.note {
                message.push_str(&format!("\n{note}"));
            }
            Err(message)
        }
    }
}

fn ready_timeout(runtime: Runtime) -> Duration {
    std::env::var("EDGEPLANE_READY_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(match runtime {
            Runtime::Workerd => WORKERD_READY_TIMEOUT,
            Runtime::Spin => SPIN_READY_TIMEOUT,
        })
}

/// The path in env `var` if set, else `default`; relative paths are taken from the repository
/// root (cargo runs the suite from `tests/`, not from where `make` was started).
fn artifact(root: &Path, var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.is_absolute() {
        path
    } else {
        root.join(path)
    }
}

fn missing(path: &Path, how: &str) -> String {
    format!("missing build artifact {}: {how}", path.display())
}

fn workerd_command(
    root: &Path,
    state: &Path,
    vars: &[(String, String)],
) -> Result<Command, String> {
    let harness = root.join("tests/harness/workerd.mjs");
    if !harness.is_file() {
        return Err(missing(
            &harness,
            "the workerd harness is part of the repository",
        ));
    }
    let miniflare = root.join("node_modules/miniflare/package.json");
    if !miniflare.is_file() {
        return Err(missing(&miniflare, "install the npm tools with `npm ci`"));
    }
    let script = artifact(root, "EDGEPLANE_WORKER_SCRIPT", "worker/build/index.js");
    if !script.is_file() {
        return Err(missing(&script, "build the worker with `make worker`"));
    }
    let mut command = Command::new("node");
    command
        .arg(&harness)
        .arg("--state")
        .arg(state)
        .arg("--script")
        .arg(&script)
        .args(["--isolates", "2"]);
    for (name, value) in vars {
        command.arg("--var").arg(format!("{name}={value}"));
    }
    Ok(command)
}

fn spin_command(root: &Path, state: &Path, vars: &[(String, String)]) -> Result<Command, String> {
    let cached = std::env::var("HOME")
        .map(|home| format!("{home}/.cache/edgeplane/spin-host-target/debug/spin-test-host"))
        .unwrap_or_default();
    let host = artifact(root, "SPIN_TEST_HOST", &cached);
    if !host.is_file() {
        return Err(missing(
            &host,
            "build the Spin test host with `make spin-host`",
        ));
    }
    let wasm = artifact(
        root,
        "EDGEPLANE_SPIN_WASM",
        "target/wasm32-wasip2/release/edgeplane_spin.wasm",
    );
    if !wasm.is_file() {
        return Err(missing(&wasm, "build the Spin component with `make spin`"));
    }
    let manifest = root.join("spin.toml");
    if !manifest.is_file() {
        return Err(missing(&manifest, "spin.toml is part of the repository"));
    }
    let mut command = Command::new(&host);
    command
        .arg("--manifest")
        .arg(&manifest)
        .arg("--wasm")
        .arg(&wasm)
        .arg("--state-dir")
        .arg(state)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--var")
        .arg("edgeplane_env=development");
    // Spin variables are lowercase; the ports read them by their environment names.
    for (name, value) in vars {
        command
            .arg("--var")
            .arg(format!("{}={value}", name.to_ascii_lowercase()));
    }
    Ok(command)
}

/// Reads the first stdout line within `timeout`; later lines go to the server log.
fn wait_for_ready_line(
    stdout: std::process::ChildStdout,
    mut log: File,
    timeout: Duration,
) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep draining so the server never blocks on a full pipe.
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(log, "[stdout] {line}");
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(Some(Ok(line))) => Ok(line),
        Ok(Some(Err(e))) => Err(format!("cannot read its stdout: {e}")),
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("it exited (stdout closed) before printing its ready line".to_owned())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "no ready line within {}s (set EDGEPLANE_READY_TIMEOUT_SECS to wait longer)",
            timeout.as_secs()
        )),
    }
}

/// Parses `{"url":"http://127.0.0.1:PORT"}` and the optional `second_url` beside it; anything
/// not on 127.0.0.1 is refused.
fn parse_ready_line(line: &str) -> Result<(String, Option<String>), String> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| format!("ready line is not JSON ({e}): {line:?}"))?;
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("ready line has no string `url`: {line:?}"))?;
    let second = match value.get("second_url") {
        None => None,
        Some(v) => Some(loopback_url(v.as_str().unwrap_or_default())?),
    };
    Ok((loopback_url(url)?, second))
}

/// `http://127.0.0.1:PORT` normalised, or an error for anything else.
fn loopback_url(url: &str) -> Result<String, String> {
    let port = url
        .strip_prefix("http://127.0.0.1:")
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
        .ok_or_else(|| format!("ready url must be http://127.0.0.1:<port>, got {url:?}"))?;
    Ok(format!("http://127.0.0.1:{port}"))
}

fn http_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .max_redirects(0)
        .proxy(None)
        // A fresh connection per request: a server may close a kept-alive connection after a
        // response that left the request body unread (401 before reading, 413), and a pooled
        // connection closed that way would fail the next, unrelated test.
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .build()
        .into()
}

/// A fresh `MASTER_KEY` (32 random bytes, base64) sealing this run's signing keys.
fn master_key() -> Result<String, String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the master key: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn random_secret() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the cron secret: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs `check` against a server of its own started with `extra` vars ([`spawn_app_with`]),
/// then stops it; a failure keeps the server's state and log and names them.
pub fn on_own_server(
    runtime: Runtime,
    extra: &[(&str, &str)],
    check: impl FnOnce(&TestApp) -> Result<(), String>,
) -> Result<(), String> {
    let server = spawn_app_with(runtime, extra)?;
    let result = check(&server.app);
    let report = server.stop(result.is_err());
    match (result, report.error, report.note) {
        (Err(e), _, Some(note)) => Err(format!("{e}\n{note}")),
        (Err(e), _, None) => Err(e),
        (Ok(()), Some(stop_error), _) => Err(stop_error),
        (Ok(()), None, _) => Ok(()),
    }
}

impl Server {
    /// The state directory of a server [`spawn_app_with`] started (Miniflare's `v3/` is in it).
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("state"))
    }

    /// Stops the server: closes its stdin (both runtimes exit on EOF, disposing workerd
    /// cleanly), waits, then signals its PID, and kills its process group only as a last resort.
    /// With `keep`, the temporary directory (state and `server.log`) survives and the report
    /// says where, with the log's tail.
    pub fn stop(mut self, keep: bool) -> StopReport {
        let error = self.shutdown();
        let note = if keep || error.is_some() {
            let tail = log_tail(&self.log_path, 40);
            let kept = self.dir.take().map(TempDir::keep);
            Some(match kept {
                Some(dir) => format!(
                    "{} server log and state kept in {}; log tail:\n{tail}",
                    self.app.runtime.name(),
                    dir.display()
                ),
                None => format!("server log tail:\n{tail}"),
            })
        } else {
            None
        };
        StopReport { note, error }
    }

    fn shutdown(&mut self) -> Option<String> {
        drop(self.stdin.take());
        if wait_for_exit(&mut self.child, GRACEFUL_STOP) {
            return None;
        }
        let pid = self.child.id();
        signal(&format!("{pid}"), "TERM");
        if wait_for_exit(&mut self.child, Duration::from_secs(5)) {
            return Some(format!(
                "{} server (pid {pid}) ignored stdin EOF for {}s; stopped with SIGTERM",
                self.app.runtime.name(),
                GRACEFUL_STOP.as_secs()
            ));
        }
        let _ = self.child.kill();
        // The group id is the child's pid (process_group(0)): this reaches workerd as well.
        signal(&format!("-{pid}"), "KILL");
        let _ = self.child.wait();
        Some(format!(
            "{} server (pid {pid}) ignored stdin EOF and SIGTERM; killed its process group",
            self.app.runtime.name()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.shutdown();
        }
    }
}

fn wait_for_exit(child: &mut Child, within: Duration) -> bool {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if waited >= within => return false,
            Ok(None) => {
                std::thread::sleep(step);
                waited += step;
            }
        }
    }
}

/// Sends `SIG<name>` to one PID (or `-PGID`) through kill(1): std can only SIGKILL a child.
fn signal(target: &str, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = OpenOptions::new().read(true).open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        "    (empty)".to_owned()
    } else {
        all[start..]
            .iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A JSON value as a string (`""` when it is not one).
pub fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Ten random hex characters, to keep names of one run apart.
pub fn suffix() -> Result<String, String> {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// RFC 7662: `token=` as a form body.
pub fn introspect(app: &TestApp, key: &str, token: &str) -> Result<Value, String> {
    let auth = format!("Bearer {key}");
    let body = format!("token={token}");
    let resp = app.request(
        "POST",
        "/oauth/introspect",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(body.into_bytes()),
    )?;
    resp.expect_json(200)
}

/// A request with an optional bearer token and an optional JSON body.
pub fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<ApiResponse, String> {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    app.request(
        method,
        path,
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
}

pub fn base32_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        let v = match c {
            'A'..='Z' => c as u64 - 'A' as u64,
            '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return Err(format!("not base32: {c}")),
        };
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Ok(out)
}

/// RFC 6238 TOTP (SHA-1, 6 digits, 30 s), computed here.
pub fn totp(secret: &[u8], offset: i64) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let step = (now / 30) as i64 + offset;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).map_err(|e| e.to_string())?;
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[o]) & 0x7f) << 24
        | u32::from(h[o + 1]) << 16
        | u32::from(h[o + 2]) << 8
        | u32::from(h[o + 3]);
    Ok(format!("{:06}", bin % 1_000_000))
}
