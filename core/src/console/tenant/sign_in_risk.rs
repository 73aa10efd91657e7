//! The tenant's sign-in risk (IF-TENANT-CONSOLE, NFR-SEC-006, CON-SEC-008): its recent
//! medium- and high-risk sign-ins, newest first, from `GET /v1/tenant/risky-sign-ins`, and its
//! adaptive-authentication policy from `GET /v1/tenant/risk-policy`, which the owner changes with
//! a form sent to `PUT /v1/tenant/risk-policy` (an admin reads it; the API refuses an admin's
//! change whatever the page shows, and audits the owner's).
//!
//! The form shows what each level requires, what a refresh from a new country does, the
//! new-sign-in notices and the two thresholds; the signals' weights are the API's to change, so
//! the form sends the stored rules back with its thresholds. Choices that are not on the form
//! and thresholds that are not numbers are refused here, in words, before the API sees them:
//! its JSON parser's messages are not for the page.

use ::http::{Method, StatusCode};
use maud::{html, Markup};
use serde_json::{json, Value as Json};

use super::super::api::{self, seg, FieldErrors};
use super::super::page::{self, text, Section};
use super::super::{Answer, Web, PREFIX};
use super::{checkbox, done, failure, is_form_error};
use crate::ports::Platform;

/// How many sign-ins the page lists (the newest; the API keeps 90 days of them).
const LISTED: &str = "50";

/// What a level may require, as the form offers it.
const ACTIONS: &[(&str, &str)] = &[
    ("allow", "Allow"),
    ("second_factor", "Second factor"),
    ("email_code", "Emailed code"),
    ("block", "Block"),
];

/// What a refresh from a new country may do.
const REFRESH: &[(&str, &str)] = &[
    ("revoke", "End the session (sign in again)"),
    ("allow", "Allow"),
];

const LEVEL_FILTER: &[(&str, &str)] = &[
    ("", "Medium and high"),
    ("medium", "Medium"),
    ("high", "High"),
];

/// The levels and the words the page uses for them.
const LEVELS: &[(&str, &str)] = &[
    ("low", "Low risk"),
    ("medium", "Medium risk"),
    ("high", "High risk"),
];

fn words<'a>(table: &[(&str, &'a str)], value: &'a str) -> &'a str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or(value, |(_, w)| w)
}

fn method_words(m: &str) -> &str {
    match m {
        "password" => "Password",
        "passkey" => "Passkey",
        "sso" => "Single sign-on",
        "refresh" => "Token refresh",
        other => other,
    }
}

fn signal_words(s: &str) -> &str {
    match s {
        "new_device" => "new device",
        "new_country" => "new country",
        "impossible_travel" => "impossible travel",
        "unusual_hour" => "unusual hour",
        "account_failures" => "recent failures on the account",
        "client_failures" => "recent failures from the address",
        other => other,
    }
}

fn outcome_words(o: &str) -> &str {
    match o {
        "success" => "Signed in",
        "challenged" => "Step-up not passed",
        "blocked" => "Blocked",
        "revoked" => "Session ended",
        other => other,
    }
}

fn level_badge(level: &str) -> Markup {
    let word = match level {
        "medium" => "Medium",
        "high" => "High",
        other => other,
    };
    html! { span class=(format!("status status-{level}")) { (word) } }
}

fn may_see<P: Platform>(web: &Web<'_, P>) -> bool {
    web.session
        .as_ref()
        .is_some_and(|s| s.role == "owner" || s.role == "admin")
}

fn is_owner<P: Platform>(web: &Web<'_, P>) -> bool {
    web.session.as_ref().is_some_and(|s| s.role == "owner")
}

/// The policy as the form shows it: the stored one, or what was just typed.
struct Shown {
    low: String,
    medium: String,
    high: String,
    refresh: String,
    notify: bool,
    medium_at: String,
    high_at: String,
}

impl Shown {
    fn stored(p: &Json) -> Self {
        let num = |k: &str| {
            p["rules"][k]
                .as_i64()
                .map(|n| n.to_string())
                .unwrap_or_default()
        };
        Shown {
            low: text(p, "low").to_owned(),
            medium: text(p, "medium").to_owned(),
            high: text(p, "high").to_owned(),
            refresh: text(p, "refresh_new_country").to_owned(),
            notify: p["notify_new_sign_in"].as_bool() == Some(true),
            medium_at: num("medium_at"),
            high_at: num("high_at"),
        }
    }

    fn typed<P: Platform>(web: &Web<'_, P>) -> Self {
        Shown {
            low: web.text("low").to_owned(),
            medium: web.text("medium").to_owned(),
            high: web.text("high").to_owned(),
            refresh: web.text("refresh_new_country").to_owned(),
            notify: web.field("notify_new_sign_in").is_some(),
            medium_at: web.text("medium_at").to_owned(),
            high_at: web.text("high_at").to_owned(),
        }
    }
}

