//! The alert rules (NFR-MON-002) and their thresholds: what a scheduled run looks at and when a
//! condition counts as bad.
//!
//! A rule judges one subject at a time (a key service, a dependency) and says, for every subject
//! it could judge, whether its condition holds now ([`Observation`]). A subject it could not
//! judge (its source failed) is left out, so a firing alert neither resolves nor re-fires on a
//! run that did not look. A new rule is a new [`Rule`] variant and one more source in [`observe`]
//! producing observations; the state machine and the channels take it from there.

use serde_json::{json, Value as Json};

use crate::events::lag::{self, PipelineLag};
use crate::health::{self, DependencyHealth, ProbeStatus};
use crate::journeys::{self, JourneyRun};
use crate::metrics::{self, Service, ServiceFigures};
use crate::ports::{Platform, Secrets};

/// The variable overriding [`Thresholds::error_rate`]: a fraction (`0.02`) or a percentage
/// (`2%`), above 0 and below 1.
pub const ERROR_RATE_VAR: &str = "ALERT_ERROR_RATE";
/// The variable overriding [`Thresholds::min_requests`]: a whole number, at least 1.
pub const MIN_REQUESTS_VAR: &str = "ALERT_MIN_REQUESTS";
/// The variable overriding p99 SLOs: `service=ms` pairs between commas
/// (`sign_in=2500,introspection=100`); services not named keep their default.
pub const P99_VAR: &str = "ALERT_P99_MS";
/// The variable overriding [`Thresholds::renotify_ms`], in minutes (0: never re-notify).
pub const RENOTIFY_VAR: &str = "ALERT_RENOTIFY_MINUTES";
/// The variable overriding [`Thresholds::pipeline_lag_ms`], in whole seconds, at least 1.
pub const PIPELINE_LAG_VAR: &str = "ALERT_PIPELINE_LAG_SECONDS";

/// Default error-rate threshold: more than 1 % of a service's answers over 5 minutes are 5xx
/// (NFR-MON-002's example).
pub const DEFAULT_ERROR_RATE: f64 = 0.01;
/// Default least number of requests over 5 minutes before a service's error rate or p99 is
/// judged: one error among three requests is not an outage.
pub const DEFAULT_MIN_REQUESTS: u64 = 20;
/// Default re-notification interval of a firing alert: 60 minutes.
pub const DEFAULT_RENOTIFY_MS: i64 = 60 * 60_000;
/// Default event-pipeline lag threshold: 15 minutes. The scheduled run archives every 5
/// minutes and judges the lag before it archives, so a healthy pipeline's oldest waiting event
/// is at most about 5 minutes old; 15 is three flushes missed.
pub const DEFAULT_PIPELINE_LAG_MS: i64 = 15 * 60_000;
/// A journey run older than this is not judged (ms): the journey job itself stopped, which the
/// scheduled run's own report and heartbeat show.
pub const JOURNEY_STALE_MS: i64 = 30 * 60_000;
/// The subject of the `journey` rule: the canary journey.
pub const JOURNEY_SUBJECT: &str = "canary";
/// The subject of the `pipeline_lag` rule: the billing and audit event pipeline.
pub const PIPELINE_SUBJECT: &str = "events";

/// Default p99 SLOs in milliseconds. They are bounds of the latency histogram
/// ([`metrics::BOUNDS_MS`]), the precision p99 is known to: sign-in hashes passwords (argon2id)
/// and may call an IdP; introspection and flag evaluation are edge hot paths answered from the
/// isolate; ingestion waits for a durable append; administration writes D1 and KV.
pub const DEFAULT_P99_MS: [(Service, i64); 5] = [
    (Service::SignIn, 2_500),
    (Service::Introspection, 250),
    (Service::Ofrep, 250),
    (Service::Ingestion, 1_000),
    (Service::Admin, 2_500),
];

/// The key services the error-rate and latency rules watch (`other`, the health and document
/// routes and the consoles' pages, is not one).
pub const WATCHED: [Service; 5] = [
    Service::SignIn,
    Service::Introspection,
    Service::Ofrep,
    Service::Ingestion,
    Service::Admin,
];

