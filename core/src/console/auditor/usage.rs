//! A tenant's billing usage per UTC day (IF-AUDIT-CONSOLE), read from
//! `GET /v1/tenants/{id}/usage`: a table, a bar chart per event type drawn on the server as
//! inline SVG (presentation attributes only, since the policy allows no inline style, and no
//! script), and the same numbers as CSV. Quantities of different event types are in different
//! units, so each type gets its own chart rather than one stacked bar.

use std::collections::BTreeMap;

use ::http::{Method, StatusCode};
use chrono::NaiveDate;
use maud::{html, Markup};
use serde_json::Value as Json;

use super::super::api::{self, seg, FieldErrors};
use super::super::page::{self, Section};
use super::super::{Answer, Web};
use super::{failure, field_error_page, file_name, sub_nav, tenant_choices, tenant_field, Filters};
use crate::events::csv;
use crate::ports::{Clock as _, Platform};
use crate::time::{date_of, format_day, parse_rfc3339};

/// The period shown when neither end is chosen: the last 30 days.
const DEFAULT_DAYS: i64 = 30;
/// Most days a chart spreads one bar each over; a longer period charts only its days with usage.
const MAX_CHART_DAYS: i64 = 366;
const DAY_MS: i64 = 86_400_000;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    day: String,
    /// The event type.
    kind: String,
    quantity: i64,
    events: i64,
}

/// What reading the summary gave.
enum Read {
    /// No tenant chosen yet.
    NoTenant,
    /// The summary, with its period in unix ms.
    Rows(Vec<UsageRow>, Option<i64>, Option<i64>),
    /// The filters were refused.
    Refused(FieldErrors),
}

/// The usage filters: a tenant and a period, the last 30 days unless an end is chosen.
fn filters<P: Platform>(web: &Web<'_, P>) -> Filters {
    let mut f = Filters::read(web);
    if f.from.is_empty() && f.to.is_empty() {
        let start = web.p.clock().now_ms() - DEFAULT_DAYS * DAY_MS;
        f.from = format!("{}T00:00", format_day(start));
    }
    f
}

async fn read<P: Platform>(web: &Web<'_, P>, f: &Filters) -> Result<Read, Answer> {
    if f.tenant.is_empty() {
        return Ok(Read::NoTenant);
    }
    let period = match f.period() {
        Ok(p) => p,
        Err(errors) => return Ok(Read::Refused(errors)),
    };
    let pairs: Vec<(&str, &str)> = period.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let path = page::link_with(&format!("/v1/tenants/{}/usage", seg(&f.tenant)), &pairs);
    let reply = api::call(web, Method::GET, &path, None).await;
    let refused = |msg: &str| {
        Ok(Read::Refused(FieldErrors {
            detail: None,
            fields: vec![("tenant".to_owned(), msg.to_owned())],
        }))
    };
    match reply.status {
        200 => {}
        400 | 422 => return Ok(Read::Refused(reply.errors())),
        404 => return refused("is not a tenant"),
        410 => return refused("was purged"),
        _ => return Err(failure(web, &reply)),
    }
    let at = |k: &str| reply.body[k].as_str().and_then(parse_rfc3339);
    let rows = reply.body["items"]
        .as_array()
        .map(|items| items.iter().map(usage_row).collect())
        .unwrap_or_default();
    Ok(Read::Rows(rows, at("from"), at("to")))
}

fn usage_row(item: &Json) -> UsageRow {
    let text = |k: &str| item[k].as_str().unwrap_or("").to_owned();
    UsageRow {
        day: text("period"),
        kind: text("type"),
        quantity: item["quantity"].as_i64().unwrap_or(0),
        events: item["events"].as_i64().unwrap_or(0),
    }
}

