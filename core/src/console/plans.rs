//! Plan default flags (FR-FLAG-001): the flags every tenant of a plan starts with, until the
//! tenant's own value overrides them. Operators set them; auditors read them.

use ::http::{Method, StatusCode};
use maud::{html, Markup};
use serde_json::{json, Map, Value as Json};

use super::api::{self, seg, FieldErrors};
use super::page::{self, Section};
use super::{Answer, Web};
use crate::ports::Platform;

const PLANS: &[&str] = &["free", "pro", "enterprise"];
const TYPES: &[(&str, &str)] = &[
    ("boolean", "boolean"),
    ("string", "string"),
    ("number", "number"),
    ("json", "json"),
];

/// Dispatches `/console/plans/...` (`rest`: the path after `plans`).
pub(super) async fn route<P: Platform>(web: &Web<'_, P>, rest: &[&str]) -> Answer {
    let get = web.method == Method::GET || web.method == Method::HEAD;
    match (rest, get) {
        ([], true) => list(web, None).await,
        ([plan, "flags"], false) => save(web, plan).await,
        ([plan, "flags", key, "delete"], false) => delete(web, plan, key).await,
        _ => page::not_found(web),
    }
}

fn is_operator<P: Platform>(web: &Web<'_, P>) -> bool {
    web.session.as_ref().is_some_and(|s| s.role == "operator")
}

/// Every plan's defaults, with the form that sets one (`errors`: of the form sent for `plan`).
async fn list<P: Platform>(web: &Web<'_, P>, errors: Option<(&str, FieldErrors)>) -> Answer {
    let mut sections = Vec::new();
    for plan in PLANS {
        let reply = api::call(web, Method::GET, &format!("/v1/plans/{plan}/flags"), None).await;
        if !reply.ok() {
            return page::unavailable(web);
        }
        let flags = reply.body["flags"].as_array().cloned().unwrap_or_default();
        let form_errors = match &errors {
            Some((p, e)) if p == plan => Some(e),
            _ => None,
        };
        sections.push(plan_section(web, plan, &flags, form_errors));
    }
    let status = if errors.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        @if web.q("done") == Some("saved") { (page::message("notice", "Default saved: every tenant of the plan without its own value is served it within a second.")) }
        @if web.q("done") == Some("deleted") { (page::message("notice", "Default deleted.")) }
        p { "A tenant is served its plan's default for a flag until an operator sets the tenant's own value." }
        @for s in &sections { (s) }
    };
    Answer::Page(
        status,
        page::frame(web, Section::Plans, "Plan defaults", body),
    )
}

fn plan_section<P: Platform>(
    web: &Web<'_, P>,
    plan: &str,
    flags: &[Json],
    errors: Option<&FieldErrors>,
) -> Markup {
    let none = FieldErrors::none();
    let errors = errors.unwrap_or(&none);
    let sent = errors.any();
    let id = format!("plan-{plan}");
    let field = |name: &str, dflt: &str| {
        if sent {
            web.text(name).to_owned()
        } else {
            dflt.to_owned()
        }
    };
    html! {
        section.card aria-labelledby=(id) {
            h2 id=(id) { "Plan " (plan) }
            @if flags.is_empty() { p.muted { "No defaults." } } @else {
                table {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Type" } th scope="col" { "Value" } th scope="col" { "Enabled" } th scope="col" { "Updated" } th scope="col" { span.muted { "Action" } } } }
                    tbody {
                        @for f in flags {
                            @let key = f["key"].as_str().unwrap_or("");
                            tr {
                                td { (key) }
                                td { (f["type"].as_str().unwrap_or("")) }
                                td { code { (f["value"].to_string()) } }
                                td { @if f["enabled"].as_bool() == Some(true) { "yes" } @else { "no" } }
                                td { (page::when(f["updated_at"].as_i64())) }
                                td { @if is_operator(web) {
                                    (page::button_form(web, &format!("/console/plans/{plan}/flags/{}/delete", seg(key)), &format!("Delete {key} from {plan}"), "danger"))
                                } }
                            }
                        }
                    }
                }
            }
            @if is_operator(web) {
                h3 { "Set a default of plan " (plan) }
                form method="post" action=(format!("/console/plans/{plan}/flags")) {
                    (page::csrf(web))
                    (page::form_errors(errors, &["key", "type", "value"]))
                    (labelled_input(plan, "key", "Key", &field("key", ""), errors))
                    div.field {
                        label for=(format!("{plan}-type")) { "Type" }
                        select id=(format!("{plan}-type")) name="type" {
                            @for (v, t) in TYPES { option value=(v) selected[field("type", "boolean") == *v] { (t) } }
                        }
                    }
                    (labelled_input(plan, "value", "Value (JSON)", &field("value", "false"), errors))
                    div.field { label { input type="checkbox" name="enabled" value="true" checked[!sent || web.field("enabled").is_some()]; " Enabled" } }
                    button type="submit" { "Save default" }
                }
            }
        }
    }
}

/// An input whose id is unique on the page (one form per plan).
fn labelled_input(
    plan: &str,
    name: &str,
    label: &str,
    value: &str,
    errors: &FieldErrors,
) -> Markup {
    let id = format!("{plan}-{name}");
    let error = errors.field(name);
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type="text" value=(value) aria-invalid=[error.as_ref().map(|_| "true")];
            @if let Some(e) = error { p.field-error { (e) } }
        }
    }
}

async fn save<P: Platform>(web: &Web<'_, P>, plan: &str) -> Answer {
    if !PLANS.contains(&plan) {
        return page::not_found(web);
    }
    let kind = web.text("type");
    let raw = web.text("value");
    let value = match serde_json::from_str::<Json>(raw) {
        Ok(v) => v,
        Err(_) if kind == "string" => Json::String(raw.to_owned()),
        Err(_) => {
            let errors = FieldErrors {
                detail: None,
                fields: vec![("value".into(), "is not JSON".into())],
            };
            return list(web, Some((plan, errors))).await;
        }
    };
    let mut body = Map::new();
    body.insert("type".into(), json!(kind));
    body.insert("value".into(), value);
    body.insert("enabled".into(), json!(web.field("enabled").is_some()));
    let key = web.text("key");
    let path = format!("/v1/plans/{plan}/flags/{}", seg(key));
    let reply = api::call(web, Method::PUT, &path, Some(&Json::Object(body))).await;
    if reply.ok() {
        return Answer::to("/console/plans?done=saved");
    }
    if matches!(reply.status, 400 | 404 | 409 | 422) {
        let mut errors = reply.errors();
        if key.is_empty() {
            errors.fields.push(("key".into(), "is required".into()));
        }
        return list(web, Some((plan, errors))).await;
    }
    page::error(web, StatusCode::FORBIDDEN, "Your role does not allow this.")
}

async fn delete<P: Platform>(web: &Web<'_, P>, plan: &str, key: &str) -> Answer {
    let path = format!("/v1/plans/{}/flags/{}", seg(plan), seg(key));
    let reply = api::call(web, Method::DELETE, &path, None).await;
    if reply.ok() || reply.status == 404 {
        return Answer::to("/console/plans?done=deleted");
    }
    page::error(web, StatusCode::FORBIDDEN, "Your role does not allow this.")
}