/// A rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A key service's 5xx share over 5 minutes is above the threshold.
    ErrorRate,
    /// A key service's p99 latency over 5 minutes is above its SLO.
    LatencyP99,
    /// A dependency failed its health check (`health::check`).
    Dependency,
    /// The latest synthetic journey run failed (NFR-MON-003).
    Journey,
    /// The oldest acknowledged event not yet archived is older than the threshold.
    PipelineLag,
    /// A burst of refused sign-ins in a tenant (NFR-MON-001; `super::anomalies`).
    FailedSignInBurst,
    /// Refresh-token reuse detected in a tenant (NFR-MON-001).
    RefreshReuse,
    /// One account signed in from many addresses within an hour (NFR-MON-001).
    AccountManyAddresses,
    /// An API key used from many more addresses than usual (NFR-MON-001).
    ApiKeyManyAddresses,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 9] = [
        Rule::ErrorRate,
        Rule::LatencyP99,
        Rule::Dependency,
        Rule::Journey,
        Rule::PipelineLag,
        Rule::FailedSignInBurst,
        Rule::RefreshReuse,
        Rule::AccountManyAddresses,
        Rule::ApiKeyManyAddresses,
    ];

    /// The stored and published name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ErrorRate => "error_rate",
            Rule::LatencyP99 => "latency_p99",
            Rule::Dependency => "dependency",
            Rule::Journey => "journey",
            Rule::PipelineLag => "pipeline_lag",
            Rule::FailedSignInBurst => "failed_sign_in_burst",
            Rule::RefreshReuse => "refresh_reuse",
            Rule::AccountManyAddresses => "account_many_addresses",
            Rule::ApiKeyManyAddresses => "api_key_many_addresses",
        }
    }

    /// The rule of a stored name.
    pub fn parse(s: &str) -> Option<Rule> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// How bad a firing of this rule is, in PagerDuty's words (`critical`, `error`, `warning`).
    pub fn severity(self) -> &'static str {
        match self {
            Rule::Dependency => "critical",
            Rule::ErrorRate | Rule::RefreshReuse | Rule::Journey => "error",
            Rule::LatencyP99 | Rule::PipelineLag => "warning",
            Rule::FailedSignInBurst | Rule::AccountManyAddresses | Rule::ApiKeyManyAddresses => {
                "warning"
            }
        }
    }

    /// What kind of subject it judges: PagerDuty's `group`.
    pub fn group(self) -> &'static str {
        match self {
            Rule::ErrorRate | Rule::LatencyP99 => "key_services",
            Rule::Dependency => "dependencies",
            Rule::Journey => "journeys",
            Rule::PipelineLag => "event_pipeline",
            Rule::FailedSignInBurst
            | Rule::RefreshReuse
            | Rule::AccountManyAddresses
            | Rule::ApiKeyManyAddresses => "anomalies",
        }
    }
}

/// The thresholds of the rules, from their defaults and the `ALERT_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// An error rate above this fires ([`DEFAULT_ERROR_RATE`]).
    pub error_rate: f64,
    /// Fewer requests than this over 5 minutes are not judged ([`DEFAULT_MIN_REQUESTS`]).
    pub min_requests: u64,
    /// p99 SLO per watched service, in ms ([`DEFAULT_P99_MS`]).
    pub p99_ms: Vec<(Service, i64)>,
    /// A firing alert is sent again after this long (ms; 0: never).
    pub renotify_ms: i64,
    /// An event waiting longer than this to be archived fires `pipeline_lag` (ms,
    /// [`DEFAULT_PIPELINE_LAG_MS`]).
    pub pipeline_lag_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            error_rate: DEFAULT_ERROR_RATE,
            min_requests: DEFAULT_MIN_REQUESTS,
            p99_ms: DEFAULT_P99_MS.to_vec(),
            renotify_ms: DEFAULT_RENOTIFY_MS,
            pipeline_lag_ms: DEFAULT_PIPELINE_LAG_MS,
        }
    }
}

