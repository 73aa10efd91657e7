//! The universal login page (IF-LOGIN-UI): server-rendered HTML for the OIDC provider's
//! sign-in steps (tenant, email and password, second factor), usable without JavaScript.
//!
//! Every interpolated value goes through [`escape`]. Pages carry a strict Content Security
//! Policy (no inline script or style; styles only from `/oauth/assets/login.css`), are never
//! framed, cached or sent as a referrer. The one script, `/oauth/assets/passkey.js`, is loaded
//! only by the second-factor step of a user with a passkey (WebAuthn has no form-only API); that
//! step works without it through a code.

use ::http::{header, HeaderValue, StatusCode};

use super::Response;
use crate::oidc::Flow;

/// The stylesheet of the page, served as `/oauth/assets/login.css`.
pub const LOGIN_CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2330}\
main{max-width:380px;margin:8vh auto;padding:32px;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
h1{font-size:1.3em;margin:0 0 4px}\
p.sub{margin:0 0 20px;color:#5b6475}\
label{display:block;margin:12px 0 4px;font-weight:600}\
input[type=text],input[type=email],input[type=password]{width:100%;padding:10px;border:1px solid #c5cad3;border-radius:8px;font:inherit}\
button{margin-top:18px;width:100%;padding:10px;border:0;border-radius:8px;background:#2c5fe6;color:#fff;font:inherit;font-weight:600;cursor:pointer}\
button.link{background:none;color:#2c5fe6;padding:0;width:auto;margin-top:12px;font-weight:400;text-decoration:underline}\
.error{padding:10px;border-radius:8px;background:#fdecec;color:#9b1c1c;margin:0 0 12px}\
.notice{padding:10px;border-radius:8px;background:#eaf4ea;color:#1c5b26;margin:0 0 12px}\
.sso{display:block;margin-top:16px;text-align:center;padding:10px;border:1px solid #c5cad3;border-radius:8px;color:#1d2330;text-decoration:none}\
hr{border:0;border-top:1px solid #e3e6ea;margin:20px 0}\
button.secondary{background:#fff;color:#1d2330;border:1px solid #c5cad3}\
";

/// The passkey button of the second-factor step, served as `/oauth/assets/passkey.js`: reads the
/// request options the page carries in `data-options`, asks the browser's authenticator, and
/// posts the assertion as the form's `webauthn` field (NFR-SEC-003).
pub const PASSKEY_JS: &str = r#"(function () {
  "use strict";
  var button = document.getElementById("passkey");
  if (!button || !window.PublicKeyCredential || !navigator.credentials) return;
  var note = document.getElementById("passkey-note");
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
  button.addEventListener("click", function () {
    var o = JSON.parse(button.getAttribute("data-options")).publicKey;
    var pk = Object.assign({}, o, { challenge: decode(o.challenge) });
    if (o.allowCredentials) {
      pk.allowCredentials = o.allowCredentials.map(function (c) {
        return Object.assign({}, c, { id: decode(c.id) });
      });
    }
    navigator.credentials.get({ publicKey: pk }).then(function (cred) {
      var r = cred.response;
      document.getElementById("webauthn").value = JSON.stringify({
        id: cred.id, rawId: encode(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: encode(r.clientDataJSON),
          authenticatorData: encode(r.authenticatorData),
          signature: encode(r.signature),
          userHandle: r.userHandle ? encode(r.userHandle) : null
        },
        clientExtensionResults: {}
      });
      button.form.submit();
    }).catch(function () {
      note.textContent = "The passkey was not used. Try again, or enter a code.";
    });
  });
})();
"#;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The origin of a redirect URI for the CSP `form-action` directive (a form post answered by a
/// redirect to the client must be allowed to land there), if it is safe to put in the header.
pub fn csp_origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let origin = match rest.strip_prefix("//") {
        Some(after) => {
            let authority = after.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}")
        }
        None => format!("{scheme}:"),
    };
    origin
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"'))
        .then_some(origin)
}

/// The page's security headers: CSP, no framing, no caching, no referrer.
pub fn secure_headers(resp: &mut Response, redirect_uri: Option<&str>) {
    headers_with(resp, redirect_uri, false);
}

/// [`secure_headers`], and with `own_script` the page may load scripts from this origin (never
/// inline ones).
fn headers_with(resp: &mut Response, redirect_uri: Option<&str>, own_script: bool) {
    let extra = redirect_uri
        .and_then(csp_origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let script = if own_script {
        " script-src 'self';"
    } else {
        ""
    };
    let csp = format!(
        "default-src 'none';{script} style-src 'self'; img-src 'self'; form-action 'self'{extra}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A whole HTML page: `title` (escaped here) and `body` (already escaped HTML).
pub fn html(status: StatusCode, title: &str, body: &str, redirect_uri: Option<&str>) -> Response {
    let doc = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/oauth/assets/login.css\"></head>\
         <body><main>{body}</main></body></html>\n",
        escape(title)
    );
    let mut resp = Response::new(doc.into_bytes());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers_with(&mut resp, redirect_uri, body.contains(PASSKEY_SCRIPT_TAG));
    resp
}

/// How a page loads [`PASSKEY_JS`]; its presence opens the CSP to this origin's scripts.
const PASSKEY_SCRIPT_TAG: &str = "<script src=\"/oauth/assets/passkey.js\" defer></script>";

/// A page showing an error that ends the flow (nothing to redirect to).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        escape(title),
        escape(message)
    );
    html(status, title, &body, None)
}

/// Which step of the page to show.
pub enum Step<'a> {
    /// Step 1: the organization's domain.
    Tenant,
    /// Step 2: email and password (with SSO and forgot-password).
    Password {
        /// The email to pre-fill.
        email: &'a str,
    },
    /// The second factor of the pending sign-in.
    Mfa {
        /// The pending sign-in's token.
        mfa_token: &'a str,
        /// The user's passkey request options (JSON), when the user has a passkey.
        passkey: Option<&'a str>,
    },
    /// TOTP enrollment within the sign-in (the tenant requires MFA, NFR-SEC-003).
    Enroll {
        /// The pending sign-in's token.
        mfa_token: &'a str,
        /// The new TOTP secret, base32, for manual entry.
        secret: &'a str,
        /// Its `otpauth://` URI.
        otpauth_uri: &'a str,
    },
}

/// A message above the form.
pub enum Note<'a> {
    /// Nothing.
    None,
    /// An error (wrong password, wrong code, ...).
    Error(&'a str),
    /// A neutral confirmation (reset link sent).
    Notice(&'a str),
}

fn hidden(flow_id: &str, csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"flow\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(flow_id),
        escape(csrf)
    )
}

/// Renders a step of the login flow.
pub fn step_page(
    status: StatusCode,
    flow: &Flow,
    flow_id: &str,
    csrf: &str,
    step: Step<'_>,
    note: Note<'_>,
) -> Response {
    let mut body = format!(
        "<h1>Sign in</h1><p class=\"sub\">to continue to {}</p>",
        escape(&flow.client_name)
    );
    match note {
        Note::None => {}
        Note::Error(m) => body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(m)
        )),
        Note::Notice(m) => body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            escape(m)
        )),
    }
    let h = hidden(flow_id, csrf);
    match (step, &flow.tenant) {
        (Step::Tenant, _) | (Step::Password { .. }, None) => {
            body.push_str(&format!(
                "<form method=\"post\" action=\"/oauth/authorize/tenant\">{h}\
                 <label for=\"tenant\">Your organization's domain</label>\
                 <input id=\"tenant\" name=\"tenant\" type=\"text\" required autofocus \
                 autocomplete=\"organization\" autocapitalize=\"none\" spellcheck=\"false\">\
                 <button type=\"submit\">Continue</button></form>"
            ));
        }
        (Step::Password { email }, Some(t)) => {
            body.push_str(&format!(
                "<p>Organization: <strong>{}</strong></p>\
                 <form method=\"post\" action=\"/oauth/authorize/login\">{h}\
                 <label for=\"email\">Email</label>\
                 <input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"username\" value=\"{}\">\
                 <label for=\"password\">Password</label>\
                 <input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"current-password\">\
                 <button type=\"submit\">Sign in</button>\
                 <button class=\"link\" type=\"submit\" formaction=\"/oauth/authorize/forgot\" \
                 formnovalidate>Forgot password?</button></form>",
                escape(&t.name),
                escape(email)
            ));
            if t.sso {
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("tenant", &t.domain);
                q.append_pair("login_flow", flow_id);
                body.push_str(&format!(
                    "<hr><a class=\"sso\" href=\"/v1/auth/sso/start?{}\">Continue with your company SSO</a>",
                    escape(&q.finish())
                ));
            }
            body.push_str(&format!(
                "<form method=\"post\" action=\"/oauth/authorize/tenant\">{h}\
                 <input type=\"hidden\" name=\"tenant\" value=\"\">\
                 <button class=\"link\" type=\"submit\">Use another organization</button></form>"
            ));
        }
        (Step::Mfa { mfa_token, passkey }, _) => {
            body.push_str(&format!(
                "<form method=\"post\" action=\"/oauth/authorize/mfa\">{h}\
                 <input type=\"hidden\" name=\"mfa_token\" value=\"{}\">\
                 <label for=\"code\">Authentication code</label>\
                 <input id=\"code\" name=\"code\" type=\"text\" required autofocus inputmode=\"numeric\" \
                 autocomplete=\"one-time-code\">\
                 <p class=\"sub\">Enter the 6-digit code from your authenticator app, or a recovery code.</p>\
                 <button type=\"submit\">Verify</button></form>",
                escape(mfa_token)
            ));
            if let Some(options) = passkey {
                body.push_str(&format!(
                    "<form method=\"post\" action=\"/oauth/authorize/mfa\">{h}\
                     <input type=\"hidden\" name=\"mfa_token\" value=\"{}\">\
                     <input type=\"hidden\" id=\"webauthn\" name=\"webauthn\" value=\"\">\
                     <button class=\"secondary\" type=\"button\" id=\"passkey\" data-options=\"{}\" hidden>\
                     Use a passkey</button><p class=\"sub\" id=\"passkey-note\" role=\"status\"></p></form>\
                     {PASSKEY_SCRIPT_TAG}",
                    escape(mfa_token),
                    escape(options)
                ));
            }
        }
        (
            Step::Enroll {
                mfa_token,
                secret,
                otpauth_uri,
            },
            _,
        ) => {
            body.push_str(&format!(
                "<p>Your organization requires a second factor. Add this key to your authenticator app, \
                 then enter the code it shows.</p>\
                 <p>Key: <code>{}</code></p><p class=\"sub\">Or open: <code>{}</code></p>\
                 <form method=\"post\" action=\"/oauth/authorize/mfa\">{h}\
                 <input type=\"hidden\" name=\"mfa_token\" value=\"{}\">\
                 <input type=\"hidden\" name=\"enroll_secret\" value=\"{}\">\
                 <input type=\"hidden\" name=\"otpauth_uri\" value=\"{}\">\
                 <label for=\"code\">Authentication code</label>\
                 <input id=\"code\" name=\"code\" type=\"text\" required autofocus inputmode=\"numeric\" \
                 autocomplete=\"one-time-code\">\
                 <button type=\"submit\">Verify</button></form>",
                escape(secret),
                escape(otpauth_uri),
                escape(mfa_token),
                escape(secret),
                escape(otpauth_uri)
            ));
        }
    }
    html(status, "Sign in", &body, Some(&flow.redirect_uri))
}

/// After an enrollment: the recovery codes, shown once, and a form to continue to the app.
pub fn recovery_codes_page(flow: &Flow, flow_id: &str, csrf: &str, codes: &[String]) -> Response {
    let list: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", escape(c)))
        .collect();
    let body = format!(
        "<h1>Save your recovery codes</h1>\
         <p class=\"notice\" role=\"status\">Each code signs you in once if you lose your authenticator. \
         They are shown only now.</p><ul>{list}</ul>\
         <form method=\"post\" action=\"/oauth/authorize/continue\">{}\
         <button type=\"submit\">Continue to {}</button></form>",
        hidden(flow_id, csrf),
        escape(&flow.client_name)
    );
    html(
        StatusCode::OK,
        "Recovery codes",
        &body,
        Some(&flow.redirect_uri),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_login_ui_escapes_every_markup_character() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn if_login_ui_form_action_names_only_the_redirect_origin() {
        assert_eq!(
            csp_origin("https://app.example:8443/cb?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            csp_origin("https://user@app.example/cb").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            csp_origin("com.example.app:/callback").as_deref(),
            Some("com.example.app:")
        );
        // Nothing that could end the directive or the header gets in.
        assert_eq!(csp_origin("https://a.example;script-src/x"), None);
        assert_eq!(csp_origin("https://a'b.example/"), None);
        assert_eq!(csp_origin("no-scheme"), None);
    }

    #[test]
    fn if_login_ui_pages_carry_the_strict_policy() {
        let resp = error_page(StatusCode::BAD_REQUEST, "T<", "m&");
        let h = resp.headers();
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        let body = String::from_utf8(resp.body().clone()).unwrap();
        assert!(body.contains("T&lt;") && body.contains("m&amp;"));
        assert!(!body.contains("<script") && !body.contains("style="));
    }

    #[test]
    fn if_login_ui_only_the_page_itself_opens_scripts_never_interpolated_text() {
        // Text that spells the script tag is escaped, so it cannot open the policy.
        let resp = error_page(StatusCode::BAD_REQUEST, "t", PASSKEY_SCRIPT_TAG);
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!csp.contains("script-src"), "{csp}");
        // The page's own tag does, to this origin only.
        let resp = html(StatusCode::OK, "t", PASSKEY_SCRIPT_TAG, None);
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"),
            "{csp}"
        );
    }
}
