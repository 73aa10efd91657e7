//! Request metrics (FR-SYS-005): per route and minute, the requests served, the 5xx and 4xx
//! answers and a latency histogram, merged from every isolate into `request_metrics`.
//!
//! No request writes storage for them. Each isolate adds its requests to counts in its memory
//! ([`record`]); at most every [`FLUSH_INTERVAL_MS`] (or every [`FLUSH_REQUESTS`] requests) one
//! request claims the flush ([`claim_flush`]) and, after its answer is out, adds the counts to
//! the table in one batch ([`flush`]). Rows add up (`requests = requests + ?`), so isolates never
//! overwrite each other, and a histogram of fixed buckets ([`BOUNDS_MS`]) merges by addition.
//!
//! A runtime that makes an instance per request (Spin) has no memory to aggregate in: there one
//! request in [`SAMPLE_ONE_IN`] that did not fail is recorded, counting for that many, and every
//! 5xx is recorded, each flushed by the request itself. The counts are then estimates of the
//! same expectation, at one write per [`SAMPLE_ONE_IN`] requests (plus one per 5xx): each such
//! write opens the database (SQLite parses the whole schema on a connection's first statement),
//! which costs a Spin instance 3-5 ms of the host's CPU. At one in 100 that is 10-15% of a
//! key-authenticated route's CPU and most of Spin's p99 on a small machine; one in 20 cost
//! those routes 20-40% (bench/RESULTS.md, 2026-12-06 and 2026-12-07). Spin's own OpenTelemetry
//! metrics count every request exactly, where a deployment exports them.
//!
//! Durations come from the clock port in whole milliseconds. On Workers the clock advances only
//! across I/O (a Spectre mitigation), so a duration there is the time spent waiting on storage
//! and subrequests, not CPU time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use utoipa::ToSchema;

use crate::ports::{Platform, Random, Sql, SqlError, Stmt};

/// Upper bounds (exclusive) of the histogram's buckets, in milliseconds; a last bucket holds
/// everything longer than the last bound.
pub const BOUNDS_MS: [i64; 14] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
];

/// Buckets of the histogram: one per bound and one for longer answers.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// An isolate adds its counts to storage at most this often (ms)...
pub const FLUSH_INTERVAL_MS: i64 = 10_000;

/// ...or after this many requests, whichever comes first.
pub const FLUSH_REQUESTS: u64 = 1_000;

/// How long rows are kept, in minutes (7 days).
pub const RETENTION_MINUTES: i64 = 7 * 24 * 60;

/// A flush claimed this long ago and not finished no longer holds the others back (ms).
pub const CLAIM_TIMEOUT_MS: i64 = 60_000;

/// Where an instance serves one request only, one request in this many is recorded.
pub const SAMPLE_ONE_IN: u64 = 100;

/// The key services whose error rate and latency operators watch (FR-SYS-005).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Password, second-factor, passkey and OpenID sign-in, and token refresh.
    SignIn,
    /// Token introspection.
    Introspection,
    /// Flag evaluation (OFREP and the flags list).
    Ofrep,
    /// Billing and audit event ingestion.
    Ingestion,
    /// The rest of the API: tenants, apps, users, flags administration, exports.
    Admin,
    /// Everything else: health, key sets, documents, the consoles' pages.
    Other,
}

impl Service {
    /// Every service, in report order.
    pub const ALL: [Service; 6] = [
        Service::SignIn,
        Service::Introspection,
        Service::Ofrep,
        Service::Ingestion,
        Service::Admin,
        Service::Other,
    ];

    /// The name stored in `request_metrics.service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::SignIn => "sign_in",
            Service::Introspection => "introspection",
            Service::Ofrep => "ofrep",
            Service::Ingestion => "ingestion",
            Service::Admin => "admin",
            Service::Other => "other",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What was served: requests, 5xx, 4xx and the latency histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests answered.
    pub requests: u64,
    /// Answers with a 5xx status.
    pub errors: u64,
    /// Answers with a 4xx status.
    pub client_errors: u64,
    /// Answers per latency bucket ([`BOUNDS_MS`]).
    pub buckets: [u64; BUCKETS],
}