impl Thresholds {
    /// The defaults with the variables that are set applied. A variable that does not parse is
    /// ignored (its default applies) and named in the returned warnings, for the log.
    pub fn from_secrets<S: Secrets + ?Sized>(secrets: &S) -> (Self, Vec<String>) {
        let mut t = Thresholds::default();
        let mut warnings = Vec::new();
        let mut bad = |name: &str, why: &str| warnings.push(format!("{name} ignored: {why}"));
        if let Some(raw) = secrets.get(ERROR_RATE_VAR) {
            match parse_rate(&raw) {
                Some(rate) => t.error_rate = rate,
                None => bad(
                    ERROR_RATE_VAR,
                    "not a fraction or percentage between 0 and 1",
                ),
            }
        }
        if let Some(raw) = secrets.get(MIN_REQUESTS_VAR) {
            match raw.trim().parse::<u64>() {
                Ok(n) if n >= 1 => t.min_requests = n,
                _ => bad(MIN_REQUESTS_VAR, "not a whole number of at least 1"),
            }
        }
        if let Some(raw) = secrets.get(P99_VAR) {
            match parse_p99(&raw) {
                Some(pairs) => {
                    for (service, ms) in pairs {
                        if let Some(slot) = t.p99_ms.iter_mut().find(|(s, _)| *s == service) {
                            slot.1 = ms;
                        }
                    }
                }
                None => bad(P99_VAR, "not a list of service=milliseconds"),
            }
        }
        if let Some(raw) = secrets.get(RENOTIFY_VAR) {
            match raw.trim().parse::<i64>() {
                Ok(m) if (0..=7 * 24 * 60).contains(&m) => t.renotify_ms = m * 60_000,
                _ => bad(RENOTIFY_VAR, "not a whole number of minutes up to a week"),
            }
        }
        if let Some(raw) = secrets.get(PIPELINE_LAG_VAR) {
            match raw.trim().parse::<i64>() {
                Ok(s) if (1..=7 * 24 * 60 * 60).contains(&s) => t.pipeline_lag_ms = s * 1_000,
                _ => bad(
                    PIPELINE_LAG_VAR,
                    "not a whole number of seconds from 1 to a week",
                ),
            }
        }
        (t, warnings)
    }

    /// The p99 SLO of a service, if it is watched.
    pub fn slo_ms(&self, service: Service) -> Option<i64> {
        self.p99_ms
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, ms)| *ms)
    }
}

/// `0.02` or `2%`: a rate strictly between 0 and 1.
fn parse_rate(raw: &str) -> Option<f64> {
    let raw = raw.trim();
    let rate = match raw.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => raw.parse::<f64>().ok()?,
    };
    (rate > 0.0 && rate < 1.0).then_some(rate)
}

/// `sign_in=2500,ofrep=100`: watched services and positive milliseconds.
fn parse_p99(raw: &str) -> Option<Vec<(Service, i64)>> {
    raw.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (name, ms) = part.split_once('=')?;
            let service = WATCHED.into_iter().find(|s| s.as_str() == name.trim())?;
            let ms = ms.trim().parse::<i64>().ok().filter(|ms| *ms > 0)?;
            Some((service, ms))
        })
        .collect()
}

/// What a rule found about one subject on this run.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The rule.
    pub rule: Rule,
    /// What it judged: a key service or a dependency, by its name.
    pub subject: String,
    /// `Some` when the condition holds: what is wrong.
    pub condition: Option<Condition>,
}

/// A condition that holds: one line for people, and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// One line, e.g. `Error rate of sign_in is 4.00% over 5 minutes (2 of 50 requests,
    /// threshold 1.00%)`.
    pub summary: String,
    /// The figures, as a JSON object.
    pub details: Json,
}

/// Judges the key services' last 5 minutes: error rate and p99, each only with at least
/// [`Thresholds::min_requests`] requests (fewer: clear).
pub fn judge_services(figures: &[ServiceFigures], t: &Thresholds) -> Vec<Observation> {
    let mut out = Vec::new();
    for f in figures.iter().filter(|f| WATCHED.contains(&f.service)) {
        let w = &f.last_5m;
        let name = f.service.as_str();
        let enough = w.requests >= t.min_requests;
        let error_rate = (enough && w.error_rate > t.error_rate).then(|| Condition {
            summary: format!(
                "Error rate of {name} is {:.2}% over 5 minutes ({} of {} requests failed, threshold {:.2}%)",
                w.error_rate * 100.0,
                w.errors,
                w.requests,
                t.error_rate * 100.0
            ),
            details: json!({
                "service": name, "window_minutes": 5, "requests": w.requests,
                "errors": w.errors, "error_rate": w.error_rate, "threshold": t.error_rate,
            }),
        });
        out.push(Observation {
            rule: Rule::ErrorRate,
            subject: name.to_owned(),
            condition: error_rate,
        });
        if let Some(slo) = t.slo_ms(f.service) {
            // p99_ms is the upper bound of its histogram bucket; none means beyond the last
            // bound (30 s), which is over any SLO.
            let over = match w.p99_ms {
                Some(p99) => p99 > slo,
                None => w.requests > 0,
            };
            let latency = (enough && over).then(|| Condition {
                summary: match w.p99_ms {
                    Some(p99) => format!(
                        "p99 latency of {name} is up to {p99} ms over 5 minutes (SLO {slo} ms, {} requests)",
                        w.requests
                    ),
                    None => format!(
                        "p99 latency of {name} is over 30000 ms over 5 minutes (SLO {slo} ms, {} requests)",
                        w.requests
                    ),
                },
                details: json!({
                    "service": name, "window_minutes": 5, "requests": w.requests,
                    "p99_ms": w.p99_ms, "slo_ms": slo,
                }),
            });
            out.push(Observation {
                rule: Rule::LatencyP99,
                subject: name.to_owned(),
                condition: latency,
            });
        }
    }
    out
}

