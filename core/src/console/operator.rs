//! The operator console (IF-OPS-CONSOLE): tenants, their flags, apps and keys, signing keys and
//! system health. Auditors see the same pages without their forms; the API refuses their
//! writes whatever they send.

use ::http::{Method, StatusCode};
use maud::{html, Markup};
use serde_json::{json, Map, Value as Json};

use super::api::{self, seg, FieldErrors, Reply};
use super::page::{self, text, Section};
use super::{Answer, Web};
use crate::events::csv::records;
use crate::flags::eval::{self, Resolution};
use crate::flags::model::Flag;
use crate::kernel::future::join2;
use crate::ports::{Clock as _, Platform};

/// The plans a tenant can be on (the `plans` table's seed).
const PLANS: &[(&str, &str)] = &[
    ("free", "Free"),
    ("pro", "Pro"),
    ("enterprise", "Enterprise"),
];
const STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("active", "Active"),
    ("suspended", "Suspended"),
    ("pending_deletion", "Pending deletion"),
];
const SCOPES: &[&str] = &[
    "flags:read",
    "bill:write",
    "bill:read",
    "log:write",
    "token:introspect",
];

/// Dispatches a platform session's page (`rest`: the path after `/console/`).
pub(super) async fn route<P: Platform>(web: &mut Web<'_, P>, rest: &[&str]) -> Answer {
    let get = web.method == Method::GET || web.method == Method::HEAD;
    let rest: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (r.as_slice(), get) {
        (["tenants"], true) => tenant_list(web).await,
        (["tenants"], false) => tenant_create(web).await,
        (["tenants", "new"], true) => Answer::page(tenant_form(web, &FieldErrors::none())),
        (["tenants", id], true) => tenant_page(web, id, None).await,
        (["tenants", id], false) => tenant_update(web, id).await,
        (["tenants", id, "flags"], false) => flag_save(web, id, None).await,
        (["tenants", id, "apps"], false) => {
            let app = web.text("app_id").to_owned();
            tenant_app_change(web, id, &app, true).await
        }
        (["tenants", id, "apps", app, "enable"], false) => {
            tenant_app_change(web, id, app, true).await
        }
        (["tenants", id, "apps", app, "disable"], false) => {
            tenant_app_change(web, id, app, false).await
        }
        (["tenants", id, action], false) => tenant_action(web, id, action).await,
        (["tenants", id, "flags", key], true) => flag_page(web, id, key, None, None).await,
        (["tenants", id, "flags", key, "rules", "add"], false) => {
            rule_change(web, id, key, None).await
        }
        (["tenants", id, "flags", key, "rules", i, "remove"], false) => match i.parse::<usize>() {
            Ok(i) => rule_change(web, id, key, Some(i)).await,
            Err(_) => page::not_found(web),
        },
        (["tenants", id, "flags", key], false) => flag_save(web, id, Some(key)).await,
        (["tenants", id, "flags", key, "delete"], false) => flag_delete(web, id, key).await,
        (["tenants", id, "flags", key, "preview"], false) => flag_preview(web, id, key).await,
        (["apps"], true) => app_list(web, None).await,
        (["apps"], false) => app_register(web).await,
        (["apps", id], true) => app_page(web, id, None).await,
        (["apps", id], false) => app_update(web, id).await,
        (["apps", id, "keys"], false) => key_issue(web, id).await,
        (["apps", id, "keys", key, "revoke"], false) => key_revoke(web, id, key).await,
        (["signing-keys"], true) => signing_keys(web, None).await,
        (["signing-keys", "rotate"], false) => signing_key_rotate(web).await,
        (["health"], true) => health(web).await,
        (["health", "panel"], true) => health_panel(web).await,
        _ => page::not_found(web),
    }
}

fn is_operator<P: Platform>(web: &Web<'_, P>) -> bool {
    web.session.as_ref().is_some_and(|s| s.role == "operator")
}

/// An API answer that is not a success and not a form error: the page for it.
fn failure<P: Platform>(web: &Web<'_, P>, reply: &Reply) -> Answer {
    page::failure(
        web,
        reply,
        Some("Your role does not allow this. Auditors can look but not change anything."),
    )
}

fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("status status-{status}")) { (status.replace('_', " ")) } }
}

// ---- Tenants -------------------------------------------------------------------------------

async fn tenant_list<P: Platform>(web: &Web<'_, P>) -> Answer {
    let q = web.q("q").unwrap_or("");
    let status = web.q("status").unwrap_or("");
    let cursor = web.q("cursor").unwrap_or("");
    let path = page::link_with(
        "/v1/tenants",
        &[
            ("q", q),
            ("status", status),
            ("cursor", cursor),
            ("limit", "25"),
        ],
    );
    let reply = api::call(web, Method::GET, &path, None).await;
    if !reply.ok() {
        if reply.status == 400 || reply.status == 422 {
            return Answer::page(tenant_table(
                web,
                q,
                status,
                &[],
                None,
                Some(&reply.errors()),
            ));
        }
        return failure(web, &reply);
    }
    let items = reply.body["items"].as_array().cloned().unwrap_or_default();
    let next = reply.body["next_cursor"].as_str();
    Answer::page(tenant_table(web, q, status, &items, next, None))
}