impl Counts {
    /// Adds one answer of `status` that took `duration_ms`, counting for `weight` answers.
    pub fn add(&mut self, status: u16, duration_ms: i64, weight: u64) {
        self.requests += weight;
        if status >= 500 {
            self.errors += weight;
        } else if status >= 400 {
            self.client_errors += weight;
        }
        self.buckets[bucket(duration_ms)] += weight;
    }

    /// Adds another's counts to these.
    pub fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.client_errors += other.client_errors;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
    }

    /// Share of 5xx answers, 0 when nothing was served.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// The `q` quantile (0 < q <= 1) as the upper bound of its bucket in milliseconds: the
    /// answers at that rank took less than this. `None` when nothing was served or the rank
    /// falls in the last, unbounded bucket.
    pub fn quantile_ms(&self, q: f64) -> Option<i64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: the smallest count c with c >= q * total.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return BOUNDS_MS.get(i).copied();
            }
        }
        None
    }
}

/// The bucket of a duration.
fn bucket(duration_ms: i64) -> usize {
    BOUNDS_MS
        .iter()
        .position(|bound| duration_ms < *bound)
        .unwrap_or(BOUNDS_MS.len())
}

/// One route's counts in one minute, as the isolate holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Unix minute.
    pub minute: i64,
    /// Method and path template, e.g. `GET /v1/tenants/{id}`.
    pub route: String,
    /// The route's key service.
    pub service: Service,
    /// What it served.
    pub counts: Counts,
}

/// What the isolate has counted and not yet flushed.
#[derive(Default)]
struct Recorder {
    /// By minute, then by route.
    minutes: HashMap<i64, HashMap<String, (Service, Counts)>>,
    /// Requests counted since the last flush.
    pending: u64,
    /// When the first of them was counted (ms).
    since: i64,
    /// When a request claimed the flush it has not finished; a claim older than
    /// [`CLAIM_TIMEOUT_MS`] is void (its task was cancelled or never ran).
    claimed_at: Option<i64>,
}

thread_local! {
    static RECORDER: RefCell<Recorder> = RefCell::new(Recorder::default());
}

/// Counts one answer in the isolate's memory. `weight` is how many answers it stands for (0:
/// not recorded); see [`weight`].
pub fn record(
    route: &str,
    service: Service,
    status: u16,
    duration_ms: i64,
    now_ms: i64,
    weight: u64,
) {
    if weight == 0 {
        return;
    }
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        if r.pending == 0 {
            r.since = now_ms;
        }
        r.pending += 1;
        let routes = r.minutes.entry(now_ms.div_euclid(60_000)).or_default();
        if let Some((_, counts)) = routes.get_mut(route) {
            counts.add(status, duration_ms, weight);
        } else {
            let mut counts = Counts::default();
            counts.add(status, duration_ms, weight);
            routes.insert(route.to_owned(), (service, counts));
        }
    });
}

/// How many answers one answer of `status` stands for: 1 where the isolate outlives the
/// request; where it does not (`instance_per_request`), every 5xx counts 1 and one other
/// answer in [`SAMPLE_ONE_IN`], drawn at random, counts that many (the rest 0).
pub fn weight<R: Random>(random: &R, instance_per_request: bool, status: u16) -> u64 {
    if !instance_per_request || status >= 500 {
        return 1;
    }
    let mut b = [0u8; 8];
    random.fill(&mut b);
    if u64::from_le_bytes(b) % SAMPLE_ONE_IN == 0 {
        SAMPLE_ONE_IN
    } else {
        0
    }
}

/// Whether this request should flush the isolate's counts after its answer; if so the flush
/// is claimed (no other request claims it until [`flush`] ends, or for [`CLAIM_TIMEOUT_MS`]). Due after
/// [`FLUSH_INTERVAL_MS`] or [`FLUSH_REQUESTS`], or at once where the instance serves one
/// request (`instance_per_request`).
pub fn claim_flush(now_ms: i64, instance_per_request: bool) -> bool {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        let free = r
            .claimed_at
            .is_none_or(|at| now_ms - at >= CLAIM_TIMEOUT_MS);
        let due = r.pending > 0
            && free
            && (instance_per_request
                || r.pending >= FLUSH_REQUESTS
                || now_ms - r.since >= FLUSH_INTERVAL_MS);
        if due {
            r.claimed_at = Some(now_ms);
        }
        due
    })
}

