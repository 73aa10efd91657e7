//! The auditor console (IF-AUDIT-CONSOLE): audit events by tenant and time range, their CSV,
//! the hash chain's verification, and billing usage. Operators see it too. Nothing here changes
//! anything, so every page is a GET and no form carries a CSRF token.
//!
//! Everything is read through the API as the signed-in person ([`api::call`]): the CSV export
//! (`/v1/audit/export.csv`), the chain check (`/v1/audit/verify`) and a tenant's usage
//! (`/v1/tenants/{id}/usage`). The export filters by tenant, period and action; the actor and
//! outcome filters are the console's, applied to the rows it parsed. So a page of the table
//! starts at one of the export's cursors plus a count of matching rows that earlier pages
//! already showed from it ([`Start`]), and the cursor stays the API's, never built here.

mod usage;

use ::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime};
use maud::{html, Markup};
use serde_json::Value as Json;

use super::api::{self, FieldErrors, Reply};
use super::page::{self, Section};
use super::{Answer, Web, PREFIX};
use crate::events::csv::{records, unneutralised};
use crate::ports::Platform;
use crate::time::{format_rfc3339, parse_rfc3339};

/// Rows in one page of the events table.
const PAGE_ROWS: usize = 50;
/// Rows of each export page read while the console filters by actor or outcome.
const SCAN_ROWS: usize = 500;
/// Export pages one table page reads at most: a filter that matches little stops there, with a
/// link that reads on, rather than reading a whole range in one request.
const SCAN_PAGES: usize = 20;
/// Rows per export page read for a download (a handful in unit tests, so that they see a
/// download put several pages together).
const DOWNLOAD_ROWS: usize = if cfg!(test) { 2 } else { 20_000 };
/// Largest CSV the console hands over in one download (a Worker holds it in memory): a larger
/// range is refused with a page saying to narrow it or page the API's export.
const MAX_DOWNLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Export pages one download reads at most.
const MAX_DOWNLOAD_PAGES: usize = 500;
/// Earlier page starts the Previous link can go back through.
const MAX_BACK: usize = 100;

/// Dispatches `/console/audit/...` (`rest`: the path after `audit/`).
pub(super) async fn route<P: Platform>(web: &mut Web<'_, P>, rest: &[&str]) -> Answer {
    if web.method != Method::GET && web.method != Method::HEAD {
        return page::not_found(web);
    }
    match rest {
        [] => events(web).await,
        ["export.csv"] => download(web).await,
        ["verify"] => verify(web).await,
        ["usage"] => usage::page(web).await,
        ["usage.csv"] => usage::download(web).await,
        _ => page::not_found(web),
    }
}

/// The filters of the audit pages as typed in the form; every link of the pages carries them.
#[derive(Debug, Clone, Default)]
struct Filters {
    tenant: String,
    from: String,
    to: String,
    actor: String,
    action: String,
    /// `success`, `failure` or empty (any).
    outcome: String,
}

impl Filters {
    fn read<P: Platform>(web: &Web<'_, P>) -> Self {
        let q = |name: &str| web.q(name).unwrap_or("").to_owned();
        let outcome = match web.q("outcome") {
            Some(o @ ("success" | "failure")) => o.to_owned(),
            _ => String::new(),
        };
        Filters {
            tenant: q("tenant"),
            from: q("from"),
            to: q("to"),
            actor: q("actor"),
            action: q("action"),
            outcome,
        }
    }