fn tenant_table<P: Platform>(
    web: &Web<'_, P>,
    q: &str,
    status: &str,
    items: &[Json],
    next: Option<&str>,
    errors: Option<&FieldErrors>,
) -> Markup {
    let none = FieldErrors::none();
    let errors = errors.unwrap_or(&none);
    let body = html! {
        @if is_operator(web) {
            p { a.button href="/console/tenants/new" { "New tenant" } }
        }
        form.filters method="get" action="/console/tenants" role="search" {
            (page::input("q", "Search by name or domain", q, "search", errors, false))
            (page::select("status", "Status", STATUSES, status, errors))
            button.secondary type="submit" { "Filter" }
        }
        (page::form_errors(errors, &["q", "status"]))
        @if items.is_empty() {
            p.muted { "No tenant matches." }
        } @else {
            table {
                caption.muted { "Tenants" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Domain" } th scope="col" { "Plan" } th scope="col" { "Status" } th scope="col" { "Created" } } }
                tbody {
                    @for t in items {
                        tr {
                            td { a href=(format!("/console/tenants/{}", seg(text(t, "id")))) { (text(t, "name")) } }
                            td { (text(t, "domain")) }
                            td { (text(t, "plan")) }
                            td { (status_badge(text(t, "status"))) }
                            td { (page::when(t["created_at"].as_i64())) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next {
            p { a href=(page::link_with("/console/tenants", &[("q", q), ("status", status), ("cursor", n)])) { "Next page" } }
        }
    };
    page::frame(web, Section::Tenants, "Tenants", body)
}

fn tenant_form<P: Platform>(web: &Web<'_, P>, errors: &FieldErrors) -> Markup {
    let body = html! {
        form.card method="post" action="/console/tenants" {
            (page::csrf(web))
            (page::form_errors(errors, &["name", "domain", "plan", "owner_email", "apps"]))
            (page::input("name", "Name", web.text("name"), "text", errors, true))
            (page::input("domain", "Domain (the organisation's sign-in name)", web.text("domain"), "text", errors, true))
            (page::select("plan", "Plan", PLANS, web.field("plan").unwrap_or("free"), errors))
            (page::input("owner_email", "Owner's email (receives the invitation)", web.text("owner_email"), "email", errors, true))
            (page::input("apps", "Apps to enable (ids, comma separated, optional)", web.text("apps"), "text", errors, false))
            button type="submit" { "Create tenant" }
        }
    };
    page::frame(web, Section::Tenants, "New tenant", body)
}

fn list_field(v: &str) -> Vec<String> {
    v.split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn tenant_create<P: Platform>(web: &Web<'_, P>) -> Answer {
    let mut body = json!({
        "name": web.text("name"), "domain": web.text("domain"),
        "plan": web.text("plan"), "owner_email": web.text("owner_email"),
    });
    let apps = list_field(web.text("apps"));
    if !apps.is_empty() {
        body["apps"] = json!(apps);
    }
    let reply = api::call(web, Method::POST, "/v1/tenants", Some(&body)).await;
    match reply.status {
        200 | 201 => {
            let id = text(&reply.body["tenant"], "id").to_owned();
            let notice = html! {
                p.notice role="status" {
                    "Tenant created. The owner's invitation was sent; its link, for handing over yourself, is shown once:"
                }
                code.secret data-copy { (text(&reply.body, "invitation_link")) }
            };
            tenant_page(web, &id, Some(notice)).await
        }
        400 | 409 | 422 => Answer::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            tenant_form(web, &reply.errors()),
        ),
        _ => failure(web, &reply),
    }
}

async fn tenant_page<P: Platform>(web: &Web<'_, P>, id: &str, notice: Option<Markup>) -> Answer {
    // The page's reads, at once: each is a round trip to the database on Workers.
    let tenant_path = format!("/v1/tenants/{}", seg(id));
    let flags_path = format!("/v1/tenants/{}/flags", seg(id));
    let (reply, (flags, apps)) = join2(
        api::call(web, Method::GET, &tenant_path, None),
        join2(
            api::call(web, Method::GET, &flags_path, None),
            tenant_apps(web, id),
        ),
    )
    .await;
    if !reply.ok() {
        return failure(web, &reply);
    }
    let t = reply.body;
    let flag_items = flags.body["flags"].as_array().cloned().unwrap_or_default();
    let notice = notice.or_else(|| done_notice(web));
    let body = html! {
        @if let Some(n) = notice { (n) }
        section.card aria-labelledby="facts" {
            h2 #facts { "Tenant" }
            dl.facts {
                dt { "Status" } dd { (status_badge(text(&t, "status"))) }
                dt { "Domain" } dd { (text(&t, "domain")) }
                dt { "Plan" } dd { (text(&t, "plan")) }
                dt { "Id" } dd { code { (text(&t, "id")) } }
                dt { "Created" } dd { (page::when(t["created_at"].as_i64())) }
                @if let Some(r) = t["suspended_reason"].as_str() { dt { "Suspended because" } dd { (r) } }
                @if t["purge_after"].is_i64() { dt { "Purged on" } dd { (page::when(t["purge_after"].as_i64())) } }
            }
        }
        @if is_operator(web) { (tenant_forms(web, &t, &FieldErrors::none())) }
        (apps)
        (flag_table(web, id, &flag_items))
    };
    Answer::page(page::frame(web, Section::Tenants, text(&t, "name"), body))
}

/// The apps linked to the tenant, each with the form that enables or disables it, and a form
/// that links another app.
async fn tenant_apps<P: Platform>(web: &Web<'_, P>, tenant: &str) -> Markup {
    let tid = seg(tenant);
    let links_path = format!("/v1/tenants/{tid}/apps");
    let (links, all) = join2(
        api::call(web, Method::GET, &links_path, None),
        api::call(web, Method::GET, "/v1/apps?limit=100", None),
    )
    .await;
    let apps = all.body["items"].as_array().cloned().unwrap_or_default();
    let name_of = |id: &str| {
        apps.iter()
            .find(|a| text(a, "id") == id)
            .map_or(id.to_owned(), |a| text(a, "name").to_owned())
    };
    let items = links.body["items"].as_array().cloned().unwrap_or_default();
    let linked: Vec<&str> = items.iter().map(|l| text(l, "app_id")).collect();
    let others: Vec<(String, String)> = apps
        .iter()
        .filter(|a| !linked.contains(&text(a, "id")) && text(a, "status") == "active")
        .map(|a| (text(a, "id").to_owned(), text(a, "name").to_owned()))
        .collect();
    html! {
        section.card aria-labelledby="tenant-apps" {
            h2 #tenant-apps { "Apps" }
            @if items.is_empty() { p.muted { "No app serves this tenant." } } @else {
                table {
                    thead { tr { th scope="col" { "App" } th scope="col" { "Serves the tenant" } th scope="col" { span.muted { "Action" } } } }
                    tbody {
                        @for l in &items {
                            @let app = text(l, "app_id");
                            @let name = name_of(app);
                            @let on = l["enabled"].as_bool() == Some(true);
                            tr {
                                td { (name) }
                                td { @if on { "yes" } @else { "no" } }
                                td { @if is_operator(web) {
                                    @if on {
                                        (page::button_form(web, &format!("/console/tenants/{tid}/apps/{}/disable", seg(app)), &format!("Disable {name}"), "secondary"))
                                    } @else {
                                        (page::button_form(web, &format!("/console/tenants/{tid}/apps/{}/enable", seg(app)), &format!("Enable {name}"), ""))
                                    }
                                } }
                            }
                        }
                    }
                }
            }
            @if is_operator(web) && !others.is_empty() {
                form.filters method="post" action=(format!("/console/tenants/{tid}/apps")) {
                    (page::csrf(web))
                    div.field {
                        label for="link-app" { "Link an app" }
                        select #link-app name="app_id" {
                            @for (id, name) in &others { option value=(id) { (name) } }
                        }
                    }
                    button type="submit" { "Enable for this tenant" }
                }
            }
        }
    }
}

async fn tenant_app_change<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    app: &str,
    enable: bool,
) -> Answer {
    let path = format!("/v1/tenants/{}/apps/{}", seg(tenant), seg(app));
    let method = if enable { Method::POST } else { Method::DELETE };
    let reply = api::call(web, method, &path, None).await;
    let done = if enable {
        "app-enabled"
    } else {
        "app-disabled"
    };
    after_tenant_change(web, tenant, &reply, done).await
}

/// A confirmation of the redirect after a change (`?done=`).
fn done_notice<P: Platform>(web: &Web<'_, P>) -> Option<Markup> {
    let text = match web.q("done")? {
        "updated" => "Saved.",
        "suspend" => {
            "Tenant suspended: its users and apps are refused at the edge within a second."
        }
        "activate" => "Tenant active again.",
        "delete" => {
            "Deletion requested: the tenant is purged after the grace period unless restored."
        }
        "restore" => "Tenant restored.",
        "flag-saved" => "Flag saved: the edge serves it within a second.",
        "flag-deleted" => "Flag deleted.",
        "revoked" => "Key revoked.",
        "app-updated" => "App saved.",
        "app-enabled" => "The app serves this tenant now.",
        "app-disabled" => {
            "The app no longer serves this tenant: its keys for the tenant are refused."
        }
        _ => return None,
    };
    Some(page::message("notice", text))
}

fn tenant_forms<P: Platform>(web: &Web<'_, P>, t: &Json, errors: &FieldErrors) -> Markup {
    let id = seg(text(t, "id"));
    let status = text(t, "status");
    html! {
        section.card aria-labelledby="edit" {
            h2 #edit { "Name and plan" }
            form method="post" action=(format!("/console/tenants/{id}")) {
                (page::csrf(web))
                input type="hidden" name="expected_version" value=(t["version"].as_i64().unwrap_or(0));
                (page::form_errors(errors, &["name", "plan"]))
                (page::input("name", "Name", text(t, "name"), "text", errors, true))
                (page::select("plan", "Plan", PLANS, text(t, "plan"), errors))
                button type="submit" { "Save" }
            }
        }
        section.card aria-labelledby="lifecycle" {
            h2 #lifecycle { "Lifecycle" }
            @match status {
                "active" => {
                    form method="post" action=(format!("/console/tenants/{id}/suspend")) {
                        (page::csrf(web))
                        (page::input("reason", "Reason for suspending (shown to operators)", "", "text", errors, false))
                        button.danger type="submit" { "Suspend tenant" }
                    }
                },
                "suspended" => { (page::button_form(web, &format!("/console/tenants/{id}/activate"), "Reactivate tenant", "")) },
                "pending_deletion" => { (page::button_form(web, &format!("/console/tenants/{id}/restore"), "Restore tenant", "")) },
                _ => {},
            }
            @if status == "active" || status == "suspended" {
                form method="post" action=(format!("/console/tenants/{id}/delete")) {
                    (page::csrf(web))
                    p.muted { "Deleting starts a 30-day grace period; the tenant can be restored until it ends, then everything it holds is purged." }
                    div.field {
                        label for="confirm-domain" { "Type the domain, " (text(t, "domain")) ", to delete" }
                        input #confirm-domain name="confirm" type="text" autocomplete="off";
                    }
                    button.danger type="submit" { "Delete tenant" }
                }
            }
        }
    }
}

async fn tenant_update<P: Platform>(web: &Web<'_, P>, id: &str) -> Answer {
    let mut body = json!({ "name": web.text("name"), "plan": web.text("plan") });
    if let Ok(v) = web.text("expected_version").parse::<i64>() {
        body["expected_version"] = json!(v);
    }
    let reply = api::call(
        web,
        Method::PATCH,
        &format!("/v1/tenants/{}", seg(id)),
        Some(&body),
    )
    .await;
    after_tenant_change(web, id, &reply, "updated").await
}

async fn tenant_action<P: Platform>(web: &Web<'_, P>, id: &str, action: &str) -> Answer {
    let path = format!("/v1/tenants/{}", seg(id));
    let reply = match action {
        "suspend" => {
            let reason = web.text("reason");
            let body = if reason.is_empty() {
                json!({})
            } else {
                json!({ "reason": reason })
            };
            api::call(web, Method::POST, &format!("{path}/suspend"), Some(&body)).await
        }
        "activate" | "restore" => {
            api::call(web, Method::POST, &format!("{path}/{action}"), None).await
        }
        "delete" => {
            let current = api::call(web, Method::GET, &path, None).await;
            if !current.ok() {
                return failure(web, &current);
            }
            if web.text("confirm") != text(&current.body, "domain") {
                let errors = FieldErrors {
                    detail: Some(
                        "Type the tenant's domain exactly to confirm the deletion.".to_owned(),
                    ),
                    fields: Vec::new(),
                };
                let body = html! { (tenant_forms(web, &current.body, &errors)) };
                return Answer::Page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    page::frame(web, Section::Tenants, text(&current.body, "name"), body),
                );
            }
            api::call(web, Method::DELETE, &path, None).await
        }
        _ => return page::not_found(web),
    };
    after_tenant_change(web, id, &reply, action).await
}

async fn after_tenant_change<P: Platform>(
    web: &Web<'_, P>,
    id: &str,
    reply: &Reply,
    done: &str,
) -> Answer {
    if reply.ok() {
        return Answer::to(format!("/console/tenants/{}?done={done}", seg(id)));
    }
    if matches!(reply.status, 400 | 409 | 412 | 422) {
        let current = api::call(web, Method::GET, &format!("/v1/tenants/{}", seg(id)), None).await;
        if !current.ok() {
            return failure(web, &current);
        }
        let body = tenant_forms(web, &current.body, &reply.errors());
        return Answer::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::frame(web, Section::Tenants, text(&current.body, "name"), body),
        );
    }
    failure(web, reply)
}

// ---- Flags ---------------------------------------------------------------------------------

fn flag_table<P: Platform>(web: &Web<'_, P>, tenant: &str, flags: &[Json]) -> Markup {
    let tid = seg(tenant);
    html! {
        section.card aria-labelledby="flags" {
            h2 #flags { "Flags" }
            @if flags.is_empty() {
                p.muted { "No flags." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Type" } th scope="col" { "Value" } th scope="col" { "Enabled" } th scope="col" { "Rules" } th scope="col" { "Source" } } }
                    tbody {
                        @for f in flags {
                            tr {
                                td { a href=(format!("/console/tenants/{tid}/flags/{}", seg(text(f, "key")))) { (text(f, "key")) } }
                                td { (text(f, "type")) }
                                td { code { (f["value"].to_string()) } }
                                td { @if f["enabled"].as_bool() == Some(true) { "yes" } @else { "no" } }
                                td { (f["rules"].as_array().map_or(0, Vec::len)) }
                                td { @if f["overridden"].as_bool() == Some(false) { "plan default" } @else { "tenant" } }
                            }
                        }
                    }
                }
            }
            @if is_operator(web) {
                h3 { "New flag" }
                (flag_form(web, tenant, None, &FieldErrors::none(), false))
            }
        }
    }
}

/// The editor's fields: from the form when it was `sent` back refused, else from the stored flag.
fn flag_form<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    flag: Option<&Json>,
    errors: &FieldErrors,
    sent: bool,
) -> Markup {
    let pick = |name: &str, stored: String| {
        if sent {
            web.field(name).unwrap_or("").to_owned()
        } else {
            stored
        }
    };
    let key = pick(
        "key",
        flag.map_or(String::new(), |f| text(f, "key").to_owned()),
    );
    let kind = pick(
        "type",
        flag.map_or("boolean".to_owned(), |f| text(f, "type").to_owned()),
    );
    let value = pick(
        "value",
        flag.map_or("false".to_owned(), |f| f["value"].to_string()),
    );
    let description = pick(
        "description",
        flag.map_or(String::new(), |f| text(f, "description").to_owned()),
    );
    let rules = pick(
        "rules",
        flag.map_or("[]".to_owned(), |f| {
            serde_json::to_string_pretty(f.get("rules").unwrap_or(&json!([]))).unwrap_or_default()
        }),
    );
    let enabled = if sent {
        web.field("enabled").is_some()
    } else {
        flag.is_none_or(|f| f["enabled"].as_bool() == Some(true))
    };
    let action = match flag {
        Some(_) => format!("/console/tenants/{}/flags/{}", seg(tenant), seg(&key)),
        None => format!("/console/tenants/{}/flags", seg(tenant)),
    };
    let types = [
        ("boolean", "boolean"),
        ("string", "string"),
        ("number", "number"),
        ("json", "json"),
    ];
    html! {
        form method="post" action=(action) {
            (page::csrf(web))
            (page::form_errors(errors, &["key", "type", "value", "rules", "description", "enabled"]))
            @if flag.is_none() {
                (page::input("key", "Key", &key, "text", errors, true))
            } @else {
                input type="hidden" name="key" value=(key);
            }
            (page::select("type", "Type", &types, &kind, errors))
            (page::input("value", "Default value (JSON: true, 42, \"text\", {…})", &value, "text", errors, true))
            div.field {
                label { input type="checkbox" name="enabled" value="true" checked[enabled]; " Enabled" }
            }
            (page::input("description", "Description", &description, "text", errors, false))
            (page::textarea("rules", "Rules as JSON (advanced: the rule list below edits them one by one)", &rules, 10, errors))
            p.muted { "Example: [{\"name\":\"staff\",\"conditions\":[{\"attribute\":\"email\",\"op\":\"ends_with\",\"values\":[\"@example.com\"]}],\"value\":true}, {\"rollout\":{\"variants\":[{\"variant\":\"on\",\"value\":true,\"weight\":20},{\"variant\":\"off\",\"value\":false,\"weight\":80}]}}]" }
            button type="submit" { "Save flag" }
        }
    }
}

async fn flag_record<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    key: &str,
) -> Result<Option<Json>, Answer> {
    let reply = api::call(
        web,
        Method::GET,
        &format!("/v1/tenants/{}/flags", seg(tenant)),
        None,
    )
    .await;
    if !reply.ok() {
        return Err(failure(web, &reply));
    }
    Ok(reply.body["flags"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| text(f, "key") == key).cloned()))
}