/// Everything counted and not flushed, leaving the memory empty.
fn take() -> Vec<Row> {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        r.pending = 0;
        let minutes = std::mem::take(&mut r.minutes);
        let mut rows: Vec<Row> = minutes
            .into_iter()
            .flat_map(|(minute, routes)| {
                routes
                    .into_iter()
                    .map(move |(route, (service, counts))| Row {
                        minute,
                        route,
                        service,
                        counts,
                    })
            })
            .collect();
        rows.sort_by(|a, b| (a.minute, &a.route).cmp(&(b.minute, &b.route)));
        rows
    })
}

/// Puts rows a failed flush took back, to go with the next one.
fn give_back(rows: Vec<Row>, now_ms: i64) {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        if r.pending == 0 {
            r.since = now_ms;
        }
        for row in rows {
            r.pending += 1;
            let routes = r.minutes.entry(row.minute).or_default();
            match routes.get_mut(&row.route) {
                Some((_, counts)) => counts.merge(&row.counts),
                None => {
                    routes.insert(row.route, (row.service, row.counts));
                }
            }
        }
    });
}

/// The columns of the histogram, `b00` to `b14`.
fn bucket_columns() -> impl Iterator<Item = String> {
    (0..BUCKETS).map(|i| format!("b{i:02}"))
}

/// The statement that adds one row's counts to the table.
fn upsert(row: &Row) -> Stmt {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let cols: Vec<String> = bucket_columns().collect();
        let placeholders: Vec<String> = (7..7 + BUCKETS).map(|i| format!("?{i}")).collect();
        let adds: Vec<String> = cols.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect();
        format!(
            "INSERT INTO request_metrics (minute, route, service, requests, errors, client_errors, {}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, {}) \
             ON CONFLICT (minute, route) DO UPDATE SET requests = requests + excluded.requests, \
             errors = errors + excluded.errors, client_errors = client_errors + excluded.client_errors, {}",
            cols.join(", "),
            placeholders.join(", "),
            adds.join(", ")
        )
    });
    let mut stmt = Stmt::new(sql.as_str())
        .bind(row.minute)
        .bind(row.route.as_str())
        .bind(row.service.as_str())
        .bind(saturate(row.counts.requests))
        .bind(saturate(row.counts.errors))
        .bind(saturate(row.counts.client_errors));
    for n in row.counts.buckets {
        stmt = stmt.bind(saturate(n));
    }
    stmt
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds what the isolate counted to `request_metrics` in one batch, with the API keys' new
/// client addresses (`crate::anomalies`), and releases the claim; returns the metrics rows
/// written. On failure the counts stay in memory for the next flush (unless
/// they fall out of the retention by then).
pub async fn flush<P: Platform>(p: &P, now_ms: i64) -> Result<u64, SqlError> {
    let rows = take();
    // NFR-MON-001: the API keys' client addresses the isolate gathered ride along, hashed.
    let (key_stmts, key_uses) = crate::anomalies::key_use_stmts(p.secrets(), now_ms);
    let result = if rows.is_empty() && key_stmts.is_empty() {
        Ok(0)
    } else {
        let mut stmts: Vec<Stmt> = rows.iter().map(upsert).collect();
        stmts.extend(key_stmts);
        match p.sql().batch(stmts).await {
            Ok(_) => {
                crate::anomalies::mark_key_uses_written(&key_uses);
                Ok(rows.len() as u64)
            }
            Err(e) => {
                let oldest = now_ms.div_euclid(60_000) - RETENTION_MINUTES;
                give_back(
                    rows.into_iter().filter(|r| r.minute > oldest).collect(),
                    now_ms,
                );
                Err(e)
            }
        }
    };
    RECORDER.with(|r| r.borrow_mut().claimed_at = None);
    result
}

