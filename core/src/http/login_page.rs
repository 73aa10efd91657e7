//! The universal login page (IF-LOGIN-UI): server-rendered HTML for the OIDC provider's
//! sign-in steps (tenant, email and password, second factor), usable without JavaScript.
//!
//! The pages are `maud` templates: markup is checked at compile time and every interpolated
//! value is escaped by construction. Pages carry a strict Content Security
//! Policy (no inline script or style; styles only from `/oauth/assets/login.css`), are never
//! framed, cached or sent as a referrer. The one script, `/oauth/assets/passkey.js`, is loaded
//! only by the second-factor step of a user with a passkey (WebAuthn has no form-only API); that
//! step works without it through a code.

use ::http::{header, HeaderValue, StatusCode};
use maud::{html, Markup, PreEscaped};

use super::Response;
use crate::oidc::{Flow, TenantChoice};

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

/// A whole HTML page around `body`. `own_script` opens the CSP to this origin's scripts: only
/// the passkey step asks for it, never anything interpolated.
pub(super) fn page(
    status: StatusCode,
    title: &str,
    body: Markup,
    redirect_uri: Option<&str>,
    own_script: bool,
) -> Response {
    let doc = html! {
        (PreEscaped("<!doctype html>\n"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href="/oauth/assets/login.css";
            }
            body { main { (body) } }
        }
        "\n"
    };
    let mut resp = Response::new(doc.into_string().into_bytes());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers_with(&mut resp, redirect_uri, own_script);
    resp
}

/// A page showing an error that ends the flow (nothing to redirect to).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p class="error" role="alert" { (message) }
    };
    page(status, title, body, None, false)
}

/// A page with a neutral message that ends the flow (signed out).
pub fn notice_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p class="notice" role="status" { (message) }
    };
    page(status, title, body, None, false)
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

/// The hidden fields every form of a flow posts: the flow and its CSRF token.
fn flow_fields(flow_id: &str, csrf: &str) -> Markup {
    html! {
        input type="hidden" name="flow" value=(flow_id);
        input type="hidden" name="csrf" value=(csrf);
    }
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
    let fields = flow_fields(flow_id, csrf);
    let own_script = matches!(
        step,
        Step::Mfa {
            passkey: Some(_),
            ..
        }
    );
    let form = match (step, &flow.tenant) {
        (Step::Tenant, _) | (Step::Password { .. }, None) => tenant_form(&fields),
        (Step::Password { email }, Some(t)) => password_form(&fields, t, email, flow_id),
        (Step::Mfa { mfa_token, passkey }, _) => mfa_form(&fields, mfa_token, passkey),
        (
            Step::Enroll {
                mfa_token,
                secret,
                otpauth_uri,
            },
            _,
        ) => enroll_form(&fields, mfa_token, secret, otpauth_uri),
    };
    let body = html! {
        h1 { "Sign in" }
        p class="sub" { "to continue to " (flow.client_name) }
        @match note {
            Note::None => {}
            Note::Error(m) => p class="error" role="alert" { (m) },
            Note::Notice(m) => p class="notice" role="status" { (m) },
        }
        (form)
    };
    page(
        status,
        "Sign in",
        body,
        Some(&flow.redirect_uri),
        own_script,
    )
}

/// Step 1: which organization.
fn tenant_form(fields: &Markup) -> Markup {
    html! {
        form method="post" action="/oauth/authorize/tenant" {
            (fields)
            label for="tenant" { "Your organization's domain" }
            input id="tenant" name="tenant" type="text" required autofocus
                autocomplete="organization" autocapitalize="none" spellcheck="false";
            button type="submit" { "Continue" }
        }
    }
}