/// `GET /console/tenant/sign-in-risk`: the risky sign-ins (filtered by `level`) and the policy;
/// `refused` re-shows the owner's form with what was typed and why it was refused.
pub(super) async fn show<P: Platform>(web: &Web<'_, P>, refused: Option<FieldErrors>) -> Answer {
    if !may_see(web) {
        return page::not_found(web);
    }
    let level = web.q("level").unwrap_or("");
    let path = page::link_with(
        "/v1/tenant/risky-sign-ins",
        &[("level", level), ("limit", LISTED)],
    );
    let list = api::call(web, Method::GET, &path, None).await;
    if !list.ok() && !is_form_error(&list) {
        return failure(web, &list);
    }
    let filter_errors = if list.ok() {
        FieldErrors::none()
    } else {
        list.errors()
    };
    let policy = api::call(web, Method::GET, "/v1/tenant/risk-policy", None).await;
    if !policy.ok() {
        return failure(web, &policy);
    }
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let shown = match refused {
        Some(_) => Shown::typed(web),
        None => Shown::stored(&policy.body),
    };
    let body = html! {
        @if let Some(n) = done(web) { (n) }
        section aria-labelledby="risky" {
            h2 #risky { "Risky sign-ins" }
            p.muted { "The " (LISTED) " most recent sign-ins the rules found medium or high risk, newest first, from the last 90 days. Neither the address nor the device identifier is kept in clear, and neither is shown." }
            form.filters method="get" action=(format!("{PREFIX}/tenant/sign-in-risk")) role="search" {
                (page::select("level", "Level", LEVEL_FILTER, level, &filter_errors))
                button.secondary type="submit" { "Filter" }
            }
            (page::form_errors(&filter_errors, &["level"]))
            (sign_in_table(&items))
        }
        @if is_owner(web) {
            (policy_form(web, &shown, refused.as_ref().unwrap_or(&FieldErrors::none())))
        } @else {
            (policy_facts(&shown))
        }
    };
    Answer::Page(
        status,
        page::frame(web, Section::SignInRisk, "Sign-in risk", body),
    )
}

fn sign_in_table(items: &[Json]) -> Markup {
    html! {
        @if items.is_empty() {
            p.muted #no-risky { "No risky sign-in." }
        } @else {
            table #risky-sign-ins {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "User" } th scope="col" { "Method" }
                    th scope="col" { "Level" } th scope="col" { "Required" } th scope="col" { "Signals" }
                    th scope="col" { "Country" } th scope="col" { "Device" } th scope="col" { "Outcome" }
                } }
                tbody {
                    @for s in items {
                        @let signals: Vec<&str> = s["signals"].as_array().map(|a| a.iter().filter_map(Json::as_str).map(signal_words).collect()).unwrap_or_default();
                        tr {
                            td { (page::when(s["created_at"].as_i64())) }
                            td {
                                @match s["email"].as_str() {
                                    Some(email) => a href=(format!("{PREFIX}/tenant/users/{}", seg(text(s, "user_id")))) { (email) },
                                    None => span.muted { "Erased user" },
                                }
                            }
                            td { (method_words(text(s, "method"))) }
                            td { (level_badge(text(s, "level"))) }
                            td { (words(ACTIONS, text(s, "action"))) }
                            td { (signals.join(", ")) }
                            td { (s["country"].as_str().unwrap_or("—")) }
                            td { (s["device_label"].as_str().unwrap_or("—")) }
                            td { (outcome_words(text(s, "outcome"))) }
                        }
                    }
                }
            }
        }
    }
}

/// What each choice means, under both the form and the read-only policy.
fn explained() -> Markup {
    html! {
        ul.muted {
            li { strong { "Allow" } ": the user signs in as they would anyway (with their second factor if they have one)." }
            li { strong { "Second factor" } ": their authenticator app or passkey; a user with neither cannot sign in at that level." }
            li { strong { "Emailed code" } ": their authenticator app or passkey if they have one, else a one-time code mailed to them." }
            li { strong { "Block" } ": refused, with the same answer as a wrong password." }
        }
    }
}

/// The policy read-only (an admin's view).
fn policy_facts(p: &Shown) -> Markup {
    html! {
        section.card aria-labelledby="risk-policy" {
            h2 #risk-policy { "Risk policy" }
            dl.facts {
                @for (level, label) in LEVELS {
                    @let action = match *level { "low" => &p.low, "medium" => &p.medium, _ => &p.high };
                    dt { (label) } dd { (words(ACTIONS, action)) }
                }
                dt { "Refresh from a new country" } dd { (words(REFRESH, &p.refresh)) }
                dt { "Notice of a sign-in from a new device or country" } dd { @if p.notify { "mailed to the user" } @else { "off" } }
                dt { "Medium risk from score" } dd { (p.medium_at) }
                dt { "High risk from score" } dd { (p.high_at) }
            }
            (explained())
            p.muted { "Only the tenant's owner changes the risk policy." }
        }
    }
}

