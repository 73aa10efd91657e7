//! Feature flags per tenant (FR-FLAG-001 configuration, FR-FLAG-002 delivery): definitions and
//! their checks ([`model`]), the pure evaluation with targeting rules and deterministic
//! percentage rollouts ([`eval`]), the per-tenant snapshot served from KV ([`snapshot`]), and the
//! operators' changes ([`FlagService`]).
//!
//! # Delivery
//! D1 is the truth. Every change bumps `tenants.flags_version` in the same batch as the flag
//! row and its audit record, then publishes the tenant's snapshot `{version, apps, flags}` to
//! KV under `flags:{tenant id}` and records the published version. The hot path reads no D1:
//! API key (KV-cached record) → snapshot (isolate memory for [`snapshot::ISOLATE_TTL_MS`], else
//! KV with `cacheTtl` 60 s) → evaluate → respond. The cron reconciler republishes every tenant
//! whose published version lags (a KV write that failed or raced).
//!
//! # Staleness
//! The isolate that made a change drops its copy at once, so its next read sees the change.
//! Another isolate may serve the old snapshot for up to 5 s from memory, and Workers KV may
//! serve a cached copy at another edge location for up to 60 s: a change reaches every reader
//! within about 65 s.

pub mod eval;
pub mod limit;
pub mod model;
pub mod ofrep;
pub mod plans;
mod service;
pub mod snapshot;

#[cfg(test)]
mod tests;

pub use eval::{bucket, evaluate, Context, EvalError, Reason, Resolution};
pub use model::{Flag, FlagDefinition, FlagKey, FlagType, InvalidFlag, Rule};
pub use plans::{PlanFlag, PlanFlagChange, PlanFlagError, PlanFlagService};
pub use service::{
    FlagChange, FlagRecord, FlagService, FlagSet, ListFlagsError, RemoveFlagError, SetFlagError,
};
pub use snapshot::{PublishError, Published, Snapshot};
