//! The signed-in owner's or admin's own passkeys on the security page (IF-TENANT-CONSOLE,
//! NFR-SEC-003): listed from `GET /v1/auth/webauthn/credentials`, removed one at a time after a
//! confirmation page, and added through the API's registration ceremony.
//!
//! Adding one is the only step that needs the browser's WebAuthn API, so the only one that
//! needs a script (`/console/assets/passkey.js`: the policy allows no inline script). "Add a
//! passkey" asks the API for creation options on the server; the page that follows carries
//! them in the form's `data-options`, the script hands them to `navigator.credentials.create()`
//! and posts the new credential back in a hidden field, and the console sends it to
//! `.../register/verify`. Listing and removing are plain forms and work without the script.
//!
//! The API takes the ceremony's origin from `WEBAUTHN_ORIGIN` (in development, from the
//! console's own origin, which its in-process requests carry), so a deployment whose
//! `WEBAUTHN_ORIGIN` is not the console's `PUBLIC_BASE_URL` cannot add passkeys here: the page
//! says so rather than letting the browser's ceremony fail. Every change needs a sign-in from
//! the last few minutes (the API's 403 `reauthentication_required`), which the page explains.

use ::http::{Method, StatusCode};
use maud::{html, Markup};
use serde_json::{json, Value as Json};

use super::super::api::{self, seg, Reply};
use super::super::page::{self, Section};
use super::super::{Answer, Web, PREFIX};
use super::{failure, text};
use crate::ports::Platform;

/// Where the security page is, with a `done` message.
fn back(done: &str) -> Answer {
    Answer::to(format!("{PREFIX}/tenant/security?done={done}"))
}

/// Whether the API refused because the sign-in is too old for a security change.
fn needs_reauthentication(reply: &Reply) -> bool {
    reply.status == 403
        && reply.body.get("reason").and_then(Json::as_str) == Some("reauthentication_required")
}

/// A passkey's label: its name, or its algorithm and creation day.
fn label(c: &Json) -> String {
    match c["name"].as_str().filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => format!(
            "Unnamed {} passkey of {}",
            text(c, "algorithm"),
            page::when(c["created_at"].as_i64())
        ),
    }
}

/// The user's passkeys, oldest first.
async fn list<P: Platform>(web: &Web<'_, P>) -> Result<Vec<Json>, Answer> {
    let reply = api::call(web, Method::GET, "/v1/auth/webauthn/credentials", None).await;
    if !reply.ok() {
        return Err(failure(web, &reply));
    }
    Ok(reply.body["items"].as_array().cloned().unwrap_or_default())
}

/// The security page's passkey card: the list, each with its remove link, and "Add a passkey".
pub(super) async fn section<P: Platform>(web: &Web<'_, P>) -> Result<Markup, Answer> {
    let items = list(web).await?;
    Ok(html! {
        section.card aria-labelledby="passkeys" {
            h2 #passkeys { "Your passkeys" }
            p { "A passkey uses your device's screen lock or a security key. Once you have one, sign-in asks for it after your password, as a second factor (or for your authenticator app's code, if you set one up)." }
            @if items.is_empty() {
                p.muted #no-passkeys { "You have no passkey yet." }
            } @else {
                table #passkey-list {
                    thead { tr {
                        th scope="col" { "Passkey" } th scope="col" { "Added" }
                        th scope="col" { "Last used" } th scope="col" { span.muted { "Action" } }
                    } }
                    tbody {
                        @for c in &items {
                            tr {
                                td { (label(c)) }
                                td { (page::when(c["created_at"].as_i64())) }
                                td { (page::when(c["last_used_at"].as_i64())) }
                                td { a href=(format!("{PREFIX}/tenant/security/passkeys/{}", seg(text(c, "id")))) aria-label=(format!("Remove {}", label(c))) { "Remove" } }
                            }
                        }
                    }
                }
            }
            div.actions {
                (page::button_form(web, "/console/tenant/security/passkeys/new", "Add a passkey", "secondary"))
            }
        }
    })
}

/// `POST /console/tenant/security/passkeys/new`: creation options from the API, on the page
/// whose form the script completes.
pub(super) async fn begin<P: Platform>(web: &Web<'_, P>) -> Answer {
    let reply = api::call(
        web,
        Method::POST,
        "/v1/auth/webauthn/register/options",
        Some(&json!({})),
    )
    .await;
    if needs_reauthentication(&reply) {
        return back("reauth-passkey");
    }
    if reply.status == 503 {
        return refused_page(
            web,
            "Passkeys are not set up on this deployment: it needs WEBAUTHN_ORIGIN and WEBAUTHN_RP_ID.",
        );
    }
    if !reply.ok() {
        return failure(web, &reply);
    }
    let origin = text(&reply.body, "origin");
    if origin != web.origin {
        let message = format!(
            "Passkeys are registered on {origin} (WEBAUTHN_ORIGIN), not on this console's origin, {}: add them there, or set WEBAUTHN_ORIGIN to this origin.",
            web.origin
        );
        return refused_page(web, &message);
    }
    Answer::page(page::frame(
        web,
        Section::Security,
        "Add a passkey",
        create_form(web, &reply.body),
    ))
}