/// `GET /console/audit/usage`: the form, and the chosen tenant's charts and table.
pub(super) async fn page<P: Platform>(web: &Web<'_, P>) -> Answer {
    let f = filters(web);
    let tenants = tenant_choices(web).await;
    let (found, errors) = match read(web, &f).await {
        Ok(Read::Rows(rows, from, to)) => (Some((rows, from, to)), FieldErrors::none()),
        Ok(Read::NoTenant) => (None, FieldErrors::none()),
        Ok(Read::Refused(errors)) => (None, errors),
        Err(answer) => return answer,
    };
    let now = web.p.clock().now_ms();
    let range = [
        ("tenant", f.tenant.as_str()),
        ("from", &f.from),
        ("to", &f.to),
    ];
    let body = html! {
        (sub_nav("usage"))
        form.filters method="get" action="/console/audit/usage" aria-label="Choose the tenant and period" {
            (tenant_field(tenants.as_deref(), &f.tenant, "Choose a tenant", false, &errors))
            (page::input("from", "From (UTC)", &f.from, "datetime-local", &errors, false))
            (page::input("to", "To (UTC, exclusive)", &f.to, "datetime-local", &errors, false))
            button.secondary type="submit" { "Show usage" }
        }
        (page::form_errors(&errors, &["tenant", "from", "to"]))
        @match &found {
            None if !errors.any() => { p.muted { "Choose a tenant to see its usage." } },
            None => {},
            Some((rows, from, to)) => {
                div.actions {
                    a.button href=(page::link_with("/console/audit/usage.csv", &range)) { "Download usage CSV" }
                }
                (charts(rows, &chart_days(*from, *to, now, rows)))
                (usage_table(rows))
            },
        }
    };
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Answer::Page(
        status,
        page::frame(web, Section::Audit, "Billing usage", body),
    )
}

/// `GET /console/audit/usage.csv`: the summary as CSV (`day,type,quantity,events`).
pub(super) async fn download<P: Platform>(web: &Web<'_, P>) -> Answer {
    let f = filters(web);
    let rows = match read(web, &f).await {
        Ok(Read::Rows(rows, _, _)) => rows,
        Ok(Read::NoTenant) => {
            return page::error(web, StatusCode::UNPROCESSABLE_ENTITY, "Choose a tenant.")
        }
        Ok(Read::Refused(errors)) => return field_error_page(web, &errors),
        Err(answer) => return answer,
    };
    let mut out = String::new();
    csv::row(&mut out, &["day", "type", "quantity", "events"]);
    for r in &rows {
        let (q, n) = (r.quantity.to_string(), r.events.to_string());
        csv::row(&mut out, &[&r.day, &r.kind, &q, &n]);
    }
    let name = file_name("usage", &f.tenant, &f.from, &f.to);
    Answer::Download("text/csv; charset=utf-8", name, out.into_bytes())
}

fn usage_table(rows: &[UsageRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted #no-usage { "No usage in this period." }
        } @else {
            table #usage {
                caption.muted { "Usage per UTC day and event type" }
                thead { tr {
                    th scope="col" { "Day" } th scope="col" { "Event type" }
                    th scope="col" { "Quantity" } th scope="col" { "Events" }
                } }
                tbody {
                    @for r in rows {
                        tr { td { (r.day) } td { (r.kind) } td { (r.quantity) } td { (r.events) } }
                    }
                }
            }
        }
    }
}