async fn flag_page<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    key: &str,
    extra: Option<(FieldErrors, Markup)>,
    rule_errors: Option<FieldErrors>,
) -> Answer {
    let (record, history) = join2(
        flag_record(web, tenant, key),
        flag_history(web, tenant, key),
    )
    .await;
    let flag = match record {
        Ok(Some(f)) => f,
        Ok(None) => return page::not_found(web),
        Err(answer) => return answer,
    };
    let (errors, preview) = extra.unwrap_or_else(|| (FieldErrors::none(), html! {}));
    let tid = seg(tenant);
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        p { a href=(format!("/console/tenants/{tid}")) { "Back to the tenant" } }
        @if let Some(n) = done_notice(web) { (n) }
        @if is_operator(web) {
            section.card aria-labelledby="edit-flag" {
                h2 #edit-flag { "Definition" }
                (flag_form(web, tenant, Some(&flag), &errors, errors.any()))
                (page::button_form(web, &format!("/console/tenants/{tid}/flags/{}/delete", seg(key)), "Delete flag", "danger"))
            }
            (super::rules::section(web, tenant, &flag, rule_errors.as_ref().unwrap_or(&FieldErrors::none())))
        } @else {
            pre.json { (serde_json::to_string_pretty(&flag).unwrap_or_default()) }
        }
        section.card aria-labelledby="preview" {
            h2 #preview { "Preview an evaluation" }
            form method="post" action=(format!("/console/tenants/{tid}/flags/{}/preview", seg(key))) {
                (page::csrf(web))
                (page::textarea("context", "Evaluation context (JSON object, as an app sends it)", web.field("context").unwrap_or("{\"targetingKey\":\"user-1\"}"), 4, &FieldErrors::none()))
                button.secondary type="submit" { "Evaluate" }
            }
            (preview)
        }
        section.card aria-labelledby="history" {
            h2 #history { "History" }
            (history)
        }
    };
    Answer::Page(
        status,
        page::frame(web, Section::Tenants, &format!("Flag {key}"), body),
    )
}