    /// The query of a console link carrying every filter.
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("tenant", &self.tenant),
            ("from", &self.from),
            ("to", &self.to),
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
        ]
    }

    /// The API's `from` and `to`, RFC 3339; a field that is not a date-time is a field error.
    fn period(&self) -> Result<Vec<(&'static str, String)>, FieldErrors> {
        let mut out = Vec::new();
        let mut errors = FieldErrors::none();
        for (name, typed) in [("from", &self.from), ("to", &self.to)] {
            if typed.is_empty() {
                continue;
            }
            match instant(typed) {
                Some(at) => out.push((name, at)),
                None => errors.fields.push((
                    name.to_owned(),
                    "must be a date and time, as 2026-01-31T09:00 (UTC)".to_owned(),
                )),
            }
        }
        if errors.any() {
            return Err(errors);
        }
        Ok(out)
    }

    /// The API's query: the tenant and the period, and the action when `with_action` (only the
    /// CSV export takes one).
    fn api_query(&self, with_action: bool) -> Result<Vec<(&'static str, String)>, FieldErrors> {
        let mut q = self.period()?;
        if !self.tenant.is_empty() {
            q.push(("tenant", self.tenant.clone()));
        }
        if with_action && !self.action.is_empty() {
            q.push(("action", self.action.clone()));
        }
        Ok(q)
    }

    /// Whether the console filters rows itself (the API has no actor or outcome filter).
    fn console_side(&self) -> bool {
        !self.actor.is_empty() || !self.outcome.is_empty()
    }

    /// Whether a row passes the actor and outcome filters. The actor matches the exported cell
    /// or the value before the export neutralised it against spreadsheet formulas.
    fn keeps(&self, row: &AuditRow) -> bool {
        let actor = self.actor.is_empty()
            || row.actor == self.actor
            || unneutralised(&row.actor) == self.actor;
        actor && (self.outcome.is_empty() || row.outcome == self.outcome)
    }
}

