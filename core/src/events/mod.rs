//! Billing and audit events (FR-BILL-001..003, FR-LOG-001..003, FR-OPS-003): validation of
//! what managed apps report, the durable event log they are appended to before the API
//! acknowledges them, its hash chain and the anchors that key it, the archive of flushed batches in the blob store, exports,
//! verification and retention.
//!
//! [`SqlEventLog`] implements the [`EventLog`](crate::ports::EventLog) port over any
//! [`Sql`](crate::ports::Sql): a Durable Object hosts it over its own SQLite storage on Workers,
//! Spin and native tests over SQLite.

pub mod anchor;
pub mod archive;
pub mod chain;
pub mod csv;
pub mod export;
pub mod ingest;
pub mod jobs;
pub mod lag;
pub mod model;
pub mod read;
mod sql_log;

#[cfg(test)]
mod tests;

pub use sql_log::{SqlEventLog, DEDUPE_WINDOW_MS, SCHEMA};