/// The flag's changes from the audit trail (the CSV export, filtered to this flag).
async fn flag_history<P: Platform>(web: &Web<'_, P>, tenant: &str, key: &str) -> Markup {
    let path = page::link_with(
        "/v1/audit/export.csv",
        &[("tenant", tenant), ("limit", "1000")],
    );
    let reply = api::call(web, Method::GET, &path, None).await;
    if !reply.ok() {
        return html! { p.muted { "The history cannot be read now." } };
    }
    let csv = String::from_utf8_lossy(&reply.raw).into_owned();
    let rows = history_rows(&csv, &format!("flag:{tenant}/{key}"));
    html! {
        @if rows.is_empty() {
            p.muted { "No recorded change yet (changes reach the audit trail within a minute)." }
        } @else {
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "By" } th scope="col" { "Outcome" } } }
                tbody { @for r in &rows { tr { td { (r[0]) } td { (r[1]) } td { (r[2]) } td { (r[3]) } } } }
            }
        }
    }
}

/// (time, action, actor, outcome) of the CSV rows about `resource` (`flag:<tenant>/<key>`),
/// newest first.
fn history_rows(csv: &str, resource: &str) -> Vec<[String; 4]> {
    let mut lines = records(csv).into_iter();
    let Some(cols) = lines.next() else {
        return Vec::new();
    };
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(t), Some(a), Some(actor), Some(outcome), Some(res)) = (
        at("timestamp"),
        at("action"),
        at("actor_id"),
        at("outcome"),
        at("resource_id"),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<[String; 4]> = lines
        .filter(|f| f.get(res).is_some_and(|r| r == resource))
        .map(|f| {
            [
                f[t].clone(),
                f[a].clone(),
                f[actor].clone(),
                f[outcome].clone(),
            ]
        })
        .collect();
    out.reverse();
    out
}