/// Step 2: email and password, the tenant's SSO when it has one, and a way back to step 1.
fn password_form(fields: &Markup, tenant: &TenantChoice, email: &str, flow_id: &str) -> Markup {
    let sso_start = tenant.sso.then(|| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("tenant", &tenant.domain);
        q.append_pair("login_flow", flow_id);
        format!("/v1/auth/sso/start?{}", q.finish())
    });
    html! {
        p { "Organization: " strong { (tenant.name) } }
        form method="post" action="/oauth/authorize/login" {
            (fields)
            label for="email" { "Email" }
            input id="email" name="email" type="email" required autocomplete="username" value=(email);
            label for="password" { "Password" }
            input id="password" name="password" type="password" required
                autocomplete="current-password";
            button type="submit" { "Sign in" }
            button class="link" type="submit" formaction="/oauth/authorize/forgot" formnovalidate {
                "Forgot password?"
            }
        }
        @if let Some(href) = sso_start {
            hr;
            a class="sso" href=(href) { "Continue with your company SSO" }
        }
        form method="post" action="/oauth/authorize/tenant" {
            (fields)
            input type="hidden" name="tenant" value="";
            button class="link" type="submit" { "Use another organization" }
        }
    }
}

/// The second factor: a code, and the user's passkey when there is one.
fn mfa_form(fields: &Markup, mfa_token: &str, passkey: Option<&str>) -> Markup {
    html! {
        form method="post" action="/oauth/authorize/mfa" {
            (fields)
            input type="hidden" name="mfa_token" value=(mfa_token);
            label for="code" { "Authentication code" }
            input id="code" name="code" type="text" required autofocus inputmode="numeric"
                autocomplete="one-time-code";
            p class="sub" { "Enter the 6-digit code from your authenticator app, or a recovery code. If we mailed you a sign-in code because this sign-in looked unusual, enter that code." }
            button type="submit" { "Verify" }
        }
        @if let Some(options) = passkey {
            form method="post" action="/oauth/authorize/mfa" {
                (fields)
                input type="hidden" name="mfa_token" value=(mfa_token);
                input type="hidden" id="webauthn" name="webauthn" value="";
                button class="secondary" type="button" id="passkey" data-options=(options) hidden {
                    "Use a passkey"
                }
                p class="sub" id="passkey-note" role="status" {}
            }
            script src="/oauth/assets/passkey.js" defer {}
        }
    }
}

/// TOTP enrollment: the new key, and the first code it shows.
fn enroll_form(fields: &Markup, mfa_token: &str, secret: &str, otpauth_uri: &str) -> Markup {
    html! {
        p {
            "Your organization requires a second factor. Add this key to your authenticator app, \
             then enter the code it shows."
        }
        p { "Key: " code { (secret) } }
        p class="sub" { "Or open: " code { (otpauth_uri) } }
        form method="post" action="/oauth/authorize/mfa" {
            (fields)
            input type="hidden" name="mfa_token" value=(mfa_token);
            input type="hidden" name="enroll_secret" value=(secret);
            input type="hidden" name="otpauth_uri" value=(otpauth_uri);
            label for="code" { "Authentication code" }
            input id="code" name="code" type="text" required autofocus inputmode="numeric"
                autocomplete="one-time-code";
            button type="submit" { "Verify" }
        }
    }
}

