//! A tenant's billing usage per UTC day as the consoles show it, whoever reads it (an auditor
//! from `GET /v1/tenants/{id}/usage`, the tenant's owner or admin from `GET /v1/tenant/usage`;
//! both answer the same summary): a table, a bar chart per event type drawn on the server as
//! inline SVG (presentation attributes only, since the policy allows no inline style, and no
//! script), and the same numbers as CSV. Quantities of different event types are in different
//! units, so each type gets its own chart rather than one stacked bar.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use maud::{html, Markup};
use serde_json::Value as Json;

use crate::events::csv;
use crate::time::date_of;

/// Most days a chart spreads one bar each over; a longer period charts only its days with usage.
const MAX_CHART_DAYS: i64 = 366;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// The event type.
    pub kind: String,
    pub quantity: i64,
    pub events: i64,
}

/// The rows of the API's usage summary (its `items`).
pub(super) fn rows_of(summary: &Json) -> Vec<UsageRow> {
    summary["items"]
        .as_array()
        .map(|items| items.iter().map(usage_row).collect())
        .unwrap_or_default()
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

/// The summary as CSV: `day,type,quantity,events`, one line per row.
pub(super) fn csv(rows: &[UsageRow]) -> String {
    let mut out = String::new();
    csv::row(&mut out, &["day", "type", "quantity", "events"]);
    for r in rows {
        let (q, n) = (r.quantity.to_string(), r.events.to_string());
        csv::row(&mut out, &[&r.day, &r.kind, &q, &n]);
    }
    out
}

/// The summary as a table (`#usage`), or a line saying there is none.
pub(super) fn table(rows: &[UsageRow]) -> Markup {
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
pub(super) fn chart_days(
    from: Option<i64>,
    to: Option<i64>,
    now: i64,
    rows: &[UsageRow],
) -> Vec<String> {
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
pub(super) fn charts(rows: &[UsageRow], days: &[String]) -> Markup {
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

    #[test]
    fn the_csv_has_a_header_and_a_line_per_row() {
        let rows = [row("2026-01-01", "api.call", 5)];
        assert_eq!(
            csv(&rows),
            "day,type,quantity,events\r\n2026-01-01,api.call,5,1\r\n"
        );
    }
}
