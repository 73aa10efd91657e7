//! The tenant console (IF-TENANT-CONSOLE): a tenant's owner or admin manages its users and
//! invitations, the password policy and single sign-on, their own authenticator app, passkeys
//! ([`passkeys`]) and devices ([`devices`]), the sign-in risk policy ([`sign_in_risk`]) and the
//! subscription's plan, and reads the tenant's risky sign-ins, its billing usage per day
//! ([`usage`]) and its flags. Every page acts through the tenant administration API with the
//! session's access token, so the API decides what an admin may do (the plan and SSO are the
//! owner's), and another tenant's user is a 404.

mod devices;
mod passkeys;
mod sign_in_risk;
mod usage;

use ::http::{Method, StatusCode};
use maud::{html, Markup};
use serde_json::{json, Value as Json};

use super::api::{self, seg, FieldErrors, Reply};
use super::page::{self, text, Section};
use super::{Answer, Web};
use crate::ports::Platform;

const ROLES: &[(&str, &str)] = &[("user", "User"), ("admin", "Admin"), ("owner", "Owner")];
const ROLE_FILTER: &[(&str, &str)] = &[
    ("", "Any role"),
    ("owner", "Owner"),
    ("admin", "Admin"),
    ("user", "User"),
];
const STATUS_FILTER: &[(&str, &str)] = &[
    ("", "Any status"),
    ("invited", "Invited"),
    ("active", "Active"),
    ("disabled", "Disabled"),
];
const PLANS: &[(&str, &str)] = &[
    ("free", "Free"),
    ("pro", "Pro"),
    ("enterprise", "Enterprise"),
];

/// Dispatches a tenant session's page (`rest`: the path after `/console/`).
pub(super) async fn route<P: Platform>(web: &mut Web<'_, P>, rest: &[&str]) -> Answer {
    let get = web.method == Method::GET || web.method == Method::HEAD;
    match (rest, get) {
        (["tenant", "users"], true) => users(web, None).await,
        (["tenant", "users", "invite"], false) => invite(web).await,
        (["tenant", "users", id], true) => user_page(web, id, None).await,
        (["tenant", "users", id, action], false) => user_action(web, id, action).await,
        (["tenant", "invitations", id, "resend"], false) => resend(web, id).await,
        (["tenant", "security"], true) => security(web, None, None).await,
        (["tenant", "security", "password-policy"], false) => policy_save(web).await,
        (["tenant", "security", "sso"], false) => sso_save(web).await,
        (["tenant", "security", "totp"], false) => totp_enroll(web).await,
        (["tenant", "security", "totp", "confirm"], false) => totp_confirm(web).await,
        (["tenant", "security", "passkeys"], false) => passkeys::finish(web).await,
        (["tenant", "security", "passkeys", "new"], false) => passkeys::begin(web).await,
        (["tenant", "security", "passkeys", id], true) => passkeys::confirm_remove(web, id).await,
        (["tenant", "security", "passkeys", id, "remove"], false) => {
            passkeys::remove(web, id).await
        }
        (["tenant", "security", "devices", id, "remove"], false) => devices::remove(web, id).await,
        (["tenant", "sign-in-risk"], true) => sign_in_risk::show(web, None).await,
        (["tenant", "sign-in-risk", "policy"], false) => sign_in_risk::save(web).await,
        (["tenant", "subscription"], true) => subscription(web, None).await,
        (["tenant", "subscription", "usage.csv"], true) => usage::download(web).await,
        (["tenant", "subscription"], false) => plan_save(web).await,
        (["tenant", "flags"], true) => flags(web).await,
        _ => page::not_found(web),
    }
}

fn is_owner<P: Platform>(web: &Web<'_, P>) -> bool {
    web.session.as_ref().is_some_and(|s| s.role == "owner")
}

fn badge(status: &str) -> Markup {
    html! { span class=(format!("status status-{status}")) { (status) } }
}

/// A refused or failed API answer that is not a form error.
fn failure<P: Platform>(web: &Web<'_, P>, reply: &Reply) -> Answer {
    page::failure(web, reply, None)
}

