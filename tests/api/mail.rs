//! The HTTP mail adapter (FR-TENANT-001, FR-AUTH-004): with `MAIL_API_URL`, `MAIL_API_TOKEN` and
//! `MAIL_FROM` set, invitation and reset mails are posted to the mail API (Resend-style JSON,
//! `Authorization: Bearer`) instead of the dev outbox. The API is `tests/harness/mail-sink.mjs`
//! on a random loopback port; the runtime under test is a second server of the same runtime,
//! started with those vars for this test and stopped at its end.
//!
//! On Spin the sink's origin is granted only through `mail_api_origin` (spin.toml's
//! `allowed_outbound_hosts`): the suite's loopback grant for the SSO providers is replaced by the
//! `.invalid` default here, so a missing mail grant fails the test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use ureq::http;

use crate::helpers::{repo_root, send, spawn_app_with, str_of, TestApp};

crate::contract_tests![http_mail_api_delivers_invitations_and_resets_fr_tenant_001];

const PASSWORD: &str = "correct horse battery staple";
const FROM: &str = "Edgeplane <no-reply@edgeplane.test>";
/// A tenant name with markup in it: the HTML part must carry it escaped.
const TENANT_NAME: &str = "Mail <b>Corp</b> & \"Co\"";
const TENANT_NAME_HTML: &str = "Mail &lt;b&gt;Corp&lt;/b&gt; &amp; &quot;Co&quot;";

/// A running `mail-sink.mjs`, stopped by its PID when dropped.
struct Sink {
    /// `http://127.0.0.1:PORT/emails`.
    url: String,
    child: Child,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    /// `http://127.0.0.1:PORT`.
    fn origin(&self) -> &str {
        self.url.trim_end_matches("/emails")
    }

    /// Every POST the sink has recorded, oldest first.
    fn received(&self, app: &TestApp) -> Result<Vec<Value>, String> {
        let url = format!("{}/received", self.origin());
        let req = http::Request::get(&url)
            .body(())
            .map_err(|e| format!("GET {url}: cannot build: {e}"))?;
        let resp = app.client.run(req).map_err(|e| format!("GET {url}: {e}"))?;
        ensure_eq!(resp.status().as_u16(), 200, "GET {url}");
        let body = resp
            .into_body()
            .read_to_string()
            .map_err(|e| format!("GET {url}: cannot read the body: {e}"))?;
        match serde_json::from_str(&body) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(format!("GET {url}: not a JSON array: {body}")),
        }
    }

    /// The recorded messages to `to`, waiting up to 5 s for at least `count` of them.
    fn messages_to(&self, app: &TestApp, to: &str, count: usize) -> Result<Vec<Value>, String> {
        let mut found = Vec::new();
        for _ in 0..50 {
            found = self
                .received(app)?
                .into_iter()
                .filter(|m| m["body"]["to"] == json!([to]))
                .collect();
            if found.len() >= count {
                return Ok(found);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the mail API received {} message(s) to {to}, expected {count}: {found:?}",
            found.len()
        ))
    }
}

