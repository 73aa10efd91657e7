//! The real Edgeplane the tests talk to, as the TypeScript client's `test/stack.mjs` makes it:
//! the built worker in workerd (`tests/harness/workerd.mjs`) with fresh state, an operator
//! issuer made for the run (`scripts/dev-issuer.mjs`), and a seeded tenant with an owner who
//! accepted the invitation, an app enabled for it and an API key of that app holding every
//! scope.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;

/// Every scope an API key can hold.
pub const ALL_SCOPES: [&str; 5] = [
    "flags:read",
    "bill:write",
    "bill:read",
    "log:write",
    "token:introspect",
];
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The seeded deployment.
pub struct Stack {
    /// `http://127.0.0.1:PORT`: also the issuer of access tokens.
    pub base_url: String,
    /// A token of the run's operator issuer.
    pub operator_token: String,
    /// The seeded app.
    pub app_id: String,
    /// The seeded tenant.
    pub tenant_id: String,
    /// The app's key, holding every scope.
    pub api_key: String,
    /// The tenant's owner's password (domain `acme`, `owner@acme.example`).
    pub owner_password: String,
    child: Child,
    stdin: Option<ChildStdin>,
    dir: TempDir,
}

/// Plain HTTP to 127.0.0.1: statuses are answers, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .max_redirects(0)
        .build()
        .into()
}

/// A JSON call that must answer `status`; returns the parsed body (`null` for none).
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Result<Value, String> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    let req = req.body(body).map_err(|e| e.to_string())?;
    let mut resp = agent()
        .run(req)
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if resp.status().as_u16() != status {
        return Err(format!(
            "{method} {url} answered {}, expected {status}: {text:.500}",
            resp.status()
        ));
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {e}"))
}

/// The repository root. `cargo test` names the crate's directory at run time; the one compiled
/// in is only the fallback, since a test binary reused from a target directory shared between
/// clones names the clone it was built in.
fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..")
        .join("..")
}

fn node(args: &[&str]) -> Result<String, String> {
    let out = Command::new("node")
        .current_dir(repo_root())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "node {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl Stack {
    /// Starts workerd with fresh state and seeds it.
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("edgeplane-rs-client-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let issuer_env = node(&[
            "scripts/dev-issuer.mjs",
            "keygen",
            "--issuer",
            "http://127.0.0.1:1/dev-issuer",
        ])?;
        let issuer_file = dir.path().join("dev-issuer.env");
        std::fs::write(&issuer_file, format!("{issuer_env}\n")).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let mut vars = vec![
            ("EDGEPLANE_ENV".to_owned(), "development".to_owned()),
            (
                "MASTER_KEY".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>()?),
            ),
            ("CRON_SECRET".to_owned(), "x".to_owned()),
            ("PUBLIC_BASE_URL".to_owned(), base_url.clone()),
        ];
        vars.extend(
            issuer_env
                .lines()
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| {
                    ["OPERATOR_ISSUER", "OPERATOR_AUDIENCE", "OPERATOR_DEV_JWKS"].contains(k)
                })
                .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned())),
        );
        let log =
            std::fs::File::create(dir.path().join("workerd.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("node");
        cmd.current_dir(repo_root())
            .arg("tests/harness/workerd.mjs")
            .arg("--state")
            .arg(dir.path().join("state"))
            .args(["--port", &port.to_string(), "--max-seconds", "600"]);
        for (k, v) in &vars {
            cmd.arg("--var").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start workerd: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut stack = Self {
            base_url,
            operator_token: String::new(),
            app_id: String::new(),
            tenant_id: String::new(),
            api_key: String::new(),
            owner_password: String::new(),
            child,
            stdin,
            dir,
        };
        let line = rx
            .recv_timeout(READY_TIMEOUT)
            .map_err(|_| stack.failed("no ready line within 60 s"))?;
        let ready: Value = serde_json::from_str(&line)
            .map_err(|_| stack.failed(&format!("ready line {line:?}")))?;
        if ready["url"].as_str() != Some(stack.base_url.as_str()) {
            return Err(stack.failed(&format!(
                "workerd answered on {}, expected {}",
                ready["url"], stack.base_url
            )));
        }
        stack.operator_token = node(&[
            "scripts/dev-issuer.mjs",
            "token",
            "--role",
            "operator",
            "--sub",
            "rust-client-tests",
            "--env-file",
            &issuer_file.to_string_lossy(),
        ])?;
        stack.seed()?;
        Ok(stack)
    }

    /// scripts/dev.sh's calls: the app, the tenant with the app enabled, the key, the owner.
    fn seed(&mut self) -> Result<(), String> {
        let app = call(
            "POST",
            &self.url("/v1/apps"),
            Some(&self.operator_token),
            Some(
                json!({"name": "CRM", "redirect_uris": ["http://127.0.0.1:3000/callback"], "allowed_origins": ["http://127.0.0.1:3000"]}),
            ),
            201,
        )?;
        self.app_id = str_of(&app["id"])?;
        let (tenant_id, invitation) = self.provision_tenant("acme")?;
        self.tenant_id = tenant_id;
        let key = call(
            "POST",
            &self.url(&format!("/v1/apps/{}/keys", self.app_id)),
            Some(&self.operator_token),
            Some(json!({"name": "all scopes", "scopes": ALL_SCOPES})),
            201,
        )?;
        self.api_key = str_of(&key["secret"])?;
        self.owner_password =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<18>()?);
        call(
            "POST",
            &self.url("/v1/invitations/accept"),
            None,
            Some(json!({"token": invitation, "password": self.owner_password})),
            200,
        )?;
        Ok(())
    }

    /// Provisions a tenant of `domain` and enables the app for it: its id and invitation token.
    pub fn provision_tenant(&self, domain: &str) -> Result<(String, String), String> {
        let created = call(
            "POST",
            &self.url("/v1/tenants"),
            Some(&self.operator_token),
            Some(
                json!({"name": domain, "domain": domain, "plan": "pro", "owner_email": format!("owner@{domain}.example")}),
            ),
            201,
        )?;
        let tenant_id = str_of(&created["tenant"]["id"])?;
        call(
            "POST",
            &self.url(&format!("/v1/tenants/{tenant_id}/apps/{}", self.app_id)),
            Some(&self.operator_token),
            None,
            200,
        )?;
        let link = str_of(&created["invitation_link"])?;
        let token = link
            .split_once("token=")
            .map(|(_, t)| t.split('&').next().unwrap_or(t).to_owned())
            .ok_or("no token in the invitation link")?;
        Ok((tenant_id, token))
    }

    /// The owner's token pair from `POST /v1/auth/login`.
    pub fn sign_in(&self) -> Result<Value, String> {
        call(
            "POST",
            &self.url("/v1/auth/login"),
            None,
            Some(
                json!({"tenant": "acme", "email": "owner@acme.example", "password": self.owner_password}),
            ),
            200,
        )
    }

    /// `path` on the deployment.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn failed(&mut self, why: &str) -> String {
        self.shutdown();
        let log = std::fs::read_to_string(self.dir.path().join("workerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "{why}\nworkerd log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Closes the harness's stdin (it exits on EOF), then signals its own PID if it lingers.
    fn shutdown(&mut self) {
        drop(self.stdin.take());
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-TERM", "--", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A JSON string, or an error naming what was there.
pub fn str_of(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {v}"))
}