/// Judges each dependency of a health report: failing its probe holds.
pub fn judge_dependencies(report: &health::HealthReport) -> Vec<Observation> {
    let d = &report.dependencies;
    let deps: [(&str, &DependencyHealth); 4] = [
        ("sql", &d.sql),
        ("kv", &d.kv),
        ("event_log", &d.event_log),
        ("blobs", &d.blobs),
    ];
    deps.into_iter()
        .map(|(name, dep)| Observation {
            rule: Rule::Dependency,
            subject: name.to_owned(),
            condition: (dep.status == ProbeStatus::Error).then(|| Condition {
                summary: format!(
                    "Dependency {name} ({}) fails its health check: {}",
                    dep.backend,
                    dep.error.unwrap_or("no answer")
                ),
                details: json!({
                    "dependency": name, "backend": dep.backend,
                    "error": dep.error, "latency_ms": dep.latency_ms,
                }),
            }),
        })
        .collect()
}

/// Judges the latest journey run (NFR-MON-003): failed holds, naming the failing step. A run
/// older than [`JOURNEY_STALE_MS`] is not judged.
pub fn judge_journey(run: &JourneyRun, now: i64) -> Option<Observation> {
    if now - run.started_at > JOURNEY_STALE_MS {
        return None;
    }
    let failed = run.steps.iter().find(|s| !s.ok);
    let condition = failed.map(|step| Condition {
        summary: format!(
            "Synthetic journey failed at step {}: {}",
            step.step,
            step.error.as_deref().unwrap_or("no detail")
        ),
        details: json!({
            "journey": JOURNEY_SUBJECT, "run_id": run.id, "step": step.step,
            "error": step.error, "step_duration_ms": step.duration_ms,
            "started_at": run.started_at,
        }),
    });
    Some(Observation {
        rule: Rule::Journey,
        subject: JOURNEY_SUBJECT.to_owned(),
        condition,
    })
}

/// Judges the event pipeline's lag: above [`Thresholds::pipeline_lag_ms`] holds.
pub fn judge_pipeline(lag: &PipelineLag, t: &Thresholds) -> Observation {
    let condition = (lag.lag_ms > t.pipeline_lag_ms).then(|| Condition {
        summary: format!(
            "Event pipeline lag is {} s: the oldest acknowledged event not yet archived waits in {} ({} streams behind, threshold {} s)",
            lag.lag_ms / 1_000,
            lag.oldest_stream.as_deref().unwrap_or("a stream"),
            lag.streams_behind,
            t.pipeline_lag_ms / 1_000
        ),
        details: json!({
            "lag_ms": lag.lag_ms, "oldest_stream": lag.oldest_stream,
            "streams_behind": lag.streams_behind, "streams_checked": lag.streams_checked,
            "threshold_ms": t.pipeline_lag_ms,
        }),
    });
    Observation {
        rule: Rule::PipelineLag,
        subject: PIPELINE_SUBJECT.to_owned(),
        condition,
    }
}

/// Runs every rule's source once at `now`: the health probes, the request metrics, the anomaly
/// signals (`super::anomalies`), the latest journey run and the event pipeline's lag. A source
/// that fails contributes no observation, and its cause is returned for the log.
pub async fn observe<P: Platform>(
    p: &P,
    now: i64,
    t: &Thresholds,
) -> (Vec<Observation>, Vec<String>) {
    let mut causes = Vec::new();
    let (report, probe_causes) = health::check(p).await;
    causes.extend(
        probe_causes
            .into_iter()
            .map(|c| format!("health probe: {c}")),
    );
    let mut out = judge_dependencies(&report);
    match metrics::figures(p, now).await {
        Ok(figures) => out.extend(judge_services(&figures, t)),
        Err(e) => causes.push(format!("request metrics unreadable: {e}")),
    }
    let (anomalies, anomaly_causes) = super::anomalies::observe(p, now).await;
    out.extend(anomalies);
    causes.extend(anomaly_causes);
    match journeys::store::latest(p).await {
        Ok(run) => out.extend(run.and_then(|r| judge_journey(&r, now))),
        Err(e) => causes.push(format!("journey runs unreadable: {e}")),
    }
    match lag::measure(p, now).await {
        Ok(l) => out.push(judge_pipeline(&l, t)),
        Err(e) => causes.push(format!("event pipeline lag unreadable: {e}")),
    }
    (out, causes)
}