fn start_sink() -> Result<Sink, String> {
    let mut child = Command::new("node")
        .current_dir(repo_root())
        .arg("tests/harness/mail-sink.mjs")
        .args(["--max-seconds", "600"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the mail sink (node): {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // From here the sink is stopped by Drop on every path.
    let mut sink = Sink {
        url: String::new(),
        child,
    };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the mail sink did not print its ready line".to_owned())?;
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|e| format!("mail sink ready line {line:?}: {e}"))?;
    sink.url = str_of(&v["url"]);
    ensure!(
        sink.url.starts_with("http://127.0.0.1:") && sink.url.ends_with("/emails"),
        "mail sink url {:?}",
        sink.url
    );
    Ok(sink)
}

fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks one message the API received: the request (POST to the sink's path, bearer token,
/// JSON), the envelope, and that `text` and `html` carry the link whose `marker` (`token=`) is
/// given. Returns the link as the text part has it.
fn check_message(m: &Value, token: &str, to: &str, marker: &str) -> Result<String, String> {
    ensure_eq!(str_of(&m["method"]), "POST", "method: {m}");
    ensure_eq!(str_of(&m["path"]), "/emails", "path: {m}");
    ensure_eq!(
        str_of(&m["authorization"]),
        format!("Bearer {token}"),
        "the API token travels as a bearer token"
    );
    ensure!(
        str_of(&m["content_type"]).starts_with("application/json"),
        "content-type: {m}"
    );
    let body = &m["body"];
    ensure!(body.is_object(), "the body is JSON: {m}");
    ensure_eq!(body["to"], json!([to]), "to: {body}");
    ensure_eq!(str_of(&body["from"]), FROM, "from: {body}");
    ensure!(
        str_of(&body["subject"]).contains("Edgeplane"),
        "subject: {body}"
    );
    let text = str_of(&body["text"]);
    let html = str_of(&body["html"]);
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(marker))
        .map(str::to_owned)
        .ok_or_else(|| format!("no link with {marker:?} in the text part: {text:?}"))?;
    let escaped = link
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    ensure!(
        html.contains(&format!("href=\"{escaped}\"")),
        "the HTML part links to {link}: {html:?}"
    );
    Ok(link)
}

/// The value of `token=` in a mailed link.
fn token_of(link: &str) -> Result<String, String> {
    link.split_once("token=")
        .map(|(_, t)| t.split('&').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("no token in the link {link:?}"))
}

/// Fails if the dev outbox holds any message to `to`: with the API configured, none goes there.
fn outbox_is_empty(app: &TestApp, to: &str) -> Result<(), String> {
    let mail = app.get(&format!("/__dev/mail?to={to}"))?.expect_json(200)?;
    ensure_eq!(
        mail["items"],
        json!([]),
        "the dev outbox holds no mail to {to} when the mail API is configured"
    );
    Ok(())
}

/// FR-TENANT-001 (and FR-AUTH-004): a second server of this runtime with the mail API
/// configured posts the owner's invitation, an owner's invitation of a user and a password reset
/// to the API, each with plain text and HTML (tenant name escaped in the HTML), and the links in
/// those mails work; the dev outbox stays empty.
fn http_mail_api_delivers_invitations_and_resets_fr_tenant_001(
    app: &TestApp,
) -> Result<(), String> {
    let sink = start_sink()?;
    let api_token = random_hex(24)?;
    let server = spawn_app_with(
        app.runtime,
        &[
            ("MAIL_API_URL", sink.url.as_str()),
            ("MAIL_API_TOKEN", api_token.as_str()),
            ("MAIL_FROM", FROM),
            // Spin's outbound grant of the mail API (spin.toml `mail_api_origin`); the SSO
            // providers' loopback grant is withdrawn so that this one is what lets the mail out.
            ("MAIL_API_ORIGIN", sink.origin()),
            ("SSO_IDP_ORIGINS", "https://sso-idp.invalid"),
        ],
    )
    .map_err(|e| format!("the server with the mail API configured: {e}"))?;
    let result = deliveries(&server.app, &sink, &api_token);
    let report = server.stop(result.is_err());
    match (result, report.error, report.note) {
        (Err(e), _, note) => Err(match note {
            Some(note) => format!("{e}\n{note}"),
            None => e,
        }),
        (Ok(()), Some(stop_error), _) => Err(stop_error),
        (Ok(()), None, _) => Ok(()),
    }
}

fn deliveries(app: &TestApp, sink: &Sink, api_token: &str) -> Result<(), String> {
    // The operator provisions a tenant: the owner's invitation goes to the API.
    let op = app.operator_token("operator", "e2e-operator")?;
    let domain = format!("mail-{}", random_hex(5)?);
    let owner = format!("owner@{domain}.example");
    let body =
        json!({ "name": TENANT_NAME, "domain": domain, "plan": "pro", "owner_email": owner });
    let created = send(app, "POST", "/v1/tenants", Some(&op), Some(&body))?.expect_json(201)?;
    ensure_eq!(
        str_of(&created["mail"]),
        "sent",
        "the mail API accepted the owner's invitation: {created}"
    );
    let sent = sink.messages_to(app, &owner, 1)?;
    ensure_eq!(sent.len(), 1, "one invitation to {owner}: {sent:?}");
    let link = check_message(&sent[0], api_token, &owner, "token=")?;
    ensure_eq!(
        link,
        str_of(&created["invitation_link"]),
        "the mailed link is the one the operator was shown"
    );
    let html = str_of(&sent[0]["body"]["html"]);
    let text = str_of(&sent[0]["body"]["text"]);
    ensure!(
        html.contains(TENANT_NAME_HTML) && !html.contains("<b>"),
        "the tenant name is escaped in the HTML part: {html:?}"
    );
    ensure!(
        text.contains(TENANT_NAME),
        "the text part names the tenant as given: {text:?}"
    );
    outbox_is_empty(app, &owner)?;

    // The owner accepts with the token from the mail and signs in.
    let accept = json!({ "token": token_of(&link)?, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&accept))?.expect_json(200)?;
    let login = json!({ "tenant": domain, "email": owner, "password": PASSWORD });
    let session = send(app, "POST", "/v1/auth/login", None, Some(&login))?.expect_json(200)?;
    let access = str_of(&session["access_token"]);
    ensure!(!access.is_empty(), "owner sign-in: {session}");

    // The owner invites a user: that invitation goes to the API too.
    let ana = format!("ana@{domain}.example");
    let invite = json!({ "email": ana, "role": "user" });
    let inv = send(
        app,
        "POST",
        "/v1/tenant/invitations",
        Some(&access),
        Some(&invite),
    )?
    .expect_json(201)?;
    ensure_eq!(str_of(&inv["mail"]), "sent", "the invitation: {inv}");
    let sent = sink.messages_to(app, &ana, 1)?;
    ensure_eq!(sent.len(), 1, "one invitation to {ana}: {sent:?}");
    let link = check_message(&sent[0], api_token, &ana, "token=")?;
    let html = str_of(&sent[0]["body"]["html"]);
    ensure!(
        html.contains(TENANT_NAME_HTML) && !html.contains("<b>"),
        "the tenant name is escaped in the HTML part: {html:?}"
    );
    ensure!(
        html.contains("as user"),
        "the HTML part names the role: {html:?}"
    );
    outbox_is_empty(app, &ana)?;
    let accept = json!({ "token": token_of(&link)?, "password": PASSWORD });
    send(app, "POST", "/v1/invitations/accept", None, Some(&accept))?.expect_json(200)?;

    // A password reset (FR-AUTH-004) goes to the API, and its link resets the password.
    let forgot = json!({ "tenant": domain, "email": ana });
    send(app, "POST", "/v1/auth/password/forgot", None, Some(&forgot))?.expect_json(202)?;
    let sent = sink.messages_to(app, &ana, 2)?;
    ensure_eq!(
        sent.len(),
        2,
        "an invitation and a reset to {ana}: {sent:?}"
    );
    let link = check_message(
        &sent[1],
        api_token,
        &ana,
        "/console/account/password-reset?token=",
    )?;
    outbox_is_empty(app, &ana)?;
    let new_password = "a brand new passphrase";
    let reset = json!({ "token": token_of(&link)?, "password": new_password });
    send(app, "POST", "/v1/auth/password/reset", None, Some(&reset))?.expect_status(204)?;
    let login = json!({ "tenant": domain, "email": ana, "password": new_password });
    send(app, "POST", "/v1/auth/login", None, Some(&login))?.expect_json(200)?;

    let all = sink.received(app)?;
    ensure_eq!(
        all.len(),
        3,
        "the mail API received exactly the three messages: {all:?}"
    );
    Ok(())
}