/// The form the script fills: the options in `data-options`, the flow, an optional name and
/// the hidden credential field.
fn create_form<P: Platform>(web: &Web<'_, P>, options: &Json) -> Markup {
    let rp_id = options["publicKey"]["rp"]["id"].as_str().unwrap_or("");
    html! {
        section.card {
            p { "Your browser will ask you to create the passkey with your device's screen lock or a security key." }
            @if rp_id.parse::<std::net::IpAddr>().is_ok() {
                (page::message("error", &format!("Browsers create passkeys only for a domain name, not an IP address such as {rp_id}: open the console at a name (on this machine, localhost) to add one.")))
            }
            form #passkey-form method="post" action="/console/tenant/security/passkeys"
                data-options=(options["publicKey"].to_string()) {
                (page::csrf(web))
                input type="hidden" name="flow" value=(text(options, "flow"));
                input #passkey-credential type="hidden" name="credential" value="";
                div.field {
                    label for="passkey-name" { "Name of the passkey (optional)" }
                    input #passkey-name name="name" type="text" maxlength="64" autocomplete="off"
                        aria-describedby="passkey-name-hint";
                    p.muted #passkey-name-hint { "For telling your passkeys apart, as “Work laptop”." }
                }
                p #passkey-note role="status" { "Adding a passkey needs JavaScript and a browser that supports passkeys." }
                div.actions {
                    button #passkey-create type="submit" hidden { "Create the passkey" }
                    a href="/console/tenant/security" { "Cancel" }
                }
            }
        }
        script src="/console/assets/passkey.js" defer {}
    }
}

/// A page saying why no passkey can be added, with the way back.
fn refused_page<P: Platform>(web: &Web<'_, P>, message: &str) -> Answer {
    let body = html! {
        (page::message("error", message))
        p { a href="/console/tenant/security" { "Back to security" } }
    };
    Answer::Page(
        StatusCode::UNPROCESSABLE_ENTITY,
        page::frame(web, Section::Security, "Add a passkey", body),
    )
}

/// `POST /console/tenant/security/passkeys`: the browser's new credential, sent to the API.
pub(super) async fn finish<P: Platform>(web: &Web<'_, P>) -> Answer {
    let Ok(credential) = serde_json::from_str::<Json>(web.text("credential")) else {
        return retry_page(
            web,
            "Your browser did not create a passkey: adding one needs JavaScript and a browser that supports passkeys.",
        );
    };
    let name = web.text("name");
    let body = json!({
        "flow": web.text("flow"),
        "credential": credential,
        "name": if name.is_empty() { Json::Null } else { json!(name) },
    });
    let reply = api::call(
        web,
        Method::POST,
        "/v1/auth/webauthn/register/verify",
        Some(&body),
    )
    .await;
    if reply.ok() {
        return back("passkey-added");
    }
    if needs_reauthentication(&reply) {
        return back("reauth-passkey");
    }
    if matches!(reply.status, 400 | 409 | 422) {
        let errors = reply.errors();
        let detail = errors
            .detail
            .clone()
            .or_else(|| errors.fields.first().map(|(f, m)| format!("{f} {m}.")))
            .unwrap_or_default();
        return retry_page(web, &format!("The passkey was not added. {detail}"));
    }
    failure(web, &reply)
}

/// The ceremony failed: why, and a button to start again with fresh options.
fn retry_page<P: Platform>(web: &Web<'_, P>, message: &str) -> Answer {
    let body = html! {
        (page::message("error", message))
        div.actions {
            (page::button_form(web, "/console/tenant/security/passkeys/new", "Try again", ""))
            a href="/console/tenant/security" { "Back to security" }
        }
    };
    Answer::Page(
        StatusCode::UNPROCESSABLE_ENTITY,
        page::frame(web, Section::Security, "Add a passkey", body),
    )
}

/// `GET /console/tenant/security/passkeys/{id}`: asks before removing the passkey.
pub(super) async fn confirm_remove<P: Platform>(web: &Web<'_, P>, id: &str) -> Answer {
    let items = match list(web).await {
        Ok(items) => items,
        Err(answer) => return answer,
    };
    let Some(c) = items.iter().find(|c| text(c, "id") == id) else {
        return page::not_found(web);
    };
    let name = label(c);
    let body = html! {
        section.card {
            p { "Remove " strong { (name) } "? You can no longer sign in with it; the device keeps it until you delete it there too." }
            div.actions {
                (page::button_form(web, &format!("{PREFIX}/tenant/security/passkeys/{}/remove", seg(id)), "Remove the passkey", "danger"))
                a href="/console/tenant/security" { "Keep it" }
            }
        }
    };
    Answer::page(page::frame(
        web,
        Section::Security,
        "Remove a passkey",
        body,
    ))
}

/// `POST /console/tenant/security/passkeys/{id}/remove`.
pub(super) async fn remove<P: Platform>(web: &Web<'_, P>, id: &str) -> Answer {
    let path = format!("/v1/auth/webauthn/credentials/{}", seg(id));
    let reply = api::call(web, Method::DELETE, &path, None).await;
    if reply.ok() {
        return back("passkey-removed");
    }
    if needs_reauthentication(&reply) {
        return back("reauth-passkey");
    }
    failure(web, &reply)
}