fn is_form_error(reply: &Reply) -> bool {
    matches!(reply.status, 400 | 409 | 422)
}

/// The message of a redirect's `done`: what just happened, or why it could not.
fn done<P: Platform>(web: &Web<'_, P>) -> Option<Markup> {
    if web.q("done")? == "reauth-passkey" {
        return Some(reauthenticate(web));
    }
    let text = match web.q("done")? {
        "invited" => "Invitation sent.",
        "resent" => "Invitation sent again.",
        "role" => "Role changed.",
        "disable" => "User disabled: their sessions ended and they cannot sign in.",
        "enable" => "User enabled.",
        "revoke" => "Every session of the user ended.",
        "erase" => {
            "User erased: their personal data is gone, their history kept under a pseudonym."
        }
        "policy" => "Password policy saved.",
        "sso" => "Single sign-on saved.",
        "plan" => "Plan changed.",
        "reauth" => "Sign in again first: changing a second factor needs a recent sign-in.",
        "passkey-added" => "Passkey added: from now on, sign-in asks for it after your password.",
        "passkey-removed" => "Passkey removed: it no longer signs you in.",
        "device-removed" => "Device removed: a sign-in from it counts as from a new device.",
        "risk-policy" => "Risk policy saved.",
        _ => return None,
    };
    Some(page::message("notice", text))
}

/// Why a passkey change was refused for an old sign-in, and the way forward (the API's 403
/// `reauthentication_required`: a stolen session must not add a way in).
fn reauthenticate<P: Platform>(web: &Web<'_, P>) -> Markup {
    let minutes = crate::sessions::RECENT_AUTH_SECS / 60;
    html! {
        div.error role="alert" {
            p { "Adding or removing a passkey needs a sign-in from the last " (minutes) " minutes. Sign out, sign in again, and come back to this page." }
            form method="post" action="/console/signout" {
                (page::csrf(web))
                button type="submit" { "Sign out" }
            }
        }
    }
}

// ---- Users and invitations -----------------------------------------------------------------

async fn users<P: Platform>(web: &Web<'_, P>, invite_errors: Option<FieldErrors>) -> Answer {
    let (q, status, role, cursor) = (
        web.q("q").unwrap_or(""),
        web.q("status").unwrap_or(""),
        web.q("role").unwrap_or(""),
        web.q("cursor").unwrap_or(""),
    );
    let path = page::link_with(
        "/v1/tenant/users",
        &[
            ("q", q),
            ("status", status),
            ("role", role),
            ("cursor", cursor),
            ("limit", "25"),
        ],
    );
    let reply = api::call(web, Method::GET, &path, None).await;
    if !reply.ok() && !is_form_error(&reply) {
        return failure(web, &reply);
    }
    let filter_errors = if reply.ok() {
        FieldErrors::none()
    } else {
        reply.errors()
    };
    let items = reply.body["items"].as_array().cloned().unwrap_or_default();
    let next = reply.body["next_cursor"].as_str();
    let invitations = api::call(web, Method::GET, "/v1/tenant/invitations", None).await;
    let pending = invitations.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let status_code = if invite_errors.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        @if let Some(n) = done(web) { (n) }
        form.filters method="get" action="/console/tenant/users" role="search" {
            (page::input("q", "Email starts with", q, "search", &filter_errors, false))
            (page::select("status", "Status", STATUS_FILTER, status, &filter_errors))
            (page::select("role", "Role", ROLE_FILTER, role, &filter_errors))
            button.secondary type="submit" { "Filter" }
        }
        (page::form_errors(&filter_errors, &["q", "status", "role"]))
        (user_table(&items))
        @if let Some(n) = next {
            p { a href=(page::link_with("/console/tenant/users", &[("q", q), ("status", status), ("role", role), ("cursor", n)])) { "Next page" } }
        }
        (invite_form(web, invite_errors.as_ref().unwrap_or(&FieldErrors::none())))
        (invitation_table(web, &pending))
    };
    Answer::Page(status_code, page::frame(web, Section::Users, "Users", body))
}