fn policy_form<P: Platform>(web: &Web<'_, P>, p: &Shown, errors: &FieldErrors) -> Markup {
    let fields = [
        "low",
        "medium",
        "high",
        "refresh_new_country",
        "medium_at",
        "high_at",
    ];
    html! {
        section.card aria-labelledby="risk-policy" {
            h2 #risk-policy { "Risk policy" }
            p { "What a sign-in whose password (or passkey, or single sign-on) was right must also pass, by its level of risk." }
            (explained())
            form method="post" action=(format!("{PREFIX}/tenant/sign-in-risk/policy")) {
                (page::csrf(web))
                (page::form_errors(errors, &fields))
                (page::select("low", "Low risk requires", ACTIONS, &p.low, errors))
                (page::select("medium", "Medium risk requires", ACTIONS, &p.medium, errors))
                (page::select("high", "High risk requires", ACTIONS, &p.high, errors))
                (page::select("refresh_new_country", "A token refresh from a country the user never signed in from", REFRESH, &p.refresh, errors))
                (checkbox("notify_new_sign_in", "Mail the user a notice of a sign-in from a new device or country", p.notify))
                (page::input("medium_at", "Medium risk from score", &p.medium_at, "number", errors, true))
                (page::input("high_at", "High risk from score", &p.high_at, "number", errors, true))
                button type="submit" { "Save risk policy" }
            }
        }
    }
}

/// The form's own checks: each choice one of the form's, each threshold a whole number.
fn check_form(s: &Shown) -> FieldErrors {
    let mut fields = Vec::new();
    for (name, value, options) in [
        ("low", &s.low, ACTIONS),
        ("medium", &s.medium, ACTIONS),
        ("high", &s.high, ACTIONS),
        ("refresh_new_country", &s.refresh, REFRESH),
    ] {
        if !options.iter().any(|(v, _)| *v == value.as_str()) {
            fields.push((
                name.to_owned(),
                "choose one of the listed options".to_owned(),
            ));
        }
    }
    for (name, value) in [("medium_at", &s.medium_at), ("high_at", &s.high_at)] {
        if value.parse::<u32>().is_err() {
            fields.push((name.to_owned(), "must be a whole number".to_owned()));
        }
    }
    FieldErrors {
        detail: None,
        fields,
    }
}

/// `POST /console/tenant/sign-in-risk/policy`: the owner's change, through the API (which
/// refuses an admin and audits the change), keeping the stored rules besides the thresholds.
pub(super) async fn save<P: Platform>(web: &Web<'_, P>) -> Answer {
    if !may_see(web) {
        return page::not_found(web);
    }
    let typed = Shown::typed(web);
    let refused = check_form(&typed);
    if refused.any() {
        return show(web, Some(refused)).await;
    }
    let current = api::call(web, Method::GET, "/v1/tenant/risk-policy", None).await;
    if !current.ok() {
        return failure(web, &current);
    }
    let mut rules = current.body["rules"].clone();
    if !rules.is_object() {
        rules = json!({});
    }
    rules["medium_at"] = json!(typed.medium_at.parse::<u32>().unwrap_or_default());
    rules["high_at"] = json!(typed.high_at.parse::<u32>().unwrap_or_default());
    let body = json!({
        "low": typed.low, "medium": typed.medium, "high": typed.high,
        "refresh_new_country": typed.refresh, "notify_new_sign_in": typed.notify,
        "rules": rules,
    });
    let reply = api::call(web, Method::PUT, "/v1/tenant/risk-policy", Some(&body)).await;
    if reply.ok() {
        return Answer::to(format!("{PREFIX}/tenant/sign-in-risk?done=risk-policy"));
    }
    if is_form_error(&reply) {
        let mut errors = reply.errors();
        for (field, _) in &mut errors.fields {
            if let Some(threshold) = field.strip_prefix("rules.") {
                if threshold == "medium_at" || threshold == "high_at" {
                    *field = threshold.to_owned();
                }
            }
        }
        if errors.fields.is_empty() {
            errors.detail =
                Some("The risk policy was refused. Check the values and send it again.".to_owned());
        }
        return show(web, Some(errors)).await;
    }
    failure_owner_only(web, &reply)
}

fn failure_owner_only<P: Platform>(web: &Web<'_, P>, reply: &api::Reply) -> Answer {
    page::failure(
        web,
        reply,
        Some("Only the tenant's owner changes the risk policy."),
    )
}
