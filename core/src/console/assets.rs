//! The console's stylesheet and its two small scripts, served from `/console/assets/` (the
//! policy allows no inline style or script). Every page works without `console.js`: it adds a
//! copy button to one-time secrets and refreshes the health panel every five seconds.
//! `passkey.js`, loaded only by the page that adds a passkey, runs the browser's WebAuthn
//! ceremony, which nothing else can (see `tenant::passkeys`).

use super::{page, Answer, Web};
use crate::ports::Platform;

/// `GET /console/assets/{name}`.
pub(super) fn serve<P: Platform>(web: &Web<'_, P>, name: &str) -> Answer {
    match name {
        "console.css" => Answer::Asset("text/css; charset=utf-8", CSS),
        "console.js" => Answer::Asset("text/javascript; charset=utf-8", JS),
        "passkey.js" => Answer::Asset("text/javascript; charset=utf-8", PASSKEY_JS),
        _ => page::not_found(web),
    }
}

const CSS: &str = "\
*{box-sizing:border-box}\
[hidden]{display:none!important}\
body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2330}\
a{color:#1f4fd1}\
a.skip{position:absolute;left:-999px;top:0;background:#fff;padding:8px}\
a.skip:focus{left:8px;z-index:10}\
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:8px 24px;padding:10px 24px;background:#1d2330;color:#fff}\
header.top a{color:#fff}\
a.brand{font-weight:700;text-decoration:none;font-size:1.1em}\
nav ul{display:flex;flex-wrap:wrap;gap:4px 16px;list-style:none;margin:0;padding:0}\
nav a{text-decoration:none;padding:4px 2px}\
nav a[aria-current=page]{border-bottom:2px solid #fff;font-weight:600}\
.who{margin-left:auto;display:flex;align-items:center;gap:12px;color:#d5d9e2}\
.who button.link{color:#fff}\
main{max-width:1100px;margin:24px auto;padding:0 24px}\
main:focus{outline:none}\
h1{font-size:1.5em;margin:0 0 16px}\
h2{font-size:1.15em;margin:24px 0 8px}\
.card{background:#fff;border-radius:10px;box-shadow:0 1px 6px rgba(0,0,0,.08);padding:20px;margin:0 0 20px}\
table{width:100%;border-collapse:collapse;background:#fff}\
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{font-weight:600;background:#eef0f4}\
.field{margin:0 0 12px}\
label{display:block;font-weight:600;margin:0 0 4px}\
input[type=text],input[type=email],input[type=search],input[type=url],input[type=number],input[type=date],input[type=datetime-local],select,textarea{width:100%;max-width:560px;padding:8px;border:1px solid #8a93a3;border-radius:6px;font:inherit;background:#fff}\
textarea{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;max-width:100%}\
input[aria-invalid=true],textarea[aria-invalid=true],select[aria-invalid=true]{border-color:#b42318}\
:focus-visible{outline:3px solid #f0b429;outline-offset:2px}\
button,a.button{display:inline-block;padding:8px 14px;border:0;border-radius:6px;background:#1f4fd1;color:#fff;font:inherit;font-weight:600;cursor:pointer;text-decoration:none}\
button.secondary{background:#fff;color:#1d2330;border:1px solid #8a93a3}\
button.danger{background:#b42318}\
button.link{background:none;color:#1f4fd1;padding:0;font-weight:400;text-decoration:underline}\
form.inline{display:inline}\
.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:12px 0}\
.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end;margin:0 0 16px}\
.filters .field{margin:0}\
.error{padding:10px;border-radius:6px;background:#fdecec;color:#8a1c1c;margin:0 0 12px}\
.notice{padding:10px;border-radius:6px;background:#e8f3ea;color:#1b5426;margin:0 0 12px}\
.field-error{color:#b42318;margin:4px 0 0}\
.muted{color:#545d6e}\
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.9em;font-weight:600}\
.status-active,.status-up,.status-green,.status-passed{background:#dcefe0;color:#1b5426}\
.status-suspended,.status-degraded,.status-unknown,.status-medium{background:#fff1d6;color:#7a4b00}\
.status-pending_deletion,.status-down,.status-revoked,.status-disabled,.status-red,.status-failed,.status-high{background:#fdecec;color:#8a1c1c}\
code.secret{display:block;padding:10px;background:#1d2330;color:#fff;border-radius:6px;word-break:break-all;margin:8px 0}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}\
dl.facts dt{font-weight:600}\
dl.facts dd{margin:0}\
pre.json{background:#fff;border:1px solid #e3e6ea;padding:10px;border-radius:6px;overflow:auto;font-size:13px}\
";

const JS: &str = r#"(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (el) {
    if (!navigator.clipboard) return;
    var b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = "Copy";
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(el.textContent).then(function () {
        b.textContent = "Copied";
      });
    });
    el.insertAdjacentElement("afterend", b);
  });
  var panel = document.getElementById("health-panel");
  if (panel) {
    setInterval(function () {
      fetch("/console/health/panel", { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html !== null) panel.innerHTML = html;
      }).catch(function () {});
    }, 5000);
  }
})();
"#;

/// Creates a passkey from the options in `#passkey-form`'s `data-options` (the API's
/// `publicKey`, base64url fields as the WebAuthn JSON serialisation has them), puts the
/// credential's JSON in `#passkey-credential` and sends the form. Without WebAuthn the button
/// stays hidden and the note says why.
const PASSKEY_JS: &str = r#"(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  if (!form) return;
  var button = document.getElementById("passkey-create");
  var note = document.getElementById("passkey-note");
  var field = document.getElementById("passkey-credential");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    note.textContent = "This browser cannot create passkeys.";
    return;
  }
  function decode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function encode(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  button.hidden = false;
  note.textContent = "Press the button, then follow your browser's prompt.";
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var o = JSON.parse(form.getAttribute("data-options"));
    var pk = Object.assign({}, o, {
      challenge: decode(o.challenge),
      user: Object.assign({}, o.user, { id: decode(o.user.id) }),
      excludeCredentials: (o.excludeCredentials || []).map(function (c) {
        return Object.assign({}, c, { id: decode(c.id) });
      })
    });
    button.disabled = true;
    note.textContent = "Waiting for your browser's passkey prompt.";
    navigator.credentials.create({ publicKey: pk }).then(function (cred) {
      var r = cred.response;
      field.value = JSON.stringify({
        id: cred.id, rawId: encode(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: encode(r.clientDataJSON),
          attestationObject: encode(r.attestationObject),
          transports: r.getTransports ? r.getTransports() : []
        },
        clientExtensionResults: {}
      });
      form.submit();
    }).catch(function (e) {
      button.disabled = false;
      note.textContent = e && e.name === "InvalidStateError"
        ? "This device already holds a passkey of your account."
        : "No passkey was created. Try again, or cancel.";
    });
  });
})();
"#;