fn user_table(items: &[Json]) -> Markup {
    html! {
        @if items.is_empty() {
            p.muted { "No user matches." }
        } @else {
            table {
                thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Second factor" } th scope="col" { "Last sign-in" } } }
                tbody {
                    @for u in items {
                        tr {
                            td { a href=(format!("/console/tenant/users/{}", seg(text(u, "id")))) { (u["email"].as_str().unwrap_or(text(u, "pseudonym"))) } }
                            td { (text(u, "role")) }
                            td { (badge(text(u, "status"))) }
                            td { @if u["mfa_enabled"].as_bool() == Some(true) { "yes" } @else { "no" } }
                            td { (page::when(u["last_login_at"].as_i64())) }
                        }
                    }
                }
            }
        }
    }
}

fn invite_form<P: Platform>(web: &Web<'_, P>, errors: &FieldErrors) -> Markup {
    html! {
        section.card aria-labelledby="invite" {
            h2 #invite { "Invite a user" }
            form method="post" action="/console/tenant/users/invite" {
                (page::csrf(web))
                (page::form_errors(errors, &["invite_email", "invite_role"]))
                (page::input("invite_email", "Email", web.text("invite_email"), "email", errors, true))
                (page::select("invite_role", "Role of the new user", ROLES, web.field("invite_role").unwrap_or("user"), errors))
                button type="submit" { "Send invitation" }
            }
        }
    }
}