/// The days the charts spread over: every UTC day of the period (to today when it is open at
/// the end), widened to any day with usage; only the days with usage when that is longer than
/// [`MAX_CHART_DAYS`] or the period is open at the start. A day without usage is a gap.
fn chart_days(from: Option<i64>, to: Option<i64>, now: i64, rows: &[UsageRow]) -> Vec<String> {
    let data: Vec<NaiveDate> = rows
        .iter()
        .filter_map(|r| NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").ok())
        .collect();
    let only_data = || {
        let mut days: Vec<String> = rows.iter().map(|r| r.day.clone()).collect();
        days.dedup();
        days
    };
    let Some(first) = from.map(date_of) else {
        return only_data();
    };
    let last = to.map_or(date_of(now), |t| date_of(t - 1));
    let first = data.iter().copied().min().map_or(first, |d| d.min(first));
    let last = data.iter().copied().max().map_or(last, |d| d.max(last));
    if last < first || (last - first).num_days() >= MAX_CHART_DAYS {
        return only_data();
    }
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect()
}

/// One chart per event type, of its quantity per day.
fn charts(rows: &[UsageRow], days: &[String]) -> Markup {
    let mut by_kind: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for r in rows {
        *by_kind
            .entry(r.kind.as_str())
            .or_default()
            .entry(r.day.as_str())
            .or_default() += r.quantity;
    }
    html! {
        @for (i, (kind, per_day)) in by_kind.iter().enumerate() {
            (chart(i, kind, days, per_day))
        }
    }
}

/// Chart geometry, in the SVG's own units.
const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// The console's text and accent colours (its stylesheet's), as presentation attributes.
const INK: &str = "#545d6e";
const BAR: &str = "#1f4fd1";

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// A bar chart of one event type's quantity per day: one bar per day of `days`, each with its
/// day and quantity as a tooltip; the SVG is an image named by its `<title>`.
fn chart(index: usize, kind: &str, days: &[String], per_day: &BTreeMap<&str, i64>) -> Markup {
    let quantity = |d: &String| per_day.get(d.as_str()).copied().unwrap_or(0);
    let max = days.iter().map(quantity).max().unwrap_or(0).max(1);
    let total: i64 = per_day.values().sum();
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let slot = plot_w / days.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let base = TOP + plot_h;
    let title_id = format!("usage-chart-{index}");
    let (first, last) = (
        days.first().map_or("", String::as_str),
        days.last().map_or("", String::as_str),
    );
    html! {
        figure.card {
            svg role="img" aria-labelledby=(title_id) viewBox=(format!("0 0 {W} {H}")) width="100%" height=(px(H)) {
                title id=(title_id) { (kind) ": quantity per UTC day from " (first) " to " (last) ", at most " (max) " a day, " (total) " in all" }
                line x1=(px(LEFT)) y1=(px(base)) x2=(px(W - RIGHT)) y2=(px(base)) stroke=(INK) stroke-width="1" {}
                text x=(px(LEFT - 6.0)) y=(px(base)) text-anchor="end" font-size="12" fill=(INK) { "0" }
                text x=(px(LEFT - 6.0)) y=(px(TOP + 10.0)) text-anchor="end" font-size="12" fill=(INK) { (max) }
                @for (i, day) in days.iter().enumerate() {
                    @let q = quantity(day);
                    @if q > 0 {
                        @let h = (q as f64 / max as f64 * plot_h).max(1.0);
                        rect x=(px(LEFT + i as f64 * slot + (slot - bar_w) / 2.0)) y=(px(base - h))
                            width=(px(bar_w)) height=(px(h)) fill=(BAR) {
                            title { (day) ": " (q) }
                        }
                    }
                }
                text x=(px(LEFT)) y=(px(H - 8.0)) font-size="12" fill=(INK) { (first) }
                text x=(px(W - RIGHT)) y=(px(H - 8.0)) text-anchor="end" font-size="12" fill=(INK) { (last) }
            }
            figcaption { strong { (kind) } ": " (total) " in all, per UTC day" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, kind: &str, quantity: i64) -> UsageRow {
        UsageRow {
            day: day.into(),
            kind: kind.into(),
            quantity,
            events: 1,
        }
    }

    #[test]
    fn chart_days_cover_the_period_with_gaps_for_quiet_days() {
        let jan = |d: u32| {
            NaiveDate::from_ymd_opt(2026, 1, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        };
        let rows = [row("2026-01-02", "api.call", 5)];
        let days = chart_days(jan(1), jan(4), 0, &rows);
        assert_eq!(days, ["2026-01-01", "2026-01-02", "2026-01-03"]);
        // Open at the start: the days with usage only.
        assert_eq!(chart_days(None, jan(4), 0, &rows), ["2026-01-02"]);
        // Open at the end: up to today.
        assert_eq!(chart_days(jan(1), None, jan(2).unwrap(), &rows).len(), 2);
    }

    #[test]
    fn a_chart_is_an_image_with_one_bar_per_day_with_usage_and_no_style() {
        let rows = [
            row("2026-01-01", "api.call", 5),
            row("2026-01-03", "api.call", 10),
            row("2026-01-03", "storage.gb", 2),
        ];
        let days: Vec<String> = ["2026-01-01", "2026-01-02", "2026-01-03"]
            .map(String::from)
            .to_vec();
        let svg = charts(&rows, &days).into_string();
        assert_eq!(svg.matches("<svg").count(), 2, "one chart per type");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert!(svg.contains("2026-01-03: 10"), "{svg}");
        assert!(!svg.contains("style"), "{svg}");
    }
}