/// A typed instant as the API's RFC 3339: a `datetime-local` value (`2026-01-31T09:00`,
/// seconds optional) or a date, both read as UTC, or RFC 3339 itself.
fn instant(typed: &str) -> Option<String> {
    if let Some(ms) = parse_rfc3339(typed) {
        return Some(format_rfc3339(ms));
    }
    let local = [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(typed, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(typed, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    Some(format_rfc3339(local.and_utc().timestamp_millis()))
}

/// One row of the audit CSV, in the columns the table shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AuditRow {
    tenant: String,
    time: String,
    actor: String,
    /// `operator`, `user`, `system` for Edgeplane's own events; empty for an app's.
    actor_type: String,
    action: String,
    resource: String,
    outcome: String,
    request_id: String,
    /// The app that reported it; empty for Edgeplane's own events.
    app: String,
}

/// The rows of an export page. Cells are found by the header's column names, so a column the
/// export adds later changes nothing here.
fn parse_rows(csv: &[u8]) -> Vec<AuditRow> {
    let mut recs = records(&String::from_utf8_lossy(csv)).into_iter();
    let Some(header) = recs.next() else {
        return Vec::new();
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let [tenant, time, actor, action, resource, outcome, app, metadata] = [
        "tenant_id",
        "timestamp",
        "actor_id",
        "action",
        "resource_id",
        "outcome",
        "app_id",
        "metadata",
    ]
    .map(col);
    recs.map(|r| {
        let cell = |i: Option<usize>| i.and_then(|i| r.get(i)).cloned().unwrap_or_default();
        let meta: Json = serde_json::from_str(&cell(metadata)).unwrap_or(Json::Null);
        let meta_text = |k: &str| meta.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
        AuditRow {
            tenant: cell(tenant),
            time: cell(time),
            actor: cell(actor),
            actor_type: meta_text("actor_type"),
            action: cell(action),
            resource: cell(resource),
            outcome: cell(outcome),
            request_id: meta_text("request_id"),
            app: cell(app),
        }
    })
    .collect()
}

/// One page of the API's CSV export: its bytes and the cursor of the next page, if one follows.
async fn export<P: Platform>(
    web: &Web<'_, P>,
    query: &[(&'static str, String)],
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<u8>, Option<String>), Reply> {
    let limit = limit.to_string();
    let mut pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("limit", &limit));
    if let Some(c) = cursor {
        pairs.push(("cursor", c));
    }
    let path = page::link_with("/v1/audit/export.csv", &pairs);
    let reply = api::call(web, Method::GET, &path, None).await;
    if !reply.ok() {
        return Err(reply);
    }
    let next = reply
        .headers
        .get("x-next-cursor")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((reply.raw, next))
}

/// Where a page of the table starts: the export cursor of the first export page it reads (none:
/// the first page) and how many matching rows of that export page earlier pages showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Start {
    cursor: Option<String>,
    skip: usize,
}

impl Start {
    /// `<skip>~<cursor in base64url>`: neither part can hold `~` or `.`, and `.` joins the
    /// starts of earlier pages in the `back` parameter.
    fn token(&self) -> String {
        let cursor = self.cursor.as_deref().unwrap_or("");
        format!("{}~{}", self.skip, URL_SAFE_NO_PAD.encode(cursor))
    }

    fn parse(token: &str) -> Option<Self> {
        let (skip, cursor) = token.split_once('~')?;
        let cursor = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        Some(Start {
            cursor: (!cursor.is_empty()).then_some(cursor),
            skip: skip.parse().ok()?,
        })
    }
}

/// What one page of the table shows.
#[derive(Debug, Default)]
struct Found {
    rows: Vec<AuditRow>,
    /// Where the next page starts; none on the last page.
    next: Option<Start>,
    /// True when the page stopped after [`SCAN_PAGES`] export pages without filling up.
    bounded: bool,
}

/// Reads the table's page from `start`: export pages, filtered by actor and outcome, until
/// [`PAGE_ROWS`] rows match, the export ends, or [`SCAN_PAGES`] pages were read. Without a
/// console-side filter each export page asks for exactly the rows still wanted, so every next
/// page starts at an export cursor; with one, the next page may start inside an export page,
/// after the matching rows already shown.
async fn scan<P: Platform>(
    web: &Web<'_, P>,
    f: &Filters,
    query: &[(&'static str, String)],
    start: Start,
) -> Result<Found, Reply> {
    let mut rows = Vec::new();
    let mut at = start;
    for _ in 0..SCAN_PAGES {
        let room = PAGE_ROWS - rows.len();
        let limit = if f.console_side() { SCAN_ROWS } else { room };
        let (csv, next) = export(web, query, at.cursor.as_deref(), limit).await?;
        let matching: Vec<AuditRow> = parse_rows(&csv)
            .into_iter()
            .filter(|r| f.keeps(r))
            .skip(at.skip)
            .collect();
        if matching.len() > room {
            rows.extend(matching.into_iter().take(room));
            let next = Start {
                skip: at.skip + room,
                cursor: at.cursor,
            };
            return Ok(found(rows, Some(next)));
        }
        rows.extend(matching);
        let Some(cursor) = next else {
            return Ok(found(rows, None));
        };
        at = Start {
            cursor: Some(cursor),
            skip: 0,
        };
        if rows.len() == PAGE_ROWS {
            return Ok(found(rows, Some(at)));
        }
    }
    Ok(Found {
        rows,
        next: Some(at),
        bounded: true,
    })
}

fn found(rows: Vec<AuditRow>, next: Option<Start>) -> Found {
    Found {
        rows,
        next,
        bounded: false,
    }
}

/// The page's place in the table: its start, the starts of earlier pages (oldest first) for
/// Previous, and its number.
#[derive(Debug, Clone, Default)]
struct Pager {
    start: Start,
    back: Vec<String>,
    number: usize,
}

impl Pager {
    fn read<P: Platform>(web: &Web<'_, P>) -> Self {
        let start = web.q("at").and_then(Start::parse).unwrap_or_default();
        let back: Vec<String> = web
            .q("back")
            .map(|b| {
                b.split('.')
                    .filter(|t| Start::parse(t).is_some())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let number = web
            .q("page")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(1);
        Pager {
            start,
            back,
            number,
        }
    }

    /// The link to the page starting at `start`, after `back`.
    fn link(f: &Filters, start: &str, back: &[String], number: usize) -> String {
        let back = back.join(".");
        let number = number.to_string();
        let mut pairs = f.pairs();
        pairs.extend([("at", start), ("back", back.as_str()), ("page", &number)]);
        page::link_with(&format!("{PREFIX}/audit"), &pairs)
    }

    fn previous(&self, f: &Filters) -> Option<String> {
        let (last, earlier) = self.back.split_last()?;
        Some(Self::link(
            f,
            last,
            earlier,
            self.number.saturating_sub(1).max(1),
        ))
    }

    fn next(&self, f: &Filters, next: &Start) -> String {
        let mut back = self.back.clone();
        back.push(self.start.token());
        let keep_from = back.len().saturating_sub(MAX_BACK);
        Self::link(
            f,
            &next.token(),
            &back[keep_from..],
            self.number.saturating_add(1),
        )
    }
}

/// `GET /console/audit`: the filter form and a page of matching events.
async fn events<P: Platform>(web: &Web<'_, P>) -> Answer {
    let f = Filters::read(web);
    let pager = Pager::read(web);
    let tenants = tenant_choices(web).await;
    let (found, errors) = match f.api_query(true) {
        Err(errors) => (None, errors),
        Ok(query) => match scan(web, &f, &query, pager.start.clone()).await {
            Ok(found) => (Some(found), FieldErrors::none()),
            Err(reply) if matches!(reply.status, 400 | 422) => (None, reply.errors()),
            Err(reply) => return failure(web, &reply),
        },
    };
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        (sub_nav("events"))
        (filter_form(&f, tenants.as_deref(), &errors))
        (page::form_errors(&errors, &["tenant", "from", "to", "actor", "action", "outcome"]))
        (range_actions(&f))
        @if let Some(found) = &found {
            (event_table(&found.rows, tenants.as_deref()))
            (pager_links(&f, &pager, found))
        }
    };
    Answer::Page(
        status,
        page::frame(web, Section::Audit, "Audit events", body),
    )
}

/// The links between the audit pages.
fn sub_nav(current: &str) -> Markup {
    let item = |key: &str, href: &str, label: &str| {
        html! { li { a href=(href) aria-current=[(key == current).then_some("page")] { (label) } } }
    };
    html! {
        nav.sub aria-label="Audit" {
            ul.actions {
                (item("events", "/console/audit", "Events"))
                (item("usage", "/console/audit/usage", "Billing usage"))
            }
        }
    }
}

/// The tenants to choose from, `(id, label)`: the list when it fits on one page of the API's
/// (the form offers a select), `None` otherwise (the form asks for the id).
async fn tenant_choices<P: Platform>(web: &Web<'_, P>) -> Option<Vec<(String, String)>> {
    let reply = api::call(web, Method::GET, "/v1/tenants?limit=100", None).await;
    if !reply.ok() || reply.body["next_cursor"].is_string() {
        return None;
    }
    let items = reply.body["items"].as_array()?;
    Some(
        items
            .iter()
            .map(|t| {
                let text = |k: &str| t.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
                (text("id"), format!("{} ({})", text("name"), text("domain")))
            })
            .collect(),
    )
}

/// The id Edgeplane's platform-wide audit events are filed under.
const PLATFORM_STREAM: &str = crate::events::jobs::PLATFORM_TENANT;

/// The tenant field: a select of `choices` (led by `first`, the empty choice, and the platform's
/// own stream when `platform`), or a text field for the id when there are too many tenants.
fn tenant_field(
    choices: Option<&[(String, String)]>,
    selected: &str,
    first: &str,
    platform: bool,
    errors: &FieldErrors,
) -> Markup {
    let Some(list) = choices else {
        return page::input("tenant", "Tenant id", selected, "text", errors, false);
    };
    let mut options: Vec<(&str, &str)> = vec![("", first)];
    if platform {
        options.push((PLATFORM_STREAM, "Platform (no tenant)"));
    }
    options.extend(list.iter().map(|(id, label)| (id.as_str(), label.as_str())));
    if !options.iter().any(|(id, _)| *id == selected) {
        options.push((selected, selected));
    }
    page::select("tenant", "Tenant", &options, selected, errors)
}

fn filter_form(f: &Filters, tenants: Option<&[(String, String)]>, errors: &FieldErrors) -> Markup {
    let outcomes = [("", "Any"), ("success", "Success"), ("failure", "Failure")];
    html! {
        form.filters method="get" action="/console/audit" role="search" aria-label="Filter audit events" {
            (tenant_field(tenants, &f.tenant, "All tenants", true, errors))
            (page::input("from", "From (UTC)", &f.from, "datetime-local", errors, false))
            (page::input("to", "To (UTC, exclusive)", &f.to, "datetime-local", errors, false))
            (page::input("actor", "Actor id", &f.actor, "text", errors, false))
            (page::input("action", "Action", &f.action, "text", errors, false))
            (page::select("outcome", "Outcome", &outcomes, &f.outcome, errors))
            button.secondary type="submit" { "Filter" }
        }
    }
}

/// Download, verify and usage links for the chosen tenant and period.
fn range_actions(f: &Filters) -> Markup {
    let api_filters = [
        ("tenant", f.tenant.as_str()),
        ("from", &f.from),
        ("to", &f.to),
        ("action", &f.action),
    ];
    let range = [
        ("tenant", f.tenant.as_str()),
        ("from", &f.from),
        ("to", &f.to),
    ];
    html! {
        div.actions {
            a.button href=(page::link_with("/console/audit/export.csv", &api_filters)) { "Download CSV" }
            a.button href=(page::link_with("/console/audit/verify", &range)) { "Verify the chain" }
        }
        p.muted {
            "The CSV holds every event of the tenant, period and action chosen; the actor and outcome filters narrow the table below only. Times are UTC; the table lists events oldest first."
        }
    }
}

/// Who acted, as the table says it: the actor type Edgeplane recorded, or the app that
/// reported the event.
fn actor_kind(row: &AuditRow) -> String {
    match (row.actor_type.as_str(), row.app.as_str()) {
        ("", "") => "unknown".to_owned(),
        ("", app) => format!("reported by app {app}"),
        (kind, _) => kind.to_owned(),
    }
}

/// A tenant as the pages name it: its name and domain when listed, else its id.
fn tenant_label(tenants: Option<&[(String, String)]>, id: &str) -> String {
    if id == PLATFORM_STREAM {
        return "Platform".to_owned();
    }
    tenants
        .and_then(|l| l.iter().find(|(t, _)| t == id))
        .map_or_else(|| id.to_owned(), |(_, label)| label.clone())
}

fn event_table(rows: &[AuditRow], tenants: Option<&[(String, String)]>) -> Markup {
    let tenant_name = |id: &str| tenant_label(tenants, id);
    html! {
        @if rows.is_empty() {
            p.muted #no-events { "No audit event matches." }
        } @else {
            table #audit-events {
                caption.muted { "Audit events, oldest first" }
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Tenant" } th scope="col" { "Actor" }
                    th scope="col" { "Action" } th scope="col" { "Resource" } th scope="col" { "Outcome" }
                    th scope="col" { "Request id" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { time datetime=(r.time) { (r.time) } }
                            td { (tenant_name(&r.tenant)) }
                            td { (r.actor) br; span.muted { (actor_kind(r)) } }
                            td { (r.action) }
                            td { (r.resource) }
                            td { (outcome_badge(&r.outcome)) }
                            td { @if r.request_id.is_empty() { span.muted { "—" } } @else { code { (r.request_id) } } }
                        }
                    }
                }
            }
        }
    }
}

fn outcome_badge(outcome: &str) -> Markup {
    let class = if outcome == "success" {
        "status status-active"
    } else {
        "status status-down"
    };
    html! { span class=(class) { (outcome) } }
}

fn pager_links(f: &Filters, pager: &Pager, found: &Found) -> Markup {
    html! {
        @if found.bounded {
            p.muted { "This page stopped after reading " (SCAN_PAGES * SCAN_ROWS) " events without filling up; Next reads on." }
        }
        nav.actions aria-label="Pages of events" {
            span { "Page " (pager.number) }
            @if let Some(prev) = pager.previous(f) {
                a href=(prev) rel="prev" { "Previous page" }
            }
            @if let Some(next) = &found.next {
                a href=(pager.next(f, next)) rel="next" { "Next page" }
            }
        }
    }
}

/// An API answer that is neither a success nor a form error: the page for it.
fn failure<P: Platform>(web: &Web<'_, P>, reply: &Reply) -> Answer {
    page::failure(web, reply, Some("Your role does not allow reading this."))
}

/// The file name of a download: `<what>-<tenant or all>-<from or start>-<to or now>.csv`.
fn file_name(what: &str, tenant: &str, from: &str, to: &str) -> String {
    let or = |v: &str, dflt: &str| {
        if v.is_empty() {
            dflt.to_owned()
        } else {
            v.replace(':', "")
        }
    };
    format!(
        "{what}-{}-{}-{}.csv",
        or(tenant, "all"),
        or(from, "start"),
        or(to, "now")
    )
}

/// `GET /console/audit/export.csv`: the API's CSV for the tenant, period and action, every
/// page of it in one file (the header once).
async fn download<P: Platform>(web: &Web<'_, P>) -> Answer {
    let f = Filters::read(web);
    let query = match f.api_query(true) {
        Ok(q) => q,
        Err(errors) => return field_error_page(web, &errors),
    };
    let mut out: Vec<u8> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_DOWNLOAD_PAGES {
        let (csv, next) = match export(web, &query, cursor.as_deref(), DOWNLOAD_ROWS).await {
            Ok(page) => page,
            Err(reply) if matches!(reply.status, 400 | 422) => {
                return field_error_page(web, &reply.errors())
            }
            Err(reply) => return failure(web, &reply),
        };
        let rows = if out.is_empty() {
            &csv[..]
        } else {
            after_header(&csv)
        };
        if out.len() + rows.len() > MAX_DOWNLOAD_BYTES {
            return too_large(web);
        }
        out.extend_from_slice(rows);
        match next {
            Some(n) if cursor.as_deref() != Some(n.as_str()) => cursor = Some(n),
            _ => {
                let name = file_name("audit", &f.tenant, &f.from, &f.to);
                return Answer::Download("text/csv; charset=utf-8", name, out);
            }
        }
    }
    too_large(web)
}

/// A CSV page without its header record (the export's header holds no quoted line break).
fn after_header(csv: &[u8]) -> &[u8] {
    csv.windows(2)
        .position(|w| w == b"\r\n")
        .map_or(&[], |at| &csv[at + 2..])
}

fn too_large<P: Platform>(web: &Web<'_, P>) -> Answer {
    page::error(
        web,
        StatusCode::UNPROCESSABLE_ENTITY,
        "This range holds more events than one download carries. Narrow the period or choose a tenant, or page through GET /v1/audit/export.csv.",
    )
}

/// A refused filter, on a page of its own (downloads and the chain check have no form).
fn field_error_page<P: Platform>(web: &Web<'_, P>, errors: &FieldErrors) -> Answer {
    let text: Vec<String> = errors
        .fields
        .iter()
        .map(|(field, msg)| format!("{field} {msg}"))
        .chain(errors.detail.clone())
        .collect();
    page::error(web, StatusCode::UNPROCESSABLE_ENTITY, &text.join("; "))
}

/// `GET /console/audit/verify`: the hash chain of the chosen tenant (or every stream) over the
/// chosen period, recomputed by the API.
async fn verify<P: Platform>(web: &Web<'_, P>) -> Answer {
    let f = Filters::read(web);
    let query = match f.api_query(false) {
        Ok(q) => q,
        Err(errors) => return field_error_page(web, &errors),
    };
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = api::call(
        web,
        Method::GET,
        &page::link_with("/v1/audit/verify", &pairs),
        None,
    )
    .await;
    if matches!(reply.status, 400 | 422) {
        return field_error_page(web, &reply.errors());
    }
    if !reply.ok() {
        return failure(web, &reply);
    }
    let back = page::link_with(
        "/console/audit",
        &[("tenant", &f.tenant), ("from", &f.from), ("to", &f.to)],
    );
    let tenant = match f.tenant.as_str() {
        "" => "every tenant".to_owned(),
        id => tenant_label(tenant_choices(web).await.as_deref(), id),
    };
    let body = html! {
        (sub_nav("verify"))
        p {
            "Tenant " strong { (tenant) }
            ", from " strong { (if f.from.is_empty() { "the start" } else { &f.from }) }
            " to " strong { (if f.to.is_empty() { "now" } else { &f.to }) } " (UTC)."
        }
        (verdict(&reply.body))
        p { a href=(back) { "Back to the events" } }
    };
    Answer::page(page::frame(web, Section::Audit, "Chain verification", body))
}

/// `1 record`, `2 records`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The chain check's answer (`VerifyEventChainResponse`) in words.
fn verdict(v: &Json) -> Markup {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let text = |j: &Json, k: &str| j.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    let key_note = match text(v, "anchor_key").as_str() {
        "configured" => None,
        "development" => Some(("muted", "Archives are anchored with the public development key: the check shows the chain is whole, not that nobody rewrote it.")),
        "missing" => Some(("error", "No anchor key is configured here: archives cannot be anchored or their anchors checked.")),
        _ => Some(("error", "The configured anchor key is too short to use.")),
    };
    let brk = &v["first_break"];
    html! {
        @if v["ok"].as_bool() == Some(true) {
            div.notice role="status" #verdict {
                strong { "Verified." } " Every link of the chain holds: "
                (count(n("records"), "record")) " rehashed in " (count(n("streams"), "stream")) ", "
                (count(n("archives"), "archive object")) " and " (count(n("anchors"), "anchor")) " checked."
            }
            @if n("records") == 0 { p.muted { "No event lies in this period." } }
        } @else {
            div.error role="alert" #verdict {
                strong { "Broken." } " The first broken link:"
                dl.facts {
                    dt { "Stream" } dd { code { (text(brk, "stream")) } }
                    dt { "Sequence" } dd { (brk["seq"].as_i64().unwrap_or(0)) }
                    dt { "Where" } dd { @if text(brk, "location") == "tail" { "the unarchived tail" } @else { "archive object " code { (text(brk, "location")) } } }
                    dt { "What" } dd { code { (text(brk, "code")) } }
                    dt { "Why" } dd { (text(brk, "reason")) }
                }
            }
        }
        @if let Some((class, note)) = key_note { p class=(class) { (note) } }
        dl.facts {
            dt { "Streams" } dd { (n("streams")) }
            dt { "Records" } dd { (n("records")) }
            dt { "Archive objects" } dd { (n("archives")) }
            dt { "Anchors that hold" } dd { (n("anchors")) }
            dt { "Anchor key" } dd { (text(v, "anchor_key")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_instants_become_the_api_s_rfc_3339() {
        let cases = [
            ("2026-01-31T09:00", Some("2026-01-31T09:00:00.000Z")),
            ("2026-01-31T09:00:30", Some("2026-01-31T09:00:30.000Z")),
            ("2026-01-31", Some("2026-01-31T00:00:00.000Z")),
            (
                "2026-01-31T09:00:00+01:00",
                Some("2026-01-31T08:00:00.000Z"),
            ),
            ("yesterday", None),
            ("2026-13-01", None),
        ];
        for (typed, want) in cases {
            assert_eq!(instant(typed).as_deref(), want, "{typed}");
        }
    }

    #[test]
    fn a_page_start_survives_its_token() {
        for start in [
            Start::default(),
            Start {
                cursor: Some("t-1:42".into()),
                skip: 7,
            },
        ] {
            let token = start.token();
            assert!(!token.contains('.'), "{token}");
            assert_eq!(Start::parse(&token), Some(start));
        }
        assert_eq!(Start::parse("x~"), None);
        assert_eq!(Start::parse("3~!!"), None);
    }

    #[test]
    fn rows_are_read_by_column_name_with_quoted_line_breaks() {
        let csv = "tenant_id,seq,event_id,timestamp,received_at,actor_id,action,resource_id,outcome,ip,app_id,metadata,hash\r\n\
                   t1,1,e1,2026-01-01T00:00:00.000Z,x,u1,doc.read,\"two\nlines\",success,,app1,,h\r\n\
                   t1,2,e2,2026-01-01T00:00:01.000Z,x,'-op,tenant.create,t1,failure,,,\"{\"\"actor_type\"\":\"\"operator\"\",\"\"request_id\"\":\"\"r1\"\"}\",h\r\n";
        let rows = parse_rows(csv.as_bytes());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].resource, "two\nlines");
        assert_eq!(actor_kind(&rows[0]), "reported by app app1");
        assert_eq!(
            (rows[1].actor_type.as_str(), rows[1].request_id.as_str()),
            ("operator", "r1")
        );
        let f = Filters {
            actor: "-op".into(),
            ..Filters::default()
        };
        assert!(f.keeps(&rows[1]) && !f.keeps(&rows[0]));
        let f = Filters {
            outcome: "success".into(),
            ..Filters::default()
        };
        assert!(f.keeps(&rows[0]) && !f.keeps(&rows[1]));
    }

    #[test]
    fn a_later_export_page_loses_its_header() {
        assert_eq!(after_header(b"a,b\r\n1,2\r\n"), b"1,2\r\n");
        assert_eq!(after_header(b"a,b\r\n"), b"");
        assert_eq!(
            file_name("audit", "", "2026-01-01T09:00", ""),
            "audit-all-2026-01-01T0900-now.csv"
        );
    }
}
