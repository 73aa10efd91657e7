//! The flag editor's rules, without JSON: each rule of a flag said in words with a button that
//! removes it, and a form that adds one (up to three conditions, then a value or a rollout of up
//! to three weighted variants). The console turns the form into the rule's JSON, appends it to
//! the stored definition and sends the whole definition to the API; the API's field errors
//! (`rules[3].conditions[0].values`) come back next to the field of the new rule they name.

use ::http::{Method, StatusCode};
use maud::{html, Markup};
use serde_json::{json, Map, Value as Json};

use super::api::{self, seg, FieldErrors};
use super::{page, Answer, Web};
use crate::ports::Platform;

/// Condition rows and variant rows the form offers.
const ROWS: usize = 3;

const OPS: &[(&str, &str)] = &[
    ("eq", "equals"),
    ("neq", "does not equal"),
    ("in", "is one of"),
    ("not_in", "is none of"),
    ("starts_with", "starts with"),
    ("ends_with", "ends with"),
    ("contains", "contains"),
    ("lt", "<"),
    ("lte", "≤"),
    ("gt", ">"),
    ("gte", "≥"),
    ("semver_eq", "version ="),
    ("semver_lt", "version <"),
    ("semver_gt", "version >"),
];

fn op_words(op: &str) -> &str {
    OPS.iter().find(|(o, _)| *o == op).map_or(op, |(_, w)| w)
}

