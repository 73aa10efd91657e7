//! Health of the dependencies (FR-SYS-005): each port is exercised with a cheap real operation
//! and timed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ports::{Blobs, Clock, EventLog, Kv, Platform, Sql, Stmt};

/// The state of one dependency.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DependencyHealth {
    /// What backs the port (`d1`, `workers-kv`, `durable-object`, `r2`, `spin-sqlite`, ...).
    pub backend: &'static str,
    /// `ok` or `error`.
    pub status: &'static str,
    /// How long the probe took.
    pub latency_ms: i64,
    /// What failed, in general terms (no internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The health report of `/v1/health`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `ok` when every dependency is, else `degraded`.
    pub status: &'static str,
    /// The Edgeplane version.
    pub version: &'static str,
    /// `workers`, `spin` or `native`.
    pub runtime: &'static str,
    /// One entry per port: `sql`, `kv`, `event_log`, `blobs`.
    pub dependencies: BTreeMap<&'static str, DependencyHealth>,
}

impl HealthReport {
    /// True when every dependency answered.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

/// Probes every dependency once. Failures are reported, never propagated; the causes are
/// returned separately for the log.
pub async fn check<P: Platform>(p: &P) -> (HealthReport, Vec<String>) {
    let backends = p.backends();
    let clock = p.clock();
    let mut causes = Vec::new();
    let mut deps = BTreeMap::new();

    let t = clock.now_ms();
    let r = p.sql().query(Stmt::new("SELECT 1 AS ok")).await.map(|_| ());
    deps.insert(
        "sql",
        entry(backends.sql, t, clock, r, "query failed", &mut causes),
    );

    let t = clock.now_ms();
    let r = p.kv().get("health:probe", None).await.map(|_| ());
    deps.insert(
        "kv",
        entry(backends.kv, t, clock, r, "read failed", &mut causes),
    );

    let t = clock.now_ms();
    let r = p.event_log().ping().await;
    deps.insert(
        "event_log",
        entry(backends.event_log, t, clock, r, "ping failed", &mut causes),
    );

    let t = clock.now_ms();
    let r = p.blobs().list("health/", None, 1).await.map(|_| ());
    deps.insert(
        "blobs",
        entry(backends.blobs, t, clock, r, "list failed", &mut causes),
    );

    let ok = deps.values().all(|d| d.status == "ok");
    let report = HealthReport {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        runtime: backends.runtime,
        dependencies: deps,
    };
    (report, causes)
}

fn entry<C: Clock + ?Sized, E: std::fmt::Display>(
    backend: &'static str,
    started: i64,
    clock: &C,
    result: Result<(), E>,
    what: &'static str,
    causes: &mut Vec<String>,
) -> DependencyHealth {
    let latency_ms = clock.now_ms().saturating_sub(started);
    match result {
        Ok(()) => DependencyHealth {
            backend,
            status: "ok",
            latency_ms,
            error: None,
        },
        Err(e) => {
            causes.push(format!("{backend}: {e}"));
            DependencyHealth {
                backend,
                status: "error",
                latency_ms,
                error: Some(what),
            }
        }
    }
}
