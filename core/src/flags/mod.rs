//! Feature flags per tenant (FR-FLAG-001 configuration, FR-FLAG-002 delivery): definitions and
//! their checks ([`model`]), the pure evaluation with targeting rules and deterministic
//! percentage rollouts ([`eval`]), the per-tenant snapshot served from KV ([`snapshot`]), and the
//! operators' changes ([`set_flag`], [`remove_flag`]).
//!
//! # Delivery
//! D1 is the truth. Every change bumps `tenants.flags_version` in the same batch as the flag
//! row and its audit record, then publishes the tenant's snapshot `{version, apps, flags}` to
//! KV under `flags:{tenant id}` and records the published version. The hot path reads no D1:
//! API key (KV-cached record) → snapshot, both held in the isolate's memory ([`crate::edge`],
//! else KV with `cacheTtl` 60 s) → evaluate → respond. The cron reconciler republishes every
//! tenant whose published version lags (a KV write that failed or raced).
//!
//! # Staleness
//! The isolate that made a change drops its copy at once, so its next read sees the change.
//! The publication announces the change through [`crate::edge`]: another isolate of the location
//! serves it within a second, and another location within Workers KV's propagation (about a
//! minute) plus a second.

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
pub use plans::{
    list_plan_flags, remove_plan_flag, set_plan_flag, PlanFlag, PlanFlagChange, PlanFlagError,
};
pub use service::{
    list_flags, remove_flag, republish, set_flag, FlagChange, FlagRecord, FlagSet, ListFlagsError,
    RemoveFlagError, SetFlagError,
};
pub use snapshot::{PublishError, Published, Snapshot};
