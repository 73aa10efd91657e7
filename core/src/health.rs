//! Health of the dependencies (FR-SYS-005): each port is exercised with a cheap real operation
//! and timed.

use serde::Serialize;
use utoipa::ToSchema;

use crate::ports::{Blobs, Clock, EventLog, Kv, Platform, Sql, Stmt};

/// Whether a dependency answered its probe.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// It answered.
    Ok,
    /// It failed or did not answer.
    Error,
}

/// The state of one dependency.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct DependencyHealth {
    /// What backs the port.
    #[schema(value_type = String, examples("d1", "workers-kv", "durable-object", "r2", "spin-sqlite", "spin-key-value"))]
    pub backend: &'static str,
    /// Whether it answered.
    #[schema(inline)]
    pub status: ProbeStatus,
    /// How long the probe took, in milliseconds.
    #[schema(minimum = 0)]
    pub latency_ms: i64,
    /// What failed, in general terms (no internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, nullable = false)]
    pub error: Option<&'static str>,
}

/// `ok` when every dependency answered, else `degraded`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverallStatus {
    /// Every dependency answered.
    Ok,
    /// At least one did not.
    Degraded,
}

/// One entry per port.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Dependencies {
    /// The SQL database.
    pub sql: DependencyHealth,
    /// The key-value store.
    pub kv: DependencyHealth,
    /// The event log.
    pub event_log: DependencyHealth,
    /// The archive's object store.
    pub blobs: DependencyHealth,
}

/// The health report of `/v1/health`.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct HealthReport {
    /// `ok` when every dependency is, else `degraded`.
    #[schema(inline)]
    pub status: OverallStatus,
    /// The Edgeplane version.
    pub version: &'static str,
    /// The runtime serving the request.
    #[schema(schema_with = runtime_schema)]
    pub runtime: &'static str,
    /// One entry per port.
    #[schema(inline)]
    pub dependencies: Dependencies,
}

fn runtime_schema() -> utoipa::openapi::Object {
    crate::kernel::schema::string_enum(&["workers", "spin", "native"])
}

impl HealthReport {
    /// True when every dependency answered.
    pub fn is_ok(&self) -> bool {
        self.status == OverallStatus::Ok
    }
}

/// Probes every dependency once. Failures are reported, never propagated; the causes are
/// returned separately for the log.
pub async fn check<P: Platform>(p: &P) -> (HealthReport, Vec<String>) {
    let backends = p.backends();
    let clock = p.clock();
    let mut causes = Vec::new();

    let t = clock.now_ms();
    let r = p.sql().query(Stmt::new("SELECT 1 AS ok")).await.map(|_| ());
    let sql = entry(backends.sql, t, clock, r, "query failed", &mut causes);

    let t = clock.now_ms();
    let r = p.kv().get("health:probe", None).await.map(|_| ());
    let kv = entry(backends.kv, t, clock, r, "read failed", &mut causes);

    let t = clock.now_ms();
    let r = p.event_log().ping().await;
    let event_log = entry(backends.event_log, t, clock, r, "ping failed", &mut causes);

    let t = clock.now_ms();
    let r = p.blobs().list("health/", None, 1).await.map(|_| ());
    let blobs = entry(backends.blobs, t, clock, r, "list failed", &mut causes);

    let dependencies = Dependencies {
        sql,
        kv,
        event_log,
        blobs,
    };
    let ok = [
        &dependencies.sql,
        &dependencies.kv,
        &dependencies.event_log,
        &dependencies.blobs,
    ]
    .iter()
    .all(|d| d.status == ProbeStatus::Ok);
    let report = HealthReport {
        status: if ok {
            OverallStatus::Ok
        } else {
            OverallStatus::Degraded
        },
        version: env!("CARGO_PKG_VERSION"),
        runtime: backends.runtime,
        dependencies,
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
            status: ProbeStatus::Ok,
            latency_ms,
            error: None,
        },
        Err(e) => {
            causes.push(format!("{backend}: {e}"));
            DependencyHealth {
                backend,
                status: ProbeStatus::Error,
                latency_ms,
                error: Some(what),
            }
        }
    }
}