/// Deletes rows past [`RETENTION_MINUTES`]; returns how many.
pub async fn expire<P: Platform>(p: &P, now_ms: i64) -> Result<u64, SqlError> {
    let oldest = now_ms.div_euclid(60_000) - RETENTION_MINUTES;
    p.sql()
        .execute(Stmt::new("DELETE FROM request_metrics WHERE minute < ?1").bind(oldest))
        .await
}

/// A service's figures over one window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Window {
    /// Requests answered.
    pub requests: u64,
    /// Answers with a 5xx status.
    pub errors: u64,
    /// Answers with a 4xx status (counted apart: mostly the callers' mistakes).
    pub client_errors: u64,
    /// `errors / requests`, 0 without requests.
    pub error_rate: f64,
    /// The median latency's bucket bound in ms (answers took less); null without requests.
    pub p50_ms: Option<i64>,
    /// The 95th percentile's bucket bound in ms.
    pub p95_ms: Option<i64>,
    /// The 99th percentile's bucket bound in ms; null also when it is over 30 s.
    pub p99_ms: Option<i64>,
}

impl Window {
    fn of(c: &Counts) -> Self {
        Self {
            requests: c.requests,
            errors: c.errors,
            client_errors: c.client_errors,
            error_rate: c.error_rate(),
            p50_ms: c.quantile_ms(0.50),
            p95_ms: c.quantile_ms(0.95),
            p99_ms: c.quantile_ms(0.99),
        }
    }
}

/// One key service over the last 5 and 60 minutes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceFigures {
    /// The service.
    pub service: Service,
    /// The current minute and the four before it.
    pub last_5m: Window,
    /// The current minute and the 59 before it.
    pub last_60m: Window,
}

/// Counts per service over the minutes from `from_minute` on, from storage plus what this
/// isolate has not flushed yet.
pub async fn counts_since<P: Platform>(
    p: &P,
    from_minute: i64,
) -> Result<HashMap<Service, Counts>, SqlError> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let sums: Vec<String> = bucket_columns()
            .map(|c| format!("SUM({c}) AS {c}"))
            .collect();
        format!(
            "SELECT service, SUM(requests) AS requests, SUM(errors) AS errors, \
             SUM(client_errors) AS client_errors, {} FROM request_metrics WHERE minute >= ?1 \
             GROUP BY service",
            sums.join(", ")
        )
    });
    let rows = p
        .sql()
        .query(Stmt::new(sql.as_str()).bind(from_minute))
        .await?;
    let mut out: HashMap<Service, Counts> = HashMap::new();
    for row in rows {
        let Some(service) = Service::parse(&row.text("service")?) else {
            continue;
        };
        let n = |col: &str| row.i64(col).map(|v| u64::try_from(v).unwrap_or(0));
        let mut c = Counts {
            requests: n("requests")?,
            errors: n("errors")?,
            client_errors: n("client_errors")?,
            buckets: [0; BUCKETS],
        };
        for (i, col) in bucket_columns().enumerate() {
            c.buckets[i] = n(&col)?;
        }
        out.entry(service).or_default().merge(&c);
    }
    RECORDER.with(|r| {
        for (minute, routes) in &r.borrow().minutes {
            if *minute >= from_minute {
                for (service, counts) in routes.values() {
                    out.entry(*service).or_default().merge(counts);
                }
            }
        }
    });
    Ok(out)
}

/// Every key service's figures over the last 5 and 60 minutes at `now_ms`.
pub async fn figures<P: Platform>(p: &P, now_ms: i64) -> Result<Vec<ServiceFigures>, SqlError> {
    let minute = now_ms.div_euclid(60_000);
    let last_60 = counts_since(p, minute - 59).await?;
    let last_5 = counts_since(p, minute - 4).await?;
    let none = Counts::default();
    Ok(Service::ALL
        .into_iter()
        .map(|service| ServiceFigures {
            service,
            last_5m: Window::of(last_5.get(&service).unwrap_or(&none)),
            last_60m: Window::of(last_60.get(&service).unwrap_or(&none)),
        })
        .collect())
}

/// Forgets what this thread's isolate counted (tests share threads).
#[cfg(test)]
pub fn clear_isolate() {
    RECORDER.with(|r| *r.borrow_mut() = Recorder::default());
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