fn invitation_table<P: Platform>(web: &Web<'_, P>, items: &[Json]) -> Markup {
    html! {
        section.card aria-labelledby="invitations" {
            h2 #invitations { "Invitations" }
            @if items.is_empty() { p.muted { "No pending invitation." } } @else {
                table {
                    thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Expires" } th scope="col" { span.muted { "Action" } } } }
                    tbody {
                        @for i in items {
                            tr {
                                td { (text(i, "email")) }
                                td { (text(i, "role")) }
                                td { (badge(text(i, "status"))) }
                                td { (page::when(i["expires_at"].as_i64())) }
                                td { (page::button_form(web, &format!("/console/tenant/invitations/{}/resend", seg(text(i, "invitation_id"))), &format!("Resend to {}", text(i, "email")), "secondary")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn invite<P: Platform>(web: &Web<'_, P>) -> Answer {
    let body = json!({ "email": web.text("invite_email"), "role": web.text("invite_role") });
    let reply = api::call(web, Method::POST, "/v1/tenant/invitations", Some(&body)).await;
    if reply.ok() {
        return Answer::to("/console/tenant/users?done=invited");
    }
    if is_form_error(&reply) {
        // The form's fields are named apart from the filter's above it.
        let mut errors = reply.errors();
        for (field, _) in &mut errors.fields {
            if field == "email" || field == "role" {
                *field = format!("invite_{field}");
            }
        }
        return users(web, Some(errors)).await;
    }
    failure(web, &reply)
}

async fn resend<P: Platform>(web: &Web<'_, P>, id: &str) -> Answer {
    let path = format!("/v1/tenant/invitations/{}/resend", seg(id));
    let reply = api::call(web, Method::POST, &path, Some(&json!({}))).await;
    if reply.ok() {
        return Answer::to("/console/tenant/users?done=resent");
    }
    failure(web, &reply)
}

async fn user_page<P: Platform>(web: &Web<'_, P>, id: &str, errors: Option<FieldErrors>) -> Answer {
    let reply = api::call(
        web,
        Method::GET,
        &format!("/v1/tenant/users/{}", seg(id)),
        None,
    )
    .await;
    if !reply.ok() {
        return failure(web, &reply);
    }
    let u = reply.body;
    let uid = seg(id);
    let errors = errors.unwrap_or_default();
    let title = u["email"]
        .as_str()
        .unwrap_or(text(&u, "pseudonym"))
        .to_owned();
    let status = text(&u, "status");
    let body = html! {
        p { a href="/console/tenant/users" { "Back to the users" } }
        @if let Some(n) = done(web) { (n) }
        (page::form_errors(&errors, &["role"]))
        section.card aria-labelledby="facts" {
            h2 #facts { "User" }
            dl.facts {
                dt { "Status" } dd { (badge(status)) }
                dt { "Role" } dd { (text(&u, "role")) }
                dt { "Second factor" } dd { @if u["mfa_enabled"].as_bool() == Some(true) { "enrolled" } @else { "none" } }
                dt { "Created" } dd { (page::when(u["created_at"].as_i64())) }
                dt { "Last sign-in" } dd { (page::when(u["last_login_at"].as_i64())) }
            }
        }
        @if status != "deleted" {
            section.card aria-labelledby="role-h" {
                h2 #role-h { "Role" }
                form method="post" action=(format!("/console/tenant/users/{uid}/role")) {
                    (page::csrf(web))
                    (page::select("role", "Role", ROLES, text(&u, "role"), &errors))
                    button type="submit" { "Change role" }
                }
            }
            section.card aria-labelledby="access" {
                h2 #access { "Access" }
                div.actions {
                    @if status == "disabled" {
                        (page::button_form(web, &format!("/console/tenant/users/{uid}/enable"), "Enable user", ""))
                    } @else {
                        (page::button_form(web, &format!("/console/tenant/users/{uid}/disable"), "Disable user", "danger"))
                    }
                    (page::button_form(web, &format!("/console/tenant/users/{uid}/revoke"), "End all sessions", "secondary"))
                }
                form method="post" action=(format!("/console/tenant/users/{uid}/erase")) {
                    (page::csrf(web))
                    p { "Erasing removes " (title) "'s email, name, password, second factors, passkeys and sessions for good. Their audit history stays, under a pseudonym." }
                    div.field {
                        label for="confirm-email" { "Type the email, " (title) ", to erase" }
                        input #confirm-email name="confirm" type="text" autocomplete="off";
                    }
                    button.danger type="submit" { "Erase user" }
                }
            }
        }
    };
    let code = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Answer::Page(code, page::frame(web, Section::Users, &title, body))
}

async fn user_action<P: Platform>(web: &Web<'_, P>, id: &str, action: &str) -> Answer {
    let path = format!("/v1/tenant/users/{}", seg(id));
    let reply = match action {
        "role" => {
            let body = json!({ "role": web.text("role") });
            api::call(web, Method::PATCH, &path, Some(&body)).await
        }
        "disable" | "enable" => {
            let status = if action == "disable" {
                "disabled"
            } else {
                "active"
            };
            api::call(
                web,
                Method::PATCH,
                &path,
                Some(&json!({ "status": status })),
            )
            .await
        }
        "revoke" => api::call(web, Method::POST, &format!("{path}/sessions/revoke"), None).await,
        "erase" => {
            let current = api::call(web, Method::GET, &path, None).await;
            if !current.ok() {
                return failure(web, &current);
            }
            if web.text("confirm") != text(&current.body, "email") {
                let errors = FieldErrors {
                    detail: Some(
                        "Type the user's email exactly to confirm the erasure.".to_owned(),
                    ),
                    fields: Vec::new(),
                };
                return user_page(web, id, Some(errors)).await;
            }
            let reply = api::call(web, Method::DELETE, &path, None).await;
            if reply.ok() {
                return Answer::to("/console/tenant/users?done=erase");
            }
            reply
        }
        _ => return page::not_found(web),
    };
    if reply.ok() {
        return Answer::to(format!("/console/tenant/users/{}?done={action}", seg(id)));
    }
    if is_form_error(&reply) {
        return user_page(web, id, Some(reply.errors())).await;
    }
    failure(web, &reply)
}

// ---- Security, subscription, flags ---------------------------------------------------------

async fn security<P: Platform>(
    web: &Web<'_, P>,
    policy_errors: Option<FieldErrors>,
    sso_errors: Option<FieldErrors>,
) -> Answer {
    let policy = api::call(web, Method::GET, "/v1/tenant/password-policy", None).await;
    if !policy.ok() {
        return failure(web, &policy);
    }
    let sso = if is_owner(web) {
        Some(api::call(web, Method::GET, "/v1/tenant/sso", None).await)
    } else {
        None
    };
    let own_passkeys = match passkeys::section(web).await {
        Ok(markup) => markup,
        Err(answer) => return answer,
    };
    let own_devices = match devices::section(web).await {
        Ok(markup) => markup,
        Err(answer) => return answer,
    };
    let status = if policy_errors.is_some() || sso_errors.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        @if let Some(n) = done(web) { (n) }
        (own_factor(web))
        (own_passkeys)
        (own_devices)
        (policy_form(web, &policy.body, policy_errors.as_ref().unwrap_or(&FieldErrors::none())))
        @if let Some(sso) = sso {
            (sso_form(web, &sso, sso_errors.as_ref().unwrap_or(&FieldErrors::none())))
        } @else {
            section.card { h2 { "Single sign-on" } p.muted { "Only the tenant's owner configures single sign-on." } }
        }
    };
    Answer::Page(
        status,
        page::frame(web, Section::Security, "Security", body),
    )
}

/// The signed-in user's own authenticator app.
fn own_factor<P: Platform>(web: &Web<'_, P>) -> Markup {
    html! {
        section.card aria-labelledby="own" {
            h2 #own { "Your authenticator app" }
            p { "A time-based one-time code (TOTP) from an app such as 1Password, Google Authenticator or Aegis, asked at every sign-in." }
            (page::button_form(web, "/console/tenant/security/totp", "Set up an authenticator app", "secondary"))
        }
    }
}

/// `POST /console/tenant/security/totp`: a new secret, shown with the form that confirms it.
async fn totp_enroll<P: Platform>(web: &Web<'_, P>) -> Answer {
    let reply = api::call(web, Method::POST, "/v1/auth/mfa/totp", Some(&json!({}))).await;
    if reply.status == 403 {
        return Answer::to("/console/tenant/security?done=reauth");
    }
    if !reply.ok() {
        return failure(web, &reply);
    }
    totp_confirm_page(
        web,
        text(&reply.body, "secret"),
        text(&reply.body, "otpauth_uri"),
        &FieldErrors::none(),
    )
}

fn totp_confirm_page<P: Platform>(
    web: &Web<'_, P>,
    secret: &str,
    uri: &str,
    errors: &FieldErrors,
) -> Answer {
    let body = html! {
        section.card {
            p { "Add this key to your authenticator app (or open the link on the device that has it), then type the code it shows." }
            p { "Key: " code #totp-secret data-copy { (secret) } }
            p { a href=(uri) { "Open in an authenticator app" } }
            form method="post" action="/console/tenant/security/totp/confirm" {
                (page::csrf(web))
                input type="hidden" name="secret" value=(secret);
                input type="hidden" name="uri" value=(uri);
                (page::form_errors(errors, &["code"]))
                (page::input("code", "Code from the app", "", "text", errors, true))
                button type="submit" { "Turn on" }
            }
        }
    };
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Answer::Page(
        status,
        page::frame(web, Section::Security, "Set up an authenticator app", body),
    )
}

/// `POST /console/tenant/security/totp/confirm`: turns the factor on; the recovery codes are
/// shown this once.
async fn totp_confirm<P: Platform>(web: &Web<'_, P>) -> Answer {
    let body = json!({ "code": web.text("code") });
    let reply = api::call(web, Method::POST, "/v1/auth/mfa/totp/confirm", Some(&body)).await;
    if reply.ok() {
        let codes: Vec<&str> = reply.body["recovery_codes"]
            .as_array()
            .map(|c| c.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let page_body = html! {
            (page::message("notice", "Your authenticator app is on: sign-ins ask for its code from now on."))
            section.card {
                h2 { "Recovery codes" }
                p { "Each code signs you in once without the app. Keep them somewhere safe: they are shown this once." }
                ul #recovery-codes { @for c in &codes { li { code { (c) } } } }
            }
        };
        return Answer::page(page::frame(
            web,
            Section::Security,
            "Authenticator app",
            page_body,
        ));
    }
    if is_form_error(&reply) || reply.status == 401 && reply.body.get("type").is_some() {
        let mut errors = reply.errors();
        if errors.fields.is_empty() {
            errors
                .fields
                .push(("code".to_owned(), "is not the current code".to_owned()));
            errors.detail = None;
        }
        return totp_confirm_page(web, web.text("secret"), web.text("uri"), &errors);
    }
    failure(web, &reply)
}

fn checkbox(name: &str, label: &str, checked: bool) -> Markup {
    html! { div.field { label { input type="checkbox" name=(name) value="true" checked[checked]; " " (label) } } }
}

fn policy_form<P: Platform>(web: &Web<'_, P>, p: &Json, errors: &FieldErrors) -> Markup {
    let num = |k: &str| p[k].as_i64().map(|n| n.to_string()).unwrap_or_default();
    let flag = |k: &str| p[k].as_bool() == Some(true);
    html! {
        section.card aria-labelledby="policy" {
            h2 #policy { "Password policy" }
            form method="post" action="/console/tenant/security/password-policy" {
                (page::csrf(web))
                (page::form_errors(errors, &["min_length", "max_age_days", "history_count"]))
                (page::input("min_length", "Minimum length", &num("min_length"), "number", errors, true))
                (checkbox("require_upper", "Require an upper-case letter", flag("require_upper")))
                (checkbox("require_lower", "Require a lower-case letter", flag("require_lower")))
                (checkbox("require_digit", "Require a digit", flag("require_digit")))
                (checkbox("require_symbol", "Require a symbol", flag("require_symbol")))
                (checkbox("require_mfa", "Require a second factor for every user", flag("require_mfa")))
                (page::input("max_age_days", "Maximum age in days (empty: never expires)", &num("max_age_days"), "number", errors, false))
                (page::input("history_count", "Passwords remembered (no reuse)", &num("history_count"), "number", errors, true))
                button type="submit" { "Save password policy" }
            }
        }
    }
}

fn number_field(web_value: &str) -> Json {
    web_value
        .trim()
        .parse::<i64>()
        .map_or(Json::String(web_value.trim().to_owned()), Json::from)
}

async fn policy_save<P: Platform>(web: &Web<'_, P>) -> Answer {
    let max_age = web.text("max_age_days");
    let body = json!({
        "min_length": number_field(web.text("min_length")),
        "require_upper": web.field("require_upper").is_some(),
        "require_lower": web.field("require_lower").is_some(),
        "require_digit": web.field("require_digit").is_some(),
        "require_symbol": web.field("require_symbol").is_some(),
        "require_mfa": web.field("require_mfa").is_some(),
        "max_age_days": if max_age.is_empty() { Json::Null } else { number_field(max_age) },
        "history_count": number_field(web.text("history_count")),
    });
    let reply = api::call(web, Method::PUT, "/v1/tenant/password-policy", Some(&body)).await;
    if reply.ok() {
        return Answer::to("/console/tenant/security?done=policy");
    }
    if is_form_error(&reply) {
        return security(web, Some(reply.errors()), None).await;
    }
    failure(web, &reply)
}

fn sso_form<P: Platform>(web: &Web<'_, P>, sso: &Reply, errors: &FieldErrors) -> Markup {
    let c = if sso.ok() {
        sso.body.clone()
    } else {
        json!({})
    };
    let redirect = format!("{}/v1/auth/sso/callback", web.origin);
    html! {
        section.card aria-labelledby="sso" {
            h2 #sso { "Single sign-on" }
            p { "Register " code { (redirect) } " as the redirect URI at your identity provider. Saving checks the provider's discovery document." }
            form method="post" action="/console/tenant/security/sso" {
                (page::csrf(web))
                (page::form_errors(errors, &["issuer_url", "client_id", "client_secret", "jit_role"]))
                (page::input("issuer_url", "Issuer URL", text(&c, "issuer_url"), "url", errors, true))
                (page::input("client_id", "Client id", text(&c, "client_id"), "text", errors, true))
                (page::input("client_secret", if c["client_secret_set"].as_bool() == Some(true) { "Client secret (set; leave empty to keep it)" } else { "Client secret" }, "", "password", errors, false))
                (checkbox("enabled", "Enabled", c["enabled"].as_bool() != Some(false)))
                (checkbox("allow_jit", "Create accounts on first sign-in", c["allow_jit"].as_bool() == Some(true)))
                button type="submit" { "Save single sign-on" }
            }
        }
    }
}

async fn sso_save<P: Platform>(web: &Web<'_, P>) -> Answer {
    let mut body = json!({
        "issuer_url": web.text("issuer_url"), "client_id": web.text("client_id"),
        "enabled": web.field("enabled").is_some(), "allow_jit": web.field("allow_jit").is_some(),
    });
    if !web.text("client_secret").is_empty() {
        body["client_secret"] = json!(web.text("client_secret"));
    }
    let reply = api::call(web, Method::PUT, "/v1/tenant/sso", Some(&body)).await;
    if reply.ok() {
        return Answer::to("/console/tenant/security?done=sso");
    }
    if is_form_error(&reply) || reply.status == 503 {
        return security(web, None, Some(reply.errors())).await;
    }
    failure(web, &reply)
}

async fn tenant_record<P: Platform>(web: &Web<'_, P>) -> Option<String> {
    let me = api::call(web, Method::GET, "/v1/tenant", None).await;
    me.body
        .get("plan")
        .and_then(Json::as_str)
        .map(str::to_owned)
}

/// `GET /console/tenant/subscription`: the plan (the owner changes it) and the billing usage
/// per day.
async fn subscription<P: Platform>(web: &Web<'_, P>, errors: Option<FieldErrors>) -> Answer {
    let plan = tenant_record(web).await.unwrap_or_default();
    let period = usage::Period::read(web);
    let usage = match usage::read(web, &period).await {
        Ok(u) => u,
        Err(answer) => return answer,
    };
    let refused = errors.is_some() || matches!(usage, usage::Usage::Refused(_));
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let errors = errors.unwrap_or_default();
    let body = html! {
        @if let Some(n) = done(web) { (n) }
        section.card aria-labelledby="plan" {
            h2 #plan { "Plan" }
            @if !plan.is_empty() { p { "Current plan: " strong { (plan) } } }
            @if is_owner(web) {
                form method="post" action="/console/tenant/subscription" {
                    (page::csrf(web))
                    (page::form_errors(&errors, &["plan"]))
                    (page::select("plan", "Plan", PLANS, &plan, &errors))
                    button type="submit" { "Change plan" }
                }
            } @else {
                p.muted { "Only the tenant's owner changes the plan." }
            }
        }
        (usage::section(web, &period, &usage))
    };
    Answer::Page(
        status,
        page::frame(web, Section::Subscription, "Subscription", body),
    )
}

async fn plan_save<P: Platform>(web: &Web<'_, P>) -> Answer {
    let body = json!({ "plan": web.text("plan") });
    let reply = api::call(web, Method::PATCH, "/v1/tenant/plan", Some(&body)).await;
    if reply.ok() {
        return Answer::to("/console/tenant/subscription?done=plan");
    }
    if is_form_error(&reply) {
        return subscription(web, Some(reply.errors())).await;
    }
    failure(web, &reply)
}

async fn flags<P: Platform>(web: &Web<'_, P>) -> Answer {
    let reply = api::call(web, Method::GET, "/v1/tenant/flags", None).await;
    if !reply.ok() {
        return failure(web, &reply);
    }
    let items = reply.body["flags"].as_array().cloned().unwrap_or_default();
    let body = html! {
        p.muted { "Flags are set by the platform's operators; this is what your apps are served." }
        @if items.is_empty() { p.muted { "No flags." } } @else {
            table {
                thead { tr { th scope="col" { "Key" } th scope="col" { "Type" } th scope="col" { "Value" } th scope="col" { "Enabled" } th scope="col" { "Rules" } } }
                tbody {
                    @for f in &items {
                        tr {
                            td { (text(f, "key")) }
                            td { (text(f, "type")) }
                            td { code { (f["value"].to_string()) } }
                            td { @if f["enabled"].as_bool() == Some(true) { "yes" } @else { "no" } }
                            td { (f["rules"].as_array().map_or(0, Vec::len)) }
                        }
                    }
                }
            }
        }
    };
    Answer::page(page::frame(web, Section::Flags, "Flags", body))
}
