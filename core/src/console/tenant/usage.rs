//! The tenant's billing usage per UTC day on the subscription page (IF-TENANT-CONSOLE), read
//! from `GET /v1/tenant/usage` as the signed-in owner or admin: the auditors' table, charts and
//! CSV ([`usage_chart`]) over a period of whole UTC days, the last 30 by default.

use ::http::{Method, StatusCode};
use chrono::{Days, NaiveDate};
use maud::{html, Markup};

use super::super::api::{self, FieldErrors};
use super::super::page;
use super::super::usage_chart::{self, UsageRow};
use super::super::{Answer, Web};
use super::failure;
use crate::ports::{Clock as _, Platform};
use crate::time::{date_of, format_rfc3339};

/// Days shown when the form has not been sent: the last 30, today included.
const DEFAULT_DAYS: u64 = 30;

/// The period as typed (`YYYY-MM-DD`, UTC days, both included).
pub(super) struct Period {
    from: String,
    to: String,
}

impl Period {
    /// The period of the query, or the last [`DEFAULT_DAYS`] days when neither end is given.
    pub fn read<P: Platform>(web: &Web<'_, P>) -> Self {
        let (from, to) = (web.q("from").unwrap_or(""), web.q("to").unwrap_or(""));
        if !from.is_empty() || !to.is_empty() {
            return Period {
                from: from.to_owned(),
                to: to.to_owned(),
            };
        }
        let today = date_of(web.p.clock().now_ms());
        let first = today
            .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
            .unwrap_or(today);
        Period {
            from: first.format("%Y-%m-%d").to_string(),
            to: today.format("%Y-%m-%d").to_string(),
        }
    }

    /// The period in unix ms, as the API takes it: the first day's midnight (inclusive) to the
    /// midnight after the last day (exclusive); an end left empty is open. A field that is not
    /// a day, or a last day before the first, is a field error.
    fn bounds(&self) -> Result<(Option<i64>, Option<i64>), FieldErrors> {
        let mut errors = FieldErrors::none();
        let mut day = |name: &str, typed: &str| {
            if typed.is_empty() {
                return None;
            }
            let parsed = NaiveDate::parse_from_str(typed, "%Y-%m-%d").ok();
            if parsed.is_none() {
                errors
                    .fields
                    .push((name.to_owned(), "must be a day, as 2026-01-31".to_owned()));
            }
            parsed
        };
        let (first, last) = (day("from", &self.from), day("to", &self.to));
        if let (Some(f), Some(l)) = (first, last) {
            if l < f {
                errors.fields.push((
                    "to".to_owned(),
                    "must not be before the first day".to_owned(),
                ));
            }
        }
        if errors.any() {
            return Err(errors);
        }
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
        };
        Ok((
            first.and_then(midnight),
            last.and_then(|d| d.checked_add_days(Days::new(1)))
                .and_then(midnight),
        ))
    }

    fn pairs(&self) -> [(&'static str, &str); 2] {
        [("from", &self.from), ("to", &self.to)]
    }
}

/// What reading the summary gave.
pub(super) enum Usage {
    /// The rows, with the period in unix ms.
    Rows(Vec<UsageRow>, Option<i64>, Option<i64>),
    /// The period was refused.
    Refused(FieldErrors),
}

/// Reads the tenant's usage over `period`; an answer other than the summary or a refusal of the
/// period is the page to show instead.
pub(super) async fn read<P: Platform>(web: &Web<'_, P>, period: &Period) -> Result<Usage, Answer> {
    let (from, to) = match period.bounds() {
        Ok(b) => b,
        Err(errors) => return Ok(Usage::Refused(errors)),
    };
    let (from_at, to_at) = (from.map(format_rfc3339), to.map(format_rfc3339));
    let path = page::link_with(
        "/v1/tenant/usage",
        &[
            ("from", from_at.as_deref().unwrap_or("")),
            ("to", to_at.as_deref().unwrap_or("")),
        ],
    );
    let reply = api::call(web, Method::GET, &path, None).await;
    match reply.status {
        200 => Ok(Usage::Rows(usage_chart::rows_of(&reply.body), from, to)),
        400 | 422 => Ok(Usage::Refused(reply.errors())),
        _ => Err(failure(web, &reply)),
    }
}

/// The usage part of the subscription page: the period's form, the CSV link, the charts and
/// the table.
pub(super) fn section<P: Platform>(web: &Web<'_, P>, period: &Period, usage: &Usage) -> Markup {
    let none = FieldErrors::none();
    let errors = match usage {
        Usage::Refused(errors) => errors,
        Usage::Rows(..) => &none,
    };
    html! {
        section aria-labelledby="usage-h" {
            h2 #usage-h { "Usage per day" }
            p.muted { "What your apps reported as billing events, summed per UTC day and event type." }
            form.filters method="get" action="/console/tenant/subscription" aria-label="Choose the period" {
                (page::input("from", "From (UTC day)", &period.from, "date", errors, false))
                (page::input("to", "To (UTC day, included)", &period.to, "date", errors, false))
                button.secondary type="submit" { "Show usage" }
            }
            (page::form_errors(errors, &["from", "to"]))
            @if let Usage::Rows(rows, from, to) = usage {
                div.actions {
                    a.button href=(page::link_with("/console/tenant/subscription/usage.csv", &period.pairs())) { "Download usage CSV" }
                }
                (usage_chart::charts(rows, &usage_chart::chart_days(*from, *to, web.p.clock().now_ms(), rows)))
                (usage_chart::table(rows))
            }
        }
    }
}

/// `GET /console/tenant/subscription/usage.csv`: the period's summary as CSV.
pub(super) async fn download<P: Platform>(web: &Web<'_, P>) -> Answer {
    let period = Period::read(web);
    let rows = match read(web, &period).await {
        Ok(Usage::Rows(rows, _, _)) => rows,
        Ok(Usage::Refused(errors)) => {
            let text: Vec<String> = errors
                .fields
                .iter()
                .map(|(field, msg)| format!("{field} {msg}"))
                .chain(errors.detail.clone())
                .collect();
            return page::error(web, StatusCode::UNPROCESSABLE_ENTITY, &text.join("; "));
        }
        Err(answer) => return answer,
    };
    let or = |v: &str, open: &str| {
        if v.is_empty() {
            open.to_owned()
        } else {
            v.to_owned()
        }
    };
    let name = format!(
        "usage-{}-{}.csv",
        or(&period.from, "start"),
        or(&period.to, "now")
    );
    Answer::Download(
        "text/csv; charset=utf-8",
        name,
        usage_chart::csv(&rows).into_bytes(),
    )
}