/// The JSON body of a flag form; a field that is not JSON is a field error.
fn flag_body<P: Platform>(web: &Web<'_, P>) -> Result<Json, FieldErrors> {
    let kind = web.text("type");
    let raw_value = web.field("value").unwrap_or("").trim();
    let value = match serde_json::from_str::<Json>(raw_value) {
        Ok(v) => v,
        // A string flag's value may be typed without quotes.
        Err(_) if kind == "string" => Json::String(raw_value.to_owned()),
        Err(_) => {
            return Err(field_error(
                "value",
                "is not JSON (true, 42, \"text\" or an object)",
            ))
        }
    };
    let raw_rules = web.field("rules").unwrap_or("").trim();
    let rules = if raw_rules.is_empty() {
        json!([])
    } else {
        serde_json::from_str::<Json>(raw_rules)
            .map_err(|e| field_error("rules", &format!("is not JSON: {e}")))?
    };
    let mut body = Map::new();
    body.insert("type".into(), json!(kind));
    body.insert("value".into(), value);
    body.insert("enabled".into(), json!(web.field("enabled").is_some()));
    body.insert("rules".into(), rules);
    let description = web.text("description");
    if !description.is_empty() {
        body.insert("description".into(), json!(description));
    }
    Ok(Json::Object(body))
}

fn field_error(field: &str, message: &str) -> FieldErrors {
    FieldErrors {
        detail: None,
        fields: vec![(field.to_owned(), message.to_owned())],
    }
}

async fn flag_save<P: Platform>(web: &Web<'_, P>, tenant: &str, key: Option<&str>) -> Answer {
    let key = key.map_or_else(|| web.text("key").to_owned(), str::to_owned);
    let errors = match flag_body(web) {
        Ok(body) => {
            let path = format!("/v1/tenants/{}/flags/{}", seg(tenant), seg(&key));
            let reply = api::call(web, Method::PUT, &path, Some(&body)).await;
            if reply.ok() {
                return Answer::to(format!(
                    "/console/tenants/{}/flags/{}?done=flag-saved",
                    seg(tenant),
                    seg(&key)
                ));
            }
            if !matches!(reply.status, 400 | 409 | 422) {
                return failure(web, &reply);
            }
            let mut errors = reply.errors();
            if key.is_empty() {
                errors.fields.push((
                    "key".to_owned(),
                    "is required: 1 to 128 of a-z, 0-9, ., _ and -".to_owned(),
                ));
            }
            errors
        }
        Err(errors) => errors,
    };
    match flag_record(web, tenant, &key).await {
        Ok(Some(_)) => flag_page(web, tenant, &key, Some((errors, html! {})), None).await,
        Ok(None) => {
            let body = html! {
                p { a href=(format!("/console/tenants/{}", seg(tenant))) { "Back to the tenant" } }
                section.card { (flag_form(web, tenant, None, &errors, true)) }
            };
            Answer::Page(
                StatusCode::UNPROCESSABLE_ENTITY,
                page::frame(web, Section::Tenants, "New flag", body),
            )
        }
        Err(answer) => answer,
    }
}

async fn rule_change<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    key: &str,
    remove: Option<usize>,
) -> Answer {
    let flag = match flag_record(web, tenant, key).await {
        Ok(Some(f)) => f,
        Ok(None) => return page::not_found(web),
        Err(answer) => return answer,
    };
    match super::rules::change(web, tenant, &flag, remove).await {
        Ok(answer) => answer,
        Err(errors) => {
            // The definition form shows the stored flag; the add form what was sent.
            flag_page(web, tenant, key, None, Some(errors)).await
        }
    }
}

async fn flag_delete<P: Platform>(web: &Web<'_, P>, tenant: &str, key: &str) -> Answer {
    let path = format!("/v1/tenants/{}/flags/{}", seg(tenant), seg(key));
    let reply = api::call(web, Method::DELETE, &path, None).await;
    if reply.ok() || reply.status == 404 {
        return Answer::to(format!(
            "/console/tenants/{}?done=flag-deleted",
            seg(tenant)
        ));
    }
    failure(web, &reply)
}

async fn flag_preview<P: Platform>(web: &Web<'_, P>, tenant: &str, key: &str) -> Answer {
    let flag = match flag_record(web, tenant, key).await {
        Ok(Some(f)) => f,
        Ok(None) => return page::not_found(web),
        Err(answer) => return answer,
    };
    let result = match serde_json::from_str::<Json>(web.text("context")) {
        Ok(Json::Object(ctx)) => match serde_json::from_value::<Flag>(flag.clone()) {
            Ok(f) => preview_result(&f, &ctx),
            Err(_) => page::message("error", "This flag cannot be evaluated here."),
        },
        _ => page::message("error", "The context must be a JSON object."),
    };
    // The editor shows the stored flag, not the preview's form.
    let mut stored = Web {
        form: Vec::new(),
        ..clone_web(web)
    };
    stored
        .form
        .push(("context".to_owned(), web.text("context").to_owned()));
    flag_page(
        &stored,
        tenant,
        key,
        Some((FieldErrors::none(), result)),
        None,
    )
    .await
}

fn clone_web<'a, P: Platform>(web: &Web<'a, P>) -> Web<'a, P> {
    Web {
        p: web.p,
        method: web.method.clone(),
        path: web.path.clone(),
        query: web.query.clone(),
        form: web.form.clone(),
        cookies: web.cookies.clone(),
        https: web.https,
        origin: web.origin.clone(),
        request_id: web.request_id.clone(),
        session: web.session.clone(),
        origin_header: web.origin_header.clone(),
        tenant_tokens: std::cell::RefCell::new(web.tenant_tokens.borrow().clone()),
    }
}