/// After an enrollment: the recovery codes, shown once, and a form to continue to the app.
pub fn recovery_codes_page(flow: &Flow, flow_id: &str, csrf: &str, codes: &[String]) -> Response {
    let body = html! {
        h1 { "Save your recovery codes" }
        p class="notice" role="status" {
            "Each code signs you in once if you lose your authenticator. They are shown only now."
        }
        ul { @for c in codes { li { code { (c) } } } }
        form method="post" action="/oauth/authorize/continue" {
            (flow_fields(flow_id, csrf))
            button type="submit" { "Continue to " (flow.client_name) }
        }
    };
    page(
        StatusCode::OK,
        "Recovery codes",
        body,
        Some(&flow.redirect_uri),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#"<script>alert('x')</script>" onmouseover="y"&"#;
    const HOSTILE_ESCAPED: &str =
        "&lt;script&gt;alert('x')&lt;/script&gt;&quot; onmouseover=&quot;y&quot;&amp;";

    fn body(resp: &Response) -> String {
        String::from_utf8(resp.body().clone()).unwrap()
    }

    fn tenant(name: &str, sso: bool) -> Option<TenantChoice> {
        Some(TenantChoice {
            id: "t1".into(),
            domain: "acme.test".into(),
            name: name.into(),
            sso,
        })
    }

    /// Every value a page shows or posts back comes from input somewhere (the app's name, the
    /// tenant's name, the typed email, the flow's tokens): none of it can add markup.
    #[test]
    fn if_login_ui_escapes_hostile_values() {
        let flow = Flow::for_page_tests(HOSTILE, "https://app.example/cb", tenant(HOSTILE, true));
        let pages = [
            step_page(
                StatusCode::OK,
                &flow,
                HOSTILE,
                HOSTILE,
                Step::Password { email: HOSTILE },
                Note::Error(HOSTILE),
            ),
            step_page(
                StatusCode::OK,
                &flow,
                "f",
                "c",
                Step::Mfa {
                    mfa_token: HOSTILE,
                    passkey: Some(HOSTILE),
                },
                Note::Notice(HOSTILE),
            ),
            step_page(
                StatusCode::OK,
                &flow,
                "f",
                "c",
                Step::Enroll {
                    mfa_token: HOSTILE,
                    secret: HOSTILE,
                    otpauth_uri: HOSTILE,
                },
                Note::None,
            ),
            recovery_codes_page(&flow, HOSTILE, HOSTILE, &[HOSTILE.to_owned()]),
            error_page(StatusCode::BAD_REQUEST, HOSTILE, HOSTILE),
            notice_page(StatusCode::OK, HOSTILE, HOSTILE),
        ];
        for page in &pages {
            let html = body(page);
            assert!(!html.contains("<script>alert"), "{html}");
            assert!(!html.contains("\" onmouseover"), "{html}");
            assert!(html.contains(HOSTILE_ESCAPED), "{html}");
        }
        // The tenant's name on the password step, in full.
        assert!(body(&pages[0]).contains(&format!("<strong>{HOSTILE_ESCAPED}</strong>")));
        // The hidden fields carry the values back, escaped inside their quotes.
        assert!(body(&pages[0]).contains(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{HOSTILE_ESCAPED}\">"
        )));
    }

    #[test]
    fn if_login_ui_steps_carry_the_flow_and_csrf_fields() {
        let flow = Flow::for_page_tests("App", "https://app.example/cb", tenant("Acme", true));
        let html = body(&step_page(
            StatusCode::OK,
            &flow,
            "flow-1",
            "csrf-1",
            Step::Password {
                email: "ann@acme.test",
            },
            Note::None,
        ));
        // Both forms (sign in, another organization) post both fields.
        let fields = "<input type=\"hidden\" name=\"flow\" value=\"flow-1\">\
                      <input type=\"hidden\" name=\"csrf\" value=\"csrf-1\">";
        assert_eq!(html.matches(fields).count(), 2, "{html}");
        assert!(html.contains("value=\"ann@acme.test\""));
        assert!(html.contains(
            "<a class=\"sso\" href=\"/v1/auth/sso/start?tenant=acme.test&amp;login_flow=flow-1\">"
        ));
        assert!(
            html.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{html}"
        );
        assert!(html.ends_with("</main></body></html>\n"), "{html}");
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
    fn if_login_ui_only_the_passkey_step_opens_scripts_never_interpolated_text() {
        let csp = |resp: &Response| {
            resp.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let tag = "<script src=\"/oauth/assets/passkey.js\" defer></script>";
        // Text that spells the script tag is escaped, and does not open the policy.
        let resp = error_page(StatusCode::BAD_REQUEST, "t", tag);
        assert!(!csp(&resp).contains("script-src"), "{}", csp(&resp));
        assert!(!body(&resp).contains(tag));
        let flow = Flow::for_page_tests("App", "https://app.example/cb", tenant("Acme", false));
        let mfa = |passkey| {
            step_page(
                StatusCode::OK,
                &flow,
                "f",
                "c",
                Step::Mfa {
                    mfa_token: "m",
                    passkey,
                },
                Note::None,
            )
        };
        // A second factor without a passkey loads no script.
        let resp = mfa(None);
        assert!(!csp(&resp).contains("script-src"), "{}", csp(&resp));
        assert!(!body(&resp).contains("<script"));
        // The passkey step loads the page's own script, from this origin only.
        let resp = mfa(Some("{}"));
        assert!(
            csp(&resp).starts_with("default-src 'none'; script-src 'self'; style-src 'self';"),
            "{}",
            csp(&resp)
        );
        assert!(body(&resp).contains(tag));
    }
}
