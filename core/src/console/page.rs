//! The console's page frame and the pieces every page shares: header, navigation, messages,
//! field errors and the forms' CSRF field. `maud` templates: every interpolated value is
//! escaped.

use ::http::StatusCode;
use maud::{html, Markup, DOCTYPE};

use super::api::{FieldErrors, Reply};
use super::session::Kind;
use super::{Answer, Web, PREFIX};
use crate::ports::Platform;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Tenants,
    Plans,
    Apps,
    SigningKeys,
    Health,
    Audit,
    Users,
    Security,
    SignInRisk,
    Subscription,
    Flags,
    None,
}

/// A whole page: `title` is the `<title>` and the `h1`.
pub fn frame<P: Platform>(web: &Web<'_, P>, section: Section, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Edgeplane console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console/" { "Edgeplane" }
                    @if let Some(s) = &web.session {
                        (nav(s.kind, &s.role, section))
                        div.who {
                            span { (s.display_name) " · " (s.role) }
                            form method="post" action="/console/signout" {
                                (csrf(web))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn nav(kind: Kind, role: &str, section: Section) -> Markup {
    let item = |s: Section, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(s == section).then_some("page")] { (label) } }
        }
    };
    html! {
        nav aria-label="Console" {
            ul {
                @if kind == Kind::Platform {
                    (item(Section::Tenants, "/console/tenants", "Tenants"))
                    (item(Section::Plans, "/console/plans", "Plan defaults"))
                    (item(Section::Apps, "/console/apps", "Apps and keys"))
                    (item(Section::SigningKeys, "/console/signing-keys", "Signing keys"))
                    (item(Section::Health, "/console/health", "System health"))
                    (item(Section::Audit, "/console/audit", "Audit"))
                } @else {
                    (item(Section::Users, "/console/tenant/users", "Users"))
                    (item(Section::Security, "/console/tenant/security", "Security"))
                    @if role == "owner" || role == "admin" {
                        (item(Section::SignInRisk, "/console/tenant/sign-in-risk", "Sign-in risk"))
                    }
                    (item(Section::Subscription, "/console/tenant/subscription", "Subscription"))
                    (item(Section::Flags, "/console/tenant/flags", "Flags"))
                }
            }
        }
    }
}

/// The hidden fields of every form: the session's CSRF token, and `once`, a value of this
/// rendering (see [`super::api::call`]).
pub fn csrf<P: Platform>(web: &Web<'_, P>) -> Markup {
    let once = crate::crypto::random_token(web.p.random());
    html! {
        input type="hidden" name="csrf" value=(web.csrf());
        input type="hidden" name="once" value=(once);
    }
}

/// A message box: `kind` is `notice` or `error`.
pub fn message(kind: &str, text: &str) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { p class=(kind) role=(role) { (text) } }
}

/// The API's message about a whole form, and its field errors that no field shows.
pub fn form_errors(errors: &FieldErrors, shown: &[&str]) -> Markup {
    html! {
        @if let Some(detail) = &errors.detail {
            p.error role="alert" { (detail) }
        }
        @for (field, msg) in &errors.fields {
            @if !shown.contains(&field.as_str()) {
                p.error { (field) ": " (msg) }
            }
        }
    }
}

/// A labelled text input with its field error below it.
pub fn input(
    name: &str,
    label: &str,
    value: &str,
    kind: &str,
    errors: &FieldErrors,
    required: bool,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.field(name);
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[error.as_ref().map(|_| "true")]
                aria-describedby=[error.as_ref().map(|_| error_id.as_str())];
            @if let Some(e) = error {
                p.field-error id=(error_id) { (e) }
            }
        }
    }
}

/// A labelled `<select>` with its field error.
pub fn select(
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
    errors: &FieldErrors,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.field(name);
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.as_ref().map(|_| "true")]
                aria-describedby=[error.as_ref().map(|_| error_id.as_str())] {
                @for (value, text) in options {
                    option value=(value) selected[*value == selected] { (text) }
                }
            }
            @if let Some(e) = error {
                p.field-error id=(error_id) { (e) }
            }
        }
    }
}