fn preview_result(flag: &Flag, ctx: &eval::Context) -> Markup {
    match eval::evaluate(flag, ctx) {
        Resolution::Value {
            value,
            variant,
            reason,
        } => html! {
            div role="status" aria-label="Evaluation" { dl.facts {
                dt { "Value" } dd { code #preview-value { (value.to_string()) } }
                dt { "Variant" } dd { (variant) }
                dt { "Reason" } dd { (reason.as_str()) }
            } }
        },
        Resolution::Disabled => page::message(
            "notice",
            "The flag is disabled: apps get their own default (reason DISABLED).",
        ),
        Resolution::Error(e) => page::message("error", &format!("No value: {e:?}")),
    }
}

// ---- Apps and keys -------------------------------------------------------------------------

async fn app_list<P: Platform>(web: &Web<'_, P>, errors: Option<FieldErrors>) -> Answer {
    let reply = api::call(web, Method::GET, "/v1/apps?limit=100", None).await;
    if !reply.ok() {
        return failure(web, &reply);
    }
    let items = reply.body["items"].as_array().cloned().unwrap_or_default();
    let status = if errors.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let errors = errors.unwrap_or_default();
    let body = html! {
        table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Redirect URIs" } th scope="col" { "Created" } } }
            tbody {
                @for a in &items {
                    tr {
                        td { a href=(format!("/console/apps/{}", seg(text(a, "id")))) { (text(a, "name")) } }
                        td { (status_badge(text(a, "status"))) }
                        td { (a["redirect_uris"].as_array().map_or(0, Vec::len)) }
                        td { (page::when(a["created_at"].as_i64())) }
                    }
                }
            }
        }
        @if is_operator(web) {
            section.card aria-labelledby="register" {
                h2 #register { "Register an app" }
                form method="post" action="/console/apps" {
                    (page::csrf(web))
                    (page::form_errors(&errors, &["name", "redirect_uris", "allowed_origins"]))
                    (page::input("name", "Name", web.text("name"), "text", &errors, true))
                    (page::textarea("redirect_uris", "Redirect URIs (one per line)", web.text("redirect_uris"), 3, &errors))
                    (page::textarea("allowed_origins", "Allowed browser origins (one per line)", web.text("allowed_origins"), 2, &errors))
                    button type="submit" { "Register app" }
                }
            }
        }
    };
    Answer::Page(
        status,
        page::frame(web, Section::Apps, "Apps and keys", body),
    )
}

async fn app_register<P: Platform>(web: &Web<'_, P>) -> Answer {
    let body = json!({
        "name": web.text("name"),
        "redirect_uris": list_field(web.text("redirect_uris")),
        "allowed_origins": list_field(web.text("allowed_origins")),
    });
    let reply = api::call(web, Method::POST, "/v1/apps", Some(&body)).await;
    if reply.ok() {
        return Answer::to(format!("/console/apps/{}", seg(text(&reply.body, "id"))));
    }
    if matches!(reply.status, 400 | 409 | 422) {
        return app_list(web, Some(reply.errors())).await;
    }
    failure(web, &reply)
}

async fn app_page<P: Platform>(web: &Web<'_, P>, id: &str, issued: Option<Markup>) -> Answer {
    let reply = api::call(web, Method::GET, &format!("/v1/apps/{}", seg(id)), None).await;
    if !reply.ok() {
        return failure(web, &reply);
    }
    let app = reply.body;
    let keys = api::call(
        web,
        Method::GET,
        &format!("/v1/apps/{}/keys?limit=100", seg(id)),
        None,
    )
    .await;
    let key_items = keys.body["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        @if let Some(i) = issued { (i) }
        @if let Some(n) = done_notice(web) { (n) }
        section.card aria-labelledby="app" {
            h2 #app { "App" }
            dl.facts {
                dt { "Client id" } dd { code { (text(&app, "id")) } }
                dt { "Status" } dd { (status_badge(text(&app, "status"))) }
            }
            @if is_operator(web) { (app_form(web, &app, &FieldErrors::none())) }
        }
        (key_table(web, id, &key_items))
    };
    Answer::page(page::frame(web, Section::Apps, text(&app, "name"), body))
}

fn lines_of(v: &Json) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn app_form<P: Platform>(web: &Web<'_, P>, app: &Json, errors: &FieldErrors) -> Markup {
    let statuses = [("active", "Active"), ("disabled", "Disabled")];
    html! {
        form method="post" action=(format!("/console/apps/{}", seg(text(app, "id")))) {
            (page::csrf(web))
            (page::form_errors(errors, &["name", "redirect_uris", "allowed_origins", "status"]))
            (page::input("name", "Name", text(app, "name"), "text", errors, true))
            (page::textarea("redirect_uris", "Redirect URIs (one per line)", &lines_of(&app["redirect_uris"]), 3, errors))
            (page::textarea("allowed_origins", "Allowed browser origins (one per line)", &lines_of(&app["allowed_origins"]), 2, errors))
            (page::select("status", "Status", &statuses, text(app, "status"), errors))
            button type="submit" { "Save app" }
        }
    }
}

async fn app_update<P: Platform>(web: &Web<'_, P>, id: &str) -> Answer {
    let body = json!({
        "name": web.text("name"), "status": web.text("status"),
        "redirect_uris": list_field(web.text("redirect_uris")),
        "allowed_origins": list_field(web.text("allowed_origins")),
    });
    let reply = api::call(
        web,
        Method::PATCH,
        &format!("/v1/apps/{}", seg(id)),
        Some(&body),
    )
    .await;
    if reply.ok() {
        return Answer::to(format!("/console/apps/{}?done=app-updated", seg(id)));
    }
    if matches!(reply.status, 400 | 409 | 422) {
        let mut app = body.clone();
        app["id"] = json!(id);
        let page_body = html! { section.card { (app_form(web, &app, &reply.errors())) } };
        return Answer::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::frame(web, Section::Apps, "App", page_body),
        );
    }
    failure(web, &reply)
}

