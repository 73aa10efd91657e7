//! A tenant's billing usage per UTC day (IF-AUDIT-CONSOLE), read from
//! `GET /v1/tenants/{id}/usage` and shown as the shared table, charts and CSV of
//! [`usage_chart`].

use ::http::{Method, StatusCode};
use maud::html;

use super::super::api::{self, seg, FieldErrors};
use super::super::page::{self, Section};
use super::super::usage_chart::{self, UsageRow};
use super::super::{Answer, Web};
use super::{failure, field_error_page, file_name, sub_nav, tenant_choices, tenant_field, Filters};
use crate::ports::{Clock as _, Platform};
use crate::time::{format_day, parse_rfc3339};

/// The period shown when neither end is chosen: the last 30 days.
const DEFAULT_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

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
    Ok(Read::Rows(
        usage_chart::rows_of(&reply.body),
        at("from"),
        at("to"),
    ))
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
                (usage_chart::charts(rows, &usage_chart::chart_days(*from, *to, now, rows)))
                (usage_chart::table(rows))
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
    let name = file_name("usage", &f.tenant, &f.from, &f.to);
    Answer::Download(
        "text/csv; charset=utf-8",
        name,
        usage_chart::csv(&rows).into_bytes(),
    )
}
