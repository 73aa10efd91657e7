//! The signed-in user's own devices on the security page (IF-TENANT-CONSOLE, NFR-SEC-006):
//! the devices their sign-ins completed from, from `GET /v1/me/devices`, each with a form that
//! forgets it (`DELETE /v1/me/devices/{id}`), after which a sign-in from it counts as from a
//! new device. Forgetting a device opens nothing, so it needs no confirmation page.

use ::http::Method;
use maud::{html, Markup};
use serde_json::Value as Json;

use super::super::api::{self, seg};
use super::super::page;
use super::super::{Answer, Web, PREFIX};
use super::{failure, text};
use crate::ports::Platform;

/// The security page's card of the user's devices, most recently seen first.
pub(super) async fn section<P: Platform>(web: &Web<'_, P>) -> Result<Markup, Answer> {
    let reply = api::call(web, Method::GET, "/v1/me/devices", None).await;
    if !reply.ok() {
        return Err(failure(web, &reply));
    }
    let items = reply.body["items"].as_array().cloned().unwrap_or_default();
    Ok(html! {
        section.card aria-labelledby="devices" {
            h2 #devices { "Your devices" }
            p { "The browsers and apps your sign-ins completed from. A sign-in from a device that is not listed counts as a new device, which the tenant's risk policy may ask more of. Remove one you no longer use or do not recognise; a password reset removes them all." }
            @if items.is_empty() {
                p.muted #no-devices { "No device is known yet." }
            } @else {
                table #device-list {
                    thead { tr {
                        th scope="col" { "Device" } th scope="col" { "First sign-in" }
                        th scope="col" { "Latest sign-in" } th scope="col" { span.muted { "Action" } }
                    } }
                    tbody {
                        @for d in &items {
                            (row(web, d))
                        }
                    }
                }
            }
        }
    })
}

fn row<P: Platform>(web: &Web<'_, P>, d: &Json) -> Markup {
    let label = text(d, "label");
    html! {
        tr {
            td { (label) }
            td { (page::when(d["created_at"].as_i64())) }
            td { (page::when(d["last_seen_at"].as_i64())) }
            td {
                form.inline method="post" action=(format!("{PREFIX}/tenant/security/devices/{}/remove", seg(text(d, "id")))) {
                    (page::csrf(web))
                    button.secondary type="submit" aria-label=(format!("Remove {label}")) { "Remove" }
                }
            }
        }
    }
}

/// `POST /console/tenant/security/devices/{id}/remove`: another user's device, or one already
/// removed, is the API's 404.
pub(super) async fn remove<P: Platform>(web: &Web<'_, P>, id: &str) -> Answer {
    let path = format!("/v1/me/devices/{}", seg(id));
    let reply = api::call(web, Method::DELETE, &path, None).await;
    if reply.ok() {
        return Answer::to(format!("{PREFIX}/tenant/security?done=device-removed"));
    }
    failure(web, &reply)
}