fn key_table<P: Platform>(web: &Web<'_, P>, app: &str, keys: &[Json]) -> Markup {
    let none = FieldErrors::none();
    html! {
        section.card aria-labelledby="keys" {
            h2 #keys { "API keys" }
            @if keys.is_empty() { p.muted { "No keys." } } @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Prefix" } th scope="col" { "Scopes" } th scope="col" { "Tenant" } th scope="col" { "Status" } th scope="col" { "Last used" } th scope="col" { span.muted { "Action" } } } }
                    tbody {
                        @for k in keys {
                            tr {
                                td { (text(k, "name")) }
                                td { code { (text(k, "prefix")) } }
                                td { (k["scopes"].as_array().map(|s| s.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                td { (k["tenant_id"].as_str().unwrap_or("any")) }
                                td { (status_badge(text(k, "status"))) }
                                td { (page::when(k["last_used_at"].as_i64())) }
                                td {
                                    @if is_operator(web) && text(k, "status") == "active" {
                                        (page::button_form(web, &format!("/console/apps/{}/keys/{}/revoke", seg(app), seg(text(k, "id"))), &format!("Revoke {}", text(k, "prefix")), "danger"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if is_operator(web) {
                h3 { "Issue a key" }
                form method="post" action=(format!("/console/apps/{}/keys", seg(app))) {
                    (page::csrf(web))
                    (page::input("name", "Name", "", "text", &none, false))
                    fieldset {
                        legend { "Scopes" }
                        @for s in SCOPES {
                            label { input type="checkbox" name="scopes" value=(s); " " (s) }
                        }
                    }
                    (page::input("tenant_id", "Tenant id (empty: any tenant enabled for the app)", "", "text", &none, false))
                    (page::select("kind", "Kind", &[("server", "Server (secret)"), ("browser", "Browser (flags only, checked against allowed origins)")], "server", &none))
                    button type="submit" { "Issue key" }
                }
            }
        }
    }
}

async fn key_issue<P: Platform>(web: &Web<'_, P>, app: &str) -> Answer {
    let mut body = json!({ "scopes": web.all("scopes"), "kind": web.text("kind") });
    for field in ["name", "tenant_id"] {
        if !web.text(field).is_empty() {
            body[field] = json!(web.text(field));
        }
    }
    let reply = api::call(
        web,
        Method::POST,
        &format!("/v1/apps/{}/keys", seg(app)),
        Some(&body),
    )
    .await;
    if reply.ok() {
        let issued = html! {
            p.notice role="status" { "Key issued. Copy it now: it is shown this once and never again." }
            code.secret #issued-key data-copy { (text(&reply.body, "secret")) }
        };
        return app_page(web, app, Some(issued)).await;
    }
    if matches!(reply.status, 400 | 409 | 422) {
        let errors = reply.errors();
        let box_ = html! { (page::form_errors(&errors, &[])) };
        return app_page(web, app, Some(box_)).await;
    }
    failure(web, &reply)
}

async fn key_revoke<P: Platform>(web: &Web<'_, P>, app: &str, key: &str) -> Answer {
    let path = format!("/v1/apps/{}/keys/{}", seg(app), seg(key));
    let reply = api::call(web, Method::DELETE, &path, None).await;
    if reply.ok() {
        return Answer::to(format!("/console/apps/{}?done=revoked", seg(app)));
    }
    failure(web, &reply)
}

// ---- Signing keys and health ---------------------------------------------------------------

async fn signing_keys<P: Platform>(web: &Web<'_, P>, result: Option<Markup>) -> Answer {
    let jwks = api::call(web, Method::GET, "/.well-known/jwks.json", None).await;
    let keys = jwks.body["keys"].as_array().cloned().unwrap_or_default();
    let body = html! {
        @if let Some(r) = result { (r) }
        table {
            caption.muted { "Published keys, newest first as the key set lists them" }
            thead { tr { th scope="col" { "Key id" } th scope="col" { "Algorithm" } th scope="col" { "Curve" } th scope="col" { "Use" } } }
            tbody {
                @for k in &keys {
                    tr { td { code { (text(k, "kid")) } } td { (text(k, "alg")) } td { (text(k, "crv")) } td { (text(k, "use")) } }
                }
            }
        }
        p { "Access and ID tokens are signed with Ed25519. The published keys are at " a href="/.well-known/jwks.json" { "/.well-known/jwks.json" } "; a rotated key stays published until the tokens it signed expire." }
        @if is_operator(web) {
            (page::button_form(web, "/console/signing-keys/rotate", "Rotate the signing key", ""))
        }
    };
    Answer::page(page::frame(web, Section::SigningKeys, "Signing keys", body))
}

async fn signing_key_rotate<P: Platform>(web: &Web<'_, P>) -> Answer {
    let reply = api::call(web, Method::POST, "/v1/signing-keys/rotate", None).await;
    if !reply.ok() {
        return failure(web, &reply);
    }
    let result = html! {
        p.notice role="status" { "Rotated. New key " code { (text(&reply.body, "kid")) } "; previous " code { (reply.body["previous_kid"].as_str().unwrap_or("none")) } "." }
    };
    signing_keys(web, Some(result)).await
}

async fn health_markup<P: Platform>(web: &Web<'_, P>) -> Markup {
    let reply = api::call(web, Method::GET, "/v1/health", None).await;
    // One entry per port, by name.
    let deps: Vec<(String, Json)> = reply.body["dependencies"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    html! {
        p { "Overall: " (status_badge(if reply.ok() { text(&reply.body, "status") } else { "down" })) " · runtime " (text(&reply.body, "runtime")) " · version " (text(&reply.body, "version")) }
        table {
            thead { tr { th scope="col" { "Dependency" } th scope="col" { "Status" } th scope="col" { "Latency" } } }
            tbody {
                @for (port, d) in &deps {
                    tr {
                        td { (port.replace('_', " ")) " (" (text(d, "backend")) ")" }
                        td { (status_badge(if text(d, "status") == "ok" { "up" } else { "down" })) }
                        td { (d["latency_ms"].as_i64().unwrap_or(0)) " ms" }
                    }
                }
            }
        }
        p.muted { "Checked " (page::when(Some(web.p.clock().now_ms()))) }
    }
}

async fn health<P: Platform>(web: &Web<'_, P>) -> Answer {
    let panel = health_markup(web).await;
    let services = services_markup(web).await;
    let alerts = alerts_markup(web).await;
    let journey = journey_markup(web).await;
    let apps = app_health_markup(web).await;
    let body = html! {
        p.muted { "Dependencies refreshed every 5 seconds." }
        div #health-panel aria-live="polite" { (panel) }
        h2 { "Key services" }
        (services)
        h2 { "Synthetic journey" }
        (journey)
        h2 { "Managed apps" }
        (apps)
        h2 { "Alerts" }
        (alerts)
    };
    Answer::page(page::frame(web, Section::Health, "System health", body))
}

/// Each key service over the last 5 minutes (`GET /v1/health/services`).
async fn services_markup<P: Platform>(web: &Web<'_, P>) -> Markup {
    let reply = api::call(web, Method::GET, "/v1/health/services", None).await;
    if !reply.ok() {
        return html! { p.muted { "The figures could not be read." } };
    }
    let services = reply.body["services"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ms = |v: &Json| v.as_i64().map_or("—".to_owned(), |n| format!("< {n} ms"));
    html! {
        table {
            caption.muted { "Last 5 minutes; latencies are histogram bucket bounds" }
            thead { tr { th scope="col" { "Service" } th scope="col" { "Requests" } th scope="col" { "5xx" } th scope="col" { "Error rate" } th scope="col" { "p99" } } }
            tbody {
                @for s in services.iter().filter(|s| s["service"] != "other") {
                    @let w = &s["last_5m"];
                    tr {
                        td { (text(s, "service").replace('_', " ")) }
                        td { (w["requests"].as_u64().unwrap_or(0)) }
                        td { (w["errors"].as_u64().unwrap_or(0)) }
                        td { (format!("{:.2}%", w["error_rate"].as_f64().unwrap_or(0.0) * 100.0)) }
                        td { (ms(&w["p99_ms"])) }
                    }
                }
            }
        }
    }
}

/// The latest synthetic journey run, step by step, and the last failure
/// (`GET /v1/health/journeys`, NFR-MON-003).
async fn journey_markup<P: Platform>(web: &Web<'_, P>) -> Markup {
    let reply = api::call(web, Method::GET, "/v1/health/journeys", None).await;
    if !reply.ok() {
        return html! { p.muted { "The journey runs could not be read." } };
    }
    let Some(run) = reply.body["runs"].get(0) else {
        return html! { p { "No journey has run yet: the first scheduled run starts them." } };
    };
    let passed = |v: &Json| {
        if v.as_bool() == Some(true) {
            "passed"
        } else {
            "failed"
        }
    };
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    let failure = &reply.body["last_failure"];
    html! {
        p { "Latest run: " (status_badge(passed(&run["ok"]))) " · " (page::when(run["started_at"].as_i64())) " · " (run["duration_ms"].as_i64().unwrap_or(0)) " ms in all" }
        table {
            caption.muted { "Each step of the latest run, through the API in process (not counted in the key services' figures)" }
            thead { tr { th scope="col" { "Step" } th scope="col" { "Result" } th scope="col" { "Time" } th scope="col" { "Error" } } }
            tbody {
                @for s in &steps {
                    tr {
                        td { (text(s, "step").replace('_', " ")) }
                        td { (status_badge(passed(&s["ok"]))) }
                        td { (s["duration_ms"].as_i64().unwrap_or(0)) " ms" }
                        td { (s["error"].as_str().unwrap_or("")) }
                    }
                }
            }
        }
        @if failure.is_object() {
            p { "Last failure: " (page::when(failure["started_at"].as_i64())) ", at step " code { (text(failure, "failed_step")) } }
        } @else {
            p.muted { "No failed run in the last 7 days." }
        }
    }
}

/// The managed apps whose own health Edgeplane checks: green or red, the latest response time
/// and the last hour's failures (`GET /v1/apps/{id}/health` of each active app).
async fn app_health_markup<P: Platform>(web: &Web<'_, P>) -> Markup {
    let reply = api::call(web, Method::GET, "/v1/apps?status=active&limit=100", None).await;
    if !reply.ok() {
        return html! { p.muted { "The apps could not be read." } };
    }
    let apps = reply.body["items"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for app in &apps {
        let path = format!("/v1/apps/{}/health", text(app, "id"));
        let health = api::call(web, Method::GET, &path, None).await;
        if health.ok() && health.body["url"].is_string() {
            rows.push((text(app, "name").to_owned(), health.body));
        }
    }
    let sum = |h: &Json, field: &str| -> u64 {
        h["minutes"]
            .as_array()
            .map_or(0, |m| m.iter().filter_map(|x| x[field].as_u64()).sum())
    };
    html! {
        @if rows.is_empty() {
            p { "No app has a health check: register one with " code { "PUT /v1/apps/{id}/health-check" } "." }
        } @else {
            table {
                caption.muted { "Latest check, and the checks of the last hour" }
                thead { tr { th scope="col" { "App" } th scope="col" { "Health" } th scope="col" { "Response time" } th scope="col" { "Failed checks" } th scope="col" { "Failing in a row" } th scope="col" { "Checked" } } }
                tbody {
                    @for (name, h) in &rows {
                        tr {
                            td { (name) }
                            td { (status_badge(text(h, "state"))) }
                            td { @match h["last_latency_ms"].as_u64() { Some(ms) => { (ms) " ms" }, None => { "—" } } }
                            td { (sum(h, "failures")) " of " (sum(h, "checks")) }
                            td { (h["consecutive_failures"].as_u64().unwrap_or(0)) }
                            td { (page::when(h["checked_at_ms"].as_i64())) }
                        }
                    }
                }
            }
        }
    }
}

/// Firing and recently resolved alerts (`GET /v1/alerts`).
async fn alerts_markup<P: Platform>(web: &Web<'_, P>) -> Markup {
    let reply = api::call(web, Method::GET, "/v1/alerts", None).await;
    if !reply.ok() {
        return html! { p.muted { "The alerts could not be read." } };
    }
    let alerts = reply.body["alerts"].as_array().cloned().unwrap_or_default();
    html! {
        @if alerts.is_empty() {
            p { "No alert fired in the last 7 days." }
        } @else {
            table {
                thead { tr { th scope="col" { "State" } th scope="col" { "Alert" } th scope="col" { "Severity" } th scope="col" { "Fired" } th scope="col" { "Resolved" } } }
                tbody {
                    @for a in &alerts {
                        tr {
                            td { @if text(a, "state") == "firing" { strong { "firing" } } @else { (text(a, "state")) } }
                            td { (text(a, "summary")) }
                            td { (text(a, "severity")) }
                            td { (page::when(a["fired_at"].as_i64())) }
                            td { (page::when(a["resolved_at"].as_i64())) }
                        }
                    }
                }
            }
        }
        p.muted { "Channels and thresholds: " code { "/v1/alerts/channels" } " and the README's Alerts section." }
    }
}

/// The panel alone, for the page's refresh.
async fn health_panel<P: Platform>(web: &Web<'_, P>) -> Answer {
    let panel = health_markup(web).await;
    Answer::Page(StatusCode::OK, panel)
}