/// A labelled `<textarea>` with its field error.
pub fn textarea(name: &str, label: &str, value: &str, rows: u32, errors: &FieldErrors) -> Markup {
    let id = format!("f-{name}");
    let error = errors.field(name);
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            textarea id=(id) name=(name) rows=(rows) spellcheck="false"
                aria-invalid=[error.as_ref().map(|_| "true")]
                aria-describedby=[error.as_ref().map(|_| error_id.as_str())] { (value) }
            @if let Some(e) = error {
                p.field-error id=(error_id) { (e) }
            }
        }
    }
}

/// A one-button form posting to `action` (with the CSRF field).
pub fn button_form<P: Platform>(
    web: &Web<'_, P>,
    action: &str,
    label: &str,
    class: &str,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(web))
            button class=(class) type="submit" { (label) }
        }
    }
}

/// The sign-in page.
pub fn signin<P: Platform>(
    web: &Web<'_, P>,
    message_text: Option<&str>,
    operator_href: &str,
    configured: bool,
    next: Option<&str>,
) -> Markup {
    frame(
        web,
        Section::None,
        "Sign in to Edgeplane",
        html! {
            @if let Some(m) = message_text {
                (message("notice", m))
            }
            section.card aria-labelledby="op-title" {
                h2 #op-title { "Operators and auditors" }
                p { "Sign in with your organisation's identity provider." }
                @if configured {
                    a.button href=(operator_href) { "Sign in as operator or auditor" }
                } @else {
                    p.muted { "Operator sign-in is not configured on this deployment." }
                }
            }
            section.card aria-labelledby="tenant-title" {
                h2 #tenant-title { "Tenant owners and admins" }
                p { "Sign in with your organisation's account: password, second factor, passkey or your company's single sign-on." }
                form method="get" action="/console/signin/tenant" {
                    @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                    div.field {
                        label for="organization" { "Organization" }
                        input #organization name="organization" type="text" autocomplete="organization" required;
                    }
                    button type="submit" { "Continue to sign-in" }
                }
            }
        },
    )
}

/// An error page.
pub fn error<P: Platform>(web: &Web<'_, P>, status: StatusCode, text: &str) -> Answer {
    Answer::Page(
        status,
        frame(
            web,
            Section::None,
            status.canonical_reason().unwrap_or("Error"),
            html! {
                (message("error", text))
                p { a href=(format!("{PREFIX}/")) { "Back to the console" } }
            },
        ),
    )
}

/// 404: also what a resource of another tenant, or a page of another role, answers.
pub fn not_found<P: Platform>(web: &Web<'_, P>) -> Answer {
    error(
        web,
        StatusCode::NOT_FOUND,
        "There is nothing at this address.",
    )
}

/// 503, when storage or a dependency failed (the cause is in the log, never on the page).
pub fn unavailable<P: Platform>(web: &Web<'_, P>) -> Answer {
    error(
        web,
        StatusCode::SERVICE_UNAVAILABLE,
        "The console cannot answer right now. Try again in a moment.",
    )
}

/// A timestamp (unix ms) as `YYYY-MM-DD HH:MM UTC`.
pub fn when(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "—".to_owned(),
    }
}

/// A link to a console path with a query built from `pairs` (empty values left out).
pub fn link_with(path: &str, pairs: &[(&str, &str)]) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

/// The page for an API answer that is neither a success nor a form error: 404 and 410 are
/// "nothing here", 401 and 440 (the session ended) go back to sign-in, 5xx is "unavailable".
/// A 403 says `forbidden`, or the API's own detail when `None`.
pub fn failure<P: Platform>(web: &Web<'_, P>, reply: &Reply, forbidden: Option<&str>) -> Answer {
    let detail = |fallback| {
        reply
            .body
            .get("detail")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(fallback)
    };
    match reply.status {
        404 | 410 => not_found(web),
        401 | 440 => Answer::to(format!("{PREFIX}/signin?reason=expired")),
        403 => error(
            web,
            StatusCode::FORBIDDEN,
            forbidden.unwrap_or_else(|| detail("Your role does not allow this.")),
        ),
        s if s >= 500 => unavailable(web),
        _ => error(
            web,
            StatusCode::BAD_REQUEST,
            detail("The request was refused."),
        ),
    }
}

/// A string member of a JSON object, `""` when absent.
pub fn text<'j>(v: &'j serde_json::Value, key: &str) -> &'j str {
    v.get(key).and_then(serde_json::Value::as_str).unwrap_or("")
}