/// One rule in words.
fn describe(rule: &Json) -> Markup {
    let conditions = rule["conditions"].as_array().cloned().unwrap_or_default();
    let values = |c: &Json| {
        c["values"]
            .as_array()
            .map(|v| v.iter().map(Json::to_string).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    html! {
        @if let Some(name) = rule["name"].as_str() { strong { (name) } ": " }
        @if conditions.is_empty() { "everyone" } @else {
            "if "
            @for (i, c) in conditions.iter().enumerate() {
                @if i > 0 { " and " }
                code { (c["attribute"].as_str().unwrap_or("")) } " " (op_words(c["op"].as_str().unwrap_or(""))) " " code { (values(c)) }
            }
        }
        " → "
        @if let Some(variants) = rule["rollout"]["variants"].as_array() {
            "rollout "
            @for (i, v) in variants.iter().enumerate() {
                @if i > 0 { ", " }
                (v["variant"].as_str().unwrap_or("")) " " (v["weight"].to_string()) " (" code { (v["value"].to_string()) } ")"
            }
        } @else {
            code { (rule["value"].to_string()) }
        }
    }
}

/// The rules of `flag` in words, each removable, and the form that adds one.
pub(super) fn section<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    flag: &Json,
    errors: &FieldErrors,
) -> Markup {
    let rules = flag["rules"].as_array().cloned().unwrap_or_default();
    let base = format!(
        "/console/tenants/{}/flags/{}/rules",
        seg(tenant),
        seg(flag["key"].as_str().unwrap_or(""))
    );
    html! {
        section.card aria-labelledby="rules" {
            h2 #rules { "Rules" }
            p.muted { "In order: the first rule whose conditions all hold serves its value; with none, the default value." }
            @if rules.is_empty() { p.muted { "No rules: everyone gets the default value." } } @else {
                ol {
                    @for (i, r) in rules.iter().enumerate() {
                        li { (describe(r)) " " (page::button_form(web, &format!("{base}/{i}/remove"), &format!("Remove rule {}", i + 1), "link")) }
                    }
                }
            }
            h3 { "Add a rule" }
            (add_form(web, &base, errors))
        }
    }
}

fn add_form<P: Platform>(web: &Web<'_, P>, base: &str, errors: &FieldErrors) -> Markup {
    let sent = errors.any();
    let v = |name: &str| {
        if sent {
            web.text(name).to_owned()
        } else {
            String::new()
        }
    };
    let err = |name: &str| errors.field(name);
    html! {
        form method="post" action=(format!("{base}/add")) {
            (page::csrf(web))
            (page::form_errors(errors, &["name", "conditions", "value", "rollout"]))
            div.field {
                label for="rule-name" { "Rule name (optional)" }
                input #rule-name name="name" type="text" value=(v("name"));
            }
            fieldset {
                legend { "Conditions (all must hold; leave a row empty to skip it)" }
                @for i in 0..ROWS {
                    @let a = format!("conditions[{i}].attribute");
                    @let o = format!("conditions[{i}].op");
                    @let vals = format!("conditions[{i}].values");
                    div.filters {
                        div.field { label for=(a) { "Attribute " (i + 1) } input id=(a) name=(a) type="text" value=(v(&a)); }
                        div.field { label for=(o) { "Test " (i + 1) }
                            select id=(o) name=(o) { @for (op, words) in OPS { option value=(op) selected[v(&o) == *op] { (words) } } } }
                        div.field { label for=(vals) { "Values " (i + 1) " (comma separated)" } input id=(vals) name=(vals) type="text" value=(v(&vals)); }
                    }
                    @if let Some(e) = err(&format!("conditions[{i}]")) { p.field-error { (e) } }
                }
            }
            div.field {
                label for="rule-value" { "Serve this value (JSON), or leave empty and fill the rollout" }
                input #rule-value name="value" type="text" value=(v("value"))
                    aria-invalid=[err("value").map(|_| "true")];
                @if let Some(e) = err("value") { p.field-error { (e) } }
            }
            fieldset {
                legend { "Rollout (weights are relative; leave empty to serve the value above)" }
                @for i in 0..ROWS {
                    @let n = format!("rollout.variants[{i}].variant");
                    @let val = format!("rollout.variants[{i}].value");
                    @let w = format!("rollout.variants[{i}].weight");
                    div.filters {
                        div.field { label for=(n) { "Variant " (i + 1) } input id=(n) name=(n) type="text" value=(v(&n)); }
                        div.field { label for=(val) { "Its value " (i + 1) " (JSON)" } input id=(val) name=(val) type="text" value=(v(&val)); }
                        div.field { label for=(w) { "Weight " (i + 1) } input id=(w) name=(w) type="number" min="0" value=(v(&w)); }
                    }
                }
                @if let Some(e) = err("rollout") { p.field-error { (e) } }
            }
            button type="submit" { "Add rule" }
        }
    }
}

/// A typed value: JSON when it reads as JSON, else the text itself.
fn typed(raw: &str) -> Json {
    serde_json::from_str(raw).unwrap_or_else(|_| Json::String(raw.to_owned()))
}

/// The rule the form describes.
fn rule_of<P: Platform>(web: &Web<'_, P>) -> Json {
    let mut rule = Map::new();
    if !web.text("name").is_empty() {
        rule.insert("name".into(), json!(web.text("name")));
    }
    let conditions: Vec<Json> = (0..ROWS)
        .filter(|i| !web.text(&format!("conditions[{i}].attribute")).is_empty())
        .map(|i| {
            let values: Vec<Json> = web
                .text(&format!("conditions[{i}].values"))
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(typed)
                .collect();
            json!({
                "attribute": web.text(&format!("conditions[{i}].attribute")),
                "op": web.text(&format!("conditions[{i}].op")),
                "values": values,
            })
        })
        .collect();
    rule.insert("conditions".into(), Json::Array(conditions));
    let variants: Vec<Json> = (0..ROWS)
        .filter(|i| {
            !web.text(&format!("rollout.variants[{i}].variant"))
                .is_empty()
        })
        .map(|i| {
            let w = web.text(&format!("rollout.variants[{i}].weight"));
            json!({
                "variant": web.text(&format!("rollout.variants[{i}].variant")),
                "value": typed(web.text(&format!("rollout.variants[{i}].value"))),
                "weight": w.parse::<i64>().map_or(Json::String(w.to_owned()), Json::from),
            })
        })
        .collect();
    if variants.is_empty() {
        rule.insert("value".into(), typed(web.text("value")));
    } else {
        rule.insert("rollout".into(), json!({ "variants": variants }));
    }
    Json::Object(rule)
}

/// The definition the API takes back, from the stored flag record.
fn definition(flag: &Json, rules: Vec<Json>) -> Json {
    let mut d = Map::new();
    for k in ["type", "value", "enabled", "description"] {
        if let Some(v) = flag.get(k).filter(|v| !v.is_null()) {
            d.insert(k.into(), v.clone());
        }
    }
    d.insert("rules".into(), Json::Array(rules));
    Json::Object(d)
}

/// `POST .../rules/add` and `POST .../rules/{i}/remove`: the stored definition with the rule
/// added or removed, sent whole. `Err` carries the errors of the add form.
pub(super) async fn change<P: Platform>(
    web: &Web<'_, P>,
    tenant: &str,
    flag: &Json,
    remove: Option<usize>,
) -> Result<Answer, FieldErrors> {
    let mut rules = flag["rules"].as_array().cloned().unwrap_or_default();
    let added = rules.len();
    match remove {
        Some(i) if i < rules.len() => {
            rules.remove(i);
        }
        Some(_) => return Ok(page::not_found(web)),
        None => rules.push(rule_of(web)),
    }
    let key = flag["key"].as_str().unwrap_or("");
    let path = format!("/v1/tenants/{}/flags/{}", seg(tenant), seg(key));
    let reply = api::call(web, Method::PUT, &path, Some(&definition(flag, rules))).await;
    if reply.ok() {
        return Ok(Answer::to(format!(
            "/console/tenants/{}/flags/{}?done=flag-saved",
            seg(tenant),
            seg(key)
        )));
    }
    if !matches!(reply.status, 400 | 422) {
        return Ok(page::error(
            web,
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST),
            "The change was refused.",
        ));
    }
    // The new rule's errors name `rules[<its index>]...`: the add form's fields drop that prefix.
    let mut errors = reply.errors();
    let prefix = format!("rules[{added}].");
    for (field, _) in &mut errors.fields {
        if let Some(rest) = field.strip_prefix(&prefix) {
            *field = rest.to_owned();
        } else if *field == format!("rules[{added}]") {
            *field = "rules".to_owned();
        }
    }
    Err(errors)
}
